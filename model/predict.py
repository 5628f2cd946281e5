"""`model predict`: per image, `<stem>.json` in the preannotation schema (regions from the
region head, `source: "model"`) and `<stem>_mask_<class>.png` for each element class."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from catalog.images import MAX_PIXELS, TooManyPixels, open_bounded
from catalog.records import Annotation, Region
from catalog.workspace import write_bytes_atomic

from .infer import region_boxes
from .store import LoadedModel


class InputError(ValueError):
    """An input image that cannot be read; the message names it."""


def _opened(path: Path, read: Callable[[Image.Image], np.ndarray | None]) -> np.ndarray | None:
    """`read` of the opened image, with every way of failing as one InputError naming the
    file. Its size is checked from the header first, against the largest screenshot a
    capture makes, so a bomb is refused before it is decoded."""
    try:
        with open(path, "rb") as f, open_bounded(f, MAX_PIXELS) as im:
            return read(im)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist: give screenshots (PNG or JPEG)") from None
    except TooManyPixels as big:
        raise InputError(f"{path} claims {big.width}x{big.height} pixels, more than any "
                         "capture makes (an image bomb?): give a real screenshot") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path} is not a readable image ({type(exc).__name__}): give "
                         "screenshots (PNG or JPEG), or capture the page again") from None


def _rgb(im: Image.Image) -> np.ndarray:
    im.load()
    return np.asarray(im.convert("RGB"))


def read_image(path: Path) -> np.ndarray:
    return _opened(path, _rgb)


def check_images(paths: Sequence[Path]) -> None:
    """Fail before anything is written when one input is not an image."""
    for path in paths:
        _opened(path, lambda im: im.verify())
    stems = [p.stem for p in paths]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise InputError(f"two inputs share the name {twice[0]!r}: their outputs would "
                         "overwrite each other; predict them into different --out folders")


def _png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def predict_image(model: LoadedModel, rgb: np.ndarray, page_id: str
                  ) -> tuple[dict, dict[str, np.ndarray]]:
    """Pure: the preannotation record and the element masks (0/255) of one screenshot.
    The record holds no timing: the same image and model give the same bytes."""
    pred = model.predict(rgb)
    masks = {name: np.where(pred.elements == k, 255, 0).astype(np.uint8)
             for k, name in enumerate(model.element_names) if k}
    record = Annotation(
        page_id=page_id, width=pred.width, height=pred.height,
        regions=[Region(**r) for r in region_boxes(pred, model.region_names)],
        masks={name: f"{page_id}_mask_{name}.png" for name in masks},
        meta={"annotator": "model", "version": model.version,
              "release": model.card.get("release", {}).get("version")},
    )
    return record.to_dict(), masks


def predict_files(model: LoadedModel, images: Sequence[Path], out: Path,
                  done: Callable[[Path], None] | None = None) -> list[Path]:
    """Write each image's masks, then its JSON (which names them), atomically."""
    check_images(images)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in images:
        record, masks = predict_image(model, read_image(path), path.stem)
        for name, mask in masks.items():
            write_bytes_atomic(out / record["masks"][name], _png(mask))
        target = out / f"{path.stem}.json"
        write_bytes_atomic(target, (json.dumps(record, indent=1) + "\n").encode())
        written.append(target)
        if done:
            done(path)
    return written
