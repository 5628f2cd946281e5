"""What every stage's command line shares: --config, --workspace, and friendly errors."""

from __future__ import annotations

import argparse
import errno
import shlex
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from .config import Config, ConfigError, load_config
from .db import Catalog, CatalogError
from .workspace import CorruptFile, Workspace


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="config file (default: ./pipeline.toml)")
    parser.add_argument(
        "--workspace", default=None, help="dataset workspace (default: datasets/<name>)"
    )


def load(args: argparse.Namespace) -> tuple[Config, Workspace]:
    config = load_config(args.config)
    root = Path(args.workspace) if args.workspace else config.workspace_dir()
    return config, Workspace(root)


def make_hint(target: str, ws: Workspace, config: Config) -> str:
    """The make command to suggest, with the workspace the user chose when it is not the
    config's default: `make pull`, or `make pull WORKSPACE=datasets/x`."""
    if Path(ws.root).resolve() == config.workspace_dir().resolve():
        return f"`make {target}`"
    return f"`make {target} WORKSPACE={shlex.quote(str(ws.root))}`"


def open_catalog(ws: Workspace) -> Catalog:
    ws.ensure()
    return Catalog(ws.catalog_path)


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a stage's main with the expected errors turned into one line and exit code 2."""
    try:
        code = main(argv)
    except (ConfigError, CorruptFile, ValueError, FileNotFoundError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except (OSError, sqlite3.OperationalError) as exc:
        full = (exc.errno in (errno.ENOSPC, errno.EDQUOT) if isinstance(exc, OSError)
                else "disk is full" in str(exc))  # SQLite's word for ENOSPC
        if not full:
            raise
        # Every write is to a temporary name renamed when complete: what was cut is gone.
        where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error: no space left on the device{where}: free some space (or move the "
              "workspace) and run the same command again; nothing half-written was kept",
              file=sys.stderr)
        code = 2
    sys.exit(code)
