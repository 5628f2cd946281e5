"""Which captured pages of a workspace have files that are missing or cannot be read.

The capture writes page.json, boxes.json and screenshot.png of a page and no later stage
makes them again; a page whose files were damaged after the fact (a disk fault, a file
edited by hand) is found here and captured again by `python -m scraper check --recapture`.
A catalog row that disagrees with its readable page.json (a run killed between the two
writes) is found too: page.json is what is on disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from catalog.db import Catalog
from catalog.records import BOXES_SCHEMA, PageRecord
from catalog.workspace import Workspace


@dataclass
class Broken:
    page_id: str
    url: str  # as requested: capturing it again gives the same page id
    viewport: tuple[int, int, float]
    status: str  # the capture's outcome (ok, http_error, not_html...)
    pictured: bool  # the capture had a screenshot and boxes
    flags: list[str]  # truncated, blank_below...: a new capture may not add any
    crawl_id: str
    depth: int
    annotated: bool  # a human annotation (pulled) was drawn on the old screenshot
    problem: str  # which file, and what is wrong with it


@dataclass
class CheckResult:
    checked: int = 0
    broken: list[Broken] = field(default_factory=list)
    stale: list[PageRecord] = field(default_factory=list)  # rows behind their page.json


def _read_object(path: Path) -> tuple[dict | None, str]:
    if not path.is_file():
        return None, f"{path.name} is missing"
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"{path.name} is not JSON ({exc})"
    if not isinstance(doc, dict):
        return None, f"{path.name} is not a JSON object"
    return doc, ""


def read_page_record(path: Path) -> tuple[PageRecord | None, str]:
    doc, problem = _read_object(path)
    if doc is None:
        return None, problem
    try:
        return PageRecord.from_dict(doc), ""
    except (TypeError, ValueError, KeyError) as exc:
        return None, f"page.json does not hold a page record ({exc})"


def boxes_problem(path: Path) -> str:
    """What keeps the later stages from reading boxes.json ("" when nothing does)."""
    doc, problem = _read_object(path)
    if doc is None:
        return problem
    if doc.get("schema") != BOXES_SCHEMA:
        return f"boxes.json has schema {doc.get('schema')!r}, expected {BOXES_SCHEMA}"
    boxes = doc.get("boxes")
    if not isinstance(boxes, list) or not all(isinstance(doc.get(k), int)
                                              for k in ("width", "height")):
        return "boxes.json lacks its boxes or the page size"
    for i, b in enumerate(boxes):
        bbox = b.get("bbox") if isinstance(b, dict) else None
        if not (isinstance(b, dict) and isinstance(b.get("id"), int)
                and isinstance(b.get("kind"), str) and isinstance(bbox, list) and len(bbox) == 4
                and all(isinstance(v, int | float) for v in bbox)):
            return f"boxes.json box {i} lacks its id, kind or bbox"
    return ""


def screenshot_problem(path: Path) -> str:
    if not path.is_file():
        return "screenshot.png is missing"
    try:
        with Image.open(path) as im:
            im.verify()  # every chunk's CRC, to the end of the image data
    except (OSError, SyntaxError, ValueError) as exc:
        return f"screenshot.png is not a readable PNG ({exc})"
    return ""


def page_problem(ws: Workspace, page_id: str, pictured: bool) -> str:
    """What is wrong with a captured page's files ("" when they read back). `pictured`: the
    capture took a screenshot (and boxes); a page that was no HTML or never answered has
    page.json alone."""
    return _joined(read_page_record(ws.page_json(page_id))[1], ws, page_id, pictured)


def _joined(page_json_problem: str, ws: Workspace, page_id: str, pictured: bool) -> str:
    checks = [page_json_problem]
    if pictured:
        checks += [boxes_problem(ws.boxes_json(page_id)),
                   screenshot_problem(ws.screenshot(page_id))]
    return "; ".join(p for p in checks if p)


def _stale(row: dict, page: PageRecord) -> bool:
    return (page.page_id == row["page_id"]
            and (page.width, page.height, page.status, page.captured_at)
            != (row["width"], row["height"], row["status"], row["captured_at"]))


def check_pages(ws: Workspace, catalog: Catalog,
                on_page: Callable[[int, int], None] | None = None) -> CheckResult:
    """Every page the catalog holds: the broken ones, and rows behind their page.json.
    on_page(done, total) after each page."""
    out = CheckResult()
    rows = catalog.pages()
    for row in map(dict, rows):
        out.checked += 1
        if on_page:
            on_page(out.checked, len(rows))
        pid = row["page_id"]
        record, record_problem = read_page_record(ws.page_json(pid))
        if record is not None and _stale(row, record):
            out.stale.append(record)
            row.update(width=record.width, height=record.height, status=record.status)
        pictured = (row["status"] == "ok" or int(row["width"]) > 0
                    or ws.screenshot(pid).exists() or ws.boxes_json(pid).exists())
        problem = _joined(record_problem, ws, pid, pictured)
        if not problem:
            continue
        w, h = (int(v) for v in row["viewport"].split("x"))
        out.broken.append(Broken(
            pid, row["url"], (w, h, float(row["dpr"])), row["status"], pictured,
            json.loads(row["flags"] or "[]"), row["crawl_id"],
            record.depth if record is not None else 0, ws.annotation_json(pid).exists(),
            problem,
        ))
    return out
