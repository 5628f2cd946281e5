"""python -m dedupe {run,groups,sheet}: exact and near-duplicate pages, grouped."""

from __future__ import annotations

import argparse
import json
import sys

from catalog.cli import add_common_args, load, open_catalog, run_main
from catalog.records import CAPTURED_SQL

from . import store
from .run import run
from .sheet import contact_sheet


def _sheet(ws, catalog, templates: bool = False):  # noqa: ANN001, ANN202
    if templates:
        rows = catalog.execute(
            "SELECT t.page_id, t.template_id FROM template_groups t"
            f" JOIN pages p ON p.page_id = t.page_id WHERE p.status IN {CAPTURED_SQL}"
        ).fetchall()
        by: dict[str, list[str]] = {}
        for pid, tid in rows:
            by.setdefault(tid, []).append(pid)
        groups = [[h, *sorted(m for m in ms if m != h)] for h, ms in by.items()]
        groups.sort(key=lambda g: (-len(g), g[0]))
        reasons = {pid: "same template" for g in groups for pid in g[1:]}
        out = ws.root / "dedupe" / "templates.png"
    else:
        groups = sorted(_ok_groups(catalog), key=lambda g: (-len(g), g[0]))
        reasons = {
            r[0]: r[1] for r in catalog.execute("SELECT page_id, reason FROM dup_groups")
        }
        out = ws.root / "dedupe" / "groups.png"
    viewport_h, urls = {}, {}
    for r in catalog.pages("ok"):
        urls[r["page_id"]] = r["final_url"] or r["url"]
        try:
            viewport_h[r["page_id"]] = round(int(r["viewport"].split("x")[1]) * (r["dpr"] or 1))
        except (IndexError, ValueError):
            continue
    return contact_sheet(ws, groups, reasons, viewport_h, out, urls=urls)


def _ok_groups(catalog) -> list[list[str]]:  # noqa: ANN001
    ok = {r["page_id"] for r in catalog.pages("ok")}
    groups = []
    for g in store.read_groups(catalog):
        kept = [p for p in g if p in ok]
        if kept:
            groups.append(kept)
    return groups


def cmd_run(args: argparse.Namespace) -> int:
    config, ws = load(args)
    if args.threshold is not None:
        config.dedupe.phash_threshold = args.threshold
    if args.text_threshold is not None:
        config.dedupe.text_threshold = args.text_threshold
    catalog = open_catalog(ws)
    try:
        report = run(ws, catalog, config.dedupe, show_progress=sys.stderr.isatty())
        sheet = _sheet(ws, catalog) if not args.no_sheet else None
    finally:
        catalog.close()
    print("\n".join(report.lines()))
    if sheet:
        print(f"contact sheet: {sheet}")
    return 0


def cmd_groups(args: argparse.Namespace) -> int:
    _, ws = load(args)
    catalog = open_catalog(ws)
    try:
        store.ensure(catalog)
        if args.templates:
            rows = catalog.execute(
                "SELECT template_id, page_id FROM template_groups ORDER BY template_id, page_id"
            ).fetchall()
            by: dict[str, list[str]] = {}
            for tid, pid in rows:
                by.setdefault(tid, []).append(pid)
            groups = [[h, *[m for m in ms if m != h]] for h, ms in by.items()]
        else:
            groups = _ok_groups(catalog)
    finally:
        catalog.close()
    if not args.all:
        groups = [g for g in groups if len(g) > 1]
    groups.sort(key=lambda g: (-len(g), g[0]))
    if args.json:
        print(json.dumps(groups))
    else:
        for g in groups:
            print(" ".join(g))
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    _, ws = load(args)
    catalog = open_catalog(ws)
    try:
        store.ensure(catalog)
        print(_sheet(ws, catalog, templates=args.templates))
    finally:
        catalog.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dedupe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="hash new pages, find duplicates, update the groups")
    add_common_args(p)
    p.add_argument("--threshold", type=int, default=None,
                   help="pHash bits for near duplicates of pages with little text (default: config)")
    p.add_argument("--text-threshold", type=int, default=None,
                   help="text SimHash bits for near duplicates of pages with text (default: config)")
    p.add_argument("--no-sheet", action="store_true", help="do not write the contact sheet")
    p.set_defaults(func=cmd_run)
    g = sub.add_parser("groups", help="print the duplicate groups, canonical first")
    add_common_args(g)
    g.add_argument("--json", action="store_true", help="a JSON list of lists of page ids")
    g.add_argument("--all", action="store_true", help="include pages without duplicates")
    g.add_argument("--templates", action="store_true", help="same-template groups instead")
    g.set_defaults(func=cmd_groups)
    s = sub.add_parser("sheet", help="write the contact sheet PNG of the groups")
    add_common_args(s)
    s.add_argument("--templates", action="store_true", help="same-template groups instead")
    s.set_defaults(func=cmd_sheet)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    run_main(main)
