"""Training-time augmentations against calling what is not a picture an image: recoloured
panels and drawn frames.

The val sites draw header bars, footers and code blocks in colours no train site uses
(gimp-help's dark teal bars, python's tinted code blocks), and m0003 called 5.3% of their
background "image". A panel repaints the paper of a random rectangle of a crop, in a random
light colour, or inverts the rectangle and paints its paper dark, so that text on it turns
light. Its labels stay as they were (text is still text, paper still background), and
pixels labelled image keep their own colours.
"""

from __future__ import annotations

import numpy as np

PAPER = 235  # a pixel whose every channel is at least this is the page's paper


def recolour_panels(rgb: np.ndarray, elements: np.ndarray, rng: np.random.Generator,
                    chance: float, image: int | None) -> None:
    """Give each crop of a batch, with probability `chance`, one recoloured panel.

    rgb (N, H, W, 3) uint8 and elements (N, H, W) are the batch's crops and element targets;
    rgb is changed in place. `image` is the element class whose pixels are never repainted.
    The same generator state gives the same panels, so a resumed run repaints as an
    uninterrupted one did.
    """
    n, h, w, _ = rgb.shape
    for k in range(n):
        # Every number is drawn for every crop, so one crop's panel never shifts the next's.
        apply = rng.random() < chance
        ph, pw = int(rng.integers(h // 8, h + 1)), int(rng.integers(w // 4, w + 1))
        y, x = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
        dark = bool(rng.random() < 0.5)
        colour = rng.integers(20, 90, 3) if dark else rng.integers(170, 250, 3)
        if not apply:
            continue
        box = rgb[k, y:y + ph, x:x + pw]
        keep = elements[k, y:y + ph, x:x + pw] == image if image is not None else None
        kept = box[keep] if keep is not None else None
        paper = box.min(axis=-1) >= PAPER
        if dark:
            np.subtract(255, box, out=box)
        box[paper] = colour.astype(np.uint8)
        if keep is not None:
            box[keep] = kept


def draw_frames(rgb: np.ndarray, elements: np.ndarray, rng: np.random.Generator,
                chance: float, image: int | None) -> None:
    """Give each crop of a batch, with probability `chance`, the outline of a box (1 to 3
    px, grey or a muted colour) around a random rectangle, drawn over everything but image
    pixels; labels unchanged.

    gimp-help (a val site) frames each figure, picture and caption together, in a thin grey
    box, and the model painted such whole frames image, caption and white included: 69% of
    m0008's false image pixels. A frame around text and paper teaches that a box is not a
    picture. Same generator state, same frames, as for the panels.
    """
    n, h, w, _ = rgb.shape
    for k in range(n):
        apply = rng.random() < chance
        fh, fw = int(rng.integers(h // 4, h + 1)), int(rng.integers(w // 3, w + 1))
        y, x = int(rng.integers(0, h - fh + 1)), int(rng.integers(0, w - fw + 1))
        t = int(rng.integers(1, 4))
        grey = bool(rng.random() < 0.6)
        colour = (np.full(3, rng.integers(110, 225)) if grey
                  else rng.integers(60, 200, 3)).astype(np.uint8)
        if not apply:
            continue
        ring = np.zeros((h, w), bool)
        ring[y:y + fh, x:x + fw] = True
        ring[y + t:y + fh - t, x + t:x + fw - t] = False
        if image is not None:
            ring &= elements[k] != image
        rgb[k][ring] = colour
