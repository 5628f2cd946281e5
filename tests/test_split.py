"""The open-or-keep decision of the block tree: the hook in segment_tree, the features
and logistic model of split.py, and the truth's answers that train_split.py learns from,
on small hand-made pages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from annotate.learn.train_split import fit, should_open
from annotate.propose.boxes import Box, parse_boxes
from annotate.propose.labelset import label_set
from annotate.propose.preannotate import preannotate
from annotate.propose.regions import propose_regions
from annotate.propose.split import FEATURES, features, learned_opener, probability
from annotate.propose.split_weights import MODEL
from annotate.propose.tree import Node, build_tree
from segmentation import geometry as g
from tests.test_preannotate import classic_page

MAIN, SIDE = (0, 120, 700, 1100), (720, 120, 280, 1100)


def _rects(regions):
    return [tuple(r.bbox) for r in regions]


def test_an_opener_decides_which_containers_are_taken_apart():
    page = parse_boxes(classic_page())
    rules = propose_regions(page, label_set())
    kept = propose_regions(page, label_set(), opener=lambda *_: False)
    # The rules keep the content row (main column and sidebar) as one part.
    assert len(rules) == 3 and _rects(kept) == _rects(rules)
    # Opening what has parts splits the row into its columns.
    split = propose_regions(page, label_set(), opener=lambda node, kids, *_: bool(kids))
    assert len(split) == 4 and {r.source for r in split} == {"tree"}
    assert any(g.iou(r, MAIN) > 0.9 for r in _rects(split))
    assert any(g.iou(r, SIDE) > 0.9 for r in _rects(split))
    # Opening every container leaves the groups of objects inside them.
    loose = propose_regions(page, label_set(), opener=lambda *_: True)
    assert len(loose) == 4 and {r.source for r in loose} == {"cluster"}


def test_the_opener_is_told_the_rules_verdict_and_the_depth():
    page = parse_boxes(classic_page())
    seen = []

    def echo(node, kids, content, depth, rule):
        seen.append((round(node.rect[1]), depth, rule))
        return rule

    assert _rects(propose_regions(page, label_set(), opener=echo)) == _rects(
        propose_regions(page, label_set()))
    # Header, content row and footer sit right under the opened page: depth 1, all kept.
    assert sorted(seen) == [(0, 1, False), (120, 1, False), (1220, 1, False)]


def _node_at(root, rect):
    return next(n for n in root.walk() if g.iou(n.rect, rect) > 0.99)


def test_features_of_a_row_of_columns_and_of_a_named_band():
    root = build_tree(parse_boxes(classic_page(landmarks=True)))
    row = _node_at(root, (0, 120, 1000, 1100))
    f = dict(zip(FEATURES, features(row, row.children, root.content, 1, False), strict=True))
    assert f["columns"] == 1.0  # main column and sidebar side by side
    assert f["kids"] == pytest.approx(math.log(3))
    assert f["has_band"] == 0.0  # the main column is 70 % of the row's width
    assert f["rule"] == 0.0 and f["depth"] == 1.0 and f["named"] == 0.0
    header = _node_at(root, (0, 0, 1000, 120))
    h = dict(zip(FEATURES, features(header, [], root.content, 1, False), strict=True))
    assert h["named"] == 1.0 and h["touches_top"] == 1.0 and h["touches_bottom"] == 0.0
    # Measured against the page's content (what its objects span), not its box.
    assert h["width_share"] == pytest.approx(1000 / root.content[2])


def _model(**weights):
    return {"features": list(FEATURES), "mean": [0.0] * len(FEATURES),
            "scale": [1.0] * len(FEATURES),
            "weights": [weights.get(f, 0.0) for f in FEATURES], "bias": -2.0}


def test_a_model_that_follows_the_rules_verdict_gives_the_rules_regions():
    model = _model(rule=4.0)
    x = [0.0] * len(FEATURES)
    assert probability(x, model) == pytest.approx(1 / (1 + math.exp(2)))
    x[FEATURES.index("rule")] = 1.0
    assert probability(x, model) == pytest.approx(1 / (1 + math.exp(-2)))
    page = parse_boxes(classic_page())
    assert _rects(propose_regions(page, label_set(), opener=learned_opener(model))) == _rects(
        propose_regions(page, label_set()))


def test_a_model_trained_on_other_features_is_refused():
    model = _model()
    model["features"] = ["rule", "something else"]
    with pytest.raises(ValueError, match="train_split"):
        learned_opener(model)


def test_the_shipped_model_reads_its_own_features():
    assert tuple(MODEL["features"]) == FEATURES
    assert len(MODEL["weights"]) == len(MODEL["mean"]) == len(MODEL["scale"]) == len(FEATURES)
    regions = propose_regions(parse_boxes(classic_page()), label_set(), opener=learned_opener())
    assert regions and all(0 < r.score <= 1 for r in regions)


def test_fit_learns_a_threshold_on_one_feature():
    rng = np.random.default_rng(0)
    x = rng.random((400, len(FEATURES)))
    y = (x[:, 3] > 0.5).astype(np.float64)
    model = fit(x, y, l2=0.01)
    hits = [(probability(row, model) >= 0.5) == bool(t) for row, t in zip(x, y, strict=True)]
    assert np.mean(hits) >= 0.95
    assert np.argmax(np.abs(model["weights"])) == 3


def _container(rect):
    return Node(Box(0, "block", rect), rect, content=rect)


def test_the_truth_opens_a_container_holding_several_true_segments():
    truth = [(0, 0, 1000, 300), (0, 300, 1000, 400), (0, 700, 1000, 300)]
    assert should_open(_container((0, 0, 1000, 1000)), truth)
    # A container that is a true segment, or a part of one, is kept.
    assert not should_open(_container((0, 300, 1000, 390)), truth)
    assert not should_open(_container((0, 300, 500, 300)), truth)
    # Nearly one true segment with a sliver of another: that segment, kept.
    assert not should_open(_container((0, 0, 1000, 330)), truth)
    # Nothing the truth marks: kept.
    assert not should_open(_container((0, 2000, 500, 400)), truth)


def test_the_truth_opens_a_container_around_one_much_smaller_segment():
    truth = [(100, 100, 200, 200)]
    assert should_open(_container((0, 0, 1000, 1000)), truth)
    assert not should_open(_container((90, 90, 220, 220)), truth)


def test_preannotate_passes_the_opener_on():
    page = parse_boxes(classic_page())
    rules, _ = preannotate(page, "p", label_set())
    split, _ = preannotate(page, "p", label_set(), opener=lambda node, kids, *_: bool(kids))
    assert len(rules.regions) == 3 and len(split.regions) == 4
