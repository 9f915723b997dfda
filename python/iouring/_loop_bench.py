"""Side-by-side measurements of iouring.aio against stock asyncio (and uvloop when installed).

Each case returns seconds per operation (await cost) or bytes per second (echo); ``compare``
runs the cases interleaved for several rounds in one process and reports medians and ratios.
Run ``python -m iouring._loop_bench`` (``--quick`` for a short run).

Cases:

- ``await_cost(kind)``: per-await cost of a sequential loop of ``await aring.nop()`` on an
  :class:`~iouring.aio.IoUringEventLoop` (``"nop"``), of ``await asyncio.sleep(0)`` on the
  default loop (``"tick"``) and on the io_uring loop (``"tick_ring"``), and of
  ``await aring.nop()`` on the default loop (the eventfd path, ``"nop_stock"``).
- ``echo(kind, size)``: a TCP echo over loopback, one connection, one message of ``size``
  bytes at a time (the client sends it and waits for all of it to come back). ``"iouring"``:
  ``AsyncRing.recv``/``sendall`` on the io_uring loop; ``"sock"``: ``loop.sock_recv_into``/
  ``sock_sendall`` on the default loop; ``"streams"``: asyncio streams on the default loop;
  ``"uvloop"``: asyncio streams on uvloop; ``"streams_ring"`` and ``"sock_ring"``: the
  streams and ``loop.sock_*`` cases on the io_uring loop (ordinary asyncio code on it).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from iouring import aio

__all__ = ["await_cost", "compare", "echo", "has_uvloop"]


def has_uvloop() -> bool:
    """True when uvloop can be imported."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _run(coro: Coroutine[Any, Any, float], kind: str) -> float:
    if kind in ("nop", "tick_ring", "iouring", "streams_ring", "sock_ring"):
        return aio.run(coro)
    if kind == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    with asyncio.Runner() as runner:
        return runner.run(coro)


def await_cost(kind: str, count: int = 20000) -> float:
    """Seconds per await of ``count`` sequential awaits (see the module docstring)."""

    async def main() -> float:
        if kind == "tick" or kind == "tick_ring":
            for _ in range(1000):
                await asyncio.sleep(0)
            start = time.perf_counter()
            for _ in range(count):
                await asyncio.sleep(0)
            return (time.perf_counter() - start) / count
        async with aio.AsyncRing() as ring:
            nop = ring.nop
            for _ in range(1000):
                await nop()
            start = time.perf_counter()
            for _ in range(count):
                await nop()
            return (time.perf_counter() - start) / count

    if kind not in ("nop", "tick", "tick_ring", "nop_stock"):
        raise ValueError(f"kind: unknown await_cost case {kind!r}")
    return _run(main(), "nop" if kind == "nop" else kind)


async def _echo_iouring(size: int, total: int) -> float:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    async with aio.AsyncRing() as ring:

        async def server() -> None:
            conn, _ = await ring.accept(listener)
            buf = bytearray(max(size, 65536))
            view = memoryview(buf)
            try:
                while True:
                    n = await ring.recv(conn, buf)
                    if n == 0:
                        return
                    await ring.sendall(conn, view[:n])
            finally:
                await ring.close_fd(conn)

        task = loop.create_task(server())
        client = socket.socket()
        await ring.connect(client, ("127.0.0.1", port))
        message = bytes(size)
        reply = bytearray(size)
        view = memoryview(reply)
        start = time.perf_counter()
        sent = 0
        while sent < total:
            await ring.sendall(client, message)
            got = 0
            while got < size:
                got += await ring.recv(client, view[got:])
            sent += size
        elapsed = time.perf_counter() - start
        client.close()
        await task
    listener.close()
    return total / elapsed


async def _echo_sock(size: int, total: int) -> float:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]

    async def server() -> None:
        conn, _ = await loop.sock_accept(listener)
        conn.setblocking(False)
        buf = bytearray(max(size, 65536))
        view = memoryview(buf)
        with conn:
            while True:
                n = await loop.sock_recv_into(conn, buf)
                if n == 0:
                    return
                await loop.sock_sendall(conn, view[:n])

    task = loop.create_task(server())
    client = socket.socket()
    client.setblocking(False)
    await loop.sock_connect(client, ("127.0.0.1", port))
    message = bytes(size)
    reply = bytearray(size)
    view = memoryview(reply)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        await loop.sock_sendall(client, message)
        got = 0
        while got < size:
            got += await loop.sock_recv_into(client, view[got:])
        sent += size
    elapsed = time.perf_counter() - start
    client.close()
    await task
    listener.close()
    return total / elapsed


async def _echo_streams(size: int, total: int) -> float:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    message = bytes(size)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        writer.write(message)
        await writer.drain()
        await reader.readexactly(size)
        sent += size
    elapsed = time.perf_counter() - start
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return total / elapsed


def echo(kind: str, size: int, total: int = 32 << 20) -> float:
    """Bytes per second of a loopback TCP echo of ``size``-byte messages (see the module
    docstring); ``total`` bytes go each way."""
    if size <= 0:
        raise ValueError("size must be > 0")
    cases: dict[str, Callable[[int, int], Coroutine[Any, Any, float]]] = {
        "iouring": _echo_iouring,
        "sock": _echo_sock,
        "streams": _echo_streams,
        "uvloop": _echo_streams,
        "streams_ring": _echo_streams,
        "sock_ring": _echo_sock,
    }
    if kind not in cases:
        raise ValueError(f"kind: unknown echo case {kind!r}")
    return _run(cases[kind](size, total), kind)


def compare(
    cases: dict[str, Callable[[], float]], rounds: int = 7
) -> dict[str, tuple[float, list[float]]]:
    """Runs every case once per round, interleaved; returns ``{name: (median, values)}``."""
    values: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            values[name].append(case())
    return {name: (statistics.median(v), v) for name, v in values.items()}


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    rounds = 3 if quick else 7
    n = 5000 if quick else 20000
    total = (4 << 20) if quick else (32 << 20)
    res = compare(
        {
            "nop": lambda: await_cost("nop", n),
            "tick": lambda: await_cost("tick", n),
            "tick_ring": lambda: await_cost("tick_ring", n),
            "nop_stock": lambda: await_cost("nop_stock", n),
        },
        rounds,
    )
    tick = res["tick"][0]
    for name, (median, _) in res.items():
        print(f"await {name:10s} {median * 1e6:7.2f} us  {median / tick:5.2f}x tick")
    for size in (4096, 65536):
        kinds = ["iouring", "sock", "streams", "streams_ring", "sock_ring"]
        kinds += ["uvloop"] if has_uvloop() else []
        res = compare({k: functools.partial(echo, k, size, total) for k in kinds}, rounds)
        base = res["iouring"][0]
        for name, (median, _) in res.items():
            print(
                f"echo {size:6d} {name:12s} {median / 1e6:8.1f} MB/s  "
                f"iouring/{name} {base / median:5.2f}x"
            )
        ring_streams = res["streams_ring"][0] / res["streams"][0]
        ring_sock = res["sock_ring"][0] / res["sock"][0]
        print(
            f"echo {size:6d} ordinary asyncio on the io_uring loop / on the default loop: "
            f"streams {ring_streams:4.2f}x, loop.sock_* {ring_sock:4.2f}x"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
