"""What the main document's HTTP exchange said: status, content type, redirects, headers.

Two sources. The page itself knows its status, content type, address and redirect count
(its navigation timing entry), which is enough for the usual page: a 2xx HTML document
that arrived at the address asked for. Everything else (an error status, a redirect, a
download, a navigation that never committed, Retry-After) needs the browser's performance
log, which costs a WebDriver round trip and its transfer; `NavigationLog` decides when it
must be read, and keeps it drained.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from catalog.urls import BadURL, normalise_url

HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class DocumentResponse:
    """What the main document's HTTP exchange said."""

    status: int | None = None
    content_type: str = ""
    url: str = ""
    redirects: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""


def same_url(a: str, b: str) -> bool:
    try:
        return normalise_url(a) == normalise_url(b)
    except BadURL:
        return False


def moved_to(final_url: str, address: object) -> str | None:
    """Where the captured document really is, when a meta refresh or a script took the
    browser to another origin after the navigation the network log describes; else None.

    The log's answer is the first document's; the content captured is the second's, so
    the page must be filed, and checked, at the second address. Same-origin changes are
    left alone: a script may rewrite its own address (history.pushState) without leaving
    the page, and an origin the crawl reached is one it was allowed to reach.
    """
    if not isinstance(address, str) or not address.startswith(("http:", "https:")):
        return None
    try:
        url = normalise_url(address)
    except BadURL:
        return None
    here, there = urlsplit(final_url), urlsplit(url)
    return None if (here.scheme, here.netloc) == (there.scheme, there.netloc) else url


def usual_response(head: list[Any], requested: str) -> DocumentResponse | None:
    """The response as the page saw it, when nothing about it needs the network log.

    `head` is the capture script's [document height, status, redirect count, content
    type, address]. None when the status is not 2xx (or unknown: 0), when there were
    redirects, when the document is not HTML, or when it is not at the requested address
    (a cross-origin redirect, a download or a 204 that left another page showing).
    """
    _, status, redirect_count, content_type, url = head
    content_type = str(content_type).lower()
    if not (isinstance(status, int) and 200 <= status < 300) or redirect_count:
        return None
    if not content_type.startswith(HTML_TYPES) or not same_url(url, requested):
        return None
    return DocumentResponse(status=status, content_type=content_type, url=url)


def parse_document_response(
    entries: list[dict[str, Any]], requested: str, frame: str | None = None
) -> DocumentResponse:
    """Find the navigation to `requested` and its redirect chain in performance-log entries.

    The log may still hold earlier pages' events, so the navigation is the top frame's
    (`frame`, the page target's id, when known) first document request for the
    requested URL: an earlier page may have framed the same address.
    """
    resp = DocumentResponse()
    main_request: str | None = None
    for entry in entries:
        try:
            msg = json.loads(entry["message"])["message"]
        except (KeyError, TypeError, ValueError):
            continue
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent" and params.get("type") == "Document":
            url = params.get("request", {}).get("url", "")
            top = frame is None or params.get("frameId") == frame
            if (main_request is None and top and not params.get("redirectResponse")
                    and same_url(url, requested)):
                main_request = params.get("requestId")
            if main_request is None or params.get("requestId") != main_request:
                continue
            redirect = params.get("redirectResponse")
            if redirect:
                resp.redirects.append(redirect.get("url", ""))
            resp.url = url
        elif main_request is None:
            continue
        elif method == "Network.responseReceived" and params.get("requestId") == main_request:
            r = params.get("response", {})
            resp.status = r.get("status")
            resp.content_type = (r.get("mimeType") or "").lower()
            resp.url = r.get("url", resp.url)
            resp.headers = {k.lower(): str(v) for k, v in (r.get("headers") or {}).items()}
        elif method == "Network.loadingFailed" and params.get("requestId") == main_request:
            resp.error = params.get("errorText", "failed")
    return resp


class NavigationLog:
    """Which navigations one browser's performance log holds that nobody has read.

    A usual page leaves its entries unread. The log is drained every `limit` pages, so it
    stays small, and before a navigation to an address it may already hold: the first
    document request for an address must be this navigation's, not an earlier one's.
    A page asked for while it is showing (or when what shows is not known) must read the
    log: if the new navigation never commits, the page would only see the old document.
    """

    def __init__(self, limit: int = 20):
        self.limit = limit
        self.unread: set[str] = set()
        self.showing: str | None = ""  # normalised address of the document shown; None: not known

    def before_navigate(self, requested: str, drain: Callable[[], object]) -> bool:
        """Call before navigating; `drain` reads (and so empties) the log.

        Returns whether this navigation's response must come from the log.
        """
        must_read = requested in self.unread or self.showing in (None, requested)
        if must_read or len(self.unread) >= self.limit:
            drain()
            self.unread.clear()
        return must_read

    def after(self, requested: str, shown: str | None, *, read: bool) -> None:
        """Call once the navigation's response is known.

        `shown`: the address the page reports after it (None when it could not be asked);
        `read`: the response came from the log.
        """
        if read:
            self.unread.clear()
        else:
            self.unread.add(requested)
        try:
            self.showing = normalise_url(shown) if shown else None
        except BadURL:
            self.showing = None
