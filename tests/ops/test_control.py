"""Timing and control: timeout (+ remove, update, link), cancel, poll (+ multishot, remove,
update), epoll_ctl/epoll_wait, msg_ring (data and fd passing), waitid, futex wait/wake/waitv,
fixed_fd_install, files_update and NOPs with injected results.

Ports Zig's IoUring tests 12 and 13 (timeout after a relative time / a number of completions),
14 (timeout_remove), 15 (link_timeout, on a pipe read instead of a socket) and 36 (waitid with
a forked child). Every operation gets an SQE field test, a whole-CQE test, argument validation
with the ring's counters unchanged, and, where it pins memory, a lifetime test that drops every
reference and collects garbage before the completion.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import datetime
import errno
import gc
import os
import select
import signal
import time
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from iouring import (
    EPOLL_CTL_ADD,
    EPOLL_CTL_DEL,
    EPOLL_EVENT_DTYPE,
    EPOLL_EVENT_SIZE,
    FILE_INDEX_ALLOC,
    FUTEX_BITSET_MATCH_ANY,
    FUTEX_WAITV_MAX,
    CancelFlags,
    Cqe,
    CqeFlags,
    FixedFdFlags,
    FutexFlags,
    IoUring,
    NopFlags,
    Op,
    PollFlags,
    SetupFlags,
    Siginfo,
    SqeFlags,
    TimeoutFlags,
)

from .conftest import (
    addr_of,
    reap,
    require_kernel,
    require_ops,
    run_one,
    sq_counters,
    sqe_fields,
    submit_and_reap,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

U32 = 2**32
PRIVATE_U32 = FutexFlags.SIZE_U32 | FutexFlags.PRIVATE
MSG_RING_CQE_SKIP = 1
MSG_RING_FLAGS_PASS = 2


def timespec_at(addr: int) -> tuple[int, int]:
    words = (ctypes.c_int64 * 2).from_address(addr)
    return (words[0], words[1])


def skip_if_einval(cqe: Cqe, what: str) -> None:
    if cqe.res == -errno.EINVAL:
        pytest.skip(f"kernel refuses {what} (EINVAL)")


class Buf(bytearray):
    """A bytearray that can be weakly referenced."""


class IntArray(array.array):  # type: ignore[type-arg]
    """An array.array that can be weakly referenced."""


# --------------------------------------------------------------------------------------------
# Timeouts (Zig ports 12, 13, 14, 15)


def test_timeout_relative(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(1)
    sqe = ring.timeout(0x55555555, 0.01)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.TIMEOUT, fd=-1, addr=fields["addr"], len=1, off=0, user_data=0x55555555
    )
    assert timespec_at(fields["addr"]) == (0, 10_000_000)  # a private copy
    assert ring.pinned == 1
    started = time.monotonic()
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x55555555, -errno.ETIME, 0)
    assert time.monotonic() - started >= 0.009
    assert ring.pinned == 0


def test_timeout_after_a_number_of_completions(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(2)
    sqe = ring.timeout(0x66666666, datetime.timedelta(seconds=3), 1)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.TIMEOUT, fd=-1, addr=fields["addr"], len=1, off=1, user_data=0x66666666
    )
    assert timespec_at(fields["addr"]) == (3, 0)
    ring.nop(0x77777777)
    ring.submit_and_wait(2)
    assert ring.copy_cqe() == Cqe(0x77777777, 0, 0)
    assert ring.copy_cqe() == Cqe(0x66666666, 0, 0)


def test_timeout_remove(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(2)
    ring.timeout(0x88888888, 3)
    sqe = ring.timeout_remove(0x99999999, 0x88888888)
    assert sqe.fields() == sqe_fields(
        opcode=Op.TIMEOUT_REMOVE, fd=-1, addr=0x88888888, user_data=0x99999999
    )
    got = submit_and_reap(ring, 2)
    assert got == {
        0x88888888: Cqe(0x88888888, -errno.ECANCELED, 0),
        0x99999999: Cqe(0x99999999, 0, 0),
    }
    ring.timeout_remove(0x9A, 0x88888888)
    assert run_one(ring) == Cqe(0x9A, -errno.ENOENT, 0)


def test_link_timeout_on_pipe_read(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, _ = pipe
    buf = Buf(8)
    read = ring.read(0x11111111, r, buf, -1)
    read.flags |= SqeFlags.IO_LINK
    sqe = ring.link_timeout(0x22222222, 0.001)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.LINK_TIMEOUT, fd=-1, addr=fields["addr"], len=1, user_data=0x22222222
    )
    assert timespec_at(fields["addr"]) == (0, 1_000_000)
    ref = weakref.ref(buf)
    del buf
    gc.collect()
    assert ref() is not None
    got = submit_and_reap(ring, 2)
    assert got[0x11111111] in (
        Cqe(0x11111111, -errno.EINTR, 0),
        Cqe(0x11111111, -errno.ECANCELED, 0),
    )
    assert got[0x22222222] in (
        Cqe(0x22222222, -errno.EALREADY, 0),
        Cqe(0x22222222, -errno.ETIME, 0),
    )
    gc.collect()
    assert ref() is None


def test_link_timeout_not_reached(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b"ready")
    buf = bytearray(5)
    ring.read(0x31, r, buf, -1).flags |= SqeFlags.IO_LINK
    ring.link_timeout(0x32, 5)
    got = submit_and_reap(ring, 2)
    assert got == {0x31: Cqe(0x31, 5, 0), 0x32: Cqe(0x32, -errno.ECANCELED, 0)}
    assert buf == b"ready"


def test_timeout_absolute(ring: IoUring) -> None:
    deadline = time.monotonic() + 0.01
    sqe = ring.get_sqe().prep_timeout(0xAB5, deadline, 0, TimeoutFlags.ABS)
    assert sqe.rw_flags == TimeoutFlags.ABS
    sec, nsec = timespec_at(sqe.addr)
    assert abs(sec + nsec / 1e9 - deadline) < 1e-6
    assert run_one(ring) == Cqe(0xAB5, -errno.ETIME, 0)
    assert time.monotonic() >= deadline
    # A deadline in the past fires at once.
    ring.timeout(0xAB6, 1.0, 0, TimeoutFlags.ABS)
    assert run_one(ring) == Cqe(0xAB6, -errno.ETIME, 0)


def test_timeout_realtime_clock(ring: IoUring) -> None:
    ring.timeout(0xAB7, time.time() + 0.005, 0, TimeoutFlags.ABS | TimeoutFlags.REALTIME)
    cqe = run_one(ring)
    skip_if_einval(cqe, "TimeoutFlags.REALTIME")
    assert cqe == Cqe(0xAB7, -errno.ETIME, 0)


def test_timeout_multishot_keeps_its_pin_until_the_final_cqe(ring: IoUring) -> None:
    sqe = ring.timeout(0x3517, 0.002, 3, TimeoutFlags.MULTISHOT)
    assert (sqe.off, sqe.rw_flags) == (3, TimeoutFlags.MULTISHOT)
    ring.submit()
    first = ring.copy_cqe(timeout=10)
    skip_if_einval(first, "TimeoutFlags.MULTISHOT")
    assert first == Cqe(0x3517, -errno.ETIME, CqeFlags.MORE)
    # Not final: the timespec copy stays pinned and the operation in flight.
    assert (ring.in_flight, ring.pinned) == (1, 1)
    assert ring.copy_cqe(timeout=10) == Cqe(0x3517, -errno.ETIME, CqeFlags.MORE)
    assert ring.copy_cqe(timeout=10) == Cqe(0x3517, -errno.ETIME, 0)
    assert (ring.in_flight, ring.pinned) == (0, 0)


def test_timeout_multishot_until_removed(ring: IoUring) -> None:
    # 20 ms between expiries: with 1 ms a loaded machine (SQPOLL thread competing for the CPU)
    # let expiries overflow the CQ, which ends the multishot early or stalled the test.
    ring.timeout(0x3518, 0.02, 0, TimeoutFlags.MULTISHOT)
    ring.submit()
    first = ring.copy_cqe(timeout=10)
    skip_if_einval(first, "TimeoutFlags.MULTISHOT")
    assert first == Cqe(0x3518, -errno.ETIME, CqeFlags.MORE)
    ring.timeout_remove(0x3519, 0x3518)
    ring.submit()
    # Expiries may still arrive (flagged MORE) before the removal lands.
    finals: dict[int, Cqe] = {}
    for _ in range(1000):  # 20 s of expiries at most: a removal that never lands fails
        if len(finals) == 2:
            break
        cqe = ring.copy_cqe(timeout=10)
        if cqe.more:
            assert cqe == Cqe(0x3518, -errno.ETIME, CqeFlags.MORE)
        else:
            finals[cqe.user_data] = cqe
    removed = {0x3518: Cqe(0x3518, -errno.ECANCELED, 0), 0x3519: Cqe(0x3519, 0, 0)}
    # If the kernel had to end the multishot first (a CQ overflow ends it with a final ETIME),
    # the removal finds nothing.
    ended_first = {0x3518: Cqe(0x3518, -errno.ETIME, 0), 0x3519: Cqe(0x3519, -errno.ENOENT, 0)}
    assert finals in (removed, ended_first)
    assert (ring.in_flight, ring.pinned) == (0, 0)


def test_timeout_update(ring: IoUring) -> None:
    ring.timeout(0x7A, 30)
    sqe = ring.timeout_update(0x7B, 0.001, 0x7A)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.TIMEOUT_REMOVE,
        fd=-1,
        addr=0x7A,
        off=fields["off"],
        rw_flags=TimeoutFlags.UPDATE,
        user_data=0x7B,
    )
    assert timespec_at(fields["off"]) == (0, 1_000_000)
    got = submit_and_reap(ring, 2)
    skip_if_einval(got[0x7B], "timeout updates")
    assert got == {0x7A: Cqe(0x7A, -errno.ETIME, 0), 0x7B: Cqe(0x7B, 0, 0)}
    ring.timeout_update(0x7C, 1, 0x7A)
    assert run_one(ring) == Cqe(0x7C, -errno.ENOENT, 0)


def test_link_timeout_update(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, _ = pipe
    ring.read(0x81, r, bytearray(1), -1).flags |= SqeFlags.IO_LINK
    ring.link_timeout(0x82, 30)
    ring.submit()
    sqe = ring.timeout_update(0x83, 0.001, 0x82, TimeoutFlags.LINK_TIMEOUT_UPDATE)
    assert sqe.rw_flags == TimeoutFlags.UPDATE | TimeoutFlags.LINK_TIMEOUT_UPDATE
    got = submit_and_reap(ring, 3)
    skip_if_einval(got[0x83], "LINK_TIMEOUT_UPDATE")
    assert got[0x83] == Cqe(0x83, 0, 0)
    assert got[0x82] in (Cqe(0x82, -errno.ETIME, 0), Cqe(0x82, -errno.EALREADY, 0))
    assert got[0x81] in (Cqe(0x81, -errno.ECANCELED, 0), Cqe(0x81, -errno.EINTR, 0))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.timeout(1, -1), OverflowError, "ts"),
        (lambda r: r.timeout(1, -0.5), ValueError, "ts"),
        (lambda r: r.timeout(1, float("nan")), ValueError, "ts"),
        (lambda r: r.timeout(1, "1s"), TypeError, "ts"),
        (lambda r: r.timeout(1, None), TypeError, "ts"),
        (lambda r: r.timeout(1, 1, -1), OverflowError, "count"),
        (lambda r: r.timeout(1, 1, 0, TimeoutFlags.UPDATE), ValueError, "timeout_update"),
        (lambda r: r.timeout(1, 1, 0, 1 << 7), ValueError, "flags"),
        (lambda r: r.timeout_remove(1, 2, TimeoutFlags.UPDATE), ValueError, "timeout_update"),
        (lambda r: r.timeout_remove(1, -2), OverflowError, "target_user_data"),
        (lambda r: r.timeout_update(1, datetime.timedelta(-1), 2), ValueError, "ts"),
        (lambda r: r.timeout_update(1, 1, 2, TimeoutFlags.MULTISHOT), ValueError, "flags"),
        (lambda r: r.link_timeout(1, 1, TimeoutFlags.MULTISHOT), ValueError, "flags"),
    ],
)
def test_timeout_validation(
    ring: IoUring, call: Callable[[IoUring], Any], error: type[Exception], match: str
) -> None:
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        call(ring)
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# Cancellation


def test_cancel_by_user_data(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, _ = pipe
    buf = Buf(4)
    ref = weakref.ref(buf)
    ring.read(0xCA1, r, buf, -1)
    ring.submit()
    del buf
    gc.collect()
    assert ref() is not None
    sqe = ring.cancel(0xCA2, 0xCA1)
    assert sqe.fields() == sqe_fields(opcode=Op.ASYNC_CANCEL, fd=-1, addr=0xCA1, user_data=0xCA2)
    got = submit_and_reap(ring, 2)
    assert got == {0xCA1: Cqe(0xCA1, -errno.ECANCELED, 0), 0xCA2: Cqe(0xCA2, 0, 0)}
    gc.collect()
    assert ref() is None
    ring.get_sqe().prep_cancel(0xCA3, 0xCA1)
    assert run_one(ring) == Cqe(0xCA3, -errno.ENOENT, 0)


def test_cancel_fd_all(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, _ = pipe
    ring.read(0xCB1, r, bytearray(1), -1)
    ring.read(0xCB2, r, bytearray(1), -1)
    ring.submit()
    sqe = ring.cancel_fd(0xCB3, r, CancelFlags.ALL)
    assert sqe.fields() == sqe_fields(
        opcode=Op.ASYNC_CANCEL,
        fd=r,
        rw_flags=CancelFlags.FD | CancelFlags.ALL,
        user_data=0xCB3,
    )
    got = submit_and_reap(ring, 3)
    skip_if_einval(got[0xCB3], "CancelFlags.FD")
    assert got == {
        0xCB1: Cqe(0xCB1, -errno.ECANCELED, 0),
        0xCB2: Cqe(0xCB2, -errno.ECANCELED, 0),
        0xCB3: Cqe(0xCB3, 2, 0),
    }


def test_cancel_by_op_and_any(ring: IoUring, pipe: tuple[int, int]) -> None:
    require_kernel("6.6", "CancelFlags.OP")
    r, _ = pipe
    ring.read(0xCC1, r, bytearray(1), -1)
    ring.poll_add(0xCC2, r, select.POLLIN)
    ring.timeout(0xCC3, 30)
    ring.submit()
    sqe = ring.cancel(0xCC4, flags=CancelFlags.ALL, op=Op.READ)
    assert sqe.fields() == sqe_fields(
        opcode=Op.ASYNC_CANCEL,
        fd=-1,
        len=Op.READ,
        rw_flags=CancelFlags.OP | CancelFlags.ALL,
        user_data=0xCC4,
    )
    got = submit_and_reap(ring, 2)
    skip_if_einval(got[0xCC4], "CancelFlags.OP")
    assert got == {0xCC1: Cqe(0xCC1, -errno.ECANCELED, 0), 0xCC4: Cqe(0xCC4, 1, 0)}
    ring.cancel(0xCC5, 0, CancelFlags.ANY | CancelFlags.ALL)
    got = submit_and_reap(ring, 3)
    assert got == {
        0xCC2: Cqe(0xCC2, -errno.ECANCELED, 0),
        0xCC3: Cqe(0xCC3, -errno.ECANCELED, 0),
        0xCC5: Cqe(0xCC5, 2, 0),
    }


def test_cancel_fd_and_user_data_together(ring: IoUring, pipe: tuple[int, int]) -> None:
    require_kernel("6.6", "CancelFlags.USERDATA")
    r, _ = pipe
    ring.read(0xCD1, r, bytearray(1), -1)
    ring.read(0xCD2, r, bytearray(1), -1)
    ring.submit()
    sqe = ring.cancel(0xCD3, 0xCD2, CancelFlags.USERDATA, fd=r)
    assert (sqe.fd, sqe.addr, sqe.rw_flags) == (r, 0xCD2, CancelFlags.USERDATA | CancelFlags.FD)
    got = submit_and_reap(ring, 2)
    skip_if_einval(got[0xCD3], "CancelFlags.USERDATA")
    assert got == {0xCD2: Cqe(0xCD2, -errno.ECANCELED, 0), 0xCD3: Cqe(0xCD3, 0, 0)}
    ring.cancel(0xCD4, 0xCD1)
    assert submit_and_reap(ring, 2) == {
        0xCD1: Cqe(0xCD1, -errno.ECANCELED, 0),
        0xCD4: Cqe(0xCD4, 0, 0),
    }


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.cancel(1, 2, CancelFlags.FD), ValueError, "fd"),
        (lambda r: r.cancel(1, 2, CancelFlags.OP), ValueError, "op"),
        (lambda r: r.cancel(1, 2, CancelFlags.FD_FIXED), ValueError, "fd"),
        (lambda r: r.cancel(1, 2, 1 << 9), ValueError, "flags"),
        (lambda r: r.cancel(1, 2, op=256), OverflowError, "op"),
        (lambda r: r.cancel(1, -1), OverflowError, "target_user_data"),
        (lambda r: r.cancel(1, 2, fd="x"), TypeError, "fd"),
        (lambda r: r.cancel_fd(1, 0, CancelFlags.ANY), ValueError, "flags"),
        (lambda r: r.cancel_fd(1, None), TypeError, "fd"),
    ],
)
def test_cancel_validation(
    ring: IoUring, call: Callable[[IoUring], Any], error: type[Exception], match: str
) -> None:
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        call(ring)
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# Polling


def test_poll_add(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    sqe = ring.poll_add(0xB011, r, select.POLLIN)
    assert sqe.fields() == sqe_fields(
        opcode=Op.POLL_ADD, fd=r, rw_flags=select.POLLIN, user_data=0xB011
    )
    ring.submit()
    os.write(w, b"x")
    cqe = ring.copy_cqe(timeout=10)
    assert cqe == Cqe(0xB011, cqe.res, 0)
    assert cqe.res & select.POLLIN


def test_poll_multishot_and_remove(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    sqe = ring.poll_multishot(0xB021, r, select.POLLIN)
    assert sqe.fields() == sqe_fields(
        opcode=Op.POLL_ADD,
        fd=r,
        len=PollFlags.ADD_MULTI,
        rw_flags=select.POLLIN,
        user_data=0xB021,
    )
    ring.submit()
    os.write(w, b"a")
    first = ring.copy_cqe(timeout=10)
    assert first == Cqe(0xB021, first.res, CqeFlags.MORE)
    assert first.res & select.POLLIN
    assert ring.in_flight == 1  # a CQE flagged MORE is not final
    os.read(r, 1)
    os.write(w, b"b")
    second = ring.copy_cqe(timeout=10)
    assert second == Cqe(0xB021, second.res, CqeFlags.MORE)
    sqe = ring.poll_remove(0xB022, 0xB021)
    assert sqe.fields() == sqe_fields(opcode=Op.POLL_REMOVE, fd=-1, addr=0xB021, user_data=0xB022)
    got = submit_and_reap(ring, 2)
    assert got == {0xB021: Cqe(0xB021, -errno.ECANCELED, 0), 0xB022: Cqe(0xB022, 0, 0)}
    assert ring.in_flight == 0


def test_poll_add_flags_multishot(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    sqe = ring.poll_add(0xB031, r, select.POLLIN, PollFlags.ADD_MULTI)
    assert sqe.len == PollFlags.ADD_MULTI
    os.write(w, b"a")
    ring.submit()
    assert ring.copy_cqe(timeout=10).flags == CqeFlags.MORE
    ring.poll_remove(0xB032, 0xB031)
    assert submit_and_reap(ring, 2)[0xB031] == Cqe(0xB031, -errno.ECANCELED, 0)


def test_poll_update_events(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    ring.poll_add(0xB041, r, select.POLLPRI)  # never on a pipe
    ring.submit()
    # Without UPDATE_USER_DATA the kernel wants new_user_data 0.
    sqe = ring.poll_update(0xB042, 0xB041, 0, select.POLLIN, PollFlags.UPDATE_EVENTS)
    assert sqe.fields() == sqe_fields(
        opcode=Op.POLL_REMOVE,
        fd=-1,
        addr=0xB041,
        off=0,
        len=PollFlags.UPDATE_EVENTS,
        rw_flags=select.POLLIN,
        user_data=0xB042,
    )
    assert run_one(ring) == Cqe(0xB042, 0, 0)
    os.write(w, b"x")
    cqe = ring.copy_cqe(timeout=10)
    assert cqe.user_data == 0xB041
    assert cqe.res & select.POLLIN
    assert cqe.flags == 0


def test_poll_update_argument_errors(ring: IoUring) -> None:
    before = sq_counters(ring)
    with pytest.raises(ValueError, match="flags"):
        ring.poll_add(1, 0, select.POLLIN, PollFlags.UPDATE_EVENTS)
    with pytest.raises(OverflowError, match="poll_mask"):
        ring.poll_add(1, 0, -1)
    with pytest.raises(TypeError, match="fd"):
        ring.poll_multishot(1, "0", select.POLLIN)  # type: ignore[arg-type]
    with pytest.raises(OverflowError, match="new_user_data"):
        ring.poll_update(1, 2, -1, 0, PollFlags.UPDATE_USER_DATA)
    assert sq_counters(ring) == before
    # The same user_data is harmless (and what liburing users pass to keep it).
    ring.poll_update(2, 0xB041, 0xB041, 0, PollFlags.UPDATE_USER_DATA)
    assert run_one(ring) == Cqe(2, -errno.ENOENT, 0)


RENAME = PollFlags.UPDATE_USER_DATA


def test_poll_update_renames_then_the_poll_fires_under_the_new_user_data(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    r, w = pipe
    ring.poll_add(0xA, r, select.POLLIN)
    ring.submit()
    ring.poll_update(0xD, 0xA, 0xB, 0, RENAME)
    assert run_one(ring) == Cqe(0xD, 0, 0)
    assert ring.in_flight == 1  # the poll, now under 0xB only
    os.write(w, b"x")
    assert ring.copy_cqe(timeout=10) == Cqe(0xB, select.POLLIN, 0)
    assert ring.in_flight == 0
    # Nothing is counted forever: a wait without a timeout is refused instead of hanging.
    with pytest.raises(ValueError, match="nothing is in flight"):
        ring.copy_cqe()


def test_poll_update_fails_when_the_poll_fired_first(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b"x")
    # One submit: the poll completes at once (under 0xA), so the update finds nothing.
    ring.poll_add(0xA, r, select.POLLIN)
    ring.poll_update(0xD, 0xA, 0xB, 0, RENAME)
    got = submit_and_reap(ring, 2)
    assert got == {0xA: Cqe(0xA, select.POLLIN, 0), 0xD: Cqe(0xD, -errno.ENOENT, 0)}
    assert ring.in_flight == 0
    with pytest.raises(ValueError, match="nothing is in flight"):
        ring.copy_cqe()


def test_poll_update_renames_a_poll_that_is_ready_when_rearmed(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    r, w = pipe
    ring.poll_add(0xA, r, select.POLLPRI)  # never on a pipe
    ring.submit()
    os.write(w, b"x")
    ring.poll_update(0xD, 0xA, 0xB, select.POLLIN, RENAME | PollFlags.UPDATE_EVENTS)
    ring.submit()
    got = reap(ring, 2)
    assert got[0xD] == Cqe(0xD, 0, 0)
    assert got[0xB] == Cqe(0xB, select.POLLIN, 0)
    assert ring.in_flight == 0


def test_poll_update_renames_a_multishot_poll(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    ring.poll_multishot(0xA, r, select.POLLIN)
    ring.submit()
    os.write(w, b"x")
    assert ring.copy_cqe(timeout=10) == Cqe(0xA, select.POLLIN, CqeFlags.MORE)
    ring.poll_update(0xD, 0xA, 0xB, 0, RENAME)
    ring.submit()
    # The re-armed poll finds the pipe still readable: its events come under 0xB now.
    more: list[Cqe] = []
    assert reap_final(ring, {0xD}, more) == {0xD: Cqe(0xD, 0, 0)}
    if not more:
        more.append(ring.copy_cqe(timeout=10))
    assert more == [Cqe(0xB, select.POLLIN, CqeFlags.MORE)]
    assert ring.in_flight == 1
    os.read(r, 1)
    ring.poll_remove(0xE, 0xB)
    ring.submit()
    got = reap_final(ring, {0xE, 0xB})
    assert got == {0xE: Cqe(0xE, 0, 0), 0xB: Cqe(0xB, -errno.ECANCELED, 0)}
    assert ring.in_flight == 0


def test_poll_update_rename_after_close_does_not_hang(
    make_ring: Callable[..., IoUring], pipe: tuple[int, int]
) -> None:
    r, _w = pipe
    ring = make_ring(4)
    ring.poll_add(0xA, r, select.POLLIN)
    ring.submit()
    ring.poll_update(0xD, 0xA, 0xB, 0, RENAME)
    ring.submit()  # the update's completion is not reaped
    ring.close()
    assert ring.closed


def test_poll_update_rename_refusals(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, _w = pipe
    ring.poll_add(0xA, r, select.POLLIN)
    ring.nop(0xF).flags |= SqeFlags.IO_LINK  # a read would do: any operation in flight
    ring.poll_add(0xF1, r, select.POLLPRI)
    ring.submit()
    submit_and_reap(ring, 1)
    cases = [
        (0xA, 0xA, 0xB),  # the update's user_data is the poll's old one...
        (0xB, 0xA, 0xB),  # ...or its new one...
        (0xF1, 0xA, 0xB),  # ...or that of another operation in flight
    ]
    for update, old, new in cases:
        sqe = ring.poll_update(update, old, new, 0, RENAME)
        with pytest.raises(ValueError, match="user_data of its own"):
            ring.submit()
        sqe.user_data = 0xD0  # fixed through the handle, the submit goes through
        assert run_one(ring) == Cqe(0xD0, 0, 0)
        ring.poll_update(0xD1, new, old, 0, RENAME)  # and back
        assert run_one(ring) == Cqe(0xD1, 0, 0)
    # While the update is in flight its user_data is taken (here: it is never reaped first).
    ring.poll_update(0xD2, 0xA, 0xB, 0, RENAME)
    ring.nop(0xD2)
    with pytest.raises(ValueError, match="user_data"):
        ring.submit()
    ring.close()


def test_poll_update_cannot_rename_a_poll_of_a_skip_chain(
    make_ring: Callable[..., IoUring], pipe: tuple[int, int]
) -> None:
    ring = make_ring(8)
    if ring.flags & SetupFlags.SQPOLL:
        pytest.skip("SQPOLL rings refuse CQE_SKIP_SUCCESS")
    r, _w = pipe
    ring.poll_add(0xA, r, select.POLLIN).flags = SqeFlags.IO_LINK | SqeFlags.CQE_SKIP_SUCCESS
    ring.nop(0xA)
    ring.submit()
    ring.poll_update(0xD, 0xA, 0xB, 0, RENAME)
    with pytest.raises(ValueError, match="CQE_SKIP_SUCCESS chain"):
        ring.submit()
    ring.close()


def reap_final(ring: IoUring, keys: set[int], more: list[Cqe] | None = None) -> dict[int, Cqe]:
    """Completions until each of ``keys`` had a final one; those flagged MORE go to ``more``."""
    got: dict[int, Cqe] = {}
    while set(got) != keys:
        cqe = ring.copy_cqe(timeout=10)
        if not cqe.flags & CqeFlags.MORE:
            got[cqe.user_data] = cqe
        elif more is not None:
            more.append(cqe)
    return got


# --------------------------------------------------------------------------------------------
# epoll


@pytest.fixture
def epoll() -> Iterator[select.epoll]:
    ep = select.epoll()
    yield ep
    ep.close()


def test_epoll_ctl_and_wait(ring: IoUring, pipe: tuple[int, int], epoll: select.epoll) -> None:
    require_ops(ring, Op.EPOLL_CTL)
    r, w = pipe
    sqe = ring.epoll_ctl(0xE1, epoll, r, EPOLL_CTL_ADD, select.EPOLLIN, 0x1234567890)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.EPOLL_CTL,
        fd=epoll.fileno(),
        addr=fields["addr"],
        len=EPOLL_CTL_ADD,
        off=r,
        user_data=0xE1,
    )
    copy = np.frombuffer(ctypes.string_at(fields["addr"], EPOLL_EVENT_SIZE), EPOLL_EVENT_DTYPE)
    assert (copy["events"][0], copy["data"][0]) == (select.EPOLLIN, 0x1234567890)
    assert run_one(ring) == Cqe(0xE1, 0, 0)
    os.write(w, b"x")
    assert epoll.poll(0) == [(0x1234567890 & 0xFFFFFFFF, select.EPOLLIN)]

    require_ops(ring, Op.EPOLL_WAIT)
    events = np.zeros(4, EPOLL_EVENT_DTYPE)
    sqe = ring.epoll_wait(0xE2, epoll, events)
    assert sqe.fields() == sqe_fields(
        opcode=Op.EPOLL_WAIT, fd=epoll.fileno(), addr=events.ctypes.data, len=4, user_data=0xE2
    )
    assert run_one(ring) == Cqe(0xE2, 1, 0)
    assert (events["events"][0], events["data"][0]) == (select.EPOLLIN, 0x1234567890)
    ring.epoll_ctl(0xE3, epoll, r, EPOLL_CTL_DEL)
    assert run_one(ring) == Cqe(0xE3, 0, 0)
    ring.epoll_ctl(0xE4, epoll, r, EPOLL_CTL_DEL)
    assert run_one(ring) == Cqe(0xE4, -errno.ENOENT, 0)


def test_epoll_wait_lifetime(ring: IoUring, pipe: tuple[int, int], epoll: select.epoll) -> None:
    require_ops(ring, Op.EPOLL_WAIT)
    r, w = pipe
    epoll.register(r, select.EPOLLIN)
    events = np.zeros(2, EPOLL_EVENT_DTYPE)
    ref = weakref.ref(events)
    ring.epoll_wait(0xE5, epoll.fileno(), events)
    ring.submit()
    del events
    gc.collect()
    assert ref() is not None  # the kernel writes into it when an event arrives
    os.write(w, b"x")
    cqe = ring.copy_cqe(timeout=10)
    assert cqe == Cqe(0xE5, 1, 0)
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize(
    ("events", "error", "match"),
    [
        (bytes(EPOLL_EVENT_SIZE), TypeError, "writable"),
        (bytearray(EPOLL_EVENT_SIZE + 1), ValueError, "whole"),
        (bytearray(0), ValueError, "whole"),
        (np.zeros(4, EPOLL_EVENT_DTYPE)[::2], ValueError, "contiguous"),
        (None, TypeError, "events"),
    ],
    ids=["bytes", "partial", "empty", "strided", "none"],
)
def test_epoll_validation(
    ring: IoUring, epoll: select.epoll, events: Any, error: type[Exception], match: str
) -> None:
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        ring.epoll_wait(1, epoll, events)
    with pytest.raises(OverflowError, match="data"):
        ring.epoll_ctl(1, epoll, 0, EPOLL_CTL_ADD, select.EPOLLIN, -1)
    with pytest.raises(TypeError, match="epfd"):
        ring.epoll_ctl(1, None, 0, EPOLL_CTL_ADD)  # type: ignore[arg-type]
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# msg_ring


def test_msg_ring_data(make_ring: Callable[..., IoUring]) -> None:
    src, dst = make_ring(4), make_ring(4)
    require_ops(src, Op.MSG_RING)
    sqe = src.msg_ring(0xAAAAAAAA, dst.fd, 42, 0xBEEF)
    assert sqe.fields() == sqe_fields(
        opcode=Op.MSG_RING,
        fd=dst.fd,
        addr=0,  # IORING_MSG_DATA
        len=42,
        off=0xBEEF,
        rw_flags=MSG_RING_FLAGS_PASS,
        splice_fd_in=CqeFlags.MORE,
        user_data=0xAAAAAAAA,
    )
    cqe = run_one(src)
    skip_if_einval(cqe, "MSG_RING with IORING_MSG_RING_FLAGS_PASS")
    assert cqe == Cqe(0xAAAAAAAA, 0, 0)
    assert dst.copy_cqe(timeout=10) == Cqe(0xBEEF, 42, CqeFlags.MORE)
    # Negative results and extra CQE flags travel too (MORE is always added).
    src.msg_ring(0xAAAAAAAB, dst.fd, -errno.EIO, 0xBEF0, CqeFlags.NOTIF)
    assert run_one(src) == Cqe(0xAAAAAAAB, 0, 0)
    assert dst.copy_cqe(timeout=10) == Cqe(0xBEF0, -errno.EIO, CqeFlags.MORE | CqeFlags.NOTIF)


def test_msg_ring_to_itself(ring: IoUring) -> None:
    require_ops(ring, Op.MSG_RING)
    require_kernel("6.3", "IORING_MSG_RING_FLAGS_PASS")
    ring.get_sqe().prep_msg_ring(0x5E1F, ring.fd, 7, 0x70)
    got = submit_and_reap(ring, 2)
    skip_if_einval(got[0x5E1F], "MSG_RING with IORING_MSG_RING_FLAGS_PASS")
    assert got == {0x5E1F: Cqe(0x5E1F, 0, 0), 0x70: Cqe(0x70, 7, CqeFlags.MORE)}


def test_msg_ring_cannot_release_the_pins_of_the_target(
    make_ring: Callable[..., IoUring], pipe: tuple[int, int]
) -> None:
    src, dst = make_ring(4), make_ring(4)
    require_ops(src, Op.MSG_RING)
    require_kernel("6.3", "IORING_MSG_RING_FLAGS_PASS")
    r, w = pipe
    buf = Buf(4)
    ref = weakref.ref(buf)
    dst.read(0xDA7A, r, buf, -1)
    dst.submit()
    del buf
    gc.collect()
    assert (dst.in_flight, dst.pinned) == (1, 1)
    # A message carrying the user_data of the read in flight.
    src.msg_ring(0x5E4D, dst.fd, 7, 0xDA7A)
    cqe = run_one(src)
    skip_if_einval(cqe, "MSG_RING with IORING_MSG_RING_FLAGS_PASS")
    assert cqe == Cqe(0x5E4D, 0, 0)
    assert dst.copy_cqe(timeout=10) == Cqe(0xDA7A, 7, CqeFlags.MORE)
    gc.collect()
    assert (dst.in_flight, dst.pinned) == (1, 1)  # the read's buffer is still pinned
    assert ref() is not None
    os.write(w, b"data")
    assert dst.copy_cqe(timeout=10) == Cqe(0xDA7A, 4, 0)
    gc.collect()
    assert (dst.in_flight, dst.pinned) == (0, 0)
    assert ref() is None


def test_msg_ring_fd(make_ring: Callable[..., IoUring], tmp_file: Any) -> None:
    src, dst = make_ring(4), make_ring(4)
    require_ops(src, Op.MSG_RING)
    f = tmp_file(b"passed along")
    src.register_files([f.fd])
    dst.register_files_sparse(4)
    sqe = src.msg_ring_fd(0xF0, dst.fd, 0, 2, 0xCAFE)
    assert sqe.fields() == sqe_fields(
        opcode=Op.MSG_RING,
        fd=dst.fd,
        addr=1,  # IORING_MSG_SEND_FD
        off=0xCAFE,
        addr3=0,
        splice_fd_in=3,
        rw_flags=MSG_RING_CQE_SKIP,
        user_data=0xF0,
    )
    cqe = run_one(src)
    skip_if_einval(cqe, "MSG_RING fd passing")
    assert cqe == Cqe(0xF0, 0, 0)
    # The target got the file in slot 2, and no CQE (CQE_SKIP).
    buf = bytearray(12)
    dst.read(0xF1, 2, buf, 0).flags |= SqeFlags.FIXED_FILE
    assert run_one(dst) == Cqe(0xF1, 12, 0)
    assert buf == b"passed along"
    assert dst.cq_ready() == 0
    # Allocated slots: res is the slot the kernel picked among the free ones.
    sqe = src.msg_ring_fd_alloc(0xF2, dst.fd, 0, 0xCAFF)
    assert (sqe.splice_fd_in, sqe.rw_flags) == (-1, MSG_RING_CQE_SKIP)
    first = run_one(src)
    assert first == Cqe(0xF2, first.res, 0)
    assert first.res in (0, 1, 3)
    src.msg_ring_fd_alloc(0xF3, dst.fd, 0)
    second = run_one(src)
    assert second == Cqe(0xF3, second.res, 0)
    assert second.res in {0, 1, 3} - {first.res}
    assert dst.cq_ready() == 0
    # An empty source slot.
    src.msg_ring_fd(0xF4, dst.fd, 5, 3)
    assert run_one(src) == Cqe(0xF4, -errno.EBADF, 0)
    src.unregister_files()
    dst.unregister_files()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.msg_ring(1, r.fd, 1, 2, CqeFlags.SKIP), ValueError, "cqe_flags"),
        (lambda r: r.msg_ring(1, r.fd, 1, 2, CqeFlags.F_32), ValueError, "cqe_flags"),
        (lambda r: r.msg_ring(1, r.fd, U32, 2), OverflowError, "len"),
        (lambda r: r.msg_ring(1, r.fd, -(2**31) - 1, 2), OverflowError, "len"),
        (lambda r: r.msg_ring(1, r.fd, 1, -1), OverflowError, "data"),
        (lambda r: r.msg_ring(1, "ring", 1, 2), TypeError, "fd"),
        (lambda r: r.msg_ring_fd(1, r.fd, -1, 0), OverflowError, "source_fd"),
        (lambda r: r.msg_ring_fd(1, r.fd, 0, 2**31), OverflowError, "target_fd"),
        (lambda r: r.msg_ring_fd_alloc(1, r.fd, 0, -1), OverflowError, "data"),
    ],
)
def test_msg_ring_validation(
    ring: IoUring, call: Callable[[IoUring], Any], error: type[Exception], match: str
) -> None:
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        call(ring)
    assert sq_counters(ring) == before


def test_msg_ring_fields_are_not_plain(ring: IoUring) -> None:
    sqe = ring.msg_ring(1, ring.fd, 1, 2)
    for name in ("rw_flags", "splice_fd_in", "off", "fd"):
        with pytest.raises(ValueError, match=name):
            setattr(sqe, name, 0)
    sqe.prep_nop(1)
    assert run_one(ring) == Cqe(1, 0, 0)


# --------------------------------------------------------------------------------------------
# waitid (Zig port 36)


def fork_child(code: str) -> int:
    """Forks a child that runs ``code`` then exits; returns its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            exec(code)
        finally:
            os._exit(0)
    return pid


