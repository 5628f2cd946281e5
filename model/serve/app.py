"""The Flask application: configuration, the model loaded once, the work queues, and the
blueprints of the page, the JSON API and the Label Studio ML backend."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .inputs import MAX_PIXELS, BadInput
from .state import Served
from .work import Busy, WorkQueue


@dataclass
class ServeConfig:
    model: Path
    allow_hosts: frozenset[str] = frozenset()
    workers: int = 1  # predictions at once; each uses `threads` torch threads
    queue: int = 4  # requests that may wait for a worker; more get 503
    timeout_s: float = 120.0  # no request waits longer for its prediction
    retry_after_s: int = 5
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = MAX_PIXELS
    threads: int = 2
    device: str = "cpu"
    scratch: Path | None = None  # workspaces of captured URLs (default: a temp folder)
    capture_timeout_s: float = 300.0
    models_dir: Path | None = None  # where fine-tuned versions go (default: beside --model)
    label_studio_url: str = field(default_factory=lambda: os.environ.get("LABEL_STUDIO_URL", ""))
    label_studio_key: str = field(
        default_factory=lambda: os.environ.get("LABEL_STUDIO_API_KEY", ""))
    document_root: str = field(default_factory=lambda: os.environ.get(
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", ""))
    finetune: dict = field(default_factory=dict)  # TrainConfig overrides of a fine-tune


def error(message: str, status: int, **headers: str):
    resp = jsonify({"error": message})
    resp.status_code = status
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def create_app(config: ServeConfig, served: Served | None = None) -> Flask:
    import torch

    torch.set_num_threads(config.threads)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_bytes
    app.config["SERVE"] = config
    app.extensions["served"] = served or Served.load(config.model, config.device)
    app.extensions["predict_queue"] = WorkQueue(config.workers, config.queue, "predict")
    app.extensions["capture_queue"] = WorkQueue(1, 2, "capture")
    if config.scratch is None:
        config.scratch = Path(tempfile.mkdtemp(prefix="model-serve-"))
    config.scratch.mkdir(parents=True, exist_ok=True)
    if config.models_dir is None:
        config.models_dir = Path(config.model).resolve().parent

    from .api import api
    from .page import page
    from .studio import studio

    app.register_blueprint(page)
    app.register_blueprint(api)
    app.register_blueprint(studio)

    @app.after_request
    def _timing(resp):
        if "spans" in g:
            resp.headers["Server-Timing"] = g.spans.header()
        return resp

    @app.errorhandler(BadInput)
    def _bad(exc: BadInput):
        return error(str(exc), exc.status)

    @app.errorhandler(Busy)
    def _busy(exc: Busy):
        return error(f"{exc}: retry in {config.retry_after_s} s", 503,
                     **{"Retry-After": str(config.retry_after_s)})

    @app.errorhandler(RequestEntityTooLarge)
    def _large(_exc):
        return error(f"the upload is over {config.max_bytes // (1024 * 1024)} MB: send a "
                     "smaller screenshot", 413)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return error(exc.description or exc.name, exc.code or 500)

    return app
