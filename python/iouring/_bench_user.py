"""The user-level cases of ``python -m iouring bench``: the jobs people do with the high-level
helpers and the asyncio adapter, each next to what they would write without iouring.

- ``small_files``: read 2,000 files of 1-64 KiB (warm and cold page cache) with
  :func:`iouring.read_files`, against a plain ``open``/``read`` loop and a thread pool.
- ``ranges``: read 2,000 ranges of 16 KiB at random offsets of a page-cached file with
  :func:`iouring.read_ranges`, against an ``os.preadv`` loop into one buffer and an
  ``os.pread`` loop.
- ``aio_await``: the cost of one ``await aring.nop()``, against ``await asyncio.sleep(0)`` (one
  event-loop tick, the cheapest await there is).
- ``aio_echo``: TCP echo over loopback, one message in flight, 4 KiB and 64 KiB messages,
  ``AsyncRing.sendall``/``recv``, against asyncio streams, stock ``loop.sock_*`` and uvloop
  streams (when uvloop is installed).

Each contender performs ``n`` operations of its case (an operation is one pass over the file
set, one pass over the ranges, one await or one round trip) and returns the seconds they took;
the framework in ``_bench.py`` calibrates, interleaves and compares them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

import iouring
from iouring import aio

if TYPE_CHECKING:
    from iouring._bench import Case, Contender, Options

__all__ = ["USER_CASES", "plan"]

KiB = 1 << 10
MiB = 1 << 20
FILES = 2000
RANGES = 2000
RANGE_SIZE = 16 * KiB

USER_CASES = ("small_files", "ranges", "aio_await", "aio_echo")

Run = Callable[[int], float]


# --------------------------------------------------------------------------------------------
# Many small files


class FileSet:
    """``count`` files of 1-64 KiB (seeded sizes) in a directory on a real filesystem, each
    filled with its own index byte; with ``sync`` written back to the disk, so that evict()
    can drop them from the page cache."""

    def __init__(
        self, directory: str, count: int = FILES, seed: int = 2026, *, sync: bool = True
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="iouring-bench-files-", dir=directory)
        rng = np.random.default_rng(seed)
        self.sizes = rng.integers(1 * KiB, 64 * KiB + 1, count).tolist()
        self.paths = [os.path.join(self.dir, f"f{i:05d}") for i in range(count)]
        self.total = int(sum(self.sizes))
        for i, (path, size) in enumerate(zip(self.paths, self.sizes, strict=True)):
            with open(path, "wb", buffering=0) as f:
                f.write(bytes([i & 0xFF]) * size)
        if sync:
            os.sync()

    def evict(self) -> None:
        """Drops the files from the page cache (they are clean: synced at creation)."""
        for path in self.paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def check(self, lengths: list[int], what: str) -> None:
        if lengths != self.sizes:
            raise RuntimeError(f"{what} read wrong sizes")

    def remove(self) -> None:
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(self.dir)


def _plain_read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _file_contenders(files: FileSet, cold: bool, pool: ThreadPoolExecutor) -> list[Contender]:
    from iouring._bench import Contender

    perf_counter = time.perf_counter

    def timed(job: Callable[[], list[int]], what: str) -> Run:
        def run(n: int) -> float:
            elapsed = 0.0
            for _ in range(n):
                if cold:
                    files.evict()
                start = perf_counter()
                lengths = job()
                elapsed += perf_counter() - start
                files.check(lengths, what)
            return elapsed

        return run

    # Every contender keeps every file's data until the pass ends, as read_files returns it
    # (a loop that dropped each file at once would copy into one cache-hot buffer every time).
    def with_iouring() -> list[int]:
        return [len(a) for a in iouring.read_files(files.paths)]

    def plain_loop() -> list[int]:
        return [len(data) for data in [_plain_read(p) for p in files.paths]]

    def thread_pool() -> list[int]:
        return [len(data) for data in list(pool.map(_plain_read, files.paths))]

    return [
        Contender("read_files", timed(with_iouring, "read_files"), True),
        Contender("loop", timed(plain_loop, "the plain loop"), False),
        Contender("threads", timed(thread_pool, "the thread pool"), False),
    ]


# --------------------------------------------------------------------------------------------
# Ranges of one file


def _range_contenders(fd: int, offsets: npt.NDArray[np.int64]) -> list[Contender]:
    from iouring._bench import Contender, _aligned

    perf_counter = time.perf_counter
    offset_list = offsets.tolist()
    expected = np.asarray(offsets // 4096 * 4096, dtype=np.uint64)  # see _make_file
    target = _aligned(len(offset_list) * RANGE_SIZE)

    def check(first_words: npt.NDArray[np.uint64], what: str) -> None:
        if not np.array_equal(first_words, expected):
            raise RuntimeError(f"{what} read wrong data")

    def with_iouring(n: int) -> float:
        start = perf_counter()
        for _ in range(n):
            parts = iouring.read_ranges(fd, offsets, RANGE_SIZE)
        elapsed = perf_counter() - start
        check(np.array([p[:8].view(np.uint64)[0] for p in parts], dtype=np.uint64), "read_ranges")
        return elapsed

    def preadv_loop(n: int) -> float:
        view = target.data  # NumPy stubs declare no __buffer__ before Python 3.12
        preadv = os.preadv
        start = perf_counter()
        for _ in range(n):
            at = 0
            for offset in offset_list:
                preadv(fd, [view[at : at + RANGE_SIZE]], offset)
                at += RANGE_SIZE
        elapsed = perf_counter() - start
        check(target.reshape(-1, RANGE_SIZE)[:, :8].copy().view(np.uint64).ravel(), "preadv")
        return elapsed

    def pread_loop(n: int) -> float:
        pread = os.pread
        start = perf_counter()
        for _ in range(n):
            parts = [pread(fd, RANGE_SIZE, offset) for offset in offset_list]
        elapsed = perf_counter() - start
        check(np.array([int.from_bytes(p[:8], "little") for p in parts], np.uint64), "pread")
        return elapsed

    return [
        Contender("read_ranges", with_iouring, True),
        Contender("preadv", preadv_loop, False),
        Contender("pread", pread_loop, False),
    ]


# --------------------------------------------------------------------------------------------
# asyncio


def iouring_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """iouring's event loop (whose wait is the ring), when this version has one."""
    factory = getattr(aio, "new_event_loop", None)
    return factory if callable(factory) else None


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


