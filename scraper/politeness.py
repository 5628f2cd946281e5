"""The per-host gate: how many pages of a host may load at once, and how soon the next.

In memory only: after a restart the first request to a host goes out at once, which is
what a person re-running a command expects. Delays count from the start of the previous
request to the host, as Scrapy's DOWNLOAD_DELAY does: the engine takes a slot when it hands
a page to a browser (`acquire`), the browser waits for its turn right before loading it
(`start`).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback(url_or_host: str) -> bool:
    host = urlsplit(url_or_host).hostname if "://" in url_or_host else url_or_host
    host = (host or "").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.") or host.endswith(".localhost")


class Politeness:
    """Per-host delay and concurrency; thread-safe."""

    def __init__(self, delay: float, concurrency: int, loopback_delay: float = 0.0,
                 loopback_concurrency: int = 0):
        self.delay = delay
        self.concurrency = max(1, concurrency)
        self.loopback_delay = loopback_delay
        self.loopback_concurrency = loopback_concurrency  # 0: no limit
        self._lock = threading.Lock()
        self._next: dict[str, float] = defaultdict(float)
        self._busy: dict[str, int] = defaultdict(int)
        self._last: dict[str, float] = {}  # start of the latest request
        self._crawl_delay: dict[str, float] = {}

    def set_crawl_delay(self, host: str, seconds: float | None) -> None:
        with self._lock:
            if seconds:
                self._crawl_delay[host] = float(seconds)
                # Learnt while the first request was out: it counts from that request.
                if host in self._last:
                    self._next[host] = max(self._next[host], self._last[host] + float(seconds))
            else:
                self._crawl_delay.pop(host, None)

    def delay_for(self, host: str) -> float:
        base = self.loopback_delay if is_loopback(host) else self.delay
        return max(base, self._crawl_delay.get(host, 0.0))

    def _limit(self, host: str) -> int:
        if is_loopback(host):
            return self.loopback_concurrency or 1_000_000
        return self.concurrency

    def ready_at(self, host: str, now: float) -> float | None:
        """When the host can take another request (<= now: at once); None while it is full."""
        with self._lock:
            if self._busy[host] >= self._limit(host):
                return None
            return self._next[host]

    def acquire(self, host: str, now: float) -> bool:
        """Take one of the host's slots if it has one free and its delay has passed."""
        with self._lock:
            if self._busy[host] >= self._limit(host) or self._next[host] > now:
                return False
            self._busy[host] += 1
            return True

    def start(self, host: str, clock: Callable[[], float] = time.time,
              sleep: Callable[[float], None] = time.sleep) -> None:
        """Wait for the host's turn, then count a request as started now.

        Called by the browser worker right before it loads the page, so the delay is kept
        between the requests themselves, however long a browser took to start or to reach
        the page.
        """
        while True:
            with self._lock:
                now = clock()
                wait = self._next[host] - now
                if wait <= 0:
                    self._last[host] = now
                    self._next[host] = now + self.delay_for(host)
                    return
            sleep(min(wait, 1.0))

    def release(self, host: str) -> None:
        with self._lock:
            self._busy[host] = max(0, self._busy[host] - 1)

    def push_back(self, host: str, until: float) -> None:
        """Hold a host until `until` (a server asked us to slow down)."""
        with self._lock:
            self._next[host] = max(self._next[host], until)
