"""One page into a release split: image, semantic mask, COCO annotations, tiles.

PNG settings are fixed (zlib level from the config, no optimiser, no text chunks), so the
same inputs give the same bytes. Without a resize the screenshot's own bytes are copied.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .coco import page_annotations
from .masks import IGNORE, Box, ClassSet, int_box, paint_semantic
from .select import PageInput
from .tiles import resized_size, tile_windows

# Element mask PNGs hold 255 where the class is; brush edges may carry softer values.
MASK_THRESHOLD = 128


@dataclass
class PageResult:
    image: str  # paths relative to the split directory
    mask: str
    width: int
    height: int
    annotations: list[dict]
    image_sha256: str
    mask_sha256: str
    class_pixels: np.ndarray  # pixels per class id (256 entries)
    regions_dropped: int = 0  # regions that fell outside the page
    tiles: list[dict] = field(default_factory=list)


def class_histogram(sem: np.ndarray) -> np.ndarray:
    """Pixels per class id (256 entries); OpenCV's histogram is ~10x numpy's bincount."""
    # calcHist counts in float32, exact below 2**24: count a band of rows at a time.
    rows = max(1, (1 << 24) // max(1, sem.shape[1]))
    total = np.zeros(256, np.int64)
    for top in range(0, sem.shape[0], rows):
        band = np.ascontiguousarray(sem[top : top + rows])
        total += cv2.calcHist([band], [0], None, [256], [0, 256])[:, 0].astype(np.int64)
    return total


def encode_png(im: Image.Image, level: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=level, optimize=False)
    return buf.getvalue()


def palette_image(sem: np.ndarray, palette: list[int]) -> Image.Image:
    im = Image.frombytes("P", (sem.shape[1], sem.shape[0]), sem.tobytes())
    im.putpalette(palette)
    return im


def _element_masks(page: PageInput, classes: ClassSet, size: tuple[int, int]) -> list:
    out = []
    for cls in sorted(page.annotation.masks, key=classes.index):
        with Image.open(page.annotation_path.parent / page.annotation.masks[cls]) as im:
            m = im if im.mode == "L" else im.convert("L")
            if m.size != size:
                m = m.resize(size, Image.Resampling.NEAREST)
            out.append((classes.index(cls), np.asarray(m) >= MASK_THRESHOLD))
    return out


def _regions(page: PageInput, classes: ClassSet, size: tuple[int, int]) -> tuple[list, int]:
    sx, sy = size[0] / page.width, size[1] / page.height
    boxes: list[tuple[int, Box]] = []
    dropped = 0
    for r in page.annotation.regions:
        x, y, w, h = r.bbox
        box = int_box([x * sx, y * sy, w * sx, h * sy], size[0], size[1])
        if box is None:
            dropped += 1
        else:
            boxes.append((classes.index(r.label), box))
    return boxes, dropped


def export_page(
    page: PageInput,
    split_dir: Path,
    classes: ClassSet,
    *,
    image_id: int,
    tile: int = 0,
    resize_width: int = 0,
    png_level: int = 1,
) -> PageResult:
    size = resized_size(page.width, page.height, resize_width)
    width, height = size
    regions, dropped = _regions(page, classes, size)
    elements = _element_masks(page, classes, size)
    sem = paint_semantic(width, height, regions, elements)
    palette = classes.palette()
    mask_im = palette_image(sem, palette)

    screenshot: Image.Image | None = None
    if size != (page.width, page.height):
        with Image.open(page.screenshot) as im:
            screenshot = _rgb(im).resize(size, Image.Resampling.BILINEAR)
        image_bytes = encode_png(screenshot, png_level)
    else:
        image_bytes = page.screenshot.read_bytes()
    mask_bytes = encode_png(mask_im, png_level)

    image_rel, mask_rel = f"images/{page.page_id}.png", f"masks/{page.page_id}.png"
    (split_dir / image_rel).write_bytes(image_bytes)
    (split_dir / mask_rel).write_bytes(mask_bytes)

    tiles = []
    if tile > 0:
        if screenshot is None:
            # load() reads the whole PNG and releases the buffer; no file stays open.
            screenshot = _rgb(Image.open(io.BytesIO(image_bytes)))
        tiles = _write_tiles(page.page_id, screenshot, mask_im, split_dir, tile, png_level)

    return PageResult(
        image=image_rel,
        mask=mask_rel,
        width=width,
        height=height,
        annotations=page_annotations(image_id, width, height, regions, elements),
        image_sha256=hashlib.sha256(image_bytes).hexdigest(),
        mask_sha256=hashlib.sha256(mask_bytes).hexdigest(),
        class_pixels=class_histogram(sem),
        regions_dropped=dropped,
        tiles=tiles,
    )


def _rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("RGB", "RGBA", "L"):
        im.load()
        return im
    return im.convert("RGB")


def _write_tiles(
    page_id: str, image: Image.Image, mask: Image.Image, split_dir: Path, tile: int, level: int
) -> list[dict]:
    rows = []
    width, height = image.size
    for x, y in tile_windows(width, height, tile):
        box = (x, y, x + tile, y + tile)
        name = f"{page_id}_x{x:05d}_y{y:05d}.png"
        tile_image = image.crop(box)  # beyond the page: black
        if x + tile <= width and y + tile <= height:
            tile_mask = mask.crop(box)
        else:
            tile_mask = Image.new("P", (tile, tile), IGNORE)
            tile_mask.putpalette(mask.getpalette())
            tile_mask.paste(mask.crop((x, y, min(width, x + tile), min(height, y + tile))), (0, 0))
        (split_dir / "tiles" / "images" / name).write_bytes(encode_png(tile_image, level))
        (split_dir / "tiles" / "masks" / name).write_bytes(encode_png(tile_mask, level))
        rows.append(
            {
                "file_name": f"images/{name}",
                "mask_file_name": f"masks/{name}",
                "page_id": page_id,
                "x": x,
                "y": y,
                "size": tile,
            }
        )
    return rows
