"""python -m annotate preannotate: DOM boxes to regions and element masks on disk."""

from __future__ import annotations

import argparse
import errno
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from catalog.cli import add_common_args, load
from catalog.records import Annotation, Convention
from catalog.workspace import CorruptFile, read_json

from .labelset import label_set
from .model_input import model_version, predict_pages
from .preannotate import VERSION, pictures_setting, preannotate_page


def register(sub: argparse._SubParsersAction) -> None:
    pre = sub.add_parser("preannotate", help="propose regions and element masks for captured pages")
    add_common_args(pre)
    pre.add_argument("pages", nargs="*", help="page ids (default: every captured page)")
    pre.add_argument("--force", action="store_true",
                     help="redo pages that already have a pre-annotation of this version")
    pre.add_argument("--no-pixels", action="store_true",
                     help="skip the screenshot check for content the DOM does not explain")
    pre.add_argument("--no-convention", action="store_true",
                     help="propose with the config's settings, not the convention that "
                          "`python -m annotate learn` learned from the team's corrections")
    pre.add_argument("--model", default=None, metavar="DIR",
                     help="also weigh this model's predictions (models/mNNNN; default: "
                          "[preannotate] model; '' for none)")
    pre.set_defaults(func=_preannotate)


def up_to_date(meta: dict, convention: Convention | None, annotated: bool,
               model: str | None = None, pictures: str | None = None) -> bool:
    """Whether a page's pre-annotation is what this run would write: same pre-annotator and,
    for a page nobody corrected yet, the same convention, model and pictures' boxes
    ("visible" where they are cut to what they show; a corrected page keeps the proposal
    its annotator saw)."""
    if meta.get("version") != VERSION:
        return False
    return annotated or (meta.get("convention") == (convention.version if convention else None)
                         and meta.get("model") == model and meta.get("pictures") == pictures)


def predictions(ws, model_dir: str, page_ids: list[str], console: Console) -> dict:
    """The model's predictions for the pages that have a screenshot (one `model predict`
    run for those not yet predicted), kept in <workspace>/predictions/<model version>/."""
    shots = {pid: ws.screenshot(pid) for pid in page_ids if ws.screenshot(pid).exists()}
    if not shots:
        return {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"model {model_version(Path(model_dir))} predicting", total=len(shots))
        return predict_pages(Path(model_dir), shots, ws.root / "predictions",
                             lambda n: bar.advance(task, n))


def _preannotate(args: argparse.Namespace) -> int:
    config, ws = load(args)
    labels = label_set(config.labels)
    params = config.preannotate
    if args.no_pixels:
        params.pixels = False
    known = set(ws.page_ids())
    if not known:
        raise ValueError(f"{ws.root} has no captured pages: run `python -m scraper crawl` first")
    unknown = [p for p in args.pages if p not in known]
    if unknown:
        raise ValueError(f"page {unknown[0]} is not in {ws.pages_dir}")
    page_ids = args.pages or sorted(known)
    console = Console(stderr=True)
    convention = None if args.no_convention else ws.latest_convention()
    model_dir = params.model if args.model is None else args.model
    version = model_version(Path(model_dir)) if model_dir else None
    todo = []
    for pid in page_ids:
        path = ws.preannotation_json(pid)
        if path.exists() and not args.force:
            try:
                meta = Annotation.from_dict(read_json(path)).meta
                # The model sees only pages with a screenshot: the others are up to date
                # without it, or they would be proposed again on every run.
                shot = ws.screenshot(pid).exists()
                seen = version if version and shot else None
                if up_to_date(meta, convention, ws.annotation_json(pid).exists(), seen,
                              pictures_setting(params, params.pixels and shot)):
                    continue
            except (CorruptFile, ValueError, KeyError):
                pass  # unreadable: made again
        todo.append(pid)
    predicted = predictions(ws, model_dir, todo, console) if model_dir else {}
    skipped = len(page_ids) - len(todo)
    done = errors = regions = 0
    t0 = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("pre-annotating", total=len(todo), status="")
        for pid in todo:
            bar.advance(task)
            try:
                ann = preannotate_page(ws, pid, labels, params, convention, predicted.get(pid))
            except (CorruptFile, ValueError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise  # no page can be written: stop, said once
                errors += 1
                console.print(f"{pid}: {exc}", style="red", markup=False, soft_wrap=True)
                bar.update(task, status=f"{errors} errors")
                continue
            if ann is None:
                skipped += 1
                continue
            done += 1
            regions += len(ann.regions)
            rate = done / max(1e-9, time.perf_counter() - t0)
            bar.update(task, status=f"{rate:.1f} pages/s, {errors} errors")
    per_page = (f" in {1000 * (time.perf_counter() - t0) / done:.0f} ms/page" if done else "")
    console.print(
        f"pre-annotated {done} page(s) ({regions} regions){per_page}, skipped {skipped}, "
        f"errors {errors}; {VERSION}" + (f", convention {convention.version} (granularity "
                        f"{convention.granularity:g}, learned from {len(convention.pages)} "
                        "corrected page(s))" if convention else "")
        + (f", model {version}" if version else ""), soft_wrap=True
    )
    return 1 if errors else 0
