"""PNG in and out for the export, at the speed a tiled release of tall pages needs.

Writing: libpng (through OpenCV or Pillow) spent most of a tiled export's time in its
row loop and in zlib, so PNGs are assembled here: each row gets one fixed filter (UP for
pixels, none for class masks, which are long runs of one value), the rows are deflated by
ISA-L (`isal`, several times faster than zlib at zlib's level-1 size) and wrapped in
IHDR/PLTE/IDAT/IEND chunks, with no text or time chunks. The same pixels and library
versions give the same bytes. Reading: libspng (`pyspng`) decodes 8-bit PNGs about three
times faster than libpng; other bit depths and colour types go through OpenCV/Pillow.

Screenshots as the capture writes them (Chromium's fast PNG: every row filtered UP) need
no unfiltering at all for tiles: a window of UP-filtered rows is the UP-filtered tile,
except its first row, whose pixels are the sum of every filtered row above it. So such a
file is only inflated (ISA-L, about twice zlib's speed) and its rows are cut into tiles;
`UpRows` holds them, and a tile comes out byte for byte as `encode_pixels` writes it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
import pyspng
from isal import isal_zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type: grey, RGB, RGBA
_FILTER_NONE, _FILTER_UP = 0, 2


def isal_level(png_level: int) -> int:
    """The config's zlib-style level (0-9) as one of ISA-L's four (0-3)."""
    return min(3, max(0, (png_level + 2) // 3))


def _chunk(kind: bytes, data: bytes) -> list[bytes]:
    """A chunk's parts, joined once by the caller (each `+` would copy the data again).
    ISA-L's CRC-32 is zlib's value, several times faster on megabyte IDATs."""
    crc = isal_zlib.crc32(data, isal_zlib.crc32(kind))
    return [struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)]


def _png(width: int, height: int, colour_type: int, rows: np.ndarray, level: int,
         palette: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    idat = isal_zlib.compress(rows, isal_level(level))
    parts = [SIGNATURE, *_chunk(b"IHDR", ihdr)]
    if palette:
        parts += _chunk(b"PLTE", palette)
    parts += [*_chunk(b"IDAT", idat), *_chunk(b"IEND", b"")]
    return b"".join(parts)


def _rows(scratch: dict | None, shape: tuple[int, int]) -> np.ndarray:
    """A row buffer of `shape`, reused from `scratch` (fresh memory costs page faults)."""
    if scratch is None:
        return np.empty(shape, np.uint8)
    buf = scratch.get(shape)
    if buf is None:
        buf = scratch[shape] = np.empty(shape, np.uint8)
    return buf


def encode_pixels(arr: np.ndarray, level: int, scratch: dict | None = None) -> bytes:
    """PNG of uint8 pixels in RGB(A) order, (h, w, 3|4), or grey (h, w); filter UP.

    scratch: a dict kept by the caller across calls, for the row buffer."""
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or 0 in arr.shape:
        raise ValueError(f"cannot write a PNG of a {arr.dtype} array shaped {arr.shape}")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if channels not in _COLOUR_TYPE:
        raise ValueError(f"cannot write a PNG of {channels} channels")
    height, width = arr.shape[:2]
    flat = arr.reshape(height, width * channels)
    rows = _rows(scratch, (height, width * channels + 1))
    rows[:, 0] = _FILTER_UP
    rows[0, 1:] = flat[0]
    # UP: each byte minus the one above, modulo 256 (uint8 arithmetic wraps just so).
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])
    return _png(width, height, _COLOUR_TYPE[channels], rows, level)


def encode_indexed(idx: np.ndarray, palette: list[int], level: int,
                   scratch: dict | None = None) -> bytes:
    """Palette ("P" mode) PNG of uint8 indices (h, w) with a 256-colour palette; no filter."""
    if idx.dtype != np.uint8 or idx.ndim != 2 or 0 in idx.shape:
        raise ValueError(f"cannot write a palette PNG of a {idx.dtype} array shaped {idx.shape}")
    if len(palette) != 768:
        raise ValueError(f"a palette has 768 entries, not {len(palette)}")
    height, width = idx.shape
    rows = _rows(scratch, (height, width + 1))
    rows[:, 0] = _FILTER_NONE
    rows[:, 1:] = idx
    return _png(width, height, 3, rows, level, bytes(palette))


def _header(data: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR; None when it is no PNG."""
    if len(data) < 33 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        return None
    return data[24], data[25]


