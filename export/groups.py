"""Which split a page belongs to: a function of its group, stable as the dataset grows.

A page's group joins everything a model could learn across the train/val boundary: its
registered domain, its duplicate group and its same-template group. Groups are unions of
sites: a duplicate or template group whose pages come from two sites links those sites.

The split of a group is a salted hash of its *key*, the lexicographically smallest site in
it. Adding pages therefore never moves an existing page, except when a new page links two
groups that were apart (a new cross-site duplicate or template): the merged group takes the
split of its smallest site and the pages of the other group move. (A release keeps the
split a page had when it was first released: see `splitplan`.)

A dataset of one or a few sites gives too few site groups for a split: finer levels of
grouping (`LEVELS`) keep near-copies together, and templates where they can.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

SPLITS = ("train", "val", "test")
# Ways to group pages, coarsest first; each joins duplicate groups, and those marked so
# join same-template groups too:
#   site       registered domain (the default: no site spans two splits)
#   template   the page itself, joined with its duplicate and same-template groups
#   section    host and first path segment (`/c3ref/...`), joined with duplicates only
#   duplicate  the page itself, joined with its duplicates only
LEVELS = ("site", "template", "section", "duplicate")
JOINS_TEMPLATES = {"site": True, "template": True, "section": False, "duplicate": False}


class PageLinks(NamedTuple):
    """What the split needs to know about one page (from the catalog). A named tuple, not
    a frozen dataclass: the selection makes one for every page, a million of them in a
    large catalog, at a sixth of the cost."""

    page_id: str
    site: str  # registered domain; empty: the page is a group of its own
    dup_group: str = ""
    template: str = ""
    url: str = ""  # address, for the section level (or given to it apart: `addresses`)


# PageLinks' fields in a plain tuple: how the selection reads a million of them.
LinkRow = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Assignment:
    split: str
    group: str  # the group key: smallest site of the group


def check_ratios(val_ratio: float, test_ratio: float) -> None:
    if not (0.0 <= val_ratio < 1.0 and 0.0 <= test_ratio < 1.0):
        raise ValueError(f"export ratios must lie in [0, 1) (val {val_ratio}, test {test_ratio})")
    if val_ratio + test_ratio >= 1.0:
        raise ValueError(
            f"val_ratio + test_ratio must stay below 1 (now {val_ratio + test_ratio}); "
            "lower one of them in [export]"
        )


def unit_hash(key: str, salt: str) -> float:
    """A uniform number in [0, 1) that depends only on (salt, key)."""
    digest = hashlib.sha256(f"{salt}\n{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of_key(key: str, salt: str, val_ratio: float, test_ratio: float = 0.0) -> str:
    """val below val_ratio, test in the next test_ratio, train above.

    Adding a test split later takes pages from train only: validation stays put.
    """
    u = unit_hash(key, salt)
    if u < val_ratio:
        return "val"
    if u < val_ratio + test_ratio:
        return "test"
    return "train"


def _site(page_id: str, site: str) -> str:
    # A page with no site must not join every other site-less page.
    return site or f"page:{page_id}"


def section_of(url: str) -> str:
    """'https://Docs.x.org/c3ref/open.html' -> 'docs.x.org/c3ref'; '' without a host."""
    parts = urlsplit(url)
    if not parts.netloc:
        return ""
    return f"{parts.netloc.lower()}/{parts.path.lstrip('/').split('/', 1)[0]}"


def _base(page_id: str, site: str, url: str, level: str,
          addresses: Mapping[str, str] | None) -> str:
    if level == "site":
        return _site(page_id, site)
    if level == "section":
        if addresses is not None:
            url = addresses.get(page_id, url)
        return section_of(url) or f"page:{page_id}"
    return f"page:{page_id}"


def group_keys(pages: Iterable[PageLinks | LinkRow], level: str = "site",
               addresses: Mapping[str, str] | None = None) -> dict[str, str]:
    """page_id -> group key: the smallest base key (site, section or page) of the page's
    connected group at that level (see LEVELS). addresses: page_id -> address, for the
    section level where the links carry none. Pages may be plain tuples in PageLinks'
    order (the selection's rows of a million pages are)."""
    if level not in LEVELS:
        raise ValueError(f"unknown grouping level {level!r} (known: {', '.join(LEVELS)})")
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            # The smaller name stays the root, so the root is always the group's key.
            lo, hi = sorted((ra, rb))
            parent[hi] = lo

    pages = list(pages)
    first_site: dict[str, str] = {}
    templates = JOINS_TEMPLATES[level]
    for page_id, site, dup_group, template, url in pages:
        base = _base(page_id, site, url, level, addresses)
        find(base)
        for link in (f"dup:{dup_group}" if dup_group else "",
                     f"tpl:{template}" if template and templates else ""):
            if link:
                if link in first_site:
                    union(first_site[link], base)
                else:
                    first_site[link] = base
    return {page_id: find(_base(page_id, site, url, level, addresses))
            for page_id, site, _, _, url in pages}


def assign_splits(
    pages: Iterable[PageLinks | LinkRow], salt: str, val_ratio: float, test_ratio: float = 0.0,
    level: str = "site", addresses: Mapping[str, str] | None = None,
) -> dict[str, Assignment]:
    """page_id -> (split, group key) for every page given, by the hash of its group alone
    (`splitplan` keeps the splits of pages released before)."""
    check_ratios(val_ratio, test_ratio)
    keys = group_keys(pages, level, addresses)
    splits = {key: split_of_key(key, salt, val_ratio, test_ratio) for key in set(keys.values())}
    return {pid: Assignment(splits[key], key) for pid, key in keys.items()}
