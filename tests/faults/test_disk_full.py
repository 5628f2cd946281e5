"""A disk that fills mid-run (preannotate, export, crawl): one line, nothing half-written,
and once space is freed the same command ends as it would have on a roomy disk.

The workspace lives on a tmpfs made by the test, a few pages bigger than the workspace
itself; mounting needs root (the test skips elsewhere).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .campaign import annotated_workspace, differences, end_state, run_command, stages


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
            capture_output=True).returncode != 0:
        pytest.skip("mounting a small filesystem needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _resize(mnt: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)


def _allocated(root: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*")) + 64 * 4096


def _no_half_written(ws: Path) -> None:
    assert not [p for p in ws.rglob(".tmp-*")], "a temporary file or folder was left"
    for pre in ws.rglob("preannotation.json"):
        doc = json.loads(pre.read_text())
        assert all((pre.parent / name).is_file() for name in doc["masks"].values())
    for release in (ws / "releases").glob("v*"):
        assert (release / "SHA256SUMS").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("stage", [("annotate", "preannotate"), ("export",)],
                         ids=["preannotate", "export"])
def test_a_full_disk_is_one_line_and_the_rerun_ends_as_on_a_roomy_one(
    tmp_path: Path, small_disk: Path, stage: tuple[str, ...]
) -> None:
    start = tmp_path / "start"
    annotated_workspace(start, pages=30)
    assert run_command([sys.executable, "-m", "dedupe", "run", "--workspace",
                        str(start)]).returncode == 0
    roomy = tmp_path / "roomy"
    shutil.copytree(start, roomy)
    assert run_command([sys.executable, "-m", *stage, "--workspace", str(roomy)]).returncode == 0

    size = _allocated(start)
    _resize(small_disk, size)
    ws = small_disk / "ws"
    shutil.copytree(start, ws)
    full = run_command([sys.executable, "-m", *stage, "--workspace", str(ws)])
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and ("no space left" in last or "disk full" in last), last
    assert "move it away" not in full.stderr  # the catalog is fine: never told to discard it
    # A full disk is not the pages' fault: no page is reported as failed before the error.
    assert "could not be exported" not in full.stderr, full.stderr
    _no_half_written(ws)

    _resize(small_disk, 4 * size)  # space freed
    again = run_command([sys.executable, "-m", *stage, "--workspace", str(ws)])
    assert again.returncode == 0, again.stderr
    _no_half_written(ws)
    assert differences(end_state(roomy), end_state(ws)) == []


@pytest.mark.slow
@pytest.mark.browser
def test_a_disk_that_fills_mid_crawl_is_one_line_and_the_rerun_captures_the_rest(
    chromium: str, tmp_path: Path, small_disk: Path
) -> None:
    stage = stages(crawl_pages=20)["crawl"]
    stage.prepare(tmp_path / "roomy")  # the site, its server, the seed and the config
    assert run_command(stage.command(tmp_path / "roomy")).returncode == 0
    for name in ("seed.txt", "crawl.toml"):
        shutil.copy(tmp_path / name, small_disk / name)
    _resize(small_disk, 1200 * 1024)  # room for a few pages, not for all
    ws = small_disk / "ws"
    ws.mkdir()
    full = run_command(stage.command(ws))
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and ("no space left" in last or "disk full" in last), last
    _no_half_written(ws)
    for page in (ws / "pages").iterdir():  # every page folder there is whole
        assert {"page.json", "boxes.json", "screenshot.png"} <= {p.name for p in page.iterdir()}

    _resize(small_disk, 64 * 1024 * 1024)
    again = run_command(stage.command(ws))
    assert again.returncode == 0, again.stderr
    assert differences(end_state(tmp_path / "roomy"), end_state(ws)) == []