def reap_child_quietly(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def test_waitid(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.WAITID)
    pid = fork_child("os._exit(7)")
    try:
        info = Siginfo()
        sqe = ring.waitid(0xBBBBBBBB, os.P_PID, pid, info, os.WEXITED)
        assert sqe.fields() == sqe_fields(
            opcode=Op.WAITID,
            fd=pid,
            len=os.P_PID,
            off=addr_of(info),
            splice_fd_in=os.WEXITED,
            user_data=0xBBBBBBBB,
        )
        cqe = run_one(ring)
        skip_if_einval(cqe, "WAITID")
        assert cqe == Cqe(0xBBBBBBBB, 0, 0)
        assert (info.si_pid, info.si_status, info.si_code) == (pid, 7, os.CLD_EXITED)
        assert info.si_signo == signal.SIGCHLD
        assert info.si_uid == os.getuid()
        assert f"si_pid={pid}" in repr(info)
    finally:
        reap_child_quietly(pid)


def test_waitid_lifetime(ring: IoUring, pipe: tuple[int, int]) -> None:
    require_ops(ring, Op.WAITID)
    r, w = pipe
    pid = fork_child(f"os.read({r}, 1)\nos._exit(3)")
    try:
        info = Siginfo()
        ref = weakref.ref(info)
        ring.waitid(0xBBC, os.P_PID, pid, info, os.WEXITED)
        ring.submit()
        del info
        gc.collect()
        assert ref() is not None  # the kernel writes into it when the child exits
        os.write(w, b"x")
        cqe = ring.copy_cqe(timeout=10)
        skip_if_einval(cqe, "WAITID")
        assert cqe == Cqe(0xBBC, 0, 0)
        gc.collect()
        assert ref() is None
    finally:
        reap_child_quietly(pid)


def test_waitid_into_buffer_and_none(ring: IoUring) -> None:
    require_ops(ring, Op.WAITID)
    pid = fork_child("os._exit(5)")
    pid2 = fork_child("os._exit(6)")
    try:
        raw = bytearray(128)
        ring.waitid(0xBBD, os.P_PID, pid, raw, os.WEXITED)
        sqe = ring.waitid(0xBBE, os.P_PID, pid2, None, os.WEXITED)
        assert sqe.off == 0
        got = submit_and_reap(ring, 2)
        skip_if_einval(got[0xBBD], "WAITID")
        assert got == {0xBBD: Cqe(0xBBD, 0, 0), 0xBBE: Cqe(0xBBE, 0, 0)}
        ints = np.frombuffer(raw, np.int32)
        assert (ints[4], ints[6]) == (pid, 5)  # si_pid, si_status
        ring.waitid(0xBBF, os.P_PID, pid, None, os.WEXITED)
        assert run_one(ring) == Cqe(0xBBF, -errno.ECHILD, 0)
    finally:
        reap_child_quietly(pid)
        reap_child_quietly(pid2)


@pytest.mark.parametrize(
    ("infop", "error", "match"),
    [
        (bytearray(127), ValueError, "128"),
        (bytes(128), TypeError, "writable"),
        ("siginfo", TypeError, "infop"),
    ],
    ids=["small", "bytes", "str"],
)
def test_waitid_validation(ring: IoUring, infop: Any, error: type[Exception], match: str) -> None:
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        ring.waitid(1, os.P_PID, 1, infop, os.WEXITED)
    with pytest.raises(OverflowError, match="id"):
        ring.waitid(1, os.P_PID, 2**31, None, os.WEXITED)
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# Futexes


def test_futex_wait_wake(ring: IoUring) -> None:
    require_ops(ring, Op.FUTEX_WAIT, Op.FUTEX_WAKE)
    word = np.zeros(1, np.uint32)
    sqe = ring.futex_wait(0xF07E, word, 0, FUTEX_BITSET_MATCH_ANY, PRIVATE_U32)
    assert sqe.fields() == sqe_fields(
        opcode=Op.FUTEX_WAIT,
        fd=PRIVATE_U32,
        addr=word.ctypes.data,
        off=0,
        addr3=FUTEX_BITSET_MATCH_ANY,
        user_data=0xF07E,
    )
    ring.submit()
    sqe = ring.futex_wake(0xF07F, word, 1, futex_flags=PRIVATE_U32)
    assert sqe.fields() == sqe_fields(
        opcode=Op.FUTEX_WAKE,
        fd=PRIVATE_U32,
        addr=word.ctypes.data,
        off=1,
        addr3=FUTEX_BITSET_MATCH_ANY,
        user_data=0xF07F,
    )
    got = submit_and_reap(ring, 2)
    assert got == {0xF07E: Cqe(0xF07E, 0, 0), 0xF07F: Cqe(0xF07F, 1, 0)}
    # The value differs: the wait does not start.
    ring.futex_wait(0xF080, word, 1)
    assert run_one(ring) == Cqe(0xF080, -errno.EAGAIN, 0)
    # Nobody waits.
    ring.futex_wake(0xF081, memoryview(word.data)[0:4], 1)
    assert run_one(ring) == Cqe(0xF081, 0, 0)


def test_futex_wait_lifetime(ring: IoUring) -> None:
    require_ops(ring, Op.FUTEX_WAIT)
    word = np.zeros(1, np.uint32)
    ref = weakref.ref(word)
    ring.futex_wait(0xF090, word, 0)
    ring.submit()
    del word
    gc.collect()
    assert ref() is not None
    ring.cancel(0xF091, 0xF090)
    got = submit_and_reap(ring, 2)
    assert got[0xF090] == Cqe(0xF090, -errno.ECANCELED, 0)
    assert got[0xF091] in (Cqe(0xF091, 0, 0), Cqe(0xF091, 1, 0))  # futex cancel counts
    gc.collect()
    assert ref() is None


def test_futex_waitv(ring: IoUring) -> None:
    require_ops(ring, Op.FUTEX_WAITV, Op.FUTEX_WAKE)
    words = np.zeros(2, np.uint32)
    sqe = ring.futex_waitv(0xF0A0, [(words[0:1], 0, PRIVATE_U32), (words[1:2], 0, PRIVATE_U32)])
    assert (sqe.opcode, sqe.len, sqe.fd, sqe.off, sqe.addr3) == (Op.FUTEX_WAITV, 2, 0, 0, 0)
    # A private struct futex_waitv array: {val, uaddr, flags, reserved} x 2.
    raw = np.frombuffer(ctypes.string_at(sqe.addr, 48), np.uint64).reshape(2, 3)
    assert raw[:, 0].tolist() == [0, 0]
    assert raw[:, 1].tolist() == [words.ctypes.data, words.ctypes.data + 4]
    assert (raw[:, 2] & 0xFFFFFFFF).tolist() == [PRIVATE_U32, PRIVATE_U32]
    ring.submit()
    ring.futex_wake(0xF0A1, words[1:2], 1, futex_flags=PRIVATE_U32)
    got = submit_and_reap(ring, 2)
    assert got == {0xF0A0: Cqe(0xF0A0, 1, 0), 0xF0A1: Cqe(0xF0A1, 1, 0)}


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r, b: r.futex_wait(1, bytearray(8), 0), ValueError, "exactly"),
        (lambda r, b: r.futex_wait(1, b[1:5], 0), ValueError, "aligned"),
        (lambda r, b: r.futex_wake(1, b[0:4], 1, futex_flags=1 << 3), ValueError, "futex_flags"),
        (
            lambda r, b: r.futex_wait(
                1, b.toreadonly()[0:8], 0, futex_flags=FutexFlags.SIZE_U32 | FutexFlags.NUMA
            ),
            TypeError,
            "writable",
        ),
        (lambda r, b: r.futex_wait(1, 5, 0), TypeError, "futex"),
        (lambda r, b: r.futex_wait(1, b[0:4], -1), OverflowError, "val"),
        (lambda r, b: r.futex_wait(1, b[0:4], 0, -1), OverflowError, "mask"),
        (lambda r, b: r.futex_waitv(1, []), ValueError, "1.."),
        (lambda r, b: r.futex_waitv(1, [(b[0:4], 0)] * (FUTEX_WAITV_MAX + 1)), ValueError, "1.."),
        (lambda r, b: r.futex_waitv(1, [b[0:4]]), TypeError, "tuple"),
        (lambda r, b: r.futex_waitv(1, [(b[2:6], 0)]), ValueError, "aligned"),
        (lambda r, b: r.futex_waitv(1, [(b[0:4], 0, 1 << 5)]), ValueError, "futex_flags"),
        (lambda r, b: r.futex_waitv(1, "abc"), TypeError, "futexes"),
    ],
)
def test_futex_validation(
    ring: IoUring, call: Callable[[IoUring, Any], Any], error: type[Exception], match: str
) -> None:
    backing = np.zeros(4, np.uint32)  # 16 aligned bytes
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        call(ring, backing.data.cast("B"))
    assert sq_counters(ring) == before


