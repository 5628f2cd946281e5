"""Boxes to labelled regions: the block tree cut into top-level segments, each classified."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from catalog.config import PreannotateConfig
from catalog.records import Region
from segmentation.geometry import Rect, area, clip, inter_area
from segmentation.pixels import unexplained_regions

from .boxes import Box, PageBoxes
from .classify import Context, classify, link_share
from .labelset import LabelSet
from .segment import Opener, Proposal, segment_tree
from .tree import BACKDROP, Node, build_tree

# A region's score estimates the chance that an annotator keeps it as proposed: the share
# of proposals of its label that matched a true segment (IoU >= 0.5) on the dev pages of
# the Kreuzer corpus (add-one smoothed), lowered for groups of loose objects and pixel
# finds (a third of those matched), and scaled by how firm the label's rule is.
KEEP_RATE = {"header": 0.8, "main": 0.68, "footer": 0.75, "navigation": 0.5,
             "sidebar": 0.25, "advertisement": 0.75, "segment": 0.5}
SOURCE_FACTOR = {"landmark": 1.0, "tree": 1.0, "cluster": 0.5, "pixel": 0.5}
FIRM_RULE = 0.7  # classify()'s confidence for a rule of position and size
MENU_BAR_HEIGHT = 60.0  # a row of links, one line high (as classify's menu rule)
EDGE = 20.0  # how close to a header's edge its menu bar must run


def _hint_boxes(node: Node | None) -> list[Box]:
    """The segment's own box and those of the wrappers it is made of (a lone-child chain)."""
    out: list[Box] = []
    while node is not None and len(out) < 4:
        out.append(node.box)
        node = node.children[0] if len(node.children) == 1 else None
    return out


def menu_bar(node: Node, content_width: float) -> Node | None:
    """A header's menu: a thin bar of links as wide as half the page, along the header's top
    or bottom edge (a header that holds its navigation bar)."""
    x, y, w, h = node.rect
    for n in node.walk():
        if n is node:
            continue
        nx, ny, nw, nh = n.rect
        if nh > MENU_BAR_HEIGHT or nw < 0.5 * content_width or nh >= 0.6 * h:
            continue
        if not (ny + nh >= y + h - EDGE or ny <= y + EDGE):
            continue
        if link_share(n.all_leaves) >= 0.8:
            return n
    return None


def split_menu(rect: Rect, bar: Rect) -> Rect | None:
    """The header without its menu bar, or None when the bar leaves too little of it."""
    x, y, w, h = rect
    by, bh = bar[1], bar[3]
    along_bottom = by + bh >= y + h - EDGE
    rest = (x, y, w, by - y) if along_bottom else (x, by + bh, w, y + h - by - bh)
    return rest if rest[3] >= MENU_BAR_HEIGHT / 2 else None


def merge_stacked(regions: list[Region], label: str, gap: float) -> list[Region]:
    """Regions of `label` that follow each other down the page (at most `gap` apart, sharing
    half the narrower one's width, nothing else between them) joined into one."""
    out: list[Region] = []
    for r in sorted(regions, key=lambda r: (r.bbox[1], r.bbox[0])):
        prev = out[-1] if out else None
        if prev is not None and prev.label == label == r.label:
            px, py, pw, ph = prev.bbox
            x, y, w, h = r.bbox
            shared = min(px + pw, x + w) - max(px, x)
            if y - (py + ph) <= gap and shared >= 0.5 * min(pw, w):
                x0, y0 = min(px, x), min(py, y)
                x1, y1 = max(px + pw, x + w), max(py + ph, y + h)
                prev.bbox = [round(v, 1) for v in (x0, y0, x1 - x0, y1 - y0)]
                prev.score = max(prev.score, r.score)
                continue
        out.append(replace(r, bbox=list(r.bbox)))
    return out


def pixel_proposals(gray: np.ndarray, page: PageBoxes, proposals: list[Proposal],
                    min_area: float) -> list[Proposal]:
    """Busy parts of the screenshot that neither a segment nor a text object explains."""
    # Text and controls are explained by the DOM, and so is a page's backdrop picture;
    # pictures elsewhere (canvas, images of text) are what this looks into.
    backdrop = BACKDROP * page.width * page.height
    explained = [q.rect for q in proposals] + [
        b.bbox for b in page.boxes if b.visible and (
            b.kind in ("text", "interactive") or (b.kind == "image" and b.area > backdrop))
    ]
    out = []
    for rect, text_score in unexplained_regions(gray, explained, min_area):
        if all(inter_area(rect, q.rect) < 0.3 * area(rect) for q in proposals):
            out.append(Proposal(rect, None, [], "pixel", text_score))
    return out


def propose_regions(page: PageBoxes, labels: LabelSet, params: PreannotateConfig | None = None,
                    gray: np.ndarray | None = None,
                    opener: Opener | None = None) -> list[Region]:
    """Labelled, scored regions of one page; `gray` (the screenshot as 8-bit grey, optional)
    lets the pixel check add what the DOM does not explain. `opener` takes the open-or-keep
    decision for containers (default: segment.py's rules; split.learned_opener() is the
    learned alternative, which does not beat them yet)."""
    params = params or PreannotateConfig()
    root = build_tree(page)
    if root is None:
        return []
    proposals: list[Proposal] = segment_tree(root, params, opener)
    if gray is not None and gray.shape == (page.height, page.width):
        proposals += pixel_proposals(gray, page, proposals, params.pixel_area * area(root.content))
    ctx = Context(page.width, page.height, root.content)
    biggest = max(proposals, key=lambda q: area(q.rect), default=None)
    lowest = max(proposals, key=lambda q: q.rect[1] + q.rect[3], default=None)
    split_menus = params.header_menu or params.granularity >= 0.5
    last_text_top = max((b.bbox[1] for b in root.all_leaves if b.kind == "text"), default=0.0)
    regions = []
    for q in proposals:
        if q.source == "pixel":
            # Text-like pixels are most likely content the page drew as a picture.
            label, conf = ("main", 0.5) if q.text_score >= 0.5 else ("segment", 0.5)
        else:
            label, conf = classify(q.rect, q.leaves, _hint_boxes(q.node), ctx, q is biggest,
                                   q is lowest, last_text_top >= q.rect[1] + q.rect[3])
        parts = [(q.rect, label, conf)]
        bar = None
        if split_menus and label == "header" and q.node is not None:
            bar = menu_bar(q.node, root.content[2])
        rest = split_menu(q.rect, bar.rect) if bar is not None else None
        if rest is not None:
            parts = [(rest, label, conf), (bar.rect, "navigation", FIRM_RULE)]
        for rect, part_label, part_conf in parts:
            rect = clip(rect, page.width, page.height)
            score = round(KEEP_RATE.get(part_label, 0.5) * SOURCE_FACTOR.get(q.source, 0.5)
                          * part_conf / FIRM_RULE, 3)
            regions.append(Region(labels.region_label(part_label), [round(v, 1) for v in rect],
                                  min(1.0, score), q.source))
    if params.merge_main_gap > 0:
        regions = merge_stacked(regions, labels.region_label("main"), params.merge_main_gap)
    return regions
