"""An asyncio echo server on io_uring: multishot accept, multishot recv into a buffer ring, send.

One multishot accept yields every new connection; each connection has one multishot recv that
lands its data in a shared ring of provided buffers (``BufferRing``), and the data is sent
back straight from that buffer before the buffer is handed back to the kernel.

It runs on :class:`iouring.aio.IoUringEventLoop`, the asyncio loop whose wait is the ring: the
operations of every connection are submitted, waited for and completed by the loop's own
``io_uring_enter``, with no eventfd round trip (``--loop asyncio`` runs the same server on the
default loop, where the adapter uses a ring of its own and an eventfd).

    python examples/echo_server.py --port 8007        # serve until Ctrl-C
    python examples/echo_server.py --port 0 --once    # print the port, serve one client

Needs Linux 6.0+ (multishot recv, buffer rings); ``missing_operations()`` says what is lacking.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import socket
import sys

import iouring.aio
from iouring import BufferRing, Op
from iouring.aio import AsyncRing

__all__ = ["EchoServer", "main", "missing_operations"]

REQUIRED_METHODS = ("multishot_accept", "recv_multishot", "send", "recv", "cancel")
REQUIRED_OPS = (Op.ACCEPT, Op.RECV, Op.SEND, Op.ASYNC_CANCEL)


def missing_operations() -> list[str]:
    """What this interpreter's iouring or the running kernel lacks for the echo server."""
    from iouring import IoUring

    with IoUring(2) as ring:
        missing = [name for name in REQUIRED_METHODS if not hasattr(ring, name)]
        supported = ring.probe()
        missing += [f"kernel {op.name}" for op in REQUIRED_OPS if op not in supported]
        if not missing:
            try:
                BufferRing(ring, 0, 2, 64).unregister()
            except OSError as exc:
                missing.append(f"buffer rings ({exc})")
    return missing


class EchoServer:
    """Echoes every byte each client sends. Create it with ``await EchoServer.start(...)``."""

    def __init__(self, aring: AsyncRing, listener: socket.socket, buffers: BufferRing) -> None:
        self.aring = aring
        self.listener = listener
        self.buffers = buffers
        self.connections_served = 0
        self.bytes_echoed = 0
        self.buffer_shortages = 0  # multishot recvs that ended with -ENOBUFS
        self._connections: set[asyncio.Task[None]] = set()
        self._acceptor: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, host: str = "127.0.0.1", port: int = 0, *, buffers: int = 256, buffer_size: int = 4096
    ) -> EchoServer:
        """Listens on ``host:port`` (0: any free port) and starts accepting."""
        listener = socket.create_server((host, port), backlog=512, reuse_port=False)
        aring = AsyncRing()  # on an IoUringEventLoop: the loop's own ring
        ring_of_buffers = BufferRing(aring.ring, 1, buffers, buffer_size)
        server = cls(aring, listener, ring_of_buffers)
        server._acceptor = asyncio.create_task(server._accept_forever())
        return server

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.listener.getsockname()[1])

    async def _accept_forever(self) -> None:
        while True:  # a multishot accept can end (errors, memory pressure): arm it again
            async with self.aring.multishot_accept(self.listener) as accepts:
                async for cqe in accepts:
                    if cqe.res < 0:
                        if cqe.res in (-errno.EMFILE, -errno.ENFILE):
                            await asyncio.sleep(0.01)
                        continue
                    task = asyncio.create_task(self._serve(cqe.res))
                    self._connections.add(task)
                    task.add_done_callback(self._connections.discard)

    async def _serve(self, fd: int) -> None:
        aring, buffers = self.aring, self.buffers
        try:
            while True:
                async with aring.recv_multishot(fd, buffers) as chunks:
                    async for cqe in chunks:
                        if cqe.res == 0:
                            return  # the client closed its side
                        if cqe.res == -errno.ENOBUFS:
                            self.buffer_shortages += 1
                            break  # every provided buffer is busy: take the slow path once
                        if cqe.res < 0:
                            return  # reset by peer and the like: drop the connection
                        try:
                            # Send straight from the provided buffer, then give it back.
                            await aring.sendall(fd, buffers.get(cqe))
                            self.bytes_echoed += cqe.res
                        finally:
                            buffers.put(cqe)
                # The multishot recv ended without EOF (no buffer was free, or the kernel
                # stopped it): one plain recv into our own memory, then arm it again.
                data = await aring.recv_bytes(fd, 65536)
                if not data:
                    return
                await aring.sendall(fd, data)
                self.bytes_echoed += len(data)
        except OSError:
            pass  # the connection broke; nothing to echo any more
        finally:
            self.connections_served += 1
            with contextlib.suppress(OSError):
                await aring.close_fd(fd)

    async def serve_forever(self) -> None:
        """Serves until cancelled."""
        assert self._acceptor is not None
        await self._acceptor

    async def aclose(self) -> None:
        """Stops accepting, drops open connections and closes the ring."""
        tasks = [t for t in (self._acceptor, *self._connections) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.listener.close()
        await self.aring.aclose()


async def _run(host: str, port: int, once: bool) -> None:
    server = await EchoServer.start(host, port)
    print(f"echo server listening on {host}:{server.port}", flush=True)
    try:
        if once:
            while server.connections_served == 0:
                await asyncio.sleep(0.01)
        else:
            await server.serve_forever()
    finally:
        await server.aclose()
        print(
            f"served {server.connections_served} connections, echoed {server.bytes_echoed} bytes",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8007)
    parser.add_argument("--once", action="store_true", help="exit after the first client")
    parser.add_argument(
        "--loop",
        choices=("iouring", "asyncio"),
        default="iouring",
        help="the event loop: iouring.aio.IoUringEventLoop (default) or asyncio's own",
    )
    args = parser.parse_args(argv)
    missing = missing_operations()
    if missing:
        print(f"echo_server: unsupported here: {', '.join(missing)}", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt):
        if args.loop == "iouring":
            iouring.aio.run(_run(args.host, args.port, args.once))
        else:
            asyncio.run(_run(args.host, args.port, args.once))
    return 0


if __name__ == "__main__":
    sys.exit(main())
