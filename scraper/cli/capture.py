"""`python -m scraper capture` (one-off captures, no link following) and `overlay`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from catalog.cli import add_common_args, load, open_catalog
from catalog.config import resolve_viewport
from catalog.sites import site_of

from ..browser import BrowserOptions, start_browser, stop_browser
from ..capture import BrowserDied, PageHung, capture_page
from ..overlay import overlay_page
from ..seeds import url_problem


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("capture", help="capture URLs (screenshot + DOM boxes), no link following")
    p.add_argument("urls", nargs="+", metavar="URL")
    add_common_args(p)
    p.add_argument(
        "--viewport", action="append", default=None,
        help="WxH, WxH@DPR or desktop|laptop|tablet|phone; repeat for several (default: config)",
    )
    p.add_argument("--dpr", type=float, default=None, help="device pixel ratio for WxH viewports")
    p.add_argument("--max-height", type=int, default=None, help="cap on page height, CSS px")
    p.add_argument("--timeout", type=float, default=None, help="page load timeout, seconds")
    p.add_argument("--grid", default="", help="remote Selenium Grid URL")
    p.add_argument("--offline", action="store_true", help="resolve no hostname but loopback")
    p.set_defaults(func=run_capture)

    o = sub.add_parser("overlay", help="draw a page's boxes over its screenshot (PNG)")
    o.add_argument("target", help="a page id, or a page directory")
    add_common_args(o)
    o.add_argument("--out", default=None, help="output PNG (default: <page dir>/overlay.png)")
    o.add_argument("--hidden", action="store_true", help="also draw hidden boxes, in purple")
    o.set_defaults(func=run_overlay)


def run_capture(args: argparse.Namespace) -> int:
    config, ws = load(args)
    cfg = config.capture
    if args.max_height:
        cfg.max_height = args.max_height
    if args.timeout:
        cfg.timeout = args.timeout
    viewports = []
    for spec in args.viewport or cfg.viewports:
        w, h, dpr = resolve_viewport(spec)
        # --dpr applies to plain WxH sizes; presets and WxH@DPR carry their own.
        if args.dpr and "x" in spec and "@" not in spec:
            dpr = args.dpr
        viewports.append((w, h, dpr))
    # Refuse a bad list before any work is done, naming every bad URL and its likely fix.
    bad = [f"argument {i} ({url!r}): {problem}"
           for i, url in enumerate(args.urls, 1) if (problem := url_problem(url))]
    if bad:
        raise ValueError(f"not a crawlable URL, nothing captured: {' | '.join(bad)}")
    ws.ensure()
    ws.clean_partial()
    catalog = open_catalog(ws)
    jobs = [(url, vp) for url in args.urls for vp in viewports]
    opts = BrowserOptions(grid=args.grid, offline=args.offline, user_agent=config.crawl.user_agent)
    driver = start_browser(opts)
    counts: dict[str, int] = {}
    t0 = time.monotonic()
    try:
        for i, (url, vp) in enumerate(jobs, 1):
            try:
                result = capture_page(driver, url, vp, ws, cfg)
            except (BrowserDied, PageHung) as exc:
                print(f"[{i}/{len(jobs)}] {url}: {exc}; restarting the browser", file=sys.stderr)
                stop_browser(driver)
                driver = start_browser(opts)
                if isinstance(exc, PageHung):  # it would hold the next browser the same way
                    counts["error"] = counts.get("error", 0) + 1
                    continue
                result = capture_page(driver, url, vp, ws, cfg)
            page = result.page
            with catalog.transaction() as conn:
                catalog.record_page(page, site=site_of(page.final_url), conn=conn)
            counts[page.status] = counts.get(page.status, 0) + 1
            extra = f" [{', '.join(page.flags)}]" if page.flags else ""
            http = f" HTTP {page.http_status}" if page.http_status else ""
            print(
                f"[{i}/{len(jobs)}] {page.status}{http} {page.page_id} {page.width}x{page.height}"
                f" {result.n_boxes} boxes {page.timings.get('total', 0):.2f}s {url}{extra}",
                flush=True,
            )
    finally:
        stop_browser(driver)
        catalog.close()
    elapsed = time.monotonic() - t0
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    print(f"captured {len(jobs)} page(s) in {elapsed:.1f}s ({summary}) into {ws.root}")
    return 0


def run_overlay(args: argparse.Namespace) -> int:
    _, ws = load(args)
    target = Path(args.target)
    page_dir = target if target.is_dir() else ws.page_dir(args.target)
    out = overlay_page(page_dir, Path(args.out) if args.out else None, args.hidden)
    print(out)
    return 0
