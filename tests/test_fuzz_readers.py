"""Any input to a reader gives a result or its documented error, never another exception.

Seeds and URLs (normalisation, scope, link safety, robots.txt), every reader of our JSON
files, and Label Studio's task results as pull reads them. Each error type below is the one
its reader documents, the one its callers catch to name the file and go on.
"""

from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from protego import Protego

from annotate.propose.boxes import parse_boxes
from annotate.studio.push import PageToPush, build
from annotate.studio.tasks import parse_results
from catalog.records import Annotation, Convention, PageRecord
from catalog.urls import BadURL, normalise_url, page_id
from catalog.workspace import CorruptFile, Workspace
from export.verify import verify_release
from model.network import NetConfig, SegNet
from model.store import MODEL_SCHEMA, ModelError, load_model
from scraper.scope import SCOPES, in_scope, link_allowed
from scraper.seeds import SeedError, parse_seed_line

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# JSON values of every shape, and of the shapes our files have with wrong values in them.
scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=12) \
    | st.floats(allow_nan=True, allow_infinity=True)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
anything = scalars | st.lists(scalars, max_size=5) | json_values
bbox_like = st.lists(scalars, min_size=0, max_size=6) | anything


def _with(base: dict, keys: dict) -> st.SearchStrategy:
    """`base` with any of its keys replaced by the strategies in `keys`, or removed."""
    return st.fixed_dictionaries({}, optional={k: v for k, v in keys.items()}).map(
        lambda d: {**{k: v for k, v in base.items() if k not in keys}, **d})


# -- URLs, seeds, scope ---------------------------------------------------------------------

url_texts = st.text(max_size=40) | st.builds(
    lambda scheme, host, rest: f"{scheme}{host}{rest}",
    st.sampled_from(["http://", "https://", "HTTP://", "file://", "http:/", "//", "ftp://",
                     "javascript:", "http://[", ""]),
    st.text(max_size=20), st.text(max_size=20))


@FUZZ
@given(url_texts)
def test_normalise_url_gives_a_url_or_bad_url(text: str) -> None:
    try:
        url = normalise_url(text)
    except BadURL:
        return
    assert url.startswith(("http://", "https://"))
    assert normalise_url(url) == url
    assert len(page_id(url, (1280, 800))) == 16


@FUZZ
@given(url_texts, st.sampled_from(SCOPES), st.sampled_from(["", "page", "nonsense", "host x"]))
def test_a_seed_line_gives_a_seed_or_seed_error(text: str, scope: str, tail: str) -> None:
    try:
        seed = parse_seed_line(f"{text} {tail}", scope)
    except SeedError as exc:
        assert str(exc)
        return
    if seed is not None:
        assert seed.in_scope(seed.url)


@FUZZ
@given(url_texts, st.sampled_from(SCOPES), url_texts, st.booleans())
def test_scope_and_link_safety_answer_for_any_link(seed: str, scope: str, link: str,
                                                   allow_private: bool) -> None:
    try:
        seed_url = normalise_url(seed)
    except BadURL:
        seed_url = "http://example.org/docs/"
    # Scope takes normalised URLs (its callers normalise every link first); the link check
    # also takes the raw addresses of a browser's redirect chain.
    with contextlib.suppress(BadURL):
        assert in_scope(seed_url, scope, normalise_url(link)) in (True, False)
    assert link_allowed(link, frozenset({"example.org"}), allow_private,
                        lambda host: ("10.0.0.1",)) in (True, False)


@FUZZ
@given(st.lists(st.sampled_from(["User-agent: *", "User-agent: webseg", "Disallow: /",
                                 "Disallow: /private", "Allow: /a", "Crawl-delay: 2",
                                 "Crawl-delay: x", "Sitemap: http://x/s.xml", "#c", ""])
                | st.lists(st.text(max_size=30), max_size=6), max_size=12),
       url_texts)
def test_any_robots_txt_answers_for_any_url(lines: list[str], url: str) -> None:
    # The crawl's Robots hands the body to Protego, and a body Protego cannot read to no
    # rules at all (scraper/robots.py): both answers are fine, an exception escaping is not.
    try:
        parser = Protego.parse("\n".join(lines))
    except Exception:
        return
    try:
        target = normalise_url(url)
    except BadURL:
        target = "http://example.org/a"
    assert parser.can_fetch(target, "webseg") in (True, False)


# -- our JSON files ---------------------------------------------------------------------------

BOX = {"id": 1, "kind": "text", "bbox": [1, 2, 3, 4], "text": "t", "visible": True}
BOX_TEXTS = ("kind", "tag", "role", "dom_id", "classes", "text", "color", "background",
             "landmark")
