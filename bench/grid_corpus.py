"""A large crawl through a real Selenium Grid over many local sites: the figures that size one.

Starts a hub and 2 nodes of one browser each (`scraper.grid`), serves the Debian doc sites
of corpus.toml (plus SciPy's and Erlang's documentation and Apache's English manual, where
installed (python-scipy-doc, erlang-doc), for volume: together about 11,000 pages) on loopback, each under its own name, and crawls N pages (default
10,000) through the Grid into a scratch workspace, as a user's `make crawl GRID=...` does.

Printed: pages and sites captured, pages/min, the coordinator's CPU per page and peak
memory (on a Grid the crawl has no browser children: its peak is the coordinator's own),
the catalog's size, disk per page, errors by kind, and two checks that must hold: no URL
captured twice, and every page row marked ok has its screenshot and boxes on disk.
Exit 1 when a check fails. The workspace is deleted afterwards unless `--keep DIR`; a
`--keep` workspace that exists is continued, as a rerun of the same crawl continues it (the
rate is then of this run's pages).

    .venv/bin/python bench/grid_corpus.py [--pages 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import Catalog  # noqa: E402
from scraper import grid as grid_server  # noqa: E402

# Apache's manual root negotiates its language, which a static server cannot: its English
# pages are a site of their own.
EXTRA_SITES = ["scipy=/usr/share/doc/python-scipy-doc/html", "erlang=/usr/share/doc/erlang-doc",
               "apache-en=/usr/share/doc/apache2-doc/manual/en"]


def sites() -> list[str]:
    listed = tomllib.loads((ROOT / "corpus.toml").read_text())["crawl"]["sites"]
    return [s for s in listed + EXTRA_SITES if Path(s.split("=", 1)[1]).is_dir()]


def config(pages: int, served: list[str]) -> str:
    quoted = ",\n  ".join(json.dumps(s) for s in served)
    # Downloads and page sources are not pages: they would only cost fetches.
    return (f"[dataset]\nname = \"grid-corpus\"\n\n[crawl]\nsites = [\n  {quoted},\n]\n"
            f"max_pages = {pages}\nmax_depth = 50\ndelay = 0.0\n"
            "exclude = ['/_downloads/', '/_sources/', '\\.(txt|py|ipynb|zip|gz|pdf)$']\n\n"
            "[capture]\nmax_height = 16384\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="crawl into this workspace and keep it")
    args = parser.parse_args()
    served = sites()
    work = Path(tempfile.mkdtemp(prefix="bench-grid-corpus-"))
    ws = args.keep or work / "ws"
    cfg = work / "crawl.toml"
    cfg.write_text(config(args.pages, served))
    state = work / "grid"
    log = work / "crawl.log"
    before = 0
    if (ws / "catalog.sqlite").is_file():
        with Catalog(ws / "catalog.sqlite") as catalog:
            before = catalog.execute("SELECT COUNT(*) FROM pages WHERE status = 'ok'").fetchone()[0]
    print(f"{len(served)} sites: {', '.join(s.split('=')[0] for s in served)}", flush=True)
    try:
        info = grid_server.start(nodes=2, port=grid_server.free_port(), state_dir=state,
                                 quiet=True)
        print(f"grid: hub and 2 nodes at {info.url}; crawling {args.pages:,} pages into {ws} "
              f"(progress in {log})", flush=True)
        t0 = time.monotonic()
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "scraper", "crawl", "--config", str(cfg), "--workspace",
                 str(ws), "--grid", info.url, "--offline"],
                cwd=ROOT, stdout=err, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)})
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            print(log.read_text()[-3000:])
            print(f"crawl failed with exit {os.waitstatus_to_exitcode(status)}")
            return 1
    finally:
        grid_server.stop(state, quiet=True)
    with Catalog(ws / "catalog.sqlite") as catalog:
        last = json.loads(catalog.meta("last_crawl") or "{}")
        by_status = dict(catalog.execute(
            "SELECT status, COUNT(*) FROM pages GROUP BY status").fetchall())
        by_site = dict(catalog.execute(
            "SELECT site, COUNT(*) FROM pages WHERE status = 'ok' GROUP BY site").fetchall())
        doubled = catalog.execute(
            "SELECT COUNT(*) FROM (SELECT url FROM pages GROUP BY url HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        ok_ids = [r[0] for r in catalog.execute("SELECT page_id FROM pages WHERE status = 'ok'")]
    missing = [p for p in ok_ids if not (ws / "pages" / p / "screenshot.png").is_file()
               or not (ws / "pages" / p / "boxes.json").is_file()]
    disk = sum(f.stat().st_size for f in ws.rglob("*") if f.is_file())
    catalog_mb = sum(f.stat().st_size for f in ws.glob("catalog.sqlite*")) / 1e6
    ok = len(ok_ids)
    print(f"captured {ok - before:,} pages in {wall / 60:.1f} min "
          f"({60 * (ok - before) / wall:.1f} pages/min wall; the crawl's own figure "
          f"{last.get('rate', 0.0):.1f} pages/min)")
    print(f"the workspace holds {ok:,} pages over {len(by_site)} sites")
    print("  per site: " + ", ".join(f"{s} {n}" for s, n in sorted(by_site.items())))
    print(f"coordinator: {1000 * last.get('cpu_s', 0.0) / max(ok - before, 1):.0f} ms CPU a page, "
          f"peak {usage.ru_maxrss / 1024:.0f} MiB")
    print(f"disk: {disk / 1e9:.2f} GB ({disk / max(ok, 1) / 1e6:.2f} MB a page); "
          f"catalog {catalog_mb:.1f} MB")
    print("rows by status: " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())))
    print(f"check: URLs captured twice: {doubled}; ok rows without their files: {len(missing)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if doubled == 0 and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
