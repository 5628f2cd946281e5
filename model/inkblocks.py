"""Blocks of ink: the parts of a page that stand out from its paper, as boxes.

Pixel functions shared by the two ways of finding picture boxes (model/pictures.py joins
the blocks inside the network's image areas; model/picture_chooser.py classifies every
block of the page).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np


class Block(NamedTuple):
    x0: int
    y0: int
    x1: int
    y1: int
    pixels: int  # of its component
    label: int  # its component's label


def common_colour(px: np.ndarray) -> np.ndarray:
    """The most common colour of (..., 3) pixels, to 1/32 of each channel: the mean of the
    pixels of that colour."""
    px = px.reshape(-1, 3)
    q = px.astype(np.int32) // 8
    key = (q[:, 0] * 32 + q[:, 1]) * 32 + q[:, 2]
    return px[key == np.bincount(key).argmax()].mean(axis=0)


def ink_mask(rgb: np.ndarray, paper: np.ndarray, ink: int) -> np.ndarray:
    """Where a channel differs from the paper's by more than `ink`."""
    return np.abs(rgb.astype(np.int16) - paper.astype(np.int16)).max(axis=-1) > ink


def ink_blocks(ink: np.ndarray, close: int, least: int
               ) -> tuple[list[Block], np.ndarray, np.ndarray]:
    """The blocks of a bool ink mask: ink `close` pixels apart is one block, and a block is
    at least `least` pixels high and wide and somewhere more than 2 pixels thick (an
    outline alone, a figure's frame or a ruling, is none). (blocks, component labels, the
    closed mask); the labels cover every component, blocks or not."""
    closed = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_CLOSE,
                              np.ones((close, close), np.uint8))
    core = cv2.erode(closed, np.ones((3, 3), np.uint8)).astype(bool)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    thick = np.zeros(n, bool)
    thick[np.unique(comp[core])] = True
    blocks = []
    for k in range(1, n):
        x, y, w, h, px = (int(v) for v in stats[k])
        if w >= least and h >= least and thick[k]:
            blocks.append(Block(x, y, x + w, y + h, px, k))
    return blocks, comp, closed.astype(bool)
