"""Helper threads kept between saves: reuse, errors, concurrency and fork."""

from __future__ import annotations

import os
import threading
import time

import pytest

from mlart_prefect._threads import MAX_IDLE_HELPERS, HelperThreads


def thread_of(helpers: HelperThreads) -> int:
    seen: list[int] = []
    helpers.start(lambda: seen.append(threading.get_ident()))()
    return seen[0]


def test_helper_kept_between_work():
    helpers = HelperThreads()

    first = thread_of(helpers)
    second = thread_of(helpers)

    assert first != threading.get_ident()
    assert second == first


def test_wait_reraises_work_error():
    helpers = HelperThreads()
    wait = helpers.start(lambda: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        wait()
    assert thread_of(helpers) != threading.get_ident()


def test_wait_returns_after_work_ends():
    helpers = HelperThreads()
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        finished.set()

    helpers.start(slow)()

    assert finished.is_set()


def test_concurrent_work_gets_own_helpers():
    helpers = HelperThreads()
    count = MAX_IDLE_HELPERS + 2
    barrier = threading.Barrier(count)
    idents: list[int] = []

    def work() -> None:
        barrier.wait(timeout=10)  # only passes when all run at the same time
        idents.append(threading.get_ident())

    waits = [helpers.start(work) for _ in range(count)]
    for wait in waits:
        wait()

    assert len(set(idents)) == count
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(helpers._idle) != MAX_IDLE_HELPERS:
        time.sleep(0.01)
    assert len(helpers._idle) == MAX_IDLE_HELPERS


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_starts_own_helpers():
    from mlart_prefect._threads import HELPERS

    thread_of(HELPERS)  # the parent now keeps an idle helper
    pid = os.fork()
    if pid == 0:  # the child: its copy of the idle helper has no thread behind it
        try:
            ran = threading.Event()
            HELPERS.start(ran.set)
            os._exit(0 if ran.wait(timeout=10) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
