"""Hashes of one captured page: exact (pixels, visible text) and perceptual (per band).

A perceptual hash squeezes its input into 32x32 before the DCT, so hashing a whole
1280x8000 screenshot averages about 250 page rows into each hash row and different pages
of one site look alike. Tall pages are therefore cut into the first viewport and
fixed-height bands below it, and each band gets its own 64-bit pHash.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

import imagehash
import numpy as np
from PIL import Image, ImageStat

# Recorded beside every stored hash, so hashes made by another algorithm or library version
# are never compared with these (a change here means re-hashing).
PHASH_SIZE = 8
HASH_ALGO = (f"imagehash-{imagehash.__version__}/phash-{PHASH_SIZE}+simhash-blake2b-3"
             "+images-1")

# A band whose grey levels vary less than this (standard deviation, 0..255) is empty
# page background: its pHash says nothing about the page, so it is not indexed.
BLANK_STD = 2.0

_SPACE = re.compile(r"\s+")


def pixel_digest(image: Image.Image) -> str:
    """SHA-256 of the decoded RGB pixels and the size (not of the PNG bytes, which vary)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    h = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    h.update(rgb.tobytes())
    return h.hexdigest()


def normalise_text(texts: Iterable[str]) -> str:
    """Visible text folded so that rendering noise is not a difference.

    NFKC (ligatures, full-width forms), case folding and one space for any run of
    white space.
    """
    joined = " ".join(unicodedata.normalize("NFKC", t) for t in texts if t)
    return _SPACE.sub(" ", joined.casefold()).strip()


def text_digest(texts: Iterable[str]) -> str:
    """SHA-256 of the normalised text."""
    return hashlib.sha256(normalise_text(texts).encode("utf-8")).hexdigest()


def text_simhash(texts: Iterable[str], shingle: int = 3) -> int | None:
    """64-bit SimHash (Charikar 2002) of the normalised text's word shingles.

    Used for web pages by Manku, Jain and Das Sarma (2007): a few edited words or an
    added banner move a few bits, another page of the same site moves many. None when
    there are no words.
    """
    words = normalise_text(texts).split()
    if not words:
        return None
    grams = {" ".join(words[i : i + shingle]) for i in range(max(1, len(words) - shingle + 1))}
    digests = b"".join(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest() for g in grams)
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(-1, 8), axis=1,
                         bitorder="little")
    majority = (bits.sum(axis=0, dtype=np.int64) * 2 > len(grams)).astype(np.uint8)
    return int.from_bytes(np.packbits(majority, bitorder="little").tobytes(), "little")


def band_rows(height: int, viewport_h: int, band_h: int, max_bands: int) -> list[tuple[int, int]]:
    """Row ranges [top, bottom) of the first viewport and the bands below it.

    The first range is always the first viewport, what a visitor sees first. A remainder
    shorter than half a band joins the band above it (never the viewport), so a page that
    grows by a line does not gain a sliver band of stretched noise.
    """
    if height <= 0 or viewport_h <= 0 or band_h <= 0 or max_bands <= 0:
        return []
    rows = [(0, min(viewport_h, height))]
    top = rows[0][1]
    while top < height and len(rows) < max_bands:
        bottom = min(top + band_h, height)
        if height - bottom < band_h // 2:
            bottom = height
        rows.append((top, bottom))
        top = bottom
    return rows


def phash_int(image: Image.Image) -> int:
    """imagehash.phash as an unsigned 64-bit integer (bit order of imagehash's hex)."""
    return int(str(imagehash.phash(image, hash_size=PHASH_SIZE)), 16)


def is_blank(grey: Image.Image) -> bool:
    return ImageStat.Stat(grey).stddev[0] < BLANK_STD


def band_hashes(
    image: Image.Image, viewport_h: int, band_h: int, max_bands: int
) -> list[int | None]:
    """pHash of the first viewport and of each band (image pixels); None for blank bands."""
    grey = image if image.mode == "L" else image.convert("L")
    out: list[int | None] = []
    for top, bottom in band_rows(grey.height, viewport_h, band_h, max_bands):
        band = grey.crop((0, top, grey.width, bottom))
        out.append(None if is_blank(band) else phash_int(band))
    return out


def whole_hash(image: Image.Image) -> int:
    """The usual pHash of the whole screenshot squeezed to 32x32 (kept as a baseline)."""
    return phash_int(image if image.mode == "L" else image.convert("L"))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


# An image smaller than this on either side (image pixels) is an icon or a spacer: its pHash
# is noise, and it is no page's content.
MIN_IMAGE_SIDE = 24
MAX_IMAGES = 32  # the largest ones; a gallery's thumbnails beyond them add little


def image_hashes(image: Image.Image, bboxes: Iterable[Sequence[float]]
                 ) -> tuple[list[tuple[int, int]], float]:
    """(pHash, area) of each drawn image on the page, largest first, and the share of the
    page those images cover.

    The images are cut from the screenshot itself (boxes in image pixels), so what is
    compared is what a visitor sees, whatever the image's URL. Blank crops (an image that
    did not load) are left out, as are icons.
    """
    grey = image if image.mode == "L" else image.convert("L")
    width, height = grey.size
    if width <= 0 or height <= 0:
        return [], 0.0
    covered = np.zeros((height // 8 + 1, width // 8 + 1), dtype=bool)
    found: list[tuple[int, int]] = []
    crops = []
    for x, y, w, h in bboxes:
        left, top = max(0, int(x)), max(0, int(y))
        right, bottom = min(width, int(x + w)), min(height, int(y + h))
        if right - left >= MIN_IMAGE_SIDE and bottom - top >= MIN_IMAGE_SIDE:
            crops.append(((right - left) * (bottom - top), (left, top, right, bottom)))
    for area, box in sorted(crops, key=lambda c: (-c[0], c[1]))[:MAX_IMAGES]:
        crop = grey.crop(box)
        if is_blank(crop):
            continue
        found.append((phash_int(crop), area))
        left, top, right, bottom = box
        covered[top // 8 : (bottom + 7) // 8, left // 8 : (right + 7) // 8] = True
    share = float(covered.sum()) * 64 / (width * height)
    return found, min(1.0, share)
