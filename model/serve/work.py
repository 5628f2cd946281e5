"""A bounded queue in front of a fixed number of worker threads: a request either gets a
place or is told at once to come back later, and nobody waits past a deadline."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class Busy(RuntimeError):
    """Every worker is busy and the queue is full."""


class WorkQueue:
    def __init__(self, workers: int, size: int, name: str = "work"):
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        try:
            self._q.put_nowait((fut, fn, args))
        except queue.Full:
            if not self._drop_cancelled():
                raise Busy("every worker is busy and the queue is full") from None
            self._q.put_nowait((fut, fn, args))
        return fut

    def _drop_cancelled(self) -> int:
        """Free the places of requests that gave up waiting (they would never run)."""
        with self._q.mutex:
            items = self._q.queue
            keep = [it for it in items if not it[0].cancelled()]
            dropped = len(items) - len(keep)
            items.clear()
            items.extend(keep)
            self._q.unfinished_tasks -= dropped
            if dropped:
                self._q.not_full.notify(dropped)
        return dropped

    @property
    def waiting(self) -> int:
        return self._q.qsize()

    def _run(self) -> None:
        while True:
            fut, fn, args = self._q.get()
            if fut.set_running_or_notify_cancel():  # a caller that gave up cancelled it
                try:
                    fut.set_result(fn(*args))
                except BaseException as exc:  # handed to the waiting request
                    fut.set_exception(exc)
            self._q.task_done()
