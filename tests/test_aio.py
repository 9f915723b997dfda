"""iouring.aio: awaitable operations, batch awaits, cancellation, timeouts, shared rings, close.

Every test drives a real kernel through ``asyncio.run``: real files, pipes, another process
writing to a pipe, sockets on 127.0.0.1. Rings from the conftest fixtures are handed to an
``AsyncRing`` (which leaves them open) and must be idle and unpinned when the test ends, so
each such test ends with ``await aring.aclose()``.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import inspect
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from conftest import RingConfig, TmpFile

import iouring
from iouring import CQE_DTYPE, Cqe, FsyncFlags, IoUring, Op, SqeFlags
from iouring.aio import AsyncRing, MultishotOperation, raise_for_errors

T = TypeVar("T")
MakeRing = Callable[..., IoUring]
MakeFile = Callable[..., TmpFile]
DelayedWrite = Callable[[int, bytes, float], "subprocess.Popen[bytes]"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on a fresh event loop (what every test here does): the default
    asyncio loop, or with IOURING_AIO_LOOP=1 an iouring.aio.IoUringEventLoop (whose
    ``AsyncRing()`` uses the loop's ring; tests/test_aio_loop.py runs this file that way)."""
    if os.environ.get("IOURING_AIO_LOOP") == "1":
        return iouring.aio.run(coro)
    return asyncio.run(coro)


def needs(ring: IoUring, *names: str) -> None:
    """Skips the test when the ring lacks one of the named methods (not built yet)."""
    missing = [name for name in names if not hasattr(ring, name)]
    if missing:
        pytest.skip(f"IoUring has no {', '.join(missing)} yet")


def needs_op(ring: IoUring, op: Op) -> None:
    """Skips the test when the running kernel lacks the opcode."""
    if op not in ring.probe():
        pytest.skip(f"kernel lacks {op.name}")


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Lets the loop run until ``predicate()`` holds (fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


# --------------------------------------------------------------------------------------------
# Single operations


def test_aio_write_read_roundtrip(make_ring: MakeRing, tmp_file: MakeFile) -> None:
    f = tmp_file()

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(8))
        assert await aring.write(f, b"hello io_uring", 0) == 14
        await aring.fsync(f)
        await aring.fsync(f, FsyncFlags.DATASYNC)
        buf = bytearray(5)
        assert await aring.read(f, buf, 6) == 5
        assert buf == b"io_ur"
        assert await aring.read_bytes(f, 100, 0) == b"hello io_uring"
        assert await aring.read_bytes(f, 10, 100) == b""  # EOF
        a, b = bytearray(3), bytearray(4)
        assert await aring.writev(f, [b"abc", b"defg"], 20) == 7
        assert await aring.readv(f, [a, b], 20) == 7
        assert (bytes(a), bytes(b)) == (b"abc", b"defg")
        assert await aring.nop() == 0
        await aring.aclose()

    run(main())
    assert f.contents() == b"hello io_uring" + bytes(6) + b"abcdefg"


def test_aio_open_close_and_errors(make_ring: MakeRing, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"contents")

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(8))
        fd = await aring.open(path)
        assert fd > 2
        assert await aring.read_bytes(fd, 100, 0) == b"contents"
        await aring.close_fd(fd)
        with pytest.raises(OSError, match="Bad file descriptor") as closed:
            os.fstat(fd)
        assert closed.value.errno == errno.EBADF

        with pytest.raises(FileNotFoundError) as missing:
            await aring.open(tmp_path / "missing")
        assert missing.value.errno == errno.ENOENT
        assert missing.value.filename == str(tmp_path / "missing")

        dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fd = await aring.openat(
                dir_fd, "new.txt", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            assert await aring.write(fd, b"xyz") == 3
            await aring.close_fd(fd)
        finally:
            os.close(dir_fd)

        with pytest.raises(OSError, match="Bad file descriptor") as bad:
            await aring.close_fd(fd)
        assert bad.value.errno == errno.EBADF
        with pytest.raises(OSError, match="Bad file descriptor") as bad_read:
            await aring.read(fd, bytearray(4), 0)
        assert bad_read.value.errno == errno.EBADF
        with pytest.raises(TypeError):
            await aring.read(0, b"read-only", 0)  # refused before anything is prepared
        with pytest.raises(ValueError, match="size"):
            await aring.read_bytes(0, -1)
        assert aring.in_flight == 0
        await aring.aclose()

    run(main())
    assert (tmp_path / "new.txt").read_bytes() == b"xyz"


def test_aio_splice_file_pipe_file(
    make_ring: MakeRing, tmp_file: MakeFile, pipe: tuple[int, int]
) -> None:
    src = tmp_file(b"0123456789" * 100)
    dst = tmp_file()
    r, w = pipe

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(8))
        assert await aring.splice(src, 10, w, -1, 500) == 500
        assert await aring.splice(r, -1, dst, 0, 500) == 500
        await aring.aclose()

    run(main())
    assert dst.contents() == src.contents()[10:510]


