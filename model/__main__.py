"""python -m model train|predict|evaluate|calibrate|serve: the pixel-only segmentation network."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from catalog.cli import add_common_args, load, run_main

if importlib.util.find_spec("torch") is None:  # the whole stage needs it: say once how to get it
    sys.exit("error: the model stage needs PyTorch: `make setup`, or "
             "`pip install -e '.[model]'` (torch 2.13.0, the CPU wheel)")

from .pictures import PictureBoxes  # noqa: E402
from .release import latest_release, open_release  # noqa: E402
from .store import load_model, resolve_model, to_device  # noqa: E402
from .train import PRECISIONS, Run, TrainConfig, train  # noqa: E402


def _models_dir(ws_root: Path) -> Path:
    return ws_root / "models"


def _bar(label: str, fields: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(fields),
                    TimeElapsedColumn(), console=Console(stderr=True),
                    disable=not sys.stderr.isatty())


def _release_of(arg: str | None, ws_releases: Path) -> Path:
    return Path(arg) if arg else latest_release(ws_releases)


def cmd_train(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m model train",
                                description="Train the next model version on a release.")
    p.add_argument("release", nargs="?", help="releases/vNNNN (default: the latest)")
    add_common_args(p)
    d = TrainConfig()
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="stop after the last epoch that fits (training and validation)")
    p.add_argument("--resume", action="store_true", help="continue a run that was stopped")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--working-width", type=int, default=d.working_width)
    p.add_argument("--crop", type=int, default=d.crop, help="rows of a training crop")
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="bf16: the forward pass in bfloat16, about 1.5x faster on CPUs "
                   "with bf16 instructions (auto: where the device has them)")
    p.add_argument("--panels", type=float, default=d.panels, metavar="CHANCE",
                   help="the chance that a training crop gets a recoloured panel "
                   f"(default {d.panels}; 0: none)")
    p.add_argument("--frames", type=float, default=d.frames, metavar="CHANCE",
                   help="the chance that a training crop gets a drawn frame "
                   f"(default {d.frames}; 0: none)")
    p.add_argument("--jaccard", type=float, default=d.jaccard, metavar="WEIGHT",
                   help="the weight of a soft Jaccard loss on the element head next to "
                   f"the cross-entropy (default {d.jaccard})")
    p.add_argument("--calibrate-pages", type=int, default=d.calibrate_pages, metavar="N",
                   help="training pages on which the decision offsets are fitted once "
                   f"training ends (default {d.calibrate_pages}; 0: none)")
    p.add_argument("--no-picture-boxes", action="store_true",
                   help="predict image areas as the network draws them, not cut back to the "
                   "boxes of the pictures in them (model/pictures.py)")
    p.add_argument("--no-picture-chooser", action="store_true",
                   help="join the blocks inside the network's image areas by model/pictures.py's "
                   "rule instead of choosing among all the page's blocks with a classifier "
                   "fitted on the calibration pages (model/picture_chooser.py)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="worker processes decoding pages (default: the machine's cores)")
    p.add_argument("--no-cache", action="store_true",
                   help="decode every page again instead of reading the scaled pages that "
                   "an earlier run kept in models/.cache")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be 1 or more")
    if not 0.0 <= args.panels <= 1.0:
        p.error("--panels is a chance: give a number from 0 to 1")
    if not 0.0 <= args.frames <= 1.0:
        p.error("--frames is a chance: give a number from 0 to 1")
    if args.jaccard < 0:
        p.error("--jaccard must be 0 or more")
    if args.calibrate_pages < 0:
        p.error("--calibrate-pages must be 0 or more")
    _, ws = load(args)
    release = open_release(_release_of(args.release, ws.releases_dir))
    cfg = TrainConfig(working_width=args.working_width, crop=args.crop, batch=args.batch,
                      epochs=args.epochs, lr=args.lr, seed=args.seed, threads=args.threads,
                      precision=args.precision, panels=args.panels, jaccard=args.jaccard,
                      frames=args.frames, calibrate_pages=args.calibrate_pages,
                      picture_boxes=not args.no_picture_boxes,
                      picture_chooser=not args.no_picture_chooser)
    models_dir = _models_dir(release.path.parent.parent)
    with _bar("{task.description}",
              "loss {task.fields[loss]:.4f}, {task.fields[rate]:.1f} img/s") as bar:
        task = bar.add_task("reading pages", total=None, loss=0.0, rate=0.0)

        def reading(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def progress(step: int, steps: int, loss: float, rate: float) -> None:
            bar.update(task, description="train", completed=step, total=steps, loss=loss,
                       rate=rate)

        try:
            out = train(cfg, Run(
                release, models_dir, to_device(args.device),
                time_budget_s=args.time_budget * 60 if args.time_budget else None,
                resume=args.resume, progress=progress, reading=reading, jobs=args.jobs,
                cache=not args.no_cache,
                log=lambda line: bar.console.print(line, markup=False, highlight=False)))
        except KeyboardInterrupt:
            print("interrupted: the same command with --resume continues from the last "
                  "finished epoch", file=sys.stderr)
            return 130
    print(f"wrote {out}")
    return 0


def cmd_predict(argv: list[str]) -> int:
    from .predict import predict_files

    p = argparse.ArgumentParser(
        prog="python -m model predict",
        description="Masks and regions of screenshots, in the preannotation schema.")
    p.add_argument("model", help="a models/mNNNN directory")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    model = load_model(args.model, str(to_device(args.device)))
    t0 = time.perf_counter()
    with _bar("predict", "") as bar:
        task = bar.add_task("predict", total=len(args.images))
        written = predict_files(model, args.images, args.out,
                                done=lambda _: bar.update(task, advance=1))
    print(f"wrote {len(written)} predictions of model {model.version} to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_evaluate(argv: list[str]) -> int:
    from .evaluate import evaluate, print_report

    p = argparse.ArgumentParser(
        prog="python -m model evaluate",
        description="Per-class IoU and pixel accuracy on a release's val split, with "
        "baselines measured in the same run.")
    p.add_argument("model", nargs="?", help="models/mNNNN or mNNNN (default: the latest)")
    p.add_argument("release", nargs="?", help="releases/vNNNN (default: the model's own)")
    add_common_args(p)
    p.add_argument("--split", default=None,
                   help="release split (default val); with --kreuzer: dev, heldout (default), all")
    p.add_argument("--kreuzer", type=Path, default=None, metavar="OUT",
                   help="also score regions on the Kreuzer corpus from the folder that "
                   "`python -m annotate evaluate --kreuzer` wrote")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    _, ws = load(args)
    model = load_model(resolve_model(args.model, _models_dir(ws.root)),
                       str(to_device(args.device)))
    if args.kreuzer:
        from catalog.workspace import write_json_atomic

        from .kreuzer import evaluate_kreuzer, format_kreuzer, to_json

        kr = evaluate_kreuzer(model, args.kreuzer, args.split or "heldout")
        print(format_kreuzer(kr))
        path = model.path / f"evaluation-kreuzer-{kr.split}.json"
        write_json_atomic(path, to_json(kr))
        print(f"wrote {path}")
        if not args.release:
            return 0
    rel_path = Path(args.release) if args.release else Path(model.card["release"]["path"])
    release = open_release(rel_path)
    with _bar("evaluate", "") as bar:
        task = bar.add_task("evaluate", total=None)
        result = evaluate(model, release, args.split or "val",
                          progress=lambda n: bar.update(task, total=n, advance=1))
    print_report(result)
    return 0


def cmd_calibrate(argv: list[str]) -> int:
    from .calibrate import calibrated_version

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m model calibrate",
        description="Publish the next model version: the same weights, with the element "
        "head's decision offsets fitted on its training pages and picture boxes on (`make "
        "train` does both itself; this is for a model trained without them).")
    p.add_argument("model", nargs="?", help="models/mNNNN or mNNNN (default: the latest)")
    p.add_argument("release", nargs="?", help="the release it was trained on (default: the "
                   "one its model.json names)")
    add_common_args(p)
    p.add_argument("--pages", type=int, default=d.calibrate_pages,
                   help=f"training pages to fit on (default {d.calibrate_pages})")
    p.add_argument("--no-picture-boxes", action="store_true",
                   help="leave the card without picture boxes (model/pictures.py)")
    p.add_argument("--no-picture-chooser", action="store_true",
                   help="join the blocks inside the network's image areas by model/pictures.py's "
                   "rule instead of fitting a classifier that chooses among all the page's "
                   "blocks (model/picture_chooser.py)")
    p.add_argument("--picture-gap", type=int, metavar="PX",
                   help="with --no-picture-chooser: join picture blocks only when at most PX "
                   "pixels (at the working width) apart: side-by-side pictures and gallery "
                   "thumbnails stay apart, and so do the panels of one plot (default: any "
                   "distance)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.pages < 1:
        p.error("--pages must be 1 or more")
    if args.picture_gap is not None and args.picture_gap < 0:
        p.error("--picture-gap must be 0 or more")
    if args.picture_gap is not None and not args.no_picture_chooser:
        p.error("--picture-gap sets the join rule: give --no-picture-chooser with it")
    import torch

    torch.set_num_threads(args.threads)
    _, ws = load(args)
    model = load_model(resolve_model(args.model, _models_dir(ws.root)))
    release = open_release(Path(args.release) if args.release
                           else Path(model.card["release"]["path"]))
    out = calibrated_version(model, release, args.pages, model.path.parent,
                             pictures=not args.no_picture_boxes,
                             boxes=PictureBoxes(gap=args.picture_gap),
                             choose=not args.no_picture_chooser)
    print(f"wrote {out}")
    return 0


def cmd_serve(argv: list[str]) -> int:
    from .serve.cli import cmd_serve as serve

    return serve(argv)


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate,
            "calibrate": cmd_calibrate, "serve": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m model {train,predict,evaluate,calibrate,serve} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    run_main(main)
