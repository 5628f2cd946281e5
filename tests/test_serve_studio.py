"""`model serve` as Label Studio's ML backend, against the real server: `annotate push
--ml-backend --order uncertainty` connects it, Label Studio's own API returns the model's
rectangles and brush masks for a task (drawn from the project's labelling config), the
least certain task comes first, and annotations made through the API fine-tune a new model
version that is served when it is no worse on val and refused when it is worse."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog.brush_rle import decode_rle, mask_to_rle
from export.synthetic import draw_page
from model.predict import predict_image
from model.release import open_release
from model.serve import ServeConfig
from model.store import load_model
from model.train import Run, train

from .labelstudio_fixture import Api, StudioServer, make_workspace, run_annotate
from .serve_fixture import run_live, serve_model, serve_release  # noqa: F401
from .test_model_train import tiny

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]
W, H = 256, 512
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def button_page(seed: int) -> tuple[np.ndarray, list[dict], dict]:
    img, regions, masks = draw_page(W, H, seed=seed)
    img = img.copy()
    img[masks["interactive"] & ~masks["text"]] = (70, 130, 200)  # as the model learned them
    return img, regions, masks


def _post(api: Api, path: str, body: dict) -> dict:
    r = api.s.post(api.url + path, json=body, timeout=120)
    assert r.status_code < 300, r.text
    return r.json()


def _truth_result(regions: list[dict], masks: dict) -> list[dict]:
    out = []
    for r in regions:
        x, y, w, h = r["bbox"]
        out.append({"from_name": "region", "to_name": "image", "type": "rectanglelabels",
                    "original_width": W, "original_height": H,
                    "value": {"x": 100 * x / W, "y": 100 * y / H, "width": 100 * w / W,
                              "height": 100 * h / H, "rotation": 0,
                              "rectanglelabels": [r["label"]]}})
    for name, m in masks.items():
        out.append({"from_name": "mask", "to_name": "image", "type": "brushlabels",
                    "original_width": W, "original_height": H,
                    "value": {"format": "rle", "rle": mask_to_rle(m), "brushlabels": [name]}})
    return out


def _wait_finetune(live, runs: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tuner = live.app.extensions.get("finetune")
        if tuner is not None and tuner.runs >= runs and not tuner.pending:
            return live.get("/health").json()
        time.sleep(0.5)
    raise AssertionError(f"no fine-tune finished: {live.get('/health').json()}")


def test_label_studio_gets_model_predictions_and_annotations_fine_tune_it(
        labelstudio: StudioServer, serve_release, tmp_path: Path):  # noqa: F811
    # A weak served model (one epoch): good annotations should improve it.
    models = tmp_path / "models"
    first = train(tiny(epochs=1), Run(open_release(serve_release), models, log=lambda _: None))
    ws = make_workspace(labelstudio.document_root / "ws-serve", 3, sizes=[(W, H)])
    truth = {}
    for k, page_id in enumerate(sorted(p.name for p in (ws.root / "pages").iterdir())):
        img, regions, masks = button_page(100 + k)
        Image.fromarray(img).save(ws.page_dir(page_id) / "screenshot.png")
        truth[page_id] = (img, regions, masks)
    gen = run_live(ServeConfig(model=first, scratch=tmp_path / "scratch", timeout_s=100,
                               label_studio_url=labelstudio.url,
                               label_studio_key=labelstudio.api_key, document_root="",
                               finetune={"epochs": 8}))
    live = next(gen)

    proc = run_annotate(["push", "--workspace", str(ws.root), "--ml-backend", live.url,
                         "--order", "uncertainty", "--no-progress"], labelstudio.env(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "connected: ML backend" in proc.stdout and "least certain first" in proc.stdout

    api = Api(labelstudio)
    project = api.project("ws-serve")
    pid = project["id"]
    backends = api.get("/api/ml", project=pid)
    assert [b["url"] for b in backends] == [live.url]
    assert project["sampling"] == "Uncertainty sampling" and project["model_version"] == "m0001"
    again = run_annotate(["push", "--workspace", str(ws.root), "--ml-backend", live.url,
                          "--no-progress"], labelstudio.env(), tmp_path)
    assert again.returncode == 0 and "already connected" in again.stdout, again.stderr
    assert len(api.get("/api/ml", project=pid)) == 1

    tasks = api.tasks(pid)
    model = load_model(first)
    scores = {}
    for task in tasks:
        preds = [p for p in api.predictions(task["id"])
                 if p["model_version"] == "m0001"]
        assert len(preds) == 1, preds
        pred = preds[0]
        scores[task["id"]] = pred["score"]
        img = truth[task["data"]["page_id"]][0]
        kinds = {r["type"] for r in pred["result"]}
        assert kinds == {"rectanglelabels", "brushlabels"}, kinds
        for r in pred["result"]:
            assert (r["from_name"], r["to_name"]) == (
                {"rectanglelabels": "region", "brushlabels": "mask"}[r["type"]], "image")
        _, masks = predict_image(model, img, "x")  # the brush masks are the model's pixels
        brushes = [r for r in pred["result"] if r["type"] == "brushlabels"]
        assert brushes
        for r in brushes:
            name = r["value"]["brushlabels"][0]
            alpha = np.asarray(decode_rle(r["value"]["rle"])).reshape(H, W, 4)[..., 3]
            assert np.array_equal(alpha > 0, masks[name] > 0), name
    assert _post(api, f"/api/ml/{backends[0]['id']}/predict/test?random=true", {})
    # Uncertainty sampling: the task the model is least sure of is served first.
    nxt = api.get(f"/api/projects/{pid}/next")
    assert nxt["id"] == min(scores, key=scores.get), (nxt["id"], scores)

    # An annotation through the API: the webhook queues a fine-tune, which writes m0002
    # from the served weights and switches to it (no worse on val).
    by_page = {t["data"].get("page_id"): t for t in tasks}
    page_a = sorted(truth)[0]
    img, regions, masks = truth[page_a]
    api.annotate(by_page[page_a]["id"], _truth_result(regions, masks), 5)
    health = _wait_finetune(live, 1)
    assert health["finetune"]["state"] == "switched", health
    assert health["model_version"] == "m0002"
    card = json.loads((models / "m0002" / "model.json").read_text())
    assert "release" not in card
    learned = card["learned_from"]
    assert [t["id"] for t in learned["tasks"]] == [by_page[page_a]["id"]]
    assert learned["tasks"][0]["updated_at"] and learned["from_model"] == "m0001"
    assert health["finetune"]["val_score"] >= health["finetune"]["served_val_score"]

    # Wrong annotations (the whole page one picture, one footer) and a rate that wrecks the
    # weights: m0003 is written, judged worse on val, and refused; m0002 stays served.
    live.app.config["SERVE"].finetune = {"epochs": 8, "lr": 0.05}
    page_b = sorted(truth)[1]
    wrong = _truth_result([{"label": "footer", "bbox": [0, 0, W, H]}],
                          {"image": np.ones((H, W), bool)})
    api.annotate(by_page[page_b]["id"], wrong, 5)
    health = _wait_finetune(live, 2)
    assert health["finetune"]["state"] == "refused", health
    assert health["model_version"] == "m0002"
    assert "worse on val" in health["finetune"]["reason"]
    assert (models / "m0003" / "model.json").is_file()
    r = live.post("/predict", json={"tasks": [by_page[page_a]],
                                    "label_config": project["label_config"]})
    assert r.json()["results"][0]["model_version"] == "m0002"
    next(gen, None)
    shutil.rmtree(ws.root, ignore_errors=True)


@pytest.mark.browser
def test_the_labelling_ui_draws_the_models_rectangles_and_brush_masks(
        labelstudio: StudioServer, serve_model, chromium: str, tmp_path: Path):  # noqa: F811
    from .test_labelstudio_ui import _driver, _wait, login

    ws = make_workspace(labelstudio.document_root / "ws-serve-ui", 1, sizes=[(W, H)])
    (page_id,) = [p.name for p in (ws.root / "pages").iterdir()]
    Image.fromarray(button_page(7)[0]).save(ws.page_dir(page_id) / "screenshot.png")
    gen = run_live(ServeConfig(model=serve_model, scratch=tmp_path / "scratch",
                               label_studio_url=labelstudio.url,
                               label_studio_key=labelstudio.api_key))
    live = next(gen)
    proc = run_annotate(["push", "--workspace", str(ws.root), "--ml-backend", live.url,
                         "--no-progress"], labelstudio.env(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = Api(labelstudio)
    project = api.project("ws-serve-ui")
    assert project["model_version"] == "m0001"
    (task,) = api.tasks(project["id"])
    (pred,) = [p for p in api.predictions(task["id"]) if p["model_version"] == "m0001"]
    expected = sorted((r["value"].get("rectanglelabels") or r["value"]["brushlabels"])[0]
                      for r in pred["result"])
    assert any(r["type"] == "brushlabels" for r in pred["result"])
    driver = _driver(chromium)
    try:
        login(driver, labelstudio)
        driver.get(f"{labelstudio.url}/projects/{project['id']}/data?task={task['id']}")
        # The annotation the UI opens with is the model's prediction, every region drawn.
        state = ("const a = window.Htx && window.Htx.annotationStore.selected;"
                 "return a ? a.regions.map(r => [r.type, r.labels ? r.labels[0] : null])"
                 " : null;")
        drawn = _wait(lambda: (lambda d: d if d and len(d) >= len(expected) else None)(
            driver.execute_script(state)), 90, "the model's regions in the labelling UI")
        assert sorted(label for _, label in drawn) == expected
        assert sorted(t for t, _ in drawn) == sorted(
            "rectangleregion" if r["type"] == "rectanglelabels" else "brushregion"
            for r in pred["result"])
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve-labelstudio-task.png"))
    finally:
        driver.quit()
        next(gen, None)
