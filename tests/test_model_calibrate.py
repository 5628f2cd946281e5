"""Decision offsets: fitted on training pages, written into the card, applied by every
consumer of the model, and added to an older model by `python -m model calibrate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.calibrate import calibration_pages, fit_offsets, mean_iou, sample_pixels
from model.metrics import Confusion, report
from model.pictures import PictureBoxes
from model.release import IGNORE, open_release, read_rgb
from model.store import load_model
from model.train import Run, train

from .test_model_train import ROOT, button_pages, release_of, tiny


@pytest.fixture(scope="module")
def small_release(tmp_path_factory) -> Path:
    return release_of(tmp_path_factory.mktemp("ws"), button_pages, 8)


def confident_logits(truth: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, N) logits that favour the true class by 2 under noise of 1."""
    logits = rng.normal(0, 1, (n, truth.size)).astype(np.float32)
    logits[truth, np.arange(truth.size)] += 2.0
    return logits


def test_an_over_predicted_class_gets_a_negative_offset_and_iou_rises():
    rng = np.random.default_rng(0)
    truth = rng.choice(4, 40_000, p=[0.7, 0.2, 0.05, 0.05])
    logits = confident_logits(truth, 4, rng)
    fair, before_fair, after_fair = fit_offsets(logits, truth)
    # As a weighted loss leaves it: class 2 pushed up by 1.8 logits everywhere.
    logits[2] += 1.8
    offsets, before, after = fit_offsets(logits, truth)
    assert offsets[0] == 0.0
    assert -2.5 <= offsets[2] - fair[2] <= -1.0, (offsets, fair)
    assert after > before + 0.03
    # Fitting again on logits already shifted by the offsets leaves nothing to gain.
    again, b2, a2 = fit_offsets(logits + offsets[:, None], truth)
    assert np.all(again == 0) and a2 == pytest.approx(b2)
    assert after_fair >= before_fair


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 5), st.integers(1, 300))
def test_mean_iou_is_the_metrics_mean_iou(seed, n, size):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n, size)
    logits = rng.normal(0, 1, (n, size)).astype(np.float32)
    offsets = rng.normal(0, 1, n).astype(np.float32)
    conf = Confusion(n)
    conf.add(truth.astype(np.uint8), (logits + offsets[:, None]).argmax(0).astype(np.uint8))
    expected = report(conf, [str(k) for k in range(n)])["mean_iou"]
    assert mean_iou(logits, truth, offsets) == pytest.approx(expected, abs=1e-4)


def test_sampled_pixels_leave_ignored_ones_out_and_are_drawn_by_the_seed():
    truth = np.zeros((40, 30), np.uint8)
    truth[:10] = IGNORE
    truth[20:, :] = 2
    logits = np.arange(4 * 40 * 30, dtype=np.float32).reshape(4, 40, 30)
    x, y = sample_pixels(logits, truth, 500, np.random.default_rng(1))
    assert x.shape == (4, 500) and y.shape == (500,)
    assert IGNORE not in y
    # Each sampled column is the logits of the pixel its class came from.
    flat = logits.reshape(4, -1)
    idx = x[0].astype(int)
    assert np.array_equal(flat[:, idx], x) and np.array_equal(truth.ravel()[idx], y)
    x2, _ = sample_pixels(logits, truth, 500, np.random.default_rng(1))
    assert np.array_equal(x, x2)
    allx, ally = sample_pixels(logits, truth, 10_000, np.random.default_rng(1))
    assert ally.size == (truth != IGNORE).sum()


def test_calibration_pages_are_a_seeded_random_draw():
    a = calibration_pages(1000, 100, seed=0)
    assert len(set(a)) == 100 and a == sorted(a) and a == calibration_pages(1000, 100, 0)
    assert a != calibration_pages(1000, 100, seed=1)
    assert max(a) > 500  # not the first pages of the split
    assert calibration_pages(7, 100, 0) == list(range(7))


@pytest.mark.slow
def test_training_writes_offsets_and_every_prediction_applies_them(small_release, tmp_path):
    release = open_release(small_release)
    out = train(tiny(epochs=2, calibrate_pages=3), Run(release, tmp_path / "models",
                                                       log=lambda _: None))
    model = load_model(out)
    decision = model.card["decision"]
    assert decision["fitted_on"] == "train" and decision["pages"] == 3
    assert len(decision["element_offsets"]) == 4 and decision["element_offsets"][0] == 0.0
    after = decision["train_mean_iou"]
    assert after["after"] >= after["before"]
    assert model.card["config"]["calibrate_pages"] == 3
    assert model.element_offsets == decision["element_offsets"]
    # The offsets decide what the model predicts: a large one makes its class win or lose.
    rgb = read_rgb(release.pages("val")[0].image)
    text = model.element_names.index("text")
    model.card["decision"]["element_offsets"] = [0.0, 100.0, 0.0, 0.0]
    assert np.all(model.predict(rgb).elements == text)
    model.card["decision"]["element_offsets"] = [0.0, -100.0, 0.0, 0.0]
    assert not np.any(model.predict(rgb).elements == text)


