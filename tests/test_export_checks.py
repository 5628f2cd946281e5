"""The export's check of screenshots before it takes a page: damage is found by CRC."""

from __future__ import annotations

import numpy as np

from catalog import Catalog, Config, Workspace
from export.png import png_size_checked
from export.release import make_release
from export.synthetic import add_page, capture_png


def _shot() -> bytes:
    rng = np.random.default_rng(7)
    return capture_png(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8))


def test_a_whole_png_gives_its_size_and_any_damage_gives_none():
    good = _shot()
    assert png_size_checked(good) == (20, 30)
    flipped = bytearray(good)
    flipped[good.index(b"IDAT") + 20] ^= 1
    assert png_size_checked(bytes(flipped)) is None
    assert png_size_checked(good[: len(good) - 12]) is None  # no IEND
    assert png_size_checked(good[: len(good) // 2]) is None
    assert png_size_checked(b"GIF89a" + good[6:]) is None


def test_a_screenshot_with_a_bad_crc_is_left_out(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        pids = [add_page(ws, cat, f"https://site{i}.org/p", seed=i, width=200, height=300)
                for i in range(3)]
    shot = ws.screenshot(pids[1])
    data = bytearray(shot.read_bytes())
    data[data.index(b"IDAT") + 40] ^= 0x10  # size and header intact, pixels damaged
    shot.write_bytes(bytes(data))
    cfg = Config()
    cfg.export.val_ratio = 0.0
    lines: list[str] = []
    result = make_release(ws, cfg, log=lines.append)
    assert result.pages == 2
    assert any(pids[1] in line and "not a readable image" in line for line in lines)
