"""A crawl's errors name their URLs: the summary lists the first failing ones with their
cause, `python -m scraper status --errors` lists them all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from catalog import Catalog, PageRecord, Workspace, write_json_atomic
from scraper.causes import cause_of

from .test_crawl_site import ROOT, TrapSite, run_crawl


def status(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scraper", "status", "--workspace", str(ws),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def listed(ws: Path) -> dict[str, list[str]]:
    """`status --errors` by URL: [kind, cause, attempts, state, viewport]."""
    proc = status(ws, "--errors")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split("\t")[:4] == ["url", "kind", "cause", "attempts"]
    return {r.split("\t")[0]: r.split("\t")[1:] for r in rows}


@pytest.mark.browser
@pytest.mark.slow
def test_failing_urls_are_named_with_their_cause(chromium: str, tmp_path: Path) -> None:
    site = TrapSite()
    try:
        site.page("/", "ok.html", "gone.html")  # gone.html: the server answers 404
        site.page("/ok.html")
        seeds = tmp_path / "seeds.txt"
        # --offline: the browser resolves no name but loopback, as for a host that is gone.
        seeds.write_text(f"# a site, a typo, a host that does not resolve\n{site.url}/\n"
                         "http//nowhere.invalid/\nhttp://nowhere.invalid/page\n")
        ws = tmp_path / "ws"
        proc = run_crawl(ws, "--seeds", str(seeds))
    finally:
        site.httpd.shutdown()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The bad line is named before the crawl; the good ones are crawled all the same.
    assert (f"{seeds}:3: 'http//nowhere.invalid/': not a crawlable URL: missing ':' after "
            "http; write http://nowhere.invalid/") in proc.stderr
    assert "1 malformed seed(s) (listed above) skipped; crawling the other 2" in proc.stderr
    assert "1 malformed seed(s) were skipped" in proc.stdout
    out = proc.stdout
    assert "failing URLs, all 2 (each with its cause: `python -m scraper status --errors" in out
    assert f"  http_404  {site.url}/gone.html  HTTP 404 Not Found\n" in out
    assert ("  unreachable  http://nowhere.invalid/page  net::ERR_NAME_NOT_RESOLVED (the host "
            "name does not resolve) (4 attempts)\n") in out

    rows = listed(ws)
    assert set(rows) == {f"{site.url}/gone.html", "http://nowhere.invalid/page"}
    assert rows[f"{site.url}/gone.html"][:3] == ["http_404", "HTTP 404 Not Found", "1"]
    assert rows["http://nowhere.invalid/page"][:3] == [
        "unreachable", "net::ERR_NAME_NOT_RESOLVED (the host name does not resolve)", "4"]
    # `status` alone says the same as the crawl's summary.
    plain = status(ws)
    assert f"  http_404  {site.url}/gone.html  HTTP 404 Not Found" in plain.stdout


def _old_catalog(root: Path, n_ok: int, failures: list[tuple[str, str, str]]) -> Workspace:
    """A workspace as a crawl before causes were kept left it: frontier rows without a
    cause column, the cause only in each page's page.json."""
    ws = Workspace(root).ensure()
    with Catalog(ws.catalog_path) as catalog:
        catalog.execute(
            "CREATE TABLE frontier (url TEXT NOT NULL, viewport TEXT NOT NULL, depth INTEGER"
            " NOT NULL, seed TEXT NOT NULL, host TEXT NOT NULL, site TEXT NOT NULL, state TEXT"
            " NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL DEFAULT 0,"
            " error TEXT NOT NULL DEFAULT '', page_id TEXT NOT NULL DEFAULT '', page_status TEXT"
            " NOT NULL DEFAULT '', counted INTEGER NOT NULL DEFAULT 0, added_at REAL NOT NULL,"
            " updated_at REAL NOT NULL, PRIMARY KEY (url, viewport))")
        rows = [(f"http://a.example/p{i}", "ok", "", f"ok{i}") for i in range(n_ok)]
        for url, kind, error in failures:
            pid = f"id-{len(rows)}"
            status, http = ("http_error", int(kind[5:])) if kind.startswith("http_") else (kind, None)
            write_json_atomic(ws.page_json(pid), PageRecord(
                pid, url, url, status, [1280, 800], 1.0, http_status=http, error=error).to_dict())
            rows.append((url, status, kind, pid))
        with catalog.transaction() as conn:
            conn.executemany(
                "INSERT INTO frontier(url, viewport, depth, seed, host, site, state, attempts,"
                " error, page_id, page_status, counted, added_at, updated_at)"
                " VALUES(?, '1280x800', 1, 'http://a.example/', 'a.example', 'a.example', 'done',"
                " ?, ?, ?, ?, ?, 0, 0)",
                [(url, 1 if st != "unreachable" else 4, kind, pid, st, int(st == "ok"))
                 for url, st, kind, pid in rows])
    return ws


