"""Pre-annotation with the model stage's predictions (run as `python -m model predict`, read
from its files): where the DOM explains little of a page the model's regions stand, the
meta names the model, the same inputs give the same bytes, and a broken model is one line
of error. The convention learner keeps the model only for a team whose pages it helps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotate.__main__ import main as annotate_main
from annotate.propose.boxes import load_boxes
from annotate.propose.model_regions import dom_coverage
from catalog.records import Annotation
from catalog.workspace import Workspace, read_json
from export.synthetic import draw_page

from .test_learn import FOOTER, HEADER, MAIN, SIDE, write_page
from .test_learn import _workspace as dom_workspace
from .test_model_predict import tiny_model  # noqa: F401  (a module fixture)
from .test_model_train import small_release  # noqa: F401  (tiny_model's release)
from .test_preannotate import _box

ROOT = Path(__file__).resolve().parent.parent


def canvas_page(ws: Workspace, pid: str, seed: int, width: int = 256,
                height: int = 512) -> None:
    """A page painted on a canvas: its screenshot has header, text, pictures and sidebar
    (drawn as the model's training pages are), its DOM one canvas box and nothing else."""
    boxes = [_box(0, "block", (0, 0, width, height), tag="body", depth=0),
             _box(1, "image", (0, 0, width, height), 0, tag="canvas")]
    folder = write_page(ws, {"schema": 1, "page_id": pid, "width": width, "height": height,
                             "boxes": boxes})
    img, _, _ = draw_page(width, height, seed=seed)
    Image.fromarray(img).save(folder / "screenshot.png")


def drawn_screenshot(ws: Workspace, pid: str) -> None:
    """The screenshot of a hand-made DOM page: its text and pictures inked on white."""
    page = load_boxes(ws.boxes_json(pid))
    img = np.full((page.height, page.width, 3), 255, np.uint8)
    for b in page.boxes:
        if b.kind in ("text", "image"):
            x, y, w, h = (int(v) for v in b.bbox)
            img[y:y + h, x:x + w] = (20, 20, 20) if b.kind == "text" else (200, 80, 40)
    Image.fromarray(img).save(ws.screenshot(pid))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "annotate", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


def files(ws: Workspace) -> dict[str, bytes]:
    return {str(p.relative_to(ws.root)): p.read_bytes()
            for p in sorted(ws.pages_dir.rglob("*")) if p.is_file()}


def test_dom_coverage_is_low_for_a_canvas_and_high_for_a_page_the_dom_explains(tmp_path):
    ws = Workspace(tmp_path / "ws").ensure()
    canvas_page(ws, "canvas", seed=1)
    gray = np.asarray(Image.open(ws.screenshot("canvas")).convert("L"))
    assert dom_coverage(load_boxes(ws.boxes_json("canvas")), gray) == 0.0
    ws2 = dom_workspace(tmp_path, {}, unannotated=1)
    drawn_screenshot(ws2, "p0")
    gray = np.asarray(Image.open(ws2.screenshot("p0")).convert("L"))
    assert dom_coverage(load_boxes(ws2.boxes_json("p0")), gray) >= 0.95


def test_a_missing_model_directory_is_one_line_naming_it(tmp_path):
    ws = Workspace(tmp_path / "ws").ensure()
    canvas_page(ws, "canvas", seed=1)
    res = run("preannotate", "--workspace", str(ws.root), "--model", str(tmp_path / "m0042"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "model directory" in lines[0] and "m0042" in lines[0]
    assert not ws.preannotation_json("canvas").exists()


def test_a_model_that_cannot_predict_is_one_line_and_writes_no_proposal(tmp_path):
    ws = Workspace(tmp_path / "ws").ensure()
    canvas_page(ws, "canvas", seed=1)
    broken = tmp_path / "m0007"
    broken.mkdir()
    (broken / "model.json").write_text(json.dumps({"version": "m0007"}))  # no weights
    res = run("preannotate", "--workspace", str(ws.root), "--model", str(broken))
    assert res.returncode == 2, res.stderr
    error = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(error) == 1 and "`python -m model predict" in error[0] and "failed" in error[0]
    assert not ws.preannotation_json("canvas").exists()


@pytest.mark.slow
def test_a_canvas_page_gets_the_models_regions_and_the_same_bytes_twice(
        tiny_model, tmp_path):  # noqa: F811
    ws = Workspace(tmp_path / "ws").ensure()
    canvas_page(ws, "canvas", seed=3)
    ws_dom = dom_workspace(tmp_path, {}, unannotated=1)
    drawn_screenshot(ws_dom, "p0")
    version = json.loads((tiny_model / "model.json").read_text())["version"]
    for w in (ws, ws_dom):
        assert annotate_main(["preannotate", "--workspace", str(w.root), "--model",
                              str(tiny_model)]) == 0
    prediction = Annotation.from_dict(read_json(ws.root / "predictions" / version
                                                / "canvas.json"))
    assert prediction.regions, "the tiny model should see regions on its own kind of page"
    canvas = Annotation.from_dict(read_json(ws.preannotation_json("canvas")))
    assert canvas.meta["model"] == version and canvas.meta["model_use"] == "model"
    assert [(r.label, r.bbox) for r in canvas.regions] == [
        (r.label, r.bbox) for r in prediction.regions]
    assert {r.source for r in canvas.regions} == {"model"}
    # A page the DOM explains keeps the DOM's regions; the meta still names the model.
    dom = Annotation.from_dict(read_json(ws_dom.preannotation_json("p0")))
    assert dom.meta["model"] == version and dom.meta["model_use"] == "none"
    assert "model" not in {r.source for r in dom.regions}
    first = files(ws)
    assert annotate_main(["preannotate", "--workspace", str(ws.root), "--model",
                          str(tiny_model), "--force"]) == 0
    assert files(ws) == first


@pytest.mark.slow
def test_the_learner_keeps_the_model_for_a_team_whose_pages_it_reads(
        tiny_model, tmp_path):  # noqa: F811
    """Canvas pages the team annotated as the model sees them: the DOM alone proposes
    nothing there, so the learned convention takes the model's regions, and proposes the
    team's next canvas page with them."""
    ws = Workspace(tmp_path / "ws").ensure()
    for i in range(4):
        canvas_page(ws, f"c{i}", seed=10 + i)
    assert annotate_main(["preannotate", "--workspace", str(ws.root), "--model",
                          str(tiny_model)]) == 0
    for i in range(3):
        proposed = json.loads(ws.preannotation_json(f"c{i}").read_text())
        assert proposed["regions"]
        proposed["meta"] = {"annotator": "team"}
        ws.annotation_json(f"c{i}").write_text(json.dumps(proposed))
    assert annotate_main(["learn", "--workspace", str(ws.root), "--model",
                          str(tiny_model)]) == 0
    c = ws.latest_convention()
    version = json.loads((tiny_model / "model.json").read_text())["version"]
    assert c.model == version and c.model_coverage > 0
    assert c.figures["model_segment_f1"]["DOM alone"] == 0.0
    assert c.figures["segment_f1_model"] == 1.0
    ws.preannotation_json("c3").unlink()
    assert annotate_main(["preannotate", "--workspace", str(ws.root), "--model",
                          str(tiny_model)]) == 0
    fresh = Annotation.from_dict(read_json(ws.preannotation_json("c3")))
    assert fresh.meta["convention"] == c.version and fresh.meta["model_use"] == "model"


@pytest.mark.slow
def test_the_learner_leaves_the_model_out_for_a_team_the_dom_already_suits(
        tiny_model, tmp_path):  # noqa: F811
    team = [(HEADER, "header"), (MAIN, "main"), (SIDE, "sidebar"), (FOOTER, "footer")]
    ws = dom_workspace(tmp_path, {f"p{i}": team for i in range(4)})
    for pid in ws.page_ids():
        drawn_screenshot(ws, pid)
    assert annotate_main(["learn", "--workspace", str(ws.root), "--model",
                          str(tiny_model)]) == 0
    c = ws.latest_convention()
    assert c.model and c.model_coverage == 0.0 and not c.model_fill
    assert c.figures["model_use"] == "DOM alone"
    scores = c.figures["model_segment_f1"]
    assert scores["model on every page"] < scores["DOM alone"]


def test_the_page_is_redone_when_the_model_changes(tmp_path):
    from annotate.propose.cli import up_to_date
    from annotate.propose.preannotate import VERSION

    meta = {"version": VERSION, "annotator": "pipeline", "model": "m0001"}
    assert up_to_date(meta, None, annotated=False, model="m0001")
    assert not up_to_date(meta, None, annotated=False, model="m0002")
    assert not up_to_date(meta, None, annotated=False, model=None)
    assert up_to_date(meta, None, annotated=True, model="m0002")  # its annotator saw it



@pytest.mark.slow
def test_a_page_without_a_screenshot_is_not_proposed_again_on_every_run(
        tiny_model, tmp_path):  # noqa: F811
    """The model sees screenshots only: a page without one (a capture that kept its DOM but
    lost its image) is proposed from the DOM once, and a rerun with the same model leaves
    it, as it leaves the page the model did see."""
    ws = dom_workspace(tmp_path, {}, unannotated=2)
    seen, unseen = ws.page_ids()
    drawn_screenshot(ws, seen)
    assert not ws.screenshot(unseen).exists()
    args = ["preannotate", "--workspace", str(ws.root), "--model", str(tiny_model)]
    assert annotate_main(args) == 0
    first = {pid: ws.preannotation_json(pid).stat().st_mtime_ns for pid in (seen, unseen)}
    assert "model" not in json.loads(ws.preannotation_json(unseen).read_text())["meta"]
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert "pre-annotated 0 page(s)" in proc.stderr and "skipped 2" in proc.stderr
    assert {pid: ws.preannotation_json(pid).stat().st_mtime_ns
            for pid in (seen, unseen)} == first


def test_a_prediction_of_another_size_is_named_in_the_record_and_not_used(tmp_path):
    from annotate.propose import label_set
    from annotate.propose.preannotate import preannotate

    ws = dom_workspace(tmp_path, {}, unannotated=1)
    (pid,) = ws.page_ids()
    page = load_boxes(ws.boxes_json(pid))
    labels = label_set(None)
    alone, _ = preannotate(page, pid, labels)
    wrong = Annotation(page_id=pid, width=page.width // 2, height=page.height,
                       regions=[], masks={}, meta={"version": "m0007", "source": "model"})
    ann, _ = preannotate(page, pid, labels, prediction=wrong)
    assert [(r.label, r.bbox) for r in ann.regions] == [(r.label, r.bbox) for r in alone.regions]
    assert ann.meta["model"] == "m0007"
    assert ann.meta["model_use"].startswith("none: prediction 500x")
