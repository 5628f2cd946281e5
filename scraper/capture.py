"""Capture one page: a true full-page screenshot and the DOM boxes, pixel for pixel aligned.

The order of steps is the recipe measured to keep screenshot and boxes in agreement:
load -> readyState -> scroll to the top (fixed elements paint at the scroll offset) ->
prepare (no animations, content-visibility painted, lazy images decoded) -> boxes in one
script, with the page's own account of its navigation -> scripts disabled -> DevTools
screenshot beyond the viewport -> scripts enabled.
Disabling scripts matters: the screenshot's internal resize would otherwise fire the
page's resize handlers and the picture would no longer match the boxes. The network
log is read only when the page cannot tell its status itself (see response.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pybase64
import urllib3
import websocket
from selenium.common.exceptions import (
    InvalidSessionIdException,
    JavascriptException,
    NoSuchWindowException,
    TimeoutException,
    WebDriverException,
)

from catalog.config import CaptureConfig
from catalog.images import MAX_PIXELS, open_bounded
from catalog.records import BOXES_SCHEMA, PageRecord
from catalog.urls import BadURL, normalise_url, page_id
from catalog.workspace import Workspace

from .browser import CAPTURE_CSS, performance_log, set_command_timeout
from .browser_state import state_of
from .cdp import cdp
from .devtools import COMMAND_TIMEOUT, DevToolsSession, DevToolsTimeout, open_session
from .response import (
    HTML_TYPES,
    moved_to,
    parse_document_response,
    usual_response,
)
from .retry import parse_retry_after

# Seconds a capture script may run beyond the image wait: reading the boxes of a very
# large page takes a few seconds; a page that holds its main thread longer is hung.
SCRIPT_GRACE = 10.0

_JS_DIR = Path(__file__).with_name("js")
_JS = {name: (_JS_DIR / f"{name}.js").read_text(encoding="utf-8") for name in ("boxes", "prepare")}
# The wire format: a head line, JSON [document height, HTTP status, redirect count, content
# type, address] as the page itself saw its navigation, then the boxes as one JSON string
# (thousands of boxes cross the WebDriver wire faster as a string than as objects).
_HEAD = (
    "const __head = function(b) { const n = performance.getEntriesByType('navigation')[0] || {};"
    "  return JSON.stringify([b.docHeight, n.responseStatus || 0, n.redirectCount || 0,"
    "    document.contentType || '', location.href]) + '\\n' + JSON.stringify(b); };"
)
# The boxes as they are, without preparing the page (`read_boxes_wire`).
_JS["read"] = _HEAD + "return __head((function(){" + _JS["boxes"] + "}).apply(null, arguments));"
# One round trip does it all: prepare, wait, then read the boxes.
_JS["prepare_and_read"] = (
    _HEAD + "const __opts = arguments[0], __done = arguments[arguments.length - 1];"
    # A PDF, an image or a feed is not captured: its head alone, without the costly read.
    "if (!" + json.dumps(HTML_TYPES) + ".some((t) =>"
    "    (document.contentType || '').toLowerCase().startsWith(t))) {"
    "  __done(__head({docHeight: 0})); return; }"
    "const __read = function() {" + _JS["boxes"] + "};"
    "(function() {" + _JS["prepare"] + "}).call(null, __opts, function() {"
    "  try { __done(__head(__read.call(null, __opts))); }"
    "  catch (e) { __done('error ' + String(e && e.stack || e)); } });"
)

DEAD_BROWSER_HINTS = (
    "invalid session id",
    "chrome not reachable",
    "disconnected",
    "session deleted",
    "no such session",
    "target window already closed",
    "tab crashed",
    "unable to receive message from renderer",
    "connection refused",
    "failed to establish a new connection",
    "max retries exceeded",
    "connection aborted",
    # A Grid's answer for a session on a node it can no longer reach (the node died).
    "unable to execute request for an existing session",
)


class BrowserDied(RuntimeError):
    """The WebDriver session is gone; the caller restarts the browser and retries the page."""


class PageHung(RuntimeError):
    """The page's scripts held the browser past the capture's wait; the browser is lost."""


@dataclass
class CaptureResult:
    page: PageRecord
    links: list[str] = field(default_factory=list)
    n_boxes: int = 0


def is_dead(exc: BaseException) -> bool:
    if isinstance(exc, (InvalidSessionIdException, NoSuchWindowException)):
        return True
    text = str(exc).lower()
    return any(hint in text for hint in DEAD_BROWSER_HINTS)


def _guard(fn, *args: Any) -> Any:
    """Call into the browser, turning a dead session into BrowserDied."""
    try:
        return fn(*args)
    except (OSError, WebDriverException) as exc:
        if isinstance(exc, OSError) or is_dead(exc):
            raise BrowserDied(f"browser died: {str(exc).splitlines()[0][:200]}") from exc
        raise


def set_viewport(driver: Any, width: int, height: int, dpr: float) -> None:
    """An exact viewport: --window-size only sets the window, not the layout viewport."""
    key = (width, height, dpr)
    state = state_of(driver)
    if state.viewport == key:
        return
    # In the session that takes the screenshots: the capture beyond the viewport sizes
    # the page from its own session's metrics.
    _command(driver, "Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": dpr, "mobile": dpr > 1 and width < 1024})
    state.viewport = key


def _session(driver: Any) -> DevToolsSession | None:
    """The page's own DevTools session (local, or through a Grid's hub), opened on first
    use; else None."""
    state = state_of(driver)
    if not state.devtools_tried:
        state.devtools = _guard(_open_or_none, driver)  # raising: tried again next time
        state.devtools_tried = True
    return state.devtools


def _open_or_none(driver: Any) -> DevToolsSession | None:
    try:
        return open_session(driver, _top_frame(driver))
    except (OSError, ValueError, websocket.WebSocketException):
        return None  # chromedriver relays the same commands, only slower


def _command(driver: Any, method: str, params: dict[str, Any],
             timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
    """A DevTools command, on the page's own session when there is one.

    No answer in `timeout` s means the browser is stuck: it is marked to be killed.
    """
    state = state_of(driver)
    if state.hung:
        raise PageHung("the browser is stuck in an earlier command")
    session = _session(driver)
    try:
        if session is not None:
            return _guard(session.call, method, params, timeout)
        # Through chromedriver, the HTTP request is what can time out.
        previous = set_command_timeout(driver, timeout)
        try:
            return _guard(cdp, driver, method, params)
        finally:
            set_command_timeout(driver, previous)
    except (DevToolsTimeout, urllib3.exceptions.TimeoutError) as exc:
        state.hung = True
        raise PageHung(f"the page kept the browser busy for more than {timeout:.0f} s") from exc


def image_boxes_from_wire(
    data: dict[str, Any], scale: float, width: int, height: int
) -> tuple[list[dict[str, Any]], int]:
    """The box extractor's compact wire format (see js/boxes.js) -> integer image-pixel boxes.

    The same boxes as `to_image_boxes` of the decoded CSS-pixel boxes, made in one pass:
    thousands of boxes a page, each built once.
    """
    strings, nodes = data["strings"], data["pathNodes"]
    paths: list[str] = []
    for parent, step in nodes:  # parents always come before their children
        paths.append(step if parent < 0 else f"{paths[parent]}>{step}")
    fields = data["fields"]
    n_fields = len(fields)
    string_fields = set(data["stringFields"])
    string_at = [i for i, f in enumerate(fields) if f in string_fields]
    path_at, bbox_at = fields.index("path"), fields.index("bbox")
    fixed_at, visible_at = fields.index("fixed"), fields.index("visible")
    reason_at = fields.index("hidden_reason")
    out, beyond = [], 0
    for row in data["rows"]:
        below, bbox = _image_bbox(row[bbox_at], scale, width, height)
        if below and strings[row[reason_at]] != "offpage":
            beyond += 1
            continue
        for i in string_at:
            row[i] = strings[row[i]]
        row[path_at] = paths[row[path_at]] if row[path_at] >= 0 else ""
        row[bbox_at] = bbox
        row[fixed_at], row[visible_at] = bool(row[fixed_at]), bool(row[visible_at])
        box = dict(zip(fields, row[:n_fields], strict=True))
        if box["visible"] and (bbox[2] < 1 or bbox[3] < 1):
            box["visible"], box["hidden_reason"] = False, "offpage"
        if row[n_fields]:
            box.update(row[n_fields])
        out.append(box)
    return out, beyond


def _png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def to_image_boxes(raw: list[dict[str, Any]], dpr: float, width: int, height: int) -> tuple[list[dict[str, Any]], int]:
    """CSS-pixel document boxes -> integer image-pixel boxes inside the image.

    Boxes wholly below the image (the page was cut at the height cap) are dropped and
    counted; every other box is clamped into the image, hidden ones included.
    """
    out, beyond = [], 0
    for box in raw:
        below, bbox = _image_bbox(box["bbox"], dpr, width, height)
        if below and box.get("hidden_reason") != "offpage":
            beyond += 1
            continue
        b = dict(box)
        b["bbox"] = bbox
        if b["visible"] and (bbox[2] < 1 or bbox[3] < 1):
            b["visible"], b["hidden_reason"] = False, "offpage"
        out.append(b)
    return out, beyond


def _image_bbox(css: list[float], scale: float, width: int, height: int) -> tuple[bool, list[int]]:
    """Whether a CSS-pixel box starts below the image, and its image-pixel box clamped into it."""
    x, y, w, h = css
    x0, y0 = math.floor(x * scale), math.floor(y * scale)
    x1, y1 = math.ceil((x + w) * scale), math.ceil((y + h) * scale)
    cx0, cy0 = min(max(x0, 0), width), min(max(y0, 0), height)
    cx1, cy1 = min(max(x1, 0), width), min(max(y1, 0), height)
    return y0 >= height, [cx0, cy0, cx1 - cx0, cy1 - cy0]


def find_blank_from(pixels: np.ndarray, boxes: list[dict[str, Any]], min_run: int = 3) -> int | None:
    """The image row below which text boxes sit on uniform pixels: an unpainted capture.

    Chromium stops painting beyond its budget (about 512 MiB of pixels) yet returns an
    image of the right size. Ink under a text box is the test: if the text boxes at the
    bottom of the page all land on uniform pixels, the picture is blank from the first.
    """
    texts = sorted(
        (b for b in boxes if b["kind"] == "text" and b["visible"] and b["bbox"][2] >= 2 and b["bbox"][3] >= 2),
        key=lambda b: b["bbox"][1],
    )
    if not texts:
        return None
    uniform = []
    for b in texts:
        x, y, w, h = b["bbox"]
        patch = pixels[y : y + h, x : x + w]
        uniform.append(patch.size == 0 or int(patch.max()) == int(patch.min()))
    # Trailing run of uniform text boxes, tolerant of a few inked stragglers.
    inked_after, start = 0, None
    for i in range(len(texts) - 1, -1, -1):
        if uniform[i]:
            start = i
        else:
            inked_after += 1
            if inked_after > max(2, (len(texts) - i) // 20):
                break
    if start is None:
        return None
    run = texts[start:]
    if sum(uniform[start:]) < min_run or sum(uniform[start:]) < 0.9 * len(run):
        return None
    return int(run[0]["bbox"][1])


def _set_timeouts(driver: Any, cfg: CaptureConfig) -> None:
    key = (cfg.timeout, cfg.image_wait)
    state = state_of(driver)
    if state.timeouts == key:
        return
    driver.set_page_load_timeout(cfg.timeout)
    driver.set_script_timeout(cfg.image_wait + SCRIPT_GRACE)
    if getattr(driver, "service", None) is None:
        # A Grid's browser: the HTTP wait outlasts the browser's own limits, so that a
        # slow page ends in the browser's timeout, and a dead node's silence still ends.
        set_command_timeout(driver, max(COMMAND_TIMEOUT, cfg.timeout + SCRIPT_GRACE,
                                        cfg.image_wait + 2 * SCRIPT_GRACE))
    state.timeouts = key


@dataclass
class Grab:
    """What the browser handed over for one page, not yet parsed or written.

    Taking it is the browser's work; finishing it (`finish_capture`) is Python's, and can
    run while the browser already loads the next page.
    """

    record: PageRecord
    timings: dict[str, float]
    t0: float
    viewport_width: int
    boxes_json: str = ""  # the box extractor's result, as it came over the wire
    screenshot_b64: str = ""  # DevTools' base64 PNG


def capture_page(
    driver: Any,
    url: str,
    viewport: tuple[int, int, float],
    ws: Workspace,
    cfg: CaptureConfig,
    *,
    crawl_id: str = "",
    depth: int = 0,
    before_navigate: Callable[[], None] | None = None,
) -> CaptureResult:
    """Load `url` at `viewport` and write its page directory; see the module docstring.

    `before_navigate` is called right before the request leaves (politeness timing).
    """
    grab = grab_page(driver, url, viewport, cfg, crawl_id=crawl_id, depth=depth,
                     before_navigate=before_navigate)
    return finish_capture(grab, ws, cfg)


def grab_page(
    driver: Any,
    url: str,
    viewport: tuple[int, int, float],
    cfg: CaptureConfig,
    *,
    crawl_id: str = "",
    depth: int = 0,
    before_navigate: Callable[[], None] | None = None,
) -> Grab:
    """The part of a capture that needs the browser: load, boxes, screenshot."""
    requested = normalise_url(url)
    vw, vh, dpr = viewport
    timings: dict[str, float] = {}
    flags: list[str] = []
    t0 = time.monotonic()
    _guard(set_viewport, driver, vw, vh, dpr)
    _guard(_set_timeouts, driver, cfg)
    log = state_of(driver).navigation
    must_read = log.before_navigate(requested, lambda: _guard(performance_log, driver))
    if before_navigate is not None:
        before_navigate()
    error = ""
    try:
        _guard(driver.get, requested)
    except TimeoutException:
        flags.append("timeout")
        with contextlib.suppress(TimeoutException, JavascriptException):
            _guard(driver.execute_script, "window.stop()")
    except WebDriverException as exc:
        error = str(exc).splitlines()[0][:300]
    timings["load"] = time.monotonic() - t0

    # A page that loaded is read at once: what it says about its own navigation spares
    # the network log for the usual 2xx HTML page at the address asked for.
    head: list[Any] | None = None
    boxes_json = ""
    if not flags and not error:
        head, boxes_json = _read_page(driver, cfg, timings, requested)
    usual = None if head is None or must_read else usual_response(head, requested)
    resp = usual or parse_document_response(
        _guard(performance_log, driver), requested, _top_frame(driver))
    log.after(requested, head[4] if head else None, read=usual is None)
    record = PageRecord(
        page_id="",
        url=url,
        final_url=requested,
        status="ok",
        viewport=[vw, vh],
        device_pixel_ratio=dpr,
        http_status=resp.status,
        content_type=resp.content_type,
        redirects=resp.redirects,
        crawl_id=crawl_id,
        depth=depth,
        captured_at=time.time(),
        flags=flags,
    )
    record.retry_after = parse_retry_after(resp.headers.get("retry-after"))
    # The network log, not the browser's address bar: a navigation that never committed
    # leaves the previous page showing, and its result must not be filed over that page.
    if resp.url.startswith("http"):
        with contextlib.suppress(BadURL):
            record.final_url = normalise_url(resp.url)
    record.page_id = page_id(record.final_url, (vw, vh), dpr)
    grab = Grab(record, timings, t0, vw)

    timed_out = "timeout" in flags
    if timed_out and resp.status is None:
        record.status, record.error = "timeout", "no response before the timeout"
        return grab
    if not timed_out and (error or resp.error or resp.status is None):
        record.status = "unreachable"
        record.error = error or resp.error or "no response"
        return grab
    if resp.content_type and not resp.content_type.startswith(HTML_TYPES):
        record.status = "not_html"
        return grab
    if timed_out:
        record.status = "timeout"
        head, boxes_json = _read_page(driver, cfg, timings, requested)
    elif resp.status is not None and resp.status >= 400:
        record.status = "http_error"

    assert head is not None
    grab.boxes_json = boxes_json
    record.page_height_css = int(math.ceil(float(head[0])))
    height_css = min(record.page_height_css, cfg.max_height)
    if record.page_height_css > cfg.max_height:
        flags.append("truncated")

    t = time.monotonic()
    grab.screenshot_b64 = _screenshot(driver, vw, max(height_css, 1), cfg.optimize_for_speed)
    timings["screenshot"] = time.monotonic() - t
    # A meta refresh or a script may have taken the browser elsewhere while it was read:
    # the page is filed where the captured document is, so the crawl checks that address.
    for address in (head[4], _guard(lambda: driver.current_url)):
        moved = moved_to(record.final_url, address)
        if moved is not None:
            record.redirects.append(record.final_url)
            record.final_url = moved
            record.page_id = page_id(moved, (vw, vh), dpr)
            flags.append("client_redirect")
    return grab


def _top_frame(driver: Any) -> str | None:
    """The page target's id, which is its top frame's: chromedriver's window handle."""
    state = state_of(driver)
    if state.top_frame is None:
        state.top_frame = _guard(lambda: driver.current_window_handle)
    return state.top_frame


