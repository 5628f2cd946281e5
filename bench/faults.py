"""Fault campaign: every long command SIGKILLed at seeded random moments, rerun to the end,
and its end state compared with an uninterrupted run of the same command measured first
(the baseline: its duration bounds the kill moments, its files and catalog rows are what
every interrupted run must end with).

Stages: crawl (real Chromium on a served site), `dedupe run`, `preannotate`, `export`,
`model train` (resumed with --resume; its weights compared to float tolerance), and
`annotate push` and `annotate pull` against a Label Studio that the bench starts as the
tests do (tests/labelstudio_fixture.py) and stops at the end; `--skip-studio` leaves those
two out. What the comparison leaves out, and why, is listed in tests/faults/campaign.py.

Target: zero differences. The table gives, per stage, the baseline's seconds, the trials,
the kills that hit a running command, the kills whose trial ended in the same state, and
the trials that differed. Exit 1 when any trial differs.

    .venv/bin/python bench/faults.py [--trials 10] [--kills 3] [--seed 1] [--pages 120]
        [--skip-studio] [--stage push ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from tests.faults.campaign import Stage, campaign, stages  # noqa: E402

STUDIO_STAGES = ("push", "pull")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=10, help="interrupted runs per stage")
    ap.add_argument("--kills", type=int, default=3, help="SIGKILLs per interrupted run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pages", type=int, default=120, help="pages of the synthetic workspace")
    ap.add_argument("--crawl-pages", type=int, default=30)
    ap.add_argument("--train-pages", type=int, default=8, help="pages of the release trained on")
    ap.add_argument("--push-pages", type=int, default=24, help="pages a push campaign pushes")
    ap.add_argument("--pull-pages", type=int, default=16, help="annotated tasks a pull reads")
    ap.add_argument("--skip-studio", action="store_true",
                    help="leave out push and pull (they start a Label Studio)")
    ap.add_argument("--stage", action="append", help="only these stages (repeatable)")
    args = ap.parse_args()
    chosen: dict[str, Stage | None] = {
        **stages(args.pages, args.crawl_pages, args.train_pages),
        **{name: None for name in STUDIO_STAGES}}  # made once the server is up
    names = args.stage or [n for n in chosen if not (args.skip_studio and n in STUDIO_STAGES)]
    unknown = [n for n in names if n not in chosen]
    if unknown:
        ap.error(f"no stage {', '.join(unknown)}: choose from {', '.join(chosen)}")
    rows = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="webseg-faults-")))
        base = {name: tmp for name in chosen}
        if any(n in STUDIO_STAGES for n in names):
            studio, root = start_studio_stages(stack, tmp, args.push_pages, args.pull_pages)
            chosen.update(studio)
            base.update(dict.fromkeys(studio, root))
        for name in names:
            print(f"{name}: baseline run, then {args.trials} trials of up to {args.kills} "
                  "kills", flush=True)
            seconds, trials = campaign(chosen[name], base[name], args.trials,
                                       args.kills, args.seed,
                                       say=lambda s: print("  " + s, flush=True))
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


def start_studio_stages(stack: ExitStack, tmp: Path, push_pages: int, pull_pages: int
                        ) -> tuple[dict[str, Stage], Path]:
    """Start a Label Studio (stopped when `stack` closes) and make the push and pull stages
    on it; (the stages, its local-files root, under which their workspaces must lie)."""
    from tests.faults.studio import studio_stages
    from tests.labelstudio_fixture import start_studio, studio_bin

    if not studio_bin().exists():
        sys.exit(f"{studio_bin()} is missing: make labelstudio-install, or --skip-studio")
    print("starting Label Studio (a first start migrates its database: minutes)", flush=True)
    srv = start_studio(tmp / "labelstudio")
    stack.callback(srv.stop)
    (tmp / "studio-config").mkdir()
    return studio_stages(srv, tmp / "studio-config", push_pages, pull_pages), srv.document_root


if __name__ == "__main__":
    sys.exit(main())
