"""`model evaluate --kreuzer OUT`: region quality from pixels alone on the Kreuzer corpus,
read from the folder `python -m annotate evaluate --kreuzer` wrote (evaluation.json with
each page's split and figures, truth.json with the rendered truth blocks, workspace/ with
the screenshots), scored with the same scorer (segmentation.metrics) and shown next to
that run's DOM proposal and baselines on the same pages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from catalog.workspace import Workspace, read_json
from segmentation.kreuzer_truth import truth_segments
from segmentation.metrics import Segment, bcubed, match_segments

from .infer import region_boxes
from .predict import read_image
from .store import LoadedModel

KEYS = ("seg_p", "seg_r", "seg_f1", "bcubed_p", "bcubed_r", "bcubed_f1")


@dataclass
class KreuzerResult:
    split: str
    pages: int
    methods: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> means
    skipped: list[str] = field(default_factory=list)


def evaluate_kreuzer(model: LoadedModel, out: Path, split: str = "heldout") -> KreuzerResult:
    out = Path(out)
    ev_path, truth_path = out / "evaluation.json", out / "truth.json"
    for path in (ev_path, truth_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: give the folder `python -m annotate evaluate --kreuzer "
                "DIR` wrote (its --out)")
    evaluation, truths = read_json(ev_path), read_json(truth_path)
    ws = Workspace(out / "workspace")
    rows = [p for p in evaluation["pages"] if split == "all" or p["split"] == split]
    if not rows:
        raise ValueError(f"{ev_path} holds no {split} page: run annotate evaluate --kreuzer "
                         "on the whole corpus")
    result = KreuzerResult(split, 0)
    per: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        shot = ws.screenshot(row["page_id"])
        if row["name"] not in truths or not shot.is_file():
            result.skipped.append(row["name"])
            continue
        rgb = read_image(shot)
        h, w = rgb.shape[:2]
        true = truth_segments(truths[row["name"]], w, h)
        pred_page = model.predict(rgb)
        pred = [Segment(r["label"], tuple(r["bbox"]))
                for r in region_boxes(pred_page, model.region_names)]
        m = match_segments(pred, true)
        bp, br, bf = bcubed(pred, true, w, h)
        per.setdefault("model", []).append(
            {"seg_p": m.precision, "seg_r": m.recall, "seg_f1": m.f1,
             "bcubed_p": bp, "bcubed_r": br, "bcubed_f1": bf})
        for method, figures in row.get("scores", {}).items():
            per.setdefault(method, []).append(figures)
        result.pages += 1
    result.methods = {method: {k: float(np.mean([f[k] for f in figs])) for k in KEYS}
                      for method, figs in per.items()}
    return result


def format_kreuzer(r: KreuzerResult) -> str:
    lines = [f"Kreuzer {r.split}: {r.pages} pages"
             + (f" ({len(r.skipped)} skipped: not captured)" if r.skipped else ""),
             f"{'method':<14}" + "".join(f"{k:>11}" for k in KEYS)]
    for method, figs in r.methods.items():
        lines.append(f"{method:<14}" + "".join(f"{figs[k]:>11.3f}" for k in KEYS))
    return "\n".join(lines)


def to_json(r: KreuzerResult) -> dict:
    return {"schema": 1, "split": r.split, "pages": r.pages, "methods": r.methods,
            "skipped": r.skipped}


def dump(r: KreuzerResult) -> str:
    return json.dumps(to_json(r), indent=1)
