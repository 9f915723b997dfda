"""iouring.aio.IoUringEventLoop: stock asyncio on a loop whose wait is an io_uring.

The contract: ordinary asyncio code runs unchanged on the loop (streams, ``loop.sock_*``,
timers, threads waking the loop, executors, signal handlers, subprocesses, cancellation,
timeouts, exceptions), ``AsyncRing()`` on it uses the loop's ring and completes in the loop's
own wait, closing is safe with operations in flight, and bad input raises clearly. Every test
runs a real kernel over real sockets, files and signals; none asserts a duration.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from kernel_support import slow

import iouring
from iouring import CQE_DTYPE, IoUring, SetupFlags
from iouring._core import aio_dispatch, aio_flush
from iouring.aio import AsyncRing, IoUringEventLoop, new_event_loop

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs ``coro`` on a fresh IoUringEventLoop, bounded so that a lost wakeup fails
    instead of hanging."""

    async def bounded() -> T:
        async with asyncio.timeout(30):
            return await coro

    return iouring.aio.run(bounded())


# --- the loop itself -----------------------------------------------------------------------


def test_loop_runner_and_shortcut() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, IoUringEventLoop)
        return "done"

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        assert runner.run(main()) == "done"
        ring = runner.get_loop().ring  # type: ignore[attr-defined]
    assert ring.closed  # closed with the loop
    assert iouring.aio.run(main()) == "done"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_loop_asyncio_run_loop_factory() -> None:
    async def main() -> int:
        return 7

    assert asyncio.run(main(), loop_factory=new_event_loop) == 7  # type: ignore[call-arg]


def test_loop_call_later_ordering_and_call_soon() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        done = loop.create_future()
        loop.call_later(0.03, order.append, "c")
        loop.call_later(0.01, order.append, "b")
        loop.call_soon(order.append, "a")
        loop.call_later(0.05, done.set_result, None)
        await done
        return order

    assert run(main()) == ["a", "b", "c"]


def test_loop_call_soon_threadsafe_wakes_the_wait() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        # The loop sleeps in io_uring_enter with nothing else to do: only the self-pipe,
        # watched through the ring's poll of the epoll fd, can wake it.
        def later() -> None:
            time.sleep(0.05)
            loop.call_soon_threadsafe(future.set_result, "hi")

        thread = threading.Thread(target=later)
        thread.start()
        try:
            return await future
        finally:
            thread.join()

    assert run(main()) == "hi"


def test_loop_fd_events_while_ring_operations_wait() -> None:
    """A ring operation in flight makes the loop wait in io_uring_enter: fd readiness must
    still reach asyncio, new events (a thread waking the loop) and level-triggered ones (a
    reader that consumes one byte per callback) alike."""

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        async with AsyncRing() as aring:
            idle_left, idle_right = socket.socketpair()
            data_left, data_right = socket.socketpair()
            with idle_left, idle_right, data_left, data_right:
                pending = asyncio.create_task(aring.recv_bytes(idle_right, 10))
                await asyncio.sleep(0.01)
                assert aring.in_flight == 1
                data_right.setblocking(False)
                got = bytearray()
                all_read: asyncio.Future[None] = loop.create_future()

                def on_readable() -> None:
                    got.extend(data_right.recv(1))  # leaves the rest: still readable
                    if len(got) == 10:
                        loop.remove_reader(data_right)
                        all_read.set_result(None)

                loop.add_reader(data_right, on_readable)
                data_left.send(b"0123456789")
                await all_read
                woken: asyncio.Future[str] = loop.create_future()
                threading.Timer(
                    0.02, loop.call_soon_threadsafe, (woken.set_result, "woken")
                ).start()
                assert await woken == "woken"
                idle_left.send(b"end")
                assert await pending == b"end"
                return bytes(got)

    assert run(main()) == b"0123456789"


def test_loop_run_in_executor() -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(*(loop.run_in_executor(None, pow, 2, i) for i in range(20)))
        )

    assert run(main()) == [2**i for i in range(20)]


def test_loop_signal_handler() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[int] = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result(signal.SIGUSR1))
        try:
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
            return await got
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    assert run(main()) == signal.SIGUSR1


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="needs the main thread"
)
def test_loop_ctrl_c_interrupts_a_wait_in_the_ring() -> None:
    async def main() -> None:
        async with AsyncRing() as aring:
            left, right = socket.socketpair()
            with left, right:
                threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
                await aring.recv(left, bytearray(10))  # nothing ever arrives

    with pytest.raises(KeyboardInterrupt):
        iouring.aio.run(main())


