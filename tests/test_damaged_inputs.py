"""Damaged inputs in front of every stage: a one-line error naming the file and its fix,
and the rest of the work done.

Each stage runs as a user runs it (its command, in a child process), on a workspace of
three good pages and one damaged thing.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from catalog import Catalog, Workspace
from export.synthetic import add_page

from .image_bombs import bomb_png

ROOT = Path(__file__).resolve().parent.parent
STAGES = {
    "preannotate": ("annotate", "preannotate"),
    "dedupe": ("dedupe", "run"),
    "export": ("export",),
    "learn": ("annotate", "learn"),
}


def _boxes(width: int, height: int, seed: int) -> dict:
    """Boxes of a page of its own text (no two pages alike to dedupe)."""
    rng = random.Random(seed)
    boxes = [{"id": 0, "kind": "block", "tag": "body", "bbox": [0, 0, width, height],
              "visible": True, "depth": 0, "parent": None}]
    for i in range(6):
        boxes.append({"id": 1 + i, "kind": "text", "bbox": [10, 10 + 60 * i, 200, 16],
                      "visible": True, "depth": 1, "parent": 0, "text": " ".join(f"w{rng.randrange(5000)}" for _ in range(12)),
                      "font_size": 14.0})
    return {"schema": 1, "width": width, "height": height, "boxes": boxes}


def workspace(tmp_path: Path) -> tuple[Workspace, list[str]]:
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        pids = [add_page(ws, cat, f"https://site{i}.org/p", seed=i, width=200, height=400,
                         preannotation=True, textured=True) for i in range(4)]
    for i, pid in enumerate(pids):
        ws.boxes_json(pid).write_text(json.dumps(_boxes(200, 400, i)))
    return ws, pids


def run(stage: str, ws: Workspace, *extra: str, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *STAGES[stage], "--workspace", str(ws.root),
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def assert_one_clear_line(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if all(w in line for w in words)]
    assert lines, f"no line naming {words} in:\n{proc.stderr}"


def assert_rest_done(stage: str, ws: Workspace, good: list[str]) -> None:
    if stage == "preannotate":
        for pid in good:
            meta = json.loads(ws.preannotation_json(pid).read_text())["meta"]
            assert meta.get("annotator") == "pipeline", pid
    elif stage == "dedupe":
        with Catalog(ws.catalog_path) as cat:
            grouped = {r[0] for r in cat.execute("SELECT page_id FROM dup_groups")}
        assert set(good) <= grouped
    elif stage == "export":
        manifest = next((ws.root / "releases").glob("v*/SHA256SUMS")).read_text()
        for pid in good:
            assert f"{pid}.png" in manifest, pid
    elif stage == "learn":
        assert ws.convention_files(), "no convention learned from the good pages"


# -- one page damaged: the others are done -------------------------------------------------


def _truncate_screenshot(ws: Workspace, pid: str) -> str:
    data = ws.screenshot(pid).read_bytes()
    ws.screenshot(pid).write_bytes(data[: len(data) // 2])
    return "screenshot.png"


def _cut_boxes(ws: Workspace, pid: str) -> str:
    text = ws.boxes_json(pid).read_text()
    ws.boxes_json(pid).write_text(text[: len(text) // 2])
    return "boxes.json"


def _bomb(ws: Workspace, pid: str) -> str:
    ws.screenshot(pid).write_bytes(bomb_png(100_000, 100_000))
    return "screenshot.png"


def _tall_bomb(ws: Workspace, pid: str) -> str:
    # Within what Pillow would decode after a warning, far beyond the recorded capture.
    ws.screenshot(pid).write_bytes(bomb_png(20_000, 20_000))
    return "screenshot.png"


def _region_outside(ws: Workspace, pid: str) -> str:
    path = ws.annotation_json(pid)
    doc = json.loads(path.read_text())
    doc["regions"].append({"label": "main", "bbox": [5000, 9000, 300, 300], "score": 1.0,
                           "source": "human"})
    path.write_text(json.dumps(doc))
    return "annotation.json"


DAMAGE = {
    "truncated_png": (_truncate_screenshot, ("preannotate", "dedupe", "export")),
    "cut_boxes": (_cut_boxes, ("preannotate", "dedupe")),
    "image_bomb": (_bomb, ("preannotate", "dedupe", "export")),
    "tall_bomb": (_tall_bomb, ("preannotate", "dedupe", "export")),
    "region_outside": (_region_outside, ("export", "learn")),
}
CASES = [(d, s) for d, (_, stages) in DAMAGE.items() for s in stages]


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "stage"), CASES, ids=[f"{d}-{s}" for d, s in CASES])
def test_a_damaged_page_is_named_and_the_others_are_done(tmp_path, damage, stage):
    ws, pids = workspace(tmp_path)
    bad, good = pids[0], pids[1:]
    if stage == "export":
        assert run("dedupe", ws).returncode == 0
    name = DAMAGE[damage][0](ws, bad)
    proc = run(stage, ws)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    if damage.endswith("bomb"):
        # Refused by its header, not by what decoding it found.
        assert_one_clear_line(proc, bad, name, "capture the page again")
        assert "200x400" in proc.stderr or "image bomb" in proc.stderr
    elif damage != "region_outside":
        assert_one_clear_line(proc, bad, name, "capture the page again")
    assert_rest_done(stage, ws, good)


# -- the catalog itself damaged: one line, nothing written -----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["preannotate", "dedupe", "export", "learn"])
def test_a_catalog_that_is_not_sqlite_is_named_with_its_fix(tmp_path, stage):
    ws, _ = workspace(tmp_path)
    for extra in ("-wal", "-shm"):
        Path(f"{ws.catalog_path}{extra}").unlink(missing_ok=True)
    ws.catalog_path.write_bytes(b"this is not a database\n" * 100)
    before = ws.catalog_path.read_bytes()
    proc = run(stage, ws)
    if stage in ("preannotate", "learn"):
        # These read only the pages' files: the catalog is not theirs to need.
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 2, proc.stderr
        assert_one_clear_line(proc, "catalog.sqlite", "move it away")
    assert ws.catalog_path.read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dedupe", "export"])
def test_a_catalog_another_process_holds_locked_is_named_with_its_fix(tmp_path, stage):
    ws, _ = workspace(tmp_path)
    holder = sqlite3.connect(ws.catalog_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = run(stage, ws, timeout=120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 2, proc.stderr
    assert_one_clear_line(proc, "catalog.sqlite", "another process")
    # Once it is free, the same command does the work.
    assert run(stage, ws).returncode == 0
