"""Export throughput: pages/s for a release with masks and 1024 px tiles of 1280x4000 pages.

Builds a workspace of 1280x4000 pages (regions and text/image/interactive masks drawn, per
the contracts), pins the process to one core and times `make_release`. Screenshots are
stored as the capture stores them (Chromium's fast PNG: rows filtered UP, zlib level 1).
Page sets:
  (default)        textured: noise-inked text, noisy pictures; 3 to 4 MB PNGs, harder to
                   code than real screenshots (0.9 to 3.7 MB at this size);
  --captured WS    real screenshots from a capture workspace (`python -m scraper capture
                   --workspace WS URL...`), joined top to bottom into 1280x4000 pages;
  --flat           flat colour (about 90 kB PNGs), the easy case.
Baselines, in the same run: decoding each screenshot and encoding it again as PNG with
OpenCV's (libpng's) defaults, and with the export's own codec. Floors: libspng decoding
alone, ISA-L inflating alone (the least any reader of the file does), deflating the tile images
alone and both (the least a tiled export with these PNG settings does), and the bound
set by the export without tiles (masks, COCO, card) plus the deflate of the tiles.
Target: at least 20 pages/s, in CPU time of the one core, with the process set up as
`python -m export` sets it (export.memory). Each figure is the best of --repeat runs:
other work on a shared machine only ever adds time (wall time is shown too, and
inflates most). The last line gives pages/s; the exit status is 1 when the target is
missed on the pages measured.

    .venv/bin/python bench/export.py [--pages 40] [--flat | --captured WS]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pyspng  # noqa: E402
from isal import isal_zlib  # noqa: E402

from catalog import Catalog, Config, Workspace  # noqa: E402
from export.memory import keep_freed_memory  # noqa: E402
from export.pagefiles import decode_image, encode_image_png  # noqa: E402
from export.png import isal_level, read_up_rows  # noqa: E402
from export.release import make_release  # noqa: E402
from export.synthetic import add_page  # noqa: E402

TARGET = 20.0  # pages/s
WIDTH, HEIGHT = 1280, 4000


def _timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, float]:
    """Best (wall, CPU) seconds of `repeat` calls."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def captured_pages(src: Path, n: int) -> list[np.ndarray]:
    """n RGB pages of WIDTH x HEIGHT from the capture workspace's screenshots: page i is
    screenshot i with the following ones below it, cut at HEIGHT (real pixels only)."""
    shots = []
    for path in sorted(src.glob("pages/*/screenshot.png")):
        arr = decode_image(path.read_bytes(), path)
        if arr.ndim == 3 and arr.shape[1] == WIDTH:
            shots.append(arr[..., :3])
    if not shots:
        raise SystemExit(f"no {WIDTH} px wide screenshots under {src}/pages/")
    pages = []
    for i in range(n):
        parts, rows, k = [], 0, i
        while rows < HEIGHT:
            parts.append(shots[k % len(shots)])
            rows += parts[-1].shape[0]
            k += 1
        pages.append(np.ascontiguousarray(np.concatenate(parts)[:HEIGHT]))
    return pages


def build(ws: Workspace, n: int, kind: str, captured: Path | None) -> None:
    pixels = captured_pages(captured, n) if captured else [None] * n
    with Catalog(ws.catalog_path) as cat:
        for i in range(n):
            add_page(ws, cat, f"https://www.site{i % 10}.org/p{i}", seed=i, width=WIDTH,
                     height=HEIGHT, textured=kind == "textured", pixels=pixels[i])


