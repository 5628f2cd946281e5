"""The release history of a workspace: the catalog's rows and the folders under releases/.

They can disagree: a workspace copied without releases/ has rows without folders, a
catalog restored from a copy (or an export killed between its rename and its commit) has
folders without rows. Export names each such release, records a readable folder it finds
unrecorded, and numbers the next release past all of them, so no version is used twice.

It also keeps `release_splits`: the split each page had in the first release that held
it. Splits of releases made before the table existed are read from their manifests.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from catalog import Catalog

VERSION_RE = re.compile(r"^v(\d{4,})$")
SUMS = "SHA256SUMS"


def _number(version: str) -> int:
    return int(version[1:])


@dataclass
class History:
    recorded: list[str] = field(default_factory=list)  # versions with a catalog row
    on_disk: list[str] = field(default_factory=list)  # vNNNN folders under releases/

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.recorded) - set(self.on_disk), key=_number)

    @property
    def unrecorded(self) -> list[str]:
        return sorted(set(self.on_disk) - set(self.recorded), key=_number)

    @property
    def known(self) -> list[str]:
        return sorted(set(self.recorded) | set(self.on_disk), key=_number)

    def next_version(self) -> str:
        known = self.known
        return f"v{_number(known[-1]) + 1:04d}" if known else "v0001"

    def previous(self, version: str) -> str:
        """The latest recorded version before `version`, whether or not its folder is
        there (a folder that is no readable release is not one)."""
        older = [v for v in self.recorded if _number(v) < _number(version)]
        return older[-1] if older else ""


def read_history(cat: Catalog, releases: Path) -> History:
    recorded = [r[0] for r in cat.execute("SELECT version FROM releases")]
    on_disk = []
    if releases.is_dir():
        on_disk = [p.name for p in releases.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
    return History(sorted(recorded, key=_number), sorted(on_disk, key=_number))


def manifest_splits(folder: Path) -> list[tuple[str, str]]:
    """(page id, split) of every page a release folder holds, from its manifest."""
    table = pq.read_table(folder / "manifest.parquet", columns=["page_id", "split"])
    return list(zip(table.column("page_id").to_pylist(), table.column("split").to_pylist(),
                    strict=True))


def reconcile(cat: Catalog, releases: Path, hist: History) -> list[str]:
    """Record readable unrecorded folders; one line for each release that disagreed."""
    lines = [
        f"release {v} is recorded in the catalog but {releases / v} is missing "
        "(restore it from a copy if you need it); its number is not used again"
        for v in hist.missing
    ]
    for v in hist.unrecorded:
        folder = releases / v
        try:
            pages = manifest_splits(folder)
            digest = hashlib.sha256((folder / SUMS).read_bytes()).hexdigest()
        except (OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors or OSErrors
            lines.append(f"release folder {folder} is not recorded in the catalog and cannot "
                         f"be read ({exc}); left as it is, its number is not used again")
            continue
        with cat.transaction() as conn:
            conn.execute(
                "INSERT INTO releases(version, created_at, pages, sha256sums) VALUES(?,?,?,?)",
                (v, folder.stat().st_mtime, len(pages), digest),
            )
        hist.recorded = sorted([*hist.recorded, v], key=_number)
        lines.append(f"release folder {folder} was not recorded in the catalog: recorded now "
                     f"({len(pages)} pages)")
    return lines


def recorded_splits(cat: Catalog, releases: Path, hist: History) -> dict[str, str]:
    """page id -> the split of its first release, filled from manifests where missing."""
    for v in hist.on_disk:  # oldest first: the first release of a page wins
        try:
            pages = manifest_splits(releases / v)
        except (OSError, ValueError):
            continue  # named by reconcile, or a release whose manifest verify will flag
        with cat.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO release_splits(page_id, split, first_version) "
                "VALUES(?,?,?)", [(pid, split, v) for pid, split in pages],
            )
    return {r[0]: r[1] for r in cat.execute("SELECT page_id, split FROM release_splits")}


def record_release(
    conn: sqlite3.Connection, version: str, created_at: float, digest: str,
    splits: list[tuple[str, str]],
) -> None:
    """The catalog's row of a new release and the splits of its first-released pages
    (call inside the transaction that the release's rename happens in)."""
    conn.execute(
        "INSERT INTO releases(version, created_at, pages, sha256sums) VALUES(?,?,?,?)",
        (version, created_at, len(splits), digest),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO release_splits(page_id, split, first_version) VALUES(?,?,?)",
        [(pid, split, version) for pid, split in splits],
    )
