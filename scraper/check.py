"""Which captured pages of a workspace have files that are missing or cannot be read.

The capture writes page.json, boxes.json and screenshot.png of a page and no later stage
makes them again; a page whose files were damaged after the fact (a disk fault, a file
edited by hand) is found here and captured again by `python -m scraper check --recapture`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
    problem: str  # which file, and what is wrong with it


def _json_problem(path: Path) -> str:
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        return f"{path.name} is not JSON ({exc})"
    if not isinstance(doc, dict):
        return f"{path.name} is not a JSON object"
    if path.name == "boxes.json" and doc.get("schema") != BOXES_SCHEMA:
        return f"boxes.json has schema {doc.get('schema')!r}, expected {BOXES_SCHEMA}"
    if path.name == "page.json":
        try:
            PageRecord.from_dict(doc)
        except (TypeError, ValueError, KeyError) as exc:
            return f"page.json does not hold a page record ({exc})"
    return ""


def _png_problem(path: Path) -> str:
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
    folder = ws.page_dir(page_id)
    checks = [_json_problem(folder / "page.json")]
    if pictured:
        checks += [_json_problem(folder / "boxes.json"), _png_problem(folder / "screenshot.png")]
    return "; ".join(p for p in checks if p)


def broken_pages(ws: Workspace, catalog: Catalog) -> tuple[int, list[Broken]]:
    """(pages checked, the broken ones) over every page the catalog holds."""
    rows = catalog.pages()
    broken = []
    for row in rows:
        pictured = int(row["width"]) > 0
        problem = page_problem(ws, row["page_id"], pictured)
        if problem:
            w, h = (int(v) for v in row["viewport"].split("x"))
            broken.append(Broken(row["page_id"], row["url"], (w, h, float(row["dpr"])),
                                 row["status"], pictured, problem))
    return len(rows), broken
