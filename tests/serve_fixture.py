"""A tiny model trained in the test session, and the serve app run by waitress on a free
loopback port in a thread (as `python -m model serve` runs it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from model.release import open_release
from model.serve import ServeConfig, create_app
from model.serve.cli import waitress_options
from model.train import Run, train

from .test_model_train import tiny


@pytest.fixture(scope="session")
def serve_release(tmp_path_factory) -> Path:
    from .test_model_train import button_pages, release_of

    return release_of(tmp_path_factory.mktemp("serve-ws"), button_pages, 8)


@pytest.fixture(scope="session")
def serve_model(serve_release, tmp_path_factory) -> Path:
    """m0001 of a models folder of its own: a fine-tune writes m0002 beside it."""
    models = tmp_path_factory.mktemp("serve-models")
    return train(tiny(epochs=6), Run(open_release(serve_release), models, log=lambda _: None))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Live:
    def __init__(self, app, url: str, server):
        self.app, self.url, self.server = app, url, server

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=kw.pop("timeout", 120), **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=kw.pop("timeout", 120), **kw)


def run_live(config: ServeConfig) -> Iterator[Live]:
    from waitress.server import create_server

    app = create_app(config)
    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, **waitress_options(config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield Live(app, url, server)
    server.close()
