"""Background servers the pipeline starts in process groups of their own (Label Studio, a
Selenium Grid): whether they run, and stopping every process of a group."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process runs (a zombie, a dead child not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in the process group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def group_running(pgid: int) -> bool:
    """The group's leader or any process of its group still runs."""
    return process_alive(pgid) or group_alive(pgid)


def signal_group(pgid: int, sig: int) -> None:
    """Signal a group started in its own session (its id is its leader's pid)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pgid, sig)


def reap(pid: int) -> None:
    """Collect our own dead child, so it stops counting as a process."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_groups(pgids: Iterable[int], timeout: float) -> bool:
    """Wait until no process of these groups is left; True if none is."""
    pgids = list(pgids)
    deadline = time.monotonic() + timeout
    while True:
        for pgid in pgids:
            reap(pgid)
        if not any(group_running(p) for p in pgids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def stop_groups(pgids: Iterable[int], timeout: float, kill_wait: float = 10.0) -> bool:
    """SIGTERM every group, SIGKILL what is left after `timeout`; True once all are gone.
    Stopped means every process of the groups exited, the leaders' workers too."""
    pgids = list(pgids)
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, kill_wait)):
        for pgid in pgids:
            signal_group(pgid, sig)
        if wait_groups(pgids, wait):
            return True
    return False
