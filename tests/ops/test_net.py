"""Socket operations: socket (+ direct), bind, listen, accept (+ direct, multishot), connect,
send/sendto/send_zc (+ fixed), recv, sendmsg/recvmsg (+ zc, zc fixed), shutdown, socket
commands.

Ports Zig's IoUring tests 10 (accept/connect/send/recv), 11 (sendmsg/recvmsg), 15
(accept/connect/recv/link_timeout), 18 (accept/connect/recv/cancel), 20 (shutdown), 29 (accept
multishot), 30 (send_zc), 31 (accept_direct), 32 (accept_multishot_direct), 33 (socket), 34
(socket_direct/socket_direct_alloc/close_direct) and 41 (bind/listen/connect), then covers
what the Zig suite lacks: addresses of every family, peer addresses, sendto, zero-copy
sendmsg, ancillary data, socket commands, argument validation and lifetimes.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import errno
import gc
import os
import re
import socket
import struct
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iouring import (
    FILE_INDEX_ALLOC,
    NOTIF_USAGE_ZC_COPIED,
    AcceptFlags,
    Cqe,
    CqeFlags,
    IoUring,
    Msghdr,
    Op,
    RecvSendFlags,
    SockAddr,
    SocketCmd,
    SqeFlags,
    _kernel,
)

from .conftest import (
    addr_of,
    check_submit,
    iovecs_at,
    reap_grouped,
    register_or_skip,
    require_ops,
    sq_counters,
    sqe_fields,
)


class CMsghdr(ctypes.Structure):
    """struct msghdr as the kernel reads it (x86_64/aarch64 layout)."""

    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


def msghdr_at(addr: int) -> CMsghdr:
    return CMsghdr.from_address(addr)


def without_nonempty(cqe: Cqe) -> Cqe:
    """The CQE with the SOCK_NONEMPTY hint cleared (Zig's tests ignore it)."""
    return Cqe(cqe.user_data, cqe.res, cqe.flags & ~int(CqeFlags.SOCK_NONEMPTY))


def cancel_and_reap(ring: IoUring, target: int, expected_results: tuple[int, ...]) -> Cqe:
    """Cancels the armed operation ``target`` and returns its final CQE."""
    if not hasattr(ring, "cancel"):
        pytest.skip("ring.cancel (ASYNC_CANCEL) is not available in this build")
    ring.cancel(0x0CA0CE1, target)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0x0CA0CE1][0].res in (0, -errno.ENOENT, -errno.EALREADY)
    final = got[target][-1]
    assert final.res in expected_results, final
    assert not final.flags & CqeFlags.MORE
    return final


def ring_unchanged(ring: IoUring) -> dict[str, int]:
    return {
        "sqe_tail": ring.sqe_tail,
        "sq_ready": ring.sq_ready(),
        "in_flight": ring.in_flight,
        "pinned": ring.pinned,
    }


def close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


# --------------------------------------------------------------------------------------------
# Zig ports


def test_accept_connect_send_recv(
    ring: IoUring, ring_config: Any, socket_harness: Callable[..., Any]
) -> None:
    h = socket_harness(ring)
    buffer_send = bytearray([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    buffer_recv = bytearray([0, 1, 0, 1, 0])

    sqe_send = ring.send(0xEEEEEEEE, h.client, buffer_send)
    sqe_send.flags |= SqeFlags.IO_LINK
    assert sqe_send.fields() == sqe_fields(
        opcode=Op.SEND,
        flags=SqeFlags.IO_LINK,
        fd=h.client.fileno(),
        addr=addr_of(buffer_send),
        len=10,
        user_data=0xEEEEEEEE,
    )
    sqe_recv = ring.recv(0xFFFFFFFF, h.server, buffer_recv)
    assert sqe_recv.fields() == sqe_fields(
        opcode=Op.RECV,
        fd=h.server.fileno(),
        addr=addr_of(buffer_recv),
        len=5,
        user_data=0xFFFFFFFF,
    )
    check_submit(ring, ring_config.sqpoll, 2)
    got = reap_grouped(ring, 2)
    assert got[0xEEEEEEEE] == [Cqe(0xEEEEEEEE, 10, 0)]
    assert without_nonempty(got[0xFFFFFFFF][0]) == Cqe(0xFFFFFFFF, 5, 0)
    assert buffer_recv == buffer_send[:5]


def test_sendmsg_recvmsg(make_ring: Callable[..., IoUring], ring_config: Any, sockets: Any) -> None:
    ring = make_ring(2)
    server = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind(("127.0.0.1", 0))
    client = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    client.bind(("127.0.0.1", 0))

    buffer_send = bytearray(b"\x09" * 128)
    msg_send = Msghdr([buffer_send], name=server.getsockname())
    sqe_sendmsg = ring.sendmsg(0x11111111, client, msg_send)
    sqe_sendmsg.flags |= SqeFlags.IO_LINK
    fields = sqe_sendmsg.fields()
    assert fields == sqe_fields(
        opcode=Op.SENDMSG,
        flags=SqeFlags.IO_LINK,
        fd=client.fileno(),
        addr=fields["addr"],
        len=1,
        user_data=0x11111111,
    )
    hdr = msghdr_at(fields["addr"])
    assert hdr.msg_namelen == 16
    assert ctypes.string_at(hdr.msg_name, 16) == bytes(SockAddr(server.getsockname()))
    assert iovecs_at(hdr.msg_iov, hdr.msg_iovlen) == [(addr_of(buffer_send), 128)]
    assert (hdr.msg_control, hdr.msg_controllen, hdr.msg_flags) == (None, 0, 0)

    buffer_recv = bytearray(128)
    msg_recv = Msghdr([buffer_recv], name=True)
    sqe_recvmsg = ring.recvmsg(0x22222222, server, msg_recv)
    fields = sqe_recvmsg.fields()
    assert fields == sqe_fields(
        opcode=Op.RECVMSG, fd=server.fileno(), addr=fields["addr"], len=1, user_data=0x22222222
    )
    hdr = msghdr_at(fields["addr"])
    assert hdr.msg_namelen == 128
    assert iovecs_at(hdr.msg_iov, hdr.msg_iovlen) == [(addr_of(buffer_recv), 128)]

    submitted = ring.submit_and_wait(2)
    if not ring_config.sqpoll:
        assert submitted == 2
    got = reap_grouped(ring, 2)
    assert got[0x11111111] == [Cqe(0x11111111, 128, 0)]
    assert without_nonempty(got[0x22222222][0]) == Cqe(0x22222222, 128, 0)
    assert buffer_recv == buffer_send
    assert msg_recv.namelen == 16
    assert msg_recv.name == SockAddr(client.getsockname())
    assert msg_recv.name.address == client.getsockname()
    assert msg_recv.flags == 0
    assert msg_recv.controllen == 0


def test_accept_connect_recv_link_timeout(
    ring: IoUring, socket_harness: Callable[..., Any]
) -> None:
    if not hasattr(ring, "link_timeout"):
        pytest.skip("ring.link_timeout is not available in this build")
    h = socket_harness(ring)
    buffer_recv = bytearray([0, 1, 0, 1, 0])
    sqe_recv = ring.recv(0xFFFFFFFF, h.server, buffer_recv)
    sqe_recv.flags |= SqeFlags.IO_LINK
    ring.link_timeout(0x22222222, 0.001)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0xFFFFFFFF][0].res in (-errno.EINTR, -errno.ECANCELED)
    assert got[0x22222222][0].res in (-errno.EALREADY, -errno.ETIME)


def test_accept_connect_recv_cancel(
    ring: IoUring, ring_config: Any, socket_harness: Callable[..., Any]
) -> None:
    if not hasattr(ring, "cancel"):
        pytest.skip("ring.cancel (ASYNC_CANCEL) is not available in this build")
    h = socket_harness(ring)
    buffer_recv = bytearray([0, 1, 0, 1, 0])
    ring.recv(0xFFFFFFFF, h.server, buffer_recv)
    check_submit(ring, ring_config.sqpoll, 1)
    sqe_cancel = ring.cancel(0x99999999, 0xFFFFFFFF)
    assert sqe_cancel.opcode == Op.ASYNC_CANCEL
    assert sqe_cancel.addr == 0xFFFFFFFF
    assert sqe_cancel.user_data == 0x99999999
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0xFFFFFFFF] == [Cqe(0xFFFFFFFF, -errno.ECANCELED, 0)]
    assert got[0x99999999] == [Cqe(0x99999999, 0, 0)]


