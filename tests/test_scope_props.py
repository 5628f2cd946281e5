"""Property tests of URL normalisation, crawl scope and the link safety rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from catalog.urls import TRACKING_PARAMS, BadURL, normalise_url
from scraper.scope import (
    SCOPES,
    Seed,
    in_scope,
    is_private_host,
    link_allowed,
)
from scraper.seeds import parse_seed_line

label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
hosts = st.lists(label, min_size=1, max_size=3).map(".".join).flatmap(
    lambda name: st.sampled_from([f"{name}.com", f"{name}.org", f"{name}.co.uk", f"{name}.io"]))
segment = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_~", min_size=1, max_size=8),
    st.sampled_from([".", "..", "%7Euser", "a%20b", "%2E%2E", "caf%C3%A9", "x.html"]),
)
paths = st.lists(segment, max_size=5).flatmap(
    lambda segs: st.booleans().map(lambda slash: "/" + "/".join(segs) + ("/" if slash and segs else "")))
keys = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)
values = st.text("abcdefghijklmnopqrstuvwxyz0123456789%+-", max_size=6)
queries = st.lists(st.tuples(keys, values), max_size=4)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(hosts)
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = draw(paths)
    q = draw(queries)
    query = "?" + "&".join(f"{k}={v}" for k, v in q) if q else ""
    frag = draw(st.sampled_from(["", "#top", "#a/b?c"]))
    return f"{scheme}://{host}{port}{path}{query}{frag}"


# -- normalisation ----------------------------------------------------------------------


@given(urls())
def test_normalisation_is_idempotent(url: str) -> None:
    once = normalise_url(url)
    assert normalise_url(once) == once


@given(urls())
def test_host_and_scheme_case_do_not_matter(url: str) -> None:
    scheme, rest = url.split("://", 1)
    host, sep, tail = rest.partition("/")
    assert normalise_url(f"{scheme.upper()}://{host.upper()}{sep}{tail}") == normalise_url(url)


@given(hosts, paths)
def test_default_ports_are_dropped(host: str, path: str) -> None:
    assert normalise_url(f"http://{host}:80{path}") == normalise_url(f"http://{host}{path}")
    assert normalise_url(f"https://{host}:443{path}") == normalise_url(f"https://{host}{path}")
    assert ":8080" in normalise_url(f"http://{host}:8080{path}")


@given(urls(), st.text("abcdefghijklmnopqrstuvwxyz/?#=&", max_size=10))
def test_fragment_never_survives(url: str, frag: str) -> None:
    base = url.split("#", 1)[0]
    assert normalise_url(f"{base}#{frag}") == normalise_url(base)
    assert "#" not in normalise_url(url)


@given(hosts, queries, st.randoms(use_true_random=False))
def test_query_order_does_not_matter(host: str, q: list[tuple[str, str]], rnd: random.Random) -> None:
    shuffled = list(q)
    rnd.shuffle(shuffled)
    a = "&".join(f"{k}={v}" for k, v in q)
    b = "&".join(f"{k}={v}" for k, v in shuffled)
    assert normalise_url(f"http://{host}/p?{a}") == normalise_url(f"http://{host}/p?{b}")


@given(urls(), st.sampled_from(sorted(TRACKING_PARAMS)), values)
def test_tracking_parameters_are_dropped(url: str, param: str, value: str) -> None:
    base = url.split("#", 1)[0]
    tagged = f"{base}{'&' if '?' in base else '?'}{param}={value}"
    assert normalise_url(tagged) == normalise_url(base)


@given(hosts, st.lists(label, min_size=1, max_size=4), label)
def test_dot_segments_resolve(host: str, segs: list[str], extra: str) -> None:
    direct = "/" + "/".join(segs)
    detour = "/" + "/".join(segs[:-1] + [".", extra, "..", segs[-1]])
    assert normalise_url(f"http://{host}{detour}") == normalise_url(f"http://{host}{direct}")


@pytest.mark.parametrize("bad", ["mailto:a@b.c", "javascript:void(0)", "data:text/html,x",
                                 "file:///etc/passwd", "ftp://h/x", "", "http://"])
def test_uncrawlable_urls_are_refused(bad: str) -> None:
    with pytest.raises(BadURL):
        normalise_url(bad)


# -- scope ------------------------------------------------------------------------------


@given(urls(), st.sampled_from(SCOPES))
def test_a_seed_is_in_its_own_scope(url: str, scope: str) -> None:
    seed = Seed(url, scope)
    assert seed.in_scope(seed.url)


@given(urls(), urls())
def test_scopes_nest_page_prefix_host_domain(seed_url: str, other: str) -> None:
    seed, url = normalise_url(seed_url), normalise_url(other)
    verdicts = [in_scope(seed, s, url) for s in ("page", "prefix", "host", "domain")]
    # Each scope keeps everything the narrower one keeps.
    for narrow, wide in zip(verdicts, verdicts[1:], strict=False):
        assert not narrow or wide


plain = st.text("abcdefghij0123456789-_", min_size=1, max_size=8)  # segments kept as they are


@given(hosts, st.lists(plain, max_size=3), plain, plain)
def test_prefix_keeps_the_seed_directory_and_nothing_above(
    host: str, dirs: list[str], name: str, other: str
) -> None:
    # The expected answers are built from the parts, not from prefix_of.
    origin = f"https://{host}"
    directory = origin + "/" + "".join(f"{d}/" for d in dirs)
    seed = normalise_url(directory + name + ".html")
    kept = [directory + other, directory + other + "/deeper/page.html", directory]
    left = [f"https://elsewhere.{host}/" + "".join(f"{d}/" for d in dirs) + other]
    if dirs:
        parent = origin + "/" + "".join(f"{d}/" for d in dirs[:-1])
        left += [
            parent + "lone-" + other,  # beside the seed's directory ('l' is not in `plain`)
            directory.rstrip("/") + "x/" + other,  # a sibling that shares its first letters
            directory.rstrip("/"),  # the directory's name without its slash
        ]
    for url in kept:
        assert in_scope(seed, "prefix", normalise_url(url)), url
    for url in left:
        assert not in_scope(seed, "prefix", normalise_url(url)), url


@given(urls(), urls())
def test_host_scope_never_leaves_the_host(seed_url: str, other: str) -> None:
    seed, url = normalise_url(seed_url), normalise_url(other)
    assert in_scope(seed, "host", url) == (seed.split("/")[2] == url.split("/")[2])


@given(label, label, label, st.sampled_from(["com", "org", "co.uk"]))
def test_domain_scope_is_the_registered_domain(a: str, b: str, name: str, suffix: str) -> None:
    name = f"qqz{name}"  # short names can be private suffixes themselves (sa.com is one)
    seed = normalise_url(f"https://{a}.{name}.{suffix}/")
    assert in_scope(seed, "domain", normalise_url(f"http://{b}.{name}.{suffix}/x"))
    assert in_scope(seed, "domain", normalise_url(f"http://{name}.{suffix}/"))
    assert not in_scope(seed, "domain", normalise_url(f"http://{name}x.{suffix}/"))


def test_public_suffixes_are_not_one_site() -> None:
    seed = normalise_url("https://alice.github.io/")
    assert not in_scope(seed, "domain", normalise_url("https://bob.github.io/"))


@given(urls(), urls(), st.sampled_from(SCOPES))
def test_exclude_wins_and_include_replaces_the_rule(seed_url: str, other: str, scope: str) -> None:
    url = normalise_url(other)
    assume(url != normalise_url(seed_url))
    assert not Seed(seed_url, scope, exclude=(".",)).in_scope(url)
    assert Seed(seed_url, scope, include=("^https?://",)).in_scope(url)
    assert not Seed(seed_url, scope, include=("^https?://",), exclude=("^h",)).in_scope(url)


def test_bad_regex_and_scope_are_named() -> None:
    with pytest.raises(ValueError, match="regex"):
        Seed("http://a.com/", include=("(",))
    with pytest.raises(ValueError, match="scope 'site'"):
        Seed("http://a.com/", scope="site")


def test_seed_lines() -> None:
    assert parse_seed_line("  # a comment", "prefix") is None
    seed = parse_seed_line("https://A.com/docs/#intro host  # main docs", "prefix")
    assert seed is not None and (seed.url, seed.scope) == ("https://a.com/docs/", "host")
    with pytest.raises(ValueError, match="not a crawlable URL"):
        parse_seed_line("ftp://a.com/", "prefix")


# -- link safety --------------------------------------------------------------------------

NON_HTTP = ["javascript:alert(1)", "mailto:x@a.com", "data:text/html,<p>", "file:///etc/hosts",
            "JavaScript:void(0)", "tel:123"]


@given(st.sampled_from(NON_HTTP), st.booleans())
def test_non_http_links_are_never_followed(link: str, allow_private: bool) -> None:
    assert not link_allowed(link, frozenset({"a.com"}), allow_private)


PRIVATE = ["10.1.2.3", "192.168.0.1", "172.16.5.4", "127.0.0.1", "127.8.8.8", "169.254.169.254",
           "[::1]", "[fe80::1]", "[fd00::1]", "localhost", "0.0.0.0", "[::ffff:10.0.0.1]"]


@settings(max_examples=50)
@given(st.sampled_from(PRIVATE), paths)
def test_links_to_private_addresses_are_refused(host: str, path: str) -> None:
    url = f"http://{host}{path}"
    assert not link_allowed(url, frozenset({"example.com"}))
    assert link_allowed(url, frozenset({"example.com"}), allow_private=True)


def test_seed_hosts_on_loopback_are_allowed() -> None:
    seeds = frozenset({"127.0.0.1:8123"})
    assert link_allowed("http://127.0.0.1:8123/a.html", seeds)
    assert not link_allowed("http://127.0.0.1:9999/a.html", seeds)  # another server
    assert link_allowed("https://example.com/", seeds)


def test_host_names_resolving_to_private_addresses_are_refused() -> None:
    def resolver(host: str) -> list[str]:
        return {"intranet.example.com": ["10.0.0.7"], "www.example.com": ["93.184.216.34"]}[host]

    seeds = frozenset({"example.com"})
    assert is_private_host("intranet.example.com", resolver)
    assert not link_allowed("http://intranet.example.com/", seeds, resolver=resolver)
    assert link_allowed("http://www.example.com/", seeds, resolver=resolver)
