"""The simulated annotator: does learning a team's convention from its first corrected pages
make the proposal agree with the rest?

On the Kreuzer corpus, for each of its two truths (coarse: the top-level blocks, the
convention the rules were tuned on; fine: their sub-blocks), k = 0, 5, 10, 20 dev pages'
truth stand for the team's first corrections: `annotate learn`'s fit (annotate/learn/
convention.py) learns the convention from them, and the held-out pages (always the same
set, never learned from) are proposed in it and scored: segment F1, BCubed F1 and the
region edits an annotator would still make per page (kept, moved, deleted, added, as
`annotate report` counts them). Each k > 0 is averaged over several random choices of the
k pages; the unadapted rules (k = 0) and the naive DOM split are measured in the same run.
The learner goes as `annotate learn` goes: the setting (granularity, menus), then the
open-or-keep decision refitted on the k pages (kept only when it beats the setting on them,
cross-validated; from split_refit.MIN_SPLIT_PAGES pages), then, with --model, the model
stage's predictions (kept only when they help on the k pages). The "setting only" columns
are the granularity-only convention, for comparison. With --model, the rows "+ model: ..."
are the rules with each use of the model on every held-out page (no learning): where the
model helps at all.

Targets: with 20 pages, held-out segment F1 at least 0.10 above the unadapted rules on the
fine truth (the convention the rules were not tuned for) and no lower on the coarse one;
the curve never falls as k grows by more than the spread between draws. Exit 1 when missed.

    .venv/bin/python bench/adapt.py [--corpus DIR] [--out DIR] [--draws 5] [--model DIR]

Captures and rendered truth are shared with bench/preannotate.py (bench/out/preannotate/).
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, pstdev

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.progress import Progress  # noqa: E402

from annotate.evaluate.baselines import naive_split  # noqa: E402
from annotate.evaluate.evaluation import score  # noqa: E402
from annotate.evaluate.kreuzer import capture_pages, list_pages, read_truths  # noqa: E402
from annotate.learn.convention import (  # noqa: E402
    LearningPage,
    Setting,
    candidates,
    choose,
    learn_labels,
    propose,
)
from annotate.learn.model_use import USES, ModelUse, choose_model_use  # noqa: E402
from annotate.learn.split_refit import refit_split  # noqa: E402
from annotate.propose import label_set, learned_opener, load_boxes, load_gray  # noqa: E402
from annotate.propose.model_input import predict_pages  # noqa: E402
from annotate.propose.model_regions import combine, dom_coverage  # noqa: E402
from annotate.propose.regions import propose_regions  # noqa: E402
from annotate.studio.report import pair_regions  # noqa: E402
from catalog.config import PreannotateConfig  # noqa: E402
from catalog.workspace import Workspace  # noqa: E402
from segmentation.kreuzer_truth import truth_segments  # noqa: E402
from segmentation.metrics import Segment, match_segments  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "kreuzer-popular"
KS = (0, 5, 10, 20)
GAIN_TARGET = 0.10


@dataclass
class Page:
    name: str
    learning: LearningPage  # boxes, screenshot and truth of one truth level


def edits(pred: list[Segment], true: list[Segment]) -> dict[str, int]:
    as_regions = lambda segs: [{"label": s.label, "bbox": list(s.bbox)} for s in segs]  # noqa: E731
    out = {"kept": 0, "moved": 0, "deleted": 0, "added": 0}
    for state, _, _ in pair_regions(as_regions(pred), as_regions(true)):
        out[state] += 1
    return out


def load(corpus: Path, out: Path, level: str, params: PreannotateConfig,
         model: Path | None = None) -> dict[str, list[Page]]:
    pages = list_pages(corpus)
    truths = read_truths(corpus, pages, out / "truth.json")
    ws = Workspace(out / "workspace")
    ids = capture_pages(corpus, pages, ws)
    by_split: dict[str, list[Page]] = {"dev": [], "heldout": []}
    for p in pages:
        pid = ids.get(p.name)
        if pid is None or not ws.boxes_json(pid).exists():
            continue
        boxes = load_boxes(ws.boxes_json(pid))
        true = truth_segments(truths[p.name], boxes.width, boxes.height, level)
        if not true:
            continue
        gray = load_gray(ws.screenshot(pid), (boxes.width, boxes.height)) if params.pixels else None
        by_split[p.split].append(Page(p.name, LearningPage(pid, boxes, gray, true, "")))
    if model is not None:
        every = [q.learning for q in by_split["dev"] + by_split["heldout"]]
        found = predict_pages(model, {lp.page_id: ws.screenshot(lp.page_id) for lp in every},
                              out / "model")
        for lp in every:
            lp.prediction = found[lp.page_id]
    return by_split


def learned_proposal(lp: LearningPage, labels, params: PreannotateConfig, regions: list,
                     use: ModelUse) -> list[Segment]:
    """A held-out page's regions (proposed with the learned split decision) as the learned
    convention's use of the model leaves them."""
    if lp.prediction is not None and use.used:
        regions, _ = combine(regions, lp.prediction, dom_coverage(lp.boxes, lp.gray), labels,
                             use.apply(params))
    return [Segment(r.label, tuple(r.bbox)) for r in regions]


