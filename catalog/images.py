"""The workspace's screenshots, checked by their header before a pixel is decoded.

A PNG's header says how big it is in 24 bytes; decoding a forged one (a "bomb": a few
kilobytes claiming 100,000 x 100,000 pixels) would take minutes and all the memory. Every
reader first compares the header with the size the capture recorded in page.json, so a
screenshot is decoded only when it is the image the capture wrote.
"""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import Image

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
