"""Shared fixtures: the real-page corpus, real Chromium, and local HTTP servers."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
KREUZER = CORPUS / "kreuzer-popular"
SQLITE_DOC = Path("/usr/share/doc/sqlite3")


def _missing(what: str, why: str) -> None:
    """Skip on a user's clone; fail in CI, where everything must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def kreuzer_dir() -> Path:
    if not KREUZER.is_dir():
        _missing("the Kreuzer corpus", f"{KREUZER} is absent (it lives beside the checkout)")
    return KREUZER


@pytest.fixture(scope="session")
def sqlite_doc_dir() -> Path:
    if not (SQLITE_DOC / "index.html").is_file():
        _missing("sqlite3-doc", "Debian's sqlite3-doc is not installed (make setup installs it)")
    return SQLITE_DOC


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of chromedriver; skip (or fail in CI) when the browser is not installed."""
    for tool in ("chromium", "chromedriver"):
        if not shutil.which(tool):
            _missing("Chromium", f"{tool} is not installed (make setup installs it)")
    return shutil.which("chromedriver") or ""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve_directory(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served on 127.0.0.1; tests write pages into it."""
    site = tmp_path / "site"
    site.mkdir()
    server, url = serve_directory(site)
    yield site, url
    server.shutdown()

from tests.labelstudio_fixture import labelstudio  # noqa: E402, F401  (session Label Studio server)
