"""Multi-index hashing (Norouzi, Punjani and Fleet, 2012) for 64-bit hashes.

Cut every hash into m substrings. If two hashes differ in at most r bits, then by the
pigeonhole principle at least one substring differs in at most floor(r/m) bits. Each
substring gets a lookup table (counting sort of the substring values), and a query probes,
for each substring, its own value and every value within floor(r/m) bit flips; the few
candidates found are checked on the full 64 bits. With m about 64 / log2(n) the tables hold
about one hash per slot, so the work per query stays nearly constant and an all-pairs search
costs about n times that instead of n^2 / 2 comparisons.

Everything is numpy on whole arrays (one probe = one vector gather over all queries), so
a million hashes are searched in seconds by one process.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

BITS = 64
MAX_SUB_BITS = 24  # 16M-slot tables at most (64 MiB of int32 each)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    return np.bitwise_count(x.astype(np.uint64, copy=False)).astype(np.int64)


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All Hamming distances between two uint64 vectors (len(a) x len(b))."""
    return popcount64(a[:, None] ^ b[None, :])


def brute_force_pairs(hashes: np.ndarray, radius: int, block: int = 2048) -> np.ndarray:
    """All pairs i<j with Hamming distance <= radius by comparing every pair (the baseline)."""
    h = np.asarray(hashes, dtype=np.uint64)
    out = []
    for start in range(0, len(h), block):
        d = hamming_matrix(h[start : start + block], h[start:])
        i, j = np.nonzero(d <= radius)
        i = i + start
        j = j + start
        keep = j > i
        out.append(np.stack([i[keep], j[keep]], axis=1))
    if not out:
        return np.empty((0, 2), dtype=np.int64)
    return np.concatenate(out).astype(np.int64)


