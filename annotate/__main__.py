"""python -m annotate {preannotate,evaluate,import-kreuzer,learn,push,pull,report}."""

from __future__ import annotations

import argparse

from catalog.cli import run_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m annotate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # Each module registers its own subcommands and sets `func` on them.
    from .evaluate import cli as evaluate_cli
    from .learn import cli as learn_cli
    from .propose import cli as propose_cli
    from .studio import cli as studio_cli

    propose_cli.register(sub)
    evaluate_cli.register(sub)
    learn_cli.register(sub)
    studio_cli.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    run_main(main)
