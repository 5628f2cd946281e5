"""A corrected page as the learning sees it, and the proposal of it under a setting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catalog.config import PreannotateConfig
from catalog.records import Annotation
from segmentation.metrics import Segment

from ..propose.boxes import PageBoxes
from ..propose.labelset import LabelSet
from ..propose.regions import propose_regions
from ..propose.segment import Opener

# Mean segment F1 a change must add to the convention to be kept: on a handful of pages a
# smaller difference is noise, and a convention that flips with every page would move the
# proposals under the annotators.
MIN_GAIN = 0.01


@dataclass
class LearningPage:
    """One corrected page as the fit sees it."""

    page_id: str
    boxes: PageBoxes
    gray: np.ndarray | None  # the screenshot, for the pixel check (None: without it)
    truth: list[Segment]
    digest: str  # SHA-256 of its annotation.json: what it was learned from
    prediction: Annotation | None = None  # the model stage's, when a model is weighed


def propose(page: LearningPage, labels: LabelSet, params: PreannotateConfig,
            opener: Opener | None = None) -> list[Segment]:
    regions = propose_regions(page.boxes, labels, params, page.gray, opener)
    return [Segment(r.label, tuple(r.bbox)) for r in regions]
