"""Tiles as windows over the pages, the export and verify on several processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from catalog import Catalog, Workspace
from export.release import make_release, versions, write_sums
from export.synthetic import add_page
from export.verify import verify_release
from tests.test_export_release import _config

ROOT = Path(__file__).resolve().parent.parent


def _workspace(root: Path, n: int = 9) -> tuple[Workspace, list[str]]:
    ws = Workspace(root)
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        pids = [add_page(ws, cat, f"https://www.site{i % 5}.org/p{i}", seed=i, width=300,
                         height=520 + 40 * (i % 3)) for i in range(n)]
    return ws, pids


def _rows(rel: Path) -> list[dict]:
    return [json.loads(line) for meta in sorted(rel.glob("*/tiles/metadata.jsonl"))
            for line in meta.read_text().splitlines()]


def test_windows_are_the_rectangles_of_the_old_tiles_and_match_the_tile_files(tmp_path):
    ws, _ = _workspace(tmp_path / "ws")
    rel = make_release(ws, _config(tile_files=True), log=lambda _: None).path
    # 300 px wide pages step 0, then pull back to 300 - 256 = 44; rows likewise.
    ys = {520: [0, 256, 264], 560: [0, 256, 304], 600: [0, 256, 344]}
    pages = {}
    for row in _rows(rel):
        pages.setdefault(row["page_id"], []).append(row)
    assert len(pages) == 9
    for rows in pages.values():
        image = np.asarray(Image.open(rel / rows[0]["image"]).convert("RGB"))
        mask = np.asarray(Image.open(rel / rows[0]["mask"]))
        height = mask.shape[0]
        assert [r["window"] for r in rows] == [[x, y, 256, 256] for y in ys[height]
                                               for x in (0, 44)]
        covered = np.zeros(mask.shape, bool)
        for r in rows:
            x, y, w, h = r["window"]
            covered[y : y + h, x : x + w] = True
            # The tile file --tile-files writes is the window's crop, named by its corner.
            assert r["tile_image"].endswith(f"_x{x:05d}_y{y:05d}.png")
            assert np.array_equal(np.asarray(Image.open(rel / r["tile_image"]).convert("RGB")),
                                  image[y : y + h, x : x + w])
            tile_mask = np.asarray(Image.open(rel / r["tile_mask"]))
            assert np.array_equal(tile_mask, mask[y : y + h, x : x + w])
            ids, n = np.unique(tile_mask, return_counts=True)
            assert r["class_pixels"] == [[int(i), int(c)] for i, c in zip(ids, n, strict=True)]
        assert covered.all()


def test_a_page_smaller_than_a_tile_has_one_padded_window(tmp_path):
    ws, _ = _workspace(tmp_path / "ws", n=3)
    rel = make_release(ws, _config(tile=1024, val_ratio=0.0), log=lambda _: None).path
    for row in _rows(rel):
        w, h = Image.open(rel / row["image"]).size
        assert row["window"] == [0, 0, w, h] and row["size"] == 1024
        counts = dict(row["class_pixels"])
        assert counts[255] == 1024 * 1024 - w * h and sum(counts.values()) == 1024 * 1024
    card = (rel / "README.md").read_text()
    assert "no tile pixel files" in card and "tiles/images" not in card
    assert verify_release(rel).ok


def _damaged_inputs(ws: Workspace, pids: list[str]) -> None:
    """Page 1: a screenshot cut short (found when pages are checked); page 2: an element
    mask whose header is whole but whose pixels are gone (found when it is exported)."""
    shot = ws.screenshot(pids[1])
    shot.write_bytes(shot.read_bytes()[: shot.stat().st_size // 2])
    mask = ws.page_dir(pids[2]) / "annotation.text.png"
    mask.write_bytes(mask.read_bytes()[:60])


def test_one_and_two_jobs_give_identical_releases_and_messages(tmp_path):
    releases, logs = [], []
    for jobs in (1, 2):
        # The same workspace path both times: messages (and so the card) name files.
        ws, pids = _workspace(tmp_path / "ws")
        _damaged_inputs(ws, pids)
        lines: list[str] = []
        result = make_release(ws, _config(tile_files=True), log=lines.append, jobs=jobs)
        releases.append(ws.root.rename(tmp_path / f"jobs{jobs}") / result.path.relative_to(
            ws.root))
        logs.append(lines)
    one, two = releases
    assert logs[0] == logs[1] and len(logs[0]) == 2
    assert "not a readable image" in logs[0][0] and "could not be exported" in logs[0][1]
    files = sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two).as_posix() for p in two.rglob("*") if p.is_file())
    assert any("/tiles/images/" in f for f in files)
    for name in files:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    # Neither page went in; the one that failed on a worker left no file behind.
    assert not [f for f in files if pids[1] in f or pids[2] in f]
    assert verify_release(two, jobs=2).ok


def test_split_files_joined_from_the_workers_entries_are_whole_json_numbered_in_page_order(
        tmp_path):
    ws, pids = _workspace(tmp_path / "ws")
    _damaged_inputs(ws, pids)  # page 2 fails on a worker: the numbering closes over it
    config = _config()
    config.dataset.name = "données"  # text beyond ASCII is written as it is
    rel = make_release(ws, config, log=lambda _: None, jobs=2).path
    manifest = pq.read_table(rel / "manifest.parquet").to_pylist()
    splits = sorted({r["split"] for r in manifest})
    assert splits == ["train", "val"]
    for split in splits:
        text = (rel / split / "annotations.json").read_text(encoding="utf-8")
        coco = json.loads(text)
        # The bytes json writes for the whole split at once, as releases always had.
        assert text == json.dumps(coco, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False) + "\n"
        assert coco["info"]["description"] == f"données v0001 {split}"
        pages = sorted(r["page_id"] for r in manifest if r["split"] == split)
        assert [i["page_id"] for i in coco["images"]] == pages
        assert [i["id"] for i in coco["images"]] == list(range(1, len(pages) + 1))
        anns = coco["annotations"]
        assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
        image_ids = [a["image_id"] for a in anns]
        assert image_ids == sorted(image_ids) and set(image_ids) == set(range(1, len(pages) + 1))
        for name in ("metadata.jsonl", "tiles/metadata.jsonl"):
            lines = (rel / split / name).read_text(encoding="utf-8").splitlines(keepends=True)
            assert lines
            assert lines == [json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False)
                             + "\n" for line in lines]
    assert verify_release(rel).ok


def _resign(rel: Path) -> None:
    for p in rel.rglob("*"):
        if p.is_file():
            p.chmod(0o644)
    write_sums(rel)


@pytest.fixture(scope="module")
def windowed(tmp_path_factory) -> Path:
    ws, _ = _workspace(tmp_path_factory.mktemp("ws"), n=6)
    return make_release(ws, _config(val_ratio=0.0), log=lambda _: None).path


@pytest.mark.parametrize(
    ("damage", "finding"),
    [
        ("off the page", "is not inside its 300x"),
        ("moved by a pixel", "are not its 6 tiles of 256 px"),
        ("histogram", "class_pixels are not its window's"),
        ("another page's files", "names files of another page"),
        ("one window fewer", "are not its 6 tiles of 256 px"),
        ("a window of three numbers", "cannot be checked"),
    ],
)
def test_verify_catches_a_bad_window(windowed, tmp_path, damage, finding):
    rel = tmp_path / windowed.name
    subprocess.run(["cp", "-r", str(windowed), str(rel)], check=True)
    meta = rel / "train" / "tiles" / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    first, other = rows[0], next(r for r in rows if r["page_id"] != rows[0]["page_id"])
    if damage == "off the page":
        first["window"][0] += 100
    elif damage == "moved by a pixel":
        first["window"][1] += 1
    elif damage == "histogram":
        first["class_pixels"][0][1] -= 1
        first["class_pixels"][-1][1] += 1
    elif damage == "another page's files":
        first["image"] = other["image"]
    elif damage == "one window fewer":
        rows.pop(1)
    else:
        first["window"] = first["window"][:3]
    meta.chmod(0o644)
    meta.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    _resign(rel)  # only the content check can find it
    rep = verify_release(rel)
    assert not rep.ok and any(finding in p for p in rep.problems), rep.problems
    assert not any("checksum" in p for p in rep.problems)
    assert verify_release(rel, jobs=2).problems == rep.problems


def test_verify_reports_the_same_on_two_jobs_and_shows_progress(windowed, tmp_path):
    rel = tmp_path / windowed.name
    subprocess.run(["cp", "-r", str(windowed), str(rel)], check=True)
    victim = sorted((rel / "train" / "masks").iterdir())[2]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    seen: list[bool] = []
    one = verify_release(rel, jobs=1)
    two = verify_release(rel, jobs=2, progress=seen.append)
    assert not one.ok and one.problems == two.problems and one.verdict() == two.verdict()
    assert len(seen) == 6 and seen.count(False) == 1


def _marked_processes(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_a_killed_export_on_workers_leaves_no_release_or_a_whole_one(tmp_path):
    ws, _ = _workspace(tmp_path / "ws", n=24)
    marker = f"WEBSEG_KILL_TEST={uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), marker.split("=")[0]: marker.split("=")[1]}
    for delay in (0.5, 1.5, 3.0, 5.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "export", "--workspace", str(ws.root), "--jobs", "2",
             "--tile", "256", "--tile-files"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while _marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _marked_processes(marker) == []  # no worker goes on writing
        for version in versions(ws.releases_dir):
            assert verify_release(ws.releases_dir / version).ok, version
    out = subprocess.run(
        [sys.executable, "-m", "export", "--workspace", str(ws.root), "--jobs", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    have = versions(ws.releases_dir)
    assert verify_release(ws.releases_dir / have[-1]).ok
    assert not list(ws.releases_dir.glob(".tmp-*"))  # the last export cleared the rest
