"""The crawl frontier, kept in the catalog so a killed crawl resumes where it stopped.

One row per (normalised URL, viewport). A row moves queued -> in_flight -> done | failed |
skipped; `done` is written in the same transaction as the page's catalog row, so a page is
either captured and done, or still to do. Only the crawl's engine thread writes here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from catalog import Catalog

FRONTIER_DDL = """
CREATE TABLE IF NOT EXISTS frontier (
    url TEXT NOT NULL,            -- normalised
    viewport TEXT NOT NULL,       -- as in the config: 1280x800 or 390x844@3
    depth INTEGER NOT NULL,
    seed TEXT NOT NULL,           -- the seed whose scope admitted it
    host TEXT NOT NULL,           -- netloc, for politeness
    site TEXT NOT NULL,           -- registered domain, for per-site limits
    state TEXT NOT NULL,          -- queued | in_flight | done | failed | skipped
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',   -- kind of the last failure (robots, http_404, timeout...)
    cause TEXT NOT NULL DEFAULT '',   -- its message (net::ERR_NAME_NOT_RESOLVED, HTTP 404...)
    page_id TEXT NOT NULL DEFAULT '',
    page_status TEXT NOT NULL DEFAULT '',
    counted INTEGER NOT NULL DEFAULT 0,  -- 1: a captured page that counts against max_pages
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (url, viewport)
);
CREATE INDEX IF NOT EXISTS frontier_order ON frontier(state, depth, added_at);
CREATE INDEX IF NOT EXISTS frontier_page ON frontier(page_id);
{INDEXES}
"""

# Indexes that keep a catalog of a million pages answering in milliseconds: the queue of
# one crawl's seeds (counted every half second while it runs), the counted pages and the
# rows that ended badly (`scraper status`), each read from the index alone.
FRONTIER_INDEXES = """
CREATE INDEX IF NOT EXISTS frontier_queue ON frontier(state, seed, viewport, next_at);
CREATE INDEX IF NOT EXISTS frontier_counted ON frontier(counted, page_id);
CREATE INDEX IF NOT EXISTS frontier_outcome ON frontier(state, page_status, error);
"""
FRONTIER_DDL = FRONTIER_DDL.replace("{INDEXES}", FRONTIER_INDEXES)

STATES = ("queued", "in_flight", "done", "failed", "skipped")

# Rows that ended badly: given up, skipped, or captured with an error status.
ERROR_ROWS = "state IN ('failed','skipped') OR (state='done' AND page_status NOT IN ('ok',''))"


@dataclass
class FailedURL:
    """A URL whose capture failed (or was skipped), as `status --errors` lists it."""

    url: str
    viewport: str
    kind: str  # http_404, unreachable, timeout, robots, redirect_offsite...
    cause: str  # the message, "" in a catalog written before causes were kept
    attempts: int
    state: str  # failed | skipped | done (recorded with an error status)
    page_id: str  # the page directory of the last attempt, if it left one


@dataclass
class Entry:
    url: str
    viewport: str
    depth: int
    seed: str
    host: str
    site: str
    attempts: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Entry:
        return cls(row["url"], row["viewport"], row["depth"], row["seed"], row["host"],
                   row["site"], row["attempts"])


class Frontier:
    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        catalog.ensure_tables(FRONTIER_DDL)
        columns = {r[1] for r in catalog.execute("PRAGMA table_info(frontier)")}
        if "cause" not in columns:  # a catalog from before causes were kept: they read as ""
            catalog.execute("ALTER TABLE frontier ADD COLUMN cause TEXT NOT NULL DEFAULT ''")

    def recover(self) -> int:
        """Return pages a killed crawl left in flight to the queue; returns how many."""
        with self.catalog.transaction() as conn:
            cur = conn.execute(
                "UPDATE frontier SET state='queued', next_at=0 WHERE state='in_flight'"
            )
            return cur.rowcount

    def add(self, entries: Iterable[Entry], conn: sqlite3.Connection | None = None) -> int:
        """Queue URLs not seen before (per viewport); returns how many were new.

        A URL still waiting (queued or in flight) that is found again by a shorter path
        takes that path's depth: the crawl's reach under --max-depth is then the shortest
        path among the pages it fetched, whatever order they were fetched in.
        """
        now = time.time()
        rows = [(e.url, e.viewport, e.depth, e.seed, e.host, e.site, now, now) for e in entries]
        if not rows:
            return 0
        c = conn or self.catalog.conn
        before = c.total_changes
        c.executemany(
            "INSERT OR IGNORE INTO frontier(url, viewport, depth, seed, host, site, state,"
            " added_at, updated_at) VALUES(?,?,?,?,?,?,'queued',?,?)",
            rows,
        )
        added = c.total_changes - before
        # By the primary key, one row each: the rows just inserted already have this depth.
        c.executemany(
            "UPDATE frontier SET depth=?1 WHERE url=?2 AND viewport=?3 AND depth>?1"
            " AND state IN ('queued','in_flight')",
            [(r[2], r[0], r[1]) for r in rows],
        )
        return added

    def candidates(self, now: float, limit: int = 200) -> list[Entry]:
        rows = self.catalog.execute(
            "SELECT * FROM frontier WHERE state='queued' AND next_at<=?"
            " ORDER BY depth, added_at, rowid LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Entry.from_row(r) for r in rows]

    def ready(self, now: float, seeds: list[str], viewports: list[str],
              busy_hosts: Iterable[str] = (), full_sites: Iterable[str] = (),
              limit: int = 200) -> list[Entry]:
        """The next queued pages of these seeds and viewports due by `now`, shallowest and
        oldest first, leaving out hosts that are busy and sites that are full."""
        sql, args = self._where(seeds, viewports, full_sites)
        sql += " AND next_at<=?"
        args.append(now)
        hosts = sorted(busy_hosts)
        if hosts:
            sql += f" AND host NOT IN ({','.join('?' * len(hosts))})"
            args += hosts
        rows = self.catalog.execute(
            f"SELECT * FROM frontier WHERE {sql} ORDER BY depth, added_at, rowid LIMIT ?",
            [*args, limit]).fetchall()
        return [Entry.from_row(r) for r in rows]

    def queued(self, seeds: list[str], viewports: list[str],
               full_sites: Iterable[str] = ()) -> int:
        """Pages of these seeds and viewports still queued (due now or later)."""
        sql, args = self._where(seeds, viewports, full_sites)
        return self.catalog.execute(f"SELECT COUNT(*) FROM frontier WHERE {sql}",
                                    args).fetchone()[0]

    @staticmethod
    def _where(seeds: list[str], viewports: list[str],
               full_sites: Iterable[str]) -> tuple[str, list]:
        sql = (f"state='queued' AND seed IN ({','.join('?' * len(seeds))})"
               f" AND viewport IN ({','.join('?' * len(viewports))})")
        args: list = [*seeds, *viewports]
        sites = sorted(full_sites)
        if sites:
            sql += f" AND site NOT IN ({','.join('?' * len(sites))})"
            args += sites
        return sql, args

    def next_wake(self) -> float | None:
        row = self.catalog.execute(
            "SELECT MIN(next_at) FROM frontier WHERE state='queued'"
        ).fetchone()
        return row[0]

    def set_state(self, e: Entry, state: str, *, conn: sqlite3.Connection | None = None,
                  attempts: int | None = None, next_at: float = 0.0, error: str = "",
                  cause: str = "", page_id: str = "", page_status: str = "",
                  counted: bool = False) -> None:
        (conn or self.catalog.conn).execute(
            "UPDATE frontier SET state=?, attempts=?, next_at=?, error=?, cause=?, page_id=?,"
            " page_status=?, counted=?, updated_at=? WHERE url=? AND viewport=?",
            (state, e.attempts if attempts is None else attempts, next_at, error,
             cause if error else "", page_id, page_status, int(counted), time.time(), e.url,
             e.viewport),
        )

    def mark_alias_done(self, alias: Entry, page_id: str, page_status: str,
                        conn: sqlite3.Connection) -> None:
        """The URL a redirect ended on: seen, and done with the same page, not queued again."""
        now = time.time()
        conn.execute(
            "INSERT INTO frontier(url, viewport, depth, seed, host, site, state, page_id,"
            " page_status, added_at, updated_at) VALUES(?,?,?,?,?,?,'done',?,?,?,?)"
            " ON CONFLICT(url, viewport) DO UPDATE SET state='done', page_id=excluded.page_id,"
            " page_status=excluded.page_status, updated_at=excluded.updated_at"
            " WHERE frontier.state IN ('queued', 'failed')",
            (alias.url, alias.viewport, alias.depth, alias.seed, alias.host, alias.site, page_id,
             page_status, now, now),
        )

    # -- counts ---------------------------------------------------------------------------

    def counted_pages(self) -> int:
        row = self.catalog.execute(
            "SELECT COUNT(DISTINCT page_id) FROM frontier WHERE counted=1"
        ).fetchone()
        return int(row[0])

    def counted_per_site(self) -> dict[str, int]:
        rows = self.catalog.execute(
            "SELECT site, COUNT(DISTINCT page_id) FROM frontier WHERE counted=1 GROUP BY site"
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def state_counts(self) -> dict[str, int]:
        rows = self.catalog.execute(
            "SELECT state, COUNT(*) FROM frontier GROUP BY state"
        ).fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts

    def failed_urls(self, limit: int | None = None) -> Iterator[FailedURL]:
        """The URLs that failed, in the order they were found; read as they are iterated, so
        a listing of a million takes no more memory than one of ten."""
        sql = ("SELECT url, viewport, CASE WHEN error != '' THEN error ELSE page_status END,"
               f" cause, attempts, state, page_id FROM frontier WHERE ({ERROR_ROWS}) ORDER BY rowid")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for row in self.catalog.execute(sql):
            yield FailedURL(row[0], row[1], row[2] or "unknown", *row[3:])

    def error_counts(self) -> dict[str, int]:
        """Failures and skips by kind, plus captured pages whose status is not ok."""
        rows = self.catalog.execute(
            "SELECT CASE WHEN error != '' THEN error ELSE page_status END AS k, COUNT(*)"
            f" FROM frontier WHERE ({ERROR_ROWS}) GROUP BY k"
        ).fetchall()
        return {r[0] or "unknown": int(r[1]) for r in rows}
