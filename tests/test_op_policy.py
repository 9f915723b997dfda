"""The per-opcode policy (cpp/bindings/op_policy.hpp): one table read by the Sqe setters,
push_sqes and the flush, and one registered-buffer range check read by every fixed-buffer path.

These tests pin down the places where the four tables it replaced disagreed, and that the
three range checks it replaced now agree on every edge of a registered buffer.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sqe_support import addr_of, sq_counters

from iouring import SQE_DTYPE, Cqe, FsyncFlags, IoUring, Op


def _reap(ring: IoUring, n: int) -> list[Cqe]:
    ring.submit_and_wait(n)
    return [ring.copy_cqe() for _ in range(n)]


def test_op_policy_fsync_rw_flags_setter_checks_like_push_sqes(
    ring: IoUring, tmp_file: Any
) -> None:
    """The Sqe setter took any rw_flags on an FSYNC (only push_sqes and the prep method limited
    them to DATASYNC); now the one limit of the FSYNC row applies to both."""
    f = tmp_file(b"x")
    sqe = ring.fsync(0xF5, f.fd)
    before = sqe.fields()
    with pytest.raises(ValueError, match=r"rw_flags.*DATASYNC"):
        sqe.rw_flags = 4
    assert sqe.fields() == before
    sqe.rw_flags = int(FsyncFlags.DATASYNC)
    assert sqe.rw_flags == FsyncFlags.DATASYNC
    assert _reap(ring, 1) == [Cqe(0xF5, 0, 0)]

    rows = np.zeros(1, dtype=SQE_DTYPE)
    rows["opcode"], rows["fd"], rows["rw_flags"] = Op.FSYNC, f.fd, 4
    with pytest.raises(ValueError, match=r"rw_flags of Op.FSYNC.*DATASYNC"):
        ring.push_sqes(rows)


def test_op_policy_send_fields_stay_read_only(ring: IoUring) -> None:
    """SEND's row is not editable: ioprio there selects fixed buffers and bundles."""
    a, b = os.pipe()
    try:
        sqe = ring.write(1, b, b"data", -1)
        sqe.ioprio = 0  # WRITE is editable
        left, right = socket.socketpair()
        try:
            send = ring.send(2, left.fileno(), b"hi")
            with pytest.raises(ValueError, match="cannot be changed"):
                send.ioprio = 4
            assert len(_reap(ring, 2)) == 2
        finally:
            left.close()
            right.close()
    finally:
        os.close(a)
        os.close(b)


# The edges of a 64-byte registered buffer, as (offset from its start, length, accepted).
EDGES = [
    (0, 64, True),  # the whole buffer
    (64, 0, True),  # empty, at the very end
    (0, 0, True),  # empty, at the start
    (63, 1, True),  # the last byte
    (63, 2, False),  # one byte past the end
    (64, 1, False),  # starts at the end
    (-1, 1, False),  # one byte before the start
    (1, 64, False),  # shifted by one
]


@pytest.mark.parametrize(("offset", "length", "accepted"), EDGES)
def test_op_policy_registered_range_agrees_on_every_path(
    make_default_ring: Callable[..., IoUring],
    tmp_file: Any,
    offset: int,
    length: int,
    accepted: bool,
) -> None:
    """The prep method, the batch method and push_sqes take and refuse the same ranges."""
    ring = make_default_ring(8)
    f = tmp_file(bytes(range(256)) * 2)
    outer = bytearray(256)  # the registered buffer is outer[64:128]
    view = memoryview(outer)
    registered = view[64:128]
    ring.register_buffers([registered])
    base = addr_of(outer) + 64
    results: dict[str, bool] = {}
    before = sq_counters(ring)

    # The one-call method takes a memoryview slice of the registered buffer's memory.
    start = 64 + offset
    try:
        ring.read_fixed(1, f.fd, view[start : start + length], 0, 0)
        results["read_fixed"] = True
    except ValueError:
        results["read_fixed"] = False
    # The batch method takes offsets from the buffer's start: -1 cannot be said there.
    if offset >= 0:
        try:
            ring.read_fixed_batch(2, f.fd, 0, 0, length, offset, count=1)
            results["read_fixed_batch"] = True
        except ValueError:
            results["read_fixed_batch"] = False
    rows = np.zeros(1, dtype=SQE_DTYPE)
    rows["opcode"], rows["fd"], rows["user_data"] = Op.READ_FIXED, f.fd, 3
    rows["addr"], rows["len"] = base + offset, length
    try:
        ring.push_sqes(rows)
        results["push_sqes"] = True
    except ValueError:
        results["push_sqes"] = False

    assert set(results.values()) == {accepted}, results
    taken = sum(results.values())
    assert ring.sq_ready() == before["sq_ready"] + taken
    cqes = _reap(ring, taken) if taken else []
    assert all(c.res == length for c in cqes), cqes
    ring.unregister_buffers()
