"""Picture boxes: a large predicted image area cut back to the boxes of the pictures in it
(model/pictures.py), applied to the logits before they are brought to the page's size, and
named in the model card."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model.infer import pin_pictures, upscaled_argmax
from model.pictures import PictureBoxes, paper_colour, picture_mask
from model.store import ModelError, load_model
from model.train import Run, train

from .test_model_calibrate import small_release  # noqa: F401  (a fixture)
from .test_model_train import tiny

GREY, INK = (200, 200, 200), (30, 30, 30)
CFG = PictureBoxes()


def page(h: int = 240, w: int = 200, paper=(255, 255, 255)) -> np.ndarray:
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = paper
    return rgb


def frame(rgb: np.ndarray, y0: int, x0: int, y1: int, x1: int) -> None:
    rgb[y0, x0:x1] = rgb[y1 - 1, x0:x1] = GREY
    rgb[y0:y1, x0] = rgb[y0:y1, x1 - 1] = GREY


def picture(rgb: np.ndarray, y0: int, x0: int, y1: int, x1: int, seed: int = 0) -> None:
    rgb[y0:y1, x0:x1] = np.random.default_rng(seed).integers(0, 256, (y1 - y0, x1 - x0, 3))


def text_line(rgb: np.ndarray, y: int, x0: int, x1: int) -> None:
    """A line of words: 4 rows of ink in runs of 6 columns with a gap of 3."""
    for x in range(x0, x1, 9):
        rgb[y:y + 4, x:min(x + 6, x1)] = INK


def box(shape: tuple[int, int], y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_a_framed_figure_is_cut_back_to_its_picture():
    rgb = page()
    frame(rgb, 10, 10, 160, 190)
    picture(rgb, 30, 50, 100, 150)
    text_line(rgb, 110, 30, 170)  # the caption, in lines of text 6 rows apart
    text_line(rgb, 120, 30, 120)
    predicted = box(rgb.shape[:2], 8, 8, 162, 192)  # the whole frame, and a little more
    assert np.array_equal(picture_mask(predicted, rgb, CFG), box(rgb.shape[:2], 30, 50, 100, 150))


def test_a_column_of_figures_makes_one_picture_each():
    rgb = page(h=300)
    picture(rgb, 20, 40, 80, 160, seed=1)
    text_line(rgb, 90, 30, 170)
    text_line(rgb, 100, 30, 170)
    picture(rgb, 115, 40, 175, 160, seed=2)
    text_line(rgb, 185, 30, 170)
    picture(rgb, 200, 60, 260, 140, seed=3)
    predicted = box(rgb.shape[:2], 10, 20, 270, 180)
    want = (box(rgb.shape[:2], 20, 40, 80, 160) | box(rgb.shape[:2], 115, 40, 175, 160)
            | box(rgb.shape[:2], 200, 60, 260, 140))
    assert np.array_equal(picture_mask(predicted, rgb, CFG), want)


def test_panels_with_only_paper_between_are_one_picture():
    rgb = page()
    picture(rgb, 40, 20, 120, 90, seed=4)
    picture(rgb, 50, 110, 110, 180, seed=5)  # lower, and 20 columns of white away
    predicted = box(rgb.shape[:2], 30, 10, 130, 190)
    assert np.array_equal(picture_mask(predicted, rgb, CFG), box(rgb.shape[:2], 40, 20, 120, 180))


def test_a_caption_line_in_a_wide_space_keeps_two_figures_apart():
    # 60 rows between the pictures, and one line of caption in them: about a twentieth of
    # the space is ink, which the space between the panels of one plot never holds.
    rgb = page(h=260)
    picture(rgb, 20, 40, 80, 160, seed=6)
    text_line(rgb, 108, 50, 150)
    picture(rgb, 140, 40, 200, 160, seed=7)
    predicted = box(rgb.shape[:2], 10, 20, 210, 180)
    want = box(rgb.shape[:2], 20, 40, 80, 160) | box(rgb.shape[:2], 140, 40, 200, 160)
    assert np.array_equal(picture_mask(predicted, rgb, CFG), want)
    # With a tenth of the space allowed (the setting of models published before), one box.
    joined = picture_mask(predicted, rgb, replace(CFG, inkshare=0.10))
    assert np.array_equal(joined, box(rgb.shape[:2], 20, 40, 200, 160))


def test_a_gap_keeps_side_by_side_pictures_apart_and_joins_near_panels():
    rgb = page()
    picture(rgb, 40, 20, 120, 80, seed=8)
    picture(rgb, 40, 100, 120, 180, seed=9)  # 20 columns of white away
    predicted = box(rgb.shape[:2], 30, 10, 130, 190)
    both = box(rgb.shape[:2], 40, 20, 120, 80) | box(rgb.shape[:2], 40, 100, 120, 180)
    assert np.array_equal(picture_mask(predicted, rgb, replace(CFG, gap=8)), both)
    assert np.array_equal(picture_mask(predicted, rgb, replace(CFG, gap=20)),
                          box(rgb.shape[:2], 40, 20, 120, 180))


def test_a_card_without_a_gap_joins_blocks_at_any_distance():
    old = {"min_height": 24, "ink": 8, "close": 5, "least": 12, "inkshare": 0.1}
    assert PictureBoxes.from_json(old) == PictureBoxes(24, 8, 5, 12, 0.1, None)
    assert PictureBoxes.from_json(replace(CFG, gap=4).to_json()) == replace(CFG, gap=4)


def test_small_areas_and_pages_without_image_are_left_as_they_are():
    rgb = page()
    text_line(rgb, 50, 20, 180)
    short = box(rgb.shape[:2], 40, 10, 40 + CFG.min_height - 1, 190)  # over text and paper
    assert np.array_equal(picture_mask(short, rgb, CFG), short)
    none = np.zeros(rgb.shape[:2], bool)
    assert not picture_mask(none, rgb, CFG).any()


def test_an_area_of_nothing_but_paper_and_text_is_no_picture():
    rgb = page(paper=(250, 240, 215))  # a tinted paper: the colour around the area counts
    for y in range(40, 140, 12):
        text_line(rgb, y, 20, 180)
    predicted = box(rgb.shape[:2], 30, 10, 150, 190)
    assert not picture_mask(predicted, rgb, CFG).any()
    assert np.allclose(paper_colour(rgb, predicted), (250, 240, 215))


def test_pinned_logits_give_the_boxes_at_the_page_size_and_the_next_class_elsewhere():
    rgb = page()
    frame(rgb, 10, 10, 160, 190)
    picture(rgb, 30, 50, 100, 150)
    text_line(rgb, 110, 30, 170)
    h, w = rgb.shape[:2]
    el = np.zeros((4, h, w), np.float32)
    el[1] = 1.0  # text ranks second everywhere
    el[2, 8:162, 8:192] = 5.0  # image wins over the whole frame
    pin_pictures(el, rgb, 2, CFG)
    labels = el.argmax(axis=0)
    assert np.array_equal(labels == 2, box((h, w), 30, 50, 100, 150))
    assert np.all(labels[(labels != 2)] == 1)
    # At twice the size, the box's edges fall on the scaled edges.
    big = upscaled_argmax(el, 2 * w, 2 * h)
    assert np.array_equal(big == 2, box((2 * h, 2 * w), 60, 100, 200, 300))


@pytest.mark.slow
def test_a_trained_model_names_its_picture_boxes_and_applies_them(small_release, tmp_path):  # noqa: F811
    from model.release import open_release

    release = open_release(small_release)
    out = train(tiny(epochs=1, calibrate_pages=0), Run(release, tmp_path / "models",
                                                       log=lambda _: None))
    model = load_model(out)
    assert model.card["decision"]["picture_boxes"] == CFG.to_json()
    assert model.card["config"]["picture_boxes"] is True
    assert model.picture_boxes == CFG
    # A framed figure at twice the working width (256), and an offset that makes image win
    # everywhere: without boxes the whole page is image, with them the picture alone.
    rgb = page(h=480, w=512)
    frame(rgb, 20, 20, 320, 490)
    frame(rgb, 21, 21, 319, 489)
    picture(rgb, 60, 100, 200, 400)
    for y in (220, 240):  # two lines of caption, 8 rows high
        for x in range(60, 460, 18):
            rgb[y:y + 8, x:x + 12] = INK
    image = model.element_names.index("image")
    model.card["decision"]["element_offsets"] = [0.0, 0.0, 100.0, 0.0]
    del model.card["decision"]["picture_boxes"]
    assert np.all(model.predict(rgb).elements == image)
    model.card["decision"]["picture_boxes"] = CFG.to_json()
    boxed = model.predict(rgb).elements == image
    want = box(rgb.shape[:2], 60, 100, 200, 400)
    assert (boxed & want).sum() / (boxed | want).sum() > 0.97
    # With no pixel counting as ink there is no picture at all.
    model.card["decision"]["picture_boxes"] = {**CFG.to_json(), "ink": 255}
    assert not np.any(model.predict(rgb).elements == image)
    # A damaged setting is named, not a traceback.
    card = json.loads((out / "model.json").read_text())
    card["decision"]["picture_boxes"] = {"min_hight": 3}
    (out / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="decision.picture_boxes .* is not a picture-box setting"):
        load_model(out).predict(rgb)


def test_the_benchs_ceiling_keeps_the_blocks_that_are_mostly_picture():
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("picture_boxes_bench",
                                                  root / "bench" / "picture_boxes.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rgb = page(h=300)
    picture(rgb, 20, 40, 120, 160)
    for y in range(150, 200, 8):
        text_line(rgb, y, 20, 180)
    truth = np.zeros(rgb.shape[:2], np.uint8)  # 0 background, 1 text, 3 image
    truth[150:200, 20:180] = 1
    truth[14:126, 34:166] = 3  # the picture's element, a margin of paper around its pixels
    truth[250:260, 20:30] = 3  # an image with no pixel of its own: in no block
    el = np.zeros((4, *rgb.shape[:2]), np.float32)  # the network says nothing
    best, anywhere = bench.ceiling(el, rgb, truth, 3, CFG)
    assert np.array_equal(best, box(rgb.shape[:2], 20, 40, 120, 160))
    assert anywhere[150:194, 20:179].all() and not anywhere[250:260, 20:30].any()
    assert ((truth == 3) & ~anywhere).sum() == 132 * 112 - 120 * 100 + 100


@pytest.mark.slow
def test_the_settings_bench_scores_every_setting_next_to_no_boxes(small_release, tmp_path):  # noqa: F811
    from model.release import open_release

    root = Path(__file__).resolve().parent.parent
    out = train(tiny(epochs=1, calibrate_pages=0), Run(open_release(small_release),
                                                       tmp_path / "models", log=lambda _: None))
    cmd = [sys.executable, "bench/picture_boxes.py", str(out), str(small_release),
           "--cache", str(tmp_path / "cache")]
    runs = [subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    rows = {line.split("  ")[0].strip(): line for line in runs[0].stdout.splitlines()}
    assert {"no boxes", "defaults", "gap 4", "inkshare 0.10", "ceiling"} <= set(rows)
    assert 0.0 <= float(rows["ceiling"].split()[3]) <= 1.0  # its image IoU
    assert runs[0].stdout.splitlines()[-1].startswith("image px in no block: ")
    assert runs[1].stdout == runs[0].stdout  # the second run reads the cached logits
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == len(open_release(small_release).pages("val"))
