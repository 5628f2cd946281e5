"""The model's regions beside the DOM's: where the DOM explains little of a page, and how
the two are combined.

How much of a page the DOM explains is measured on its pixels: of the screenshot's inked
pixels (an edge to a neighbour: text, rules, pictures; not flat backgrounds), the share
inside a visible text, control or picture box (a picture as large as a backdrop explains
nothing of what is drawn on it). A page drawn on a canvas, or a picture of text, scores
low; an ordinary page near 1.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from catalog.config import PreannotateConfig
from catalog.records import Annotation, Region
from segmentation.geometry import area, inter_area

from .boxes import PageBoxes
from .labelset import LabelSet
from .tree import BACKDROP

STEP = 2  # coverage is measured on every other pixel: the share, not the outline, matters
EDGE = 24  # grey levels between neighbours that make a pixel inked
FILL_OVERLAP = 0.3  # a model region overlapping a proposed one more is already proposed


def inked(gray: np.ndarray) -> np.ndarray:
    """Pixels (on the STEP grid) that differ from a neighbour by EDGE grey levels."""
    g = gray[::STEP, ::STEP].astype(np.int16)
    out = np.zeros(g.shape, bool)
    out[:, 1:] |= np.abs(np.diff(g, axis=1)) > EDGE
    out[1:, :] |= np.abs(np.diff(g, axis=0)) > EDGE
    return out


def dom_coverage(page: PageBoxes, gray: np.ndarray | None) -> float:
    """Share of the screenshot's inked pixels inside visible DOM objects (1.0 without a
    screenshot, or when nothing is inked: then the DOM is all there is to go by)."""
    if gray is None or gray.shape != (page.height, page.width):
        return 1.0
    ink = inked(gray)
    total = int(ink.sum())
    if total == 0:
        return 1.0
    covered = np.zeros(ink.shape, bool)
    backdrop = BACKDROP * page.width * page.height
    for b in page.boxes:
        if not b.visible or b.kind not in ("text", "interactive", "image"):
            continue
        if b.kind == "image" and b.area > backdrop:
            continue
        # One grid cell of margin: a box's outline is inked on its outer side too.
        x, y, w, h = b.bbox
        x0, y0 = max(0, int(x) // STEP - 1), max(0, int(y) // STEP - 1)
        x1, y1 = int(np.ceil((x + w) / STEP)) + 1, int(np.ceil((y + h) / STEP)) + 1
        covered[y0:y1, x0:x1] = True
    return round(float((ink & covered).sum()) / total, 4)


def model_regions(prediction: Annotation, labels: LabelSet) -> list[Region]:
    """The model's regions in the label set, marked as the model's."""
    return [Region(labels.region_label(r.label), [round(float(v), 1) for v in r.bbox],
                   round(float(r.score), 3), "model") for r in prediction.regions]


def combine(regions: list[Region], prediction: Annotation, coverage: float,
            labels: LabelSet, params: PreannotateConfig) -> tuple[list[Region], str]:
    """The page's regions with the model's prediction taken in, and how it was: "model"
    (the DOM covers less than params.model_coverage: the model's regions), "fill" (the
    model's regions no proposed region covers, added) or "" (the DOM's alone)."""
    theirs = model_regions(prediction, labels)
    if coverage < params.model_coverage and theirs:
        return theirs, "model"
    if params.model_fill:
        extra = [r for r in theirs if all(
            inter_area(r.bbox, q.bbox) <= FILL_OVERLAP * area(r.bbox) for q in regions)]
        if extra:
            return [*regions, *extra], "fill"
    return [replace(r) for r in regions], ""
