"""Segmentation metrics: segments matched one-to-one at an IoU threshold, BCubed over
pixels (Kiesel et al., CIKM 2020) and IoU per class.

Pixel measures flatten each segmentation into one segment id per pixel: where rectangles
overlap the smaller one wins (it is the more specific), and pixels in no segment form one
"outside" cluster on that side, so that leaving the page unsegmented is not free.
Pixels are sampled every `step` pixels in both directions; at step 4 the figures differ
from full resolution by well under 0.01 and cost 16 times less.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from .geometry import iou


@dataclass
class Segment:
    label: str
    bbox: tuple[float, float, float, float]


@dataclass
class SegmentScores:
    precision: float
    recall: float
    f1: float
    matches: list[tuple[int, int, float]] = field(default_factory=list)  # (pred, true, iou)


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def match_segments(
    pred: Sequence[Segment], true: Sequence[Segment], threshold: float = 0.5
) -> SegmentScores:
    """One-to-one matching that maximises total IoU; pairs below `threshold` do not count.

    precision: share of proposed segments an annotator keeps; recall: share of true
    segments already proposed.
    """
    if not pred or not true:
        return SegmentScores(0.0, 0.0, 0.0)
    m = np.array([[iou(p.bbox, t.bbox) for t in true] for p in pred])
    rows, cols = linear_sum_assignment(-m)
    matches = [(int(i), int(j), float(m[i, j])) for i, j in zip(rows, cols, strict=True)
               if m[i, j] >= threshold]
    p, r = len(matches) / len(pred), len(matches) / len(true)
    return SegmentScores(p, r, f1(p, r), matches)


def label_map(segments: Sequence[Segment], width: int, height: int, step: int = 4) -> np.ndarray:
    """Segment index + 1 per sampled pixel, 0 outside every segment; smaller ones on top."""
    h, w = (height + step - 1) // step, (width + step - 1) // step
    out = np.zeros((h, w), dtype=np.int32)
    order = sorted(range(len(segments)), key=lambda i: -segments[i].bbox[2] * segments[i].bbox[3])
    for i in order:
        x, y, bw, bh = segments[i].bbox
        x0, y0 = max(0, int(np.ceil(x / step))), max(0, int(np.ceil(y / step)))
        x1, y1 = min(w, int(np.ceil((x + bw) / step))), min(h, int(np.ceil((y + bh) / step)))
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = i + 1
    return out


def bcubed(
    pred: Sequence[Segment], true: Sequence[Segment], width: int, height: int, step: int = 4
) -> tuple[float, float, float]:
    """BCubed precision, recall and F1 with pixels as the items."""
    a = label_map(pred, width, height, step).ravel()
    b = label_map(true, width, height, step).ravel()
    if a.size == 0:
        return 0.0, 0.0, 0.0
    nb = len(true) + 1
    joint = np.bincount(a.astype(np.int64) * nb + b, minlength=(len(pred) + 1) * nb)
    joint = joint.reshape(len(pred) + 1, nb).astype(np.float64)
    size_a, size_b = joint.sum(axis=1), joint.sum(axis=0)
    sq = joint**2
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.nansum(sq / size_a[:, None]) / a.size
        r = np.nansum(sq / size_b[None, :]) / a.size
    return float(p), float(r), f1(float(p), float(r))


def class_iou(
    pred: Sequence[Segment], true: Sequence[Segment], width: int, height: int, step: int = 4
) -> dict[str, float]:
    """Pixel IoU of the union of each label's rectangles, for labels on either side."""
    out: dict[str, float] = {}
    for label in sorted({s.label for s in pred} | {s.label for s in true}):
        pm = label_map([s for s in pred if s.label == label], width, height, step) > 0
        tm = label_map([s for s in true if s.label == label], width, height, step) > 0
        union = np.logical_or(pm, tm).sum()
        out[label] = float(np.logical_and(pm, tm).sum() / union) if union else 0.0
    return out


def label_agreement(
    pred: Sequence[Segment], true: Sequence[Segment], matches: Sequence[tuple[int, int, float]]
) -> list[tuple[str, str]]:
    """(true label, proposed label) of every matched pair."""
    return [(true[j].label, pred[i].label) for i, j, _ in matches]
