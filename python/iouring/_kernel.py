"""Which Linux release added each operation and setup flag, for errors and skips that say what
the running kernel lacks ("Op.PIPE needs Linux 6.16 or newer; this kernel is 6.1.0-57-amd64").

The releases are those of the mainline kernel that first accepted each opcode or flag.
"""

from __future__ import annotations

import errno
import platform

from iouring._core import Op, SetupFlags

__all__ = [
    "OP_SINCE",
    "SETUP_SINCE",
    "older_than",
    "setup_refusal",
    "unsupported_op_message",
]

OP_SINCE: dict[Op, str] = {
    Op.NOP: "5.1",
    Op.READV: "5.1",
    Op.WRITEV: "5.1",
    Op.FSYNC: "5.1",
    Op.READ_FIXED: "5.1",
    Op.WRITE_FIXED: "5.1",
    Op.POLL_ADD: "5.1",
    Op.POLL_REMOVE: "5.1",
    Op.SYNC_FILE_RANGE: "5.2",
    Op.SENDMSG: "5.3",
    Op.RECVMSG: "5.3",
    Op.TIMEOUT: "5.4",
    Op.TIMEOUT_REMOVE: "5.5",
    Op.ACCEPT: "5.5",
    Op.ASYNC_CANCEL: "5.5",
    Op.LINK_TIMEOUT: "5.5",
    Op.CONNECT: "5.5",
    Op.FALLOCATE: "5.6",
    Op.OPENAT: "5.6",
    Op.CLOSE: "5.6",
    Op.FILES_UPDATE: "5.6",
    Op.STATX: "5.6",
    Op.READ: "5.6",
    Op.WRITE: "5.6",
    Op.FADVISE: "5.6",
    Op.MADVISE: "5.6",
    Op.SEND: "5.6",
    Op.RECV: "5.6",
    Op.OPENAT2: "5.6",
    Op.EPOLL_CTL: "5.6",
    Op.SPLICE: "5.7",
    Op.PROVIDE_BUFFERS: "5.7",
    Op.REMOVE_BUFFERS: "5.7",
    Op.TEE: "5.8",
    Op.SHUTDOWN: "5.11",
    Op.RENAMEAT: "5.11",
    Op.UNLINKAT: "5.11",
    Op.MKDIRAT: "5.15",
    Op.SYMLINKAT: "5.15",
    Op.LINKAT: "5.15",
    Op.MSG_RING: "5.18",
    Op.FSETXATTR: "5.19",
    Op.SETXATTR: "5.19",
    Op.FGETXATTR: "5.19",
    Op.GETXATTR: "5.19",
    Op.SOCKET: "5.19",
    Op.URING_CMD: "5.19",
    Op.SEND_ZC: "6.0",
    Op.SENDMSG_ZC: "6.1",
    Op.READ_MULTISHOT: "6.7",
    Op.WAITID: "6.7",
    Op.FUTEX_WAIT: "6.7",
    Op.FUTEX_WAKE: "6.7",
    Op.FUTEX_WAITV: "6.7",
    Op.FIXED_FD_INSTALL: "6.8",
    Op.FTRUNCATE: "6.9",
    Op.BIND: "6.11",
    Op.LISTEN: "6.11",
    Op.RECV_ZC: "6.15",
    Op.EPOLL_WAIT: "6.15",
    Op.READV_FIXED: "6.15",
    Op.WRITEV_FIXED: "6.15",
    Op.PIPE: "6.16",
    Op.NOP128: "6.19",
    Op.URING_CMD128: "6.19",
}

SETUP_SINCE: dict[SetupFlags, str] = {
    SetupFlags.IOPOLL: "5.1",
    SetupFlags.SQPOLL: "5.1",
    SetupFlags.SQ_AFF: "5.1",
    SetupFlags.CQSIZE: "5.5",
    SetupFlags.CLAMP: "5.6",
    SetupFlags.ATTACH_WQ: "5.6",
    SetupFlags.R_DISABLED: "5.10",
    SetupFlags.SUBMIT_ALL: "5.18",
    SetupFlags.COOP_TASKRUN: "5.19",
    SetupFlags.TASKRUN_FLAG: "5.19",
    SetupFlags.SQE128: "5.19",
    SetupFlags.CQE32: "5.19",
    SetupFlags.SINGLE_ISSUER: "6.0",
    SetupFlags.DEFER_TASKRUN: "6.1",
    SetupFlags.NO_MMAP: "6.5",
    SetupFlags.REGISTERED_FD_ONLY: "6.5",
    SetupFlags.NO_SQARRAY: "6.6",
    SetupFlags.HYBRID_IOPOLL: "6.13",
    SetupFlags.CQE_MIXED: "6.18",
    SetupFlags.SQE_MIXED: "6.19",
}


def _version(release: str) -> tuple[int, ...]:
    """(6, 1) for "6.1.0-57-amd64"; () when the release does not start with a version."""
    numbers = []
    for part in release.split("-", 1)[0].split(".")[:2]:
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def older_than(since: str, release: str | None = None) -> bool:
    """Whether ``release`` (default: the running kernel's) is older than Linux ``since``
    ("6.6"); False when the release does not start with a version."""
    running = _version(platform.release() if release is None else release)
    return bool(running) and running < _version(since)


def unsupported_op_message(op: Op, release: str | None = None) -> str:
    """``"Op.PIPE needs Linux 6.16 or newer; this kernel is 6.1.0-57-amd64"``."""
    release = platform.release() if release is None else release
    since = OP_SINCE.get(op)
    needs = f"Linux {since} or newer" if since else "a newer kernel"
    return f"Op.{op.name} needs {needs}; this kernel ({release}) does not support it"


def setup_refusal(flags: int, error: OSError, release: str | None = None) -> OSError:
    """``error`` (io_uring_setup's EINVAL) with the setup flags this kernel is too old for named
    in its message; ``error`` itself when none is, or for another errno."""
    if error.errno != errno.EINVAL:
        return error
    release = platform.release() if release is None else release
    newer = [
        f"SetupFlags.{flag.name} (Linux {since})"
        for flag, since in SETUP_SINCE.items()
        if flags & flag and older_than(since, release)
    ]
    if not newer:
        return error
    return OSError(
        errno.EINVAL,
        f"{error.strerror} ({', '.join(newer)}: not supported by this kernel, {release})",
    )
