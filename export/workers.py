"""Pages in worker processes, results in page order: the export and verify on every core.

`page_map(jobs)` gives a `map`: the built-in one for one job (no process, no pickling),
or a pool's ordered `imap` over `jobs` processes. Results come back in the order of the
items whatever the number of jobs, so a release's bytes and its messages do not depend
on it. Workers come from a fork server that has imported the export once (a fork of a
process that runs OpenCV's or rich's threads could inherit a held lock), and each one
dies with its parent: a killed export leaves no process writing into its temporary
directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import multiprocessing
import multiprocessing.pool
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .memory import keep_freed_memory

PageMap = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]
_PR_SET_PDEATHSIG = 1
_F_SETPIPE_SZ = 1031  # Linux
# A page's results (its COCO text, a few hundred kB) fit in the pipe at once: see _Pool.
_PIPE_BYTES = 1 << 20


def default_jobs() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _die_with_parent(owner: int) -> None:
    """SIGKILL this worker when its parent (the fork server, which exits with `owner`,
    the process that asked for the pool) dies."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still applies
        pass
    try:
        os.kill(owner, 0)  # gone before the line above took effect: stop now
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:
        pass


def _start_worker(owner: int) -> None:
    _die_with_parent(owner)
    keep_freed_memory()
    import cv2

    cv2.setNumThreads(1)  # one process a core already: OpenCV's threads would only contend


class _Pool(multiprocessing.pool.Pool):
    """A pool whose worker-minding thread sleeps until a worker exits or the pool changes.

    The standard pool's thread also wakes whenever the result pipe is readable, and so
    spins for as long as a page's results (hundreds of kB) are being read: CPU taken from
    the workers on a machine with no core to spare. Worker exits (their sentinels) and
    the pool's own notices are all it needs to wait for.
    """

    def _get_sentinels(self) -> list:
        return [self._change_notifier._reader]

    def _setup_queues(self) -> None:
        """Pipes of 1 MiB, not 64 kiB: a worker hands over a page's results (or takes a
        verify task) in one write and goes on, instead of waiting, holding the queue's
        lock and so stopping the other workers too, while this process reads it 64 kiB
        at a time."""
        super()._setup_queues()
        for queue in (self._inqueue, self._outqueue):
            # Not Linux, or a lower limit (fs.pipe-max-size): 64 kiB it is.
            with contextlib.suppress(OSError):
                fcntl.fcntl(queue._writer.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)


@contextmanager
def page_map(jobs: int) -> Iterator[PageMap]:
    """A `map(fn, items)` that runs fn in `jobs` processes (fn and items picklable)."""
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, not {jobs}")
    if jobs == 1:
        yield map
        return
    ctx = multiprocessing.get_context("forkserver")
    # What the workers run, imported once by the fork server (`python -m export` has
    # its workers import export.__main__ again: its imports are then at hand too).
    ctx.set_forkserver_preload(["export.__main__"])
    # The fork server is the workers' parent: it exits when this process does. Its start
    # (a fresh interpreter importing the export, about a second) runs in the background
    # while the caller reads the catalog; the first map waits for it.
    starter = ThreadPoolExecutor(1)
    started = starter.submit(_Pool, jobs, initializer=_start_worker, initargs=(os.getpid(),),
                             context=ctx)
    starter.shutdown(wait=False)  # its one task still runs
    try:
        yield lambda fn, items: started.result().imap(fn, items, chunksize=1)
        _spent[0] += sum(_cpu_seconds(p.pid) for p in started.result()._pool)
    finally:
        started.result().terminate()


_spent = [0.0]


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def worker_cpu_seconds() -> float:
    """CPU seconds used so far by the workers of every page_map of this process, as each
    pool closed: with the caller's own, what a run cost in all (the benchmark's per-core
    figure)."""
    return _spent[0]
