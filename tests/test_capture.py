"""Capture against real headless Chromium: the hard cases, each on a page built for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog import Workspace
from catalog.config import CaptureConfig
from scraper import capture
from scraper.alignment import page_alignment
from scraper.browser import BrowserOptions, start_browser, stop_browser
from scraper.browser_state import state_of
from scraper.capture import (
    PageHung,
    capture_page,
    find_blank_from,
    image_boxes_from_wire,
    read_boxes_wire,
    to_image_boxes,
)
from scraper.devtools import DevToolsError, DevToolsSession, open_session
from scraper.response import NavigationLog
from tests.hard_pages import start_hard_pages

pytestmark = pytest.mark.browser
DESKTOP = (1280, 800, 1.0)


@pytest.fixture(scope="module")
def driver(chromium):
    d = start_browser(BrowserOptions(offline=True))
    yield d
    stop_browser(d)


@pytest.fixture(scope="module")
def server():
    srv, url = start_hard_pages()
    yield url
    srv.shutdown()


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws").ensure()


def pixels(ws, page_id):
    return np.asarray(Image.open(ws.screenshot(page_id)).convert("RGB"))


def boxes(ws, page_id):
    return json.loads(ws.boxes_json(page_id).read_text())["boxes"]


def test_fixed_and_sticky_headers_appear_once_at_the_top(driver, server, ws):
    page = capture_page(driver, server + "/fixed", DESKTOP, ws, CaptureConfig()).page
    px = pixels(ws, page.page_id)
    assert page.height > 6000
    red = np.all(px[:, 1100:] == [200, 0, 0], axis=-1).all(axis=1)  # right of any text
    assert red[:50].all() and not red[50:].any(), "the fixed header must be painted once, at y=0"
    header = next(b for b in boxes(ws, page.page_id) if b.get("landmark") == "header")
    assert header["bbox"] == [0, 0, 1280, 50]
    blue = np.all(px[:, 1100:] == [0, 0, 200], axis=-1).all(axis=1)
    assert blue[60:100].all() and blue.sum() == 40, "the sticky bar stays where it was at scroll 0"


def test_lazy_images_are_loaded_before_the_capture(driver, server, ws):
    page = capture_page(driver, server + "/lazy", DESKTOP, ws, CaptureConfig()).page
    px = pixels(ws, page.page_id)
    imgs = {b["dom_id"]: b for b in boxes(ws, page.page_id) if b["kind"] == "image"}
    for key, colour in (("native", [255, 0, 0]), ("scripted", [0, 255, 0])):
        x, y, w, h = imgs[key]["bbox"]
        assert (w, h) == (200, 100)
        assert (px[y + 10 : y + h - 10, x + 10 : x + w - 10] == colour).all(), key
        assert imgs[key]["loaded"]


def test_content_visibility_sections_are_painted(driver, server, ws):
    page = capture_page(driver, server + "/cv", DESKTOP, ws, CaptureConfig()).page
    texts = [b for b in boxes(ws, page.page_id) if b["kind"] == "text" and "content-visibility" in b["text"]]
    assert texts and all(b["visible"] for b in texts)
    assert texts[0]["bbox"][1] > 3000
    assert page_alignment(ws.page_dir(page.page_id)).score == 1.0


@pytest.mark.parametrize("path", ["/animated", "/animated-replace"])
def test_animations_are_captured_at_their_end(driver, server, ws, path):
    page = capture_page(driver, server + path, DESKTOP, ws, CaptureConfig()).page
    px = pixels(ws, page.page_id)
    # Below each block's line of text: the block's own colour, nothing else.
    assert (px[25:95, 5:1275] == [0, 0, 200]).all(), "the fading block is fully opaque"
    assert (px[125:195, 5:195] == [0, 150, 0]).all(), "the sliding block is in its place"
    assert (px[110:190, 210:1270] == [255, 255, 255]).all()
    slide = next(b for b in boxes(ws, page.page_id) if b["dom_id"] == "slide")
    assert slide["bbox"] == [0, 100, 200, 100] and slide["visible"]


def test_scripts_reacting_to_the_capture_resize_do_not_move_the_picture(driver, server, ws):
    page = capture_page(driver, server + "/resize", DESKTOP, ws, CaptureConfig()).page
    align = page_alignment(ws.page_dir(page.page_id))
    assert align.text_boxes >= 40 and align.score == 1.0
    px = pixels(ws, page.page_id)
    # Each row's 1 px border sits exactly at the bottom of its block box.
    rows = [b for b in boxes(ws, page.page_id) if b["kind"] == "block" and b["classes"] == "row"]
    assert len(rows) == 40
    for row in rows[::7]:
        x, y, w, h = row["bbox"]
        assert (px[y + h - 1, 5] == [136, 136, 136]).all(), row
        assert (px[y + h - 2, 5] == [255, 255, 255]).all(), row
    assert page.height == sum(r["bbox"][3] for r in rows) + sum(
        b["bbox"][3] for b in boxes(ws, page.page_id) if b["dom_id"] == "banner"
    )


def test_hidden_and_covered_elements_are_marked_not_dropped(driver, server, ws):
    page = capture_page(driver, server + "/hidden", DESKTOP, ws, CaptureConfig()).page
    texts = {b["text"]: b for b in boxes(ws, page.page_id) if b["kind"] == "text"}
    assert texts["Shown text"]["visible"]
    assert texts["Invisible text"]["hidden_reason"] == "visibility"
    assert texts["Transparent text"]["hidden_reason"] == "opacity"
    assert texts["Clipped text"]["hidden_reason"] == "clipped"
    assert texts["Covered text"]["hidden_reason"] == "covered"
    assert texts["Skip link"]["hidden_reason"] == "offpage"
    assert "Not rendered" not in texts
    w, h = page.width, page.height
    for b in boxes(ws, page.page_id):
        x, y, bw, bh = b["bbox"]
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h, b


def test_tall_page_is_cut_at_the_configured_height_and_flagged(driver, server, ws):
    cfg = CaptureConfig(max_height=5000)
    page = capture_page(driver, server + "/tall", DESKTOP, ws, cfg).page
    assert (page.width, page.height) == (1280, 5000)
    assert "truncated" in page.flags and page.page_height_css == 40000
    assert page.boxes_beyond_cap > 0
    assert all(b["bbox"][1] + b["bbox"][3] <= 5000 for b in boxes(ws, page.page_id))


def test_blank_bottom_is_found_from_text_boxes_on_uniform_pixels():
    img = np.full((1000, 200), 255, np.uint8)
    img[:600:20, 10:100] = 0  # ink on the painted part only
    texts = [
        {"kind": "text", "visible": True, "bbox": [5, y, 100, 10]} for y in range(0, 1000, 20)
    ]
    assert find_blank_from(img, texts) == 600
    img[:, 10:100:3] = 0  # everything inked: nothing blank
    assert find_blank_from(img, texts) is None


def test_boxes_are_scaled_and_clamped_into_the_image():
    raw = [
        {"kind": "text", "visible": True, "hidden_reason": "", "bbox": [10.2, 20.7, 30.1, 10]},
        {"kind": "text", "visible": True, "hidden_reason": "", "bbox": [0, 5000, 10, 10]},
        {"kind": "block", "visible": True, "hidden_reason": "", "bbox": [-5, 90, 2000, 30]},
    ]
    out, beyond = to_image_boxes(raw, 2.0, 400, 200)
    assert beyond == 1
    assert out[0]["bbox"] == [20, 41, 61, 21]
    assert out[1]["bbox"] == [0, 180, 400, 20]


def _decoded(data: dict) -> list[dict]:
    """The wire format read the plain way: one dict per row, strings and paths looked up."""
    paths: list[str] = []
    for parent, step in data["pathNodes"]:
        paths.append(step if parent < 0 else f"{paths[parent]}>{step}")
    out = []
    for row in data["rows"]:
        box = dict(zip(data["fields"], row[:-1], strict=True))
        for f in data["stringFields"]:
            box[f] = data["strings"][box[f]]
        box["path"] = paths[box["path"]] if box["path"] >= 0 else ""
        box["fixed"], box["visible"] = bool(box["fixed"]), bool(box["visible"])
        box.update(row[len(data["fields"])] or {})
        out.append(box)
    return out


def test_wire_boxes_become_the_same_image_boxes_in_one_pass(driver, server):
    driver.get(server + "/tall")
    head, _, wire = read_boxes_wire(driver, 200).partition("\n")
    # What the page says of itself: height, HTTP status, redirects, content type, address.
    assert json.loads(head) == [40000, 200, 0, "text/html", server + "/tall"]
    # A 2x image cut at 10,000 px: boxes are scaled, clamped, and those below are counted.
    fast, beyond = image_boxes_from_wire(json.loads(wire), 2.0, 2560, 10000)
    plain, plain_beyond = to_image_boxes(_decoded(json.loads(wire)), 2.0, 2560, 10000)
    assert beyond == plain_beyond > 0
    assert fast == plain and len(fast) > 100
    assert [list(b) for b in fast] == [list(b) for b in plain]  # the same keys, in order


def test_drawings_html_in_them_and_text_that_is_not_utf8(driver, server, ws):
    page = capture_page(driver, server + "/drawing", DESKTOP, ws, CaptureConfig()).page
    assert page.status == "ok"
    doc = json.loads(ws.boxes_json(page.page_id).read_bytes().decode("utf-8"))  # strict UTF-8
    found = doc["boxes"]
    svgs = {b["dom_id"] for b in found if b["tag"] == "svg" and b["kind"] == "image"}
    assert svgs == {"diagram", "form"}
    # The parts of a drawing are painted by their svg: no boxes of their own, no text runs.
    assert not [b for b in found if b["tag"] in ("rect", "text", "g", "foreignobject")]
    assert not [b for b in found if b["text"].startswith("t") and b["kind"] == "text"]
    inside = [b for b in found if b["dom_id"] == "inside" and b["kind"] == "interactive"]
    assert len(inside) == 1 and inside[0]["visible"] and inside[0]["text"] == "Inside"
    assert "svg#form" in inside[0]["path"]
    texts = {b["dom_id"] or b["path"].rsplit(">", 1)[-1]: b["text"] for b in found if b["kind"] == "text"}
    cut = next(t for t in texts.values() if t.startswith("aaa"))
    assert len(cut) == 200 and cut.endswith("\ufffd")  # an emoji cut in half
    assert "odd \ufffd text" in texts.values()
    assert page.title == "Odd \ufffd title"


def test_an_xhtml_page_gets_the_boxes_of_the_same_page_served_as_html(driver, server, ws):
    def kinds(path: str) -> list[tuple]:
        page = capture_page(driver, server + path, DESKTOP, ws, CaptureConfig()).page
        assert page.status == "ok"
        return sorted((b["kind"], b["tag"], b["path"], b["text"], b["visible"])
                      for b in boxes(ws, page.page_id))

    html, xhtml = kinds("/kinds.html"), kinds("/kinds.xhtml")
    assert xhtml == html
    found = {(k, t) for k, t, *_ in xhtml}
    assert {("landmark", t) for t in ("header", "nav", "main", "footer")} <= found
    assert sorted(t for k, t, *_ in xhtml if k == "interactive") == [
        "a", "a", "a", "button", "div", "input"]
    assert not [b for b in xhtml if "script text" in b[3]]
    assert not [b for b in xhtml if b[0] == "block" and b[1] == "a"]  # a link is no block


def test_a_hung_response_is_captured_partially_and_the_next_page_works(driver, server, ws):
    cfg = CaptureConfig(timeout=3)
    page = capture_page(driver, server + "/hang", DESKTOP, ws, cfg).page
    assert page.status == "timeout" and "timeout" in page.flags
    texts = [b["text"] for b in boxes(ws, page.page_id) if b["kind"] == "text"]
    assert "Arrived before the hang" in texts
    nxt = capture_page(driver, server + "/other", DESKTOP, ws, cfg).page
    assert nxt.status == "ok" and nxt.http_status == 200


def _live_members(pgid: int, wait: float = 3.0) -> list[int]:
    """Processes of a process group that are not dead (zombies wait for init to reap them)."""
    deadline = time.monotonic() + wait
    while True:
        live = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                live.append(int(stat.parent.name))
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.1)


@pytest.mark.parametrize("route", ["own session", "chromedriver"])
def test_a_page_that_holds_the_browser_costs_that_browser_only(chromium, server, ws, route):
    hogged = start_browser(BrowserOptions(offline=True))
    if route == "chromedriver":  # as on a Grid, where DevTools goes through the driver
        state_of(hogged).devtools_tried = True  # no socket: chromedriver relays
    pid = hogged.service.process.pid
    try:
        t = time.monotonic()
        with pytest.raises(PageHung, match="busy for more than 11 s"):
            capture_page(hogged, server + "/hog", DESKTOP, ws, CaptureConfig(image_wait=1))
        assert time.monotonic() - t < 20
    finally:
        t = time.monotonic()
        stop_browser(hogged)
        assert time.monotonic() - t < 5  # not the two minutes a quit would wait
    assert _live_members(pid) == []  # the process group is gone...
    fresh = start_browser(BrowserOptions(offline=True))
    try:  # ...and the next browser captures as ever
        assert capture_page(fresh, server + "/other", DESKTOP, ws, CaptureConfig()).page.status == "ok"
    finally:
        stop_browser(fresh)


def test_devtools_commands_go_to_the_page_directly(chromium, server, ws):
    d = start_browser(BrowserOptions(offline=True))
    try:
        session = open_session(d)
        assert session is not None
        d.get(server + "/other")
        out = session.call("Runtime.evaluate", {"expression": "document.body.innerText",
                                                "returnByValue": True})
        assert out["result"]["value"] == "Other page"
        with pytest.raises(DevToolsError, match="wasn't found"):
            session.call("Page.noSuchCommand")
        # The capture opens its own: what it writes is what the relay would have given.
        page = capture_page(d, server + "/fixed", DESKTOP, ws, CaptureConfig()).page
        assert isinstance(state_of(d).devtools, DevToolsSession) and page.status == "ok"
        relayed = start_browser(BrowserOptions(offline=True))
        state_of(relayed).devtools_tried = True
        try:
            again = capture_page(relayed, server + "/fixed", DESKTOP, Workspace(ws.root / "relayed"),
                                 CaptureConfig()).page
        finally:
            stop_browser(relayed)
        assert np.array_equal(pixels(ws, page.page_id),
                              pixels(Workspace(ws.root / "relayed"), again.page_id))
        # A crashed renderer answers nothing more: the session says so at once.
        with pytest.raises(ConnectionError, match="crashed"):
            session.call("Page.crash", timeout=10)
        os.killpg(d.service.process.pid, signal.SIGKILL)
        with pytest.raises(ConnectionError):
            session.call("Runtime.evaluate", {"expression": "1"}, timeout=10)
    finally:
        stop_browser(d)
    grid_like = type("Remote", (), {"capabilities": {}})()  # no local service: not ours
    assert open_session(grid_like) is None


def test_error_responses_and_non_html_are_recorded(driver, server, ws):
    cfg = CaptureConfig()
    missing = capture_page(driver, server + "/missing", DESKTOP, ws, cfg).page
    broken = capture_page(driver, server + "/broken", DESKTOP, ws, cfg).page
    assert (missing.status, missing.http_status) == ("http_error", 404)
    assert (broken.status, broken.http_status) == ("http_error", 500)
    assert ws.screenshot(missing.page_id).is_file()
    for path, ctype in (("/doc.pdf", "application/pdf"), ("/red.png", "image/png")):
        page = capture_page(driver, server + path, DESKTOP, ws, cfg).page
        assert (page.status, page.content_type) == ("not_html", ctype)
        assert ws.page_json(page.page_id).is_file()
        assert not ws.screenshot(page.page_id).exists()


def test_redirect_is_stored_under_the_final_url_with_its_chain(driver, server, ws):
    page = capture_page(driver, server + "/redirect", DESKTOP, ws, CaptureConfig()).page
    assert page.final_url == server + "/other"
    assert page.redirects == [server + "/redirect"]
    assert ws.page_ids() == [page.page_id]


def test_the_network_log_is_read_only_when_the_page_cannot_tell(driver, server, ws, monkeypatch):
    reads = []
    real = capture.performance_log
    monkeypatch.setattr(capture, "performance_log", lambda d: reads.append(1) or real(d))
    monkeypatch.setattr(state_of(driver), "navigation", NavigationLog())
    cfg = CaptureConfig()
    page = capture_page(driver, server + "/fixed", DESKTOP, ws, cfg).page
    assert (page.status, page.http_status, page.content_type) == ("ok", 200, "text/html")
    assert reads == []  # a 2xx HTML page at the address asked for says all of it itself
    page = capture_page(driver, server + "/redirect", DESKTOP, ws, cfg).page
    assert page.redirects == [server + "/redirect"] and len(reads) == 1
    # Asked for again, the address answers 204: the browser keeps showing the first
    # answer, which must not be filed as this one.
    first = capture_page(driver, server + "/then-no-content", DESKTOP, ws, cfg).page
    again = capture_page(driver, server + "/then-no-content", DESKTOP, ws, cfg).page
    assert (first.status, first.http_status) == ("ok", 200)
    assert (again.status, again.http_status) == ("unreachable", 204)
    # A download leaves the previous page showing, under another address...
    shown = capture_page(driver, server + "/then-no-content?later=1", DESKTOP, ws, cfg).page
    saved = capture_page(driver, server + "/download", DESKTOP, ws, cfg).page
    assert saved.status == "unreachable" and saved.final_url == server + "/download"
    # ...so that page, asked for again and answered 204, is not taken for what shows.
    again = capture_page(driver, server + "/then-no-content?later=1", DESKTOP, ws, cfg).page
    assert shown.http_status == 200 and (again.status, again.http_status) == ("unreachable", 204)
    # An address an earlier page framed: its document request in the log is the frame's.
    capture_page(driver, server + "/framing", DESKTOP, ws, cfg)
    framed = capture_page(driver, server + "/then-no-content?framed=1", DESKTOP, ws, cfg).page
    assert (framed.status, framed.http_status) == ("unreachable", 204)


def test_unreachable_site_is_recorded(driver, ws):
    page = capture_page(driver, "http://127.0.0.1:9/", DESKTOP, ws, CaptureConfig()).page
    assert page.status == "unreachable" and page.error


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "scraper", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_cli_captures_several_viewports_and_draws_the_overlay(chromium, server, tmp_path):
    ws = tmp_path / "ws"
    res = run_cli("capture", server + "/fixed", "--workspace", str(ws), "--offline",
                  "--viewport", "1280x800", "--viewport", "phone")
    assert res.returncode == 0, res.stderr
    assert "captured 2 page(s)" in res.stdout
    sizes = sorted(
        tuple(json.loads(p.read_text())[k] for k in ("width", "device_pixel_ratio"))
        for p in ws.glob("pages/*/page.json")
    )
    assert sizes == [(1170, 3.0), (1280, 1.0)]
    page_dir = next(p.parent for p in ws.glob("pages/*/page.json") if '"width": 1280' in p.read_text())
    res = run_cli("overlay", page_dir.name, "--workspace", str(ws))
    assert res.returncode == 0, res.stderr
    with Image.open(page_dir / "overlay.png") as over, Image.open(page_dir / "screenshot.png") as shot:
        assert over.size == shot.size
        assert np.asarray(over.convert("RGB")).tobytes() != np.asarray(shot.convert("RGB")).tobytes()


def test_cli_names_a_malformed_url_in_one_line(tmp_path):
    res = run_cli("capture", "http://ok.example/", "htp:/bad url", "--workspace", str(tmp_path))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "htp:/bad url" in lines[0] and lines[0].startswith("error:")
    assert not (tmp_path / "pages").exists() or not any((tmp_path / "pages").iterdir())


@pytest.mark.slow
def test_beyond_the_paint_budget_the_blank_part_is_cut_and_flagged(driver, server, ws):
    # 1280 x 140,000 px is past Chromium's ~512 MiB paint budget: the bottom comes back white.
    page = capture_page(driver, server + "/very-tall", DESKTOP, ws, CaptureConfig(max_height=200_000)).page
    assert "blank_below" in page.flags
    assert page.blank_from == page.height and 60_000 < page.height < 140_000
    align = page_alignment(ws.page_dir(page.page_id))
    assert align.score > 0.99 and align.outside == 0
