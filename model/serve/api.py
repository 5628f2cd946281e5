"""The JSON API: /health, the classes and their colours, /api/segment for an uploaded
screenshot and /api/capture for a URL (captured and DOM-pre-annotated by the pipeline's own
commands, in subprocesses, into a scratch workspace)."""

from __future__ import annotations

import concurrent.futures
import json
import re
import secrets
import shutil
import time
from pathlib import Path

import numpy as np
from flask import Blueprint, current_app, g, jsonify, request, send_file
from PIL import Image

from .app import error
from .capture import capture_page
from .inputs import BadInput, check_url, open_image
from .segment import answer, legend
from .timing import Spans

api = Blueprint("api", __name__)
TOKEN_RE = re.compile(r"^[0-9a-f]{16}$")


def spans() -> Spans:
    """This request's Server-Timing parts."""
    if "spans" not in g:
        g.spans = Spans()
    return g.spans


def queued(queue: str, fn, *args, timeout: float, span: str | None = None):
    """Run `fn` on a worker of `queue`; a 504 when it is not done within `timeout`.
    The time before a worker took it (and after, until this thread woke) is the span
    `wait`; its run time is `span` when given (else `fn` times its own parts)."""
    ran: list[float] = []

    def timed(*a):
        t0 = time.perf_counter()
        try:
            return fn(*a)
        finally:
            ran.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    fut = current_app.extensions[queue].submit(timed, *args)
    try:
        return fut.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        fut.cancel()  # still waiting in the queue: it never runs
        raise BadInput(f"no answer within {timeout:.0f} s: the server is busy, try again "
                       "later", 504) from None
    finally:
        if ran and span:
            spans().add(span, ran[0])
        spans().add("wait", time.perf_counter() - t0 - sum(ran))


def predict_json(im: Image.Image, page_id: str) -> dict:
    """The API's answer for an image from `open_image`, made on a prediction worker."""
    model = current_app.extensions["served"].current()
    cfg = current_app.config["SERVE"]
    return queued("predict_queue", answer, model, im, page_id, spans(), timeout=cfg.timeout_s)


@api.get("/health")
def health():
    return jsonify(current_app.extensions["served"].health())


@api.get("/api/classes")
def classes():
    model = current_app.extensions["served"].current()
    return jsonify({"model_version": model.version, "classes": legend(model)})


def _upload_bytes() -> bytes:
    """The image of a multipart form (the page sends field `image`), else the body itself,
    whatever its content type says: read from the stream Flask bounds by the size limit,
    never through form parsing (curl's --data-binary calls a PNG a url-encoded form)."""
    if request.mimetype == "multipart/form-data":
        f = request.files.get("image") or next(iter(request.files.values()), None)
        return f.read() if f else b""
    stream, size = request.stream, request.content_length
    if not size:  # chunked: the stream still stops at the size limit
        return stream.read()
    # At once into one buffer: read() alone goes 64 KiB at a time and copies each twice
    # (2 ms of a 3.6 MB upload against 0.1 ms).
    data = stream.read(size)
    return data + stream.read() if len(data) < size else data


@api.post("/api/segment")
def segment_upload():
    cfg = current_app.config["SERVE"]
    with spans().span("read"):
        # Only the header is read here: a bomb or a file that is no image is refused
        # before it takes a place in the queue.
        im = open_image(_upload_bytes(), cfg.max_pixels)
    out = predict_json(im, request.args.get("page_id", "upload"))
    with spans().span("json"):
        return jsonify(out)


@api.post("/api/capture")
def capture_url():
    cfg = current_app.config["SERVE"]
    body = request.get_json(silent=True) or {}
    url = check_url(body.get("url") or request.form.get("url", ""), cfg.allow_hosts)
    token = secrets.token_hex(8)
    _prune(cfg.scratch)
    page = queued("capture_queue", capture_page, url, cfg.scratch / token,
                  cfg.capture_timeout_s, timeout=cfg.capture_timeout_s * 2 + 30,
                  span="capture")
    im = open_image(page.screenshot.read_bytes(), cfg.max_pixels)
    width, height = im.size
    model = predict_json(im, page.page_id)
    return jsonify({"url": url, "page_id": page.page_id, "capture": token,
                    "image": f"/api/captures/{token}/screenshot.png",
                    "width": width, "height": height,
                    "model": model, "dom": _dom_json(page.preannotation)})


KEEP_CAPTURES = 20


def _prune(scratch: Path) -> None:
    """Keep the newest captures only: the page shows one at a time."""
    old = sorted((p for p in scratch.iterdir() if TOKEN_RE.match(p.name)),
                 key=lambda p: p.stat().st_mtime)
    for p in old[:-KEEP_CAPTURES] if len(old) > KEEP_CAPTURES else []:
        shutil.rmtree(p, ignore_errors=True)


def _dom_json(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    from .encode import coco_rle

    record = json.loads(path.read_text(encoding="utf-8"))
    masks = {}
    for name, file in (record.get("masks") or {}).items():
        with Image.open(path.parent / file) as im:
            masks[name] = coco_rle(np.asarray(im.convert("L")))
    return {**record, "masks": masks}


@api.get("/api/captures/<token>/screenshot.png")
def captured_screenshot(token: str):
    cfg = current_app.config["SERVE"]
    if not TOKEN_RE.match(token):
        return error("no such capture", 404)
    found = sorted((cfg.scratch / token).glob("pages/*/screenshot.png"))
    if not found:
        return error("no such capture", 404)
    return send_file(found[0], mimetype="image/png")
