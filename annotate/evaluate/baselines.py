"""The two baselines every evaluation prints: the whole page, and the naive DOM split."""

from __future__ import annotations

from segmentation.geometry import Rect, area

from ..propose import PageBoxes, build_tree


def whole_page(page: PageBoxes) -> list[Rect]:
    return [(0.0, 0.0, float(page.width), float(page.height))]


def naive_split(page: PageBoxes, large: float = 0.02) -> list[Rect]:
    """Descend from the outermost block while a single large child covers it; its large
    children are the segments. `large`: share of the page's area."""
    root = build_tree(page)
    if root is None:
        return whole_page(page)
    limit = large * page.width * page.height
    node = root
    while True:
        kids = [c for c in node.children if area(c.rect) >= limit]
        if len(kids) != 1:
            break
        node = kids[0]
    return [c.rect for c in kids] if kids else [node.rect]
