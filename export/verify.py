"""Check a release: every checksum, the COCO files, and that masks match annotations."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from pycocotools.coco import COCO

from .coco import semantic_from_coco
from .manifest import SCHEMA
from .masks import IGNORE, ClassSet
from .release import SUMS, sha256_file

SPLIT_DIRS = ("train", "val", "test")
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass
class Report:
    release: Path
    problems: list[str] = field(default_factory=list)
    files: int = 0
    pages: int = 0
    annotations: int = 0
    tiles: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        name = self.release.name
        if self.ok:
            return (
                f"OK {name}: {self.files} files match SHA256SUMS; {self.pages} pages, "
                f"{self.annotations} COCO annotations and {self.tiles} tiles match their masks"
            )
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"FAILED {name}: {self.problems[0]}{more}"


def _check_sums(rel: Path, rep: Report) -> None:
    sums = rel / SUMS
    if not sums.is_file():
        rep.problems.append(f"{SUMS} is missing")
        return
    try:
        text = sums.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        rep.problems.append(f"{SUMS} is not UTF-8 text")
        return
    if not text.endswith("\n"):
        rep.problems.append(f"{SUMS} does not end with a newline")
    listed = set()
    # Split on "\n" alone, as sha256sum does: splitlines() would also break at other
    # control characters and so read a damaged file as a sound one.
    for n, line in enumerate(text.removesuffix("\n").split("\n"), 1):
        digest, sep, name = line.partition("  ")
        if not sep or not _DIGEST.fullmatch(digest):
            rep.problems.append(f"{SUMS} line {n} is malformed")
            continue
        listed.add(name)
        path = rel / name
        if not path.is_file():
            rep.problems.append(f"{name} is missing")
        elif sha256_file(path) != digest:
            rep.problems.append(f"{name} does not match its checksum")
        else:
            rep.files += 1
    for path in sorted(rel.rglob("*")):
        name = path.relative_to(rel).as_posix()
        if path.is_file() and name != SUMS and name not in listed:
            rep.problems.append(f"{name} is not listed in {SUMS}")


def _classes(rel: Path) -> ClassSet:
    data = json.loads((rel / "classes.json").read_text(encoding="utf-8"))
    classes = data["classes"]
    return ClassSet(
        tuple(c["name"] for c in classes if c["kind"] == "region"),
        tuple(c["name"] for c in classes if c["kind"] == "element"),
        tuple((c["name"], c["color"]) for c in classes),
    )


def _load_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode != "P":
            raise ValueError(f"is mode {im.mode}, not P")
        return np.asarray(im)


def _check_split(rel: Path, split: str, classes: ClassSet, rep: Report) -> None:
    sdir = rel / split
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools talks on stdout
            coco = COCO(str(sdir / "annotations.json"))
    except Exception as exc:  # any failure to load is the finding
        rep.problems.append(f"{split}/annotations.json does not load in pycocotools ({exc})")
        return
    known = {c["id"] for c in coco.dataset.get("categories", [])}
    page_masks: dict[str, np.ndarray] = {}
    for img in coco.dataset.get("images", []):
        rep.pages += 1
        anns = coco.imgToAnns.get(img["id"], [])
        rep.annotations += len(anns)
        bad = [a["id"] for a in anns if a["category_id"] not in known]
        if bad:
            rep.problems.append(f"{split}: annotation {bad[0]} has an unknown category")
            continue
        try:
            with Image.open(sdir / img["file_name"]) as im:
                if im.size != (img["width"], img["height"]):
                    rep.problems.append(f"{split}/{img['file_name']} is not the size COCO says")
        except (OSError, ValueError) as exc:
            rep.problems.append(f"{split}/{img['file_name']}: {exc}")
        mask_name = "masks/" + Path(img["file_name"]).name
        try:
            mask = _load_mask(sdir / mask_name)
        except (OSError, ValueError) as exc:
            rep.problems.append(f"{split}/{mask_name}: {exc}")
            continue
        if mask.shape != (img["height"], img["width"]):
            rep.problems.append(f"{split}/{mask_name} is not {img['width']}x{img['height']}")
            continue
        try:
            expected = semantic_from_coco(anns, img["width"], img["height"], classes)
        except Exception as exc:  # a broken RLE is the finding
            rep.problems.append(f"{split}: COCO segmentation of {img['file_name']} is broken ({exc})")
            continue
        if not np.array_equal(expected, mask):
            n = int((expected != mask).sum())
            rep.problems.append(
                f"{split}/{mask_name} differs from its COCO annotations in {n} pixels"
            )
        page_masks[img["page_id"]] = mask
    tiles = sdir / "tiles" / "metadata.jsonl"
    if tiles.is_file():
        for line in tiles.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rep.tiles += 1
            page = page_masks.get(row["page_id"])
            if page is None:
                continue  # its page already failed above
            x, y, size = row["x"], row["y"], row["size"]
            want = np.full((size, size), IGNORE, np.uint8)
            crop = page[y : y + size, x : x + size]
            want[: crop.shape[0], : crop.shape[1]] = crop
            try:
                got = _load_mask(sdir / "tiles" / row["mask_file_name"])
            except (OSError, ValueError) as exc:
                rep.problems.append(f"{split}/tiles/{row['mask_file_name']}: {exc}")
                continue
            if not np.array_equal(got, want):
                rep.problems.append(f"{split}/tiles/{row['mask_file_name']} is not its page's crop")


def verify_release(release: str | Path) -> Report:
    rel = Path(release)
    rep = Report(rel)
    if not rel.is_dir():
        rep.problems.append(f"{rel} is not a directory")
        return rep
    _check_sums(rel, rep)
    try:
        classes = _classes(rel)
    except (OSError, ValueError, KeyError) as exc:
        rep.problems.append(f"classes.json is unreadable ({exc})")
        return rep
    for split in SPLIT_DIRS:
        if (rel / split / "annotations.json").is_file():
            try:
                _check_split(rel, split, classes, rep)
            except Exception as exc:  # malformed content anywhere is a finding, not a crash
                rep.problems.append(f"{split} cannot be checked ({type(exc).__name__}: {exc})")
    _check_manifest(rel, rep)
    return rep


def _check_manifest(rel: Path, rep: Report) -> None:
    try:
        table = pq.read_table(rel / "manifest.parquet")
        if table.schema.names != SCHEMA.names:
            raise ValueError(f"columns {table.schema.names} are not {SCHEMA.names}")
        rows = table.to_pylist()
    except Exception as exc:  # any failure to read is the finding
        rep.problems.append(f"manifest.parquet is unreadable ({exc})")
        return
    if len(rows) != rep.pages:
        rep.problems.append(f"manifest.parquet lists {len(rows)} pages, COCO files {rep.pages}")
    for row in rows:
        path = rel / str(row["image"])
        if not path.is_file():
            rep.problems.append(f"manifest.parquet names {row['image']}, which is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != row["image_sha256"]:
            rep.problems.append(f"{row['image']} does not match its manifest checksum")
