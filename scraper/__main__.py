"""python -m scraper {capture,overlay,crawl,status,serve,check}."""

from __future__ import annotations

import argparse

from catalog.cli import run_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scraper", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from .cli import capture, check, crawl

    capture.register(sub)
    crawl.register(sub)
    check.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    run_main(main)
