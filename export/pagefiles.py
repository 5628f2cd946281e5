"""One page into a release split: image, semantic mask, COCO annotations, tile windows.

PNG settings are fixed (see `png`: one filter per kind of image, ISA-L deflate at the
config's level, no text chunks), so the same inputs give the same bytes. Without a resize
the screenshot's own bytes are copied, never re-encoded. Tiles are windows over the page
(`tiles`): a metadata row each, with its class histogram, and no pixels of their own. The
screenshot is read once and inflated only when tile files (`tile_files`), a resize or a
thumbnail need it. Tile files of a screenshot stored UP-filtered (as the capture writes
them) are cut from its filtered rows, never unfiltered (`png.UpRows`); any other
screenshot is decoded and its tiles are views into the pixels. Either way a tile's bytes
are the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .coco import page_annotations
from .masks import IGNORE, Box, ClassSet, int_box, paint_semantic
from .png import (
    UpRows,
    decode_grey8,
    decode_pixels,
    encode_indexed,
    encode_pixels,
    encode_up_window,
    read_up_rows,
)
from .preview import shown_rows, thumbnail
from .select import PageInput
from .tiles import crop_window, histogram_json, resized_size, window_histograms, windows

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
    tiles: list[dict] = field(default_factory=list)  # rows of tiles/metadata.jsonl
    # SHA-256 of every file written, by path relative to the split directory: the
    # release's SHA256SUMS takes them from here instead of reading the files again.
    digests: dict[str, str] = field(default_factory=dict)
    thumbnail: Image.Image | None = None  # for the release's preview, when asked


def _put(split_dir: Path, rel: str, data: bytes, digests: dict[str, str]) -> str:
    (split_dir / rel).write_bytes(data)
    digests[rel] = hashlib.sha256(data).hexdigest()
    return digests[rel]


def class_histogram(sem: np.ndarray) -> np.ndarray:
    """Pixels per class id (256 entries); OpenCV's histogram is ~10x numpy's bincount."""
    # calcHist counts in float32, exact below 2**24: count a band of rows at a time.
    rows = max(1, (1 << 24) // max(1, sem.shape[1]))
    total = np.zeros(256, np.int64)
    for top in range(0, sem.shape[0], rows):
        band = np.ascontiguousarray(sem[top : top + rows])
        total += cv2.calcHist([band], [0], None, [256], [0, 256])[:, 0].astype(np.int64)
    return total


def encode_image_png(arr: np.ndarray, level: int, scratch: dict | None = None) -> bytes:
    """PNG of pixels in RGB(A) order (or grey), as the export writes images and tiles."""
    return encode_pixels(arr, level, scratch)


def decode_image(data: bytes, name: object) -> np.ndarray:
    """uint8 pixels of a screenshot in RGB(A) order (grey stays 2-D)."""
    return decode_pixels(data, name)


def encode_mask_png(sem: np.ndarray, palette: list[int], level: int,
                    scratch: dict | None = None) -> bytes:
    """Palette PNG of a class-id mask: Pillow reads it as mode "P" with the class colours."""
    return encode_indexed(sem, palette, level, scratch)


def read_mask_file(path: Path) -> np.ndarray:
    """An element mask PNG as (h, w) uint8; 8-bit grey files take the fast decoder."""
    data = path.read_bytes()
    m = decode_grey8(data)
    if m is None:  # other colour types and bit depths: Pillow's conversion to L
        with Image.open(path) as im:
            m = np.asarray(im if im.mode == "L" else im.convert("L"))
    return m


def element_masks(
    page: PageInput, classes: ClassSet, size: tuple[int, int]
) -> list[tuple[int, np.ndarray]]:
    """(class id, boolean mask at `size`) for each element mask of the annotation."""
    out = []
    for cls in sorted(page.annotation.masks, key=classes.index):
        m = read_mask_file(page.annotation_path.parent / page.annotation.masks[cls])
        if (m.shape[1], m.shape[0]) != size:
            m = cv2.resize(m, size, interpolation=cv2.INTER_NEAREST_EXACT)
        # OpenCV's threshold to 0/1, viewed as bool: half the time of numpy's comparison.
        on = cv2.threshold(np.ascontiguousarray(m), MASK_THRESHOLD - 1, 1, cv2.THRESH_BINARY)[1]
        out.append((classes.index(cls), on.view(bool)))
    return out


def region_boxes(
    page: PageInput, classes: ClassSet, size: tuple[int, int]
) -> tuple[list[tuple[int, Box]], int]:
    """(class id, integer box at `size`) per region, and how many fell off the page."""
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
    tile_files: bool = False,
    resize_width: int = 0,
    png_level: int = 1,
    thumbnail_caption: str | None = None,
) -> PageResult:
    """Write one page's files; with thumbnail_caption, also its preview thumbnail (made
    from the pixels already in memory rather than from the files again).

    tile > 0 lists the page's tile windows; tile_files also writes their pixels."""
    size = resized_size(page.width, page.height, resize_width)
    width, height = size
    regions, dropped = region_boxes(page, classes, size)
    elements = element_masks(page, classes, size)
    sem = paint_semantic(width, height, regions, elements)
    palette = classes.palette()

    shot_bytes = page.screenshot.read_bytes()
    pixels: np.ndarray | None = None
    up: UpRows | None = None
    if size != (page.width, page.height):
        pixels = cv2.resize(decode_image(shot_bytes, page.screenshot), size,
                            interpolation=cv2.INTER_AREA)
        image_bytes = encode_image_png(pixels, png_level)
    else:
        image_bytes = shot_bytes
        if tile > 0 and tile_files:
            up = read_up_rows(shot_bytes)
        elif thumbnail_caption is not None:  # the thumbnail shows the top: inflate that
            up = read_up_rows(shot_bytes, shown_rows(width))
    mask_bytes = encode_mask_png(sem, palette, png_level)

    image_rel, mask_rel = f"images/{page.page_id}.png", f"masks/{page.page_id}.png"
    digests: dict[str, str] = {}
    image_sha256 = _put(split_dir, image_rel, image_bytes, digests)
    mask_sha256 = _put(split_dir, mask_rel, mask_bytes, digests)

    tiles: list[dict] = []
    if tile > 0:
        class_pixels, counts = window_histograms(sem, tile, class_histogram)
        split = split_dir.name
        for (x, y, w, h), n in zip(windows(width, height, tile), counts, strict=True):
            tiles.append({
                "page_id": page.page_id, "source": page.source,
                "image": f"{split}/{image_rel}", "mask": f"{split}/{mask_rel}",
                "window": [x, y, w, h], "size": tile,
                "class_pixels": histogram_json(n),
            })
    else:
        class_pixels = class_histogram(sem)
    if tile > 0 and tile_files:
        source: np.ndarray | UpRows
        if pixels is None and up is not None and min(width, height) >= tile:
            source = up  # no tile needs padding: cut them from the filtered rows
        else:
            if pixels is None:
                pixels = up.pixels() if up else decode_image(shot_bytes, page.screenshot)
            source = pixels
        names = _write_tiles(page.page_id, source, sem, palette, split_dir, tile, png_level,
                             digests)
        for row, name in zip(tiles, names, strict=True):
            row["tile_image"] = f"{split}/tiles/images/{name}"
            row["tile_mask"] = f"{split}/tiles/masks/{name}"

    thumb = None
    if thumbnail_caption is not None:
        shown = pixels
        if shown is None:  # a thumbnail shows the top of the page: unfilter only that
            shown = (up.pixels(shown_rows(width)) if up
                     else decode_image(shot_bytes, page.screenshot))
        colours = np.array(palette, np.uint8).reshape(256, 3)
        thumb = thumbnail(shown, sem, colours, thumbnail_caption)

    return PageResult(
        image=image_rel,
        mask=mask_rel,
        width=width,
        height=height,
        annotations=page_annotations(image_id, width, height, regions, elements),
        image_sha256=image_sha256,
        mask_sha256=mask_sha256,
        class_pixels=class_pixels,
        regions_dropped=dropped,
        tiles=tiles,
        digests=digests,
        thumbnail=thumb,
    )