def test_aio_fixed_buffers(make_default_ring: MakeRing, tmp_file: MakeFile) -> None:
    f = tmp_file()
    ring = make_default_ring(8)
    arena = bytearray(8192)
    try:
        ring.register_buffers([arena])
    except OSError as exc:
        if exc.errno == errno.ENOMEM:
            pytest.skip("RLIMIT_MEMLOCK too low to register buffers")
        raise
    arena[:6] = b"fixed!"

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        with memoryview(arena) as view:
            assert await aring.write_fixed(f, view[:6], 0, 0) == 6
            assert await aring.read_fixed(f, view[4096:4102], 0, 0) == 6
        with pytest.raises(ValueError, match="registered buffer"):
            await aring.read_fixed(f, bytearray(4), 0, 0)  # not inside the registration
        await aring.aclose()

    run(main())
    ring.unregister_buffers()
    assert arena[4096:4102] == b"fixed!"


def test_aio_call_and_call_cqe(make_ring: MakeRing, tmp_file: MakeFile) -> None:
    f = tmp_file(b"abc")

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(8))
        ring = aring.ring
        assert await aring.call(ring.fsync, f) == 0
        assert await aring.call(ring.fsync, fd=f, flags=FsyncFlags.DATASYNC) == 0
        cqe = await aring.call_cqe(ring.close_fd, 1_000_000)  # no such fd: not raised
        assert isinstance(cqe, Cqe)
        assert (cqe.res, cqe.flags) == (-errno.EBADF, 0)
        with pytest.raises(OSError, match="Bad file descriptor") as exc:
            cqe.result()
        assert exc.value.errno == errno.EBADF

        def drained_read(user_data: int, fd: int, buf: bytearray) -> iouring.Sqe:
            # A function preparing an SQE with flags of its own.
            sqe = ring.read(user_data, fd, buf, 0)
            sqe.flags = SqeFlags.ASYNC
            return sqe

        buf = bytearray(3)
        assert await aring.call(drained_read, f.fd, buf) == 3
        assert buf == b"abc"
        await aring.aclose()

    run(main())


# --------------------------------------------------------------------------------------------
# Many tasks, one ring, one submit per loop iteration


class CountingRing(IoUring):
    """An IoUring that counts submit() calls (one io_uring_enter each)."""

    submits = 0

    def submit(self) -> int:
        self.submits += 1
        return super().submit()


def test_aio_concurrent_tasks_share_one_submit(tmp_file: MakeFile) -> None:
    data = bytes(range(256)) * 64
    f = tmp_file(data)

    async def main() -> None:
        ring = CountingRing(256)
        async with AsyncRing(ring=ring) as aring:
            buffers = [bytearray(64) for _ in range(200)]
            results = await asyncio.gather(*(aring.read(f, buffers[i], i * 64) for i in range(200)))
            assert results == [64] * 200
            for i, buf in enumerate(buffers):
                assert buf == data[i * 64 : (i + 1) * 64]
            # 200 reads prepared in one loop iteration: one flush, submitted with one enter.
            assert ring.submits <= 2, ring.submits
        assert ring.in_flight == 0 and ring.pinned == 0
        ring.close()

    run(main())


def test_aio_many_tasks_small_ring_sq_full(make_ring: MakeRing, tmp_file: MakeFile) -> None:
    data = os.urandom(4096 * 8)
    f = tmp_file(data)

    async def worker(aring: AsyncRing, k: int) -> bytes:
        out = []
        for i in range(20):
            offset = ((k * 20 + i) % 64) * 512
            out.append(await aring.read_bytes(f, 512, offset))
            await aring.nop()
        return b"".join(out)

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(4))  # 4 SQEs for 100 tasks: SQ full all the time
        results = await asyncio.gather(*(worker(aring, k) for k in range(100)))
        for k, got in enumerate(results):
            expected = b"".join(data[((k * 20 + i) % 64) * 512 :][:512] for i in range(20))
            assert got == expected
        assert aring.in_flight == 0
        await aring.aclose()

    run(main())


# --------------------------------------------------------------------------------------------
# Waking up: completions posted later (another process writes to a pipe)


def test_aio_wakes_on_completion_from_elsewhere(
    make_ring: MakeRing,
    ring_config: RingConfig,
    pipe: tuple[int, int],
    delayed_write: DelayedWrite,
) -> None:
    """Under every ring configuration the eventfd wakes the loop for a completion that is
    posted while the loop sleeps."""
    r, w = pipe

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(8))
        buf = bytearray(16)
        proc = delayed_write(w, b"from far away", 0.05)
        n = await asyncio.wait_for(aring.read(r, buf, -1), timeout=10)
        assert buf[:n] == b"from far away"
        proc.wait()
        # And the inline path once more on the same ring.
        assert await aring.nop() == 0
        await aring.aclose()

    run(main())


# --------------------------------------------------------------------------------------------
# Cancellation and timeouts


def _finish_or_cancelled(aring: AsyncRing, w: int) -> None:
    """Without ASYNC_CANCEL a cancelled pipe read stays in the kernel until data comes."""
    if not aring.can_cancel:
        os.write(w, b"x" * 64)


