"""`python -m dedupe` on a hand-made workspace: groups, incrementality, bad input, sheet."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

from catalog import Catalog, PageRecord, Workspace, write_json_atomic

ROOT = Path(__file__).resolve().parent.parent
WORDS = [f"w{i}" for i in range(500)]


def make_page(ws: Workspace, cat: Catalog, pid: str, seed: int, *, words: list[str] | None = None,
              edit: int = 0, banner: bool = False, flags: list[str] | None = None,
              site: str = "example.org", status: str = "ok") -> None:
    """A 320-px wide page: header, text lines drawn as bars, and matching text boxes."""
    rng = random.Random(seed)
    words = words or [rng.choice(WORDS) for _ in range(400)]
    words = list(words)
    for k in range(edit):
        words[100 + k] = f"edited{k}"
    im = Image.new("RGB", (320, 1400), "white")
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 320, 40), fill=(20, 70, 140))
    boxes = [{"id": 0, "kind": "landmark", "bbox": [0, 0, 320, 40], "visible": True}]
    y, line = 60, 0
    while y < 1380 and line * 10 < len(words):
        chunk = words[line * 10 : line * 10 + 10]
        shade = (sum(map(len, chunk)) * 3) % 120
        x1 = 20 + 25 * len(chunk) + (seed * 7 + line * 13) % 40
        d.rectangle((20, y, x1, y + 9), fill=(shade, shade, shade))
        boxes.append({"id": len(boxes), "kind": "text", "bbox": [20, y, x1 - 20, 10],
                      "text": " ".join(chunk), "visible": True})
        y += 16 + (8 if line % 5 == 4 else 0)
        line += 1
    if banner:
        d.rectangle((0, 330, 320, 400), fill=(29, 29, 31))
        boxes.append({"id": len(boxes), "kind": "text", "bbox": [10, 340, 300, 20],
                      "text": "We use cookies. Accept", "visible": True})
    page_dir = ws.page_dir(pid)
    page_dir.mkdir(parents=True, exist_ok=True)
    im.save(page_dir / "screenshot.png")
    write_json_atomic(page_dir / "boxes.json", {"schema": 1, "page_id": pid, "boxes": boxes})
    rec = PageRecord(page_id=pid, url=f"http://{site}/{pid}", final_url=f"http://{site}/{pid}",
                     status=status, viewport=[320, 400], device_pixel_ratio=1.0, width=320,
                     height=1400, flags=flags or [], captured_at=time.time())
    write_json_atomic(page_dir / "page.json", rec.to_dict())
    with cat.transaction() as conn:
        cat.record_page(rec, site=site, conn=conn)


def dedupe(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dedupe", *args, "--workspace", str(ws.root)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_copies_of_a_server_error_page_are_found_as_any_others(tmp_path: Path) -> None:
    # One 404 page per broken link, captured as the server rendered it and pre-annotated
    # like any page: without dedupe each copy would be released.
    ws = Workspace(tmp_path / "ws").ensure()
    cat = Catalog(ws.catalog_path)
    words = random.Random(7).choices(WORDS, k=400)
    for pid in ("e_404a", "e_404b", "e_404c"):
        make_page(ws, cat, pid, 7, words=words, status="http_error")
    make_page(ws, cat, "t_slow", 8, status="timeout")
    make_page(ws, cat, "p_page", 9)
    out = dedupe(ws, "run")
    assert out.returncode == 0, out.stderr
    assert "5 hashed, 0 skipped" in out.stdout
    rows = {r["page_id"]: r["canonical"] for r in cat.execute("SELECT * FROM dup_groups")}
    assert sorted(rows[p] for p in ("e_404a", "e_404b", "e_404c")) == [0, 0, 1]  # one kept
    assert rows["t_slow"] == 1 and rows["p_page"] == 1


def test_groups_incremental_runs_and_a_corrupt_screenshot(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    cat = Catalog(ws.catalog_path)
    base_words = random.Random(1).choices(WORDS, k=400)
    make_page(ws, cat, "p_orig", 1, words=base_words, flags=["truncated"])
    make_page(ws, cat, "p_copy", 1, words=base_words)  # the same pixels and text
    make_page(ws, cat, "p_edit", 1, words=base_words, edit=3)  # three words changed
    make_page(ws, cat, "p_banner", 1, words=base_words, banner=True)  # cookie banner
    make_page(ws, cat, "q_other", 2)  # another page of the same site
    make_page(ws, cat, "r_third", 3)
    make_page(ws, cat, "z_broken", 4)
    ws.screenshot("z_broken").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    make_page(ws, cat, "z_cut", 5)
    png = ws.screenshot("z_cut").read_bytes()
    ws.screenshot("z_cut").write_bytes(png[: len(png) // 2])  # a write that was cut short
    make_page(ws, cat, "z_gone", 6)
    ws.screenshot("z_gone").unlink()

    first = dedupe(ws, "run")
    assert first.returncode == 0, first.stderr
    for bad in ("z_broken", "z_cut", "z_gone"):
        assert f"page {bad}:" in first.stderr
    assert "6 hashed, 3 skipped" in first.stdout
    # Each figure says what it counts: pairs of pages alike (duplicates or one layout), the
    # groups they make, and pages whose verdict changed.
    assert "12 new pair(s) of pages found alike: 6 as duplicates" in first.stdout
    assert ("3 page(s) kept and 3 dropped as a copy of a kept page (1 kept page(s) have copies)"
            in first.stdout)
    assert "6 page(s) with a new verdict" in first.stdout
    assert "link(s)" not in first.stdout and "decision(s)" not in first.stdout

    out = dedupe(ws, "groups", "--json")
    groups = json.loads(out.stdout)
    # p_orig has a capture error (truncated): the best capture among its copies leads.
    assert len(groups) == 1 and groups[0][0] != "p_orig"
    assert sorted(groups[0]) == ["p_banner", "p_copy", "p_edit", "p_orig"]
    all_groups = json.loads(dedupe(ws, "groups", "--json", "--all").stdout)
    assert ["q_other"] in all_groups and ["r_third"] in all_groups
    assert not any(p.startswith("z_") for g in all_groups for p in g)

    rows = {r["page_id"]: dict(r) for r in cat.execute("SELECT * FROM dup_groups")}
    assert set(rows) == {"p_orig", "p_copy", "p_edit", "p_banner", "q_other", "r_third"}
    assert sum(r["canonical"] for r in rows.values()) == 3
    assert rows["p_orig"]["group_id"] == groups[0][0] and rows["p_orig"]["canonical"] == 0
    tpl = dict(cat.execute("SELECT page_id, template_id FROM template_groups").fetchall())
    # Same template (header + text column) but different pages: grouped, not dropped.
    assert tpl["q_other"] == tpl["p_copy"] == tpl["r_third"]
    sheet = ws.root / "dedupe" / "groups.png"
    # An output like any other: as readable as the umask lets a new file be (0644 mostly).
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(sheet.stat().st_mode) == 0o666 & ~umask

    # Incremental: a new page is the only one hashed, and it joins its group.
    make_page(ws, cat, "p_later", 1, words=base_words, edit=2)
    second = dedupe(ws, "run")
    assert second.returncode == 0, second.stderr
    assert "1 hashed" in second.stdout and "1 matched against the index" in second.stdout
    hashed_runs = dict(cat.execute("SELECT page_id, run_id FROM dedupe_hashes").fetchall())
    assert hashed_runs["p_later"] > hashed_runs["p_copy"]
    groups = json.loads(dedupe(ws, "groups", "--json").stdout)
    assert "p_later" in groups[0] and len(groups[0]) == 5

    # The screenshot is repaired (re-captured): it is hashed and joins the index.
    make_page(ws, cat, "z_broken", 4)
    third = dedupe(ws, "run")
    assert "1 hashed, 2 skipped" in third.stdout
    # Nothing was deleted: every decision made is still in the history.
    n_hist = cat.execute("SELECT COUNT(*) FROM dedupe_decisions").fetchone()[0]
    assert n_hist >= 8
    cat.close()


def test_changed_threshold_rematches_without_rehashing(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    cat = Catalog(ws.catalog_path)
    words = random.Random(5).choices(WORDS, k=400)
    make_page(ws, cat, "a", 5, words=words)
    make_page(ws, cat, "b", 5, words=words, edit=6)
    assert dedupe(ws, "run", "--no-sheet").returncode == 0
    assert json.loads(dedupe(ws, "groups", "--json").stdout) == [["a", "b"]]
    cfg = tmp_path / "strict.toml"
    cfg.write_text("[dedupe]\ntext_threshold = 0\nphash_threshold = 0\n")
    strict = dedupe(ws, "run", "--no-sheet", "--config", str(cfg))
    assert strict.returncode == 0, strict.stderr
    assert "0 hashed" in strict.stdout and "2 matched" in strict.stdout
    assert json.loads(dedupe(ws, "groups", "--json").stdout) == []
    bad = tmp_path / "bad.toml"
    bad.write_text("[dedupe]\nband_rule = 'median'\n")
    res = dedupe(ws, "run", "--config", str(bad))
    assert res.returncode == 2 and "band_rule" in res.stderr
    cat.close()
