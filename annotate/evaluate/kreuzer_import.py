"""Kreuzer dev pages as human-annotated pages of a workspace, for a training set.

The corpus's truth stands as the regions a team drew (`source: human`, annotator
`kreuzer-corpus`); the element masks are the DOM's (the pre-annotation's), which the
truth does not mark. Each page is captured under a loopback name of its original site, so
it is a site of its own in the release's splits. Held-out pages are never imported: they
judge the proposal and the model.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from catalog.config import PreannotateConfig
from catalog.db import Catalog
from catalog.records import Annotation, Region
from catalog.workspace import Workspace, write_bytes_atomic, write_json_atomic
from segmentation.kreuzer_truth import truth_segments

from ..propose import LabelSet, preannotate_page
from .kreuzer import capture_pages, list_pages, read_truths

ANNOTATOR = "kreuzer-corpus"
IMPORTED_SPLIT = "dev"


def annotation_mask(cls: str) -> str:
    # The name pull gives a human annotation's masks.
    return f"annotation_mask_{cls}.png"


def import_kreuzer(corpus: Path, ws: Workspace, labels: LabelSet,
                   params: PreannotateConfig | None = None, level: str = "coarse",
                   names: list[str] | None = None,
                   console: Console | None = None) -> tuple[int, list[str]]:
    """Capture the corpus's dev pages (those whose folder contains one of `names`, if given)
    into `ws` and write their truth as annotation.json; returns (pages imported, messages
    about the pages left out)."""
    console = console or Console(stderr=True)
    pages = [p for p in list_pages(corpus) if p.split == IMPORTED_SPLIT
             and (not names or any(n in p.name for n in names))]
    if not pages:
        raise ValueError(f"no dev page of {corpus} matches {names}: held-out pages are never "
                         "imported")
    ws.ensure()
    console.print(f"{len(pages)} dev page(s) of {corpus}: rendering their truth, capturing")
    truths = read_truths(corpus, pages, ws.root / "kreuzer-truth.json")
    ids = capture_pages(corpus, pages, ws, named=True)
    imported, left_out = 0, []
    with Catalog(ws.catalog_path) as cat:
        for p in pages:
            pid = ids.get(p.name)
            ann = preannotate_page(ws, pid, labels, params) if pid else None
            if ann is None:
                left_out.append(f"{p.name}: not captured")
                continue
            true = truth_segments(truths[p.name], ann.width, ann.height, level)
            if not true:
                left_out.append(f"{p.name}: no visible {level} block")
                continue
            folder = ws.page_dir(pid)
            masks = {}
            for cls, name in ann.masks.items():
                write_bytes_atomic(folder / annotation_mask(cls), (folder / name).read_bytes())
                masks[cls] = annotation_mask(cls)
            regions = [Region(labels.region_label(s.label), [round(v, 1) for v in s.bbox],
                              1.0, "human") for s in true]
            doc = Annotation(pid, ann.width, ann.height, regions, masks, meta={
                "annotator": ANNOTATOR, "truth": f"kreuzer:{level}", "source_page": p.name,
                "reviewed": True, "lead_time": None, "updated_at": ""})
            # Masks first, then the JSON that names them, then the catalog row export reads.
            write_json_atomic(ws.annotation_json(pid), doc.to_dict())
            with cat.transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO annotations(page_id, task_id, annotation_id,"
                    " annotator, lead_time, reviewed, updated_at, pulled_at)"
                    " VALUES(?,?,?,?,?,?,?,?)",
                    (pid, None, None, ANNOTATOR, None, 1, "", time.time()),
                )
            imported += 1
    return imported, left_out
