"""One page's pre-annotation on disk: preannotation.json and its mask PNGs beside it."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from catalog.config import PreannotateConfig
from catalog.images import check_screenshot
from catalog.records import CAPTURED, Annotation, Convention, PageRecord
from catalog.workspace import (
    CorruptFile,
    Workspace,
    read_json,
    remedy,
    write_bytes_atomic,
    write_json_atomic,
)

from .boxes import PageBoxes, load_boxes
from .labelset import LabelSet
from .masks import element_masks
from .model_regions import combine, dom_coverage
from .regions import propose_regions
from .segment import Opener
from .split import learned_opener

# Bumped whenever the same boxes give other regions, so that older proposals are made again.
VERSION = "webseg-preannotate-2"


def load_gray(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """The screenshot as 8-bit grey, or None when it is missing or not the boxes' size."""
    try:
        with Image.open(path) as im:
            if im.size != size:
                return None
            return np.asarray(im.convert("L"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptFile(f"{path} is not a readable PNG ({exc}); {remedy(path)}") from None


def with_convention(params: PreannotateConfig | None,
                    convention: Convention | None) -> PreannotateConfig:
    """The proposal's settings with a learned convention's over the config's."""
    params = params or PreannotateConfig()
    if convention is None:
        return params
    learned = replace(params, granularity=convention.granularity,
                      header_menu=convention.header_menu)
    if convention.model:  # the team's use of the model, learned with one; else the config's
        learned = replace(learned, model_coverage=convention.model_coverage,
                          model_fill=convention.model_fill)
    return learned


def pictures_setting(params: PreannotateConfig, screenshot: bool) -> str | None:
    """What a proposal records of its pictures' boxes ("visible": cut to what they show),
    given whether the page's screenshot is read: the record's `pictures`, and what
    `annotate preannotate` compares it with to know whether a page is up to date."""
    return "visible" if params.visible_pictures and screenshot else None


def preannotate(page: PageBoxes, page_id: str, labels: LabelSet,
                gray: np.ndarray | None = None, params: PreannotateConfig | None = None,
                opener: Opener | None = None, convention: Convention | None = None,
                prediction: Annotation | None = None
                ) -> tuple[Annotation, dict[str, np.ndarray]]:
    """Pure: the annotation record and its masks for one page (`opener`: see
    propose_regions; `convention`: a team's learned settings, split decision and label
    names; `prediction`: the model stage's output for the page, combined as
    model_regions.combine() says).

    Nothing run-dependent goes into the record (no time, no id): the same boxes and settings
    give the same bytes, so a rerun or a resumed run is checked byte for byte and push sees
    no change where there is none. How long it took is the command's summary line."""
    params = with_convention(params, convention)
    if opener is None and convention is not None and convention.split_model:
        opener = learned_opener(convention.split_model)
    regions = propose_regions(page, labels, params, gray, opener)
    meta: dict[str, object] = {"version": VERSION, "annotator": "pipeline"}
    if prediction is not None and (prediction.width, prediction.height) == (page.width, page.height):
        coverage = dom_coverage(page, gray)
        regions, how = combine(regions, prediction, coverage, labels, params)
        meta.update(model=prediction.meta.get("version"), dom_coverage=coverage,
                    model_use=how or "none")
    elif prediction is not None:
        # The model was asked and its answer does not fit the page: the record says so, so
        # the page is not proposed again on every run with the same model.
        meta.update(model=prediction.meta.get("version"),
                    model_use=f"none: prediction {prediction.width}x{prediction.height}, "
                              f"page {page.width}x{page.height}")
    if convention is not None:
        for r in regions:
            r.label = convention.label_map.get(r.label, r.label)
        meta["convention"] = convention.version
    pictures = pictures_setting(params, gray is not None)
    if pictures:
        meta["pictures"] = pictures
    masks = element_masks(page, labels.masks, gray=gray if pictures else None)
    ann = Annotation(
        page_id=page_id, width=page.width, height=page.height, regions=regions,
        masks={c: f"mask_{c}.png" for c in masks}, meta=meta,
    )
    return ann, masks


def _png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buf, format="PNG", optimize=False, compress_level=1)
    return buf.getvalue()


def preannotate_page(ws: Workspace, page_id: str, labels: LabelSet,
                     params: PreannotateConfig | None = None,
                     convention: Convention | None = None,
                     prediction: Annotation | None = None) -> Annotation | None:
    """Pre-annotate one captured page in the workspace; None when it has nothing to annotate
    (not captured as HTML). Masks are written before the JSON that names them."""
    try:
        meta = PageRecord.from_dict(read_json(ws.page_json(page_id)))
    except CorruptFile:
        raise
    except ValueError as exc:
        path = ws.page_json(page_id)
        raise CorruptFile(f"{path} is not a page record ({exc}); {remedy(path)}") from None
    boxes_path = ws.boxes_json(page_id)
    if meta.status not in CAPTURED or not boxes_path.exists():
        return None
    page = load_boxes(boxes_path)
    params = params or PreannotateConfig()
    size = (page.width, page.height)
    gray = None
    if params.pixels and ws.screenshot(page_id).exists():
        # The header first: a screenshot that is not what the capture wrote is never decoded.
        check_screenshot(ws.screenshot(page_id), (meta.width, meta.height))
        gray = load_gray(ws.screenshot(page_id), size)
    ann, masks = preannotate(page, page_id, labels, gray, params, convention=convention,
                             prediction=prediction)
    folder = ws.page_dir(page_id)
    for cls, mask in masks.items():
        write_bytes_atomic(folder / ann.masks[cls], _png(mask))
    write_json_atomic(ws.preannotation_json(page_id), ann.to_dict())
    return ann
