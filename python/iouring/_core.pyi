"""Type stubs for the compiled core of :mod:`iouring` (``iouring._core``)."""

import datetime
import enum
import os
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

FileDescriptor = int | _HasFileno
StrOrBytesPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]
# A duration: seconds, or a timedelta.
_Timeout = float | datetime.timedelta
# A batch argument: one int for every operation, or one integer per operation.
_IntArg = int | Sequence[int] | npt.NDArray[np.integer[Any]]

CQE_DTYPE: np.dtype[np.void]
SQE_SIZE: int
CQE_SIZE: int
PARAMS_SIZE: int
OFF_SQ_RING: int
OFF_CQ_RING: int
OFF_SQES: int
FILE_INDEX_ALLOC: int
REGISTER_FILES_SKIP: int

class IoUringError(Exception): ...
class SubmissionQueueFull(IoUringError): ...
class StaleSqeError(IoUringError): ...
class RingForkedError(IoUringError): ...
class EntriesZero(ValueError): ...
class EntriesNotPowerOfTwo(ValueError): ...

class Op(enum.IntEnum):
    NOP = 0
    READV = 1
    WRITEV = 2
    FSYNC = 3
    READ_FIXED = 4
    WRITE_FIXED = 5
    POLL_ADD = 6
    POLL_REMOVE = 7
    SYNC_FILE_RANGE = 8
    SENDMSG = 9
    RECVMSG = 10
    TIMEOUT = 11
    TIMEOUT_REMOVE = 12
    ACCEPT = 13
    ASYNC_CANCEL = 14
    LINK_TIMEOUT = 15
    CONNECT = 16
    FALLOCATE = 17
    OPENAT = 18
    CLOSE = 19
    FILES_UPDATE = 20
    STATX = 21
    READ = 22
    WRITE = 23
    FADVISE = 24
    MADVISE = 25
    SEND = 26
    RECV = 27
    OPENAT2 = 28
    EPOLL_CTL = 29
    SPLICE = 30
    PROVIDE_BUFFERS = 31
    REMOVE_BUFFERS = 32
    TEE = 33
    SHUTDOWN = 34
    RENAMEAT = 35
    UNLINKAT = 36
    MKDIRAT = 37
    SYMLINKAT = 38
    LINKAT = 39
    MSG_RING = 40
    FSETXATTR = 41
    SETXATTR = 42
    FGETXATTR = 43
    GETXATTR = 44
    SOCKET = 45
    URING_CMD = 46
    SEND_ZC = 47
    SENDMSG_ZC = 48
    READ_MULTISHOT = 49
    WAITID = 50
    FUTEX_WAIT = 51
    FUTEX_WAKE = 52
    FUTEX_WAITV = 53
    FIXED_FD_INSTALL = 54
    FTRUNCATE = 55
    BIND = 56
    LISTEN = 57
    RECV_ZC = 58
    EPOLL_WAIT = 59
    READV_FIXED = 60
    WRITEV_FIXED = 61
    PIPE = 62
    NOP128 = 63
    URING_CMD128 = 64

class SetupFlags(enum.IntFlag):
    IOPOLL = 1
    SQPOLL = 2
    SQ_AFF = 4
    CQSIZE = 8
    CLAMP = 16
    ATTACH_WQ = 32
    R_DISABLED = 64
    SUBMIT_ALL = 128
    COOP_TASKRUN = 256
    TASKRUN_FLAG = 512
    SQE128 = 1024
    CQE32 = 2048
    SINGLE_ISSUER = 4096
    DEFER_TASKRUN = 8192
    NO_MMAP = 16384
    REGISTERED_FD_ONLY = 32768
    NO_SQARRAY = 65536
    HYBRID_IOPOLL = 131072
    CQE_MIXED = 262144
    SQE_MIXED = 524288
    SQ_REWIND = 1048576

