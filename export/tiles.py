"""Fixed-size square tiles over a page, and the page size after an optional resize.

Tiles step by their own size and the last row and column are pulled back to end at the
page's edge, so every tile lies on the page (overlapping the one before) and none needs
padding unless the page is smaller than a tile; then the tile is padded (image black, mask
255 = ignore).
"""

from __future__ import annotations


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


def resized_size(width: int, height: int, resize_width: int) -> tuple[int, int]:
    """Page size after scaling to resize_width (0: unchanged), aspect ratio kept."""
    if resize_width <= 0 or resize_width == width:
        return width, height
    return resize_width, max(1, round(height * resize_width / width))
