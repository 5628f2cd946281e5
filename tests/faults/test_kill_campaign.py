"""SIGKILL at seeded random moments, rerun to the end: the same end state as without kills.

A bounded campaign (two trials of up to two kills per stage); `bench/faults.py` runs a longer
one and prints the table. What the comparison leaves out is listed in campaign.py.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from catalog.workspace import TMP_PREFIX, remove_stale_temp_files, write_bytes_atomic

from .campaign import annotated_workspace, campaign, differences, end_state, stages


@pytest.mark.slow
@pytest.mark.parametrize("name", ["preannotate", "dedupe run", "export"])
def test_a_killed_stage_rerun_ends_as_an_uninterrupted_one(tmp_path: Path, name: str) -> None:
    _, trials = campaign(stages(pages=30)[name], tmp_path, trials=2, kills_per_trial=2, seed=7)
    assert sum(t.kills for t in trials) >= 1, "no kill landed: the campaign proved nothing"
    assert [t.differences for t in trials] == [[], []]


@pytest.mark.slow
@pytest.mark.browser
def test_a_killed_crawl_rerun_ends_as_an_uninterrupted_one(chromium: str, tmp_path: Path) -> None:
    _, trials = campaign(stages(crawl_pages=10)["crawl"], tmp_path, trials=2,
                         kills_per_trial=2, seed=7)
    assert sum(t.kills for t in trials) >= 1
    assert [t.differences for t in trials] == [[], []]


@pytest.mark.slow
def test_a_killed_training_resumed_to_the_end_has_the_weights_of_an_uninterrupted_one(
        tmp_path: Path) -> None:
    base = stages(train_pages=8)["train"]
    commands: list[list[str]] = []
    stage = replace(base, command=lambda ws: commands.append(base.command(ws)) or commands[-1])
    _, trials = campaign(stage, tmp_path, trials=2, kills_per_trial=2, seed=7)
    assert sum(t.kills for t in trials) >= 1, "no kill landed: the campaign proved nothing"
    assert any("--resume" in c for c in commands), "no kill came after a checkpoint"
    assert [t.differences for t in trials] == [[], []]


def test_the_comparison_sees_a_changed_byte_and_a_changed_row(tmp_path: Path) -> None:
    ws = annotated_workspace(tmp_path / "ws", pages=3)
    before = end_state(ws.root)
    assert differences(before, end_state(ws.root)) == []
    shot = next(ws.pages_dir.glob("*/screenshot.png"))
    shot.write_bytes(shot.read_bytes()[:-1] + b"\0")
    with sqlite3.connect(ws.catalog_path) as conn:
        conn.execute("UPDATE pages SET status='timeout' WHERE rowid=1")
    found = differences(before, end_state(ws.root))
    assert any("screenshot.png: differs" in d for d in found)
    assert any("catalog table pages" in d for d in found)


def test_a_killed_writer_s_temporary_file_goes_with_the_next_write(tmp_path: Path) -> None:
    # A process that has exited stands for one killed before its rename.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    time.sleep(0.1)
    stale = tmp_path / f"{TMP_PREFIX}{gone.pid}-abc"
    stale.write_bytes(b"half")
    mine = tmp_path / f"{TMP_PREFIX}{os.getpid()}-xyz"  # a writer still running
    mine.write_bytes(b"busy")
    write_bytes_atomic(tmp_path / "mask_text.png", b"done")
    assert not stale.exists() and mine.exists()
    assert (tmp_path / "mask_text.png").read_bytes() == b"done"
    assert remove_stale_temp_files(tmp_path) == 0
