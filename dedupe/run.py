"""`python -m dedupe run`: hash new pages, match them against the index, regroup.

Incremental: a page is hashed once (again only when it was re-captured or the hash
settings changed); only new pages are searched against the index of all pages, unless the
matching settings changed, in which case every page is matched again (no re-hashing).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from catalog.config import DedupeConfig
from catalog.db import Catalog
from catalog.records import CAPTURED_SQL
from catalog.workspace import CorruptFile, Workspace

from . import store
from .groups import DUPLICATE_RELATIONS, decide
from .hashes import HASH_ALGO
from .match import NearRule, PageHashes, exact_edges, near_edges, template_edges
from .reader import read_page


def hash_settings(cfg: DedupeConfig) -> str:
    cols, rows = cfg.layout_grid
    return (f"{HASH_ALGO};band={cfg.band_height};bands={cfg.max_bands};"
            f"grid={cols}x{rows};min_text={cfg.min_text_chars}")


def match_settings(cfg: DedupeConfig) -> str:
    rule = NearRule.from_config(cfg)
    return f"{hash_settings(cfg)};{rule};layout={cfg.layout_threshold:g}"


def check_config(cfg: DedupeConfig) -> None:
    if cfg.band_rule not in ("max", "mean"):
        raise ValueError(f"dedupe.band_rule must be max or mean, not {cfg.band_rule!r}")
    for name in ("phash_threshold", "text_threshold"):
        if not 0 <= getattr(cfg, name) <= 16:
            raise ValueError(f"dedupe.{name} must be within 0..16 bits, not {getattr(cfg, name)}")
    if len(cfg.layout_grid) != 2 or min(cfg.layout_grid) < 1:
        raise ValueError(f"dedupe.layout_grid must be [columns, rows], not {cfg.layout_grid}")
    if cfg.band_height < 16 or cfg.max_bands < 1:
        raise ValueError("dedupe.band_height must be >= 16 and dedupe.max_bands >= 1")


@dataclass
class RunReport:
    run_id: int = 0
    pages: int = 0
    hashed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    matched: int = 0
    edges: int = 0  # pairs of pages found alike this run, of any relation
    duplicate_edges: int = 0  # of those, alike enough for one to be dropped
    changed: int = 0  # pages whose group, template group or kept/dropped verdict changed
    groups: int = 0  # one a page kept, with its duplicates if it has any
    copied: int = 0  # groups of more than one page
    duplicates: int = 0
    templates: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The run told in words a person new to dedupe can follow."""
        layout = self.edges - self.duplicate_edges
        return [
            f"dedupe run {self.run_id}: {self.pages} page(s), {len(self.hashed)} hashed, "
            f"{len(self.skipped)} skipped (unreadable files), {self.matched} matched against "
            "the index (the new ones, each compared with every page seen so far)",
            f"  {self.edges} new pair(s) of pages found alike: {self.duplicate_edges} as duplicates "
            f"(the same or nearly the same pixels or text), {layout} sharing only a layout",
            f"  {self.groups} page(s) kept and {self.duplicates} dropped as a copy of a kept "
            f"page ({self.copied} kept page(s) have copies); {self.templates} template "
            "group(s) (pages of one layout, kept together in one split)",
            f"  {self.changed} page(s) with a new verdict (their group, template group or "
            "kept/dropped changed since the last run; on a first run, every page)",
            f"  {self.seconds:.1f}s",
        ]


def _hash_pages(ws: Workspace, rows: list, cfg: DedupeConfig, show: bool,
                report: RunReport) -> list[PageHashes]:
    done: list[PageHashes] = []
    progress = Progress(
        TextColumn("hashing"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[rate]:.1f} pages/s, {task.fields[errors]} skipped"),
        TimeRemainingColumn(), disable=not show, transient=True,
    )
    t0 = time.perf_counter()
    with progress:
        task = progress.add_task("hash", total=len(rows), rate=0.0, errors=0)
        for row in rows:
            try:
                done.append(read_page(ws, row, cfg))
            except (CorruptFile, FileNotFoundError) as exc:
                report.skipped.append((row["page_id"], str(exc)))
                print(f"skipped: {exc}", file=sys.stderr)
            rate = (len(done) + len(report.skipped)) / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, advance=1, rate=rate, errors=len(report.skipped))
    return done


def run(ws: Workspace, catalog: Catalog, cfg: DedupeConfig, show_progress: bool = False,
        batch: int = 500) -> RunReport:
    check_config(cfg)
    t0 = time.perf_counter()
    store.ensure(catalog)
    run_id, generation = store.start_run(catalog, match_settings(cfg))
    report = RunReport(run_id=run_id)
    # Error pages are captured as the server rendered them and released like any other,
    # so their copies (one 404 page per broken link) must be found too.
    captured_ids = {r[0] for r in catalog.execute(
        f"SELECT page_id FROM pages WHERE status IN {CAPTURED_SQL}")}
    report.pages = len(captured_ids)
    settings = hash_settings(cfg)
    todo = store.pages_to_hash(catalog, settings)
    # Hashes are saved batch by batch, so an interrupted run keeps what it did.
    for start in range(0, len(todo), batch):
        done = _hash_pages(ws, todo[start : start + batch], cfg, show_progress, report)
        store.save_hashes(catalog, done, settings, run_id)
        report.hashed.extend(p.page_id for p in done)
    if report.skipped:
        store.log_skipped(catalog, run_id, report.skipped)
    pages = store.load_hashes(catalog, captured_ids)
    last = store.last_finished(catalog, run_id)
    if last is not None and last[1] == generation:
        # Pages hashed since the last finished run, including by a run that was killed.
        new = store.hashed_after(catalog, last[0])
    else:
        new = {p.page_id for p in pages}  # first run, or settings changed: match all again
    report.matched = len(new)
    edges = [
        *exact_edges(pages, new),
        *near_edges(pages, new, NearRule.from_config(cfg)),
        *template_edges(pages, new, cfg.layout_threshold),
    ]
    store.save_edges(catalog, edges, generation, run_id)
    report.edges = len(edges)
    report.duplicate_edges = sum(1 for e in edges if e.relation in DUPLICATE_RELATIONS)
    decisions = decide(pages, store.current_edges(catalog, generation))
    report.changed = store.write_decisions(catalog, run_id, decisions)
    sizes = Counter(d.group_id for d in decisions)
    report.groups = len(sizes)
    report.copied = sum(1 for n in sizes.values() if n > 1)
    report.duplicates = sum(1 for d in decisions if not d.canonical)
    report.templates = len({d.template_id for d in decisions})
    store.finish_run(catalog, run_id, len(report.hashed), len(report.skipped), len(edges))
    report.seconds = time.perf_counter() - t0
    return report
