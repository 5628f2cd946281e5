"""robots.txt: fetched once per origin with the crawl's user agent, parsed by protego.

The usual conventions (Google's, which Scrapy follows): an unreachable robots.txt or a
4xx allows everything; a 5xx disallows the whole host for a while, then it is asked again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from protego import Protego

MAX_ROBOTS_BYTES = 512 * 1024  # what Google reads of a robots.txt


@dataclass
class RobotsEntry:
    parser: Protego | None  # None: no usable rules (allow everything)
    disallow_all_until: float = 0.0  # > now: the server answered 5xx
    fetched_at: float = 0.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    crawl_delay: float | None = None
    retry_at: float | None = None  # set when the answer is "not now" rather than "never"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Robots:
    """A thread-safe cache of robots.txt rules per origin."""

    def __init__(self, user_agent: str, timeout: float = 10.0, error_wait: float = 300.0,
                 session: requests.Session | None = None):
        self.user_agent = user_agent
        self.timeout = timeout
        self.error_wait = error_wait
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._entries: dict[str, RobotsEntry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _fetch(self, origin_url: str) -> RobotsEntry:
        now = time.time()
        try:
            resp = self.session.get(f"{origin_url}/robots.txt", timeout=self.timeout)
        except requests.RequestException:
            return RobotsEntry(None, fetched_at=now)
        if resp.status_code >= 500:
            return RobotsEntry(None, disallow_all_until=now + self.error_wait, fetched_at=now)
        if resp.status_code >= 400:
            return RobotsEntry(None, fetched_at=now)
        body = resp.content[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        try:
            return RobotsEntry(Protego.parse(body), fetched_at=now)
        except Exception:  # a robots.txt protego cannot read has no rules we can follow
            return RobotsEntry(None, fetched_at=now)

    def entry(self, url: str) -> RobotsEntry:
        key = origin(url)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._entries.get(key)
            if entry is None or (entry.disallow_all_until and entry.disallow_all_until <= time.time()):
                entry = self._entries[key] = self._fetch(key)
            return entry

    def check(self, url: str) -> Verdict:
        entry = self.entry(url)
        if entry.disallow_all_until > time.time():
            return Verdict(False, retry_at=entry.disallow_all_until)
        if entry.parser is None:
            return Verdict(True)
        return Verdict(
            entry.parser.can_fetch(url, self.user_agent),
            entry.parser.crawl_delay(self.user_agent),
        )
