"""Pages at the working width, and the random crops the loop trains on.

Every page is scaled once to the working width (area filter for pixels, the class covering
most of a pixel for targets) and kept as uint8 (`pagecache` reads them); an epoch is a list of crops drawn from a generator
seeded by (seed, epoch), so a resumed run draws exactly the crops an uninterrupted one
would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .release import IGNORE, Classes, PageRef, read_page, region_target


@dataclass
class ScaledPage:
    page_id: str
    site: str
    rgb: np.ndarray  # (h, width, 3) uint8
    elements: np.ndarray  # (h, width) uint8, 255 ignore
    regions: np.ndarray


def scaled_size(width: int, height: int, working: int) -> tuple[int, int]:
    return working, max(1, round(height * working / width))


def scale_rgb(rgb: np.ndarray, working: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    tw, th = scaled_size(w, h, working)
    if (tw, th) == (w, h):
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if tw < w else cv2.INTER_LINEAR
    return cv2.resize(rgb, (tw, th), interpolation=interp)


def scale_labels(labels: np.ndarray, working: int) -> np.ndarray:
    """Each scaled pixel takes the class covering most of its area. Nearest-neighbour
    sampling would take the top-left source pixel of each cell: boundaries a pixel or
    two off from the image's (area-filtered) ones, which costs thin text lines their IoU
    when predictions are brought back to the page's size."""
    h, w = labels.shape
    tw, th = scaled_size(w, h, working)
    if (tw, th) == (w, h):
        return labels.copy()
    if tw > w:
        return cv2.resize(labels, (tw, th), interpolation=cv2.INTER_NEAREST)
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    if len(present) == 1:
        return np.full((th, tw), present[0], np.uint8)
    best = np.full((th, tw), -1.0, np.float32)
    out = np.zeros((th, tw), np.uint8)
    for c in present:
        share = cv2.resize((labels == c).astype(np.float32), (tw, th),
                           interpolation=cv2.INTER_AREA)
        win = share > best
        out[win] = c
        best[win] = share[win]
    return out


def read_scaled(page: PageRef, classes: Classes, working: int) -> ScaledPage:
    """One page's pixels and both heads' targets at the working width; a pixel the
    release ignores is ignored by both heads."""
    rgb, sem = read_page(page)
    elements = scale_labels(classes.element_lut()[sem], working)
    # Drawn at the working size: drawing them at the page's size and scaling the result
    # down costs ten times more for the same pixels.
    regions = region_target(page, classes, scaled_size(page.width, page.height, working))
    regions[elements == IGNORE] = IGNORE
    return ScaledPage(page.page_id, page.site, scale_rgb(rgb, working), elements, regions)


def pixel_counts(targets: Sequence[np.ndarray], n: int) -> list[int]:
    counts = np.zeros(n, np.int64)
    for t in targets:
        counts += np.bincount(t[t != IGNORE].ravel(), minlength=n)[:n]
    return [int(c) for c in counts]


def class_weights(counts: Sequence[int], cap: float = 10.0) -> list[float]:
    """Square-root inverse frequency, relative to the median present class and capped, so
    that rare classes (interactive, advertisement) count without drowning the rest."""
    n = len(counts)
    counts = np.asarray(counts, np.float64)
    present = counts > 0
    if not present.any():
        return [1.0] * n
    freq = counts / counts.sum()
    ref = float(np.median(freq[present]))
    w = np.where(present, np.sqrt(ref / np.maximum(freq, 1e-12)), 1.0)
    return [float(v) for v in np.clip(w, 1.0 / cap, cap)]


def crop_plan(pages: Sequence[ScaledPage], crop: int, seed: int, epoch: int) -> list[tuple]:
    """The crops of one epoch, shuffled: (page index, top) pairs, about one crop per
    `crop` rows of each page so that long pages weigh by their length.

    Tops are drawn half a crop past either end and clamped: drawn only within the page,
    row 0 would be in a crop only when the top is exactly 0, and headers and footers
    would hardly be seen."""
    g = np.random.default_rng([seed, epoch])
    plan = []
    for i, p in enumerate(pages):
        h = p.rgb.shape[0]
        n = max(1, math.ceil(h / crop))
        last = max(0, h - crop)
        tops = np.clip(g.integers(-(crop // 2), last + crop // 2 + 1, size=n), 0, last)
        plan += [(i, int(t)) for t in tops]
    order = g.permutation(len(plan))
    return [plan[k] for k in order]


def make_batch(pages: Sequence[ScaledPage], items: Sequence[tuple], crop: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 RGB (N, crop, W, 3) and targets (N, crop, W); a page shorter than the crop is
    padded with white and ignored targets. (No torch here: the workers that read pages
    import this module, and need not load torch.)"""
    width = pages[0].rgb.shape[1]
    rgb = np.full((len(items), crop, width, 3), 255, np.uint8)
    el = np.full((len(items), crop, width), IGNORE, np.uint8)
    rg = np.full((len(items), crop, width), IGNORE, np.uint8)
    for k, (i, top) in enumerate(items):
        p = pages[i]
        part = slice(top, top + crop)
        h = p.rgb[part].shape[0]
        rgb[k, :h] = p.rgb[part]
        el[k, :h] = p.elements[part]
        rg[k, :h] = p.regions[part]
    return rgb, el, rg
