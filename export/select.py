"""Which pages go into a release, read from the catalog and checked against their files.

Human-annotated pages by default; pre-annotated pages nobody reviewed yet when asked.
Pages that dedupe dropped as duplicates never go in. A page whose files are missing or
whose annotation no longer matches its screenshot is reported and left out.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image

from catalog import Annotation, Catalog, CorruptFile, Workspace, read_json
from catalog.images import check_screenshot
from catalog.sites import site_of
from catalog.workspace import remedy

from .groups import LinkRow
from .masks import ClassSet
from .png import SIGNATURE, png_size_checked


@dataclass
class PageInput:
    page_id: str
    url: str
    final_url: str
    site: str
    source: str  # human | preannotation
    reviewed: bool
    annotation: Annotation
    annotation_path: Path
    annotation_sha256: str  # of annotation JSON and mask files: tells a relabelled page
    screenshot: Path
    width: int
    height: int


@dataclass
class Selection:
    pages: list[PageInput] = field(default_factory=list)
    # Every page the catalog knows, as plain tuples in PageLinks' order.
    links: list[LinkRow] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (page_id, why left out)
    duplicates: int = 0  # annotated pages left out as dropped duplicates
    dropped: set[str] = field(default_factory=set)  # every page dedupe dropped as a duplicate
    human: set[str] = field(default_factory=set)  # pages with a human annotation


def _links(cat: Catalog) -> tuple[list[LinkRow], set[str]]:
    """Every page the catalog knows, as the split needs it (PageLinks' fields, in plain
    tuples: a million named ones cost a sixth more), and the pages dedupe dropped. A page's
    address is read only where it has no site (its site is then taken from it): the
    section level, which needs every address, reads them itself (`page_addresses`) when
    a plan gets that far."""
    rows = cat.conn.cursor()
    rows.row_factory = None
    rows.execute(
        "SELECT p.page_id, p.site, COALESCE(d.group_id, ''), COALESCE(t.template_id, ''),"
        f" CASE WHEN p.site = '' THEN {_ADDRESS} ELSE '' END"
        " FROM pages p LEFT JOIN dup_groups d ON d.page_id = p.page_id"
        " LEFT JOIN template_groups t ON t.page_id = p.page_id ORDER BY p.page_id")
    # A million new tuples would have the cycle collector walk them again and again, a
    # third of the time; they hold only strings, so no cycle can form while it is off.
    collecting = gc.isenabled()
    gc.disable()
    try:
        links = [row if row[1] else (row[0], site_of(row[4]), *row[2:]) for row in rows]
    finally:
        if collecting:
            gc.enable()
    # Every use of the set asks about pages of the catalog: no join with pages needed.
    dropped = {r[0] for r in cat.execute("SELECT page_id FROM dup_groups WHERE canonical = 0")}
    return links, dropped


# A page's address as the split takes it: where it ended up, else what was asked for.
_ADDRESS = "CASE WHEN p.final_url != '' THEN p.final_url ELSE p.url END"


def page_addresses(ws: Workspace) -> dict[str, str]:
    """page_id -> address of every page of the catalog (for the section level)."""
    with Catalog(ws.catalog_path) as cat:
        rows = cat.conn.cursor()
        rows.row_factory = None
        return dict(rows.execute(f"SELECT p.page_id, {_ADDRESS} FROM pages p"))


def _page_info(cat: Catalog, page_ids: Iterable[str], chunk: int = 500) -> dict[str, dict]:
    """Addresses, site and recorded screenshot size of these pages (the ones to export),
    read by primary key."""
    ids, info = sorted(set(page_ids)), {}
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        for r in cat.execute(
                "SELECT page_id, url, final_url, site, width, height FROM pages"
                f" WHERE page_id IN ({','.join('?' * len(part))})", part):
            info[r["page_id"]] = {
                "url": r["url"], "final_url": r["final_url"],
                "site": r["site"] or site_of(r["final_url"] or r["url"]),
                "recorded": (int(r["width"] or 0), int(r["height"] or 0)),
            }
    return info


def check_page(
    ws: Workspace, page_id: str, path: Path, classes: ClassSet,
    recorded: tuple[int, int] | None = None,
) -> tuple[Annotation, str, int, int]:
    """Read and check one annotation against its screenshot; ValueError says what is wrong.
    `recorded`: the screenshot's size as its capture recorded it (None: unknown)."""
    if not ws.page_dir(page_id).is_dir():
        raise ValueError(f"page directory {ws.page_dir(page_id)} is missing")
    shot = ws.screenshot(page_id)
    if not shot.is_file():
        raise ValueError(f"{shot} is missing")
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    try:
        ann = Annotation.from_dict(read_json(path))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} lacks a field ({exc})") from None
    except CorruptFile as exc:
        raise ValueError(str(exc)) from None
    if ann.page_id != page_id:
        raise ValueError(f"{path} is for page {ann.page_id}, not {page_id}")
    try:
        check_screenshot(shot, recorded)  # the header, before anything reads the pixels
    except CorruptFile as exc:
        raise ValueError(str(exc)) from None
    size = _png_size(shot, check=True)
    if (ann.width, ann.height) != size:
        raise ValueError(
            f"{path.name} is {ann.width}x{ann.height} but screenshot.png is "
            f"{size[0]}x{size[1]}: the page was recaptured; annotate it again"
        )
    for region in ann.regions:
        if region.label not in classes.regions:
            raise ValueError(f"{path.name} has region label {region.label!r} not in [labels]")
    # What the labels are, not when they were pulled: meta (annotator, times) is left out,
    # so a page counts as relabelled only when its regions or masks changed.
    digest = hashlib.sha256(json.dumps(
        {"width": ann.width, "height": ann.height, "masks": sorted(ann.masks),
         "regions": [r.to_dict() for r in ann.regions]}, sort_keys=True).encode())
    for cls in sorted(ann.masks):
        if cls not in classes.elements:
            raise ValueError(f"{path.name} has mask class {cls!r} not in [labels] masks")
        mask_path = path.parent / ann.masks[cls]
        if not mask_path.is_file():
            raise ValueError(f"mask {mask_path} is missing")
        if _png_size(mask_path) != size:
            raise ValueError(f"mask {mask_path.name} is not the screenshot's size {size}")
        digest.update(mask_path.read_bytes())
    return ann, digest.hexdigest(), size[0], size[1]


