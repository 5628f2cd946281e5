"""The open-or-keep decision refitted on a team's corrected pages.

The shipped weights (annotate/propose/split_weights.py) were fitted on one corpus's dev
pages. A team's pages teach its own decision the same way (train_split.py: each container
the walk meets, opened or kept as the team's regions want, its features recorded), once it
has corrected MIN_SPLIT_PAGES pages. The refitted decision is kept only when, on pages it
was not fitted on (FOLDS-fold cross-validation over whole pages), its mean segment F1 beats
the chosen setting's rules by MIN_GAIN; the decision kept is then fitted on every page.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import mean
from typing import Any

import numpy as np

from catalog.config import PreannotateConfig
from segmentation.metrics import match_segments

from ..propose.labelset import LabelSet
from ..propose.split import learned_opener
from .pages import MIN_GAIN, LearningPage, propose
from .train_split import DevPage, decisions
from .train_split import fit as fit_logistic

# Corrected pages before the decision is refitted. A page gives about four decisions (173
# on Kreuzer's 38 dev pages); with 10 pages each of the 5 folds trains on 8 pages (30-odd
# decisions for 15 weights, under an L2 penalty) and is judged on 2, so the kept-or-not
# figure rests on every page once. With fewer, the figure is one page's luck.
MIN_SPLIT_PAGES = 10
FOLDS = 5


def _f1(page: LearningPage, labels: LabelSet, params: PreannotateConfig,
        model: dict[str, Any]) -> float:
    return match_segments(propose(page, labels, params, learned_opener(model)), page.truth).f1


def refit_split(pages: Sequence[LearningPage], labels: LabelSet, params: PreannotateConfig,
                rules_f1: Sequence[float]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the refitted decision or None for the rules, the figures that decided it);
    `rules_f1`: each page's segment F1 with the rules under `params`."""
    n = len(pages)
    if n < MIN_SPLIT_PAGES:
        return None, {"split": f"rules ({n} page(s); the decision is refitted from "
                               f"{MIN_SPLIT_PAGES})"}
    per_page = [decisions(DevPage(p.page_id, p.boxes, p.truth, p.gray), params) for p in pages]
    y_all = [v for _, ys in per_page for v in ys]
    if len(set(y_all)) < 2:
        return None, {"split": "rules (the team's pages never ask for another decision)"}

    def stacked(idx: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([v for k in idx for v in per_page[k][0]], dtype=np.float64)
        y = np.array([v for k in idx for v in per_page[k][1]], dtype=np.float64)
        return x.reshape(len(y), -1), y

    cv = list(rules_f1)
    for i in range(FOLDS):
        held = list(range(i, n, FOLDS))
        x, y = stacked([k for k in range(n) if k not in held])
        if len(set(y.tolist())) < 2:
            continue  # nothing to learn from this fold: its pages keep the rules' figure
        model = fit_logistic(x, y)
        for k in held:
            cv[k] = _f1(pages[k], labels, params, model)
    gain = mean(cv) - mean(rules_f1)
    kept = gain >= MIN_GAIN
    figures = {
        "split": "refitted" if kept else "rules",
        "split_decisions": len(y_all),
        "segment_f1_rules": round(mean(rules_f1), 4),
        "segment_f1_split": round(mean(cv), 4),  # cross-validated
    }
    if not kept:
        return None, figures
    model = fit_logistic(*stacked(range(n)))
    model["pages"] = n
    return model, figures
