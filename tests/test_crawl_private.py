"""A public page that sends the browser to a private address is never captured.

The link check sees only the link; the browser follows HTTP redirects, meta refreshes and
scripts by itself. What the browser reached is checked after the fact: the redirect chain
and the address of the document that was captured. The "private" server here is another
port on loopback: only the seed's own host and port are allowed, as 169.254.169.254 would
be refused on the web.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import Workspace

from .test_crawl_site import TrapSite, catalog_rows, frontier_rows, html, run_crawl

SECRET = "instance-credentials-do-not-leak"


@pytest.fixture
def two_sites() -> Iterator[tuple[TrapSite, TrapSite]]:
    public, private = TrapSite(), TrapSite()
    yield public, private
    public.httpd.shutdown()
    private.httpd.shutdown()


@pytest.mark.browser
@pytest.mark.slow
def test_redirects_to_a_private_address_are_refused_by_what_the_browser_reached(
    chromium: str, two_sites: tuple[TrapSite, TrapSite], tmp_path: Path
) -> None:
    public, private = two_sites
    secret = f"{private.url}/latest/meta-data/"
    private.routes["/latest/meta-data/"] = lambda n: (200, {}, html(SECRET))
    private.routes["/bounce"] = lambda n: (302, {"Location": f"{public.url}/landing"}, b"")
    public.page("/", "http-redirect", "meta", "script", "chain", "ok.html", "file-refresh",
                "file-redirect")
    public.page("/ok.html")
    public.page("/landing")
    public.routes["/http-redirect"] = lambda n: (302, {"Location": secret}, b"")
    public.routes["/meta"] = lambda n: (200, {}, (
        f'<!doctype html><meta http-equiv="refresh" content="0;url={secret}">'
        "<p>moving</p>").encode())
    public.routes["/script"] = lambda n: (200, {}, (
        f'<!doctype html><p>moving</p><script>location.href = "{secret}";</script>').encode())
    # The browser refuses to leave the web for a local file: what is captured, if anything,
    # is the page that asked.
    public.routes["/file-refresh"] = lambda n: (200, {}, (
        b'<!doctype html><meta http-equiv="refresh" content="0;url=file:///etc/passwd">'
        b"<p>moving</p>"))
    public.routes["/file-redirect"] = lambda n: (302, {"Location": "file:///etc/passwd"}, b"")
    # Through the private address and back: the final address alone looks harmless.
    public.routes["/chain"] = lambda n: (302, {"Location": f"{private.url}/bounce"}, b"")

    ws = tmp_path / "ws"
    proc = run_crawl(ws, public.url + "/", "--include", "^http")
    assert proc.returncode == 0, proc.stderr

    rows = catalog_rows(ws)
    captured = {r["url"] for r in rows if r["status"] == "ok"}
    assert {public.url + "/", public.url + "/ok.html"} <= captured
    assert captured <= {public.url + "/", public.url + "/ok.html", public.url + "/file-refresh"}
    # Chromium refuses a redirect to file: (ERR_UNSAFE_REDIRECT): recorded as unreachable.
    assert {r["status"] for r in rows if r["url"].endswith("/file-redirect")} <= {"unreachable"}
    assert all(r["final_url"].startswith(public.url) for r in rows)
    # Nothing the private server said is anywhere in the workspace.
    for f in Workspace(ws).pages_dir.rglob("*"):
        if f.is_file() and f.suffix == ".json":
            text = f.read_text(errors="replace")
            assert SECRET not in text and "root:x:0" not in text, f
    frontier = frontier_rows(ws)
    for path in ("/http-redirect", "/meta", "/script", "/chain"):
        row = frontier[public.url + path]
        assert row["state"] == "failed" and row["error"] == "redirect_offsite", (path, row)
    assert "private address" in frontier[public.url + "/meta"]["cause"]
