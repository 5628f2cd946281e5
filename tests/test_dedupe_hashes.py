"""Hash functions of the dedupe stage, on small hand-made images and texts."""

from __future__ import annotations

import random

import imagehash
from PIL import Image, ImageDraw

from dedupe.hashes import (
    HASH_ALGO,
    band_hashes,
    band_rows,
    normalise_text,
    phash_int,
    pixel_digest,
    text_digest,
    text_simhash,
    whole_hash,
)
from dedupe.layout import categorise, cosine, coverage, layout_vector
from dedupe.match import NearRule, PageHashes, band_distance, judge


def page_image(seed: int, width: int = 320, height: int = 1200) -> Image.Image:
    """A page-like picture: a header bar and random blocks of 'text' lines."""
    rng = random.Random(seed)
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, width, 40), fill=(30, 60, 120))
    y = 60
    while y < height - 20:
        x0 = rng.randrange(10, 60)
        x1 = rng.randrange(width // 2, width - 10)
        d.rectangle((x0, y, x1, y + 8), fill=(rng.randrange(0, 90),) * 3)
        y += rng.choice((14, 14, 14, 40))
    return im


def test_pixel_digest_is_of_pixels_not_of_encoding() -> None:
    im = page_image(1)
    assert pixel_digest(im) == pixel_digest(im.convert("RGBA").convert("RGB"))
    other = im.copy()
    other.putpixel((5, 100), (255, 0, 0))
    assert pixel_digest(other) != pixel_digest(im)


def test_text_digest_ignores_case_space_and_compatibility_forms() -> None:
    assert normalise_text(["  Hello\n", "WORLD  ﬁne"]) == "hello world fine"
    assert text_digest(["Hello  world"]) == text_digest(["hello", "world"])
    assert text_digest(["hello world"]) != text_digest(["hello there"])


def test_simhash_moves_few_bits_for_small_edits_and_many_for_other_text() -> None:
    rng = random.Random(3)
    vocab = [f"word{i}" for i in range(400)]
    text = " ".join(rng.choice(vocab) for _ in range(300))
    edited = text.replace(text.split()[150], "changed", 1)
    other = " ".join(rng.choice(vocab) for _ in range(300))
    a, b, c = text_simhash([text]), text_simhash([edited]), text_simhash([other])
    assert a is not None and b is not None and c is not None
    assert (a ^ b).bit_count() <= 8
    assert (a ^ c).bit_count() >= 20
    assert text_simhash(["", "  "]) is None
    assert text_simhash(["Same TEXT"]) == text_simhash(["same   text"])


def test_band_rows_start_with_the_viewport_and_absorb_short_tails() -> None:
    assert band_rows(500, 800, 800, 8) == [(0, 500)]
    assert band_rows(1900, 800, 800, 8) == [(0, 800), (800, 1900)]  # 300 px tail joins
    assert band_rows(2500, 800, 800, 8) == [(0, 800), (800, 1600), (1600, 2500)]
    rows = band_rows(100_000, 800, 800, 4)
    assert len(rows) == 4 and rows[0] == (0, 800) and rows[-1][0] == 2400
    # A short tail straight after the viewport stays its own band: the viewport is fixed.
    assert band_rows(900, 800, 800, 8) == [(0, 800), (800, 900)]


def test_band_hashes_match_imagehash_and_mark_blank_bands() -> None:
    im = page_image(2, height=1600)
    im.paste((255, 255, 255), (0, 800, im.width, 1600))  # empty second half
    bands = band_hashes(im, viewport_h=800, band_h=800, max_bands=8)
    assert len(bands) == 2
    assert bands[0] == int(str(imagehash.phash(im.crop((0, 0, im.width, 800)))), 16)
    assert bands[1] is None
    assert "imagehash-" in HASH_ALGO and imagehash.__version__ in HASH_ALGO


def test_bands_tell_tall_pages_apart_that_the_whole_page_hash_confuses() -> None:
    """Two tall pages alike at the top but different below: squeezed, they look alike."""
    a = page_image(10, height=6400)
    b = a.copy()
    b.paste(page_image(11, height=3200).crop((0, 0, a.width, 3200)), (0, 3200))
    whole = (whole_hash(a) ^ whole_hash(b)).bit_count()
    bands_a = band_hashes(a, 800, 800, 8)
    bands_b = band_hashes(b, 800, 800, 8)
    assert band_distance(bands_a, bands_b, "max") > whole
    assert band_distance(bands_a[:4], bands_b[:4], "max") == 0


def test_small_change_stays_near_and_another_page_is_far() -> None:
    a = page_image(20)
    b = a.copy()
    ImageDraw.Draw(b).rectangle((20, 300, 120, 310), fill="white")  # a few words removed
    c = page_image(21)
    ha, hb, hc = phash_int(a), phash_int(b), phash_int(c)
    assert (ha ^ hb).bit_count() <= 6
    assert (ha ^ hc).bit_count() > 12


def _page(pid: str, bands: list, text: int | None, height: int = 1600) -> PageHashes:
    return PageHashes(page_id=pid, pixel_sha=pid, bands=bands, height=height, text_simhash=text)


def test_judge_uses_text_when_both_have_it_and_pixels_otherwise() -> None:
    rule = NearRule(phash_threshold=6, text_threshold=12, text_phash_threshold=64)
    look_alike = [0xFFFF_0000_FFFF_0000, 0x0F0F_0F0F_0F0F_0F0F]
    # Same look, different text: different pages.
    assert judge(_page("a", look_alike, 0), _page("b", look_alike, (1 << 20) - 1), rule) is None
    # Text within the threshold: near_text, whatever the pixels.
    e = judge(_page("a", look_alike, 0b111), _page("b", [0, 0], 0), rule)
    assert e is not None and e.relation == "near_text" and e.distance == 3
    # No text on one side: pixels decide, within phash_threshold.
    e = judge(_page("a", look_alike, None), _page("b", [look_alike[0] ^ 0b11, look_alike[1]], 5),
              rule)
    assert e is not None and e.relation == "near"
    assert judge(_page("a", look_alike, None), _page("b", look_alike, None, height=3000),
                 rule) is None  # heights too different


def test_layout_cells_record_the_kind_that_covers_them() -> None:
    boxes = [
        {"kind": "image", "bbox": [0, 0, 200, 100], "visible": True},  # top-left cells
        {"kind": "text", "bbox": [200, 0, 200, 100], "visible": True},
        {"kind": "text", "bbox": [0, 100, 100, 100], "visible": True},
        {"kind": "interactive", "bbox": [0, 100, 100, 100], "visible": True},
        {"kind": "image", "bbox": [300, 300, 100, 100], "visible": False},  # hidden: ignored
    ]
    cat = categorise(coverage(boxes, width=400, cols=4, rows=4))
    assert cat[0, 0] == 1 and cat[0, 1] == 1  # image
    assert cat[0, 2] == 0 and cat[0, 3] == 0  # text
    assert cat[1, 0] == 3  # text and interactive together: mixed
    assert cat[3, 3] == -1  # hidden box leaves the cell empty
    v = layout_vector(boxes, 400, 4, 4)
    assert v.shape == (4 * 4 * 4,) and v.sum() == 5
    assert cosine(v, v) == 1.0
    moved = [dict(b, bbox=[b["bbox"][0], b["bbox"][1] + 200, *b["bbox"][2:]]) for b in boxes]
    assert cosine(v, layout_vector(moved, 400, 4, 4)) < 0.5
