"""manifest.parquet: one row a page, and what changed against a previous release."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_SCHEMA = 1

SCHEMA = pa.schema(
    [
        ("page_id", pa.string()),
        ("split", pa.string()),
        ("source", pa.string()),  # human | preannotation (nobody reviewed it yet)
        ("reviewed", pa.bool_()),
        ("url", pa.string()),
        ("final_url", pa.string()),
        ("site", pa.string()),
        ("group", pa.string()),  # the split group's key: its smallest site
        ("width", pa.int32()),  # as exported
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("image", pa.string()),  # relative to the release
        ("mask", pa.string()),
        ("image_sha256", pa.string()),
        ("mask_sha256", pa.string()),
        ("annotation_sha256", pa.string()),  # of the input annotation and its masks
        ("regions", pa.int32()),
        ("elements", pa.int32()),  # element instances (connected components)
        ("tiles", pa.int32()),
    ],
    metadata={"schema": str(MANIFEST_SCHEMA)},
)


def write_manifest(rows: list[dict], path: Path) -> None:
    rows = sorted(rows, key=lambda r: (r["split"], r["page_id"]))
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, path, compression="zstd", compression_level=3)


def read_manifest(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@dataclass
class Changes:
    previous: str = ""  # version compared with; empty for the first release
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    relabelled: list[str] = field(default_factory=list)
    moved: list[tuple[str, str, str]] = field(default_factory=list)  # page, old, new split
    removed_why: dict[str, list[str]] = field(default_factory=dict)  # reason -> removed pages
    missing: bool = False  # the previous release's folder is gone: nothing could be compared


def diff_manifests(previous: str, old: list[dict], new: list[dict]) -> Changes:
    before = {r["page_id"]: r for r in old}
    after = {r["page_id"]: r for r in new}
    ch = Changes(previous=previous)
    ch.added = sorted(set(after) - set(before))
    ch.removed = sorted(set(before) - set(after))
    for pid in sorted(set(after) & set(before)):
        a, b = before[pid], after[pid]
        if a.get("annotation_sha256") != b["annotation_sha256"]:
            ch.relabelled.append(pid)
        if a["split"] != b["split"]:
            ch.moved.append((pid, a["split"], b["split"]))
    return ch
