"""Confusion matrices and what is read from them: per-class IoU and pixel accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .release import IGNORE


class Confusion:
    """Counts of (true, predicted) class pairs over pixels, ignored pixels left out."""

    def __init__(self, n: int):
        self.n = n
        self.m = np.zeros((n, n), np.int64)

    def add(self, truth: np.ndarray, pred: np.ndarray) -> None:
        keep = truth != IGNORE
        t = truth[keep].astype(np.int64)
        p = pred[keep].astype(np.int64)
        self.m += np.bincount(t * self.n + p, minlength=self.n * self.n).reshape(self.n, self.n)

    def iou(self) -> list[float | None]:
        """IoU per class; None for a class neither in the truth nor predicted."""
        tp = np.diag(self.m).astype(np.float64)
        union = self.m.sum(0) + self.m.sum(1) - tp
        return [float(tp[i] / union[i]) if union[i] else None for i in range(self.n)]

    def pixel_accuracy(self) -> float:
        total = self.m.sum()
        return float(np.trace(self.m) / total) if total else 0.0

    def support(self) -> list[int]:
        return [int(v) for v in self.m.sum(1)]


def mean_iou(ious: Sequence[float | None], skip_background: bool = True) -> float:
    vals = [v for i, v in enumerate(ious) if v is not None and (i or not skip_background)]
    return float(np.mean(vals)) if vals else 0.0


def report(conf: Confusion, names: Sequence[str]) -> dict:
    """Per-class IoU, pixel accuracy and pixel counts, as written into model.json."""
    ious = conf.iou()
    return {
        "iou": {n: (None if v is None else round(v, 4)) for n, v in zip(names, ious, strict=True)},
        "mean_iou": round(mean_iou(ious), 4),
        "pixel_accuracy": round(conf.pixel_accuracy(), 4),
        "pixels": dict(zip(names, conf.support(), strict=True)),
    }
