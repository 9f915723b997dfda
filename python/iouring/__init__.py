"""iouring: a safe, fast and complete binding of Linux io_uring.

Operations are prepared into SQEs (``ring.read(...)``, or ``ring.get_sqe().prep_read(...)``),
submitted with ``submit()``/``submit_and_wait()``, and their completions come back as NumPy
arrays of ``CQE_DTYPE`` (``copy_cqes``) or single ``Cqe`` records (``copy_cqe``). Every buffer,
path and iovec array handed to the kernel stays alive until its completion is reaped.
"""

from __future__ import annotations

from iouring import _core, _kernel
from iouring._arena import BufferArena
from iouring._core import (  # fs and control families
    AT_FDCWD,
    CQE32_DTYPE,
    CQE_DTYPE,
    CQE_SIZE,
    EPOLL_CTL_ADD,
    EPOLL_CTL_DEL,
    EPOLL_CTL_MOD,
    EPOLL_EVENT_DTYPE,
    EPOLL_EVENT_SIZE,
    FILE_INDEX_ALLOC,
    FUTEX_BITSET_MATCH_ANY,
    FUTEX_WAITV_MAX,
    OFF_CQ_RING,
    OFF_SQ_RING,
    OFF_SQES,
    PARAMS_SIZE,
    REGISTER_FILES_SKIP,
    SQE_DTYPE,
    SQE_SIZE,
    STATX_DTYPE,
    AtFlags,
    BufferRing,
    CancelFlags,
    Cqe,
    CqeFlags,
    EnterFlags,
    EntriesNotPowerOfTwo,
    EntriesZero,
    FallocateFlags,
    Features,
    FixedFdFlags,
    FsyncFlags,
    FutexFlags,
    IoUringError,
    Msghdr,
    NopFlags,
    Op,
    PollFlags,
    RenameFlags,
    ResolveFlags,
    RingForkedError,
    SetupFlags,
    Siginfo,
    SockAddr,
    Sqe,
    SqeFlags,
    SqFlags,
    StaleSqeError,
    Statx,
    StatxMask,
    SubmissionQueueFull,
    SyncFileRangeFlags,
    TimeoutFlags,
    XattrFlags,
)
from iouring._errors import raise_for_errors
from iouring._net import (
    NOTIF_USAGE_ZC_COPIED,
    AcceptFlags,
    RecvmsgOut,
    RecvSendFlags,
    SocketCmd,
    TxTimestamp,
)

__version__ = "0.1.0"

__all__ = [
    "AT_FDCWD",
    "CQE32_DTYPE",
    "CQE_DTYPE",
    "CQE_SIZE",
    "EPOLL_CTL_ADD",
    "EPOLL_CTL_DEL",
    "EPOLL_CTL_MOD",
    "EPOLL_EVENT_DTYPE",
    "EPOLL_EVENT_SIZE",
    "FILE_INDEX_ALLOC",
    "FUTEX_BITSET_MATCH_ANY",
    "FUTEX_WAITV_MAX",
    "NOTIF_USAGE_ZC_COPIED",
    "OFF_CQ_RING",
    "OFF_SQES",
    "OFF_SQ_RING",
    "PARAMS_SIZE",
    "REGISTER_FILES_SKIP",
    "SQE_DTYPE",
    "SQE_SIZE",
    "STATX_DTYPE",
    "STAT_DTYPE",
    "AcceptFlags",
    "AtFlags",
    "BufferArena",
    "BufferRing",
    "CancelFlags",
    "Cqe",
    "CqeFlags",
    "EnterFlags",
    "EntriesNotPowerOfTwo",
    "EntriesZero",
    "FallocateFlags",
    "Features",
    "FixedFdFlags",
    "FsyncFlags",
    "FutexFlags",
    "IoUring",
    "IoUringError",
    "Msghdr",
    "NopFlags",
    "Op",
    "PollFlags",
    "RecvSendFlags",
    "RecvmsgOut",
    "RenameFlags",
    "ResolveFlags",
    "RingForkedError",
    "SetupFlags",
    "Siginfo",
    "SockAddr",
    "SocketCmd",
    "SqFlags",
    "Sqe",
    "SqeFlags",
    "StaleSqeError",
    "Statx",
    "StatxMask",
    "SubmissionQueueFull",
    "SyncFileRangeFlags",
    "TimeoutFlags",
    "TxTimestamp",
    "XattrFlags",
    "__version__",
    "copy_file",
    "copy_files",
    "get_cmake_dir",
    "get_include",
    "raise_for_errors",
    "read_files",
    "read_ranges",
    "run_batches",
    "set_memory_cache",
    "stat_files",
    "write_files",
]


