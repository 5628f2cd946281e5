"""The crawl against a local site that does what the web does: robots.txt, redirects,
429 and 503 with Retry-After, a hung response, non-HTML, unsafe links. Real Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from catalog import Catalog, Workspace
from scraper.frontier import Frontier

ROOT = Path(__file__).resolve().parent.parent

TEST_CONFIG = """
[crawl]
retries = 3
backoff = 0.2
max_retry_after = 10.0
[capture]
timeout = 3.0
image_wait = 1.0
"""


def html(title: str, *links: str) -> bytes:
    items = "".join(f'<li><a href="{h}">{h}</a></li>' for h in links)
    return (f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
            f"<p>{'Some text of the page. ' * 20}</p><ul>{items}</ul></body></html>").encode()


class TrapSite:
    """A test server; routes map a path to a function of how often it was asked."""

    def __init__(self) -> None:
        self.log: list[tuple[float, str, str, str]] = []  # (time, host header, path, agent)
        self.counts: Counter = Counter()
        self.routes: dict[str, Callable[[int], tuple[int, dict[str, str], bytes]]] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path
                with outer.lock:
                    outer.counts[path] += 1
                    n = outer.counts[path]
                    outer.log.append((time.time(), self.headers.get("Host", ""), path,
                                      self.headers.get("User-Agent", "")))
                route = outer.routes.get(path)
                status, headers, body = route(n) if route else (404, {}, html("not found"))
                try:
                    self.send_response(status)
                    headers.setdefault("Content-Type", "text/html; charset=utf-8")
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def page(self, path: str, *links: str) -> None:
        self.routes[path] = lambda n: (200, {}, html(path, *links))

    def requests_for(self, path: str) -> list[tuple[float, str, str, str]]:
        return [r for r in self.log if r[2] == path]


@pytest.fixture
def trap_site() -> Iterator[TrapSite]:
    site = TrapSite()
    yield site
    site.httpd.shutdown()


def run_crawl(ws: Path, *args: str, config: str = TEST_CONFIG, timeout: float = 240,
              **popen: object) -> subprocess.CompletedProcess:
    cfg = ws.parent / f"{ws.name}.toml"
    cfg.write_text(config)
    cmd = [sys.executable, "-m", "scraper", "crawl", "--workspace", str(ws), "--config", str(cfg),
           "--offline", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "120"}, **popen)


def catalog_rows(ws: Path) -> list[dict]:
    with Catalog(ws / "catalog.sqlite") as catalog:
        return [dict(r) for r in catalog.pages()]


def frontier_rows(ws: Path) -> dict[str, dict]:
    with Catalog(ws / "catalog.sqlite") as catalog:
        Frontier(catalog)
        return {r["url"]: dict(r) for r in catalog.execute("SELECT * FROM frontier")}


@pytest.mark.browser
@pytest.mark.slow
def test_crawl_survives_what_the_web_throws(chromium: str, trap_site: TrapSite,
                                            tmp_path: Path) -> None:
    s = trap_site
    s.routes["/robots.txt"] = lambda n: (200, {"Content-Type": "text/plain"},
                                          b"User-agent: *\nDisallow: /private/\n")
    s.page("/", "a.html", "b.html", "redirect-me", "chain", "busy", "flaky", "hang.html",
           "data.json", "doc.pdf", "gone.html", "alert.html", "private/secret.html", "mailto:someone@example.com",
           "javascript:alert(1)", "data:text/html,<p>x</p>", "file:///etc/passwd",
           f"http://localhost:{s.port}/loop.html", "http://10.255.255.1/internal.html",
           "http://169.254.169.254/latest/meta-data/")
    s.page("/a.html", "/", "b.html")
    s.page("/b.html", "a.html#section", "a.html?utm_source=newsletter", "./x/../a.html")
    s.page("/final.html", "/")
    s.page("/private/secret.html")
    s.routes["/redirect-me"] = lambda n: (301, {"Location": "/a.html"}, b"")
    s.routes["/chain"] = lambda n: (302, {"Location": "/chain2"}, b"")
    s.routes["/chain2"] = lambda n: (302, {"Location": "/final.html"}, b"")
    s.routes["/busy"] = lambda n: ((429, {"Retry-After": "2"}, html("slow down")) if n == 1
                                   else (200, {}, html("busy, then fine")))
    s.routes["/flaky"] = lambda n: ((503, {"Retry-After": "1"}, html("down")) if n <= 2
                                    else (200, {}, html("flaky, then fine")))

    def hang(n: int) -> tuple[int, dict[str, str], bytes]:
        if n == 1:
            time.sleep(15)  # longer than the capture's 3 s load timeout
        return 200, {}, html("hung once")

    s.routes["/hang.html"] = hang
    s.routes["/data.json"] = lambda n: (200, {"Content-Type": "application/json"}, b'{"a": 1}')
    s.routes["/gone.html"] = lambda n: (404, {}, html("gone"))
    s.routes["/alert.html"] = lambda n: (200, {}, html("dialogs").replace(
        b"</body>", b"<script>alert('hi'); confirm('sure?'); prompt('name?')</script></body>"))
    pdf = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]"
           b"/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
    s.routes["/doc.pdf"] = lambda n: (200, {"Content-Type": "application/pdf"}, pdf)

    ws = tmp_path / "ws"
    proc = run_crawl(ws, s.url + "/", "--include", "^http")
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert "crawl summary" in proc.stdout and "pages captured (ok)" in proc.stdout

    rows = catalog_rows(ws)
    by_final = {r["final_url"].removeprefix(s.url): r for r in rows}
    # Every page once, under its final URL; redirects and tracking variants fold into it.
    assert Counter(r["final_url"] for r in rows).most_common(1)[0][1] == 1
    assert {k for k, r in by_final.items() if r["status"] == "ok"} == {
        "/", "/a.html", "/b.html", "/final.html", "/busy", "/flaky", "/hang.html", "/alert.html"}
    assert len(s.requests_for("/alert.html")) == 1  # dialogs answered, no retry needed
    assert by_final["/data.json"]["status"] == "not_html"
    assert by_final["/doc.pdf"]["status"] == "not_html"
    assert by_final["/gone.html"]["status"] == "http_error"
    pages = Workspace(ws)
    assert sorted(pages.page_ids()) == sorted(r["page_id"] for r in rows)
    assert not (pages.page_dir(by_final["/data.json"]["page_id"]) / "screenshot.png").exists()
    assert (pages.page_dir(by_final["/a.html"]["page_id"]) / "screenshot.png").exists()
    assert not list(pages.pages_dir.glob(".tmp-*"))
    for r in rows:  # each directory holds the page its row names, never a neighbour's
        doc = json.loads(pages.page_json(r["page_id"]).read_text())
        assert (doc["final_url"], doc["status"]) == (r["final_url"], r["status"])

    final = json.loads(pages.page_json(by_final["/final.html"]["page_id"]).read_text())
    assert final["final_url"] == s.url + "/final.html"
    assert [u.removeprefix(s.url) for u in final["redirects"]] == ["/chain", "/chain2"]
    frontier = frontier_rows(ws)
    assert frontier[s.url + "/redirect-me"]["page_id"] == by_final["/a.html"]["page_id"]
    assert frontier[s.url + "/chain"]["state"] == "done"

    # 429 and 503: retried, and not before the server's Retry-After.
    busy = s.requests_for("/busy")
    assert len(busy) == 2 and busy[1][0] - busy[0][0] >= 1.9
    flaky = s.requests_for("/flaky")
    assert len(flaky) == 3 and all(b[0] - a[0] >= 0.9 for a, b in zip(flaky, flaky[1:], strict=False))
    # The hung response cost one timeout, then a retry; a 404 is final at once.
    assert len(s.requests_for("/hang.html")) == 2
    assert frontier[s.url + "/hang.html"]["attempts"] == 2
    assert len(s.requests_for("/gone.html")) == 1

    # robots.txt honoured; unsafe links never followed.
    assert s.requests_for("/private/secret.html") == []
    assert frontier[s.url + "/private/secret.html"]["state"] == "skipped"
    assert not any(host.startswith("localhost") for _, host, _, _ in s.log)
    assert not any(u.startswith(("http://10.", "http://169.254", "http://localhost")) for u in frontier)
    # One user agent everywhere, naming the tool and a contact.
    agents = {agent for _, _, path, agent in s.log}
    assert agents and all("webseg-pipeline" in a and "+http" in a for a in agents)

    # `status` prints the same figures from the catalog alone.
    status = subprocess.run([sys.executable, "-m", "scraper", "status", "--workspace", str(ws)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "pages captured (ok)" in status.stdout
    assert "robots" in status.stdout and "not_html" in status.stdout
