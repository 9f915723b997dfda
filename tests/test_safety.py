"""Safe from Python: pins, stale SQE handles, closed rings, close in flight, fork, signals, threads.

Buffers here are often ``WeakBytearray``s (a bytearray that can be weakly referenced), so a test
can drop its last reference and still see whether the ring keeps the object alive.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import os
import pathlib
import select
import signal
import socket
import sys
import threading
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from kernel_support import require_kernel, slow
from sqe_support import nop_submitting_when_full

import iouring
from iouring import (
    Cqe,
    IoUring,
    RingForkedError,
    SetupFlags,
    Sqe,
    SqeFlags,
    StaleSqeError,
    _kernel,
)

AT_FDCWD = -100


class WeakBytearray(bytearray):
    """A bytearray that supports weak references."""


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


def resizable(buf: bytearray) -> bool:
    """Whether nothing holds an export of ``buf`` (a pinned bytearray cannot be resized)."""
    try:
        buf.append(0)
    except BufferError:
        return False
    del buf[-1]
    return True


# --------------------------------------------------------------------------------------------
# Pins


@pytest.mark.parametrize("kind", ["bytearray", "ndarray"])
def test_pin_read_target_survives_dropped_reference(
    ring: IoUring, pipe: tuple[int, int], kind: str
) -> None:
    r, w = pipe
    buf: Any = WeakBytearray(16) if kind == "bytearray" else np.zeros(16, dtype=np.uint8)
    ref = weakref.ref(buf)
    ring.read(0xAAAAAAAA, r, buf, -1)
    del buf
    gc.collect()
    assert ref() is not None
    assert ring.pinned == 1
    ring.submit()
    gc.collect()
    assert ref() is not None
    os.write(w, b"0123456789abcdef")
    ring.submit_and_wait(1)
    assert ring.peek_cqe() == Cqe(0xAAAAAAAA, 16, 0)
    target = ref()
    assert target is not None
    assert bytes(target) == b"0123456789abcdef"
    del target
    ring.cqe_seen()
    gc.collect()
    assert ref() is None
    assert (ring.pinned, ring.in_flight) == (0, 0)


def test_pin_blocks_resize_until_reaped(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    buf = bytearray(8)
    ring.read(0xB0F, r, buf, -1)
    with pytest.raises(BufferError):
        buf.append(0)  # prepared, not yet flushed
    ring.submit()
    with pytest.raises(BufferError):
        buf.extend(b"xx")
    with pytest.raises(BufferError):
        del buf[:4]
    os.write(w, b"12345678")
    assert ring.copy_cqe() == Cqe(0xB0F, 8, 0)
    buf.append(0x21)
    assert buf == b"12345678!"


def test_pin_and_in_flight_accounting(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    assert (ring.pinned, ring.in_flight) == (0, 0)
    ring.nop(0x0A)
    assert (ring.pinned, ring.in_flight) == (0, 0)
    ring.flush_sq()
    assert ring.in_flight == 1
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x0A, 0, 0)
    assert (ring.pinned, ring.in_flight) == (0, 0)

    buf = bytearray(4)
    ring.read(0x0B, r, buf, -1)
    assert (ring.pinned, ring.in_flight) == (1, 0)
    ring.submit()
    assert (ring.pinned, ring.in_flight) == (1, 1)
    os.write(w, b"abcd")
    assert ring.copy_cqe() == Cqe(0x0B, 4, 0)
    assert (ring.pinned, ring.in_flight) == (0, 0)


def test_pin_released_when_user_data_changed(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    buf = bytearray(4)
    sqe = ring.read(0x01D, r, buf, -1)
    sqe.user_data = 0x0E3
    ring.submit()
    os.write(w, b"wxyz")
    assert ring.copy_cqe() == Cqe(0x0E3, 4, 0)
    assert (ring.pinned, ring.in_flight) == (0, 0)
    assert resizable(buf)
    assert buf == b"wxyz"


def test_pin_shared_user_data_kept_until_each_completes(
    ring: IoUring, make_pipe: Callable[[], tuple[int, int]]
) -> None:
    (r1, w1), (r2, w2) = make_pipe(), make_pipe()
    b1, b2 = bytearray(2), bytearray(3)
    ring.read(0x5A5A, r1, b1, -1)
    ring.read(0x5A5A, r2, b2, -1)
    ring.submit()
    assert ring.in_flight == 2
    os.write(w1, b"ab")
    assert ring.copy_cqe() == Cqe(0x5A5A, 2, 0)
    assert ring.in_flight == 1
    assert ring.pinned >= 1
    assert not resizable(b2)  # its read is still in flight
    os.write(w2, b"cde")
    assert ring.copy_cqe() == Cqe(0x5A5A, 3, 0)
    assert (ring.pinned, ring.in_flight) == (0, 0)
    assert resizable(b1) and resizable(b2)
    assert b1 == b"ab" and b2 == b"cde"


def test_pin_readv_iovecs_dropped(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    iovecs = [WeakBytearray(3), WeakBytearray(4)]
    refs = [weakref.ref(b) for b in iovecs]
    ring.readv(0x10EC, r, iovecs, -1)
    # The list is the caller's to change: the ring copied the iovec array at prep.
    iovecs.clear()
    iovecs.append(WeakBytearray(100))
    del iovecs
    gc.collect()
    assert all(ref() is not None for ref in refs)
    assert ring.pinned >= 2
    ring.submit()
    os.write(w, b"abcdefg")
    ring.submit_and_wait(1)
    assert ring.peek_cqe() == Cqe(0x10EC, 7, 0)
    assert [bytes(ref()) for ref in refs] == [b"abc", b"defg"]  # type: ignore[arg-type]
    ring.cqe_seen()
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert ring.pinned == 0


class _Path:
    """A PathLike whose last reference the test drops right after prep."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return self.path


@pytest.mark.parametrize("kind", ["str", "bytes", "pathlike"])
def test_pin_openat_path_dropped(ring: IoUring, tmp_path: pathlib.Path, kind: str) -> None:
    target = tmp_path / f"pinned_{kind}"
    raw = "".join([str(tmp_path), "/", f"pinned_{kind}"])  # a fresh, uninterned object
    path: Any = {"str": raw, "bytes": os.fsencode(raw), "pathlike": _Path(raw)}[kind]
    flags = os.O_CREAT | os.O_RDWR | os.O_CLOEXEC
    sqe = ring.openat(0x0FE4, AT_FDCWD, path, flags, 0o600)
    addr = sqe.addr
    assert ring.pinned >= 1
    del path, raw
    gc.collect()
    junk = [bytes([i]) * len(str(target)) for i in range(256)]  # reuse freed memory, if any
    assert ctypes.string_at(addr) == os.fsencode(target)
    del junk
    ring.submit()
    cqe = ring.copy_cqe()
    assert cqe.user_data == 0x0FE4
    assert cqe.res > 0, os.strerror(-cqe.res)
    try:
        assert os.path.samestat(os.fstat(cqe.res), os.stat(target))
    finally:
        os.close(cqe.res)
    assert ring.pinned == 0


