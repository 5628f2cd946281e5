"""Train the open-or-keep decision of split.py on the dev pages of a Kreuzer corpus.

    python -m annotate.learn.train_split [--corpus DIR] [--out DIR] [--folds 5] [--dry-run]

Uses the captures and rendered truth that `python -m annotate evaluate --kreuzer DIR
--out DIR` caches in DIR (it captures what is missing) and only the pages that
kreuzer.split_of puts in dev: held-out pages are never read. The block tree of each page
is walked as segment_tree() walks it, but each container is opened or kept as the truth
wants (teacher forcing, so that containers the rules never reach are seen too), and the
features of every such decision are recorded with that answer. A logistic regression with
an L2 penalty is fitted to them; cross-validation over dev pages (the folds hold whole
pages) prints what the model gains over the rules on pages it was not fitted on, then the
model fitted on every dev page is written to annotate/propose/split_weights.py.

Same corpus, same captures: same file, byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog.config import PreannotateConfig
from catalog.workspace import Workspace
from segmentation.geometry import Rect, area, inter_area, iou
from segmentation.kreuzer_truth import truth_segments
from segmentation.metrics import Segment, bcubed, match_segments

from ..evaluate.kreuzer import capture_pages, list_pages, read_truths
from ..propose.boxes import PageBoxes, load_boxes
from ..propose.labelset import label_set
from ..propose.preannotate import load_gray
from ..propose.regions import propose_regions
from ..propose.segment import Opener, rect_of, segment_tree
from ..propose.split import FEATURES, features, learned_opener
from ..propose.tree import Node, build_tree

WEIGHTS_FILE = Path(__file__).resolve().parents[1] / "propose" / "split_weights.py"
# Truth segments this much inside a container are parts of it.
INSIDE = 0.6
# A container this close to a true segment is that segment, whatever it holds.
IS_SEGMENT = 0.7


@dataclass
class DevPage:
    name: str
    page: PageBoxes
    true: list[Segment]
    gray: np.ndarray | None


def should_open(node: Node, truth: Sequence[Rect]) -> bool:
    """What the truth wants at this container: open it when it holds several true
    segments, or one much smaller than itself that it does not match; keep it otherwise
    (it is a true segment, a part of one, or something the truth leaves out)."""
    r = rect_of(node)
    best = max((iou(r, t) for t in truth), default=0.0)
    if best >= IS_SEGMENT:
        return False
    inside = [t for t in truth if area(t) > 0 and inter_area(t, r) >= INSIDE * area(t)]
    if len(inside) >= 2:
        return True
    if len(inside) == 1:
        return best < 0.5 and area(inside[0]) < 0.5 * area(r)
    return False


def decisions(dev: DevPage, params: PreannotateConfig) -> tuple[list[list[float]], list[int]]:
    """Features and the truth's answer for each container the walk decides on."""
    root = build_tree(dev.page)
    xs: list[list[float]] = []
    ys: list[int] = []
    truth = [s.bbox for s in dev.true]
    if root is None:
        return xs, ys

    def teacher(node: Node, kids: list[Node], page: Rect, depth: int, rule: bool) -> bool:
        answer = should_open(node, truth)
        xs.append(features(node, kids, page, depth, rule))
        ys.append(int(answer))
        return answer

    segment_tree(root, params, teacher)
    return xs, ys


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> dict[str, Any]:
    """Logistic regression on standardised features by Newton's method; the bias is not
    penalised. Returns the model as split.probability() reads it."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {
        "features": list(FEATURES),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "weights": [round(float(v), 6) for v in w[:-1]],
        "bias": round(float(w[-1]), 6),
        "threshold": 0.5,
    }


def truth_opener(dev: DevPage) -> Opener:
    """The truth's own answers (should_open) on one page: the ceiling of any decision."""
    truth = [s.bbox for s in dev.true]
    return lambda node, kids, page, depth, rule: should_open(node, truth)


def score(devs: Sequence[DevPage], opener_of: Callable[[DevPage], Opener | None],
          params: PreannotateConfig) -> dict[str, float]:
    """Mean segment F1, BCubed P/R/F1 over pages and label accuracy of matched segments,
    with the opener `opener_of` gives for each page."""
    labels = label_set(None)
    rows, pairs = [], []
    for d in devs:
        regions = propose_regions(d.page, labels, params, d.gray, opener_of(d))
        pred = [Segment(r.label, tuple(r.bbox)) for r in regions]
        m = match_segments(pred, d.true)
        rows.append((m.f1, *bcubed(pred, d.true, d.page.width, d.page.height)))
        pairs += [(d.true[j].label, pred[i].label) for i, j, _ in m.matches]
    a = np.array(rows)
    acc = float(np.mean([t == p for t, p in pairs])) if pairs else 0.0
    return {"seg_f1": a[:, 0].mean(), "bcubed_p": a[:, 1].mean(), "bcubed_r": a[:, 2].mean(),
            "bcubed_f1": a[:, 3].mean(), "label_accuracy": acc}


