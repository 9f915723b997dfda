"""Provided buffers: provide_buffers/remove_buffers, buffer-select reads and receives, and
BufferRing (registered provided-buffer rings: recycling, incremental mode, bundles,
multishot receive/read/recvmsg).

Ports Zig's IoUring tests 26 (provide_buffers: read), 27 (remove_buffers), 28
(provide_buffers: accept/connect/send/recv), 37 (BufferGroup), 38 (ring mapped buffers recv)
and 39 (ring mapped buffers multishot recv), then covers what the Zig suite lacks.

Provided-buffer memory is kept by the ring until it closes (the kernel writes into it without
a pin of its own), so these tests reap everything, check nothing is in flight, and close their
ring themselves.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import random
import socket
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from iouring import (
    BufferRing,
    Cqe,
    CqeFlags,
    Features,
    IoUring,
    Msghdr,
    Op,
    RecvmsgOut,
    RecvSendFlags,
    SockAddr,
    SqeFlags,
    _kernel,
)

from .conftest import U64_MAX, addr_of, reap_grouped, require_ops, sqe_fields


def one(ring: IoUring) -> Cqe:
    """Submits what is prepared and returns the next completion."""
    ring.submit()
    return ring.copy_cqe(timeout=10)


def finish(ring: IoUring) -> None:
    """Everything was reaped; close the ring, which releases the provided-buffer memory."""
    assert ring.in_flight == 0
    ring.close()


def buffer_ring(ring: IoUring, bgid: int, entries: int, size: int, **kwargs: Any) -> BufferRing:
    """A BufferRing, or a skip when the kernel lacks provided-buffer rings (or the option)."""
    try:
        return BufferRing(ring, bgid, entries, size, **kwargs)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            pytest.skip(f"kernel refuses the provided-buffer ring {kwargs}: {exc}")
        raise


def without_nonempty(cqe: Cqe) -> Cqe:
    return Cqe(cqe.user_data, cqe.res, cqe.flags & ~int(CqeFlags.SOCK_NONEMPTY))


def buffer_flags(bid: int, *extra: int) -> int:
    flags = CqeFlags.BUFFER | bid << 16
    for f in extra:
        flags |= f
    return int(flags)


# --------------------------------------------------------------------------------------------
# Zig ports: legacy provided buffers


def test_provide_buffers_read(make_ring: Callable[..., IoUring], dev_zero: int) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.PROVIDE_BUFFERS)
    group_id, buffer_len = 1337, 128
    buffers = np.full((4, buffer_len), 0xFF, dtype=np.uint8)

    sqe = ring.provide_buffers(0xCCCCCCCC, buffers, buffer_len, 4, group_id, 0)
    assert sqe.fields() == sqe_fields(
        opcode=Op.PROVIDE_BUFFERS,
        fd=4,
        addr=addr_of(buffers),
        len=buffer_len,
        off=0,
        buf_index=group_id,
        user_data=0xCCCCCCCC,
    )
    cqe = one(ring)
    if cqe.res in (-errno.EINVAL, -errno.EBADF):
        pytest.skip("kernel refuses PROVIDE_BUFFERS")
    assert cqe == Cqe(0xCCCCCCCC, 0, 0)

    for _ in range(4):
        sqe = ring.read_provided(0xDEDEDEDE, dev_zero, group_id, buffer_len, 0)
        assert sqe.fields() == sqe_fields(
            opcode=Op.READ,
            flags=SqeFlags.BUFFER_SELECT,
            fd=dev_zero,
            addr=0,
            len=buffer_len,
            buf_index=group_id,
            user_data=0xDEDEDEDE,
        )
        cqe = one(ring)
        assert cqe.flags & CqeFlags.BUFFER
        bid = cqe.buffer_id
        assert bid is not None and 0 <= bid <= 3
        assert cqe == Cqe(0xDEDEDEDE, buffer_len, buffer_flags(bid))
        assert not buffers[bid].any()

    ring.read_provided(0xDFDFDFDF, dev_zero, group_id, buffer_len, 0)
    assert one(ring) == Cqe(0xDFDFDFDF, -errno.ENOBUFS, 0)

    buffers[:] = 42
    reprovided = 2
    ring.provide_buffers(0xABABABAB, buffers[reprovided], buffer_len, 1, group_id, reprovided)
    assert one(ring) == Cqe(0xABABABAB, 0, 0)
    ring.read_provided(0xDFDFDFDF, dev_zero, group_id, buffer_len, 0)
    assert one(ring) == Cqe(0xDFDFDFDF, buffer_len, buffer_flags(reprovided))
    assert not buffers[reprovided].any()
    assert (buffers[[0, 1, 3]] == 42).all()
    finish(ring)


def test_remove_buffers(make_ring: Callable[..., IoUring], dev_zero: int) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.PROVIDE_BUFFERS, Op.REMOVE_BUFFERS)
    group_id, buffer_len = 1337, 128
    buffers = bytearray(4 * buffer_len)
    ring.provide_buffers(0xCCCCCCCC, buffers, buffer_len, 4, group_id)
    cqe = one(ring)
    if cqe.res in (-errno.EINVAL, -errno.EBADF):
        pytest.skip("kernel refuses PROVIDE_BUFFERS")
    assert cqe == Cqe(0xCCCCCCCC, 0, 0)

    sqe = ring.remove_buffers(0xBABABABABA, 3, group_id)
    assert sqe.fields() == sqe_fields(
        opcode=Op.REMOVE_BUFFERS, fd=3, buf_index=group_id, user_data=0xBABABABABA
    )
    assert one(ring) == Cqe(0xBABABABABA, 3, 0)

    ring.read_provided(0xDFDFDFDF, dev_zero, group_id, buffer_len, 0)
    cqe = one(ring)
    bid = cqe.buffer_id
    assert bid is not None and 0 <= bid < 4
    assert cqe == Cqe(0xDFDFDFDF, buffer_len, buffer_flags(bid))
    ring.read_provided(0xDFDFDFDF, dev_zero, group_id, buffer_len, 0)
    assert one(ring) == Cqe(0xDFDFDFDF, -errno.ENOBUFS, 0)
    finish(ring)


def test_provide_buffers_accept_connect_send_recv(
    ring: IoUring, socket_harness: Callable[..., Any]
) -> None:
    require_ops(ring, Op.PROVIDE_BUFFERS)
    group_id, buffer_len = 1337, 128
    buffers = bytearray(4 * buffer_len)
    view = memoryview(buffers)
    ring.provide_buffers(0xCCCCCCCC, buffers, buffer_len, 4, group_id)
    cqe = one(ring)
    if cqe.res in (-errno.EINVAL, -errno.EBADF):
        pytest.skip("kernel refuses PROVIDE_BUFFERS")
    assert cqe == Cqe(0xCCCCCCCC, 0, 0)
    h = socket_harness(ring)

    for _ in range(4):
        ring.send(0xDEADDEAD, h.server, b"z" * buffer_len)
    ring.submit_and_wait(4)
    assert ring.copy_cqes().tolist() == [(0xDEADDEAD, buffer_len, 0)] * 4

    buffers[:] = b"\x01" * len(buffers)
    for _ in range(4):
        sqe = ring.recv_provided(0xDEDEDEDE, h.client, group_id, buffer_len)
        assert sqe.fields() == sqe_fields(
            opcode=Op.RECV,
            flags=SqeFlags.BUFFER_SELECT,
            fd=h.client.fileno(),
            addr=0,
            len=buffer_len,
            buf_index=group_id,
            user_data=0xDEDEDEDE,
        )
        cqe = without_nonempty(one(ring))
        bid = cqe.buffer_id
        assert bid is not None and 0 <= bid <= 3
        assert cqe == Cqe(0xDEDEDEDE, buffer_len, buffer_flags(bid))
        assert view[bid * buffer_len : (bid + 1) * buffer_len] == b"z" * buffer_len

    ring.recv_provided(0xDFDFDFDF, h.client, group_id, buffer_len)
    assert one(ring) == Cqe(0xDFDFDFDF, -errno.ENOBUFS, 0)

    reprovided = 2
    part = view[reprovided * buffer_len : (reprovided + 1) * buffer_len]
    ring.provide_buffers(0xABABABAB, part, buffer_len, 1, group_id, reprovided)
    assert one(ring) == Cqe(0xABABABAB, 0, 0)
    ring.send(0xDEADDEAD, h.server, b"w" * buffer_len)
    assert one(ring) == Cqe(0xDEADDEAD, buffer_len, 0)
    buffers[:] = b"\x01" * len(buffers)
    ring.recv_provided(0xDFDFDFDF, h.client, group_id, buffer_len)
    cqe = without_nonempty(one(ring))
    assert cqe == Cqe(0xDFDFDFDF, buffer_len, buffer_flags(reprovided))
    assert part == b"w" * buffer_len
    del part, view
    finish(ring)


# --------------------------------------------------------------------------------------------
# Zig ports: provided-buffer rings (Zig's BufferGroup)


def test_buffer_group(ring: IoUring, socket_harness: Callable[..., Any]) -> None:
    br = buffer_ring(ring, 1, 1, 128)
    h = socket_harness(ring)
    data = b"abcdefghijklmnopqrstuvwxyzabcde"
    ring.send(1, h.client, data)
    assert one(ring) == Cqe(1, len(data), 0)
    sqe = ring.recv_provided(2, h.server, br)
    assert sqe.flags == SqeFlags.BUFFER_SELECT
    assert sqe.buf_index == 1
    cqe = without_nonempty(one(ring))
    assert cqe == Cqe(2, len(data), buffer_flags(0))
    assert bytes(br.get(cqe)) == data
    br.put(cqe)
    finish(ring)


def _recv_into_group(ring: IoUring, br: BufferRing, fd: socket.socket, user_data: int) -> Cqe:
    sqe = ring.recv_provided(user_data, fd, br)
    assert sqe.flags & SqeFlags.BUFFER_SELECT
    assert sqe.buf_index == br.bgid
    cqe = one(ring)
    assert cqe.user_data == user_data
    assert cqe.res >= 0, cqe
    assert cqe.flags & CqeFlags.BUFFER
    return cqe


def test_ring_mapped_buffers_recv(ring: IoUring, socket_harness: Callable[..., Any]) -> None:
    br = buffer_ring(ring, 1, 2, 4)
    h = socket_harness(ring)
    rnd = random.Random(0x5EED)
    data = bytes(range(15))
    for _ in range(4):
        user_data = rnd.getrandbits(64)
        ring.send(user_data, h.client, data)
        assert one(ring) == Cqe(user_data, len(data), 0)

        pos = 0
        cqe1 = _recv_into_group(ring, br, h.server, rnd.getrandbits(64))
        buf = br.get(cqe1)
        assert buf == data[pos : pos + len(buf)]
        pos += len(buf)
        cqe2 = _recv_into_group(ring, br, h.server, rnd.getrandbits(64))
        buf = br.get(cqe2)
        assert buf == data[pos : pos + len(buf)]
        pos += len(buf)

        # Both buffers are out: no more buffers until they go back.
        user_data = rnd.getrandbits(64)
        ring.recv_provided(user_data, h.server, br)
        cqe = one(ring)
        assert cqe == Cqe(user_data, -errno.ENOBUFS, 0)
        assert cqe.buffer_id is None
        with pytest.raises(ValueError, match="selected no buffer"):
            br.get(cqe)

        br.put(cqe1)
        br.put(cqe2)
        while pos < len(data):
            cqe = _recv_into_group(ring, br, h.server, rnd.getrandbits(64))
            buf = br.get(cqe)
            assert buf == data[pos : pos + len(buf)]
            pos += len(buf)
            br.put(cqe)
    finish(ring)


def _expect_chunk(ring: IoUring, br: BufferRing, user_data: int, expected: bytes) -> Cqe:
    cqe = ring.copy_cqe(timeout=10)
    assert cqe.user_data == user_data
    assert cqe.res == len(expected), cqe
    assert cqe.flags & CqeFlags.BUFFER
    assert br.get(cqe) == expected
    return cqe


def test_ring_mapped_buffers_multishot_recv(
    ring: IoUring, socket_harness: Callable[..., Any]
) -> None:
    if not hasattr(ring, "cancel"):
        pytest.skip("ring.cancel (ASYNC_CANCEL) is not available in this build")
    br = buffer_ring(ring, 1, 2, 4)
    h = socket_harness(ring)
    rnd = random.Random(0xF00D)
    data = bytes(range(0xA, 0x1A))
    for _ in range(4):
        user_data = rnd.getrandbits(64)
        ring.send(user_data, h.client, data)
        assert one(ring) == Cqe(user_data, len(data), 0)

        recv_user_data = rnd.getrandbits(64)
        sqe = ring.recv_multishot(recv_user_data, h.server, br)
        assert sqe.fields() == sqe_fields(
            opcode=Op.RECV,
            flags=SqeFlags.BUFFER_SELECT,
            ioprio=RecvSendFlags.RECV_MULTISHOT,
            fd=h.server.fileno(),
            buf_index=br.bgid,
            user_data=recv_user_data,
        )
        ring.submit()
        cqe1 = _expect_chunk(ring, br, recv_user_data, data[0:4])
        assert cqe1.flags & CqeFlags.MORE
        cqe2 = _expect_chunk(ring, br, recv_user_data, data[4:8])
        assert cqe2.flags & CqeFlags.MORE
        # Out of buffers: the multishot ends (MORE cleared) with ENOBUFS.
        cqe = ring.copy_cqe(timeout=10)
        assert cqe == Cqe(recv_user_data, -errno.ENOBUFS, 0)
        assert ring.in_flight == 0

        br.put(cqe1)
        br.put(cqe2)
        recv_user_data = rnd.getrandbits(64)
        ring.recv_multishot(recv_user_data, h.server, br)
        ring.submit()
        cqe3 = _expect_chunk(ring, br, recv_user_data, data[8:12])
        assert cqe3.flags & CqeFlags.MORE
        br.put(cqe3)
        cqe4 = _expect_chunk(ring, br, recv_user_data, data[12:])
        assert cqe4.flags & CqeFlags.MORE
        br.put(cqe4)

        cancel_user_data = rnd.getrandbits(64)
        ring.cancel(cancel_user_data, recv_user_data)
        ring.submit_and_wait(2, timeout=10)
        got = reap_grouped(ring, 2)
        # Older kernels (< 6.5): cancel -ENOENT and recv -ENOBUFS; newer: 0 and -ECANCELED.
        assert got[cancel_user_data][0].res in (0, -errno.ENOENT)
        (final,) = got[recv_user_data]
        assert final.res in (-errno.ECANCELED, -errno.ENOBUFS)
        assert not final.flags & CqeFlags.MORE
    finish(ring)


# --------------------------------------------------------------------------------------------
# Beyond the Zig suite


def test_read_multishot_pipe(ring: IoUring, pipe: tuple[int, int]) -> None:
    require_ops(ring, Op.READ_MULTISHOT)
    r, w = pipe
    br = buffer_ring(ring, 7, 4, 16)
    sqe = ring.read_multishot(0x1234, r, 0, -1, br)
    assert sqe.fields() == sqe_fields(
        opcode=Op.READ_MULTISHOT,
        flags=SqeFlags.BUFFER_SELECT,
        fd=r,
        off=U64_MAX,
        buf_index=7,
        user_data=0x1234,
    )
    ring.submit()
    received = b""
    for chunk in (b"abc", b"defgh", b"0123456789abcdef"):
        os.write(w, chunk)
        cqe = ring.copy_cqe(timeout=10)
        assert cqe.user_data == 0x1234
        assert cqe.flags & CqeFlags.MORE, cqe
        assert cqe.res == len(chunk)
        received += bytes(br.get(cqe))
        br.put(cqe)
    assert received == b"abcdefgh0123456789abcdef"
    os.close(w)
    cqe = ring.copy_cqe(timeout=10)  # end of file ends the multishot
    assert (cqe.user_data, cqe.res) == (0x1234, 0)
    assert not cqe.flags & CqeFlags.MORE
    finish(ring)


def test_recvmsg_multishot_parses_each_message(ring: IoUring, sockets: Any) -> None:
    if not hasattr(ring, "cancel"):
        pytest.skip("ring.cancel (ASYNC_CANCEL) is not available in this build")
    server = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind(("127.0.0.1", 0))
    client = sockets.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    client.bind(("127.0.0.1", 0))
    br = buffer_ring(ring, 3, 4, 64)
    msg = Msghdr(name=16)
    sqe = ring.recvmsg_multishot(0x77, server, msg, br)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.RECVMSG,
        flags=SqeFlags.BUFFER_SELECT,
        ioprio=RecvSendFlags.RECV_MULTISHOT,
        fd=server.fileno(),
        addr=fields["addr"],
        len=1,
        buf_index=3,
        user_data=0x77,
    )
    ring.submit()
    for payload in (b"first", b"second datagram"):
        client.sendto(payload, server.getsockname())
        cqe = ring.copy_cqe(timeout=10)
        if cqe.res == -errno.EINVAL:
            pytest.skip("kernel refuses multishot recvmsg")
        assert cqe.user_data == 0x77
        assert cqe.flags & CqeFlags.MORE and cqe.flags & CqeFlags.BUFFER
        out = RecvmsgOut.parse(br.get(cqe), msg)
        assert bytes(out.payload) == payload
        assert out.payloadlen == len(payload)
        assert out.namelen == 16
        assert out.name == SockAddr(client.getsockname())
        assert (out.flags, out.controllen, out.control, out.ancdata) == (0, 0, b"", [])
        br.put(cqe)
    # Larger than a buffer's payload room (64 - 16 header - 16 name): truncated.
    big = bytes(range(40))
    client.sendto(big, server.getsockname())
    cqe = ring.copy_cqe(timeout=10)
    out = RecvmsgOut.parse(br.get(cqe), msg)
    assert out.payload == big[:32]
    assert out.payloadlen in (32, 40)  # this kernel reports what fit
    assert out.flags & socket.MSG_TRUNC
    br.put(cqe)
    with pytest.raises(ValueError, match="fewer than"):
        RecvmsgOut.parse(b"\0" * 20, msg)
    assert ring.pinned == 2  # the ring's memory, and the Msghdr of the armed recvmsg
    ring.cancel(0x78, 0x77)
    ring.submit_and_wait(2, timeout=10)
    got = reap_grouped(ring, 2)
    assert got[0x77][-1].res == -errno.ECANCELED
    assert ring.pinned == 1
    finish(ring)


def test_incremental_buffer_ring(ring: IoUring, socketpair: Any) -> None:
    a, b = socketpair
    br = buffer_ring(ring, 5, 1, 64, incremental=True)
    assert br.incremental
    a.send(b"0123456789")
    ring.recv_provided(0x1, b, br)
    cqe = one(ring)
    assert without_nonempty(cqe) == Cqe(0x1, 10, buffer_flags(0, CqeFlags.BUF_MORE))
    assert bytes(br.get(cqe)) == b"0123456789"
    br.put(cqe)  # BUF_MORE: the buffer stays with the kernel; the next data follows
    a.send(b"abcdef")
    ring.recv_provided(0x2, b, br)
    cqe = one(ring)
    assert cqe.buffer_id == 0
    assert cqe.res == 6
    assert bytes(br.get(cqe)) == b"abcdef"
    assert bytes(br.buffer(0)[:16]) == b"0123456789abcdef"
    br.put(cqe)
    finish(ring)


def test_recv_bundle(ring: IoUring, socket_harness: Callable[..., Any]) -> None:
    if not ring.features & Features.RECVSEND_BUNDLE:
        pytest.skip("kernel lacks Features.RECVSEND_BUNDLE")
    br = buffer_ring(ring, 2, 4, 4)
    h = socket_harness(ring)
    h.client.sendall(b"0123456789")
    sqe = ring.recv_bundle(0x99, h.server, br)
    assert sqe.ioprio == RecvSendFlags.BUNDLE
    assert sqe.flags == SqeFlags.BUFFER_SELECT
    cqe = one(ring)
    assert cqe.user_data == 0x99
    assert cqe.flags & CqeFlags.BUFFER
    pieces = br.bundle(cqe)
    first = cqe.buffer_id
    assert first is not None
    assert b"".join(bytes(p) for _, p in pieces) == b"0123456789"[: cqe.res]
    assert [bid for bid, _ in pieces] == list(range(first, first + len(pieces)))
    for bid, _ in pieces:
        br.recycle(bid)
    received = cqe.res
    while received < 10:
        ring.recv_bundle(0x9A, h.server, br)
        cqe = one(ring)
        assert cqe.res > 0
        for bid, _ in br.bundle(cqe):
            br.recycle(bid)
        received += cqe.res
    finish(ring)


def test_recv_bundle_multishot(ring: IoUring, socket_harness: Callable[..., Any]) -> None:
    if not ring.features & Features.RECVSEND_BUNDLE:
        pytest.skip("kernel lacks Features.RECVSEND_BUNDLE")
    if not hasattr(ring, "cancel"):
        pytest.skip("ring.cancel (ASYNC_CANCEL) is not available in this build")
    br = buffer_ring(ring, 2, 8, 4)
    h = socket_harness(ring)
    sqe = ring.recv_bundle(0x98, h.server, br, multishot=True)
    assert sqe.ioprio == RecvSendFlags.BUNDLE | RecvSendFlags.RECV_MULTISHOT
    ring.submit()
    received = b""
    for chunk in (b"first", b"second part"):
        h.client.sendall(chunk)
        want = len(received) + len(chunk)
        while len(received) < want:
            cqe = ring.copy_cqe(timeout=10)
            assert cqe.user_data == 0x98
            assert cqe.flags & CqeFlags.MORE, cqe
            for bid, piece in br.bundle(cqe):
                received += bytes(piece)
                br.recycle(bid)
    assert received == b"firstsecond part"
    ring.cancel(0x99, 0x98)
    ring.submit_and_wait(2, timeout=10)
    got = reap_grouped(ring, 2)
    assert got[0x98][-1].res == -errno.ECANCELED
    finish(ring)


def test_send_bundle(ring: IoUring, socket_harness: Callable[..., Any]) -> None:
    if not ring.features & Features.RECVSEND_BUNDLE:
        pytest.skip("kernel lacks Features.RECVSEND_BUNDLE")
    br = buffer_ring(ring, 4, 4, 8, populate=False)
    h = socket_harness(ring)
    br.buffer(0)[:5] = b"hello"
    br.recycle(0, 5)
    br.buffer(1)[:6] = b" world"
    br.recycle(1, 6)
    assert br.tail == 2
    sqe = ring.send_bundle(0x55, h.client, br)
    assert sqe.fields() == sqe_fields(
        opcode=Op.SEND,
        flags=SqeFlags.BUFFER_SELECT,
        ioprio=RecvSendFlags.BUNDLE,
        fd=h.client.fileno(),
        buf_index=4,
        user_data=0x55,
    )
    cqe = one(ring)
    assert cqe.user_data == 0x55
    assert cqe.res == 11, cqe
    assert cqe.buffer_id == 0
    assert h.server.recv(64) == b"hello world"
    finish(ring)


def test_buffer_ring_head_tail_and_memory(ring: IoUring, socketpair: Any) -> None:
    a, b = socketpair
    br = ring.register_buffer_ring(9, 8, 32)
    assert isinstance(br, BufferRing)
    assert (br.bgid, br.entries, br.buf_size, br.incremental, br.registered) == (
        9,
        8,
        32,
        False,
        True,
    )
    assert br.tail == 8
    assert "bgid=9" in repr(br)
    try:
        assert br.head() == 0
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        finish(ring)  # releases the buffer ring's memory
        pytest.skip("kernel lacks IORING_REGISTER_PBUF_STATUS (Linux 6.8+)")
    memory = br.memory
    assert len(memory) == 8 * 32
    assert addr_of(np.frombuffer(memory, np.uint8)) % os.sysconf("SC_PAGESIZE") == 0
    a.send(b"x" * 10)
    ring.recv_provided(0x1, b, br)
    cqe = one(ring)
    assert cqe.buffer_id == 0
    assert br.head() == 1
    # A CQE_DTYPE record works like a Cqe.
    record = np.array([(cqe.user_data, cqe.res, cqe.flags)], dtype=ring.copy_cqes().dtype)[0]
    view = br.get(record)
    assert view == b"x" * 10
    assert view.readonly
    assert np.frombuffer(memory, np.uint8).reshape(8, 32)[0, :10].tobytes() == b"x" * 10
    br.put(cqe)
    assert br.tail == 9
    br.unregister()
    assert not br.registered
    with pytest.raises(ValueError, match="unregistered"):
        br.recycle(0)
    finish(ring)
    # The views keep the memory alive after the ring and the BufferRing are gone.
    del br
    gc.collect()
    assert view == b"x" * 10


def test_buffer_ring_as_context_manager(ring: IoUring) -> None:
    with ring.register_buffer_ring(11, 2, 16) as br:
        assert bool(br.registered)
    assert not br.registered
    # The group id is free again.
    again = ring.register_buffer_ring(11, 2, 16)
    ring.unregister_buffer_ring(11)
    assert again.bgid == 11
    with pytest.raises(OSError, match="unregister_buffer_ring") as info:
        ring.unregister_buffer_ring(11)
    assert info.value.errno in (errno.ENOENT, errno.EINVAL)
    finish(ring)


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((1, 3, 16), {}, ValueError, "power of two"),
        ((1, 0, 16), {}, OverflowError, "entries"),
        ((1, 65536, 16), {}, OverflowError, "entries"),
        ((1, 4, 0), {}, OverflowError, "buf_size"),
        ((1, 4, 2**32), {}, OverflowError, "buf_size"),
        ((65536, 4, 16), {}, OverflowError, "bgid"),
        ((-1, 4, 16), {}, OverflowError, "bgid"),
        (("1", 4, 16), {}, TypeError, "bgid"),
    ],
)
def test_buffer_ring_bad_arguments(
    ring: IoUring, args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        BufferRing(ring, *args, **kwargs)
    with pytest.raises(exc, match=match):
        ring.register_buffer_ring(*args, **kwargs)
    assert ring.pinned == 0


def test_buffer_ring_refusals(ring: IoUring) -> None:
    with pytest.raises(TypeError, match="IoUring"):
        BufferRing(object(), 1, 4, 16)  # type: ignore[arg-type]
    br = ring.register_buffer_ring(1, 4, 16)
    with pytest.raises(OSError, match="register_buffer_ring") as info:
        ring.register_buffer_ring(1, 4, 16)
    assert info.value.errno == errno.EEXIST
    assert ring.pinned == 1  # only the registered one's memory
    with pytest.raises(ValueError, match="out of range"):
        br.buffer(4)
    with pytest.raises(ValueError, match="out of range"):
        br.recycle(4)
    with pytest.raises(OverflowError, match="length"):
        br.recycle(0, 17)
    with pytest.raises(ValueError, match="selected no buffer"):
        br.get(Cqe(1, 5, 0))
    with pytest.raises(ValueError, match="not one of"):
        br.get(Cqe(1, 5, buffer_flags(9)))
    with pytest.raises(ValueError, match="exceeds"):
        br.get(Cqe(1, 17, buffer_flags(0)))
    with pytest.raises(ValueError, match="negative"):
        br.get(Cqe(1, -5, buffer_flags(0)))
    with pytest.raises(TypeError, match="Cqe"):
        br.get((1, 5, buffer_flags(0)))  # type: ignore[arg-type]
    if not _kernel.older_than("6.12"):  # IOU_PBUF_RING_INC
        with pytest.raises(ValueError, match="incremental"):
            ring.register_buffer_ring(2, 4, 16, incremental=True).bundle(Cqe(1, 1, buffer_flags(0)))
    finish(ring)
    with pytest.raises(ValueError, match="closed"):
        br.recycle(0)
    with pytest.raises(ValueError, match="closed"):
        BufferRing(ring, 3, 4, 16)


def test_provide_buffers_bad_arguments(ring: IoUring) -> None:
    cases: list[tuple[Callable[[], Any], type[Exception], str]] = [
        (lambda: ring.provide_buffers(1, b"read-only", 4, 2, 1), TypeError, "writable"),
        (lambda: ring.provide_buffers(1, bytearray(7), 4, 2, 1), ValueError, "fewer than"),
        (lambda: ring.provide_buffers(1, bytearray(8), 4, 2, 1, 65535), ValueError, "65536"),
        (lambda: ring.provide_buffers(1, bytearray(8), 4, 0, 1), OverflowError, "nr"),
        (lambda: ring.provide_buffers(1, bytearray(8), 0, 2, 1), OverflowError, "buf_len"),
        (lambda: ring.provide_buffers(1, bytearray(8), 4, 2, 65536), OverflowError, "bgid"),
        (lambda: ring.remove_buffers(1, 0, 1), OverflowError, "nr"),
        (lambda: ring.read_provided(1, 0, BufferRing), TypeError, "buf_group"),  # type: ignore[arg-type]
        (lambda: ring.read_multishot(1, 0, -1, 0, 1), OverflowError, "nbytes"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
        assert (ring.sq_ready(), ring.pinned) == (0, 0)


def test_provided_memory_kept_until_close(make_ring: Callable[..., IoUring], dev_zero: int) -> None:
    ring = make_ring(4)
    require_ops(ring, Op.PROVIDE_BUFFERS, Op.REMOVE_BUFFERS)
    buffers = np.ones(256, dtype=np.uint8)
    alive = weakref.ref(buffers)
    sqe = ring.get_sqe()
    assert sqe.prep_provide_buffers(0x1, buffers, 64, 4, 21) is sqe
    assert sqe.opcode == Op.PROVIDE_BUFFERS
    del buffers
    gc.collect()
    assert alive() is not None
    assert one(ring) == Cqe(0x1, 0, 0)
    ring.read_provided(0x2, dev_zero, 21, 64, 0)
    assert one(ring).res == 64
    ring.remove_buffers(0x3, 4, 21)
    assert one(ring) == Cqe(0x3, 3, 0)
    gc.collect()
    # Removed, but the kernel owned it: kept while the ring lives.
    assert alive() is not None
    assert ring.in_flight == 0
    assert ring.pinned == 1
    ring.close()
    gc.collect()
    assert alive() is None


def test_buffer_ring_kept_after_unregister_and_gc(ring: IoUring, socketpair: Any) -> None:
    a, b = socketpair
    br = ring.register_buffer_ring(6, 2, 8)
    address = addr_of(np.frombuffer(br.memory, np.uint8))
    ring.recv_provided(0x6, b, 6)  # armed before the data arrives
    ring.submit()
    br.unregister()
    del br
    gc.collect()
    assert ring.pinned == 1  # the ring keeps the memory the armed recv may write into
    a.send(b"late")
    cqe = ring.copy_cqe(timeout=10)
    # Unregistered before the data came: the recv finds no buffer (or kept the one it had).
    if cqe.res == -errno.ENOBUFS:
        assert cqe == Cqe(0x6, -errno.ENOBUFS, 0)
    else:
        assert without_nonempty(cqe) == Cqe(0x6, 4, buffer_flags(0))
        assert ctypes.string_at(address, 4) == b"late"
    finish(ring)