def get_include() -> str:
    """The directory holding the C++ headers of the core (``#include <iouring/iouring.hpp>``).

    For C++ extensions built against an installed wheel; C++ projects can also install the
    headers with CMake and use ``find_package(iouring)``.
    """
    from pathlib import Path

    return str(Path(__file__).parent / "include")


def get_cmake_dir() -> str:
    """The directory of iouring's CMake package config in an installed wheel.

    ``cmake -Diouring_DIR=<this>`` (or the package directory on ``CMAKE_PREFIX_PATH``) makes
    ``find_package(iouring CONFIG)`` give the target ``iouring::iouring``: the C++ headers of
    :func:`get_include`, C++20. The directory exists only in an installed package, not in a
    source tree.
    """
    from pathlib import Path

    return str(Path(__file__).parent / "share" / "cmake" / "iouring")


class IoUring(_core.IoUring):
    """An io_uring instance. See ``iouring._core.IoUring`` for every method.

    ``IoUring(entries, *, flags=0, sq_thread_idle=1000, sq_thread_cpu=None, cq_entries=None,
    wq_fd=None)``; use it as a context manager, or call ``close()``. A kernel too old for one
    of the ``flags`` refuses the ring with OSError(EINVAL) whose message names the flag and the
    Linux release that added it.
    """

    def __init__(
        self,
        entries: int,
        *,
        flags: int = 0,
        sq_thread_idle: int = 1000,
        sq_thread_cpu: int | None = None,
        cq_entries: int | None = None,
        wq_fd: _core._FileDescriptor | None = None,
    ) -> None:
        try:
            super().__init__(
                entries,
                flags=flags,
                sq_thread_idle=sq_thread_idle,
                sq_thread_cpu=sq_thread_cpu,
                cq_entries=cq_entries,
                wq_fd=wq_fd,
            )
        except OSError as error:
            refusal = _kernel.setup_refusal(int(flags), error)
            if refusal is error:
                raise
            raise refusal from None

    def require_ops(self, *ops: Op) -> None:
        """Raises NotImplementedError naming each of ``ops`` the running kernel lacks (by the
        probe) and the Linux release that added it; returns when the kernel has them all."""
        supported = self.probe()
        missing = [op for op in ops if op not in supported]
        if missing:
            raise NotImplementedError(
                "; ".join(_kernel.unsupported_op_message(op) for op in missing)
            )

    def probe(self) -> frozenset[Op]:
        """The operations the running kernel supports (IORING_REGISTER_PROBE).

        Opcodes newer than this version of iouring knows are left out. Raises ValueError on a
        closed ring and OSError when the kernel refuses the probe (before Linux 5.6).
        """
        known = set(Op.__members__.values())
        return frozenset(Op(op) for op in self.probe_ops() if op in known)

    def __repr__(self) -> str:
        if self.closed:
            return "<iouring.IoUring (closed)>"
        return (
            f"<iouring.IoUring fd={self.fd} sq_entries={self.sq_entries} "
            f"cq_entries={self.cq_entries} in_flight={self.in_flight}>"
        )


# High-level helpers (iouring.helpers); they build on IoUring, so they come after it. The
# asyncio adapter stays a submodule (iouring.aio) so that importing iouring never imports asyncio.
from iouring.helpers import (  # noqa: E402
    STAT_DTYPE,
    copy_file,
    copy_files,
    read_files,
    read_ranges,
    run_batches,
    set_memory_cache,
    stat_files,
    write_files,
)


def __dir__() -> list[str]:
    return list(__all__)
