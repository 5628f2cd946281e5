"""Layout signature of a page from its DOM boxes, for the "same template" relation.

After Mitsuhashi et al.: the page is laid on a coarse grid and each cell says what mostly
covers it: text, image, interactive or a mix. Pages built on one template (same header,
navigation column, sidebar and footer) share most cells whatever their article says.
Cells are square (page width / columns) and counted from the top, so a header lines up
across pages of different lengths; the grid stops after `rows` rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

KINDS = ("text", "image", "interactive")
CATEGORIES = ("text", "image", "interactive", "mixed")
# A kind that covers at least this share of a cell's content makes the cell that kind;
# below, the cell is "mixed". A cell with content on less than MIN_COVER of its area is empty.
DOMINANT = 0.6
MIN_COVER = 0.05


def coverage(
    boxes: Iterable[dict[str, Any]], width: int, cols: int, rows: int
) -> np.ndarray:
    """Fraction of each cell's area covered by each kind, shape (rows, cols, 3)."""
    cover = np.zeros((rows, cols, len(KINDS)), dtype=np.float64)
    if width <= 0 or cols <= 0 or rows <= 0:
        return cover
    kept = [(KINDS.index(b["kind"]), *b["bbox"]) for b in boxes
            if b.get("kind") in KINDS and b.get("visible", True)]
    if not kept:
        return cover
    arr = np.asarray(kept, dtype=np.float64)
    kind, x, y, w, h = arr.T
    cell = width / cols
    edges_x = np.arange(cols + 1) * cell
    edges_y = np.arange(rows + 1) * cell
    # Overlap of every box with every column and every row; a cell's share is their product.
    ox = np.clip(np.minimum(edges_x[1:], (x + w)[:, None]) - np.maximum(edges_x[:-1], x[:, None]),
                 0, None)
    oy = np.clip(np.minimum(edges_y[1:], (y + h)[:, None]) - np.maximum(edges_y[:-1], y[:, None]),
                 0, None)
    for k in range(len(KINDS)):
        sel = kind == k
        if sel.any():
            cover[:, :, k] = oy[sel].T @ ox[sel] / (cell * cell)
    return np.clip(cover, 0.0, 1.0)


def categorise(cover: np.ndarray) -> np.ndarray:
    """Category index per cell (0 text, 1 image, 2 interactive, 3 mixed) or -1 for empty."""
    total = cover.sum(axis=2)
    share = cover / np.maximum(total, 1e-9)[:, :, None]
    best = share.argmax(axis=2)
    cat = np.where(share.max(axis=2) >= DOMINANT, best, 3)
    return np.where(total >= MIN_COVER, cat, -1)


def layout_vector(
    boxes: Sequence[dict[str, Any]], width: int, cols: int, rows: int
) -> np.ndarray:
    """One-hot cell categories flattened to a vector of rows x cols x 4 (empty cells: 0)."""
    cat = categorise(coverage(boxes, width, cols, rows))
    vec = np.zeros((rows, cols, len(CATEGORIES)), dtype=np.float32)
    r, c = np.nonzero(cat >= 0)
    vec[r, c, cat[r, c]] = 1.0
    return vec.ravel()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of a with every row of b (zero rows give 0)."""
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.where(na == 0, 1, na)) @ (b / np.where(nb == 0, 1, nb)).T
