"""A release as the model reads it, through its files only: classes.json, each split's
metadata.jsonl, annotations.json (COCO) and semantic masks, and the SHA256SUMS digest that
names exactly which bytes a model was trained on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IGNORE = 255


class ReleaseError(ValueError):
    """A release the model cannot use; the message says what to do."""


@dataclass(frozen=True)
class Classes:
    """The release's classes.json list and the two heads' class lists made from it."""

    table: tuple[dict, ...]

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.table]

    @property
    def regions(self) -> list[str]:
        return [c["name"] for c in self.table if c["kind"] == "region"]

    @property
    def elements(self) -> list[str]:
        return [c["name"] for c in self.table if c["kind"] == "element"]

    def ids(self, kind: str) -> list[int]:
        return [c["id"] for c in self.table if c["kind"] == kind]

    def element_lut(self) -> np.ndarray:
        """Semantic class id -> element head target (0 background, 255 ignore)."""
        lut = np.zeros(256, np.uint8)
        for k, cid in enumerate(self.ids("element"), start=1):
            lut[cid] = k
        lut[IGNORE] = IGNORE
        return lut

    def to_json(self) -> list[dict]:
        return [dict(c) for c in self.table]


@dataclass(frozen=True)
class PageRef:
    page_id: str
    split: str
    site: str
    image: Path
    mask: Path
    width: int
    height: int
    regions: tuple[tuple[int, tuple[float, float, float, float]], ...]  # class id, bbox


@dataclass(frozen=True)
class Release:
    path: Path
    classes: Classes

    @property
    def version(self) -> str:
        return self.path.name

    @property
    def name(self) -> str:
        # datasets/<name>/releases/vNNNN
        return self.path.parent.parent.name

    def sums_digest(self) -> str:
        return hashlib.sha256((self.path / "SHA256SUMS").read_bytes()).hexdigest()

    def file_sums(self) -> dict[str, str]:
        """Release-relative path -> SHA256, as SHA256SUMS lists them."""
        out = {}
        for line in (self.path / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            if name:
                out[name.strip()] = digest
        return out

    def pages(self, split: str) -> list[PageRef]:
        root = self.path / split
        meta = root / "metadata.jsonl"
        if not meta.is_file():
            return []
        rows = [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines()
                if line.strip()]
        coco_path = root / "annotations.json"
        coco = json.loads(coco_path.read_text(encoding="utf-8")) if coco_path.is_file() else {}
        by_page = {im["id"]: im["page_id"] for im in coco.get("images", [])}
        region_ids = set(self.classes.ids("region"))
        regions: dict[str, list] = {}
        for a in coco.get("annotations", []):
            if a["category_id"] in region_ids:
                regions.setdefault(by_page[a["image_id"]], []).append(
                    (a["category_id"], tuple(a["bbox"])))
        return [
            PageRef(r["page_id"], split, r.get("site", ""), root / r["file_name"],
                    root / r["mask_file_name"], int(r["width"]), int(r["height"]),
                    tuple(regions.get(r["page_id"], ())))
            for r in rows
        ]


def open_release(path: str | Path) -> Release:
    path = Path(path)
    if not (path / "classes.json").is_file():
        raise ReleaseError(
            f"{path} is not a release (no classes.json): give a releases/vNNNN directory "
            "written by `make export`")
    if not (path / "SHA256SUMS").is_file():
        raise ReleaseError(f"{path} has no SHA256SUMS: export it again (make export)")
    data = json.loads((path / "classes.json").read_text(encoding="utf-8"))
    return Release(path, Classes(tuple(data["classes"])))


def latest_release(releases_dir: Path) -> Path:
    found = sorted((p for p in releases_dir.glob("v[0-9]*") if p.is_dir()),
                   key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else -1)
    if not found:
        raise ReleaseError(f"{releases_dir} holds no release yet: run `make export` first")
    return found[-1]


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def region_target(page: PageRef, classes: Classes,
                  size: tuple[int, int] | None = None) -> np.ndarray:
    """The region head's target: rectangles painted largest first (ties: class id, then
    position), as the export paints them, so a nested region wins over its container.
    `size` (w, h) draws them scaled to that size instead of the page's own."""
    tw, th = size or (page.width, page.height)
    sx, sy = tw / page.width, th / page.height
    lut = {cid: k for k, cid in enumerate(classes.ids("region"), start=1)}
    out = np.zeros((th, tw), np.uint8)

    def key(r: tuple) -> tuple:
        cid, (x, y, w, h) = r
        return (-w * h, cid, y, x, y + h, x + w)

    for cid, (x, y, w, h) in sorted(page.regions, key=key):
        x0, y0 = max(0, int(np.floor(x * sx + 0.5))), max(0, int(np.floor(y * sy + 0.5)))
        x1 = min(tw, int(np.floor((x + w) * sx + 0.5)))
        y1 = min(th, int(np.floor((y + h) * sy + 0.5)))
        out[y0:y1, x0:x1] = lut[cid]
    return out


def read_page(page: PageRef) -> tuple[np.ndarray, np.ndarray]:
    """RGB pixels and the semantic mask (class ids) of one page."""
    rgb = read_rgb(page.image)
    with Image.open(page.mask) as im:
        sem = np.asarray(im)
    if sem.shape != rgb.shape[:2]:
        raise ReleaseError(f"{page.mask} does not match its image's size: run "
                           f"`python -m export verify {page.image.parents[2]}`")
    return rgb, sem


def page_targets(page: PageRef, classes: Classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB pixels, element target and region target of one page, at its release size."""
    rgb, sem = read_page(page)
    elements = classes.element_lut()[sem]
    regions = region_target(page, classes)
    regions[sem == IGNORE] = IGNORE
    return rgb, elements, regions