def test_shutdown(ring: IoUring, ring_config: Any, sockets: Any) -> None:
    require_ops(ring, Op.SHUTDOWN)
    server = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    sqe = ring.shutdown(0x445445445, server, socket.SHUT_RD)
    assert sqe.fields() == sqe_fields(
        opcode=Op.SHUTDOWN, fd=server.fileno(), len=socket.SHUT_RD, user_data=0x445445445
    )
    check_submit(ring, ring_config.sqpoll, 1)
    cqe = ring.copy_cqe()
    if cqe.res == -errno.EINVAL:
        pytest.skip("kernel refuses SHUTDOWN")
    assert cqe == Cqe(0x445445445, 0, 0)

    unbound = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sqe = ring.shutdown(0x445445445, unbound, socket.SHUT_RD)
    assert sqe.opcode == Op.SHUTDOWN
    assert sqe.fd == unbound.fileno()
    check_submit(ring, ring_config.sqpoll, 1)
    assert ring.copy_cqe() == Cqe(0x445445445, -errno.ENOTCONN, 0)


def test_accept_multishot(ring: IoUring, tcp_listener: socket.socket, sockets: Any) -> None:
    peer = SockAddr()
    sqe = ring.multishot_accept(0xAAAAAAAA, tcp_listener, peer)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.ACCEPT,
        ioprio=AcceptFlags.MULTISHOT,
        fd=tcp_listener.fileno(),
        addr=fields["addr"],
        off=fields["off"],
        user_data=0xAAAAAAAA,
    )
    assert ctypes.c_uint32.from_address(fields["off"]).value == 128
    ring.submit()
    accepted = []
    try:
        for _ in range(4):
            client = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            client.connect(tcp_listener.getsockname())
            cqe = ring.copy_cqe(timeout=10)
            if cqe.res == -errno.EINVAL:
                pytest.skip("kernel refuses multishot accept")
            assert cqe.user_data == 0xAAAAAAAA
            assert cqe.res > 0
            accepted.append(cqe.res)
            assert cqe.flags == CqeFlags.MORE
            # The SockAddr is the kernel's output for every connection.
            assert peer.address == client.getsockname()
            client.close()
        assert ring.in_flight == 1
        assert ring.pinned == 1  # the SockAddr, until the final completion
        cancel_and_reap(ring, 0xAAAAAAAA, (-errno.ECANCELED,))
    finally:
        close_fds(*accepted)


def test_accept_connect_send_zc_recv(
    ring: IoUring, ring_config: Any, socket_harness: Callable[..., Any]
) -> None:
    require_ops(ring, Op.SEND_ZC)
    h = socket_harness(ring)
    buffer_send = bytearray([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    buffer_recv = bytearray([0, 1, 0, 1, 0])
    sqe_send = ring.send_zc(0xEEEEEEEE, h.client, buffer_send)
    sqe_send.flags |= SqeFlags.IO_LINK
    assert sqe_send.fields() == sqe_fields(
        opcode=Op.SEND_ZC,
        flags=SqeFlags.IO_LINK,
        fd=h.client.fileno(),
        addr=addr_of(buffer_send),
        len=10,
        user_data=0xEEEEEEEE,
    )
    ring.recv(0xFFFFFFFF, h.server, buffer_recv)
    check_submit(ring, ring_config.sqpoll, 2)
    got = reap_grouped(ring, 3)
    # First the result, flagged MORE (the buffer stays pinned), then the notification.
    assert got[0xEEEEEEEE] == [
        Cqe(0xEEEEEEEE, 10, CqeFlags.MORE),
        Cqe(0xEEEEEEEE, 0, CqeFlags.NOTIF),
    ]
    assert without_nonempty(got[0xFFFFFFFF][0]) == Cqe(0xFFFFFFFF, 5, 0)
    assert buffer_recv == buffer_send[:5]


def test_accept_direct(make_ring: Callable[..., IoUring], tcp_listener: socket.socket) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.ACCEPT)
    ring.register_files([-1, -1])
    data = bytes(range(1, 15))
    for _ in range(2):
        for _ in range(2):
            with socket.create_connection(tcp_listener.getsockname()) as client:
                sqe = ring.accept_direct(0xAAAAAAAA, tcp_listener)
                assert sqe.fields() == sqe_fields(
                    opcode=Op.ACCEPT,
                    fd=tcp_listener.fileno(),
                    splice_fd_in=-1,  # IORING_FILE_INDEX_ALLOC
                    user_data=0xAAAAAAAA,
                )
                ring.submit()
                cqe_accept = ring.copy_cqe(timeout=10)
                if cqe_accept.res == -errno.EINVAL:
                    pytest.skip("kernel refuses accept_direct")
                assert cqe_accept.user_data == 0xAAAAAAAA
                slot = cqe_accept.res
                assert 0 <= slot < 2
                client.sendall(data)
                buffer_recv = bytearray(32)
                sqe_recv = ring.recv(0xBBBBBBBB, slot, buffer_recv)
                sqe_recv.flags |= SqeFlags.FIXED_FILE
                ring.submit()
                cqe_recv = ring.copy_cqe(timeout=10)
                assert cqe_recv.user_data == 0xBBBBBBBB
                assert cqe_recv.res == len(data)
                assert buffer_recv[: len(data)] == data
        # The table is full: the next accept fails with ENFILE.
        with socket.create_connection(tcp_listener.getsockname()):
            ring.accept_direct(0xAAAAAAAA, tcp_listener)
            ring.submit()
            assert ring.copy_cqe(timeout=10) == Cqe(0xAAAAAAAA, -errno.ENFILE, 0)
        ring.register_files_update(0, [-1, -1])
    ring.unregister_files()


def test_accept_multishot_direct(
    make_ring: Callable[..., IoUring], tcp_listener: socket.socket
) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.ACCEPT)
    ring.register_files([-1, -1])
    for _ in range(2):
        sqe = ring.multishot_accept_direct(0xAAAAAAAA, tcp_listener)
        assert sqe.fields() == sqe_fields(
            opcode=Op.ACCEPT,
            ioprio=AcceptFlags.MULTISHOT,
            fd=tcp_listener.fileno(),
            splice_fd_in=-1,
            user_data=0xAAAAAAAA,
        )
        ring.submit()
        for _ in range(2):
            with socket.create_connection(tcp_listener.getsockname()):
                cqe = ring.copy_cqe(timeout=10)
                if cqe.res == -errno.EINVAL:
                    pytest.skip("kernel refuses multishot accept_direct")
                assert cqe.user_data == 0xAAAAAAAA
                assert 0 <= cqe.res < 2
                assert cqe.flags & CqeFlags.MORE
        # No free slot: ENFILE ends the multishot (MORE cleared).
        with socket.create_connection(tcp_listener.getsockname()):
            assert ring.copy_cqe(timeout=10) == Cqe(0xAAAAAAAA, -errno.ENFILE, 0)
        ring.register_files_update(0, [-1, -1])
    ring.unregister_files()


def test_socket(make_ring: Callable[..., IoUring], ring_config: Any) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.SOCKET)
    sqe = ring.socket(0, socket.AF_INET, socket.SOCK_STREAM, 0)
    assert sqe.fields() == sqe_fields(
        opcode=Op.SOCKET, fd=socket.AF_INET, off=socket.SOCK_STREAM, len=0
    )
    check_submit(ring, ring_config.sqpoll, 1)
    cqe = ring.copy_cqe()
    assert cqe.user_data == 0
    assert cqe.flags == 0
    assert cqe.res > 2
    with socket.socket(fileno=cqe.res) as sock:
        assert sock.family == socket.AF_INET
        assert sock.type == socket.SOCK_STREAM


