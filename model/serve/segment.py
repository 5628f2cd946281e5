"""One screenshot through the served model, as the JSON the API returns: the
preannotation.json schema with each mask given inline as COCO RLE instead of a file name."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from ..predict import predict_image
from ..store import LoadedModel
from .encode import coco_rle
from .inputs import pixels
from .timing import Spans


def segment(model: LoadedModel, rgb: np.ndarray, page_id: str = "upload"
            ) -> tuple[dict, dict[str, np.ndarray]]:
    """The API's record and the raw 0/255 masks (the Label Studio side encodes those)."""
    record, masks = predict_image(model, rgb, page_id)
    return record, masks


def answer(model: LoadedModel, im: Image.Image, page_id: str, spans: Spans) -> dict:
    """Decode, predict and encode one upload, all on the thread that calls it: a
    prediction worker, the same thread from request to request, whose freed memory the
    next image reuses. Decoded and encoded on waitress's threads instead (a different one
    each request), a 1280x4000 screenshot cost 150,000 minor page faults against 133,000,
    and the decoded pixels were handed from thread to thread."""
    with spans.span("decode"):
        rgb = pixels(im)
    with spans.span("predict"):
        record, masks = segment(model, rgb, page_id)
    with spans.span("rle"):
        return to_json(record, masks)


def to_json(record: dict, masks: dict[str, np.ndarray]) -> dict:
    t0 = time.perf_counter()
    out = {**record, "masks": {name: coco_rle(m) for name, m in masks.items()}}
    out["meta"] = {**record.get("meta", {}), "mask_format": "coco_rle",
                   "encode_seconds": round(time.perf_counter() - t0, 3)}
    return out


def legend(model: LoadedModel) -> list[dict]:
    """The model's classes with their colours, regions first, as classes.json holds them."""
    table = model.card.get("classes", [])
    return [{"name": c["name"], "kind": c["kind"], "color": c.get("color", "#808080")}
            for c in table if c["kind"] in ("region", "element")]