def test_loop_cancellation_timeouts_exceptions() -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await asyncio.sleep(10)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 0.02)
        task = asyncio.create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async def fails() -> None:
            await asyncio.sleep(0)
            raise KeyError("boom")

        with pytest.raises(KeyError, match="boom"):
            await asyncio.create_task(fails())

    run(main())


def test_loop_streams_echo() -> None:
    async def main() -> bytes:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("localhost", port)
        payload = os.urandom(1 << 20)
        writer.write(payload)
        await writer.drain()
        echoed = await reader.readexactly(len(payload))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        assert echoed == payload
        return echoed[:4]

    run(main())


def test_loop_sock_operations() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            client = socket.socket()
            client.setblocking(False)
            connect = asyncio.create_task(loop.sock_connect(client, listener.getsockname()))
            conn, _ = await loop.sock_accept(listener)
            await connect
            with conn, client:
                conn.setblocking(False)
                await loop.sock_sendall(client, b"x" * 300_000)
                got = bytearray()
                while len(got) < 300_000:
                    got += await loop.sock_recv(conn, 65536)
                assert got == b"x" * 300_000

    run(main())


def test_loop_subprocess() -> None:
    async def main() -> bytes:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('child')", stdout=subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return out

    assert run(main()).strip() == b"child"


def test_loop_many_tasks_mixed_with_ring_operations() -> None:
    async def main() -> None:
        async with AsyncRing() as aring:
            assert aring.uses_loop_ring
            results = await asyncio.gather(
                *(aring.nop() for _ in range(2000)), *(asyncio.sleep(0) for _ in range(100))
            )
            assert results[:2000] == [0] * 2000

    run(main())


# --- AsyncRing on the loop -----------------------------------------------------------------


def test_loop_full_submission_queue_at_the_wait() -> None:
    """Tasks filled the SQ of a 4-entry loop ring in one iteration: the loop's own poll of
    the epoll fd must still find a slot (it submits theirs first)."""

    async def main() -> list[int]:
        async with AsyncRing() as aring:
            first = await asyncio.gather(*(aring.nop() for _ in range(4)))
            more = await asyncio.gather(*(aring.nop() for _ in range(13)))
            return list(first) + list(more)

    with asyncio.Runner(loop_factory=lambda: new_event_loop(4)) as runner:
        assert runner.run(main()) == [0] * 17


def test_loop_asyncring_uses_loop_ring_and_ops_complete(tmp_path: Path) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with AsyncRing() as aring:
            assert aring.ring is loop.ring  # type: ignore[attr-defined]
            path = tmp_path / "f.bin"
            data = os.urandom(200_000)
            assert await aring.write_file(path, data) == len(data)
            assert await aring.read_file(path) == data
            (tmp_path / "empty").write_bytes(b"")
            assert await aring.read_file(tmp_path / "empty") == b""
            # statx says 0 bytes for procfs files: read_file reads until a read returns 0.
            cmdline = Path("/proc/self/cmdline")
            assert await aring.read_file(cmdline) == cmdline.read_bytes()
            big = os.urandom(3 << 20)  # more than one read may return
            await aring.write_file(path, big)
            assert await aring.read_file(path) == big
            cqes = await aring.nop_batch(3000)  # more than the CQ holds at once
            assert cqes.dtype == CQE_DTYPE and len(cqes) == 3000 and not cqes["res"].any()
            left, right = socket.socketpair()
            with left, right:
                await aring.sendall(left, b"ping")
                assert await aring.recv_bytes(right, 10) == b"ping"
            assert aring.in_flight == 0
        assert aring.closed and not loop.ring.closed  # type: ignore[attr-defined]

    run(main())


def test_loop_two_adapters_closing_one_leaves_the_other() -> None:
    async def main() -> None:
        first = AsyncRing()
        second = AsyncRing()
        left, right = socket.socketpair()
        with left, right:
            pending = asyncio.create_task(first.recv(right, bytearray(10)))
            await asyncio.sleep(0.01)
            first.close()
            with pytest.raises(OSError, match="AsyncRing was closed") as info:
                await pending
            assert info.value.errno == errno.ECANCELED
            assert await second.nop() == 0
            await second.sendall(left, b"still")
            assert await second.recv_bytes(right, 10) == b"still"
        await second.aclose()
        third = AsyncRing()  # takes a free slot again
        assert await third.nop() == 0
        await third.aclose()

    run(main())


def test_loop_adapters_dropped_without_close_free_their_slots() -> None:
    async def main() -> None:
        for _ in range(300):  # more than the 255 slots of the loop's ring
            aring = AsyncRing()
            assert await aring.nop() == 0
            del aring  # no cycle: freed here, and its slot with it
        async with AsyncRing() as last:
            assert await last.nop() == 0

    run(main())


