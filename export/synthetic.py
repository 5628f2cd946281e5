"""Synthetic annotated pages written per the stage contracts, for tests and the benchmark.

A page here looks like a web page to the export: a screenshot with a header, navigation
links, lines of text, pictures and a footer; regions over them; text, image and
interactive masks where those are. Nothing is drawn by a browser, but the screenshot is
stored the way the capture stores one (see `capture_png`).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from catalog import Catalog, PageRecord, Workspace, page_id
from catalog.sites import site_of


def _save_png(arr: np.ndarray, path: Path, mode: str) -> None:
    Image.fromarray(arr).convert(mode).save(path, "PNG", compress_level=1)


def capture_png(arr: np.ndarray) -> bytes:
    """RGB pixels (h, w, 3) as PNG the way Chromium's fast capture (`optimizeForSpeed`,
    the scraper's default) writes screenshots: every row filtered UP, zlib level 1, one
    IDAT. Written with zlib here, so the bytes differ from Chromium's, not their kind."""
    height, width = arr.shape[:2]
    flat = arr.reshape(height, -1)
    rows = np.empty((height, flat.shape[1] + 1), np.uint8)
    rows[:, 0] = 2  # UP
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + chunk(b"IEND", b""))


def draw_page(
    width: int, height: int, seed: int, textured: bool = False
) -> tuple[np.ndarray, list[dict], dict]:
    """Screenshot pixels, regions and element masks (bool arrays) of a made-up page.

    Plain pages are flat colour (text lines as solid bars, pictures as filled boxes), so
    their PNGs are small; textured=True inks text lines with per-pixel grey noise and
    fills pictures with noisy gradients: PNGs of a few MB, harder to code than real
    screenshots, whose glyphs and photos have more structure than noise.
    """
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 250, np.uint8)
    text = np.zeros((height, width), bool)
    image = np.zeros((height, width), bool)
    interactive = np.zeros((height, width), bool)
    head = min(120, height // 6)
    foot = min(160, height // 6)
    side = width // 4
    img[:head] = (30, 40, 90)
    for x in range(40, width - 120, 130):  # navigation links in the header
        interactive[head // 3 : head // 3 + 20, x : x + 100] = True
        text[head // 3 + 4 : head // 3 + 16, x + 6 : x + 90] = True
    y = head + 30
    while y < height - foot - 40:
        if rng.random() < 0.12 and y + 240 < height - foot:
            w = int(rng.integers(200, max(201, width - side - 80)))
            image[y : y + 200, 40 : 40 + w] = True
            img[y : y + 200, 40 : 40 + w] = rng.integers(0, 255, 3, dtype=np.uint8)
            y += 230
            continue
        w = int(rng.integers(width // 3, width - side - 60))
        text[y : y + 12, 40 : 40 + w] = True
        y += 22
    for k in range(0, height - head - foot - 60, 90):  # sidebar links
        ty = head + 30 + k
        interactive[ty : ty + 24, width - side + 20 : width - 30] = True
        text[ty + 6 : ty + 18, width - side + 30 : width - 60] = True
    img[text] = (20, 20, 20)
    img[height - foot :] = (60, 60, 60)
    if textured:
        ink = text & (rng.random(text.shape) < 0.4)
        img[ink] = rng.integers(20, 250, (int(ink.sum()), 1), dtype=np.uint8)
        yy, xx = np.mgrid[0:height, 0:width]
        photo = np.stack([(xx * 0.2 + yy * 0.05) % 256, (yy * 0.3) % 256, (xx * 0.1) % 256], -1)
        photo = (photo + rng.normal(0, 12, photo.shape)).clip(0, 255).astype(np.uint8)
        img[image] = photo[image]
    regions = [
        {"label": "header", "bbox": [0, 0, width, head]},
        {"label": "navigation", "bbox": [20, head // 3 - 4, width - 60, 28]},
        {"label": "main", "bbox": [20, head + 10, width - side - 40, height - head - foot - 20]},
        {"label": "sidebar", "bbox": [width - side, head + 10, side - 10, height - head - foot - 20]},
        {"label": "footer", "bbox": [0, height - foot, width, foot]},
    ]
    for r in regions:
        r.update(score=1.0, source="human")
    return img, regions, {"text": text, "image": image, "interactive": interactive}


def write_annotation(
    page_dir: Path, name: str, pid: str, width: int, height: int, regions: list[dict],
    masks: dict[str, np.ndarray],
) -> None:
    stem = name.removesuffix(".json")
    files = {}
    for cls, m in masks.items():
        files[cls] = f"{stem}.{cls}.png"
        _save_png(m.astype(np.uint8) * 255, page_dir / files[cls], "L")
    doc = {
        "schema": 1, "page_id": pid, "width": width, "height": height, "regions": regions,
        "masks": files, "meta": {},
    }
    (page_dir / name).write_text(json.dumps(doc, indent=1), encoding="utf-8")


def add_page(
    ws: Workspace,
    cat: Catalog,
    url: str,
    *,
    width: int = 320,
    height: int = 480,
    seed: int = 0,
    human: bool = True,
    preannotation: bool = False,
    reviewed: bool = True,
    dup_group: str | None = None,
    canonical: bool = True,
    template: str | None = None,
    textured: bool = False,
    capture_like: bool = True,
    pixels: np.ndarray | None = None,
) -> str:
    """One captured page with its files and catalog rows; returns its page id.

    capture_like=False stores the screenshot as Pillow writes PNGs (adaptive filters);
    pixels (RGB, height x width x 3) replace the drawn screenshot, under drawn labels."""
    pid = page_id(url, (1280, 800))
    ws.ensure()
    d = ws.page_dir(pid)
    d.mkdir(parents=True, exist_ok=True)
    img, regions, masks = draw_page(width, height, seed, textured)
    if pixels is not None:
        if pixels.shape != (height, width, 3):
            raise ValueError(f"pixels are {pixels.shape}, not ({height}, {width}, 3)")
        img = pixels
    if capture_like:
        (d / "screenshot.png").write_bytes(capture_png(img))
    else:
        _save_png(img, d / "screenshot.png", "RGB")
    rec = PageRecord(
        page_id=pid, url=url, final_url=url, status="ok", viewport=[1280, 800],
        device_pixel_ratio=1.0, width=width, height=height, captured_at=1.0,
    )
    (d / "page.json").write_text(json.dumps(rec.to_dict(), indent=1), encoding="utf-8")
    if preannotation:
        write_annotation(d, "preannotation.json", pid, width, height, regions, masks)
    if human:
        write_annotation(d, "annotation.json", pid, width, height, regions, masks)
    with cat.transaction() as conn:
        cat.record_page(rec, site=site_of(url), conn=conn)
        if dup_group is not None:
            conn.execute(
                "INSERT OR REPLACE INTO dup_groups(page_id, group_id, canonical) VALUES(?,?,?)",
                (pid, dup_group, int(canonical)),
            )
        if template is not None:
            conn.execute(
                "INSERT OR REPLACE INTO template_groups(page_id, template_id) VALUES(?,?)",
                (pid, template),
            )
        if human:
            conn.execute(
                "INSERT OR REPLACE INTO annotations(page_id, task_id, annotation_id, annotator,"
                " reviewed, pulled_at) VALUES(?,?,?,?,?,?)",
                (pid, 1, 1, "tester", int(reviewed), 1.0),
            )
    return pid