def _read_page(
    driver: Any, cfg: CaptureConfig, timings: dict[str, float], requested: str
) -> tuple[list[Any], str]:
    """Prepare the page and read its boxes: (the wire head, the boxes' JSON, unparsed)."""
    t = time.monotonic()
    opts = {"waitMs": int(cfg.image_wait * 1000), "maxText": cfg.text_max_chars, "css": CAPTURE_CSS}
    raw = _evaluate(driver, _JS["prepare_and_read"], opts, cfg.image_wait + SCRIPT_GRACE)
    timings["boxes"] = time.monotonic() - t
    if raw.startswith("error "):
        raise RuntimeError(f"box extraction failed on {requested}: {raw[6:306]}")
    # The head sizes the screenshot now; the boxes are parsed later, off the browser's time.
    head, _, boxes_json = raw.partition("\n")
    return orjson.loads(head), boxes_json


def _evaluate(driver: Any, script: str, arg: dict[str, Any], timeout: float) -> str:
    """An asynchronous WebDriver-style script, run as one DevTools Runtime.evaluate.

    DevTools has no script timeout, so the wait for the answer has one (see `_command`).
    """
    # An async function's promise is the engine's own, whatever the page did to `Promise`.
    expression = (
        "(async () => await new Promise((__resolve) => { (function() {" + script
        + "}).call(null, " + json.dumps(arg) + ", __resolve); }))()"
    )
    out = _command(driver, "Runtime.evaluate",
                   {"expression": expression, "awaitPromise": True, "returnByValue": True}, timeout)
    if "exceptionDetails" in out:
        details = out["exceptionDetails"]
        text = (details.get("exception") or {}).get("description") or details.get("text", "")
        raise RuntimeError(f"the capture script failed: {str(text).splitlines()[0][:300]}")
    return out["result"]["value"]


