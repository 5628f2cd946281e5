"""URL normalisation and the stable page id built on it.

A page is the same page whatever order its query parameters came in, whatever case its
host was typed in and whatever tracking tags a link carried, so all of those are folded
before a URL becomes an id.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}

# Parameters that identify a campaign or a click, never the content.
TRACKING_PARAMS = frozenset(
    {
        "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
        "gclid", "dclid", "fbclid", "msclkid", "mc_cid", "mc_eid", "yclid", "_ga", "_gl",
        "igshid", "ref_src",
    }
)


class BadURL(ValueError):
    """A URL that cannot be crawled; the message names it."""


def normalise_url(url: str) -> str:
    """Return the canonical form of an absolute http(s) URL.

    Lower-cases scheme and host, drops default ports, the fragment and tracking
    parameters, resolves dot segments, sorts the query and normalises percent-escapes.
    Raises BadURL for anything that is not an absolute http(s) URL with a host.
    """
    if not isinstance(url, str) or not url.strip():
        raise BadURL(f"empty URL: {url!r}")
    # The fragment never counts, and keeping it out of the cache key lets the links to a
    # page's sections (an index may hold thousands) share one entry.
    return _normalise(url.strip().partition("#")[0])


# A site's pages link to the same pages over and over (navigation, footers): each page
# brings hundreds of links, nearly all of them seen before.
@functools.lru_cache(maxsize=1 << 16)
def _normalise(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadURL(f"malformed URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadURL(f"malformed URL {url!r}: only http and https can be captured")
    host = (parts.hostname or "").rstrip(".")
    try:
        # IDNA maps first (NFKC: "´" becomes a space and an accent), so the check of what
        # a host may hold is made on what it became, and a result always reads back.
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BadURL(f"malformed URL {url!r}: host is not a valid domain name") from None
    if not host or any(c in host for c in " <>\"{}|\\^`"):
        raise BadURL(f"malformed URL {url!r}: no valid host")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username:
        # Credentials never go into ids or files.
        pass
    path = _normalise_path(parts.path)
    query = _normalise_query(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def _normalise_path(path: str) -> str:
    if not path:
        return "/"
    # Decode first: "%2E%2E" is a dot segment too (RFC 3986 6.2.2.2 before 5.2.4), and
    # resolving before decoding would make a second pass change the URL again.
    path = unquote(path)
    # "/a/b/.." names the directory "/a/", as a browser resolves it.
    trailing = path.endswith(("/", "/.", "/.."))
    resolved = posixpath.normpath(path)
    if resolved.startswith("//"):
        resolved = "/" + resolved.lstrip("/")
    if resolved == ".":
        resolved = "/"
    if trailing and not resolved.endswith("/"):
        resolved += "/"
    return quote(resolved, safe="/:@!$&'()*+,;=-._~")


def _normalise_query(query: str) -> str:
    pairs = [
        (k, v)
        for k, v in parse_qsl(query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS
    ]
    return urlencode(sorted(pairs), quote_via=quote, safe="/:@!$'()*+,;-._~")


def page_id(url: str, viewport: tuple[int, int], dpr: float = 1.0) -> str:
    """Stable id of a capture: a hash of (normalised URL, viewport, device pixel ratio).

    The ratio is part of the id only when it is not 1, so desktop ids depend on URL and
    viewport alone.
    """
    key = f"{normalise_url(url)}|{int(viewport[0])}x{int(viewport[1])}"
    if float(dpr) != 1.0:
        key += f"@{float(dpr):g}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
