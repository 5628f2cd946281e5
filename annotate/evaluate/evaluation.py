"""Score pre-annotations against human ground truth, next to two baselines.

Per page and averaged over pages (and over each split of the Kreuzer corpus): segment
precision / recall / F1 at IoU >= 0.5, BCubed over pixels, IoU per class, the label
accuracy of matched segments, and the milliseconds the pre-annotation took.

Written to the output dir: `evaluation.json` ({"schema": 1, "version": pre-annotator,
"ground_truth", "summary": {"all"|"dev"|"heldout": {"pages", "proposal"|"whole_page"|
"naive_dom": {"seg_p", "seg_r", "seg_f1", "bcubed_p", "bcubed_r", "bcubed_f1"},
"class_iou", "label_accuracy", "label_accuracy_per_class", "label_accuracy_macro",
"ms_per_page", "capture_ms_per_page", "truth": {"mean_cover", "pages_under_half_marked",
"pages_nesting_segments"}}}, "pages": [per-page figures, with the truth's `truth_cover` and
`truth_nested`]}), `overlays/<page>.png`
(truth beside proposal) and `worst_pages.png` (the pages with the lowest segment F1 plus
BCubed F1).

With `--kreuzer`, the dev / held-out split is kreuzer.split_of (a fixed hash of the page's
folder): the method was tuned on dev pages only, and its targets are judged on held-out.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from catalog.config import PreannotateConfig
from catalog.records import Annotation
from catalog.workspace import Workspace, read_json, write_json_atomic
from segmentation.kreuzer_truth import truth_segments
from segmentation.metrics import (
    Segment,
    SegmentScores,
    bcubed,
    class_iou,
    coverage,
    label_agreement,
    match_segments,
    nested,
)

from ..propose import VERSION, LabelSet, Opener, PageBoxes, load_boxes, load_gray, preannotate
from .baselines import naive_split, whole_page
from .kreuzer import capture_pages, list_pages, read_truths
from .overlay import contact_sheet, side_by_side

EVAL_SCHEMA = 1
METHODS = ("proposal", "whole_page", "naive_dom")
SPARSE_TRUTH = 0.5  # a truth marking less of its page than this is counted in the report


@dataclass
class PageScore:
    name: str
    page_id: str
    split: str
    n_true: int
    n_pred: int
    ms: float  # pre-annotation time (regions + masks)
    capture_s: float  # the capture's own time, for comparison
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> figures
    class_iou: dict[str, float] = field(default_factory=dict)
    label_pairs: list[tuple[str, str]] = field(default_factory=list)  # (true, proposed)
    # What the truth itself is like, to read a low score by: the share of the page it marks
    # (a proposed pixel it leaves out scores 0) and how many of its top-level segments lie
    # inside another one (a flat proposal cannot agree with both).
    truth_cover: float = 0.0
    truth_nested: int = 0


def score(pred: list[Segment], true: list[Segment], width: int, height: int,
          m: SegmentScores | None = None) -> dict[str, float]:
    """The figures of one method on one page; `m`: its segment matching, if already made."""
    m = match_segments(pred, true) if m is None else m
    bp, br, bf = bcubed(pred, true, width, height)
    return {"seg_p": m.precision, "seg_r": m.recall, "seg_f1": m.f1,
            "bcubed_p": bp, "bcubed_r": br, "bcubed_f1": bf}


def score_page(name: str, page_id: str, split: str, page: PageBoxes, true: list[Segment],
               pred: list[Segment], ms: float, capture_s: float = 0.0) -> PageScore:
    w, h = page.width, page.height
    s = PageScore(name, page_id, split, len(true), len(pred), ms, capture_s)
    m = match_segments(pred, true)
    s.scores["proposal"] = score(pred, true, w, h, m)
    s.scores["whole_page"] = score([Segment("main", r) for r in whole_page(page)], true, w, h)
    s.scores["naive_dom"] = score([Segment("segment", r) for r in naive_split(page)], true, w, h)
    s.class_iou = class_iou(pred, true, w, h)
    s.truth_cover, s.truth_nested = coverage(true, w, h), nested(true)
    s.label_pairs = label_agreement(pred, true, m.matches)
    return s


def summarise(scores: Iterable[PageScore]) -> dict[str, Any]:
    """Averages over pages (each page counts once) and label accuracy over matched pairs."""
    scores = list(scores)
    if not scores:
        return {"pages": 0}
    out: dict[str, Any] = {"pages": len(scores)}
    for method in METHODS:
        keys = scores[0].scores[method].keys()
        out[method] = {k: float(np.mean([s.scores[method][k] for s in scores])) for k in keys}
    per_class: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        for label, v in s.class_iou.items():
            per_class[label].append(v)
    out["class_iou"] = {k: float(np.mean(v)) for k, v in sorted(per_class.items())}
    pairs = [p for s in scores for p in s.label_pairs]
    by_class: dict[str, list[bool]] = defaultdict(list)
    for t, p in pairs:
        by_class[t].append(t == p)
    out["label_accuracy"] = float(np.mean([t == p for t, p in pairs])) if pairs else 0.0
    out["label_accuracy_per_class"] = {
        k: {"accuracy": float(np.mean(v)), "matched": len(v)} for k, v in sorted(by_class.items())
    }
    out["label_accuracy_macro"] = (
        float(np.mean([np.mean(v) for v in by_class.values()])) if by_class else 0.0
    )
    out["ms_per_page"] = float(np.mean([s.ms for s in scores]))
    out["truth"] = {
        "mean_cover": float(np.mean([s.truth_cover for s in scores])),
        "pages_under_half_marked": sum(s.truth_cover < SPARSE_TRUTH for s in scores),
        "pages_nesting_segments": sum(s.truth_nested > 0 for s in scores),
    }
    caps = [s.capture_s for s in scores if s.capture_s > 0]
    out["capture_ms_per_page"] = float(np.mean(caps) * 1000) if caps else None
    return out


def print_report(scores: list[PageScore], summaries: dict[str, dict[str, Any]],
                 console: Console) -> None:
    table = Table(title="pre-annotation against ground truth (segment F1 @ IoU 0.5 / BCubed F1)")
    for col in ("page", "split", "true", "marked", "prop.", "proposal", "whole page",
                "naive DOM", "ms"):
        table.add_column(col, justify="left" if col in ("page", "split") else "right")
    for s in scores:
        cells = [f"{s.scores[m]['seg_f1']:.2f} / {s.scores[m]['bcubed_f1']:.2f}" for m in METHODS]
        marked = f"{s.truth_cover:.0%}" + ("*" if s.truth_nested else "")
        table.add_row(s.name[:44], s.split, str(s.n_true), marked, str(s.n_pred), *cells,
                      f"{s.ms:.0f}")
    console.print(table)
    console.print("marked: share of the page the truth covers; *: some of its top-level "
                  "segments lie inside another one")
    avg = Table(title="averages over pages")
    for col in ("set", "pages", "method", "seg P", "seg R", "seg F1", "BCubed P", "BCubed R",
                "BCubed F1"):
        avg.add_column(col, justify="left" if col in ("set", "method") else "right")
    for name, summ in summaries.items():
        if not summ.get("pages"):
            continue
        for m in METHODS:
            f = summ[m]
            avg.add_row(name, str(summ["pages"]), m, *(f"{f[k]:.3f}" for k in (
                "seg_p", "seg_r", "seg_f1", "bcubed_p", "bcubed_r", "bcubed_f1")))
    console.print(avg)
    for name, summ in summaries.items():
        if not summ.get("pages"):
            continue
        per = ", ".join(f"{k} {v['accuracy']:.2f} ({v['matched']})"
                        for k, v in summ["label_accuracy_per_class"].items())
        ious = ", ".join(f"{k} {v:.2f}" for k, v in summ["class_iou"].items())
        cap = summ["capture_ms_per_page"]
        console.print(
            f"[bold]{name}[/]: label accuracy of matched segments {summ['label_accuracy']:.3f} "
            f"(macro over classes {summ['label_accuracy_macro']:.3f}; {per})\n"
            f"  IoU per class: {ious}\n"
            f"  pre-annotation {summ['ms_per_page']:.1f} ms/page"
            + (f" (capture {cap:.0f} ms/page)" if cap else "")
        )
        t = summ["truth"]
        console.print(
            f"  truth marks {t['mean_cover']:.0%} of a page on average; "
            f"{t['pages_under_half_marked']} of {summ['pages']} page(s) under half marked, "
            f"{t['pages_nesting_segments']} nest top-level segments"
        )


def _pictures(out: Path, items: list[tuple[PageScore, Path, list[Segment], list[Segment]]],
              labels: LabelSet, worst: int) -> None:
    pics_dir = out / "overlays"
    pics_dir.mkdir(parents=True, exist_ok=True)
    rendered = []
    for s, shot_path, true, pred in items:
        with Image.open(shot_path) as shot:
            f = s.scores["proposal"]
            title = (f"{s.name} [{s.split}]  segment F1 {f['seg_f1']:.2f}  "
                     f"BCubed F1 {f['bcubed_f1']:.2f}   truth marks {s.truth_cover:.0%} "
                     f"of the page" + (f", {s.truth_nested} of its segments inside another"
                                      if s.truth_nested else ""))
            pic = side_by_side(shot, true, pred, labels, title)
        path = pics_dir / f"{s.name.replace('/', '__')}.png"
        pic.save(path)
        rendered.append((s, path))
    rendered.sort(key=lambda sp: sp[0].scores["proposal"]["seg_f1"]
                  + sp[0].scores["proposal"]["bcubed_f1"])
    sheet = [(Image.open(p), f"{s.name[:40]}  F1 {s.scores['proposal']['seg_f1']:.2f}/"
              f"{s.scores['proposal']['bcubed_f1']:.2f}") for s, p in rendered[:worst]]
    if sheet:
        contact_sheet(sheet).save(out / "worst_pages.png")


def write_outputs(out: Path, scores: list[PageScore], summaries: dict[str, Any],
                  extra: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    doc = {"schema": EVAL_SCHEMA, "version": VERSION, **extra, "summary": summaries,
           "pages": [asdict(s) for s in scores]}
    path = out / "evaluation.json"
    write_json_atomic(path, doc)
    return path


def _timed_proposal(ws: Workspace, pid: str, page: PageBoxes, labels: LabelSet,
                    params: PreannotateConfig | None, opener: Opener | None = None
                    ) -> tuple[Annotation, float]:
    """The page proposed afresh and the milliseconds it took (regions and masks)."""
    use_pixels = params is None or params.pixels
    gray = load_gray(ws.screenshot(pid), (page.width, page.height)) if use_pixels else None
    t0 = time.perf_counter()
    ann, _ = preannotate(page, pid, labels, gray, params, opener)
    return ann, (time.perf_counter() - t0) * 1000


def evaluate_kreuzer(corpus: Path, out: Path, labels: LabelSet, split: str = "all",
                     limit: int = 0, names: list[str] | None = None, worst: int = 9,
                     params: PreannotateConfig | None = None,
                     console: Console | None = None,
                     opener: Opener | None = None,
                     truth_level: str = "coarse") -> dict[str, Any]:
    """Capture the corpus' stripped pages, pre-annotate them and score them against the
    rendered truth; write evaluation.json, overlays and the worst pages' sheet into `out`.
    `opener`: the open-or-keep decision of the segmentation (default: the rules)."""
    console = console or Console()
    pages = list_pages(corpus)
    if split != "all":
        pages = [p for p in pages if p.split == split]
    if names:
        pages = [p for p in pages if any(n in p.name for n in names)]
    if limit:
        pages = pages[:limit]
    if not pages:
        raise ValueError(f"no Kreuzer page of {corpus} matches the selection")
    ws = Workspace(out / "workspace")
    console.print(f"ground truth of {len(pages)} page(s): rendering index.blocks.html")
    truths = read_truths(corpus, pages, out / "truth.json")
    console.print(f"capturing the stripped copies into {ws.root} (cached)")
    ids = capture_pages(corpus, pages, ws)
    scores, pics = [], []
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("pre-annotating and scoring", total=len(pages))
        for p in pages:
            bar.advance(task)
            pid = ids.get(p.name)
            if pid is None or not ws.boxes_json(pid).exists():
                console.print(f"[yellow]skipped {p.name}: not captured[/]")
                continue
            page = load_boxes(ws.boxes_json(pid))
            true = truth_segments(truths[p.name], page.width, page.height, truth_level)
            if not true:
                console.print(f"[yellow]skipped {p.name}: no visible top-level block[/]")
                continue
            ann, ms = _timed_proposal(ws, pid, page, labels, params, opener)
            pred = [Segment(r.label, tuple(r.bbox)) for r in ann.regions]
            cap = float(read_json(ws.page_json(pid)).get("timings", {}).get("total", 0.0))
            s = score_page(p.name, pid, p.split, page, true, pred, ms, cap)
            scores.append(s)
            pics.append((s, ws.screenshot(pid), true, pred))
    if not scores:
        raise ValueError("no page could be scored (see the messages above)")
    summaries = {"all": summarise(scores)}
    for name in ("dev", "heldout"):
        summaries[name] = summarise(s for s in scores if s.split == name)
    print_report(scores, summaries, console)
    _pictures(out, pics, labels, worst)
    granularity = params.granularity if params is not None else 0.0
    path = write_outputs(out, scores, summaries, {"ground_truth": f"kreuzer:{corpus}",
                                                  "truth_level": truth_level,
                                                  "granularity": granularity})
    console.print(f"wrote {path}, {out / 'overlays'}/ and {out / 'worst_pages.png'}")
    return summaries


def evaluate_workspace(ws: Workspace, out: Path, labels: LabelSet, worst: int = 9,
                       console: Console | None = None,
                       params: PreannotateConfig | None = None) -> dict[str, Any]:
    """Score each page's preannotation.json against its annotation.json (pulled from
    Label Studio). The file holds no timing (it must be the same bytes on every run), so the
    ms column is the time to propose the page again here with `params`."""
    console = console or Console()
    scores, pics = [], []
    for pid in ws.page_ids():
        human, pre = ws.annotation_json(pid), ws.preannotation_json(pid)
        if not human.exists() or not pre.exists() or not ws.boxes_json(pid).exists():
            continue
        truth = Annotation.from_dict(read_json(human))
        proposal = Annotation.from_dict(read_json(pre))
        page = load_boxes(ws.boxes_json(pid))
        true = [Segment(r.label, tuple(r.bbox)) for r in truth.regions]
        if not true:
            continue
        pred = [Segment(r.label, tuple(r.bbox)) for r in proposal.regions]
        ms = _timed_proposal(ws, pid, page, labels, params)[1]
        cap = float(read_json(ws.page_json(pid)).get("timings", {}).get("total", 0.0))
        s = score_page(pid, pid, "annotated", page, true, pred, ms, cap)
        scores.append(s)
        pics.append((s, ws.screenshot(pid), true, pred))
    if not scores:
        raise ValueError(
            f"no page of {ws.root} has both annotation.json and preannotation.json: run "
            "`python -m annotate preannotate` and `python -m annotate pull` first, or pass --kreuzer DIR"
        )
    summaries = {"all": summarise(scores)}
    print_report(scores, summaries, console)
    _pictures(out, pics, labels, worst)
    path = write_outputs(out, scores, summaries, {"ground_truth": f"workspace:{ws.root}"})
    console.print(f"wrote {path}, {out / 'overlays'}/ and {out / 'worst_pages.png'}")
    return summaries


def load_evaluation(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
