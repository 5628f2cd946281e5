"""COCO instance annotations of a page, and the semantic mask they imply.

Regions become one rectangle instance each; element masks one instance per 8-connected
component. Both carry RLE segmentations, so pycocotools (and anything built on it) loads
them as they are. `semantic_from_coco` repaints the semantic mask from the annotations
with the precedence of `masks`, which is how `verify` proves the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .masks import Box, ClassSet, decode_rle, element_instances, rects_rle

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
    """The semantic mask that a page's COCO annotations imply (see masks.paint_semantic)."""
    sem = np.zeros((height, width), np.uint8)
    regions = [a for a in anns if classes.is_region(a["category_id"])]
    elements = [a for a in anns if not classes.is_region(a["category_id"])]

    def region_key(a: dict) -> tuple:
        x, y, w, h = a["bbox"]
        return (-w * h, a["category_id"], y, x, y + h, x + w)

    for a in sorted(regions, key=region_key) + sorted(elements, key=lambda a: a["category_id"]):
        np.copyto(sem, np.uint8(a["category_id"]), where=decode_rle(a["segmentation"]))
    return sem
