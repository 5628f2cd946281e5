"""Learning a team's convention from its corrected pages, on hand-made pages whose
convention is known: the fit recovers it, and preannotate then proposes in it."""

from __future__ import annotations

import json
from pathlib import Path

from annotate.__main__ import main as annotate_main
from catalog.records import Annotation
from catalog.workspace import Workspace, read_json

from .test_preannotate import _box, box_adder

HEADER, BAR, MAIN, SIDE, FOOTER = "header", "bar", "main", "side", "footer"


def _page(shift: int) -> tuple[dict, dict[str, list[float]]]:
    """A 1000 px wide page: a header holding its menu bar, a story beside a sidebar, a
    footer; `shift` moves everything below the header down. Returns boxes.json and the
    rectangle of each part."""
    top = 120 + shift
    height = top + 1100 + 180
    parts = {HEADER: [0, 0, 1000, top], BAR: [0, top - 30, 1000, 30],
             MAIN: [0, top, 700, 1100], SIDE: [760, top, 240, 1100],
             FOOTER: [0, top + 1100, 1000, 180]}
    boxes = [_box(0, "block", (0, 0, 1000, height), tag="body", depth=0)]
    add = box_adder(boxes)

    header = add("block", parts[HEADER], 0, background="rgb(30, 30, 90)")
    add("image", (20, 10, 200, 60), header)
    add("text", (300, 30, 200, 20), header, text="Site name")
    bar = add("block", parts[BAR], header)
    for i in range(5):
        link = (20 + i * 120, top - 26, 100, 18)
        add("interactive", link, bar, text=f"Menu {i}")
        add("text", link, bar, text=f"Menu {i}")
    body = add("block", (0, top, 1000, 1100), 0)
    story = add("block", parts[MAIN], body)
    for i in range(30):
        add("text", (20, top + 20 + i * 34, 640, 18), story, text="Running text. " * 6)
    side = add("block", parts[SIDE], body)
    for i in range(15):
        link = (770, top + 20 + i * 60, 200, 18)
        add("interactive", link, side, text=f"Related {i}")
        add("text", link, side, text=f"Related {i}")
    footer = add("block", parts[FOOTER], 0, background="rgb(40, 40, 40)")
    for i in range(3):
        add("text", (40, top + 1130 + i * 30, 400, 16), footer, text="Copyright and contact")
    doc = {"schema": 1, "page_id": f"p{shift}", "width": 1000, "height": height, "boxes": boxes}
    return doc, parts


def write_page(ws: Workspace, doc: dict) -> Path:
    """A captured page (boxes.json and page.json, no screenshot) of the boxes `doc`."""
    pid = doc["page_id"]
    folder = ws.page_dir(pid)
    folder.mkdir()
    (folder / "boxes.json").write_text(json.dumps(doc))
    (folder / "page.json").write_text(json.dumps({
        "page_id": pid, "url": f"http://127.0.0.1/{pid}", "final_url": "", "status": "ok",
        "viewport": [1000, 800], "device_pixel_ratio": 1, "width": doc["width"],
        "height": doc["height"]}))
    return folder


def _workspace(tmp_path: Path, annotate: dict[str, list[tuple[str, str]]],
               unannotated: int = 2) -> Workspace:
    """Pages p0, p10, ...: those in `annotate` carry the team's regions, made of the named
    parts with the team's labels; `unannotated` more pages have none."""
    ws = Workspace(tmp_path / "ws").ensure()
    shifts = [10 * i for i in range(len(annotate) + unannotated)]
    for i, shift in enumerate(shifts):
        doc, parts = _page(shift)
        folder = write_page(ws, doc)
        pid = doc["page_id"]
        team = list(annotate.values())[i] if i < len(annotate) else None
        if team is None:
            continue
        regions = []
        for part, label in team:
            bbox = list(parts[part])
            if part == HEADER and any(p == BAR for p, _ in team):
                bbox[3] -= 30  # the team draws the menu apart from the header
            regions.append({"label": label, "bbox": bbox, "score": 1.0, "source": "human"})
        (folder / "annotation.json").write_text(json.dumps({
            "schema": 1, "page_id": pid, "width": 1000, "height": doc["height"],
            "regions": regions, "masks": {}, "meta": {"annotator": "a@b"}}))
    return ws


def _learn(ws: Workspace, *extra: str) -> int:
    return annotate_main(["learn", "--workspace", str(ws.root), *extra])


def _latest(ws: Workspace):
    return ws.latest_convention()


COARSE = [(HEADER, "header"), (MAIN, "main"), (SIDE, "sidebar"), (FOOTER, "footer")]
MENUS_APART = [(HEADER, "header"), (BAR, "navigation"), (MAIN, "main"), (SIDE, "sidebar"),
               (FOOTER, "footer")]


def test_a_team_that_keeps_menus_in_headers_keeps_the_rules(tmp_path):
    # The rules propose header / content row / footer; a team that also splits the row
    # into story and sidebar is finer, but keeps the menu in the header.
    ws = _workspace(tmp_path, {f"p{i}": COARSE for i in range(4)})
    assert _learn(ws) == 0
    c = _latest(ws)
    assert c.version == "c0001" and len(c.pages) == 4
    assert not c.header_menu
    assert c.figures["segment_f1_after"] >= c.figures["segment_f1_before"]


