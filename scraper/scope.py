"""Which URLs a crawl may follow: per-seed scope rules and the link safety rules.

Pure functions over normalised URLs; the only outside knowledge is the bundled public
suffix list (for `domain` scope) and, for host names, an optional resolver that the
caller passes in (tests use none, the crawl caches `socket.getaddrinfo`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from catalog.sites import registered_domain
from catalog.urls import normalise_url

SCOPES = ("page", "prefix", "host", "domain")
NEVER_FOLLOWED = ("file", "javascript", "data", "mailto")


@dataclass(frozen=True)
class Seed:
    """A start URL (normalised) and the rule that says which links of its crawl are kept."""

    url: str
    scope: str = "prefix"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    _include_re: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)
    _exclude_re: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope {self.scope!r} of seed {self.url} must be one of {', '.join(SCOPES)}")
        object.__setattr__(self, "url", normalise_url(self.url))
        object.__setattr__(self, "_include_re", _compile(self.include))
        object.__setattr__(self, "_exclude_re", _compile(self.exclude))

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def in_scope(self, url: str) -> bool:
        """True when `url` (normalised) belongs to this seed's crawl."""
        if any(r.search(url) for r in self._exclude_re):
            return False
        if self._include_re:
            # Like browsertrix's custom scope: include patterns replace the scope rule.
            return url == self.url or any(r.search(url) for r in self._include_re)
        return in_scope(self.url, self.scope, url)


def _compile(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as exc:
            raise ValueError(f"scope regex {p!r} is invalid: {exc}") from None
    return tuple(out)


def prefix_of(seed_url: str) -> str:
    """The seed URL up to the last '/' of its path: the 'directory' a prefix scope keeps."""
    parts = urlsplit(seed_url)
    path = parts.path[: parts.path.rfind("/") + 1] or "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


def in_scope(seed_url: str, scope: str, url: str) -> bool:
    """Scope rule of one seed, both URLs normalised."""
    if scope == "page":
        return url == seed_url
    seed, cand = urlsplit(seed_url), urlsplit(url)
    if scope == "prefix":
        return url.startswith(prefix_of(seed_url))
    if scope == "host":
        return cand.netloc == seed.netloc
    if scope == "domain":
        return registered_domain(cand.hostname or "") == registered_domain(seed.hostname or "")
    raise ValueError(f"scope {scope!r} must be one of {', '.join(SCOPES)}")


# -- link safety ---------------------------------------------------------------------------


def link_scheme_ok(url: str) -> bool:
    """Only http(s) links are followed; file:, javascript:, data:, mailto: and the like never."""
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    return scheme in ("http", "https")


def _private_ip(text: str) -> bool:
    ip = ipaddress.ip_address(text)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_reserved


@lru_cache(maxsize=4096)
def resolve_host(host: str) -> tuple[str, ...]:
    """Addresses of a host name (empty when it does not resolve); cached per process."""
    try:
        return tuple(sorted({info[4][0] for info in socket.getaddrinfo(host, None)}))
    except (OSError, UnicodeError):
        return ()


def is_private_host(host: str, resolver: Callable[[str], Iterable[str]] | None = None) -> bool:
    """A private, loopback or link-local address, or a name that resolves to one."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return _private_ip(host)
    except ValueError:
        pass
    if resolver is None:
        return False
    return any(_private_ip(a.split("%", 1)[0]) for a in resolver(host))


def link_allowed(url: str, seed_hosts: frozenset[str], allow_private: bool = False,
                 resolver: Callable[[str], Iterable[str]] | None = None) -> bool:
    """Whether a normalised link may be followed at all, whatever the scope says.

    A link to a private, loopback or link-local address is refused unless it stays on one
    of the seeds' hosts (so a crawl of a site on 127.0.0.1 works) or the config allows it.
    """
    if not link_scheme_ok(url):
        return False
    try:  # the addresses a browser reached come raw from its log, not normalised
        parts = urlsplit(url)
        if parts.netloc in seed_hosts or allow_private:
            return True
        return not is_private_host(parts.hostname or "", resolver)
    except ValueError:
        return False  # what cannot be read cannot be shown safe
