"""Helpers and fixtures shared by the operation tests.

Helpers (import them with ``from .conftest import ...``): the whole-SQE comparison of the Zig
tests (``sqe_fields``), addresses of buffers and of the iovec arrays the kernel reads, the
ring's counters, probe-based skips and the ways of reaping completions by user_data.
Fixtures: /dev/zero, and socket fixtures for the net and buffer tests (loopback listeners,
connected pairs through the ring as Zig's createSocketTestHarness, socketpairs and UDP pairs).
Every descriptor is closed at teardown; nothing here is autouse.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kernel_support import require_kernel
from sqe_support import (
    SQE_FIELDS,
    U64_MAX,
    addr_of,
    check_submit,
    iovecs_at,
    sq_counters,
    sqe_fields,
)

from iouring import Cqe, IoUring, Op

__all__ = [
    "SQE_FIELDS",
    "U64_MAX",
    "addr_of",
    "check_submit",
    "iovecs_at",
    "require_kernel",
    "require_ops",
    "sq_counters",
    "sqe_fields",
]


def require_ops(ring: IoUring, *ops: Op) -> None:
    """Skips the test unless the kernel's probe lists every one of ``ops``; the reason names
    the Linux release that added each missing one (IoUring.require_ops's message)."""
    try:
        ring.require_ops(*ops)
    except NotImplementedError as exc:
        pytest.skip(f"kernel lacks {exc}")


def register_or_skip(ring: IoUring, buffers: list[Any]) -> None:
    """register_buffers, skipping when RLIMIT_MEMLOCK is too low (ENOMEM, kernels < 5.12)."""
    try:
        ring.register_buffers(buffers)
    except OSError as exc:
        if exc.errno == errno.ENOMEM:
            pytest.skip(f"register_buffers: {exc} (RLIMIT_MEMLOCK too low)")
        raise


@dataclass
class SocketHarness:
    """A listener on 127.0.0.1 and a client/server pair connected through it by the ring."""

    listener: socket.socket
    server: socket.socket
    client: socket.socket


def tcp_listener_socket(backlog: int = 16) -> socket.socket:
    """A TCP socket listening on 127.0.0.1, port chosen by the kernel, with SO_REUSEADDR."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(backlog)
    except BaseException:
        listener.close()
        raise
    return listener


def reap(ring: IoUring, n: int) -> dict[int, Cqe]:
    """``n`` completions by user_data (each user_data at most once)."""
    got: dict[int, Cqe] = {}
    for _ in range(n):
        cqe = ring.copy_cqe(timeout=10)
        assert cqe.user_data not in got, (cqe, got)
        got[cqe.user_data] = cqe
    return got


def submit_and_reap(ring: IoUring, n: int) -> dict[int, Cqe]:
    """Submits, then reaps ``n`` completions by user_data (each user_data at most once)."""
    ring.submit()
    return reap(ring, n)


def run_one(ring: IoUring) -> Cqe:
    """Submits and returns the one completion."""
    return submit_and_reap(ring, 1).popitem()[1]


def reap_grouped(ring: IoUring, n: int) -> dict[int, list[Cqe]]:
    """``n`` completions grouped by user_data, in arrival order within each group (the order
    between unlinked SQEs is not guaranteed)."""
    got: dict[int, list[Cqe]] = {}
    for _ in range(n):
        cqe = ring.copy_cqe(timeout=10)
        got.setdefault(cqe.user_data, []).append(cqe)
    return got


@pytest.fixture
def dev_zero() -> Iterator[int]:
    """/dev/zero, open read-only."""
    fd = os.open("/dev/zero", os.O_RDONLY | os.O_CLOEXEC)
    yield fd
    os.close(fd)


class SocketRegistry:
    """Sockets made by the fixtures, closed at teardown."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []

    def add(self, sock: socket.socket) -> socket.socket:
        self.sockets.append(sock)
        return sock

    def close_all(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def sockets() -> Iterator[SocketRegistry]:
    """A registry whose sockets are closed at teardown (``sockets.add(sock)``)."""
    registry = SocketRegistry()
    yield registry
    registry.close_all()


@pytest.fixture
def tcp_listener(sockets: SocketRegistry) -> socket.socket:
    """A TCP socket listening on 127.0.0.1 (ephemeral port, SO_REUSEADDR, backlog 16)."""
    return sockets.add(tcp_listener_socket())


@pytest.fixture
def socket_harness(sockets: SocketRegistry) -> Callable[[IoUring], SocketHarness]:
    """``socket_harness(ring)``: Zig's createSocketTestHarness. A listener on 127.0.0.1, then
    an accept (0xaaaaaaaa) and a connect (0xcccccccc) submitted together on ``ring``; returns
    the listener, the accepted server socket and the client. Skips when the kernel lacks
    ACCEPT or CONNECT."""

    def make(ring: IoUring) -> SocketHarness:
        probe = ring.probe()
        missing = [op.name for op in (Op.ACCEPT, Op.CONNECT) if op not in probe]
        if missing:
            pytest.skip(f"kernel lacks {', '.join(missing)}")
        listener = sockets.add(tcp_listener_socket())
        client = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        ring.accept(0xAAAAAAAA, listener, flags=socket.SOCK_CLOEXEC)
        ring.connect(0xCCCCCCCC, client, listener.getsockname())
        ring.submit_and_wait(2)
        got = reap(ring, 2)
        assert got[0xCCCCCCCC] == Cqe(0xCCCCCCCC, 0, 0)
        accepted = got[0xAAAAAAAA]
        assert accepted.res > 2, accepted
        assert accepted.flags == 0
        server = sockets.add(socket.socket(fileno=accepted.res))
        return SocketHarness(listener, server, client)

    return make


@pytest.fixture
def socketpair(sockets: SocketRegistry) -> tuple[socket.socket, socket.socket]:
    """A connected AF_UNIX stream socketpair."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return sockets.add(a), sockets.add(b)


@pytest.fixture
def udp_pair(sockets: SocketRegistry) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets bound to 127.0.0.1 (ephemeral ports), each connected to the other."""
    a = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    b = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    a.connect(b.getsockname())
    b.connect(a.getsockname())
    return a, b
