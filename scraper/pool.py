"""The browser pool: K worker threads, each driving one browser (local or on a Grid).

A worker takes a page, asks robots.txt, has its browser load and grab it (boxes and
screenshot), and passes the grab to its finisher thread, which parses it, writes the page
directory and hands the outcome back; the browser meanwhile loads the next page. Neither
writes the catalog (the engine does, in one transaction per page). A browser is replaced
after `recycle_after` pages, and at once when it dies: the page it was on goes back to
the engine to be tried again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalog.config import CaptureConfig
from catalog.workspace import Workspace

from .browser import BrowserOptions, start_browser, stop_browser
from .capture import BrowserDied, CaptureResult, finish_capture, grab_page
from .frontier import Entry
from .orphans import note_browser
from .politeness import Politeness
from .robots import Robots


@dataclass
class Job:
    entry: Entry
    viewport: tuple[int, int, float]


@dataclass
class Outcome:
    job: Job
    kind: str  # captured | robots | robots_later | browser_died | no_browser | capture_error
    result: CaptureResult | None = None
    retry_at: float | None = None
    error: str = ""
    worker: int = 0


class Worker(threading.Thread):
    def __init__(self, index: int, jobs: queue.Queue, results: queue.Queue, ws: Workspace,
                 capture_cfg: CaptureConfig, browser_opts: BrowserOptions,
                 robots: Robots | None, politeness: Politeness, recycle_after: int,
                 crawl_id: str,
                 starter: Callable[[BrowserOptions], Any] = start_browser):
        super().__init__(name=f"browser-{index}", daemon=True)
        self.index = index
        self.jobs, self.results = jobs, results
        self.ws, self.capture_cfg = ws, capture_cfg
        self.browser_opts, self.robots = browser_opts, robots
        self.politeness = politeness
        self.recycle_after = recycle_after
        self.crawl_id = crawl_id
        self.starter = starter
        self.driver: Any = None
        self.pages_on_driver = 0
        self.restarts = 0
        self.driver_lock = threading.Lock()  # the bench reads `driver` to measure memory
        # One grab waits at most: each holds a screenshot, and a finisher that falls
        # behind should slow the browser rather than fill the memory.
        self.grabs: queue.Queue = queue.Queue(maxsize=1)
        self.finisher = threading.Thread(target=self._finish_grabs, name=f"finisher-{index}",
                                         daemon=True)

    def run(self) -> None:
        self.finisher.start()
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                try:
                    out = self._do(job)
                except Exception as exc:  # never let one page take the worker down
                    out = Outcome(job, "capture_error", error=f"{type(exc).__name__}: {exc}"[:300])
                    # A browser in an unknown state (a hung driver, a half-run script) is
                    # not trusted with the next page; a fresh one costs a second or two.
                    self._stop_driver()
                if out is not None:
                    self._put(out)
        finally:
            self._stop_driver()
            self.grabs.put(None)
            self.finisher.join()

    def _put(self, out: Outcome) -> None:
        out.worker = self.index
        self.results.put(out)

    def _finish_grabs(self) -> None:
        while True:
            item = self.grabs.get()
            if item is None:
                return
            job, grab = item
            try:
                out = Outcome(job, "captured", result=finish_capture(grab, self.ws, self.capture_cfg))
            except Exception as exc:  # a page that cannot be parsed or written is an error
                out = Outcome(job, "capture_error", error=f"{type(exc).__name__}: {exc}"[:300])
            self._put(out)

    def _stop_driver(self) -> None:
        with self.driver_lock:
            driver, self.driver = self.driver, None
        if driver is not None:
            stop_browser(driver)

    def _ensure_driver(self) -> None:
        if self.driver is not None and self.pages_on_driver >= self.recycle_after > 0:
            self._stop_driver()
        if self.driver is None:
            driver = self.starter(self.browser_opts)
            note_browser(self.ws, driver)
            with self.driver_lock:
                self.driver = driver
            self.pages_on_driver = 0

    def _do(self, job: Job) -> Outcome | None:
        """The outcome, or None when the page went on to the finisher."""
        host = job.entry.host
        if self.robots is not None:
            verdict = self.robots.check(job.entry.url)
            self.politeness.set_crawl_delay(host, verdict.crawl_delay)
            if not verdict.allowed:
                kind = "robots_later" if verdict.retry_at else "robots"
                return Outcome(job, kind, retry_at=verdict.retry_at)
        try:
            self._ensure_driver()
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            return Outcome(job, "no_browser", error=msg)
        # The host's turn is taken at the navigation itself, so the delay holds between
        # the requests the server sees, whatever the capture does before loading.
        try:
            grab = grab_page(
                self.driver, job.entry.url, job.viewport, self.capture_cfg,
                crawl_id=self.crawl_id, depth=job.entry.depth,
                before_navigate=lambda: self.politeness.start(host),
            )
        except BrowserDied as exc:
            self._stop_driver()
            self.restarts += 1
            return Outcome(job, "browser_died", error=str(exc)[:300])
        self.pages_on_driver += 1
        self.grabs.put((job, grab))
        return None


class Pool:
    """K workers fed through one job queue; outcomes come back on `results`."""

    def __init__(self, size: int, **worker_kwargs: Any):
        self.jobs: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.workers = [
            Worker(i, self.jobs, self.results, **worker_kwargs) for i in range(max(1, size))
        ]

    @property
    def size(self) -> int:
        return len(self.workers)

    def start(self) -> None:
        for w in self.workers:
            w.start()

    @property
    def capacity(self) -> int:
        """Pages the engine keeps handed out: a browser always has its next page waiting."""
        return 2 * self.size

    def submit(self, job: Job) -> None:
        self.jobs.put(job)

    def take_back(self) -> list[Job]:
        """The pages handed out that no browser has started yet (for a clean stop)."""
        jobs = []
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return jobs
            if job is None:  # a worker's stop signal stays where it was
                self.jobs.put(None)
                return jobs
            jobs.append(job)

    def next_outcome(self, timeout: float) -> Outcome | None:
        try:
            return self.results.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def close(self, timeout: float = 30.0) -> None:
        for _ in self.workers:
            self.jobs.put(None)
        deadline = time.monotonic() + timeout
        for w in self.workers:
            w.join(max(0.1, deadline - time.monotonic()))

    def restarts(self) -> int:
        return sum(w.restarts for w in self.workers)