def heldout_figures(pages: list[Page], settings: list[Setting], labels, params, bar, task
                    ) -> tuple[dict[Setting, list[dict]], list[dict]]:
    """Per setting and held-out page: its proposal, segment and BCubed F1; and the naive
    split's figures."""
    figures: dict[Setting, list[dict]] = {}
    for s in settings:
        rows = []
        for p in pages:
            lp = p.learning
            pred = propose(lp, labels, s.apply(params))
            f = score(pred, lp.truth, lp.boxes.width, lp.boxes.height)
            rows.append({"pred": pred, "seg_f1": f["seg_f1"], "bcubed_f1": f["bcubed_f1"]})
            bar.advance(task)
        figures[s] = rows
    naive = []
    for p in pages:
        lp = p.learning
        pred = [Segment("segment", r) for r in naive_split(lp.boxes)]
        f = score(pred, lp.truth, lp.boxes.width, lp.boxes.height)
        naive.append({"seg_f1": f["seg_f1"], "bcubed_f1": f["bcubed_f1"],
                      **edits(pred, lp.truth)})
        bar.advance(task)
    return figures, naive


def run_level(level: str, by_split: dict[str, list[Page]], draws: int, seed: int,
              bar) -> list[dict]:
    labels = label_set()
    params = PreannotateConfig()
    settings = candidates(params)
    own = Setting(params.granularity, params.header_menu)
    dev, held = by_split["dev"], by_split["heldout"]
    task = bar.add_task(f"{level}: scoring settings", total=len(settings) * (len(dev) + len(held))
                        + len(held))
    dev_f1 = {s: [match_segments(propose(p.learning, labels, s.apply(params)),
                                 p.learning.truth).f1 for p in dev] for s in settings}
    bar.advance(task, len(settings) * len(dev))
    held_fig, naive = heldout_figures(held, settings, labels, params, bar, task)
    with_model = any(p.learning.prediction is not None for p in held)
    rows = []

    def figures_of(pred: list[Segment], p: Page) -> dict:
        lp = p.learning
        f = score(pred, lp.truth, lp.boxes.width, lp.boxes.height)
        return {"seg_f1": f["seg_f1"], "bcubed_f1": f["bcubed_f1"], **edits(pred, lp.truth)}

    dom: dict[tuple[Setting, int], list] = {}  # held-out DOM regions by the rules, kept

    def measure(chosen: Setting, label_map: dict[str, str], split_model, use: ModelUse) -> dict:
        per_page, only = [], []
        opener = learned_opener(split_model) if split_model else None
        for i, (p, f) in enumerate(zip(held, held_fig[chosen], strict=True)):
            only.append(f)
            if opener is None and not use.used:
                pred = f["pred"]
            else:
                lp, cfg = p.learning, chosen.apply(params)
                if opener is None:
                    regions = dom.setdefault((chosen, i), propose_regions(
                        lp.boxes, labels, cfg, lp.gray))
                else:
                    regions = propose_regions(lp.boxes, labels, cfg, lp.gray, opener)
                pred = learned_proposal(lp, labels, cfg, regions, use)
            pred = [Segment(label_map.get(s.label, s.label), s.bbox) for s in pred]
            per_page.append(figures_of(pred, p))
        out = {k: mean(r[k] for r in per_page) for k in per_page[0]}
        out["seg_f1_setting"] = mean(r["seg_f1"] for r in only)
        out["bcubed_f1_setting"] = mean(r["bcubed_f1"] for r in only)
        return out

    rng = random.Random(seed)
    for k in KS:
        results = []
        for _ in range(1 if k == 0 else draws):
            names = []
            if k == 0:
                chosen, label_map, split_model, use = own, {}, None, ModelUse()
            else:
                idx = rng.sample(range(len(dev)), min(k, len(dev)))
                pages = [dev[i].learning for i in idx]
                chosen = choose({s: [v[i] for i in idx] for s, v in dev_f1.items()}, own)
                split_model, _ = refit_split(pages, labels, chosen.apply(params),
                                             [dev_f1[chosen][i] for i in idx])
                opener = learned_opener(split_model) if split_model else None
                use, _ = choose_model_use(pages, labels, chosen.apply(params), opener)
                label_map = learn_labels(pages, labels, chosen.apply(params), opener)
                names = (["split refitted"] if split_model else []) + (
                    [use.name] if use.used else [])
            results.append((", ".join([chosen.name, *names]),
                            measure(chosen, label_map, split_model, use)))
        keys = results[0][1].keys()
        rows.append({
            "truth": level, "k": k, "draws": len(results),
            **{key: mean(r[key] for _, r in results) for key in keys},
            "seg_f1_spread": pstdev([r["seg_f1"] for _, r in results]),
            "chosen": sorted({c for c, _ in results}),
        })
    if with_model:
        for use in USES:
            if not use.used:
                continue
            r = measure(own, {}, None, use)
            rows.append({"truth": level, "k": "rules", "draws": 1, **r, "seg_f1_spread": 0.0,
                         "chosen": [f"+ {use.name}"]})
    rows.append({"truth": level, "k": "naive", "draws": 1,
                 **{key: mean(r[key] for r in naive) for key in naive[0]},
                 "seg_f1_setting": float("nan"), "bcubed_f1_setting": float("nan"),
                 "seg_f1_spread": 0.0, "chosen": ["naive DOM split"]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "preannotate"))
    ap.add_argument("--draws", type=int, default=5, help="random choices of the k pages")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--truth", choices=("coarse", "fine", "both"), default="both",
                    help="which truth to measure against (the targets need both)")
    ap.add_argument("--model", default=None, metavar="DIR",
                    help="also weigh this model's predictions (a models/mNNNN folder)")
    args = ap.parse_args()
    model = Path(args.model) if args.model else None
    levels = ("coarse", "fine") if args.truth == "both" else (args.truth,)
    corpus, out = Path(args.corpus), Path(args.out)
    if not corpus.is_dir():
        print(f"error: Kreuzer corpus {corpus} not found (pass --corpus)", file=sys.stderr)
        return 2
    rows = []
    with Progress(transient=True) as bar:
        for level in levels:
            by_split = load(corpus, out, level, PreannotateConfig(), model)
            rows += run_level(level, by_split, args.draws, args.seed, bar)
    print(f"{'':<19}{'learned':>22}{'setting only':>16}")
    print(f"{'truth':<7}{'k':>6}{'draws':>6}{'seg F1':>8}{'±':>6}{'BCubed':>8}"
          f"{'seg F1':>8}{'BCubed':>8}"
          f"{'kept':>6}{'moved':>6}{'deleted':>8}{'added':>6}  chosen")
    for r in rows:
        print(f"{r['truth']:<7}{r['k']!s:>6}{r['draws']:>6}{r['seg_f1']:>8.3f}"
              f"{r['seg_f1_spread']:>6.3f}{r['bcubed_f1']:>8.3f}"
              f"{r['seg_f1_setting']:>8.3f}{r['bcubed_f1_setting']:>8.3f}{r['kept']:>6.1f}"
              f"{r['moved']:>6.1f}{r['deleted']:>8.1f}{r['added']:>6.1f}  "
              f"{'; '.join(r['chosen'])}")
    missed = []
    for level in levels:
        curve = [r for r in rows if r["truth"] == level and isinstance(r["k"], int)]
        base, last = curve[0]["seg_f1"], curve[-1]["seg_f1"]
        need = base + GAIN_TARGET if level == "fine" else base
        if last < need - 1e-9:
            missed.append(f"{level}: segment F1 with 20 pages {last:.3f} < {need:.3f}")
        for a, b in zip(curve, curve[1:], strict=False):
            if b["seg_f1"] < a["seg_f1"] - max(a["seg_f1_spread"], b["seg_f1_spread"]) - 1e-9:
                missed.append(f"{level}: the curve falls from k={a['k']} to k={b['k']}")
    curves = {level: [r for r in rows if r["truth"] == level and isinstance(r["k"], int)]
              for level in levels}
    print("held-out segment F1, unadapted -> 20 pages: " + ", ".join(
        f"{level} truth {c[0]['seg_f1']:.3f} -> {c[-1]['seg_f1']:.3f}"
        for level, c in curves.items()) + "; " + ("MISSED: " + "; ".join(missed) if missed
                                                   else "targets met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
