"""SQE and ring-state helpers shared by the test modules (plain functions, no fixtures).

``sqe_fields`` is the whole-SQE comparison of the Zig tests; ``addr_of`` and ``iovecs_at`` read
the addresses the kernel is handed; ``sq_counters`` is what a refused call must leave unchanged,
and ``refused`` checks that it does.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from iouring import IoUring, SubmissionQueueFull

U64_MAX = 2**64 - 1
SQE_FIELDS = (
    "opcode",
    "flags",
    "ioprio",
    "fd",
    "off",
    "addr",
    "len",
    "rw_flags",
    "user_data",
    "buf_index",
    "personality",
    "splice_fd_in",
    "addr3",
)
# The fields Python may assign on an Sqe; opcode, addr, len and addr3 are the prep methods'
# (read-only properties, or not exposed).
SETTABLE_SQE_FIELDS = (
    "flags",
    "user_data",
    "personality",
    "fd",
    "off",
    "ioprio",
    "rw_flags",
    "buf_index",
    "splice_fd_in",
)


def zeroed_except(names: tuple[str, ...], given: dict[str, int]) -> dict[str, int]:
    """Every one of ``names`` 0 except those given; a given name not among them fails."""
    unknown = set(given) - set(names)
    assert not unknown, unknown
    fields = dict.fromkeys(names, 0)
    fields.update({k: int(v) for k, v in given.items()})
    return fields


def sqe_fields(**expected: int) -> dict[str, int]:
    """The whole SQE as ``Sqe.fields()`` reports it: every field 0 except those given."""
    return zeroed_except(SQE_FIELDS, expected)


def addr_of(buf: Any) -> int:
    """Address of the first byte of a buffer (writable bytes-like, ndarray or array.array)."""
    if isinstance(buf, np.ndarray):
        return int(buf.ctypes.data)
    if isinstance(buf, array.array):
        return buf.buffer_info()[0]
    c = ctypes.c_char.from_buffer(buf)
    try:
        return ctypes.addressof(c)
    finally:
        del c  # release the export, so the buffer may be resized again


def iovecs_at(addr: int, count: int) -> list[tuple[int, int]]:
    """The (iov_base, iov_len) pairs of a ``struct iovec`` array in memory."""
    words = (ctypes.c_uint64 * (2 * count)).from_address(addr)
    return [(words[2 * i], words[2 * i + 1]) for i in range(count)]


def sq_counters(ring: IoUring) -> dict[str, int]:
    """What a refused call must leave unchanged."""
    return {
        "sqe_head": ring.sqe_head,
        "sqe_tail": ring.sqe_tail,
        "sq_tail": ring.sq_tail,
        "sq_ready": ring.sq_ready(),
        "sq_space_left": ring.sq_space_left(),
        "in_flight": ring.in_flight,
        "pinned": ring.pinned,
    }


def nop_submitting_when_full(ring: IoUring, user_data: int) -> None:
    """``ring.nop(user_data)``, submitting whenever the SQ is full (other threads sharing the
    ring may fill it again between the submit and the NOP)."""
    while True:
        try:
            ring.nop(user_data)
            return
        except SubmissionQueueFull:
            ring.submit()


@contextlib.contextmanager
def refused(ring: IoUring, error: type[BaseException], match: str | None) -> Iterator[None]:
    """The block raises ``error`` (its message matching ``match``) and leaves the ring's
    submission side and pins as they were."""
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        yield
    assert sq_counters(ring) == before


def check_submit(ring: IoUring, sqpoll: bool, expected: int) -> None:
    """submit() submits ``expected`` SQEs (with SQPOLL the kernel thread may take them first)."""
    submitted = ring.submit()
    if sqpoll:
        assert 0 <= submitted <= expected
    else:
        assert submitted == expected