def test_a_team_that_draws_menus_apart_is_learned_and_proposed_to_the_other_pages(tmp_path):
    ws = _workspace(tmp_path, {f"p{i}": MENUS_APART for i in range(4)})
    assert _learn(ws) == 0
    c = _latest(ws)
    assert c.header_menu or c.granularity >= 0.5
    assert c.figures["segment_f1_after"] >= c.figures["segment_f1_before"] + 0.01
    # The uncorrected pages are proposed in the team's way; the corrected ones are left.
    assert annotate_main(["preannotate", "--workspace", str(ws.root), "--no-pixels"]) == 0
    fresh = Annotation.from_dict(read_json(ws.preannotation_json("p40")))
    assert fresh.meta["convention"] == "c0001"
    nav = [r.bbox for r in fresh.regions if r.label == "navigation"]
    assert [round(v) for v in nav[0]] == [0, 130, 1000, 30]


def test_learning_again_without_new_annotations_writes_nothing(tmp_path):
    ws = _workspace(tmp_path, {f"p{i}": MENUS_APART for i in range(4)})
    later = ws.annotation_json("p30")
    held_back = later.read_text()
    later.unlink()
    assert _learn(ws, "--if-new") == 0
    assert _learn(ws, "--if-new") == 0
    assert [p.name for p in ws.convention_files()] == ["c0001.json"]
    # A new correction makes a new version; the old one stays.
    later.write_text(held_back)
    assert _learn(ws, "--if-new") == 0
    assert [p.name for p in ws.convention_files()] == ["c0001.json", "c0002.json"]


def test_a_team_that_names_the_story_otherwise_gets_its_name(tmp_path):
    team = [(HEADER, "header"), (MAIN, "segment"), (SIDE, "sidebar"), (FOOTER, "footer")]
    ws = _workspace(tmp_path, {f"p{i}": team for i in range(4)})
    assert _learn(ws) == 0
    c = _latest(ws)
    assert c.label_map.get("main") == "segment"
    assert annotate_main(["preannotate", "--workspace", str(ws.root), "--no-pixels"]) == 0
    fresh = Annotation.from_dict(read_json(ws.preannotation_json("p40")))
    assert "main" not in {r.label for r in fresh.regions}


def test_bad_annotations_are_named_and_the_rest_learned(tmp_path, capsys):
    ws = _workspace(tmp_path, {f"p{i}": MENUS_APART for i in range(5)})
    empty = json.loads(ws.annotation_json("p0").read_text())
    empty["regions"] = []
    ws.annotation_json("p0").write_text(json.dumps(empty))
    odd = json.loads(ws.annotation_json("p10").read_text())
    odd["regions"][0]["label"] = "banner"
    ws.annotation_json("p10").write_text(json.dumps(odd))
    moved = json.loads(ws.annotation_json("p20").read_text())
    moved["height"] += 100  # annotated on a screenshot of another size
    ws.annotation_json("p20").write_text(json.dumps(moved))
    assert _learn(ws) == 0
    err = capsys.readouterr().err
    assert "left out p0: no regions" in err
    assert "left out p10: label 'banner' is not in [labels] regions" in err
    assert "left out p20: the screenshot changed since it was annotated" in err
    c = _latest(ws)
    assert [p["page_id"] for p in c.pages] == ["p30", "p40"]
    assert {x["page_id"] for x in c.left_out} == {"p0", "p10", "p20"}


def test_no_corrected_page_learns_nothing(tmp_path):
    ws = _workspace(tmp_path, {}, unannotated=2)
    assert _learn(ws) == 0
    assert ws.convention_files() == []


def test_report_names_the_convention_and_the_edits_before_and_after_it(tmp_path):
    from annotate.studio.report import build_report, render

    ws = _workspace(tmp_path, {f"p{i}": MENUS_APART for i in range(4)})
    assert annotate_main(["preannotate", "--workspace", str(ws.root), "--no-pixels"]) == 0
    assert _learn(ws) == 0
    assert annotate_main(["preannotate", "--workspace", str(ws.root), "--no-pixels"]) == 0
    # The team corrects p40, proposed in the learned convention: nothing left to change.
    done = json.loads(ws.annotation_json("p30").read_text())
    _, parts = _page(40)
    done.update(page_id="p40", height=1440)
    for r, part in zip(done["regions"], [HEADER, BAR, MAIN, SIDE, FOOTER], strict=True):
        r["bbox"] = list(parts[part])
    done["regions"][0]["bbox"][3] -= 30
    ws.annotation_json("p40").write_text(json.dumps(done))
    d = build_report(ws, ["header", "navigation", "main", "sidebar", "footer"], []).to_dict()
    assert d["convention"]["version"] == "c0001"
    assert d["convention"]["learned_from_pages"] == 4
    before, after = d["edits_per_page"]["none"], d["edits_per_page"]["c0001"]
    assert before["pages"] == 4 and after["pages"] == 1
    # Before: the menu drawn and the header redrawn on every page, on top of what is left.
    assert after["edits"] <= before["edits"] - 2
    table = render(build_report(ws, ["header", "navigation", "main", "sidebar", "footer"], []))
    assert "convention c0001: granularity" in table and "learned from 4 corrected page(s)" in table
    assert "no convention" in table and f"c0001 {after['edits']:.1f} (1 page(s))" in table


def test_learning_from_the_same_corrections_writes_the_same_bytes(tmp_path):
    written = []
    for name in ("one", "two"):
        ws = _workspace(tmp_path / name, {f"p{i}": MENUS_APART for i in range(4)})
        assert _learn(ws) == 0
        assert annotate_main(["preannotate", "--workspace", str(ws.root), "--no-pixels"]) == 0
        written.append({p.relative_to(ws.root): p.read_bytes()
                        for p in sorted(ws.root.rglob("*")) if p.is_file()
                        and p.name != "catalog.sqlite"})
    assert written[0] == written[1]
    assert any(p.parts[0] == "conventions" for p in written[0])