def read_boxes_wire(driver: Any, max_text: int) -> str:
    """The page's boxes as they are now: the head line, a newline, the wire-format JSON."""
    return driver.execute_script(_JS["read"], {"maxText": max_text})


def finish_capture(grab: Grab, ws: Workspace, cfg: CaptureConfig) -> CaptureResult:
    """Parse what the browser handed over and write the page directory."""
    record, timings = grab.record, grab.timings
    if not grab.screenshot_b64:
        return _write(ws, record, None, [], timings, grab.t0)
    t = time.monotonic()
    data = orjson.loads(grab.boxes_json)
    record.title = (data.get("title") or "")[:300]
    png = pybase64.b64decode(grab.screenshot_b64, validate=True)
    width, height = _png_size(png)
    scale = width / grab.viewport_width  # the real ratio of image to CSS pixels
    boxes, beyond = image_boxes_from_wire(data, scale, width, height)
    record.boxes_beyond_cap = beyond

    if width * height >= cfg.blank_check_pixels:
        # Our own screenshot, bounded by the largest a capture makes (a tall one is above
        # Pillow's default limit) here only: the process keeps Pillow's limit for any other
        # image it opens.
        image = open_bounded(io.BytesIO(png), MAX_PIXELS, formats=("PNG",))
        blank_from = find_blank_from(np.asarray(image.convert("L")), boxes)
        if blank_from is not None:
            # Keep only what was painted, and say so, rather than a silent half-white image.
            record.flags.append("blank_below")
            record.blank_from = blank_from
            buf = io.BytesIO()
            image.crop((0, 0, width, blank_from)).save(buf, "PNG", compress_level=1)
            png = buf.getvalue()
            width, height = _png_size(png)
            boxes, _ = to_image_boxes(
                [dict(b, bbox=[v / scale for v in b["bbox"]]) for b in boxes], scale, width, height
            )
    record.width, record.height = width, height
    timings["parse"] = time.monotonic() - t
    links = [link for link in data.get("links", []) if link.startswith(("http://", "https://"))]
    return _write(ws, record, png, boxes, timings, grab.t0, links)


