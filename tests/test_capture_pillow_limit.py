"""The capture decodes its own screenshots, taller than Pillow's bomb limit allows, under a
bound of its own; every other image opened in the same process keeps Pillow's limit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in a fresh process: Pillow's limit is one setting per process, and this test must see
# what importing and using the capture does to it, not what other tests left.
SCRIPT = textwrap.dedent("""
    import base64, io, sys, time
    from pathlib import Path

    import numpy as np
    import orjson
    from PIL import Image

    from catalog import Workspace
    from catalog.config import CaptureConfig
    from catalog.records import PageRecord
    from scraper import capture
    from tests.image_bombs import bomb_png

    limit = Image.MAX_IMAGE_PIXELS
    # The screenshot (80,000 px, noise so that nothing is cut as blank) is more than twice
    # this process's Pillow limit, where Pillow refuses an image outright.
    Image.MAX_IMAGE_PIXELS = 30_000
    pixels = np.random.default_rng(0).integers(0, 255, (400, 200, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    wire = {"strings": [], "pathNodes": [], "fields": ["path", "bbox", "fixed", "visible",
            "hidden_reason"], "stringFields": ["hidden_reason"], "rows": []}
    record = PageRecord(page_id="p1", url="https://example.org/", final_url="https://example.org/",
                        status="ok", viewport=[200, 400], device_pixel_ratio=1.0)
    grab = capture.Grab(record, {}, time.monotonic(), 200, boxes_json=orjson.dumps(wire).decode(),
                        screenshot_b64=base64.b64encode(buf.getvalue()).decode())
    ws = Workspace(Path(sys.argv[1])).ensure()
    done = capture.finish_capture(grab, ws, CaptureConfig(blank_check_pixels=1))
    print("captured", done.page.width, done.page.height, done.page.flags)
    Image.MAX_IMAGE_PIXELS = limit
    print("limit", Image.MAX_IMAGE_PIXELS)
    try:
        Image.open(io.BytesIO(bomb_png(100_000, 100_000)))
        print("bomb opened")
    except Image.DecompressionBombError:
        print("bomb refused")
""")


def test_the_capture_reads_its_tall_screenshot_and_pillows_bomb_limit_holds_elsewhere(
        tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "ws")], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "captured 200 400 []", lines
    assert (tmp_path / "ws" / "pages" / "p1" / "screenshot.png").is_file()
    assert lines[1] not in ("limit None", "limit 0"), lines
    assert lines[2] == "bomb refused", lines
