"""`python -m scraper crawl`, `status` and `serve`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from rich.console import Console

from catalog import Catalog, Workspace
from catalog.cli import add_common_args, load
from catalog.config import Config, resolve_viewport
from catalog.sites import site_of

from ..engine import Engine
from ..frontier import Frontier
from ..orphans import WorkspaceLock
from ..progress import LiveProgress, error_listing, print_summary
from ..scope import SCOPES, Seed
from ..seeds import BadSeed, SeedLine, read_seeds
from ..serve import StaticServer, parse_site, serve_main


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crawl", help="crawl sites from seeds: polite, resumable, parallel",
        description="Crawl from seed URLs (or a served folder) and capture every page in "
        "scope. Killed or interrupted, the same command resumes where it stopped.",
    )
    p.add_argument("seed_urls", nargs="*", metavar="SEED_URL",
                   help="start URLs ('/path' is relative to --serve); default: config seeds")
    p.add_argument("--seeds", dest="seeds_file", metavar="FILE",
                   help="file of seeds, one 'URL [SCOPE]' per line, '#' comments")
    p.add_argument("--strict", action="store_true",
                   help="refuse to crawl when a seed is malformed (default: skip it, say why)")
    p.add_argument("--serve", metavar="DIR",
                   help="serve DIR on 127.0.0.1 and crawl it (default: config serve, no seeds)")
    p.add_argument("--max-pages", type=int, metavar="N", help="pages to capture in total (0: no limit)")
    p.add_argument("--max-pages-per-site", type=int, metavar="N", help="pages per registered domain")
    p.add_argument("--max-depth", type=int, metavar="D", help="links to follow from a seed")
    p.add_argument("--scope", choices=SCOPES, help="which links a seed's crawl keeps")
    p.add_argument("--include", action="append", metavar="REGEX",
                   help="URLs matching REGEX are in scope (replaces --scope); repeatable")
    p.add_argument("--exclude", action="append", metavar="REGEX",
                   help="URLs matching REGEX are never crawled; repeatable")
    p.add_argument("--browsers", type=int, metavar="K",
                   help="browsers working in parallel (default: 1; on a Grid, its free slots)")
    p.add_argument("--grid", metavar="URL", help="remote Selenium Grid URL (default: local Chromium)")
    p.add_argument("--grid-wait", type=float, metavar="S",
                   help="seconds to wait for a free Grid slot before giving up (default 600)")
    p.add_argument("--delay", type=float, metavar="S", help="seconds between requests to one host")
    p.add_argument("--no-robots", action="store_true", help="ignore robots.txt")
    p.add_argument("--viewport", action="append", metavar="WxH",
                   help="WxH, WxH@DPR or desktop|laptop|tablet|phone; repeatable")
    p.add_argument("--timeout", type=float, metavar="S", help="page load timeout, seconds")
    p.add_argument("--max-height", type=int, metavar="PX", help="cap on page height, CSS px")
    p.add_argument("--offline", action="store_true",
                   help="browsers resolve no host name but loopback")
    p.add_argument("--allow-private", action="store_true",
                   help="follow links to private addresses beyond the seeds' hosts")
    add_common_args(p)
    p.set_defaults(func=run_crawl)

    s = sub.add_parser("status", help="progress and errors of a workspace's crawl")
    s.add_argument("--errors", action="store_true",
                   help="list every failing URL: URL, kind, cause, attempts (tab-separated)")
    add_common_args(s)
    s.set_defaults(func=run_status)

    v = sub.add_parser("serve", help="serve a folder on 127.0.0.1 (a saved site, a mirror)")
    v.add_argument("directory", metavar="DIR")
    v.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    v.set_defaults(func=serve_main)


def apply_flags(config: Config, args: argparse.Namespace) -> None:
    """Command-line flags over the config file."""
    crawl, capture = config.crawl, config.capture
    for flag, attr in (("max_pages", "max_pages"), ("max_pages_per_site", "max_pages_per_site"),
                       ("max_depth", "max_depth"), ("scope", "scope"), ("browsers", "browsers"),
                       ("grid", "grid"), ("delay", "delay"), ("include", "include"),
                       ("exclude", "exclude"), ("grid_wait", "grid_wait")):
        value = getattr(args, flag)
        if value is not None:
            setattr(crawl, attr, value)
    if args.no_robots:
        crawl.obey_robots = False
    if args.offline:
        crawl.offline = True
    if args.allow_private:
        crawl.allow_private = True
    if args.viewport:
        capture.viewports = args.viewport
    if args.timeout is not None:
        capture.timeout = args.timeout
    if args.max_height is not None:
        capture.max_height = args.max_height
    if args.browsers is not None and args.browsers < 1:
        raise ValueError(f"--browsers must be at least 1, not {args.browsers}")
    if crawl.browsers < 0:
        raise ValueError(f"[crawl] browsers must not be negative (0: automatic), not {crawl.browsers}")
    if crawl.grid_wait < 0:
        raise ValueError(f"--grid-wait must not be negative, not {crawl.grid_wait}")
    if crawl.max_pages < 0 or crawl.max_depth < 0:
        raise ValueError("--max-pages and --max-depth must not be negative")
    if crawl.scope not in SCOPES:
        raise ValueError(f"[crawl] scope {crawl.scope!r} must be one of {', '.join(SCOPES)}")
    for spec in capture.viewports:
        resolve_viewport(spec)


def seed_lines(config: Config, args: argparse.Namespace) -> list[SeedLine]:
    """The seeds given, each with where it was written: arguments and the seeds file, else
    the config's."""
    lines = [SeedLine(url, f"argument {i}") for i, url in enumerate(args.seed_urls, 1)]
    if args.seeds_file:
        path = Path(args.seeds_file)
        if not path.is_file():
            raise ValueError(f"seeds file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        lines += [SeedLine(line, f"{path}:{n}") for n, line in enumerate(text.splitlines(), 1)]
    if not lines:
        lines = [SeedLine(entry, f"[crawl] seeds entry {i}")
                 for i, entry in enumerate(config.crawl.seeds, 1)]
    return lines


def build_seeds(lines: list[SeedLine], config: Config,
                served: str = "") -> tuple[list[Seed], list[BadSeed]]:
    return read_seeds(lines, config.crawl.scope, config.crawl.include, config.crawl.exclude,
                      served)


def check_seeds(lines: list[SeedLine], config: Config, serving: bool, strict: bool) -> int:
    """Read every seed before anything starts; bad ones are listed with their fix, then
    skipped, or refuse the crawl under --strict. Returns how many were skipped."""
    # A served folder's port is known only once it is served; any port reads '/path' alike.
    seeds, bad = build_seeds(lines, config, "http://127.0.0.1:1/" if serving else "")
    if not bad:
        return 0
    for b in bad:
        print(b, file=sys.stderr)
    n = f"{len(bad)} malformed seed(s) (listed above)"
    if strict:
        raise ValueError(f"{n}; nothing crawled (--strict): fix them, or drop --strict to "
                         "crawl the others")
    if not seeds:
        raise ValueError(f"{n} and no other seed; nothing crawled")
    print(f"{n} skipped; crawling the other {len(seeds)} (--strict refuses instead)",
          file=sys.stderr)
    return len(bad)


# Catalog meta key, + the folder: the port it was served on, so its URLs stay the same.
SERVE_PORT_KEY = "serve_port:"


def start_server(directory: str, ws: Workspace, name: str = "") -> StaticServer:
    """Serve `directory` on the port it had last time, so a resumed crawl has the same URLs."""
    folder = Path(directory).expanduser().resolve()
    if not folder.is_dir():
        hint = " (make setup installs sqlite3-doc)" if "sqlite3" in str(folder) else ""
        hint = hint or (" (make crawl-corpus installs the doc packages)" if name else "")
        raise ValueError(f"folder to serve {folder} does not exist{hint}")
    ws.ensure()
    with Catalog(ws.catalog_path) as catalog:
        key = f"{SERVE_PORT_KEY}{folder}"
        old = int(catalog.meta(key) or 0)
        server = StaticServer(folder, old, name).start()
        if old and server.port != old:
            move_origin(catalog, f"http://{server.host}:{old}",
                        f"http://{server.host}:{server.port}")
        catalog.set_meta(key, str(server.port))
    return server


def served_folders(config: Config, args: argparse.Namespace,
                   lines: list[SeedLine]) -> list[tuple[str, str]]:
    """(site name, folder) of each folder this crawl serves: --serve, else with no seeds the
    config's named `sites`, else its `serve`."""
    if args.serve:
        return [("", args.serve)]
    if lines:
        return []
    if config.crawl.sites:
        return [parse_site(entry) for entry in config.crawl.sites]
    return [("", config.crawl.serve)] if config.crawl.serve else []


def move_origin(catalog: Catalog, old: str, new: str) -> None:
    """The served folder came back on another port: its queued URLs follow it."""
    Frontier(catalog)
    netloc = new.split("://", 1)[1]
    with catalog.transaction() as conn:
        conn.execute(
            "UPDATE frontier SET url = ? || substr(url, ?), host = ?, site = ?,"
            " seed = CASE WHEN seed LIKE ? THEN ? || substr(seed, ?) ELSE seed END"
            " WHERE url LIKE ?",
            (new, len(old) + 1, netloc, site_of(new), old + "/%", new, len(old) + 1, old + "/%"),
        )


def run_crawl(args: argparse.Namespace) -> int:
    config, ws = load(args)
    apply_flags(config, args)
    lines = seed_lines(config, args)
    folders = served_folders(config, args, lines)
    skipped = check_seeds(lines, config, bool(folders), args.strict)
    ws.ensure()
    with WorkspaceLock(ws):
        return _crawl(config, ws, lines, folders, skipped)


def _crawl(config: Config, ws: Workspace, lines: list[SeedLine],
           folders: list[tuple[str, str]], skipped: int = 0) -> int:
    servers: list[StaticServer] = []
    console = Console()
    try:
        for name, folder in folders:
            servers.append(start_server(folder, ws, name))
        seeds, _ = build_seeds(lines or [SeedLine(s.url, "--serve") for s in servers],
                               config, servers[0].url if servers else "")
        for server in servers:
            console.print(f"serving {server.directory} at {server.url}", highlight=False)
        engine = Engine(config, ws, seeds, take_lock=False)
        interrupts = 0

        def on_signal(signum: int, frame: object) -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts > 1:
                raise KeyboardInterrupt
            engine.request_stop()
            print("\nstopping: finishing the pages in flight (Ctrl-C again to quit at once)",
                  file=sys.stderr, flush=True)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with LiveProgress() as live:
                engine.on_progress = live.update
                snapshot = engine.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        for server in servers:
            server.stop()
    with Catalog(ws.catalog_path) as catalog:
        print_summary(console, catalog, ws, snapshot)
    if snapshot.state == "interrupted":
        console.print(f"interrupted: run the same command to resume ({ws.root})")
        return 130
    console.print(f"{snapshot.done} pages captured in {ws.root}", highlight=False)
    if skipped:
        console.print(f"{skipped} malformed seed(s) were skipped: see the start of the output",
                      highlight=False)
    return 0


def run_status(args: argparse.Namespace) -> int:
    _, ws = load(args)
    if not ws.catalog_path.is_file():
        raise ValueError(f"no catalog in {ws.root}: run `make crawl` (or pass --workspace)")
    with Catalog(ws.catalog_path) as catalog:
        if args.errors:
            try:
                for line in error_listing(catalog, ws):
                    print(line)
                sys.stdout.flush()
            except BrokenPipeError:  # `| head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print_summary(Console(), catalog, ws)
    return 0