class SqeFlags(enum.IntFlag):
    FIXED_FILE = 1
    IO_DRAIN = 2
    IO_LINK = 4
    IO_HARDLINK = 8
    ASYNC = 16
    BUFFER_SELECT = 32
    CQE_SKIP_SUCCESS = 64

class CqeFlags(enum.IntFlag):
    BUFFER = 1
    MORE = 2
    SOCK_NONEMPTY = 4
    NOTIF = 8
    BUF_MORE = 16
    SKIP = 32
    F_32 = 32768

class EnterFlags(enum.IntFlag):
    GETEVENTS = 1
    SQ_WAKEUP = 2
    SQ_WAIT = 4
    EXT_ARG = 8
    REGISTERED_RING = 16
    ABS_TIMER = 32
    EXT_ARG_REG = 64
    NO_IOWAIT = 128

class Features(enum.IntFlag):
    SINGLE_MMAP = 1
    NODROP = 2
    SUBMIT_STABLE = 4
    RW_CUR_POS = 8
    CUR_PERSONALITY = 16
    FAST_POLL = 32
    POLL_32BITS = 64
    SQPOLL_NONFIXED = 128
    EXT_ARG = 256
    NATIVE_WORKERS = 512
    RSRC_TAGS = 1024
    CQE_SKIP = 2048
    LINKED_FILE = 4096
    REG_REG_RING = 8192
    RECVSEND_BUNDLE = 16384
    MIN_TIMEOUT = 32768
    RW_ATTR = 65536
    NO_IOWAIT = 131072

class SqFlags(enum.IntFlag):
    NEED_WAKEUP = 1
    CQ_OVERFLOW = 2
    TASKRUN = 4

class FsyncFlags(enum.IntFlag):
    DATASYNC = 1

