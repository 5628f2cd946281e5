"""Which pages are duplicates of which: page-level rules over the hashes, and the search.

Relations, strongest first:
- exact_pixels: the same decoded screenshot;
- exact_text: the same normalised visible text (enough of it to mean something);
- near_text: visible text nearly the same (SimHash), optionally with the screenshots alike
  (a looser pHash check); the rule for pages with text: it catches a cookie banner or an
  edited sentence, and it keeps apart two pages of one site that look alike but say
  different things (short reference pages of one site are within 6 pHash bits);
- near_images: pages made mostly of images, judged on those images (each cut from the
  screenshot and pHashed): a page of photos with a caption edited and a line added is the
  same page, though its few words move the SimHash far and the bands shift;
- near: for pages with too little text to tell, the screenshots alone (a strict pHash check);
- template: layout grids alike (cosine); a weaker relation that never drops a page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .index import MultiIndex
from .layout import cosine_matrix

UNRELATED = 64.0  # the distance of pages that cannot be near duplicates


@dataclass
class PageHashes:
    """Everything dedupe knows about one page (one row of dedupe_hashes)."""

    page_id: str
    pixel_sha: str
    bands: list[int | None]  # pHash of the first viewport, then of each band; None: blank
    height: int  # image pixels
    text_sha: str | None = None
    text_simhash: int | None = None  # None: too little text
    whole: int | None = None  # pHash of the whole squeezed screenshot (baseline only)
    layout: np.ndarray | None = None
    n_boxes: int = 0
    n_errors: int = 0
    site: str = ""
    captured_at: float = 0.0
    algo: str = ""
    images: list[tuple[int, int]] = field(default_factory=list)  # (pHash, area), largest first
    image_share: float = 0.0  # of the page's area covered by those images
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    relation: str  # exact_pixels | exact_text | near_text | near_images | near | template
    distance: float


def band_distance(
    a: Sequence[int | None], b: Sequence[int | None], rule: str = "max"
) -> float:
    """Distance of two band lists: the worst (max) or mean band over the bands both have.

    Two blank bands are equal; a blank band against a drawn one is as far as can be.
    """
    n = min(len(a), len(b))
    if n == 0:
        return UNRELATED
    d = []
    for x, y in zip(a[:n], b[:n], strict=True):
        if x is None or y is None:
            d.append(0.0 if x is y else UNRELATED)
        else:
            d.append(float((x ^ y).bit_count()))
    if rule == "max":
        return max(d)
    if rule == "mean":
        return sum(d) / n
    raise ValueError(f"unknown band rule {rule!r} (max or mean)")


def heights_close(ha: int, hb: int, tolerance: float) -> bool:
    return abs(ha - hb) <= tolerance * max(ha, hb, 1)


@dataclass(frozen=True)
class NearRule:
    phash_threshold: int = 6  # pages without text: band distance for a near duplicate
    text_threshold: int = 12  # pages with text: SimHash bits
    text_phash_threshold: int = 64  # ... and band distance (64: not checked)
    band_rule: str = "mean"
    height_tolerance: float = 0.1
    image_threshold: int = 8  # pHash bits of one image for "the same image"
    image_page_share: float = 0.5  # images cover this share of a page: judged on its images

    @classmethod
    def from_config(cls, cfg: object) -> NearRule:
        return cls(**{f: getattr(cfg, f) for f in cls.__dataclass_fields__})


def visual_distance(a: PageHashes, b: PageHashes, rule: NearRule) -> float:
    if not heights_close(a.height, b.height, rule.height_tolerance):
        return UNRELATED
    return band_distance(a.bands, b.bands, rule.band_rule)


# Images covering this share of each page's image area must pair up for a near_images edge.
IMAGE_MATCH = 0.9
AREA_RATIO = 1.25  # paired images differ in area by at most this factor


def is_image_page(p: PageHashes, rule: NearRule) -> bool:
    return bool(p.images) and p.image_share >= rule.image_page_share


def image_distance(a: PageHashes, b: PageHashes, rule: NearRule) -> float | None:
    """Mean pHash bits of the paired images when the pages show the same images, else None.

    Each image of `a`, largest first, pairs with the closest unpaired image of `b` of about
    its size; the images paired must make most of both pages' image area, so one shared
    logo or banner never makes two galleries the same.
    """
    if not heights_close(a.height, b.height, rule.height_tolerance):
        return None
    used: set[int] = set()
    bits: list[int] = []
    area_a = 0
    for h, area in a.images:
        best: tuple[int, int] | None = None
        for j, (g, other) in enumerate(b.images):
            if j in used or max(area, other) > AREA_RATIO * min(area, other):
                continue
            d = (h ^ g).bit_count()
            if d <= rule.image_threshold and (best is None or d < best[0]):
                best = (d, j)
        if best is not None:
            used.add(best[1])
            bits.append(best[0])
            area_a += area
    area_b = sum(b.images[j][1] for j in used)
    total_a = sum(area for _, area in a.images)
    total_b = sum(area for _, area in b.images)
    if not bits or area_a < IMAGE_MATCH * total_a or area_b < IMAGE_MATCH * total_b:
        return None
    return sum(bits) / len(bits)


def judge(a: PageHashes, b: PageHashes, rule: NearRule) -> Edge | None:
    """The near-duplicate edge between two pages, or None."""
    if is_image_page(a, rule) and is_image_page(b, rule):
        # Their images are their content: the same images are the same page whatever
        # its few words say, and other images are another page however alike the words.
        d_images = image_distance(a, b, rule)
        return None if d_images is None else Edge(a.page_id, b.page_id, "near_images", d_images)
    if a.text_simhash is not None and b.text_simhash is not None:
        bits = (a.text_simhash ^ b.text_simhash).bit_count()
        if bits > rule.text_threshold:
            return None  # they say different things, however alike they look
        if rule.text_phash_threshold >= UNRELATED or (
            visual_distance(a, b, rule) <= rule.text_phash_threshold
        ):
            return Edge(a.page_id, b.page_id, "near_text", float(bits))
        return None
    d = visual_distance(a, b, rule)
    return Edge(a.page_id, b.page_id, "near", d) if d <= rule.phash_threshold else None


def exact_edges(pages: Sequence[PageHashes], new: set[str]) -> list[Edge]:
    """Pages sharing a pixel digest or a text digest, each linked to the first of its kind.

    Only links that involve a new page are returned (the others were found before).
    """
    edges = []
    for relation, attr in (("exact_pixels", "pixel_sha"), ("exact_text", "text_sha")):
        by_key: dict[str, list[str]] = defaultdict(list)
        for p in pages:
            key = getattr(p, attr)
            if key:
                by_key[key].append(p.page_id)
        for ids in by_key.values():
            head = ids[0]
            for other in ids[1:]:
                if other in new or head in new:
                    edges.append(Edge(head, other, relation, 0.0))
    return edges


def _search(
    hashes: list[int | None],
    query: set[int],
    radius: int,
    out: set[tuple[int, int]],
    indexed: set[int] | None = None,
    collapse: bool = False,
) -> None:
    """Add pairs (i, j), i in query, j indexed (default: all), with hashes within radius.

    collapse: pages with one hash value are linked to the first of them and only that one
    is searched, so a thousand copies of one page make a thousand pairs, not half a million
    (valid where the rule looks at this hash alone).
    """
    index_ids = [i for i, h in enumerate(hashes)
                 if h is not None and (indexed is None or i in indexed)]
    query_ids = [i for i in sorted(query) if hashes[i] is not None]
    if not query_ids or not index_ids:
        return
    if collapse:
        rep: dict[int, int] = {}
        for i in sorted({*index_ids, *query_ids}):
            first = rep.setdefault(hashes[i], i)  # type: ignore[arg-type]
            if first != i and (i in query or first in query):
                out.add((first, i))
        index_ids = sorted({rep[hashes[i]] for i in index_ids})  # type: ignore[index]
        query_ids = sorted({rep[hashes[i]] for i in query_ids})  # type: ignore[index]
    values = np.array([hashes[i] for i in index_ids], dtype=np.uint64)
    qvalues = np.array([hashes[i] for i in query_ids], dtype=np.uint64)
    for qk, hk in MultiIndex(values, radius).search(qvalues, radius):
        a, b = query_ids[int(qk)], index_ids[int(hk)]
        if a != b:
            out.add((min(a, b), max(a, b)))


def near_candidates(
    pages: Sequence[PageHashes], query: Sequence[int], rule: NearRule
) -> set[tuple[int, int]]:
    """Index pairs (query page, any page) that the rule may accept, found sub-quadratically.

    A pair of pages with text needs its SimHashes within text_threshold: the SimHash index
    finds all of those. A pair judged on pixels (one page has too little text) needs a band
    mean (or max) within phash_threshold, so one band at the same position within it: the
    per-position band indexes find those. A pair of image pages needs one image of the
    query page within image_threshold of one of the other's: the index of every page's
    images finds those. Pages with text are never paired through bands,
    so a site whose pages share a first viewport (a banner, a login wall) does not make a
    quadratic number of candidates. Blank bands are not indexed.
    """
    out: set[tuple[int, int]] = set()
    qset = set(query)
    if not qset:
        return out
    _search([p.text_simhash for p in pages], qset, rule.text_threshold, out,
            collapse=rule.text_phash_threshold >= UNRELATED)
    owners = [i for i, p in enumerate(pages) if is_image_page(p, rule) for _ in p.images]
    flat = [h for p in pages if is_image_page(p, rule) for h, _ in p.images]
    pairs: set[tuple[int, int]] = set()
    _search(flat, {k for k, i in enumerate(owners) if i in qset}, rule.image_threshold, pairs)
    out.update((min(owners[k], owners[m]), max(owners[k], owners[m]))
               for k, m in pairs if owners[k] != owners[m])
    textless = {i for i, p in enumerate(pages) if p.text_simhash is None}
    positions = max((len(p.bands) for p in pages), default=0)
    for pos in range(positions):
        bands = [p.bands[pos] if len(p.bands) > pos else None for p in pages]
        _search(bands, qset & textless, rule.phash_threshold, out)  # against every page
        _search(bands, qset - textless, rule.phash_threshold, out, indexed=textless)
    return out


def near_edges(pages: Sequence[PageHashes], new: set[str], rule: NearRule) -> list[Edge]:
    query = [i for i, p in enumerate(pages) if p.page_id in new]
    edges = []
    for a, b in sorted(near_candidates(pages, query, rule)):
        edge = judge(pages[a], pages[b], rule)
        if edge is not None:
            edges.append(edge)
    return edges


def template_edges(
    pages: Sequence[PageHashes], new: set[str], threshold: float, block: int = 2048
) -> list[Edge]:
    """Same-template links of new pages to pages of their own site (cosine of layouts).

    Templates belong to a site, so only pages of one site are compared. Pages with the
    very same grid (common on a templated site) are linked to the first of them and only
    that one is compared; the rest are compared block by block as matrix products.
    """
    by_site: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pages):
        if p.layout is not None and np.any(p.layout):
            by_site[p.site].append(i)
    is_new = [p.page_id in new for p in pages]
    edges = []
    for members in by_site.values():
        if not any(is_new[i] for i in members):
            continue
        rep: dict[bytes, int] = {}
        for i in members:
            first = rep.setdefault(pages[i].layout.tobytes(), i)  # type: ignore[union-attr]
            if first != i and (is_new[i] or is_new[first]):
                edges.append(Edge(pages[first].page_id, pages[i].page_id, "template", 1.0))
        reps = sorted(rep.values())
        new_reps = sorted({rep[pages[i].layout.tobytes()] for i in members if is_new[i]})  # type: ignore[union-attr]
        new_set = set(new_reps)
        allv = np.stack([pages[i].layout for i in reps])
        for qs in range(0, len(new_reps), block):
            q = new_reps[qs : qs + block]
            qv = np.stack([pages[i].layout for i in q])
            for cs in range(0, len(reps), block):
                sims = cosine_matrix(qv, allv[cs : cs + block])
                for r, c in zip(*np.nonzero(sims >= threshold), strict=True):
                    a, b = q[int(r)], reps[cs + int(c)]
                    if a == b or (b < a and b in new_set):
                        continue  # itself, or a pair of new ones met from the other side
                    edges.append(
                        Edge(pages[a].page_id, pages[b].page_id, "template", float(sims[r, c]))
                    )
    return edges
