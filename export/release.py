"""Write the next release of a workspace: releases/vNNNN/, complete or not at all.

The release is built under a temporary name and renamed when complete; an existing
version is never written to. Files are read-only once in place. The catalog gets one row
(with the time) in `releases`; nothing inside the release depends on when it was made.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path

import cv2
from PIL import Image

from catalog import Catalog, Config, Workspace
from catalog.cli import make_hint

from .card import CardData, render_card
from .coco import COCO_INFO_SCHEMA, categories
from .groups import Assignment, check_ratios
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
from .pagefiles import export_page
from .preview import caption, contact_sheet, pick
from .select import PageInput, Selection, count_preannotated, removal_reasons, select_pages
from .splitplan import SplitPlan, plan_splits

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


def _dump(obj: object, path: Path, compact: bool = False) -> None:
    text = (
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if compact
        else json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False)
    )
    path.write_text(text + "\n", encoding="utf-8")


def _jsonl(rows: list[dict], path: Path) -> None:
    path.write_text(
        "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8",
    )


def _freeze(root: Path) -> None:
    """Files read-only: a release is never modified in place."""
    ro = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    for p in root.rglob("*"):
        if p.is_file():
            p.chmod(ro)


def _library_versions() -> dict[str, str]:
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
) -> ReleaseResult:
    """Write the next release; ValueError (no release, nothing left behind) when empty.

    start(n) is called once the n pages to export are known, progress(page_id, ok) after
    each page, log(line) for each page left out.
    """
    ex = config.export
    check_ratios(ex.val_ratio, ex.test_ratio)
    if ex.tile < 0 or ex.resize_width < 0:
        raise ValueError("[export] tile and resize_width must be 0 (off) or positive")
    classes = ClassSet.from_labels(config.labels)
    splits = ["train", "val"] + (["test"] if ex.test_ratio > 0 else [])

    with Catalog(ws.catalog_path) as cat:
        sel = select_pages(ws, cat, classes, ex.include_preannotations)
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
                           ex.split_salt, ex.val_ratio, ex.test_ratio)
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
                            progress, log)
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


@dataclass
class SplitOutput:
    manifest: list[dict] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    instances: Counter = field(default_factory=Counter)  # class id -> instances
    pixels: Counter = field(default_factory=Counter)  # class id -> pixels
    tiles: int = 0
    regions_dropped: int = 0
    digests: dict[str, str] = field(default_factory=dict)  # release-relative path -> sha256
    thumbnails: dict[str, Image.Image] = field(default_factory=dict)  # page id -> thumbnail


def _export_split(
    split: str,
    pages: list[PageInput],
    root: Path,
    version: str,
    config: Config,
    classes: ClassSet,
    assignment: dict[str, Assignment],
    progress: Callable[[str, bool], None] | None,
    log: Callable[[str], None],
    previewed: set[str],
) -> SplitOutput:
    """Write <split>/: images, masks, tiles, annotations.json and metadata files."""
    ex = config.export
    out = SplitOutput()
    sdir = root / split
    for sub in ("images", "masks") + (("tiles/images", "tiles/masks") if ex.tile else ()):
        (sdir / sub).mkdir(parents=True, exist_ok=True)
    images, anns, meta, tile_rows = [], [], [], []
    for page in sorted(pages, key=lambda p: p.page_id):
        image_id = len(images) + 1
        try:
            res = export_page(
                page, sdir, classes, image_id=image_id, tile=ex.tile,
                resize_width=ex.resize_width, png_level=ex.png_level,
                thumbnail_caption=(caption(split, page.page_id, page.site, page.source)
                                   if page.page_id in previewed else None),
            )
        except (OSError, ValueError, cv2.error) as exc:
            why = f"could not be exported ({exc})"
            out.problems.append((page.page_id, why))
            log(f"left out {page.page_id}: {why}")
            for stale in [sdir / "images" / f"{page.page_id}.png",
                          sdir / "masks" / f"{page.page_id}.png",
                          *sdir.glob(f"tiles/*/{page.page_id}_*.png")]:
                stale.unlink(missing_ok=True)
            if progress:
                progress(page.page_id, False)
            continue
        images.append({
            "id": image_id, "file_name": res.image, "width": res.width,
            "height": res.height, "page_id": page.page_id,
        })
        for a in res.annotations:
            anns.append({**a, "id": len(anns) + 1})
            out.instances[a["category_id"]] += 1
        out.pixels.update({i: int(n) for i, n in enumerate(res.class_pixels) if n})
        out.regions_dropped += res.regions_dropped
        out.tiles += len(res.tiles)
        out.digests.update({f"{split}/{rel}": d for rel, d in res.digests.items()})
        if res.thumbnail is not None:
            out.thumbnails[page.page_id] = res.thumbnail
        tile_rows += res.tiles
        n_regions = sum(1 for a in res.annotations if classes.is_region(a["category_id"]))
        meta.append({
            "file_name": res.image, "mask_file_name": res.mask, "page_id": page.page_id,
            "site": page.site, "source": page.source, "width": res.width, "height": res.height,
        })
        out.manifest.append({
            "page_id": page.page_id, "split": split, "source": page.source,
            "reviewed": page.reviewed, "url": page.url, "final_url": page.final_url,
            "site": page.site, "group": assignment[page.page_id].group,
            "width": res.width, "height": res.height,
            "original_width": page.width, "original_height": page.height,
            "image": f"{split}/{res.image}", "mask": f"{split}/{res.mask}",
            "image_sha256": res.image_sha256, "mask_sha256": res.mask_sha256,
            "annotation_sha256": page.annotation_sha256, "regions": n_regions,
            "elements": len(res.annotations) - n_regions, "tiles": len(res.tiles),
        })
        if progress:
            progress(page.page_id, True)
    coco = {
        "info": {
            "description": f"{config.dataset.name} {version} {split}",
            "version": version, "schema": COCO_INFO_SCHEMA,
        },
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": categories(classes),
    }
    _dump(coco, sdir / "annotations.json", compact=True)
    _jsonl(meta, sdir / "metadata.jsonl")
    if ex.tile:
        _jsonl(tile_rows, sdir / "tiles" / "metadata.jsonl")
    return out


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
    outs = {
        s: _export_split(s, by_split[s], root, version, config, classes, assignment,
                         progress, log, previewed)
        for s in splits
    }
    manifest = [row for o in outs.values() for row in o.manifest]
    problems = list(sel.problems) + [p for o in outs.values() for p in o.problems]
    if not manifest:
        raise ValueError("nothing to export: every selected page failed (see the lines above)")

    _dump(classes.to_json(), root / "classes.json")
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
        sheet.save(root / "preview.png", "PNG", compress_level=ex.png_level, optimize=False)
    card = CardData(
        dataset=config.dataset.name, version=version, splits=splits, manifest=manifest,
        class_names=names, instances={s: o.instances for s, o in outs.items()},
        pixels={s: o.pixels for s, o in outs.items()},
        tiles={s: o.tiles for s, o in outs.items()},
        config={"export": asdict(ex), "labels": asdict(config.labels)}, changes=changes,
        problems=problems, duplicates=sel.duplicates, split_plan=plan,
        regions_dropped=sum(o.regions_dropped for o in outs.values()),
        versions=_library_versions(),
    )
    (root / "README.md").write_text(render_card(card), encoding="utf-8")
    write_sums(root, {k: v for o in outs.values() for k, v in o.digests.items()})
    return ReleaseResult(
        version=version, path=root, pages=len(manifest),
        per_split={s: sum(1 for r in manifest if r["split"] == s) for s in splits},
        tiles=sum(o.tiles for o in outs.values()), problems=problems, changes=changes,
    )
