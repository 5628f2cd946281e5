"""Recoloured panels and drawn frames: paper repainted or outlined, text kept legible,
labels and images untouched, and the same generator state gives the same result."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model.augment import PAPER, draw_frames, recolour_panels

IMAGE = 2


def batch(n: int = 4, h: int = 64, w: int = 96):
    """White paper, a black text band, a red-and-green image block."""
    rgb = np.full((n, h, w, 3), 255, np.uint8)
    el = np.zeros((n, h, w), np.uint8)
    rgb[:, 10:14, 5:80] = 0
    el[:, 10:14, 5:80] = 1
    # Narrower than the smallest panel (w // 4), so every panel reaches some paper.
    rgb[:, 30:40, 40:60] = (200, 30, 30)
    rgb[:, 30:40, 40:50, 1] = 220
    el[:, 30:40, 40:60] = IMAGE
    return rgb, el


def test_no_chance_changes_nothing():
    rgb, el = batch()
    before = rgb.copy()
    recolour_panels(rgb, el, np.random.default_rng(0), 0.0, IMAGE)
    np.testing.assert_array_equal(rgb, before)


def augmented(augment, seed: int):
    """A batch through `augment` at chance 1, checked to keep its labels and image pixels:
    (rgb after, rgb before, labels)."""
    rgb, el = batch()
    before, labels = rgb.copy(), el.copy()
    augment(rgb, el, np.random.default_rng(seed), 1.0, IMAGE)
    np.testing.assert_array_equal(el, labels)
    image = el == IMAGE
    np.testing.assert_array_equal(rgb[image], before[image])
    return rgb, before, el


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_panels_repaint_paper_keep_images_and_labels(seed):
    rgb, before, el = augmented(recolour_panels, seed)
    changed = (rgb != before).any(axis=-1)
    # Every crop got a panel, and a panel repaints paper: each crop has changed paper pixels.
    paper = before.min(axis=-1) >= PAPER
    assert (changed & paper).reshape(len(rgb), -1).any(axis=1).all()
    # Text stays legible: on a dark panel the ink turns light, on a light one it stays dark,
    # and either way it differs from the paper around it.
    for k in range(len(rgb)):
        text = (el[k] == 1) & changed[k]
        around = paper[k] & changed[k]
        if text.any() and around.any():
            ink = rgb[k][text].astype(int).mean()
            ground = rgb[k][around].astype(int).mean()
            assert abs(ink - ground) > 60, (ink, ground)


def test_the_same_generator_state_gives_the_same_panels():
    a, el = batch()
    b = a.copy()
    recolour_panels(a, el, np.random.default_rng([0, 3, 16]), 0.5, IMAGE)
    recolour_panels(b, el, np.random.default_rng([0, 3, 16]), 0.5, IMAGE)
    np.testing.assert_array_equal(a, b)
    c = batch()[0]
    recolour_panels(c, el, np.random.default_rng([0, 3, 17]), 0.5, IMAGE)
    assert (a != c).any()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_frames_outline_a_box_and_keep_images_and_labels(seed):
    rgb, before, _ = augmented(draw_frames, seed)
    for k in range(len(rgb)):
        changed = (rgb[k] != before[k]).any(axis=-1)
        assert changed.any()
        # An outline, not a filled box: one colour, on the edge of the changed pixels'
        # bounding box, its inside left as it was.
        assert len(np.unique(rgb[k][changed], axis=0)) == 1
        ys, xs = np.nonzero(changed)
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        if y1 - y0 > 8 and x1 - x0 > 8:
            np.testing.assert_array_equal(rgb[k, y0 + 4:y1 - 3, x0 + 4:x1 - 3],
                                          before[k, y0 + 4:y1 - 3, x0 + 4:x1 - 3])


def test_frames_follow_their_chance_and_generator_state():
    a, el = batch(n=64)
    b = a.copy()
    draw_frames(a, el, np.random.default_rng([0, 1, 8, 1]), 0.5, IMAGE)
    draw_frames(b, el, np.random.default_rng([0, 1, 8, 1]), 0.5, IMAGE)
    np.testing.assert_array_equal(a, b)
    framed = (a != batch(n=64)[0]).reshape(64, -1).any(axis=1).sum()
    assert 16 <= framed <= 48, framed
    c = batch(n=64)[0]
    draw_frames(c, el, np.random.default_rng(0), 0.0, IMAGE)
    np.testing.assert_array_equal(c, batch(n=64)[0])