def _breakdown(ws: Workspace, tile: int, n_pages: int = 5,
               repeat: int = 3) -> list[tuple[str, float]]:
    """CPU ms per page of the export's steps, mean over the first pages (each step the
    best of `repeat`), done as export_page does them."""
    from catalog.config import LabelsConfig
    from export.coco import page_annotations
    from export.masks import ClassSet, paint_semantic
    from export.pagefiles import (
        _tile_pngs,
        class_histogram,
        element_masks,
        encode_mask_png,
        region_boxes,
    )
    from export.select import check_page, select_pages
    from export.tiles import tile_windows

    classes = ClassSet.from_labels(LabelsConfig())
    with Catalog(ws.catalog_path) as cat:
        pages = select_pages(ws, cat, classes, False).pages[:n_pages]
    per_step: dict[str, list[float]] = {}
    out_dir = Path(tempfile.mkdtemp(prefix="bench-export-files-", dir=ws.root))
    for page in pages:
        size = (page.width, page.height)
        regions, _ = region_boxes(page, classes, size)
        elements = element_masks(page, classes, size)
        sem = paint_semantic(*size, regions, elements)
        palette = classes.palette()
        data = page.screenshot.read_bytes()
        up = read_up_rows(data)
        source = up if up is not None else decode_image(data, page.screenshot)
        windows = tile_windows(*size, tile)
        scratch: dict = {}
        tile_pngs = list(_tile_pngs(source, windows, tile, 1, scratch))
        mask_pngs = [encode_mask_png(sem[y : y + tile, x : x + tile], palette, 1, scratch)
                     for x, y in windows]
        written = [data, encode_mask_png(sem, palette, 1), *tile_pngs, *mask_pngs]

        def write_files(written=written) -> None:
            for k, blob in enumerate(written):
                (out_dir / f"{k}.png").write_bytes(blob)

        reader = ("inflate screenshot rows (ISA-L)" if up is not None
                  else "decode screenshot (libspng)")
        steps = {
            "select: check annotation, PNG CRCs": lambda page=page: check_page(
                ws, page.page_id, page.annotation_path, classes),
            "read element masks": lambda page=page, size=size: element_masks(
                page, classes, size),
            "paint + encode semantic mask": lambda size=size, r=regions, e=elements,
            p=palette: encode_mask_png(paint_semantic(*size, r, e), p, 1),
            "class histogram of the semantic mask": lambda sem=sem: class_histogram(sem),
            "COCO instances (regions, components)": lambda size=size, r=regions,
            e=elements: page_annotations(1, *size, r, e),
            reader: lambda data=data, page=page: (
                read_up_rows(data) or decode_image(data, page.screenshot)),
            f"cut + deflate {len(windows)} tile images": lambda s=source, w=windows,
            sc=scratch: list(_tile_pngs(s, w, tile, 1, sc)),
            f"encode {len(windows)} tile masks": lambda sem=sem, w=windows, p=palette,
            sc=scratch: [encode_mask_png(sem[y : y + tile, x : x + tile], p, 1, sc)
                         for x, y in w],
            "SHA-256 of the files written": lambda written=written: [
                hashlib.sha256(b).digest() for b in written],
            "write the files (page cache)": write_files,
        }
        for name, fn in steps.items():
            per_step.setdefault(name, []).append(1000 * _timed(fn, repeat)[1])
    return [(name, statistics.mean(ms)) for name, ms in per_step.items()]


