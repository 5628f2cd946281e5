"""python -m annotate preannotate | evaluate: DOM boxes to regions and masks, and their scores."""

from __future__ import annotations

import argparse

from catalog.cli import add_common_args


def register(sub: argparse._SubParsersAction) -> None:
    pre = sub.add_parser("preannotate", help="propose regions and element masks for captured pages")
    add_common_args(pre)
    pre.add_argument("pages", nargs="*", help="page ids (default: every captured page)")
    pre.add_argument("--force", action="store_true", help="redo pages that already have one")
    pre.set_defaults(func=_preannotate)

    ev = sub.add_parser("evaluate", help="score pre-annotations against human ground truth")
    add_common_args(ev)
    ev.add_argument("--kreuzer", default=None, help="Kreuzer-format corpus directory")
    ev.add_argument("--out", default=None, help="output dir (default: <workspace>/evaluation)")
    ev.set_defaults(func=_evaluate)


def _preannotate(args: argparse.Namespace) -> int:
    raise ValueError("preannotate is not available in this version yet")


def _evaluate(args: argparse.Namespace) -> int:
    raise ValueError("evaluate is not available in this version yet")
