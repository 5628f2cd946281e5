"""The browser pool against real Chromium: every page handed out comes back exactly once.

The pool grabs a page with the browser and writes it on a finisher thread while the
browser loads the next; these tests hold it to its one promise to the engine: one outcome
for every page it started, and the pages it did not start given back on request.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog import Workspace
from catalog.config import CaptureConfig
from catalog.sites import site_of
from scraper.browser import BrowserOptions
from scraper.frontier import Entry
from scraper.politeness import Politeness
from scraper.pool import Job, Outcome, Pool
from scraper.serve import StaticServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DESKTOP = (1280, 800, 1.0)


def make_site(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"p{i}.html").write_text(
            f"<!doctype html><title>Page {i}</title><h1>Page {i}</h1>"
            + "<p>Lorem ipsum dolor sit amet.</p>" * (20 + 10 * i), encoding="utf-8")
    return [f"p{i}.html" for i in range(n)]


def pool_for(ws: Workspace) -> Pool:
    return Pool(1, ws=ws, capture_cfg=CaptureConfig(), browser_opts=BrowserOptions(offline=True),
                robots=None, politeness=Politeness(0.0, 1), recycle_after=0, crawl_id="test")


def job(url: str) -> Job:
    return Job(Entry(url, "desktop", 0, url, "127.0.0.1", site_of(url)), DESKTOP)


def outcomes(pool: Pool, n: int, timeout: float = 120) -> list[Outcome]:
    got = []
    while len(got) < n:
        out = pool.next_outcome(timeout)
        assert out is not None, f"only {len(got)} of {n} outcomes came back"
        got.append(out)
    return got


def test_pages_grabbed_back_to_back_are_each_written_whole(chromium: str, tmp_path: Path) -> None:
    names = make_site(tmp_path / "site", 5)
    ws = Workspace(tmp_path / "ws").ensure()
    with StaticServer(tmp_path / "site") as server:
        pool = pool_for(ws)
        pool.start()
        try:
            for name in names:
                pool.submit(job(server.url + name))
            got = outcomes(pool, len(names))
        finally:
            pool.close()
    assert [o.kind for o in got] == ["captured"] * len(names)
    assert sorted(o.job.entry.url for o in got) == sorted(server.url + n for n in names)
    for out in got:  # each page's files belong to that page, not to the one before it
        page = out.result.page
        meta = json.loads(ws.page_json(page.page_id).read_text())
        assert meta["final_url"] == out.job.entry.url and page.status == "ok"
        heading = next(b for b in json.loads(ws.boxes_json(page.page_id).read_text())["boxes"]
                       if b["kind"] == "text")
        assert heading["text"] == f"Page {out.job.entry.url[-6]}"
        assert ws.screenshot(page.page_id).stat().st_size > 0


def test_a_page_that_cannot_be_written_is_an_error_and_the_next_goes_on(
        chromium: str, tmp_path: Path) -> None:
    names = make_site(tmp_path / "site", 2)
    ws = Workspace(tmp_path / "ws").ensure()
    with StaticServer(tmp_path / "site") as server:
        pool = pool_for(ws)
        pool.start()
        try:
            pool.submit(job(server.url + names[0]))
            assert outcomes(pool, 1)[0].kind == "captured"
            ws.pages_dir.rename(tmp_path / "moved")
            ws.pages_dir.write_text("not a folder")  # the page directory cannot be made
            pool.submit(job(server.url + names[1]))
            failed = outcomes(pool, 1)[0]
            ws.pages_dir.unlink()
            ws.ensure()
            pool.submit(job(server.url + names[1]))
            again = outcomes(pool, 1)[0]
        finally:
            pool.close()
    assert failed.kind == "capture_error" and "pages" in failed.error
    assert again.kind == "captured" and ws.page_json(again.result.page.page_id).exists()


def test_pages_no_browser_started_are_given_back_once(chromium: str, tmp_path: Path) -> None:
    names = make_site(tmp_path / "site", 6)
    ws = Workspace(tmp_path / "ws").ensure()
    with StaticServer(tmp_path / "site") as server:
        pool = pool_for(ws)
        pool.start()
        try:
            for name in names:
                pool.submit(job(server.url + name))
            taken = pool.take_back()  # the browser is still starting: most pages wait
            got = outcomes(pool, len(names) - len(taken))
            assert pool.next_outcome(1.0) is None
        finally:
            pool.close()
    assert len(taken) >= 3
    urls = [j.entry.url for j in taken] + [o.job.entry.url for o in got]
    assert sorted(urls) == sorted(server.url + n for n in names)  # each once: none lost
