"""A release's split directories: every page's files and entries (on the workers), and per
split its COCO annotations, metadata.jsonl and tiles/metadata.jsonl (`entries`).

Pages go through `workers.page_map` split after split in page id order and come back in
that order, so COCO ids, the metadata rows and the messages about pages left out are the
same whatever the number of jobs.
"""

from __future__ import annotations

import errno
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
from PIL import Image

from catalog import Config
from catalog.config import ExportConfig

from .coco import COCO_INFO_SCHEMA, categories
from .entries import PageEntry, SplitWriter, page_entry
from .groups import Assignment
from .masks import ClassSet
from .pagefiles import export_page
from .preview import caption
from .select import PageInput
from .workers import PageMap


def dump_json(obj: object, path: Path) -> None:
    text = json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


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

    def add(self, e: PageEntry) -> None:
        self.manifest.append(e.manifest)
        self.instances.update(e.instances)
        self.pixels.update(e.pixels)
        self.tiles += e.tiles
        self.regions_dropped += e.regions_dropped
        self.digests.update(e.digests)
        if e.thumbnail is not None:
            self.thumbnails[e.page_id] = e.thumbnail


def export_one(root: Path, classes: ClassSet, ex: ExportConfig,
               item: tuple[str, PageInput, str, str | None]) -> PageEntry | str:
    """Write one page of a split and make its entries (in a worker process, or not); why
    it failed otherwise, its files removed. item: (split, page, its split group, caption
    of its preview thumbnail or None)."""
    split, page, group, thumb = item
    sdir = root / split
    try:
        # COCO ids are given in page order once the results are in.
        res = export_page(
            page, sdir, classes, image_id=0, tile=ex.tile, tile_files=ex.tile_files,
            resize_width=ex.resize_width, png_level=ex.png_level, thumbnail_caption=thumb,
        )
    except (OSError, ValueError, cv2.error) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # not this page's fault: every page after it would fail the same way
        for stale in [sdir / "images" / f"{page.page_id}.png",
                      sdir / "masks" / f"{page.page_id}.png",
                      *sdir.glob(f"tiles/*/{page.page_id}_*.png")]:
            stale.unlink(missing_ok=True)
        return f"could not be exported ({exc})"
    return page_entry(split, page, group, res, classes)


def export_pages(
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
    processes), and each split's files, written as its pages come in."""
    ex = config.export
    subs = ("images", "masks") + (("tiles/images", "tiles/masks") if ex.tile_files else ())
    for split in by_split:
        for sub in subs:
            (root / split / sub).mkdir(parents=True, exist_ok=True)
    items = [
        (split, page, assignment[page.page_id].group,
         caption(split, page.page_id, page.site, page.source)
         if page.page_id in previewed else None)
        for split, pages in by_split.items()
        for page in sorted(pages, key=lambda p: p.page_id)
    ]
    outs = {s: SplitOutput() for s in by_split}
    results = pmap(partial(export_one, root, classes, ex), items)
    left = {s: len(pages) for s, pages in by_split.items()}
    writers: dict[str, SplitWriter] = {}

    def writer(split: str) -> SplitWriter:
        if split not in writers:
            writers[split] = SplitWriter(
                root / split,
                {"description": f"{config.dataset.name} {version} {split}",
                 "version": version, "schema": COCO_INFO_SCHEMA},
                categories(classes), bool(ex.tile))
        return writers[split]

    try:
        for split in [s for s, n in left.items() if not n]:
            outs[split].digests.update(writer(split).close())
        for (split, page, _, _), res in zip(items, results, strict=True):
            out = outs[split]
            if isinstance(res, str):
                out.problems.append((page.page_id, res))
                log(f"left out {page.page_id}: {res}")
            else:
                writer(split).add(res)
                out.add(res)
            if progress:
                progress(page.page_id, not isinstance(res, str))
            left[split] -= 1
            if not left[split]:  # while the workers go on with the next split's pages
                out.digests.update(writer(split).close())
    finally:
        for w in writers.values():
            w.abort()
    return outs