def test_futex_fields_are_not_plain(ring: IoUring) -> None:
    require_ops(ring, Op.FUTEX_WAKE)
    word = np.zeros(1, np.uint32)
    sqe = ring.futex_wake(1, word, 1)
    with pytest.raises(ValueError, match="fd"):
        sqe.fd = FutexFlags.SIZE_U64  # the kernel would read 8 bytes from a 4-byte pin
    assert run_one(ring) == Cqe(1, 0, 0)


# --------------------------------------------------------------------------------------------
# Registered files


def test_fixed_fd_install(ring: IoUring, tmp_file: Any) -> None:
    require_ops(ring, Op.FIXED_FD_INSTALL)
    f = tmp_file(b"x")
    ring.register_files([f.fd, f.fd])
    sqe = ring.fixed_fd_install(0xFD1, 1)
    assert sqe.fields() == sqe_fields(
        opcode=Op.FIXED_FD_INSTALL, flags=SqeFlags.FIXED_FILE, fd=1, user_data=0xFD1
    )
    cqe = run_one(ring)
    assert cqe == Cqe(0xFD1, cqe.res, 0)
    assert cqe.res > 2
    try:
        assert os.path.samestat(os.fstat(cqe.res), os.fstat(f.fd))
        assert os.get_inheritable(cqe.res) is False
    finally:
        os.close(cqe.res)
    sqe = ring.get_sqe().prep_fixed_fd_install(0xFD2, 0, FixedFdFlags.NO_CLOEXEC)
    assert sqe.rw_flags == FixedFdFlags.NO_CLOEXEC
    cqe = run_one(ring)
    try:
        assert cqe.res > 2
        assert os.get_inheritable(cqe.res) is True
    finally:
        os.close(cqe.res)
    ring.unregister_files()
    ring.fixed_fd_install(0xFD3, 0)
    assert run_one(ring) == Cqe(0xFD3, -errno.EBADF, 0)
    with pytest.raises(OverflowError, match="fd"):
        ring.fixed_fd_install(1, -1)