box_items = _with(BOX, {k: anything for k in (*BOX_TEXTS, "id", "parent", "z", "font_size",
                                               "font_weight", "depth", "fixed", "visible")}
                  | {"bbox": bbox_like})
boxes_docs = anything | _with({"schema": 1, "width": 100, "height": 80, "boxes": [BOX]}, {
    "schema": anything, "width": anything, "height": anything,
    "boxes": st.lists(box_items, max_size=3) | anything,
}) | st.lists(box_items, min_size=1, max_size=3).map(
    lambda boxes: {"schema": 1, "width": 100, "height": 80, "boxes": boxes})


@FUZZ
@given(boxes_docs)
def test_boxes_json_gives_boxes_or_corrupt_file(doc: object) -> None:
    try:
        page = parse_boxes(doc)  # type: ignore[arg-type]
    except CorruptFile as exc:
        assert "boxes.json" in str(exc)
        return
    assert page.width >= 0 and page.height >= 0
    ids = {b.id for b in page.boxes}
    for b in page.boxes:
        assert len(b.bbox) == 4 and all(math.isfinite(v) for v in b.bbox)
        assert all(isinstance(getattr(b, k), str) for k in BOX_TEXTS)
        assert b.parent is None or b.parent in ids


PAGE = {"page_id": "p", "url": "http://x/", "final_url": "http://x/", "status": "ok",
        "viewport": [1280, 800], "device_pixel_ratio": 1.0, "width": 10, "height": 10}
page_docs = anything | _with(PAGE, {k: anything for k in PAGE})


@FUZZ
@given(page_docs)
def test_page_json_gives_a_record_or_value_error(doc: object) -> None:
    try:
        rec = PageRecord.from_dict(doc)  # type: ignore[arg-type]
    except ValueError:
        return
    assert isinstance(rec.status, str) and isinstance(rec.width, int)
    assert isinstance(rec.flags, list)


REGION = {"label": "main", "bbox": [0, 0, 5, 5], "score": 1.0, "source": "human"}
ANNOTATION = {"schema": 1, "page_id": "p", "width": 10, "height": 10, "regions": [REGION],
              "masks": {"text": "mask_text.png"}, "meta": {}}
annotation_docs = anything | _with(ANNOTATION, {
    "schema": anything, "page_id": anything, "width": anything, "height": anything,
    "masks": anything, "meta": anything,
    "regions": st.lists(_with(REGION, {k: anything for k in REGION} | {"bbox": bbox_like}),
                        max_size=3) | anything,
})


@FUZZ
@given(annotation_docs)
def test_annotation_json_gives_an_annotation_or_value_error(doc: object) -> None:
    try:
        ann = Annotation.from_dict(doc)  # type: ignore[arg-type]
    except ValueError:
        return
    assert isinstance(ann.page_id, str) and isinstance(ann.meta, dict)
    for r in ann.regions:
        assert isinstance(r.label, str) and len(r.bbox) == 4
        assert all(math.isfinite(v) for v in r.bbox)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in ann.masks.items())


@pytest.fixture(scope="module")
def push_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("push"))


@FUZZ
@given(doc=annotation_docs)
def test_push_reads_any_preannotation_json_as_a_task_or_an_error_naming_it(
        push_ws: Workspace, doc: object) -> None:
    """push's reader of preannotation.json: a task's body, or the page's error, never an
    exception that would end the push of every other page."""
    folder = push_ws.page_dir("p")
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("L", (10, 10), 255).save(folder / "mask_text.png")
    (folder / "preannotation.json").write_text(json.dumps(doc))
    built = build(PageToPush("p", "https://example.org/", 10, 10), push_ws, "/data/x", "d")
    if built.error:
        assert "\n" not in built.error
        return
    task = json.loads(built.body)
    assert task["data"]["page_id"] == "p" and len(task["predictions"]) == 1


CONVENTION = {"schema": 1, "version": "c0001", "granularity": 0.5, "header_menu": True,
              "label_map": {"main": "story"}, "pages": [{"page_id": "p", "sha256": "0"}],
              "left_out": [], "figures": {}}
convention_docs = anything | _with(CONVENTION, {k: anything for k in CONVENTION})


@FUZZ
@given(convention_docs)
def test_a_convention_gives_a_convention_or_value_error(doc: object) -> None:
    try:
        c = Convention.from_dict(doc)  # type: ignore[arg-type]
    except ValueError:
        return
    assert isinstance(c.version, str) and math.isfinite(c.granularity)
    assert isinstance(c.header_menu, bool)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in c.label_map.items())


