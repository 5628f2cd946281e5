"""A static web server on 127.0.0.1 for a folder: a saved mirror, an archive, a doc site.

It is what makes the default crawl work offline (Debian's sqlite3-doc) and lets a crawl
of a saved site resume on the same URLs: the port can be asked for again.
"""

from __future__ import annotations

import argparse
import mimetypes
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


def parse_site(entry: str) -> tuple[str, str]:
    """'NAME=DIR' of `[crawl] sites` -> (name, folder)."""
    name, sep, folder = entry.partition("=")
    name = name.strip().lower()
    if not sep or not folder.strip() or not SITE_NAME.fullmatch(name):
        raise ValueError(f"[crawl] sites entry {entry!r} must be NAME=FOLDER, NAME in "
                         "letters, digits, '-' and '.' (it becomes NAME.localhost)")
    return name, folder.strip()


# Text types get an explicit charset: a browser left to guess may pick Latin-1.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xhtml": "application/xhtml+xml; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    "": "application/octet-stream",
}


class StaticHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **_TYPES}

    def guess_type(self, path: str | Path) -> str:
        suffix = Path(str(path)).suffix.lower()
        if suffix in _TYPES:
            return _TYPES[suffix]
        return mimetypes.guess_type(str(path))[0] or "application/octet-stream"

    def log_message(self, *args: object) -> None:
        pass


class StaticServer:
    """A threaded server for `directory` on 127.0.0.1; `with` starts and stops it.

    With a `name`, its URLs are `http://<name>.localhost:<port>/`: the browser takes any
    `*.localhost` name to loopback, and the name, not the port, is the site, so a folder
    keeps one identity (and its pages one split) whatever port it gets."""

    def __init__(self, directory: str | Path, port: int = 0, name: str = ""):
        if name and not SITE_NAME.fullmatch(name):
            raise ValueError(f"served site name {name!r}: use letters, digits, '-' and '.'")
        self.name = name
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ValueError(f"--serve {directory}: no such folder")
        handler = partial(StaticHandler, directory=str(self.directory))
        try:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:
            if port == 0:
                raise
            # The port a previous run used is taken: any free one will do.
            self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def host(self) -> str:
        return f"{self.name}.localhost" if self.name else "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> StaticServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_main(args: argparse.Namespace) -> int:
    server = StaticServer(args.directory, args.port)
    print(f"serving {server.directory} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0