def test_files_update(ring: IoUring, tmp_file: Any) -> None:
    require_ops(ring, Op.FILES_UPDATE)
    f = tmp_file(b"updated")
    ring.register_files_sparse(4)
    sqe = ring.files_update(0xF11, [f.fd], 2)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.FILES_UPDATE, fd=-1, addr=fields["addr"], len=1, off=2, user_data=0xF11
    )
    assert ctypes.c_int32.from_address(fields["addr"]).value == f.fd  # a private copy
    assert run_one(ring) == Cqe(0xF11, 1, 0)
    buf = bytearray(7)
    ring.read(0xF12, 2, buf, 0).flags |= SqeFlags.FIXED_FILE
    assert run_one(ring) == Cqe(0xF12, 7, 0)
    assert buf == b"updated"

    # FILE_INDEX_ALLOC: the kernel writes the slots it picked back into the array.
    slots = IntArray("i", [f.fd, f.fd])
    ref = weakref.ref(slots)
    sqe = ring.files_update(0xF13, slots, FILE_INDEX_ALLOC)
    assert (sqe.addr, sqe.len, sqe.off) == (addr_of(slots), 2, FILE_INDEX_ALLOC)
    kept = slots
    del slots
    gc.collect()
    assert ring.pinned == 1
    assert run_one(ring) == Cqe(0xF13, 2, 0)
    assert len(set(kept)) == 2
    assert set(kept) <= {0, 1, 3}
    del kept
    gc.collect()
    assert ref() is None
    assert ring.pinned == 0

    ring.files_update(0xF14, np.array([-1, -1], np.int32), 1)
    assert run_one(ring) == Cqe(0xF14, 2, 0)
    ring.unregister_files()