def test_loop_task_cancel_cancels_the_operation() -> None:
    async def main() -> None:
        async with AsyncRing() as aring:
            left, right = socket.socketpair()
            with left, right:
                task = asyncio.create_task(aring.recv(right, bytearray(10)))
                await asyncio.sleep(0.01)
                assert aring.in_flight == 1
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                for _ in range(1000):
                    if aring.in_flight == 0:
                        break
                    await asyncio.sleep(0.001)
                assert aring.in_flight == 0  # the kernel's cancellation came back
                left.send(b"late")  # the cancelled recv did not take it
                assert await aring.recv_bytes(right, 10) == b"late"

    run(main())


def test_loop_close_with_operations_in_flight() -> None:
    left, right = socket.socketpair()
    buffers = [bytearray(64) for _ in range(8)]
    started = threading.Event()

    async def main() -> None:
        aring = AsyncRing()
        tasks = [asyncio.create_task(aring.recv(right, buf)) for buf in buffers]
        await asyncio.sleep(0.01)
        assert aring.in_flight == len(buffers) == len(tasks)
        started.set()

    loop = new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()  # the ring cancels and drains the recvs; pins are released
    assert started.is_set()
    assert loop.ring.closed
    left.send(b"after close")  # nobody reads into the released buffers any more
    assert right.recv(64) == b"after close"
    left.close()
    right.close()


def test_loop_adapter_with_own_ring_on_the_loop() -> None:
    async def main() -> None:
        async with AsyncRing(8) as own:
            assert not own.uses_loop_ring
            assert own.ring is not asyncio.get_running_loop().ring  # type: ignore[attr-defined]
            assert await own.nop() == 0

    run(main())


def test_loop_connect_by_host_name_and_servers() -> None:
    async def main() -> None:
        async with AsyncRing() as aring:
            server = await aring.create_server("localhost", 0)
            port = server.getsockname()[1]

            async def serve() -> None:
                conn, _ = await aring.accept_socket(server)
                with conn:
                    await aring.sendall(conn, (await aring.recv_bytes(conn, 64)).upper())

            task = asyncio.create_task(serve())
            with socket.socket() as sock:
                await aring.connect(sock, ("localhost", port))
                await aring.sendall(sock, b"abc")
                assert await aring.recv_bytes(sock, 64) == b"ABC"
            await task
            client = await aring.open_connection("127.0.0.1", port)
            client.close()
            server.close()
            fd = await aring.socket()
            try:
                await aring.bind(fd, ("", 0))
                await aring.listen(fd, 4)
            finally:
                await aring.close_fd(fd)

    run(main())


# --- the stock loop keeps the eventfd path ---------------------------------------------------


