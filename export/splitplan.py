"""The splits of one release: recorded splits kept, the rest decided by a group key.

A page keeps the split it had when it was first released, whatever key decided it. The
pages released for the first time take the split of their group: the split its released
pages already share, else a salted hash of the group key.

Which grouping (`groups.LEVELS`): the coarsest one whose release comes near the asked
ratios, each of val (and test) between half and twice its asked share. Hashing groups
reaches the ratios only over many groups of similar size: a dataset of one site is a
single site group, and the default one (the sqlite documentation, where 143 of 163 pages
share one template) is one template group too; its 39 release-log pages, one section,
can put 41% of the pages in a 20% val. A coarser key that misses the window gives way to
a finer one, which still keeps near-copies together. When none reaches it, the one
nearest to the ratios is used. When the hash leaves a split empty, the new group whose
hash lies nearest to that split's range moves there from a split that keeps another group
(never a page released before), so a first release of two groups or more has a train and
a val split.

Named val sites (`[export] val_sites`) replace the hash: a new site group holding one of
them goes to val, every other new group to train, so that a dataset rebuilt from scratch
puts the same sites in val as the one it reproduces, whatever order its releases came in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .groups import (
    JOINS_TEMPLATES,
    LEVELS,
    Assignment,
    LinkRow,
    PageLinks,
    assign_splits,
    group_keys,
    unit_hash,
)

LEVEL_WORDS = {
    "site": "registered domain, joined with duplicate and same-template groups",
    "template": "page, joined with its duplicate and same-template groups",
    "section": "host and first URL path segment, joined with duplicate groups",
    "duplicate": "page, joined with its duplicate group",
}


@dataclass
class LevelResult:
    """The splits one grouping level gives the pages of a release."""

    level: str
    groups: int  # among the pages released for the first time (all pages when none is)
    shares: dict[str, float]  # split -> share of those pages
    assignment: dict[str, Assignment] = field(default_factory=dict)
    forced: list[tuple[str, str]] = field(default_factory=list)  # (group, split) moved in
    spanning: list[str] = field(default_factory=list)  # groups in two splits (joined later)
    unplaced: dict[str, str] = field(default_factory=dict)  # page -> recorded split not asked
    kept: int = 0  # pages whose split was recorded by an earlier release
    new: int = 0  # pages released for the first time

    def deviation(self, asked: dict[str, float]) -> float:
        """How far val (and test) lie from their asked shares, as a factor (1: spot on)."""
        worst = 1.0
        for split, want in asked.items():
            got = self.shares.get(split, 0.0)
            worst = max(worst, want / got if got else float("inf"), got / want)
        return worst


@dataclass
class SplitPlan:
    chosen: LevelResult
    # The levels tried, coarsest first: up to the chosen one, every level when none
    # reaches the window.
    tried: list[LevelResult]
    asked: dict[str, float]  # val (and test) -> asked share
    val_sites: tuple[str, ...] = ()  # named val sites, which decided the new pages instead

    @property
    def level(self) -> str:
        return self.chosen.level

    @property
    def assignment(self) -> dict[str, Assignment]:
        return self.chosen.assignment

    @property
    def unplaced(self) -> dict[str, str]:
        return self.chosen.unplaced

    def _shares(self, r: LevelResult) -> str:
        return ", ".join(f"{s} {100 * r.shares.get(s, 0.0):.1f}%" for s in self.asked)

    def why(self) -> str:
        """Sentences for the card: which key, and why that one."""
        c = self.chosen
        if not c.new:
            return "No page is new to this release: every page kept its recorded split."
        if self.val_sites:
            return (f"Group key: site ({LEVEL_WORDS['site']}). The {_n(c.new, 'page')} new "
                    f"to this release went to val where their group holds one of the named "
                    f"val sites ([export] val_sites: {', '.join(self.val_sites)}), to train "
                    f"otherwise: {self._shares(c)} of them.")
        asked = ", ".join(f"{s} {100 * w:.0f}%" for s, w in self.asked.items())
        out = (f"Group key: {c.level} ({LEVEL_WORDS[c.level]}): {_n(c.groups, 'group')} "
               f"among the {_n(c.new, 'page')} new to this release, giving "
               f"{self._shares(c)} of them (asked: {asked}).")
        coarser = self.tried[: self.tried.index(c)]
        if coarser:
            out += (" Coarser keys give splits too far from the asked ratios (each must lie "
                    "between half and twice its share): " + "; ".join(
                        f"{r.level}, {_n(r.groups, 'group')}: {self._shares(r)}"
                        for r in coarser) + ".")
        if c.deviation(self.asked) > WINDOW:
            out += " No key reaches that window: this one comes nearest."
        if not JOINS_TEMPLATES[c.level]:
            out += " Pages of one template may lie in two splits; near-copies never do."
        return out


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


WINDOW = 2.0  # each asked split between 1/WINDOW and WINDOW times its asked share


def plan_splits(
    links: Sequence[PageLinks | LinkRow],
    released: Iterable[str],
    recorded: dict[str, str],
    salt: str,
    val_ratio: float,
    test_ratio: float = 0.0,
    addresses: Callable[[], Mapping[str, str]] | None = None,
    val_sites: Sequence[str] = (),
) -> SplitPlan:
    """Splits for the pages `released` (ids among `links`, the pages the catalog knows).

    recorded: page id -> split of every page released before (kept as it is).
    addresses: gives page_id -> address of every page, for the section level where the
    links carry none; called only when the plan tries that level.
    val_sites: sites (see `names_site`) whose new groups go to val, all others to train;
    val_ratio and test_ratio are then not used.
    """
    released = sorted(set(released))
    if val_sites:
        if test_ratio > 0:
            raise ValueError("[export] val_sites names the val sites and sends every other "
                             "new page to train: set test_ratio to 0 with it")
        named = _named_val(links, val_sites)
        chosen = _at_level("site", named, released, recorded, ["train", "val"], salt,
                           val_ratio, 0.0, force=False)
        return SplitPlan(chosen=chosen, tried=[chosen], asked={"val": val_ratio},
                         val_sites=tuple(val_sites))
    splits = ["train", "val"] + (["test"] if test_ratio > 0 else [])
    asked = {s: r for s, r in (("val", val_ratio), ("test", test_ratio)) if r > 0}
    tried: list[LevelResult] = []
    chosen = None
    for level in LEVELS:  # a finer level only where the coarser ones miss the window
        urls = addresses() if addresses is not None and level == "section" else None
        tried.append(_at_level(
            level, assign_splits(links, salt, val_ratio, test_ratio, level, urls), released,
            recorded, splits, salt, val_ratio, test_ratio))
        if tried[-1].deviation(asked) <= WINDOW:
            chosen = tried[-1]
            break
    if chosen is None:
        best = min(r.deviation(asked) for r in tried)
        chosen = next(r for r in tried if r.deviation(asked) == best)
    return SplitPlan(chosen=chosen, tried=tried, asked=asked)


def names_site(name: str, site: str) -> bool:
    """Whether a `val_sites` entry names a page's site: the site itself, or its first label
    ('python' names python.localhost, the site `[crawl] sites = ["python=..."]` serves)."""
    return bool(site) and (name == site or site.split(".", 1)[0] == name)


def _named_val(links: Sequence[PageLinks | LinkRow], val_sites: Sequence[str]
               ) -> dict[str, Assignment]:
    """Every page's site group, in val where a page of the group is on a named site."""
    keys = group_keys(links, "site")
    val_groups = {keys[link[0]] for link in links
                  if any(names_site(name, link[1]) for name in val_sites)}
    return {pid: Assignment("val" if key in val_groups else "train", key)
            for pid, key in keys.items()}