def _tile_pngs(
    image: np.ndarray | UpRows, corners: list[tuple[int, int]], tile: int, level: int,
    scratch: dict,
) -> Iterator[bytes]:
    """The PNG of each tile image, one at a time; from UpRows only when every window lies
    on the page."""
    if isinstance(image, UpRows):
        tops = image.pixel_rows(y for _, y in corners)
        for x, y in corners:
            yield encode_up_window(image, x, y, tile, tile, tops[y], level, scratch)
        return
    height, width = image.shape[:2]
    for x, y in corners:
        # Beyond the page (a page smaller than a tile): black.
        window = (x, y, min(width, tile), min(height, tile))
        yield encode_image_png(crop_window(image, window, tile, 0), level, scratch)


def _write_tiles(
    page_id: str, image: np.ndarray | UpRows, sem: np.ndarray, palette: list[int],
    split_dir: Path, tile: int, level: int, digests: dict[str, str],
) -> list[str]:
    """Write the tile files of the page's windows; their names, in `windows` order."""
    names = []
    height, width = sem.shape
    scratch: dict = {}  # one row buffer per tile shape, for all of the page's tiles
    on_page = windows(width, height, tile)
    corners = [(x, y) for x, y, _, _ in on_page]
    for window, image_png in zip(on_page, _tile_pngs(image, corners, tile, level, scratch),
                                 strict=True):
        name = f"{page_id}_x{window[0]:05d}_y{window[1]:05d}.png"
        tile_mask = crop_window(sem, window, tile, IGNORE)
        _put(split_dir, f"tiles/images/{name}", image_png, digests)
        _put(split_dir, f"tiles/masks/{name}", encode_mask_png(tile_mask, palette, level, scratch),
             digests)
        names.append(name)
    return names
