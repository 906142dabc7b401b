"""Helper threads kept between saves, for work that runs beside the calling thread.

A helper encodes a small dataset's Parquet body while the calling thread computes its
statistics. For a large dataset the roles are reversed. Starting a thread for each small save
and waiting for it to begin cost about 0.1 ms of a 2.7 ms save of the 1,000-row benchmark
frame. The save took 1.89x the raw write that way and 1.83x with a kept helper (medians of
200 saves alternating in one process). A helper thread that has finished its work waits for
the next piece instead of ending. A caller that finds no idle helper starts a new one, so
saves from several threads never wait for each other's helpers.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

MAX_IDLE_HELPERS = 4
"""Idle helper threads kept per process. A helper that finishes while this many wait ends."""

_Job = tuple[Callable[[], Any], threading.Event, list[BaseException]]


class HelperThreads:
    """Run pieces of work on kept daemon threads, one piece per thread at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job]] = []

    def forget(self) -> None:
        """Drop the helpers: in a process forked from this one they do not exist."""
        self._lock = threading.Lock()
        self._idle = []

    def start(self, work: Callable[[], Any]) -> Callable[[], None]:
        """Start ``work`` on a helper thread and return the call that waits for its end.

        The returned call re-raises whatever ``work`` raised. Call it exactly once, also when
        the calling thread fails, so that nothing ``work`` uses is released while it runs.
        """
        with self._lock:
            jobs = self._idle.pop() if self._idle else None
        if jobs is None:
            jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(jobs,), name="mlart-helper",
                             daemon=True).start()
        done = threading.Event()
        failure: list[BaseException] = []
        jobs.put((work, done, failure))

        def wait() -> None:
            done.wait()
            if failure:
                raise failure[0]

        return wait

    def _serve(self, jobs: queue.SimpleQueue[_Job]) -> None:
        while True:
            work, done, failure = jobs.get()
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - re-raised by the waiting caller
                failure.append(exc)
            with self._lock:
                keep = len(self._idle) < MAX_IDLE_HELPERS
                if keep:
                    self._idle.append(jobs)
            done.set()
            if not keep:
                return


HELPERS = HelperThreads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=HELPERS.forget)