def test_aio_task_cancel_cancels_operation(make_ring: MakeRing, pipe: tuple[int, int]) -> None:
    r, w = pipe

    async def main() -> None:
        ring = make_ring(8)
        aring = AsyncRing(ring=ring)
        buf = bytearray(64)
        task = asyncio.create_task(aring.read(r, buf, -1))
        await wait_until(lambda: ring.in_flight == 1)
        assert ring.pinned >= 1  # the buffer is held by the ring while the kernel may write
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        _finish_or_cancelled(aring, w)
        # The kernel's final completion is reaped (and discarded): nothing left pinned.
        await wait_until(lambda: aring.in_flight == 0)
        assert ring.in_flight == 0 and ring.pinned == 0
        # The ring is still fine for other operations.
        os.write(w, b"after")
        if aring.can_cancel:
            assert await aring.read_bytes(r, 5) == b"after"
        await aring.aclose()

    run(main())


def test_aio_asyncio_timeout(make_ring: MakeRing, pipe: tuple[int, int]) -> None:
    r, w = pipe

    async def main() -> None:
        ring = make_ring(8)
        aring = AsyncRing(ring=ring)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await aring.read(r, bytearray(8), -1)
        assert time.monotonic() - start < 5
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(aring.read_bytes(r, 8), 0.02)
        _finish_or_cancelled(aring, w)
        await wait_until(lambda: aring.in_flight == 0)
        assert ring.pinned == 0
        await aring.aclose()

    run(main())


def test_aio_cancel_uses_async_cancel(make_default_ring: MakeRing, pipe: tuple[int, int]) -> None:
    """With ASYNC_CANCEL the cancelled read ends with -ECANCELED in the kernel, no data needed."""
    ring = make_default_ring(8)
    if not (hasattr(ring, "async_cancel") or hasattr(ring, "cancel")):
        pytest.skip("IoUring has no async_cancel operation yet")
    needs_op(ring, Op.ASYNC_CANCEL)
    r, _w = pipe

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        assert aring.can_cancel
        tasks = [asyncio.create_task(aring.read(r, bytearray(8), -1)) for _ in range(5)]
        await wait_until(lambda: ring.in_flight == 5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await wait_until(lambda: aring.in_flight == 0)
        assert ring.in_flight == 0 and ring.pinned == 0
        await aring.aclose()

    run(main())


# --------------------------------------------------------------------------------------------
# Batch awaits


def test_aio_read_batch(make_ring: MakeRing, tmp_file: MakeFile) -> None:
    data = os.urandom(64 * 1024)
    f = tmp_file(data)

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(8))
        n = 100
        offsets = np.random.default_rng(1).integers(0, 64 * 1024 - 512, n)
        buf = np.zeros(n * 512, dtype=np.uint8)
        cqes = await aring.read_batch(f.fd, buf, offsets, 512)
        assert cqes.dtype == CQE_DTYPE and len(cqes) == n
        assert (cqes["user_data"] == np.arange(n)).all()
        assert (cqes["res"] == 512).all()
        for i in range(n):
            o = int(offsets[i])
            assert bytes(buf[i * 512 : (i + 1) * 512]) == data[o : o + 512]
        raise_for_errors(cqes)

        # Lengths that vary; explicit buffer offsets; one bad fd among them.
        lengths = np.array([10, 20, 30, 40])
        fds = np.array([f.fd, f.fd, 1_000_000, f.fd])
        out = bytearray(200)
        cqes = await aring.read_batch(fds, out, 0, lengths, np.array([0, 50, 100, 150]))
        assert cqes["res"].tolist() == [10, 20, -errno.EBADF, 40]
        assert out[50:70] == data[:20] and out[150:190] == data[:40]
        with pytest.raises(OSError, match="Bad file descriptor") as exc:
            raise_for_errors(cqes, "read")
        assert exc.value.errno == errno.EBADF
        assert "read 2" in str(exc.value)
        await aring.aclose()

    run(main())


def test_aio_write_batch_then_fsync_and_close_batch(make_ring: MakeRing, tmp_path: Path) -> None:
    paths = [tmp_path / f"f{i}" for i in range(10)]
    fds = np.array(
        [os.open(p, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600) for p in paths], dtype=np.int32
    )
    payload = np.frombuffer(b"".join(bytes([65 + i]) * 100 for i in range(10)), dtype=np.uint8)

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(4))
        cqes = await aring.write_batch(fds, payload, 0, 100)
        assert (cqes["res"] == 100).all()
        cqes = await aring.fsync_batch(fds)
        assert (cqes["res"] == 0).all()
        cqes = await aring.close_batch(fds)
        assert (cqes["res"] == 0).all()
        await aring.aclose()

    run(main())
    for i, p in enumerate(paths):
        assert p.read_bytes() == bytes([65 + i]) * 100