def _at_level(
    level: str, hashed: dict[str, Assignment], released: list[str], recorded: dict[str, str],
    splits: list[str], salt: str, val_ratio: float, test_ratio: float, force: bool = True,
) -> LevelResult:
    """hashed: every page's group at this level and the split its hash gives (or the named
    sites; then `force` is off: no group moves to fill an empty split)."""
    members: dict[str, list[str]] = defaultdict(list)
    for pid in released:
        members[hashed[pid].group].append(pid)
    out = LevelResult(level, 0, {})
    split_of_group: dict[str, str] = {}
    new_groups = []
    for key, pids in sorted(members.items()):
        before = {recorded[p] for p in pids if p in recorded}
        if len(before) > 1:
            out.spanning.append(key)
        if len(before) == 1 and next(iter(before)) in splits:
            split_of_group[key] = next(iter(before))
        else:
            split_of_group[key] = hashed[pids[0]].split
        if not before:
            new_groups.append(key)

    def groups_in(split: str) -> list[str]:
        return [k for k, pids in members.items()
                if any(recorded.get(p, split_of_group[k]) == split for p in pids)]

    # Each split's range of the hash: a split left empty takes the new group nearest to it,
    # from a split that keeps another group.
    ranges = {"val": (0.0, val_ratio), "test": (val_ratio, val_ratio + test_ratio),
              "train": (val_ratio + test_ratio, 1.0)}

    def distance(key: str, split: str) -> float:
        lo, hi = ranges[split]
        u = unit_hash(key, salt)
        return lo - u if u < lo else max(0.0, u - hi)

    for split in splits if force else []:
        if groups_in(split) or ranges[split][0] == ranges[split][1]:
            continue
        donors = [k for k in new_groups if len(groups_in(split_of_group[k])) > 1]
        if donors:
            key = min(donors, key=lambda k: (distance(k, split), k))
            split_of_group[key] = split
            out.forced.append((key, split))

    for key, pids in members.items():
        for pid in pids:
            split = recorded.get(pid, split_of_group[key])
            if split not in splits:
                out.unplaced[pid] = split
                continue
            out.kept += pid in recorded
            out.assignment[pid] = Assignment(split, key)
    # The key decides only the new pages: judge it on them (on all when none is new).
    judged = {pid: a for pid, a in out.assignment.items() if pid not in recorded}
    out.new = len(judged)
    judged = judged or out.assignment
    out.groups = len({a.group for a in judged.values()})
    counts = Counter(a.split for a in judged.values())
    out.shares = {s: counts[s] / (len(judged) or 1) for s in splits}
    return out
