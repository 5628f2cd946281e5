"""Classes, the semantic mask (one class index a pixel) and COCO RLE of instances.

Precedence, written into classes.json: 0 is background; regions are painted largest first,
so a region drawn inside another wins over it (ties: class order, then position); element
masks are painted over every region, in label-set order (text, then image, then
interactive by default), so a later element class wins. 255 marks padding of tiles that
reach past the page ("ignore" for training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from catalog.config import LabelsConfig

from .rle import groups_rle

CLASSES_SCHEMA = 1
BACKGROUND = 0
IGNORE = 255

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), image pixels


@dataclass(frozen=True)
class ClassSet:
    regions: tuple[str, ...]
    elements: tuple[str, ...]
    colors: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_labels(cls, labels: LabelsConfig) -> ClassSet:
        if len(labels.regions) + len(labels.masks) > 254:
            raise ValueError("the label set has more than 254 classes; a mask byte holds 254")
        names = [*labels.regions, *labels.masks]
        if len(set(names)) != len(names):
            raise ValueError(f"[labels] repeats a class name: {names}")
        return cls(tuple(labels.regions), tuple(labels.masks), tuple(sorted(labels.colors.items())))

    @property
    def names(self) -> list[str]:
        return ["background", *self.regions, *self.elements]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def is_region(self, index: int) -> bool:
        return 1 <= index <= len(self.regions)

    def color(self, name: str) -> tuple[int, int, int]:
        text = dict(self.colors).get(name)
        if name == "background" or not text:
            return (0, 0, 0) if name == "background" else _fallback_color(self.index(name))
        text = text.lstrip("#")
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))

    def palette(self) -> list[int]:
        """768 entries for a mode "P" PNG: class colours, white for ignore."""
        pal = [0] * 768
        for i, name in enumerate(self.names):
            pal[3 * i : 3 * i + 3] = self.color(name)
        pal[3 * IGNORE : 3 * IGNORE + 3] = (255, 255, 255)
        return pal

    def to_json(self) -> dict:
        return {
            "schema": CLASSES_SCHEMA,
            "classes": [
                {
                    "id": i,
                    "name": name,
                    "kind": "background" if i == 0 else ("region" if self.is_region(i) else "element"),
                    "color": "#{:02x}{:02x}{:02x}".format(*self.color(name)),
                }
                for i, name in enumerate(self.names)
            ],
            "background": BACKGROUND,
            "ignore_index": IGNORE,
            "precedence": (
                "Semantic masks hold one class id per pixel. Regions are painted largest "
                "first (ties: class id, then position), so a nested region wins over the one "
                "around it; element masks are painted over all regions, in class id order, "
                "so a higher element id wins. 255 marks tile padding beyond the page."
            ),
            "coco": "category_id equals the class id; background (0) is not a category.",
        }


def _fallback_color(index: int) -> tuple[int, int, int]:
    # Golden-angle hues: distinct and deterministic for classes the config gives no colour.
    h = (index * 137.508) % 360 / 60
    x = int(255 * (1 - abs(h % 2 - 1)))
    return [(255, x, 0), (x, 255, 0), (0, 255, x), (0, x, 255), (x, 0, 255), (255, 0, x)][int(h)]


def int_box(bbox: Sequence[float], width: int, height: int) -> Box | None:
    """[x, y, w, h] floats -> integer corners clipped to the image; None when empty."""
    x, y, w, h = (float(v) for v in bbox)

    def r(v: float) -> int:
        return int(math.floor(v + 0.5))

    x0, y0 = max(0, r(x)), max(0, r(y))
    x1, y1 = min(width, r(x + w)), min(height, r(y + h))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def region_order(regions: Sequence[tuple[int, Box]]) -> list[tuple[int, Box]]:
    """The painting order of regions: largest first, then class id, then position."""

    def key(item: tuple[int, Box]) -> tuple:
        cls, (x0, y0, x1, y1) = item
        return (-(x1 - x0) * (y1 - y0), cls, y0, x0, y1, x1)

    return sorted(regions, key=key)


def paint_semantic(
    width: int,
    height: int,
    regions: Sequence[tuple[int, Box]],
    elements: Sequence[tuple[int, np.ndarray]],
) -> np.ndarray:
    """uint8 (height, width) class ids with the precedence of the module docstring."""
    sem = np.zeros((height, width), np.uint8)
    for cls, (x0, y0, x1, y1) in region_order(regions):
        sem[y0:y1, x0:x1] = cls
    fill = np.empty_like(sem)
    for cls, mask in sorted(elements, key=lambda e: e[0]):
        # OpenCV's masked copy is about three times numpy's copyto(where=) here.
        fill.fill(cls)
        cv2.copyTo(fill, np.ascontiguousarray(mask).view(np.uint8), sem)
    return sem


def rect_rle(box: Box, height: int, width: int) -> dict:
    """Compressed COCO RLE of a filled rectangle, without building the dense mask."""
    return rects_rle([box], height, width)[0]


def rects_rle(boxes: Sequence[Box], height: int, width: int) -> list[dict]:
    """rect_rle of each box, encoded together (a page's regions in one pass)."""
    x0, y0, x1, y1 = np.array(boxes, np.int64).reshape(-1, 4).T
    texts = groups_rle(np.arange(len(boxes)), x0, x1 - x0, y0, y1, len(boxes), height, width)
    return [{"size": [height, width], "counts": t} for t in texts]


@dataclass(frozen=True)
class Instance:
    rle: dict
    bbox: Box
    area: int


@dataclass(frozen=True)
class Blocks:
    """Column runs of a mask, stored once per block of identical consecutive columns.

    A page's columns repeat (a text line looks the same in each of its columns), so runs
    are found and joined per block, and the RLE is written from a block's first three
    columns (see `rle`).
    """

    start: np.ndarray  # first column of each block
    length: np.ndarray  # columns in each block
    block: np.ndarray  # per run of a block column: its block (non-decreasing)
    row0: np.ndarray  # first row
    row1: np.ndarray  # end row (exclusive)


def _column_blocks(flags: np.ndarray, n_bits: int) -> list[Blocks]:
    """Vertical runs of each bit plane of a uint8 image, per block, in column-major order.

    One pass serves up to eight masks: their runs start and end where a bit differs from
    the pixel above, and the changes of all planes are found by one scan.
    """
    height, width = flags.shape
    # Transposed, with background above and below each column (so that runs never wrap)
    # and a stride of whole 8-byte words (so that columns compare as words).
    stride = (height + 2 + 7) // 8 * 8
    col_major = np.empty((width, stride), np.uint8)  # zeroed only where transpose won't write
    col_major[:, 0] = 0
    col_major[:, height + 1 :] = 0
    cv2.transpose(flags, dst=col_major[:, 1 : height + 1])
    words = col_major.view(np.uint64)
    new = np.r_[True, (words[1:] != words[:-1]).any(axis=1)]
    start = np.flatnonzero(new)
    length = np.diff(np.r_[start, width])
    firsts = col_major[start]
    change = cv2.bitwise_xor(firsts[:, 1:], firsts[:, :-1])
    edges = cv2.findNonZero(change)
    if edges is None:
        empty = np.empty(0, np.int64)
        return [Blocks(start, length, empty, empty, empty) for _ in range(n_bits)]
    edges = edges.reshape(-1, 2).astype(np.int64)  # (x, y) = (row, block)
    bits = change[edges[:, 1], edges[:, 0]]
    out = []
    for b in range(n_bits):
        mine = edges if n_bits == 1 else edges[(bits >> b) & 1 == 1]
        out.append(Blocks(start, length, mine[0::2, 1], mine[0::2, 0], mine[1::2, 0]))
    return out


def _block_components(runs: Blocks, width: int) -> np.ndarray:
    """Component of each block run (8-connected), numbered in row-major scan order.

    Joining runs is a graph problem over the runs, far fewer than pixels: identical runs of
    a block's columns are one, and a run touches the runs of the next block that overlap
    its rows widened by one (the diagonals).
    """
    block, row0, row1 = runs.block, runs.row0, runs.row1
    n = len(block)
    stride = int(row1.max()) + 2
    start_key, end_key = block * stride + row0, block * stride + row1  # both increasing
    lo = np.searchsorted(end_key, start_key + stride, "left")  # next block, ends >= row0
    hi = np.searchsorted(start_key, end_key + stride, "right")  # next block, starts <= row1
    per_run = np.maximum(hi - lo, 0)
    indptr = np.r_[0, np.cumsum(per_run)]
    dst = np.arange(indptr[-1]) + np.repeat(lo - indptr[:-1], per_run)
    graph = csr_matrix((np.ones(len(dst), np.int8), dst, indptr), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    first = np.full(n_comp, np.iinfo(np.int64).max, np.int64)  # first pixel, row-major
    np.minimum.at(first, comp, row0 * width + runs.start[block])
    rank = np.empty(n_comp, np.int64)
    rank[np.argsort(first)] = np.arange(n_comp)
    return rank[comp]


def component_instances(mask: np.ndarray) -> list[Instance]:
    """One COCO instance per 8-connected component of a boolean mask, in scan order.

    Runs are found once over the whole mask in column-major order (COCO's), joined into
    components and handed to them, so the cost follows the number of runs, not pixels.
    """
    return element_instances([mask])[0]


def element_instances(masks: Sequence[np.ndarray]) -> list[list[Instance]]:
    """component_instances of several boolean masks of one size, scanning them together."""
    out: list[list[Instance]] = []
    for at in range(0, len(masks), 8):
        group = masks[at : at + 8]
        # Mask b as bit b of one byte a pixel (OpenCV's threshold and or: 0.9 ms a
        # 1280x4000 page against 1.5 for numpy's shift and or).
        flags = np.ascontiguousarray(group[0]).view(np.uint8)
        plane = np.empty_like(flags)
        for b, m in enumerate(group[1:], 1):
            cv2.threshold(np.ascontiguousarray(m).view(np.uint8), 0, 1 << b, cv2.THRESH_BINARY,
                          dst=plane)
            flags = cv2.bitwise_or(flags, plane, dst=None if b == 1 else flags)
        # Work on the masks' bounding box only: element masks often cover a small part.
        left, top, w, h = cv2.boundingRect(flags)
        if not w:
            out += [[] for _ in group]
            continue
        sub = flags[top : top + h, left : left + w]
        for runs in _column_blocks(sub, len(group)):
            out.append(_instances(runs, sub.shape[1], (top, left), group[0].shape))
    return out


def _instances(runs: Blocks, sub_width: int, origin: tuple[int, int],
               shape: tuple[int, int]) -> list[Instance]:
    """Instances from a mask's column runs, found in a crop at `origin` of a `shape` mask."""
    if not len(runs.block):
        return []
    (top, left), (height, width) = origin, shape
    comp = _block_components(runs, sub_width)
    order = np.argsort(comp, kind="stable")  # by component, then block and row
    lab, block = comp[order], runs.block[order]
    row0, row1 = runs.row0[order] + top, runs.row1[order] + top
    col, ncols = runs.start[block] + left, runs.length[block]
    first = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    area = np.add.reduceat((row1 - row0) * ncols, first)
    x0, x1 = col[first], np.maximum.reduceat(col + ncols, first)
    y0, y1 = np.minimum.reduceat(row0, first), np.maximum.reduceat(row1, first)
    texts = groups_rle(lab, col, ncols, row0, row1, len(first), height, width)
    return [
        Instance(
            {"size": [height, width], "counts": texts[i]},
            (int(x0[i]), int(y0[i]), int(x1[i]), int(y1[i])),
            int(area[i]),
        )
        for i in range(len(first))
    ]


def decode_rle(rle: dict) -> np.ndarray:
    """A COCO RLE (counts as str or bytes) -> boolean mask."""
    counts = rle["counts"]
    obj = {"size": rle["size"], "counts": counts.encode() if isinstance(counts, str) else counts}
    return mask_utils.decode(obj).astype(bool)
