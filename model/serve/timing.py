"""Where a request's time went, sent back as a standard Server-Timing header (shown by a
browser's developer tools, read by bench/serve.py), so the server's own overhead can be
told apart from the model's time without a profiler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class Spans:
    """Seconds per named part of one request; a part timed twice adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def header(self) -> str:
        # A snapshot: a worker that outlived the request's timeout may still add a part.
        parts = list(self.seconds.items())
        return ", ".join(f"{k};dur={1000 * v:.1f}" for k, v in parts)


def parse_server_timing(header: str) -> dict[str, float]:
    """Seconds per part of a Server-Timing header (parts without a duration are left out)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (header or "").split(","))):
        name, *params = (p.strip() for p in part.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "dur":
                with suppress(ValueError):
                    out[name] = out.get(name, 0.0) + float(value.strip('"')) / 1000
    return out
