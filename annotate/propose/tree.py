"""The block tree of a page: visible containers with the visual objects they hold.

Containers are the capture's block and landmark boxes; each visual object (text run,
image, interactive element) hangs under its nearest container. A container that holds no
visible object is dropped, and so is one with no area on the page; its children move up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segmentation.geometry import Rect, area, clip, union_rect

from .boxes import CONTAINER_KINDS, LEAF_KINDS, Box, PageBoxes

BACKDROP = 0.5


@dataclass
class Node:
    box: Box
    rect: Rect  # the container's box clipped to the page
    children: list[Node] = field(default_factory=list)
    leaves: list[Box] = field(default_factory=list)  # objects directly under this node
    all_leaves: list[Box] = field(default_factory=list)  # every object in the subtree
    content: Rect = (0.0, 0.0, 0.0, 0.0)  # union of the objects in the subtree

    @property
    def area(self) -> float:
        return area(self.rect)

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


def build_tree(page: PageBoxes) -> Node | None:
    """The tree under the page's outermost container, or None for a page with no content."""
    w, h = page.width, page.height
    index = page.by_id()
    nodes: dict[int, Node] = {}
    for b in page.boxes:
        if b.kind in CONTAINER_KINDS and b.visible:
            r = clip(b.bbox, w, h)
            if area(r) >= 1:
                nodes[b.id] = Node(b, r)

    def owner(box_id: int | None) -> int | None:
        # Nearest kept container up the parent chain.
        seen = 0
        while box_id is not None and box_id not in nodes and seen < 10_000:
            parent = index.get(box_id)
            box_id = parent.parent if parent else None
            seen += 1
        return box_id

    roots: list[Node] = []
    for bid, node in nodes.items():
        p = owner(node.box.parent)
        if p is None or p == bid:
            roots.append(node)
        else:
            nodes[p].children.append(node)
    loose: list[Box] = []
    for b in page.boxes:
        if b.kind not in LEAF_KINDS or not b.visible:
            continue
        r = clip(b.bbox, w, h)
        # A picture behind half the page is its backdrop, not an object on it.
        if area(r) < 1 or area(r) > BACKDROP * w * h:
            continue
        b.bbox = r
        p = owner(b.parent)
        (nodes[p].leaves if p is not None else loose).append(b)
    if not roots:
        return None
    roots.sort(key=lambda n: -n.area)
    root = roots[0]
    # Stray top-level containers and objects (fixed overlays...) belong to the page.
    root.children.extend(roots[1:])
    root.leaves.extend(loose)
    _finish(root)
    return root if root.all_leaves else None


def _finish(node: Node) -> None:
    for c in node.children:
        _finish(c)
    node.children = [c for c in node.children if c.all_leaves]
    node.children.sort(key=lambda c: (c.rect[1], c.rect[0]))
    node.all_leaves = list(node.leaves)
    for c in node.children:
        node.all_leaves.extend(c.all_leaves)
    if node.all_leaves:
        node.content = union_rect(b.bbox for b in node.all_leaves)
