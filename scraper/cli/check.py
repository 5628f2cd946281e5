"""`python -m scraper check`: find captured pages whose files are damaged, and capture them
again with `--recapture`."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import Progress

from catalog import Catalog
from catalog.cli import add_common_args, load
from catalog.config import Config
from catalog.records import PageRecord
from catalog.sites import site_of
from catalog.workspace import Workspace

from ..browser import BrowserOptions, start_browser, stop_browser
from ..capture import BrowserDied, PageHung, capture_page
from ..check import Broken, check_pages, page_problem
from ..orphans import WorkspaceLock, note_browser, owner_token
from ..politeness import Politeness
from ..serve import StaticServer
from .crawl import SERVE_PORT_KEY

SCRATCH = ".recapture"  # in the workspace: pages captured aside before they replace the old
ANNOTATED = ("a human annotation was drawn on its screenshot: capture it by hand "
             "(`python -m scraper capture URL`) if that annotation may go")
WORSE_FLAGS = frozenset({"truncated", "blank_below", "timeout"})  # a recapture may not add


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="find captured pages whose files are missing or unreadable")
    add_common_args(p)
    p.add_argument("--recapture", action="store_true",
                   help="capture those pages again, at the URL and viewport they had")
    # The settings of the crawl that made the pages, where they were given as flags.
    p.add_argument("--grid", default=None, help="remote Selenium Grid URL")
    p.add_argument("--offline", action="store_true", help="resolve no hostname but loopback")
    p.add_argument("--timeout", type=float, default=None, help="page load timeout, seconds")
    p.add_argument("--max-height", type=int, default=None, help="cap on page height, CSS px")
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    config, ws = load(args)
    if not ws.catalog_path.is_file():
        raise ValueError(f"no catalog in {ws.root}: run `make crawl` (or pass --workspace)")
    if args.grid is not None:
        config.crawl.grid = args.grid
    config.crawl.offline = config.crawl.offline or args.offline
    if args.timeout:
        config.capture.timeout = args.timeout
    if args.max_height:
        config.capture.max_height = args.max_height
    console = Console(soft_wrap=True, highlight=False)
    with WorkspaceLock(ws):  # a crawl writing pages meanwhile would be judged half-written
        with Catalog(ws.catalog_path) as catalog, Progress(console=console,
                                                           transient=True) as bar:
            task = bar.add_task("reading pages back", total=None)
            result = check_pages(ws, catalog, lambda done, total: bar.update(
                task, completed=done, total=total))
            if result.stale:
                with catalog.transaction() as conn:
                    for page in result.stale:
                        catalog.record_page(page, site=site_of(page.final_url), conn=conn)
                console.print(f"{len(result.stale)} catalog rows brought up to date from their "
                              "page.json (a run stopped between the two writes)")
        broken = result.broken
        for b in broken:
            kept = f"; not recapturable, {ANNOTATED}" if b.annotated and not args.recapture else ""
            console.print(f"{b.page_id} {b.url}: {b.problem}{kept}")
        if not broken:
            console.print(f"{result.checked} pages checked in {ws.root}: every file reads back")
            return 0
        if not args.recapture:
            console.print(_what_to_do(result.checked, broken, ws))
            return 1
        left = recapture(config, ws, broken, console)
    fixed = len(broken) - len(left)
    console.print(f"{result.checked} pages checked: {len(broken)} broken, {fixed} captured again"
                  + (f", {len(left)} still broken (see above)" if left else ""))
    if fixed:
        console.print("their pre-annotations went with the old screenshots: `make annotate` "
                      "proposes and pushes them again (a pushed task takes the new size)")
    return 1 if left else 0


def _what_to_do(checked: int, broken: list[Broken], ws: Workspace) -> str:
    """The line that ends a check: what --recapture would take, and what it would not."""
    annotated = sum(b.annotated for b in broken)
    takes = len(broken) - annotated
    said = f"{checked} pages checked: {len(broken)} broken"
    if takes:
        said += (f"; capture {'them' if not annotated else f'{takes} of them'} again with "
                 f"`python -m scraper check --recapture --workspace {ws.root}`")
    if annotated:
        said += (f"; {annotated} carr{'ies' if annotated == 1 else 'y'} a human annotation, which "
                 "--recapture leaves as it is (see above)")
    return said


def _serve(ws: Workspace, broken: list[Broken]) -> tuple[list[StaticServer], dict[int, str]]:
    """Serve again, each on its old port, the folders a crawl served (`--serve`, the built-in
    default) that broken pages came from; and why the pages of a port cannot be had."""
    ports = {urlsplit(b.url).port for b in broken if urlsplit(b.url).hostname == "127.0.0.1"}
    with Catalog(ws.catalog_path) as catalog:
        served = catalog.execute(
            "SELECT key, value FROM meta WHERE key LIKE ?", (SERVE_PORT_KEY + "%",)).fetchall()
    servers, failed = [], {}
    for key, port in served:
        folder, port = Path(key.removeprefix(SERVE_PORT_KEY)), int(port)
        if port not in ports:
            continue
        if not folder.is_dir():
            failed[port] = f"the folder it was served from, {folder}, is gone"
            continue
        server = StaticServer(folder, port).start()
        if server.port != port:  # its pages' URLs name the old port: nothing else will do
            server.stop()
            failed[port] = f"port {port} of the served folder {folder} is taken"
            continue
        servers.append(server)
    return servers, failed


def recapture(config: Config, ws: Workspace, broken: list[Broken],
              console: Console) -> list[Broken]:
    """Capture the broken pages again; the ones still broken after. Each page is captured
    aside first and replaces its old directory only when the new capture reads back whole
    and is no worse, so a site that is down now loses nothing."""
    servers, failed = _serve(ws, broken)
    crawl = config.crawl
    opts = BrowserOptions(grid=crawl.grid, user_agent=crawl.user_agent, offline=crawl.offline,
                          owner=owner_token(ws))
    aside = Workspace(ws.root / SCRATCH)
    driver = None
    left = []
    # One request at a time, so the crawl's delay per host is all there is to keep.
    politeness = Politeness(crawl.delay, 1, crawl.loopback_delay)
    try:
        with Catalog(ws.catalog_path) as catalog, Progress(console=console,
                                                           transient=True) as bar:
            task = bar.add_task("capturing again", total=len(broken))
            for b in broken:
                bar.advance(task)
                parts = urlsplit(b.url)
                why = failed.get(parts.port or 0, "") if parts.hostname == "127.0.0.1" else ""
                if b.annotated:
                    why = ANNOTATED
                page = None
                if not why:
                    politeness.start(urlsplit(b.url).netloc)
                    page, why, driver = _capture(driver, opts, b, aside, config, ws)
                    if page is not None:
                        why = _unusable(page, b, aside)
                if why:
                    console.print(f"{b.page_id} {b.url}: not replaced, {why}")
                    left.append(b)
                    continue
                assert page is not None
                # A run stopped between the two leaves the row behind its page.json: the
                # next check brings it up to date.
                with ws.new_page_dir(b.page_id) as tmp:
                    for f in aside.page_dir(b.page_id).iterdir():
                        os.replace(f, tmp / f.name)
                with catalog.transaction() as conn:
                    catalog.record_page(page, site=site_of(page.final_url), conn=conn)
    finally:
        if driver is not None:
            stop_browser(driver)
        for server in servers:
            server.stop()
        shutil.rmtree(aside.root, ignore_errors=True)
    return left


def _capture(driver: Any, opts: BrowserOptions, b: Broken, aside: Workspace, config: Config,
             ws: Workspace) -> tuple[PageRecord | None, str, Any]:
    """(the new capture or None, why not, the browser to go on with). A browser that died
    is replaced and the page tried once more; one a page holds is replaced for the next."""
    for attempt in (1, 2):
        if driver is None:
            driver = start_browser(opts)
            note_browser(ws, driver)  # the next crawl stops it if this process is killed
        try:
            page = capture_page(driver, b.url, b.viewport, aside, config.capture,
                                crawl_id=b.crawl_id, depth=b.depth).page
            return page, "", driver
        except (BrowserDied, PageHung) as exc:
            stop_browser(driver)
            driver = None
            if isinstance(exc, PageHung) or attempt == 2:
                return None, str(exc), driver
        except Exception as exc:  # noqa: BLE001 - one page's fault, as the crawl's capture_error
            return None, f"the capture failed ({str(exc).splitlines()[0][:200]})", driver
    raise AssertionError("unreachable")


def _unusable(page: PageRecord, b: Broken, aside: Workspace) -> str:
    if page.page_id != b.page_id:
        return f"the URL leads to another page now ({page.final_url})"
    # Only a capture as good as the old one replaces it: a site that answers 404 or not at
    # all now, or a page that is cut shorter, has not lost what was there.
    if page.status not in ("ok", b.status) or (b.pictured and page.width == 0):
        why = page.error or (f"HTTP {page.http_status}" if page.http_status else "no screenshot")
        return f"captured as {page.status} now ({why})"
    worse = sorted((set(page.flags) & WORSE_FLAGS) - set(b.flags))
    if worse:
        return f"the new capture is flagged {', '.join(worse)}"
    return page_problem(aside, page.page_id, page.width > 0)