def test_stock_loop_adapter_uses_eventfd_path(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncRing() as aring:
            assert not aring.uses_loop_ring
            assert await aring.write_file(tmp_path / "x", b"data") == 4
            assert await aring.read_file(tmp_path / "x") == b"data"
            assert list(await asyncio.gather(*(aring.nop() for _ in range(500)))) == [0] * 500

    asyncio.run(main())


def test_aio_suite_on_the_ring_loop() -> None:
    """tests/test_aio.py, run again with every test on an IoUringEventLoop."""
    env = dict(os.environ, IOURING_AIO_LOOP="1")
    here = Path(__file__).parent
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here / "test_aio.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=slow(600),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


# --- bad input -------------------------------------------------------------------------------


def test_loop_bad_input() -> None:
    with pytest.raises(ValueError, match="entries"):
        new_event_loop(0)
    with pytest.raises(ValueError, match="IOPOLL or SQPOLL"):
        new_event_loop(8, flags=SetupFlags.SQPOLL)
    with pytest.raises(TypeError):
        new_event_loop(8, no_such_option=1)

    async def main(tmp: Path) -> None:
        async with AsyncRing() as aring:
            with pytest.raises(TypeError, match="ring="):
                AsyncRing(8, ring=aring.ring)
            with pytest.raises(FileNotFoundError) as info:
                await aring.read_file(tmp / "missing")
            assert info.value.filename == str(tmp / "missing")
            with pytest.raises(IsADirectoryError):
                await aring.read_file(tmp)
            with pytest.raises(TypeError):
                await aring.write_file(tmp / "y", 42)  # type: ignore[arg-type]
            with pytest.raises(socket.gaierror):
                await aring.open_connection("no-such-host.invalid", 80)
            with socket.socket() as sock, pytest.raises(TypeError, match="address"):
                await aring.connect(sock, ("localhost", "80"))
            with pytest.raises(OverflowError):
                await aring.create_server("127.0.0.1", 1 << 20)
            with socket.create_server(("127.0.0.1", 0)) as s:
                port = s.getsockname()[1]
            with pytest.raises(ConnectionRefusedError):
                await aring.open_connection("127.0.0.1", port)
            assert aring.in_flight == 0

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        run(main(Path(tmp)))


def test_aio_dispatch_bad_input() -> None:
    with IoUring(4) as ring:
        out = np.empty(8, dtype=CQE_DTYPE)
        with pytest.raises(TypeError, match="IoUring"):
            aio_dispatch(object(), [None], asyncio.Future, out)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="tables"):
            aio_dispatch(ring, {}, asyncio.Future, out)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="future_type"):
            aio_dispatch(ring, [None], 1, out)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="batch_out"):
            aio_dispatch(ring, [None], asyncio.Future, b"ro")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="batch_out"):
            aio_dispatch(ring, [None], asyncio.Future, np.empty(0, dtype=CQE_DTYPE))
        with pytest.raises(TypeError, match="timeout"):
            aio_dispatch(ring, [None], asyncio.Future, out, "1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="NaN"):
            aio_dispatch(ring, [None], asyncio.Future, out, float("nan"))
        with pytest.raises(TypeError, match="arguments"):
            aio_dispatch(ring)  # type: ignore[call-arg]
        # A handler that raises: the rest are still dispatched, then the error surfaces.
        seen: list[int] = []

        class Bad:
            def complete(self, res: int, flags: int) -> None:
                raise RuntimeError("handler failed")

        class Good:
            def complete(self, res: int, flags: int) -> None:
                seen.append(res)

        table: dict[int, Any] = {1: Bad(), 2: Good()}
        ring.nop(1)
        ring.nop(2)
        with pytest.raises(RuntimeError, match="handler failed"):
            aio_dispatch(ring, [table], asyncio.Future, out, None)
        assert seen == [0] and not table and ring.in_flight == 0
        # A cancelled future is skipped quietly; any other error of set_result surfaces.
        loop = asyncio.new_event_loop()
        try:

            class Failing(asyncio.Future[int]):
                def set_result(self, result: int) -> None:
                    raise RuntimeError("set_result failed")

            cancelled: asyncio.Future[int] = loop.create_future()
            cancelled.cancel()
            futures: dict[int, Any] = {3: cancelled, 4: Failing(loop=loop)}
            ring.nop(3)
            ring.nop(4)
            with pytest.raises(RuntimeError, match="set_result failed"):
                aio_dispatch(ring, [futures], asyncio.Future, out, None)
            assert not futures and ring.in_flight == 0
        finally:
            loop.close()
        ring.close()
        with pytest.raises(ValueError, match="closed"):
            aio_dispatch(ring, [None], asyncio.Future, out)


def test_aio_flush_bad_input_and_results() -> None:
    with IoUring(4) as ring:
        out = np.empty(8, dtype=CQE_DTYPE)
        with pytest.raises(TypeError, match="IoUring"):
            aio_flush(object(), [None], asyncio.Future, out, True)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="tables"):
            aio_flush(ring, {}, asyncio.Future, out, True)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="future_type"):
            aio_flush(ring, [None], 1, out, True)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="batch_out"):
            aio_flush(ring, [None], asyncio.Future, np.empty(0, dtype=CQE_DTYPE), True)
        with pytest.raises(TypeError, match="arguments"):
            aio_flush(ring, [None], asyncio.Future, out)  # type: ignore[call-arg]
        # Nothing reaped: the eventfd is left on; something reaped: left off.
        seen: list[int] = []

        class Handler:
            def complete(self, res: int, flags: int) -> None:
                seen.append(res)

        def enabled() -> bool:
            return ring.cq_eventfd_enabled

        assert aio_flush(ring, [{}], asyncio.Future, out, True) == (0, False)
        assert enabled()
        ring.nop(1)
        assert aio_flush(ring, [{1: Handler()}], asyncio.Future, out, True) == (0, True)
        assert seen == [0] and not enabled() and ring.in_flight == 0
        ring.nop(1 << 63 | 5)  # a batch completion goes to batch_out
        assert aio_flush(ring, [{}], asyncio.Future, out, False) == (1, True)
        assert int(out[0]["user_data"]) == 1 << 63 | 5
        ring.cq_eventfd_toggle(True)
        ring.close()
        with pytest.raises(ValueError, match="closed"):
            aio_flush(ring, [None], asyncio.Future, out, True)


def test_loop_closed_ring_operations_raise() -> None:
    async def main() -> None:
        aring = AsyncRing()
        aring.close()
        with pytest.raises(ValueError, match="closed"):
            await aring.nop()

    run(main())
