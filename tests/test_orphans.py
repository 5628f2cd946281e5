"""A killed crawl's browsers are found by the workspace's token in their environment, even
those that were starting and never noted; other workspaces' browsers are left alone."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from catalog import Workspace
from scraper.browser import OWNER_ENV
from scraper.orphans import owner_token, reap


def _marked(token: str) -> subprocess.Popen:
    """A stand-in for a chromedriver: a process group of its own with a child, marked."""
    return subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True,
                            env={**os.environ, OWNER_ENV: token})


def _gone(proc: subprocess.Popen, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return True
        time.sleep(0.02)
    return False


def test_reap_stops_the_workspaces_unnoted_browsers_and_no_others(tmp_path: Path) -> None:
    ws, other = Workspace(tmp_path / "ws").ensure(), Workspace(tmp_path / "other").ensure()
    assert owner_token(ws) != owner_token(other)
    ours, theirs = _marked(owner_token(ws)), _marked(owner_token(other))
    try:
        time.sleep(0.2)  # the environment is readable once the shell has started
        assert reap(ws) == 1
        assert _gone(ours)
        assert theirs.poll() is None
    finally:
        for p in (ours, theirs):
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
