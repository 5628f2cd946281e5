"""Picture boxes chosen by a classifier fitted on training pages.

Every block of ink on the page (model/inkblocks.py, on the page's most common colour) is a
candidate picture. A logistic regression over what the network says inside the block (mean
probability and argmax share of each element class), what it sees there (the mean and
maximum of each channel of its decoder's stride-4 level) and what the block's pixels look
like (ink density, colours, rows of text lines, size, place on the page) keeps the blocks
that are pictures; the image mask is then those blocks, plus the network's image areas too
low to hold one. Fitted on the blocks of the training pages that calibrate the decision offsets
(model/calibrate.py), a block counting as a picture where most of its pixels are the DOM's
image, it replaces the fixed rule of model/pictures.py that joins blocks inside the
network's image areas: on web-corpus v0002's val split, m0005's image IoU at the working
width went from 0.586 to 0.68 (see README "The model").

The network's part is read from its logits without the decision offsets, so that one pass
over the calibration pages gives both the offsets and the blocks. A chooser's card lists
its features by name; one fitted before the network's features were read lists none of
them and is applied as it was fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .inkblocks import Block, common_colour, ink_blocks, ink_mask
from .network import SegNet

PIXEL_FEATURES = ("ink share", "component fill", "colour entropy", "colourful ink",
                  "text-line flips", "blank rows", "log area", "log height", "log width",
                  "edge strength", "centre x", "width share", "log top", "log colours",
                  "image prob on ink", "image prob on paper", "image prob p90")
FIT_ROUNDS = 30  # Newton steps; a logistic regression over ~20 features settles in ~10
L2 = 3e-4  # on the standardised weights, against separable training blocks; with the
# network's 96 features, 1e-3 gave 0.01 less on val and on the picture-sites set
LEAST = 20  # picture and other blocks each, to fit a chooser on
PICTURE = 0.5  # a block is a picture where at least this share of its labelled pixels is image


NETWORK = "network "  # the prefix of the features read from the network's stride-4 level
STRIDE = SegNet.FEATURE_STRIDE


def feature_names(classes: list[str], channels: int = 0) -> list[str]:
    """`classes`: the element head's, background first; `channels`: of the network's
    stride-4 features, whose mean and maximum over each block are read too (0: none)."""
    return ([f"prob {c}" for c in classes] + [f"argmax {c}" for c in classes]
            + list(PIXEL_FEATURES) + [f"{NETWORK}mean {k}" for k in range(channels)]
            + [f"{NETWORK}max {k}" for k in range(channels)])


@dataclass(frozen=True)
class PictureChooser:
    """A logistic regression over standardised block features; a block is a picture where
    its probability is at least `threshold`."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    # Read on the picture-sites set (bench/picture_boxes.py), never on val: for m0008's
    # weights 0.3 / 0.4 / 0.5 / 0.6 gave image IoU 0.572 / 0.574 / 0.563 / 0.554 there
    threshold: float = 0.4
    fitted_on: dict | None = None  # pages, blocks, pictures: for the card's reader

    @property
    def reads_network(self) -> bool:
        return any(f.startswith(NETWORK) for f in self.features)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """(k, F) features -> (k,) probabilities of being a picture."""
        if x.shape[1] != len(self.features):
            raise ValueError(f"the picture chooser reads {len(self.features)} features of a "
                             f"block, not {x.shape[1]}: is it the network it was fitted on?")
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean),
                "scale": list(self.scale), "weights": list(self.weights), "bias": self.bias,
                "threshold": self.threshold, "fitted_on": self.fitted_on}

    @classmethod
    def from_json(cls, d: dict) -> PictureChooser:
        found = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
        n = len(found.features)
        if not (len(found.mean) == len(found.scale) == len(found.weights) == n):
            raise TypeError(f"{n} features but {len(found.mean)} means, {len(found.scale)} "
                            f"scales and {len(found.weights)} weights")
        return found


def page_blocks(rgb: np.ndarray, ink: int, close: int, least: int
                ) -> tuple[list[Block], np.ndarray]:
    """The candidate blocks of a page at the working width, and its ink mask."""
    mask = ink_mask(rgb, common_colour(rgb), ink)
    blocks, _, _ = ink_blocks(mask, close, least)
    return blocks, mask


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=0))
    return e / e.sum(axis=0)


