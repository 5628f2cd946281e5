"""Catalog pieces: URL normalisation, page ids, atomic page directories, the SQLite file."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import (
    BadURL,
    Catalog,
    PageRecord,
    Workspace,
    normalise_url,
    page_id,
    write_bytes_atomic,
    write_json_atomic,
)
from catalog.config import ConfigError, load_config, resolve_viewport
from catalog.db import CatalogError


def test_normalise_folds_what_does_not_change_the_page():
    assert normalise_url("HTTP://Example.COM:80/a/./b/../c?z=1&a=2&utm_source=x#top") == (
        "http://example.com/a/c?a=2&z=1"
    )
    assert normalise_url("https://example.com") == "https://example.com/"
    assert normalise_url("https://example.com:8443/") == "https://example.com:8443/"


@pytest.mark.parametrize(
    "bad", ["", "example.com", "ftp://x.org/", "javascript:alert(1)", "http://", "http://a b/"]
)
def test_malformed_urls_are_refused_with_their_name(bad):
    with pytest.raises(BadURL) as err:
        normalise_url(bad)
    assert repr(bad.strip()) in str(err.value) or "empty" in str(err.value)


_segments = st.lists(st.text(alphabet="abcxyz09-_.", min_size=1, max_size=6), max_size=4)
_query = st.dictionaries(
    st.text(alphabet="abcq", min_size=1, max_size=3), st.text(alphabet="xyz1", max_size=3)
)


@given(_segments, _query)
def test_normalisation_is_idempotent_and_order_free(segments, query):
    path = "/" + "/".join(segments)
    items = list(query.items())
    a = "http://Example.org" + path + "?" + "&".join(f"{k}={v}" for k, v in items)
    b = "http://example.org" + path + "?" + "&".join(f"{k}={v}" for k, v in reversed(items))
    na = normalise_url(a)
    assert normalise_url(na) == na
    assert na == normalise_url(b)


def test_page_id_is_stable_per_url_and_viewport():
    a = page_id("http://example.com/x?b=1&a=2", (1280, 800))
    assert a == page_id("http://EXAMPLE.com/x?a=2&b=1#frag", (1280, 800))
    assert a != page_id("http://example.com/x?b=1&a=2", (390, 844))
    assert a != page_id("http://example.com/x?b=1&a=2", (1280, 800), dpr=2)
    assert len(a) == 16


def test_a_failed_page_write_leaves_nothing(tmp_path):
    ws = Workspace(tmp_path).ensure()
    with pytest.raises(RuntimeError), ws.new_page_dir("p1") as d:
        (d / "screenshot.png").write_bytes(b"half")
        raise RuntimeError("killed")
    assert ws.page_ids() == []
    assert list(ws.pages_dir.iterdir()) == []


def test_a_page_dir_appears_whole_and_replaces_the_old_one(tmp_path):
    ws = Workspace(tmp_path).ensure()
    for content in (b"one", b"two"):
        with ws.new_page_dir("p1") as d:
            (d / "page.json").write_bytes(content)
    assert ws.page_ids() == ["p1"]
    assert ws.page_json("p1").read_bytes() == b"two"
    (ws.pages_dir / ".tmp-p2-xyz").mkdir()
    assert ws.page_ids() == ["p1"]
    assert ws.clean_partial() == 1


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=["022", "002", "077"])
def test_atomic_outputs_get_the_mode_the_umask_gives(tmp_path, mask):
    """Files and page folders written atomically are readable as the user's umask says, not
    private to their owner as the temporary file they started as."""
    old = os.umask(mask)
    try:
        write_bytes_atomic(tmp_path / "dedupe" / "groups.png", b"png")
        write_json_atomic(tmp_path / "page.json", {"a": 1})
        ws = Workspace(tmp_path / "ws")
        with ws.new_page_dir("p1") as d:
            (d / "page.json").write_bytes(b"{}")
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "dedupe" / "groups.png").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "page.json").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask  # what open() gives
    assert stat.S_IMODE(ws.page_dir("p1").stat().st_mode) == 0o777 & ~mask


def test_catalog_transaction_rolls_back(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    rec = PageRecord("p1", "http://a/", "http://a/", "ok", [1280, 800], 1.0, 1280, 900)
    with pytest.raises(RuntimeError), cat.transaction() as conn:
        cat.record_page(rec, conn=conn)
        raise RuntimeError
    assert cat.pages() == []
    with cat.transaction() as conn:
        cat.record_page(rec, site="a", conn=conn)
    assert [r["page_id"] for r in cat.pages("ok")] == ["p1"]


def test_a_corrupt_catalog_names_the_file(tmp_path):
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(CatalogError, match="catalog.sqlite .*move it away"):
        Catalog(path)


def test_config_rejects_unknown_keys_and_bad_types(tmp_path):
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text("[crawl]\nmax_pagez = 3\n")
    with pytest.raises(ConfigError, match="max_pagez"):
        load_config(cfg)
    cfg.write_text("[crawl]\nmax_pages = 'many'\n")
    with pytest.raises(ConfigError, match="max_pages"):
        load_config(cfg)
    cfg.write_text("[crawl]\nmax_pages = 7\n")
    assert load_config(cfg).crawl.max_pages == 7


def test_viewport_presets():
    assert resolve_viewport("phone") == (390, 844, 3.0)
    assert resolve_viewport("1280x800") == (1280, 800, 1.0)
    with pytest.raises(ConfigError, match="12x"):
        resolve_viewport("12x")