def decode_pixels(data: bytes, name: object) -> np.ndarray:
    """uint8 pixels in RGB(A) order, or grey (h, w); ValueError names a file that is no image."""
    head = _header(data)
    if head in ((8, 2), (8, 6)):  # 8-bit RGB(A), what browsers write
        try:
            return pyspng.load(data)
        except RuntimeError as exc:
            raise ValueError(f"{name} is not a readable image ({exc})") from None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ValueError(f"{name} is not a readable image")
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return arr


def decode_grey8(data: bytes) -> np.ndarray | None:
    """(h, w) uint8 of an 8-bit greyscale PNG, or None for any other kind (caller converts)."""
    if _header(data) != (8, 0):
        return None
    try:
        return pyspng.load(data)
    except RuntimeError:
        return None


def _chunks(data: bytes) -> Iterable[tuple[bytes, memoryview, int]]:
    """(kind, body, stored CRC) of each chunk after the signature, up to IEND. Bodies are
    views, not copies: a screenshot's IDAT is megabytes."""
    pos, view = 8, memoryview(data)
    while pos + 12 <= len(data):
        (length,), kind = struct.unpack_from(">I", data, pos), data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            return  # truncated: the caller finds what is missing
        yield kind, view[pos + 8 : end], struct.unpack_from(">I", data, end)[0]
        if kind == b"IEND":
            return
        pos = end + 4


