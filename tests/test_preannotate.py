"""Pre-annotation on small hand-made pages: geometry, clustering, segments, labels, masks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from annotate.propose.boxes import Box, PageBoxes, parse_boxes
from annotate.propose.cluster import Item, cluster
from annotate.propose.labelset import label_set
from annotate.propose.masks import element_masks
from annotate.propose.preannotate import VERSION, preannotate_page
from annotate.propose.regions import propose_regions
from catalog.config import LabelsConfig
from catalog.records import Annotation
from catalog.workspace import CorruptFile, Workspace, read_json
from segmentation import geometry as g
from segmentation.pixels import text_line_score, unexplained_regions

# --- geometry ---------------------------------------------------------------------------


def test_iou_of_known_rectangles():
    assert g.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert g.iou((0, 0, 10, 10), (20, 0, 10, 10)) == 0.0
    # Half overlap: intersection 50, union 150.
    assert g.iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_union_contains_coverage_and_gap():
    u = g.union_rect([(0, 0, 10, 10), (20, 5, 10, 20)])
    assert u == (0, 0, 30, 25)
    assert g.contains(u, (20, 5, 10, 20))
    assert not g.contains((0, 0, 10, 10), (5, 5, 10, 10))
    assert g.contains((0, 0, 10, 10), (5, 5, 6, 6), tol=1)
    assert g.coverage((0, 0, 10, 10), (5, 0, 10, 10)) == 0.5
    assert g.gap((0, 0, 10, 10), (15, 30, 5, 5)) == (5, 20)
    assert g.clip((-5, -5, 20, 20), 10, 8) == (0, 0, 10, 8)
    with pytest.raises(ValueError):
        g.union_rect([])


rects = st.tuples(
    st.integers(0, 500), st.integers(0, 500), st.integers(1, 300), st.integers(1, 300)
)


@given(rects, rects)
def test_iou_is_symmetric_and_bounded(a, b):
    v = g.iou(a, b)
    assert 0.0 <= v <= 1.0
    assert v == pytest.approx(g.iou(b, a))
    assert g.inter_area(a, b) <= min(g.area(a), g.area(b))


# --- clustering -------------------------------------------------------------------------


def _lines(x, y0, n, pitch=18, w=300, font=14.0, bg="rgb(255, 255, 255)"):
    return [Item((x, y0 + i * pitch, w, 16), font, "rgb(0, 0, 0)", bg) for i in range(n)]


def test_cluster_keeps_a_paragraph_together_and_splits_distant_blocks():
    items = _lines(10, 10, 6) + _lines(10, 400, 5)
    groups = cluster(items)
    assert sorted(sorted(gr) for gr in groups) == [list(range(6)), list(range(6, 11))]


def test_cluster_splits_side_by_side_columns_by_gap():
    items = _lines(10, 10, 8) + _lines(700, 10, 8)
    groups = cluster(items)
    assert len(groups) == 2
    assert {frozenset(gr) for gr in groups} == {frozenset(range(8)), frozenset(range(8, 16))}


def test_cluster_separates_touching_blocks_of_different_background():
    items = _lines(10, 10, 5) + _lines(10, 100, 5, bg="rgb(20, 20, 80)")
    groups = cluster(items)
    assert len(groups) == 2


def test_cluster_of_nothing_and_of_one():
    assert cluster([]) == []
    assert cluster([Item((0, 0, 5, 5))]) == [[0]]


@settings(max_examples=40, deadline=None)
@given(st.lists(rects, min_size=1, max_size=25))
def test_cluster_is_a_partition(rs):
    groups = cluster([Item(r, 12.0) for r in rs])
    flat = sorted(i for gr in groups for i in gr)
    assert flat == list(range(len(rs)))


# --- a hand-made page -------------------------------------------------------------------


def _box(i, kind, bbox, parent=None, **kw):
    base = {"id": i, "kind": kind, "bbox": list(bbox), "tag": kw.pop("tag", "div"),
            "parent": parent, "depth": kw.pop("depth", 1), "visible": kw.pop("visible", True),
            "background": kw.pop("background", "rgb(255, 255, 255)"), "z": kw.pop("z", 0),
            "font_size": 14, "text": kw.pop("text", "")}
    base.update(kw)
    return base


def box_adder(boxes: list[dict]):
    """add(kind, bbox, parent, **kw) -> id: appends a box to `boxes` under the next id."""
    def add(kind, bbox, parent, **kw):
        nid = len(boxes)
        boxes.append(_box(nid, kind, bbox, parent, **kw))
        return nid

    return add


def classic_page(landmarks: bool = False) -> dict:
    """1000 x 1400: header band, a main column beside a sidebar, footer band; no names."""
    boxes = [_box(0, "block", (0, 0, 1000, 1400), tag="body", depth=0)]
    add = box_adder(boxes)

    wrap = add("block", (0, 0, 1000, 1400), 0)
    kind = "landmark" if landmarks else "block"
    header = add(kind, (0, 0, 1000, 120), wrap, tag="header" if landmarks else "div",
                 landmark="header" if landmarks else "", background="rgb(30, 30, 90)")
    add("image", (20, 20, 200, 80), header)
    add("text", (300, 50, 200, 20), header, text="Site name")
    body = add("block", (0, 120, 1000, 1100), wrap)
    main = add(kind, (0, 120, 700, 1100), body, tag="main" if landmarks else "div",
               landmark="main" if landmarks else "")
    for i in range(30):
        add("text", (20, 140 + i * 34, 640, 18), main, text="Some running text of the story. " * 3)
    side = add("block", (720, 120, 280, 1100), body)
    for i in range(15):
        add("interactive", (730, 140 + i * 60, 200, 18), side, text=f"Related link {i}")
        add("text", (730, 140 + i * 60, 200, 18), side, text=f"Related link {i}")
    footer = add(kind, (0, 1220, 1000, 180), wrap, tag="footer" if landmarks else "div",
                 landmark="footer" if landmarks else "", background="rgb(40, 40, 40)")
    for i in range(3):
        add("text", (40, 1250 + i * 30, 400, 16), footer, text="Copyright and contact")
    return {"schema": 1, "page_id": "p", "width": 1000, "height": 1400, "dpr": 1, "boxes": boxes}


def _by_label(regions):
    return {r.label: [round(v) for v in r.bbox] for r in regions}


def test_classic_layout_without_landmarks_gives_header_main_sidebar_footer():
    page = parse_boxes(classic_page())
    regions = propose_regions(page, label_set())
    got = _by_label(regions)
    assert got["header"] == [0, 0, 1000, 120]
    assert got["footer"] == [0, 1220, 1000, 180]
    # The content row is one part of the page (a row of columns is not opened).
    assert "main" in got and g.iou(got["main"], (0, 120, 1000, 1100)) > 0.9
    assert all(0 < r.score <= 1 for r in regions)
    assert len(regions) == 3


def test_landmarks_name_the_regions():
    page = parse_boxes(classic_page(landmarks=True))
    regions = propose_regions(page, label_set())
    labels = sorted(r.label for r in regions)
    assert labels == ["footer", "header", "main"]
    assert {r.source for r in regions} <= {"landmark", "tree"}


def test_a_stack_from_top_to_bottom_is_opened_and_loose_objects_are_grouped():
    boxes = [_box(0, "block", (0, 0, 800, 1000), tag="body", depth=0)]
    # Two paragraphs straight in body, far apart: no block of their own.
    for i in range(5):
        boxes.append(_box(1 + i, "text", (20, 20 + 20 * i, 500, 16), 0, text="x" * 50))
    for i in range(5):
        boxes.append(_box(6 + i, "text", (20, 700 + 20 * i, 500, 16), 0, text="y" * 50))
    page = parse_boxes({"schema": 1, "width": 800, "height": 1000, "boxes": boxes})
    regions = propose_regions(page, label_set())
    assert len(regions) == 2
    assert all(r.source == "cluster" for r in regions)
    tops = sorted(r.bbox[1] for r in regions)
    assert tops == [20, 700]


def test_bands_of_a_centred_layout_in_a_page_wide_wrapper_open_it():
    # The lower part of the page is a page-wide wrapper around a 900 px layout: a story
    # and, under it, a footer band as wide as the layout (not as the wrapper's box).
    boxes = [_box(0, "block", (0, 0, 1280, 1000), tag="body", depth=0)]
    nid = 1

    def add(kind, bbox, parent, **kw):
        nonlocal nid
        boxes.append(_box(nid, kind, bbox, parent, **kw))
        nid += 1
        return nid - 1

    head = add("block", (0, 0, 1280, 150), 0)
    add("text", (200, 60, 300, 20), head, text="Site name")
    mid = add("block", (190, 150, 900, 400), 0)
    for i in range(10):
        add("text", (200, 160 + 36 * i, 880, 18), mid, text="Running text. " * 5)
    lower = add("block", (0, 560, 1280, 440), 0)
    story = add("block", (190, 560, 900, 280), lower)
    for i in range(7):
        add("text", (200, 570 + 36 * i, 880, 18), story, text="More running text. " * 4)
    foot = add("block", (190, 850, 900, 150), lower)
    for i in range(4):
        add("text", (200, 860 + 32 * i, 880, 16), foot, text="Contact and legal notes")
    page = parse_boxes({"schema": 1, "width": 1280, "height": 1000, "boxes": boxes})
    rects = [r.bbox for r in propose_regions(page, label_set())]
    assert any(g.iou(r, (190, 850, 900, 150)) > 0.9 for r in rects)
    assert any(g.iou(r, (190, 560, 900, 280)) > 0.9 for r in rects)
    assert not any(g.iou(r, (0, 560, 1280, 440)) > 0.5 for r in rects)


def test_hidden_and_offpage_objects_do_not_make_regions():
    doc = classic_page()
    doc["boxes"].append(_box(999, "text", (0, 5000, 100, 20), 0, text="far below"))
    doc["boxes"].append(_box(1000, "image", (300, 600, 300, 300), 0, visible=False))
    regions = propose_regions(parse_boxes(doc), label_set())
    assert all(r.bbox[1] + r.bbox[3] <= 1400 for r in regions)
    assert len(regions) == 3


def test_empty_page_has_no_regions():
    page = parse_boxes({"schema": 1, "width": 100, "height": 100, "boxes": []})
    assert propose_regions(page, label_set()) == []


def test_boxes_of_another_schema_are_refused():
    with pytest.raises(CorruptFile, match="schema"):
        parse_boxes({"schema": 99, "width": 1, "height": 1, "boxes": []})
    with pytest.raises(CorruptFile, match="malformed"):
        parse_boxes({"schema": 1, "width": 1, "height": 1, "boxes": [{"id": 1}]})


# --- masks ------------------------------------------------------------------------------


def test_masks_paint_visible_objects_per_class():
    page = parse_boxes(classic_page())
    masks = element_masks(page)
    assert set(masks) == {"text", "image", "interactive"}
    assert masks["text"].shape == (1400, 1000) and masks["text"].dtype == np.uint8
    assert masks["image"][60, 100] == 255 and masks["image"][60, 600] == 0
    assert masks["text"][150, 100] == 255
    assert masks["interactive"][150, 800] == 255 and masks["interactive"][150, 100] == 0
    assert set(np.unique(masks["text"])) <= {0, 255}


def test_masks_leave_out_what_an_opaque_overlay_covers_and_hidden_boxes():
    boxes = [
        _box(0, "block", (0, 0, 400, 400), tag="body", depth=0),
        _box(1, "text", (0, 0, 400, 20), 0, text="under the bar"),
        _box(2, "text", (0, 100, 400, 20), 0, text="free"),
        # A fixed bar stacked above, with its own background, over the first line's left half.
        _box(3, "block", (0, 0, 200, 40), 0, z=10, background="rgb(0, 0, 0)"),
        _box(4, "text", (10, 10, 50, 10), 3, z=10, text="bar label"),
        _box(5, "image", (0, 300, 50, 50), 0, visible=False, hidden_reason="covered"),
    ]
    page = parse_boxes({"schema": 1, "width": 400, "height": 400, "boxes": boxes})
    masks = element_masks(page)
    text = masks["text"]
    assert text[5, 300] == 255  # the uncovered half of the first line
    assert text[5, 100] == 0  # covered by the bar
    assert text[15, 20] == 255  # the bar's own label is on top
    assert text[110, 100] == 255
    assert masks["image"].max() == 0


# --- pixels -----------------------------------------------------------------------------


def _text_picture(h=240, w=400, pitch=20):
    img = np.full((h, w), 255, dtype=np.uint8)
    rng = np.random.default_rng(0)
    for y in range(10, h - 14, pitch):
        for x in range(10, w - 10, 9):
            if rng.random() < 0.8:
                img[y : y + 10, x : x + 5] = 0  # a glyph
    return img


def test_text_lines_score_high_and_a_smooth_picture_low():
    assert text_line_score(_text_picture()) > 0.5
    gradient = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (240, 1))
    assert text_line_score(gradient) < 0.2
    noise = np.random.default_rng(1).integers(0, 255, (240, 400), dtype=np.uint8)
    assert text_line_score(noise) < 0.5


def test_pixel_check_finds_text_drawn_where_the_dom_has_nothing():
    shot = np.full((800, 1000), 255, dtype=np.uint8)
    shot[400:640, 500:900] = _text_picture()  # e.g. a canvas with text on it
    shot[50:150, 100:300] = _text_picture(100, 200)  # real text, which the DOM explains
    found = unexplained_regions(shot, [(0, 0, 1000, 200)], min_area=10_000)
    assert len(found) == 1
    (x, y, w, h), score = found[0]
    assert g.iou((x, y, w, h), (500, 400, 400, 240)) > 0.7
    assert score > 0.5


def test_pixel_regions_join_the_proposal_as_segments():
    doc = classic_page()
    # Move the sidebar's content out: a picture of text sits there, unknown to the DOM.
    doc["boxes"] = [b for b in doc["boxes"] if not (b["kind"] != "block" and b["bbox"][0] == 730)]
    doc["boxes"] = [b for b in doc["boxes"] if b["bbox"] != [720, 120, 280, 1100]]
    for b in doc["boxes"]:
        if b["bbox"] == [0, 120, 1000, 1100]:
            b["bbox"] = [0, 120, 700, 1100]  # the content row is now the main column only
    page = parse_boxes(doc)
    shot = np.full((1400, 1000), 255, dtype=np.uint8)
    shot[300:540, 720:1000] = _text_picture(240, 280)
    regions = propose_regions(page, label_set(), gray=shot)
    pixel = [r for r in regions if r.source == "pixel"]
    assert len(pixel) == 1 and pixel[0].label == "main"
    assert g.coverage((730, 310, 260, 220), pixel[0].bbox) > 0.9


# --- label set --------------------------------------------------------------------------


def test_label_set_defaults_and_errors():
    ls = label_set()
    assert ls.regions[0] == "header" and "segment" in ls.regions
    assert ls.color("header") == (0xE6, 0x19, 0x4B)
    assert ls.region_label("nonsense") == "segment"
    with pytest.raises(ValueError, match="#rrggbb"):
        label_set(LabelsConfig(colors={"header": "red"}))
    with pytest.raises(ValueError, match="mask classes"):
        label_set(LabelsConfig(masks=["text", "table"]))
    with pytest.raises(ValueError, match="twice"):
        label_set(LabelsConfig(regions=["main", "main"]))


def test_a_smaller_label_set_maps_unknown_labels_to_segment():
    ls = label_set(LabelsConfig(regions=["main", "segment"]))
    regions = propose_regions(parse_boxes(classic_page()), ls)
    assert {r.label for r in regions} <= {"main", "segment"}


# --- on disk ----------------------------------------------------------------------------


def _workspace_with_page(tmp_path: Path, doc: dict) -> tuple[Workspace, str]:
    ws = Workspace(tmp_path / "ws").ensure()
    pid = "abc123"
    d = ws.page_dir(pid)
    d.mkdir(parents=True)
    (d / "page.json").write_text(json.dumps({
        "page_id": pid, "url": "http://127.0.0.1/", "final_url": "http://127.0.0.1/",
        "status": "ok", "viewport": [1000, 800], "device_pixel_ratio": 1.0,
        "width": doc["width"], "height": doc["height"]}))
    (d / "boxes.json").write_text(json.dumps(doc))
    Image.new("RGB", (doc["width"], doc["height"]), "white").save(d / "screenshot.png")
    return ws, pid


def test_preannotate_page_writes_the_contract(tmp_path):
    ws, pid = _workspace_with_page(tmp_path, classic_page())
    ann = preannotate_page(ws, pid, label_set())
    assert ann is not None
    data = json.loads(ws.preannotation_json(pid).read_text())
    again = Annotation.from_dict(data)
    assert again.meta["version"] == VERSION
    assert (again.width, again.height) == (1000, 1400)
    assert {r.label for r in again.regions} == {"header", "main", "footer"}
    assert set(again.masks) == {"text", "image", "interactive"}
    for cls, name in again.masks.items():
        assert name == f"mask_{cls}.png"
        with Image.open(ws.page_dir(pid) / name) as im:
            assert im.mode == "L" and im.size == (1000, 1400)
            assert set(np.unique(np.asarray(im))) <= {0, 255}


def test_preannotating_a_page_twice_writes_the_same_bytes(tmp_path):
    ws, pid = _workspace_with_page(tmp_path, classic_page())
    files = ["preannotation.json", "mask_text.png", "mask_image.png", "mask_interactive.png"]
    preannotate_page(ws, pid, label_set())
    first = {f: (ws.page_dir(pid) / f).read_bytes() for f in files}
    preannotate_page(ws, pid, label_set())
    second = {f: (ws.page_dir(pid) / f).read_bytes() for f in files}
    assert first == second
    assert "seconds" not in json.loads(first["preannotation.json"])["meta"]


def test_preannotate_skips_pages_without_html(tmp_path):
    ws, pid = _workspace_with_page(tmp_path, classic_page())
    meta = json.loads(ws.page_json(pid).read_text())
    meta["status"] = "not_html"
    ws.page_json(pid).write_text(json.dumps(meta))
    assert preannotate_page(ws, pid, label_set()) is None
    assert not ws.preannotation_json(pid).exists()


def test_corrupt_boxes_name_the_file(tmp_path):
    ws, pid = _workspace_with_page(tmp_path, classic_page())
    ws.boxes_json(pid).write_text("{not json")
    with pytest.raises(CorruptFile, match="boxes.json") as caught:
        preannotate_page(ws, pid, label_set())
    # Only the capture writes it: deleting it would lose the page, not have it made again.
    assert f"capture the page again (`python -m scraper check --recapture --workspace {ws.root}`)" \
        in str(caught.value)
    ws.preannotation_json(pid).write_text("{not json")
    with pytest.raises(CorruptFile, match="delete it to have it made again"):
        read_json(ws.preannotation_json(pid))


def test_box_dataclass_area():
    assert Box(0, "text", (0, 0, 3, 4)).area == 12
    assert PageBoxes(1, 1, []).by_id() == {}


def test_preannotate_settings_come_from_the_config_file(tmp_path):
    from catalog.config import ConfigError, load_config

    path = tmp_path / "pipeline.toml"
    path.write_text("[preannotate]\nmin_area = 0.2\npixels = false\n")
    cfg = load_config(path)
    assert cfg.preannotate.min_area == 0.2 and cfg.preannotate.pixels is False
    page = parse_boxes(classic_page())
    # Header and footer are smaller than a fifth of the page: no longer parts of their own.
    labels = {r.label for r in propose_regions(page, label_set(), cfg.preannotate)}
    assert "header" not in labels and "footer" not in labels
    path.write_text("[preannotate]\nmin_aera = 0.2\n")
    with pytest.raises(ConfigError, match="min_aera"):
        load_config(path)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-m", "annotate", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_preannotate_command_writes_then_skips_then_redoes(tmp_path):
    ws, pid = _workspace_with_page(tmp_path, classic_page())
    first = _run_cli("preannotate", "--workspace", str(ws.root))
    assert first.returncode == 0, first.stderr
    assert "pre-annotated 1 page(s)" in first.stderr and "ms/page" in first.stderr
    stamp = ws.preannotation_json(pid).stat().st_mtime_ns
    again = _run_cli("preannotate", "--workspace", str(ws.root))
    assert "pre-annotated 0 page(s)" in again.stderr and "skipped 1" in again.stderr
    assert ws.preannotation_json(pid).stat().st_mtime_ns == stamp
    forced = _run_cli("preannotate", "--workspace", str(ws.root), "--force", pid)
    assert forced.returncode == 0 and "pre-annotated 1 page(s)" in forced.stderr


@pytest.mark.slow
def test_preannotate_command_reports_a_bad_page_and_keeps_the_others(tmp_path):
    ws, good = _workspace_with_page(tmp_path, classic_page())
    bad = "bad000"
    shutil.copytree(ws.page_dir(good), ws.page_dir(bad))
    ws.boxes_json(bad).write_text("{broken")
    proc = _run_cli("preannotate", "--workspace", str(ws.root))
    assert proc.returncode == 1
    assert "bad000" in proc.stderr and "boxes.json" in proc.stderr
    assert ws.preannotation_json(good).exists() and not ws.preannotation_json(bad).exists()
    unknown = _run_cli("preannotate", "--workspace", str(ws.root), "nope")
    assert unknown.returncode == 2 and "error: page nope" in unknown.stderr


def test_css_background_is_an_image_only_where_nothing_is_drawn_over_it():
    boxes = [
        _box(0, "block", (0, 0, 400, 400), tag="body", depth=0),
        _box(1, "image", (0, 0, 400, 200), 0, background_image=True),  # behind a paragraph
        _box(2, "text", (10, 10, 300, 20), 0, text="over the backdrop"),
        _box(3, "image", (0, 300, 32, 32), 0, background_image=True),  # an icon
    ]
    masks = element_masks(parse_boxes({"schema": 1, "width": 400, "height": 400,
                                       "boxes": boxes}))
    assert masks["image"][100, 200] == 0
    assert masks["image"][310, 10] == 255
    assert masks["text"][15, 20] == 255


def test_a_plain_document_is_one_text_part_not_one_part_per_paragraph():
    """Paragraphs, headings and lists straight in body (a documentation page)."""
    boxes = [_box(0, "block", (0, 0, 1000, 1200), tag="body", depth=0),
             _box(1, "block", (0, 0, 1000, 120), 0, background="rgb(0, 60, 90)")]
    boxes.append(_box(2, "text", (20, 40, 200, 30), 1, text="Site"))
    nid, y = 3, 160
    for tag, h in [("h1", 40), ("p", 80), ("ul", 200), ("p", 60), ("h2", 30), ("p", 120),
                   ("pre", 150), ("p", 60)]:
        boxes.append(_box(nid, "block", (20, y, 960, h), 0, tag=tag))
        boxes.append(_box(nid + 1, "text", (20, y, 900, min(h, 20)), nid, text="words " * 30))
        nid, y = nid + 2, y + h + 16
    page = parse_boxes({"schema": 1, "width": 1000, "height": 1200, "boxes": boxes})
    regions = propose_regions(page, label_set())
    got = sorted((r.label, [round(v) for v in r.bbox]) for r in regions)
    assert got == [("header", [0, 0, 1000, 120]), ("main", [20, 160, 960, y - 16 - 160])]


def _closing_section_page() -> dict:
    """1000 x 1100: header, a first section, a last section low on the page, and under it
    one short line (the page's own small print, too small to be a segment)."""
    boxes = [_box(0, "block", (0, 0, 1000, 1100), tag="body", depth=0)]
    boxes.append(_box(1, "block", (0, 0, 1000, 120), 0, background="rgb(30, 30, 90)"))
    boxes.append(_box(2, "text", (300, 50, 200, 20), 1, text="Site name"))
    boxes.append(_box(3, "block", (0, 150, 1000, 500), 0))
    for i in range(20):
        boxes.append(_box(10 + i, "text", (20, 170 + i * 22, 900, 16), 3, text="Body text. " * 8))
    boxes.append(_box(4, "block", (0, 700, 1000, 300), 0))
    for i in range(12):
        boxes.append(_box(40 + i, "text", (20, 720 + i * 22, 900, 16), 4, text="More text. " * 8))
    boxes.append(_box(60, "text", (400, 1050, 200, 14), 0, text="This page last modified"))
    return {"schema": 1, "page_id": "p", "width": 1000, "height": 1100, "boxes": boxes}


def test_a_section_with_text_below_it_is_not_taken_for_the_footer():
    regions = propose_regions(parse_boxes(_closing_section_page()), label_set())
    low = [r for r in regions if r.bbox[1] >= 690]
    assert [round(r.bbox[1]) for r in low] == [700]
    assert low[0].label == "main"
    # Without the small print under it, the same section closes the page: a footer.
    doc = _closing_section_page()
    doc["boxes"] = [b for b in doc["boxes"] if b["id"] != 60]
    closing = [r for r in propose_regions(parse_boxes(doc), label_set()) if r.bbox[1] >= 690]
    assert closing[0].label == "footer"


def _header_with_menu_page() -> dict:
    doc = classic_page()
    boxes = doc["boxes"]
    header = next(b for b in boxes if b["bbox"] == [0, 0, 1000, 120])
    bar = _box(500, "block", (0, 90, 1000, 30), header["id"])
    boxes.append(bar)
    for i in range(5):
        link = (20 + i * 120, 96, 100, 18)
        boxes.append(_box(501 + 2 * i, "interactive", link, 500, text=f"Menu {i}"))
        boxes.append(_box(502 + 2 * i, "text", link, 500, text=f"Menu {i}"))
    return doc


def test_a_header_keeps_its_menu_bar_unless_the_setting_splits_it():
    from catalog.config import PreannotateConfig

    page = parse_boxes(_header_with_menu_page())
    kept = _by_label(propose_regions(page, label_set()))
    assert kept["header"] == [0, 0, 1000, 120] and "navigation" not in kept
    page = parse_boxes(_header_with_menu_page())
    split = _by_label(propose_regions(page, label_set(), PreannotateConfig(header_menu=True)))
    assert split["header"] == [0, 0, 1000, 90]
    assert split["navigation"] == [0, 90, 1000, 30]


def test_main_parts_that_follow_each_other_down_the_page_merge_when_asked():
    from annotate.propose.regions import merge_stacked
    from catalog.records import Region

    regions = [Region("main", [0, 100, 1000, 200], 0.4), Region("main", [40, 330, 900, 100], 0.6),
               Region("footer", [0, 900, 1000, 80], 0.7), Region("main", [0, 600, 300, 100], 0.4),
               Region("main", [700, 720, 300, 100], 0.4)]
    merged = merge_stacked(regions, "main", gap=40)
    got = [(r.label, r.bbox, r.score) for r in merged]
    # The first two are 30 px apart and share most of their width: one region. The third is
    # 170 px further down; the fourth shares no width with it.
    assert got == [("main", [0, 100, 1000, 330], 0.6), ("main", [0, 600, 300, 100], 0.4),
                   ("main", [700, 720, 300, 100], 0.4), ("footer", [0, 900, 1000, 80], 0.7)]
    assert merge_stacked(regions, "main", gap=0)[0].bbox == [0, 100, 1000, 200]