def _split(m: int) -> list[tuple[int, int]]:
    """(shift, width) of m substrings covering 64 bits, widths differing by at most one."""
    widths = [BITS // m + (1 if k < BITS % m else 0) for k in range(m)]
    out, shift = [], 0
    for w in widths:
        out.append((shift, w))
        shift += w
    return out


def choose_substrings(n: int, radius: int) -> int:
    """The m with the least expected work for n hashes searched at `radius`.

    Work per query and substring: one probe per flip mask (sum of C(w, k), k <= r // m)
    plus the candidates those probes return (about n / 2^w each for spread-out hashes).
    Substrings wider than MAX_SUB_BITS would need tables too large to allocate.
    """
    best, best_cost = BITS // MAX_SUB_BITS + 1, math.inf
    for m in range(BITS // MAX_SUB_BITS + 1, BITS + 1):
        w = BITS // m
        if w < 1:
            break
        probes = sum(math.comb(w, k) for k in range(radius // m + 1))
        cost = m * probes * (1.0 + max(n, 1) / (1 << w))
        if cost < best_cost:
            best, best_cost = m, cost
    return best


def _flip_masks(width: int, radius: int) -> Iterator[int]:
    for k in range(radius + 1):
        for combo in itertools.combinations(range(width), k):
            mask = 0
            for b in combo:
                mask |= 1 << b
            yield mask


def _highest_bit(mask: int) -> int:
    return mask.bit_length() - 1


class _Table:
    """One substring's lookup structure: hashes grouped by the substring's value."""

    def __init__(self, hashes: np.ndarray, shift: int, width: int):
        self.shift, self.width = shift, width
        keys = _sub(hashes, shift, width)
        self.order = np.argsort(keys, kind="stable").astype(np.int64)
        self.keys, self.start, self.count = np.unique(
            keys[self.order], return_index=True, return_counts=True
        )
        # occ is a byte per slot (a few MiB, cache-friendly) so that most probes, which
        # miss, touch nothing else; slot gives the bucket of a slot that is occupied.
        self.occ = np.zeros(1 << width, dtype=np.bool_)
        self.occ[self.keys] = True
        self.slot = np.full(1 << width, -1, dtype=np.int32)
        self.slot[self.keys] = np.arange(len(self.keys), dtype=np.int32)

    def members(self, buckets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which bucket of `buckets`, hash index) for every member of those buckets."""
        c = self.count[buckets]
        total = int(c.sum())
        which = np.repeat(np.arange(len(buckets), dtype=np.int64), c)
        first = np.repeat(np.cumsum(c) - c, c)
        pos = np.repeat(self.start[buckets], c) + (np.arange(total, dtype=np.int64) - first)
        return which, self.order[pos]

    def cross(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (member of bucket a[k], member of bucket b[k]) pair, for all k."""
        ca, cb = self.count[a], self.count[b]
        n = ca * cb
        total = int(n.sum())
        k = np.repeat(np.arange(len(a), dtype=np.int64), n)
        t = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        ia = self.start[a][k] + t // cb[k]
        ib = self.start[b][k] + t % cb[k]
        return self.order[ia], self.order[ib]


def _sub(h: np.ndarray, shift: int, width: int) -> np.ndarray:
    return ((h >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)


class MultiIndex:
    """A static index of uint64 hashes answering "which hashes are within r bits?"."""

    def __init__(self, hashes: np.ndarray, radius: int, m: int | None = None):
        """Index `hashes` for searches within `radius` bits (smaller radii work too)."""
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        self.radius = radius
        self.m = m or choose_substrings(len(self.hashes), radius)
        if math.ceil(BITS / self.m) > MAX_SUB_BITS:
            raise ValueError(f"{self.m} substrings are too few: at most {MAX_SUB_BITS} bits each")
        self.tables = [_Table(self.hashes, shift, width) for shift, width in _split(self.m)]

    def __len__(self) -> int:
        return len(self.hashes)

    def _check_radius(self, radius: int) -> None:
        if radius > self.radius:
            raise ValueError(f"index built for radius {self.radius}, asked for {radius}")

    def search(self, queries: np.ndarray, radius: int | None = None) -> np.ndarray:
        """Unique (query index, hash index) pairs within `radius` bits."""
        radius = self.radius if radius is None else radius
        self._check_radius(radius)
        q = np.ascontiguousarray(queries, dtype=np.uint64)
        n = max(len(self.hashes), 1)
        found = []
        if len(q) == 0 or len(self.hashes) == 0:
            return np.empty((0, 2), dtype=np.int64)
        for table in self.tables:
            qkeys = _sub(q, table.shift, table.width)
            for mask in _flip_masks(table.width, radius // self.m):
                probe = qkeys ^ mask
                hit = np.flatnonzero(table.occ[probe])
                if len(hit) == 0:
                    continue
                which, hi = table.members(table.slot[probe[hit]])
                qi = hit[which]
                ok = popcount64(q[qi] ^ self.hashes[hi]) <= radius
                found.append(qi[ok] * n + hi[ok])
        return _unique_pairs(found, n)

    def all_pairs(self, radius: int | None = None) -> np.ndarray:
        """Unique pairs i<j of indexed hashes within `radius` bits (the self-join).

        Works on buckets, not hashes: a bucket is probed only towards the larger of each
        pair of substring values, so each candidate pair of buckets is met once per mask.
        """
        radius = self.radius if radius is None else radius
        self._check_radius(radius)
        h = self.hashes
        n = max(len(h), 1)
        found = []
        for table in self.tables:
            multi = np.flatnonzero(table.count > 1)
            if len(multi):
                # Pairs inside one bucket (the zero mask).
                i, j = table.cross(multi, multi)
                keep = i < j
                i, j = i[keep], j[keep]
                ok = popcount64(h[i] ^ h[j]) <= radius
                found.append(i[ok] * n + j[ok])
            for mask in _flip_masks(table.width, radius // self.m):
                if mask == 0:
                    continue
                top = np.int64(1 << _highest_bit(mask))
                lower = np.flatnonzero((table.keys & top) == 0)
                probe = table.keys[lower] ^ mask
                hit = table.occ[probe]
                if not hit.any():
                    continue
                a = lower[hit]
                b = table.slot[probe[hit]].astype(np.int64)
                i, j = table.cross(a, b)
                ok = popcount64(h[i] ^ h[j]) <= radius
                i, j = i[ok], j[ok]
                found.append(np.minimum(i, j) * n + np.maximum(i, j))
        return _unique_pairs(found, n)


def _unique_pairs(found: list[np.ndarray], n: int) -> np.ndarray:
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    codes = np.unique(np.concatenate(found))
    return np.stack([codes // max(n, 1), codes % max(n, 1)], axis=1).astype(np.int64)
