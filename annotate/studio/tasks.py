"""Pure conversions between our annotation files and Label Studio's task/result JSON.

Coordinates: ours are image pixels `[x, y, w, h]`; Label Studio's are percentages of the
image size. Masks: ours are PNGs (255 = class); Label Studio's brush results hold RLE.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyspng

from catalog.brush_rle import ints_json, mask_to_rle, mask_to_rle_array, rle_to_mask
from catalog.records import ANNOTATION_SCHEMA

from .config import IMAGE, MASKS, REGIONS

PREANNOTATION = "preannotation.json"


def source_hash(page_dir: Path) -> str:
    """A digest of a page's pre-annotation and its mask files ('' when there is none).

    Pushing compares it with the digest recorded at the last push, so unchanged pages cost
    a stat and a read, not a mask encoding.
    """
    pre = page_dir / PREANNOTATION
    try:
        raw = pre.read_bytes()
    except FileNotFoundError:
        return ""
    h = hashlib.sha256(raw)
    try:
        masks = json.loads(raw).get("masks", {}) or {}
    except ValueError:
        masks = {}
    for name in sorted(masks):
        h.update(name.encode())
        try:
            h.update((page_dir / masks[name]).read_bytes())
        except (FileNotFoundError, TypeError):
            h.update(b"missing")
    return h.hexdigest()


def read_mask(path: Path, width: int, height: int) -> np.ndarray:
    # libspng decodes about 4x faster than OpenCV and 15x faster than PIL + numpy here:
    # reading masks is most of a push's client time.
    try:
        arr = pyspng.load(path.read_bytes())
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except Exception as exc:  # pyspng raises plain exceptions for bad data
        raise ValueError(f"{path} is not a readable PNG ({exc})") from None
    if arr.ndim == 3:
        arr = arr[:, :, :3].max(axis=2) if arr.shape[2] >= 3 else arr[:, :, 0]
    if arr.dtype != np.uint8:
        arr = (arr > 0).astype(np.uint8) * 255
    if arr.shape != (height, width):
        raise ValueError(
            f"{path} is {arr.shape[1]}x{arr.shape[0]}, not the screenshot's {width}x{height}"
        )
    return arr


def rect_result(
    label: str, bbox: list[float], width: int, height: int, rid: str, score: float | None = None
) -> dict[str, Any]:
    x, y, w, h = bbox
    result: dict[str, Any] = {
        "id": rid,
        "from_name": REGIONS,
        "to_name": IMAGE,
        "type": "rectanglelabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x / width,
            "y": 100.0 * y / height,
            "width": 100.0 * w / width,
            "height": 100.0 * h / height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }
    if score is not None:
        result["score"] = score
    return result


def brush_result(
    label: str, mask: np.ndarray, rid: str, rle: Callable[[np.ndarray], Any] = mask_to_rle
) -> dict[str, Any]:
    height, width = mask.shape
    return {
        "id": rid,
        "from_name": MASKS,
        "to_name": IMAGE,
        "type": "brushlabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {"format": "rle", "rle": rle(mask), "brushlabels": [label]},
    }


def prediction_from_preannotation(
    pre: dict[str, Any], page_dir: Path, rle: Callable[[np.ndarray], Any] = mask_to_rle
) -> dict[str, Any]:
    """A Label Studio prediction (model version = the pre-annotator's version)."""
    width, height = int(pre["width"]), int(pre["height"])
    results = []
    scores = []
    for i, region in enumerate(pre.get("regions", [])):
        score = region.get("score")
        if isinstance(score, (int, float)):
            scores.append(float(score))
        results.append(rect_result(region["label"], region["bbox"], width, height, f"r{i}", score))
    for name, file in sorted((pre.get("masks") or {}).items()):
        mask = read_mask(page_dir / file, width, height)
        if mask.any():
            results.append(brush_result(name, mask, f"m-{name}", rle))
    version = str((pre.get("meta") or {}).get("version", "")) or "unknown"
    prediction: dict[str, Any] = {"model_version": version, "result": results}
    finite = [s for s in scores if not math.isnan(s)] if scores else []
    prediction["score"] = sum(finite) / len(finite) if finite else (scores[0] if scores else 0.0)
    return prediction


def serialise(task: dict[str, Any], page_dir: Path, pre: dict[str, Any] | None) -> bytes:
    """A task with the prediction made from `pre`, as JSON bytes.

    Brush RLE is a list of up to millions of small ints: json.dumps spends most of a push's
    client time on it, so each list goes in as a placeholder replaced by `ints_json`.
    """
    blobs: dict[str, np.ndarray] = {}

    def placeholder(mask: np.ndarray) -> str:
        key = f"\x00rle{len(blobs)}"
        blobs[key] = mask_to_rle_array(mask)
        return key

    if pre is not None:
        task = {**task, "predictions": [prediction_from_preannotation(pre, page_dir, placeholder)]}
    body = json.dumps(task).encode()
    for key, arr in blobs.items():
        body = body.replace(json.dumps(key).encode(), ints_json(arr), 1)
    return body


def task_data(page_id: str, image_ref: str, width: int, height: int, url: str) -> dict:
    # page_id is the external key: Label Studio would import the same page twice otherwise.
    return {"image": image_ref, "page_id": page_id, "url": url, "width": width, "height": height}


@dataclass
class PulledAnnotation:
    """An annotation as pulled: regions in pixels, masks as arrays, and who/how long."""

    regions: list[dict[str, Any]]
    masks: dict[str, np.ndarray]


def parse_results(results: list[dict[str, Any]], width: int, height: int) -> PulledAnnotation:
    """Label Studio results -> regions in image pixels and one mask per brush label.

    What Label Studio stores is whatever its client sent: anything that is not a result of
    the label set's shape is a ValueError saying which, never another exception.
    """
    if not isinstance(results, list):
        raise ValueError(f"an annotation's result is a list, not {type(results).__name__}")
    regions = []
    masks: dict[str, np.ndarray] = {}
    for i, r in enumerate(results):
        try:
            _parse_result(r, width, height, regions, masks)
        except (KeyError, TypeError, AttributeError, OverflowError, IndexError) as exc:
            raise ValueError(f"result {i} is malformed ({exc!r})") from None
    return PulledAnnotation(regions, masks)


def _labels(value: dict[str, Any], key: str) -> list[str]:
    labels = value.get(key, [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise TypeError(f"{key} {labels!r} is not a list of label names")
    return labels


def _parse_result(r: dict[str, Any], width: int, height: int, regions: list[dict],
                  masks: dict[str, np.ndarray]) -> None:
    kind = r.get("type")
    value = r.get("value", {})
    w = int(r.get("original_width") or width)
    h = int(r.get("original_height") or height)
    if kind == "rectanglelabels":
        bbox = [round(float(value[k]) * s / 100.0, 2)
                for k, s in (("x", w), ("y", h), ("width", w), ("height", h))]
        if not all(math.isfinite(v) for v in bbox):
            raise TypeError(f"rectangle {bbox!r} is not four finite numbers")
        for label in _labels(value, "rectanglelabels"):
            regions.append({"label": label, "bbox": list(bbox), "score": 1.0, "source": "human"})
    elif kind == "brushlabels" and value.get("format", "rle") == "rle" and "rle" in value:
        if w <= 0 or h <= 0:
            raise TypeError(f"a brush mask of {w}x{h} pixels")
        mask = rle_to_mask(value["rle"], w, h)
        for label in _labels(value, "brushlabels"):
            masks[label] = np.maximum(masks[label], mask) if label in masks else mask


def annotation_document(
    page_id: str, width: int, height: int, regions: list[dict], masks: dict[str, str],
    meta: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema": ANNOTATION_SCHEMA,
        "page_id": page_id,
        "width": width,
        "height": height,
        "regions": regions,
        "masks": masks,
        "meta": meta,
    }