def test_aio_batch_bigger_than_sq_and_cq(make_ring: MakeRing) -> None:
    async def main() -> None:
        ring = make_ring(4)
        aring = AsyncRing(ring=ring)
        cqes = await aring.nop_batch(5000)
        assert len(cqes) == 5000
        assert (cqes["user_data"] == np.arange(5000)).all()
        assert (cqes["res"] == 0).all()
        assert ring.cq_overflow == 0  # never more than cq_entries batch operations in flight
        # Several batches and singles at once.
        results = await asyncio.gather(
            aring.nop_batch(300), aring.nop_batch(7), aring.nop(), aring.nop_batch(1)
        )
        assert [len(r) for r in results[:2]] == [300, 7] and results[2] == 0
        assert len(results[3]) == 1
        assert len(await aring.nop_batch(0)) == 0
        await aring.aclose()

    run(main())


def test_aio_read_batch_packed_chunks(make_ring: MakeRing, tmp_file: MakeFile) -> None:
    """Without buf_offset the ranges are packed: still right when the batch is cut in chunks."""
    data = os.urandom(1000)
    f = tmp_file(data)

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(2))
        lengths = np.arange(1, 41)  # 40 reads of 1..40 bytes, packed one after another
        buf = bytearray(int(lengths.sum()))
        cqes = await aring.read_batch(f, buf, 0, lengths)
        assert (cqes["res"] == lengths).all()
        pos = 0
        for length in lengths.tolist():
            assert buf[pos : pos + length] == data[:length]
            pos += length
        await aring.aclose()

    run(main())


def test_aio_batch_argument_errors(make_ring: MakeRing, tmp_file: MakeFile) -> None:
    f = tmp_file(b"x" * 100)

    async def main() -> None:
        ring = make_ring(4)
        aring = AsyncRing(ring=ring)
        with pytest.raises(ValueError, match="outside buffer"):
            await aring.read_batch(f.fd, bytearray(10), np.zeros(3, np.int64), 8)  # 24 > 10
        with pytest.raises(ValueError, match=r"differs from the arrays. length"):
            await aring.batch(ring.nop_batch, 3, {"fd": np.zeros(2)})
        with pytest.raises(ValueError, match="count is needed"):
            await aring.read_batch(f.fd, bytearray(10), 0, 8)  # no array: count unknown
        # An error in a later chunk: earlier chunks complete before the error surfaces.
        buf = bytearray(100)
        lengths = np.full(10, 10)
        lengths[9] = 11  # the last range ends at 101 > 100
        with pytest.raises(ValueError, match="outside buffer"):
            await aring.read_batch(f, buf, 0, lengths, np.arange(10) * 10)
        assert aring.in_flight == 0 and ring.in_flight == 0
        assert ring.pinned == 0
        await aring.aclose()

    run(main())


