"""COCO instance annotations of a page, and the semantic mask they imply.

Regions become one rectangle instance each; element masks one instance per 8-connected
component. Both carry RLE segmentations, so pycocotools (and anything built on it) loads
them as they are. `semantic_from_coco` repaints the semantic mask from the annotations
with the precedence of `masks`, which is how `verify` proves the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .masks import Box, ClassSet, decode_rle, element_instances, paint_semantic, rects_rle
from .rle import decode_counts, foreground_runs

COCO_INFO_SCHEMA = 1


def categories(classes: ClassSet) -> list[dict]:
    return [
        {
            "id": i,
            "name": name,
            "supercategory": "region" if classes.is_region(i) else "element",
        }
        for i, name in enumerate(classes.names)
        if i > 0
    ]


def page_annotations(
    image_id: int,
    width: int,
    height: int,
    regions: Sequence[tuple[int, Box]],
    elements: Sequence[tuple[int, np.ndarray]],
) -> list[dict]:
    """COCO annotations (without ids) of one page: regions, then elements by class."""
    anns = []
    for (cls, box), rle in zip(regions, rects_rle([b for _, b in regions], height, width),
                               strict=True):
        x0, y0, x1, y1 = box
        anns.append(_ann(image_id, cls, rle, box, (x1 - x0) * (y1 - y0)))
    ordered = sorted(elements, key=lambda e: e[0])
    for (cls, _), found in zip(ordered, element_instances([m for _, m in ordered]), strict=True):
        for inst in found:
            anns.append(_ann(image_id, cls, inst.rle, inst.bbox, inst.area))
    return anns


def _ann(image_id: int, cls: int, rle: dict, box: Box, area: int) -> dict:
    x0, y0, x1, y1 = box
    return {
        "image_id": image_id,
        "category_id": cls,
        "segmentation": rle,
        "area": int(area),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "iscrowd": 0,
    }


def semantic_from_coco(
    anns: Sequence[dict], width: int, height: int, classes: ClassSet
) -> np.ndarray:
    """The semantic mask that a page's COCO annotations imply (see masks.paint_semantic);
    ValueError for a segmentation that is no whole RLE of the page.

    Nothing is decoded at page size per annotation: regions whose RLE is their box's
    rectangle (as the export writes them) are painted as boxes, and the elements' runs
    are read from all their RLE texts at once and laid down in one pass.
    """
    for a in anns:
        if list(a["segmentation"]["size"]) != [height, width]:
            raise ValueError(f"annotation {a.get('id')} is sized "
                             f"{a['segmentation']['size']}, not [{height}, {width}]")
    regions = [a for a in anns if classes.is_region(a["category_id"])]
    elements = [a for a in anns if not classes.is_region(a["category_id"])]
    boxes = _boxes_of(regions, width, height)
    if boxes is not None:
        sem = paint_semantic(width, height, list(zip([a["category_id"] for a in regions],
                                                     boxes, strict=True)), [])
    else:  # a region that is not its box: decode and paint it as it is
        sem = np.zeros((height, width), np.uint8)
        for a in sorted(regions, key=_region_key):
            np.copyto(sem, np.uint8(a["category_id"]), where=decode_rle(a["segmentation"]))
    if elements:
        layer = _top_class(elements, height * width)
        on_top = cv2.transpose(layer.reshape(width, height))  # COCO's order is by column
        cv2.copyTo(on_top, on_top, sem)
    return sem


def _region_key(a: dict) -> tuple:
    x, y, w, h = a["bbox"]
    return (-w * h, a["category_id"], y, x, y + h, x + w)


def _boxes_of(regions: Sequence[dict], width: int, height: int) -> list[Box] | None:
    """Each region's box from its COCO bbox, when every region's RLE is exactly that
    box's rectangle on the page; None otherwise."""
    if not regions:
        return []
    boxes = []
    for a in regions:
        x, y, w, h = a["bbox"]
        if not all(isinstance(v, int) for v in (x, y, w, h)):
            return None
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            return None
        boxes.append((x, y, x + w, y + h))
    texts = [r["counts"] for r in rects_rle(boxes, height, width)]
    given = [a["segmentation"]["counts"] for a in regions]
    given = [g.decode("ascii", "replace") if isinstance(g, bytes) else g for g in given]
    return boxes if texts == given else None


def _top_class(elements: Sequence[dict], size: int) -> np.ndarray:
    """Per pixel in column-major order, the highest element class whose RLE covers it
    (0: none): element classes are painted in class order, so the highest one wins."""
    counts, bounds = decode_counts([a["segmentation"]["counts"] for a in elements])
    start, end, which = foreground_runs(counts, bounds, size)
    cats = np.array([a["category_id"] for a in elements])
    present = np.unique(cats)
    if not len(start):
        return np.zeros(size, np.uint8)
    slot = np.searchsorted(present, cats)[which]
    # Each run's start and end side by side: every annotation's edges are then one sorted
    # stretch (its runs are in order and apart), which a stable sort merges quickly.
    edges = np.empty(2 * len(start), start.dtype)
    edges[0::2], edges[1::2] = start, end
    order = np.argsort(edges, kind="stable")
    edges = edges[order]
    step = np.where(order % 2 == 0, 1, -1).astype(np.int32)  # +1 a run starts, -1 ends
    edge_slot = slot[order // 2]
    # Coverage of each class after the last edge at each position holds to the next one.
    last = np.flatnonzero(np.r_[edges[1:] != edges[:-1], True])
    at = edges[last]
    value = np.zeros(len(last), np.uint8)
    for k, cls in enumerate(present):  # in class order: a higher class paints over
        covered = np.cumsum(np.where(edge_slot == k, step, 0))[last] > 0
        value[covered] = cls
    lengths = np.diff(np.r_[at, size])
    return np.concatenate([np.zeros(at[0], np.uint8), np.repeat(value, lengths)])
