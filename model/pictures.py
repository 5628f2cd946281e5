"""Picture boxes: a large area the network calls image is cut back to the boxes of the
picture-like ink inside it.

The DOM marks a picture as the box of its <img>. The network, seeing a framed figure
(picture, caption and the white between them inside a thin outline, as gimp-help draws
every figure), paints the whole frame image, and a column of such figures as one blob. The
pixels show where the picture is: the ink that stands out from the paper around the blob
and forms a block at least `least` pixels high and wide and somewhere more than 2 pixels
thick. A caption line and a frame's outline are ink too, but no block; they stay out, and
the pixels they held go to the class the network ranked next. Blocks with only paper
between them (the panels of one plot) make one box; blocks with other ink between them (a
caption, a paragraph) stay separate pictures.

The settings were chosen on sites that neither trained the network nor are val sites: with
m0011 (trained on web-corpus v0003) on statsmodels' and astropy's pages (230) and with m0009
(v0002) on 200 pages of Wireshark, GTK 3 and GRASS, image IoU at the working width rose
from 0.430 to 0.520 and from 0.429 to 0.549, text and interactive unchanged; on 150 of
m0011's training pages, 0.712 to 0.715. See README "The model".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PictureBoxes:
    min_height: int = 24  # areas fewer rows tall than this are left as the network drew them
    ink: int = 8  # a pixel is ink where a channel differs from the paper's by more than this
    close: int = 5  # ink this close together (pixels) forms one block
    least: int = 12  # a block narrower or lower than this is not a picture (a text line)
    inkshare: float = 0.10  # two blocks are one picture when the space between them holds
    # at most this share of other ink

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> PictureBoxes:
        return cls(**d)


def paper_colour(rgb: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The most common colour (to 1/32 of each channel) on the 2-pixel ring just outside
    `inside`; the mean of the pixels of that colour."""
    ring = cv2.dilate(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ring &= ~inside
    px = rgb[ring] if ring.any() else rgb[inside]
    q = px.astype(np.int32) // 8
    key = (q[:, 0] * 32 + q[:, 1]) * 32 + q[:, 2]
    return px[key == np.bincount(key).argmax()].mean(axis=0)


def _sums(mask: np.ndarray) -> np.ndarray:
    return np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def _in(table: np.ndarray, b: tuple[int, int, int, int]) -> int:
    """Pixels set in the (x0, y0, x1, y1) box, from a table of `_sums`."""
    x0, y0, x1, y1 = b
    if x0 >= x1 or y0 >= y1:
        return 0
    return int(table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0])


def _between(a: tuple[int, int, int, int], b: tuple[int, int, int, int]
             ) -> tuple[int, int, int, int] | None:
    """The strip between two boxes that overlap in columns (or in rows): the rows (or
    columns) that part them, over the columns (rows) they share; None for boxes that
    share neither or overlap."""
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a, b
    cols = max(ax0, bx0), min(ax1, bx1)
    rows = max(ay0, by0), min(ay1, by1)
    if cols[0] < cols[1] and rows[0] >= rows[1]:
        return cols[0], min(ay1, by1), cols[1], max(ay0, by0)
    if rows[0] < rows[1] and cols[0] >= cols[1]:
        return min(ax1, bx1), rows[0], max(ax0, bx0), rows[1]
    return None


def _merge(boxes: list[tuple[int, int, int, int]], other: np.ndarray, share: float
           ) -> list[tuple[int, int, int, int]]:
    """Join (x0, y0, x1, y1) boxes pairwise while the space between a pair holds at most
    `share` of its area in `other` ink: the strip between them where they lie side by side
    or one above the other, else the box around both; either less every box (a third
    picture inside it is no gap)."""
    boxes = list(boxes)
    while len(boxes) > 1:
        covered = np.zeros(other.shape, bool)
        for x0, y0, x1, y1 in boxes:
            covered[y0:y1, x0:x1] = True
        cover, ink_free = _sums(covered), _sums(other & ~covered)
        pair = None
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
                outer = (min(ax0, bx0), min(ay0, by0), max(ax1, bx1), max(ay1, by1))
                gap = _between(boxes[a], boxes[b]) or outer
                found = _in(ink_free, gap)
                space = (gap[2] - gap[0]) * (gap[3] - gap[1]) - _in(cover, gap)
                if found <= share * max(space, 1):
                    pair = a, b, outer
                    break
            if pair:
                break
        if pair is None:
            break
        a, b, outer = pair
        boxes[a] = outer
        del boxes[b]
    return boxes


def picture_blocks(rgb: np.ndarray, area: np.ndarray, cfg: PictureBoxes
                   ) -> list[tuple[int, int, int, int]]:
    """The picture boxes (x0, y0, x1, y1) within one area (a bool mask over `rgb`, which
    is cut to the area's box plus a margin for the paper around it)."""
    paper = paper_colour(rgb, area)
    ink = (np.abs(rgb.astype(np.int16) - paper.astype(np.int16)).max(axis=-1) > cfg.ink)
    ink = (ink & area).astype(np.uint8)
    closed = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((cfg.close, cfg.close), np.uint8))
    # A block holds ink more than 2 pixels thick somewhere: an outline alone (a figure's
    # frame, a ruling) is no picture.
    core = cv2.erode(closed, np.ones((3, 3), np.uint8)).astype(bool)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    thick = np.zeros(n, bool)
    thick[np.unique(comp[core])] = True
    blocks, other = [], closed.astype(bool)
    for k in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[k])
        if w >= cfg.least and h >= cfg.least and thick[k]:
            blocks.append((x, y, x + w, y + h))
            other[comp == k] = False
    return _merge(blocks, other, cfg.inkshare)


def picture_mask(image: np.ndarray, rgb: np.ndarray, cfg: PictureBoxes) -> np.ndarray:
    """The image mask (bool, h x w) with every area of `image` at least `cfg.min_height`
    rows tall replaced by the boxes of the pictures in it; `rgb` is the page at the same
    size."""
    out = image.copy()
    n, comp, stats, _ = cv2.connectedComponentsWithStats(image.astype(np.uint8), connectivity=8)
    h_all, w_all = image.shape
    pad = 3  # room for the ring of paper around the area
    for k in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[k])
        if h < cfg.min_height:
            continue
        y0, y1 = max(0, y - pad), min(h_all, y + h + pad)
        x0, x1 = max(0, x - pad), min(w_all, x + w + pad)
        area = comp[y0:y1, x0:x1] == k
        view = out[y0:y1, x0:x1]
        view[area] = False
        for bx0, by0, bx1, by1 in picture_blocks(rgb[y0:y1, x0:x1], area, cfg):
            view[by0:by1, bx0:bx1] = True
    return out
