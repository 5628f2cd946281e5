"""Boxes line up with the screenshot on real pages: the Kreuzer corpus and the sqlite site."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from catalog import Workspace
from scraper.alignment import Alignment, page_alignment
from tests.conftest import serve_directory

pytestmark = [pytest.mark.browser, pytest.mark.corpus, pytest.mark.slow]

SQLITE_PAGES = [
    "index.html", "about.html", "lang_select.html", "lang_expr.html", "fileformat2.html",
    "c3ref/funclist.html", "datatype3.html", "pragma.html", "lang_createtable.html",
    "whentouse.html", "testing.html", "howtocorrupt.html", "queryplanner.html", "wal.html",
    "json1.html", "fts5.html", "limits.html", "optoverview.html", "cli.html", "changes.html",
]


def kreuzer_urls(root, base):
    text = (root / "mapping.txt").read_text(encoding="utf-8")
    return [f"{base}/{path}" for path in re.findall(r'"/opt/dataset-popular/(.*?)"', text)]


@pytest.fixture(scope="module")
def captured(kreuzer_dir, sqlite_doc_dir, chromium, tmp_path_factory):
    """Every Kreuzer page and 20 sqlite pages, captured once through the CLI."""
    ws = Workspace(tmp_path_factory.mktemp("corpus") / "ws")
    k_server, k_url = serve_directory(kreuzer_dir)
    s_server, s_url = serve_directory(sqlite_doc_dir)
    urls = kreuzer_urls(kreuzer_dir, k_url) + [f"{s_url}/{p}" for p in SQLITE_PAGES]
    try:
        res = subprocess.run(
            [sys.executable, "-m", "scraper", "capture", *urls, "--workspace", str(ws.root),
             "--offline", "--timeout", "20"],
            capture_output=True, text=True, timeout=900,
        )
    finally:
        k_server.shutdown()
        s_server.shutdown()
    assert res.returncode == 0, res.stderr[-2000:]
    return ws, len(urls)


def test_text_boxes_have_ink_under_them_and_every_box_is_inside_the_image(captured):
    ws, n = captured
    pages = [p for p in ws.page_ids() if ws.screenshot(p).is_file()]
    assert len(pages) >= n - 2  # one Kreuzer entry is a saved 404
    total = Alignment()
    for page in pages:
        total = total + page_alignment(ws.page_dir(page))
    assert total.text_boxes > 10_000
    assert total.outside == 0
    assert total.score >= 0.97, f"only {total.score:.3f} of {total.text_boxes} text boxes have ink"


def test_kreuzer_pages_are_1280_wide_and_complete(captured):
    ws, _ = captured
    import json

    widths = {json.loads(ws.page_json(p).read_text())["width"] for p in ws.page_ids()
              if ws.screenshot(p).is_file()}
    assert widths == {1280}
