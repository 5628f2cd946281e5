"""`python -m scraper check`: find captured pages whose files are damaged, and capture them
again with `--recapture`."""

from __future__ import annotations

import argparse
import os
import shutil
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import Progress

from catalog import Catalog
from catalog.cli import add_common_args, load
from catalog.config import Config
from catalog.records import PageRecord
from catalog.sites import site_of
from catalog.workspace import Workspace

from .browser import BrowserOptions, start_browser, stop_browser
from .capture import BrowserDied, PageHung, capture_page
from .check import Broken, broken_pages, page_problem
from .cli_crawl import start_server
from .orphans import WorkspaceLock, note_browser

SCRATCH = ".recapture"  # in the workspace: pages captured aside before they replace the old


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="find captured pages whose files are missing or unreadable")
    add_common_args(p)
    p.add_argument("--recapture", action="store_true",
                   help="capture those pages again, at the URL and viewport they had")
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    config, ws = load(args)
    if not ws.catalog_path.is_file():
        raise ValueError(f"no catalog in {ws.root}: run `make crawl` (or pass --workspace)")
    console = Console()
    with WorkspaceLock(ws):  # a crawl writing pages meanwhile would be judged half-written
        with Catalog(ws.catalog_path) as catalog:
            checked, broken = broken_pages(ws, catalog)
        for b in broken:
            console.print(f"{b.page_id} {b.url}: {b.problem}", highlight=False, soft_wrap=True)
        if not broken:
            console.print(f"{checked} pages checked in {ws.root}: every file reads back")
            return 0
        if not args.recapture:
            console.print(f"{checked} pages checked: {len(broken)} broken; capture them again "
                          f"with `python -m scraper check --recapture --workspace {ws.root}`",
                          soft_wrap=True)
            return 1
        left = recapture(config, ws, broken, console)
    fixed = len(broken) - len(left)
    console.print(f"{checked} pages checked: {len(broken)} broken, {fixed} captured again"
                  + (f", {len(left)} still broken (see above)" if left else ""), soft_wrap=True)
    return 1 if left else 0


def _served_folder(ws: Workspace, broken: list[Broken]) -> str:
    """The folder a crawl served (`--serve`, the built-in default) that broken pages came
    from: it is served again on the port they were captured from."""
    ports = {urlsplit(b.url).port for b in broken if urlsplit(b.url).hostname == "127.0.0.1"}
    with Catalog(ws.catalog_path) as catalog:
        served = catalog.execute(
            "SELECT key, value FROM meta WHERE key LIKE 'serve_port:%'").fetchall()
    for key, port in served:
        if int(port) in ports:
            return key.split(":", 1)[1]
    return ""


def recapture(config: Config, ws: Workspace, broken: list[Broken], console: Console) -> list[Broken]:
    """Capture the broken pages again; the ones still broken after. Each page is captured
    aside first and replaces its old directory only when the new capture reads back whole
    and is a capture of the same kind, so a site that is down now loses nothing."""
    folder = _served_folder(ws, broken)
    server = start_server(folder, ws) if folder else None
    crawl = config.crawl
    opts = BrowserOptions(grid=crawl.grid, user_agent=crawl.user_agent, offline=crawl.offline)
    aside = Workspace(ws.root / SCRATCH)
    driver = start_browser(opts)
    note_browser(ws, driver)  # the next crawl stops it if this process is killed
    left = []
    try:
        with Catalog(ws.catalog_path) as catalog, Progress(console=console,
                                                           transient=True) as bar:
            task = bar.add_task("capturing again", total=len(broken))
            for b in broken:
                bar.advance(task)
                try:
                    page = capture_page(driver, b.url, b.viewport, aside, config.capture).page
                except (BrowserDied, PageHung) as exc:
                    stop_browser(driver)
                    driver = start_browser(opts)
                    note_browser(ws, driver)
                    why = str(exc)
                else:
                    why = _unusable(page, b, aside)
                if why:
                    console.print(f"{b.page_id} {b.url}: not replaced, {why}", highlight=False)
                    left.append(b)
                    continue
                # Files made from the old screenshot (pre-annotation, pulled annotation)
                # go with it: `make annotate` and `make pull` make them again.
                with ws.new_page_dir(b.page_id) as tmp:
                    for f in aside.page_dir(b.page_id).iterdir():
                        os.replace(f, tmp / f.name)
                with catalog.transaction() as conn:
                    catalog.record_page(page, site=site_of(page.final_url), conn=conn)
    finally:
        stop_browser(driver)
        if server:
            server.stop()
        shutil.rmtree(aside.root, ignore_errors=True)
    return left


def _unusable(page: PageRecord, b: Broken, aside: Workspace) -> str:
    if page.page_id != b.page_id:
        return f"the URL leads to another page now ({page.final_url})"
    # Only a capture as good as the old one replaces it: a site that answers 404 or not at
    # all now has not lost the page.
    if page.status not in ("ok", b.status) or (b.pictured and page.width == 0):
        why = page.error or (f"HTTP {page.http_status}" if page.http_status else "no screenshot")
        return f"captured as {page.status} now ({why})"
    return page_problem(aside, page.page_id, page.width > 0)
