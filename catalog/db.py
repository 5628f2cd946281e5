"""The SQLite catalog of a workspace: one file every stage reads and writes.

Each stage owns its tables (marked below) and touches the others only to read. Writes go
through `transaction()`, so a kill between two statements leaves the catalog as it was
before the first.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .records import PageRecord

# 2: release_splits (a catalog of schema 1 gains the table when opened).
CATALOG_SCHEMA = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- scraper: one row per captured (or attempted) page; the page directory is the data.
CREATE TABLE IF NOT EXISTS pages (
    page_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    final_url TEXT NOT NULL,
    site TEXT NOT NULL DEFAULT '',
    viewport TEXT NOT NULL,
    dpr REAL NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    flags TEXT NOT NULL DEFAULT '[]',
    crawl_id TEXT NOT NULL DEFAULT '',
    captured_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_status ON pages(status);

-- dedupe: duplicate groups (exact or near: one group_id, one canonical page) and the
-- weaker "same template" relation that only groups splits. Every page that dedupe has
-- seen has a row in both; a page whose row says canonical=0 is a dropped duplicate.
CREATE TABLE IF NOT EXISTS dup_groups (
    page_id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    canonical INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS template_groups (
    page_id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL
);

-- annotate: the human annotation pulled for a page (annotation.json is the data).
CREATE TABLE IF NOT EXISTS annotations (
    page_id TEXT PRIMARY KEY,
    task_id INTEGER,
    annotation_id INTEGER,
    annotator TEXT NOT NULL DEFAULT '',
    lead_time REAL,
    reviewed INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL DEFAULT '',
    pulled_at REAL NOT NULL
);

-- export: one row per release written.
CREATE TABLE IF NOT EXISTS releases (
    version TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    pages INTEGER NOT NULL,
    sha256sums TEXT NOT NULL
);
-- export: the split of every page released, as it was the first time: a page never
-- changes split, whatever decides the splits of pages released later.
CREATE TABLE IF NOT EXISTS release_splits (
    page_id TEXT PRIMARY KEY,
    split TEXT NOT NULL,
    first_version TEXT NOT NULL
);
"""


class CatalogError(RuntimeError):
    """The catalog cannot be used now: not SQLite, or held locked by another process. The
    message names the file and the fix. Not a ValueError: a stage's loop that skips a bad
    page must not skip its way through every page when the catalog itself is the trouble."""


def _is_locked(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc))


def _is_disk(exc: sqlite3.Error) -> bool:
    """SQLite's words for a disk that is full (or failing): the file itself is fine."""
    return isinstance(exc, sqlite3.OperationalError) and (
        "disk is full" in str(exc) or "disk I/O error" in str(exc))


class Catalog:
    """A connection to catalog.sqlite with the schema in place."""

    def __init__(self, path: str | Path, timeout: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if _is_locked(exc):
                raise self.locked() from None
            if _is_disk(exc):
                raise self.no_room(exc) from None
            raise CatalogError(
                f"{self.path} is not a readable catalog ({exc}); move it away to start afresh"
            ) from None
        found = self.meta("schema")
        if found is not None and int(found) > CATALOG_SCHEMA:
            raise RuntimeError(
                f"{self.path} was written by a newer version (schema {found}); upgrade the tool"
            )
        if found is None or int(found) < CATALOG_SCHEMA:
            # The tables an older schema lacks were created above (IF NOT EXISTS).
            self.set_meta("schema", str(CATALOG_SCHEMA))

    def locked(self) -> CatalogError:
        return CatalogError(
            f"{self.path} is held locked by another process (a crawl, dedupe or export still "
            "running?): let it finish or stop it, then run the command again"
        )

    def no_room(self, exc: sqlite3.Error) -> CatalogError:
        return CatalogError(
            f"{self.path} cannot be written ({exc}): is the disk full? Free some space and "
            "run the same command again (the catalog itself is unharmed)"
        )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise self.locked() from None
            if _is_disk(exc):
                raise self.no_room(exc) from None
            raise
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            # SQLite may have rolled back already (a full disk does): nothing left to undo.
            with contextlib.suppress(sqlite3.OperationalError):
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _is_disk(exc):
                raise self.no_room(exc) from None
            raise

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def ensure_tables(self, ddl: str) -> None:
        """Create a stage's own tables (CREATE ... IF NOT EXISTS statements)."""
        try:
            self.conn.executescript(ddl)
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise self.locked() from None
            raise

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    # -- pages ---------------------------------------------------------------------------

    def record_page(self, page: PageRecord, site: str = "", conn: Any = None) -> None:
        """Insert or replace the catalog row of a page (call inside a transaction)."""
        (conn or self.conn).execute(
            "INSERT OR REPLACE INTO pages(page_id, url, final_url, site, viewport, dpr, status,"
            " width, height, flags, crawl_id, captured_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                page.page_id,
                page.url,
                page.final_url,
                site,
                f"{page.viewport[0]}x{page.viewport[1]}",
                page.device_pixel_ratio,
                page.status,
                page.width,
                page.height,
                json.dumps(page.flags),
                page.crawl_id,
                page.captured_at or time.time(),
            ),
        )

    def pages(self, status: str | None = None) -> list[sqlite3.Row]:
        if status is None:
            return self.conn.execute("SELECT * FROM pages ORDER BY page_id").fetchall()
        return self.conn.execute(
            "SELECT * FROM pages WHERE status=? ORDER BY page_id", (status,)
        ).fetchall()

    def page(self, page_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM pages WHERE page_id=?", (page_id,)).fetchone()
