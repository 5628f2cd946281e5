"""Rectangles as (x, y, w, h) tuples in image pixels, and the few operations on them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Rect = tuple[float, float, float, float]


def area(r: Sequence[float]) -> float:
    return max(0.0, r[2]) * max(0.0, r[3])


def intersection(a: Sequence[float], b: Sequence[float]) -> Rect:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


def inter_area(a: Sequence[float], b: Sequence[float]) -> float:
    return area(intersection(a, b))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    inter = inter_area(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def union_rect(rects: Iterable[Sequence[float]]) -> Rect:
    rects = list(rects)
    if not rects:
        raise ValueError("union of no rectangles")
    x0 = min(r[0] for r in rects)
    y0 = min(r[1] for r in rects)
    x1 = max(r[0] + r[2] for r in rects)
    y1 = max(r[1] + r[3] for r in rects)
    return (x0, y0, x1 - x0, y1 - y0)


def contains(outer: Sequence[float], inner: Sequence[float], tol: float = 0.0) -> bool:
    """inner lies in outer, allowing `tol` pixels of overhang on each side."""
    return (
        inner[0] >= outer[0] - tol
        and inner[1] >= outer[1] - tol
        and inner[0] + inner[2] <= outer[0] + outer[2] + tol
        and inner[1] + inner[3] <= outer[1] + outer[3] + tol
    )


def coverage(of: Sequence[float], by: Sequence[float]) -> float:
    """Share of `of`'s area inside `by`."""
    a = area(of)
    return inter_area(of, by) / a if a > 0 else 0.0


def gap(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Horizontal and vertical distance between two rectangles (0 where they overlap)."""
    dx = max(0.0, max(a[0], b[0]) - min(a[0] + a[2], b[0] + b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3]))
    return dx, dy


def overlap_1d(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def clip(r: Sequence[float], width: float, height: float) -> Rect:
    x0, y0 = max(0.0, r[0]), max(0.0, r[1])
    x1, y1 = min(width, r[0] + r[2]), min(height, r[1] + r[3])
    return (x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))
