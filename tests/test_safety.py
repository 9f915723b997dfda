"""Safe from Python: pins, stale SQE handles, closed rings, close in flight, fork, signals, threads.

Buffers here are often ``WeakBytearray``s (a bytearray that can be weakly referenced), so a test
can drop its last reference and still see whether the ring keeps the object alive.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pathlib
import signal
import threading
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from iouring import (
    Cqe,
    IoUring,
    RingForkedError,
    SqeFlags,
    StaleSqeError,
    SubmissionQueueFull,
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
    assert (b1, b2) == (b"ab", b"cde")


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
    with pytest.raises(ValueError):
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


def test_registered_buffer_kept_alive_until_fixed_op_completes(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any]
) -> None:
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


@pytest.mark.parametrize("how", ["flush_sq", "submit", "submit_and_wait"])
def test_stale_sqe_after_flush(ring: IoUring, pipe: tuple[int, int], how: str) -> None:
    sqe = ring.nop(0x57A1E)
    assert sqe.valid
    if how == "flush_sq":
        ring.flush_sq()
    elif how == "submit":
        ring.submit()
    else:
        ring.submit_and_wait(1)
    assert not sqe.valid
    buf = bytearray(4)
    for name, use in _stale_uses(sqe, pipe[0], buf):
        with pytest.raises(StaleSqeError):
            use()
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
        with pytest.raises((StaleSqeError, ValueError)):
            use()
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
                except BaseException as exc:  # noqa: BLE001
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
    previous = signal.signal(signal.SIGALRM, _raise_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.monotonic()
        with pytest.raises(_Alarm):
            if call == "copy_cqe":
                ring.copy_cqe()
            else:
                ring.submit_and_wait(1)
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
        except BaseException as exc:  # noqa: BLE001
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
                while True:
                    try:
                        ring.nop((tid << 32) | i)
                        break
                    except SubmissionQueueFull:
                        ring.submit()
                if i % 16 == 15:
                    ring.submit()
                    reaped[tid].extend(int(u) for u in ring.copy_cqes()["user_data"])
            ring.submit()
        except BaseException as exc:  # noqa: BLE001
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