def _png_size(path: Path, check: bool = False) -> tuple[int, int]:
    """Image size from the header; check=True also walks every chunk's CRC to the end,
    which finds a truncated or damaged file without decoding its pixels."""
    if check:
        data = path.read_bytes()
        if data.startswith(SIGNATURE):
            size = png_size_checked(data)
            if size is None:
                raise ValueError(f"{path} is not a readable image (a chunk is damaged or "
                                 f"missing); {remedy(path)}")
            return size
    try:
        with Image.open(path) as im:
            size = im.size
            if check:
                im.verify()
            return size
    except (OSError, SyntaxError) as exc:  # PIL reports some damage as SyntaxError
        raise ValueError(f"{path} is not a readable image ({exc}); {remedy(path)}") from None


def _checked(ws: Workspace, classes: ClassSet, item: tuple[str, Path, tuple[int, int]]
             ) -> tuple[Annotation, str, int, int] | str:
    """check_page of (page id, annotation path, recorded screenshot size), or why the page
    is left out."""
    try:
        return check_page(ws, item[0], item[1], classes, item[2])
    except ValueError as exc:
        return str(exc)


def _checked_all(ws: Workspace, classes: ClassSet,
                 items: list[tuple[str, Path, tuple[int, int]]]) -> list:
    return [_checked(ws, classes, item) for item in items]


# Pages checked per task: a check takes a millisecond or so, about what handing a task to
# a worker process and its result back costs.
CHECKS_PER_TASK = 8


