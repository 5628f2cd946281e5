"""Precision and recall of a pairwise duplicate decision against labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PR:
    threshold: float
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def precision_recall(predicted: Sequence[bool], truth: Sequence[bool], threshold: float = 0.0) -> PR:
    """Counts for the duplicate class (truth True: a duplicate pair)."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} labels")
    tp = sum(1 for p, t in zip(predicted, truth, strict=True) if p and t)
    fp = sum(1 for p, t in zip(predicted, truth, strict=True) if p and not t)
    fn = sum(1 for p, t in zip(predicted, truth, strict=True) if not p and t)
    return PR(threshold, tp, fp, fn)


def sweep(distances: Sequence[float], truth: Sequence[bool], thresholds: Sequence[float]) -> list[PR]:
    """PR of "duplicate when distance <= t" for each t."""
    return [precision_recall([d <= t for d in distances], truth, t) for t in thresholds]


def best_threshold(rows: Sequence[PR], min_precision: float) -> PR | None:
    """The threshold with the highest recall among those that keep the precision.

    Ties go to the smaller threshold, the safer one.
    """
    ok = [r for r in rows if r.precision >= min_precision]
    if not ok:
        return None
    return max(ok, key=lambda r: (r.recall, -r.threshold))
