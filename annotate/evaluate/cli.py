"""python -m annotate evaluate: pre-annotations scored against human truth, beside baselines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from catalog.cli import add_common_args, load
from catalog.config import parse_granularity
from segmentation.kreuzer_truth import TRUTH_LEVELS

from ..propose import label_set, learned_opener
from .evaluation import evaluate_kreuzer, evaluate_workspace


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "evaluate", help="score pre-annotations against human ground truth, beside baselines"
    )
    add_common_args(ev)
    ev.add_argument("--kreuzer", default=None, metavar="DIR",
                    help="Kreuzer-format corpus (index.blocks.html per page) as ground truth; "
                         "default: annotations pulled from Label Studio")
    ev.add_argument("--out", default=None, help="output dir (default: <workspace>/evaluation)")
    ev.add_argument("--split", choices=("all", "dev", "heldout"), default="all",
                    help="Kreuzer pages to use (fixed split by folder name hash)")
    ev.add_argument("--page", action="append", default=None, metavar="NAME",
                    help="only Kreuzer pages whose folder contains NAME (repeatable)")
    ev.add_argument("--limit", type=int, default=0, help="at most this many pages")
    ev.add_argument("--worst", type=int, default=9, help="pages on the contact sheet")
    ev.add_argument("--learned-split", action="store_true",
                    help="Kreuzer: open or keep containers by the learned model "
                         "(annotate/propose/split_weights.py) instead of the rules")
    ev.add_argument("--truth", choices=TRUTH_LEVELS, default="coarse",
                    help="Kreuzer: top-level blocks (coarse) or their sub-blocks (fine)")
    ev.add_argument("--granularity", default=None, metavar="G",
                    help="propose at this granularity (0 coarse ... 1 fine, or coarse, medium, "
                         "fine) instead of the config's")
    ev.set_defaults(func=_evaluate)

    im = sub.add_parser(
        "import-kreuzer", help="capture a Kreuzer corpus's dev pages into the workspace with "
                               "their truth as human annotations (a training set)")
    add_common_args(im)
    im.add_argument("corpus", metavar="DIR", help="Kreuzer-format corpus")
    im.add_argument("--truth", choices=TRUTH_LEVELS, default="coarse",
                    help="top-level blocks (coarse) or their sub-blocks (fine)")
    im.add_argument("--page", action="append", default=None, metavar="NAME",
                    help="only dev pages whose folder contains NAME (repeatable)")
    im.set_defaults(func=_import_kreuzer)


def _evaluate(args: argparse.Namespace) -> int:
    config, ws = load(args)
    labels = label_set(config.labels)
    out = Path(args.out) if args.out else ws.root / "evaluation"
    params = config.preannotate
    if args.granularity is not None:
        params.granularity = parse_granularity(args.granularity)
    if args.kreuzer:
        opener = learned_opener() if args.learned_split else None
        evaluate_kreuzer(Path(args.kreuzer), out, labels, split=args.split, limit=args.limit,
                         names=args.page, worst=args.worst, params=params,
                         opener=opener, truth_level=args.truth)
    else:
        evaluate_workspace(ws, out, labels, worst=args.worst, params=params)
    return 0


def _import_kreuzer(args: argparse.Namespace) -> int:
    from .kreuzer_import import import_kreuzer

    config, ws = load(args)
    done, left_out = import_kreuzer(Path(args.corpus), ws, label_set(config.labels),
                                    config.preannotate, args.truth, args.page)
    for line in left_out:
        print(f"left out {line}", file=sys.stderr)
    print(f"imported {done} Kreuzer dev page(s) with their {args.truth} truth as human "
          f"annotations into {ws.root} ({len(left_out)} left out); held-out pages are never "
          "imported")
    return 0 if done else 1
