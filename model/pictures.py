"""Picture boxes: a large area the network calls image is cut back to the boxes of the
picture-like ink inside it. This is the join rule; a card whose settings hold a fitted
chooser (model/picture_chooser.py, the default for models trained or calibrated now)
chooses among all the page's blocks instead (`pinned_mask`).

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
m0011's training pages, 0.712 to 0.715. Later, with m0001 (web-corpus v0002, image last)
on KiCad's, pandas' and xarray's docs (158 pages, never trained on nor val), areas from 12
rows and at most 5% of other ink between joined blocks gave 0.542 against 0.539 with 24
rows and 10% (val: 0.550 against 0.520): a caption line in a wide space between two figures
is less than a tenth of that space. `gap` (blocks at most that many pixels apart) keeps
side-by-side pictures and gallery thumbnails apart (val 0.62 at 4 pixels) but cuts the
panels of one plot apart too (those three sites 0.51), so it is off by default. See README
"The model".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .inkblocks import common_colour, ink_blocks, ink_mask
from .picture_chooser import PictureChooser, chosen_mask


@dataclass(frozen=True)
class PictureBoxes:
    min_height: int = 12  # areas fewer rows tall than this are left as the network drew them
    ink: int = 8  # a pixel is ink where a channel differs from the paper's by more than this
    close: int = 5  # ink this close together (pixels) forms one block
    least: int = 12  # a block narrower or lower than this is not a picture (a text line)
    inkshare: float = 0.05  # two blocks are one picture when the space between them holds
    # at most this share of other ink
    gap: int | None = None  # and is at most this many pixels wide (None: any width)
    # Fitted on training pages, it chooses among all the page's blocks instead of joining
    # those inside the network's image areas (model/picture_chooser.py).
    chooser: PictureChooser | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["chooser"] = None if self.chooser is None else self.chooser.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> PictureBoxes:
        # A card written before `gap` existed joined blocks however far apart.
        d = {"gap": None, **d}
        if d.get("chooser") is not None:
            d["chooser"] = PictureChooser.from_json(d["chooser"])
        return cls(**d)


def paper_colour(rgb: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The most common colour on the 2-pixel ring just outside `inside`."""
    ring = cv2.dilate(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ring &= ~inside
    return common_colour(rgb[ring] if ring.any() else rgb[inside])


def _sums(mask: np.ndarray) -> np.ndarray:
    """The summed-area table of a mask, one row and column of zeros first."""
    return cv2.integral(mask.astype(np.uint8), sdepth=cv2.CV_32S)


def _in(table: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Pixels set in each (x0, y0, x1, y1) row of `boxes`, from a table of `_sums`; 0 for
    an empty box."""
    x0, y0, x1, y1 = boxes.T
    found = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    return np.where((x0 < x1) & (y0 < y1), found, 0)


def _gaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For pairs of (x0, y0, x1, y1) boxes: the box around each pair, and the space
    between them: where two boxes share columns and one lies above the other, the rows
    that part them over the shared columns (likewise side by side); else the box around
    both."""
    outer = np.stack([np.minimum(a[:, 0], b[:, 0]), np.minimum(a[:, 1], b[:, 1]),
                      np.maximum(a[:, 2], b[:, 2]), np.maximum(a[:, 3], b[:, 3])], axis=1)
    c0, c1 = np.maximum(a[:, 0], b[:, 0]), np.minimum(a[:, 2], b[:, 2])
    r0, r1 = np.maximum(a[:, 1], b[:, 1]), np.minimum(a[:, 3], b[:, 3])
    gap = outer.copy()
    above = (c0 < c1) & (r0 >= r1)
    beside = (r0 < r1) & (c0 >= c1)
    gap[above] = np.stack([c0, r1, c1, r0], axis=1)[above]
    gap[beside] = np.stack([c1, r0, c0, r1], axis=1)[beside]
    return outer, gap


def _separation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For pairs of (x0, y0, x1, y1) boxes: the larger of the columns and the rows of
    paper between them (0 where they overlap)."""
    dx = np.maximum(0, np.maximum(a[:, 0], b[:, 0]) - np.minimum(a[:, 2], b[:, 2]))
    dy = np.maximum(0, np.maximum(a[:, 1], b[:, 1]) - np.minimum(a[:, 3], b[:, 3]))
    return np.maximum(dx, dy)


def _merge(boxes: list[tuple[int, int, int, int]], other: np.ndarray, share: float,
           gap: int | None = None) -> list[tuple[int, int, int, int]]:
    """Join (x0, y0, x1, y1) boxes pairwise, the first pair first, while the space
    between a pair (`_gaps`, less every box: a third picture in it is no gap) holds at
    most `share` of its area in `other` ink and (`gap`) the pair lies at most `gap`
    pixels apart."""
    found_boxes = np.array(boxes, np.int64).reshape(-1, 4)
    while len(found_boxes) > 1:
        covered = np.zeros(other.shape, bool)
        for x0, y0, x1, y1 in found_boxes:
            covered[y0:y1, x0:x1] = True
        cover, ink_free = _sums(covered), _sums(other & ~covered)
        a, b = np.triu_indices(len(found_boxes), 1)
        outer, between = _gaps(found_boxes[a], found_boxes[b])
        area = (between[:, 2] - between[:, 0]) * (between[:, 3] - between[:, 1])
        space = area - _in(cover, between)
        join = _in(ink_free, between) <= share * np.maximum(space, 1)
        if gap is not None:
            join &= _separation(found_boxes[a], found_boxes[b]) <= gap
        if not join.any():
            break
        k = int(np.argmax(join))
        found_boxes[a[k]] = outer[k]
        found_boxes = np.delete(found_boxes, b[k], axis=0)
    return [tuple(int(v) for v in row) for row in found_boxes]


def picture_blocks(rgb: np.ndarray, area: np.ndarray, cfg: PictureBoxes
                   ) -> list[tuple[int, int, int, int]]:
    """The picture boxes (x0, y0, x1, y1) within one area (a bool mask over `rgb`, which
    is cut to the area's box plus a margin for the paper around it)."""
    ink = ink_mask(rgb, paper_colour(rgb, area), cfg.ink) & area
    found, comp, other = ink_blocks(ink, cfg.close, cfg.least)
    for b in found:
        other[comp == b.label] = False
    blocks = [(b.x0, b.y0, b.x1, b.y1) for b in found]
    return _merge(blocks, other, cfg.inkshare, cfg.gap)


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


def reads_network(cfg: PictureBoxes) -> bool:
    """Whether these settings' chooser reads the network's features besides its logits."""
    return cfg.chooser is not None and cfg.chooser.reads_network


def pinned_mask(logits: np.ndarray, rgb: np.ndarray, image: int, cfg: PictureBoxes,
                offsets: np.ndarray | None = None, seen: np.ndarray | None = None
                ) -> np.ndarray:
    """The image mask of a page at the working width from its element `logits` (C, h, w),
    decision `offsets` added: the chooser's blocks where `cfg` has one, else the joined
    blocks of picture_mask. `seen`: the network's stride-4 features, where the chooser
    reads them."""
    drawn = logits.argmax(axis=0) == image
    if cfg.chooser is None:
        return picture_mask(drawn, rgb, cfg)
    raw = logits if offsets is None else logits - np.asarray(offsets, np.float32)[:, None, None]
    return chosen_mask(raw, drawn, rgb, image, cfg.chooser, cfg.ink, cfg.close, cfg.least,
                       cfg.min_height, seen)