@pytest.mark.parametrize(
    ("fds", "offset", "error", "match"),
    [
        ([3], FILE_INDEX_ALLOC, TypeError, "writable"),
        (bytes(8), FILE_INDEX_ALLOC, TypeError, "writable"),
        (bytearray(6), 0, ValueError, "multiple of 4"),
        ([], 0, ValueError, "at least one"),
        (bytearray(0), 0, ValueError, "at least one"),
        (["x"], 0, TypeError, "fds"),
        ("abc", 0, TypeError, "fds"),
        ([3], -1, OverflowError, "offset"),
    ],
    ids=[
        "list_alloc",
        "bytes_alloc",
        "partial",
        "empty",
        "empty_buffer",
        "str_item",
        "str",
        "negative_offset",
    ],
)
def test_files_update_validation(
    ring: IoUring, fds: Any, offset: int, error: type[Exception], match: str
) -> None:
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        ring.files_update(1, fds, offset)
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# NOPs with injected results


def test_nop_inject(ring: IoUring) -> None:
    sqe = ring.nop_inject(0x1E1, -errno.EIO)
    assert sqe.fields() == sqe_fields(
        opcode=Op.NOP, len=-errno.EIO % U32, rw_flags=NopFlags.INJECT_RESULT, user_data=0x1E1
    )
    cqe = run_one(ring)
    if cqe.res in (0, -errno.EINVAL):
        pytest.skip("kernel lacks IORING_NOP_INJECT_RESULT")
    assert cqe == Cqe(0x1E1, -errno.EIO, 0)
    ring.get_sqe().prep_nop_inject(0x1E2, 12345)
    assert run_one(ring) == Cqe(0x1E2, 12345, 0)
    # A failing NOP breaks its link chain.
    ring.nop_inject(0x1E3, -errno.EPERM).flags |= SqeFlags.IO_LINK
    ring.nop(0x1E4)
    assert submit_and_reap(ring, 2) == {
        0x1E3: Cqe(0x1E3, -errno.EPERM, 0),
        0x1E4: Cqe(0x1E4, -errno.ECANCELED, 0),
    }


