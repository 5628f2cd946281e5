"""A learned open-or-keep decision for the containers of the block tree.

segment_tree() walks the page from the outside in and, at each container, either keeps it
as one segment or opens it into its parts. Its rules (_is_wrapper) get the layout right on
most pages but miss where people draw their blocks coarser or finer than the DOM suggests
(rows of columns, stacked blocks, pages whose truth is one block). This module scores the
same decision with a logistic regression over a few features of the container and its
children, the rules' verdict among them, so that a model can learn where to overrule them.

The weights live in split_weights.py, written by `python -m annotate.learn.train_split` from the
dev pages of the Kreuzer corpus only; nothing is downloaded or learned at run time. Fitted
on those 38 pages the model does not beat the rules (README, "Pre-annotation and its
quality"), so it is opt-in: propose_regions(..., opener=learned_opener()) or
`python -m annotate evaluate --learned-split`. More annotated pages are what it lacks:
`python -m annotate learn` refits it on a team's own corrected pages (learn/split_refit.py)
and the convention carries it where it beats the team's granularity alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from segmentation.geometry import Rect, area, overlap_1d

from .classify import hinted_label, link_share
from .segment import Opener, is_band, rect_of
from .tree import Node

FEATURES = (
    "rule",  # the rules' verdict: 1 = open
    "height_share",  # of the page's content height
    "width_share",
    "area_share",  # square root of the share of the page's content area
    "touches_top",
    "touches_bottom",
    "kids",  # log(1 + number of significant children)
    "has_band",  # a child runs across the container (header, menu bar, footer)
    "largest_kid",  # share of the container's content in its largest child
    "columns",  # share of child pairs side by side
    "kid_cover",  # share of the container's content area inside its children
    "text_density",  # characters per 1,000 px² of content
    "link_share",
    "named",  # a landmark, ARIA role or telling id/class on the container
    "depth",  # containers opened above it
)


def _pairs_side_by_side(kids: Sequence[Node]) -> float:
    """Share of pairs of children that sit beside each other (their vertical spans overlap
    by half the shorter one) rather than one above the other."""
    n = len(kids)
    if n < 2:
        return 0.0
    side = total = 0
    for i in range(n):
        a = kids[i].content
        for j in range(i + 1, n):
            b = kids[j].content
            total += 1
            if overlap_1d(a[1], a[1] + a[3], b[1], b[1] + b[3]) >= 0.5 * min(a[3], b[3]):
                side += 1
    return side / total


def features(node: Node, kids: Sequence[Node], page: Rect, depth: int,
             rule: bool) -> list[float]:
    """The FEATURES of one container, in order."""
    c, r = node.content, rect_of(node)
    tol = max(10.0, 0.01 * page[3])
    page_area = max(1.0, area(page))
    inner = max(1.0, area(c))
    chars = sum(len(b.text) for b in node.all_leaves if b.kind == "text")
    return [
        float(rule),
        c[3] / max(1.0, page[3]),
        max(r[2], c[2]) / max(1.0, page[2]),
        math.sqrt(min(1.0, area(r) / page_area)),
        float(c[1] <= page[1] + tol),
        float(c[1] + c[3] >= page[1] + page[3] - tol),
        math.log1p(len(kids)),
        float(any(is_band(k, node) for k in kids)),
        max((area(k.content) for k in kids), default=0.0) / inner,
        _pairs_side_by_side(kids),
        min(1.0, sum(area(k.content) for k in kids) / inner),
        min(10.0, 1000.0 * chars / inner),
        link_share(node.all_leaves),
        float(bool(hinted_label([node.box]))),
        float(depth),
    ]


def probability(x: Sequence[float], model: Mapping[str, Any]) -> float:
    """P(open) under a logistic model {"features", "mean", "scale", "weights", "bias"}."""
    z = float(model["bias"])
    for v, m, s, w in zip(x, model["mean"], model["scale"], model["weights"], strict=True):
        z += w * (v - m) / s
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def learned_opener(model: Mapping[str, Any] | None = None) -> Opener:
    """An Opener for segment_tree() that follows the model (default: the shipped one)."""
    if model is None:
        from .split_weights import MODEL

        model = MODEL
    if tuple(model["features"]) != FEATURES:
        raise ValueError("split model was trained on other features: run "
                         "`python -m annotate.learn.train_split` again")
    threshold = float(model.get("threshold", 0.5))

    def opener(node: Node, kids: list[Node], page: Rect, depth: int, rule: bool) -> bool:
        return probability(features(node, kids, page, depth, rule), model) >= threshold

    return opener