class LoopRunner:
    """One event loop kept for a contender's whole case; runs coroutines to completion."""

    def __init__(self, factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> None:
        self.loop = (factory or asyncio.new_event_loop)()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def _await_contenders(cleanup: list[Callable[[], None]]) -> list[Contender]:
    from iouring._bench import Contender

    perf_counter = time.perf_counter
    contenders = []

    def ring_contender(name: str, factory: Callable[[], asyncio.AbstractEventLoop] | None) -> None:
        runner = LoopRunner(factory)

        async def make() -> aio.AsyncRing:
            return aio.AsyncRing(64)

        aring: aio.AsyncRing = runner.run(make())

        async def awaits(n: int) -> float:
            nop = aring.nop
            start = perf_counter()
            for _ in range(n):
                await nop()
            return perf_counter() - start

        def close() -> None:
            runner.run(aring.aclose())
            runner.close()

        cleanup.append(close)
        contenders.append(Contender(name, lambda n: float(runner.run(awaits(n))), True))

    factory = iouring_loop_factory()
    if factory is not None:
        ring_contender("nop,iouring-loop", factory)
    ring_contender("nop,asyncio-loop", None)

    stock = LoopRunner()
    cleanup.append(stock.close)

    async def sleeps(n: int) -> float:
        sleep = asyncio.sleep
        start = perf_counter()
        for _ in range(n):
            await sleep(0)
        return perf_counter() - start

    contenders.append(Contender("sleep(0)", lambda n: float(stock.run(sleeps(n))), False))
    return contenders


async def _socket_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair over loopback (non-blocking, TCP_NODELAY)."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        accepted = loop.sock_accept(server)
        await loop.sock_connect(client, server.getsockname())
        conn, _ = await accepted
    for s in (client, conn):
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client, conn


def _echo_contenders(size: int, cleanup: list[Callable[[], None]]) -> list[Contender]:
    """One contender per API: a client task sends a message and reads the echo back, a server
    task in the same loop echoes what it receives, ``n`` round trips."""
    from iouring._bench import Contender

    perf_counter = time.perf_counter
    message = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    contenders = []

    def add(name: str, is_path: bool, runner: LoopRunner, trips: Callable[[int], Any]) -> None:
        def run(n: int) -> float:
            return float(runner.run(trips(n)))

        contenders.append(Contender(name, run, is_path))

    def check(received: bytes | bytearray | memoryview, what: str) -> None:
        if bytes(received) != message:
            raise RuntimeError(f"{what} echoed wrong data")

    # iouring: AsyncRing recv/sendall, on iouring's loop when there is one.
    factory = iouring_loop_factory()
    runner = LoopRunner(factory)
    client, conn = runner.run(_socket_pair())

    async def make() -> aio.AsyncRing:
        return aio.AsyncRing(64)

    aring: aio.AsyncRing = runner.run(make())

    async def ring_recv_exactly(fd: socket.socket, view: memoryview) -> None:
        got = 0
        while got < size:
            k = await aring.recv(fd, view[got:])
            if k == 0:
                raise ConnectionError("peer closed")
            got += k

    async def ring_trips(n: int) -> float:
        cbuf, sbuf = bytearray(size), bytearray(size)
        cview, sview = memoryview(cbuf), memoryview(sbuf)

        async def server() -> None:
            for _ in range(n):
                await ring_recv_exactly(conn, sview)
                await aring.sendall(conn, sview)

        start = perf_counter()
        task = asyncio.ensure_future(server())
        for _ in range(n):
            await aring.sendall(client, message)
            await ring_recv_exactly(client, cview)
        await task
        elapsed = perf_counter() - start
        check(cbuf, "AsyncRing")
        return elapsed

    def close_ring() -> None:
        runner.run(aring.aclose())
        client.close()
        conn.close()
        runner.close()

    cleanup.append(close_ring)
    add("recv/sendall" + (",iouring-loop" if factory else ""), True, runner, ring_trips)

    # Stock asyncio: loop.sock_recv_into / sock_sendall.
    sock_runner = LoopRunner()
    sclient, sconn = sock_runner.run(_socket_pair())

    async def sock_recv_exactly(
        loop: asyncio.AbstractEventLoop, s: socket.socket, view: memoryview
    ) -> None:
        got = 0
        while got < size:
            k = await loop.sock_recv_into(s, view[got:])
            if k == 0:
                raise ConnectionError("peer closed")
            got += k

    async def sock_trips(n: int) -> float:
        loop = asyncio.get_running_loop()
        cbuf, sbuf = bytearray(size), bytearray(size)
        cview, sview = memoryview(cbuf), memoryview(sbuf)

        async def server() -> None:
            for _ in range(n):
                await sock_recv_exactly(loop, sconn, sview)
                await loop.sock_sendall(sconn, sview)

        start = perf_counter()
        task = asyncio.ensure_future(server())
        for _ in range(n):
            await loop.sock_sendall(sclient, message)
            await sock_recv_exactly(loop, sclient, cview)
        await task
        elapsed = perf_counter() - start
        check(cbuf, "loop.sock_*")
        return elapsed

    def close_sock() -> None:
        sclient.close()
        sconn.close()
        sock_runner.close()

    cleanup.append(close_sock)
    add("sock_*", False, sock_runner, sock_trips)

    # Streams, on the stock loop and on uvloop.
    def streams(name: str, factory: Callable[[], asyncio.AbstractEventLoop] | None) -> None:
        stream_runner = LoopRunner(factory)

        async def connect() -> tuple[Any, ...]:
            accepted: asyncio.Future[tuple[Any, Any]] = asyncio.get_running_loop().create_future()

            def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                accepted.set_result((r, w))

            server = await asyncio.start_server(on_client, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sreader, swriter = await accepted
            for w in (writer, swriter):
                w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return server, reader, writer, sreader, swriter

        server, reader, writer, sreader, swriter = stream_runner.run(connect())

        async def trips(n: int) -> float:
            async def echo() -> None:
                for _ in range(n):
                    swriter.write(await sreader.readexactly(size))
                    await swriter.drain()

            start = perf_counter()
            task = asyncio.ensure_future(echo())
            data = b""
            for _ in range(n):
                writer.write(message)
                await writer.drain()
                data = await reader.readexactly(size)
            await task
            elapsed = perf_counter() - start
            check(data, name)
            return elapsed

        async def close() -> None:
            for w in (writer, swriter):
                w.close()
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

        def finish() -> None:
            stream_runner.run(close())
            stream_runner.close()

        cleanup.append(finish)
        add(name, False, stream_runner, trips)

    streams("streams", None)
    uv = uvloop_factory()
    if uv is not None:
        streams("uvloop", uv)
    return contenders


# --------------------------------------------------------------------------------------------
# The plan


def plan(
    opts: Options, notes: list[str], finalizers: list[Callable[[], None]]
) -> Iterator[tuple[str, Callable[[], list[Case]]]]:
    """(label, factory) for every user-level case of the run."""
    from iouring._bench import Case, _make_file

    wanted = opts.cases or frozenset(USER_CASES)
    directory = opts.directory or tempfile.gettempdir()
    state: dict[str, Any] = {}
    if "small_files" in wanted:
        pool = ThreadPoolExecutor(16)
        finalizers.append(pool.shutdown)
        for cold in (False, True):

            def files_case(cold: bool = cold) -> list[Case]:
                if "files" not in state:
                    state["files"] = FileSet(directory)
                    finalizers.append(state["files"].remove)
                files: FileSet = state["files"]
                if not cold:
                    files.evict()  # then read once: every contender starts from a warm cache
                    for path in files.paths:
                        _plain_read(path)
                contenders = _file_contenders(files, cold, pool)
                params = {"files": FILES, "cache": "cold" if cold else "warm"}
                seconds = opts.seconds * (4 if cold else 1)
                return [Case("small_files", params, contenders, 1, seconds, scale=FILES)]

            yield f"small_files {'cold' if cold else 'warm'}", files_case
    if "ranges" in wanted:

        def ranges_case() -> list[Case]:
            size = max(16 * MiB, min(opts.file_size, 256 * MiB))
            path = os.path.join(directory, f"iouring-bench-ranges-{os.getpid()}.dat")
            _make_file(path, size)
            fd = os.open(path, os.O_RDONLY)

            def remove() -> None:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

            with open(path, "rb", buffering=0) as f:  # cache every page
                while f.read(16 * MiB):
                    pass
            rng = np.random.default_rng(7)
            offsets = rng.integers(0, (size - RANGE_SIZE) // 4096, RANGES) * 4096
            contenders = _range_contenders(fd, offsets.astype(np.int64))
            params = {"ranges": RANGES, "size": RANGE_SIZE}
            case = Case("ranges", params, contenders, 1, opts.seconds, [remove], scale=RANGES)
            return [case]

        yield "ranges", ranges_case
    if "aio_await" in wanted:

        def await_case() -> list[Case]:
            cleanup: list[Callable[[], None]] = []
            contenders = _await_contenders(cleanup)
            return [Case("aio_await", {"await": "nop"}, contenders, 256, opts.seconds, cleanup)]

        yield "aio_await", await_case
    if "aio_echo" in wanted:
        if uvloop_factory() is None:
            notes.append("aio_echo: uvloop is not installed (pip install uvloop), no uvloop row")
        for size in (4 * KiB, 64 * KiB):

            def echo_case(size: int = size) -> list[Case]:
                cleanup: list[Callable[[], None]] = []
                contenders = _echo_contenders(size, cleanup)
                params = {"size": size}
                return [Case("aio_echo", params, contenders, 64, opts.seconds, cleanup)]

            yield f"aio_echo {size // KiB} KiB", echo_case
