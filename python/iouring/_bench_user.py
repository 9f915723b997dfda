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
            # No arguments: on iouring's loop the adapter shares the loop's ring.
            return aio.AsyncRing()

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
        ring_contender("AsyncRing,iouring-loop", factory)
    ring_contender("AsyncRing,asyncio-loop", None)

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


class _Echo:
    """One way of doing the echo: a client task sends a message and reads all of it back, a
    server task in the same loop sends back whatever arrives, ``n`` round trips a run."""

    def __init__(self, size: int, runner: LoopRunner) -> None:
        self.size = size
        self.runner = runner
        self.message = np.random.default_rng(size).integers(0, 256, size, np.uint8).tobytes()

    async def client_trip(self, view: memoryview) -> None:
        raise NotImplementedError

    async def serve(self, total: int, view: memoryview) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    async def trips(self, n: int) -> float:
        reply, chunk = bytearray(self.size), bytearray(64 * KiB)
        task = asyncio.ensure_future(self.serve(n * self.size, memoryview(chunk)))
        start = time.perf_counter()
        view = memoryview(reply)
        for _ in range(n):
            await self.client_trip(view)
        await task
        elapsed = time.perf_counter() - start
        if bytes(reply) != self.message:
            raise RuntimeError(f"{type(self).__name__} echoed wrong data")
        return elapsed

    def run(self, n: int) -> float:
        return float(self.runner.run(self.trips(n)))


class _RingEcho(_Echo):
    """AsyncRing.sendall / recv (on iouring's loop, the adapter shares the loop's ring)."""

    def __init__(self, size: int, runner: LoopRunner) -> None:
        super().__init__(size, runner)
        self.client, self.conn = runner.run(_socket_pair())

        async def make() -> aio.AsyncRing:
            return aio.AsyncRing()

        self.aring: aio.AsyncRing = runner.run(make())

    async def client_trip(self, view: memoryview) -> None:
        aring, size = self.aring, self.size
        await aring.sendall(self.client, self.message)
        got = 0
        while got < size:
            k = await aring.recv(self.client, view[got:])
            if k == 0:
                raise ConnectionError("the server closed")
            got += k

    async def serve(self, total: int, view: memoryview) -> None:
        aring, conn = self.aring, self.conn
        while total > 0:
            k = await aring.recv(conn, view)
            if k == 0:
                raise ConnectionError("the client closed")
            await aring.sendall(conn, view[:k])
            total -= k

    def close(self) -> None:
        self.runner.run(self.aring.aclose())
        self.client.close()
        self.conn.close()
        self.runner.close()


class _SockEcho(_Echo):
    """loop.sock_sendall / sock_recv_into."""

    def __init__(self, size: int, runner: LoopRunner) -> None:
        super().__init__(size, runner)
        self.client, self.conn = runner.run(_socket_pair())

    async def client_trip(self, view: memoryview) -> None:
        loop, size = self.runner.loop, self.size
        await loop.sock_sendall(self.client, self.message)
        got = 0
        while got < size:
            k = await loop.sock_recv_into(self.client, view[got:])
            if k == 0:
                raise ConnectionError("the server closed")
            got += k

    async def serve(self, total: int, view: memoryview) -> None:
        loop, conn = self.runner.loop, self.conn
        while total > 0:
            k = await loop.sock_recv_into(conn, view)
            if k == 0:
                raise ConnectionError("the client closed")
            await loop.sock_sendall(conn, view[:k])
            total -= k

    def close(self) -> None:
        self.client.close()
        self.conn.close()
        self.runner.close()


class _StreamsEcho(_Echo):
    """asyncio streams: write + drain, readexactly on the client, read on the server."""

    def __init__(self, size: int, runner: LoopRunner) -> None:
        super().__init__(size, runner)

        async def connect() -> tuple[Any, ...]:
            loop = asyncio.get_running_loop()
            accepted: asyncio.Future[tuple[Any, Any]] = loop.create_future()

            def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                accepted.set_result((r, w))

            server = await asyncio.start_server(on_client, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sreader, swriter = await accepted
            for w in (writer, swriter):
                w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return server, reader, writer, sreader, swriter

        self.server, self.reader, self.writer, self.sreader, self.swriter = runner.run(connect())

    async def client_trip(self, view: memoryview) -> None:
        self.writer.write(self.message)
        await self.writer.drain()
        view[:] = await self.reader.readexactly(self.size)

    async def serve(self, total: int, view: memoryview) -> None:
        reader, writer = self.sreader, self.swriter
        while total > 0:
            data = await reader.read(len(view))
            if not data:
                raise ConnectionError("the client closed")
            writer.write(data)
            await writer.drain()
            total -= len(data)

    def close(self) -> None:
        async def close() -> None:
            for w in (self.writer, self.swriter):
                w.close()
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

        self.runner.run(close())
        self.runner.close()


def _echo_contenders(size: int, cleanup: list[Callable[[], None]]) -> list[Contender]:
    """AsyncRing (and stock streams) on iouring's loop against loop.sock_*, streams and uvloop
    streams on their own loops."""
    from iouring._bench import Contender

    ring_loop = iouring_loop_factory()
    uv = uvloop_factory()
    ways: list[tuple[str, bool, type[_Echo], Callable[[], asyncio.AbstractEventLoop] | None]] = [
        ("AsyncRing" + (",iouring-loop" if ring_loop else ""), True, _RingEcho, ring_loop),
    ]
    if ring_loop is not None:  # ordinary asyncio code, unchanged, on iouring's loop
        ways.append(("streams,iouring-loop", True, _StreamsEcho, ring_loop))
    ways += [("sock_*", False, _SockEcho, None), ("streams", False, _StreamsEcho, None)]
    if uv is not None:
        ways.append(("uvloop", False, _StreamsEcho, uv))
    contenders = []
    for name, is_path, kind, factory in ways:
        echo = kind(size, LoopRunner(factory))
        cleanup.append(echo.close)
        contenders.append(Contender(name, echo.run, is_path))
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
