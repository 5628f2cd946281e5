"""Union-find over integer ids, iterative so that no chain length hits a recursion limit."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class UnionFind:
    """Disjoint sets of 0..n-1 with union by size and path halving."""

    def __init__(self, n: int):
        self.parent = list(range(n))
        self.size = [1] * n

    def __len__(self) -> int:
        return len(self.parent)

    def add(self) -> int:
        """A new singleton; returns its id."""
        self.parent.append(len(self.parent))
        self.size.append(1)
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        """Join the sets of a and b; False when they were already one."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True

    def union_pairs(self, pairs: Iterable[tuple[int, int]] | np.ndarray) -> None:
        for a, b in pairs:
            self.union(int(a), int(b))

    def labels(self) -> np.ndarray:
        """The root of every element (equal roots: one group)."""
        return np.fromiter((self.find(i) for i in range(len(self.parent))), dtype=np.int64,
                           count=len(self.parent))

    def groups(self, min_size: int = 1) -> list[list[int]]:
        """Members of each set (ascending), sets ordered by their smallest member."""
        by_root: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            by_root.setdefault(self.find(i), []).append(i)
        return [g for g in by_root.values() if len(g) >= min_size]
