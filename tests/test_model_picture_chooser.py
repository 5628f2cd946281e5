"""The picture chooser (model/picture_chooser.py): every block of ink on a page is a
candidate, a logistic regression fitted on training pages' blocks keeps the pictures, and
the fit rides on the pass that fits the decision offsets."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from model.calibrate import calibrate
from model.data import ScaledPage
from model.infer import Windowing, pin_pictures, scaled_logits
from model.network import Normalise, SegNet
from model.picture_chooser import (
    PictureChooser,
    block_features,
    chosen_mask,
    feature_names,
    fit_chooser,
    network_features,
    page_blocks,
    picture_share,
)
from model.pictures import PictureBoxes, pinned_mask
from model.release import IGNORE
from model.store import ModelError, load_model

from .test_model_pictures import box, page, picture, text_line
from .test_model_train import TINY

NAMES = ["background", "text", "interactive", "image"]
IMAGE = NAMES.index("image")
CFG = PictureBoxes()


def made_up_page(seed: int, h: int = 320, w: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Pixels and element truth: a few pictures and paragraphs of text lines, placed by
    `seed` in two columns."""
    rng = np.random.default_rng(seed)
    rgb, truth = page(h, w), np.zeros((h, w), np.uint8)
    y = 10
    while y < h - 70:
        x0 = int(rng.integers(5, 40))
        if rng.random() < 0.5:
            x1, y1 = x0 + int(rng.integers(60, 180)), y + int(rng.integers(30, 60))
            picture(rgb, y, x0, y1, x1, seed=seed * 100 + y)
            truth[y:y1, x0:x1] = IMAGE
        else:
            x1, y1 = x0 + int(rng.integers(80, 200)), y + 6 * int(rng.integers(2, 6))
            for row in range(y, y1, 6):
                text_line(rgb, row, x0, x1)
            truth[y:y1, x0:x1] = NAMES.index("text")
        y = y1 + int(rng.integers(12, 24))
    return rgb, truth


def flat_logits(h: int, w: int) -> np.ndarray:
    """A network with no opinion: every class as likely everywhere."""
    return np.zeros((len(NAMES), h, w), np.float32)


def fitted_on(seeds) -> PictureChooser:
    xs, ys = [], []
    for s in seeds:
        rgb, truth = made_up_page(s)
        blocks, ink = page_blocks(rgb, CFG.ink, CFG.close, CFG.least)
        xs.append(block_features(flat_logits(*truth.shape), rgb, IMAGE, blocks, ink))
        ys.append(picture_share(blocks, truth, IMAGE, IGNORE))
    x, share = np.concatenate(xs), np.concatenate(ys)
    return fit_chooser(x[share >= 0], share[share >= 0] >= 0.5, feature_names(NAMES))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max(1, (a | b).sum())


def test_features_have_one_column_a_name_and_one_row_a_block():
    rgb, _ = made_up_page(0)
    blocks, ink = page_blocks(rgb, CFG.ink, CFG.close, CFG.least)
    x = block_features(flat_logits(*rgb.shape[:2]), rgb, IMAGE, blocks, ink)
    assert len(blocks) >= 4 and x.shape == (len(blocks), len(feature_names(NAMES)))
    assert np.isfinite(x).all()
    # With flat logits each class's mean probability is a quarter.
    assert np.allclose(x[:, :4], 0.25)


def test_a_chooser_fitted_on_some_pages_finds_the_pictures_of_others():
    chooser = fitted_on(range(12))
    for seed in (100, 101, 102):
        rgb, truth = made_up_page(seed)
        h, w = truth.shape
        got = chosen_mask(flat_logits(h, w), np.zeros((h, w), bool), rgb, IMAGE, chooser,
                          CFG.ink, CFG.close, CFG.least, CFG.min_height)
        want = truth == IMAGE
        assert iou(got, want) > 0.95, seed
        assert not (got & (truth == NAMES.index("text"))).any()


def test_blocks_are_found_outside_the_networks_image_areas_and_low_areas_stay_as_drawn():
    chooser = fitted_on(range(12))
    rgb, truth = page(), np.zeros((240, 200), np.uint8)
    picture(rgb, 20, 20, 80, 120)
    drawn = box(truth.shape, 150, 10, 156, 60)  # 6 rows: under min_height, kept
    drawn |= box(truth.shape, 180, 10, 230, 190)  # tall, but paper only: dropped
    got = chosen_mask(flat_logits(*truth.shape), drawn, rgb, IMAGE, chooser, CFG.ink,
                      CFG.close, CFG.least, CFG.min_height)
    assert np.array_equal(got, box(truth.shape, 20, 20, 80, 120) | box(truth.shape, 150, 10, 156, 60))


def test_the_chooser_reads_the_logits_without_the_decision_offsets():
    chooser = fitted_on(range(12))
    rgb, truth = made_up_page(7)
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 1, (4, *truth.shape)).astype(np.float32)
    offsets = np.array([0.0, -1.0, -1.5, -2.0], np.float32)
    cfg = replace(CFG, chooser=chooser)
    shifted = raw + offsets[:, None, None]
    # The low areas come from the argmax with the offsets; the blocks from the raw logits.
    drawn = shifted.argmax(axis=0) == IMAGE
    want = chosen_mask(raw, drawn, rgb, IMAGE, chooser, cfg.ink, cfg.close, cfg.least,
                       cfg.min_height)
    assert np.array_equal(pinned_mask(shifted, rgb, IMAGE, cfg, offsets), want)
    el = shifted.copy()
    pin_pictures(el, rgb, IMAGE, cfg, offsets)
    assert np.array_equal(el.argmax(axis=0) == IMAGE, want)