def test_nop_inject_validation(ring: IoUring) -> None:
    before = sq_counters(ring)
    with pytest.raises(OverflowError, match="res"):
        ring.nop_inject(1, 2**31)
    with pytest.raises(ValueError, match="flags"):
        ring.nop_inject(1, 0, NopFlags.CQE32)
    with pytest.raises(TypeError, match="res"):
        ring.nop_inject(1, 1.5)  # type: ignore[arg-type]
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# The two spellings


def _control_cases(pipe: tuple[int, int]) -> list[tuple[str, tuple[Any, ...]]]:
    r, _ = pipe
    word = np.zeros(1, np.uint32)
    return [
        ("timeout", (1, 0, 0)),
        ("timeout_remove", (5, 0)),
        ("timeout_update", (1, 5, 0)),
        ("link_timeout", (1, 0)),
        ("cancel", (5, 0)),
        ("cancel_fd", (r, 0)),
        ("poll_add", (r, select.POLLIN, 0)),
        ("poll_multishot", (r, select.POLLIN)),
        ("poll_remove", (5,)),
        ("poll_update", (5, 5, select.POLLIN, PollFlags.UPDATE_EVENTS)),
        ("epoll_ctl", (0, r, EPOLL_CTL_ADD, select.EPOLLIN, 3)),
        ("epoll_wait", (0, bytearray(EPOLL_EVENT_SIZE), 0)),
        ("msg_ring", (0, 1, 2, 0)),
        ("msg_ring_fd", (0, 0, 1, 2)),
        ("msg_ring_fd_alloc", (0, 0, 2)),
        ("waitid", (os.P_PID, 1, bytearray(128), os.WEXITED, 0)),
        ("futex_wait", (word, 0)),
        ("futex_wake", (word, 1)),
        ("futex_waitv", ([(word, 0)],)),
        ("fixed_fd_install", (0, 0)),
        ("files_update", ([r], 0)),
        ("nop_inject", (-1,)),
    ]


def test_ring_method_and_prep_build_the_same_sqe(ring: IoUring, pipe: tuple[int, int]) -> None:
    pointer_fields = {"addr", "off", "addr3"}
    for name, args in _control_cases(pipe):
        a = getattr(ring, name)(0xAB, *args)
        b = getattr(ring.get_sqe(), "prep_" + name)(0xAB, *args)
        fa, fb = a.fields(), b.fields()
        assert fa["opcode"] == fb["opcode"], name
        assert {k: v for k, v in fa.items() if k not in pointer_fields} == {
            k: v for k, v in fb.items() if k not in pointer_fields
        }, name
        # Nothing runs: both slots become NOPs again (releasing their pins).
        a.prep_nop(0xAB)
        b.prep_nop(0xAC)
        assert ring.pinned == 0
        assert submit_and_reap(ring, 2) == {0xAB: Cqe(0xAB, 0, 0), 0xAC: Cqe(0xAC, 0, 0)}