def _screenshot(driver: Any, width: int, height: int, fast: bool) -> str:
    """The full page as DevTools' base64 PNG, taken with the page's scripts switched off."""
    params: dict[str, Any] = {
        "format": "png",
        "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    }
    if fast:
        params["optimizeForSpeed"] = True
    # One after the other, each answered first: the screenshot is the browser process's
    # work, the switch the page's, and the two are not ordered between them otherwise.
    off, on = {"value": True}, {"value": False}
    _command(driver, "Emulation.setScriptExecutionDisabled", off)
    try:
        return _command(driver, "Page.captureScreenshot", params)["data"]
    finally:
        if not state_of(driver).hung:  # a stuck browser is not asked again
            _command(driver, "Emulation.setScriptExecutionDisabled", on)


def _write(
    ws: Workspace,
    record: PageRecord,
    png: bytes | None,
    boxes: list[dict[str, Any]],
    timings: dict[str, float],
    t0: float,
    links: list[str] | None = None,
) -> CaptureResult:
    t = time.monotonic()
    with ws.new_page_dir(record.page_id) as tmp:
        if png is not None:
            (tmp / "screenshot.png").write_bytes(png)
            doc = {
                "schema": BOXES_SCHEMA,
                "page_id": record.page_id,
                "width": record.width,
                "height": record.height,
                "dpr": record.device_pixel_ratio,
                "boxes": boxes,
            }
            (tmp / "boxes.json").write_bytes(orjson.dumps(doc))
        timings["write"] = time.monotonic() - t
        timings["total"] = time.monotonic() - t0
        record.timings.update({k: round(v, 4) for k, v in timings.items()})
        (tmp / "page.json").write_text(json.dumps(record.to_dict(), indent=1, ensure_ascii=False))
    return CaptureResult(record, links or [], len(boxes))