# -- Label Studio's results -------------------------------------------------------------------

RECT = {"type": "rectanglelabels", "original_width": 10, "original_height": 10,
        "value": {"x": 10, "y": 10, "width": 50, "height": 50, "rectanglelabels": ["main"]}}
BRUSH = {"type": "brushlabels", "original_width": 4, "original_height": 3,
         "value": {"format": "rle", "rle": [0, 0, 0, 12], "brushlabels": ["text"]}}
result_items = (
    _with(RECT, {"type": anything, "original_width": anything, "original_height": anything,
                 "value": _with(RECT["value"], {k: anything for k in RECT["value"]})
                 | anything})
    | _with(BRUSH, {"original_width": anything, "original_height": anything,
                    "value": _with(BRUSH["value"], {"rle": st.lists(st.integers(-5, 300),
                                                                    max_size=40) | anything,
                                                    "brushlabels": anything, "format": anything})
                    | anything})
    | anything)


@FUZZ
@given(st.lists(result_items, max_size=4) | anything, st.integers(0, 20), st.integers(0, 20))
def test_task_results_give_an_annotation_or_value_error(results: object, width: int,
                                                        height: int) -> None:
    try:
        pulled = parse_results(results, width, height)  # type: ignore[arg-type]
    except ValueError:
        return
    for r in pulled.regions:
        assert isinstance(r["label"], str) and all(math.isfinite(v) for v in r["bbox"])
    for label, mask in pulled.masks.items():
        assert isinstance(label, str) and mask.dtype == np.uint8


# -- the model stage's card and a release's classes.json -------------------------------------

TINY = NetConfig(stem=4, widths=(4, 4, 4, 4), blocks=(1, 1, 1, 1), decoder=(4, 4, 4, 4),
                 full_res=4)
CARD = {"schema": MODEL_SCHEMA, "network": TINY.to_json(),
        "input": {"working_width": 64, "normalise": {"mean": [0.9] * 3, "std": [0.25] * 3},
                  "windowing": {"window": 256, "margin": 32}},
        "heads": {"elements": ["background", "text", "image", "interactive"],
                  "regions": ["background", "header", "navigation", "main", "sidebar",
                              "footer", "advertisement", "segment"]}}
small_ints = st.integers(-3, 8) | st.lists(st.integers(-3, 8), max_size=5)
# The network's sizes stay small: a damaged card must not make the loader build a network
# of a billion weights before it finds out.
network_docs = _with(CARD["network"], {k: small_ints | scalars for k in CARD["network"]}) \
    | scalars
input_docs = _with(CARD["input"], {"working_width": anything, "normalise": anything,
                                   "windowing": anything}) | anything
card_docs = _with(CARD, {"schema": anything, "network": network_docs, "input": input_docs,
                         "heads": anything}) | anything


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> bytes:
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("tiny") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in SegNet(TINY).state_dict().items()}, str(path))
    return path.read_bytes()


def test_the_tiny_card_loads(tmp_path, tiny_weights) -> None:
    (tmp_path / "model.safetensors").write_bytes(tiny_weights)
    (tmp_path / "model.json").write_text(json.dumps(CARD))
    assert load_model(tmp_path).working_width == 64


@FUZZ
@given(card_docs)
def test_a_model_card_gives_a_model_or_model_error(tmp_path_factory, tiny_weights,
                                                    doc: object) -> None:
    folder = tmp_path_factory.mktemp("m")
    (folder / "model.safetensors").write_bytes(tiny_weights)
    (folder / "model.json").write_text(json.dumps(doc))
    with contextlib.suppress(ModelError):
        model = load_model(folder)
        assert model.working_width > 0 and model.element_names


classes_docs = _with({"schema": 1, "classes": [
    {"id": 0, "name": "background", "kind": "background", "color": "#000000"}]},
    {"classes": st.lists(_with({"id": 1, "name": "text", "kind": "element",
                                "color": "#ffe119"},
                               {"name": anything, "kind": anything, "color": anything})
                         | anything, max_size=3) | anything}) | anything


@FUZZ
@given(classes_docs)
def test_verify_reports_any_classes_json_as_a_finding(tmp_path_factory, doc: object) -> None:
    rel = tmp_path_factory.mktemp("rel")
    (rel / "classes.json").write_text(json.dumps(doc))
    (rel / "SHA256SUMS").write_text("")
    report = verify_release(rel)  # a report, never an exception
    shaped = isinstance(doc, dict) and isinstance(doc.get("classes"), list)
    if not shaped:
        assert any("classes.json" in p for p in report.problems), report.problems