def test_aio_batch_cancel(
    make_default_ring: MakeRing, make_pipe: Callable[[], tuple[int, int]]
) -> None:
    ring = make_default_ring(8)
    pipes = [make_pipe() for _ in range(4)]
    readers = np.array([r for r, _ in pipes])

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        buf = bytearray(4 * 8)
        task = asyncio.create_task(aring.read_batch(readers, buf, -1, 8))
        await wait_until(lambda: ring.in_flight == 4)
        os.write(pipes[1][1], b"12345678")  # one of them completes
        await wait_until(lambda: aring.in_flight == 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if not aring.can_cancel:
            for _, w in pipes:
                os.write(w, b"x" * 8)
        await wait_until(lambda: aring.in_flight == 0)
        assert ring.in_flight == 0 and ring.pinned == 0
        assert buf[8:16] == b"12345678"
        await aring.aclose()

    run(main())


# --------------------------------------------------------------------------------------------
# Lifetime


def test_aio_needs_running_loop() -> None:
    with pytest.raises(RuntimeError):
        AsyncRing(8)


def test_aio_refuses_busy_or_closed_ring(make_default_ring: MakeRing) -> None:
    ring = make_default_ring(8)

    async def main() -> None:
        ring.nop(1)
        with pytest.raises(ValueError, match="idle"):
            AsyncRing(ring=ring)
        ring.submit_and_wait(1)
        ring.copy_cqes()
        with pytest.raises(TypeError):
            AsyncRing(ring=ring, flags=0)
        closed = IoUring(2)
        closed.close()
        with pytest.raises(ValueError, match="closed"):
            AsyncRing(ring=closed)

    run(main())


def test_aio_start_awaitable_protocol(make_default_ring: MakeRing, pipe: tuple[int, int]) -> None:
    """_start() (the C fast path of every single operation) returns an awaitable that gives
    res, raises the OSError of a negative res, cannot be awaited twice, passes other thrown
    exceptions through without cancelling, and abandons the operation on CancelledError."""
    r, w = pipe
    ring = make_default_ring(8)

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        wait = aring._start(aring.ring.nop)
        assert inspect.isawaitable(wait)
        assert await wait == 0
        with pytest.raises(RuntimeError, match="already awaited"):
            await wait
        # A negative res is its OSError subclass, with the errno and message.
        with pytest.raises(IsADirectoryError) as info:
            await aring._start(aring.ring.read, os.open("/", os.O_RDONLY), bytearray(8), 0)
        assert info.value.errno == errno.EISDIR and info.value.strerror == os.strerror(errno.EISDIR)
        # Keyword arguments reach the ring method.
        assert await aring._start(aring.ring.write, fd=w, buffer=b"kw", offset=-1) == 2
        assert os.read(r, 2) == b"kw"
        # An exception other than CancelledError thrown at the wait leaves the operation
        # running; CancelledError cancels it in the kernel.
        buf = bytearray(8)
        pending = aring._start(aring.ring.read, r, buf, -1)
        assert pending.send(None) is not None  # the future it waits for
        with pytest.raises(KeyError, match="thrown"):
            pending.throw(KeyError("thrown"))
        assert aring.in_flight == 1
        os.write(w, b"abc")
        await wait_until(lambda: aring.in_flight == 0)
        assert buf[:3] == b"abc"
        pending = aring._start(aring.ring.read, r, buf, -1)
        pending.send(None)
        with pytest.raises(asyncio.CancelledError):
            pending.throw(asyncio.CancelledError())
        _finish_or_cancelled(aring, w)
        await wait_until(lambda: aring.in_flight == 0)
        # close() on a wait that never started is fine; its completion is still reaped.
        aring._start(aring.ring.nop).close()
        await wait_until(lambda: aring.in_flight == 0)
        # _begin gives (user_data, future) with the raw res.
        user_data, future = aring._begin(aring.ring.read, os.open("/", os.O_RDONLY), buf, 0)
        assert user_data >> 55 == aring._slot and await future == -errno.EISDIR
        await aring.aclose()

    run(main())


def test_aio_start_bad_input(make_default_ring: MakeRing) -> None:
    ring = make_default_ring(8)

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        with pytest.raises(TypeError, match="needs the method"):
            aring._start()  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="needs the method"):
            aring._begin()  # type: ignore[call-arg]
        # The ring method's own errors come out, and nothing is left registered or prepared.
        with pytest.raises(TypeError, match="buffer"):
            aring._start(aring.ring.read, 0, 12345, 0)
        with pytest.raises(TypeError):
            aring._start(aring.ring.nop, 1, 2, 3)
        with pytest.raises(TypeError):
            aring._start(12345)
        assert aring.in_flight == 0 and ring.sq_ready() == 0
        # More arguments than the fast path's stack holds still work.
        with pytest.raises(TypeError):
            aring._start(aring.ring.nop, *range(20), a=1, b=2)
        with pytest.raises(TypeError, match="throw expected"):
            aring._start(aring.ring.nop).throw()  # type: ignore[call-arg]
        await aring.aclose()
        # An adapter whose __init__ never ran refuses operations.
        bare = AsyncRing.__new__(AsyncRing)
        with pytest.raises(ValueError, match="__init__"):
            bare._start(ring.nop)
        assert bare.closed

    run(main())


def test_aio_start_full_sq_with_keywords(make_ring: MakeRing, pipe: tuple[int, int]) -> None:
    """A full SQ on the fast path submits and retries, keyword arguments included."""
    r, w = pipe
    ring = make_ring(2)

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        writes = [
            aring._start(aring.ring.write, fd=w, buffer=b"%d" % i, offset=-1) for i in range(9)
        ]
        assert await asyncio.gather(*writes) == [1] * 9
        # Each write landed once; the kernel may run them in any order (on 6.1 they landed as
        # 103254768).
        assert sorted(os.read(r, 64)) == sorted(b"012345678")
        await aring.aclose()

    run(main())


def test_aio_closed_adapter_refuses_operations(make_default_ring: MakeRing) -> None:
    ring = make_default_ring(8)

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        aring.close()
        aring.close()  # twice is fine
        assert aring.closed and not ring.closed  # a ring passed in stays open
        with pytest.raises(ValueError, match="closed"):
            await aring.nop()
        with pytest.raises(ValueError, match="closed"):
            await aring.nop_batch(3)
        assert "closed" in repr(aring)
        # The eventfd was unregistered: the ring takes another adapter.
        again = AsyncRing(ring=ring)
        assert await again.nop() == 0
        await again.aclose()

    run(main())


def test_aio_aclose_cancels_and_waits(
    make_default_ring: MakeRing, make_pipe: Callable[[], tuple[int, int]]
) -> None:
    """aclose() cancels what is in flight in the kernel and waits for the final completions:
    the ring passed in is left idle and unpinned, the waiting tasks get ECANCELED."""
    ring = make_default_ring(8)
    needs(ring, "cancel")
    pipes = [make_pipe() for _ in range(3)]

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        singles = [asyncio.create_task(aring.read(r, bytearray(8), -1)) for r, _ in pipes]
        readers = np.array([r for r, _ in pipes])
        batch_task = asyncio.create_task(aring.read_batch(readers, bytearray(24), -1, 8))
        await wait_until(lambda: ring.in_flight == 6)
        await aring.aclose()
        assert aring.closed and not ring.closed
        assert ring.in_flight == 0 and ring.pinned == 0
        for task in singles:
            with pytest.raises(OSError, match="cancel") as exc:
                await task
            assert exc.value.errno == errno.ECANCELED
        cqes = await batch_task
        assert (cqes["res"] == -errno.ECANCELED).all()

    run(main())


