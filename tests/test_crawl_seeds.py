"""Seeds as people type them: every bad line is named with its number and likely fix, the
good ones are crawled, and `--strict` refuses instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scraper.seeds import SeedLine, read_seeds, url_problem

from .test_crawl_site import ROOT, run_crawl


@pytest.mark.parametrize("url, expected", [
    ("http//host.example/page", "missing ':' after http; write http://host.example/page"),
    ("https//host.example/", "missing ':' after https; write https://host.example/"),
    ("http:/host.example/page", "missing a '/' after http:; write http://host.example/page"),
    ("http:host.example", "missing '//' after http:; write http://host.example"),
    ("http:///host.example/", "3 slashes after http:, two are meant; write http://host.example/"),
    ("http://http://host.example/", "the scheme is written twice; write http://host.example/"),
    ("www.example.org/docs/", "no scheme; did you mean https://www.example.org/docs/"),
    ("localhost:8000/x.html", "no scheme; did you mean http://localhost:8000/x.html"),
    ("ftp://files.example/", "unsupported scheme ftp:, only http and https"),
    ("file:///home/me/site/index.html", "unsupported scheme file:, only http and https pages "
     "can be captured (crawl a local folder with --serve DIR)"),
    ("mailto:me@example.org", "unsupported scheme mailto:"),
    ("htps://host.example/", "unknown scheme htps:; did you mean https://host.example/"),
    ('"https://host.example/"', "quotes or brackets around the URL; write https://host.example/"),
    ("http:\\\\host.example\\a", "backslashes in the URL; URLs use '/': http://host.example/a"),
    ("/lang.html", "a path, not a URL"),
    ("http://host.example:80a/", "Port could not be cast"),
])
def test_a_bad_seed_url_gets_its_likely_fix(url: str, expected: str) -> None:
    assert expected in url_problem(url)


@pytest.mark.parametrize("url", ["https://www.example.org/docs/", "http://127.0.0.1:8000/a",
                                 "HTTP://Example.ORG", "http://intranet/"])
def test_a_good_seed_url_has_no_problem(url: str) -> None:
    assert url_problem(url) == ""


def test_every_bad_line_is_named_and_the_good_ones_are_kept() -> None:
    text = ("# my sites\n"
            "https://a.example/docs/ host\n"
            "http//b.example/page\n"
            "\n"
            "https://c.example/my page.html\n"
            "https://d.example/ hots\n"
            "https://e.example/ https://f.example/\n"
            "https://g.example/   # a comment\n"
            "https://a.example/docs/\n")  # the same seed twice: crawled once
    lines = [SeedLine(t, f"seeds.txt:{n}") for n, t in enumerate(text.splitlines(), 1)]
    seeds, bad = read_seeds(lines, "prefix")
    assert [(s.url, s.scope) for s in seeds] == [("https://a.example/docs/", "host"),
                                                  ("https://g.example/", "prefix")]
    assert [str(b) for b in bad] == [
        "seeds.txt:3: 'http//b.example/page': not a crawlable URL: missing ':' after http; "
        "write http://b.example/page",
        "seeds.txt:5: 'https://c.example/my page.html': a space inside the URL; write it as "
        "%20: https://c.example/my%20page.html",
        "seeds.txt:6: 'https://d.example/ hots': scope 'hots' must be one of page, prefix, host, "
        "domain; did you mean host",
        "seeds.txt:7: 'https://e.example/ https://f.example/': two URLs on one line; put one "
        "seed on each line",
    ]


def _seeds_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "seeds.txt"
    path.write_text(text)
    return path


def test_strict_refuses_a_seeds_file_with_a_bad_line_and_crawls_nothing(tmp_path: Path) -> None:
    seeds = _seeds_file(tmp_path, "http://127.0.0.1:1/\nftp://files.example/\nhttp//x.example/\n")
    ws = tmp_path / "ws"
    proc = run_crawl(ws, "--seeds", str(seeds), "--strict", timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert err[0] == (f"{seeds}:2: 'ftp://files.example/': not a crawlable URL: unsupported "
                      "scheme ftp:, only http and https pages can be captured")
    assert err[1] == (f"{seeds}:3: 'http//x.example/': not a crawlable URL: missing ':' after "
                      "http; write http://x.example/")
    assert err[-1].startswith("error: 2 malformed seed(s) (listed above); nothing crawled")
    assert not (ws / "catalog.sqlite").exists()


def test_bad_seeds_on_the_command_line_are_named_by_position(tmp_path: Path) -> None:
    proc = run_crawl(tmp_path / "ws", "example.org", "http:/b.example/", timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert err[:2] == [
        "argument 1: 'example.org': not a crawlable URL: no scheme; did you mean "
        "https://example.org",
        "argument 2: 'http:/b.example/': not a crawlable URL: missing a '/' after http:; write "
        "http://b.example/"]
    assert err[-1] == "error: 2 malformed seed(s) (listed above) and no other seed; nothing crawled"
    assert not (tmp_path / "ws" / "catalog.sqlite").exists()


def test_capture_names_every_bad_url_and_captures_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    proc = subprocess.run([sys.executable, "-m", "scraper", "capture", "http://127.0.0.1:1/",
                           "http//b.example/page", "file:///tmp/x.html", "--workspace", str(ws)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # One line, as every bad input: each URL named by position, with its likely fix.
    assert proc.stderr.splitlines() == [
        "error: not a crawlable URL, nothing captured: argument 2 ('http//b.example/page'): "
        "missing ':' after http; write http://b.example/page | argument 3 ('file:///tmp/x.html')"
        ": unsupported scheme file:, only http and https pages can be captured (crawl a local "
        "folder with --serve DIR)"]
    assert not ws.exists()
