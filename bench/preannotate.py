"""Pre-annotation quality on the Kreuzer corpus, against the whole page and the naive DOM
split measured in the same run.

Runs `python -m annotate evaluate --kreuzer` on every page that has index.blocks.html
(captures and rendered truth are cached under bench/out/preannotate/, so a second run
only pre-annotates and scores). The pages are split once and for all by a hash of their
folder name (annotate/evaluate/kreuzer.py: split_of): "dev" pages were used to tune the method,
"heldout" pages were not, and the targets are judged on held-out pages only:

- segment F1 at IoU 0.5 >= 0.65 and pixel BCubed F1 >= 0.85 (top-level segments);
- label accuracy of matched segments >= 0.7;
- pre-annotation well under the capture: at most a quarter of its time per page.

The last line states the figures; exit 1 when a target is missed.

    .venv/bin/python bench/preannotate.py [--corpus DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "kreuzer-popular"

TARGETS = {"seg_f1": 0.65, "bcubed_f1": 0.85, "label_accuracy": 0.7, "speed_share": 0.25}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "preannotate"))
    args = ap.parse_args()
    out = Path(args.out)
    cmd = [sys.executable, "-m", "annotate", "evaluate", "--kreuzer", args.corpus,
           "--workspace", str(out), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        print(f"evaluate failed (exit {proc.returncode})")
        return 1
    summary = json.loads((out / "evaluation.json").read_text())["summary"]
    print()
    print(f"{'set':8} {'pages':>5}  {'method':11} {'seg F1':>7} {'BCubed F1':>9}")
    for name in ("dev", "heldout"):
        s = summary[name]
        for m in ("proposal", "whole_page", "naive_dom"):
            print(f"{name:8} {s['pages']:5d}  {m:11} {s[m]['seg_f1']:7.3f} {s[m]['bcubed_f1']:9.3f}")
        per = ", ".join(f"{k} {v['accuracy']:.2f}/{v['matched']}"
                        for k, v in s["label_accuracy_per_class"].items())
        print(f"{name:8} label accuracy {s['label_accuracy']:.3f} "
              f"(macro {s['label_accuracy_macro']:.3f}: {per})")
    held = summary["heldout"]
    ms, cap = summary["all"]["ms_per_page"], summary["all"]["capture_ms_per_page"] or 0.0
    missed = []
    if held["proposal"]["seg_f1"] < TARGETS["seg_f1"]:
        missed.append("segment F1")
    if held["proposal"]["bcubed_f1"] < TARGETS["bcubed_f1"]:
        missed.append("BCubed F1")
    if held["label_accuracy"] < TARGETS["label_accuracy"]:
        missed.append("label accuracy")
    if not cap or ms > TARGETS["speed_share"] * cap:
        missed.append("speed")
    print(
        f"held-out ({held['pages']} pages): segment F1 {held['proposal']['seg_f1']:.3f} "
        f"(naive DOM {held['naive_dom']['seg_f1']:.3f}, whole page "
        f"{held['whole_page']['seg_f1']:.3f}), BCubed F1 {held['proposal']['bcubed_f1']:.3f} "
        f"(naive {held['naive_dom']['bcubed_f1']:.3f}, whole {held['whole_page']['bcubed_f1']:.3f}), "
        f"label accuracy {held['label_accuracy']:.3f}; {ms:.0f} ms/page vs capture "
        f"{cap:.0f} ms/page; " + (f"MISSED: {', '.join(missed)}" if missed else "targets met")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
