"""The split decision refitted from a team's corrected pages: a team that opens its headers
into logo and menu but keeps the content row whole (a convention no granularity gives:
granularity opens the large containers first) is learned from MIN_SPLIT_PAGES pages and
proposed to the next page; with fewer pages the rules stay."""

from __future__ import annotations

import json
from pathlib import Path

from annotate.__main__ import main as annotate_main
from annotate.learn.split_refit import MIN_SPLIT_PAGES
from annotate.propose import label_set, load_boxes
from annotate.propose.regions import propose_regions
from catalog.config import PreannotateConfig
from catalog.records import Annotation
from catalog.workspace import Workspace, read_json

from .test_learn import _page, write_page

LOGO = [20.0, 10.0, 480.0, 60.0]  # the logo and the site name beside it, as one region


def top_opener(node, kids, page, depth, rule) -> bool:
    """The team's way: what starts at the top of the page is opened, nothing else."""
    return bool(kids) and node.content[1] <= page[1] + 10


def team_workspace(tmp_path: Path, annotated: int) -> Workspace:
    """`annotated` pages corrected in the team's way, and one more page nobody corrected."""
    ws = Workspace(tmp_path / "ws").ensure()
    for i in range(annotated + 1):
        doc, _ = _page(10 * i)
        pid = doc["page_id"]
        folder = write_page(ws, doc)
        if i == annotated:
            continue
        regions = propose_regions(load_boxes(folder / "boxes.json"), label_set(),
                                  PreannotateConfig(), None, top_opener)
        (folder / "annotation.json").write_text(json.dumps({
            "schema": 1, "page_id": pid, "width": 1000, "height": doc["height"],
            "regions": [{"label": r.label, "bbox": r.bbox, "score": 1.0, "source": "human"}
                        for r in regions], "masks": {}, "meta": {"annotator": "a@b"}}))
    return ws


def test_a_team_that_opens_headers_only_gets_a_refitted_split_and_its_proposals(tmp_path):
    ws = team_workspace(tmp_path, MIN_SPLIT_PAGES)
    assert annotate_main(["learn", "--workspace", str(ws.root)]) == 0
    c = ws.latest_convention()
    assert c.split_model is not None and c.split_model["pages"] == MIN_SPLIT_PAGES
    f = c.figures
    # Cross-validated on the team's pages, above the best granularity alone.
    assert f["split"] == "refitted"
    assert f["segment_f1_split"] >= f["segment_f1_rules"] + 0.1
    assert f["segment_f1_after"] == f["segment_f1_split"]
    stored = json.loads((ws.conventions_dir / "c0001.json").read_text())
    assert stored["schema"] == 2 and stored["split_model"]["weights"]
    assert annotate_main(["preannotate", "--workspace", str(ws.root), "--no-pixels"]) == 0
    from annotate.studio.report import build_report, render

    assert ", split decision refitted;" in render(build_report(ws, list(label_set().regions), []))
    last = f"p{10 * MIN_SPLIT_PAGES}"
    fresh = Annotation.from_dict(read_json(ws.preannotation_json(last)))
    boxes = {tuple(r.bbox) for r in fresh.regions}
    assert tuple(LOGO) in boxes  # the header opened into the logo ...
    top = 120 + 10 * MIN_SPLIT_PAGES
    assert (0.0, float(top), 1000.0, 1100.0) in boxes  # ... the content row kept whole


def test_below_the_minimum_the_rules_decide_and_the_convention_says_why(tmp_path):
    ws = team_workspace(tmp_path, MIN_SPLIT_PAGES - 1)
    assert annotate_main(["learn", "--workspace", str(ws.root)]) == 0
    c = ws.latest_convention()
    assert c.split_model is None
    assert c.figures["split"].startswith(f"rules ({MIN_SPLIT_PAGES - 1} page(s)")


def test_a_convention_written_before_the_split_decision_is_still_read(tmp_path):
    ws = Workspace(tmp_path / "ws").ensure()
    ws.conventions_dir.mkdir()
    (ws.conventions_dir / "c0001.json").write_text(json.dumps({
        "schema": 1, "version": "c0001", "granularity": 0.5, "header_menu": False,
        "label_map": {}, "pages": [], "left_out": [], "figures": {}}))
    c = ws.latest_convention()
    assert c.granularity == 0.5 and c.split_model is None and c.model == ""