def model_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)


@pytest.mark.slow
def test_calibrate_publishes_the_same_weights_with_offsets(small_release, tmp_path):
    release = open_release(small_release)
    models = tmp_path / "models"
    old = train(tiny(epochs=2, calibrate_pages=0, picture_boxes=False),
                Run(release, models, log=lambda _: None))
    assert "decision" not in load_model(old).card
    proc = model_cli("calibrate", str(old), "--pages", "4")
    assert proc.returncode == 0, proc.stderr
    assert "decision offsets fitted on 4 training pages" in proc.stdout
    new = models / "m0002"
    card, was = json.loads((new / "model.json").read_text()), load_model(old).card
    assert card["weights_sha256"] == was["weights_sha256"]
    assert (new / "model.safetensors").read_bytes() == (old / "model.safetensors").read_bytes()
    assert card["derived_from"]["model"] == "m0001" and card["version"] == "m0002"
    assert len(card["decision"]["element_offsets"]) == 4
    # Four pages of made-up buttons hold no pictures to fit a chooser on; the log says so.
    assert card["decision"]["picture_boxes"] == PictureBoxes().to_json()
    assert "the join rule stays" in card["decision"]["picture_chooser"]
    assert "picture chooser not fitted" in proc.stdout
    assert card["release"] == was["release"] and card["epochs"] == was["epochs"]
    assert (new / "curves.png").is_file()
    # Picture blocks joined only when near: the setting is the card's, the weights the same.
    proc = model_cli("calibrate", str(old), "--pages", "4", "--no-picture-chooser",
                     "--picture-gap", "6")
    assert proc.returncode == 0, proc.stderr
    gapped = json.loads((models / "m0003" / "model.json").read_text())
    assert gapped["decision"]["picture_boxes"] == PictureBoxes(gap=6).to_json()
    assert load_model(models / "m0003").picture_boxes == PictureBoxes(gap=6)
    assert gapped["weights_sha256"] == was["weights_sha256"]


def test_calibrate_refuses_a_release_the_model_was_not_trained_on(small_release, tmp_path):
    release = open_release(small_release)
    old = train(tiny(epochs=1, calibrate_pages=0), Run(release, tmp_path / "models",
                                                       log=lambda _: None))
    other = tmp_path / "other"
    other.mkdir()
    for name in ("classes.json", "SHA256SUMS"):
        (other / name).write_bytes((small_release / name).read_bytes())
    with open(other / "SHA256SUMS", "a") as f:
        f.write("0" * 64 + "  extra.txt\n")
    proc = model_cli("calibrate", str(old), str(other))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model m0001 was trained on release")
    assert "give the release it was trained on" in lines[0]
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith("m")] == ["m0001"]


def test_a_model_without_offsets_predicts_its_plain_argmax(small_release, tmp_path):
    release = open_release(small_release)
    out = train(tiny(epochs=1, calibrate_pages=0, picture_boxes=False),
                Run(release, tmp_path / "models", log=lambda _: None))
    model = load_model(out)
    assert model.element_offsets is None and "decision" not in model.card
    rgb = read_rgb(release.pages("val")[0].image)
    plain = model.predict(rgb).elements
    model.card["decision"] = {"element_offsets": [0.0, 0.0, 0.0, 0.0]}
    assert np.array_equal(model.predict(rgb).elements, plain)
    assert Path(out / "model.json").is_file()


@pytest.mark.parametrize("args, says", [
    (["train", "--calibrate-pages", "-1"], "--calibrate-pages must be 0 or more"),
    (["train", "--panels", "1.5"], "--panels is a chance: give a number from 0 to 1"),
    (["train", "--jaccard", "-0.5"], "--jaccard must be 0 or more"),
    (["train", "--frames", "2"], "--frames is a chance: give a number from 0 to 1"),
    (["calibrate", "--pages", "0"], "--pages must be 1 or more"),
    (["calibrate", "--picture-gap", "-1"], "--picture-gap must be 0 or more"),
    (["calibrate", "--picture-gap", "4"],
     "--picture-gap sets the join rule: give --no-picture-chooser with it"),
])
def test_option_values_out_of_range_are_refused_before_any_work(args, says, tmp_path):
    proc = model_cli(*args, "--workspace", str(tmp_path / "ws"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(says), proc.stderr
    assert not (tmp_path / "ws").exists()