def test_cqe_skip_success_refused_on_pinning_sqe(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    buf = bytearray(2)
    sqe = ring.read(0x5C1, r, buf, -1)
    with pytest.raises(ValueError, match="CQE_SKIP_SUCCESS is refused"):
        sqe.flags = SqeFlags.CQE_SKIP_SUCCESS
    assert sqe.flags == 0
    ring.submit()
    os.write(w, b"ok")
    assert ring.copy_cqe() == Cqe(0x5C1, 2, 0)


def test_registered_buffers_kept_alive_until_unregistered(ring: IoUring) -> None:
    buf = WeakBytearray(64)
    ref = weakref.ref(buf)
    ring.register_buffers([buf])
    del buf
    gc.collect()
    target = ref()
    assert target is not None
    assert not resizable(target)
    del target
    ring.unregister_buffers()
    gc.collect()
    assert ref() is None


def unregister_with_a_read_in_flight(
    ring: IoUring,
    w: int,
    user_data: int,
    unregister: Callable[[], None],
    delayed_write: Callable[..., Any],
    *,
    length: int = 8,
) -> None:
    """Unregisters a table while the pipe read ``user_data`` (of ``length`` bytes), which uses
    a registered file or buffer, is in flight, then completes the read: refused with EBUSY
    before Linux 6.13 (the kernel keeps one resource reference for both tables there and would
    wait for the read, whichever table it is), at once from 6.13 on."""
    wait_until(lambda: ring.sq_ready() == 0)  # SQPOLL: the kernel took the SQE
    watchdog = delayed_write(w, b"WATCHDOG", 60.0)  # ends a freeze: the read then completes
    refused = _kernel.older_than("6.13")
    if refused:
        pattern = rf"registered files or buffers.*{user_data:#x}.*before Linux 6\.13"
        with pytest.raises(BlockingIOError, match=pattern) as info:
            unregister()
        assert info.value.errno == errno.EBUSY
    else:
        unregister()
    assert watchdog.poll() is None, "the unregistration waited for the read"
    os.write(w, b"abcdefgh")
    assert ring.copy_cqe(timeout=30) == Cqe(user_data, length, 0)
    if refused:
        unregister()  # nothing in flight uses a registered file or buffer now


def test_unregister_buffers_with_a_fixed_read_in_flight(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any]
) -> None:
    """From 6.13 on the read in flight keeps its registered buffer after the unregistration."""
    r, w = pipe
    buf = WeakBytearray(8)
    ref = weakref.ref(buf)
    ring.register_buffers([buf])
    ring.read_fixed(0xF1ED2, r, buf, -1, 0)
    del buf
    ring.submit()

    def unregister() -> None:
        ring.unregister_buffers()
        gc.collect()
        if ring.in_flight:
            assert ref() is not None  # the read in flight still writes into it

    unregister_with_a_read_in_flight(ring, w, 0xF1ED2, unregister, delayed_write)
    gc.collect()
    assert ref() is None
    assert (ring.in_flight, ring.pinned) == (0, 0)


def test_unregister_files_with_a_fixed_file_read_in_flight(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any]
) -> None:
    r, w = pipe
    ring.register_files([r])
    buf = bytearray(8)
    sqe = ring.read(0xF1F1, 0, buf, -1)
    sqe.flags = int(SqeFlags.FIXED_FILE)
    ring.submit()
    unregister_with_a_read_in_flight(ring, w, 0xF1F1, ring.unregister_files, delayed_write)
    assert buf == b"abcdefgh"
    assert (ring.in_flight, ring.pinned) == (0, 0)
    ring.register_files([w])  # the ring is usable after
    ring.unregister_files()


@pytest.mark.parametrize("unregistered", ["files", "buffers"])
def test_unregister_with_a_read_using_the_other_table_in_flight(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any], unregistered: str
) -> None:
    """Before 6.13 the kernel keeps one resource reference for both tables: a read_fixed of a
    plain fd holds up unregister_files, and a FIXED_FILE read into a plain buffer holds up
    unregister_buffers (the kernel waited for them, for good on 6.1)."""
    r, w = pipe
    buf = bytearray(8)
    if unregistered == "files":
        ring.register_buffers([buf])
        ring.register_files([w])
        ring.read_fixed(0xF1B1, r, buf, -1, 0)
        first, then = ring.unregister_files, ring.unregister_buffers
    else:
        ring.register_buffers([bytearray(8)])
        ring.register_files([r])
        ring.read(0xF1B1, 0, buf, -1).flags = int(SqeFlags.FIXED_FILE)
        first, then = ring.unregister_buffers, ring.unregister_files
    ring.submit()
    unregister_with_a_read_in_flight(ring, w, 0xF1B1, first, delayed_write)
    assert buf == b"abcdefgh"
    then()
    assert (ring.in_flight, ring.pinned) == (0, 0)


def test_unregister_buffers_with_a_fixed_read_of_a_replaced_table_in_flight(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any]
) -> None:
    """A read_fixed flushed before register_buffers_update replaced its buffer uses the old
    table, not the current one: before 6.13 unregister_buffers still waited for it."""
    r, w = pipe
    old = WeakBytearray(8)
    ref = weakref.ref(old)
    ring.register_buffers([old])
    ring.read_fixed(0xF1B3, r, old, -1, 0)
    ring.submit()
    wait_until(lambda: ring.sq_ready() == 0)  # SQPOLL: imported under the old table
    del old
    ring.register_buffers_update(0, [bytearray(8)])
    gc.collect()
    assert ref() is not None  # the read in flight still writes into it
    unregister_with_a_read_in_flight(ring, w, 0xF1B3, ring.unregister_buffers, delayed_write)
    gc.collect()
    assert ref() is None
    assert (ring.in_flight, ring.pinned) == (0, 0)


SPLICE_F_FD_IN_FIXED = 1 << 31  # io_uring's splice flag: fd_in is a registered-file index


def test_unregister_buffers_with_a_splice_from_a_fixed_file_in_flight(
    ring: IoUring, make_pipe: Callable[[], tuple[int, int]], delayed_write: Callable[..., Any]
) -> None:
    """A splice names its registered input with a splice flag, not SqeFlags.FIXED_FILE; before
    6.13 it holds the kernel's resource reference all the same."""
    r, w = make_pipe()
    out_r, out_w = make_pipe()
    ring.register_buffers([bytearray(8)])
    ring.register_files([r])
    ring.splice(0xF1B4, 0, -1, out_w, -1, 8, SPLICE_F_FD_IN_FIXED)
    ring.submit()
    unregister_with_a_read_in_flight(ring, w, 0xF1B4, ring.unregister_buffers, delayed_write)
    assert os.read(out_r, 8) == b"abcdefgh"
    ring.unregister_files()
    assert (ring.in_flight, ring.pinned) == (0, 0)


class FinalizedBytearray(bytearray):
    """A bytearray that calls ``on_final()`` when it is collected."""

    on_final: Callable[[], None] = staticmethod(lambda: None)

    def __del__(self) -> None:
        self.on_final()


