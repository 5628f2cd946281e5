"""The multi-index search against brute force, union-find, grouping and metrics."""

from __future__ import annotations

from itertools import combinations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dedupe.groups import decide, groups_of
from dedupe.index import MultiIndex, brute_force_pairs, choose_substrings
from dedupe.layout import cosine
from dedupe.match import Edge, NearRule, PageHashes, judge, near_edges, template_edges
from dedupe.metrics import best_threshold, precision_recall, sweep
from dedupe.unionfind import UnionFind


def clustered(n: int, radius: int, seed: int) -> np.ndarray:
    """Random hashes where a third are copies of others with up to `radius` flipped bits."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)
    k = n // 3
    src = rng.integers(0, max(n - k, 1), size=k)
    flips = np.zeros(k, dtype=np.uint64)
    for _ in range(radius):
        flips ^= np.uint64(1) << rng.integers(0, 64, size=k).astype(np.uint64)
    h[n - k :] = h[src] ^ flips
    return h


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 400),
    radius=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
    m=st.one_of(st.none(), st.integers(3, 9)),
)
def test_all_pairs_equals_brute_force(n: int, radius: int, seed: int, m: int | None) -> None:
    h = clustered(n, radius, seed)
    got = MultiIndex(h, radius, m=m).all_pairs()
    assert np.array_equal(got, brute_force_pairs(h, radius))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), q=st.integers(1, 50), radius=st.integers(0, 10),
       seed=st.integers(0, 2**32 - 1))
def test_search_equals_brute_force(n: int, q: int, radius: int, seed: int) -> None:
    h = clustered(n + q, radius, seed)
    data, queries = h[:n], h[n:]
    got = MultiIndex(data, radius).search(queries)
    d = np.bitwise_count(queries[:, None] ^ data[None, :])
    want = np.argwhere(d <= radius)
    assert np.array_equal(got, want)


def test_duplicate_hashes_and_larger_random_set() -> None:
    h = np.concatenate([clustered(20_000, 8, 5), np.full(50, 7, dtype=np.uint64)])
    index = MultiIndex(h, 8)
    # The cost model's choice for this size: narrower substrings than the widest allowed.
    assert index.m == choose_substrings(len(h), 8) == 5
    pairs = index.all_pairs()
    assert np.array_equal(pairs, brute_force_pairs(h, 8))
    assert len(pairs) > 6000  # the planted near copies are found
    with np.testing.assert_raises(ValueError):
        index.search(h[:3], 9)  # wider than the index was built for


def test_substrings_get_wider_as_the_set_grows() -> None:
    # Fewer, wider substrings as the set grows: each probe returns fewer candidates.
    small, medium, large = (choose_substrings(n, 8) for n in (1000, 20_000, 1_000_000))
    assert small > medium > large
    assert large == 3  # the widest tables that can be allocated (MAX_SUB_BITS)


def test_union_find_groups_long_chains_without_recursion() -> None:
    n = 200_000
    uf = UnionFind(n)
    uf.union_pairs((i, i + 1) for i in range(0, n - 1))  # one chain of 200k
    assert len(set(uf.labels().tolist())) == 1
    uf2 = UnionFind(6)
    assert uf2.union(0, 1) and uf2.union(2, 3) and uf2.union(1, 3)
    assert not uf2.union(0, 2)
    assert sorted(map(sorted, uf2.groups())) == [[0, 1, 2, 3], [4], [5]]
    assert uf2.add() == 6 and uf2.find(6) == 6


def _p(pid: str, errors: int = 0, boxes: int = 10, site: str = "s") -> PageHashes:
    return PageHashes(page_id=pid, pixel_sha=pid, bands=[1], height=100, n_errors=errors,
                      n_boxes=boxes, site=site)


def test_canonical_is_the_best_capture_and_comes_first() -> None:
    pages = [_p("a", errors=1, boxes=500), _p("b", boxes=50), _p("c", boxes=80), _p("d"),
             _p("e")]
    edges = [Edge("a", "b", "exact_pixels", 0), Edge("b", "c", "near", 3),
             Edge("d", "e", "template", 0.95)]
    decisions = {d.page_id: d for d in decide(pages, edges)}
    assert decisions["c"].canonical and decisions["c"].group_id == "c"
    assert not decisions["a"].canonical and decisions["a"].group_id == "c"
    assert decisions["b"].reason == "exact_pixels to a"
    assert decisions["a"].reason == "exact_pixels to b"
    # Same template groups pages but never drops one.
    assert decisions["d"].canonical and decisions["e"].canonical
    assert decisions["d"].template_id == decisions["e"].template_id
    groups = groups_of(list(decisions.values()))
    assert groups[0] == ["c", "a", "b"]
    assert ["d"] in groups and ["e"] in groups


def test_precision_recall_and_threshold_choice() -> None:
    truth = [True, True, False, False]
    r = precision_recall([True, False, True, False], truth)
    assert (r.tp, r.fp, r.fn) == (1, 1, 1) and r.precision == 0.5 and r.recall == 0.5
    rows = sweep([1, 3, 5, 9], truth, [0, 2, 4, 6, 10])
    assert [x.recall for x in rows] == [0, 0.5, 1, 1, 1]
    best = best_threshold(rows, 0.99)
    assert best is not None and best.threshold == 4


def _random_pages(n: int, seed: int) -> list[PageHashes]:
    """Pages in families: copies with a few bits changed, some without text, some identical."""
    rng = np.random.default_rng(seed)
    pages = []
    for i in range(n):
        if i % 4 and pages:
            src = pages[int(rng.integers(0, len(pages)))]
            flip = lambda h: None if h is None else h ^ (1 << int(rng.integers(0, 64)))  # noqa: E731
            bands = [flip(b) if rng.random() < 0.5 else b for b in src.bands]
            text = flip(src.text_simhash) if rng.random() < 0.7 else src.text_simhash
            height = src.height
        else:
            bands = [int(x) for x in rng.integers(0, 2**63, size=int(rng.integers(1, 4)))]
            text = None if rng.random() < 0.3 else int(rng.integers(0, 2**63))
            height = int(rng.integers(800, 3000))
        pages.append(PageHashes(page_id=f"p{i:04d}", pixel_sha=f"s{i}", bands=bands,
                                height=height, text_simhash=text))
    return pages


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 120), seed=st.integers(0, 2**32 - 1), split=st.floats(0, 1))
def test_page_search_groups_like_judging_every_pair(n: int, seed: int, split: float) -> None:
    """Indexed search (in two incremental steps) gives the groups of comparing all pairs."""
    pages = _random_pages(n, seed)
    rule = NearRule(phash_threshold=3, text_threshold=2)
    brute = [e for a, b in combinations(pages, 2) if (e := judge(a, b, rule)) is not None]
    cut = int(n * split)
    edges = near_edges(pages[:cut], {p.page_id for p in pages[:cut]}, rule)
    edges += near_edges(pages, {p.page_id for p in pages[cut:]}, rule)

    def components(es: list[Edge]) -> set[frozenset[str]]:
        ids = [p.page_id for p in pages]
        uf = UnionFind(len(ids))
        pos = {pid: i for i, pid in enumerate(ids)}
        for e in es:
            uf.union(pos[e.a], pos[e.b])
        return {frozenset(ids[i] for i in g) for g in uf.groups()}

    assert components(edges) == components(brute)


def test_a_thousand_identical_pages_make_a_linear_number_of_links() -> None:
    pages = [PageHashes(page_id=f"p{i:04d}", pixel_sha=f"s{i}", bands=[7], height=900,
                        text_simhash=12345) for i in range(1000)]
    edges = near_edges(pages, {p.page_id for p in pages}, NearRule())
    assert len(edges) == 999
    assert {e.relation for e in edges} == {"near_text"}


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 80), seed=st.integers(0, 2**32 - 1), split=st.floats(0, 1))
def test_template_links_group_like_comparing_every_pair_of_a_site(
    n: int, seed: int, split: float
) -> None:
    rng = np.random.default_rng(seed)
    templates = (rng.random((3, 48)) < 0.5).astype(np.float32)
    pages = []
    for i in range(n):
        v = templates[int(rng.integers(0, 3))].copy()
        flips = rng.integers(0, 48, size=int(rng.integers(0, 6)))
        v[flips] = 1 - v[flips]
        pages.append(PageHashes(page_id=f"p{i:03d}", pixel_sha="", bands=[], height=1,
                                layout=v, site=f"site{i % 2}"))
    cut = int(n * split)
    edges = template_edges(pages[:cut], {p.page_id for p in pages[:cut]}, 0.85)
    edges += template_edges(pages, {p.page_id for p in pages[cut:]}, 0.85)
    brute = [Edge(a.page_id, b.page_id, "template", 0) for a, b in combinations(pages, 2)
             if a.site == b.site and cosine(a.layout, b.layout) >= 0.85]
    ids = [p.page_id for p in pages]

    def components(es: list[Edge]) -> set[frozenset[str]]:
        uf = UnionFind(len(ids))
        for e in es:
            uf.union(ids.index(e.a), ids.index(e.b))
        return {frozenset(ids[i] for i in g) for g in uf.groups()}

    assert all(e.relation == "template" for e in edges)
    assert components(edges) == components(brute)
