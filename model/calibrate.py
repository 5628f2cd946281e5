"""Decision offsets: one number per element class, added to its logit before the argmax,
fitted on training pages once training ends.

The element loss weights a rare class up (data.class_weights: image 2.3 against background
0.38 on web-corpus v0002), which pays the network to call a pixel image wherever it might
be one: the weighted optimum sits log(2.3 / 0.38) = 1.8 logits away from the plain one.
That helps learning rare classes, but the argmax then over-predicts them. An offset per
class, searched for the best mean IoU on pixels the network was trained on, takes back the
part of that push that costs IoU. Val pages are never used, so val figures stay honest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .infer import Windowing, scaled_logits
from .metrics import Confusion
from .metrics import mean_iou as metrics_mean_iou
from .network import Normalise, SegNet
from .pagecache import PageCache, cache_dir, read_pages
from .picture_chooser import (
    PictureChooser,
    block_features,
    fit_on_blocks,
    page_blocks,
    picture_share,
)
from .pictures import PictureBoxes
from .release import IGNORE, Release, ReleaseError
from .store import LoadedModel, ModelError, publish

# Offsets tried for each class: whole steps of a quarter logit, down to -3 (the weighted
# push above is 1.8) and up to +1.
GRID = tuple(np.round(np.arange(-3.0, 1.0 + 1e-9, 0.25), 2))
ROUNDS = 10  # passes over the classes at most; one that changes nothing ends it


@dataclass(frozen=True)
class Fit:
    offsets: tuple[float, ...]  # one per element head class; background's stays 0
    mean_iou_before: float  # mean IoU of the non-background classes on the sample
    mean_iou_after: float
    pages: int
    pixels: int
    chooser: PictureChooser | None = None  # fitted on the same pages' blocks
    chooser_note: str = ""  # why there is none, or what it was fitted on

    def describe(self, classes: Sequence[str], seconds: float) -> str:
        """One line for the log; `classes` without background."""
        shifts = ", ".join(f"{name} {v:+.2f}"
                           for name, v in zip(classes, self.offsets[1:], strict=True))
        return (f"decision offsets fitted on {self.pages} training pages ({self.pixels} "
                f"pixels) in {seconds:.0f} s: {shifts}; mean element IoU there "
                f"{self.mean_iou_before:.3f} -> {self.mean_iou_after:.3f}"
                + (f"; picture chooser {self.chooser_note}" if self.chooser_note else ""))

    def to_json(self) -> dict:
        return {"element_offsets": list(self.offsets), "fitted_on": "train",
                "pages": self.pages, "pixels": self.pixels,
                "train_mean_iou": {"before": round(self.mean_iou_before, 4),
                                   "after": round(self.mean_iou_after, 4)},
                **({"picture_chooser": self.chooser_note} if self.chooser_note else {})}


def _mean_iou(truth_x_n: np.ndarray, pred: np.ndarray, n: int) -> float:
    # The confusion counted directly: Confusion.add would mask and cast the 4 M sampled
    # pixels again for each of the search's hundreds of tries.
    conf = Confusion(n)
    conf.m = np.bincount(truth_x_n + pred, minlength=n * n).reshape(n, n)
    return metrics_mean_iou(conf.iou())


def mean_iou(logits: np.ndarray, truth: np.ndarray, offsets: np.ndarray) -> float:
    """Mean IoU over the non-background classes present or predicted, of the argmax of
    (C, N) `logits` shifted by `offsets`, against (N,) `truth`."""
    n = logits.shape[0]
    pred = (logits + offsets[:, None]).argmax(axis=0)
    return _mean_iou(truth.astype(np.int64) * n, pred, n)


def fit_offsets(logits: np.ndarray, truth: np.ndarray, grid: Sequence[float] = GRID,
                rounds: int = ROUNDS) -> tuple[np.ndarray, float, float]:
    """Coordinate search, class after class, for the offsets with the best mean IoU; a
    tie keeps the offset nearer 0. (offsets, mean IoU before, after)."""
    n = logits.shape[0]
    t = truth.astype(np.int64) * n
    offsets = np.zeros(n, np.float32)
    before = best = mean_iou(logits, truth, offsets)
    order = sorted(grid, key=abs)  # nearer 0 first, so a tie keeps it
    for _ in range(rounds):
        changed = False
        for k in range(1, n):
            # With the other classes' offsets fixed, class k wins a pixel where its
            # logit plus its offset beats the best of the others: one comparison each.
            shifted = logits + offsets[:, None]
            shifted[k] = -np.inf
            rival, rival_class = shifted.max(axis=0), shifted.argmax(axis=0)
            margin = logits[k] - rival
            keep = offsets[k]
            for value in order:
                score = _mean_iou(t, np.where(margin + value > 0, k, rival_class), n)
                if score > best + 1e-9:
                    best, keep, changed = score, value, True
            offsets[k] = keep
        if not changed:
            break
    return offsets, before, best


def sample_pixels(logits: np.ndarray, truth: np.ndarray, n: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Up to `n` pixels of one page drawn without replacement, ignored ones left out:
    (C, k) logits and (k,) classes."""
    flat = truth.ravel()
    keep = np.flatnonzero(flat != IGNORE)
    if len(keep) > n:
        keep = np.sort(rng.choice(keep, n, replace=False))
    return logits.reshape(logits.shape[0], -1)[:, keep], flat[keep]


