"""Python code that runs in the middle of a ring method: signal handlers during a wait.

A signal handler runs between the kernel's interrupted wait and the next one, on the same
thread, so it can call back into the ring that is waiting. Whatever it does (here: close the
ring), the waiting call must raise cleanly instead of touching unmapped ring memory.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from iouring import IoUring


@pytest.fixture
def empty_pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    os.close(read_end)
    os.close(write_end)


@pytest.mark.parametrize(
    "wait",
    [
        pytest.param(lambda ring: ring.copy_cqes(wait_nr=1), id="copy_cqes"),
        pytest.param(lambda ring: ring.copy_cqe(), id="copy_cqe"),
        pytest.param(lambda ring: ring.submit_and_wait(1), id="submit_and_wait"),
    ],
)
def test_signal_handler_closing_the_waiting_ring(
    empty_pipe: tuple[int, int], wait: Callable[[IoUring], Any]
) -> None:
    ring = IoUring(4)
    target = bytearray(4)
    ring.read(0x1, empty_pipe[0], target, -1)
    ring.flush_sq()
    previous = signal.signal(signal.SIGALRM, lambda *_: ring.close())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(ValueError, match="closed ring"):
            wait(ring)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert ring.closed
    target.extend(b"resizable again: the close released the pin")
