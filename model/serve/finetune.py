"""Fine-tuning on a Label Studio project's annotations, in one background worker: pull the
annotated tasks, write them as a release the training loop reads (their pages as train, the
served model's val split as val), train from the served weights, and switch only when the
new version is no worse on that val split."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from catalog.brush_rle import rle_to_mask

from ..evaluate import evaluate
from ..network import NetConfig
from ..release import open_release
from ..store import WEIGHTS
from ..train import Run, TrainConfig, train
from .inputs import decode_image
from .studio import fetch_task_image, parse_config, studio_access


class FineTuner:
    """One fine-tune at a time; events that arrive meanwhile make one more run after it."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.pending: dict[int, str] = {}
        self.thread: threading.Thread | None = None
        self.runs = 0  # finished fine-tunes, for callers that wait on one

    def request(self, project: int, action: str) -> str:
        with self.lock:
            again = project in self.pending
            self.pending[project] = action
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="finetune", daemon=True)
                self.thread.start()
        return "already queued" if again else "queued"

    def _loop(self) -> None:
        served = self.app.extensions["served"]
        while True:
            with self.lock:
                if not self.pending:
                    self.thread = None
                    return
                project, action = self.pending.popitem()
            served.note(state="running", project=project, trigger=action)
            try:
                served.note(project=project, trigger=action, **finetune(self.app, project))
            except Exception as exc:  # a failed fine-tune keeps the served model
                traceback.print_exc()
                served.note(state="failed", project=project, trigger=action,
                            reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
            with self.lock:
                self.runs += 1


_CREATE = threading.Lock()


def queue_finetune(app, project: int, action: str) -> str:
    with _CREATE:
        tuner = app.extensions.get("finetune")
        if tuner is None:
            tuner = app.extensions["finetune"] = FineTuner(app)
    return tuner.request(project, action)


def pull_annotated(base: str, key: str, project: int) -> tuple[str, list[dict]]:
    """The project's labelling config and its tasks with at least one kept annotation."""
    headers = {"Authorization": f"Token {key}"}
    proj = requests.get(f"{base}/api/projects/{project}", headers=headers, timeout=60)
    proj.raise_for_status()
    r = requests.get(f"{base}/api/projects/{project}/export", params={"exportType": "JSON"},
                     headers=headers, timeout=300)
    r.raise_for_status()
    tasks = [t for t in r.json()
             if any(not a.get("was_cancelled") for a in t.get("annotations", []))]
    return proj.json()["label_config"], tasks


def _latest(task: dict) -> dict:
    kept = [a for a in task["annotations"] if not a.get("was_cancelled")]
    return max(kept, key=lambda a: a.get("updated_at") or a.get("created_at") or "")


def task_targets(task: dict, classes: list[dict], width: int, height: int
                 ) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    """The semantic element mask (class ids of classes.json) and region boxes of a task's
    latest annotation, in image pixels."""
    ids = {(c["kind"], c["name"]): c["id"] for c in classes}
    sem = np.zeros((height, width), np.uint8)
    regions = []
    for item in _latest(task).get("result", []):
        v = item.get("value", {})
        if item.get("type") == "rectanglelabels":
            for label in v.get("rectanglelabels", []):
                if ("region", label) in ids:
                    regions.append((ids[("region", label)],
                                    [v["x"] * width / 100, v["y"] * height / 100,
                                     v["width"] * width / 100, v["height"] * height / 100]))
        elif item.get("type") == "brushlabels" and v.get("format") == "rle":
            mask = rle_to_mask(v["rle"], width, height) > 0
            for label in v.get("brushlabels", []):
                if ("element", label) in ids:
                    sem[mask] = ids[("element", label)]
    return sem, regions


def write_release(out: Path, classes: list[dict], pages: list[tuple[str, np.ndarray,
                  np.ndarray, list]], val_from: Path) -> Path:
    """A release directory of the annotated pages (train) and another release's val split."""
    train_dir = out / "train"
    (train_dir / "images").mkdir(parents=True)
    (train_dir / "masks").mkdir()
    rows, images, anns = [], [], []
    for k, (page_id, rgb, sem, regions) in enumerate(pages):
        Image.fromarray(rgb).save(train_dir / "images" / f"{page_id}.png", compress_level=1)
        Image.fromarray(sem, mode="L").save(train_dir / "masks" / f"{page_id}.png")
        h, w = sem.shape
        rows.append({"page_id": page_id, "file_name": f"images/{page_id}.png",
                     "mask_file_name": f"masks/{page_id}.png", "width": w, "height": h,
                     "site": page_id})
        images.append({"id": k + 1, "page_id": page_id, "width": w, "height": h})
        anns += [{"id": len(anns) + 1, "image_id": k + 1, "category_id": cid, "bbox": bbox}
                 for cid, bbox in regions]
    (train_dir / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (train_dir / "annotations.json").write_text(json.dumps({"images": images,
                                                            "annotations": anns}))
    (out / "classes.json").write_text(json.dumps({"classes": classes}))
    (out / "val").symlink_to((val_from / "val").resolve(), target_is_directory=True)
    digest = hashlib.sha256()
    for f in sorted(train_dir.rglob("*")):
        if f.is_file():
            digest.update(f.name.encode() + hashlib.sha256(f.read_bytes()).digest())
    digest.update((val_from / "SHA256SUMS").read_bytes())
    (out / "SHA256SUMS").write_text(f"{digest.hexdigest()}  train+val\n")
    return out


def _score(ev) -> float:
    """What "no worse" is judged on: the mean of element and region mean IoU on val."""
    return (ev.elements["model"]["mean_iou"] + ev.regions["model"]["mean_iou"]) / 2


def judged_on(card: dict) -> Path:
    if card.get("release", {}).get("path"):
        return Path(card["release"]["path"])
    return Path(card["learned_from"]["val_release"])


def finetune(app, project: int) -> dict:
    cfg = app.config["SERVE"]
    served = app.extensions["served"]
    old = served.current()
    host, key = studio_access(app)
    base, key = (cfg.label_studio_url or host).rstrip("/"), cfg.label_studio_key or key
    if not base or not key:
        return {"state": "skipped", "reason": "no Label Studio URL and key: set "
                "LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY for the backend"}
    label_config, tasks = pull_annotated(base, key, project)
    if not tasks:
        return {"state": "skipped", "reason": f"project {project} has no annotated task"}
    image_key = parse_config(label_config).image_key
    classes = old.card["classes"]
    pages = []
    for t in tasks:
        rgb = decode_image(fetch_task_image(str(t["data"][image_key]), cfg, host, key),
                           cfg.max_pixels)
        sem, regions = task_targets(t, classes, rgb.shape[1], rgb.shape[0])
        pages.append((f"task{t['id']}", rgb, sem, regions))
    val_from = judged_on(old.card)
    work = cfg.scratch / f"finetune-{project}"
    shutil.rmtree(work, ignore_errors=True)
    release = open_release(write_release(work / "release", classes, pages, val_from))
    learned = {"label_studio": base, "project": project, "from_model": old.version,
               "tasks": [{"id": t["id"], "updated_at": t.get("updated_at"),
                          "annotation": _latest(t).get("id"),
                          "annotation_updated_at": _latest(t).get("updated_at")}
                         for t in tasks], "val_release": str(val_from)}

    def card_update(card: dict) -> dict:
        card = {k: v for k, v in card.items() if k != "release"}
        return {**card, "learned_from": learned}

    old_cfg = old.card["config"]
    tc = TrainConfig(**{**{k: old_cfg[k] for k in ("working_width", "crop", "batch", "lr",
                                                 "seed", "threads", "panels", "frames", "jaccard",
                                                 "calibrate_pages")
                           if k in old_cfg},
                        "epochs": 3, "lr": old_cfg.get("lr", 2e-3) / 4, **cfg.finetune})
    tc = replace(tc, network=NetConfig.from_json(old.card["network"]))
    new_path = train(tc, Run(release, cfg.models_dir, init_weights=old.path / WEIGHTS,
                             card_update=card_update, log=lambda _: None))
    from ..store import load_model

    new = load_model(new_path)
    before, after = _score(evaluate(old, release, "val")), _score(evaluate(new, release, "val"))
    shutil.rmtree(work, ignore_errors=True)
    verdict = {"candidate": new.version, "val_score": round(after, 4),
               "served_val_score": round(before, 4), "judged_on": str(val_from)}
    if after + 1e-9 >= before:
        served.switch(new_path)
        return {"state": "switched", **verdict,
                "reason": f"{new.version} is no worse on val ({after:.4f} >= {before:.4f})"}
    return {"state": "refused", **verdict,
            "reason": f"{new.version} is worse on val ({after:.4f} < {before:.4f} of "
            f"{old.version}): kept {old.version}"}
