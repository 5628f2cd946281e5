"""python -m export [options]: write the next release; python -m export verify RELEASE."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from catalog.cli import add_common_args, load, make_hint, run_main

from .memory import keep_freed_memory
from .release import make_release, versions
from .verify import verify_release
from .workers import default_jobs


def _release_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m export",
        description="Write the next release, datasets/<name>/releases/vNNNN/ "
        "(`python -m export verify RELEASE` checks one).",
    )
    add_common_args(p)
    p.add_argument("--include-preannotations", action="store_true", default=None,
                   help="also export pages nobody reviewed yet (marked in the manifest)")
    p.add_argument("--tile", type=int, default=None,
                   help="also list square tiles of N px, windows over the pages (0: off)")
    p.add_argument("--tile-files", action="store_true", default=None,
                   help="with --tile: also write each tile's image and mask files")
    p.add_argument("--resize-width", type=int, default=None, help="resize pages to N px wide")
    p.add_argument("--val-ratio", type=float, default=None, help="share of groups in val")
    p.add_argument("--test-ratio", type=float, default=None, help="share of groups in test")
    _jobs_arg(p)
    return p


def _verify_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m export verify",
        description="Check every checksum of a release and that its COCO files match its masks.",
    )
    p.add_argument("release", nargs="?", default=None,
                   help="a release directory (default: the workspace's latest release)")
    add_common_args(p)
    _jobs_arg(p)
    return p


def _jobs_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help="worker processes (default: the cores, %(default)s here); the "
                   "result does not depend on it")


def _bar(what: str, unit: str) -> Progress:
    return Progress(
        TextColumn(what), BarColumn(), MofNCompleteColumn(),
        TextColumn(f"{{task.fields[rate]:.1f}} {unit}/s, {{task.fields[errors]}} errors"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=False,
        disable=not sys.stderr.isatty(),
    )


def cmd_verify(argv: list[str]) -> int:
    args = _verify_parser().parse_args(argv)
    release = args.release
    if release is None:
        config, ws = load(args)
        have = versions(ws.releases_dir)
        if not have:
            raise ValueError(f"{ws.releases_dir} holds no release yet: run "
                             f"{make_hint('export', ws, config)} first")
        release = ws.releases_dir / have[-1]
    with _bar("verify", "pages") as bar:
        task = bar.add_task("verify", total=None, rate=0.0, errors=0)

        def progress(ok: bool) -> None:
            done = bar.tasks[0].completed + 1
            bar.update(task, advance=1, rate=done / (bar.tasks[0].elapsed or 1e-9),
                       errors=bar.tasks[0].fields["errors"] + (not ok))

        rep = verify_release(release, jobs=args.jobs, progress=progress,
                             start=lambda n: bar.update(task, total=n))
    for problem in rep.problems[1:]:
        print(f"  {problem}", file=sys.stderr)
    print(rep.verdict())
    return 0 if rep.ok else 1


def cmd_release(argv: list[str]) -> int:
    args = _release_parser().parse_args(argv)
    config, ws = load(args)
    ex = config.export
    for name in ("include_preannotations", "tile", "tile_files", "resize_width", "val_ratio",
                 "test_ratio"):
        value = getattr(args, name)
        if value is not None:
            setattr(ex, name, value)
    if not ws.catalog_path.is_file():
        raise ValueError(f"{ws.catalog_path} does not exist: crawl and annotate first "
                         f"({make_hint('crawl', ws, config)})")
    errors = 0
    with _bar("export", "pages") as bar:
        task = bar.add_task("export", total=None, rate=0.0, errors=0)

        def progress(page_id: str, ok: bool) -> None:
            nonlocal errors
            errors += not ok
            elapsed = bar.tasks[0].elapsed or 1e-9
            done = bar.tasks[0].completed + 1
            bar.update(task, advance=1, rate=done / elapsed, errors=errors)

        result = make_release(
            ws, config, progress=progress,
            log=lambda line: bar.console.print(line, markup=False, highlight=False,
                                               soft_wrap=True),
            start=lambda n: bar.update(task, total=n), jobs=args.jobs,
        )
    splits = ", ".join(f"{n} {s}" for s, n in result.per_split.items())
    print(
        f"wrote {result.path}: {result.pages} pages ({splits}), {result.tiles} tile windows, "
        f"{len(result.problems)} left out"
    )
    empty = [s for s, n in result.per_split.items() if n == 0]
    if empty:
        print(
            f"warning: split {', '.join(empty)} is empty: the pages come from too few sites "
            "or templates for the asked ratios", file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "verify":
        return cmd_verify(argv[1:])
    if argv and argv[0] == "release":
        argv = argv[1:]
    keep_freed_memory()
    return cmd_release(argv)


if __name__ == "__main__":
    run_main(main)
