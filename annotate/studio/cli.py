"""python -m annotate {push,pull,report}: the Label Studio round trip."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from catalog.cli import add_common_args, load

from .client import StudioClient
from .env import client_credentials


def register(sub: argparse._SubParsersAction) -> None:
    push = sub.add_parser("push", help="send canonical pages and their pre-annotations to Label Studio")
    add_common_args(push)
    push.add_argument("--update-config", action="store_true",
                      help="migrate the project's labelling config to the current label set")
    push.add_argument("--no-progress", action="store_true", help="no progress bar")
    push.add_argument("--ml-backend", default=None, metavar="URL",
                      help="connect the project to this ML backend (python -m model serve)")
    push.add_argument("--order", choices=["id", "uncertainty"], default="id",
                      help="uncertainty: tasks the backend's model is least sure of first "
                      "(needs --ml-backend)")
    push.set_defaults(func=_push)

    pull = sub.add_parser("pull", help="bring new and changed annotations back (annotation.json)")
    add_common_args(pull)
    pull.set_defaults(func=_pull)

    report = sub.add_parser("report", help="how much annotators changed the pre-annotations")
    add_common_args(report)
    report.add_argument("--json", action="store_true", help="print the figures as JSON")
    report.add_argument("--sheet", default=None, metavar="PNG",
                        help="also draw proposed (thin) and final (thick) regions of the "
                             "annotated pages into this contact sheet")
    report.set_defaults(func=_report)


def _client(config) -> StudioClient:
    return StudioClient(
        client_credentials(), retries=config.labelstudio.retries,
        backoff=config.labelstudio.backoff,
    )


def _push(args: argparse.Namespace) -> int:
    from .push import describe, push

    config, ws = load(args)
    if not ws.catalog_path.exists():
        raise ValueError(f"{ws.root} has no catalog: capture pages first (make crawl)")
    client = _client(config)
    result = push(ws, config, client, update_config=args.update_config,
                  progress=not args.no_progress)
    for line in describe(result, client.url, ws.root):
        print(line)
    if args.order == "uncertainty" and not args.ml_backend:
        raise ValueError("--order uncertainty needs --ml-backend URL: the scores come from "
                         "the model")
    if args.ml_backend:
        from .backend import connect, order_by_uncertainty

        conn = connect(client, result.project_id, args.ml_backend)
        print(f"{'connected' if conn.created else 'already connected'}: ML backend "
              f"{args.ml_backend} (model {conn.model_version}) on project {result.project_id}; "
              f"predictions of {conn.predicted} tasks asked of it")
        if args.order == "uncertainty":
            order_by_uncertainty(client, result.project_id)
            print("tasks are served least certain first (Uncertainty sampling)")
    return 1 if result.rejected else 0


def _pull(args: argparse.Namespace) -> int:
    from .pull import pull

    config, ws = load(args)
    if not ws.catalog_path.exists():
        raise ValueError(f"{ws.root} has no catalog: capture and push pages first")
    result = pull(ws, config, _client(config))
    print(
        f"project {result.project_id}: {result.written} annotations written, "
        f"{result.unchanged} unchanged, {result.fetched} tasks read"
        + (f", {result.skipped_only} only skipped" if result.skipped_only else "")
        + (f", {result.unknown} tasks for pages not in this workspace" if result.unknown else "")
        + (f", {len(result.unreadable)} unreadable (named above)" if result.unreadable else "")
        + f" ({result.seconds:.1f} s)"
    )
    return 1 if result.unreadable else 0


def _report(args: argparse.Namespace) -> int:
    from .report import build_report, render

    config, ws = load(args)
    report = build_report(ws, config.labels.regions, config.labels.masks)
    print(json.dumps(report.to_dict(), indent=1) if args.json else render(report))
    if args.sheet:
        from .sheet import change_sheet

        shown = change_sheet(ws, Path(args.sheet))
        print(f"contact sheet of {shown} annotated pages: {args.sheet}", file=sys.stderr)
    return 0
