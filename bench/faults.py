"""Fault campaign: every long command SIGKILLed at seeded random moments, rerun to the end,
and its end state compared with an uninterrupted run of the same command measured first
(the baseline: its duration bounds the kill moments, its files and catalog rows are what
every interrupted run must end with).

Stages: crawl (real Chromium on a served site), `dedupe run`, `preannotate`, `export`,
`model train` (resumed with --resume; its weights compared to float tolerance).
What the comparison leaves out, and why, is listed in tests/faults/campaign.py.

Target: zero differences. The table gives, per stage, the baseline's seconds, the trials,
the kills that hit a running command, the kills whose trial ended in the same state, and
the trials that differed. Exit 1 when any trial differs.

    .venv/bin/python bench/faults.py [--trials 10] [--kills 3] [--seed 1] [--pages 120]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from tests.faults.campaign import campaign, stages  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=10, help="interrupted runs per stage")
    ap.add_argument("--kills", type=int, default=3, help="SIGKILLs per interrupted run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pages", type=int, default=120, help="pages of the synthetic workspace")
    ap.add_argument("--crawl-pages", type=int, default=30)
    ap.add_argument("--train-pages", type=int, default=8, help="pages of the release trained on")
    ap.add_argument("--stage", action="append", help="only these stages (repeatable)")
    args = ap.parse_args()
    chosen = stages(args.pages, args.crawl_pages, args.train_pages)
    names = args.stage or list(chosen)
    rows = []
    with tempfile.TemporaryDirectory(prefix="webseg-faults-") as tmp:
        for name in names:
            print(f"{name}: baseline run, then {args.trials} trials of up to {args.kills} "
                  "kills", flush=True)
            seconds, trials = campaign(chosen[name], Path(tmp), args.trials, args.kills,
                                       args.seed, say=lambda s: print("  " + s, flush=True))
            kills = sum(t.kills for t in trials)
            survived = sum(t.kills for t in trials if t.survived)
            differing = [t for t in trials if not t.survived]
            rows.append((name, seconds, len(trials), kills, survived, len(differing)))
            for t in differing:
                print(f"  DIFFERS: {t.differences[:5]}")
    print()
    print(f"{'stage':12} {'baseline s':>10} {'trials':>6} {'kills':>6} {'survived':>8} "
          f"{'differing':>9}")
    for name, seconds, n, kills, survived, differing in rows:
        print(f"{name:12} {seconds:10.1f} {n:6d} {kills:6d} {survived:8d} {differing:9d}")
    tried = sum(r[3] for r in rows)
    ok = sum(r[4] for r in rows)
    bad = sum(r[5] for r in rows)
    print(f"faults tried {tried}, survived {ok}, trials with a difference {bad} "
          f"(target: 0) -> {'PASS' if bad == 0 else 'FAIL'}")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