def test_registered_buffers_registered_again_by_a_finalizer_of_the_unregistered_ones(
    ring: IoUring,
) -> None:
    """unregister_buffers releases the last export of a buffer object whose finalizer registers
    new tagged buffers: that registration happens once the unregistration's own bookkeeping is
    settled, so before 6.13 (where unregistering settles the table's tags itself) the new tag
    stays live and its buffer exported, as on every kernel."""
    fresh = bytearray(8)
    raised: list[BaseException] = []

    def register_again() -> None:
        try:
            ring.register_buffers([fresh], tags=[0x7A61])
        except BaseException as e:  # a finalizer's exception would be lost
            raised.append(e)

    gone = FinalizedBytearray(8)
    gone.on_final = register_again
    ring.register_buffers([gone])
    del gone  # the registration's export holds the last reference
    ring.unregister_buffers()
    assert raised == []
    assert ring.live_tags == 1
    assert not resizable(fresh)  # registered in the kernel: still exported
    ring.unregister_buffers()
    if not _kernel.older_than("6.13"):
        assert ring.copy_cqe(timeout=5) == Cqe(0x7A61, 0, 0)
    assert ring.live_tags == 0
    assert resizable(fresh)


def test_registrations_from_another_thread_during_unregistrations(
    make_default_ring: Callable[..., IoUring],
) -> None:
    """One thread registers and unregisters tagged buffers in a loop while another registers
    tagged buffers of its own: each registration either lands whole or raises (BlockingIOError
    with EBUSY while the table is being unregistered, the kernel's OSError when a table is
    already there); in the end every tag is settled and no buffer stays exported."""
    ring = make_default_ring(8)
    mine, theirs = bytearray(8), bytearray(8)
    stop = threading.Event()
    unexpected: list[BaseException] = []

    def register_theirs() -> None:
        while not stop.is_set():
            try:
                ring.register_buffers([theirs], tags=[0x7A62])
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENXIO):
                    unexpected.append(e)
            except BaseException as e:
                unexpected.append(e)
            time.sleep(0)

    helper = threading.Thread(target=register_theirs)
    helper.start()
    try:
        for _ in range(300):
            with contextlib.suppress(OSError):  # theirs may be registered: EBUSY
                ring.register_buffers([mine], tags=[0x7A63])
            with contextlib.suppress(OSError):  # ENXIO: none registered
                ring.unregister_buffers()
            ring.copy_cqes()  # the tag completions of 6.13 and later
    finally:
        stop.set()
        helper.join(timeout=30)
    assert not helper.is_alive()
    assert unexpected == []
    with contextlib.suppress(OSError):
        ring.unregister_buffers()
    deadline = time.monotonic() + 10
    while ring.live_tags and time.monotonic() < deadline:  # 6.1 posts some a moment later
        ring.copy_cqes()
        time.sleep(0.01)
    assert ring.live_tags == 0
    assert resizable(mine) and resizable(theirs)


def test_registered_buffer_kept_alive_until_fixed_op_completes(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any]
) -> None:
    require_kernel("6.13", "unregister_buffers that does not wait for fixed-buffer reads")
    r, w = pipe
    buf = WeakBytearray(b"\x2a" * 8)
    ref = weakref.ref(buf)
    ring.register_buffers([buf])
    ring.read_fixed(0xF1ED, r, buf, -1, 0)
    del buf
    ring.submit()
    # Under SQPOLL the kernel thread looks the fixed buffer up only when it takes the SQE:
    # unregistering before that would fail the read with EFAULT.
    wait_until(lambda: ring.sq_ready() == 0)
    delayed_write(w, b"WATCHDOG", 20.0)  # completes the read if unregistering blocks
    ring.unregister_buffers()
    gc.collect()
    assert ref() is not None  # the READ_FIXED in flight still writes into it
    os.write(w, b"abcdefgh")
    ring.submit_and_wait(1)
    assert ring.peek_cqe() == Cqe(0xF1ED, 8, 0)
    assert bytes(ref()) == b"abcdefgh"  # type: ignore[arg-type]
    ring.cqe_seen()
    gc.collect()
    assert ref() is None


# --------------------------------------------------------------------------------------------
# Stale SQE handles


def _stale_uses(sqe: Any, fd: int, buf: bytearray) -> list[tuple[str, Callable[[], object]]]:
    return [
        ("read user_data", lambda: sqe.user_data),
        ("read opcode", lambda: sqe.opcode),
        ("read addr", lambda: sqe.addr),
        ("write user_data", lambda: setattr(sqe, "user_data", 0xBAD)),
        ("write flags", lambda: setattr(sqe, "flags", int(SqeFlags.IO_LINK))),
        ("write fd", lambda: setattr(sqe, "fd", fd)),
        ("fields", lambda: sqe.fields()),
        ("prep_nop", lambda: sqe.prep_nop(0xBAD)),
        ("prep_read", lambda: sqe.prep_read(0xBAD, fd, buf, -1)),
    ]


def _valid(sqe: Sqe) -> bool:
    # A call, not the property: mypy would carry `assert sqe.valid` across the flush below.
    return sqe.valid


@pytest.mark.parametrize("how", ["flush_sq", "submit", "submit_and_wait"])
def test_stale_sqe_after_flush(ring: IoUring, pipe: tuple[int, int], how: str) -> None:
    sqe = ring.nop(0x57A1E)
    assert _valid(sqe)
    if how == "flush_sq":
        ring.flush_sq()
    elif how == "submit":
        ring.submit()
    else:
        ring.submit_and_wait(1)
    assert not sqe.valid
    buf = bytearray(4)
    for name, use in _stale_uses(sqe, pipe[0], buf):
        try:
            use()
        except StaleSqeError:
            continue
        pytest.fail(f"{name} on a stale SQE did not raise")
    assert ring.pinned == 0
    assert resizable(buf)
    if how == "flush_sq":
        ring.submit()
    assert ring.copy_cqe() == Cqe(0x57A1E, 0, 0)  # what the kernel saw is the original


def test_stale_sqe_slot_reused(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(1)
    old = ring.nop(0x01D)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x01D, 0, 0)
    wait_until(lambda: ring.sq_space_left() == 1)
    new = ring.nop(0x0E3)  # the same slot
    with pytest.raises(StaleSqeError):
        old.user_data = 0xBAD
    with pytest.raises(StaleSqeError):
        old.prep_nop(0xBAD)
    assert not old.valid
    assert new.valid
    assert new.user_data == 0x0E3
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x0E3, 0, 0)


def test_stale_sqe_after_close(make_ring: Callable[..., IoUring], pipe: tuple[int, int]) -> None:
    ring = make_ring(2)
    sqe = ring.nop(0xC105)
    ring.close()
    assert not sqe.valid
    buf = bytearray(4)
    for name, use in _stale_uses(sqe, pipe[0], buf):
        try:
            use()
        except (StaleSqeError, ValueError):
            continue
        pytest.fail(f"{name} on an SQE of a closed ring did not raise")
    assert resizable(buf)


# --------------------------------------------------------------------------------------------
# Close with operations in flight


@pytest.mark.parametrize("how", ["close", "with"])
def test_close_with_pending_read_returns_promptly(
    make_ring: Callable[..., IoUring], pipe: tuple[int, int], how: str
) -> None:
    r, _ = pipe
    ring = make_ring(4)
    buf = bytearray(8)
    sqe = ring.read(0xC10, r, buf, -1)
    ring.submit()
    assert ring.in_flight == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.monotonic()
        if how == "close":
            ring.close()
        else:
            with ring:
                pass
        elapsed = time.monotonic() - start
    assert elapsed < 5.0
    assert [str(w.message) for w in caught] == []
    assert ring.closed
    assert not sqe.valid
    assert resizable(buf)  # the pin was released once the cancelled read was drained