def calibration_pages(n_pages: int, n: int, seed: int) -> list[int]:
    """`n` of the training pages' indices drawn at random: their pixels then weigh as the
    split's do, as they weigh in a pooled IoU (taking each site in turn gave 1-page sites
    of the Kreuzer corpus half the sample)."""
    if n >= n_pages:
        return list(range(n_pages))
    return sorted(int(i) for i in np.random.default_rng([seed, 11]).choice(n_pages, n,
                                                                          replace=False))


def calibrate(net: SegNet, norm: Normalise, pages: Sequence, win: Windowing, seed: int,
              pixels: int = 4_000_000, chooser: tuple[int, PictureBoxes] | None = None,
              names: Sequence[str] = ()) -> Fit:
    """Fit the offsets on `pages` (ScaledPage: pixels and element targets at the working
    width), about `pixels` of them in all, drawn evenly from every page; with `chooser`
    (the image class and the picture-box settings), a picture chooser on the same pages'
    blocks too (`names`: the element head's classes)."""
    rng = np.random.default_rng([seed, 7])
    per_page = max(1, pixels // max(1, len(pages)))
    parts_x, parts_y, blocks_x, blocks_y = [], [], [], []
    for p in pages:
        el, _, *seen = scaled_logits(net, norm, p.rgb, win, features=chooser is not None)
        x, y = sample_pixels(el, p.elements, per_page, rng)
        parts_x.append(x)
        parts_y.append(y)
        if chooser is not None:
            image, cfg = chooser
            found, ink = page_blocks(p.rgb, cfg.ink, cfg.close, cfg.least)
            if found:
                blocks_x.append(block_features(el, p.rgb, image, found, ink, seen[0]))
                blocks_y.append(picture_share(found, p.elements, image, IGNORE))
    logits = np.concatenate(parts_x, axis=1)
    truth = np.concatenate(parts_y)
    offsets, before, after = fit_offsets(logits, truth)
    fitted, note = None, ""
    if chooser is not None:
        fitted, note = fit_on_blocks(blocks_x, blocks_y, list(names), len(pages),
                                     net.feature_channels)
    return Fit(tuple(float(v) for v in offsets), before, after, len(pages), int(truth.size),
               fitted, note)


def with_chooser(boxes: PictureBoxes, fit: Fit | None) -> PictureBoxes:
    """`boxes` with the chooser `fit` holds, if there is one."""
    return boxes if fit is None or fit.chooser is None else replace(boxes, chooser=fit.chooser)


def calibrated_version(model: LoadedModel, release: Release, pages: int, models_dir: Path,
                       log: Callable[[str], None] = print, pictures: bool = True,
                       boxes: PictureBoxes | None = None, choose: bool = True) -> Path:
    """Publish the next version: `model`'s weights, with decision offsets fitted on
    `pages` of the training pages of the release it was trained on, and (`pictures`) the
    picture boxes of model/pictures.py, with `boxes`' settings (default: the defaults)
    and (`choose`) a picture chooser fitted on the same pages."""
    if model.card["release"]["sha256sums_sha256"] != release.sums_digest():
        raise ModelError(
            f"model {model.version} was trained on release {model.card['release']['version']}"
            f" (SHA256SUMS digest {model.card['release']['sha256sums_sha256'][:12]}), not on "
            f"{release.path}: give the release it was trained on, where its training pages are")
    refs = release.pages("train")
    seed = int(model.card.get("config", {}).get("seed", 0))
    if not refs:
        raise ReleaseError(f"release {release.path} has no train pages to fit offsets on")
    picked = [refs[i] for i in calibration_pages(len(refs), pages, seed)]
    working = model.working_width
    scaled = read_pages(picked, release.classes, working,
                        cache=PageCache.of(cache_dir(models_dir), release, working))
    t0 = time.perf_counter()
    names = model.element_names
    settings = boxes or PictureBoxes()
    use_chooser = pictures and choose and "image" in names
    fit = calibrate(model.net, model.norm, scaled, model.windowing, seed,
                    chooser=(names.index("image"), settings) if use_chooser else None,
                    names=names)
    log(fit.describe(model.element_names[1:], time.perf_counter() - t0))
    card = {k: v for k, v in model.card.items() if k not in ("schema", "version",
                                                             "weights_sha256", "created")}
    card["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    card["config"] = {**card.get("config", {}), "calibrate_pages": pages,
                      "picture_boxes": pictures, "picture_chooser": use_chooser}
    card["decision"] = fit.to_json()
    if pictures and "image" in names:
        card["decision"]["picture_boxes"] = with_chooser(settings, fit).to_json()
    card["derived_from"] = {"model": model.version,
                            "weights_sha256": model.card.get("weights_sha256"),
                            "how": "the same weights; decision offsets fitted by "
                                   "`python -m model calibrate`"
                                   + (", picture boxes on" if pictures else "")
                                   + (", a picture chooser fitted" if fit.chooser else "")}
    curves = model.path / "curves.png"
    extra = {"curves.png": curves.read_bytes()} if curves.is_file() else {}
    return publish(models_dir, model.net, card, extra)
