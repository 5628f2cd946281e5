"""A team's convention from the pages it corrected: how fine its segments are, whether its
headers hold their menus, and what it calls the parts the proposal finds.

Each candidate setting proposes every learning page again and is scored by the mean segment
F1 (IoU >= 0.5, one-to-one) against the team's regions. The config's own setting stays
unless another beats it by MIN_GAIN: on a handful of pages a small difference is noise, and
a convention that flips with every page would move the proposals under the annotators.
The label map renames a proposed label where, over the matched regions, the team mostly
calls it something else. On top of the chosen setting, the open-or-keep decision is refitted
on the team's pages (split_refit.py) and the model stage's predictions are weighed
(model_use.py); each is kept only where it beats what came before by the same MIN_GAIN.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import mean
from typing import Any

from catalog.config import PreannotateConfig
from catalog.records import Annotation
from segmentation.metrics import Segment, match_segments

from ..propose.labelset import LabelSet
from ..propose.segment import Opener
from ..propose.split import learned_opener
from .model_use import ModelUse, choose_model_use
from .pages import MIN_GAIN, LearningPage, propose
from .split_refit import refit_split

__all__ = ["MIN_GAIN", "Fit", "LearningPage", "Setting", "candidates", "choose", "fit",
           "learn_labels", "propose", "truth_of"]

GRANULARITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_LABEL_PAIRS = 3  # matched regions of a label before its name is learned
MIN_LABEL_SHARE = 0.6  # of those, the share the team gives another name


@dataclass(frozen=True)
class Setting:
    granularity: float
    header_menu: bool

    def apply(self, params: PreannotateConfig) -> PreannotateConfig:
        return replace(params, granularity=self.granularity, header_menu=self.header_menu)

    @property
    def name(self) -> str:
        return f"granularity {self.granularity:g}" + (", menus apart" if self.header_menu else "")


def candidates(base: PreannotateConfig) -> list[Setting]:
    """The settings tried: each granularity with and without the menu split (from medium on,
    menus are split anyway), and the config's own."""
    out = [Setting(g, m) for g in GRANULARITIES for m in (False, True) if not (m and g >= 0.5)]
    own = Setting(base.granularity, base.header_menu)
    return out if own in out else [own, *out]


def annotation_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def truth_of(annotation: Annotation, labels: LabelSet) -> tuple[list[Segment], str]:
    """The team's regions as segments, or a reason to leave the page out."""
    if not annotation.regions:
        return [], "no regions"
    unknown = sorted({r.label for r in annotation.regions} - set(labels.regions))
    if unknown:
        return [], f"label {unknown[0]!r} is not in [labels] regions"
    return [Segment(r.label, tuple(r.bbox)) for r in annotation.regions], ""


def score_settings(pages: Sequence[LearningPage], labels: LabelSet,
                   settings: Sequence[Setting], base: PreannotateConfig
                   ) -> dict[Setting, list[float]]:
    """Segment F1 of each setting on each page (in page order)."""
    return {
        s: [match_segments(propose(p, labels, s.apply(base)), p.truth).f1 for p in pages]
        for s in settings
    }


def choose(scores: dict[Setting, list[float]], own: Setting) -> Setting:
    """The best setting on average; the config's own unless another is MIN_GAIN better."""
    best = max(scores, key=lambda s: (mean(scores[s]), -abs(s.granularity - own.granularity)))
    if mean(scores[best]) < mean(scores[own]) + MIN_GAIN:
        return own
    return best


def learn_labels(pages: Sequence[LearningPage], labels: LabelSet,
                 params: PreannotateConfig, opener: Opener | None = None) -> dict[str, str]:
    """Proposed label -> the team's, where the team mostly names a matched region otherwise."""
    pairs: dict[str, Counter[str]] = defaultdict(Counter)
    for p in pages:
        pred = propose(p, labels, params, opener)
        for i, j, _ in match_segments(pred, p.truth).matches:
            pairs[pred[i].label][p.truth[j].label] += 1
    out = {}
    for ours, theirs in sorted(pairs.items()):
        total = sum(theirs.values())
        name, count = theirs.most_common(1)[0]
        if total >= MIN_LABEL_PAIRS and name != ours and count >= MIN_LABEL_SHARE * total:
            out[ours] = name
    return out


@dataclass
class Fit:
    """What the fit learned, and the figures it learned it by."""

    setting: Setting
    label_map: dict[str, str]
    split_model: dict[str, Any] | None
    model_use: ModelUse
    figures: dict[str, Any]


def fit(pages: Sequence[LearningPage], labels: LabelSet, base: PreannotateConfig) -> Fit:
    """The setting, split decision, use of the model and label map that agree best with the
    team on these pages."""
    own = Setting(base.granularity, base.header_menu)
    scores = score_settings(pages, labels, candidates(base), base)
    chosen = choose(scores, own)
    params = chosen.apply(base)
    split_model, split_figures = refit_split(pages, labels, params, scores[chosen])
    opener = learned_opener(split_model) if split_model else None
    use, model_figures = choose_model_use(pages, labels, params, opener)
    label_map = learn_labels(pages, labels, params, opener)
    after = mean(scores[chosen])  # each step kept only where it beat the one before
    if split_model:
        after = split_figures["segment_f1_split"]
    if use.used:
        after = model_figures["segment_f1_model"]
    figures = {
        "segment_f1": {s.name: round(mean(v), 4) for s, v in scores.items()},
        "config_setting": own.name,
        "chosen": chosen.name,
        "segment_f1_before": round(mean(scores[own]), 4),
        "segment_f1_after": round(after, 4),
        **split_figures,
        **model_figures,
    }
    return Fit(chosen, label_map, split_model, use, figures)

