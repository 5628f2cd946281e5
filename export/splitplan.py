"""The splits of one release: recorded splits kept, the rest decided by a group key.

A page keeps the split it had when it was first released, whatever key decided it. The
pages released for the first time are grouped at the coarsest level of `groups.LEVELS`
that still gives enough groups to split, and take the split of their group: the split its
released pages already share, else a salted hash of the group key.

Enough groups: a split drawn by hashing groups reaches its ratio only over many groups
of similar size. What counts is the *effective* number of groups, N² / Σ n_g² for groups
of n_g of the N pages (a group of 143 pages next to 20 single pages counts as 1.3): with
E of them, the share of a split asked to hold r varies by about √(r(1−r)/E), ±13 points
for a 20% val at E = 10, and below 10 one or two groups decide it. The default dataset
(one site, whose documentation pages nearly all share one template) is split at the
section level. When no level reaches 10, the finest one is used. When the hash still
leaves a split empty, the group whose hash lies nearest to that split's range moves
there from train (never a page released before).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .groups import (
    JOINS_TEMPLATES,
    LEVELS,
    Assignment,
    PageLinks,
    group_keys,
    split_of_key,
    unit_hash,
)

MIN_EFFECTIVE_GROUPS = 10.0

LEVEL_WORDS = {
    "site": "registered domain, joined with duplicate and same-template groups",
    "template": "page, joined with its duplicate and same-template groups",
    "section": "host and first URL path segment, joined with duplicate groups",
    "duplicate": "page, joined with its duplicate group",
}


@dataclass(frozen=True)
class LevelFigures:
    level: str
    groups: int  # among the pages released
    effective: float  # N² / Σ n_g²


@dataclass
class SplitPlan:
    assignment: dict[str, Assignment]  # page id -> split and group key, pages released
    level: str  # the level whose keys decided the new pages
    figures: list[LevelFigures] = field(default_factory=list)  # each level tried, in order
    kept: int = 0  # pages whose split was recorded by an earlier release
    forced: list[tuple[str, str]] = field(default_factory=list)  # (group, split) moved in
    spanning: list[str] = field(default_factory=list)  # groups in two splits (joined later)
    unplaced: dict[str, str] = field(default_factory=dict)  # page -> recorded split not asked

    def why(self) -> str:
        """One sentence for the card: which key, and why that one."""
        chosen = next(f for f in self.figures if f.level == self.level)
        words = f"{self.level} ({LEVEL_WORDS[self.level]})"
        if self.level == LEVELS[0]:
            return (f"Group key: {words}; {chosen.groups} groups, "
                    f"{chosen.effective:.1f} effective.")
        coarser = [f for f in self.figures if LEVELS.index(f.level) < LEVELS.index(self.level)]
        tried = "; ".join(f"{f.level} gives {f.groups} groups, {f.effective:.1f} effective"
                          for f in coarser)
        out = (f"Group key: {words}, because coarser keys give too few groups to split "
               f"({tried}; at least {MIN_EFFECTIVE_GROUPS:.0f} effective groups are needed "
               f"for the asked ratios). This key gives {chosen.groups} groups, "
               f"{chosen.effective:.1f} effective.")
        if chosen.effective < MIN_EFFECTIVE_GROUPS:
            out += " No key reaches that number: the finest one is used."
        if not JOINS_TEMPLATES[self.level]:
            out += (" Pages of one template may lie in two splits; near-copies never "
                    "do.")
        return out


def effective_groups(sizes: Iterable[int]) -> float:
    sizes = [n for n in sizes if n]
    total = sum(sizes)
    return total * total / sum(n * n for n in sizes) if total else 0.0


def _choose_level(figures: list[LevelFigures]) -> str:
    for f in figures:
        if f.effective >= MIN_EFFECTIVE_GROUPS:
            return f.level
    best = max(f.effective for f in figures)
    return next(f.level for f in figures if f.effective == best)


def plan_splits(
    links: Sequence[PageLinks],
    released: Iterable[str],
    recorded: dict[str, str],
    salt: str,
    val_ratio: float,
    test_ratio: float = 0.0,
) -> SplitPlan:
    """Splits for the pages `released` (ids among `links`, the pages the catalog knows).

    recorded: page id -> split of every page released before (kept as it is).
    """
    splits = ["train", "val"] + (["test"] if test_ratio > 0 else [])
    released = sorted(set(released))
    keys_at = {level: group_keys(links, level) for level in LEVELS}
    figures = []
    for level in LEVELS:
        sizes = Counter(keys_at[level][p] for p in released)
        figures.append(LevelFigures(level, len(sizes), effective_groups(sizes.values())))
    level = _choose_level(figures)
    keys = keys_at[level]

    plan = SplitPlan(assignment={}, level=level, figures=figures)
    members: dict[str, list[str]] = defaultdict(list)
    for pid in released:
        members[keys[pid]].append(pid)
    split_of_group: dict[str, str] = {}
    new_groups = []
    for key, pids in sorted(members.items()):
        before = {recorded[p] for p in pids if p in recorded}
        if len(before) > 1:
            plan.spanning.append(key)
        if len(before) == 1 and next(iter(before)) in splits:
            split_of_group[key] = next(iter(before))
        else:
            split_of_group[key] = split_of_key(key, salt, val_ratio, test_ratio)
        if not before:
            new_groups.append(key)

    def groups_in(split: str) -> list[str]:
        return [k for k, pids in members.items() if any(
            (recorded.get(p) or split_of_group[k]) == split for p in pids)]

    for split in splits[1:]:
        if groups_in(split):
            continue
        # Nearest to val's and test's range of the hash: the smallest hashes of train.
        movable = sorted((k for k in new_groups if split_of_group[k] == "train"),
                         key=lambda k: unit_hash(k, salt))
        if movable and len(groups_in("train")) > 1:
            split_of_group[movable[0]] = split
            plan.forced.append((movable[0], split))

    for key, pids in members.items():
        for pid in pids:
            split = recorded.get(pid, split_of_group[key])
            if split not in splits:
                plan.unplaced[pid] = split
                continue
            plan.kept += pid in recorded
            plan.assignment[pid] = Assignment(split, key)
    return plan
