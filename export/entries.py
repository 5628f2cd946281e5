"""A page's entries in its split's files, made on the worker that exported it, and the
writer that joins them in the main process.

Everything about a page that does not depend on the pages before it is built where the
page was exported: its COCO image and annotations as JSON text with their ids left open
(the annotations as UTF-8 with a `%d` where each id goes), its lines of metadata.jsonl and
tiles/metadata.jsonl, its manifest row and its counts. The main process only numbers the
COCO entries (ids run on from page to page in page order; one `%` formatting a page) and
writes the texts out as the pages come in, hashing as it writes. The bytes are those
of `json.dumps(..., sort_keys=True)` over the whole split, whatever the number of jobs.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from .masks import ClassSet
from .pagefiles import PageResult
from .select import PageInput

# annotations.json is compact (one line); the .jsonl rows keep json's default separators.
_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_ROW = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
# Ids are written as this number on the worker, and the text is cut where they stand. No
# string value holds it: JSON escapes every quote inside a string.
_OPEN = -1
_ANN_IDS = f'"id":{_OPEN},"image_id":{_OPEN}'
_IMAGE_ID = f'"id":{_OPEN}'


def jsonl_line(row: dict) -> str:
    """One row of a .jsonl file of a release."""
    return _ROW.encode(row) + "\n"


def _cut(text: str, mark: str, pieces: int) -> list[str]:
    parts = text.split(mark)
    if len(parts) != pieces:  # only a value that is no plain JSON data could do this
        raise RuntimeError(f"expected {pieces - 1} open ids in a COCO entry, found "
                           f"{len(parts) - 1}")
    return parts


def _ids_open(text: str, n: int) -> bytes:
    """The annotations' text with a `%d` for each id and image id (checked: n of each)."""
    _cut(text, _ANN_IDS, n + 1)
    return text.replace("%", "%%").replace(_ANN_IDS, '"id":%d,"image_id":%d').encode("utf-8")


@dataclass
class PageEntry:
    """One exported page as its split's files and the release's counts take it."""

    page_id: str
    image: list[str]  # its COCO image's text before and after the image id
    # Its COCO annotations' text in UTF-8, a `%d` where each one's "id" and "image_id"
    # go (any other "%" doubled), and how many there are.
    annotations: bytes
    n_annotations: int
    meta: str  # its line of metadata.jsonl
    tile_lines: str  # its lines of tiles/metadata.jsonl
    manifest: dict  # its row of manifest.parquet
    instances: dict[int, int]  # class id -> instances
    pixels: dict[int, int]  # class id -> pixels
    regions_dropped: int
    tiles: int
    digests: dict[str, str]  # release-relative path -> sha256 of the page's files
    thumbnail: Image.Image | None = None


def page_entry(split: str, page: PageInput, group: str, res: PageResult,
               classes: ClassSet) -> PageEntry:
    """The entries of a page written by `pagefiles.export_page`."""
    anns = res.annotations
    ann_text = _COMPACT.encode([{**a, "id": _OPEN, "image_id": _OPEN} for a in anns])[1:-1]
    image = {"id": _OPEN, "file_name": res.image, "width": res.width, "height": res.height,
             "page_id": page.page_id}
    n_regions = sum(1 for a in anns if classes.is_region(a["category_id"]))
    meta = {
        "file_name": res.image, "mask_file_name": res.mask, "page_id": page.page_id,
        "site": page.site, "source": page.source, "width": res.width, "height": res.height,
    }
    manifest = {
        "page_id": page.page_id, "split": split, "source": page.source,
        "reviewed": page.reviewed, "url": page.url, "final_url": page.final_url,
        "site": page.site, "group": group, "width": res.width, "height": res.height,
        "original_width": page.width, "original_height": page.height,
        "image": f"{split}/{res.image}", "mask": f"{split}/{res.mask}",
        "image_sha256": res.image_sha256, "mask_sha256": res.mask_sha256,
        "annotation_sha256": page.annotation_sha256, "regions": n_regions,
        "elements": len(anns) - n_regions, "tiles": len(res.tiles),
    }
    return PageEntry(
        page_id=page.page_id,
        image=_cut(_COMPACT.encode(image), _IMAGE_ID, 2),
        annotations=_ids_open(ann_text, len(anns)),
        n_annotations=len(anns),
        meta=jsonl_line(meta),
        tile_lines="".join(jsonl_line(r) for r in res.tiles),
        manifest=manifest,
        instances=dict(Counter(a["category_id"] for a in anns)),
        pixels={i: int(n) for i, n in enumerate(res.class_pixels) if n},
        regions_dropped=res.regions_dropped,
        tiles=len(res.tiles),
        digests={f"{split}/{rel}": d for rel, d in res.digests.items()},
        thumbnail=res.thumbnail,
    )


class _HashedFile:
    """A file written in pieces, with the SHA-256 of what was written."""

    def __init__(self, path: Path) -> None:
        self.fh: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed by SplitWriter.close)
        self.sha = hashlib.sha256()

    def write(self, text: str | bytes) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.fh.write(data)
        self.sha.update(data)


class SplitWriter:
    """A split's annotations.json, metadata.jsonl and tiles/metadata.jsonl, written as its
    pages come in, in page order; `close` finishes them and gives their SHA-256 by
    release-relative path."""

    def __init__(self, split_dir: Path, info: dict, categories: list[dict],
                 tiles: bool) -> None:
        self.rel = split_dir.name
        self.info, self.categories = info, categories
        self.files = {"annotations.json": _HashedFile(split_dir / "annotations.json"),
                      "metadata.jsonl": _HashedFile(split_dir / "metadata.jsonl")}
        if tiles:
            (split_dir / "tiles").mkdir(exist_ok=True)
            self.files["tiles/metadata.jsonl"] = _HashedFile(split_dir / "tiles" /
                                                             "metadata.jsonl")
        # The COCO file's keys are sorted: "annotations" comes first and grows page by page.
        self.files["annotations.json"].write('{"annotations":[')
        self.images: list[str] = []  # COCO images, numbered: they follow the annotations
        self.next_ann = 1

    def add(self, e: PageEntry) -> None:
        image_id = len(self.images) + 1
        self.images.append(f"{e.image[0]}\"id\":{image_id}{e.image[1]}")
        if e.n_annotations:
            ids = [image_id] * (2 * e.n_annotations)  # id, image id, id, image id...
            ids[0::2] = range(self.next_ann, self.next_ann + e.n_annotations)
            out = self.files["annotations.json"]
            if self.next_ann > 1:
                out.write(b",")
            out.write(e.annotations % tuple(ids))
            self.next_ann += e.n_annotations
        self.files["metadata.jsonl"].write(e.meta)
        if "tiles/metadata.jsonl" in self.files:
            self.files["tiles/metadata.jsonl"].write(e.tile_lines)

    def close(self) -> dict[str, str]:
        # Every other key sorts after "annotations".
        rest = {"categories": self.categories, "images": [], "info": self.info,
                "licenses": []}
        # The numbered images go where the empty list stands: the only '"images":[]' of
        # the text (a quote inside a string value is escaped).
        tail = _COMPACT.encode(rest).replace('"images":[]',
                                             f'"images":[{",".join(self.images)}]', 1)
        self.files["annotations.json"].write("]," + tail[1:] + "\n")
        return self.abort()

    def abort(self) -> dict[str, str]:
        """Close the files as they are (an export that stopped); their digests so far."""
        out = {}
        for name, f in self.files.items():
            f.fh.close()
            out[f"{self.rel}/{name}"] = f.sha.hexdigest()
        return out
