"""Ring setup, parameters, queue accounting, wrap-around and overflow.

Ports Zig's IoUring tests 1 (structs/offsets/entries), 2 (nop) and 40 (copy_cqes with a wrapping
CQ, here with NOPs), plus the SQ-full, wrap-around and overflow cases of STYLE.md.
"""

from __future__ import annotations

import errno
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqe_support import U64_MAX, check_submit, sq_counters, sqe_fields

import iouring
from iouring import (
    CQE_DTYPE,
    Cqe,
    CqeFlags,
    EnterFlags,
    EntriesNotPowerOfTwo,
    EntriesZero,
    Features,
    IoUring,
    Op,
    SetupFlags,
    SqeFlags,
    SqFlags,
    SubmissionQueueFull,
)

U32 = 2**32


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Polls ``predicate`` (for state a SQPOLL kernel thread updates on its own)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


def nop_retrying(ring: IoUring, sqpoll: bool, user_data: int) -> None:
    """``ring.nop(user_data)``; under SQPOLL the kernel thread may not have consumed the SQ yet,
    so a full SQ waits for space (IORING_ENTER_SQ_WAIT) instead of failing."""
    while True:
        try:
            ring.nop(user_data)
            return
        except SubmissionQueueFull:
            if not sqpoll:
                raise
            ring.enter(0, 0, EnterFlags.SQ_WAKEUP | EnterFlags.SQ_WAIT)


def reap(ring: IoUring, n: int) -> list[tuple[int, int, int]]:
    """Exactly ``n`` completions as (user_data, res, flags), waiting as needed."""
    got: list[tuple[int, int, int]] = []
    while len(got) < n:
        batch = ring.copy_cqes(wait_nr=1)
        got.extend((int(c["user_data"]), int(c["res"]), int(c["flags"])) for c in batch)
    assert len(got) == n, got
    return got


# --------------------------------------------------------------------------------------------
# Constants and errors (Zig test 1)


def test_constants_struct_sizes() -> None:
    assert iouring.SQE_SIZE == 64
    assert iouring.CQE_SIZE == 16
    assert iouring.PARAMS_SIZE == 120


def test_constants_mmap_offsets() -> None:
    assert iouring.OFF_SQ_RING == 0
    assert iouring.OFF_CQ_RING == 0x8000000
    assert iouring.OFF_SQES == 0x10000000


def test_constants_register_sentinels() -> None:
    assert iouring.FILE_INDEX_ALLOC == 2**32 - 1
    assert iouring.REGISTER_FILES_SKIP == -2


def test_errors_hierarchy() -> None:
    assert issubclass(iouring.IoUringError, Exception)
    for exc in (iouring.SubmissionQueueFull, iouring.StaleSqeError, iouring.RingForkedError):
        assert issubclass(exc, iouring.IoUringError)
    assert issubclass(EntriesZero, ValueError)
    assert issubclass(EntriesNotPowerOfTwo, ValueError)


# --------------------------------------------------------------------------------------------
# Setup


def test_entries_zero_refused() -> None:
    with pytest.raises(EntriesZero):
        IoUring(0)


@pytest.mark.parametrize("entries", [3, 5, 6, 7, 100, 1000, 32767])
def test_entries_not_power_of_two_refused(entries: int) -> None:
    with pytest.raises(EntriesNotPowerOfTwo):
        IoUring(entries)