def load_dev(corpus: Path, out: Path) -> list[DevPage]:
    """The dev pages' captures and truth, from the evaluation cache in `out`."""
    pages = [p for p in list_pages(corpus) if p.split == "dev"]
    truths = read_truths(corpus, pages, out / "truth.json")
    ws = Workspace(out / "workspace")
    ids = capture_pages(corpus, pages, ws)
    devs = []
    for p in pages:
        pid = ids.get(p.name)
        if pid is None or not ws.boxes_json(pid).exists():
            continue
        page = load_boxes(ws.boxes_json(pid))
        true = truth_segments(truths[p.name], page.width, page.height)
        if true:
            gray = load_gray(ws.screenshot(pid), (page.width, page.height))
            devs.append(DevPage(p.name, page, true, gray))
    return devs


def _line(name: str, s: dict[str, float]) -> str:
    return (f"{name:>28}: segment F1 {s['seg_f1']:.3f}  BCubed P {s['bcubed_p']:.3f} "
            f"R {s['bcubed_r']:.3f} F1 {s['bcubed_f1']:.3f}  label accuracy "
            f"{s['label_accuracy']:.3f}")


def write_weights(model: dict[str, Any], pages: int, examples: int, path: Path) -> None:
    """split_weights.py: one line per feature, then the model as split.py reads it."""
    rows = "\n".join(
        f'    "{f}": ({m!r}, {s!r}, {w!r}),'
        for f, m, s, w in zip(model["features"], model["mean"], model["scale"],
                              model["weights"], strict=True)
    )
    text = (
        '"""Weights of the open-or-keep decision (split.py), written by\n'
        "`python -m annotate.learn.train_split` from the dev pages of the Kreuzer corpus "
        f"({pages} pages,\n{examples} decisions). Do not edit by hand: train again.\"\"\"\n\n"
        "# feature: (mean, scale, weight); a feature counts as weight * (x - mean) / scale.\n"
        f"WEIGHTS = {{\n{rows}\n}}\n"
        f"BIAS = {model['bias']!r}\n"
        f"THRESHOLD = {model['threshold']!r}  # P(open) from which a container is opened\n\n"
        "MODEL = {\n"
        '    "features": list(WEIGHTS),\n'
        '    "mean": [v[0] for v in WEIGHTS.values()],\n'
        '    "scale": [v[1] for v in WEIGHTS.values()],\n'
        '    "weights": [v[2] for v in WEIGHTS.values()],\n'
        '    "bias": BIAS,\n'
        '    "threshold": THRESHOLD,\n'
        "}\n"
    )
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m annotate.learn.train_split", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="../shared/corpus/kreuzer-popular")
    ap.add_argument("--out", default="datasets/kreuzer-eval",
                    help="evaluation dir whose captures and truth are reused")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds (0: none)")
    ap.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the weights")
    ap.add_argument("--dry-run", action="store_true", help="do not write split_weights.py")
    args = ap.parse_args(argv)
    params = PreannotateConfig()
    devs = load_dev(Path(args.corpus), Path(args.out))
    if not devs:
        print("no dev page could be loaded", file=sys.stderr)
        return 1
    per_page = [decisions(d, params) for d in devs]
    x = np.array([v for xs, _ in per_page for v in xs], dtype=np.float64)
    y = np.array([v for _, ys in per_page for v in ys], dtype=np.float64)
    print(f"{len(devs)} dev pages, {len(y)} decisions, {int(y.sum())} of them 'open'")
    if args.folds > 1:
        print(_line("rules", score(devs, lambda d: None, params)))
        print(_line("truth's decisions (ceiling)", score(devs, truth_opener, params)))
        folds = [list(range(i, len(devs), args.folds)) for i in range(args.folds)]
        scores = []
        for fold in folds:
            train = [k for k in range(len(devs)) if k not in fold]
            xt = np.array([v for k in train for v in per_page[k][0]], dtype=np.float64)
            yt = np.array([v for k in train for v in per_page[k][1]], dtype=np.float64)
            opener = learned_opener(fit(xt, yt, args.l2))
            s = score([devs[k] for k in fold], lambda d, o=opener: o, params)
            scores.append((len(fold), s))
        total = sum(n for n, _ in scores)
        cv = {k: sum(n * s[k] for n, s in scores) / total for k in scores[0][1]}
        print(_line(f"learned ({args.folds}-fold, dev)", cv))
    model = fit(x, y, args.l2)
    fitted = learned_opener(model)
    print(_line("learned (fitted on dev)", score(devs, lambda d: fitted, params)))
    for name, w in zip(FEATURES, model["weights"], strict=True):
        print(f"  {name:>14} {w:+.3f}")
    if not args.dry_run:
        write_weights(model, len(devs), len(y), WEIGHTS_FILE)
        print(f"wrote {WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
