"""Kill the crawl, kill its browser, run it on a Grid: every page still ends up exactly once.

Real Chromium through the real command line, on a generated site served by `--serve`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from catalog import Catalog, Workspace
from scraper.frontier import Frontier
from scraper.orphans import BROWSERS_FILE

from .test_crawl_site import ROOT, TEST_CONFIG, run_crawl

N_PAGES = 30


def make_site(folder: Path, n: int = N_PAGES) -> set[str]:
    """index + n pages, each linking a few others; returns the paths a crawl must capture."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"p{i:02d}.html" for i in range(n)]
    for i, name in enumerate(names):
        links = "".join(f'<li><a href="{names[(i + k) % n]}">next {k}</a></li>' for k in (1, 2, 7))
        (folder / name).write_text(
            f"<!doctype html><html><head><title>Page {i}</title></head><body>"
            f"<header><a href='/'>home</a></header><main><h1>Page {i}</h1>"
            f"<p>{'Lorem ipsum dolor sit amet. ' * (10 + i)}</p><ul>{links}</ul></main>"
            "</body></html>", encoding="utf-8")
    (folder / "index.html").write_text(
        "<!doctype html><title>Index</title><h1>Index</h1>"
        + "".join(f'<p><a href="{name}">{name}</a></p>' for name in names[:3]), encoding="utf-8")
    return {"/"} | {f"/{name}" for name in names}


def crawl_cmd(ws: Path, site: Path, *extra: str) -> list[str]:
    cfg = ws.parent / f"{ws.name}.toml"
    cfg.write_text(TEST_CONFIG)
    return [sys.executable, "-m", "scraper", "crawl", "--serve", str(site), "--workspace", str(ws),
            "--config", str(cfg), "--offline", "--max-pages", "500", *extra]