@pytest.mark.parametrize("entries", [65536, 2**20, 2**31])
def test_entries_too_large_refused(entries: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        IoUring(entries)


@pytest.mark.parametrize("entries", [1, 2, 4, 8, 64, 1024, 32768])
def test_entries_power_of_two_sizes(entries: int) -> None:
    with IoUring(entries) as ring:
        assert ring.sq_entries == entries
        assert ring.cq_entries == 2 * entries
        assert ring.sq_space_left() == entries
        assert (ring.sqe_head, ring.sqe_tail, ring.sq_head, ring.sq_tail) == (0, 0, 0, 0)
        assert (ring.cq_head, ring.cq_tail, ring.cq_overflow, ring.sq_dropped) == (0, 0, 0, 0)
        assert (ring.in_flight, ring.pinned) == (0, 0)


def test_entries_cq_entries_keyword() -> None:
    with IoUring(4, cq_entries=64) as ring:
        assert ring.sq_entries == 4
        assert ring.cq_entries == 64


@pytest.mark.parametrize(
    "flag",
    [
        # CQE32 and SQE128 rings are supported now: no longer refused.
        SetupFlags.NO_MMAP,
        SetupFlags.REGISTERED_FD_ONLY,
        SetupFlags.CQE_MIXED,
        SetupFlags.SQE_MIXED,
        SetupFlags.SQ_REWIND,
    ],
    ids=lambda f: f.name,
)
def test_setup_flags_unsupported_refused(flag: SetupFlags) -> None:
    assert flag.name is not None
    with pytest.raises(ValueError, match=flag.name):
        IoUring(4, flags=flag)


@pytest.mark.parametrize("bit", [1 << 25, 1 << 30, 1 << 31])
def test_setup_flags_unknown_bit_refused(bit: int) -> None:
    with pytest.raises(ValueError, match="unknown setup flag bits"):
        IoUring(4, flags=bit)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"flags": SetupFlags.TASKRUN_FLAG},  # needs COOP_TASKRUN or DEFER_TASKRUN
        {"flags": SetupFlags.SQPOLL | SetupFlags.COOP_TASKRUN},  # IPI flags make no sense
        {"flags": SetupFlags.HYBRID_IOPOLL},  # needs IOPOLL
        {"flags": SetupFlags.ATTACH_WQ, "wq_fd": "pipe"},  # wq_fd must be a ring
    ],
    ids=[
        "taskrun_flag_alone",
        "sqpoll_coop_taskrun",
        "hybrid_iopoll_alone",
        "attach_wq_not_a_ring",
    ],
)
def test_setup_kernel_refusal_raises_oserror(kwargs: dict[str, Any], pipe: tuple[int, int]) -> None:
    if kwargs.get("wq_fd") == "pipe":
        kwargs = {**kwargs, "wq_fd": pipe[0]}
    with pytest.raises(OSError, match="Invalid argument") as excinfo:
        IoUring(4, **kwargs)
    assert excinfo.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    "kwargs",
    [
        {"flags": SetupFlags.DEFER_TASKRUN},  # needs SINGLE_ISSUER
        {"flags": SetupFlags.SQ_AFF},  # needs SQPOLL
        {"cq_entries": 2},  # fewer CQEs than SQEs
    ],
    ids=["defer_taskrun_alone", "sq_aff_alone", "cq_entries_below_entries"],
)
def test_setup_invalid_combination_refused(kwargs: dict[str, Any]) -> None:
    """Refused before the syscall (ValueError) or by the kernel (OSError EINVAL)."""
    with pytest.raises((ValueError, OSError)) as excinfo:
        IoUring(8, **kwargs)
    if isinstance(excinfo.value, OSError):
        assert excinfo.value.errno == errno.EINVAL


def test_setup_attach_wq(make_default_ring: Callable[..., IoUring]) -> None:
    first = make_default_ring(4)
    second = make_default_ring(4, flags=SetupFlags.ATTACH_WQ, wq_fd=first.fd)
    assert SetupFlags.ATTACH_WQ in second.flags
    second.nop(0xA77AC4ED)
    assert second.submit() == 1
    assert second.copy_cqe() == Cqe(0xA77AC4ED, 0, 0)


def test_setup_flags_and_features_are_enums(ring: IoUring, ring_config: Any) -> None:
    assert isinstance(ring.flags, SetupFlags)
    assert ring.flags & ring_config.flags == ring_config.flags
    assert isinstance(ring.features, Features)
    assert Features.SINGLE_MMAP in ring.features
    assert Features.NODROP in ring.features
    assert isinstance(ring.sq_flags, SqFlags)


def test_probe_includes_nop_and_read(ring: IoUring) -> None:
    probe = ring.probe()
    assert isinstance(probe, frozenset)
    assert all(isinstance(op, Op) for op in probe)
    assert Op.NOP in probe
    assert Op.READ in probe
    raw = ring.probe_ops()
    assert all(isinstance(op, int) for op in raw)
    assert {int(op) for op in probe} == {op for op in raw if op <= max(Op)}


# --------------------------------------------------------------------------------------------
# NOP and the counters (Zig test 2)


def test_nop_submit_and_copy_cqe(make_ring: Callable[..., IoUring], ring_config: Any) -> None:
    ring = make_ring(1)
    sqe = ring.nop(0xAAAAAAAA)
    assert sqe.fields() == sqe_fields(opcode=Op.NOP, user_data=0xAAAAAAAA)
    assert (ring.sqe_head, ring.sqe_tail, ring.sq_tail, ring.cq_head) == (0, 1, 0, 0)
    assert ring.sq_ready() == 1
    assert ring.cq_ready() == 0

    check_submit(ring, ring_config.sqpoll, 1)
    assert (ring.sqe_head, ring.sqe_tail, ring.sq_tail, ring.cq_head) == (1, 1, 1, 0)
    if not ring_config.sqpoll:
        assert ring.sq_ready() == 0
    if ring_config.inline_completions:
        assert ring.cq_ready() == 1

    assert ring.copy_cqe() == Cqe(0xAAAAAAAA, 0, 0)
    assert ring.cq_head == 1
    assert ring.cq_ready() == 0
    wait_until(lambda: ring.sq_ready() == 0)


