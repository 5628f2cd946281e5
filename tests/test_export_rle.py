"""COCO RLE of instances: the strings pycocotools writes, for masks shaped like pages.

Random noise (test_export_masks) rarely repeats a column; page masks are mostly boxes,
lines and columns repeated hundreds of times, which the encoder writes from a group's
first three columns. These masks are drawn from boxes, so the repetition, the runs that
wrap from the bottom of a column to the top of the next, and the page edges all occur.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from scipy import ndimage

from export.masks import component_instances, element_instances, rect_rle
from export.rle import groups_rle


def _coco_encode(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()


@st.composite
def boxed_masks(draw, max_h: int = 40, max_w: int = 60) -> np.ndarray:
    """A mask of a few boxes, some of the page's full height or width or touching its edges."""
    h, w = draw(st.integers(1, max_h)), draw(st.integers(1, max_w))
    mask = np.zeros((h, w), bool)
    for _ in range(draw(st.integers(0, 8))):
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        y1 = h if draw(st.booleans()) else draw(st.integers(y0 + 1, h))
        x1 = draw(st.integers(x0 + 1, w))
        if draw(st.booleans()):
            y0 = 0
        mask[y0:y1, x0:x1] = draw(st.integers(0, 4)) != 0  # now and then a hole
    return mask


@given(boxed_masks())
@settings(max_examples=400, deadline=None)
def test_components_of_boxed_masks_are_pycocotools_strings(mask):
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))  # 8-connected, scan order
    found = component_instances(mask)
    assert len(found) == n
    for i, inst in enumerate(found, 1):
        part = labels == i
        assert inst.rle == {"size": list(mask.shape), "counts": _coco_encode(part)}
        assert inst.area == part.sum()
        ys, xs = np.nonzero(part)
        assert inst.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@given(st.lists(boxed_masks(12, 30), min_size=1, max_size=9))
@settings(max_examples=100, deadline=None)
def test_boxed_masks_scanned_together_match_each_alone(masks):
    h, w = masks[0].shape
    masks = [np.resize(m, (h, w)) for m in masks]  # one size, shapes still boxy
    together = element_instances(masks)
    for mask, found in zip(masks, together, strict=True):
        assert [(i.rle, i.bbox, i.area) for i in found] == [
            (i.rle, i.bbox, i.area) for i in component_instances(mask)]


@st.composite
def group_runs(draw) -> tuple[list[tuple[int, int, int, int]], int, int]:
    """(col, ncols, row0, row1) runs of one mask in the encoder's order, height, width."""
    h, w = draw(st.integers(1, 30)), draw(st.integers(1, 200))
    runs, col = [], 0
    while col < w:
        col += draw(st.integers(0, 3))
        n = draw(st.integers(1, 40))
        if col + n > w:
            break
        edges = sorted(set(draw(st.lists(st.integers(0, h), max_size=6))))
        pairs = list(zip(edges[::2], edges[1::2], strict=False))
        runs += [(col, n, a, b) for a, b in pairs if b > a]
        col += n
    return runs, h, w


@given(group_runs())
@settings(max_examples=400, deadline=None)
def test_group_runs_give_the_string_of_the_painted_mask(case):
    runs, h, w = case
    if not runs:
        return
    mask = np.zeros((h, w), bool)
    for col, n, a, b in runs:
        mask[a:b, col : col + n] = True
    cols = np.array(runs).T
    text = groups_rle(np.zeros(len(runs), np.int64), cols[0], cols[1], cols[2], cols[3], 1,
                      h, w)
    assert text == [_coco_encode(mask)]


def test_every_rectangle_of_a_small_image_is_the_pycocotools_string():
    h, w = 7, 6
    for y0 in range(h):
        for y1 in range(y0 + 1, h + 1):
            for x0 in range(w):
                for x1 in range(x0 + 1, w + 1):
                    dense = np.zeros((h, w), bool)
                    dense[y0:y1, x0:x1] = True
                    assert rect_rle((x0, y0, x1, y1), h, w)["counts"] == _coco_encode(dense)


def test_a_page_of_long_text_lines_and_a_full_height_column():
    mask = np.zeros((4000, 1280), bool)
    for y in range(150, 3800, 22):
        mask[y : y + 12, 40 : 40 + (y * 7) % 900 + 60] = True  # text lines
    mask[:, 1100:1180] = True  # touches top and bottom: runs wrap across its columns
    mask[3990:, 1180:1280] = True  # bottom right, joined to it
    mask[0:30, 1181:1200] = True  # top, joined to the column before
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    found = component_instances(mask)
    assert len(found) == n
    for i, inst in enumerate(found, 1):
        assert inst.rle["counts"] == _coco_encode(labels == i)
