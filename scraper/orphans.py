"""One crawl per workspace, and no browsers left behind by a crawl that was killed.

A SIGKILL gives the crawl no chance to quit its browsers: each local chromedriver (the
leader of a process group holding its Chromium) is noted in the workspace when started,
and the next crawl of that workspace kills whatever a dead crawl left running. A browser
is noted only once its session exists, a second or so after its chromedriver starts; one
killed in that window is found by the workspace's token in its environment instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from catalog.workspace import Workspace

from .browser import OWNER_ENV
from .browser_state import state_of

LOCK_FILE = ".crawl.lock"
BROWSERS_FILE = ".crawl-browsers"


class WorkspaceLock:
    """An exclusive lock on a workspace for one crawl; the kernel drops it if we die."""

    def __init__(self, ws: Workspace):
        self.path = ws.root / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> WorkspaceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ValueError(
                f"another crawl (pid {holder}) is using {self.path.parent}; "
                "wait for it or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def note_browser(ws: Workspace, driver: Any) -> None:
    """Remember a local browser's process group and profile until the next crawl starts."""
    process = getattr(getattr(driver, "service", None), "process", None)
    if process is None:  # a Grid session: nothing of ours runs here
        return
    profile = state_of(driver).profile or ""
    line = f"{process.pid} {profile}\n".encode()
    fd = os.open(ws.root / BROWSERS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)  # one small O_APPEND write: whole lines even from several threads
    finally:
        os.close(fd)


def owner_token(ws: Workspace) -> str:
    """The token a workspace's local browsers carry in their environment (OWNER_ENV)."""
    return hashlib.sha256(str(ws.root.resolve()).encode()).hexdigest()[:24]


def owned_groups(token: str) -> set[int]:
    """Process groups of the running processes whose environment carries `token`."""
    mark = f"{OWNER_ENV}={token}".encode()
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs (not Linux): only the noted browsers are found
        return set()
    mine = os.getpgid(0)
    groups = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                groups.add(os.getpgid(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue
    groups.discard(mine)  # never our own group, whatever its environment says
    return groups


def _is_our_driver(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"chromedriver" in cmdline and os.getpgid(pid) == pid
    except (OSError, ProcessLookupError):
        return False


def reap(ws: Workspace) -> int:
    """Kill the browsers a killed crawl left (call holding the workspace lock)."""
    path = ws.root / BROWSERS_FILE
    killed = 0
    # Browsers that were starting when the crawl died were never noted: their chromedriver
    # leads a process group (a session of its own) that their Chromium shares.
    for group in owned_groups(owner_token(ws)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
            killed += 1
    if not path.exists():
        return killed
    for line in path.read_text(errors="replace").splitlines():
        pid_text, _, profile = line.partition(" ")
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if _is_our_driver(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                killed += 1
        if profile.strip() and Path(profile.strip()).name.startswith("webseg-chromium-"):
            shutil.rmtree(profile.strip(), ignore_errors=True)
    path.unlink(missing_ok=True)
    return killed