def test_nop_io_drain_after_first(make_ring: Callable[..., IoUring], ring_config: Any) -> None:
    ring = make_ring(1)
    ring.nop(0xAAAAAAAA)
    check_submit(ring, ring_config.sqpoll, 1)
    assert ring.copy_cqe() == Cqe(0xAAAAAAAA, 0, 0)

    wait_until(lambda: ring.sq_space_left() == 1)
    barrier = ring.nop(0xBBBBBBBB)
    barrier.flags |= SqeFlags.IO_DRAIN
    assert barrier.fields() == sqe_fields(
        opcode=Op.NOP, flags=SqeFlags.IO_DRAIN, user_data=0xBBBBBBBB
    )
    check_submit(ring, ring_config.sqpoll, 1)
    assert ring.copy_cqe() == Cqe(0xBBBBBBBB, 0, 0)
    assert (ring.sqe_head, ring.sqe_tail, ring.sq_tail, ring.cq_head) == (2, 2, 2, 2)


def test_nop_close_sets_closed(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(1)
    assert ring.fd >= 0
    was_closed = ring.closed
    ring.close()
    assert not was_closed and ring.closed
    with pytest.raises(ValueError, match="closed ring"):
        ring.fd  # noqa: B018


def test_close_twice_is_fine(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(2)
    ring.close()
    ring.close()
    assert ring.closed


def test_context_manager_closes(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(2)
    with ring as entered:
        assert entered is ring
        entered.nop(0xC0C0)
        entered.submit_and_wait(1)
        assert entered.copy_cqe() == Cqe(0xC0C0, 0, 0)
    assert ring.closed


@settings(max_examples=50, deadline=None)
@given(user_data=st.integers(0, U64_MAX))
def test_nop_user_data_round_trip(user_data: int) -> None:
    with IoUring(1) as ring:
        assert ring.nop(user_data).user_data == user_data
        assert ring.submit() == 1
        assert ring.copy_cqe() == Cqe(user_data, 0, 0)


@pytest.mark.parametrize("user_data", [-1, 2**64, 2**100])
def test_nop_user_data_out_of_range_refused(ring: IoUring, user_data: int) -> None:
    before = sq_counters(ring)
    with pytest.raises((OverflowError, ValueError), match="user_data"):
        ring.nop(user_data)
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# get_sqe


def test_get_sqe_zeroed(ring: IoUring, ring_config: Any) -> None:
    sqe = ring.get_sqe()
    assert sqe.valid
    assert sqe.fields() == sqe_fields()
    assert (sqe.opcode, sqe.addr, sqe.len, sqe.addr3) == (Op.NOP, 0, 0, 0)
    check_submit(ring, ring_config.sqpoll, 1)
    assert ring.copy_cqe() == Cqe(0, 0, 0)


def test_get_sqe_zeroed_after_slot_reuse(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(1)
    zero_fd = os.open("/dev/zero", os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(b"\x2a" * 8)
        ring.read(0x4EAD, zero_fd, buf, 0)
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(0x4EAD, 8, 0)
        wait_until(lambda: ring.sq_space_left() == 1)
        sqe = ring.get_sqe()  # the slot the READ used
        assert sqe.fields() == sqe_fields()
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(0, 0, 0)
    finally:
        os.close(zero_fd)


def test_get_sqe_raw_nop_reset(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(1)
    zero_fd = os.open("/dev/zero", os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(8)
        ring.read(0x4EAD, zero_fd, buf, 0)
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(0x4EAD, 8, 0)
        wait_until(lambda: ring.sq_space_left() == 1)
        sqe = ring.get_sqe_raw()  # the slot the READ used: its buffer pointer must be gone
        assert sqe.valid
        assert sqe.opcode == Op.NOP
        assert sqe.addr == 0
        assert sqe.addr3 == 0
        sqe.user_data = 0x4A3
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(0x4A3, 0, 0)
    finally:
        os.close(zero_fd)


@pytest.mark.parametrize("entries", [1, 2, 4, 8])
def test_get_sqe_sq_full_after_exactly_entries(
    make_ring: Callable[..., IoUring], ring_config: Any, entries: int
) -> None:
    ring = make_ring(entries)
    assert ring.sq_entries == entries
    for i in range(entries):
        assert ring.sq_space_left() == entries - i
        ring.get_sqe().user_data = 0x5100 + i
    before = sq_counters(ring)
    assert before["sq_space_left"] == 0
    assert before["sq_ready"] == entries
    assert (before["sqe_head"], before["sqe_tail"]) == (0, entries)
    with pytest.raises(SubmissionQueueFull):
        ring.get_sqe()
    with pytest.raises(SubmissionQueueFull):
        ring.get_sqe_raw()
    with pytest.raises(SubmissionQueueFull):
        ring.nop(0xDEAD)
    assert sq_counters(ring) == before

    check_submit(ring, ring_config.sqpoll, entries)
    got = reap(ring, entries)
    assert sorted(got) == [(0x5100 + i, 0, 0) for i in range(entries)]


def test_sq_ready_and_space_left(ring: IoUring, ring_config: Any) -> None:
    assert (ring.sq_ready(), ring.sq_space_left()) == (0, 16)
    for i in range(3):
        ring.nop(0x3000 + i)
    assert (ring.sq_ready(), ring.sq_space_left()) == (3, 13)
    check_submit(ring, ring_config.sqpoll, 3)
    assert sorted(reap(ring, 3)) == [(0x3000 + i, 0, 0) for i in range(3)]
    wait_until(lambda: ring.sq_ready() == 0)
    assert ring.sq_space_left() == 16


# --------------------------------------------------------------------------------------------
# submit, flush, enter


def test_submit_and_wait_returns_submitted(ring: IoUring, ring_config: Any) -> None:
    for i in range(3):
        ring.nop(0x5A00 + i)
    submitted = ring.submit_and_wait(3)
    if not ring_config.sqpoll:
        assert submitted == 3
    assert ring.cq_ready() == 3
    assert sorted(reap(ring, 3)) == [(0x5A00 + i, 0, 0) for i in range(3)]


def test_submit_and_wait_blocks_until_ready(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any]
) -> None:
    """A completion that is not ready after submitting is waited for (the wait that releases
    the GIL); one that completed while submitting is not."""
    r, w = pipe
    buf = bytearray(4)
    ring.read(0x5B01, r, buf, -1)
    ring.nop(0x5B02)
    ring.submit_and_wait(1)
    assert reap(ring, 1) == [(0x5B02, 0, 0)]
    delayed_write(w, b"late", 0.1)
    assert ring.submit_and_wait(1) == 0  # nothing left to submit; waits for the read
    assert reap(ring, 1) == [(0x5B01, 4, 0)]
    assert buf == b"late"


def test_submit_and_wait_timeout_raises_after_submitting(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    r, w = pipe
    buf = bytearray(2)
    ring.read(0x5B03, r, buf, -1)
    with pytest.raises(TimeoutError, match="0 of 1"):
        ring.submit_and_wait(1, timeout=0.05)
    assert ring.sq_ready() == 0 and ring.in_flight == 1  # submitted all the same
    os.write(w, b"ok")
    ring.submit_and_wait(1)
    assert reap(ring, 1) == [(0x5B03, 2, 0)]


def test_flush_sq_publishes_without_entering(ring: IoUring, ring_config: Any) -> None:
    sqe = ring.nop(0xF1054)
    assert ring.in_flight == 0
    flushed = ring.flush_sq()
    assert not sqe.valid
    assert (ring.sqe_head, ring.sqe_tail, ring.sq_tail) == (1, 1, 1)
    assert ring.in_flight == 1
    if not ring_config.sqpoll:
        # Published but not consumed: the kernel only takes it on the next enter.
        assert flushed == 1
        assert ring.sq_ready() == 1
        assert ring.sq_head == 0
        assert ring.cq_ready() == 0
    check_submit(ring, ring_config.sqpoll, 1)
    assert ring.copy_cqe() == Cqe(0xF1054, 0, 0)
    assert ring.in_flight == 0


def test_enter_raw_submits_and_waits(ring: IoUring, ring_config: Any) -> None:
    ring.nop(0xE17E4)
    ring.flush_sq()
    flags = EnterFlags.GETEVENTS
    if ring_config.sqpoll:
        flags |= EnterFlags.SQ_WAKEUP  # the kernel thread may sleep: only a wakeup takes the SQE
    assert ring.enter(1, 1, flags) == 1
    assert ring.cq_ready() == 1
    assert ring.copy_cqe() == Cqe(0xE17E4, 0, 0)


@pytest.mark.parametrize("flags", [1 << 30, 1 << 31], ids=["bit30", "bit31"])
def test_enter_unknown_flags_refused(ring: IoUring, flags: int) -> None:
    """Refused by the binding (ValueError naming flags) or by the kernel (OSError EINVAL)."""
    before = (ring.sq_ready(), ring.cq_ready(), ring.in_flight)
    with pytest.raises((ValueError, OSError)) as excinfo:
        ring.enter(0, 0, flags)
    if isinstance(excinfo.value, OSError):
        assert excinfo.value.errno == errno.EINVAL
    else:
        assert "flags" in str(excinfo.value)
    assert (ring.sq_ready(), ring.cq_ready(), ring.in_flight) == before


# --------------------------------------------------------------------------------------------
# Reaping one at a time


def test_peek_cqe_does_not_consume(ring: IoUring) -> None:
    assert ring.peek_cqe() is None
    ring.nop(0x9EE4)
    ring.submit_and_wait(1)
    head = ring.cq_head
    assert ring.peek_cqe() == Cqe(0x9EE4, 0, 0)
    assert ring.peek_cqe() == Cqe(0x9EE4, 0, 0)
    assert ring.cq_ready() == 1
    assert ring.cq_head == head
    ring.cqe_seen()
    assert ring.cq_ready() == 0
    assert ring.cq_head == head + 1
    assert ring.peek_cqe() is None


def test_cqe_seen_accepts_the_cqe(ring: IoUring) -> None:
    ring.nop(0x5EE4)
    ring.submit_and_wait(1)
    cqe = ring.peek_cqe()
    assert cqe == Cqe(0x5EE4, 0, 0)
    ring.cqe_seen(cqe)
    assert ring.cq_ready() == 0
    assert ring.in_flight == 0


def test_cq_advance_consumes(ring: IoUring) -> None:
    for i in range(3):
        ring.nop(0xADD0 + i)
    ring.submit_and_wait(3)
    head = ring.cq_head
    ring.cq_advance(2)
    assert ring.cq_ready() == 1
    assert ring.cq_head == head + 2
    with pytest.raises(ValueError, match="exceeds the completions ready"):
        ring.cq_advance(2)
    assert ring.cq_ready() == 1
    assert ring.cq_head == head + 2
    assert ring.peek_cqe() == Cqe(0xADD0 + 2, 0, 0)
    ring.cq_advance(1)
    assert ring.cq_ready() == 0
    assert ring.in_flight == 0


def test_cqe_value_semantics() -> None:
    assert Cqe() == Cqe(0, 0, 0)
    cqe = Cqe(0xAAAAAAAA, -errno.EAGAIN, int(CqeFlags.MORE))
    assert (cqe.user_data, cqe.res, cqe.flags) == (0xAAAAAAAA, -errno.EAGAIN, CqeFlags.MORE)
    assert cqe == Cqe(0xAAAAAAAA, -errno.EAGAIN, int(CqeFlags.MORE))
    assert hash(cqe) == hash(Cqe(0xAAAAAAAA, -errno.EAGAIN, int(CqeFlags.MORE)))
    assert cqe != Cqe(0xAAAAAAAA, -errno.EAGAIN, 0)
    assert cqe != Cqe(0xAAAAAAAB, -errno.EAGAIN, int(CqeFlags.MORE))
    assert cqe != (0xAAAAAAAA, -errno.EAGAIN, int(CqeFlags.MORE))
    assert Cqe(U64_MAX, 0, 0).user_data == U64_MAX


def test_cqe_more_and_buffer_id() -> None:
    assert Cqe(1, 0, int(CqeFlags.MORE)).more
    assert not Cqe(1, 0, 0).more
    assert Cqe(1, 0, 0).buffer_id is None
    assert Cqe(1, 8, int(CqeFlags.BUFFER) | (7 << 16)).buffer_id == 7


def test_cqe_result_returns_res() -> None:
    assert Cqe(1, 20, 0).result() == 20
    assert Cqe(1, 0, 0).result() == 0


@pytest.mark.parametrize(
    ("err", "exc_type"),
    [
        (errno.ENOENT, FileNotFoundError),
        (errno.EAGAIN, BlockingIOError),
        (errno.EBADF, OSError),
        (errno.ECANCELED, OSError),
    ],
    ids=lambda v: errno.errorcode[v] if isinstance(v, int) else v.__name__,
)
def test_cqe_result_raises_oserror(err: int, exc_type: type[OSError]) -> None:
    with pytest.raises(exc_type) as excinfo:
        Cqe(0xE440, -err, 0).result()
    assert excinfo.value.errno == err


# --------------------------------------------------------------------------------------------
# Sqe attributes


WRITABLE_ATTRIBUTES = [
    ("flags", int(SqeFlags.IO_LINK | SqeFlags.ASYNC)),
    ("ioprio", 3),
    ("fd", 5),
    ("off", 0x1234_5678_9ABC),
    ("rw_flags", 7),
    ("user_data", U64_MAX),
    ("buf_index", 9),
    ("personality", 2),
    ("splice_fd_in", 11),
]


def test_sqe_writable_attributes_round_trip(ring: IoUring) -> None:
    sqe = ring.nop(0)
    for name, value in WRITABLE_ATTRIBUTES:
        setattr(sqe, name, value)
    for name, value in WRITABLE_ATTRIBUTES:
        assert getattr(sqe, name) == value, name
    assert sqe.fields() == sqe_fields(opcode=Op.NOP, **dict(WRITABLE_ATTRIBUTES))
    for name, _ in WRITABLE_ATTRIBUTES:
        setattr(sqe, name, 0)
    sqe.user_data = 0x5E7
    assert sqe.fields() == sqe_fields(opcode=Op.NOP, user_data=0x5E7)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x5E7, 0, 0)


@pytest.mark.parametrize("name", ["opcode", "addr", "len", "addr3"])
def test_sqe_read_only_attributes_raise(ring: IoUring, name: str) -> None:
    sqe = ring.nop(0x40)
    with pytest.raises(AttributeError):
        setattr(sqe, name, 1)
    assert sqe.fields() == sqe_fields(opcode=Op.NOP, user_data=0x40)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x40, 0, 0)


def test_sqe_cqe_skip_success_refused(ring: IoUring) -> None:
    """Alone, a skipped completion could never be accounted for (see test_skip_success.py)."""
    sqe = ring.nop(0x5C1)
    with pytest.raises(ValueError, match="CQE_SKIP_SUCCESS is refused"):
        sqe.flags = SqeFlags.CQE_SKIP_SUCCESS
    assert sqe.flags == 0
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x5C1, 0, 0)


def test_sqe_cqe_skip_success_with_io_link_needs_the_chain_end(ring: IoUring) -> None:
    sqe = ring.nop(0x5C2)
    flags = SqeFlags.CQE_SKIP_SUCCESS | SqeFlags.IO_LINK
    if ring.flags & SetupFlags.SQPOLL:
        with pytest.raises(ValueError, match=r"CQE_SKIP_SUCCESS is refused.*SQPOLL"):
            sqe.flags = flags
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(0x5C2, 0, 0)
        return
    sqe.flags = flags
    with pytest.raises(ValueError, match=r"CQE_SKIP_SUCCESS.*not finished"):
        ring.submit()
    ring.nop(0x5C2)  # the chain's last member: one completion for both
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x5C2, 0, 0)
    assert ring.cq_ready() == 0 and ring.in_flight == 0


def test_sqe_prep_returns_same_handle(ring: IoUring) -> None:
    sqe = ring.get_sqe()
    assert sqe.prep_nop(0x77) is sqe
    assert sqe.fields() == sqe_fields(opcode=Op.NOP, user_data=0x77)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x77, 0, 0)


# --------------------------------------------------------------------------------------------
# Wrap-around and overflow


def test_sq_wrap_around_10000_nops(make_ring: Callable[..., IoUring], ring_config: Any) -> None:
    ring = make_ring(4)
    total = 10_000
    got: list[tuple[int, int, int]] = []
    for base in range(0, total, 4):
        for i in range(base, base + 4):
            nop_retrying(ring, ring_config.sqpoll, 0xC0DE0000 + i)
        check_submit(ring, ring_config.sqpoll, 4)
        got.extend(reap(ring, 4))
    assert sorted(got) == [(0xC0DE0000 + i, 0, 0) for i in range(total)]
    assert (ring.sqe_head, ring.sqe_tail, ring.sq_tail) == (total, total, total)
    assert (ring.cq_head, ring.cq_tail) == (total, total)
    wait_until(lambda: ring.sq_head == total)


def test_copy_cqes_wrapping_cq(make_ring: Callable[..., IoUring], ring_config: Any) -> None:
    """Zig test 40 with NOPs: a CQ of 4 read in batches that straddle its end."""
    ring = make_ring(2)
    assert ring.sq_entries == 2
    assert ring.cq_entries == 4
    out = np.zeros(8, dtype=CQE_DTYPE)

    def run_round(first: int, count: int) -> None:
        for half in range(0, count, 2):
            for i in range(first + half, first + half + 2):
                nop_retrying(ring, ring_config.sqpoll, i)
            check_submit(ring, ring_config.sqpoll, 2)
        seen: list[int] = []
        while len(seen) < count:
            batch = ring.copy_cqes(out, wait_nr=count - len(seen))
            assert len(batch) <= count - len(seen)
            assert np.all(batch["res"] == 0)
            assert np.all(batch["flags"] == 0)
            seen.extend(int(u) for u in batch["user_data"])
        assert sorted(seen) == list(range(first, first + count))

    run_round(0xAAAA0000, 2)
    assert ring.cq_head == 2
    # From here on each round of 4 reads the CQ array at indexes 2, 3, 0, 1.
    for i in range(1, 1024):
        run_round(0xBBBB0000 + 4 * i, 4)
        assert ring.cq_head == (i * 4 + 2) % U32


def test_cq_overflow_nodrop_4x(make_ring: Callable[..., IoUring], ring_config: Any) -> None:
    ring = make_ring(4)
    assert Features.NODROP in ring.features
    total = 4 * ring.cq_entries
    for base in range(0, total, 4):
        for i in range(base, base + 4):
            nop_retrying(ring, ring_config.sqpoll, 0x0F000000 + i)
        check_submit(ring, ring_config.sqpoll, 4)
    if ring_config.inline_completions:
        assert ring.cq_ready() == ring.cq_entries
        assert SqFlags.CQ_OVERFLOW in ring.sq_flags
        assert ring.cq_ring_needs_flush()
    got = reap(ring, total)
    counts = Counter(u for u, _, _ in got)
    assert counts == Counter(0x0F000000 + i for i in range(total))
    assert all(res == 0 and flags == 0 for _, res, flags in got)
    assert ring.cq_overflow == 0
    assert not ring.cq_ring_needs_flush()
    assert ring.copy_cqes().shape == (0,)


# --------------------------------------------------------------------------------------------
# Eventfd


def test_register_eventfd_signalled(ring: IoUring) -> None:
    efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    try:
        ring.register_eventfd(efd)
        ring.nop(0xEF0)
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(0xEF0, 0, 0)
        deadline = time.monotonic() + 5
        while True:
            try:
                assert os.eventfd_read(efd) >= 1
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "eventfd never signalled"
                time.sleep(0.001)
        ring.unregister_eventfd()
    finally:
        os.close(efd)


# --------------------------------------------------------------------------------------------
# Closed rings


def _closed_ring_calls() -> list[tuple[str, Callable[[IoUring], object]]]:
    buf = bytearray(8)
    return [
        ("fd", lambda r: r.fd),
        ("flags", lambda r: r.flags),
        ("features", lambda r: r.features),
        ("sq_entries", lambda r: r.sq_entries),
        ("cq_entries", lambda r: r.cq_entries),
        ("sqe_head", lambda r: r.sqe_head),
        ("sqe_tail", lambda r: r.sqe_tail),
        ("sq_head", lambda r: r.sq_head),
        ("sq_tail", lambda r: r.sq_tail),
        ("sq_flags", lambda r: r.sq_flags),
        ("sq_dropped", lambda r: r.sq_dropped),
        ("cq_head", lambda r: r.cq_head),
        ("cq_tail", lambda r: r.cq_tail),
        ("cq_overflow", lambda r: r.cq_overflow),
        ("in_flight", lambda r: r.in_flight),
        ("pinned", lambda r: r.pinned),
        ("__enter__", lambda r: r.__enter__()),
        ("get_sqe", lambda r: r.get_sqe()),
        ("get_sqe_raw", lambda r: r.get_sqe_raw()),
        ("flush_sq", lambda r: r.flush_sq()),
        ("submit", lambda r: r.submit()),
        ("submit_and_wait", lambda r: r.submit_and_wait(0)),
        ("enter", lambda r: r.enter(0, 0, 0)),
        ("sq_ready", lambda r: r.sq_ready()),
        ("sq_space_left", lambda r: r.sq_space_left()),
        ("cq_ready", lambda r: r.cq_ready()),
        ("sq_ring_needs_enter", lambda r: r.sq_ring_needs_enter()),
        ("cq_ring_needs_flush", lambda r: r.cq_ring_needs_flush()),
        ("copy_cqes", lambda r: r.copy_cqes()),
        ("copy_cqes_out", lambda r: r.copy_cqes(np.zeros(4, dtype=CQE_DTYPE))),
        ("copy_cqe", lambda r: r.copy_cqe()),
        ("cqe_seen", lambda r: r.cqe_seen()),
        ("cq_advance", lambda r: r.cq_advance(0)),
        ("peek_cqe", lambda r: r.peek_cqe()),
        ("register_files", lambda r: r.register_files([0])),
        ("register_files_sparse", lambda r: r.register_files_sparse(1)),
        ("register_files_update", lambda r: r.register_files_update(0, [0])),
        ("unregister_files", lambda r: r.unregister_files()),
        ("register_buffers", lambda r: r.register_buffers([buf])),
        ("unregister_buffers", lambda r: r.unregister_buffers()),
        ("register_eventfd", lambda r: r.register_eventfd(0)),
        ("unregister_eventfd", lambda r: r.unregister_eventfd()),
        ("enable_rings", lambda r: r.enable_rings()),
        ("probe_ops", lambda r: r.probe_ops()),
        ("probe", lambda r: r.probe()),
        ("nop", lambda r: r.nop(1)),
        ("submit_and_copy_cqes", lambda r: r.submit_and_copy_cqes(np.zeros(2, dtype=CQE_DTYPE))),
        ("read", lambda r: r.read(1, 0, buf, 0)),
        ("write", lambda r: r.write(1, 1, b"x", 0)),
        ("readv", lambda r: r.readv(1, 0, [buf], 0)),
        ("writev", lambda r: r.writev(1, 1, [b"x"], 0)),
        ("fsync", lambda r: r.fsync(1, 1)),
        ("read_fixed", lambda r: r.read_fixed(1, 0, buf, 0, 0)),
        ("write_fixed", lambda r: r.write_fixed(1, 1, buf, 0, 0)),
        ("splice", lambda r: r.splice(1, 0, -1, 1, -1, 1)),
        ("openat", lambda r: r.openat(1, -100, "/nonexistent", os.O_RDONLY)),
        ("close_fd", lambda r: r.close_fd(1, 987654)),
    ]


CLOSED_RING_CALLS = _closed_ring_calls()


@pytest.mark.parametrize(
    "call", [c for _, c in CLOSED_RING_CALLS], ids=[n for n, _ in CLOSED_RING_CALLS]
)
def test_closed_ring_raises_value_error(
    make_default_ring: Callable[..., IoUring], call: Callable[[IoUring], object]
) -> None:
    ring = make_default_ring(2)
    ring.close()
    with pytest.raises(ValueError, match="closed ring"):
        call(ring)
    assert ring.closed


# --------------------------------------------------------------------------------------------
# Sqe handle objects: the ring reuses the last one it returned when nobody else holds it


def test_sqe_handle_held_is_never_reused(ring: IoUring) -> None:
    first = ring.nop(0x11)
    second = ring.nop(0x22)
    third = ring.get_sqe()
    assert first is not second and second is not third
    assert (first.user_data, second.user_data, third.user_data) == (0x11, 0x22, 0)
    third.prep_nop(0x33)
    assert first.user_data == 0x11  # still on its own slot
    ring.submit_and_wait(3)
    assert sorted(reap(ring, 3)) == [(0x11, 0, 0), (0x22, 0, 0), (0x33, 0, 0)]


def test_sqe_handle_stale_after_reuse_cycles(ring: IoUring) -> None:
    kept = ring.nop(0x44)
    ring.submit_and_wait(1)
    reap(ring, 1)
    for i in range(20):  # handles dropped at once: these reuse one object
        ring.nop(0x100 + i)
        ring.submit_and_wait(1)
        assert reap(ring, 1) == [(0x100 + i, 0, 0)]
    with pytest.raises(iouring.StaleSqeError):
        kept.user_data = 0x55
    with pytest.raises(iouring.StaleSqeError):
        kept.prep_nop(0x55)
    assert not kept.valid


def test_sqe_handle_dropped_then_new_handle_names_new_slot(ring: IoUring) -> None:
    ring.nop(0x66)  # its handle is dropped here
    handle = ring.nop(0x77)
    assert handle.user_data == 0x77
    handle.user_data = 0x78  # writes the second slot, not the first
    ring.submit_and_wait(2)
    assert sorted(reap(ring, 2)) == [(0x66, 0, 0), (0x78, 0, 0)]
    assert not handle.valid


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_ring_collected_after_one_call_method() -> None:
    """The ring's cached handle references the ring: dropping the ring object must still
    close it (no reference cycle through the cache)."""
    ring = IoUring(4)
    fd = ring.fd
    ring.nop(0x88)
    ring.submit_and_wait(1)
    ring.copy_cqes()
    del ring
    assert not _fd_open(fd)


def test_ring_kept_alive_by_a_held_handle() -> None:
    ring = IoUring(4)
    fd = ring.fd
    handle = ring.nop(0x99)
    del ring
    assert _fd_open(fd)
    assert handle.valid and handle.user_data == 0x99
    del handle  # the last reference: the ring closes (its prepared NOP is never submitted)
    assert not _fd_open(fd)


# --------------------------------------------------------------------------------------------
# submit_and_wait and copy_cqe parse their own arguments (plain CPython methods)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.submit_and_wait(), "missing required argument 'wait_nr'"),
        (lambda r: r.submit_and_wait(1, 2), "takes 1 positional argument but 2 were given"),
        (lambda r: r.submit_and_wait(1, wait_nr=1), "multiple values for argument 'wait_nr'"),
        (lambda r: r.submit_and_wait(1, tiemout=1), "unexpected keyword argument 'tiemout'"),
        (lambda r: r.submit_and_wait("1"), "wait_nr"),
        (lambda r: r.copy_cqe(1.0), "takes 0 positional arguments but 1 were given"),
        (lambda r: r.copy_cqe(timeout="soon"), "timeout"),
        (lambda r: iouring._core.IoUring.copy_cqe(object()), "IoUring"),  # type: ignore[arg-type]
    ],
    ids=[
        "missing",
        "too_many",
        "twice",
        "unknown_kw",
        "bad_wait_nr",
        "positional",
        "bad_timeout",
        "not_a_ring",
    ],
)
def test_fast_methods_argument_errors(
    make_default_ring: Callable[..., IoUring], call: Callable[[IoUring], object], message: str
) -> None:
    ring = make_default_ring(2)
    ring.nop(0x5C00)
    with pytest.raises(TypeError, match=message):
        call(ring)
    assert ring.in_flight == 0  # refused before anything was submitted
    assert ring.submit_and_wait(wait_nr=1, timeout=5) == 1
    assert ring.copy_cqe(timeout=5) == Cqe(0x5C00, 0, 0)


def test_fast_methods_signatures() -> None:
    import inspect

    waits = "timeout=None, min_wait=None, sigmask=None, deadline=None, iowait=True"
    sig = f"(self, /, wait_nr, *, {waits})"
    assert str(inspect.signature(IoUring.submit_and_wait)) == sig
    assert str(inspect.signature(IoUring.copy_cqe)) == f"(self, /, *, {waits})"
    assert IoUring.submit_and_wait.__doc__ and IoUring.copy_cqe.__doc__
