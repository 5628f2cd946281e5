"""The browser pool against real Chromium: every page handed out comes back exactly once.

The pool grabs a page with the browser and writes it on a finisher thread while the
browser loads the next; these tests hold it to its one promise to the engine: one outcome
for every page it started, and the pages it did not start given back on request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def running_pool(tmp_path: Path, n_pages: int) -> Iterator[tuple[Pool, Workspace, list[str]]]:
    """A one-browser pool, its workspace, and the URLs of a served site of n pages."""
    names = make_site(tmp_path / "site", n_pages)
    ws = Workspace(tmp_path / "ws").ensure()
    with StaticServer(tmp_path / "site") as server:
        pool = Pool(1, ws=ws, capture_cfg=CaptureConfig(),
                    browser_opts=BrowserOptions(offline=True), robots=None,
                    politeness=Politeness(0.0, 1), recycle_after=0, crawl_id="test")
        pool.start()
        try:
            yield pool, ws, [server.url + name for name in names]
        finally:
            pool.close()


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
    with running_pool(tmp_path, 5) as (pool, ws, urls):
        for url in urls:
            pool.submit(job(url))
        got = outcomes(pool, len(urls))
    assert [o.kind for o in got] == ["captured"] * len(urls)
    assert sorted(o.job.entry.url for o in got) == sorted(urls)
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
    with running_pool(tmp_path, 2) as (pool, ws, urls):
        pool.submit(job(urls[0]))
        assert outcomes(pool, 1)[0].kind == "captured"
        ws.pages_dir.rename(tmp_path / "moved")
        ws.pages_dir.write_text("not a folder")  # the page directory cannot be made
        pool.submit(job(urls[1]))
        failed = outcomes(pool, 1)[0]
        ws.pages_dir.unlink()
        ws.ensure()
        pool.submit(job(urls[1]))
        again = outcomes(pool, 1)[0]
    assert failed.kind == "capture_error" and "pages" in failed.error
    assert again.kind == "captured" and ws.page_json(again.result.page.page_id).exists()


def test_pages_no_browser_started_are_given_back_once(chromium: str, tmp_path: Path) -> None:
    with running_pool(tmp_path, 6) as (pool, _, urls):
        for url in urls:
            pool.submit(job(url))
        taken = pool.take_back()  # the browser is still starting: most pages wait
        got = outcomes(pool, len(urls) - len(taken))
        assert pool.next_outcome(1.0) is None
    assert len(taken) >= 3
    back = [j.entry.url for j in taken] + [o.job.entry.url for o in got]
    assert sorted(back) == sorted(urls)  # each once: none lost