def test_socket_direct_socket_direct_alloc_close_direct(
    make_ring: Callable[..., IoUring], tcp_listener: socket.socket
) -> None:
    ring = make_ring(2)
    require_ops(ring, Op.SOCKET)
    ring.register_files([-1, -1, -1])
    sqe = ring.socket_direct(0, socket.AF_INET, socket.SOCK_STREAM, 0, 0)
    assert sqe.fields() == sqe_fields(
        opcode=Op.SOCKET, fd=socket.AF_INET, off=socket.SOCK_STREAM, splice_fd_in=1
    )
    ring.submit()
    assert ring.copy_cqe() == Cqe(0, 0, 0)
    ring.socket_direct(0, socket.AF_INET, socket.SOCK_STREAM, 0, 1)
    ring.submit()
    assert ring.copy_cqe() == Cqe(0, 0, 0)
    sqe = ring.socket_direct_alloc(0, socket.AF_INET, socket.SOCK_STREAM)
    assert sqe.splice_fd_in == -1
    ring.submit()
    assert ring.copy_cqe() == Cqe(0, 2, 0)  # the allocated slot

    for slot in range(3):
        ring.accept(0xAAAAAAAA, tcp_listener)
        sqe_connect = ring.connect(0xBBBBBBBB, slot, tcp_listener.getsockname())
        sqe_connect.flags |= SqeFlags.FIXED_FILE
        ring.submit_and_wait(2)
        got = reap_grouped(ring, 2)
        assert got[0xBBBBBBBB] == [Cqe(0xBBBBBBBB, 0, 0)]
        accepted = got[0xAAAAAAAA][0]
        assert accepted.res > 2
        os.close(accepted.res)
        if hasattr(ring, "close_direct"):
            ring.close_direct(0xCCCCCCCC, slot)
            ring.submit()
            assert ring.copy_cqe() == Cqe(0xCCCCCCCC, 0, 0)
    ring.unregister_files()
    if not hasattr(ring, "close_direct"):
        pytest.skip("ring.close_direct is not available in this build (sockets checked)")


def _send_recv_through(ring: IoUring, send_fd: int, recv_fd: int) -> None:
    """Zig's testSendRecv: two sends with MSG_WAITALL, receives until all arrived."""
    buffer_send = b"0123456789abcdf" * 10
    buffer_recv = bytearray(len(buffer_send) * 2)
    ring.send(1, send_fd, buffer_send, socket.MSG_WAITALL)
    ring.send(2, send_fd, buffer_send, socket.MSG_WAITALL)
    ring.submit_and_wait(2)
    assert [ring.copy_cqe(), ring.copy_cqe()] == [
        Cqe(1, len(buffer_send), 0),
        Cqe(2, len(buffer_send), 0),
    ]
    received = 0
    view = memoryview(buffer_recv)
    while received < len(buffer_recv):
        ring.recv(3, recv_fd, view[received:])
        ring.submit_and_wait(1)
        cqe = ring.copy_cqe()
        assert cqe.user_data == 3
        assert cqe.res > 0, cqe
        received += cqe.res
    assert buffer_recv == buffer_send * 2