def pages_done(ws: Path) -> int:
    try:
        with sqlite3.connect(f"file:{ws / 'catalog.sqlite'}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
    except sqlite3.Error:
        return 0


def start_and_wait(cmd: list[str], ws: Path, at_least: int, timeout: float = 120) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + timeout
    while pages_done(ws) < at_least:
        if proc.poll() is not None:
            raise AssertionError(f"crawl ended early: {proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("crawl made no progress")
        time.sleep(0.05)
    return proc


def assert_exactly_once(ws: Path, expected: set[str]) -> None:
    with Catalog(ws / "catalog.sqlite") as catalog:
        rows = catalog.pages()
        Frontier(catalog)
        states = dict(catalog.execute("SELECT state, COUNT(*) FROM frontier GROUP BY state").fetchall())
        # Where a page went wrong, the failure says how: its frontier row.
        unfinished = [tuple(r) for r in catalog.execute(
            "SELECT url, state, depth, attempts, error, cause FROM frontier WHERE state != 'done'")]
        last = json.loads(catalog.meta("last_crawl") or "{}")
    paths = ["/" + r["final_url"].split("/", 3)[3] for r in rows]
    why = {"not done": unfinished, "events": last.get("events"), "errors": last.get("last_errors")}
    assert sorted(paths) == sorted(expected), why  # none lost, none twice
    assert all(r["status"] == "ok" for r in rows)
    workspace = Workspace(ws)
    assert sorted(workspace.page_ids()) == sorted(r["page_id"] for r in rows)
    assert not [p.name for p in workspace.pages_dir.iterdir() if p.name.startswith(".tmp-")]
    for r in rows:  # every page directory whole
        d = workspace.page_dir(r["page_id"])
        assert {"page.json", "boxes.json", "screenshot.png"} <= {p.name for p in d.iterdir()}
    assert states == {"done": len(expected)}


def alive(pid: int) -> bool:
    try:
        return b"chromedriver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.browser
@pytest.mark.slow
def test_interrupt_and_sigkill_then_resume_capture_every_page_once(chromium: str,
                                                                    tmp_path: Path) -> None:
    site, ws = tmp_path / "site", tmp_path / "ws"
    expected = make_site(site)
    cmd = crawl_cmd(ws, site)

    # Ctrl-C: the page in flight is finished, the crawl stops cleanly and says how to resume.
    proc = start_and_wait(cmd, ws, 4)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out[-2000:]
    assert "interrupted: run the same command to resume" in out
    with Catalog(ws / "catalog.sqlite") as catalog:
        Frontier(catalog)
        assert catalog.execute("SELECT COUNT(*) FROM frontier WHERE state='in_flight'").fetchone()[0] == 0
        interrupted_at = len(catalog.pages())
    assert 4 <= interrupted_at < len(expected)

    # SIGKILL at an arbitrary moment, twice; the browsers it leaves are reaped next time.
    drivers: list[int] = []
    for extra in (3, 9):
        proc = start_and_wait(cmd, ws, pages_done(ws) + extra)
        time.sleep(0.05 * extra)  # land somewhere inside a capture or a commit
        proc.kill()
        proc.wait(timeout=30)
        drivers += [int(line.split()[0]) for line in
                    (ws / BROWSERS_FILE).read_text().splitlines() if line.strip()]
    assert any(alive(pid) for pid in drivers)  # a SIGKILL leaves its browser running

    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_exactly_once(ws, expected)
    assert not any(alive(pid) for pid in drivers)

    # Running the finished crawl again changes nothing.
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    with Catalog(ws / "catalog.sqlite") as catalog:
        assert json.loads(catalog.meta("last_crawl") or "{}")["pages"] == 0
    assert_exactly_once(ws, expected)


@pytest.mark.browser
@pytest.mark.slow
def test_an_exclude_added_on_resume_skips_the_links_already_queued(chromium: str,
                                                                   tmp_path: Path) -> None:
    site, ws = tmp_path / "site", tmp_path / "ws"
    expected = make_site(site)
    first = subprocess.run(crawl_cmd(ws, site, "--max-pages", "1"), cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    with Catalog(ws / "catalog.sqlite") as catalog:
        queued = {r[0].rsplit("/", 1)[1] for r in catalog.execute(
            "SELECT url FROM frontier WHERE state='queued'")}
    assert {"p01.html", "p02.html"} <= queued  # the index links them

    # p01 and p02 are linked from the index only among the pages crawled so far; every
    # other page is reached through p00 and the pages it links.
    again = subprocess.run(crawl_cmd(ws, site, "--exclude", r"/p0[12]\.html$"), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    with Catalog(ws / "catalog.sqlite") as catalog:
        paths = sorted("/" + r["final_url"].split("/", 3)[3] for r in catalog.pages())
        skipped = {r[0].rsplit("/", 1)[1]: (r[1], r[2]) for r in catalog.execute(
            "SELECT url, state, error FROM frontier WHERE state != 'done'")}
        last = json.loads(catalog.meta("last_crawl") or "{}")
    assert paths == sorted(expected - {"/p01.html", "/p02.html"})  # none fetched, none lost
    assert skipped == {"p01.html": ("skipped", "out_of_scope"),
                       "p02.html": ("skipped", "out_of_scope")}
    assert last["events"]["out_of_scope"] == 2


def _children(pid: int) -> list[int]:
    """Child processes, whichever thread started them."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.mark.browser
@pytest.mark.slow
def test_a_chromium_killed_mid_crawl_costs_only_its_page(chromium: str, tmp_path: Path) -> None:
    site, ws = tmp_path / "site", tmp_path / "ws"
    expected = make_site(site, 16)
    proc = start_and_wait(crawl_cmd(ws, site), ws, 4)
    drivers = [p for p in _children(proc.pid) if _comm(p) == "chromedriver"]
    browsers = [c for d in drivers for c in _children(d) if _comm(c) in ("chromium", "chrome")]
    assert browsers, "no Chromium found under the crawl"
    os.kill(browsers[0], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "browser restarts" in out
    assert_exactly_once(ws, expected)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
@pytest.mark.slow
def test_the_same_crawl_runs_on_a_grid(chromium: str, tmp_path: Path) -> None:
    site, ws = tmp_path / "site", tmp_path / "ws"
    expected = make_site(site, 8)
    port = _free_port()
    driver = subprocess.Popen([chromium, f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        grid = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{grid}/status", timeout=2).json()["value"]["ready"]:
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, "chromedriver did not start"
            time.sleep(0.2)
        proc = subprocess.run(crawl_cmd(ws, site, "--grid", grid, "--browsers", "2"), cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert_exactly_once(ws, expected)
        # The browsers ran under the Grid's driver, none under the crawl.
        assert not (ws / BROWSERS_FILE).exists() or not (ws / BROWSERS_FILE).read_text().strip()
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)


def test_a_grid_that_is_not_there_is_one_clear_error(tmp_path: Path) -> None:
    site, ws = tmp_path / "site", tmp_path / "ws"
    make_site(site, 2)
    proc = run_crawl(ws, "--serve", str(site), "--grid", f"http://127.0.0.1:{_free_port()}",
                     timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot start a browser")
    assert "Grid" in proc.stderr


@pytest.mark.browser
@pytest.mark.slow
def test_a_crawl_killed_while_its_browser_starts_leaves_no_browser(chromium: str,
                                                                   tmp_path: Path) -> None:
    """A browser is noted in the workspace once its session exists; killed before that, in
    the second its chromedriver and Chromium take to start, the next crawl still stops it."""
    site, ws = tmp_path / "site", tmp_path / "ws"
    expected = make_site(site, 4)
    proc = subprocess.Popen(crawl_cmd(ws, site), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    drivers: list[int] = []
    deadline = time.monotonic() + 120
    while not drivers and time.monotonic() < deadline and proc.poll() is None:
        drivers = [p for p in _children(proc.pid) if _comm(p) == "chromedriver"]
        time.sleep(0.002)
    proc.kill()
    proc.wait(timeout=30)
    assert drivers, "no chromedriver was seen starting under the crawl"
    noted = (ws / BROWSERS_FILE).read_text() if (ws / BROWSERS_FILE).exists() else ""
    unnoted = [d for d in drivers if str(d) not in noted.split()]
    assert unnoted and all(alive(d) for d in unnoted)  # the window this test is about

    done = subprocess.run(crawl_cmd(ws, site), cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_exactly_once(ws, expected)
    assert not any(alive(d) for d in drivers)
