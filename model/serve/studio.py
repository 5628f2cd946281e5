"""Label Studio's ML backend API, as label-studio-ml-backend defines it: /setup, /predict
and /webhook (/health is the JSON API's). from_name, to_name and labels of every result
are read from the labelling config that comes with the request, so a prediction always
matches the project it is drawn in."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import requests
from flask import Blueprint, current_app, jsonify, request

from catalog.brush_rle import mask_to_rle

from .api import queued
from .inputs import BadInput, check_url, decode_image
from .segment import segment

studio = Blueprint("studio", __name__)
TRAIN_EVENTS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED",
                "ANNOTATIONS_CREATED", "ANNOTATIONS_DELETED", "START_TRAINING"}


@dataclass(frozen=True)
class Control:
    from_name: str
    to_name: str
    value: str  # the task data key of the image ("image" for value="$image")
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Controls:
    rectangles: Control | None
    brushes: Control | None

    @property
    def image_key(self) -> str:
        c = self.rectangles or self.brushes
        return c.value if c else "image"


def parse_config(xml: str) -> Controls:
    """The project's RectangleLabels and BrushLabels controls and the Image they label."""
    try:
        root = ET.fromstring(xml or "")
    except ET.ParseError as exc:
        raise BadInput(f"the labelling config is not XML ({exc})") from None
    images = {t.get("name"): (t.get("value") or "$image").lstrip("$")
              for t in root.iter("Image")}
    found: dict[str, Control | None] = {"RectangleLabels": None, "BrushLabels": None}
    for tag in root.iter():
        if tag.tag in found and found[tag.tag] is None and tag.get("toName") in images:
            found[tag.tag] = Control(tag.get("name", ""), tag.get("toName", ""),
                                     images[tag.get("toName")],
                                     tuple(lab.get("value", "") for lab in tag.iter("Label")))
    if not any(found.values()):
        raise BadInput("the labelling config has no RectangleLabels or BrushLabels on an "
                       "Image: nothing this model predicts can be shown")
    return Controls(found["RectangleLabels"], found["BrushLabels"])


def fetch_task_image(ref: str, cfg, host: str = "", key: str = "") -> bytes:
    """Bytes of a task's image: Label Studio's local-files URL read from the document root
    when it is configured here, else fetched from Label Studio with the API key (`host` and
    `key`: what /setup was told, when the environment names no server)."""
    parts = urlsplit(ref)
    if parts.path.rstrip("/").endswith("/data/local-files") and cfg.document_root:
        rel = parse_qs(parts.query).get("d", [""])[0]
        root = Path(cfg.document_root).resolve()
        path = (root / rel).resolve()
        if root not in path.parents or not path.is_file():
            raise BadInput(f"{rel} is not a file under the local-files root {root}", 404)
        return path.read_bytes()
    base = (cfg.label_studio_url or host).rstrip("/")
    key = cfg.label_studio_key or key
    headers = {}
    if not parts.scheme:
        if not base:
            raise BadInput(f"the task's image {ref} is relative to Label Studio: set "
                           "LABEL_STUDIO_URL (and LABEL_STUDIO_API_KEY) for the backend")
        ref = base + "/" + ref.lstrip("/")
    if base and ref.startswith(base + "/"):
        if key:
            headers["Authorization"] = f"Token {key}"
    else:
        check_url(ref, cfg.allow_hosts)
    try:
        r = requests.get(ref, headers=headers, timeout=60, stream=True)
        r.raise_for_status()
        data = r.raw.read(cfg.max_bytes + 1, decode_content=True)
    except requests.RequestException as exc:
        raise BadInput(f"the task's image {ref} could not be fetched ({exc})", 502) from None
    if len(data) > cfg.max_bytes:
        raise BadInput(f"the task's image {ref} is over the size limit", 413)
    return data


def studio_access(app) -> tuple[str, str]:
    """(host, key) that /setup was told."""
    return app.extensions.get("studio_host", ""), app.extensions.get("studio_key", "")


def _id() -> str:
    return uuid.uuid4().hex[:10]


def task_results(record: dict, masks: dict[str, np.ndarray], controls: Controls) -> list[dict]:
    """Label Studio result items: a rectangle per region, a brush mask per element class,
    each only when the project's config has that label."""
    w, h = record["width"], record["height"]
    common = {"original_width": w, "original_height": h, "image_rotation": 0}
    out = []
    rect = controls.rectangles
    for r in record["regions"] if rect else []:
        if r["label"] not in rect.labels:
            continue
        x, y, bw, bh = r["bbox"]
        out.append({"id": _id(), "from_name": rect.from_name, "to_name": rect.to_name,
                    "type": "rectanglelabels", **common, "score": r["score"],
                    "value": {"x": 100 * x / w, "y": 100 * y / h, "width": 100 * bw / w,
                              "height": 100 * bh / h, "rotation": 0,
                              "rectanglelabels": [r["label"]]}})
    brush = controls.brushes
    for name, mask in masks.items() if brush else []:
        if name not in brush.labels or not mask.any():
            continue
        out.append({"id": _id(), "from_name": brush.from_name, "to_name": brush.to_name,
                    "type": "brushlabels", **common,
                    "value": {"format": "rle", "rle": mask_to_rle(mask), "brushlabels": [name]}})
    return out


def _predict_task(model, controls: Controls, task: dict) -> dict:
    ref = (task.get("data") or {}).get(controls.image_key)
    if not ref:
        raise BadInput(f"task {task.get('id')} has no {controls.image_key!r} in its data")
    cfg = current_app.config["SERVE"]
    data = fetch_task_image(str(ref), cfg, *studio_access(current_app))
    rgb = decode_image(data, cfg.max_pixels)
    record, masks = queued("predict_queue", segment, model, rgb, str(task.get("id", "task")),
                           timeout=cfg.timeout_s, span="predict")
    scores = [r["score"] for r in record["regions"]]
    return {"result": task_results(record, masks, controls), "model_version": model.version,
            "score": round(float(np.mean(scores)) if scores else 0.0, 4)}


@studio.post("/setup")
def setup():
    body = request.get_json(silent=True) or {}
    parse_config(body.get("schema", ""))
    if body.get("hostname") and body.get("access_token"):
        current_app.extensions.setdefault("studio_host", body["hostname"])
        current_app.extensions.setdefault("studio_key", body["access_token"])
    return jsonify({"model_version": current_app.extensions["served"].current().version})


@studio.post("/predict")
def predict():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
        raise BadInput("send {\"tasks\": [...], \"label_config\": \"<View>...\"} as JSON")
    controls = parse_config(body.get("label_config") or body.get("schema", ""))
    model = current_app.extensions["served"].current()
    return jsonify({"results": [_predict_task(model, controls, t) for t in body["tasks"]],
                    "model_version": model.version})


@studio.post("/webhook")
def webhook():
    body = request.get_json(silent=True) or {}
    action = body.get("action", "")
    if action not in TRAIN_EVENTS:
        return jsonify({"status": "ignored", "action": action}), 200
    project = body.get("project") or {}
    pid = project.get("id") if isinstance(project, dict) else str(project).split(".")[0]
    if not pid:
        raise BadInput(f"the {action} event names no project")
    from .finetune import queue_finetune

    state = queue_finetune(current_app._get_current_object(), int(pid), action)
    return jsonify({"status": "ok", "action": action, "finetune": state}), 201