def test_bind_listen_connect(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(4)
    require_ops(ring, Op.LISTEN, Op.BIND, Op.SOCKET, Op.URING_CMD)
    ring.socket(1, socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, socket.IPPROTO_TCP)
    ring.submit_and_wait(1)
    cqe = ring.copy_cqe()
    assert cqe.user_data == 1
    listen_fd = cqe.res
    assert listen_fd > 2
    fds = [listen_fd]
    try:
        optval = struct.pack("i", 1)
        ring.setsockopt(
            2, listen_fd, socket.SOL_SOCKET, socket.SO_REUSEADDR, optval
        ).flags |= SqeFlags.IO_LINK
        ring.setsockopt(
            3, listen_fd, socket.SOL_SOCKET, socket.SO_REUSEPORT, optval
        ).flags |= SqeFlags.IO_LINK
        sqe_bind = ring.bind(4, listen_fd, ("127.0.0.1", 0))
        fields = sqe_bind.fields()
        assert fields == sqe_fields(
            opcode=Op.BIND, fd=listen_fd, addr=fields["addr"], off=16, user_data=4
        )
        assert ctypes.string_at(fields["addr"], 16) == bytes(SockAddr(("127.0.0.1", 0)))
        sqe_bind.flags |= SqeFlags.IO_LINK
        sqe_listen = ring.listen(5, listen_fd, 1)
        assert sqe_listen.fields() == sqe_fields(opcode=Op.LISTEN, fd=listen_fd, len=1, user_data=5)
        ring.submit_and_wait(4)
        cqes = [ring.copy_cqe() for _ in range(4)]
        if cqes[0].res in (-errno.EINVAL, -errno.EOPNOTSUPP):
            pytest.skip(f"kernel refuses socket commands: {os.strerror(-cqes[0].res)}")
        assert cqes == [Cqe(ud, 0, 0) for ud in (2, 3, 4, 5)]

        readback = bytearray(4)
        ring.getsockopt(5, listen_fd, socket.SOL_SOCKET, socket.SO_REUSEADDR, readback)
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(5, 4, 0)
        assert struct.unpack("i", readback)[0] == 1

        with socket.socket(fileno=os.dup(listen_fd)) as view:
            addr = view.getsockname()
        ring.socket(6, socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, socket.IPPROTO_TCP)
        ring.submit_and_wait(1)
        cqe = ring.copy_cqe()
        assert cqe.user_data == 6
        connect_fd = cqe.res
        assert connect_fd > 2
        fds.append(connect_fd)

        ring.accept(7, listen_fd)
        ring.connect(8, connect_fd, addr)
        ring.submit_and_wait(2)
        got = reap_grouped(ring, 2)
        assert got[8] == [Cqe(8, 0, 0)]
        accept_fd = got[7][0].res
        assert accept_fd > 2
        fds.append(accept_fd)

        _send_recv_through(ring, connect_fd, accept_fd)
        _send_recv_through(ring, accept_fd, connect_fd)

        for fd in (connect_fd, accept_fd, listen_fd):
            ring.shutdown(9, fd, socket.SHUT_RDWR).flags |= SqeFlags.IO_LINK
            ring.close_fd(10, fd)
            ring.submit_and_wait(2)
            assert [ring.copy_cqe(), ring.copy_cqe()] == [Cqe(9, 0, 0), Cqe(10, 0, 0)]
        fds.clear()
    finally:
        close_fds(*fds)


# --------------------------------------------------------------------------------------------
# Addresses


def test_accept_returns_peer_address(
    ring: IoUring, tcp_listener: socket.socket, sockets: Any
) -> None:
    peer = SockAddr()
    assert peer.family == socket.AF_UNSPEC
    assert peer.address is None
    ring.accept(0xAAAAAAAA, tcp_listener, peer, socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    client = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    ring.connect(0xCCCCCCCC, client, SockAddr(tcp_listener.getsockname()))
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0xCCCCCCCC] == [Cqe(0xCCCCCCCC, 0, 0)]
    server = sockets.add(socket.socket(fileno=got[0xAAAAAAAA][0].res))
    assert peer.family == socket.AF_INET
    assert peer.addrlen == 16
    assert peer.address == client.getsockname() == server.getpeername()
    assert not os.get_blocking(server.fileno())  # SOCK_NONBLOCK reached accept4


def _unix_listener(sockets: Any, address: str | bytes) -> socket.socket:
    listener: socket.socket = sockets.add(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    listener.bind(address)
    listener.listen(4)
    return listener


@pytest.mark.parametrize("family", ["inet", "inet6", "unix_path", "unix_pathlike", "abstract"])
def test_connect_every_family(ring: IoUring, sockets: Any, tmp_path: Path, family: str) -> None:
    if family == "inet":
        listener = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        listener.bind(("127.0.0.1", 0))
        address: Any = listener.getsockname()
    elif family == "inet6":
        if not socket.has_ipv6:
            pytest.skip("no IPv6")
        listener = sockets.add(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
        try:
            listener.bind(("::1", 0))
        except OSError as exc:
            pytest.skip(f"no IPv6 loopback: {exc}")
        address = listener.getsockname()
        assert len(address) == 4
    elif family in ("unix_path", "unix_pathlike"):
        path = tmp_path / "sock"
        listener = _unix_listener(sockets, str(path))
        address = str(path) if family == "unix_path" else path
    else:
        name = b"\0iouring-test-" + os.urandom(6).hex().encode()
        listener = _unix_listener(sockets, name)
        address = name
    if listener.family != socket.AF_UNIX:
        listener.listen(4)
    expected = SockAddr(address)
    assert expected.family == listener.family
    client = sockets.add(socket.socket(listener.family, socket.SOCK_STREAM))
    peer = SockAddr()
    ring.accept(0xAAAAAAAA, listener, peer)
    sqe = ring.connect(0xCCCCCCCC, client, address)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.CONNECT,
        fd=client.fileno(),
        addr=fields["addr"],
        off=expected.addrlen,
        user_data=0xCCCCCCCC,
    )
    assert ctypes.string_at(fields["addr"], expected.addrlen) == bytes(expected)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0xCCCCCCCC] == [Cqe(0xCCCCCCCC, 0, 0)]
    os.close(got[0xAAAAAAAA][0].res)
    if family in ("inet", "inet6"):
        assert peer.address == client.getsockname()
        assert SockAddr(listener.getsockname()).address == listener.getsockname()
    else:
        assert peer.family == socket.AF_UNIX


def test_connect_unix_missing_path_and_accept_unbound(
    ring: IoUring, sockets: Any, tmp_path: Path
) -> None:
    client = sockets.add(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    ring.connect(0x1, client, tmp_path / "missing")
    unbound = sockets.add(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    ring.accept(0x2, unbound)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0x1] == [Cqe(0x1, -errno.ENOENT, 0)]
    assert got[0x2] == [Cqe(0x2, -errno.EINVAL, 0)]


def test_sockaddr_values() -> None:
    a = SockAddr(("127.0.0.1", 8080))
    assert (a.family, a.addrlen, a.address) == (socket.AF_INET, 16, ("127.0.0.1", 8080))
    assert bytes(a)[:4] == struct.pack("=H", socket.AF_INET) + struct.pack("!H", 8080)
    assert repr(a) == "SockAddr(('127.0.0.1', 8080))"
    assert SockAddr(("", 1)).address == ("0.0.0.0", 1)
    assert SockAddr(("<broadcast>", 1)).address == ("255.255.255.255", 1)
    six = SockAddr(("::1", 9, 5, 3))
    assert (six.family, six.addrlen, six.address) == (socket.AF_INET6, 28, ("::1", 9, 5, 3))
    assert SockAddr(("::1", 9)).address == ("::1", 9, 0, 0)
    assert SockAddr(("", 9, 0, 0)).address == ("::", 9, 0, 0)
    unix = SockAddr("/tmp/x")
    assert (unix.family, unix.addrlen, unix.address) == (socket.AF_UNIX, 2 + 6, "/tmp/x")
    assert SockAddr(b"/tmp/x") == unix
    assert SockAddr(Path("/tmp/x")) == unix
    abstract = SockAddr(b"\0name")
    assert (abstract.addrlen, abstract.address) == (2 + 5, b"\0name")
    assert SockAddr("\0name") == abstract
    assert SockAddr.from_bytes(bytes(a)) == a
    assert SockAddr.from_bytes(bytes(a)).address == ("127.0.0.1", 8080)
    assert SockAddr(a) == a
    assert SockAddr() != a
    assert SockAddr().address is None
    # Addresses of other families come back raw.
    raw = struct.pack("=H", socket.AF_PACKET) + bytes(18)
    assert SockAddr.from_bytes(raw).address == raw
    assert SockAddr.from_bytes(raw).family == socket.AF_PACKET
    with pytest.raises(TypeError):
        hash(a)


@pytest.mark.parametrize(
    ("address", "exc", "match"),
    [
        (("localhost", 80), ValueError, "numeric"),
        (("127.0.0.1", 65536), OverflowError, "port"),
        (("127.0.0.1", -1), OverflowError, "port"),
        (("127.0.0.1",), ValueError, "tuple of 1"),
        (("::1", 1, 2, 3, 4), ValueError, "tuple of 5"),
        ((b"127.0.0.1", 80), TypeError, "host must be a str"),
        (("127.0.0.1", "80"), TypeError, "port"),
        (("::1", 1, 1 << 20), OverflowError, "flowinfo"),
        (("::1", 1, 0, -1), OverflowError, "scope_id"),
        ("/" + "x" * 108, ValueError, "too long"),
        (b"\0" + b"x" * 108, ValueError, "too long"),
        (12, TypeError, "must be a"),
        ([("127.0.0.1", 1)], TypeError, "must be a"),
        (SockAddr(), ValueError, "empty SockAddr"),
    ],
)
def test_bad_addresses_leave_the_ring_untouched(
    ring: IoUring, sockets: Any, address: Any, exc: type[Exception], match: str
) -> None:
    sock = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    before = ring_unchanged(ring)
    with pytest.raises(exc, match=match):
        ring.connect(1, sock, address)
    with pytest.raises(exc, match=match):
        ring.bind(1, sock, address)
    with pytest.raises(exc, match=match):
        ring.sendto(1, sock, b"x", address)
    with pytest.raises(exc, match=match):
        ring.get_sqe().prep_connect(1, sock, address)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0, 0, 0)  # the get_sqe() NOP
    assert ring_unchanged(ring)["pinned"] == before["pinned"] == 0
    assert ring.in_flight == 0
    if not isinstance(address, tuple) or len(address) < 2:
        return
    with pytest.raises(exc, match=match):
        Msghdr([b"x"], name=address)


# --------------------------------------------------------------------------------------------
# send / recv / sendto / send_zc


def test_send_recv_socketpair_flags(ring: IoUring, socketpair: Any) -> None:
    a, b = socketpair
    data = bytearray(b"hello world")
    peek = bytearray(5)
    got_buf = bytearray(32)
    sqe = ring.send(0x51, a, data, socket.MSG_NOSIGNAL, ioprio=RecvSendFlags.POLL_FIRST)
    assert sqe.fields() == sqe_fields(
        opcode=Op.SEND,
        ioprio=RecvSendFlags.POLL_FIRST,
        fd=a.fileno(),
        addr=addr_of(data),
        len=len(data),
        rw_flags=socket.MSG_NOSIGNAL,
        user_data=0x51,
    )
    sqe.flags |= SqeFlags.IO_LINK
    sqe = ring.recv(0x52, b, peek, socket.MSG_PEEK)
    assert sqe.rw_flags == socket.MSG_PEEK
    sqe.flags |= SqeFlags.IO_LINK
    ring.recv(0x53, b, got_buf)
    ring.submit_and_wait(3)
    got = reap_grouped(ring, 3)
    assert got[0x51] == [Cqe(0x51, 11, 0)]
    assert without_nonempty(got[0x52][0]) == Cqe(0x52, 5, 0)
    assert got[0x53][0].res == 11
    assert peek == b"hello"
    assert got_buf[:11] == data


_Part = bytearray | np.ndarray[Any, Any]


def check_send_vectorized_sqe(fields: dict[str, int], fd: int, parts: list[_Part], ud: int) -> None:
    """The whole SQE of a send_vectorized: Op.SEND with RecvSendFlags.SEND_VECTORIZED in ioprio,
    addr/len naming a private iovec array of `parts` (MSG_NOSIGNAL in rw_flags)."""
    assert iovecs_at(fields["addr"], len(parts)) == [(addr_of(p), len(p)) for p in parts]
    vectorized: dict[str, int] = {"opcode": Op.SEND, "ioprio": RecvSendFlags.SEND_VECTORIZED}
    assert fields == sqe_fields(
        fd=fd,
        addr=fields["addr"],
        len=len(parts),
        rw_flags=socket.MSG_NOSIGNAL,
        user_data=ud,
        **vectorized,
    )


def test_send_vectorized_socketpair(ring: IoUring, socketpair: Any) -> None:
    """send_vectorized sends its buffers in order as one send (Linux 6.17+; older kernels
    refuse the unknown ioprio bit with -EINVAL), keeping them pinned until the completion."""
    a, b = socketpair
    first = bytearray(b"vector")
    parts: list[_Part] = [first, np.frombuffer(b"ized ", dtype=np.uint8), bytearray(b"send")]
    sqe = ring.send_vectorized(0x5EC7, a, parts, socket.MSG_NOSIGNAL)
    check_send_vectorized_sqe(sqe.fields(), a.fileno(), parts, 0x5EC7)
    with pytest.raises(BufferError):  # pinned until the completion is reaped
        first.extend(b"!")
    ring.submit()
    cqe = ring.copy_cqe(timeout=10)
    if cqe.res == -errno.EINVAL:
        pytest.skip("kernel lacks IORING_SEND_VECTORIZED (Linux 6.17+): send refused with EINVAL")
    assert cqe == Cqe(0x5EC7, 15, 0)
    assert ring.pinned == 0
    first.extend(b"!")  # released
    b.settimeout(10)
    assert b.recv(64) == b"vectorized send"


def test_send_vectorized_prep_matches_ring_method(ring: IoUring, socketpair: Any) -> None:
    a, _ = socketpair
    parts: list[_Part] = [bytearray(b"ab"), bytearray(b"cd")]
    via_ring = ring.send_vectorized(1, a, parts, socket.MSG_NOSIGNAL).fields()
    via_prep = ring.get_sqe().prep_send_vectorized(1, a, parts, socket.MSG_NOSIGNAL).fields()
    check_send_vectorized_sqe(via_ring, a.fileno(), parts, 1)
    check_send_vectorized_sqe(via_prep, a.fileno(), parts, 1)
    ring.submit_and_wait(2)
    assert sorted(reap_grouped(ring, 2)) == [1]
    assert ring.pinned == 0


@pytest.mark.parametrize(
    ("buffers", "flags", "error", "needle"),
    [
        pytest.param(5, 0, TypeError, "buffers", id="not-a-sequence"),
        pytest.param(
            [bytearray(2), 7], 0, TypeError, "buffers must be a bytes-like", id="not-a-buffer"
        ),
        pytest.param([bytearray(1)] * 1025, 0, ValueError, "buffers", id="too-many"),
        pytest.param([bytearray(1)], 2**32, OverflowError, "flags", id="huge-flags"),
        pytest.param([bytearray(1)], "x", TypeError, "flags", id="str-flags"),
    ],
)
def test_send_vectorized_bad_input(
    ring: IoUring,
    socketpair: Any,
    buffers: Any,
    flags: Any,
    error: type[Exception],
    needle: str,
) -> None:
    a, _ = socketpair
    before = sq_counters(ring)
    with pytest.raises(error, match=re.escape(needle)):
        ring.send_vectorized(1, a, buffers, flags)
    assert sq_counters(ring) == before
    ring.send_vectorized(2, a, [bytearray(b"ok")])  # the ring stays usable
    ring.submit_and_wait(1)
    assert ring.copy_cqe(timeout=10).user_data == 2
    assert ring.pinned == 0


def test_sendto_and_recvmsg_source(ring: IoUring, sockets: Any) -> None:
    server = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind(("127.0.0.1", 0))
    client = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    client.bind(("127.0.0.1", 0))
    data = b"datagram"
    sqe = ring.sendto(0x61, client, data, server.getsockname())
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.SEND,
        fd=client.fileno(),
        addr=fields["addr"],
        len=len(data),
        off=fields["off"],
        splice_fd_in=16,  # addr_len
        user_data=0x61,
    )
    assert ctypes.string_at(fields["addr"], len(data)) == data
    assert ctypes.string_at(fields["off"], 16) == bytes(SockAddr(server.getsockname()))
    sqe.flags |= SqeFlags.IO_LINK
    buf = bytearray(64)
    msg = Msghdr([buf], name=True)
    ring.recvmsg(0x62, server, msg)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0x61] == [Cqe(0x61, len(data), 0)]
    assert got[0x62][0].res == len(data)
    assert buf[: len(data)] == data
    assert msg.name is not None
    assert msg.name.address == client.getsockname()


