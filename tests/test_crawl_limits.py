"""Depth and per-site limits, seeds from a file with their own scope, browser recycling."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from catalog import Catalog
from scraper.orphans import BROWSERS_FILE
from scraper.serve import StaticServer

from .test_crawl_site import TEST_CONFIG, html, run_crawl


def chain_site(folder: Path, n: int) -> None:
    """index -> p00 -> p01 -> ...: each page one link deeper."""
    folder.mkdir()
    names = [f"p{i:02d}.html" for i in range(n)]
    (folder / "index.html").write_bytes(html("index", names[0]))
    for i, name in enumerate(names):
        (folder / name).write_bytes(html(name, *names[i + 1:i + 2]))


def fan_site(folder: Path, n: int) -> None:
    """index linking n pages directly, plus a page outside the seed's folder."""
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "index.html").write_bytes(
        html("index", *[f"f{i}.html" for i in range(n)], "../outside.html"))
    for i in range(n):
        (folder / "docs" / f"f{i}.html").write_bytes(html(f"f{i}", "index.html"))
    (folder / "outside.html").write_bytes(html("outside"))


@pytest.mark.browser
@pytest.mark.slow
def test_depth_site_limits_seed_scopes_and_recycling(chromium: str, tmp_path: Path) -> None:
    chain_site(tmp_path / "chain", 6)
    fan_site(tmp_path / "fan", 8)
    with StaticServer(tmp_path / "chain") as chain, StaticServer(tmp_path / "fan") as fan:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(
            "# two sites\n"
            f"{chain.url}index.html   host\n"
            f"{fan.url}docs/index.html   # prefix scope, from the config\n")
        ws = tmp_path / "ws"
        proc = run_crawl(ws, "--seeds", str(seeds), "--max-depth", "2", "--max-pages-per-site", "4",
                         config=TEST_CONFIG.replace("[crawl]\n", "[crawl]\nrecycle_after = 2\n"))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with Catalog(ws / "catalog.sqlite") as catalog:
            rows = catalog.pages()
        per_site = Counter(r["site"] for r in rows)
        chain_pages = sorted(r["final_url"].removeprefix(chain.url) for r in rows
                             if r["final_url"].startswith(chain.url))
        fan_pages = [r["final_url"].removeprefix(fan.url) for r in rows
                     if r["final_url"].startswith(fan.url)]
    # Depth 2 from the seed: index, p00, p01 and no deeper.
    assert chain_pages == ["index.html", "p00.html", "p01.html"]
    # Four pages of the fan site, all inside the seed's folder.
    assert len(fan_pages) == 4 and all(p.startswith("docs/") for p in fan_pages)
    assert per_site[f"127.0.0.1:{fan.port}"] == 4
    assert all(r["status"] == "ok" for r in rows)
    # recycle_after = 2: seven pages took at least four browsers.
    starts = (ws / BROWSERS_FILE).read_text().splitlines() if (ws / BROWSERS_FILE).exists() else []
    assert len(starts) >= 4


def test_bad_seeds_are_one_clear_error(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://127.0.0.1:1/ somewhere\n")
    proc = run_crawl(tmp_path / "ws", "--seeds", str(seeds), timeout=60)
    assert proc.returncode == 2
    first, last = proc.stderr.strip().splitlines()
    assert first.startswith(f"{seeds}:1: 'http://127.0.0.1:1/ somewhere': scope 'somewhere'")
    assert last == "error: 1 malformed seed(s) (listed above) and no other seed; nothing crawled"
    missing = run_crawl(tmp_path / "ws", "--seeds", str(tmp_path / "nope.txt"), timeout=60)
    assert missing.returncode == 2 and "nope.txt does not exist" in missing.stderr


@pytest.mark.browser
@pytest.mark.slow
def test_crawl_delay_spaces_requests_to_a_host(chromium: str, tmp_path: Path) -> None:
    from .test_crawl_site import TrapSite

    site = TrapSite()
    try:
        site.routes["/robots.txt"] = lambda n: (200, {"Content-Type": "text/plain"},
                                                 b"User-agent: *\nCrawl-delay: 2\n")
        site.page("/", "p1.html", "p2.html", "p3.html")
        for name in ("p1.html", "p2.html", "p3.html"):
            site.page(f"/{name}")
        proc = run_crawl(tmp_path / "ws", site.url + "/", "--browsers", "2")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        starts = sorted(t for t, _, path, _ in site.log if path.endswith(("/", ".html")))
    finally:
        site.httpd.shutdown()
    assert len(starts) == 4, site.log
    # Two browsers, one host: its Crawl-delay still spaces the requests by two seconds
    # (measured where the server sees them, give or take the browser's own latency).
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(g >= 1.8 for g in gaps), gaps
