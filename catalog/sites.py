"""Which site a URL belongs to: its registered domain, from the bundled suffix list."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract

# suffix_list_urls=() keeps tldextract on the snapshot it ships: no network at run time.
# Private suffixes count (github.io, blogspot.com): each user site there is a site of its own.
_EXTRACT = tldextract.TLDExtract(
    suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
)


@lru_cache(maxsize=65536)
def registered_domain(host: str) -> str:
    """'docs.python.org' -> 'python.org'; IP addresses and 'localhost' are their own site."""
    host = host.lower().strip("[]").rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    ext = _EXTRACT(host)
    if ext.domain and ext.suffix:
        return f"{ext.domain}.{ext.suffix}"
    return host


def site_of(url: str) -> str:
    """The registered domain of a URL's host (with the port for loopback servers)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    site = registered_domain(host)
    if parts.port and site in ("127.0.0.1", "localhost", "::1"):
        site = f"{site}:{parts.port}"
    return site
