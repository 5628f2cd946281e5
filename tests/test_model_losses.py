"""The soft Jaccard loss: zero for a confident exact answer, false pixels of an absent class
cost, ignored pixels count for nothing, and it is one minus the IoU for hard answers."""

from __future__ import annotations

import torch

from model.losses import soft_jaccard, weighted_ce
from model.release import IGNORE


def confident(labels: torch.Tensor, n: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, n).permute(0, 3, 1, 2).float() * 50.0


def test_an_exact_confident_answer_costs_nothing():
    t = torch.randint(0, 4, (2, 16, 16))
    assert soft_jaccard(confident(t), t).item() < 1e-3


def test_false_pixels_of_a_class_absent_from_the_batch_cost():
    t = torch.zeros(1, 16, 16, dtype=torch.long)
    t[0, :4] = 1
    pred = t.clone()
    base = soft_jaccard(confident(pred), t).item()
    pred[0, 8:12, :8] = 2  # 32 pixels called class 2, which the truth does not hold
    assert soft_jaccard(confident(pred), t).item() > base + 0.2


def test_for_hard_answers_it_is_one_minus_the_mean_iou_of_the_foreground():
    t = torch.zeros(1, 10, 10, dtype=torch.long)
    t[0, :5] = 1  # 50 pixels
    pred = torch.zeros_like(t)
    pred[0, :4] = 1  # 40 of them found, none false
    t[0, 9, 9], pred[0, 9, 9] = 2, 2  # class 2: one pixel, found
    t[0, 8, 8], pred[0, 8, 8] = 3, 3  # class 3: one pixel, found
    # smooth 0: exact IoUs 0.8, 1, 1
    loss = soft_jaccard(confident(pred), t, smooth=0.0).item()
    assert abs(loss - (1 - (0.8 + 1 + 1) / 3)) < 1e-4


def test_ignored_pixels_count_for_neither_side():
    t = torch.zeros(1, 8, 8, dtype=torch.long)
    t[0, :2] = 1
    pred = t.clone()
    pred[0, 6:] = 2  # wrong, but only where the truth is ignored
    ignored = t.clone()
    ignored[0, 6:] = IGNORE
    assert soft_jaccard(confident(pred), ignored).item() < 1e-3
    assert weighted_ce(confident(pred), ignored, torch.ones(4)).item() < 1e-3


def test_its_gradient_lowers_the_false_class_s_logit():
    t = torch.zeros(1, 8, 8, dtype=torch.long)
    logits = torch.zeros(1, 3, 8, 8, requires_grad=True)
    soft_jaccard(logits, t).backward()
    assert (logits.grad[0, 1] > 0).all() and (logits.grad[0, 0] < 0).all()
