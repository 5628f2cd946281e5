"""`python -m model serve`: the app on waitress, bound to 127.0.0.1."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from catalog.cli import add_common_args, load

from ..store import resolve_model
from .app import ServeConfig, create_app
from .memory import keep_freed_memory


def cmd_serve(argv: list[str]) -> int:
    keep_freed_memory()  # before waitress and the workers start their threads
    p = argparse.ArgumentParser(
        prog="python -m model serve",
        description="The preview page, the JSON API and Label Studio's ML backend API.")
    p.add_argument("--model", default=None,
                   help="models/mNNNN or mNNNN (default: the workspace's latest)")
    add_common_args(p)
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                   help="a host whose URLs are fetched although it resolves to a private "
                   "address (repeat; 127.0.0.1 for local pages)")
    p.add_argument("--workers", type=int, default=1, help="predictions run at once")
    p.add_argument("--queue", type=int, default=4, help="requests that may wait; more get 503")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a request may wait")
    p.add_argument("--threads", type=int, default=2, help="torch threads per prediction")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = p.parse_args(argv)
    if args.model and Path(args.model).is_dir():
        model_dir = Path(args.model)
    else:
        _, ws = load(args)
        model_dir = resolve_model(args.model, ws.root / "models")
    cfg = ServeConfig(model=model_dir, allow_hosts=frozenset(h.lower() for h in args.allow_host),
                      workers=args.workers, queue=args.queue, timeout_s=args.timeout,
                      threads=args.threads, device=args.device)
    app = create_app(cfg)
    from waitress import serve

    version = app.extensions["served"].current().version
    print(f"serving model {version} on http://127.0.0.1:{args.port}/", file=sys.stderr,
          flush=True)
    serve(app, host="127.0.0.1", port=args.port, ident="model-serve", **waitress_options(cfg))
    return 0


def waitress_options(cfg: ServeConfig) -> dict:
    """How waitress runs the app (the tests' live server runs it the same way)."""
    return {
        # Waitress refuses (plain text) bodies past twice the limit; below that Flask says
        # why.
        "max_request_body_size": 2 * cfg.max_bytes,
        # Enough connection threads that /health answers while every worker and queue
        # place is taken; the work itself is bounded by the queue, not by these threads.
        "threads": cfg.workers + cfg.queue + 4,
        # A screenshot is megabytes. Waitress reads 8 KiB per turn of its event loop and
        # spools a body over 512 KiB to a temporary file: a 3.6 MB upload took 11-60 ms
        # (p50, loaded 2-core machine) to reach the app, 4-11 ms with these. Screenshots
        # up to 16 MiB stay in memory (a hundred connections hold at most 1.6 GB); larger
        # ones still spool.
        "recv_bytes": 256 * 1024,
        "inbuf_overflow": 16 * 1024 * 1024,
    }