def test_send_zc_to_address_report_usage(ring: IoUring, sockets: Any) -> None:
    require_ops(ring, Op.SEND_ZC)
    server = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind(("127.0.0.1", 0))
    client = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    data = bytearray(b"zero-copy" * 10)
    zc = RecvSendFlags.SEND_ZC_REPORT_USAGE
    sqe = ring.send_zc(0x71, client, data, 0, zc, addr=server.getsockname())
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.SEND_ZC,
        ioprio=zc,
        fd=client.fileno(),
        addr=addr_of(data),
        len=len(data),
        off=fields["off"],
        splice_fd_in=16,
        user_data=0x71,
    )
    ring.submit()
    first = ring.copy_cqe(timeout=10)
    if first.res == -errno.EINVAL:
        ring.copy_cqe(timeout=10) if first.flags & CqeFlags.MORE else None
        pytest.skip("kernel refuses send_zc with an address")
    assert first == Cqe(0x71, len(data), CqeFlags.MORE)
    notif = ring.copy_cqe(timeout=10)
    assert notif.user_data == 0x71
    assert notif.flags == CqeFlags.NOTIF
    # Loopback delivery copies the data; the kernel says so when asked.
    # res is an i32: the bit reads as a negative res, and as the bit when masked.
    assert notif.res & 0xFFFFFFFF in (0, NOTIF_USAGE_ZC_COPIED)
    assert (notif.res & NOTIF_USAGE_ZC_COPIED != 0) == (notif.res < 0)
    assert server.recv(256) == data


def test_sendmsg_zc_two_completions(ring: IoUring, udp_pair: Any) -> None:
    require_ops(ring, Op.SENDMSG_ZC)
    a, b = udp_pair
    parts = [bytearray(b"first-"), bytearray(b"second")]
    msg = Msghdr(parts)
    sqe = ring.sendmsg_zc(0x81, a, msg)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.SENDMSG_ZC, fd=a.fileno(), addr=fields["addr"], len=1, user_data=0x81
    )
    assert iovecs_at(msghdr_at(fields["addr"]).msg_iov, 2) == [
        (addr_of(parts[0]), 6),
        (addr_of(parts[1]), 6),
    ]
    ring.submit()
    assert ring.copy_cqe(timeout=10) == Cqe(0x81, 12, CqeFlags.MORE)
    assert ring.pinned == 1  # the Msghdr, until the notification
    assert ring.copy_cqe(timeout=10) == Cqe(0x81, 0, CqeFlags.NOTIF)
    assert ring.pinned == 0
    assert b.recv(64) == b"first-second"


# send_zc_fixed / sendmsg_zc_fixed: zero-copy sends from registered buffers


def test_send_zc_fixed(ring: IoUring, socket_harness: Callable[..., Any]) -> None:
    require_ops(ring, Op.SEND_ZC)
    h = socket_harness(ring)
    reg = bytearray(b"....registered, zero-copy!......")
    register_or_skip(ring, [bytearray(8), reg])
    sqe = ring.send_zc_fixed(0xEEEEEEEE, h.client, memoryview(reg)[4:26], 1)
    assert sqe.fields() == sqe_fields(
        opcode=Op.SEND_ZC,
        ioprio=RecvSendFlags.FIXED_BUF,
        fd=h.client.fileno(),
        addr=addr_of(reg) + 4,
        len=22,
        buf_index=1,
        user_data=0xEEEEEEEE,
    )
    ring.submit()
    first = ring.copy_cqe(timeout=10)
    if first.res in (-errno.EINVAL, -errno.EOPNOTSUPP):
        ring.copy_cqe(timeout=10) if first.flags & CqeFlags.MORE else None
        pytest.skip(f"kernel refuses send_zc_fixed: {os.strerror(-first.res)}")
    assert first == Cqe(0xEEEEEEEE, 22, CqeFlags.MORE)
    if ring.pinned and _kernel.older_than("6.13"):
        # Before 6.13 the kernel waits for the notification to unregister: refused instead.
        with pytest.raises(BlockingIOError, match="0xeeeeeeee"):
            ring.unregister_buffers()
    elif ring.pinned:  # the notification may already be in the CQ, but not reaped
        # The registration stays alive until the notification, even once unregistered.
        pinned = ring.pinned
        ring.unregister_buffers()
        # Nothing is released; the one operation in flight also holds the retired table.
        assert ring.pinned == pinned + 1
    assert ring.copy_cqe(timeout=10) == Cqe(0xEEEEEEEE, 0, CqeFlags.NOTIF)
    assert ring.pinned == 0
    assert h.server.recv(64) == b"registered, zero-copy!"