def png_size_checked(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG whose every chunk up to IEND is whole and matches its CRC;
    None for a damaged or truncated one, or no PNG. ISA-L's CRC-32: a tenth of zlib's time
    on a screenshot's IDAT."""
    if _header(data) is None:
        return None
    ended = False
    for kind, body, crc in _chunks(data):
        if isal_zlib.crc32(body, isal_zlib.crc32(kind)) != crc:
            return None
        ended = kind == b"IEND"
    return struct.unpack(">II", data[16:24]) if ended else None


def read_indexed_top(data: bytes, rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The first `rows` rows of a palette PNG as the export writes it (8-bit, unfiltered,
    not interlaced), inflating no further than they reach, and its (256, 3) palette.

    None for any other PNG: the caller decodes it whole.
    """
    if _header(data) != (8, 3) or data[28] != 0:  # data[28]: interlace method
        return None
    width, height = struct.unpack(">II", data[16:24])
    rows = min(rows, height)
    palette, idat = b"", []
    for kind, body, _ in _chunks(data):
        if kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat.append(body)
    if not palette or len(palette) % 3:
        return None
    try:
        raw = isal_zlib.decompressobj().decompress(b"".join(idat), (width + 1) * rows)
    except isal_zlib.error:
        return None
    if len(raw) != (width + 1) * rows:
        return None
    lines = np.frombuffer(raw, np.uint8).reshape(rows, width + 1)
    if lines[:, 0].any():  # filtered rows: not one of ours
        return None
    colours = np.zeros((256, 3), np.uint8)
    colours[: len(palette) // 3] = np.frombuffer(palette, np.uint8).reshape(-1, 3)[:256]
    return lines[:, 1:], colours


@dataclass(frozen=True)
class UpRows:
    """A PNG's rows as stored, every one filtered UP: (height, 1 + width * channels) bytes,
    the filter byte first. Pixels are the running sum of the rows down each column."""

    rows: np.ndarray
    width: int
    height: int
    channels: int

    def pixel_rows(self, ys: Iterable[int]) -> dict[int, np.ndarray]:
        """Pixels of rows `ys` (flat, width * channels), summing the filtered rows above
        each once: a reduction down the columns, a fraction of a full unfilter."""
        acc = np.zeros(self.width * self.channels, np.uint8)
        out, done = {}, 0
        for y in sorted(set(ys)):
            # uint8 sums wrap modulo 256, as the UP filter does.
            acc += np.add.reduce(self.rows[done : y + 1, 1:], axis=0, dtype=np.uint8)
            out[y], done = acc.copy(), y + 1
        return out

    def pixels(self, rows: int | None = None) -> np.ndarray:
        """Pixels of the top `rows` rows (all by default), (rows, w, c) or (rows, w) for
        grey; a row at a time, since numpy's accumulate down the columns is ten times
        slower than this loop."""
        n = self.height if rows is None else max(1, min(rows, self.height))
        src = self.rows[:n, 1:]
        out = np.empty_like(src)
        out[0] = src[0]
        for y in range(1, n):
            np.add(out[y - 1], src[y], out=out[y])
        return out.reshape((n, self.width) + ((self.channels,) if self.channels > 1 else ()))


_CHANNELS = {0: 1, 2: 3, 6: 4}  # PNG colour type -> channels
_PROBE_ROWS = 8  # rows inflated first to see whether a file is all UP before inflating it all


def read_up_rows(data: bytes, rows: int | None = None) -> UpRows | None:
    """The rows of an 8-bit, non-interlaced grey/RGB/RGBA PNG whose rows are all filtered
    UP (the first may be unfiltered: with nothing above, the two are the same), as
    Chromium's fast capture writes every screenshot. None for any other PNG, or a damaged
    one (a bad CRC, a short or failing stream): the caller decodes it the general way,
    which reports the damage. rows: inflate only the top `rows` rows (the result is that
    high).
    """
    head = _header(data)
    if head is None or head[0] != 8 or head[1] not in _CHANNELS or data[26:29] != b"\0\0\0":
        return None
    width, height = struct.unpack(">II", data[16:24])
    if isal_zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        return None
    channels = _CHANNELS[head[1]]
    stride = 1 + width * channels
    idat = []
    for kind, body, crc in _chunks(data):
        if kind == b"IDAT":
            if isal_zlib.crc32(body, isal_zlib.crc32(kind)) != crc:
                return None
            idat.append(body)
    stream = idat[0] if len(idat) == 1 else b"".join(idat)
    try:
        probe = isal_zlib.decompressobj().decompress(stream, stride * min(height, _PROBE_ROWS))
        if not _all_up(np.frombuffer(probe, np.uint8)[::stride]):
            return None
        if rows is not None and rows < height:
            height = max(1, rows)
            raw = isal_zlib.decompressobj().decompress(stream, stride * height)
        else:
            raw = isal_zlib.decompress(stream, bufsize=stride * height)
    except isal_zlib.error:
        return None
    if len(raw) != stride * height:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride)
    return UpRows(rows, width, height, channels) if _all_up(rows[:, 0]) else None


def _all_up(filters: np.ndarray) -> bool:
    return len(filters) > 0 and filters[0] in (_FILTER_NONE, _FILTER_UP) and bool(
        (filters[1:] == _FILTER_UP).all())


def encode_up_window(src: UpRows, x: int, y: int, width: int, height: int,
                     top: np.ndarray, level: int, scratch: dict | None = None) -> bytes:
    """PNG of the window (x, y, width, height) of `src`, byte for byte what encode_pixels
    writes for those pixels; top: the pixels of row y (from `pixel_rows`)."""
    if x < 0 or y < 0 or x + width > src.width or y + height > src.height or 0 in (width, height):
        raise ValueError(f"window {width}x{height} at ({x}, {y}) is not inside "
                         f"{src.width}x{src.height}")
    c = src.channels
    rows = _rows(scratch, (height, width * c + 1))
    rows[:, 0] = _FILTER_UP
    rows[0, 1:] = top[x * c : (x + width) * c]  # UP with nothing above: the pixels
    rows[1:, 1:] = src.rows[y + 1 : y + height, 1 + x * c : 1 + (x + width) * c]
    return _png(width, height, _COLOUR_TYPE[c], rows, level)
