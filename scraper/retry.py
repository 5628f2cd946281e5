"""When to try a page again: a pure policy over (attempt, outcome, Retry-After).

Like Scrapy's RetryMiddleware: timeouts, 429 and 5xx are retried with exponential
backoff; a server's Retry-After is honoured when it is longer than the backoff, and a
Retry-After longer than the configured maximum gives up instead of stalling the crawl.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

# Capture outcomes worth another try; "http_error" only for the statuses below.
RETRY_KINDS = frozenset({"timeout", "unreachable", "browser_error"})
RETRY_HTTP = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3  # tries after the first
    backoff: float = 2.0  # seconds before the first retry, doubled each time
    max_retry_after: float = 120.0  # longest Retry-After waited for


def is_retryable(kind: str, http_status: int | None) -> bool:
    if kind in RETRY_KINDS:
        return True
    return http_status is not None and (http_status in RETRY_HTTP or 500 <= http_status < 600)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(policy: RetryPolicy, attempt: int, kind: str, http_status: int | None,
                retry_after: float | None = None) -> float | None:
    """Seconds to wait before the next try, or None to give up.

    `attempt` counts the tries made so far (1 after the first failure).
    """
    if not is_retryable(kind, http_status) or attempt > policy.retries:
        return None
    delay = policy.backoff * (2 ** (attempt - 1))
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        delay = max(delay, retry_after)
    return delay
