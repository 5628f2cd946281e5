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
import re
import shutil
import stat
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib.metadata import version as pkg_version
from pathlib import Path

import cv2
from PIL import Image

from catalog import Catalog, Config, Workspace
from catalog.config import ExportConfig

from .card import CardData, render_card
from .coco import COCO_INFO_SCHEMA, categories
from .groups import Assignment, assign_splits, check_ratios
from .manifest import Changes, diff_manifests, read_manifest, write_manifest
from .masks import ClassSet
from .pagefiles import PageResult, export_page
from .preview import caption, contact_sheet, pick
from .select import PageInput, Selection, select_pages
from .workers import PageMap, page_map

VERSION_RE = re.compile(r"^v(\d{4,})$")
TMP_PREFIX = ".tmp-"
SUMS = "SHA256SUMS"
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


def next_version(releases_dir: Path) -> str:
    have = versions(releases_dir)
    return f"v{int(have[-1][1:]) + 1:04d}" if have else "v0001"


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
    jobs: int = 1,
) -> ReleaseResult:
    """Write the next release; ValueError (no release, nothing left behind) when empty.

    start(n) is called once the n pages to export are known, progress(page_id, ok) after
    each page, log(line) for each page left out. jobs: processes that check and write
    pages; the release is the same for any number.
    """
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
        what = "human-annotated or pre-annotated" if ex.include_preannotations else "human-annotated"
        raise ValueError(
            f"nothing to export from {ws.root}: no usable {what} page "
            f"({len(sel.problems)} with bad input, {sel.duplicates} dropped duplicates); "
            "run `make pull` first, or pass --include-preannotations"
        )
    assignment = assign_splits(sel.links, ex.split_salt, ex.val_ratio, ex.test_ratio)
    if start:
        start(len(sel.pages))

    releases = ws.releases_dir
    releases.mkdir(parents=True, exist_ok=True)
    with open(releases / ".lock", "w") as lock:
        # One export at a time per workspace; a second one waits.
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in releases.glob(f"{TMP_PREFIX}*"):  # left by a killed export
            shutil.rmtree(stale, ignore_errors=True)
        version = next_version(releases)
        tmp = releases / f"{TMP_PREFIX}{version}-{os.getpid()}"
        try:
            result = _write(tmp, version, ws, config, classes, splits, sel, assignment, progress,
                            log, pmap)
            final = releases / version
            if final.exists():
                raise FileExistsError(f"{final} exists; a release is never overwritten")
            _freeze(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    digest = hashlib.sha256((final / SUMS).read_bytes()).hexdigest()
    with Catalog(ws.catalog_path) as cat, cat.transaction() as conn:
        conn.execute(
            "INSERT INTO releases(version, created_at, pages, sha256sums) VALUES(?,?,?,?)",
            (version, time.time(), result.pages, digest),
        )
    result.path = final
    return result


def _previous_manifest(releases: Path, version: str) -> tuple[str, list[dict]]:
    older = [v for v in versions(releases) if int(v[1:]) < int(version[1:])]
    if not older or not (releases / older[-1] / "manifest.parquet").is_file():
        return "", []
    return older[-1], read_manifest(releases / older[-1] / "manifest.parquet")


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
    images: list[dict] = field(default_factory=list)  # COCO images
    annotations: list[dict] = field(default_factory=list)  # COCO annotations
    meta: list[dict] = field(default_factory=list)  # rows of metadata.jsonl
    tile_rows: list[dict] = field(default_factory=list)  # rows of tiles/metadata.jsonl


def export_one(root: Path, classes: ClassSet, ex: ExportConfig,
               item: tuple[str, PageInput, str | None]) -> PageResult | str:
    """Write one page of a split (in a worker process, or not); why it failed otherwise,
    its files removed. item: (split, page, caption of its preview thumbnail or None)."""
    split, page, thumb = item
    sdir = root / split
    try:
        # COCO image ids are given in page order once the results are in.
        return export_page(
            page, sdir, classes, image_id=0, tile=ex.tile, tile_files=ex.tile_files,
            resize_width=ex.resize_width, png_level=ex.png_level, thumbnail_caption=thumb,
        )
    except (OSError, ValueError, cv2.error) as exc:
        for stale in [sdir / "images" / f"{page.page_id}.png",
                      sdir / "masks" / f"{page.page_id}.png",
                      *sdir.glob(f"tiles/*/{page.page_id}_*.png")]:
            stale.unlink(missing_ok=True)
        return f"could not be exported ({exc})"


def _add_page(out: SplitOutput, split: str, page: PageInput, res: PageResult,
              classes: ClassSet, assignment: dict[str, Assignment]) -> None:
    image_id = len(out.images) + 1
    out.images.append({
        "id": image_id, "file_name": res.image, "width": res.width,
        "height": res.height, "page_id": page.page_id,
    })
    for a in res.annotations:
        out.annotations.append({**a, "image_id": image_id, "id": len(out.annotations) + 1})
        out.instances[a["category_id"]] += 1
    out.pixels.update({i: int(n) for i, n in enumerate(res.class_pixels) if n})
    out.regions_dropped += res.regions_dropped
    out.tiles += len(res.tiles)
    out.digests.update({f"{split}/{rel}": d for rel, d in res.digests.items()})
    if res.thumbnail is not None:
        out.thumbnails[page.page_id] = res.thumbnail
    out.tile_rows += res.tiles
    n_regions = sum(1 for a in res.annotations if classes.is_region(a["category_id"]))
    out.meta.append({
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


def _export_pages(
    by_split: dict[str, list[PageInput]],
    root: Path,
    version: str,
    config: Config,
    classes: ClassSet,
    assignment: dict[str, Assignment],
    progress: Callable[[str, bool], None] | None,
    log: Callable[[str], None],
    previewed: set[str],
    pmap: PageMap,
) -> dict[str, SplitOutput]:
    """Every page's files, split after split in page id order (through pmap: in worker
    processes), and each split's files once its pages are in."""
    ex = config.export
    subs = ("images", "masks") + (("tiles/images", "tiles/masks") if ex.tile_files else ())
    for split in by_split:
        for sub in subs:
            (root / split / sub).mkdir(parents=True, exist_ok=True)
    items = [
        (split, page, caption(split, page.page_id, page.site) if page.page_id in previewed
         else None)
        for split, pages in by_split.items()
        for page in sorted(pages, key=lambda p: p.page_id)
    ]
    outs = {s: SplitOutput() for s in by_split}
    results = pmap(partial(export_one, root, classes, ex), items)
    left = {s: len(pages) for s, pages in by_split.items()}
    for split in [s for s, n in left.items() if not n]:
        _write_split(split, outs[split], root, version, config, classes)
    for (split, page, _), res in zip(items, results, strict=True):
        out = outs[split]
        if isinstance(res, str):
            out.problems.append((page.page_id, res))
            log(f"left out {page.page_id}: {res}")
        else:
            _add_page(out, split, page, res, classes, assignment)
        if progress:
            progress(page.page_id, not isinstance(res, str))
        left[split] -= 1
        if not left[split]:  # while the workers go on with the next split's pages
            _write_split(split, out, root, version, config, classes)
    return outs


def _write_split(split: str, out: SplitOutput, root: Path, version: str, config: Config,
                 classes: ClassSet) -> None:
    """<split>/annotations.json, metadata.jsonl and tiles/metadata.jsonl."""
    sdir = root / split
    coco = {
        "info": {
            "description": f"{config.dataset.name} {version} {split}",
            "version": version, "schema": COCO_INFO_SCHEMA,
        },
        "licenses": [],
        "images": out.images,
        "annotations": out.annotations,
        "categories": categories(classes),
    }
    _dump(coco, sdir / "annotations.json", compact=True)
    _jsonl(out.meta, sdir / "metadata.jsonl")
    if config.export.tile:
        (sdir / "tiles").mkdir(exist_ok=True)
        _jsonl(out.tile_rows, sdir / "tiles" / "metadata.jsonl")


def _write(
    root: Path,
    version: str,
    ws: Workspace,
    config: Config,
    classes: ClassSet,
    splits: list[str],
    sel: Selection,
    assignment: dict[str, Assignment],
    progress: Callable[[str, bool], None] | None,
    log: Callable[[str], None],
    pmap: PageMap,
) -> ReleaseResult:
    ex = config.export
    by_split: dict[str, list[PageInput]] = {s: [] for s in splits}
    for page in sel.pages:
        by_split[assignment[page.page_id].split].append(page)
    # The pages the preview will show, if none fails: their thumbnails are made while
    # their pixels are at hand. A failure changes the pick; the preview then reads files.
    planned = [{"page_id": p.page_id, "split": assignment[p.page_id].split, "site": p.site}
               for p in sel.pages]
    previewed = {r["page_id"] for r in pick(planned, splits, ex.preview_pages)}
    outs = _export_pages(by_split, root, version, config, classes, assignment, progress, log,
                         previewed, pmap)
    manifest = [row for o in outs.values() for row in o.manifest]
    problems = list(sel.problems) + [p for o in outs.values() for p in o.problems]
    if not manifest:
        raise ValueError("nothing to export: every selected page failed (see the lines above)")

    _dump(classes.to_json(), root / "classes.json")
    write_manifest(manifest, root / "manifest.parquet")
    manifest = read_manifest(root / "manifest.parquet")  # sorted as written
    previous, old_rows = _previous_manifest(ws.releases_dir, version)
    changes = diff_manifests(previous, old_rows, manifest)
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
        problems=problems, duplicates=sel.duplicates,
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
