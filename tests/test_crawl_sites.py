"""Several local folders crawled together as named sites (`[crawl] sites`): each is its own
site, by its name rather than its port, so its pages keep one identity across crawls."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from catalog import Catalog
from scraper.serve import StaticServer, parse_site

from .test_crawl_resume import make_site
from .test_crawl_site import TEST_CONFIG, run_crawl


def test_a_named_site_is_served_under_its_name_on_loopback(tmp_path):
    (tmp_path / "index.html").write_text("<title>x</title>")
    with StaticServer(tmp_path, name="python-docs") as server:
        assert server.url == f"http://python-docs.localhost:{server.port}/"
        assert server.httpd.server_address[0] == "127.0.0.1"
    assert parse_site("git-doc=/usr/share/doc/git-doc") == ("git-doc", "/usr/share/doc/git-doc")
    for bad in ("no-folder", "=/tmp", "bad name=/tmp", "a_b=/tmp"):
        with pytest.raises(ValueError, match="NAME=FOLDER"):
            parse_site(bad)


@pytest.mark.browser
@pytest.mark.slow
def test_named_sites_are_crawled_as_sites_of_their_own_across_port_changes(tmp_path: Path):
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    make_site(alpha, n=4)
    make_site(beta, n=4)
    config = TEST_CONFIG.replace(
        "[crawl]\n", f'[crawl]\nsites = ["alpha-docs={alpha}", "beta-docs={beta}"]\n')
    ws = tmp_path / "ws"
    first = run_crawl(ws, "--max-pages", "6", config=config)
    assert first.returncode == 0, first.stderr
    with Catalog(ws / "catalog.sqlite") as catalog:
        rows = [dict(r) for r in catalog.pages()]
        ports = {k: int(catalog.meta(k)) for k in
                 (f"serve_port:{alpha.resolve()}", f"serve_port:{beta.resolve()}")}
    assert {r["site"] for r in rows} == {"alpha-docs.localhost", "beta-docs.localhost"}
    # The next crawl finds both old ports taken: the sites stay, no page is captured twice.
    holders = []
    for port in ports.values():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        s.bind(("127.0.0.1", port))
        s.listen()
        holders.append(s)
    try:
        second = run_crawl(ws, "--max-pages", "50", config=config)
    finally:
        for s in holders:
            s.close()
    assert second.returncode == 0, second.stderr
    with Catalog(ws / "catalog.sqlite") as catalog:
        rows = [dict(r) for r in catalog.pages()]
    assert {r["site"] for r in rows} == {"alpha-docs.localhost", "beta-docs.localhost"}
    paths = [(r["site"], r["url"].split("/", 3)[3]) for r in rows if r["status"] == "ok"]
    assert len(paths) == len(set(paths)) == 10  # 5 pages a site, each once