def test_status_names_failing_urls_of_a_catalog_from_before_causes_were_kept(
        tmp_path: Path) -> None:
    failures = [(f"http://a.example/gone{i}", "http_404", "") for i in range(7)]
    failures.insert(2, ("http://b.example/", "unreachable", "net::ERR_NAME_NOT_RESOLVED"))
    ws = _old_catalog(tmp_path / "ws", 20, failures)
    plain = status(ws.root)
    assert plain.returncode == 0, plain.stderr
    # The summary reads the catalog alone: the first five URLs, their kind, where to see all.
    lines = plain.stdout.splitlines()
    at = lines.index(f"failing URLs, the first 5 of 8 (each with its cause: `python -m scraper "
                     f"status --errors --workspace {ws.root}`):")
    assert lines[at + 1:at + 6] == [
        "  http_404  http://a.example/gone0  (cause not in the catalog)",
        "  http_404  http://a.example/gone1  (cause not in the catalog)",
        "  unreachable  http://b.example/  (cause not in the catalog) (4 attempts)",
        "  http_404  http://a.example/gone2  (cause not in the catalog)",
        "  http_404  http://a.example/gone3  (cause not in the catalog)"]
    # --errors lists every one, the cause read from its page.json.
    rows = listed(ws.root)
    assert len(rows) == 8
    assert rows["http://b.example/"][:3] == [
        "unreachable", "net::ERR_NAME_NOT_RESOLVED (the host name does not resolve)", "4"]
    assert rows["http://a.example/gone6"][:4] == ["http_404", "HTTP 404 Not Found", "1", "done"]
    # The catalog now keeps causes; the rows it had read as before.
    with Catalog(ws.catalog_path) as catalog:
        assert catalog.execute("SELECT COUNT(*) FROM frontier WHERE cause = ''").fetchone()[0] == 28


@pytest.mark.parametrize("status, http, content_type, error, cause", [
    ("unreachable", None, "", "Message: unknown error: net::ERR_CONNECTION_REFUSED",
     "net::ERR_CONNECTION_REFUSED (nothing answers on that port)"),
    ("unreachable", None, "", "net::ERR_BLOCKED_BY_CLIENT", "net::ERR_BLOCKED_BY_CLIENT"),
    ("http_error", 503, "text/html", "", "HTTP 503 Service Unavailable"),
    ("http_error", 599, "text/html", "", "HTTP 599"),
    ("not_html", 200, "application/pdf", "", "not HTML (application/pdf)"),
    ("timeout", 200, "text/html", "",
     "the load did not finish before the timeout; captured as far as it got"),
    ("ok", 200, "text/html", "", ""),
])
def test_a_failed_capture_has_a_cause_a_person_can_act_on(
        status: str, http: int | None, content_type: str, error: str, cause: str) -> None:
    page = PageRecord("p", "http://a.example/", "http://a.example/", status, [1280, 800], 1.0,
                      http_status=http, content_type=content_type, error=error)
    assert cause_of(page) == cause
