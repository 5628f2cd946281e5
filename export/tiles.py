"""Fixed-size square tiles over a page, as windows, and the page size after a resize.

Tiles step by their own size and the last row and column are pulled back to end at the
page's edge, so every tile lies on the page (overlapping the one before) and none needs
padding unless the page is smaller than a tile; then the tile is padded (image black, mask
255 = ignore) to size x size, below and right of its window.

A tile is a window `[x, y, w, h]` over its page's image and mask: the loader crops it
(`tiles/metadata.jsonl` lists them). Tile pixel files are written only on request.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from .masks import IGNORE


def origins(length: int, tile: int) -> list[int]:
    if tile <= 0:
        raise ValueError(f"tile size must be positive, not {tile}")
    if length <= tile:
        return [0]
    out = list(range(0, length - tile, tile))
    out.append(length - tile)
    return out


def tile_windows(width: int, height: int, tile: int) -> list[tuple[int, int]]:
    """(x, y) of each tile's top-left corner, row by row."""
    return [(x, y) for y in origins(height, tile) for x in origins(width, tile)]


def windows(width: int, height: int, tile: int) -> list[tuple[int, int, int, int]]:
    """[x, y, w, h] of each tile's window on the page, row by row: w and h are the tile
    size, or the page's where it is smaller (the tile is padded beyond)."""
    w, h = min(width, tile), min(height, tile)
    return [(x, y, w, h) for x, y in tile_windows(width, height, tile)]


def _bands(length: int, tile: int) -> list[int]:
    """Every place a window starts or ends along one axis, 0 and `length` included."""
    return sorted({0, length, *(v for o in origins(length, tile) for v in (o, min(o + tile,
                                                                            length)))})


def window_histograms(
    sem: np.ndarray, tile: int, histogram
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Pixels per class id of the whole page and of each window's tile (in `windows`
    order, padding counted as IGNORE), from one pass over the page.

    The windows' edges cut the page into cells; each cell is counted once by
    `histogram` (a (h, w) uint8 array -> 256 counts) and a window's counts are the sum
    of the cells it covers, so overlapping windows cost nothing more.
    """
    height, width = sem.shape
    xs, ys = _bands(width, tile), _bands(height, tile)
    cells = np.zeros((len(ys) - 1, len(xs) - 1, 256), np.int64)
    for i, (y0, y1) in enumerate(pairwise(ys)):
        for j, (x0, x1) in enumerate(pairwise(xs)):
            cells[i, j] = histogram(sem[y0:y1, x0:x1])
    page = cells.sum(axis=(0, 1))
    out = []
    for x, y, w, h in windows(width, height, tile):
        i0, i1 = ys.index(y), ys.index(y + h)
        j0, j1 = xs.index(x), xs.index(x + w)
        counts = cells[i0:i1, j0:j1].sum(axis=(0, 1))
        counts[IGNORE] += tile * tile - w * h
        out.append(counts)
    return page, out


def crop_window(pixels: np.ndarray, window: list[int] | tuple[int, ...], size: int,
                fill: int) -> np.ndarray:
    """The tile of a window: the page's pixels inside it, padded with `fill` to size x size
    where the window is smaller (the page is)."""
    x, y, w, h = window
    part = pixels[y : y + h, x : x + w]
    if part.shape[:2] == (size, size):
        return part
    out = np.full((size, size, *pixels.shape[2:]), fill, pixels.dtype)
    out[:h, :w] = part
    return out


def histogram_json(counts: np.ndarray) -> list[list[int]]:
    """Pixels per class id as a tile's metadata row holds them: [id, pixels] of each id
    present, by id (one shape for every row, so table readers such as `datasets` take it)."""
    return [[i, int(counts[i])] for i in np.flatnonzero(counts).tolist()]


def resized_size(width: int, height: int, resize_width: int) -> tuple[int, int]:
    """Page size after scaling to resize_width (0: unchanged), aspect ratio kept."""
    if resize_width <= 0 or resize_width == width:
        return width, height
    return resize_width, max(1, round(height * resize_width / width))