def test_send_zc_fixed_prep_matches_ring_method(
    ring: IoUring, socket_harness: Callable[..., Any]
) -> None:
    require_ops(ring, Op.SEND_ZC)
    h = socket_harness(ring)
    reg = np.frombuffer(b"abcdefghijklmnop", dtype=np.uint8).copy()
    register_or_skip(ring, [reg])
    zc = RecvSendFlags.POLL_FIRST
    by_ring = ring.send_zc_fixed(0x5E, h.client, reg[0:8], 0, 0, zc)
    sqe = ring.get_sqe()
    assert sqe.prep_send_zc_fixed(0x5E, h.client, reg[8:16], 0, 0, zc) is sqe
    f_ring, f_prep = by_ring.fields(), sqe.fields()
    assert (f_ring["addr"], f_prep["addr"]) == (reg.ctypes.data, reg.ctypes.data + 8)
    assert f_ring == sqe_fields(
        opcode=Op.SEND_ZC,
        ioprio=RecvSendFlags.FIXED_BUF | zc,
        fd=h.client.fileno(),
        addr=reg.ctypes.data,
        len=8,
        user_data=0x5E,
    )
    assert f_prep == {**f_ring, "addr": reg.ctypes.data + 8}
    ring.submit()
    cqes = [ring.copy_cqe(timeout=10) for _ in range(4)]
    if cqes[0].res in (-errno.EINVAL, -errno.EOPNOTSUPP):
        pytest.skip(f"kernel refuses send_zc_fixed: {os.strerror(-cqes[0].res)}")
    assert sorted((c.res, c.flags) for c in cqes) == [
        (0, CqeFlags.NOTIF),
        (0, CqeFlags.NOTIF),
        (8, CqeFlags.MORE),
        (8, CqeFlags.MORE),
    ]
    data = b""
    while len(data) < 16:
        data += h.server.recv(64)
    # Two unlinked sends: either may go first (6.1 sends the second first).
    assert data in (b"abcdefghijklmnop", b"ijklmnopabcdefgh")
    ring.unregister_buffers()


def test_sendmsg_zc_fixed(ring: IoUring, socket_harness: Callable[..., Any]) -> None:
    require_ops(ring, Op.SENDMSG_ZC)
    h = socket_harness(ring)
    reg = bytearray(b"first-......second")
    register_or_skip(ring, [reg])
    view = memoryview(reg)
    msg = Msghdr([view[0:6], view[12:18]])
    sqe = ring.sendmsg_zc_fixed(0x8F, h.client, msg, 0)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.SENDMSG_ZC,
        ioprio=RecvSendFlags.FIXED_BUF,
        fd=h.client.fileno(),
        addr=fields["addr"],
        len=1,
        user_data=0x8F,
    )
    assert iovecs_at(msghdr_at(fields["addr"]).msg_iov, 2) == [
        (addr_of(reg), 6),
        (addr_of(reg) + 12, 6),
    ]
    ring.submit()
    first = ring.copy_cqe(timeout=10)
    if first.res in (-errno.EINVAL, -errno.EOPNOTSUPP):
        ring.copy_cqe(timeout=10) if first.flags & CqeFlags.MORE else None
        pytest.skip(f"kernel refuses sendmsg_zc_fixed (6.15+): {os.strerror(-first.res)}")
    assert first == Cqe(0x8F, 12, CqeFlags.MORE)
    assert ring.copy_cqe(timeout=10) == Cqe(0x8F, 0, CqeFlags.NOTIF)
    assert ring.pinned == 0
    assert h.server.recv(64) == b"first-second"
    ring.unregister_buffers()


def test_fixed_sends_refuse_memory_outside_the_registration(
    ring: IoUring, make_default_ring: Callable[..., IoUring], sockets: Any
) -> None:
    sock = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    reg = bytearray(32)
    register_or_skip(ring, [reg])
    view = memoryview(reg)
    bare = make_default_ring(2)
    untyped: Any = ring  # some calls pass wrong types on purpose
    calls: list[tuple[Callable[[], Any], type[Exception], str]] = [
        (lambda: ring.send_zc_fixed(1, sock, b"x", 0), ValueError, "buffer must lie inside"),
        (lambda: ring.send_zc_fixed(1, sock, view[16:], 1), ValueError, "buffer_index 1 is out"),
        (lambda: ring.send_zc_fixed(1, sock, view, -1), OverflowError, "buffer_index"),
        (lambda: untyped.send_zc_fixed(1, sock, "x", 0), TypeError, "buffer"),
        (
            lambda: ring.send_zc_fixed(1, sock, view, 0, 0, RecvSendFlags.FIXED_BUF),
            ValueError,
            "zc_flags",
        ),
        (lambda: untyped.send_zc_fixed(1, sock, view, 0, addr=1.5), TypeError, "addr"),
        (lambda: bare.send_zc_fixed(1, sock, view, 0), ValueError, "no buffers are registered"),
        (
            lambda: ring.sendmsg_zc_fixed(1, sock, Msghdr([view[0:4], b"out"]), 0),
            ValueError,
            r"msg buffers\[1\] must lie inside",
        ),
        (lambda: untyped.sendmsg_zc_fixed(1, sock, [view], 0), TypeError, "Msghdr"),
        (
            lambda: ring.sendmsg_zc_fixed(1, sock, Msghdr([view]), 3),
            ValueError,
            "buffer_index 3",
        ),
        (
            lambda: bare.sendmsg_zc_fixed(1, sock, Msghdr([view]), 0),
            ValueError,
            "no buffers are registered",
        ),
    ]
    before, bare_before = ring_unchanged(ring), ring_unchanged(bare)
    for call, exc, match in calls:
        with pytest.raises(exc, match=match):
            call()
        assert (ring_unchanged(ring), ring_unchanged(bare)) == (before, bare_before)
    sqe = ring.get_sqe()
    with pytest.raises(ValueError, match="must lie inside"):
        sqe.prep_send_zc_fixed(1, sock, bytearray(4), 0)
    with pytest.raises(ValueError, match="must lie inside"):
        sqe.prep_sendmsg_zc_fixed(1, sock, Msghdr([bytearray(4)]), 0)
    assert sqe.opcode == Op.NOP
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0, 0, 0)
    ring.unregister_buffers()


def test_shutdown_write_side_ends_peer_stream(ring: IoUring, socketpair: Any) -> None:
    a, b = socketpair
    ring.shutdown(0x91, a, socket.SHUT_WR).flags |= SqeFlags.IO_LINK
    buf = bytearray(8)
    ring.recv(0x92, b, buf)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0x91] == [Cqe(0x91, 0, 0)]
    assert got[0x92] == [Cqe(0x92, 0, 0)]  # end of stream


# --------------------------------------------------------------------------------------------
# msghdr: iovecs, names and control data


