"""The multi-index search against brute force, union-find, grouping and metrics."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dedupe.groups import decide, groups_of
from dedupe.index import MultiIndex, brute_force_pairs, choose_substrings
from dedupe.match import Edge, PageHashes
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
    assert index.m >= 2  # really split, not one table of whole hashes
    pairs = index.all_pairs()
    assert np.array_equal(pairs, brute_force_pairs(h, 8))
    assert len(pairs) > 6000  # the planted near copies are found
    with np.testing.assert_raises(ValueError):
        index.search(h[:3], 9)  # wider than the index was built for


def test_substrings_get_wider_as_the_set_grows() -> None:
    assert choose_substrings(1_000_000, 8) <= choose_substrings(1000, 8)
    assert choose_substrings(1_000_000, 8) == 3


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
