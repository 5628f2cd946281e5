"""Whether, and how, a team's proposals take in the model stage's predictions.

Each way of using the model (model_regions.combine: the model's regions on pages whose DOM
covers less than a share of their ink; the model's regions added where nothing was
proposed) is scored by mean segment F1 on the team's pages, next to the DOM alone; a use
is kept only where it beats the DOM alone by MIN_GAIN, so a team whose pages the model
reads worse than the DOM never gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import mean
from typing import Any

from catalog.config import PreannotateConfig
from segmentation.metrics import Segment, match_segments

from ..propose.labelset import LabelSet
from ..propose.model_regions import combine, dom_coverage
from ..propose.regions import propose_regions
from ..propose.segment import Opener
from .pages import MIN_GAIN, LearningPage

COVERAGES = (0.3, 0.5, 0.7, 0.9)  # DOM coverage below which a page takes the model's regions
EVERY_PAGE = 2.0  # a coverage no page is above


@dataclass(frozen=True)
class ModelUse:
    coverage: float = 0.0  # pages whose DOM covers less of their ink take the model's regions
    fill: bool = False  # the model's regions nothing proposed covers are added

    @property
    def used(self) -> bool:
        return self.coverage > 0 or self.fill

    @property
    def name(self) -> str:
        if not self.used:
            return "DOM alone"
        if self.fill:
            return "model fills what the DOM left"
        if self.coverage >= EVERY_PAGE:
            return "model on every page"
        return f"model where the DOM covers < {self.coverage:g}"

    def apply(self, params: PreannotateConfig) -> PreannotateConfig:
        return replace(params, model_coverage=self.coverage, model_fill=self.fill)


USES = (ModelUse(), *(ModelUse(c) for c in COVERAGES), ModelUse(EVERY_PAGE), ModelUse(0, True))


def score_uses(pages: Sequence[LearningPage], labels: LabelSet, params: PreannotateConfig,
               opener: Opener | None = None, uses: Sequence[ModelUse] = USES
               ) -> dict[ModelUse, list[float]]:
    """Segment F1 of each use on each page (a page without a prediction: the DOM alone)."""
    out: dict[ModelUse, list[float]] = {u: [] for u in uses}
    for p in pages:
        regions = propose_regions(p.boxes, labels, params, p.gray, opener)
        coverage = dom_coverage(p.boxes, p.gray) if p.prediction is not None else 1.0
        for u in uses:
            if p.prediction is None:
                mine = regions
            else:
                mine, _ = combine(regions, p.prediction, coverage, labels, u.apply(params))
            pred = [Segment(r.label, tuple(r.bbox)) for r in mine]
            out[u].append(match_segments(pred, p.truth).f1)
    return out


def choose_model_use(pages: Sequence[LearningPage], labels: LabelSet,
                     params: PreannotateConfig, opener: Opener | None = None
                     ) -> tuple[ModelUse, dict[str, Any]]:
    """The use of the model that agrees best with the team (the DOM alone unless one beats
    it by MIN_GAIN), and the figures; nothing to weigh when no page has a prediction."""
    if not any(p.prediction is not None for p in pages):
        return ModelUse(), {}
    scores = score_uses(pages, labels, params, opener)
    alone = ModelUse()
    best = max(scores, key=lambda u: (mean(scores[u]), not u.used))
    chosen = best if mean(scores[best]) >= mean(scores[alone]) + MIN_GAIN else alone
    return chosen, {
        "model_segment_f1": {u.name: round(mean(v), 4) for u, v in scores.items()},
        "model_use": chosen.name,
        "segment_f1_model": round(mean(scores[chosen]), 4),
    }
