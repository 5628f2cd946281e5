"""`model evaluate`: per-class IoU and pixel accuracy of both heads on a release split, at
the pages' own size, next to two baselines measured in the same run: the majority class
of the training pixels, and the classical pixel-only method (edge density and regular
text lines, after Mitsuhashi et al.) for the element classes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from catalog.workspace import write_json_atomic
from segmentation.pixels import unexplained_regions

from .metrics import Confusion, report
from .release import Release, ReleaseError, page_targets
from .store import LoadedModel, ModelError

METHODS = ("model", "pixels", "majority")


@dataclass
class Evaluation:
    model: str
    release: str
    split: str
    pages: int
    sites: list[str]
    seconds: float
    elements: dict[str, dict] = field(default_factory=dict)  # method -> report
    regions: dict[str, dict] = field(default_factory=dict)
    # The model's element head: rows are the truth, columns the prediction (pixels), and
    # its report on each site's pages: where a class is lost, and to what.
    element_confusion: list[list[int]] = field(default_factory=list)
    per_site: dict[str, dict] = field(default_factory=dict)
    path: Path | None = None

    def to_json(self) -> dict:
        return {"schema": 1, "model": self.model, "release": self.release,
                "split": self.split, "pages": self.pages, "sites": self.sites,
                "seconds": round(self.seconds, 1), "elements": self.elements,
                "regions": self.regions, "element_confusion": self.element_confusion,
                "per_site": self.per_site}


def check_classes(model: LoadedModel, release: Release) -> None:
    mine = [(c["id"], c["name"], c["kind"]) for c in model.card["classes"]]
    theirs = [(c["id"], c["name"], c["kind"]) for c in release.classes.table]
    if mine != theirs:
        raise ModelError(
            f"model {model.version} was trained on classes {[n for _, n, _ in mine]} but "
            f"release {release.version} has {[n for _, n, _ in theirs]}: evaluate it on a "
            "release with the same label set, or train a model on this one (make train)")


def pixel_baseline(rgb: np.ndarray) -> np.ndarray:
    """Element head classes (0 background, 1 text, 2 image) from pixels alone: busy
    blocks that read as text lines are text, other busy blocks are pictures."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    out = np.zeros((h, w), np.uint8)
    for (x, y, bw, bh), score in unexplained_regions(gray, [], min_area=0.0):
        out[int(y):int(y + bh), int(x):int(x + bw)] = 1 if score >= 0.4 else 2
    return out


def _majority(counts: list[int] | None, fallback: Confusion) -> int:
    if counts and sum(counts):
        return int(np.argmax(counts))
    return int(np.argmax(fallback.support()))


def evaluate(model: LoadedModel, release: Release, split: str = "val",
             progress: Callable[[int], None] | None = None) -> Evaluation:
    check_classes(model, release)
    pages = release.pages(split)
    if not pages:
        raise ReleaseError(
            f"release {release.path} has no {split} pages: evaluate on a release exported "
            "from more sites (or with a larger --val-ratio)")
    el_names, rg_names = model.element_names, model.region_names
    text_k, image_k = el_names.index("text"), el_names.index("image")
    conf = {m: (Confusion(len(el_names)), Confusion(len(rg_names))) for m in METHODS}
    t0 = time.perf_counter()
    by_site: dict[str, Confusion] = {}
    truths: list[tuple[np.ndarray, np.ndarray]] = []
    for page in pages:
        rgb, el_true, rg_true = page_targets(page, release.classes)
        pred = model.predict(rgb)
        regions = cv2.resize(pred.region_probs.argmax(0).astype(np.uint8),
                             (page.width, page.height), interpolation=cv2.INTER_NEAREST)
        conf["model"][0].add(el_true, pred.elements)
        by_site.setdefault(page.site, Confusion(len(el_names))).add(el_true, pred.elements)
        conf["model"][1].add(rg_true, regions)
        base = pixel_baseline(rgb)
        lut = np.array([0, text_k, image_k], np.uint8)
        conf["pixels"][0].add(el_true, lut[base])
        truths.append((el_true, rg_true))
        if progress:
            progress(len(pages))
    # The majority baseline: the most frequent class of the training pixels everywhere.
    train_px = model.card.get("train_pixels", {})
    maj_el = _majority(train_px.get("elements"), conf["model"][0])
    maj_rg = _majority(train_px.get("regions"), conf["model"][1])
    for el_true, rg_true in truths:
        conf["majority"][0].add(el_true, np.full_like(el_true, maj_el))
        conf["majority"][1].add(rg_true, np.full_like(rg_true, maj_rg))
    result = Evaluation(model.version, release.version, split, len(pages),
                        sorted({p.site for p in pages}), time.perf_counter() - t0)
    result.elements = {m: report(conf[m][0], el_names) for m in METHODS}
    result.regions = {m: report(conf[m][1], rg_names) for m in METHODS if m != "pixels"}
    result.element_confusion = conf["model"][0].m.tolist()
    result.per_site = {site: report(c, el_names) for site, c in sorted(by_site.items())}
    result.path = model.path / f"evaluation-{release.name}-{release.version}-{split}.json"
    write_json_atomic(result.path, result.to_json())
    return result


def _fmt(v: float | None) -> str:
    return "   -  " if v is None else f"{v:6.3f}"


def format_report(r: Evaluation) -> str:
    lines = [f"model {r.model} on {r.release} {r.split}: {r.pages} pages, "
             f"{len(r.sites)} sites ({r.seconds:.0f} s)"]
    for head, table in (("element", r.elements), ("region", r.regions)):
        methods = list(table)
        lines.append(f"{head + ' IoU':<22}" + "".join(f"{m:>10}" for m in methods)
                     + f"{'truth px':>12}")
        names = list(table["model"]["iou"])
        for name in names:
            lines.append(f"  {name:<20}" + "".join(
                f"{_fmt(table[m]['iou'][name]):>10}" for m in methods)
                + f"{table['model']['pixels'][name]:>12}")
        lines.append(f"  {'mean (no background)':<20}" + "".join(
            f"{_fmt(table[m]['mean_iou']):>10}" for m in methods))
        lines.append(f"  {'pixel accuracy':<20}" + "".join(
            f"{_fmt(table[m]['pixel_accuracy']):>10}" for m in methods))
    names = list(r.elements["model"]["iou"])
    if r.element_confusion:
        lines.append("model's element pixels: truth (rows) predicted as (share of the row)")
        lines.append(" " * 22 + "".join(f"{n:>12}" for n in names))
        for name, row in zip(names, r.element_confusion, strict=True):
            total = max(1, sum(row))
            lines.append(f"  {name:<20}" + "".join(f"{v / total:>12.3f}" for v in row))
    if len(r.per_site) > 1:
        lines.append(f"{'element IoU by site':<40}" + "".join(f"{n:>12}" for n in names[1:]))
        for site, rep in r.per_site.items():
            lines.append(f"  {site:<38}" + "".join(
                f"{_fmt(rep['iou'][n]):>12}" for n in names[1:]))
    return "\n".join(lines)


def print_report(r: Evaluation) -> None:
    print(format_report(r))
    print(f"wrote {r.path}")


def load_evaluation(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