def test_network_features_are_each_channels_mean_and_max_over_the_blocks_cells():
    seen = np.zeros((2, 10, 10), np.float32)  # stride 4: a 40 x 40 page
    seen[0, 1:3, 2:5] = 1.0  # page rows 4-11, columns 8-19
    seen[1, 2, 3] = 5.0
    blocks, _ = page_blocks(page(40, 40), CFG.ink, CFG.close, CFG.least)
    assert blocks == []  # a blank page; blocks made by hand below
    from model.inkblocks import Block

    inside = Block(8, 4, 20, 12, 0, 1)  # exactly the cells of channel 0's ones
    across = Block(6, 2, 22, 14, 0, 2)  # cells 0-3 x 1-5: 6 of its 20 cells are ones
    thin = Block(9, 5, 10, 6, 0, 3)  # inside one cell
    got = network_features(seen, [inside, across, thin])
    assert got.shape == (3, 4)
    assert np.allclose(got[0], [1.0, 5.0 / 6, 1.0, 5.0])
    assert np.allclose(got[1], [6 / 20, 5.0 / 20, 1.0, 5.0])
    assert np.allclose(got[2], [1.0, 0.0, 1.0, 0.0])
    names = feature_names(NAMES, 2)
    assert names[-4:] == ["network mean 0", "network mean 1", "network max 0", "network max 1"]


def test_a_chooser_that_reads_the_network_is_given_its_features_or_says_so():
    rng = np.random.default_rng(0)
    rgb, truth = made_up_page(3)
    blocks, ink = page_blocks(rgb, CFG.ink, CFG.close, CFG.least)
    seen = rng.normal(0, 1, (6, -(-truth.shape[0] // 4), -(-truth.shape[1] // 4)))
    x = block_features(flat_logits(*truth.shape), rgb, IMAGE, blocks, ink, seen)
    assert x.shape == (len(blocks), len(feature_names(NAMES, 6)))
    share = picture_share(blocks, truth, IMAGE, IGNORE)
    chooser = fit_chooser(x, share >= 0.5, feature_names(NAMES, 6))
    assert chooser.reads_network and not fitted_on(range(4)).reads_network
    h, w = truth.shape
    args = (flat_logits(h, w), np.zeros((h, w), bool), rgb, IMAGE, chooser, CFG.ink,
            CFG.close, CFG.least, CFG.min_height)
    with pytest.raises(ValueError, match="reads the network's features: pass them"):
        chosen_mask(*args)
    with pytest.raises(ValueError, match="reads .* features of a block, not"):
        chosen_mask(*args, seen[:4])  # a network of another width
    assert iou(chosen_mask(*args, seen), truth == IMAGE) > 0.9  # the page it was fitted on


def test_a_chooser_round_trips_through_the_card_and_old_cards_have_none():
    cfg = replace(CFG, chooser=fitted_on(range(4)))
    back = PictureBoxes.from_json(json.loads(json.dumps(cfg.to_json())))
    assert back == cfg
    old = {k: v for k, v in CFG.to_json().items() if k != "chooser"}
    assert PictureBoxes.from_json(old) == CFG and PictureBoxes.from_json(old).chooser is None


def test_calibration_fits_a_chooser_on_its_pages_or_says_why_not():
    torch.manual_seed(0)
    net, norm, win = SegNet(TINY), Normalise(), Windowing()
    pages = []
    for s in range(16):
        rgb, truth = made_up_page(s)
        pages.append(ScaledPage(f"p{s}", "site", rgb, truth, np.zeros_like(truth)))
    fit = calibrate(net, norm, pages, win, seed=0, chooser=(IMAGE, CFG), names=NAMES)
    assert fit.chooser is not None and fit.chooser.reads_network
    assert fit.chooser.features == tuple(feature_names(NAMES, net.feature_channels))
    assert fit.chooser.fitted_on["pages"] == 16 and fit.chooser.fitted_on["pictures"] >= 20
    assert "picture chooser fitted on" in fit.describe(NAMES[1:], 1.0)
    rgb, truth = made_up_page(50)
    el, _, seen = scaled_logits(net, norm, rgb, win, features=True)  # untrained: no help
    pin_pictures(el, rgb, IMAGE, replace(CFG, chooser=fit.chooser), seen=seen)
    assert iou(el.argmax(axis=0) == IMAGE, truth == IMAGE) > 0.9
    # Two pages hold too few pictures: the join rule stays, and the log says why.
    few = calibrate(net, norm, pages[:2], win, seed=0, chooser=(IMAGE, CFG), names=NAMES)
    assert few.chooser is None
    assert "not fitted" in few.chooser_note and "the join rule stays" in few.chooser_note
    assert few.to_json()["picture_chooser"] == few.chooser_note
    assert calibrate(net, norm, pages[:2], win, seed=0).chooser_note == ""


@pytest.mark.parametrize("damage", [
    lambda c: {**c, "weights": c["weights"][:-1]},
    lambda c: {**c, "wieghts": c["weights"]},
])
def test_a_damaged_chooser_in_a_card_is_named(damage, tmp_path):
    from model.store import publish

    cfg = replace(CFG, chooser=fitted_on(range(4)))
    card = {"classes": {"elements": NAMES[1:], "regions": []},
            "heads": {"elements": NAMES, "regions": ["background"]},
            "input": {"working_width": 256, "normalise": asdict(Normalise())},
            "network": TINY.to_json(),
            "decision": {"picture_boxes": {**cfg.to_json(),
                                           "chooser": damage(cfg.chooser.to_json())}}}
    out = publish(tmp_path, SegNet(TINY), card, {})
    with pytest.raises(ModelError, match="decision.picture_boxes .* is not a picture-box setting"):
        load_model(out).picture_boxes  # noqa: B018