def test_aio_other_loop_refused(make_default_ring: MakeRing) -> None:
    ring = make_default_ring(8)

    async def create() -> AsyncRing:
        return AsyncRing(ring=ring)

    async def use(aring: AsyncRing) -> None:
        with pytest.raises(RuntimeError, match="another event loop"):
            await aring.nop()
        with pytest.raises(RuntimeError, match="another event loop"):
            aring.multishot(ring.nop)

    first = asyncio.new_event_loop()
    try:
        aring = first.run_until_complete(create())
        run(use(aring))
        aring.close()
    finally:
        first.close()


def test_aio_close_fails_pending_and_closes_owned_ring(pipe: tuple[int, int]) -> None:
    r, _w = pipe

    async def main() -> None:
        aring = AsyncRing(8)
        ring = aring.ring
        task = asyncio.create_task(aring.read(r, bytearray(8), -1))
        await wait_until(lambda: ring.in_flight == 1)
        aring.close()
        with pytest.raises(OSError, match="closed") as exc:
            await task
        assert exc.value.errno == errno.ECANCELED
        # The ring cancelled the read in the kernel before releasing its buffer.
        assert ring.closed

    run(main())


def test_aio_asyncio_run_closes_the_ring(pipe: tuple[int, int]) -> None:
    r, _w = pipe

    async def main() -> AsyncRing:
        aring = AsyncRing(8)
        assert await aring.nop() == 0
        # A read that never completes, left behind on purpose.
        asyncio.get_running_loop().create_task(aring.read(r, bytearray(8), -1))
        await asyncio.sleep(0.01)
        return aring

    aring = run(main())
    assert aring.closed
    assert aring.ring.closed


def test_aio_dropped_after_loop_closed(pipe: tuple[int, int]) -> None:
    """An adapter left open on a loop closed without asyncio.run is collected quietly."""
    loop = asyncio.new_event_loop()

    async def main() -> AsyncRing:
        aring = AsyncRing(8)
        assert await aring.nop() == 0
        return aring

    aring = loop.run_until_complete(main())
    loop.close()
    ring = aring.ring
    del aring
    gc.collect()
    ring.close()


def test_aio_multishot(make_default_ring: MakeRing) -> None:
    ring = make_default_ring(8)
    names = [n for n in ("poll_multishot", "poll_add_multishot") if hasattr(ring, n)]
    if not names:
        pytest.skip("IoUring has no multishot poll operation yet")
    method = getattr(ring, names[0])
    left, right = socket.socketpair()

    async def main() -> None:
        aring = AsyncRing(ring=ring)
        async with aring.multishot(method, left.fileno(), 0x001) as polls:  # POLLIN
            assert isinstance(polls, MultishotOperation)
            right.send(b"x")
            first = await anext(polls)
            assert first.res & 0x001 and first.more
            left.recv(1)
            right.send(b"y")
            second = await anext(polls)
            assert second.res & 0x001
        assert polls.finished
        assert aring.in_flight == 0
        await aring.aclose()

    try:
        run(main())
    finally:
        left.close()
        right.close()


def test_aio_statx_and_timeout(make_ring: MakeRing, tmp_path: Path) -> None:
    path = tmp_path / "six"
    path.write_bytes(b"foobar")

    async def main() -> None:
        ring = make_ring(8)
        needs(ring, "statx", "timeout")
        needs_op(ring, Op.STATX)
        aring = AsyncRing(ring=ring)
        st = await aring.statx(path)
        assert st.st_size == 6 and st.st_mode == os.stat(path).st_mode
        with pytest.raises(FileNotFoundError) as exc:
            await aring.statx(tmp_path / "missing")
        assert exc.value.filename == str(tmp_path / "missing")

        start = time.monotonic()
        assert await aring.timeout(0.02) is True
        await aring.sleep(0.01)
        assert time.monotonic() - start >= 0.029
        # count=1: completes (res 0, not expired) once another completion is posted.
        waiting = asyncio.create_task(aring.timeout(10, count=1))
        await wait_until(lambda: ring.in_flight == 1)
        await aring.nop()
        assert await asyncio.wait_for(waiting, 5) is False
        # Cancelling a sleeping task removes its timeout from the kernel.
        sleeper = asyncio.create_task(aring.sleep(30))
        await wait_until(lambda: ring.in_flight == 1)
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        await wait_until(lambda: aring.in_flight == 0)
        await aring.aclose()

    run(main())


def test_aio_openat_batch(make_ring: MakeRing, tmp_path: Path) -> None:
    paths = [tmp_path / f"file{i}" for i in range(12)]
    for i, p in enumerate(paths):
        p.write_bytes(bytes([i]) * (i + 1))
    paths.insert(5, tmp_path / "missing")

    async def main() -> None:
        ring = make_ring(4)
        needs(ring, "openat_batch")
        aring = AsyncRing(ring=ring)
        cqes = await aring.openat_batch(paths)
        res = cqes["res"]
        assert res[5] == -errno.ENOENT
        fds = np.delete(res, 5)
        assert (fds > 2).all()
        sizes = np.arange(1, 13)
        buf = np.zeros(int(sizes.sum()), np.uint8)
        reads = await aring.read_batch(fds, buf, 0, sizes)
        assert (reads["res"] == sizes).all()
        assert buf.tolist() == [i for i in range(12) for _ in range(i + 1)]
        closes = await aring.close_batch(fds)
        assert (closes["res"] == 0).all()
        assert len(await aring.openat_batch([])) == 0
        await aring.aclose()

    run(main())


