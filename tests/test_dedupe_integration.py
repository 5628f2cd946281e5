"""Dedupe on real captured pages: Kreuzer corpus pages, an exact copy and a near copy.

Captured with the scraper's command in real headless Chromium, then grouped with
`python -m dedupe run`; a second capture and run prove that only the new page is hashed
and that it is matched against the pages already indexed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from catalog import Catalog, Workspace

from .conftest import serve_directory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.corpus]
ROOT = Path(__file__).resolve().parent.parent
PAGES = ("www.w3.org/www.w3.org", "www.gnu.org/www.gnu.org", "www.noaa.gov/www.noaa.gov",
         "www.who.int/www.who.int")
BANNER = ('<div style="position:fixed;left:0;right:0;bottom:0;background:#222;color:#fff;'
          'padding:14px;font:15px sans-serif">We use cookies to improve your experience. '
          '<button>Accept</button></div>')


def _copy(site: Path, kreuzer_rel: str, name: str, edit: str = "") -> str:
    """A copy of a corpus page served from elsewhere; its assets load from the original."""
    html = (site / "k" / kreuzer_rel / "index.html").read_text(encoding="utf-8", errors="replace")
    html = re.sub(r"(<head\b[^>]*>)", rf'\1<base href="/k/{kreuzer_rel}/">', html, count=1,
                  flags=re.I)
    if edit == "banner":
        html = re.sub(r"(</body\s*>)", BANNER + r"\1", html, count=1, flags=re.I)
    (site / name).write_text(html, encoding="utf-8")
    return f"/{name}"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_real_pages_group_with_their_copies_and_runs_are_incremental(
    kreuzer_dir: Path, chromium: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    os.symlink(kreuzer_dir, site / "k")
    server, base = serve_directory(site)
    ws = Workspace(tmp_path / "ws")
    try:
        paths = {
            "w3": f"/k/{PAGES[0]}/index.html",
            "gnu": f"/k/{PAGES[1]}/index.html",
            "noaa": f"/k/{PAGES[2]}/index.html",
            "w3_copy": _copy(site, PAGES[0], "w3-copy.html"),
            "w3_banner": _copy(site, PAGES[0], "w3-banner.html", edit="banner"),
        }
        urls = {k: base + v for k, v in paths.items()}
        cap = _run("scraper", "capture", *urls.values(), "--workspace", str(ws.root),
                   "--offline", "--max-height", "6000")
        assert cap.returncode == 0, cap.stderr
        with Catalog(ws.catalog_path) as cat:
            ids = {k: cat.execute("SELECT page_id FROM pages WHERE url=? AND status='ok'",
                                  (u,)).fetchone()[0] for k, u in urls.items()}

        first = _run("dedupe", "run", "--workspace", str(ws.root))
        assert first.returncode == 0, first.stderr
        assert "5 hashed, 0 skipped" in first.stdout
        groups = json.loads(_run("dedupe", "groups", "--json", "--workspace",
                                 str(ws.root)).stdout)
        assert [sorted(g) for g in groups] == [
            sorted([ids["w3"], ids["w3_copy"], ids["w3_banner"]])
        ]
        with Catalog(ws.catalog_path) as cat:
            rows = {r["page_id"]: r for r in cat.execute("SELECT * FROM dup_groups")}
            assert set(rows) == set(ids.values())
            assert sum(r["canonical"] for r in rows.values()) == 3
            algos = {r[0] for r in cat.execute("SELECT DISTINCT algo FROM dedupe_hashes")}
            assert len(algos) == 1 and "imagehash-" in algos.pop()
        sheet = ws.root / "dedupe" / "groups.png"
        assert sheet.stat().st_size > 10_000

        # A near copy of another indexed page arrives: only it is hashed, and it is matched
        # against the existing index into that page's group.
        gnu_banner = base + _copy(site, PAGES[1], "gnu-banner.html", edit="banner")
        cap = _run("scraper", "capture", gnu_banner, "--workspace", str(ws.root), "--offline",
                   "--max-height", "6000")
        assert cap.returncode == 0, cap.stderr
        second = _run("dedupe", "run", "--workspace", str(ws.root))
        assert second.returncode == 0, second.stderr
        assert "1 hashed" in second.stdout and "1 matched against the index" in second.stdout
        groups = json.loads(_run("dedupe", "groups", "--json", "--workspace",
                                 str(ws.root)).stdout)
        assert len(groups) == 2
        assert any(ids["gnu"] in g and len(g) == 2 for g in groups)
    finally:
        server.shutdown()