def network_features(seen: np.ndarray, blocks: list[Block]) -> np.ndarray:
    """(k, 2F) mean and maximum of the network's stride-4 features `seen` (F, h/4, w/4)
    over each block: what the network saw there, beyond its verdict in the logits."""
    rows = []
    for b in blocks:
        y0, x0 = b.y0 // STRIDE, b.x0 // STRIDE
        cell = seen[:, y0:max(y0 + 1, -(-b.y1 // STRIDE)), x0:max(x0 + 1, -(-b.x1 // STRIDE))]
        cell = cell.reshape(len(seen), -1)
        rows.append(np.concatenate([cell.mean(axis=1), cell.max(axis=1)]))
    return np.asarray(rows, np.float64).reshape(len(blocks), 2 * len(seen))


def block_features(logits: np.ndarray, rgb: np.ndarray, image: int, blocks: list[Block],
                   ink: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
    """(k, F) features of `blocks`, in feature_names' order: `logits` (C, h, w) without
    the decision offsets, `image` the image class's index, `ink` the page's ink mask,
    `seen` the network's stride-4 features where the chooser reads them."""
    n = logits.shape[0]
    prob, top = _softmax(logits), logits.argmax(axis=0)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    edges = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    h_all, w_all = top.shape
    rows = []
    for b in blocks:
        sl = (slice(b.y0, b.y1), slice(b.x0, b.x1))
        area = (b.x1 - b.x0) * (b.y1 - b.y0)
        on = ink[sl]
        px = rgb[sl][on].astype(np.int16)
        q = px // 16
        counts = np.bincount((q[:, 0] * 16 + q[:, 1]) * 16 + q[:, 2]) if len(px) else np.ones(1)
        share = counts[counts > 0] / counts.sum()
        inked = on.sum(axis=1) > 0
        img = prob[image][sl]
        rows.append([
            *prob[:, b.y0:b.y1, b.x0:b.x1].reshape(n, -1).mean(axis=1),
            *np.bincount(top[sl].ravel(), minlength=n)[:n] / area,
            on.mean(), b.pixels / area, -(share * np.log2(share)).sum(),
            ((px.max(axis=1) - px.min(axis=1)) > 40).mean() if len(px) else 0.0,
            np.abs(np.diff(inked.astype(np.int8))).sum() / (b.y1 - b.y0), 1 - inked.mean(),
            np.log(area), np.log(b.y1 - b.y0), np.log(b.x1 - b.x0), edges[sl].mean(),
            (b.x0 + b.x1) / 2 / w_all, (b.x1 - b.x0) / w_all, np.log1p(b.y0),
            np.log1p(len(share)), img[on].mean() if on.any() else 0.0,
            img[~on].mean() if (~on).any() else 0.0, np.quantile(img, 0.9)])
    found = np.asarray(rows, np.float64).reshape(len(blocks), 2 * n + len(PIXEL_FEATURES))
    return found if seen is None else np.hstack([found, network_features(seen, blocks)])


def picture_share(blocks: list[Block], truth: np.ndarray, image: int, ignore: int
                  ) -> np.ndarray:
    """(k,) share of each block's labelled pixels that are image in `truth`; -1 where
    the block holds no labelled pixel."""
    out = np.full(len(blocks), -1.0)
    for i, b in enumerate(blocks):
        t = truth[b.y0:b.y1, b.x0:b.x1]
        known = t != ignore
        if known.any():
            out[i] = float((t[known] == image).mean())
    return out


def fit_chooser(x: np.ndarray, picture: np.ndarray, names: list[str],
                fitted_on: dict | None = None) -> PictureChooser:
    """Logistic regression by Newton's method, every block weighing the same (weighing
    them by area gave the same val IoU within 0.01 and let a few page-wide blocks decide).
    `x` (k, F) features, `picture` (k,) bool."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    y = picture.astype(np.float64)
    w = np.zeros(z.shape[1])
    ridge = 2 * L2 * np.diag([1.0] * (z.shape[1] - 1) + [0.0])
    for _ in range(FIT_ROUNDS):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) / len(y) + ridge @ w
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(y) + ridge
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return PictureChooser(tuple(names), tuple(float(v) for v in mean),
                          tuple(float(v) for v in scale), tuple(float(v) for v in w[:-1]),
                          float(w[-1]), fitted_on=fitted_on)


def fit_on_blocks(xs: list[np.ndarray], shares: list[np.ndarray], names: list[str],
                  pages: int, channels: int = 0) -> tuple[PictureChooser | None, str]:
    """A chooser from the features and picture shares (picture_share) of `pages`' blocks,
    a block being a picture where at least half its labelled pixels are image; or None and
    why not. The second item is a line for the log. `channels`: as feature_names'."""
    x = np.concatenate(xs) if xs else np.zeros((0, 0))
    share = np.concatenate(shares) if shares else np.zeros(0)
    known = share >= 0
    x, picture = x[known], share[known] >= PICTURE
    if min(picture.sum(), (~picture).sum()) < LEAST:
        return None, (f"not fitted: {int(picture.sum())} picture and {int((~picture).sum())} "
                      f"other blocks on the {pages} pages (at least {LEAST} each); "
                      "the join rule stays")
    fitted = fit_chooser(x, picture, feature_names(names, channels),
                         {"pages": pages, "blocks": int(len(x)), "pictures": int(picture.sum())})
    return fitted, f"fitted on {len(x)} blocks, {int(picture.sum())} of them pictures"


def low_areas(drawn: np.ndarray, min_height: int) -> np.ndarray:
    """The connected areas of `drawn` fewer than `min_height` rows tall: icons and rules,
    too low to hold a block worth choosing, kept as the network drew them."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(drawn.astype(np.uint8), connectivity=8)
    low = np.zeros(n, bool)
    low[1:] = stats[1:, cv2.CC_STAT_HEIGHT] < min_height
    return low[comp]


def chosen_mask(logits: np.ndarray, drawn: np.ndarray, rgb: np.ndarray, image: int,
                chooser: PictureChooser, ink: int, close: int, least: int, min_height: int,
                seen: np.ndarray | None = None) -> np.ndarray:
    """The image mask: the page's blocks that `chooser` calls pictures, and the areas of
    `drawn` (the argmax's image mask) under `min_height` rows, as drawn. `logits` without
    the decision offsets; `seen` the network's stride-4 features, where `chooser` reads
    them."""
    if chooser.reads_network and seen is None:
        raise ValueError("this picture chooser reads the network's features: pass them")
    out = low_areas(drawn, min_height)
    blocks, mask = page_blocks(rgb, ink, close, least)
    if blocks:
        keep = chooser.probability(block_features(
            logits, rgb, image, blocks, mask, seen if chooser.reads_network else None))
        for b, p in zip(blocks, keep, strict=True):
            if p >= chooser.threshold:
                out[b.y0:b.y1, b.x0:b.x1] = True
    return out
