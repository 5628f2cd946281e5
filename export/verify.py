"""Check a release: every checksum, the COCO files, that masks match annotations, and that
the tiles' windows lie on their pages and carry their masks' class histograms.

The release's split files are read once here; each page (its files' checksums, its mask
against its COCO annotations, its windows) is checked on its own, through
`workers.page_map`, so verify runs on as many processes as the export. Findings come back
in page order: the report is the same for any number of jobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from pycocotools.coco import COCO

from .coco import semantic_from_coco
from .history import SUMS
from .manifest import SCHEMA
from .masks import IGNORE, ClassSet
from .pagefiles import class_histogram
from .png import read_indexed_top
from .release import sha256_file
from .tiles import crop_window, histogram_json, window_histograms, windows
from .workers import page_map

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


@dataclass
class PageTask:
    """One page to check (or, with no image, files that belong to no page)."""

    files: list[tuple[str, str]]  # (release-relative name, digest in SHA256SUMS)
    split: str = ""
    image: dict | None = None  # its COCO image
    anns: list[dict] = field(default_factory=list)
    tile_rows: list[tuple[int, dict]] = field(default_factory=list)  # (line number, row)


@dataclass
class PageFindings:
    sums: dict[str, str]  # name -> "ok" | "missing" | "mismatch"
    digests: dict[str, str]  # name -> sha256 of the bytes read
    problems: list[str] = field(default_factory=list)


def _read_sums(rel: Path, rep: Report) -> list[tuple[str, str] | str]:
    """SHA256SUMS as (name, digest) entries, or a problem in place of a malformed line."""
    sums = rel / SUMS
    if not sums.is_file():
        rep.problems.append(f"{SUMS} is missing")
        return []
    try:
        text = sums.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        rep.problems.append(f"{SUMS} is not UTF-8 text")
        return []
    if not text.endswith("\n"):
        rep.problems.append(f"{SUMS} does not end with a newline")
    entries: list[tuple[str, str] | str] = []
    # Split on "\n" alone, as sha256sum does: splitlines() would also break at other
    # control characters and so read a damaged file as a sound one.
    for n, line in enumerate(text.removesuffix("\n").split("\n"), 1):
        digest, sep, name = line.partition("  ")
        if not sep or not _DIGEST.fullmatch(digest):
            entries.append(f"{SUMS} line {n} is malformed")
        else:
            entries.append((name, digest))
    return entries


def _classes(rel: Path) -> ClassSet:
    data = json.loads((rel / "classes.json").read_text(encoding="utf-8"))
    classes = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(classes, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str)
            and isinstance(c.get("kind"), str) and "color" in c for c in classes):
        raise ValueError('it is not {"classes": [{"name", "kind", "color"}, ...]}')
    return ClassSet(
        tuple(c["name"] for c in classes if c["kind"] == "region"),
        tuple(c["name"] for c in classes if c["kind"] == "element"),
        tuple((c["name"], c["color"]) for c in classes),
    )


def _mask_of(data: bytes) -> np.ndarray:
    """Class ids of a mask PNG; ValueError unless it is a palette ("P") image."""
    ours = read_indexed_top(data, 1 << 31)
    if ours is not None:
        return ours[0]
    with Image.open(io.BytesIO(data)) as im:
        if im.mode != "P":
            raise ValueError(f"is mode {im.mode}, not P")
        return np.asarray(im)


def _load_mask(path: Path) -> np.ndarray:
    return _mask_of(path.read_bytes())


def check_page(rel: Path, classes: ClassSet, task: PageTask) -> PageFindings:
    """Checksums of the page's files, its mask against its COCO annotations and its tile
    windows against its mask (in a worker process, or not)."""
    found = PageFindings({}, {})
    blobs: dict[str, bytes] = {}
    for name, digest in task.files:
        path = rel / name
        if not path.is_file():
            found.sums[name] = "missing"
            continue
        data = path.read_bytes()
        blobs[name] = data
        found.digests[name] = hashlib.sha256(data).hexdigest()
        found.sums[name] = "ok" if found.digests[name] == digest else "mismatch"
    if task.image is not None:
        try:
            _check_page_content(rel, classes, task, blobs, found)
        except Exception as exc:  # malformed content (a tile row, say) is a finding
            found.problems.append(f"{task.split}/{task.image['file_name']} cannot be checked "
                                  f"({type(exc).__name__}: {exc})")
    return found


def _read(rel: Path, name: str, blobs: dict[str, bytes]) -> bytes:
    return blobs[name] if name in blobs else (rel / name).read_bytes()


def _check_page_content(rel: Path, classes: ClassSet, task: PageTask,
                        blobs: dict[str, bytes], found: PageFindings) -> None:
    split, img, problems = task.split, task.image, found.problems
    image_name = f"{split}/{img['file_name']}"
    try:
        with Image.open(io.BytesIO(_read(rel, image_name, blobs))) as im:
            if im.size != (img["width"], img["height"]):
                problems.append(f"{image_name} is not the size COCO says")
    except (OSError, ValueError) as exc:
        problems.append(f"{image_name}: {exc}")
    mask_name = f"{split}/masks/{Path(img['file_name']).name}"
    try:
        mask = _mask_of(_read(rel, mask_name, blobs))
    except (OSError, ValueError) as exc:
        problems.append(f"{mask_name}: {exc}")
        return
    if mask.shape != (img["height"], img["width"]):
        problems.append(f"{mask_name} is not {img['width']}x{img['height']}")
        return
    try:
        expected = semantic_from_coco(task.anns, img["width"], img["height"], classes)
    except Exception as exc:  # a broken RLE is the finding
        problems.append(f"{split}: COCO segmentation of {img['file_name']} is broken ({exc})")
        return
    if not np.array_equal(expected, mask):
        n = int((expected != mask).sum())
        problems.append(f"{mask_name} differs from its COCO annotations in {n} pixels")
    if task.tile_rows:
        _check_windows(rel, task, mask, mask_name, blobs, problems)


def _check_windows(rel: Path, task: PageTask, mask: np.ndarray, mask_name: str,
                   blobs: dict[str, bytes], problems: list[str]) -> None:
    split, img = task.split, task.image
    where = f"{split}/tiles/metadata.jsonl"
    height, width = mask.shape
    listed = [(line, r) for line, r in task.tile_rows if "window" in r]
    if listed:
        size = listed[0][1]["size"]
        inside = []
        for line, row in listed:
            if (row["image"], row["mask"]) != (f"{split}/{img['file_name']}", mask_name):
                problems.append(f"{where} line {line} names files of another page")
            x, y, w, h = row["window"]
            inside.append(row["size"] == size and 0 <= x <= width - w and 0 <= y <= height - h
                          and 0 < w <= size and 0 < h <= size)
            if not inside[-1]:
                problems.append(f"{where} line {line}: window {row['window']} of size "
                                f"{row['size']} is not inside its {width}x{height} page")
        want = windows(width, height, size) if size > 0 else []
        if [tuple(r["window"]) for _, r in listed] == want:
            counts = window_histograms(mask, size, class_histogram)[1]
        else:
            problems.append(f"{where}: the windows of page {img['page_id']} are not its "
                            f"{len(want)} tiles of {size} px")
            counts = [class_histogram(crop_window(mask, r["window"], size, IGNORE)) if ok
                      else None for (_, r), ok in zip(listed, inside, strict=True)]
        for (line, row), n in zip(listed, counts, strict=True):
            if n is not None and row["class_pixels"] != histogram_json(n):
                problems.append(f"{where} line {line}: class_pixels are not its window's")
    for _, row in task.tile_rows:
        # A tile file: of a release made with --tile-files, or of one made before tiles
        # were windows (x, y, size; files named relative to tiles/).
        if "window" in row:
            if "tile_mask" not in row:
                continue
            name, window, size = row["tile_mask"], row["window"], row["size"]
        else:
            name = f"{split}/tiles/{row['mask_file_name']}"
            size = row["size"]
            window = (row["x"], row["y"], min(size, width - row["x"]),
                      min(size, height - row["y"]))
        try:
            got = _mask_of(_read(rel, name, blobs))
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if not np.array_equal(got, crop_window(mask, window, size, IGNORE)):
            problems.append(f"{name} is not its page's crop")


def _tile_rows(path: Path, rep: Report, split: str) -> dict[str, list[tuple[int, dict]]]:
    by_page: dict[str, list[tuple[int, dict]]] = {}
    if not path.is_file():
        return by_page
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            by_page.setdefault(row["page_id"], []).append((n, row))
        except (ValueError, KeyError, TypeError):
            rep.problems.append(f"{split}/tiles/metadata.jsonl line {n} is malformed")
            continue
        rep.tiles += 1
    return by_page


def _split_tasks(rel: Path, split: str, rep: Report) -> tuple[list[PageTask], list[str]]:
    """A task per page of the split, and the problems found in its split files."""
    sdir = rel / split
    problems: list[str] = []
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools talks on stdout
            coco = COCO(str(sdir / "annotations.json"))
    except Exception as exc:  # any failure to load is the finding
        return [], [f"{split}/annotations.json does not load in pycocotools ({exc})"]
    known = {c["id"] for c in coco.dataset.get("categories", [])}
    rows = _tile_rows(sdir / "tiles" / "metadata.jsonl", rep, split)
    tasks = []
    pages = set()
    for img in coco.dataset.get("images", []):
        rep.pages += 1
        pages.add(img["page_id"])
        anns = coco.imgToAnns.get(img["id"], [])
        rep.annotations += len(anns)
        bad = [a["id"] for a in anns if a["category_id"] not in known]
        if bad:
            problems.append(f"{split}: annotation {bad[0]} has an unknown category")
            continue
        tasks.append(PageTask([], split, img, anns, rows.get(img["page_id"], [])))
    for pid in sorted(set(rows) - pages):
        problems.append(f"{split}/tiles/metadata.jsonl has tiles of {pid}, which is no page "
                        "of the split")
    return tasks, problems


def _owner(task: PageTask) -> list[str]:
    """Release-relative names of the files a page task reads."""
    split, img = task.split, task.image
    names = [f"{split}/{img['file_name']}", f"{split}/masks/{Path(img['file_name']).name}"]
    for _, row in task.tile_rows:
        if "window" in row:
            names += [row[k] for k in ("tile_image", "tile_mask") if k in row]
        elif "file_name" in row and "mask_file_name" in row:
            names += [f"{split}/tiles/{row['file_name']}", f"{split}/tiles/{row['mask_file_name']}"]
    return names


def verify_release(
    release: str | Path,
    *,
    jobs: int = 1,
    progress: Callable[[bool], None] | None = None,
    start: Callable[[int], None] | None = None,
) -> Report:
    """Check a release; start(n) once the n pages are known, progress(ok) after each."""
    rel = Path(release)
    rep = Report(rel)
    if not rel.is_dir():
        rep.problems.append(f"{rel} is not a directory")
        return rep
    entries = _read_sums(rel, rep)
    try:
        classes = _classes(rel)
    except (OSError, ValueError, KeyError) as exc:
        rep.problems.extend(e for e in entries if isinstance(e, str))
        rep.problems.append(f"classes.json is unreadable ({exc})")
        return rep
    tasks: list[PageTask] = []
    split_problems: dict[str, list[str]] = {}
    for split in SPLIT_DIRS:
        if (rel / split / "annotations.json").is_file():
            try:
                found, split_problems[split] = _split_tasks(rel, split, rep)
                tasks += found
            except Exception as exc:  # malformed content anywhere is a finding, not a crash
                split_problems[split] = [
                    f"{split} cannot be checked ({type(exc).__name__}: {exc})"]
    listed = dict(e for e in entries if isinstance(e, tuple))
    by_name = {}
    for task in tasks:
        for name in _owner(task):
            if name in listed and name not in by_name:
                by_name[name] = task
                task.files.append((name, listed[name]))
    rest = PageTask([(n, d) for n, d in listed.items() if n not in by_name])
    if start:
        start(len(tasks))
    findings: list[PageFindings] = []
    with page_map(jobs) as pmap:
        for task, found in zip([rest, *tasks],
                               pmap(partial(check_page, rel, classes), [rest, *tasks]),
                               strict=True):
            findings.append(found)
            if progress and task.image is not None:
                progress(not found.problems and all(v == "ok" for v in found.sums.values()))
    sums = {k: v for f in findings for k, v in f.sums.items()}
    digests = {k: v for f in findings for k, v in f.digests.items()}
    for entry in entries:
        if isinstance(entry, str):
            rep.problems.append(entry)
        elif sums[entry[0]] == "missing":
            rep.problems.append(f"{entry[0]} is missing")
        elif sums[entry[0]] == "mismatch":
            rep.problems.append(f"{entry[0]} does not match its checksum")
        else:
            rep.files += 1
    for path in sorted(rel.rglob("*")):
        name = path.relative_to(rel).as_posix()
        if path.is_file() and name != SUMS and name not in listed:
            rep.problems.append(f"{name} is not listed in {SUMS}")
    page_findings = iter(findings[1:])
    for split, problems in split_problems.items():
        rep.problems += problems
        for task in tasks:
            if task.split == split:
                rep.problems += next(page_findings).problems
    _check_manifest(rel, rep, digests)
    return rep


def _check_manifest(rel: Path, rep: Report, digests: dict[str, str]) -> None:
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
        name = str(row["image"])
        path = rel / name
        if not path.is_file():
            rep.problems.append(f"manifest.parquet names {row['image']}, which is missing")
        elif (digests.get(name) or sha256_file(path)) != row["image_sha256"]:
            rep.problems.append(f"{row['image']} does not match its manifest checksum")
