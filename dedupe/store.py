"""dedupe's own catalog tables, and its writes to the shared dup_groups/template_groups.

Nothing is deleted: hashes are replaced only by a re-hash of a re-captured page, found
links (edges) are only ever added, and every change of a page's group is appended to
dedupe_decisions. Which edges count is decided when groups are made:
- an edge of an older match generation (the matching settings changed since) does not;
- an edge older than the latest hashing of either page (a re-capture) does not.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from catalog.db import Catalog
from catalog.records import CAPTURED_SQL

from .layout import CATEGORIES
from .match import Edge, PageHashes

DDL = """
CREATE TABLE IF NOT EXISTS dedupe_runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    finished_at REAL,
    generation INTEGER NOT NULL,
    hashed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    edges INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dedupe_hashes (
    page_id TEXT PRIMARY KEY,
    algo TEXT NOT NULL,          -- hash algorithm and library version, e.g. imagehash-4.3.2/phash-8
    hash_settings TEXT NOT NULL, -- band sizes etc.: a change means re-hashing
    pixel_sha TEXT NOT NULL,     -- SHA-256 of the decoded pixels
    text_sha TEXT,               -- SHA-256 of the normalised visible text (NULL: too little)
    text_simhash TEXT,           -- 64-bit SimHash of its word 3-grams, 16 hex digits
    bands TEXT NOT NULL,         -- JSON: pHash per band as 16 hex digits, null for blank
    height INTEGER NOT NULL,
    layout BLOB,                 -- one signed byte per grid cell: -1 empty, else category
    n_boxes INTEGER NOT NULL,
    n_errors INTEGER NOT NULL,
    site TEXT NOT NULL,
    captured_at REAL NOT NULL,
    run_id INTEGER NOT NULL,
    hashed_at REAL NOT NULL,
    images TEXT,                 -- JSON: [pHash as 16 hex digits, area] per image, largest first
    image_share REAL             -- share of the page those images cover
);
CREATE INDEX IF NOT EXISTS dedupe_hashes_pixel ON dedupe_hashes(pixel_sha);
CREATE INDEX IF NOT EXISTS dedupe_hashes_text ON dedupe_hashes(text_sha);
-- The pages hashed since a run: a run's new pages, read from here alone.
CREATE INDEX IF NOT EXISTS dedupe_hashes_run ON dedupe_hashes(run_id, page_id);
CREATE TABLE IF NOT EXISTS dedupe_edges (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    relation TEXT NOT NULL,      -- exact_pixels | exact_text | near_text | near | template
    distance REAL NOT NULL,      -- bits (SimHash for near_text, pHash for near), cosine for template
    generation INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    PRIMARY KEY (a, b, relation, generation, run_id)
);
CREATE TABLE IF NOT EXISTS dedupe_decisions (
    run_id INTEGER NOT NULL,
    page_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    canonical INTEGER NOT NULL,
    reason TEXT NOT NULL,
    template_id TEXT NOT NULL,
    PRIMARY KEY (run_id, page_id)
);
CREATE TABLE IF NOT EXISTS dedupe_skipped (
    run_id INTEGER NOT NULL,
    page_id TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (run_id, page_id)
);
"""


def ensure(catalog: Catalog) -> None:
    catalog.ensure_tables(DDL)
    # Catalogs made before the image hashes: the columns are added empty, and the hash
    # algorithm's new name has every page hashed again on the next run.
    have = {r[1] for r in catalog.execute("PRAGMA table_info(dedupe_hashes)")}
    with catalog.transaction() as conn:
        for column, kind in (("images", "TEXT"), ("image_share", "REAL")):
            if column not in have:
                conn.execute(f"ALTER TABLE dedupe_hashes ADD COLUMN {column} {kind}")


def start_run(catalog: Catalog, settings: str) -> tuple[int, int]:
    """A new run; returns (run_id, match generation), bumped when the settings changed."""
    with catalog.transaction() as conn:
        last = conn.execute(
            "SELECT generation, settings FROM dedupe_runs ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        generation = 1 if last is None else last[0] if last[1] == settings else last[0] + 1
        cur = conn.execute(
            "INSERT INTO dedupe_runs(started_at, generation, settings) VALUES(?,?,?)",
            (time.time(), generation, settings),
        )
    return int(cur.lastrowid or 0), generation


def last_finished(catalog: Catalog, run_id: int) -> tuple[int, int] | None:
    """(run_id, generation) of the last run before this one that finished."""
    row = catalog.execute(
        "SELECT run_id, generation FROM dedupe_runs WHERE run_id < ? AND finished_at IS NOT NULL"
        " ORDER BY run_id DESC LIMIT 1", (run_id,)
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def hashed_after(catalog: Catalog, run_id: int) -> set[str]:
    """Captured pages (records.CAPTURED) hashed by a run after `run_id`."""
    rows = catalog.execute(
        "SELECT h.page_id FROM dedupe_hashes h JOIN pages p ON p.page_id = h.page_id"
        f" WHERE h.run_id > ? AND p.status IN {CAPTURED_SQL}", (run_id,))
    return {r[0] for r in rows}


# What read_page needs of a page's catalog row.
HASH_COLUMNS = "page_id, viewport, dpr, width, height, flags, site, captured_at"


def pages_to_hash(catalog: Catalog, settings: str) -> list[sqlite3.Row]:
    """Captured pages (records.CAPTURED) with no hash yet, or one made with other settings or from
    an earlier capture, in page id order; chosen in SQL, so a catalog of a million pages
    hands over only these rows."""
    columns = ", ".join(f"p.{c}" for c in HASH_COLUMNS.split(", "))
    return catalog.execute(
        f"SELECT {columns} FROM pages p LEFT JOIN dedupe_hashes h ON h.page_id = p.page_id"
        f" WHERE p.status IN {CAPTURED_SQL} AND (h.page_id IS NULL OR h.hash_settings != ?"
        " OR h.captured_at != COALESCE(p.captured_at, 0.0)) ORDER BY p.page_id",
        (settings,)).fetchall()


def finish_run(catalog: Catalog, run_id: int, hashed: int, skipped: int, edges: int) -> None:
    with catalog.transaction() as conn:
        conn.execute(
            "UPDATE dedupe_runs SET finished_at=?, hashed=?, skipped=?, edges=? WHERE run_id=?",
            (time.time(), hashed, skipped, edges, run_id),
        )


def _layout_bytes(vec: np.ndarray | None) -> bytes | None:
    if vec is None:
        return None
    one_hot = vec.reshape(-1, len(CATEGORIES))
    cats = np.where(one_hot.any(axis=1), one_hot.argmax(axis=1), -1).astype(np.int8)
    return cats.tobytes()


def _layout_vector(blob: bytes | None) -> np.ndarray | None:
    if blob is None:
        return None
    cats = np.frombuffer(blob, dtype=np.int8).astype(np.int64)
    vec = np.zeros((len(cats), len(CATEGORIES)), dtype=np.float32)
    on = cats >= 0
    vec[np.flatnonzero(on), cats[on]] = 1.0
    return vec.ravel()


def save_hashes(
    catalog: Catalog, pages: Sequence[PageHashes], hash_settings: str, run_id: int
) -> None:
    now = time.time()
    with catalog.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO dedupe_hashes(page_id, algo, hash_settings, pixel_sha,"
            " text_sha, text_simhash, bands, height, layout, n_boxes, n_errors, site, captured_at,"
            " run_id, hashed_at, images, image_share) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    p.page_id, p.algo, hash_settings, p.pixel_sha, p.text_sha,
                    None if p.text_simhash is None else f"{p.text_simhash:016x}",
                    json.dumps([None if b is None else f"{b:016x}" for b in p.bands]),
                    p.height, _layout_bytes(p.layout), p.n_boxes, p.n_errors, p.site,
                    p.captured_at, run_id, now,
                    json.dumps([[f"{h:016x}", area] for h, area in p.images]), p.image_share,
                )
                for p in pages
            ],
        )


def load_hashes(catalog: Catalog, page_ids: Iterable[str] | None = None) -> list[PageHashes]:
    """Stored hashes (of the given pages, or all), in page id order."""
    rows = catalog.execute("SELECT * FROM dedupe_hashes ORDER BY page_id").fetchall()
    wanted = None if page_ids is None else set(page_ids)
    out = []
    for r in rows:
        if wanted is not None and r["page_id"] not in wanted:
            continue
        out.append(
            PageHashes(
                page_id=r["page_id"],
                pixel_sha=r["pixel_sha"],
                bands=[None if b is None else int(b, 16) for b in json.loads(r["bands"])],
                height=r["height"],
                text_sha=r["text_sha"],
                text_simhash=None if r["text_simhash"] is None else int(r["text_simhash"], 16),
                layout=_layout_vector(r["layout"]),
                n_boxes=r["n_boxes"],
                n_errors=r["n_errors"],
                site=r["site"],
                captured_at=r["captured_at"],
                algo=r["algo"],
                images=[(int(h, 16), int(area)) for h, area in json.loads(r["images"] or "[]")],
                image_share=float(r["image_share"] or 0.0),
            )
        )
    return out


def save_edges(catalog: Catalog, edges: Sequence[Edge], generation: int, run_id: int) -> None:
    with catalog.transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO dedupe_edges(a, b, relation, distance, generation, run_id)"
            " VALUES(?,?,?,?,?,?)",
            [(e.a, e.b, e.relation, e.distance, generation, run_id) for e in edges],
        )


def current_edges(catalog: Catalog, generation: int) -> list[Edge]:
    """Edges of this generation found no earlier than the last hashing of both pages."""
    rows = catalog.execute(
        "SELECT e.a, e.b, e.relation, e.distance FROM dedupe_edges e"
        " JOIN dedupe_hashes ha ON ha.page_id = e.a"
        " JOIN dedupe_hashes hb ON hb.page_id = e.b"
        " WHERE e.generation = ? AND e.run_id >= ha.run_id AND e.run_id >= hb.run_id",
        (generation,),
    ).fetchall()
    return [Edge(r[0], r[1], r[2], r[3]) for r in rows]


def log_skipped(catalog: Catalog, run_id: int, skipped: Sequence[tuple[str, str]]) -> None:
    with catalog.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO dedupe_skipped(run_id, page_id, error) VALUES(?,?,?)",
            [(run_id, pid, err) for pid, err in skipped],
        )


@dataclass(frozen=True)
class Decision:
    page_id: str
    group_id: str
    canonical: bool
    reason: str
    template_id: str


def write_decisions(catalog: Catalog, run_id: int, decisions: Sequence[Decision]) -> int:
    """Replace the shared group rows; append the changed ones to the history. Returns changes."""
    old = {
        r[0]: (r[1], r[2], r[3])
        for r in catalog.execute(
            "SELECT d.page_id, d.group_id, d.canonical, t.template_id FROM dup_groups d"
            " LEFT JOIN template_groups t ON t.page_id = d.page_id"
        ).fetchall()
    }
    changed = [
        d for d in decisions
        if old.get(d.page_id) != (d.group_id, int(d.canonical), d.template_id)
    ]
    with catalog.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO dup_groups(page_id, group_id, canonical, reason)"
            " VALUES(?,?,?,?)",
            [(d.page_id, d.group_id, int(d.canonical), d.reason) for d in changed],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO template_groups(page_id, template_id) VALUES(?,?)",
            [(d.page_id, d.template_id) for d in changed],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO dedupe_decisions(run_id, page_id, group_id, canonical,"
            " reason, template_id) VALUES(?,?,?,?,?,?)",
            [(run_id, d.page_id, d.group_id, int(d.canonical), d.reason, d.template_id)
             for d in changed],
        )
    return len(changed)


def read_groups(catalog: Catalog) -> list[list[str]]:
    """Duplicate groups from dup_groups, canonical first, then by page id."""
    rows = catalog.execute(
        "SELECT page_id, group_id, canonical FROM dup_groups"
        " ORDER BY group_id, canonical DESC, page_id"
    ).fetchall()
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(r[1], []).append(r[0])
    return list(groups.values())
