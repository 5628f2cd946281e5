"""Reading a captured page from the workspace into its hashes (the I/O edge)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from PIL import Image, UnidentifiedImageError

from catalog.config import DedupeConfig
from catalog.images import check_screenshot
from catalog.workspace import CorruptFile, Workspace, read_json, remedy

from .hashes import (
    HASH_ALGO,
    band_hashes,
    image_hashes,
    normalise_text,
    pixel_digest,
    text_digest,
    text_simhash,
)
from .layout import layout_vector
from .match import PageHashes


def visible_texts(boxes: list[dict[str, Any]]) -> list[str]:
    return [b.get("text") or "" for b in boxes if b.get("kind") == "text" and b.get("visible")]


def image_boxes(boxes: list[dict[str, Any]]) -> list[list[float]]:
    """Bounding boxes of the visible images (img, svg, canvas, video, CSS backgrounds)."""
    out = []
    for b in boxes:
        bbox = b.get("bbox")
        if (b.get("kind") == "image" and b.get("visible") and isinstance(bbox, list)
                and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            out.append(bbox)
    return out


def _viewport_height(row: dict[str, Any]) -> int:
    try:
        return int(str(row["viewport"]).lower().split("x")[1])
    except (IndexError, ValueError):
        raise CorruptFile(f"page {row['page_id']}: viewport {row['viewport']!r} in the "
                          "catalog is not WxH; capture the page again") from None


def read_page(ws: Workspace, row: sqlite3.Row | dict[str, Any], cfg: DedupeConfig) -> PageHashes:
    """Hash one page (row: its catalog row); raises CorruptFile or FileNotFoundError."""
    row = dict(row)
    page_id = row["page_id"]
    dpr = float(row.get("dpr") or 1.0)
    shot = ws.screenshot(page_id)
    if not shot.exists():
        raise FileNotFoundError(f"page {page_id}: {shot} is missing; {remedy(shot)}")
    boxes: list[dict[str, Any]] = []
    boxes_path = ws.boxes_json(page_id)
    if boxes_path.exists():
        data = read_json(boxes_path)
        if not isinstance(data, dict) or not isinstance(data.get("boxes"), list):
            raise CorruptFile(f"page {page_id}: {boxes_path} has no box list")
        boxes = data["boxes"]
    # The header first (this also sets Pillow's limit to what captures reach): a screenshot
    # that is not the image its capture recorded is never decoded.
    try:
        check_screenshot(shot, (int(row.get("width") or 0), int(row.get("height") or 0)))
    except CorruptFile as exc:
        raise CorruptFile(f"page {page_id}: {exc}") from None
    try:
        with Image.open(shot) as im:
            im.load()
            pixel_sha = pixel_digest(im)
            bands = band_hashes(
                im,
                viewport_h=round(_viewport_height(row) * dpr),
                band_h=round(cfg.band_height * dpr),
                max_bands=cfg.max_bands,
            )
            height = im.height
            images, image_share = image_hashes(im, image_boxes(boxes))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptFile(f"page {page_id}: {shot} is not a readable PNG ({exc}); "
                          f"{remedy(shot)}") from None
    cols, rows = cfg.layout_grid
    try:
        n_errors = len(json.loads(row.get("flags") or "[]"))
    except json.JSONDecodeError:
        n_errors = 0
    texts = visible_texts(boxes)
    enough = len(normalise_text(texts)) >= cfg.min_text_chars
    return PageHashes(
        page_id=page_id,
        pixel_sha=pixel_sha,
        bands=bands,
        height=height,
        text_sha=text_digest(texts) if enough else None,
        text_simhash=text_simhash(texts) if enough else None,
        layout=layout_vector(boxes, int(row["width"] or 0), cols, rows) if boxes else None,
        n_boxes=len(boxes),
        n_errors=n_errors,
        site=row.get("site") or "",
        captured_at=float(row.get("captured_at") or 0.0),
        algo=HASH_ALGO,
        images=images,
        image_share=image_share,
    )
