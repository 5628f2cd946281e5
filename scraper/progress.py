"""What a person watching a crawl sees: a live bar while it runs, a summary table after,
and the URLs that failed, each with its cause.

`python -m scraper status` prints the same table from the catalog alone; `--errors` lists
every failing URL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from catalog import Catalog, Workspace
from catalog.records import PageRecord

from .causes import cause_of
from .engine import Snapshot
from .frontier import FailedURL, Frontier

SHOWN_ERRORS = 5  # failing URLs a summary names; `status --errors` lists them all
ERRORS_HEADER = "url\tkind\tcause\tattempts\tstate\tviewport"


def _events(events: Mapping[str, int], limit: int = 4) -> str:
    top = sorted(((k, v) for k, v in events.items() if v), key=lambda kv: (-kv[1], kv[0]))
    return " ".join(f"{k}:{v}" for k, v in top[:limit]) or "no errors"


class LiveProgress:
    """A rich progress bar fed with engine snapshots; quiet when output is not a terminal."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]crawl"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            refresh_per_second=4,
        )
        self.task = self.progress.add_task("crawl", total=None, info="starting")
        self._last_line = 0.0

    def __enter__(self) -> LiveProgress:
        if self.console.is_terminal:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, s: Snapshot) -> None:
        total = s.max_pages if s.max_pages > 0 else s.done + s.queued + s.in_flight
        info = (f"queued {s.queued}  in flight {s.in_flight}  {s.rate:.1f} pages/min  "
                f"{_events(s.events)}")
        if s.state == "stopping":
            info = f"stopping: finishing {s.in_flight} in flight"
        self.progress.update(self.task, completed=s.done, total=total, info=info)
        if not self.console.is_terminal and time.monotonic() - self._last_line > 10:
            # Logs and CI get a line every few seconds instead of a redrawn bar.
            self._last_line = time.monotonic()
            self.console.print(f"crawl {s.done}/{total} pages  {info}", highlight=False)


def print_summary(console: Console, catalog: Catalog, ws: Workspace,
                  snapshot: Snapshot | None = None) -> None:
    """The summary table, then the first failing URLs with their causes."""
    errors = Frontier(catalog).error_counts()  # one pass over the frontier serves both
    console.print(summary_table(catalog, snapshot, errors))
    for line in first_errors(catalog, ws, sum(errors.values())):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def summary_table(catalog: Catalog, snapshot: Snapshot | None = None,
                  errors: Mapping[str, int] | None = None) -> Table:
    """Pages by state and status, errors by kind (`errors`: Frontier.error_counts, when the
    caller has them), and the rate of the last run."""
    frontier = Frontier(catalog)
    states = frontier.state_counts()
    statuses = dict(catalog.execute(
        "SELECT status, COUNT(*) FROM pages GROUP BY status ORDER BY status").fetchall())
    last = json.loads(catalog.meta("last_crawl") or "{}")
    table = Table(title="crawl summary", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("pages captured (ok)", str(frontier.counted_pages()))
    for status, n in statuses.items():
        if status != "ok":
            table.add_row(f"pages recorded: {status}", str(n))
    for state in ("queued", "in_flight", "failed", "skipped"):
        if states.get(state):
            table.add_row(f"frontier {state}", str(states[state]))
    for kind, n in sorted((frontier.error_counts() if errors is None else errors).items()):
        table.add_row(f"error: {kind}", str(n))
    events = dict(snapshot.events) if snapshot else last.get("events", {})
    retries = sum(v for k, v in events.items() if k.startswith("retry_"))
    if retries:
        table.add_row("retries (last run)", str(retries))
    if events.get("browser_died"):
        table.add_row("browser restarts (last run)", str(events["browser_died"]))
    if snapshot is not None:
        table.add_row("pages this run", str(snapshot.done_run))
        table.add_row("pages/min this run", f"{snapshot.rate:.1f}")
        table.add_row("run", snapshot.state)
    elif last:
        table.add_row("last run", f"{last.get('crawl_id', '?')} ({last.get('state', '?')})")
        if "rate" in last:
            table.add_row("pages/min (last run)", f"{last['rate']:.1f}")
    return table


def _line(f: FailedURL) -> str:
    tries = f" ({f.attempts} attempts)" if f.attempts > 1 else ""
    return f"  {f.kind}  {f.url}  {f.cause or '(cause not in the catalog)'}{tries}"


def first_errors(catalog: Catalog, ws: Workspace, total: int,
                 limit: int = SHOWN_ERRORS) -> list[str]:
    """Lines naming the first failing URLs and their causes ([] when none of the `total`
    failed). From the catalog alone, however many pages it holds."""
    if not total:
        return []
    shown = [_line(f) for f in Frontier(catalog).failed_urls(limit)]
    every = f"python -m scraper status --errors --workspace {ws.root}"
    which = f"all {total}" if total == len(shown) else f"the first {len(shown)} of {total}"
    return [f"failing URLs, {which} (each with its cause: `{every}`):", *shown]


def _cause_from_page(ws: Workspace, page_id: str) -> str:
    """A catalog written before causes were kept: the cause is in the page's page.json."""
    try:
        doc = json.loads(ws.page_json(page_id).read_bytes())
        return cause_of(PageRecord.from_dict(doc))
    except (OSError, ValueError, TypeError, AttributeError):
        return ""


def error_listing(catalog: Catalog, ws: Workspace) -> Iterator[str]:
    """Every failing URL, a tab-separated line each (URL, kind, cause, attempts, state,
    viewport) under a header; made as it is read, so it starts at once and holds no list."""
    yield ERRORS_HEADER
    for f in Frontier(catalog).failed_urls():
        cause = f.cause or (_cause_from_page(ws, f.page_id) if f.page_id else "")
        cause = " ".join(cause.split())  # one line, no tab: one URL a line
        yield "\t".join((f.url, f.kind, cause, str(f.attempts), f.state, f.viewport))