# --------------------------------------------------------------------------------------------
# Networking


@pytest.mark.parametrize(
    ("buffers", "buffer_size"), [(256, 4096), (4, 64)], ids=["buffers_plenty", "buffers_scarce"]
)
def test_aio_echo_many_connections(buffers: int, buffer_size: int) -> None:
    """An io_uring echo server (examples/echo_server.py) serving 50 concurrent ordinary asyncio
    clients; with 4 buffers of 64 bytes the multishot recvs keep running out (-ENOBUFS)."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
    try:
        import echo_server
    except ImportError as exc:
        pytest.skip(f"examples/echo_server.py not importable: {exc}")
    finally:
        sys.path.pop(0)
    missing = echo_server.missing_operations()
    if missing:
        pytest.skip(f"IoUring lacks {', '.join(missing)} (needed by the echo server)")

    async def client(port: int, k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(20):
            message = f"client {k} message {i}\n".encode() * (1 + i % 3)
            writer.write(message)
            await writer.drain()
            assert await reader.readexactly(len(message)) == message
        writer.close()
        await writer.wait_closed()

    async def main() -> None:
        server = await echo_server.EchoServer.start(
            "127.0.0.1", 0, buffers=buffers, buffer_size=buffer_size
        )
        try:
            await asyncio.wait_for(asyncio.gather(*(client(server.port, k) for k in range(50))), 30)
        finally:
            await server.aclose()
        assert server.connections_served == 50
        if buffers == 4:
            assert server.buffer_shortages > 0  # 50 clients at once, 4 buffers
        assert server.bytes_echoed == sum(
            len(f"client {k} message {i}\n") * (1 + i % 3) for k in range(50) for i in range(20)
        )

    run(main())


@pytest.fixture
def listener() -> Any:
    """A TCP socket listening on 127.0.0.1."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_aio_tcp_socket_connect_accept_send_recv(
    make_ring: MakeRing, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]

    async def main() -> None:
        ring = make_ring(8)
        needs(ring, "socket", "connect", "accept", "send", "recv", "shutdown")
        needs_op(ring, Op.SOCKET)
        aring = AsyncRing(ring=ring)
        client = await aring.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        accepted = asyncio.create_task(aring.accept(listener))
        await aring.connect(client, ("127.0.0.1", port))
        conn, address = await accepted
        assert address[0] == "127.0.0.1"
        try:
            assert await aring.send(client, b"ping") == 4
            assert await aring.recv_bytes(conn, 100) == b"ping"
            buf = bytearray(4)
            await aring.sendall(conn, b"pong" * 10000)
            total = 0
            while total < 40000:
                total += await aring.recv(client, buf)
            await aring.shutdown(client, socket.SHUT_WR)
            assert await aring.recv_bytes(conn, 10) == b""  # the peer's FIN
            refused = await aring.socket()
            try:
                with pytest.raises(ConnectionRefusedError):
                    await aring.connect(refused, ("127.0.0.1", 1))
            finally:
                os.close(refused)
        finally:
            os.close(conn)
            os.close(client)
        await aring.aclose()

    run(main())


def test_aio_accept_cancelled(make_ring: MakeRing, listener: socket.socket) -> None:
    async def main() -> None:
        ring = make_ring(8)
        needs(ring, "accept", "cancel")
        aring = AsyncRing(ring=ring)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(aring.accept(listener), 0.02)
        await wait_until(lambda: aring.in_flight == 0)
        assert ring.pinned == 0
        await aring.aclose()

    run(main())


def test_aio_udp_sendmsg_recvmsg_sendto(make_ring: MakeRing) -> None:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))

    async def main() -> None:
        ring = make_ring(8)
        needs(ring, "sendmsg", "recvmsg", "sendto")
        aring = AsyncRing(ring=ring)
        sent = iouring.Msghdr([b"hello ", b"world"], name=b.getsockname())
        assert await aring.sendmsg(a, sent) == 11
        buffer = bytearray(64)
        received = iouring.Msghdr([buffer], name=True)
        assert await aring.recvmsg(b, received) == 11
        assert buffer[:11] == b"hello world"
        assert received.name is not None
        assert received.name.address == a.getsockname()
        assert await aring.sendto(a, b"dgram", b.getsockname()) == 5
        assert await aring.recv_bytes(b, 64) == b"dgram"
        await aring.aclose()

    try:
        run(main())
    finally:
        a.close()
        b.close()


