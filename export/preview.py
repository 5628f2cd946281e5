"""preview.png: a contact sheet of a release, pages with their masks overlaid."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .png import decode_pixels, read_indexed_top

THUMB_W = 240
THUMB_H = 360  # the top of each page, where headers and navigation are
LABEL_H = 14
ALPHA = 0.45


SOURCES = {"human": "human", "preannotation": "pre-annotated"}
SEPARATOR = " · "
# The source word in colour, so pre-annotated pages stand out on the sheet.
SOURCE_INK = {"human": (0, 110, 40), "pre-annotated": (200, 80, 0)}
GAP = 5  # pixels of white on each side of a separator: the default font's space is narrow


def caption(split: str, page_id: str, site: str, source: str) -> str:
    """'val · 01b15c3d · human · site.org': the parts apart, whose labels these are."""
    return SEPARATOR.join((split, page_id[:8], SOURCES.get(source, source), site))


def _draw_caption(tile: Image.Image, text: str) -> None:
    """The caption's parts with clear gaps and dots between them, the source in colour."""
    draw = ImageDraw.Draw(tile)
    x = 2.0
    for i, part in enumerate(text.split(SEPARATOR)):
        if i:
            x += GAP
            draw.text((x, 1), "·", fill=(120, 120, 120))
            x += draw.textlength("·") + GAP
        if x >= THUMB_W:
            break
        draw.text((x, 1), part, fill=SOURCE_INK.get(part, (0, 0, 0)))
        x += draw.textlength(part)


def shown_rows(width: int) -> int:
    """Rows of a page `width` wide that fill a thumbnail's height at THUMB_W."""
    return int(THUMB_H * width / THUMB_W)


def thumbnail(image: np.ndarray, mask: np.ndarray, palette: np.ndarray,
              caption: str) -> Image.Image:
    """The top of a page at THUMB_W wide, class colours blended over it.

    image: pixels in RGB(A) order or grey; mask: class ids; palette: (256, 3) colours.
    Only the rows shown are resized (area averaging), so a tall page costs little more.
    """
    h, w = image.shape[:2]
    crop_h = min(h, shown_rows(w))
    size = (THUMB_W, max(1, round(crop_h * THUMB_W / w)))
    top = image[:crop_h]
    if top.ndim == 2:
        top = np.repeat(top[..., None], 3, axis=2)
    top = top[..., :3]
    # Area averaging by a whole factor first (OpenCV's fast case), then to the exact size.
    f = w // THUMB_W
    if f >= 2 and crop_h >= 2 * f:
        top = cv2.resize(top[: crop_h // f * f, : w // f * f], (w // f, crop_h // f),
                         interpolation=cv2.INTER_AREA)
    img = cv2.resize(np.ascontiguousarray(top), size,
                     interpolation=cv2.INTER_AREA).astype(np.float32)
    idx = cv2.resize(np.ascontiguousarray(mask[:crop_h]), size, interpolation=cv2.INTER_NEAREST)
    colours = palette[idx].astype(np.float32)
    labelled = (idx != 0)[..., None]
    blend = np.where(labelled, img * (1 - ALPHA) + colours * ALPHA, img)
    tile = Image.new("RGB", (THUMB_W, THUMB_H + LABEL_H), (255, 255, 255))
    tile.paste(Image.fromarray(blend.round().astype(np.uint8)), (0, LABEL_H))
    _draw_caption(tile, caption)
    return tile


def _legend_width(names: list[str]) -> int:
    return 4 + sum(14 + 7 * len(name) + 10 for name in names)


def legend(names: list[str], colours: list[tuple[int, int, int]], width: int) -> Image.Image:
    im = Image.new("RGB", (width, 18), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    x = 4
    for name, colour in zip(names, colours, strict=True):
        draw.rectangle((x, 4, x + 10, 14), fill=colour, outline=(0, 0, 0))
        draw.text((x + 14, 3), name, fill=(0, 0, 0))
        x += 14 + 7 * len(name) + 10
    return im


def contact_sheet(
    release: Path, pages: list[dict], names: list[str], colours: list[tuple[int, int, int]],
    columns: int = 6, ready: dict[str, Image.Image] | None = None,
) -> Image.Image:
    """pages: manifest rows (image, mask, split, page_id) to show; ready: thumbnails made
    while the pages were exported, by page id (the others are made from the files)."""
    thumbs = []
    for row in pages:
        if ready and row["page_id"] in ready:
            thumbs.append(ready[row["page_id"]])
            continue
        image = decode_pixels((release / row["image"]).read_bytes(), row["image"])
        mask_bytes = (release / row["mask"]).read_bytes()
        top = read_indexed_top(mask_bytes, shown_rows(image.shape[1]))
        if top is None:
            with Image.open(io.BytesIO(mask_bytes)) as m:
                pal = np.array(m.getpalette("RGB") + [0] * 768, np.uint8)[:768]
                top = np.asarray(m), pal.reshape(256, 3)
        thumbs.append(thumbnail(image, *top, caption(row["split"], row["page_id"], row["site"],
                                                      row["source"])))
    columns = max(1, min(columns, len(thumbs)))
    rows = (len(thumbs) + columns - 1) // columns
    width = max(columns * (THUMB_W + 4) + 4, _legend_width(names[1:]))
    key = legend(names[1:], colours[1:], width)
    sheet = Image.new("RGB", (width, key.height + rows * (THUMB_H + LABEL_H + 4) + 4), (200, 200, 200))
    sheet.paste(key, (0, 0))
    for i, t in enumerate(thumbs):
        r, c = divmod(i, columns)
        sheet.paste(t, (4 + c * (THUMB_W + 4), key.height + 4 + r * (THUMB_H + LABEL_H + 4)))
    return sheet


def pick(manifest: list[dict], splits: list[str], n: int) -> list[dict]:
    """Up to n pages, shared fairly among splits, spread over sites."""
    per = {s: sorted((r for r in manifest if r["split"] == s),
                     key=lambda r: (r["site"], r["page_id"])) for s in splits}
    chosen: list[dict] = []
    while len(chosen) < n and any(per.values()):
        for s in splits:
            rows = per[s]
            if rows and len(chosen) < n:
                # Take from the middle of what is left: alternates between sites.
                chosen.append(rows.pop(len(rows) // 2))
    return sorted(chosen, key=lambda r: (splits.index(r["split"]), r["page_id"]))