def _tile_levels(ws: Workspace, tile: int, level: int) -> list[tuple[float, float]]:
    """(MB, CPU ms) of one page's tile images at the export's PNG level and at ISA-L's
    fastest (0), over the first 5 pages: what a lower-compression setting would buy."""
    from export.pagefiles import _tile_pngs
    from export.tiles import tile_windows

    out = []
    for lv in (level, 0):
        mb, ms = [], []
        for pid in ws.page_ids()[:5]:
            data = ws.screenshot(pid).read_bytes()
            src = read_up_rows(data)
            src = src if src is not None else decode_image(data, "page")
            windows = tile_windows(WIDTH, HEIGHT, tile)
            scratch: dict = {}
            mb.append(sum(map(len, _tile_pngs(src, windows, tile, lv, scratch))) / 1e6)
            ms.append(1000 * _timed(lambda s=src, w=windows, sc=scratch, lv=lv: list(
                _tile_pngs(s, w, tile, lv, sc)), 3)[1])
        out.append((statistics.mean(mb), statistics.mean(ms)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=40)
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement; best counts")
    kinds = ap.add_mutually_exclusive_group()
    kinds.add_argument("--flat", action="store_true", help="flat-colour pages (small PNGs)")
    kinds.add_argument("--textured", action="store_true", help="textured pages (the default)")
    kinds.add_argument("--captured", type=Path, metavar="WS",
                       help="real screenshots from this capture workspace")
    args = ap.parse_args()
    kind = "flat" if args.flat else "captured" if args.captured else "textured"
    keep_freed_memory()  # as `python -m export` does
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.ensure()
        build(ws, args.pages, kind, args.captured)
        shots = [ws.screenshot(p) for p in ws.page_ids()]
        blobs = [s.read_bytes() for s in shots]

        def opencv() -> None:
            for s in shots:
                cv2.imencode(".png", cv2.imdecode(np.fromfile(s, np.uint8), cv2.IMREAD_UNCHANGED))

        def codec() -> None:
            for s in shots:
                encode_image_png(decode_image(s.read_bytes(), s), 1)

        def spng_floor() -> None:
            for b in blobs:
                pyspng.load(b)

        def inflate_floor() -> None:
            for b in blobs:
                read_up_rows(b)

        from export.tiles import tile_windows

        inflated = [read_up_rows(b) for b in blobs]

        def deflate_floor() -> None:  # deflate each tile's rows, the screenshots inflated
            for up in inflated:
                if up is None:
                    continue
                for x, y in tile_windows(up.width, up.height, args.tile):
                    isal_zlib.compress(np.ascontiguousarray(
                        up.rows[y : y + args.tile, 1 + 3 * x : 1 + 3 * (x + args.tile)]),
                        isal_level(1))

        result = {}

        def export(tile: int) -> None:
            cfg = Config()
            cfg.export.tile = tile
            cfg.export.val_ratio = 0.2
            result["r"] = make_release(ws, cfg, log=lambda _: None)

        rep = max(1, args.repeat)
        load0 = os.getloadavg()
        l_wall, l_cpu = _timed(opencv, rep)
        b_wall, b_cpu = _timed(codec, rep)
        s_cpu = _timed(spng_floor, rep)[1]
        i_cpu = _timed(inflate_floor, rep)[1]
        t_cpu = _timed(deflate_floor, rep)[1]
        inflated.clear()  # free the rows before the exports run
        p_wall, p_cpu = _timed(lambda: export(0), rep)
        e_wall, e_cpu = _timed(lambda: export(args.tile), rep)
        r = result["r"]
        n = r.pages
        all_up = all(read_up_rows(b) is not None for b in blobs)
        size = sum(len(b) for b in blobs) / len(blobs) / 1e3
        print(f"pages: {n} {kind} of {WIDTH}x{HEIGHT} (screenshots {size:.0f} kB each, "
              f"{'all' if all_up else 'not all'} UP-filtered as captured), tiles: {r.tiles} of "
              f"{args.tile} px, one core, best of {rep}")
        print(f"baseline: OpenCV decode + encode each screenshot:   "
              f"{n / l_cpu:6.1f} pages/s CPU, {n / l_wall:6.1f} pages/s wall")
        print(f"baseline: the same with the export's PNG codec:     "
              f"{n / b_cpu:6.1f} pages/s CPU, {n / b_wall:6.1f} pages/s wall")
        print(f"floor: libspng decode alone:                        {n / s_cpu:6.1f} pages/s CPU")
        print(f"floor: ISA-L inflate alone (UP rows, no unfilter):  {n / i_cpu:6.1f} pages/s CPU")
        print(f"floor: deflate of the tile images' rows alone:      {n / t_cpu:6.1f} pages/s CPU")
        print(f"floor: inflate + deflate (the tile codec floor):    "
              f"{n / (i_cpu + t_cpu):6.1f} pages/s CPU")
        print(f"export without tiles (masks, COCO, manifest, card): "
              f"{n / p_cpu:6.1f} pages/s CPU, {n / p_wall:6.1f} pages/s wall")
        print(f"bound: export without tiles + tile deflate floor:   "
              f"{n / (p_cpu + t_cpu):6.1f} pages/s CPU (no tiled export here is faster)")
        print(f"export with masks and tiles:                        "
              f"{n / e_cpu:6.1f} pages/s CPU, {n / e_wall:6.1f} pages/s wall")
        level = Config().export.png_level
        (mb, ms), (mb0, ms0) = _tile_levels(ws, args.tile, level)
        print(f"tile images: {mb:.2f} MB and {ms:.1f} ms a page at png_level {level} (ISA-L "
              f"level {isal_level(level)}); ISA-L's fastest (png_level 0): {mb0:.2f} MB "
              f"({100 * (mb0 / mb - 1):+.0f}%), {ms0:.1f} ms")
        print("where the time goes (CPU ms per page, mean of the first 5 pages):")
        steps = _breakdown(ws, args.tile)
        for name, ms in steps:
            print(f"  {name:40s} {ms:6.1f}")
        whole = 1000 * e_cpu / n
        rest = whole - sum(ms for _, ms in steps)
        print(f"  {'the rest (JSON, manifest, card, preview)':40s} {rest:6.1f}")
        print(f"  {'whole export, per page':40s} {whole:6.1f}")
        load1 = os.getloadavg()
        print("load average before, after: " + ", ".join(
            " ".join(f"{v:.2f}" for v in la) for la in (load0, load1)))
        rate = n / e_cpu
        verdict = "met" if rate >= TARGET else "MISSED"
        print(f"export {rate:.1f} pages/s ({kind} pages; CPU, one core; baselines: OpenCV "
              f"decode+encode {n / l_cpu:.1f}, export codec {n / b_cpu:.1f}; floors: libspng "
              f"decode {n / s_cpu:.1f}, inflate {n / i_cpu:.1f}, inflate+tile deflate "
              f"{n / (i_cpu + t_cpu):.1f}; bound {n / (p_cpu + t_cpu):.1f}; wall {n / e_wall:.1f}); "
              f"target {TARGET:.0f} pages/s {verdict}")
        return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
