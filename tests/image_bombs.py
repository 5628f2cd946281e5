"""Small files whose headers claim far more pixels than they hold ("image bombs"), in the
three formats the project reads: a reader must refuse them from the header."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def bomb_png(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height (its rows stop after one)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + 3 * min(width, 4096)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def _saved(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(buf, format=fmt)
    return buf.getvalue()


def bomb_jpeg(width: int = 65000, height: int = 65000) -> bytes:
    """A 16x16 JPEG whose frame header (SOF0) claims width x height (at most 65535)."""
    data = bytearray(_saved("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bomb_webp(width: int, height: int) -> bytes:
    """A 16x16 lossy WebP inside an extended (VP8X) file whose canvas is width x height."""
    simple = _saved("WEBP")
    assert simple[12:16] == b"VP8 ", simple[:16]
    frame = simple[12:]
    vp8x = (b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0"
            + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body