def test_sendmsg_recvmsg_scm_rights(ring: IoUring, socketpair: Any, tmp_path: Path) -> None:
    a, b = socketpair
    passed = os.open(tmp_path / "passed", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        os.write(passed, b"through the socket")
        fds = array.array("i", [passed])
        msg_send = Msghdr([b"fd:"], control=[(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        space = socket.CMSG_SPACE(fds.itemsize)
        assert msg_send.control_capacity == space
        assert msg_send.ancdata == [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())]
        buf = bytearray(16)
        msg_recv = Msghdr([buf], control=space)
        ring.sendmsg(0xA1, a, msg_send).flags |= SqeFlags.IO_LINK
        sqe = ring.recvmsg(0xA2, b, msg_recv, socket.MSG_CMSG_CLOEXEC)
        hdr = msghdr_at(sqe.addr)
        assert hdr.msg_controllen == space
        assert hdr.msg_control is not None
        ring.submit_and_wait(2)
        got = reap_grouped(ring, 2)
        assert got[0xA1] == [Cqe(0xA1, 3, 0)]
        assert got[0xA2][0].res == 3
        assert buf[:3] == b"fd:"
        assert msg_recv.flags & ~socket.MSG_CMSG_CLOEXEC == 0  # no MSG_CTRUNC
        assert msg_recv.controllen == space
        ((level, kind, data),) = msg_recv.ancdata
        assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
        (received,) = array.array("i", data)
        try:
            assert received != passed
            assert os.pread(received, 64, 0) == b"through the socket"
        finally:
            os.close(received)
    finally:
        os.close(passed)


def test_recvmsg_reports_truncation(ring: IoUring, udp_pair: Any) -> None:
    a, b = udp_pair
    a.send(b"0123456789")
    buf = bytearray(4)
    msg = Msghdr([buf], name=4)  # less room than a sockaddr_in
    ring.recvmsg(0xB1, b, msg)
    ring.submit_and_wait(1)
    assert without_nonempty(ring.copy_cqe()) == Cqe(0xB1, 4, 0)
    assert buf == b"0123"
    assert msg.flags & socket.MSG_TRUNC
    assert msg.namelen == 16  # the full length, though only 4 bytes fit
    assert msg.name is not None
    assert msg.name.family == socket.AF_INET
    assert msg.name.addrlen == 4
    # A new operation starts from the full room again.
    a.send(b"xy")
    sqe = ring.recvmsg(0xB2, b, msg)
    assert msghdr_at(sqe.addr).msg_namelen == 4
    assert msghdr_at(sqe.addr).msg_flags == 0
    ring.submit_and_wait(1)
    assert ring.copy_cqe().res == 2
    assert msg.flags == 0


def test_msghdr_values() -> None:
    buffers: list[Any] = [bytearray(3), memoryview(bytearray(5))]
    msg = Msghdr(buffers, name=("10.0.0.1", 5), control=[(1, 2, b"abc"), (3, 4, b"")])
    assert msg.buffers == tuple(buffers)
    assert msg.name == SockAddr(("10.0.0.1", 5))
    assert msg.namelen == msg.name_capacity == 16
    assert msg.control_capacity == socket.CMSG_SPACE(3) + socket.CMSG_SPACE(0)
    assert msg.ancdata == [(1, 2, b"abc"), (3, 4, b"")]
    assert msg.flags == 0
    assert "buffers=2" in repr(msg)
    empty = Msghdr()
    assert (empty.buffers, empty.name, empty.control, empty.ancdata) == ((), None, b"", [])
    assert Msghdr(name=False).name is None
    reserved = Msghdr(control=bytearray(24), name=True)
    assert (reserved.name_capacity, reserved.control_capacity) == (128, 24)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"buffers": b"abc"}, TypeError, "sequence of bytes-like"),
        ({"buffers": "abc"}, TypeError, "sequence of bytes-like"),
        ({"buffers": [1]}, TypeError, "bytes-like"),
        ({"buffers": [bytearray(1)] * 1025}, ValueError, "IOV_MAX"),
        ({"name": 0}, OverflowError, "name"),
        ({"name": 129}, OverflowError, "name"),
        ({"name": 1.5}, TypeError, "must be a"),
        ({"control": -1}, OverflowError, "control"),
        ({"control": 1.5}, TypeError, "control must be"),
        ({"control": [(1, 2)]}, TypeError, r"\(level, type, data\)"),
        ({"control": [(1, 2, 3)]}, TypeError, "bytes-like"),
    ],
)
def test_msghdr_bad_arguments(kwargs: dict[str, Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        Msghdr(**kwargs)


# --------------------------------------------------------------------------------------------
# socket commands


def test_cmd_sock_siocinq_siocoutq(ring: IoUring, socket_harness: Callable[..., Any]) -> None:
    require_ops(ring, Op.URING_CMD)
    h = socket_harness(ring)
    h.client.sendall(b"12345")
    sqe = ring.cmd_sock(0xC1, SocketCmd.SIOCINQ, h.server)
    assert sqe.fields() == sqe_fields(
        opcode=Op.URING_CMD, fd=h.server.fileno(), off=SocketCmd.SIOCINQ, user_data=0xC1
    )
    ring.cmd_sock(0xC2, SocketCmd.SIOCOUTQ, h.client)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    if got[0xC1][0].res in (-errno.EOPNOTSUPP, -errno.EINVAL):
        pytest.skip(f"kernel refuses socket commands: {os.strerror(-got[0xC1][0].res)}")
    # The data may still be on its way through loopback.
    assert 0 <= got[0xC1][0].res <= 5
    assert 0 <= got[0xC2][0].res <= 5


def test_getsockopt_setsockopt_layout(ring: IoUring, sockets: Any) -> None:
    require_ops(ring, Op.URING_CMD)
    sock = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sqe = ring.setsockopt(0xD1, sock, socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.URING_CMD,
        fd=sock.fileno(),
        off=SocketCmd.SETSOCKOPT,
        addr=socket.SOL_SOCKET | socket.SO_RCVBUF << 32,
        splice_fd_in=4,
        addr3=fields["addr3"],
        user_data=0xD1,
    )
    assert ctypes.c_int.from_address(fields["addr3"]).value == 65536  # a private copy
    sqe.flags |= SqeFlags.IO_LINK
    value = np.zeros(1, dtype=np.int32)
    sqe = ring.getsockopt(0xD2, sock, socket.SOL_SOCKET, socket.SO_RCVBUF, value)
    assert sqe.fields() == sqe_fields(
        opcode=Op.URING_CMD,
        fd=sock.fileno(),
        off=SocketCmd.GETSOCKOPT,
        addr=socket.SOL_SOCKET | socket.SO_RCVBUF << 32,
        splice_fd_in=4,
        addr3=addr_of(value),
        user_data=0xD2,
    )
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    if got[0xD1][0].res in (-errno.EOPNOTSUPP, -errno.EINVAL):
        ring_res = got[0xD1][0].res
        pytest.skip(f"kernel refuses socket commands: {os.strerror(-ring_res)}")
    assert got[0xD1] == [Cqe(0xD1, 0, 0)]
    assert got[0xD2] == [Cqe(0xD2, 4, 0)]
    assert int(value[0]) == sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert int(value[0]) >= 65536  # Linux doubles it


def test_setsockopt_bytes_and_raw_cmd_sock(ring: IoUring, sockets: Any) -> None:
    require_ops(ring, Op.URING_CMD)
    sock = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    ring.cmd_sock(
        0xE1,
        SocketCmd.SETSOCKOPT,
        sock,
        socket.IPPROTO_TCP,
        socket.TCP_NODELAY,
        struct.pack("i", 1),
    )
    ring.submit_and_wait(1)
    cqe = ring.copy_cqe()
    if cqe.res in (-errno.EOPNOTSUPP, -errno.EINVAL):
        pytest.skip(f"kernel refuses socket commands: {os.strerror(-cqe.res)}")
    assert cqe == Cqe(0xE1, 0, 0)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


# --------------------------------------------------------------------------------------------
# argument validation: refused before the ring is touched


def _bad_calls(sock: socket.socket) -> list[tuple[str, Callable[[Any], Any], type[Exception], str]]:
    ro = b"read-only"
    return [
        ("recv read-only", lambda r: r.recv(1, sock, ro), TypeError, "writable"),
        ("recv no buffer", lambda r: r.recv(1, sock, 12), TypeError, "bytes-like"),
        ("send str", lambda r: r.send(1, sock, "text"), TypeError, "bytes-like"),
        ("send bad fd", lambda r: r.send(1, "fd", b"x"), TypeError, "fd"),
        ("send user_data", lambda r: r.send(-1, sock, b"x"), OverflowError, "user_data"),
        (
            "send ioprio",
            lambda r: r.send(1, sock, b"x", ioprio=RecvSendFlags.FIXED_BUF),
            ValueError,
            "ioprio",
        ),
        (
            "recv ioprio",
            lambda r: r.recv(1, sock, bytearray(1), ioprio=1 << 15),
            ValueError,
            "ioprio",
        ),
        ("accept addr", lambda r: r.accept(1, sock, bytearray(16)), TypeError, "SockAddr"),
        (
            "accept ioprio",
            lambda r: r.accept(1, sock, ioprio=AcceptFlags.MULTISHOT),
            ValueError,
            "ioprio",
        ),
        ("accept flags", lambda r: r.accept(1, sock, None, -1), OverflowError, "flags"),
        ("sendmsg msg", lambda r: r.sendmsg(1, sock, [b"x"]), TypeError, "Msghdr"),
        ("recvmsg read-only", lambda r: r.recvmsg(1, sock, Msghdr([b"x"])), TypeError, "writable"),
        (
            "recvmsg control",
            lambda r: r.recvmsg(1, sock, Msghdr([bytearray(1)], control=b"xx")),
            TypeError,
            "control",
        ),
        (
            "send_zc flags",
            lambda r: r.send_zc(1, sock, b"x", 0, RecvSendFlags.BUNDLE),
            ValueError,
            "zc_flags",
        ),
        (
            "send_zc addr",
            lambda r: r.send_zc(1, sock, b"x", addr=("nowhere", 1)),
            ValueError,
            "numeric",
        ),
        ("socket domain", lambda r: r.socket(1, 2**31, 1), OverflowError, "domain"),
        ("listen backlog", lambda r: r.listen(1, sock, 2**31), OverflowError, "backlog"),
        ("shutdown how", lambda r: r.shutdown(1, sock, "both"), TypeError, "how"),
        ("getsockopt ro", lambda r: r.getsockopt(1, sock, 1, 2, b"1234"), TypeError, "writable"),
        (
            "getsockopt none",
            lambda r: r.cmd_sock(1, SocketCmd.GETSOCKOPT, sock),
            TypeError,
            "optval is required",
        ),
        (
            "siocinq optval",
            lambda r: r.cmd_sock(1, SocketCmd.SIOCINQ, sock, 0, 0, b"x"),
            ValueError,
            "optval",
        ),
        ("setsockopt int", lambda r: r.setsockopt(1, sock, 1, 2, 2**40), OverflowError, "optval"),
        ("recv_provided group", lambda r: r.recv_provided(1, sock, "g"), TypeError, "buf_group"),
        (
            "recv_multishot group",
            lambda r: r.recv_multishot(1, sock, 65536),
            OverflowError,
            "buf_group",
        ),
        (
            "accept_direct index",
            lambda r: r.accept_direct(1, sock, None, 0, -2),
            OverflowError,
            "file_index",
        ),
    ]


def test_bad_arguments_leave_the_ring_untouched(ring: IoUring, sockets: Any) -> None:
    sock = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    before = ring_unchanged(ring)
    for name, call, exc, match in _bad_calls(sock):
        with pytest.raises(exc, match=match):
            call(ring)
        assert ring_unchanged(ring) == before, name
    # The same checks through an Sqe handle leave its slot a NOP.
    sqe = ring.get_sqe()
    with pytest.raises(TypeError, match="writable"):
        sqe.prep_recv(1, sock, b"ro")
    with pytest.raises(TypeError, match="Msghdr"):
        sqe.prep_recvmsg(1, sock, None)  # type: ignore[arg-type]
    assert sqe.opcode == Op.NOP
    assert ring.pinned == 0
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0, 0, 0)


def test_scalar_fields_of_socket_ops_are_plain(
    ring: IoUring, sockets: Any, socketpair: Any
) -> None:
    require_ops(ring, Op.SOCKET, Op.LISTEN)
    listening = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    unbound = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    a, b = socketpair
    a.send(b"1234")
    sqe = ring.socket(0x5, socket.AF_INET, socket.SOCK_DGRAM)
    sqe.off = socket.SOCK_STREAM  # plain: no pointer meaning
    sqe = ring.listen(0x6, -1, 1)
    sqe.fd = listening.fileno()
    recv = ring.recv(0x7, b, bytearray(4))
    with pytest.raises(ValueError, match="cannot be changed"):
        recv.ioprio = RecvSendFlags.FIXED_BUF
    with pytest.raises(ValueError, match="cannot be changed"):
        ring.connect(0x8, unbound, ("127.0.0.1", 1)).off = 128
    with pytest.raises(ValueError, match="cannot be changed"):
        ring.accept(0x9, unbound, SockAddr()).off = 0
    ring.submit_and_wait(5, timeout=10)
    got = reap_grouped(ring, 5)
    assert got[0x5][0].res > 0
    with socket.socket(fileno=got[0x5][0].res) as made:
        assert made.type == socket.SOCK_STREAM
    assert got[0x6] == [Cqe(0x6, 0, 0)]
    assert got[0x7][0].res == 4
    assert got[0x8][0].res == -errno.ECONNREFUSED
    assert got[0x9][0].res == -errno.EINVAL


# --------------------------------------------------------------------------------------------
# lifetimes: the ring keeps what the kernel uses until the final completion


def test_recv_buffer_dropped_before_completion(ring: IoUring, socketpair: Any) -> None:
    a, b = socketpair
    buf = np.zeros(8, dtype=np.uint8)
    alive = weakref.ref(buf)
    ring.recv(0x11, b, buf)
    ring.submit()
    del buf
    gc.collect()
    assert alive() is not None  # pinned by the ring
    a.send(b"late")
    ring.submit_and_wait(1, timeout=10)  # the CQE is ready, not consumed: still pinned
    assert ring.peek_cqe() == Cqe(0x11, 4, 0)
    pinned = alive()
    assert pinned is not None
    assert bytes(pinned[:4]) == b"late"
    del pinned
    ring.cqe_seen()
    gc.collect()
    assert alive() is None  # released with the completion


def test_msghdr_iovecs_and_name_survive(ring: IoUring, udp_pair: Any, sockets: Any) -> None:
    a, _ = udp_pair
    target = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    target.bind(("127.0.0.1", 0))
    parts = [np.frombuffer(b"head-", dtype=np.uint8).copy(), np.frombuffer(b"tail", np.uint8)]
    alive = [weakref.ref(p) for p in parts]
    ring.sendmsg(0x21, a, Msghdr(parts, name=target.getsockname()))
    recv_parts = [np.zeros(5, np.uint8), np.zeros(8, np.uint8)]
    recv_alive = [weakref.ref(p) for p in recv_parts]
    msg = Msghdr(recv_parts, name=True)
    msg_alive = weakref.ref(msg) if hasattr(msg, "__weakref__") else None
    ring.recvmsg(0x22, target, msg)
    del parts, recv_parts, msg
    gc.collect()
    assert all(ref() is not None for ref in alive + recv_alive)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0x21] == [Cqe(0x21, 9, 0)]
    assert got[0x22][0].res == 9
    gc.collect()
    assert all(ref() is None for ref in alive + recv_alive)
    if msg_alive is not None:
        assert msg_alive() is None


