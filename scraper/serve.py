"""A static web server on 127.0.0.1 for a folder: a saved mirror, an archive, a doc site.

It is what makes the default crawl work offline (Debian's sqlite3-doc) and lets a crawl
of a saved site resume on the same URLs: the port can be asked for again.
"""

from __future__ import annotations

import argparse
import mimetypes
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
    """A threaded server for `directory` on 127.0.0.1; `with` starts and stops it."""

    def __init__(self, directory: str | Path, port: int = 0):
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
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

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
