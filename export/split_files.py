"""A release's split directories: every page's files (on the workers), then per split its
COCO annotations, metadata.jsonl and tiles/metadata.jsonl.

Pages go through `workers.page_map` split after split in page id order and come back in
that order, so COCO ids, the metadata rows and the messages about pages left out are the
same whatever the number of jobs.
"""

from __future__ import annotations

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
from .groups import Assignment
from .masks import ClassSet
from .pagefiles import PageResult, export_page
from .preview import caption
from .select import PageInput
from .workers import PageMap


def dump_json(obj: object, path: Path, compact: bool = False) -> None:
    text = (
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if compact
        else json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False)
    )
    path.write_text(text + "\n", encoding="utf-8")


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.write_text(
        "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8",
    )



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
    processes), and each split's files once its pages are in."""
    ex = config.export
    subs = ("images", "masks") + (("tiles/images", "tiles/masks") if ex.tile_files else ())
    for split in by_split:
        for sub in subs:
            (root / split / sub).mkdir(parents=True, exist_ok=True)
    items = [
        (split, page, caption(split, page.page_id, page.site, page.source)
         if page.page_id in previewed else None)
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
    dump_json(coco, sdir / "annotations.json", compact=True)
    write_jsonl(out.meta, sdir / "metadata.jsonl")
    if config.export.tile:
        (sdir / "tiles").mkdir(exist_ok=True)
        write_jsonl(out.tile_rows, sdir / "tiles" / "metadata.jsonl")
