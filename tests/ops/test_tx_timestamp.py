"""tx_timestamp (SOCKET_URING_OP_TX_TIMESTAMP, Linux 6.17+) on UDP loopback with software TX
timestamps, and TxTimestamp, its decoder."""

from __future__ import annotations

import errno
import socket
import time
from typing import TYPE_CHECKING

import pytest

from iouring import Cqe, CqeFlags, IoUring, Op, SetupFlags, SocketCmd, TxTimestamp

from .conftest import require_kernel, require_ops

if TYPE_CHECKING:
    from collections.abc import Callable

SO_TIMESTAMPING = 37
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11  # the error queue entries carry no payload
SCM_TSTAMP_SND = 0


def test_tx_timestamp_udp_software(
    make_ring: Callable[..., IoUring], udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ring = make_ring(8, flags=SetupFlags.CQE32)
    require_ops(ring, Op.URING_CMD)
    require_kernel("6.17", "SOCKET_URING_OP_TX_TIMESTAMP")
    tx, rx = udp_pair
    tx.setsockopt(
        socket.SOL_SOCKET,
        SO_TIMESTAMPING,
        SOF_TIMESTAMPING_TX_SOFTWARE
        | SOF_TIMESTAMPING_SOFTWARE
        | SOF_TIMESTAMPING_OPT_ID
        | SOF_TIMESTAMPING_OPT_TSONLY,
    )
    sqe = ring.tx_timestamp(0x75, tx.fileno())
    assert (sqe.opcode, sqe.fd, sqe.off) == (Op.URING_CMD, tx.fileno(), SocketCmd.TX_TIMESTAMP)
    ring.submit()
    before = time.clock_gettime(time.CLOCK_REALTIME)
    for payload in (b"a", b"bb", b"ccc"):
        tx.send(payload)
    stamps: list[TxTimestamp] = []
    while len(stamps) < 3:
        cqe = ring.copy_cqe(timeout=10)
        if cqe.res == -errno.EOPNOTSUPP or cqe.res == -errno.EINVAL:
            pytest.skip(f"kernel refuses SOCKET_URING_OP_TX_TIMESTAMP: {cqe}")
        assert cqe.user_data == 0x75 and cqe.flags & CqeFlags.MORE, cqe
        stamps.append(TxTimestamp.from_cqe(cqe))
    assert [s.tskey for s in stamps] == [0, 1, 2]  # SOF_TIMESTAMPING_OPT_ID counts datagrams
    assert {s.tstype for s in stamps} == {SCM_TSTAMP_SND}
    assert not any(s.hardware for s in stamps)
    for s in stamps:
        assert 0 <= s.tv_nsec < 1_000_000_000
        assert s.tv_sec + s.tv_nsec / 1e9 >= before - 5  # the realtime clock, this minute
    assert ring.in_flight == 1  # multishot: in flight until cancelled
    ring.cancel(0xC, 0x75)
    ring.submit()
    got = {ring.copy_cqe(timeout=10) for _ in range(2)}
    assert Cqe(0xC, 0, 0) in got
    final = next(c for c in got if c.user_data == 0x75)
    assert final.res == -errno.ECANCELED and not final.flags & CqeFlags.MORE
    with pytest.raises(ValueError, match="not a TX timestamp"):
        TxTimestamp.from_cqe(final)
    assert ring.in_flight == 0
    assert rx.recv(8) == b"a"


def test_tx_timestamp_needs_big_cqes(make_default_ring: Callable[..., IoUring]) -> None:
    ring = make_default_ring(4)
    before = ring.sq_ready()
    with pytest.raises(ValueError, match="CQE32"):
        ring.tx_timestamp(1, 0)
    with pytest.raises(TypeError, match="fd"):
        ring.tx_timestamp(1, "socket")  # type: ignore[arg-type]
    with pytest.raises(OverflowError, match="user_data"):
        ring.tx_timestamp(-1, 0)
    assert ring.sq_ready() == before
    with pytest.raises(ValueError, match="not a TX timestamp"):
        TxTimestamp.from_cqe(Cqe(1, 0, 0))
