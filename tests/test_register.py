"""io_uring_register(2) operations beyond files and buffers (tests/ops/test_files.py has those).

Each test runs against the real kernel and skips, with the reason, when the kernel lacks the
register opcode (EINVAL) or refuses it for lack of privilege.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kernel_support import require_kernel

from iouring import Cqe, IoUring, Op, SetupFlags, SqeFlags, StaleSqeError


def _call_or_skip(call: Callable[[], Any], what: str) -> Any:
    try:
        return call()
    except OSError as error:
        if error.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
            pytest.skip(f"{what}: the kernel refuses it here ({errno.errorcode[error.errno]})")
        raise


@pytest.fixture
def plain_ring() -> Iterator[IoUring]:
    with IoUring(8) as ring:
        yield ring


def test_register_ring_fd_enters_through_the_index(plain_ring: IoUring) -> None:
    index = _call_or_skip(plain_ring.register_ring_fd, "IORING_REGISTER_RING_FDS")
    assert index >= 0
    assert plain_ring.ring_fd_registered
    plain_ring.nop(0xAAAAAAAA)
    assert plain_ring.submit_and_wait(1) == 1
    assert plain_ring.copy_cqe() == Cqe(0xAAAAAAAA, 0, 0)
    with pytest.raises(FileExistsError):
        plain_ring.register_ring_fd()
    plain_ring.unregister_ring_fd()
    assert not plain_ring.ring_fd_registered


def test_register_ring_fd_other_threads_use_the_fd(plain_ring: IoUring) -> None:
    _call_or_skip(plain_ring.register_ring_fd, "IORING_REGISTER_RING_FDS")
    results: list[object] = []

    def submit_from_another_thread() -> None:
        try:
            plain_ring.nop(0xBBBBBBBB)
            plain_ring.submit_and_wait(1)
            results.append(plain_ring.copy_cqe())
            plain_ring.unregister_ring_fd()  # not this thread's registration
        except OSError as error:
            results.append(error.errno)

    thread = threading.Thread(target=submit_from_another_thread)
    thread.start()
    thread.join(10)
    assert results == [Cqe(0xBBBBBBBB, 0, 0), errno.EPERM]
    plain_ring.unregister_ring_fd()


def test_register_ring_fd_released_by_close() -> None:
    """A thread has 16 registered-ring slots, and a registration holds a reference to its ring:
    close() must unregister it, or the 17th ring of a thread fails with EBUSY (and every
    closed ring stays alive until the thread exits)."""
    for i in range(40):
        ring = IoUring(4)
        try:
            index = _call_or_skip(ring.register_ring_fd, "IORING_REGISTER_RING_FDS")
            assert index >= 0, i
        finally:
            ring.close()


def test_register_ring_fd_released_by_context_exit() -> None:
    for _ in range(20):
        with IoUring(4) as ring:
            _call_or_skip(ring.register_ring_fd, "IORING_REGISTER_RING_FDS")
            ring.nop(0xABAB)
            ring.submit_and_wait(1)
            assert ring.copy_cqe() == Cqe(0xABAB, 0, 0)


def test_register_personality_round_trip(plain_ring: IoUring) -> None:
    personality = _call_or_skip(plain_ring.register_personality, "personality")
    assert personality > 0
    sqe = plain_ring.nop(0xCCCCCCCC)
    sqe.personality = personality
    assert sqe.fields()["personality"] == personality
    plain_ring.submit_and_wait(1)
    assert plain_ring.copy_cqe() == Cqe(0xCCCCCCCC, 0, 0)
    plain_ring.unregister_personality(personality)
    with pytest.raises(OSError, match="unregister_personality"):
        plain_ring.unregister_personality(personality)


def test_register_restrictions_limits_opcodes(tmp_path: Any) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"restricted")
    fd = os.open(path, os.O_RDONLY)
    try:
        with IoUring(4, flags=SetupFlags.R_DISABLED) as ring:
            _call_or_skip(
                lambda: ring.register_restrictions(
                    sqe_ops=[Op.NOP], sqe_flags_allowed=SqeFlags.IO_LINK
                ),
                "restrictions",
            )
            ring.enable_rings()
            ring.nop(0x1)
            ring.read(0x2, fd, bytearray(4), 0)
            ring.submit_and_wait(2)
            cqes = {int(c["user_data"]): int(c["res"]) for c in ring.copy_cqes()}
            assert cqes == {0x1: 0, 0x2: -errno.EACCES}
    finally:
        os.close(fd)


def test_register_restrictions_rejects_bad_arguments(plain_ring: IoUring) -> None:
    with pytest.raises(ValueError, match="sqe_ops"):
        plain_ring.register_restrictions(sqe_ops=[300])
    with pytest.raises(ValueError, match="sqe_flags"):
        plain_ring.register_restrictions(sqe_flags_allowed=0x80)
    with pytest.raises(TypeError, match="register_ops"):
        plain_ring.register_restrictions(register_ops=5)  # type: ignore[arg-type]


def test_register_iowq_max_workers_returns_previous_limits(plain_ring: IoUring) -> None:
    first = _call_or_skip(lambda: plain_ring.register_iowq_max_workers(3, 5), "max workers")
    assert len(first) == 2
    assert plain_ring.register_iowq_max_workers(0, 0) == (3, 5)


def test_register_iowq_aff_round_trip(plain_ring: IoUring) -> None:
    cpu = sorted(os.sched_getaffinity(0))[0]
    _call_or_skip(lambda: plain_ring.register_iowq_aff([cpu]), "io-wq affinity")
    plain_ring.unregister_iowq_aff()
    with pytest.raises(OverflowError, match="cpus"):
        plain_ring.register_iowq_aff([-1])


def test_register_sync_cancel_cancels_a_pending_read(plain_ring: IoUring) -> None:
    read_end, write_end = os.pipe()
    try:
        target = bytearray(8)
        plain_ring.read(0x77, read_end, target, -1)
        plain_ring.submit()
        assert (
            _call_or_skip(lambda: plain_ring.register_sync_cancel(user_data=0x77), "sync cancel")
            == 0
        )
        assert plain_ring.copy_cqe(timeout=5) == Cqe(0x77, -errno.ECANCELED, 0)
        assert plain_ring.pinned == 0
        with pytest.raises(FileNotFoundError):
            plain_ring.register_sync_cancel(user_data=0x77)
        with pytest.raises(ValueError, match="user_data, fd, op or any"):
            plain_ring.register_sync_cancel()
    finally:
        os.close(read_end)
        os.close(write_end)


def test_register_clock_selects_boottime(plain_ring: IoUring) -> None:
    _call_or_skip(lambda: plain_ring.register_clock(time.CLOCK_BOOTTIME), "clock")
    read_end, write_end = os.pipe()
    try:
        plain_ring.read(0x5, read_end, bytearray(1), -1)
        with pytest.raises(TimeoutError):
            plain_ring.submit_and_wait(1, timeout=0.05)
        os.write(write_end, b"x")
        assert plain_ring.copy_cqe(timeout=5) == Cqe(0x5, 1, 0)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_register_file_alloc_range(plain_ring: IoUring) -> None:
    plain_ring.register_files_sparse(8)
    _call_or_skip(lambda: plain_ring.register_file_alloc_range(4, 4), "file alloc range")
    plain_ring.unregister_files()


def test_register_buffers_sparse_update_and_fixed_read(plain_ring: IoUring, tmp_path: Any) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        _call_or_skip(lambda: plain_ring.register_buffers_sparse(4), "sparse buffers")
        target = bytearray(16)
        with pytest.raises(ValueError, match="registered buffer 2"):
            plain_ring.read_fixed(0x1, fd, memoryview(target)[:4], 0, 2)
        assert plain_ring.register_buffers_update(2, [target]) == 1
        plain_ring.read_fixed(0x1, fd, memoryview(target)[:4], 0, 2)
        plain_ring.submit_and_wait(1)
        assert plain_ring.copy_cqe() == Cqe(0x1, 4, 0)
        assert bytes(target[:4]) == b"0123"
        with pytest.raises(BufferError):
            target.extend(b"x")  # exported while registered
        with pytest.raises(ValueError, match="offset"):
            plain_ring.register_buffers_update(4, [bytearray(1)])
        plain_ring.unregister_buffers()
        target.extend(b"x")
    finally:
        os.close(fd)


def test_clone_buffers_shares_memory_between_rings(plain_ring: IoUring, tmp_path: Any) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"abcdefgh")
    fd = os.open(path, os.O_RDONLY)
    try:
        shared = bytearray(8)
        plain_ring.register_buffers([shared])
        with IoUring(4) as other:
            _call_or_skip(lambda: other.clone_buffers(plain_ring), "clone buffers")
            plain_ring.unregister_buffers()
            with pytest.raises(BufferError):
                shared.extend(b"x")  # the clone still holds it
            other.read_fixed(0x2, fd, shared, 0, 0)
            other.submit_and_wait(1)
            assert other.copy_cqe() == Cqe(0x2, 8, 0)
        assert bytes(shared) == b"abcdefgh"
        shared.extend(b"x")
    finally:
        os.close(fd)


def test_clone_buffers_from_a_ring_without_buffers(plain_ring: IoUring) -> None:
    with IoUring(4) as other, pytest.raises(ValueError, match="no registered buffers"):
        other.clone_buffers(plain_ring)


def test_register_napi_round_trip(plain_ring: IoUring) -> None:
    _call_or_skip(lambda: plain_ring.register_napi(50), "NAPI")
    plain_ring.unregister_napi()


def test_register_eventfd_async(plain_ring: IoUring) -> None:
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        _call_or_skip(lambda: plain_ring.register_eventfd_async(efd), "eventfd async")
        plain_ring.unregister_eventfd()
    finally:
        os.close(efd)


# --------------------------------------------------------------------------------------------
# IORING_REGISTER_RESIZE_RINGS (Linux 6.13+, DEFER_TASKRUN rings only)

_DEFER = SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN
_RESIZE_LAYOUTS = {
    "sq_array": _DEFER,
    "no_sqarray": _DEFER | SetupFlags.NO_SQARRAY,
    "cqe32": _DEFER | SetupFlags.CQE32,
    "sqe128_cqe32_no_sqarray": _DEFER
    | SetupFlags.SQE128
    | SetupFlags.CQE32
    | SetupFlags.NO_SQARRAY,
}


def _resize_or_skip(ring: IoUring, **sizes: int) -> None:
    _call_or_skip(lambda: ring.resize(**sizes), "IORING_REGISTER_RESIZE_RINGS (Linux 6.13+)")


@pytest.fixture(params=list(_RESIZE_LAYOUTS.values()), ids=list(_RESIZE_LAYOUTS))
def make_resizable_ring(
    request: pytest.FixtureRequest, make_default_ring: Callable[..., IoUring]
) -> Callable[[int], IoUring]:
    """``make_resizable_ring(entries)``: a DEFER_TASKRUN ring of one of the ring layouts."""
    require_kernel("6.13", "IORING_REGISTER_RESIZE_RINGS")  # before operations are in flight
    return lambda entries: make_default_ring(entries, flags=request.param)


def _reap_all(ring: IoUring, count: int) -> dict[int, list[Cqe]]:
    got: dict[int, list[Cqe]] = {}
    deadline = time.monotonic() + 5
    while sum(map(len, got.values())) < count:
        assert time.monotonic() < deadline, f"only {got} of {count} completions arrived"
        ring.submit_and_wait(1, timeout=1)
        for cqe in ring.copy_cqes():
            user_data, res, flags = (int(cqe["user_data"]), int(cqe["res"]), int(cqe["flags"]))
            got.setdefault(user_data, []).append(Cqe(user_data, res, flags))
    return got


def test_resize_with_operations_in_flight(
    make_resizable_ring: Callable[[int], IoUring],
    make_pipe: Callable[[], tuple[int, int]],
) -> None:
    ring = make_resizable_ring(4)
    (r1, w1), (r2, w2) = make_pipe(), make_pipe()
    buf1, buf2 = bytearray(16), bytearray(16)
    ring.read(0x1001, r1, buf1, -1)
    ring.read(0x1002, r2, buf2, -1)
    ring.timeout(0x2001, 0.05)
    ring.timeout(0x2002, 0.1)
    assert ring.submit() == 4
    for user_data in (0x3001, 0x3002, 0x3003):
        ring.nop(user_data)
    ring.submit_and_wait(3)
    assert ring.cq_ready() == 3  # completed, not reaped: the kernel must move them
    before = (ring.sq_head, ring.sq_tail, ring.cq_head, ring.cq_tail)
    in_flight, pinned = ring.in_flight, ring.pinned
    assert (in_flight, ring.sq_entries, ring.cq_entries) == (7, 4, 8)

    _resize_or_skip(ring, sq_entries=16, cq_entries=64)
    assert (ring.sq_entries, ring.cq_entries) == (16, 64)
    assert (ring.sq_head, ring.sq_tail, ring.cq_head, ring.cq_tail) == before
    assert (ring.in_flight, ring.pinned, ring.cq_ready()) == (in_flight, pinned, 3)
    # More SQEs than the old SQ held fit now.
    for i in range(12):
        ring.nop(0x4000 + i)
    os.write(w1, b"hello")
    os.write(w2, b"resized!")
    got = _reap_all(ring, 19)
    assert got == {
        0x1001: [Cqe(0x1001, 5, 0)],
        0x1002: [Cqe(0x1002, 8, 0)],
        0x2001: [Cqe(0x2001, -errno.ETIME, 0)],
        0x2002: [Cqe(0x2002, -errno.ETIME, 0)],
        **{u: [Cqe(u, 0, 0)] for u in (0x3001, 0x3002, 0x3003)},
        **{0x4000 + i: [Cqe(0x4000 + i, 0, 0)] for i in range(12)},
    }
    assert bytes(buf1[:5]) == b"hello" and bytes(buf2[:8]) == b"resized!"
    assert (ring.in_flight, ring.pinned) == (0, 0)
    buf1.extend(b"!")  # released: no buffer export is left

    # Smaller again (cq_entries defaults to twice sq_entries), then wrap around it.
    ring.resize(sq_entries=2)
    assert (ring.sq_entries, ring.cq_entries) == (2, 4)
    for round_ in range(20):
        ring.nop(round_ * 2)
        ring.nop(round_ * 2 + 1)
        assert sorted(_reap_all(ring, 2)) == [round_ * 2, round_ * 2 + 1]


def test_resize_handles_and_prepared_sqes(make_resizable_ring: Callable[[int], IoUring]) -> None:
    ring = make_resizable_ring(4)
    flushed = ring.nop(0x51)
    ring.submit_and_wait(1)
    pending = ring.nop(0x52)
    with pytest.raises(ValueError, match="submit"):
        ring.resize(sq_entries=8)
    assert ring.sq_entries == 4 and pending.valid and pending.fields()["user_data"] == 0x52
    ring.submit_and_wait(1)
    _resize_or_skip(ring, sq_entries=8)
    assert ring.sq_entries == 8
    for handle in (flushed, pending):
        assert not handle.valid
        with pytest.raises(StaleSqeError):
            handle.fields()
    fresh = ring.get_sqe()
    assert fresh.fields()["opcode"] == Op.NOP
    fresh.prep_nop(0x53)
    got = _reap_all(ring, 3)
    assert got == {u: [Cqe(u, 0, 0)] for u in (0x51, 0x52, 0x53)}


def test_resize_overflow_keeps_the_ring(make_resizable_ring: Callable[[int], IoUring]) -> None:
    ring = make_resizable_ring(8)
    _resize_or_skip(ring, sq_entries=8)  # the same sizes: tells whether the kernel resizes
    for i in range(8):
        ring.nop(0x600 + i)
    ring.submit_and_wait(8)
    with pytest.raises(OSError, match="cannot hold") as raised:
        ring.resize(sq_entries=2, cq_entries=4)  # 8 unreaped completions, a 4-entry CQ
    assert raised.value.errno == errno.EOVERFLOW
    assert (ring.sq_entries, ring.cq_entries, ring.cq_ready()) == (8, 16, 8)
    assert sorted(_reap_all(ring, 8)) == list(range(0x600, 0x608))


def test_resize_argument_errors(make_default_ring: Callable[..., IoUring]) -> None:
    ring = make_default_ring(4, flags=_DEFER)
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"sq_entries": 3}, ValueError, "sq_entries must be a power of two"),
        ({"sq_entries": 0}, ValueError, "sq_entries"),
        ({"sq_entries": 65536}, ValueError, "sq_entries"),
        ({"sq_entries": -1}, OverflowError, "sq_entries"),
        ({"sq_entries": "8"}, TypeError, "sq_entries"),
        ({"sq_entries": 8, "cq_entries": 4}, ValueError, "cq_entries"),
        ({"cq_entries": 2**17}, ValueError, "cq_entries"),
    ]
    for sizes, exc_type, message in cases:
        with pytest.raises(exc_type, match=message):
            ring.resize(**sizes)
        assert (ring.sq_entries, ring.cq_entries) == (4, 8)
    with pytest.raises(TypeError):
        ring.resize(8)  # type: ignore[call-arg]
    ring.close()
    with pytest.raises(ValueError, match="closed"):
        ring.resize(sq_entries=8)


def test_resize_needs_defer_taskrun(make_default_ring: Callable[..., IoUring]) -> None:
    probe = make_default_ring(4, flags=_DEFER)
    _resize_or_skip(probe, sq_entries=8)
    ring = make_default_ring(4)
    with pytest.raises(OSError, match="DEFER_TASKRUN") as raised:
        ring.resize(sq_entries=8)
    assert raised.value.errno == errno.EINVAL
    assert ring.sq_entries == 4


def test_registered_buffers_replaced_while_in_flight_stay_alive() -> None:
    """An operation flushed under one table can resolve buf_index against a later one (an
    SQPOLL thread takes SQEs when it runs): a table replaced or unregistered while operations
    are in flight is held by each of them, and released when the last one completes."""
    r, w = os.pipe()
    try:
        with IoUring(8) as ring:
            first, second = bytearray(16), bytearray(16)
            ring.register_buffers([first])
            ring.read(0x51, r, bytearray(4), -1)  # in flight: waits for the pipe
            ring.submit()
            ring.unregister_buffers()
            assert ring.pinned == 2  # its buffer, and the table retired while it was in flight
            ring.register_buffers([second])
            ring.unregister_buffers()  # the second table too: still that read in flight
            assert ring.pinned == 3
            with pytest.raises(BufferError):
                second.extend(b"x")  # still exported: the kernel may write into it
            os.write(w, b"data")
            assert ring.copy_cqe(timeout=10) == Cqe(0x51, 4, 0)
            assert ring.pinned == 0
            second.extend(b"x")  # released with the last operation in flight
            first.extend(b"x")
    finally:
        os.close(r)
        os.close(w)
