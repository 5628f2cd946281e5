"""A picture's visible box: its element's box less the margins that show only the page.

The DOM marks a picture by its element's box. Many pictures carry a margin of their own
background: a plot's white figure around its axes, a thumbnail padded to its gallery's
size, a logo's transparent edge. Where that margin has the colour of the page around the
picture, no pixel tells it from the page, and a label that calls it image asks a
pixel-reading model (or an annotator) to guess where an invisible edge lies; the sites
disagree on how wide it is (README, "The model"). Cutting the box to the rows and columns
that show something other than the page's colour makes the label what the screenshot
shows.
"""

from __future__ import annotations

import numpy as np

TOL = 8  # grey levels: a pixel this close to the page's colour shows nothing of its own
RING = 2  # pixels around the box that tell the page's colour
PLAIN = 0.8  # the least share of the ring on that colour (else the page around it is busy)


def page_colour(gray: np.ndarray, rows: slice, cols: slice) -> int | None:
    """The grey level of the page just around a box (its RING-pixel border, within the
    page), or None where that border is not mostly one colour or there is none."""
    h, w = gray.shape
    y0, y1 = max(0, rows.start - RING), min(h, rows.stop + RING)
    x0, x1 = max(0, cols.start - RING), min(w, cols.stop + RING)
    around = np.ones((y1 - y0, x1 - x0), bool)
    around[rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0] = False
    ring = gray[y0:y1, x0:x1][around]
    if not len(ring):
        return None
    level = int(np.bincount(ring, minlength=256).argmax())
    if (np.abs(ring.astype(np.int16) - level) <= TOL).mean() < PLAIN:
        return None
    return level


def visible_slices(gray: np.ndarray, rows: slice, cols: slice
                   ) -> tuple[slice, slice] | None:
    """The box (rows, cols) of `gray` (the screenshot in grey) cut to the rows and columns
    that show something other than the colour of the page around it; the box unchanged
    where the page around it is busy; None where it shows nothing but that colour."""
    level = page_colour(gray, rows, cols)
    if level is None:
        return rows, cols
    shows = np.abs(gray[rows, cols].astype(np.int16) - level) > TOL
    in_rows, in_cols = shows.any(axis=1), shows.any(axis=0)
    if not in_rows.any():
        return None
    top, bottom = int(in_rows.argmax()), len(in_rows) - int(in_rows[::-1].argmax())
    left, right = int(in_cols.argmax()), len(in_cols) - int(in_cols[::-1].argmax())
    return (slice(rows.start + top, rows.start + bottom),
            slice(cols.start + left, cols.start + right))