def test_aio_multishot_accept_and_recv(make_ring: MakeRing, listener: socket.socket) -> None:
    port = listener.getsockname()[1]

    async def main() -> None:
        ring = make_ring(8)
        needs(ring, "multishot_accept", "recv_multishot", "cancel")
        needs_op(ring, Op.ACCEPT)
        aring = AsyncRing(ring=ring)
        try:
            buffers = iouring.BufferRing(ring, 7, 8, 128)
        except OSError as exc:
            pytest.skip(f"buffer rings refused: {exc}")
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        conns = []
        async with aring.multishot_accept(listener) as accepts:
            async for cqe in accepts:
                conns.append(cqe.result())
                assert cqe.more
                if len(conns) == 3:
                    break
        assert accepts.finished
        try:
            async with aring.recv_multishot(conns[0], buffers) as chunks:
                for i in range(3):
                    clients[0].send(f"chunk{i}".encode())
                    cqe = await anext(chunks)
                    assert cqe.more and cqe.buffer_id is not None
                    assert bytes(buffers.get(cqe)) == f"chunk{i}".encode()
                    buffers.put(cqe)
                clients[0].send(b"left unread")  # queued: handed back by the exit
                await asyncio.sleep(0.01)
            clients[0].close()
            async with aring.recv_multishot(conns[0], buffers) as chunks:
                cqes = [cqe async for cqe in chunks]
            # Whatever was still buffered, then the end of the stream.
            assert cqes[-1].res == 0 and not cqes[-1].more
            for cqe in cqes[:-1]:
                buffers.put(cqe)
        finally:
            for fd in conns:
                os.close(fd)
            for c in clients:
                c.close()
        buffers.unregister()
        await aring.aclose()
        # A buffer ring's memory stays with the ring until it closes (the kernel may still
        # write into it): close it here, the teardown check is for open rings.
        ring.close()

    run(main())


def test_aio_fs_operations(make_ring: MakeRing, tmp_path: Path, tmp_file: MakeFile) -> None:
    f = tmp_file(b"0123456789")

    async def main() -> None:
        ring = make_ring(8)
        needs(ring, "fallocate", "renameat", "unlinkat", "mkdirat")
        needs_op(ring, Op.RENAMEAT)
        needs_op(ring, Op.MKDIRAT)
        aring = AsyncRing(ring=ring)
        await aring.fallocate(f, 0, 100)
        assert os.fstat(f.fd).st_size == 100
        if Op.FTRUNCATE in ring.probe():
            await aring.ftruncate(f, 4)
            assert f.contents() == b"0123"
        await aring.mkdir(tmp_path / "d")
        with pytest.raises(FileExistsError) as exists:
            await aring.mkdir(tmp_path / "d")
        assert exists.value.filename == str(tmp_path / "d")
        (tmp_path / "a").write_bytes(b"a")
        await aring.rename(tmp_path / "a", tmp_path / "d" / "b")
        assert (tmp_path / "d" / "b").read_bytes() == b"a"
        with pytest.raises(FileNotFoundError) as missing:
            await aring.rename(tmp_path / "a", tmp_path / "c")
        assert missing.value.filename == str(tmp_path / "a")
        assert missing.value.filename2 == str(tmp_path / "c")
        await aring.unlink(tmp_path / "d" / "b")
        await aring.unlink(tmp_path / "d", directory=True)
        assert not (tmp_path / "d").exists()
        with pytest.raises(FileNotFoundError):
            await aring.unlink(tmp_path / "d")
        await aring.aclose()

    run(main())


def test_aio_waitid(make_ring: MakeRing) -> None:
    async def main() -> None:
        ring = make_ring(8)
        needs(ring, "waitid")
        needs_op(ring, Op.WAITID)
        aring = AsyncRing(ring=ring)
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(7)"])
        info = await asyncio.wait_for(aring.waitid(os.P_PID, child.pid, os.WEXITED), 30)
        assert (info.si_pid, info.si_status) == (child.pid, 7)
        child.returncode = 7  # reaped by io_uring: tell Popen
        with pytest.raises(ChildProcessError):
            await aring.waitid(os.P_PID, child.pid, os.WEXITED)
        await aring.aclose()

    run(main())


def test_aio_send_zc(make_ring: MakeRing, listener: socket.socket) -> None:
    left = socket.create_connection(listener.getsockname())
    right, _ = listener.accept()

    async def main() -> None:
        ring = make_ring(8)
        needs(ring, "send_zc")
        needs_op(ring, Op.SEND_ZC)
        aring = AsyncRing(ring=ring)
        data = os.urandom(100_000)
        received = bytearray()

        async def reader() -> None:
            while len(received) < len(data):
                received.extend(await aring.recv_bytes(right, 65536))

        task = asyncio.create_task(reader())
        sent = 0
        while sent < len(data):
            try:
                sent += await aring.send_zc(left, memoryview(data)[sent:])
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    await aring.aclose()
                    pytest.skip(f"zero-copy send refused: {exc}")
                raise
        await asyncio.wait_for(task, 10)
        assert bytes(received) == data
        assert ring.pinned == 0  # the notification released the buffer
        await aring.aclose()

    try:
        run(main())
    finally:
        left.close()
        right.close()
