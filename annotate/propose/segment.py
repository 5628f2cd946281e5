"""Top-level segments of a page from its block tree and its visual objects.

The page is taken apart from the outside in, as a person reads a layout: the outer
wrappers that run from the top of the page (or to its bottom) are stacks of bands
(header, content, footer) and are opened; a row of tall side-by-side children is a set of
columns and is opened; anything else is one segment. Objects that sit loose in an opened
container (no block of their own) are grouped by visual adjacency (cluster.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from catalog.config import PreannotateConfig
from segmentation.geometry import Rect, area, inter_area, union_rect

from .boxes import Box
from .cluster import Item, cluster
from .tree import Node

# Blocks of running text: a run of them straight in a container is one part of the page.
FLOW_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "pre",
                       "blockquote", "hr", "figure", "address"})
PROSE_TAGS = frozenset({"p", "pre", "blockquote"})
FINEST_OPEN = 0.1  # open_share at granularity 1 (tuned on the dev pages against their sub-blocks)


@dataclass
class Proposal:
    rect: Rect
    node: Node | None  # None for a group of loose objects
    leaves: list[Box]
    source: str  # tree | landmark | cluster | pixel
    text_score: float = 0.0  # pixel proposals: how much they look like lines of text


def _significant(n: Node, min_area: float, content_share: float) -> bool:
    # A band drawn across the page counts by its box, even with little in it (a header
    # with a logo and a search field); the objects in it must still be of some size.
    return area(rect_of(n)) >= min_area and area(n.content) >= content_share * min_area


def is_band(kid: Node, node: Node) -> bool:
    # Measured against what the container holds, not its box: a page-wide wrapper around a
    # centred layout has bands as wide as the layout (seen on dev pages).
    wide = max(kid.rect[2], kid.content[2]) >= 0.8 * node.content[2]
    return wide and kid.content[3] <= 0.35 * node.content[3]


def _is_wrapper(node: Node, kids: list[Node], page: Rect, p: PreannotateConfig) -> bool:
    """A stack of page parts: it runs from the top of the page to its bottom, or from one
    end and holds a band."""
    top, height = page[1], page[3]
    tol = max(10.0, p.edge_tol * height)
    c = node.content
    if c[3] < p.wrapper_height * height:
        return False
    touches_top = c[1] <= top + tol
    touches_bottom = c[1] + c[3] >= top + height - tol
    if touches_top and touches_bottom:
        return True
    if not kids:
        return touches_top or touches_bottom
    # From one end only: a stack if it holds a band (a full-width part, such as a header,
    # a menu bar or a footer); a row of columns is one part of the page.
    return (touches_top or touches_bottom) and any(is_band(k, node) for k in kids)


# Decides whether a container is opened into its parts (True) or kept as one segment
# (False): called with the container, its significant children, the page's content, how
# many containers were opened above it and the verdict of the rules above (_is_wrapper).
Opener = Callable[[Node, list[Node], Rect, int, bool], bool]


def open_share(granularity: float) -> float:
    """Share of the page's content area from which a container with parts is opened
    whatever the rules say: no container at granularity 0, one a tenth of the page at 1
    (geometric in between)."""
    if granularity <= 0:
        return float("inf")
    return FINEST_OPEN ** min(1.0, granularity)


def rect_of(node: Node) -> Rect:
    # A container whose floats overflow it (height 0 with content below) is drawn by its
    # content; otherwise by its own box, as a person would draw it.
    r, c = node.rect, node.content
    if area(r) < 0.5 * area(c):
        return union_rect([r, c])
    return r


def segment_tree(root: Node, p: PreannotateConfig | None = None,
                 opener: Opener | None = None) -> list[Proposal]:
    """Top-level segments under `root`. `opener` (default: the rules' verdict) takes the
    open-or-keep decision for each container that is not the root."""
    p = p or PreannotateConfig()
    page = root.content
    g = min(1.0, max(0.0, p.granularity))
    # Finer: smaller parts count, large containers are opened, nested parts stay apart.
    min_area = p.min_area * (1 - 0.75 * g) * area(page)
    nest_area = p.nest_area * (1 - g)
    opened_from = open_share(g) * area(page)
    out: list[Proposal] = []

    def emit(node: Node) -> None:
        src = "landmark" if node.box.kind == "landmark" else "tree"
        out.append(Proposal(rect_of(node), node, node.all_leaves, src))

    def loose(objects: list[Box]) -> None:
        if not objects:
            return
        items = [Item(b.bbox, b.font_size, b.color, b.background, b.kind) for b in objects]
        for group in cluster(items):
            leaves = [objects[i] for i in group]
            rect = union_rect(b.bbox for b in leaves)
            if area(rect) >= min_area:
                out.append(Proposal(rect, None, leaves, "cluster"))

    def flow(kids: list[Node], objects: list[Box], depth: int) -> None:
        """Visit the parts of an opened container. Consecutive text blocks (paragraphs,
        headings, lists straight in the container, as in a plain document) are one part
        together, with the loose objects among them; any other block is a part."""
        runs: list[list[Node]] = []
        for k in sorted(kids, key=lambda k: (k.content[1], k.content[0])):
            if k.box.tag in FLOW_TAGS and runs and runs[-1][-1].box.tag in FLOW_TAGS:
                runs[-1].append(k)
            else:
                runs.append([k])
        rest = list(objects)
        for run in runs:
            # Without a paragraph it is no text: a logo heading beside a menu list.
            if len(run) < 2 or not any(k.box.tag in PROSE_TAGS for k in run):
                for k in run:
                    visit(k, depth=depth)
                continue
            rect = union_rect(rect_of(k) for k in run)
            inside = [b for b in rest if inter_area(b.bbox, rect) >= 0.5 * area(b.bbox)]
            rest = [b for b in rest if b not in inside]
            leaves = [b for k in run for b in k.all_leaves] + inside
            out.append(Proposal(union_rect([rect, *(b.bbox for b in inside)]), None, leaves,
                                "cluster"))
        loose(rest)

    def outer(node: Node, chain: list[Node]) -> Node:
        """The outermost box of the chain of lone children ending at `node` that is not
        much larger than it: a person marking the part picks the outer box (seen on dev
        pages), but not a page-sized layer that happens to hold only this part."""
        best = node
        for n in reversed(chain):
            if area(rect_of(n)) > p.chain_growth * area(rect_of(node)):
                break
            best = n
        return best

    def opens(node: Node, kids: list[Node], depth: int) -> bool:
        rule = _is_wrapper(node, kids, page, p) or (
            len(kids) >= 2 and area(rect_of(node)) >= opened_from
        )
        return rule if opener is None else opener(node, kids, page, depth, rule)

    def visit(node: Node, is_root: bool = False, chain: list[Node] | None = None,
              depth: int = 0) -> None:
        chain = chain or []
        kids = [c for c in node.children if _significant(c, min_area, p.content_share)]
        stray = list(node.leaves)
        for c in node.children:
            if c not in kids:
                stray.extend(c.all_leaves)
        if not kids:
            if is_root or opens(node, [], depth):
                loose(stray)
            else:
                emit(outer(node, chain))
            return
        if len(kids) == 1 and area(kids[0].content) >= p.chain_cover * area(node.content):
            visit(kids[0], is_root, [] if is_root else [*chain, node], depth)
            loose(stray)
            return
        if is_root or opens(node, kids, depth):
            flow(kids, stray, depth + 1)
            return
        emit(outer(node, chain))

    visit(root, is_root=True)
    # A part placed inside another one (absolutely positioned menus in a header) belongs
    # to it.
    def holds(o: Proposal, q: Proposal) -> bool:
        return (o is not q and o.source != "cluster" and area(q.rect) < area(o.rect)
                <= nest_area * area(page)
                and inter_area(q.rect, o.rect) >= p.nested * area(q.rect))

    out = [q for q in out if not any(holds(o, q) for o in out)]
    segments = [q for q in out if q.source != "cluster"]
    for q in out:
        if q.source == "cluster" and all(
            inter_area(q.rect, s.rect) <= p.loose_overlap * area(q.rect) for s in segments
        ):
            segments.append(q)
    return segments
