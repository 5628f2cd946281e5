"""The export's PNG codec: tiles cut from UP-filtered rows equal tiles encoded from pixels."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from catalog import Catalog, Config, Workspace
from export.png import decode_pixels, encode_pixels, encode_up_window, read_up_rows
from export.release import make_release
from export.synthetic import add_page, capture_png


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


@st.composite
def _image_and_window(draw):
    h, w = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    channels = draw(st.sampled_from([0, 3, 4]))
    shape = (h, w, channels) if channels else (h, w)
    seed = draw(st.integers(0, 2**32 - 1))
    arr = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    if draw(st.booleans()):  # flat runs, as on web pages
        arr[: h // 2] = arr[0]
    th, tw = draw(st.integers(1, h)), draw(st.integers(1, w))
    return arr, draw(st.integers(0, w - tw)), draw(st.integers(0, h - th)), tw, th


@given(_image_and_window())
@settings(max_examples=200, deadline=None)
def test_a_window_of_up_rows_is_the_png_of_its_pixels(case):
    arr, x, y, tw, th = case
    up = read_up_rows(encode_pixels(arr, 1))
    assert up is not None
    assert np.array_equal(up.pixels(), arr)
    assert np.array_equal(up.pixels(th), arr[:th])  # the top rows alone
    top = up.pixel_rows([y, 0])[y]
    data = encode_up_window(up, x, y, tw, th, top, 1)
    want = arr[y : y + th, x : x + tw]
    assert data == encode_pixels(want, 1)  # the same bytes as from pixels
    assert np.array_equal(_pillow(data), want)  # and a PNG that Pillow reads back


def test_a_window_off_the_image_is_refused():
    up = read_up_rows(encode_pixels(np.zeros((8, 8, 3), np.uint8), 1))
    with pytest.raises(ValueError, match="not inside"):
        encode_up_window(up, 4, 0, 5, 8, np.zeros(24, np.uint8), 1)


def test_capture_like_screenshots_read_as_up_rows_and_through_pillow():
    arr = np.random.default_rng(3).integers(0, 256, (40, 33, 3), dtype=np.uint8)
    data = capture_png(arr)
    assert np.array_equal(_pillow(data), arr)
    up = read_up_rows(data)
    assert up is not None and np.array_equal(up.pixels(), arr)
    assert np.array_equal(decode_pixels(data, "shot"), arr)


def _pillow_png(image: np.ndarray | Image.Image) -> bytes:
    buf = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buf, "PNG")
    return buf.getvalue()


def test_other_and_damaged_pngs_are_left_to_the_general_decoder():
    rng = np.random.default_rng(4)
    arr = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    assert read_up_rows(_pillow_png(arr)) is None  # adaptive filters
    assert read_up_rows(_pillow_png(np.ascontiguousarray(arr[..., 0], np.uint16) * 257)) is None  # 16-bit
    assert read_up_rows(_pillow_png(Image.fromarray(arr).quantize(8))) is None  # palette
    good = capture_png(arr)
    assert read_up_rows(good[: len(good) // 2]) is None  # truncated
    idat = good.index(b"IDAT")
    flipped = bytearray(good)
    flipped[idat + 20] ^= 1  # inside the IDAT: its CRC no longer matches
    assert read_up_rows(bytes(flipped)) is None
    # A valid PNG whose rows are UP but the stream is one row short.
    rows = np.zeros((3, 1 + 30 * 3), np.uint8)
    rows[:, 0] = 2
    short = _png_of_rows(30, 4, rows.tobytes())
    assert read_up_rows(short) is None


def _png_of_rows(width: int, height: int, raw: bytes) -> bytes:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(data, zlib.crc32(kind))
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _tiles_of(root, capture_like: bool) -> dict[str, bytes]:
    ws = Workspace(root)
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        for i in range(4):
            add_page(ws, cat, f"https://www.site{i}.org/p", seed=i, width=300, height=530,
                     textured=True, capture_like=capture_like)
    cfg = Config()
    cfg.export.tile, cfg.export.tile_files, cfg.export.val_ratio = 256, True, 0.3
    rel = make_release(ws, cfg, log=lambda _: None).path
    return {p.relative_to(rel).as_posix(): p.read_bytes() for p in rel.rglob("tiles/*/*.png")}


def test_tiles_are_the_same_bytes_whichever_way_the_screenshot_was_stored(tmp_path):
    from_rows = _tiles_of(tmp_path / "capture", capture_like=True)
    from_pixels = _tiles_of(tmp_path / "pillow", capture_like=False)
    assert len(from_rows) == 2 * 4 * 6  # images and masks, 2x3 tiles a page
    assert from_rows == from_pixels