def test_accept_sockaddr_dropped_before_completion(
    ring: IoUring, tcp_listener: socket.socket, sockets: Any
) -> None:
    sqe = ring.accept(0x31, tcp_listener, SockAddr())
    addrlen_ptr = sqe.off
    ring.submit()
    gc.collect()
    assert ring.pinned == 1
    client = sockets.add(socket.create_connection(tcp_listener.getsockname()))
    cqe = ring.copy_cqe(timeout=10)
    assert cqe.user_data == 0x31
    assert cqe.res > 0
    os.close(cqe.res)
    assert ring.pinned == 0
    assert addrlen_ptr != 0
    assert client.fileno() > 0


def test_send_zc_buffer_pinned_until_notification(
    ring: IoUring, socket_harness: Callable[..., Any]
) -> None:
    require_ops(ring, Op.SEND_ZC)
    h = socket_harness(ring)
    data = np.frombuffer(b"pinned until NOTIF", dtype=np.uint8).copy()
    alive = weakref.ref(data)
    ring.send_zc(0x41, h.client, data)
    del data
    ring.submit()
    first = ring.copy_cqe(timeout=10)
    assert first == Cqe(0x41, 18, CqeFlags.MORE)
    gc.collect()
    if ring.pinned:  # the notification may already be in the CQ, but not reaped
        assert alive() is not None
    notif = ring.copy_cqe(timeout=10)
    assert notif == Cqe(0x41, 0, CqeFlags.NOTIF)
    gc.collect()
    assert alive() is None
    assert ring.pinned == 0
    assert h.server.recv(64) == b"pinned until NOTIF"


def test_connect_address_is_a_private_copy(
    ring: IoUring, tcp_listener: socket.socket, sockets: Any
) -> None:
    client = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    address = SockAddr(tcp_listener.getsockname())
    sqe = ring.connect(0x51, client, address)
    copy_addr = sqe.addr
    assert copy_addr != 0
    del address
    gc.collect()
    ring.accept(0x52, tcp_listener)
    ring.submit_and_wait(2)
    got = reap_grouped(ring, 2)
    assert got[0x51] == [Cqe(0x51, 0, 0)]
    os.close(got[0x52][0].res)


def test_recvmsg_through_get_sqe(ring: IoUring, udp_pair: Any) -> None:
    a, b = udp_pair
    a.send(b"via prep")
    buf = bytearray(16)
    msg = Msghdr([buf])
    sqe = ring.get_sqe()
    assert sqe.prep_recvmsg(0x61, b, msg) is sqe
    assert sqe.opcode == Op.RECVMSG
    assert ring.pinned == 1
    ring.submit_and_wait(1)
    assert without_nonempty(ring.copy_cqe()) == Cqe(0x61, 8, 0)
    assert buf[:8] == b"via prep"
    assert ring.pinned == 0


def test_accept_flags_in_ioprio(ring: IoUring, tcp_listener: socket.socket) -> None:
    sqe = ring.accept(0x71, tcp_listener, None, 0, ioprio=AcceptFlags.DONTWAIT)
    assert sqe.fields() == sqe_fields(
        opcode=Op.ACCEPT, ioprio=AcceptFlags.DONTWAIT, fd=tcp_listener.fileno(), user_data=0x71
    )
    ring.submit_and_wait(1)
    cqe = ring.copy_cqe()
    # Nothing to accept: DONTWAIT fails at once instead of waiting (older kernels: EINVAL).
    assert cqe.user_data == 0x71
    assert cqe.res in (-errno.EAGAIN, -errno.EINVAL)
    assert FILE_INDEX_ALLOC == 2**32 - 1
