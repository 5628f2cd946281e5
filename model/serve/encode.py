"""Masks as the JSON API and the page read them: COCO RLE (pycocotools). The ML backend's
brush RLE is catalog.brush_rle, the encoder push uses too."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask


def coco_rle(mask: np.ndarray) -> dict:
    """{"size": [h, w], "counts": str} of a 0/non-zero mask."""
    rle = coco_mask.encode(np.asfortranarray((mask > 0).astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
