"""`model predict`: per image, `<stem>.json` in the preannotation schema (regions from the
region head, `source: "model"`) and `<stem>_mask_<class>.png` for each element class."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from catalog.records import Annotation, Region
from catalog.workspace import write_bytes_atomic

from .infer import predict_page, region_boxes
from .store import LoadedModel

Image.MAX_IMAGE_PIXELS = None  # full-page screenshots are tall by design


class InputError(ValueError):
    """An input image that cannot be read; the message names it."""


def read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist: give screenshots (PNG or JPEG)") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"{path} is not a readable image ({type(exc).__name__}): give "
                         "screenshots (PNG or JPEG), or capture the page again") from None


def check_images(paths: Sequence[Path]) -> None:
    """Fail before anything is written when one input is not an image."""
    for path in paths:
        try:
            with Image.open(path) as im:
                im.verify()
        except FileNotFoundError:
            raise InputError(f"{path} does not exist: give screenshots (PNG or JPEG)") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise InputError(f"{path} is not a readable image ({type(exc).__name__}): give "
                             "screenshots (PNG or JPEG), or capture the page again") from None
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
    """Pure: the preannotation record and the element masks (0/255) of one screenshot."""
    t0 = time.perf_counter()
    pred = predict_page(model.net, model.norm, rgb, model.working_width, model.windowing)
    masks = {name: np.where(pred.elements == k, 255, 0).astype(np.uint8)
             for k, name in enumerate(model.element_names) if k}
    record = Annotation(
        page_id=page_id, width=pred.width, height=pred.height,
        regions=[Region(**r) for r in region_boxes(pred, model.region_names)],
        masks={name: f"{page_id}_mask_{name}.png" for name in masks},
        meta={"annotator": "model", "version": model.version,
              "release": model.card.get("release", {}).get("version"),
              "seconds": round(time.perf_counter() - t0, 3)},
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
