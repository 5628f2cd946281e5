"""`python -m scraper check`: damaged captures are found, and captured again only when the
new capture is whole. Real Chromium, on a generated site served by `--serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from catalog import Catalog, PageRecord, page_id, write_json_atomic
from catalog.workspace import Workspace

from .test_crawl_resume import make_site
from .test_crawl_site import ROOT, run_crawl


def check(ws: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "scraper", "check", "--workspace", str(ws),
           "--config", str(ws.parent / f"{ws.name}.toml"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.mark.browser
def test_check_finds_damaged_pages_and_recaptures_them_without_losing_any(
    chromium: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    make_site(site, 4)
    (site / "doc.pdf").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    index = site / "index.html"
    index.write_text(index.read_text() + '<p><a href="doc.pdf">doc</a></p>')
    root = tmp_path / "ws"
    proc = run_crawl(root, "--serve", str(site), "--max-pages", "20")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ws = Workspace(root)
    with Catalog(ws.catalog_path) as cat:
        rows = {Path(r["url"]).name: dict(r) for r in cat.pages()}
    pdf, a, b, c, d = (rows[n] for n in ("doc.pdf", "p00.html", "p01.html", "p02.html",
                                          "p03.html"))
    assert pdf["status"] == "not_html" and a["status"] == b["status"] == "ok"
    assert check(root).returncode == 0

    ws.boxes_json(a["page_id"]).write_text('{"schema": 1, "boxes": [')
    ws.screenshot(b["page_id"]).unlink()
    ws.page_json(pdf["page_id"]).write_text("garbage")
    # JSON, but a box without its bbox: the later stages could not read it.
    ws.boxes_json(c["page_id"]).write_text(
        '{"schema": 1, "width": 1280, "height": 800, "boxes": [{"id": 0, "kind": "text"}]}')
    annotation = b'{"regions": []}'
    ws.annotation_json(c["page_id"]).write_bytes(annotation)  # a person worked on it
    with Catalog(ws.catalog_path) as cat, cat.transaction() as conn:  # a killed run's row
        conn.execute("UPDATE pages SET captured_at = 1, height = 5 WHERE page_id = ?",
                     (d["page_id"],))
    kept = {p: p.read_bytes() for p in (ws.screenshot(a["page_id"]), ws.page_json(a["page_id"]),
                                        ws.boxes_json(b["page_id"]))}
    found = check(root)
    assert found.returncode == 1, found.stdout + found.stderr
    lines = found.stdout.splitlines()
    assert any(a["page_id"] in x and "boxes.json is not JSON" in x for x in lines)
    assert any(b["page_id"] in x and "screenshot.png is missing" in x for x in lines)
    assert any(pdf["page_id"] in x and "page.json is not JSON" in x for x in lines)
    assert any(c["page_id"] in x and "boxes.json box 0 lacks its id, kind or bbox" in x
               for x in lines)
    assert any(x.startswith(f"{c['page_id']} {c['url']}: ") and "; not recapturable, a human "
               "annotation was drawn on its screenshot" in x for x in lines)
    assert (f"4 broken; capture 3 of them again with `python -m scraper check --recapture "
            f"--workspace {root}`; 1 carries a human annotation, which --recapture leaves as it "
            "is (see above)") in found.stdout
    assert "1 catalog rows brought up to date from their page.json" in found.stdout
    with Catalog(ws.catalog_path) as cat:
        assert dict(cat.page(d["page_id"])) == d

    # The site answers 404 for these pages now: their old files stay as they were.
    moved = {name: (site / name).read_bytes() for name in ("p00.html", "p01.html", "doc.pdf")}
    for name in moved:
        (site / name).unlink()
    down = check(root, "--recapture")
    assert down.returncode == 1, down.stdout + down.stderr
    assert down.stdout.count("not replaced, captured as http_error now (HTTP 404)") == 3
    assert f"{c['page_id']} {c['url']}: not replaced, a human annotation" in down.stdout
    assert all(path.read_bytes() == data for path, data in kept.items())
    assert not (root / ".recapture").exists()
    with Catalog(ws.catalog_path) as cat:
        assert cat.page(a["page_id"])["status"] == "ok"

    # Back up: each page is captured again, under the same id, and reads back whole.
    for name, data in moved.items():
        (site / name).write_bytes(data)
    fixed = check(root, "--recapture")
    assert fixed.returncode == 1, fixed.stdout + fixed.stderr
    assert "4 broken, 3 captured again, 1 still broken" in fixed.stdout
    assert ws.annotation_json(c["page_id"]).read_bytes() == annotation
    ws.annotation_json(c["page_id"]).unlink()  # the annotation may go: now it is captured
    assert check(root, "--recapture").returncode == 0
    again = check(root)
    assert again.returncode == 0 and "every file reads back" in again.stdout
    with Catalog(ws.catalog_path) as cat:
        assert {cat.page(r["page_id"])["status"] for r in (a, b, c, pdf)} == {"ok", "not_html"}
    assert ws.screenshot(b["page_id"]).is_file()


def _page(ws: Workspace, catalog: Catalog, name: str) -> str:
    """A captured page written by hand: page.json, boxes.json, a screenshot, its row."""
    url = f"http://a.example/{name}"
    pid = page_id(url, (320, 200))
    ws.page_dir(pid).mkdir(parents=True)
    Image.new("RGB", (320, 200), "white").save(ws.screenshot(pid))
    write_json_atomic(ws.boxes_json(pid), {"schema": 1, "width": 320, "height": 200, "boxes": []})
    record = PageRecord(pid, url, url, "ok", [320, 200], 1.0, 320, 200, captured_at=1.0)
    write_json_atomic(ws.page_json(pid), record.to_dict())
    with catalog.transaction() as conn:
        catalog.record_page(record, site="a.example", conn=conn)
    return pid


def test_check_says_up_front_which_broken_pages_recapture_will_not_take(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    with Catalog(ws.catalog_path) as catalog:
        plain, annotated, whole = (_page(ws, catalog, n) for n in ("a", "b", "c"))
    for pid in (plain, annotated):
        ws.screenshot(pid).unlink()
    ws.annotation_json(annotated).write_text('{"regions": []}')
    (tmp_path / "ws.toml").write_text("")  # the config `check` is given
    found = check(ws.root)
    assert found.returncode == 1, found.stdout + found.stderr
    lines = found.stdout.splitlines()
    assert f"{plain} http://a.example/a: screenshot.png is missing" in lines
    assert (f"{annotated} http://a.example/b: screenshot.png is missing; not recapturable, a "
            "human annotation was drawn on its screenshot: capture it by hand (`python -m scraper "
            "capture URL`) if that annotation may go") in lines
    assert lines[-1] == (f"3 pages checked: 2 broken; capture 1 of them again with `python -m "
                         f"scraper check --recapture --workspace {ws.root}`; 1 carries a human "
                         "annotation, which --recapture leaves as it is (see above)")
    # Only annotated pages broken: --recapture is not suggested at all.
    ws.annotation_json(plain).write_text('{"regions": []}')
    only = check(ws.root).stdout.splitlines()
    assert only[-1] == ("3 pages checked: 2 broken; 2 carry a human annotation, which "
                        "--recapture leaves as it is (see above)")
    assert not any("--recapture --workspace" in x for x in only)
