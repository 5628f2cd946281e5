"""Write the next release of a workspace: releases/vNNNN/, complete or not at all.

The release is built under a temporary name and renamed when complete; an existing
version is never written to. Files are read-only once in place. The catalog gets one row
(with the time) in `releases`; nothing inside the release depends on when it was made.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path

import numpy as np

from catalog import Catalog, Config, Workspace
from catalog.cli import make_hint

from .card import CardData, render_card
from .groups import check_ratios
from .history import (
    SUMS,
    VERSION_RE,
    History,
    manifest_splits,
    read_history,
    reconcile,
    record_release,
    recorded_splits,
)
from .manifest import Changes, diff_manifests, read_manifest, write_manifest
from .masks import ClassSet
from .png import encode_pixels
from .preview import contact_sheet, pick
from .select import (
    PageInput,
    Selection,
    count_preannotated,
    page_addresses,
    removal_reasons,
    select_pages,
)
from .split_files import dump_json, export_pages
from .splitplan import SplitPlan, plan_splits
from .workers import PageMap, page_map

TMP_PREFIX = ".tmp-"
# Libraries whose output bytes a release depends on; the card names their versions.
WRITERS = ("pillow", "numpy", "pycocotools", "pyarrow", "opencv-python-headless", "isal", "pyspng")


@dataclass
class ReleaseResult:
    version: str
    path: Path
    pages: int
    per_split: dict[str, int]
    tiles: int
    problems: list[tuple[str, str]] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)


def versions(releases_dir: Path) -> list[str]:
    if not releases_dir.is_dir():
        return []
    found = [p.name for p in releases_dir.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
    return sorted(found, key=lambda v: int(v[1:]))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_sums(root: Path, known: dict[str, str] | None = None) -> str:
    """SHA256SUMS over every file of the release (sha256sum -c reads it); returns its text.

    known: digests of files by release-relative path, taken from the bytes as they were
    written; every other file is read and hashed here.
    """
    known = known or {}
    names = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*")
        if p.is_file() and p.name != SUMS
    )
    lines = [f"{known.get(n) or sha256_file(root / n)}  {n}" for n in names]
    text = "\n".join(lines) + "\n"
    (root / SUMS).write_text(text, encoding="utf-8")
    return text


def _freeze(root: Path) -> None:
    """Files read-only: a release is never modified in place."""
    ro = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    for p in root.rglob("*"):
        if p.is_file():
            p.chmod(ro)


@functools.cache
def _library_versions() -> dict[str, str]:
    """The WRITERS' versions (read once a process: package metadata is looked up on
    every path entry, a few ms each)."""
    out = {}
    for name in WRITERS:
        try:
            out[name] = pkg_version(name)
        except Exception:  # a writer missing from metadata is named without its version
            out[name] = "?"
    return out


def make_release(
    ws: Workspace,
    config: Config,
    *,
    progress: Callable[[str, bool], None] | None = None,
    log: Callable[[str], None] = print,
    start: Callable[[int], None] | None = None,
    jobs: int = 1,
) -> ReleaseResult:
    """Write the next release; ValueError (no release, nothing left behind) when empty.

    start(n) is called once the n pages to export are known, progress(page_id, ok) after
    each page, log(line) for each page left out. jobs: processes that check and write
    pages; the release is the same for any number.
    """
    # Looked up while the pages are checked and written, not after the last one.
    threading.Thread(target=_library_versions, daemon=True).start()
    with page_map(jobs) as pmap:
        return _make_release(ws, config, progress, log, start, pmap)


def _make_release(
    ws: Workspace,
    config: Config,
    progress: Callable[[str, bool], None] | None,
    log: Callable[[str], None],
    start: Callable[[int], None] | None,
    pmap: PageMap,
) -> ReleaseResult:
    ex = config.export
    check_ratios(ex.val_ratio, ex.test_ratio)
    if ex.tile < 0 or ex.resize_width < 0:
        raise ValueError("[export] tile and resize_width must be 0 (off) or positive")
    if ex.tile_files and not ex.tile:
        raise ValueError("--tile-files writes the files of tiles: give their size, --tile N")
    classes = ClassSet.from_labels(config.labels)
    splits = ["train", "val"] + (["test"] if ex.test_ratio > 0 else [])

    with Catalog(ws.catalog_path) as cat:
        sel = select_pages(ws, cat, classes, ex.include_preannotations, pmap)
    for pid, why in sel.problems:
        log(f"left out {pid}: {why}")
    if not sel.pages:
        raise ValueError(_nothing_to_export(ws, config, sel))

    releases = ws.releases_dir
    releases.mkdir(parents=True, exist_ok=True)
    with open(releases / ".lock", "w") as lock:
        # One export at a time per workspace; a second one waits.
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in releases.glob(f"{TMP_PREFIX}*"):  # left by a killed export
            shutil.rmtree(stale, ignore_errors=True)
        with Catalog(ws.catalog_path) as cat:
            history = read_history(cat, releases)
            for line in reconcile(cat, releases, history):
                log(line)
            recorded = recorded_splits(cat, releases, history)
        plan = plan_splits(sel.links, [p.page_id for p in sel.pages], recorded,
                           ex.split_salt, ex.val_ratio, ex.test_ratio,
                           addresses=lambda: page_addresses(ws), val_sites=ex.val_sites)
        for pid, split in sorted(plan.unplaced.items()):
            why = (f"was released in {split}, which this config does not write "
                   "(a page never changes split): set [export] test_ratio to write it")
            sel.problems.append((pid, why))
            log(f"left out {pid}: {why}")
        sel.pages = [p for p in sel.pages if p.page_id in plan.assignment]
        if start:
            start(len(sel.pages))
        version = history.next_version()
        tmp = releases / f"{TMP_PREFIX}{version}-{os.getpid()}"
        final = releases / version
        try:
            result = _write(tmp, version, ws, config, classes, splits, sel, plan, history,
                            progress, log, pmap)
            if final.exists():
                raise FileExistsError(f"{final} exists; a release is never overwritten")
            _freeze(tmp)
            digest = hashlib.sha256((tmp / SUMS).read_bytes()).hexdigest()
            # The row and the splits commit only once the folder is in place; a kill
            # between the two leaves a complete folder that the next export records.
            with Catalog(ws.catalog_path) as cat, cat.transaction() as conn:
                record_release(conn, version, time.time(), digest, manifest_splits(tmp))
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    result.path = final
    return result


def _nothing_to_export(ws: Workspace, config: Config, sel: Selection) -> str:
    """The message of an empty selection, pointing at the step that makes pages to export."""
    what = ("human-annotated or pre-annotated" if config.export.include_preannotations
            else "human-annotated")
    pre = count_preannotated(ws, sel)
    if pre and not config.export.include_preannotations:
        hint = (f"run {make_hint('pull', ws, config)} first, or pass --include-preannotations "
                f"to export the {pre} pre-annotated pages nobody reviewed yet")
    elif pre:
        hint = "every pre-annotated page was left out (see the lines above)"
    else:
        hint = (f"run {make_hint('pull', ws, config)} first; no page is pre-annotated either "
                f"(run {make_hint('preannotate', ws, config)} before --include-preannotations)")
    return (f"nothing to export from {ws.root}: no usable {what} page "
            f"({len(sel.problems)} with bad input, {sel.duplicates} dropped duplicates); {hint}")


def _previous_manifest(releases: Path, version: str,
                       history: History) -> tuple[str, list[dict], bool]:
    """(previous version, its manifest rows, whether its folder is missing)."""
    previous = history.previous(version)
    path = releases / previous / "manifest.parquet"
    if not previous or not path.is_file():
        return previous, [], bool(previous)
    return previous, read_manifest(path), False


def _write(
    root: Path,
    version: str,
    ws: Workspace,
    config: Config,
    classes: ClassSet,
    splits: list[str],
    sel: Selection,
    plan: SplitPlan,
    history: History,
    progress: Callable[[str, bool], None] | None,
    log: Callable[[str], None],
    pmap: PageMap,
) -> ReleaseResult:
    ex = config.export
    assignment = plan.assignment
    by_split: dict[str, list[PageInput]] = {s: [] for s in splits}
    for page in sel.pages:
        by_split[assignment[page.page_id].split].append(page)
    # The pages the preview will show, if none fails: their thumbnails are made while
    # their pixels are at hand. A failure changes the pick; the preview then reads files.
    planned = [{"page_id": p.page_id, "split": assignment[p.page_id].split, "site": p.site}
               for p in sel.pages]
    previewed = {r["page_id"] for r in pick(planned, splits, ex.preview_pages)}
    outs = export_pages(by_split, root, version, config, classes, assignment, progress, log,
                         previewed, pmap)
    manifest = [row for o in outs.values() for row in o.manifest]
    problems = list(sel.problems) + [p for o in outs.values() for p in o.problems]
    if not manifest:
        raise ValueError("nothing to export: every selected page failed (see the lines above)")

    dump_json(classes.to_json(), root / "classes.json")
    write_manifest(manifest, root / "manifest.parquet")
    manifest = read_manifest(root / "manifest.parquet")  # sorted as written
    previous, old_rows, missing = _previous_manifest(ws.releases_dir, version, history)
    changes = diff_manifests(previous, old_rows, manifest)
    changes.missing = missing
    changes.removed_why = removal_reasons(
        old_rows, changes.removed, sel, ex.include_preannotations,
        bad={pid for pid, _ in problems}, unplaced=set(plan.unplaced))
    names = classes.names
    colours = [classes.color(n) for n in names]
    if ex.preview_pages > 0:
        ready = {k: v for o in outs.values() for k, v in o.thumbnails.items()}
        sheet = contact_sheet(root, pick(manifest, splits, ex.preview_pages), names, colours,
                              ready=ready)
        # The export's own PNG codec: Pillow's zlib took the longest of the work left
        # once the last page is in.
        (root / "preview.png").write_bytes(encode_pixels(np.asarray(sheet), ex.png_level))
    card = CardData(
        dataset=config.dataset.name, version=version, splits=splits, manifest=manifest,
        class_names=names, instances={s: o.instances for s, o in outs.items()},
        pixels={s: o.pixels for s, o in outs.items()},
        tiles={s: o.tiles for s, o in outs.items()},
        config={"export": asdict(ex), "labels": asdict(config.labels)}, changes=changes,
        problems=problems, duplicates=sel.duplicates, split_plan=plan,
        regions_dropped=sum(o.regions_dropped for o in outs.values()),
        versions=dict(_library_versions()),
    )
    (root / "README.md").write_text(render_card(card), encoding="utf-8")
    write_sums(root, {k: v for o in outs.values() for k, v in o.digests.items()})
    return ReleaseResult(
        version=version, path=root, pages=len(manifest),
        per_split={s: sum(1 for r in manifest if r["split"] == s) for s in splits},
        tiles=sum(o.tiles for o in outs.values()), problems=problems, changes=changes,
    )
