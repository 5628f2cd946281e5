"""The crawl loop: frontier -> politeness gate -> browser pool -> catalog.

Small on purpose: scope, robots, politeness, retries and the browsers are pieces of their
own. This thread alone writes the catalog; a finished page and its frontier row change in
one transaction, so a kill at any moment loses nothing and captures nothing twice.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from catalog import Catalog, Config, Workspace
from catalog.config import resolve_viewport
from catalog.sites import site_of
from catalog.urls import BadURL, normalise_url

from .browser import BrowserOptions
from .causes import cause_of
from .frontier import Entry, Frontier
from .orphans import WorkspaceLock, owner_token, reap
from .politeness import Politeness
from .pool import Job, Outcome, Pool
from .retry import RetryPolicy, is_retryable, retry_delay
from .robots import Robots
from .scope import Seed, link_allowed, resolve_host
from .slots import grid_slots

# Capture statuses whose page counts against max_pages and whose links are followed.
COUNTED = frozenset({"ok"})
FOLLOWED = frozenset({"ok", "timeout"})
LINK_MEMORY = 500_000  # links remembered as judged, about 100 MB at most; then forgotten
MAX_NO_BROWSER = 3  # consecutive failures to start a browser before the crawl gives up
GRID_POLL = 2.0  # seconds between looks at a full Grid's free slots


class CrawlError(ValueError):
    """The crawl cannot go on (no browser can be started); the message says what to fix."""


@dataclass
class Snapshot:
    """What the progress bar and the summary show."""

    crawl_id: str
    started: float
    done: int = 0  # pages counted against the limit, this crawl's seeds, all runs
    done_run: int = 0  # pages captured by this run
    queued: int = 0
    in_flight: int = 0
    max_pages: int = 0
    events: Counter = field(default_factory=Counter)  # errors and skips by kind, this run
    state: str = "running"  # running | stopping | finished | interrupted

    @property
    def rate(self) -> float:
        minutes = max(1e-9, (time.time() - self.started) / 60)
        return self.done_run / minutes


def kind_of(status: str, http_status: int | None) -> str:
    if status == "http_error" and http_status:
        return f"http_{http_status}"
    return status


class Engine:
    def __init__(self, config: Config, ws: Workspace, seeds: list[Seed], *,
                 on_progress: Callable[[Snapshot], None] | None = None,
                 crawl_id: str = "", take_lock: bool = True,
                 say: Callable[[str], None] | None = None):
        if not seeds:
            raise ValueError("no seeds: give SEED_URL, --seeds FILE, --serve DIR or [crawl] seeds")
        self.config, self.ws, self.crawl = config, ws, config.crawl
        self.seeds = {s.url: s for s in seeds}
        self.viewports = {spec: resolve_viewport(spec) for spec in config.capture.viewports}
        self.policy = RetryPolicy(self.crawl.retries, self.crawl.backoff, self.crawl.max_retry_after)
        self.politeness = Politeness(self.crawl.delay, self.crawl.per_host_concurrency,
                                     self.crawl.loopback_delay, self.crawl.loopback_concurrency)
        self.on_progress = on_progress or (lambda s: None)
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.crawl_id = crawl_id or "crawl-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.snapshot = Snapshot(self.crawl_id, time.time(), max_pages=self.crawl.max_pages)
        self.stop_requested = False
        self.take_lock = take_lock  # False: the caller holds the workspace lock already
        self.catalog: Catalog | None = None
        self.pool: Pool | None = None
        self.in_flight: dict[tuple[str, str], Job] = {}
        # Links already judged in this run: most of a site's links are on every page (its
        # menus), and each would be checked and offered to the frontier again for nothing.
        # url -> the shallowest depth it was offered at: the frontier would ignore it again
        # at that depth or deeper, and takes a shorter path's depth (see Frontier.add).
        self.linked: dict[str, int] = {}
        self.refused: set[tuple[str, str]] = set()  # (seed, url): out of its scope or not allowed

    # -- set-up ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Finish the pages in flight, then stop (Ctrl-C)."""
        self.stop_requested = True
        self.snapshot.state = "stopping"

    def _filter_sql(self) -> tuple[str, list[str]]:
        seeds, vps = list(self.seeds), list(self.viewports)
        sql = (f" seed IN ({','.join('?' * len(seeds))})"
               f" AND viewport IN ({','.join('?' * len(vps))})")
        return sql, seeds + vps

    def _load_state(self) -> None:
        assert self.catalog is not None
        where, params = self._filter_sql()
        rows = self.catalog.execute(
            f"SELECT page_id, site FROM frontier WHERE counted=1 AND {where}", params
        ).fetchall()
        self.counted_ids = {r[0] for r in rows}
        self.site_ids: dict[str, set[str]] = {}
        for page_id, site in rows:
            self.site_ids.setdefault(site, set()).add(page_id)
        # A seed that redirected (http -> https, / -> /index.html) widens its own scope.
        self.scopes: dict[str, list[Seed]] = {url: [s] for url, s in self.seeds.items()}
        for r in self.catalog.execute(
            f"SELECT url, seed FROM frontier WHERE depth=0 AND url != seed AND {where}", params
        ):
            self._add_seed_alias(r[1], r[0])
        self._refresh_seed_hosts()

    def _add_seed_alias(self, seed_url: str, final: str) -> None:
        seed = self.seeds[seed_url]
        if any(s.url == final for s in self.scopes[seed_url]):
            return
        self.scopes[seed_url].append(Seed(final, seed.scope, seed.include, seed.exclude))
        self._refresh_seed_hosts()

    def _refresh_seed_hosts(self) -> None:
        self.seed_hosts = frozenset(s.host for ss in self.scopes.values() for s in ss)
        self.refused.clear()  # a wider scope may take what was refused

    def _entry(self, url: str, viewport: str, depth: int, seed: str) -> Entry:
        return Entry(url, viewport, depth, seed, urlsplit(url).netloc, site_of(url))

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> Snapshot:
        self.ws.ensure()
        with WorkspaceLock(self.ws) if self.take_lock else contextlib.nullcontext():
            leftover = reap(self.ws)
            if leftover:
                self.snapshot.events["killed_leftover_browsers"] += leftover
            self.ws.clean_partial()
            self.catalog = Catalog(self.ws.catalog_path)
            try:
                return self._run()
            finally:
                self.catalog.close()

    def _run(self) -> Snapshot:
        assert self.catalog is not None
        frontier = self.frontier = Frontier(self.catalog)
        recovered = frontier.recover()
        if recovered:
            self.snapshot.events["resumed_in_flight"] += recovered
        with self.catalog.transaction() as conn:
            frontier.add([self._entry(url, vp, 0, url) for url in self.seeds
                          for vp in self.viewports], conn)
        self._load_state()
        robots = None
        if self.crawl.obey_robots:
            robots = Robots(self.crawl.user_agent, self.crawl.robots_timeout,
                            self.crawl.robots_error_wait)
        self.pool = Pool(
            self._browsers(), ws=self.ws, capture_cfg=self.config.capture,
            browser_opts=BrowserOptions(grid=self.crawl.grid, user_agent=self.crawl.user_agent,
                                        offline=self.crawl.offline,
                                        owner=owner_token(self.ws)),
            robots=robots, politeness=self.politeness, recycle_after=self.crawl.recycle_after,
            crawl_id=self.crawl_id,
        )
        self.in_flight = {}
        self.no_browser = 0
        self.no_browser_since = 0.0  # on a Grid: when browsers stopped starting
        self.fatal = ""
        cpu0 = time.process_time()
        self.last_errors: dict[str, str] = {}  # kind -> last message, kept in meta
        self.catalog.set_meta("last_crawl", json.dumps(
            {"crawl_id": self.crawl_id, "started": self.snapshot.started, "state": "running"}))
        self.pool.start()
        last_progress = 0.0
        try:
            while True:
                if not (self.stop_requested or self.fatal):
                    self._dispatch()
                else:
                    self._take_back_waiting()
                if not self.in_flight and (self.stop_requested or self.fatal
                                           or self._finished()):
                    break
                out = self.pool.next_outcome(0.5 if self.in_flight else 0.1)
                while out is not None:
                    self._handle(out)
                    out = self.pool.next_outcome(0)
                if time.monotonic() - last_progress > 0.5:
                    last_progress = time.monotonic()
                    self._update_snapshot()
                    self.on_progress(self.snapshot)
        finally:
            self.pool.close()
            self.snapshot.state = "interrupted" if self.stop_requested else "finished"
            self._update_snapshot()
            self.catalog.set_meta("last_crawl", json.dumps({
                "crawl_id": self.crawl_id, "started": self.snapshot.started,
                "ended": time.time(), "pages": self.snapshot.done_run,
                "rate": round(self.snapshot.rate, 2), "browsers": self.pool.size,
                "state": self.snapshot.state, "events": dict(self.snapshot.events),
                "last_errors": self.last_errors,
                # The crawl's own work (catalog, links, page files), not the browsers':
                # what decides how many browsers, on a Grid, one crawl can keep busy.
                "cpu_s": round(time.process_time() - cpu0, 3),
            }))
            self.on_progress(self.snapshot)
        if self.fatal:
            raise CrawlError(self.fatal)
        return self.snapshot

    def _browsers(self) -> int:
        """Browsers to run: as asked, else one locally or the Grid's free slots, waited
        for up to `grid_wait` while the Grid has none."""
        asked, url = self.crawl.browsers, self.crawl.grid
        if not url:
            return max(1, asked)
        deadline = time.monotonic() + self.crawl.grid_wait
        said = False
        while True:
            slots = grid_slots(url)
            if slots is None:
                raise CrawlError(f"cannot start a browser: nothing answers at {url}/status; is "
                                 f"the Grid at {url} running? (`make grid` starts one)")
            if slots.free > 0:
                if said:
                    self.say(f"the Grid has {slots.free} free slot(s): crawling")
                return asked or slots.free
            if self.stop_requested:
                raise CrawlError("stopped while waiting for a free Grid slot; nothing crawled")
            left = deadline - time.monotonic()
            if left <= 0:
                raise CrawlError(
                    f"the Grid at {url} had no free slot for {self.crawl.grid_wait:.0f} s "
                    f"({slots.total} slot(s) on {slots.nodes_up} node(s), all busy); nothing "
                    "was lost: run the same command once it has room, or raise --grid-wait")
            if not said:
                self.say(f"the Grid at {url} has no free slot ({slots.total} busy on "
                         f"{slots.nodes_up} node(s)); waiting up to {self.crawl.grid_wait:.0f} s")
                said = True
            time.sleep(min(GRID_POLL, left))

    def _budget_left(self) -> float:
        if self.crawl.max_pages <= 0:
            return float("inf")
        return self.crawl.max_pages - len(self.counted_ids) - len(self.in_flight)

    def _full_sites(self) -> set[str]:
        cap = self.crawl.max_pages_per_site
        if cap <= 0:
            return set()
        busy = Counter(j.entry.site for j in self.in_flight.values())
        return {s for s, ids in self.site_ids.items() if len(ids) + busy[s] >= cap} | {
            s for s, n in busy.items() if len(self.site_ids.get(s, ())) + n >= cap}

    def _dispatch(self) -> None:
        assert self.pool is not None
        free = self.pool.capacity - len(self.in_flight)
        budget = self._budget_left()
        if free <= 0 or budget <= 0:
            return
        now = time.time()
        blocked = {h for h in {j.entry.host for j in self.in_flight.values()}
                   if self.politeness.ready_at(h, now) is None}
        full = self._full_sites()
        for e in self.frontier.ready(now, list(self.seeds), list(self.viewports), blocked, full):
            if free <= 0 or budget <= 0:
                break
            if e.depth > 0 and not self._in_scope(e.seed, e.url):
                # Queued by an earlier run whose scope took it; an --exclude added since
                # (a folder of images, say) must not cost a browser fetch per queued link.
                self.snapshot.events["out_of_scope"] += 1
                self.frontier.set_state(e, "skipped", error="out_of_scope",
                                        cause="queued before the crawl's scope (--exclude, "
                                        "--include or the seed's scope) was changed to leave "
                                        "it out")
                continue
            if e.site in full or not self.politeness.acquire(e.host, now):
                continue
            self.frontier.set_state(e, "in_flight")
            job = Job(e, self.viewports[e.viewport])
            self.in_flight[(e.url, e.viewport)] = job
            self.pool.submit(job)
            free -= 1
            budget -= 1
            full = self._full_sites()

    def _take_back_waiting(self) -> None:
        """Stopping: pages handed out but not yet started go back to the queue."""
        assert self.pool is not None
        for job in self.pool.take_back():
            e = job.entry
            self.in_flight.pop((e.url, e.viewport), None)
            self.politeness.release(e.host)
            self.frontier.set_state(e, "queued")

    def _finished(self) -> bool:
        """Nothing in flight and nothing left that this crawl may still do."""
        if self._budget_left() <= 0:
            return True
        return self.frontier.queued(list(self.seeds), list(self.viewports),
                                    self._full_sites()) == 0

    def _update_snapshot(self) -> None:
        self.snapshot.queued = self.frontier.queued(list(self.seeds), list(self.viewports))
        self.snapshot.done = len(self.counted_ids)
        self.snapshot.in_flight = len(self.in_flight)

    # -- outcomes -------------------------------------------------------------------------

    def _handle(self, out: Outcome) -> None:
        e = out.job.entry
        self.in_flight.pop((e.url, e.viewport), None)
        self.politeness.release(e.host)
        ev = self.snapshot.events
        now = time.time()
        if out.kind == "captured":
            self.no_browser = 0
            self.no_browser_since = 0.0
            self._captured(out)
        elif out.kind == "robots":
            ev["robots"] += 1
            self.frontier.set_state(e, "skipped", error="robots",
                                    cause="robots.txt disallows it for this crawl's user agent")
        elif out.kind == "no_browser":
            self.no_browser += 1
            ev["no_browser"] += 1
            self.frontier.set_state(e, "queued", next_at=now + 1.0, error="no_browser",
                                    cause=out.error)
            if self.crawl.grid:
                self._grid_no_browser(out.error)
            elif self.no_browser >= MAX_NO_BROWSER * self.pool.size:
                self.fatal = (f"cannot start a browser ({out.error}); is Chromium installed "
                              "and running?")
        else:  # robots_later, browser_died, error: try again later, up to the retry limit
            kind = {"robots_later": "robots_5xx"}.get(out.kind, out.kind)
            ev[kind] += 1
            attempts = e.attempts + 1
            if out.error:
                self.last_errors[kind] = out.error
            cause = out.error or ("robots.txt answered with a server error"
                                  if kind == "robots_5xx" else "")
            if attempts > self.policy.retries:
                self.frontier.set_state(e, "failed", attempts=attempts, error=kind, cause=cause)
            else:
                when = out.retry_at or (now if out.kind == "browser_died" else
                                        now + self.policy.backoff * 2 ** (attempts - 1))
                self.frontier.set_state(e, "queued", attempts=attempts, next_at=when, error=kind,
                                        cause=cause)

    def _grid_no_browser(self, error: str) -> None:
        """No session from the Grid: its slots are busy (wait, up to `grid_wait`), or it
        is gone (give up after a few tries)."""
        url, now = self.crawl.grid, time.monotonic()
        if grid_slots(url) is None:
            if self.no_browser >= MAX_NO_BROWSER * self.pool.size:
                self.fatal = (f"cannot start a browser ({error}); is the Grid at {url} "
                              "running? (`make grid` starts one)")
            return
        if not self.no_browser_since:
            self.no_browser_since = now
            self.say(f"the Grid at {url} gives no browser ({error[:120]}); waiting up to "
                     f"{self.crawl.grid_wait:.0f} s for a slot")
        elif now - self.no_browser_since > self.crawl.grid_wait:
            self.fatal = (f"the Grid at {url} gave no browser for {self.crawl.grid_wait:.0f} s "
                          f"({error}); nothing was lost: run the same command once it has "
                          "room, or raise --grid-wait")

    def _captured(self, out: Outcome) -> None:
        e, result = out.job.entry, out.result
        page = result.page
        ev = self.snapshot.events
        now = time.time()
        attempts = e.attempts + 1
        kind = kind_of(page.status, page.http_status)
        final = page.final_url
        seed = self.seeds[e.seed]
        # Every address the browser reached counts, not only the last: a chain through a
        # private address, or a page that sent the browser there by itself.
        through = next((u for u in page.redirects if not self._allowed(u)), None)
        if through is not None or (final != e.url and not self._redirect_ok(e, final)):
            ev["redirect_offsite"] += 1
            if self.catalog.page(page.page_id) is None:
                shutil.rmtree(self.ws.page_dir(page.page_id), ignore_errors=True)
            self.frontier.set_state(e, "failed", attempts=attempts, error="redirect_offsite",
                                    cause=f"redirected to {through or final}, which the crawl "
                                    "may not follow (outside the seed's scope, or a private "
                                    "address)")
            return
        retry_after = getattr(page, "retry_after", None)
        if is_retryable(page.status, page.http_status):
            delay = retry_delay(self.policy, attempts, page.status, page.http_status, retry_after)
            if retry_after:
                self.politeness.push_back(e.host, now + retry_after)
            if delay is not None:
                ev[f"retry_{kind}"] += 1
                # The attempt's page stays recorded (its directory exists) until a retry
                # replaces it, so catalog rows and page directories always agree.
                with self.catalog.transaction() as conn:
                    self.catalog.record_page(page, site=site_of(final), conn=conn)
                    self.frontier.set_state(e, "queued", conn=conn, attempts=attempts,
                                            next_at=now + delay, error=kind,
                                            cause=cause_of(page),
                                            page_id=page.page_id, page_status=page.status)
                return
        counted = page.status in COUNTED
        new: list[Entry] = []
        if page.status in FOLLOWED and e.depth < self.crawl.max_depth:
            new = self._links(e, result.links)
        if page.status != "ok":
            ev[kind] += 1
        with self.catalog.transaction() as conn:
            self.catalog.record_page(page, site=site_of(final), conn=conn)
            self.frontier.set_state(e, "done", conn=conn, attempts=attempts,
                                    error="" if page.status == "ok" else kind,
                                    cause=cause_of(page),
                                    page_id=page.page_id, page_status=page.status,
                                    counted=counted)
            if final != e.url:
                alias = self._entry(final, e.viewport, e.depth, e.seed)
                self.frontier.mark_alias_done(alias, page.page_id, page.status, conn)
            self.frontier.add(new, conn)
        if e.depth == 0 and final != e.url:
            self._add_seed_alias(seed.url, final)
        if counted:
            self.counted_ids.add(page.page_id)
            self.site_ids.setdefault(e.site, set()).add(page.page_id)
            self.snapshot.done_run += 1

    def _in_scope(self, seed_url: str, url: str) -> bool:
        return any(s.in_scope(url) for s in self.scopes[seed_url])

    def _allowed(self, url: str) -> bool:
        return link_allowed(url, self.seed_hosts, self.crawl.allow_private, resolve_host)

    def _redirect_ok(self, e: Entry, final: str) -> bool:
        if not self._allowed(final):
            return False
        # A seed may redirect anywhere public (http -> https, a new host): its target
        # then widens the seed's scope. Other pages must land inside the scope.
        return e.depth == 0 or self._in_scope(e.seed, final)

    def _links(self, e: Entry, links: list[str]) -> list[Entry]:
        if len(self.linked) + len(self.refused) > LINK_MEMORY:
            self.linked.clear()
            self.refused.clear()
        out: list[Entry] = []
        for link in links:
            try:
                url = normalise_url(link)
            except BadURL:
                continue
            depth = e.depth + 1
            if self.linked.get(url, depth + 1) <= depth or (e.seed, url) in self.refused:
                continue
            if not self._in_scope(e.seed, url) or not self._allowed(url):
                self.refused.add((e.seed, url))
                continue
            self.linked[url] = depth
            for vp in self.viewports:
                out.append(self._entry(url, vp, depth, e.seed))
                job = self.in_flight.get((url, vp))
                if job is not None and job.entry.depth > depth:
                    job.entry.depth = depth  # as the frontier's row: its links go one deeper
        return out
