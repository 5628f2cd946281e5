"""What annotators changed: the figure that says whether pre-annotation pays.

For every page with both a pre-annotation and a pulled annotation, proposed regions are
matched one-to-one to final regions of the same label (Hungarian on box IoU). A proposed
region is kept when its match is the same box (IoU >= KEPT_IOU), moved when it overlaps
(IoU >= MATCH_IOU), deleted when unmatched; a final region with no proposal is added. A
relabelled region counts as one deletion and one addition. Per class, the pixel IoU between
prediction and annotation (regions rasterised, masks as drawn) is averaged over pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, median
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from catalog.workspace import CorruptFile, Workspace, read_json

KEPT_IOU = 0.98  # a box nudged by a pixel or two on a large region still counts as kept
MATCH_IOU = 0.3


@dataclass
class ClassChanges:
    proposed: int = 0
    kept: int = 0
    moved: int = 0
    deleted: int = 0
    added: int = 0
    ious: list[float] = field(default_factory=list)
    kind: str = "region"  # or "mask": a brush mask class, compared by pixels only

    def share(self, n: int) -> float:
        return n / self.proposed if self.proposed else 0.0


def pair_regions(
    proposed: list[dict[str, Any]], final: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    """What became of each region: (state, proposed, final) with state `kept`, `moved`
    (both sides), `deleted` (proposed only) or `added` (final only)."""
    out: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
    labels = {r["label"] for r in proposed} | {r["label"] for r in final}
    for label in sorted(labels):
        p = [r for r in proposed if r["label"] == label]
        f = [r for r in final if r["label"] == label]
        pairs: list[tuple[int, int, str]] = []
        if p and f:
            iou = np.asarray(
                mask_utils.iou([r["bbox"] for r in p], [r["bbox"] for r in f], [0] * len(f)),
                dtype=float,
            ).reshape(len(p), len(f))
            rows, cols = linear_sum_assignment(-iou)
            for r, col in zip(rows, cols, strict=True):
                if iou[r, col] >= KEPT_IOU:
                    pairs.append((r, col, "kept"))
                elif iou[r, col] >= MATCH_IOU:
                    pairs.append((r, col, "moved"))
        out += [(state, p[r], f[col]) for r, col, state in pairs]
        matched_p, matched_f = {r for r, _, _ in pairs}, {c for _, c, _ in pairs}
        out += [("deleted", r, None) for i, r in enumerate(p) if i not in matched_p]
        out += [("added", None, r) for i, r in enumerate(f) if i not in matched_f]
    return out


def match_regions(
    proposed: list[dict[str, Any]], final: list[dict[str, Any]]
) -> dict[str, ClassChanges]:
    """Per label: how many proposed regions were kept, moved, deleted, and how many added."""
    out: dict[str, ClassChanges] = {}
    for state, p, f in pair_regions(proposed, final):
        c = out.setdefault((p or f)["label"], ClassChanges())
        c.proposed += p is not None
        setattr(c, state, getattr(c, state) + 1)
    return out


def raster(regions: list[dict[str, Any]], label: str, width: int, height: int) -> np.ndarray:
    out = np.zeros((height, width), dtype=bool)
    for r in regions:
        if r["label"] != label:
            continue
        x, y, w, h = r["bbox"]
        x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
        x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
        out[y0:y1, x0:x1] = True
    return out


def pixel_iou(a: np.ndarray, b: np.ndarray) -> float | None:
    union = np.logical_or(a, b).sum()
    if union == 0:
        return None  # the class is on neither: no evidence either way
    return float(np.logical_and(a, b).sum() / union)


def _mask(folder: Path, doc: dict, cls: str) -> np.ndarray | None:
    name = (doc.get("masks") or {}).get(cls)
    if not name:
        return None
    try:
        with Image.open(folder / name) as im:
            return np.asarray(im.convert("L")) > 0
    except FileNotFoundError:
        return None


NO_CONVENTION = "none"  # pages proposed before any convention was learned


@dataclass
class Report:
    pages: int
    classes: dict[str, ClassChanges]
    seconds: list[float]
    # Region edits (moved, deleted, added) each page needed, by the convention it was
    # proposed in: what learning the team's convention saved.
    edits: dict[str, list[int]] = field(default_factory=dict)
    convention: dict[str, Any] | None = None  # the workspace's latest, in brief

    def to_dict(self) -> dict[str, Any]:
        classes = {}
        for name, c in sorted(self.classes.items()):
            classes[name] = {
                "proposed": c.proposed, "kept": c.kept, "moved": c.moved,
                "deleted": c.deleted, "added": c.added,
                "kept_share": round(c.share(c.kept), 4),
                "moved_share": round(c.share(c.moved), 4),
                "deleted_share": round(c.share(c.deleted), 4),
                "added_share": round(c.share(c.added), 4),
                "mean_iou": round(mean(c.ious), 4) if c.ious else None,
                "kind": c.kind,
                "pages_compared": len(c.ious),
                "pages_changed": sum(v < 1.0 for v in c.ious),
            }
        all_ious = [v for c in self.classes.values() for v in c.ious]
        return {
            "pages": self.pages,
            "classes": classes,
            "mean_iou": round(mean(all_ious), 4) if all_ious else None,
            "seconds_per_page": round(mean(self.seconds), 2) if self.seconds else None,
            "median_seconds_per_page": round(median(self.seconds), 2) if self.seconds else None,
            "convention": self.convention,
            "edits_per_page": {k: {"pages": len(v), "edits": round(mean(v), 2)}
                               for k, v in sorted(self.edits.items())},
        }


def build_report(ws: Workspace, region_labels: list[str], mask_labels: list[str]) -> Report:
    classes: dict[str, ClassChanges] = {}
    seconds: list[float] = []
    edits: dict[str, list[int]] = {}
    pages = 0
    for page_id in ws.page_ids():
        folder = ws.page_dir(page_id)
        ann_path, pre_path = ws.annotation_json(page_id), ws.preannotation_json(page_id)
        if not ann_path.exists() or not pre_path.exists():
            continue
        try:
            ann, pre = read_json(ann_path), read_json(pre_path)
        except CorruptFile:
            continue
        pages += 1
        width, height = int(ann["width"]), int(ann["height"])
        lead = (ann.get("meta") or {}).get("lead_time")
        if isinstance(lead, (int, float)):
            seconds.append(float(lead))
        states = [s for s, _, _ in pair_regions(pre.get("regions", []), ann.get("regions", []))]
        proposed_in = (pre.get("meta") or {}).get("convention") or NO_CONVENTION
        edits.setdefault(proposed_in, []).append(sum(s != "kept" for s in states))
        for label, c in match_regions(pre.get("regions", []), ann.get("regions", [])).items():
            total = classes.setdefault(label, ClassChanges())
            for attr in ("proposed", "kept", "moved", "deleted", "added"):
                setattr(total, attr, getattr(total, attr) + getattr(c, attr))
        for label in region_labels:
            iou = pixel_iou(
                raster(pre.get("regions", []), label, width, height),
                raster(ann.get("regions", []), label, width, height),
            )
            if iou is not None:
                classes.setdefault(label, ClassChanges()).ious.append(iou)
        for cls in mask_labels:
            a, b = _mask(folder, pre, cls), _mask(folder, ann, cls)
            if a is None and b is None:
                continue
            a = a if a is not None else np.zeros((height, width), dtype=bool)
            b = b if b is not None else np.zeros((height, width), dtype=bool)
            iou = pixel_iou(a, b) if a.shape == b.shape else 0.0
            if iou is not None:
                classes.setdefault(cls, ClassChanges(kind="mask")).ious.append(iou)
    latest = ws.latest_convention()
    brief = None
    if latest is not None:
        brief = {"version": latest.version, "granularity": latest.granularity,
                 "header_menu": latest.header_menu, "label_map": latest.label_map,
                 "learned_from_pages": len(latest.pages),
                 "split_refitted": latest.split_model is not None,
                 "model": latest.model, "model_use": latest.figures.get("model_use", "")}
    return Report(pages, classes, seconds, edits, brief)


LEGEND = (
    "kept: the proposed box left as it was (IoU >= {kept}); moved: adjusted (IoU >= {moved}); "
    "deleted: proposed, not in the annotation; added: drawn by the annotator; "
    "IoU: pixel overlap of proposal and annotation, mean over pages (1.00 = untouched)"
)


def render(report: Report) -> str:
    d = report.to_dict()
    if not d["pages"]:
        return "no page has both a pre-annotation and a pulled annotation yet: run `python -m annotate pull`"
    regions = {k: c for k, c in d["classes"].items() if c["kind"] == "region"}
    masks = {k: c for k, c in d["classes"].items() if c["kind"] == "mask"}
    lines = [f"{d['pages']} annotated pages", "", "regions (rectangles): what became of each proposal",
             f"{'class':<14}{'proposed':>9}{'kept':>8}{'moved':>8}{'deleted':>9}{'added':>7}{'IoU':>7}"]
    for name, c in regions.items():
        iou = f"{c['mean_iou']:.2f}" if c["mean_iou"] is not None else "-"
        kept, moved, deleted = (
            f"{100 * c[k]:.0f}%" if c["proposed"] else "-"
            for k in ("kept_share", "moved_share", "deleted_share")
        )
        lines.append(
            f"{name:<14}{c['proposed']:>9}{kept:>8}{moved:>8}{deleted:>9}{c['added']:>7}{iou:>7}"
        )
    if masks:
        lines += ["", "element masks (brush): proposed mask against the annotated one",
                  f"{'class':<14}{'pages':>9}{'changed':>9}{'IoU':>7}"]
        for name, c in masks.items():
            iou = f"{c['mean_iou']:.2f}" if c["mean_iou"] is not None else "-"
            lines.append(f"{name:<14}{c['pages_compared']:>9}{c['pages_changed']:>9}{iou:>7}")
    c = d["convention"]
    if c:
        lines += ["", f"convention {c['version']}: granularity {c['granularity']:g}"
                  + (", menus apart from headers" if c["header_menu"] else "")
                  + (", labels " + ", ".join(f"{a} -> {b}" for a, b in c["label_map"].items())
                     if c["label_map"] else "")
                  + (", split decision refitted" if c.get("split_refitted") else "")
                  + (f", model {c['model']}: {c['model_use']}" if c.get("model") else "")
                  + f"; learned from {c['learned_from_pages']} corrected page(s)"]
    else:
        lines += ["", "convention: none learned yet (`python -m annotate learn`)"]
    if d["edits_per_page"]:
        lines.append("region edits per page (moved + deleted + added), by what the page was "
                     "proposed in: " + "; ".join(
                         f"{'no convention' if k == NO_CONVENTION else k} {v['edits']:.1f} "
                         f"({v['pages']} page(s))" for k, v in d["edits_per_page"].items()))
    spp = d["seconds_per_page"]
    lines += [
        "",
        LEGEND.format(kept=KEPT_IOU, moved=MATCH_IOU),
        f"mean IoU prediction vs annotation: {d['mean_iou'] if d['mean_iou'] is not None else '-'}; "
        f"seconds per page: {spp if spp is not None else '-'} (median "
        f"{d['median_seconds_per_page'] if spp is not None else '-'})",
    ]
    return "\n".join(lines)
