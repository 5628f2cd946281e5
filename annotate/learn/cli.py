"""python -m annotate learn: the team's convention from the pages it corrected.

Reads every page with an annotation.json (what `pull` writes, or a file put there by any
other means), fits the convention (convention.py) and writes it as the workspace's next
`conventions/cNNNN.json`; `preannotate` then proposes every page nobody corrected yet in
that convention. Pages that cannot teach anything are named and left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from catalog.cli import add_common_args, load
from catalog.config import PreannotateConfig
from catalog.records import Annotation, Convention
from catalog.workspace import CorruptFile, Workspace, write_json_atomic

from ..propose.boxes import load_boxes
from ..propose.cli import predictions
from ..propose.labelset import LabelSet, label_set
from ..propose.model_input import model_version
from ..propose.preannotate import load_gray
from .convention import LearningPage, annotation_digest, fit, truth_of


def register(sub: argparse._SubParsersAction) -> None:
    ln = sub.add_parser(
        "learn", help="learn the team's convention (granularity, menus, label names) from "
                      "its corrected pages"
    )
    add_common_args(ln)
    ln.add_argument("--if-new", action="store_true",
                    help="do nothing when no annotation changed since the last convention")
    ln.add_argument("--model", default=None, metavar="DIR",
                    help="weigh this model's predictions too (models/mNNNN; default: "
                         "[preannotate] model; '' for none)")
    ln.set_defaults(func=_learn)


def learning_pages(ws: Workspace, labels: LabelSet, params: PreannotateConfig
                   ) -> tuple[list[LearningPage], list[dict[str, str]]]:
    """The corrected pages the fit can use, and those it cannot (with the reason)."""
    pages, left_out = [], []
    for pid in ws.page_ids():
        path = ws.annotation_json(pid)
        if not path.exists():
            continue

        def skip(reason: str, pid: str = pid) -> None:
            left_out.append({"page_id": pid, "reason": reason})

        raw = path.read_bytes()
        try:
            ann = Annotation.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            skip(f"{path} is not an annotation ({exc})")
            continue
        truth, why = truth_of(ann, labels)
        if why:
            skip(why)
            continue
        try:
            boxes = load_boxes(ws.boxes_json(pid))
        except (CorruptFile, FileNotFoundError) as exc:
            skip(f"no readable boxes.json ({exc})")
            continue
        if (boxes.width, boxes.height) != (ann.width, ann.height):
            skip(f"the screenshot changed since it was annotated (annotated {ann.width}x"
                 f"{ann.height}, captured now {boxes.width}x{boxes.height})")
            continue
        size = (boxes.width, boxes.height)
        gray = load_gray(ws.screenshot(pid), size) if params.pixels else None
        pages.append(LearningPage(pid, boxes, gray, truth, annotation_digest(raw)))
    return pages, left_out


def next_version(ws: Workspace) -> str:
    files = ws.convention_files()
    return f"c{int(files[-1].stem[1:]) + 1 if files else 1:04d}"


def describe(c: Convention) -> str:
    parts = [f"granularity {c.granularity:g}"]
    if c.header_menu:
        parts.append("menus apart from headers")
    if c.label_map:
        parts.append("labels " + ", ".join(f"{a} -> {b}" for a, b in sorted(c.label_map.items())))
    if c.split_model:
        parts.append(f"split decision refitted on {c.split_model.get('pages', '?')} pages")
    if c.model:
        use = c.figures.get("model_use", "DOM alone")
        parts.append(f"model {c.model}: {use}")
    return ", ".join(parts)


def _learn(args: argparse.Namespace) -> int:
    config, ws = load(args)
    console = Console(stderr=True)
    labels = label_set(config.labels)
    params = config.preannotate
    pages, left_out = learning_pages(ws, labels, params)
    for item in left_out:
        console.print(f"left out {item['page_id']}: {item['reason']}", markup=False,
                      soft_wrap=True)
    latest = ws.latest_convention()
    seen = {p.page_id: p.digest for p in pages}
    model_dir = params.model if args.model is None else args.model
    version = model_version(Path(model_dir)) if model_dir else ""
    if args.if_new and latest is not None and latest.model == version and seen == {
        p["page_id"]: p["sha256"] for p in latest.pages
    }:
        console.print(f"convention {latest.version} is up to date ({describe(latest)}; "
                      f"learned from {len(latest.pages)} page(s))")
        return 0
    if not pages:
        console.print("no corrected page to learn from yet: annotate some pages in Label "
                      "Studio and run `python -m annotate pull`")
        return 0
    if model_dir:
        found = predictions(ws, model_dir, [p.page_id for p in pages], console)
        for p in pages:
            p.prediction = found.get(p.page_id)
    learned = fit(pages, labels, params)
    setting, figures = learned.setting, learned.figures
    convention = Convention(
        version=next_version(ws), granularity=setting.granularity,
        header_menu=setting.header_menu, label_map=learned.label_map,
        pages=[{"page_id": p.page_id, "sha256": p.digest} for p in pages],
        left_out=left_out, figures=figures, split_model=learned.split_model,
        model=version, model_coverage=learned.model_use.coverage,
        model_fill=learned.model_use.fill,
    )
    path = ws.conventions_dir / f"{convention.version}.json"
    write_json_atomic(path, convention.to_dict())
    console.print(
        f"convention {convention.version}: {describe(convention)}; learned from {len(pages)} "
        f"page(s), segment F1 on them {figures['segment_f1_before']:.2f} with the config's "
        f"setting, {figures['segment_f1_after']:.2f} with this one; wrote {path}. "
        "`python -m annotate preannotate` proposes the uncorrected pages in it.",
        soft_wrap=True,
    )
    return 0