def test_close_with_prepared_read_releases_pins(
    make_ring: Callable[..., IoUring], pipe: tuple[int, int]
) -> None:
    ring = make_ring(4)
    buf = bytearray(8)
    ring.read(0xC11, pipe[0], buf, -1)
    assert not resizable(buf)
    ring.close()
    assert resizable(buf)


def test_close_by_gc_with_pending_read(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    buf = bytearray(8)
    ring = IoUring(4)
    ring.read(0xC12, r, buf, -1)
    ring.submit()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.monotonic()
        del ring
        gc.collect()
        elapsed = time.monotonic() - start
    assert elapsed < 5.0
    assert [w.category for w in caught if w.category is not ResourceWarning] == []
    assert resizable(buf)


# --------------------------------------------------------------------------------------------
# fork


def test_fork_child_gets_ring_forked_error(make_default_ring: Callable[..., IoUring]) -> None:
    ring = make_default_ring(4)
    ring.nop(0xF0)
    ring.submit()
    assert ring.copy_cqe() == Cqe(0xF0, 0, 0)
    checks: list[tuple[str, Callable[[], object]]] = [
        ("nop", lambda: ring.nop(1)),
        ("get_sqe", ring.get_sqe),
        ("submit", ring.submit),
        ("sq_ready", ring.sq_ready),
        ("cq_ready", ring.cq_ready),
        ("peek_cqe", ring.peek_cqe),
        ("copy_cqes", ring.copy_cqes),
        ("copy_cqe", ring.copy_cqe),  # would block if it did not raise: the alarm ends the child
    ]
    report_r, report_w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # child: report through the exit code and the pipe, never return to pytest
        code = 3
        try:
            os.close(report_r)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(10)
            failures = []
            for name, call in checks:
                try:
                    call()
                    failures.append(f"{name}: no error")
                except RingForkedError:
                    pass
                except BaseException as exc:
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
            os.write(report_w, "; ".join(failures).encode())
            code = 1 if failures else 0
        finally:
            os._exit(code)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as report:
        details = report.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, details or f"child status {status:#x}"
    # The parent's ring keeps working.
    ring.nop(0xFA)
    assert ring.submit() == 1
    assert ring.copy_cqe() == Cqe(0xFA, 0, 0)


# --------------------------------------------------------------------------------------------
# Signals


class _Alarm(Exception):
    pass


def _raise_alarm(signum: int, frame: object) -> None:
    raise _Alarm


@pytest.mark.parametrize("call", ["copy_cqe", "submit_and_wait"])
def test_signal_handler_exception_interrupts_wait(
    make_default_ring: Callable[..., IoUring],
    pipe: tuple[int, int],
    delayed_write: Callable[..., Any],
    call: str,
) -> None:
    ring = make_default_ring(4)
    r, w = pipe
    buf = bytearray(8)
    ring.read(0x5164, r, buf, -1)
    if call == "copy_cqe":
        ring.submit()
    delayed_write(w, b"WATCHDOG", 8.0)  # ends the wait if the signal is swallowed
    wait: Callable[[], object] = (
        ring.copy_cqe if call == "copy_cqe" else lambda: ring.submit_and_wait(1)
    )
    previous = signal.signal(signal.SIGALRM, _raise_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.monotonic()
        with pytest.raises(_Alarm):
            wait()
        elapsed = time.monotonic() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The ring is still usable: the read is in flight and completes.
    assert ring.in_flight == 1
    os.write(w, b"data0123")
    cqe = ring.copy_cqe()
    assert elapsed < 5.0, "the handler's exception waited for the completion"
    assert cqe == Cqe(0x5164, 8, 0)
    assert buf == b"data0123"


# --------------------------------------------------------------------------------------------
# Threads


def test_thread_blocked_in_submit_and_wait_releases_gil(
    make_default_ring: Callable[..., IoUring],
    pipe: tuple[int, int],
    delayed_write: Callable[..., Any],
) -> None:
    ring = make_default_ring(4)
    r, w = pipe
    buf = bytearray(4)
    ring.read(0x6111, r, buf, -1)
    # If the waiter held the GIL (or the ring's lock) while blocked, this test's own thread
    # could not run until another process writes "late".
    delayed_write(w, b"late", 5.0)
    result: dict[str, Any] = {}
    started = threading.Event()

    def waiter() -> None:
        started.set()
        try:
            result["submitted"] = ring.submit_and_wait(1)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        assert started.wait(5)
        time.sleep(0.3)
        assert thread.is_alive()
        assert ring.in_flight == 1  # ring methods work while another thread waits
        os.write(w, b"main")
    finally:
        thread.join(10)
    assert not thread.is_alive()
    assert "error" not in result, result
    assert result["submitted"] == 1
    assert ring.copy_cqe() == Cqe(0x6111, 4, 0)
    assert buf == b"main"


def test_threads_share_a_ring(make_default_ring: Callable[..., IoUring]) -> None:
    ring = make_default_ring(64)
    n_threads, per_thread = 4, 1000
    reaped: list[list[int]] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []

    def worker(tid: int) -> None:
        try:
            for i in range(per_thread):
                nop_submitting_when_full(ring, (tid << 32) | i)
                if i % 16 == 15:
                    ring.submit()
                    reaped[tid].extend(int(u) for u in ring.copy_cqes()["user_data"])
            ring.submit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(tid,)) for tid in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    ring.submit()
    got = [u for part in reaped for u in part]
    total = n_threads * per_thread
    while len(got) < total:
        got.extend(int(u) for u in ring.copy_cqes(wait_nr=1)["user_data"])
    expected = Counter((tid << 32) | i for tid in range(n_threads) for i in range(per_thread))
    assert Counter(got) == expected
    assert (ring.in_flight, ring.pinned) == (0, 0)


# --------------------------------------------------------------------------------------------
# Reference counts: pins take exactly their references and give them all back


def _rc(obj: object) -> int:
    return sys.getrefcount(obj) - 1  # without getrefcount's own argument


def test_refcount_read_write_buffers(ring: IoUring, tmp_file: Callable[..., Any]) -> None:
    f = tmp_file(b"0123456789")
    target, source = bytearray(4), bytearray(b"wxyz")
    before = (_rc(target), _rc(source))
    ring.read(0x4EAD, f, target, 0)
    ring.write(0x3B17, f, source, 10)
    assert (_rc(target), _rc(source)) == (before[0] + 1, before[1] + 1)
    ring.submit_and_wait(2)
    assert (_rc(target), _rc(source)) == (before[0] + 1, before[1] + 1)  # not reaped yet
    assert sorted(ring.copy_cqes()["user_data"].tolist()) == [0x3B17, 0x4EAD]
    assert (_rc(target), _rc(source)) == before
    assert target == b"0123"


def test_refcount_iovec_items_and_list(ring: IoUring, tmp_file: Callable[..., Any]) -> None:
    f = tmp_file(b"abcdefgh")
    items = [bytearray(3), bytearray(5)]
    iovecs = list(items)
    before = ([_rc(b) for b in items], _rc(iovecs))
    ring.readv(0x10E, f, iovecs, 0)
    # Each buffer is exported once; the list itself is not kept (the iovec array is a copy).
    assert ([_rc(b) for b in items], _rc(iovecs)) == ([n + 1 for n in before[0]], before[1])
    ring.submit()
    assert ring.copy_cqe(timeout=5) == Cqe(0x10E, 8, 0)
    assert ([_rc(b) for b in items], _rc(iovecs)) == before
    assert items == [b"abc", b"defgh"]


@pytest.mark.parametrize("kind", ["str", "bytes", "pathlike"])
def test_refcount_paths_are_copied_not_kept(
    ring: IoUring, tmp_path: pathlib.Path, kind: str
) -> None:
    raw = "".join([str(tmp_path), "/refcount_", kind])
    path: Any = {"str": raw, "bytes": os.fsencode(raw), "pathlike": _Path(raw)}[kind]
    before = _rc(path)
    ring.openat(0x0BE2, AT_FDCWD, path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    assert _rc(path) == before  # a private copy: the object itself is not pinned
    ring.submit()
    cqe = ring.copy_cqe(timeout=5)
    assert cqe.res > 0
    os.close(cqe.res)
    assert _rc(path) == before


def test_refcount_registered_buffers(ring: IoUring, pipe: tuple[int, int]) -> None:
    require_kernel("6.13", "unregister_buffers that does not wait for fixed-buffer reads")
    r, w = pipe
    bufs = [bytearray(16), bytearray(32)]
    before = [_rc(b) for b in bufs]
    ring.register_buffers(bufs)
    assert [_rc(b) for b in bufs] == [n + 1 for n in before]
    ring.read_fixed(0xF1C, r, memoryview(bufs[1])[:4], -1, 1)
    ring.submit()
    wait_until(lambda: ring.sq_ready() == 0)
    ring.unregister_buffers()
    assert [_rc(b) for b in bufs] == [n + 1 for n in before]  # the read still holds them
    os.write(w, b"FIXD")
    assert ring.copy_cqe(timeout=5) == Cqe(0xF1C, 4, 0)
    assert [_rc(b) for b in bufs] == before
    assert bytes(bufs[1][:4]) == b"FIXD"


def test_refcount_batch_buffer_shared_by_operations(
    ring: IoUring, tmp_file: Callable[..., Any]
) -> None:
    f = tmp_file(bytes(range(64)))
    target = bytearray(64)
    before = _rc(target)
    assert ring.read_batch(0x8A00, f.fd, target, [0, 16, 32, 48], 16) == 4
    assert _rc(target) == before + 1  # one export for the whole batch
    ring.submit()
    got: list[int] = []
    while len(got) < 4:
        got += ring.copy_cqes(wait_nr=1, timeout=5)["user_data"].tolist()
        assert _rc(target) == (before if len(got) == 4 else before + 1)
    assert target == bytes(range(64))


# --------------------------------------------------------------------------------------------
# Close and garbage collection with operations in flight


class _Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()

    def close(self) -> None:
        self.sock.close()


def _in_flight_kinds() -> list[str]:
    kinds = ["pipe_read", "pipe_readv", "read_fixed", "pending_prepared"]
    for name in ("timeout", "poll_multishot", "accept", "multishot_accept"):
        if hasattr(IoUring, name):
            kinds.append(name)
    return kinds


def _start_in_flight(ring: IoUring, kind: str, r: int, listener: _Listener) -> list[Any]:
    """Puts one long-lived operation of `kind` in flight; returns weakrefs of its buffers."""
    refs: list[Any] = []
    if kind == "pipe_read":
        buf = WeakBytearray(8)
        refs.append(weakref.ref(buf))
        ring.read(0xC0, r, buf, -1)
    elif kind == "pipe_readv":
        bufs = [WeakBytearray(4), WeakBytearray(4)]
        refs += [weakref.ref(b) for b in bufs]
        ring.readv(0xC1, r, bufs, -1)
    elif kind == "read_fixed":
        buf = WeakBytearray(64)
        refs.append(weakref.ref(buf))
        ring.register_buffers([buf])
        ring.read_fixed(0xC2, r, memoryview(buf)[:8], -1, 0)
    elif kind == "pending_prepared":  # prepared, never submitted
        buf = WeakBytearray(8)
        refs.append(weakref.ref(buf))
        ring.read(0xC3, r, buf, -1)
        return refs
    elif kind == "timeout":
        ring.timeout(0xC4, 3600)
    elif kind == "poll_multishot":
        ring.poll_multishot(0xC5, r, select.POLLIN)
    elif kind in ("accept", "multishot_accept"):
        # A SockAddr is a handle on storage that the ring keeps (not the Python object).
        addr = iouring.SockAddr() if hasattr(iouring, "SockAddr") else None
        getattr(ring, kind)(0xC6, listener.sock.fileno(), addr)
    ring.submit()
    return refs


@pytest.mark.parametrize("how", ["close", "with", "del"])
@pytest.mark.parametrize("kind", _in_flight_kinds())
def test_close_in_flight_bounded_and_releases(
    make_ring: Callable[..., IoUring],
    ring_registry: list[IoUring],
    pipe: tuple[int, int],
    ring_config: Any,
    kind: str,
    how: str,
) -> None:
    r, _ = pipe
    ring = make_ring(8)  # first: a kernel that refuses the configuration skips here
    listener = _Listener()
    try:
        refs = _start_in_flight(ring, kind, r, listener)
        if kind != "pending_prepared" and not ring_config.sqpoll:
            assert ring.in_flight >= 1
        gc.collect()
        assert all(ref() is not None for ref in refs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.monotonic()
            if how == "close":
                ring.close()
            elif how == "with":
                with ring:
                    pass
            else:
                ring_registry.remove(ring)
                del ring
                gc.collect()
            elapsed = time.monotonic() - start
        assert elapsed < 5.0
        assert [str(w.message) for w in caught] == []
        gc.collect()
        assert all(ref() is None for ref in refs), "close released no pin"
    finally:
        listener.close()


@contextlib.contextmanager
def read_on_another_threads_ring(r: int, user_data: int) -> Iterator[dict[str, Any]]:
    """A read of ``r`` into an 8-byte WeakBytearray, in flight on a SINGLE_ISSUER|DEFER_TASKRUN
    ring that another thread made and submitted from; that thread stays alive (the kernel
    cancels the read of a thread that exits) until the block ends. Yields ``{"ring": the ring,
    "ref": a weak reference to the buffer}``, the only references left to either."""
    flags = int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN)
    made, done = threading.Event(), threading.Event()
    state: dict[str, Any] = {}

    def owner() -> None:
        try:
            ring = IoUring(4, flags=flags)
        except OSError as exc:
            state["skip"] = str(exc)
            made.set()
            return
        buf = WeakBytearray(8)
        state["ref"] = weakref.ref(buf)
        ring.read(user_data, r, buf, -1)
        ring.submit()
        state["ring"] = ring
        del ring, buf
        made.set()
        done.wait(30)

    thread = threading.Thread(target=owner)
    thread.start()
    try:
        assert made.wait(10)
        if "skip" in state:
            pytest.skip(f"kernel refuses SINGLE_ISSUER|DEFER_TASKRUN: {state['skip']}")
        yield state
    finally:
        done.set()
        thread.join(10)


def test_close_resource_warning_when_drain_impossible(pipe: tuple[int, int]) -> None:
    """A SINGLE_ISSUER|DEFER_TASKRUN ring owned by another thread cannot be drained from this
    one (the kernel refuses its enter with EEXIST): close() keeps the buffer of the read in
    flight alive for ever and says so with a ResourceWarning."""
    r, w = pipe
    with read_on_another_threads_ring(r, 0x5EA) as state:
        ring = state.pop("ring")
        assert ring.in_flight == 1 and ring.pinned == 1
        start = time.monotonic()
        with pytest.warns(ResourceWarning, match="keeping 1 buffers alive"):
            ring.close()
        assert time.monotonic() - start < 5.0
        assert ring.closed
        del ring
        gc.collect()
        assert state["ref"]() is not None, "the buffer was freed while the kernel may write it"
    os.write(w, b"late")  # nothing reads it any more; the buffer stays untouched
    time.sleep(0.05)
    assert bytes(state["ref"]()) == bytes(8)


def test_del_resource_warning_when_drain_impossible(pipe: tuple[int, int]) -> None:
    """The same through garbage collection: the warning cannot raise there, so it is reported
    (as unraisable when warnings are errors) and the buffer stays alive."""
    r, _ = pipe
    with read_on_another_threads_ring(r, 0x5EB) as state:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del state["ring"]
            gc.collect()
        assert [w.category for w in caught] == [ResourceWarning]
        assert state["ref"]() is not None


# --------------------------------------------------------------------------------------------
# SIGINT during blocking waits


def _sigint_later(delay: float, before: Callable[[], object] | None = None) -> threading.Thread:
    """A thread that sends SIGINT to this process after `delay`; it blocks SIGINT itself, so
    the kernel delivers it to the main thread, the one blocked in the wait."""

    def run() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        time.sleep(delay)
        if before is not None:
            before()
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("call", ["copy_cqe", "copy_cqes", "submit_and_wait", "enter"])
def test_sigint_interrupts_wait_promptly(
    make_default_ring: Callable[..., IoUring],
    pipe: tuple[int, int],
    delayed_write: Callable[..., Any],
    call: str,
) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are handled in the main thread only")
    ring = make_default_ring(4)
    r, w = pipe
    buf = bytearray(4)
    ring.read(0x5161, r, buf, -1)
    if call != "submit_and_wait":
        ring.submit()
    delayed_write(w, b"WDOG", 10.0)  # ends the wait if SIGINT is swallowed
    waits: dict[str, Callable[[], object]] = {
        "copy_cqe": ring.copy_cqe,
        "copy_cqes": lambda: ring.copy_cqes(wait_nr=1),
        "submit_and_wait": lambda: ring.submit_and_wait(1),
        "enter": lambda: ring.enter(0, 1, int(iouring.EnterFlags.GETEVENTS)),
    }
    killer = _sigint_later(0.3)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        waits[call]()
    elapsed = time.monotonic() - start
    killer.join()
    assert elapsed < 5.0, "KeyboardInterrupt waited for the completion"
    # The ring is usable and the read, still in flight, completes exactly once.
    assert ring.in_flight == 1
    os.write(w, b"ping")
    assert ring.copy_cqe(timeout=5) == Cqe(0x5161, 4, 0)
    assert ring.copy_cqes().tolist() == []
    assert buf == b"ping"
    ring.nop(0x5162)
    assert ring.submit() == 1
    assert ring.copy_cqe(timeout=5) == Cqe(0x5162, 0, 0)


class _Interrupted(Exception):
    """Raised by the racing test's signal handler (never KeyboardInterrupt: a late one would
    abort the whole pytest session instead of failing one test)."""


def _raise_interrupted(signum: int, frame: object) -> None:
    raise _Interrupted


def test_signal_racing_a_completion_loses_nothing(
    make_default_ring: Callable[..., IoUring], make_pipe: Callable[[], tuple[int, int]]
) -> None:
    """The completion and a signal whose handler raises arrive together, 20 times: each time
    the wait either returns or raises, and the completion is then reaped exactly once."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are handled in the main thread only")
    ring = make_default_ring(4)
    previous = signal.signal(signal.SIGUSR1, _raise_interrupted)
    try:
        for i in range(20):
            r, w = make_pipe()
            ring.read(0x5170 + i, r, bytearray(1), -1)
            ring.submit()

            def send(w: int = w, i: int = i) -> None:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
                time.sleep(0.01 * (i % 4))
                os.write(w, b"x")
                os.kill(os.getpid(), signal.SIGUSR1)

            killer = threading.Thread(target=send)
            try:
                try:
                    # start() waits for the thread to run, and its signal's handler can raise
                    # in that wait already: inside the try, like the wait itself.
                    killer.start()
                    ring.submit_and_wait(1)  # does not consume: nothing can be lost in between
                finally:
                    killer.join()  # the signal was sent when this returns...
                time.sleep(0)  # ...and its handler runs here at the latest
            except _Interrupted:
                killer.join()
                time.sleep(0)
            cqes = ring.copy_cqes(wait_nr=1, timeout=5)
            assert cqes.tolist() == [(0x5170 + i, 1, 0)]
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert ring.in_flight == 0


# --------------------------------------------------------------------------------------------
# fork: closing in the child is harmless


@pytest.mark.parametrize("how", ["close", "del", "exit"])
def test_fork_child_close_leaves_parent_untouched(
    make_default_ring: Callable[..., IoUring], pipe: tuple[int, int], how: str
) -> None:
    ring = make_default_ring(4)
    r, w = pipe
    buf = WeakBytearray(4)
    ring.read(0xF07, r, buf, -1)
    ring.submit()
    ring.nop(0xF08)  # prepared, not submitted: the child must not submit it either
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:
        code = 3
        try:
            signal.alarm(10)
            try:
                ring.nop(1)
                code = 4  # no RingForkedError
            except RingForkedError:
                if how == "close":
                    ring.close()
                    ring.close()
                    code = 0 if ring.closed else 5
                elif how == "del":
                    del globals_holder[:]  # nothing else refers to it in the child
                    code = 0
                else:
                    code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's ring, its pins and its prepared SQE are as they were.
    assert (ring.in_flight, ring.sq_ready()) == (1, 1)
    assert ring.pinned == 1
    assert not resizable(buf)
    os.write(w, b"pong")
    assert ring.submit() == 1
    got = sorted(ring.copy_cqes(wait_nr=2, timeout=5).tolist())
    assert got == [(0xF07, 4, 0), (0xF08, 0, 0)]
    assert buf == b"pong"


globals_holder: list[object] = []


# --------------------------------------------------------------------------------------------
# Arguments whose conversion runs Python code that closes the ring


class _ClosesRing:
    """An int (``__index__``) and a float (``__float__``) whose conversion closes ``ring``."""

    def __init__(self, ring: IoUring, value: int) -> None:
        self.ring = ring
        self.value = value

    def __index__(self) -> int:
        self.ring.close()
        return self.value

    def __float__(self) -> float:
        self.ring.close()
        return float(self.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda r, c: r.copy_cqes(None, c),
        lambda r, c: r.copy_cqes(np.zeros(4, iouring.CQE_DTYPE), c),
        lambda r, c: r.copy_cqes(None, 0, timeout=c),
        lambda r, c: r.submit_and_copy_cqes(np.zeros(4, iouring.CQE_DTYPE), c),
        lambda r, c: r.submit_and_copy_cqes(np.zeros(4, iouring.CQE_DTYPE), 0, timeout=c),
        lambda r, c: r.copy_cqe(timeout=c),
        lambda r, c: r.submit_and_wait(c),
        lambda r, c: r.submit_and_wait(1, timeout=c),
        lambda r, c: r.nop(c),
        lambda r, c: r.cq_advance(c),
    ],
    ids=[
        "copy_cqes-wait_nr",
        "copy_cqes-out-wait_nr",
        "copy_cqes-timeout",
        "submit_and_copy_cqes-wait_nr",
        "submit_and_copy_cqes-timeout",
        "copy_cqe-timeout",
        "submit_and_wait-wait_nr",
        "submit_and_wait-timeout",
        "nop-user_data",
        "cq_advance-count",  # found by test_fuzz.py (SIGSEGV: cq_ready() of the unmapped CQ)
    ],
)
def test_ring_closed_while_converting_arguments_raises(
    make_ring: Callable[..., IoUring], call: Callable[[IoUring, _ClosesRing], object]
) -> None:
    """A method checks the ring after converting its arguments: a conversion that closes the
    ring gives ValueError, not a read through the unmapped rings (this crashed with SIGSEGV)."""
    ring = make_ring(4)
    ring.nop(0x5AFE)  # an unflushed SQE, which close() turns into a NOP
    with pytest.raises(ValueError, match="closed ring"):
        call(ring, _ClosesRing(ring, 1))
    assert ring.closed


# --- issue 11: holes an adversarial review found ------------------------------------------------


def _renamed_poll_releases_read_pin(ring: IoUring, pipe: tuple[int, int], rename: Any) -> None:
    """A poll on an idle pipe renamed (by `rename`) to the user_data of a pinned read in flight:
    the poll's completion must not release the read's buffer."""
    r, w = pipe
    buf = bytearray(4)
    ring.read(0xB, r, buf, -1)
    ring.poll_add(0xA, r, select.POLLPRI)  # never ready on a pipe
    ring.submit()
    try:
        rename()
    finally:
        ring.submit()
    # Whatever the kernel did with the update, the poll (under 0xA or 0xB) is removed now.
    ring.poll_remove(0xC1, 0xA)
    ring.poll_remove(0xC2, 0xB)
    ring.submit()
    for _ in range(3):
        ring.copy_cqes(wait_nr=0)
        time.sleep(0.01)
    assert not resizable(buf), "the read's buffer was released while the read is in flight"
    os.write(w, b"data")
    wait_until(lambda: (ring.copy_cqes(), ring.in_flight)[1] == 0)
    assert buf == b"data" and resizable(buf)


def test_rename_user_data_by_sqe_off_keeps_the_read_pinned(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    flags = int(iouring.PollFlags.UPDATE_USER_DATA)

    def rename() -> None:
        sqe = ring.poll_update(0xD, 0xA, 0xA, 0, flags)
        sqe.off = 0xB  # renames the poll to the read's user_data: reserved at submit

    _renamed_poll_releases_read_pin(ring, pipe, rename)


def test_rename_user_data_by_push_sqes_keeps_the_read_pinned(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    sqes = np.zeros(1, iouring.SQE_DTYPE)
    sqes[0]["opcode"] = int(iouring.Op.POLL_REMOVE)
    sqes[0]["user_data"] = 0xD
    sqes[0]["addr"] = 0xA
    sqes[0]["off"] = 0xB
    sqes[0]["len"] = int(iouring.PollFlags.UPDATE_USER_DATA)

    def rename() -> None:
        assert ring.push_sqes(sqes) == 1

    _renamed_poll_releases_read_pin(ring, pipe, rename)


def test_copy_cqes_accounts_from_the_ring_not_from_out(
    make_default_ring: Callable[..., IoUring], pipe: tuple[int, int]
) -> None:
    """Class 7: `out` is memory that someone else writes while copy_cqes runs (here a child
    process, through a shared mapping, forging a final CQE of a pinned read). The accounting
    must follow the CQEs read from the ring: the read stays pinned, every NOP is counted."""
    import mmap

    ring = make_default_ring(64)
    r, w = pipe
    buf = bytearray(4)
    ring.read(0xB, r, buf, -1)
    ring.submit()
    shared = mmap.mmap(-1, 64 * 16)
    out = np.frombuffer(shared, dtype=iouring.CQE_DTYPE)
    forged = np.zeros(1, iouring.CQE_DTYPE)
    forged["user_data"] = 0xB
    forged_bytes = forged.tobytes()
    # The child overwrites out[63], the entry that copy_cqes accounts for last (so the longest
    # after copying it), as fast as it can for a while.
    pid = os.fork()
    if pid == 0:
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                for _ in range(1000):
                    shared[63 * 16 : 64 * 16] = forged_bytes
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 2
        rounds = 0
        while time.monotonic() < deadline:
            ring.nop_batch(np.full(64, 0xA, np.uint64))
            ring.submit_and_wait(64)
            ring.copy_cqes(out)
            rounds += 1
            if ring.in_flight != 1 or resizable(buf):
                break
        assert ring.in_flight == 1, f"accounting drifted after {rounds} rounds"
        assert not resizable(buf), f"the read's buffer was released after {rounds} rounds"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.write(w, b"done")
    wait_until(lambda: (ring.copy_cqes(), ring.in_flight)[1] == 0)
    assert buf == b"done"
    del out
    shared.close()


@pytest.mark.parametrize("bad", ["empty", "file_mmap"])
def test_register_buffers_update_partial_keeps_what_the_kernel_holds(
    make_default_ring: Callable[..., IoUring], tmp_path: pathlib.Path, bad: str
) -> None:
    """Class 4: the kernel applies an update up to the first buffer it refuses. The ring must
    keep exporting the buffers the kernel still holds, and say which buffer was refused."""
    import mmap

    ring = make_default_ring(8)
    old = [bytearray(4096), bytearray(4096)]
    ring.register_buffers(old)
    new0 = bytearray(4096)
    if bad == "empty":
        refused: Any = bytearray()
    else:
        path = tmp_path / "backing"
        path.write_bytes(b"\0" * 4096)
        fd = os.open(path, os.O_RDWR)
        refused = mmap.mmap(fd, 4096)
        os.close(fd)
    with pytest.raises(OSError, match=r"buffers\[1\]") as info:
        ring.register_buffers_update(0, [new0, refused])
    assert info.value.errno is not None
    assert resizable(old[0]), "slot 0 was replaced: its old buffer is free"
    assert not resizable(old[1]), "the kernel still holds slot 1's old buffer"
    assert not resizable(new0)
    if bad == "empty":
        assert resizable(refused)
    else:
        refused.close()  # not exported: closing works
    # Slot 0 reads into new0 and slot 1 into old[1], as the kernel has them.
    r, w = os.pipe()
    try:
        os.write(w, b"abcdwxyz")
        # One at a time: two pipe reads in flight together may run in either order (6.1
        # punts them to io-wq workers).
        ring.read_fixed(1, r, memoryview(new0)[:4], -1, 0)
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(1, 4, 0)
        ring.read_fixed(2, r, memoryview(old[1])[:4], -1, 1)
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(2, 4, 0)
        assert new0[:4] == b"abcd" and old[1][:4] == b"wxyz"
    finally:
        os.close(r)
        os.close(w)
    ring.unregister_buffers()
    assert resizable(old[1]) and resizable(new0)


@pytest.mark.parametrize("enable", [False, True])
def test_close_disabled_ring_releases_pins(pipe: tuple[int, int], enable: bool) -> None:
    """Class 5: a ring set up with R_DISABLED and closed without enabling (its SQEs flushed,
    never started: submit() fails with EBADFD) releases every pin, with no ResourceWarning."""
    r, w = pipe
    ring = IoUring(8, flags=SetupFlags.R_DISABLED)
    registered = bytearray(4096)
    ring.register_buffers([registered])
    target = bytearray(4)
    ring.read(1, r, target, -1)
    with pytest.raises(OSError, match="bad state") as info:
        ring.submit()
    assert info.value.errno == 77  # EBADFD
    assert ring.in_flight == 1
    if enable:
        ring.enable_rings()
        ring.submit()
        os.write(w, b"data")
        assert ring.copy_cqe(timeout=5) == Cqe(1, 4, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ring.close()
    assert resizable(registered) and resizable(target)


def test_weakly_referenced_sqe_handle_is_not_recycled(ring: IoUring) -> None:
    """Class 8: the handle-reuse fast path recycles the last Sqe object when only the ring holds
    it; a weak reference does not show in the refcount but must still see its own SQE."""
    first = ring.nop(0x1111)
    ref = weakref.ref(first)
    del first
    second = ring.nop(0x2222)
    assert ref() is not second
    held = ref()
    assert held is None or held.user_data == 0x1111
    assert second.user_data == 0x2222
    del held, second
    ring.submit()
    wait_until(lambda: (ring.copy_cqes(), ring.in_flight)[1] == 0)


_RESIZE_REMAP_FAILS = r"""
import os, resource, sys
import iouring
from iouring import IoUring, SetupFlags

ring = IoUring(8, flags=SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN | SetupFlags.NO_SQARRAY)
ring.nop(1)
ring.submit_and_wait(1)
assert ring.copy_cqe().user_data == 1
with open("/proc/self/statm") as statm:
    size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
# The kernel allocates the new rings (not charged to the address space); mapping them fails.
resource.setrlimit(resource.RLIMIT_AS, (size + (1 << 18), hard))
try:
    ring.resize(sq_entries=32768)
except OSError as e:
    error = e
else:
    error = None
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
if error is None:
    print("SKIP the resize mapped its rings under the limit")
    sys.exit(0)
assert "close" in str(error), error
for use in (lambda: ring.nop(2), ring.submit, lambda: ring.copy_cqes(), ring.sq_space_left):
    try:
        use()
    except RuntimeError as e:
        assert "resize" in str(e), e
    else:
        print("FAIL a broken ring accepted", use)
        sys.exit(1)
ring.close()
print("OK")
"""


def test_resize_whose_remap_fails_breaks_the_ring(tmp_path: pathlib.Path) -> None:
    """Class 9: the kernel resized the rings but mapping the new ones failed (ENOMEM under
    RLIMIT_AS, in a child process): the ring must refuse every later use, not silently keep
    the old rings that the kernel no longer reads."""
    import subprocess

    require_kernel("6.13", "IORING_REGISTER_RESIZE_RINGS")
    script = tmp_path / "remap.py"
    script.write_text(_RESIZE_REMAP_FAILS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=slow(60),
    )
    out = proc.stdout + proc.stderr
    if out.startswith("SKIP"):
        pytest.skip(out)
    assert proc.returncode == 0 and out.strip().endswith("OK"), out


def test_wait_with_nothing_in_flight_raises(ring: IoUring) -> None:
    """Class 13: a wait for completions when nothing is in flight (and nothing was submitted)
    would never end: it raises at once. A timeout still allows waiting (msg_ring, threads)."""
    out = np.zeros(4, iouring.CQE_DTYPE)
    calls: dict[str, Callable[[], object]] = {
        "copy_cqes": lambda: ring.copy_cqes(wait_nr=1),
        "copy_cqes(out)": lambda: ring.copy_cqes(out, wait_nr=2),
        "copy_cqe": ring.copy_cqe,
        "submit_and_wait": lambda: ring.submit_and_wait(1),
        "submit_and_copy_cqes": lambda: ring.submit_and_copy_cqes(out, 1),
    }
    previous = signal.signal(signal.SIGALRM, _raise_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 3)
        for call in calls.values():
            with pytest.raises(ValueError, match="nothing is in flight"):
                call()
        ring.nop(0x13)  # prepared, not submitted: copy_cqes does not submit it
        with pytest.raises(ValueError, match=r"submit\(\)"):
            ring.copy_cqes(wait_nr=1)
        assert ring.submit_and_wait(1) == 1
        assert ring.copy_cqe() == Cqe(0x13, 0, 0)
        assert len(ring.copy_cqes(wait_nr=1, timeout=0.01)) == 0
        with pytest.raises(TimeoutError):
            ring.copy_cqe(timeout=0.01)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("behind", ["nop", "read"])
def test_close_behind_a_drain_cancels_what_is_ahead(
    make_ring: Callable[..., IoUring], make_pipe: Callable[[], tuple[int, int]], behind: str
) -> None:
    """Class 6: an IO_DRAIN operation waits for everything queued before it, and the kernel
    defers every later SQE (close's own cancel too) behind it. close() must still cancel the
    operations ahead of the drain, within its bound, and release every pin."""
    ring = make_ring(8)
    (r1, _w1), (r2, _w2) = make_pipe(), make_pipe()
    ahead = WeakBytearray(8)
    ring.read(0xA, r1, ahead, -1)  # never completes: nothing is written to the pipe
    ring.submit()
    drained = WeakBytearray(8)
    if behind == "nop":
        ring.nop(0xD).flags = SqeFlags.IO_DRAIN
    else:
        ring.read(0xD, r2, drained, -1).flags = SqeFlags.IO_DRAIN
    ring.submit()
    refs = [weakref.ref(ahead), weakref.ref(drained)]
    del ahead, drained
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ring.close()
    gc.collect()
    assert [ref() for ref in refs] == [None, None]


def test_clone_buffers_count_conversion_replacing_the_source_table(
    make_default_ring: Callable[..., IoUring],
) -> None:
    """clone_buffers looked the source's table up before converting count, whose __index__
    can unregister that table (found by test_fuzz.py's review of conversion order)."""
    source = make_default_ring(4)
    target = make_default_ring(4)
    source.register_buffers([bytearray(4096), bytearray(4096)])

    class Unregisters:
        def __index__(self) -> int:
            source.unregister_buffers()
            return 2

    try:
        target.clone_buffers(source, count=0)
    except OSError as e:
        if e.errno == errno.EINVAL:
            pytest.skip(f"no IORING_REGISTER_CLONE_BUFFERS (Linux 6.12+): {e}")
    with pytest.raises(ValueError, match="no registered buffers"):
        target.clone_buffers(source, count=Unregisters())  # type: ignore[arg-type]
