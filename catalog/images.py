"""The workspace's screenshots, checked by their header before a pixel is decoded.

A PNG's header says how big it is in 24 bytes; decoding a forged one (a "bomb": a few
kilobytes claiming 100,000 x 100,000 pixels) would take minutes and all the memory. Every
reader first compares the header with the size the capture recorded in page.json, so a
screenshot is decoded only when it is the image the capture wrote.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

from .workspace import CorruptFile, remedy

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The largest screenshot a capture makes: 8,000 CSS px wide, 16,384 high, at DPR 4. A tall
# capture (1280 x 16,384 at DPR 3 is 189 Mpx) is above Pillow's own bomb limit, so that
# limit is this one; a header beyond it is refused before Pillow opens the file.
MAX_PIXELS = 8000 * 4 * 16384 * 4
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header; None when the file does not start as a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def check_screenshot(path: Path, recorded: tuple[int, int] | None = None) -> tuple[int, int]:
    """The screenshot's size, read from its header; CorruptFile (one line: the file, what is
    wrong, the fix) when it is no PNG, bigger than any capture, or not the size recorded
    (`recorded`: page.json's width and height; None or zeros when unknown)."""
    size = png_size(path)
    if size is None:
        raise CorruptFile(f"{path} is not a PNG; {remedy(path)}")
    w, h = size
    if w * h > MAX_PIXELS:
        raise CorruptFile(f"{path} claims {w}x{h} pixels, more than any capture makes (an "
                          f"image bomb?); {remedy(path)}")
    if recorded and all(recorded) and tuple(recorded) != size:
        raise CorruptFile(f"{path} is {w}x{h}, not the {recorded[0]}x{recorded[1]} its capture "
                          f"recorded; {remedy(path)}")
    return size


class TooManyPixels(ValueError):
    """An image whose header claims more pixels than the reader allows."""

    def __init__(self, width: int, height: int, limit: int):
        super().__init__(f"claims {width}x{height} pixels, more than {limit:,}")
        self.width, self.height, self.limit = width, height, limit


def webp_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first 30 bytes of a WebP; None when they do not say it.
    Pillow's WebP reader allocates the whole canvas when it opens the file, so the size
    must be known before it is called."""
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    kind = head[12:16]
    if kind == b"VP8X":
        return (int.from_bytes(head[24:27], "little") + 1,
                int.from_bytes(head[27:30], "little") + 1)
    if kind == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        return (struct.unpack("<H", head[26:28])[0] & 0x3FFF,
                struct.unpack("<H", head[28:30])[0] & 0x3FFF)
    return None


def open_bounded(fp: IO[bytes], max_pixels: int,
                 formats: Iterable[str] = ("PNG", "JPEG", "WEBP")) -> Image.Image:
    """The image in `fp`, opened (not decoded) by the first of `formats` that reads it, when
    its header claims at most `max_pixels`; TooManyPixels before a pixel is decompressed
    otherwise, UnidentifiedImageError when no format reads it. The bound is the caller's:
    Pillow's own (`Image.MAX_IMAGE_PIXELS`) is one setting for the whole process."""
    Image.init()
    head = fp.read(30)
    for fmt in formats:
        factory, accept = Image.OPEN[fmt]
        try:  # as Image.open does: a prefix too short for a format is not that format
            known = accept(head[:16]) if accept else True
        except (IndexError, TypeError, struct.error):
            continue
        if not known or isinstance(known, str):
            continue
        if fmt == "WEBP" and (size := webp_size(head)):
            _check_pixels(size, max_pixels)
        fp.seek(0)
        im = factory(fp, "")
        try:
            _check_pixels(im.size, max_pixels)
        except TooManyPixels:
            im.close()
            raise
        return im
    raise UnidentifiedImageError(f"not a {', '.join(formats)} image")


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0 or w * h > max_pixels:
        raise TooManyPixels(w, h, max_pixels)
