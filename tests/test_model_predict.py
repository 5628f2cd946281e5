"""Prediction and evaluation: windows without seams, the preannotation schema on disk,
real captured pages end to end, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog.records import Annotation
from export.synthetic import draw_page
from model.infer import Windowing, predict_page, scaled_logits, softmax, window_spans
from model.predict import predict_files
from model.release import open_release
from model.store import ModelError, load_model
from model.train import Run, train

from .image_bombs import bomb_jpeg, bomb_png, bomb_webp
from .test_model_train import (  # noqa: F401  (small_release: a module fixture)
    release_without_val,
    small_release,
    tiny,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_model(small_release, tmp_path_factory) -> Path:  # noqa: F811
    models = tmp_path_factory.mktemp("models")
    return train(tiny(epochs=3), Run(open_release(small_release), models, log=lambda _: None))


def run_model(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


def test_windows_cover_every_row_once_with_cuts_inside_the_overlap():
    for height in (10, 512, 513, 1000, 2400, 5001):
        spans = window_spans(height, Windowing(512, 128))
        kept = np.concatenate([np.arange(k0, k1) for _, _, k0, k1 in spans])
        assert np.array_equal(kept, np.arange(height)), height
        for start, stop, k0, k1 in spans:
            assert stop - start <= 512 and start <= k0 < k1 <= stop
            assert k0 == 0 or k0 - start >= 128  # a cut is a margin away from the edge
            assert k1 == height or stop - k1 >= 128


@pytest.mark.slow
def test_windowed_prediction_of_a_tall_page_equals_the_whole_page(tiny_model):
    model = load_model(tiny_model)
    img, _, _ = draw_page(256, 2400, seed=5)
    whole = scaled_logits(model.net, model.norm, img, Windowing(window=4096), features=True)
    cut = scaled_logits(model.net, model.norm, img, Windowing(window=512, margin=128),
                        features=True)
    # Where the receptive field reaches past a window's margin the two differ by float
    # noise: probabilities within 0.02, the same class for all but a few pixels.
    for a, b in zip(whole[:2], cut[:2], strict=True):
        assert np.abs(softmax(a) - softmax(b)).max() < 0.02
        assert (a.argmax(0) == b.argmax(0)).mean() >= 0.999
    # The network's stride-4 features (the picture chooser's) are stitched the same way;
    # these windows all start on the stride.
    assert whole[2].shape == cut[2].shape == (model.net.feature_channels, 600, 64)
    assert np.abs(whole[2] - cut[2]).max() <= 0.02 * np.abs(whole[2]).max()


@pytest.mark.slow
def test_any_page_size_gives_masks_of_that_size(tiny_model):
    model = load_model(tiny_model)
    for w, h in ((1000, 7), (37, 3000), (640, 640)):
        rgb = np.full((h, w, 3), 250, np.uint8)
        pred = predict_page(model.net, model.norm, rgb, model.working_width, model.windowing)
        assert pred.elements.shape == (h, w)


@pytest.mark.slow
def test_predict_writes_the_preannotation_schema_and_one_mask_per_element_class(
        tiny_model, tmp_path):
    img, _, _ = draw_page(512, 1500, seed=3)
    Image.fromarray(img).save(tmp_path / "page.png")
    out = tmp_path / "out"
    proc = run_model("predict", str(tiny_model), str(tmp_path / "page.png"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "page.json").read_text())
    ann = Annotation.from_dict(doc)  # the schema other stages read
    assert (ann.page_id, ann.width, ann.height) == ("page", 512, 1500)
    assert doc["meta"]["version"] == tiny_model.name and doc["meta"]["annotator"] == "model"
    assert set(ann.masks) == {"text", "image", "interactive"}
    for cls, name in ann.masks.items():
        assert name == f"page_mask_{cls}.png"
        with Image.open(out / name) as m:
            assert m.size == (512, 1500) and m.mode == "L"
            assert set(np.unique(np.asarray(m))) <= {0, 255}
    for r in doc["regions"]:
        x, y, w, h = r["bbox"]
        assert r["source"] == "model" and 0 <= r["score"] <= 1
        assert min(x, y) >= 0 and x + w <= 512 and y + h <= 1500


@pytest.mark.slow
def test_two_predict_runs_over_the_same_image_write_the_same_bytes(tiny_model, tmp_path):
    """Timings go to the summary line, never into the files: a rerun is byte-identical."""
    img, _, _ = draw_page(256, 700, seed=4)
    Image.fromarray(img).save(tmp_path / "page.png")
    proc = run_model("predict", str(tiny_model), str(tmp_path / "page.png"),
                     "--out", str(tmp_path / "first"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith(" s")  # the time is in the summary line
    predict_files(load_model(tiny_model), [tmp_path / "page.png"], tmp_path / "second")
    first = {p.name: p.read_bytes() for p in (tmp_path / "first").iterdir()}
    second = {p.name: p.read_bytes() for p in (tmp_path / "second").iterdir()}
    assert sorted(first) == sorted(second) and "page.json" in first
    assert first == second
    assert "seconds" not in json.loads(first["page.json"])["meta"]


@pytest.mark.slow
def test_predict_refuses_a_file_that_is_no_image_and_loses_nothing(tiny_model, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(draw_page(256, 400, seed=1)[0]).save(good)
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.json").write_text("{}")
    proc = run_model("predict", str(tiny_model), str(good), str(bad), "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "notes.png" in lines[0] and "not a readable image" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["earlier.json"]


@pytest.mark.slow
def test_predict_refuses_an_image_bomb_from_its_header_in_one_line(tiny_model, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(draw_page(256, 400, seed=1)[0]).save(good)
    for name, data in (("bomb.png", bomb_png(100_000, 100_000)),
                       ("bomb.jpg", bomb_jpeg(65_000, 65_000)),
                       ("bomb.webp", bomb_webp(100_000, 100_000))):
        (tmp_path / name).write_bytes(data)
        out = tmp_path / f"out-{name}"
        proc = run_model("predict", str(tiny_model), str(good), str(tmp_path / name),
                         "--out", str(out))
        assert proc.returncode == 2, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "image bomb" in lines[0], lines
        assert not out.exists() or not any(out.iterdir())  # nothing written


@pytest.mark.slow
def test_a_missing_or_damaged_weight_file_is_named(tiny_model, tmp_path):
    copy = tmp_path / "m0001"
    shutil.copytree(tiny_model, copy)
    weights = copy / "model.safetensors"
    os.chmod(weights, 0o644)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged"):
        load_model(copy)
    weights.unlink()
    proc = run_model("predict", str(copy), str(tmp_path / "x.png"), "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "model.safetensors is missing" in proc.stderr
    assert "make train" in proc.stderr


@pytest.mark.slow
def test_evaluate_reports_the_model_next_to_both_baselines(tiny_model, small_release):  # noqa: F811
    proc = run_model("evaluate", str(tiny_model), str(small_release))
    assert proc.returncode == 0, proc.stderr
    assert "model" in proc.stdout and "pixels" in proc.stdout and "majority" in proc.stdout
    written = tiny_model / f"evaluation-{small_release.parent.parent.name}-" \
        f"{small_release.name}-val.json"
    doc = json.loads(written.read_text())
    for method in ("model", "pixels", "majority"):
        iou = doc["elements"][method]["iou"]
        assert set(iou) == {"background", "text", "image", "interactive"}
        assert 0 <= doc["elements"][method]["pixel_accuracy"] <= 1
    assert doc["pages"] == len(open_release(small_release).pages("val"))
    # Where each class's pixels went, and the figures of each val site on its own.
    conf = np.array(doc["element_confusion"])
    assert conf.shape == (4, 4)
    assert conf.sum(1).tolist() == list(doc["elements"]["model"]["pixels"].values())
    val_sites = {p.site for p in open_release(small_release).pages("val")}
    assert set(doc["per_site"]) == val_sites
    assert sum(sum(r["pixels"].values()) for r in doc["per_site"].values()) == conf.sum()
    assert "predicted as" in proc.stdout


@pytest.mark.slow
def test_evaluate_refuses_a_release_with_other_classes(tiny_model, small_release, tmp_path):  # noqa: F811
    other = tmp_path / "other" / "releases" / "v0001"
    shutil.copytree(small_release, other)
    classes = other / "classes.json"
    os.chmod(classes, 0o644)
    data = json.loads(classes.read_text())
    data["classes"][-1]["name"] = "button"
    classes.write_text(json.dumps(data))
    proc = run_model("evaluate", str(tiny_model), str(other))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "button" in proc.stderr
    assert "train a model on this one" in proc.stderr


@pytest.mark.slow
def test_evaluate_refuses_a_release_without_val_pages(tiny_model, tmp_path):
    rel = release_without_val(tmp_path / "ws")
    before = sorted(p.name for p in tiny_model.iterdir())
    proc = run_model("evaluate", str(tiny_model), str(rel))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no val pages" in proc.stderr
    assert sorted(p.name for p in tiny_model.iterdir()) == before


@pytest.mark.slow
def test_kreuzer_regions_are_scored_next_to_the_dom_proposal_of_the_same_pages(
        tiny_model, tmp_path):
    """From the folder `annotate evaluate --kreuzer` writes: its figures per page, the
    rendered truth and the screenshots."""
    out = tmp_path / "kreuzer-eval"
    pages, truths = [], {}
    for i, split in enumerate(("heldout", "heldout", "dev")):
        pid, name = f"p{i}", f"site{i}.com/index"
        img, regions, _ = draw_page(320, 900, seed=i)
        shot = out / "workspace" / "pages" / pid / "screenshot.png"
        shot.parent.mkdir(parents=True)
        Image.fromarray(img).save(shot)
        truths[name] = {"key": "1:1", "width": 320, "height": 900, "blocks": [
            {"type": t, "tag": "div", "bbox": r["bbox"]}
            for t, r in zip(("Header", "Menu", "Content", "Sidebar", "Footer"), regions,
                            strict=True)]}
        figures = {k: 0.5 + 0.1 * i for k in ("seg_p", "seg_r", "seg_f1", "bcubed_p",
                                              "bcubed_r", "bcubed_f1")}
        pages.append({"name": name, "page_id": pid, "split": split,
                      "scores": {"proposal": figures, "naive_dom": figures}})
    (out / "evaluation.json").write_text(json.dumps({"schema": 1, "pages": pages}))
    (out / "truth.json").write_text(json.dumps(truths))
    proc = run_model("evaluate", str(tiny_model), "--kreuzer", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Kreuzer heldout: 2 pages" in proc.stdout
    doc = json.loads((tiny_model / "evaluation-kreuzer-heldout.json").read_text())
    assert doc["pages"] == 2 and set(doc["methods"]) == {"model", "proposal", "naive_dom"}
    assert doc["methods"]["proposal"]["bcubed_f1"] == pytest.approx(0.55)  # pages 0 and 1
    assert 0 <= doc["methods"]["model"]["bcubed_f1"] <= 1
    missing = run_model("evaluate", str(tiny_model), "--kreuzer", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "annotate evaluate --kreuzer" in missing.stderr


@pytest.mark.slow
def test_the_readme_loads_a_model_in_five_lines(tiny_model):
    import re

    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## The model", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    placeholder = 'model_dir = "datasets/sqlite-docs/models/m0001"'
    assert placeholder in code
    code = code.replace(placeholder, f"model_dir = {str(tiny_model)!r}")
    code += "\nimport torch\nprint(tuple(net(torch.zeros(1, 3, 64, 96))[0].shape))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(1, 4, 64, 96)"
