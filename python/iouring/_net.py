"""Socket helpers: the flag words of the net operations and the multishot recvmsg parser.

``SockAddr`` and ``Msghdr`` (the addresses and message headers the net operations take) live
in the compiled core; this module adds the kernel's flag sets as ``enum.IntFlag``s and
``RecvmsgOut``, which parses what a multishot recvmsg writes into each provided buffer.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from iouring._core import Cqe, Msghdr, SockAddr, parse_cmsgs

__all__ = [
    "NOTIF_USAGE_ZC_COPIED",
    "AcceptFlags",
    "RecvSendFlags",
    "RecvmsgOut",
    "SocketCmd",
    "TxTimestamp",
]

NOTIF_USAGE_ZC_COPIED = 1 << 31
"""Bit of a send_zc notification's ``res`` (with ``RecvSendFlags.SEND_ZC_REPORT_USAGE``): the
kernel copied the data instead of sending it from the buffer."""


class RecvSendFlags(enum.IntFlag):
    """send/recv flags carried in ``sqe.ioprio`` (IORING_RECVSEND_*, IORING_RECV_MULTISHOT)."""

    POLL_FIRST = 1 << 0
    RECV_MULTISHOT = 1 << 1
    FIXED_BUF = 1 << 2
    SEND_ZC_REPORT_USAGE = 1 << 3
    BUNDLE = 1 << 4
    SEND_VECTORIZED = 1 << 5


class AcceptFlags(enum.IntFlag):
    """accept flags carried in ``sqe.ioprio`` (IORING_ACCEPT_*)."""

    MULTISHOT = 1 << 0
    DONTWAIT = 1 << 1
    POLL_FIRST = 1 << 2


class SocketCmd(enum.IntEnum):
    """Socket commands of ``cmd_sock`` (SOCKET_URING_OP_*)."""

    SIOCINQ = 0
    SIOCOUTQ = 1
    GETSOCKOPT = 2
    SETSOCKOPT = 3
    TX_TIMESTAMP = 4
    GETSOCKNAME = 5


_TSTAMP_HW = 1 << 16  # IORING_CQE_F_TSTAMP_HW
_TSTAMP_TYPE_SHIFT = 17  # IORING_TIMESTAMP_TYPE_SHIFT


@dataclass(frozen=True)
class TxTimestamp:
    """One completion of ``tx_timestamp`` (SOCKET_URING_OP_TX_TIMESTAMP), decoded.

    The kernel posts one 32-byte completion flagged ``CqeFlags.MORE`` per timestamp it takes
    off the socket's error queue: ``res`` is the timestamp key (``tskey``: the counter of
    ``SOF_TIMESTAMPING_OPT_ID``, or for TCP the byte offset), ``flags >> 17`` the type
    (``tstype``: ``SCM_TSTAMP_SND`` 0, ``SCM_TSTAMP_SCHED`` 1, ``SCM_TSTAMP_ACK`` 2, ...), bit
    16 says a hardware timestamp, and ``big_cqe`` is the ``struct io_timespec`` (``tv_sec``,
    ``tv_nsec``). The final completion (without ``MORE``, for instance ``-ECANCELED`` after a
    cancel) carries no timestamp: :meth:`from_cqe` raises ``ValueError`` for it.
    """

    tskey: int
    tstype: int
    hardware: bool
    tv_sec: int
    tv_nsec: int

    @classmethod
    def from_cqe(cls, cqe: Cqe) -> TxTimestamp:
        """Decodes a timestamp completion of a CQE32 (or CQE_MIXED) ring."""
        big = cqe.big_cqe
        if big is None or not cqe.flags & 2 or cqe.res < 0:  # CqeFlags.MORE
            raise ValueError(f"cqe is not a TX timestamp (a CQE32 completion flagged MORE): {cqe}")
        return cls(
            tskey=cqe.res,
            tstype=cqe.flags >> _TSTAMP_TYPE_SHIFT,
            hardware=bool(cqe.flags & _TSTAMP_HW),
            tv_sec=big[0],
            tv_nsec=big[1],
        )


_OUT_HEADER = struct.Struct("=IIII")  # struct io_uring_recvmsg_out


@dataclass(frozen=True)
class RecvmsgOut:
    """One message of a multishot recvmsg, parsed from its provided buffer.

    The buffer holds ``struct io_uring_recvmsg_out`` (namelen, controllen, payloadlen, flags),
    then ``msg.name_capacity`` bytes for the source address, ``msg.control_capacity`` bytes for
    control data, then the payload.
    """

    namelen: int
    """The source address's full length (it was truncated if above ``msg.name_capacity``)."""
    controllen: int
    """Control bytes the kernel wrote."""
    payloadlen: int
    """The message's full length (``flags & MSG_TRUNC`` when the buffer held less)."""
    flags: int
    """msg_flags of this message."""
    name: SockAddr | None
    """The source address (None when the Msghdr reserved no room for it)."""
    control: bytes
    """The control data."""
    payload: memoryview
    """The payload bytes that fit in the buffer (a view of ``data``)."""

    @property
    def ancdata(self) -> list[tuple[int, int, bytes]]:
        """The control data as (level, type, data) tuples, like ``socket.recvmsg``."""
        return parse_cmsgs(self.control)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, msg: Msghdr) -> RecvmsgOut:
        """Parses ``data`` (the ``cqe.res`` bytes of the completion's buffer, e.g.
        ``BufferRing.get(cqe)``) framed for ``msg``, the Msghdr the recvmsg_multishot was
        prepared with. Raises ValueError when ``data`` is shorter than the framing
        (io_uring_recvmsg_validate(3) fails)."""
        view = memoryview(data).cast("B")
        header = _OUT_HEADER.size + msg.name_capacity + msg.control_capacity
        if len(view) < header:
            raise ValueError(
                f"data holds {len(view)} bytes, fewer than the {header} bytes of the "
                "io_uring_recvmsg_out header, name and control areas"
            )
        namelen, controllen, payloadlen, flags = _OUT_HEADER.unpack_from(view)
        name = None
        start = _OUT_HEADER.size
        if msg.name_capacity:
            raw = bytes(view[start : start + min(namelen, msg.name_capacity)])
            name = SockAddr.from_bytes(raw)
        start += msg.name_capacity
        control = bytes(view[start : start + min(controllen, msg.control_capacity)])
        start += msg.control_capacity
        return cls(namelen, controllen, payloadlen, flags, name, control, view[start:])


def __dir__() -> list[str]:
    return list(__all__)