class Cqe:
    """One completion: the kernel's ``io_uring_cqe`` copied out of the ring."""

    def __init__(self, user_data: int = 0, res: int = 0, flags: int = 0) -> None: ...
    @property
    def user_data(self) -> int: ...
    @property
    def res(self) -> int: ...
    @property
    def flags(self) -> int: ...
    @property
    def more(self) -> bool: ...
    @property
    def buffer_id(self) -> int | None: ...
    def result(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Sqe:
    """A handle on one vacant slot of the ring's SQE array, valid until the slot is flushed."""

    @property
    def opcode(self) -> int: ...
    flags: int
    ioprio: int
    fd: int
    off: int
    @property
    def addr(self) -> int: ...
    @property
    def len(self) -> int: ...
    rw_flags: int
    user_data: int
    buf_index: int
    personality: int
    splice_fd_in: int
    @property
    def addr3(self) -> int: ...
    @property
    def valid(self) -> bool: ...
    def fields(self) -> dict[str, int]: ...
    def prep_nop(self, user_data: int) -> Self: ...
    def prep_read(self, user_data: int, fd: FileDescriptor, buffer: Buffer, offset: int) -> Self: ...
    def prep_write(self, user_data: int, fd: FileDescriptor, buffer: Buffer, offset: int) -> Self: ...
    def prep_readv(
        self, user_data: int, fd: FileDescriptor, iovecs: Sequence[Buffer], offset: int
    ) -> Self: ...
    def prep_writev(
        self, user_data: int, fd: FileDescriptor, iovecs: Sequence[Buffer], offset: int
    ) -> Self: ...
    def prep_fsync(self, user_data: int, fd: FileDescriptor, flags: int = 0) -> Self: ...
    def prep_read_fixed(
        self, user_data: int, fd: FileDescriptor, buffer: Buffer, offset: int, buffer_index: int
    ) -> Self: ...
    def prep_write_fixed(
        self, user_data: int, fd: FileDescriptor, buffer: Buffer, offset: int, buffer_index: int
    ) -> Self: ...
    def prep_splice(
        self,
        user_data: int,
        fd_in: FileDescriptor,
        off_in: int,
        fd_out: FileDescriptor,
        off_out: int,
        len: int,
        flags: int = 0,
    ) -> Self: ...
    def prep_openat(
        self, user_data: int, dir_fd: FileDescriptor, path: StrOrBytesPath, flags: int, mode: int = 0o666
    ) -> Self: ...
    def prep_close(self, user_data: int, fd: FileDescriptor) -> Self: ...
    # --- Sqe: fs operations ---
    # --- Sqe: control operations ---
    # --- Sqe: net operations ---
    # --- Sqe: buffer operations ---

class IoUring:
    """An io_uring instance: its fd, the mapped rings and the pins of operations in flight."""

    def __init__(
        self,
        entries: int,
        *,
        flags: int = 0,
        sq_thread_idle: int = 1000,
        sq_thread_cpu: int | None = None,
        cq_entries: int | None = None,
        wq_fd: FileDescriptor | None = None,
    ) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def fd(self) -> int: ...
    @property
    def flags(self) -> SetupFlags: ...
    @property
    def features(self) -> Features: ...
    @property
    def sq_entries(self) -> int: ...
    @property
    def cq_entries(self) -> int: ...
    @property
    def sqe_head(self) -> int: ...
    @property
    def sqe_tail(self) -> int: ...
    @property
    def sq_head(self) -> int: ...
    @property
    def sq_tail(self) -> int: ...
    @property
    def sq_flags(self) -> SqFlags: ...
    @property
    def sq_dropped(self) -> int: ...
    @property
    def cq_head(self) -> int: ...
    @property
    def cq_tail(self) -> int: ...
    @property
    def cq_overflow(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def pinned(self) -> int: ...
    def get_sqe(self) -> Sqe: ...
    def get_sqe_raw(self) -> Sqe: ...
    def flush_sq(self) -> int: ...
    def submit(self) -> int: ...
    def submit_and_wait(self, wait_nr: int, *, timeout: _Timeout | None = None) -> int: ...
    def enter(self, to_submit: int, min_complete: int, flags: int = 0) -> int: ...
    def sq_ready(self) -> int: ...
    def sq_space_left(self) -> int: ...
    def cq_ready(self) -> int: ...
    def sq_ring_needs_enter(self) -> bool: ...
    def cq_ring_needs_flush(self) -> bool: ...
    def copy_cqes(
        self,
        out: npt.NDArray[np.void] | None = None,
        wait_nr: int = 0,
        *,
        timeout: _Timeout | None = None,
    ) -> npt.NDArray[np.void]: ...
    def copy_cqe(self, *, timeout: _Timeout | None = None) -> Cqe: ...
    def cqe_seen(self, cqe: Cqe | None = None) -> None: ...
    def cq_advance(self, count: int) -> None: ...
    def peek_cqe(self) -> Cqe | None: ...
    def register_files(self, fds: Iterable[FileDescriptor]) -> None: ...
    def register_files_sparse(self, count: int) -> None: ...
    def register_files_update(self, offset: int, fds: Iterable[FileDescriptor]) -> int: ...
    def unregister_files(self) -> None: ...
    def register_buffers(self, buffers: Iterable[Buffer]) -> None: ...
    def unregister_buffers(self) -> None: ...
    def register_eventfd(self, fd: FileDescriptor) -> None: ...
    def unregister_eventfd(self) -> None: ...
    def enable_rings(self) -> None: ...
    def probe_ops(self) -> list[int]: ...
    def nop(self, user_data: int) -> Sqe: ...
    def read(self, user_data: int, fd: FileDescriptor, buffer: Buffer, offset: int) -> Sqe: ...
    def write(self, user_data: int, fd: FileDescriptor, buffer: Buffer, offset: int) -> Sqe: ...
    def readv(
        self, user_data: int, fd: FileDescriptor, iovecs: Sequence[Buffer], offset: int
    ) -> Sqe: ...
    def writev(
        self, user_data: int, fd: FileDescriptor, iovecs: Sequence[Buffer], offset: int
    ) -> Sqe: ...
    def fsync(self, user_data: int, fd: FileDescriptor, flags: int = 0) -> Sqe: ...
    def read_fixed(
        self, user_data: int, fd: FileDescriptor, buffer: Buffer, offset: int, buffer_index: int
    ) -> Sqe: ...
    def write_fixed(
        self, user_data: int, fd: FileDescriptor, buffer: Buffer, offset: int, buffer_index: int
    ) -> Sqe: ...
    def splice(
        self,
        user_data: int,
        fd_in: FileDescriptor,
        off_in: int,
        fd_out: FileDescriptor,
        off_out: int,
        len: int,
        flags: int = 0,
    ) -> Sqe: ...
    def openat(
        self, user_data: int, dir_fd: FileDescriptor, path: StrOrBytesPath, flags: int, mode: int = 0o666
    ) -> Sqe: ...
    def close_fd(self, user_data: int, fd: FileDescriptor) -> Sqe: ...
    # --- IoUring: fs operations ---
    # --- IoUring: control operations ---
    # --- IoUring: net operations ---
    # --- IoUring: buffer operations ---
    # --- IoUring: registration ---
    def register_ring_fd(self) -> int: ...
    def unregister_ring_fd(self) -> None: ...
    @property
    def ring_fd_registered(self) -> bool: ...
    def register_personality(self) -> int: ...
    def unregister_personality(self, id: int) -> None: ...
    def register_restrictions(
        self,
        *,
        register_ops: Iterable[int] = (),
        sqe_ops: Iterable[int] = (),
        sqe_flags_allowed: int = 0,
        sqe_flags_required: int = 0,
    ) -> None: ...
    def register_iowq_aff(self, cpus: Iterable[int]) -> None: ...
    def unregister_iowq_aff(self) -> None: ...
    def register_iowq_max_workers(self, bounded: int = 0, unbounded: int = 0) -> tuple[int, int]: ...
    def register_sync_cancel(
        self,
        *,
        user_data: int | None = None,
        fd: FileDescriptor | None = None,
        op: int | None = None,
        any: bool = False,
        all: bool = False,
        fixed_fd: bool = False,
        timeout: _Timeout | None = None,
    ) -> int: ...
    def register_clock(self, clockid: int) -> None: ...
    def register_file_alloc_range(self, offset: int, length: int) -> None: ...
    def register_eventfd_async(self, fd: FileDescriptor) -> None: ...
    def register_buffers_sparse(self, count: int) -> None: ...
    def register_buffers_update(self, offset: int, buffers: Iterable[Buffer]) -> int: ...
    def clone_buffers(
        self,
        source: IoUring,
        *,
        src_offset: int = 0,
        dst_offset: int = 0,
        count: int | None = None,
        replace: bool = False,
    ) -> None: ...
    def register_napi(self, busy_poll_us: int, prefer_busy_poll: bool = False) -> None: ...
    def unregister_napi(self) -> None: ...
    # --- IoUring: batch preparation ---
    def nop_batch(self, user_data: _IntArg, *, count: int | None = None) -> int: ...
    def read_batch(
        self,
        user_data: _IntArg,
        fd: _IntArg,
        buffer: Buffer,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
    ) -> int: ...
    def write_batch(
        self,
        user_data: _IntArg,
        fd: _IntArg,
        buffer: Buffer,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
    ) -> int: ...
    def read_fixed_batch(
        self,
        user_data: _IntArg,
        fd: _IntArg,
        buffer_index: _IntArg,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
    ) -> int: ...
    def write_fixed_batch(
        self,
        user_data: _IntArg,
        fd: _IntArg,
        buffer_index: _IntArg,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
    ) -> int: ...
    def fsync_batch(
        self, user_data: _IntArg, fd: _IntArg, flags: int = 0, *, count: int | None = None
    ) -> int: ...
    def close_batch(self, user_data: _IntArg, fd: _IntArg, *, count: int | None = None) -> int: ...
