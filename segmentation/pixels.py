"""A pixel-only look at the screenshot, after Mitsuhashi et al.: edge density finds content
the DOM does not explain (a canvas, a picture of a page), and the regularity of the
horizontal edge profile tells text lines from pictures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .geometry import Rect

CELL = 16  # px: edge density is measured on a grid of cells this size


def edge_map(gray: np.ndarray, threshold: float = 40.0) -> np.ndarray:
    """Boolean map of strong intensity steps (either direction)."""
    g = gray.astype(np.int16)
    dx = np.zeros_like(g)
    dy = np.zeros_like(g)
    dx[:, 1:] = np.abs(np.diff(g, axis=1))
    dy[1:, :] = np.abs(np.diff(g, axis=0))
    return np.maximum(dx, dy) >= threshold


def cell_density(edges: np.ndarray, cell: int = CELL) -> np.ndarray:
    """Share of edge pixels per cell (the last partial row/column is padded)."""
    h, w = edges.shape
    ph, pw = -h % cell, -w % cell
    e = np.pad(edges, ((0, ph), (0, pw)))
    return e.reshape(e.shape[0] // cell, cell, e.shape[1] // cell, cell).mean(axis=(1, 3))


def text_line_score(gray: np.ndarray) -> float:
    """0..1: how much the rows of this patch look like lines of text (a regular alternation
    of busy and quiet rows, at a line pitch of 8 to 60 px)."""
    if gray.shape[0] < 24 or gray.shape[1] < 24:
        return 0.0
    profile = edge_map(gray).mean(axis=1).astype(np.float64)
    if profile.max() <= 0.01:
        return 0.0
    p = profile - profile.mean()
    denom = float((p * p).sum())
    if denom <= 0:
        return 0.0
    ac = np.correlate(p, p, mode="full")[len(p) - 1 :] / denom
    lags = ac[8 : min(61, len(ac))]
    if lags.size == 0:
        return 0.0
    quiet = float((profile < 0.2 * profile.max()).mean())  # gaps between lines
    return float(np.clip(lags.max(), 0, 1)) * min(1.0, 2 * quiet)


def unexplained_regions(gray: np.ndarray, explained: Sequence[Rect], min_area: float,
                        density: float = 0.08, busy_share: float = 0.2,
                        text_like: float = 0.4) -> list[tuple[Rect, float]]:
    """Rectangles of busy pixels that no DOM object accounts for, each with its text-line
    score. `explained`: rectangles (screenshot pixels) the DOM accounts for. A region
    must read as text lines (score >= `text_like`) or be busy throughout like a picture
    (edge share >= `busy_share`): shadows, gradients and page decorations are neither.

    Edges are looked for at half resolution: text and pictures keep their edges there, and
    a 16,000 px page costs a quarter as much."""
    half = gray[::2, ::2]
    dens = cell_density(edge_map(half), CELL // 2)
    busy = dens >= density
    covered = np.zeros(busy.shape, dtype=np.float64)
    for x, y, w, h in explained:
        # Cells at least half inside a rectangle count as explained.
        x0, y0 = int(np.floor(x / CELL + 0.5)), int(np.floor(y / CELL + 0.5))
        x1, y1 = int(np.floor((x + w) / CELL + 0.5)), int(np.floor((y + h) / CELL + 0.5))
        covered[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = 1
    grid = busy & (covered < 0.5)
    grid = ndimage.binary_closing(grid, structure=np.ones((3, 3)))
    labels, _ = ndimage.label(grid)
    out = []
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        y0, y1 = sl[0].start * CELL, min(gray.shape[0], sl[0].stop * CELL)
        x0, x1 = sl[1].start * CELL, min(gray.shape[1], sl[1].stop * CELL)
        rect = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        # Lines, borders and shadows are no content: a region is four cells each way.
        if rect[2] < 4 * CELL or rect[3] < 4 * CELL or rect[2] * rect[3] < min_area:
            continue
        score = text_line_score(gray[y0:y1, x0:x1])
        if score >= text_like or float(dens[sl].mean()) >= busy_share:
            out.append((rect, score))
    return out
