"""Pages at the working width, read once: decoded in parallel worker processes and kept
in a cache of scaled arrays, so a rerun or a `--resume` skips decoding.

A cache entry is one page's scaled pixels and targets (`<key>.npz`, stored uncompressed:
the zip's CRC-32 catches a damaged file). The key is a hash of what the arrays are made
from: the image's and the mask's SHA256SUMS lines, the page's regions, the classes, the
working width and `FORMAT`, the version of the code that scales them (bump it when
`data.read_scaled` changes). Entries are written atomically (temporary file, rename); a
missing or damaged one is made again; the folder is safe to delete.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from .data import ScaledPage, read_scaled, scaled_size
from .release import Classes, PageRef, Release

FORMAT = 1


def cache_dir(models_dir: Path) -> Path:
    """Where the scaled pages of a workspace's models are kept."""
    return models_dir / ".cache"


@dataclass(frozen=True)
class PageCache:
    """Where one release's pages at one working width are cached."""

    root: Path
    working: int
    classes: Classes
    release_root: Path
    sums: dict[str, str]  # release-relative path -> sha256, from SHA256SUMS
    release_digest: str

    @classmethod
    def of(cls, root: Path, release: Release, working: int) -> PageCache:
        return cls(Path(root), working, release.classes, release.path, release.file_sums(),
                   release.sums_digest())

    def key(self, page: PageRef) -> str:
        def digest(path: Path) -> str:
            rel = (path.relative_to(self.release_root).as_posix()
                   if path.is_relative_to(self.release_root) else str(path))
            # A file the sums do not list is named by the release it came from instead.
            return self.sums.get(rel) or f"{self.release_digest}:{rel}"

        text = json.dumps([FORMAT, self.working, self.classes.to_json(), digest(page.image),
                           digest(page.mask), page.width, page.height,
                           [[c, list(b)] for c, b in page.regions]], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / f"w{self.working}" / f"{key}.npz"


def load_entry(path: Path, page: PageRef, working: int) -> ScaledPage | None:
    """The cached page, or None when the entry is missing, damaged or of another shape."""
    try:
        with np.load(path, allow_pickle=False) as z:
            rgb, el, rg = z["rgb"], z["elements"], z["regions"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    tw, th = scaled_size(page.width, page.height, working)
    if rgb.shape != (th, tw, 3) or el.shape != (th, tw) or rg.shape != (th, tw) or not (
            rgb.dtype == el.dtype == rg.dtype == np.uint8):
        return None
    return ScaledPage(page.page_id, page.site, rgb, el, rg)


def store_entry(path: Path, page: ScaledPage) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        np.savez(f, rgb=page.rgb, elements=page.elements, regions=page.regions)
    os.replace(tmp, path)


@dataclass(frozen=True)
class _Job:
    page: PageRef
    classes: Classes
    working: int
    entry: Path | None  # the cache entry, None without a cache
    keep: bool  # return the arrays (else only make sure the entry exists)


def _counts(page: ScaledPage) -> tuple[np.ndarray, np.ndarray]:
    return (np.bincount(page.elements.ravel(), minlength=256),
            np.bincount(page.regions.ravel(), minlength=256))


def _read(job: _Job) -> ScaledPage | tuple[np.ndarray, np.ndarray]:
    """The page, or (without `keep`) only its targets' pixel counts per class id."""
    page = load_entry(job.entry, job.page, job.working) if job.entry is not None else None
    if page is None:
        page = read_scaled(job.page, job.classes, job.working)
        if job.entry is not None:
            store_entry(job.entry, page)
    return page if job.keep else _counts(page)


class CachedPages(Sequence):
    """Pages read from their cache entries when asked for, one at a time: the val split
    costs no memory between validations. A damaged entry is made again."""

    def __init__(self, jobs: list[_Job], counts: list[tuple[np.ndarray, np.ndarray]]):
        self._jobs = jobs
        self.counts = counts  # per page: pixels of each element and region target id

    def __len__(self) -> int:
        return len(self._jobs)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return CachedPages(self._jobs[i], self.counts[i])
        job = self._jobs[i]
        return _read(_Job(job.page, job.classes, job.working, job.entry, True))

    def take(self, indices: Sequence[int]) -> CachedPages:
        return CachedPages([self._jobs[i] for i in indices], [self.counts[i] for i in indices])

    def pixel_counts(self, n_elements: int, n_regions: int) -> tuple[list[int], list[int]]:
        el = sum((c[0] for c in self.counts), np.zeros(256, np.int64))
        rg = sum((c[1] for c in self.counts), np.zeros(256, np.int64))
        return [int(v) for v in el[:n_elements]], [int(v) for v in rg[:n_regions]]

    def __iter__(self) -> Iterator[ScaledPage]:
        for i in range(len(self)):
            yield self[i]


def _one_thread() -> None:
    # The workers are the parallelism: OpenCV's own threads would only compete with them.
    cv2.setNumThreads(1)


def read_pages(pages: Sequence[PageRef], classes: Classes, working: int, *,
               cache: PageCache | None = None, jobs: int = 1, in_memory: bool = True,
               progress: Callable[[], None] | None = None) -> Sequence[ScaledPage]:
    """The pages scaled to `working`, in order. `in_memory=False` with a cache returns
    pages read from the cache when used (`CachedPages`)."""
    lazy = cache is not None and not in_memory
    todo = [_Job(p, classes, working,
                 cache.path(cache.key(p)) if cache else None, not lazy) for p in pages]
    out: list = []
    if jobs > 1 and len(todo) > 1:
        # Not forked: a fork of a process whose OpenCV or torch thread pools already ran can
        # hang in the child (seen: both workers asleep, forever).
        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=get_context("forkserver"),
                                 initializer=_one_thread) as pool:
            for page in pool.map(_read, todo, chunksize=2):
                out.append(page)
                if progress:
                    progress()
    else:
        for job in todo:
            out.append(_read(job))
            if progress:
                progress()
    if lazy:
        return CachedPages(todo, out)
    return out
