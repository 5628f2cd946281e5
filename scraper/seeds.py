"""Seeds as people write them: read every line, keep the good ones, and say of each bad
one where it is, what is wrong and the likely fix.

Pure functions: the command line gathers the lines (a seeds file, arguments, the config)
and decides whether bad lines are skipped or refuse the crawl (`--strict`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from catalog.urls import BadURL, normalise_url

from .scope import SCOPES, Seed

CAPTURED_SCHEMES = ("http", "https")
# Schemes a person may paste that name something no browser capture can crawl.
OTHER_SCHEMES = ("ftp", "ftps", "sftp", "file", "ws", "wss", "mailto", "javascript", "data",
                 "about", "chrome", "view-source", "tel")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)(:?)(/*)(.*)$", re.S)
_BARE_HOST = re.compile(r"^[\w.-]+(:\d+)?$")
# A second word that continues a path or a query rather than naming a scope.
_URL_PIECE = re.compile(r"[/.?=&%]")


@dataclass(frozen=True)
class SeedLine:
    """One seed as written, and where: 'seeds.txt:3', 'argument 2', '[crawl] seeds entry 1'."""

    text: str
    where: str


@dataclass(frozen=True)
class BadSeed:
    where: str
    text: str
    problem: str  # what is wrong, then the likely fix

    def __str__(self) -> str:
        return f"{self.where}: {self.text.strip()!r}: {self.problem}"


class SeedError(ValueError):
    """A seed line that cannot be crawled; the message says what to change."""


def _private_looking(host: str) -> bool:
    name = host.split(":", 1)[0].lower()
    return name == "localhost" or name.startswith(("127.", "10.", "192.168.")) or name == "[::1]"


def url_problem(url: str) -> str:
    """What is wrong with a seed URL and its likely fix; "" when it can be crawled."""
    text = url.strip()
    if text[:1] in "\"'<" and len(text) > 1:
        inner = text.strip("\"'<>")
        return f"quotes or brackets around the URL; write {inner}"
    if "\\" in text:
        return f"backslashes in the URL; URLs use '/': {text.replace(chr(92), '/')}"
    if text.startswith("/"):
        return ("a path, not a URL; give the full address (http://host/path), or crawl a local "
                "folder with --serve DIR, where '/path' seeds are relative to it")
    if "://" not in text:
        host = text.split("/", 1)[0]
        if _BARE_HOST.match(host) and ("." in host or host.split(":")[0].lower() == "localhost"):
            scheme = "http" if _private_looking(host) else "https"
            return f"no scheme; did you mean {scheme}://{text}"
    m = _SCHEME.match(text)
    if m:
        scheme, colon, slashes, rest = m.groups()
        low = scheme.lower()
        fixed = f"{low}://{rest}"
        if low in CAPTURED_SCHEMES:
            if rest.lower().startswith(("http:", "https:")):
                return f"the scheme is written twice; write {rest}"
            if not colon and slashes:
                return f"missing ':' after {low}; write {fixed}"
            if not colon:
                return f"missing '://' after {low}; write {fixed}"
            if len(slashes) == 0:
                return f"missing '//' after {low}:; write {fixed}"
            if len(slashes) == 1:
                return f"missing a '/' after {low}:; write {fixed}"
            if len(slashes) > 2:
                return f"{len(slashes)} slashes after {low}:, two are meant; write {fixed}"
        elif colon and low in OTHER_SCHEMES:
            hint = " (crawl a local folder with --serve DIR)" if low == "file" else ""
            return f"unsupported scheme {low}:, only http and https pages can be captured{hint}"
        elif colon and slashes:
            near = difflib.get_close_matches(low, CAPTURED_SCHEMES, n=1, cutoff=0.6)
            if near:
                return f"unknown scheme {low}:; did you mean {near[0]}://{rest}"
            return f"unsupported scheme {low}:, only http and https pages can be captured"
    try:
        normalise_url(text)
    except BadURL as exc:
        return str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
    return ""


def _words(line: str) -> list[str]:
    """The words before a comment: a word starting with '#' starts one (a '#' inside a URL
    is its fragment)."""
    words = []
    for word in line.split():
        if word.startswith("#"):
            break
        words.append(word)
    return words


def _extra_words_problem(words: list[str]) -> str:
    """A line of more words than 'URL [SCOPE]', or whose second word is no scope."""
    url, rest = words[0], words[1:]
    if any("://" in w for w in rest):
        return "two URLs on one line; put one seed on each line"
    scope = rest[-1] if rest[-1] in SCOPES else ""
    pieces = rest[:-1] if scope else rest
    if len(words) == 2 and not _URL_PIECE.search(pieces[0]):
        near = difflib.get_close_matches(pieces[0], SCOPES, n=1, cutoff=0.6)
        also = f"; did you mean {near[0]}" if near else ""
        return f"scope {pieces[0]!r} must be one of {', '.join(SCOPES)}{also}"
    joined = "%20".join([url, *pieces]) + (f" {scope}" if scope else "")
    return f"a space inside the URL; write it as %20: {joined}"


def parse_seed_line(line: str, default_scope: str, include: Iterable[str] = (),
                    exclude: Iterable[str] = ()) -> Seed | None:
    """'URL' or 'URL SCOPE' (a seeds file line or a config entry); None for a blank line or
    a comment. Raises SeedError naming what to change."""
    words = _words(line)
    if not words:
        return None
    if len(words) > 2 or (len(words) == 2 and words[1] not in SCOPES):
        raise SeedError(_extra_words_problem(words))
    problem = url_problem(words[0])
    if problem:
        raise SeedError(f"not a crawlable URL: {problem}")
    scope = words[1] if len(words) == 2 else default_scope
    try:
        return Seed(words[0], scope, tuple(include), tuple(exclude))
    except BadURL as exc:  # a bad --include or --exclude regex is no line's fault: raised
        raise SeedError(f"not a crawlable URL: {exc}") from None


def read_seeds(lines: Iterable[SeedLine], default_scope: str, include: Iterable[str] = (),
               exclude: Iterable[str] = (), served: str = "") -> tuple[list[Seed], list[BadSeed]]:
    """Every line read: the seeds (in order, each URL once) and every bad line with its fix.

    `served`: the URL of a folder the crawl serves; '/path' lines are relative to it.
    """
    include, exclude = tuple(include), tuple(exclude)
    seeds: dict[str, Seed] = {}  # by URL: the crawl keeps one scope a URL, the first given
    bad: list[BadSeed] = []
    for line in lines:
        text = line.text.strip()
        if served and text.startswith("/"):
            text = served.rstrip("/") + text
        try:
            seed = parse_seed_line(text, default_scope, include, exclude)
        except SeedError as exc:
            bad.append(BadSeed(line.where, line.text, str(exc)))
            continue
        if seed is not None:
            seeds.setdefault(seed.url, seed)
    return list(seeds.values()), bad
