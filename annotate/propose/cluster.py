"""Adjacency-guided clustering of visual objects, in the spirit of Cortex (Bajammal &
Mesbah): objects are joined to the neighbours they touch visually, each link weighs the
gap between them against their size and how much their looks differ (font, colour,
background), and the links that are much longer than the page's usual link are cut.

There is no cluster count and no distance to set: the cut comes from the distribution of
link weights of the page itself (a robust outlier test on the minimum spanning tree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from segmentation.geometry import Rect


@dataclass
class Item:
    rect: Rect
    font_size: float = 0.0
    color: str = ""
    background: str = ""
    kind: str = "text"


def _gaps(rects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x0, y0 = rects[:, 0], rects[:, 1]
    x1, y1 = x0 + rects[:, 2], y0 + rects[:, 3]
    dx = np.maximum(0, np.maximum(x0[:, None], x0[None, :]) - np.minimum(x1[:, None], x1[None, :]))
    dy = np.maximum(0, np.maximum(y0[:, None], y0[None, :]) - np.minimum(y1[:, None], y1[None, :]))
    return dx, dy


def link_weights(items: Sequence[Item]) -> np.ndarray:
    """Dense matrix of link weights: gap over object scale, raised where styles differ."""
    rects = np.array([it.rect for it in items], dtype=np.float64)
    dx, dy = _gaps(rects)
    # A gap counts against the size of the text around it: a 20 px gap splits 10 px text,
    # not 40 px headlines.
    scale = np.array([max(it.font_size, 8.0) if it.kind == "text" else 16.0 for it in items])
    ref = np.minimum(scale[:, None], scale[None, :])
    dist = np.hypot(dx, dy) / ref
    font = np.array([it.font_size for it in items])
    style = (np.abs(font[:, None] - font[None, :]) / np.maximum(ref, 1) > 0.25).astype(float)
    bg = np.array([hash(it.background) for it in items])
    style += (bg[:, None] != bg[None, :]).astype(float) * 3.0
    col = np.array([hash(it.color) for it in items])
    style += (col[:, None] != col[None, :]).astype(float) * 0.5
    return dist + style


def neighbour_graph(weights: np.ndarray, items: Sequence[Item], k: int = 6) -> np.ndarray:
    """Keep each object's k nearest links (by gap): its visual neighbours."""
    n = len(items)
    rects = np.array([it.rect for it in items], dtype=np.float64)
    dx, dy = _gaps(rects)
    gap = np.hypot(dx, dy)
    np.fill_diagonal(gap, np.inf)
    keep = np.zeros((n, n), dtype=bool)
    order = np.argsort(gap, axis=1)[:, : min(k, n - 1)]
    rows = np.repeat(np.arange(n), order.shape[1])
    keep[rows, order.ravel()] = True
    keep |= keep.T
    return np.where(keep, weights, 0.0)


def cluster(items: Sequence[Item], k: int = 6) -> list[list[int]]:
    """Groups of item indices, largest first; a single item is its own group."""
    n = len(items)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    w = link_weights(items)
    graph = neighbour_graph(w, items, k)
    # Zero-weight links (touching, same look) must survive as edges in the sparse graph.
    graph = np.where(graph > 0, graph + 1e-3, 0.0)
    mst = minimum_spanning_tree(coo_matrix(graph)).tocoo()
    weights = mst.data
    if weights.size:
        med = float(np.median(weights))
        mad = float(np.median(np.abs(weights - med))) or 0.5
        cut = med + 3.0 * 1.4826 * mad
        keep = weights <= max(cut, 1.5)
        mst = coo_matrix((np.ones(keep.sum()), (mst.row[keep], mst.col[keep])), shape=(n, n))
    _, labels = connected_components(mst, directed=False)
    groups: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(int(lab), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))
