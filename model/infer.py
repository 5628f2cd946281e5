"""A page through the network: scaled to the working width, cut into overlapping windows
when tall, logits stitched back, then brought to the page's own size.

Windows overlap by at least twice `margin` rows and each row is taken from the window in
which it lies furthest from an edge (the cut is the middle of the overlap), so no seam
shows where the receptive field fits inside the margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .data import scale_rgb
from .network import Normalise, SegNet
from .pictures import PictureBoxes, pinned_mask, reads_network


@dataclass(frozen=True)
class Windowing:
    window: int = 1024  # rows of the scaled page a window holds
    margin: int = 128  # least overlap either side of a cut, in scaled rows


def window_spans(height: int, win: Windowing) -> list[tuple[int, int, int, int]]:
    """(start, stop, keep_from, keep_to) of each window over `height` scaled rows."""
    if height <= win.window:
        return [(0, height, 0, height)]
    step = win.window - 2 * win.margin
    if step <= 0:
        raise ValueError("the prediction window must be more than twice its margin")
    starts = list(range(0, height - win.window, step)) + [height - win.window]
    cuts = [0]
    for a, b in zip(starts, starts[1:], strict=False):
        cuts.append((a + win.window + b) // 2)
    cuts.append(height)
    return [(s, s + win.window, cuts[k], cuts[k + 1]) for k, s in enumerate(starts)]


def _pad32(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = -h % SegNet.STRIDE, -w % SegNet.STRIDE
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, h, w


@torch.inference_mode()
def scaled_logits(net: SegNet, norm: Normalise, rgb: np.ndarray, win: Windowing,
                  features: bool = False) -> tuple[np.ndarray, ...]:
    """Element and region logits (C, h, w) of a page already at the working width; with
    `features`, the network's stride-4 features (F, ceil(h/4), ceil(w/4)) too, each row
    of them from the window its page rows come from (a window that starts off the stride
    lends them from up to 3 rows away)."""
    net.eval()
    device = next(net.parameters()).device
    h, w = rgb.shape[:2]
    el = np.empty((net.cfg.elements, h, w), np.float32)
    rg = np.empty((net.cfg.regions, h, w), np.float32)
    s = SegNet.FEATURE_STRIDE
    seen = (np.empty((net.feature_channels, -(-h // s), -(-w // s)), np.float32)
            if features else None)
    for start, stop, keep0, keep1 in window_spans(h, win):
        x = norm(torch.from_numpy(np.array(rgb[start:stop]))).to(device)
        x, _, ww = _pad32(x)
        out = net(x, features=features)
        e, r = out[0], out[1]
        el[:, keep0:keep1] = e[0, :, keep0 - start:keep1 - start, :ww].float().cpu().numpy()
        rg[:, keep0:keep1] = r[0, :, keep0 - start:keep1 - start, :ww].float().cpu().numpy()
        if seen is not None:
            f = out[2][0].float().cpu().numpy()
            rows = np.arange(-(-keep0 // s), -(-keep1 // s))
            seen[:, rows] = f[:, np.clip(rows - start // s, 0, f.shape[1] - 1), :seen.shape[2]]
    return (el, rg, seen) if features else (el, rg)


def resize_logits(logits: np.ndarray, width: int, height: int) -> np.ndarray:
    """(C, h, w) -> (C, height, width), bilinear, channel by channel in groups of four."""
    c = logits.shape[0]
    if logits.shape[1:] == (height, width):
        return logits
    out = np.empty((c, height, width), np.float32)
    for k in range(0, c, 4):
        part = np.ascontiguousarray(logits[k:k + 4].transpose(1, 2, 0))
        big = cv2.resize(part, (width, height), interpolation=cv2.INTER_LINEAR)
        out[k:k + 4] = big.reshape(height, width, -1).transpose(2, 0, 1)
    return out


def upscaled_argmax(logits: np.ndarray, width: int, height: int, band: int = 2048
                    ) -> np.ndarray:
    """argmax of the logits resized bilinearly to (height, width), a band of rows at a
    time: a 100,000-row page never holds its full-size logits in memory. cv2.remap with
    the pixel-centre mapping of cv2.resize, so every band agrees with a whole resize."""
    c, h, w = logits.shape
    if (h, w) == (height, width):
        return argmax_labels(logits)
    map_x = ((np.arange(width, dtype=np.float32) + 0.5) * (w / width) - 0.5)
    out = np.empty((height, width), np.uint8)
    groups = [np.ascontiguousarray(logits[k:k + 4].transpose(1, 2, 0)) for k in range(0, c, 4)]
    for y0 in range(0, height, band):
        y1 = min(height, y0 + band)
        map_y = ((np.arange(y0, y1, dtype=np.float32) + 0.5) * (h / height) - 0.5)
        mx, my = np.meshgrid(map_x, map_y)
        parts = [cv2.remap(g, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                 .reshape(y1 - y0, width, -1) for g in groups]
        out[y0:y1] = np.concatenate(parts, axis=2).argmax(axis=2)
    return out


def argmax_labels(logits: np.ndarray) -> np.ndarray:
    return logits.argmax(axis=0).astype(np.uint8)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=0, keepdims=True)
    return z


@dataclass
class PagePrediction:
    width: int
    height: int
    elements: np.ndarray  # (height, width) uint8: element head class index
    region_probs: np.ndarray  # (regions, h, w) float32 at the working width
    scale: float  # page pixels per scaled pixel


PINNED = 1e4  # an image logit that decides a pixel whatever the other classes say


def pin_pictures(el: np.ndarray, rgb: np.ndarray, image: int, cfg: PictureBoxes,
                 offsets: Sequence[float] | None = None, seen: np.ndarray | None = None
                 ) -> None:
    """Set the image logit (in place) so that the argmax is image exactly on the picture
    boxes (model/pictures.py) and elsewhere the class the network ranked next; resized
    bilinearly, the boxes' edges fall half-way between two scaled pixels. `offsets`: the
    decision offsets already added to `el`; `seen`: the network's stride-4 features, for a
    picture chooser that reads them."""
    boxes = pinned_mask(el, rgb, image, cfg, None if offsets is None else np.asarray(offsets),
                        seen)
    el[image] = np.where(boxes, PINNED, -PINNED)


def predict_page(net: SegNet, norm: Normalise, rgb: np.ndarray, working: int,
                 win: Windowing, offsets: Sequence[float] | None = None,
                 pictures: tuple[int, PictureBoxes] | None = None) -> PagePrediction:
    """`offsets`: added to the element logits before the argmax (model/calibrate.py);
    `pictures`: the image class and the settings that cut its large areas back to picture
    boxes (model/pictures.py)."""
    height, width = rgb.shape[:2]
    small = scale_rgb(rgb, working)
    reads = pictures is not None and reads_network(pictures[1])
    el, rg, *seen = scaled_logits(net, norm, small, win, features=reads)
    if offsets is not None and any(offsets):
        el += np.asarray(offsets, np.float32)[:, None, None]
    if pictures is not None:
        pin_pictures(el, small, *pictures, offsets=offsets, seen=seen[0] if seen else None)
    elements = upscaled_argmax(el, width, height)
    return PagePrediction(width, height, elements, softmax(rg), width / small.shape[1])


def region_boxes(pred: PagePrediction, names: list[str], min_share: float = 0.002
                 ) -> list[dict]:
    """Connected components of each region class's argmax, as boxes in page pixels with
    the class's mean probability over the component as score; specks under `min_share`
    of the page are dropped."""
    labels = pred.region_probs.argmax(axis=0).astype(np.uint8)
    h, w = labels.shape
    least = max(4, int(min_share * h * w))
    found = []
    for k in range(1, len(names)):
        mask = (labels == k).astype(np.uint8)
        if not mask.any():
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for c in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[c])
            if area < least:
                continue
            score = float(pred.region_probs[k][comp == c].mean())
            s = pred.scale
            x0, y0 = round(x * s), round(y * s)
            x1, y1 = min(pred.width, round((x + bw) * s)), min(pred.height, round((y + bh) * s))
            found.append({"label": names[k], "bbox": [x0, y0, x1 - x0, y1 - y0],
                          "score": round(score, 4), "source": "model"})
    found.sort(key=lambda r: (r["bbox"][1], r["bbox"][0]))
    return found
