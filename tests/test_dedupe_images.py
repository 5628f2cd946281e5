"""Pages made mostly of images are judged on their images.

A photo page has a few caption lines: one edited word and an added line move its SimHash
far and shift its bands, yet it is the same page. Another page with the same captions and
other photos is another page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog import Catalog, Workspace
from dedupe.hashes import image_hashes
from dedupe.match import NearRule, PageHashes, judge, near_edges

ROOT = Path(__file__).resolve().parent.parent
CAPTIONS = [
    "Morning light over the harbour, taken from the old lighthouse on the northern pier",
    "The fishing fleet returns before the storm with gulls circling over the nets",
    "Evening market stalls along the quay selling the day's catch to the villagers",
]


def photo(seed: int, size: tuple[int, int] = (420, 300)) -> Image.Image:
    """A smooth picture unlike any other seed's (blurred noise, like a photograph)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def _page_html(images: list[str], captions: list[str], extra: str = "") -> str:
    figures = "".join(
        f'<figure style="margin:8px;display:inline-block"><img src="{src}" width="420" '
        f'height="300"><figcaption style="font:12px sans-serif;width:420px">{cap}'
        "</figcaption></figure>"
        for src, cap in zip(images, captions + [""] * len(images), strict=False)
    )
    tail = f'<p style="font:12px sans-serif">{extra}</p>' if extra else ""
    return f"<!doctype html><html><body style='margin:0;width:900px'>{figures}{tail}</body></html>"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.browser
@pytest.mark.slow
def test_a_photo_page_with_an_edited_caption_groups_with_its_original(
    chromium: str, static_site: tuple[Path, str], tmp_path: Path
) -> None:
    site, base = static_site
    for k in range(8):
        photo(k).save(site / f"p{k}.png")
    mine = [f"p{k}.png" for k in range(4)]
    others = [f"p{k}.png" for k in range(4, 8)]
    edited = [CAPTIONS[0].replace("Morning", "Dawn"), *CAPTIONS[1:]]
    (site / "a.html").write_text(_page_html(mine, CAPTIONS))
    (site / "b.html").write_text(_page_html(mine, edited, extra="Photos: the harbour club"))
    (site / "c.html").write_text(_page_html(others, [CAPTIONS[0], CAPTIONS[1],
                                                     CAPTIONS[2].replace("quay", "pier")]))
    ws = Workspace(tmp_path / "ws")
    urls = [f"{base}/{n}.html" for n in "abc"]
    cap = _run("scraper", "capture", *urls, "--workspace", str(ws.root), "--offline")
    assert cap.returncode == 0, cap.stderr
    with Catalog(ws.catalog_path) as cat:
        ids = [cat.execute("SELECT page_id FROM pages WHERE url=?", (u,)).fetchone()[0]
               for u in urls]
    done = _run("dedupe", "run", "--workspace", str(ws.root))
    assert done.returncode == 0, done.stderr
    groups = json.loads(_run("dedupe", "groups", "--json", "--workspace", str(ws.root)).stdout)
    # The edited copy joins its original; the page of other photos stays apart, though its
    # captions are nearly the same.
    assert [sorted(g) for g in groups] == [sorted(ids[:2])]


def _hashed(pid: str, seeds: list[int], height: int = 1000) -> PageHashes:
    """A page of four photos in a 2x2 grid and a strip of text below them."""
    page = Image.new("RGB", (900, height), "white")
    boxes = []
    for k, seed in enumerate(seeds):
        x, y = 20 + (k % 2) * 440, 20 + (k // 2) * 320
        page.paste(photo(seed), (x, y))
        boxes.append([x, y, 420, 300])
    images, share = image_hashes(page, boxes)
    return PageHashes(pid, pid, [None], height, text_simhash=hash(pid) & (2**64 - 1),
                      images=images, image_share=share)


def test_same_photos_are_a_near_duplicate_whatever_the_words_and_other_photos_are_not():
    rule = NearRule()
    a, b = _hashed("a", [1, 2, 3, 4]), _hashed("b", [1, 2, 3, 4], height=1030)
    c = _hashed("c", [5, 6, 7, 8])
    one_swapped = _hashed("d", [1, 2, 3, 9])
    assert a.image_share >= rule.image_page_share and len(a.images) == 4
    edge = judge(a, b, rule)
    assert edge is not None and edge.relation == "near_images" and edge.distance <= 2
    assert judge(a, c, rule) is None
    assert judge(a, one_swapped, rule) is None  # a quarter of the photos differ
    # The index finds the pair without comparing every page with every other.
    edges = near_edges([a, b, c, one_swapped], {"b"}, rule)
    assert [(e.a, e.b, e.relation) for e in edges] == [("a", "b", "near_images")]


def test_icons_and_blank_images_are_not_a_page_s_content():
    page = Image.new("RGB", (600, 600), "white")
    page.paste(photo(3, (16, 16)), (0, 0))  # an icon
    images, share = image_hashes(page, [[0, 0, 16, 16], [100, 100, 400, 400]])  # blank
    assert images == [] and share == 0.0


def test_a_catalog_hashed_before_images_gains_their_columns(tmp_path):
    from dedupe import store

    with Catalog(tmp_path / "catalog.sqlite") as cat:
        # The table as it was (the columns that matter here; run_id has always been there,
        # and the index of a run's new pages is made on it).
        cat.ensure_tables("CREATE TABLE dedupe_hashes (page_id TEXT PRIMARY KEY, algo TEXT,"
                          " pixel_sha TEXT, text_sha TEXT, run_id INTEGER NOT NULL);")
        store.ensure(cat)
        columns = {r[1] for r in cat.execute("PRAGMA table_info(dedupe_hashes)")}
        assert {"images", "image_share"} <= columns