def select_pages(
    ws: Workspace, cat: Catalog, classes: ClassSet, include_preannotations: bool,
    pmap: Callable[[Callable, Iterable], Iterator] = map,
) -> Selection:
    """The pages to export, in page id order; pmap runs the checks of their files (a
    `workers.page_map` for several processes)."""
    links, dropped = _links(cat)
    human = {
        r["page_id"]: bool(r["reviewed"])
        for r in cat.execute("SELECT page_id, reviewed FROM annotations ORDER BY page_id")
    }
    sel = Selection(links=links, human=set(human), dropped=dropped)
    candidates: list[tuple[str, str, bool, Path]] = []
    for pid, reviewed in human.items():
        candidates.append((pid, "human", reviewed, ws.annotation_json(pid)))
    if include_preannotations:
        for pid, *_ in links:
            if pid not in human and ws.preannotation_json(pid).is_file():
                candidates.append((pid, "preannotation", False, ws.preannotation_json(pid)))
    candidates.sort()
    info = _page_info(cat, (c[0] for c in candidates))
    todo = [(pid, path, info[pid]["recorded"]) for pid, _, _, path in candidates
            if pid in info and pid not in dropped]
    batches = [todo[i:i + CHECKS_PER_TASK] for i in range(0, len(todo), CHECKS_PER_TASK)]
    checks = (found for batch in pmap(partial(_checked_all, ws, classes), batches)
              for found in batch)
    for pid, source, reviewed, path in candidates:
        if pid not in info:
            sel.problems.append((pid, "has an annotation but no row in the catalog's pages"))
            continue
        if pid in dropped:
            sel.duplicates += 1
            continue
        checked = next(checks)
        if isinstance(checked, str):
            sel.problems.append((pid, checked))
            continue
        ann, digest, width, height = checked
        meta = info[pid]
        sel.pages.append(
            PageInput(
                page_id=pid, url=meta["url"], final_url=meta["final_url"], site=meta["site"],
                source=source, reviewed=reviewed, annotation=ann, annotation_path=path,
                annotation_sha256=digest, screenshot=ws.screenshot(pid), width=width,
                height=height,
            )
        )
    return sel


# Why a page of the previous release is not in this one, by kind (the card counts them).
GONE = "no longer in the catalog"
DUPLICATE = "dropped as a duplicate by dedupe since"
BAD_INPUT = "left out for bad input (see Left out)"
PRE_NOT_ASKED = "pre-annotated, not selected this time (export without --include-preannotations)"
PRE_GONE = "its pre-annotation is gone"
HUMAN_GONE = "its human annotation is no longer in the catalog"
SPLIT_NOT_ASKED = "released in a split this config does not ask for (see Left out)"


def removal_reasons(
    old_rows: list[dict], removed: list[str], sel: Selection, include_preannotations: bool,
    bad: set[str], unplaced: set[str],
) -> dict[str, list[str]]:
    """reason -> ids of the removed pages (of the previous release) it explains.

    bad: pages left out for bad input in this export; unplaced: pages whose recorded
    split this export does not write."""
    source = {r["page_id"]: r["source"] for r in old_rows}
    known = {link[0] for link in sel.links}
    out: dict[str, list[str]] = {}
    for pid in removed:
        if pid not in known:
            why = GONE
        elif pid in sel.dropped:
            why = DUPLICATE
        elif pid in unplaced:
            why = SPLIT_NOT_ASKED
        elif pid in bad:
            why = BAD_INPUT
        elif source.get(pid) == "human":
            why = HUMAN_GONE
        else:
            why = PRE_GONE if include_preannotations else PRE_NOT_ASKED
        out.setdefault(why, []).append(pid)
    return out


def count_preannotated(ws: Workspace, sel: Selection) -> int:
    """Pages of the catalog with a pre-annotation, dropped duplicates aside."""
    return sum(1 for pid, *_ in sel.links
               if pid not in sel.dropped and ws.preannotation_json(pid).is_file())
