"""Edges -> duplicate groups with a canonical page, and "same template" groups."""

from __future__ import annotations

from collections.abc import Sequence

from .match import Edge, PageHashes
from .store import Decision
from .unionfind import UnionFind

DUPLICATE_RELATIONS = ("exact_pixels", "exact_text", "near_text", "near_images", "near")
STRENGTH = {"exact_pixels": 0, "exact_text": 1, "near_text": 2, "near_images": 3, "near": 4,
            "template": 5}


def quality_key(p: PageHashes) -> tuple:
    """Sort key of the best capture first: fewest errors, most boxes, then oldest, then id."""
    return (p.n_errors, -p.n_boxes, p.captured_at, p.page_id)


def _components(ids: list[str], edges: Sequence[Edge], relations: Sequence[str]) -> UnionFind:
    pos = {pid: i for i, pid in enumerate(ids)}
    uf = UnionFind(len(ids))
    for e in edges:
        if e.relation in relations and e.a in pos and e.b in pos:
            uf.union(pos[e.a], pos[e.b])
    return uf


def decide(pages: Sequence[PageHashes], edges: Sequence[Edge]) -> list[Decision]:
    """One decision per page: its duplicate group (canonical first) and template group.

    The reason of a dropped page names the strongest relation that tied it to its group
    and the page on the other side, so a person can check it.
    """
    ids = [p.page_id for p in pages]
    by_id = {p.page_id: p for p in pages}
    edges = [e for e in edges if e.a in by_id and e.b in by_id]
    dup = _components(ids, edges, DUPLICATE_RELATIONS)
    tpl = _components(ids, edges, (*DUPLICATE_RELATIONS, "template"))
    best_link: dict[str, tuple[int, float, str, str]] = {}
    for e in edges:
        if e.relation not in DUPLICATE_RELATIONS:
            continue
        for me, other in ((e.a, e.b), (e.b, e.a)):
            cand = (STRENGTH[e.relation], e.distance, e.relation, other)
            if me not in best_link or cand < best_link[me]:
                best_link[me] = cand
    dup_groups = dup.groups()
    tpl_groups = tpl.groups()
    canon: dict[int, str] = {}
    for members in dup_groups:
        head = min((by_id[ids[i]] for i in members), key=quality_key).page_id
        for i in members:
            canon[i] = head
    template_of: dict[int, str] = {}
    for members in tpl_groups:
        head = min((by_id[ids[i]] for i in members), key=quality_key).page_id
        for i in members:
            template_of[i] = head
    out = []
    for i, pid in enumerate(ids):
        head = canon[i]
        if head == pid:
            size = dup.size[dup.find(i)]
            reason = f"canonical of {size}" if size > 1 else ""
        else:
            _, dist, relation, other = best_link[pid]
            reason = f"{relation} {dist:g} to {other}" if relation.startswith("near") else f"{relation} to {other}"
        out.append(Decision(pid, head, head == pid, reason, template_of[i]))
    return out


def groups_of(decisions: Sequence[Decision], template: bool = False) -> list[list[str]]:
    """Groups as lists of page ids, canonical (or template head) first, largest groups first."""
    groups: dict[str, list[str]] = {}
    for d in decisions:
        key = d.template_id if template else d.group_id
        groups.setdefault(key, []).append(d.page_id)
    out = []
    for head, members in groups.items():
        rest = sorted(m for m in members if m != head)
        out.append([head, *rest])
    return sorted(out, key=lambda g: (-len(g), g[0]))
