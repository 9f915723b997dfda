"""Type stubs for the compiled core of :mod:`iouring` (``iouring._core``)."""

import asyncio
import datetime
import enum
import os
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any, Protocol, Self, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer, disjoint_base

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

# A file descriptor: an int, or an object with fileno() (a file, a socket).
_FileDescriptor = int | _HasFileno
# Anything that exports a buffer. NumPy arrays are listed next to Buffer: with
# python_version = 3.11 NumPy's stubs declare no __buffer__, so they are not Buffers to mypy.
_Buffer = Buffer | npt.NDArray[Any]
_StrOrBytesPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]
# A duration: seconds, or a timedelta.
_Timeout = float | datetime.timedelta
# A batch argument: one int for every operation, or one integer per operation.
_IntArg = int | Sequence[int] | npt.NDArray[np.integer[Any]]
# A batch fd argument: one fd (or object with fileno()) for every operation, or one per operation.
_FdArg = _FileDescriptor | Sequence[int] | npt.NDArray[np.integer[Any]]

CQE_DTYPE: np.dtype[np.void]
CQE32_DTYPE: np.dtype[np.void]  # the 32-byte completions of SetupFlags.CQE32 rings
SQE_DTYPE: np.dtype[np.void]  # the kernel's 64-byte io_uring_sqe (push_sqes)
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

# --- fs: types ---
AT_FDCWD: int
STATX_SIZE: int
STATX_DTYPE: np.dtype[np.void]

class StatxMask(enum.IntFlag):
    TYPE = 0x1
    MODE = 0x2
    NLINK = 0x4
    UID = 0x8
    GID = 0x10
    ATIME = 0x20
    MTIME = 0x40
    CTIME = 0x80
    INO = 0x100
    SIZE = 0x200
    BLOCKS = 0x400
    BASIC_STATS = 0x7FF
    BTIME = 0x800
    MNT_ID = 0x1000
    DIOALIGN = 0x2000
    MNT_ID_UNIQUE = 0x4000
    SUBVOL = 0x8000
    WRITE_ATOMIC = 0x10000
    DIO_READ_ALIGN = 0x20000

class AtFlags(enum.IntFlag):
    SYMLINK_NOFOLLOW = 0x100
    REMOVEDIR = 0x200
    SYMLINK_FOLLOW = 0x400
    NO_AUTOMOUNT = 0x800
    EMPTY_PATH = 0x1000
    STATX_FORCE_SYNC = 0x2000
    STATX_DONT_SYNC = 0x4000

class ResolveFlags(enum.IntFlag):
    NO_XDEV = 0x01
    NO_MAGICLINKS = 0x02
    NO_SYMLINKS = 0x04
    BENEATH = 0x08
    IN_ROOT = 0x10
    CACHED = 0x20

class FallocateFlags(enum.IntFlag):
    KEEP_SIZE = 0x01
    PUNCH_HOLE = 0x02
    NO_HIDE_STALE = 0x04
    COLLAPSE_RANGE = 0x08
    ZERO_RANGE = 0x10
    INSERT_RANGE = 0x20
    UNSHARE_RANGE = 0x40
    WRITE_ZEROES = 0x80

class SyncFileRangeFlags(enum.IntFlag):
    WAIT_BEFORE = 1
    WRITE = 2
    WAIT_AFTER = 4

class RenameFlags(enum.IntFlag):
    NOREPLACE = 1
    EXCHANGE = 2
    WHITEOUT = 4

class XattrFlags(enum.IntFlag):
    CREATE = 1
    REPLACE = 2

class Statx:
    """The output of a statx operation: a 256-byte struct statx that belongs to no ring."""

    def __init__(self) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    @property
    def stx_mask(self) -> StatxMask: ...
    @property
    def st_mode(self) -> int: ...
    @property
    def st_ino(self) -> int: ...
    @property
    def st_dev(self) -> int: ...
    @property
    def st_rdev(self) -> int: ...
    @property
    def st_nlink(self) -> int: ...
    @property
    def st_uid(self) -> int: ...
    @property
    def st_gid(self) -> int: ...
    @property
    def st_size(self) -> int: ...
    @property
    def st_blksize(self) -> int: ...
    @property
    def st_blocks(self) -> int: ...
    @property
    def st_atime(self) -> float: ...
    @property
    def st_mtime(self) -> float: ...
    @property
    def st_ctime(self) -> float: ...
    @property
    def st_birthtime(self) -> float | None: ...
    @property
    def st_atime_ns(self) -> int: ...
    @property
    def st_mtime_ns(self) -> int: ...
    @property
    def st_ctime_ns(self) -> int: ...
    @property
    def st_birthtime_ns(self) -> int | None: ...
    @property
    def stx_attributes(self) -> int: ...
    @property
    def stx_attributes_mask(self) -> int: ...
    @property
    def stx_mnt_id(self) -> int: ...
    @property
    def stx_dio_mem_align(self) -> int: ...
    @property
    def stx_dio_offset_align(self) -> int: ...
    @property
    def stx_subvol(self) -> int: ...

# --- control: types ---
FUTEX_BITSET_MATCH_ANY: int
FUTEX_WAITV_MAX: int
EPOLL_EVENT_SIZE: int
EPOLL_EVENT_DTYPE: np.dtype[np.void]
EPOLL_CTL_ADD: int
EPOLL_CTL_DEL: int
EPOLL_CTL_MOD: int

class TimeoutFlags(enum.IntFlag):
    ABS = 1
    UPDATE = 2
    BOOTTIME = 4
    REALTIME = 8
    LINK_TIMEOUT_UPDATE = 16
    ETIME_SUCCESS = 32
    MULTISHOT = 64

class CancelFlags(enum.IntFlag):
    ALL = 1
    FD = 2
    ANY = 4
    FD_FIXED = 8
    USERDATA = 16
    OP = 32

class PollFlags(enum.IntFlag):
    ADD_MULTI = 1
    UPDATE_EVENTS = 2
    UPDATE_USER_DATA = 4
    ADD_LEVEL = 8

class NopFlags(enum.IntFlag):
    INJECT_RESULT = 1
    FILE = 2
    FIXED_FILE = 4
    FIXED_BUFFER = 8
    TW = 16
    CQE32 = 32

class FutexFlags(enum.IntFlag):
    SIZE_U8 = 0
    SIZE_U16 = 1
    SIZE_U32 = 2
    SIZE_U64 = 3
    NUMA = 4
    PRIVATE = 128

class FixedFdFlags(enum.IntFlag):
    NO_CLOEXEC = 1

class Siginfo:
    """The output of a waitid operation: a 128-byte siginfo_t that belongs to no ring."""

    def __init__(self) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    @property
    def si_signo(self) -> int: ...
    @property
    def si_errno(self) -> int: ...
    @property
    def si_code(self) -> int: ...
    @property
    def si_pid(self) -> int: ...
    @property
    def si_uid(self) -> int: ...
    @property
    def si_status(self) -> int: ...

# --- net and buffers: types ---
# (their type aliases follow class Cqe: an alias cannot name a class before its definition)

class SockAddr:
    """A socket address: an input copied from a Python address, or an accept() output."""

    def __init__(self, address: _Address | None = None) -> None: ...
    @staticmethod
    def from_bytes(data: _Buffer) -> SockAddr: ...
    @property
    def family(self) -> int: ...
    @property
    def addrlen(self) -> int: ...
    @property
    def address(self) -> _PyAddress | None: ...
    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object) -> bool: ...
    __hash__: None  # type: ignore[assignment]

class Msghdr:
    """A struct msghdr (iovecs, name, control) for sendmsg/recvmsg, kept alive in flight."""

    def __init__(
        self,
        buffers: Sequence[_Buffer] = (),
        *,
        name: _Address | bool | int | None = None,
        control: int | _Buffer | Sequence[tuple[int, int, _Buffer]] | None = None,
    ) -> None: ...
    @property
    def buffers(self) -> tuple[_Buffer, ...]: ...
    @property
    def name(self) -> SockAddr | None: ...
    @property
    def namelen(self) -> int: ...
    @property
    def name_capacity(self) -> int: ...
    @property
    def controllen(self) -> int: ...
    @property
    def control_capacity(self) -> int: ...
    @property
    def flags(self) -> int: ...
    @property
    def control(self) -> bytes: ...
    @property
    def ancdata(self) -> list[tuple[int, int, bytes]]: ...

class BufferRing:
    """A registered provided-buffer ring (IORING_REGISTER_PBUF_RING)."""

    def __init__(
        self,
        ring: IoUring,
        bgid: int,
        entries: int,
        buf_size: int,
        *,
        incremental: bool = False,
        populate: bool = True,
    ) -> None: ...
    @property
    def bgid(self) -> int: ...
    @property
    def entries(self) -> int: ...
    @property
    def buf_size(self) -> int: ...
    @property
    def incremental(self) -> bool: ...
    @property
    def registered(self) -> bool: ...
    @property
    def tail(self) -> int: ...
    @property
    def memory(self) -> memoryview: ...
    def head(self) -> int: ...
    def buffer(self, bid: int) -> memoryview: ...
    def get(self, cqe: _CqeLike) -> memoryview: ...
    def put(self, cqe: _CqeLike) -> None: ...
    def recycle(self, bid: int, length: int | None = None) -> None: ...
    def bundle(self, cqe: _CqeLike) -> list[tuple[int, memoryview]]: ...
    def unregister(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *args: object) -> None: ...

def parse_cmsgs(data: _Buffer) -> list[tuple[int, int, bytes]]: ...
def aio_dispatch(
    ring: IoUring,
    tables: list[dict[int, Any] | None],
    future_type: type,
    batch_out: npt.NDArray[np.void],
    timeout: float | None = 0.0,
    /,
) -> int: ...
def aio_flush(
    ring: IoUring,
    tables: list[dict[int, Any] | None],
    future_type: type,
    batch_out: npt.NDArray[np.void],
    toggle: bool,
    /,
) -> tuple[int, bool]: ...
def aio_has_work(ring: IoUring, ignore: int, /) -> bool: ...
def batch_size(columns: dict[str, object], count: int | None = None) -> int: ...

@disjoint_base
class _AsyncRingBase:
    """The C part of iouring.aio.AsyncRing (the state of its per-await path)."""

    _loop: asyncio.AbstractEventLoop
    _ops: dict[int, Any]
    _new_future: Any
    _future_type: type | None
    _next_user_data: int
    _ud_first: int
    _ud_end: int
    _closed: bool
    _thread_checked: bool
    _flush_scheduled: bool
    def _start(self, method: Any, /, *args: Any, **kwargs: Any) -> _AioWait: ...
    def _begin(
        self, method: Any, /, *args: Any, **kwargs: Any
    ) -> tuple[int, asyncio.Future[int]]: ...

@final
class _AioWait:
    """The awaitable of one AsyncRing operation (from _start)."""

    def __await__(self) -> Generator[Any, None, int]: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> Any: ...
    def send(self, value: Any, /) -> Any: ...
    def throw(self, exc: Any, value: Any = None, tb: Any = None, /) -> Any: ...
    def close(self) -> None: ...

# --- helpers support (register_helpers.cpp) ---
def statx_fds(
    fds: npt.ArrayLike, out: _Buffer, mask: int = 0x7FF, flags: int = 0
) -> npt.NDArray[np.int32]: ...
def statx_paths(
    dir_fds: npt.ArrayLike,
    paths: Sequence[_StrOrBytesPath],
    flags: npt.ArrayLike,
    mask: int,
    out: _Buffer,
) -> npt.NDArray[np.int32]: ...

@final
class Cqe:
    """One completion: the kernel's ``io_uring_cqe`` copied out of the ring (immutable)."""

    def __new__(
        cls,
        user_data: int = 0,
        res: int = 0,
        flags: int = 0,
        big_cqe: tuple[int, int] | None = None,
    ) -> Self: ...
    @property
    def user_data(self) -> int: ...
    @property
    def res(self) -> int: ...
    @property
    def flags(self) -> int: ...
    @property
    def big_cqe(self) -> tuple[int, int] | None: ...
    @property
    def more(self) -> bool: ...
    @property
    def notif(self) -> bool: ...
    @property
    def sock_nonempty(self) -> bool: ...
    @property
    def buf_more(self) -> bool: ...
    @property
    def buffer_id(self) -> int | None: ...
    @property
    def dtype(self) -> np.dtype[np.void]: ...
    def result(self) -> int: ...
    def __iter__(self) -> Iterator[int]: ...
    def __getitem__(self, key: str, /) -> Any: ...  # like a CQE_DTYPE record: cqe["res"]
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

# A socket address: (host, port) / (host, port, flowinfo, scope_id) with a numeric host, an
# AF_UNIX path (a leading NUL names the abstract namespace), or a SockAddr.
_Address = (
    tuple[str, int]
    | tuple[str, int, int]
    | tuple[str, int, int, int]
    | str
    | bytes
    | os.PathLike[str]
    | os.PathLike[bytes]
    | SockAddr
)
_PyAddress = tuple[str, int] | tuple[str, int, int, int] | str | bytes
# A provided-buffer group: its id, or the BufferRing registered under it.
_BufGroup = int | BufferRing
# A completion: a Cqe, or a CQE_DTYPE record of a copy_cqes() array.
_CqeLike = Cqe | np.void

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
    @property
    def cmd(self) -> bytes: ...  # the extra 64 bytes of an SQE128 entry; b"" on 64-byte rings
    def fields(self) -> dict[str, int]: ...
    # BEGIN Sqe operations: generated by tools/gen_ops.py from tools/ops_spec.py
    # --- Sqe: core operations ---
    def prep_nop(self, user_data: int) -> Self: ...
    def prep_read(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int = -1
    ) -> Self: ...
    def prep_write(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int = -1
    ) -> Self: ...
    def prep_readv(
        self, user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int
    ) -> Self: ...
    def prep_writev(
        self, user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int
    ) -> Self: ...
    def prep_fsync(self, user_data: int, fd: _FileDescriptor, flags: int = 0) -> Self: ...
    def prep_read_fixed(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int, buffer_index: int
    ) -> Self: ...
    def prep_write_fixed(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int, buffer_index: int
    ) -> Self: ...
    def prep_readv_fixed(
        self,
        user_data: int,
        fd: _FileDescriptor,
        iovecs: Sequence[_Buffer],
        offset: int,
        buffer_index: int,
        flags: int = 0,
    ) -> Self: ...
    def prep_writev_fixed(
        self,
        user_data: int,
        fd: _FileDescriptor,
        iovecs: Sequence[_Buffer],
        offset: int,
        buffer_index: int,
        flags: int = 0,
    ) -> Self: ...
    def prep_splice(
        self,
        user_data: int,
        fd_in: _FileDescriptor,
        off_in: int,
        fd_out: _FileDescriptor,
        off_out: int,
        len: int,
        flags: int = 0,
    ) -> Self: ...
    def prep_openat(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mode: int = 0o666,
    ) -> Self: ...
    def prep_close(self, user_data: int, fd: _FileDescriptor) -> Self: ...
    # --- Sqe: fs operations ---
    def prep_readv2(
        self,
        user_data: int,
        fd: _FileDescriptor,
        iovecs: Sequence[_Buffer],
        offset: int,
        flags: int = 0,
    ) -> Self: ...
    def prep_writev2(
        self,
        user_data: int,
        fd: _FileDescriptor,
        iovecs: Sequence[_Buffer],
        offset: int,
        flags: int = 0,
    ) -> Self: ...
    def prep_sync_file_range(
        self, user_data: int, fd: _FileDescriptor, len: int, offset: int, flags: int = 0
    ) -> Self: ...
    def prep_fallocate(
        self, user_data: int, fd: _FileDescriptor, mode: int, offset: int, len: int
    ) -> Self: ...
    def prep_fadvise(
        self, user_data: int, fd: _FileDescriptor, offset: int, len: int, advice: int
    ) -> Self: ...
    def prep_madvise(self, user_data: int, buffer: _Buffer, advice: int) -> Self: ...
    def prep_ftruncate(self, user_data: int, fd: _FileDescriptor, len: int) -> Self: ...
    def prep_openat2(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mode: int = 0,
        resolve: int = 0,
    ) -> Self: ...
    def prep_openat_direct(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mode: int,
        file_index: int,
    ) -> Self: ...
    def prep_openat2_direct(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mode: int,
        resolve: int,
        file_index: int,
    ) -> Self: ...
    def prep_close_direct(self, user_data: int, file_index: int) -> Self: ...
    def prep_statx(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mask: int,
        statxbuf: Statx | _Buffer,
    ) -> Self: ...
    def prep_renameat(
        self,
        user_data: int,
        old_dir_fd: _FileDescriptor | None,
        old_path: _StrOrBytesPath,
        new_dir_fd: _FileDescriptor | None,
        new_path: _StrOrBytesPath,
        flags: int = 0,
    ) -> Self: ...
    def prep_unlinkat(
        self, user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, flags: int = 0
    ) -> Self: ...
    def prep_mkdirat(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        mode: int = 0o777,
    ) -> Self: ...
    def prep_symlinkat(
        self,
        user_data: int,
        target: _StrOrBytesPath,
        new_dir_fd: _FileDescriptor | None,
        link_path: _StrOrBytesPath,
    ) -> Self: ...
    def prep_linkat(
        self,
        user_data: int,
        old_dir_fd: _FileDescriptor | None,
        old_path: _StrOrBytesPath,
        new_dir_fd: _FileDescriptor | None,
        new_path: _StrOrBytesPath,
        flags: int = 0,
    ) -> Self: ...
    def prep_getxattr(
        self, user_data: int, name: str | bytes, value: _Buffer, path: _StrOrBytesPath
    ) -> Self: ...
    def prep_setxattr(
        self,
        user_data: int,
        name: str | bytes,
        value: _Buffer,
        path: _StrOrBytesPath,
        flags: int = 0,
    ) -> Self: ...
    def prep_fgetxattr(
        self, user_data: int, fd: _FileDescriptor, name: str | bytes, value: _Buffer
    ) -> Self: ...
    def prep_fsetxattr(
        self, user_data: int, fd: _FileDescriptor, name: str | bytes, value: _Buffer, flags: int = 0
    ) -> Self: ...
    def prep_tee(
        self,
        user_data: int,
        fd_in: _FileDescriptor,
        fd_out: _FileDescriptor,
        len: int,
        flags: int = 0,
    ) -> Self: ...
    def prep_pipe(self, user_data: int, fds: _Buffer, flags: int = 0) -> Self: ...
    def prep_pipe_direct(
        self, user_data: int, fds: _Buffer, flags: int, file_index: int
    ) -> Self: ...
    # --- Sqe: control operations ---
    def prep_timeout(
        self, user_data: int, ts: _Timeout, count: int = 0, flags: int = 0
    ) -> Self: ...
    def prep_timeout_remove(
        self, user_data: int, target_user_data: int, flags: int = 0
    ) -> Self: ...
    def prep_timeout_update(
        self, user_data: int, ts: _Timeout, target_user_data: int, flags: int = 0
    ) -> Self: ...
    def prep_link_timeout(self, user_data: int, ts: _Timeout, flags: int = 0) -> Self: ...
    def prep_cancel(
        self,
        user_data: int,
        target_user_data: int = 0,
        flags: int = 0,
        *,
        fd: _FileDescriptor | None = None,
        op: int | None = None,
    ) -> Self: ...
    def prep_cancel_fd(self, user_data: int, fd: _FileDescriptor, flags: int = 0) -> Self: ...
    def prep_poll_add(
        self, user_data: int, fd: _FileDescriptor, poll_mask: int, flags: int = 0
    ) -> Self: ...
    def prep_poll_multishot(self, user_data: int, fd: _FileDescriptor, poll_mask: int) -> Self: ...
    def prep_poll_remove(self, user_data: int, target_user_data: int) -> Self: ...
    def prep_poll_update(
        self, user_data: int, old_user_data: int, new_user_data: int, poll_mask: int, flags: int
    ) -> Self: ...
    def prep_epoll_ctl(
        self,
        user_data: int,
        epfd: _FileDescriptor,
        fd: _FileDescriptor,
        op: int,
        events: int = 0,
        data: int | None = None,
    ) -> Self: ...
    def prep_epoll_wait(
        self, user_data: int, epfd: _FileDescriptor, events: _Buffer, flags: int = 0
    ) -> Self: ...
    def prep_msg_ring(
        self,
        user_data: int,
        fd: _FileDescriptor,
        len: int,
        data: int,
        cqe_flags: int = 0,
        *,
        more: bool = True,
    ) -> Self: ...
    def prep_msg_ring_fd(
        self,
        user_data: int,
        fd: _FileDescriptor,
        source_fd: int,
        target_fd: int,
        data: int = 0,
        *,
        post_cqe: bool = False,
    ) -> Self: ...
    def prep_msg_ring_fd_alloc(
        self,
        user_data: int,
        fd: _FileDescriptor,
        source_fd: int,
        data: int = 0,
        *,
        post_cqe: bool = False,
    ) -> Self: ...
    def prep_waitid(
        self,
        user_data: int,
        idtype: int,
        id: int,
        infop: Siginfo | _Buffer | None,
        options: int,
        flags: int = 0,
    ) -> Self: ...
    def prep_futex_wait(
        self,
        user_data: int,
        futex: _Buffer,
        val: int,
        mask: int = 0xFFFFFFFF,
        futex_flags: int = 2,
        flags: int = 0,
    ) -> Self: ...
    def prep_futex_wake(
        self,
        user_data: int,
        futex: _Buffer,
        val: int,
        mask: int = 0xFFFFFFFF,
        futex_flags: int = 2,
        flags: int = 0,
    ) -> Self: ...
    def prep_futex_waitv(
        self,
        user_data: int,
        futexes: Sequence[tuple[_Buffer, int] | tuple[_Buffer, int, int]],
        flags: int = 0,
    ) -> Self: ...
    def prep_fixed_fd_install(self, user_data: int, fd: int, flags: int = 0) -> Self: ...
    def prep_files_update(
        self, user_data: int, fds: _Buffer | Sequence[_FileDescriptor], offset: int
    ) -> Self: ...
    def prep_nop_inject(self, user_data: int, res: int, flags: int = 0) -> Self: ...
    # --- Sqe: net operations ---
    def prep_socket(
        self, user_data: int, domain: int, type: int, protocol: int = 0, flags: int = 0
    ) -> Self: ...
    def prep_socket_direct(
        self, user_data: int, domain: int, type: int, protocol: int, file_index: int, flags: int = 0
    ) -> Self: ...
    def prep_socket_direct_alloc(
        self, user_data: int, domain: int, type: int, protocol: int = 0, flags: int = 0
    ) -> Self: ...
    def prep_bind(self, user_data: int, fd: _FileDescriptor, addr: _Address) -> Self: ...
    def prep_listen(self, user_data: int, fd: _FileDescriptor, backlog: int) -> Self: ...
    def prep_accept(
        self,
        user_data: int,
        fd: _FileDescriptor,
        addr: SockAddr | None = None,
        flags: int = 0,
        *,
        ioprio: int = 0,
    ) -> Self: ...
    def prep_accept_direct(
        self,
        user_data: int,
        fd: _FileDescriptor,
        addr: SockAddr | None = None,
        flags: int = 0,
        file_index: int = ...,
    ) -> Self: ...
    def prep_multishot_accept(
        self, user_data: int, fd: _FileDescriptor, addr: SockAddr | None = None, flags: int = 0
    ) -> Self: ...
    def prep_multishot_accept_direct(
        self, user_data: int, fd: _FileDescriptor, addr: SockAddr | None = None, flags: int = 0
    ) -> Self: ...
    def prep_connect(self, user_data: int, fd: _FileDescriptor, addr: _Address) -> Self: ...
    def prep_send(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buffer: _Buffer,
        flags: int = 0,
        *,
        ioprio: int = 0,
    ) -> Self: ...
    def prep_send_vectorized(
        self, user_data: int, fd: _FileDescriptor, buffers: Sequence[_Buffer], flags: int = 0
    ) -> Self: ...
    def prep_sendto(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, addr: _Address, flags: int = 0
    ) -> Self: ...
    def prep_send_zc(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buffer: _Buffer,
        flags: int = 0,
        zc_flags: int = 0,
        *,
        addr: _Address | None = None,
    ) -> Self: ...
    def prep_send_zc_fixed(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buffer: _Buffer,
        buffer_index: int,
        flags: int = 0,
        zc_flags: int = 0,
        *,
        addr: _Address | None = None,
    ) -> Self: ...
    def prep_send_bundle(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        len: int = 0,
        flags: int = 0,
    ) -> Self: ...
    def prep_recv(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buffer: _Buffer,
        flags: int = 0,
        *,
        ioprio: int = 0,
    ) -> Self: ...
    def prep_recv_provided(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        len: int = 0,
        flags: int = 0,
        *,
        ioprio: int = 0,
    ) -> Self: ...
    def prep_recv_multishot(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        flags: int = 0,
        len: int = 0,
    ) -> Self: ...
    def prep_recv_bundle(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        flags: int = 0,
        *,
        multishot: bool = False,
    ) -> Self: ...
    def prep_sendmsg(
        self, user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0
    ) -> Self: ...
    def prep_sendmsg_zc(
        self, user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0
    ) -> Self: ...
    def prep_sendmsg_zc_fixed(
        self, user_data: int, fd: _FileDescriptor, msg: Msghdr, buffer_index: int, flags: int = 0
    ) -> Self: ...
    def prep_recvmsg(
        self, user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0
    ) -> Self: ...
    def prep_recvmsg_multishot(
        self, user_data: int, fd: _FileDescriptor, msg: Msghdr, buf_group: _BufGroup, flags: int = 0
    ) -> Self: ...
    def prep_shutdown(self, user_data: int, fd: _FileDescriptor, how: int) -> Self: ...
    def prep_cmd_sock(
        self,
        user_data: int,
        cmd_op: int,
        fd: _FileDescriptor,
        level: int = 0,
        optname: int = 0,
        optval: _Buffer | int | None = None,
    ) -> Self: ...
    def prep_getsockopt(
        self, user_data: int, fd: _FileDescriptor, level: int, optname: int, optval: _Buffer
    ) -> Self: ...
    def prep_setsockopt(
        self, user_data: int, fd: _FileDescriptor, level: int, optname: int, optval: _Buffer | int
    ) -> Self: ...
    def prep_tx_timestamp(self, user_data: int, fd: _FileDescriptor) -> Self: ...
    # --- Sqe: buffer operations ---
    def prep_provide_buffers(
        self, user_data: int, buffer: _Buffer, buf_len: int, nr: int, bgid: int, bid: int = 0
    ) -> Self: ...
    def prep_remove_buffers(self, user_data: int, nr: int, bgid: int) -> Self: ...
    def prep_read_provided(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        len: int = 0,
        offset: int = -1,
    ) -> Self: ...
    def prep_read_multishot(
        self, user_data: int, fd: _FileDescriptor, nbytes: int, offset: int, buf_group: _BufGroup
    ) -> Self: ...
    # END Sqe operations

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
        wq_fd: _FileDescriptor | None = None,
    ) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *args: object) -> None: ...
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
    def live_tags(self) -> int: ...
    @property
    def pinned(self) -> int: ...
    def get_sqe(self) -> Sqe: ...
    def get_sqe_raw(self) -> Sqe: ...
    def flush_sq(self) -> int: ...
    def submit(self) -> int: ...
    def submit_and_wait(
        self,
        wait_nr: int,
        *,
        timeout: _Timeout | None = None,
        min_wait: _Timeout | None = None,
        sigmask: Iterable[int] | None = None,
        deadline: float | None = None,
        iowait: bool = True,
    ) -> int: ...
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
        min_wait: _Timeout | None = None,
        sigmask: Iterable[int] | None = None,
        deadline: float | None = None,
        iowait: bool = True,
    ) -> npt.NDArray[np.void]: ...
    def submit_and_copy_cqes(
        self,
        out: npt.NDArray[np.void],
        wait_nr: int = 0,
        *,
        timeout: _Timeout | None = None,
        min_wait: _Timeout | None = None,
        sigmask: Iterable[int] | None = None,
        deadline: float | None = None,
        iowait: bool = True,
    ) -> int: ...
    def copy_cqe(
        self,
        *,
        timeout: _Timeout | None = None,
        min_wait: _Timeout | None = None,
        sigmask: Iterable[int] | None = None,
        deadline: float | None = None,
        iowait: bool = True,
    ) -> Cqe: ...
    def cqe_seen(self, cqe: Cqe | None = None) -> None: ...
    def cq_advance(self, count: int) -> None: ...
    def peek_cqe(self) -> Cqe | None: ...
    def register_files(
        self, fds: Iterable[_FileDescriptor], *, tags: Iterable[int] | None = None
    ) -> None: ...
    def register_files_sparse(self, count: int) -> None: ...
    def register_files_update(
        self, offset: int, fds: Iterable[_FileDescriptor], *, tags: Iterable[int] | None = None
    ) -> int: ...
    def unregister_files(self) -> None: ...
    def register_buffers(
        self, buffers: Iterable[_Buffer], *, tags: Iterable[int] | None = None
    ) -> None: ...
    def unregister_buffers(self) -> None: ...
    def register_eventfd(self, fd: _FileDescriptor) -> None: ...
    def unregister_eventfd(self) -> None: ...
    @property
    def cq_eventfd_enabled(self) -> bool: ...
    def cq_eventfd_toggle(self, enabled: bool) -> None: ...
    def enable_rings(self) -> None: ...
    def probe_ops(self) -> list[int]: ...
    # BEGIN IoUring operations: generated by tools/gen_ops.py from tools/ops_spec.py
    # --- IoUring: core operations ---
    def nop(self, user_data: int) -> Sqe: ...
    def read(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int = -1
    ) -> Sqe: ...
    def write(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int = -1
    ) -> Sqe: ...
    def readv(
        self, user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int
    ) -> Sqe: ...
    def writev(
        self, user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int
    ) -> Sqe: ...
    def fsync(self, user_data: int, fd: _FileDescriptor, flags: int = 0) -> Sqe: ...
    def read_fixed(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int, buffer_index: int
    ) -> Sqe: ...
    def write_fixed(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int, buffer_index: int
    ) -> Sqe: ...
    def readv_fixed(
        self,
        user_data: int,
        fd: _FileDescriptor,
        iovecs: Sequence[_Buffer],
        offset: int,
        buffer_index: int,
        flags: int = 0,
    ) -> Sqe: ...
    def writev_fixed(
        self,
        user_data: int,
        fd: _FileDescriptor,
        iovecs: Sequence[_Buffer],
        offset: int,
        buffer_index: int,
        flags: int = 0,
    ) -> Sqe: ...
    def splice(
        self,
        user_data: int,
        fd_in: _FileDescriptor,
        off_in: int,
        fd_out: _FileDescriptor,
        off_out: int,
        len: int,
        flags: int = 0,
    ) -> Sqe: ...
    def openat(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mode: int = 0o666,
    ) -> Sqe: ...
    def close_fd(self, user_data: int, fd: _FileDescriptor) -> Sqe: ...
    # --- IoUring: fs operations ---
    def readv2(
        self,
        user_data: int,
        fd: _FileDescriptor,
        iovecs: Sequence[_Buffer],
        offset: int,
        flags: int = 0,
    ) -> Sqe: ...
    def writev2(
        self,
        user_data: int,
        fd: _FileDescriptor,
        iovecs: Sequence[_Buffer],
        offset: int,
        flags: int = 0,
    ) -> Sqe: ...
    def sync_file_range(
        self, user_data: int, fd: _FileDescriptor, len: int, offset: int, flags: int = 0
    ) -> Sqe: ...
    def fallocate(
        self, user_data: int, fd: _FileDescriptor, mode: int, offset: int, len: int
    ) -> Sqe: ...
    def fadvise(
        self, user_data: int, fd: _FileDescriptor, offset: int, len: int, advice: int
    ) -> Sqe: ...
    def madvise(self, user_data: int, buffer: _Buffer, advice: int) -> Sqe: ...
    def ftruncate(self, user_data: int, fd: _FileDescriptor, len: int) -> Sqe: ...
    def openat2(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mode: int = 0,
        resolve: int = 0,
    ) -> Sqe: ...
    def openat_direct(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mode: int,
        file_index: int,
    ) -> Sqe: ...
    def openat2_direct(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mode: int,
        resolve: int,
        file_index: int,
    ) -> Sqe: ...
    def close_direct(self, user_data: int, file_index: int) -> Sqe: ...
    def statx(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        flags: int,
        mask: int,
        statxbuf: Statx | _Buffer,
    ) -> Sqe: ...
    def renameat(
        self,
        user_data: int,
        old_dir_fd: _FileDescriptor | None,
        old_path: _StrOrBytesPath,
        new_dir_fd: _FileDescriptor | None,
        new_path: _StrOrBytesPath,
        flags: int = 0,
    ) -> Sqe: ...
    def unlinkat(
        self, user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, flags: int = 0
    ) -> Sqe: ...
    def mkdirat(
        self,
        user_data: int,
        dir_fd: _FileDescriptor | None,
        path: _StrOrBytesPath,
        mode: int = 0o777,
    ) -> Sqe: ...
    def symlinkat(
        self,
        user_data: int,
        target: _StrOrBytesPath,
        new_dir_fd: _FileDescriptor | None,
        link_path: _StrOrBytesPath,
    ) -> Sqe: ...
    def linkat(
        self,
        user_data: int,
        old_dir_fd: _FileDescriptor | None,
        old_path: _StrOrBytesPath,
        new_dir_fd: _FileDescriptor | None,
        new_path: _StrOrBytesPath,
        flags: int = 0,
    ) -> Sqe: ...
    def getxattr(
        self, user_data: int, name: str | bytes, value: _Buffer, path: _StrOrBytesPath
    ) -> Sqe: ...
    def setxattr(
        self,
        user_data: int,
        name: str | bytes,
        value: _Buffer,
        path: _StrOrBytesPath,
        flags: int = 0,
    ) -> Sqe: ...
    def fgetxattr(
        self, user_data: int, fd: _FileDescriptor, name: str | bytes, value: _Buffer
    ) -> Sqe: ...
    def fsetxattr(
        self, user_data: int, fd: _FileDescriptor, name: str | bytes, value: _Buffer, flags: int = 0
    ) -> Sqe: ...
    def tee(
        self,
        user_data: int,
        fd_in: _FileDescriptor,
        fd_out: _FileDescriptor,
        len: int,
        flags: int = 0,
    ) -> Sqe: ...
    def pipe(self, user_data: int, fds: _Buffer, flags: int = 0) -> Sqe: ...
    def pipe_direct(self, user_data: int, fds: _Buffer, flags: int, file_index: int) -> Sqe: ...
    # --- IoUring: control operations ---
    def timeout(self, user_data: int, ts: _Timeout, count: int = 0, flags: int = 0) -> Sqe: ...
    def timeout_remove(self, user_data: int, target_user_data: int, flags: int = 0) -> Sqe: ...
    def timeout_update(
        self, user_data: int, ts: _Timeout, target_user_data: int, flags: int = 0
    ) -> Sqe: ...
    def link_timeout(self, user_data: int, ts: _Timeout, flags: int = 0) -> Sqe: ...
    def cancel(
        self,
        user_data: int,
        target_user_data: int = 0,
        flags: int = 0,
        *,
        fd: _FileDescriptor | None = None,
        op: int | None = None,
    ) -> Sqe: ...
    def cancel_fd(self, user_data: int, fd: _FileDescriptor, flags: int = 0) -> Sqe: ...
    def poll_add(
        self, user_data: int, fd: _FileDescriptor, poll_mask: int, flags: int = 0
    ) -> Sqe: ...
    def poll_multishot(self, user_data: int, fd: _FileDescriptor, poll_mask: int) -> Sqe: ...
    def poll_remove(self, user_data: int, target_user_data: int) -> Sqe: ...
    def poll_update(
        self, user_data: int, old_user_data: int, new_user_data: int, poll_mask: int, flags: int
    ) -> Sqe: ...
    def epoll_ctl(
        self,
        user_data: int,
        epfd: _FileDescriptor,
        fd: _FileDescriptor,
        op: int,
        events: int = 0,
        data: int | None = None,
    ) -> Sqe: ...
    def epoll_wait(
        self, user_data: int, epfd: _FileDescriptor, events: _Buffer, flags: int = 0
    ) -> Sqe: ...
    def msg_ring(
        self,
        user_data: int,
        fd: _FileDescriptor,
        len: int,
        data: int,
        cqe_flags: int = 0,
        *,
        more: bool = True,
    ) -> Sqe: ...
    def msg_ring_fd(
        self,
        user_data: int,
        fd: _FileDescriptor,
        source_fd: int,
        target_fd: int,
        data: int = 0,
        *,
        post_cqe: bool = False,
    ) -> Sqe: ...
    def msg_ring_fd_alloc(
        self,
        user_data: int,
        fd: _FileDescriptor,
        source_fd: int,
        data: int = 0,
        *,
        post_cqe: bool = False,
    ) -> Sqe: ...
    def waitid(
        self,
        user_data: int,
        idtype: int,
        id: int,
        infop: Siginfo | _Buffer | None,
        options: int,
        flags: int = 0,
    ) -> Sqe: ...
    def futex_wait(
        self,
        user_data: int,
        futex: _Buffer,
        val: int,
        mask: int = 0xFFFFFFFF,
        futex_flags: int = 2,
        flags: int = 0,
    ) -> Sqe: ...
    def futex_wake(
        self,
        user_data: int,
        futex: _Buffer,
        val: int,
        mask: int = 0xFFFFFFFF,
        futex_flags: int = 2,
        flags: int = 0,
    ) -> Sqe: ...
    def futex_waitv(
        self,
        user_data: int,
        futexes: Sequence[tuple[_Buffer, int] | tuple[_Buffer, int, int]],
        flags: int = 0,
    ) -> Sqe: ...
    def fixed_fd_install(self, user_data: int, fd: int, flags: int = 0) -> Sqe: ...
    def files_update(
        self, user_data: int, fds: _Buffer | Sequence[_FileDescriptor], offset: int
    ) -> Sqe: ...
    def nop_inject(self, user_data: int, res: int, flags: int = 0) -> Sqe: ...
    # --- IoUring: net operations ---
    def socket(
        self, user_data: int, domain: int, type: int, protocol: int = 0, flags: int = 0
    ) -> Sqe: ...
    def socket_direct(
        self, user_data: int, domain: int, type: int, protocol: int, file_index: int, flags: int = 0
    ) -> Sqe: ...
    def socket_direct_alloc(
        self, user_data: int, domain: int, type: int, protocol: int = 0, flags: int = 0
    ) -> Sqe: ...
    def bind(self, user_data: int, fd: _FileDescriptor, addr: _Address) -> Sqe: ...
    def listen(self, user_data: int, fd: _FileDescriptor, backlog: int) -> Sqe: ...
    def accept(
        self,
        user_data: int,
        fd: _FileDescriptor,
        addr: SockAddr | None = None,
        flags: int = 0,
        *,
        ioprio: int = 0,
    ) -> Sqe: ...
    def accept_direct(
        self,
        user_data: int,
        fd: _FileDescriptor,
        addr: SockAddr | None = None,
        flags: int = 0,
        file_index: int = ...,
    ) -> Sqe: ...
    def multishot_accept(
        self, user_data: int, fd: _FileDescriptor, addr: SockAddr | None = None, flags: int = 0
    ) -> Sqe: ...
    def multishot_accept_direct(
        self, user_data: int, fd: _FileDescriptor, addr: SockAddr | None = None, flags: int = 0
    ) -> Sqe: ...
    def connect(self, user_data: int, fd: _FileDescriptor, addr: _Address) -> Sqe: ...
    def send(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buffer: _Buffer,
        flags: int = 0,
        *,
        ioprio: int = 0,
    ) -> Sqe: ...
    def send_vectorized(
        self, user_data: int, fd: _FileDescriptor, buffers: Sequence[_Buffer], flags: int = 0
    ) -> Sqe: ...
    def sendto(
        self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, addr: _Address, flags: int = 0
    ) -> Sqe: ...
    def send_zc(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buffer: _Buffer,
        flags: int = 0,
        zc_flags: int = 0,
        *,
        addr: _Address | None = None,
    ) -> Sqe: ...
    def send_zc_fixed(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buffer: _Buffer,
        buffer_index: int,
        flags: int = 0,
        zc_flags: int = 0,
        *,
        addr: _Address | None = None,
    ) -> Sqe: ...
    def send_bundle(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        len: int = 0,
        flags: int = 0,
    ) -> Sqe: ...
    def recv(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buffer: _Buffer,
        flags: int = 0,
        *,
        ioprio: int = 0,
    ) -> Sqe: ...
    def recv_provided(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        len: int = 0,
        flags: int = 0,
        *,
        ioprio: int = 0,
    ) -> Sqe: ...
    def recv_multishot(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        flags: int = 0,
        len: int = 0,
    ) -> Sqe: ...
    def recv_bundle(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        flags: int = 0,
        *,
        multishot: bool = False,
    ) -> Sqe: ...
    def sendmsg(self, user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0) -> Sqe: ...
    def sendmsg_zc(
        self, user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0
    ) -> Sqe: ...
    def sendmsg_zc_fixed(
        self, user_data: int, fd: _FileDescriptor, msg: Msghdr, buffer_index: int, flags: int = 0
    ) -> Sqe: ...
    def recvmsg(self, user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0) -> Sqe: ...
    def recvmsg_multishot(
        self, user_data: int, fd: _FileDescriptor, msg: Msghdr, buf_group: _BufGroup, flags: int = 0
    ) -> Sqe: ...
    def shutdown(self, user_data: int, fd: _FileDescriptor, how: int) -> Sqe: ...
    def cmd_sock(
        self,
        user_data: int,
        cmd_op: int,
        fd: _FileDescriptor,
        level: int = 0,
        optname: int = 0,
        optval: _Buffer | int | None = None,
    ) -> Sqe: ...
    def getsockopt(
        self, user_data: int, fd: _FileDescriptor, level: int, optname: int, optval: _Buffer
    ) -> Sqe: ...
    def setsockopt(
        self, user_data: int, fd: _FileDescriptor, level: int, optname: int, optval: _Buffer | int
    ) -> Sqe: ...
    def tx_timestamp(self, user_data: int, fd: _FileDescriptor) -> Sqe: ...
    # --- IoUring: buffer operations ---
    def provide_buffers(
        self, user_data: int, buffer: _Buffer, buf_len: int, nr: int, bgid: int, bid: int = 0
    ) -> Sqe: ...
    def remove_buffers(self, user_data: int, nr: int, bgid: int) -> Sqe: ...
    def read_provided(
        self,
        user_data: int,
        fd: _FileDescriptor,
        buf_group: _BufGroup,
        len: int = 0,
        offset: int = -1,
    ) -> Sqe: ...
    def read_multishot(
        self, user_data: int, fd: _FileDescriptor, nbytes: int, offset: int, buf_group: _BufGroup
    ) -> Sqe: ...
    # END IoUring operations
    def register_buffer_ring(
        self,
        bgid: int,
        entries: int,
        buf_size: int,
        *,
        incremental: bool = False,
        populate: bool = True,
    ) -> BufferRing: ...
    def unregister_buffer_ring(self, bgid: int) -> None: ...
    # --- IoUring: registration ---
    def resize(self, *, sq_entries: int | None = None, cq_entries: int | None = None) -> None: ...
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
    def register_iowq_max_workers(
        self, bounded: int = 0, unbounded: int = 0
    ) -> tuple[int, int]: ...
    def register_sync_cancel(
        self,
        *,
        user_data: int | None = None,
        fd: _FileDescriptor | None = None,
        op: int | None = None,
        any: bool = False,
        all: bool = False,
        fixed_fd: bool = False,
        timeout: _Timeout | None = None,
    ) -> int: ...
    def register_clock(self, clockid: int) -> None: ...
    def register_wait_region(self, pages: int = 1) -> None: ...
    @property
    def wait_region_slots(self) -> int: ...
    @property
    def wait_region_waits(self) -> int: ...
    @staticmethod
    def query() -> dict[str, int]: ...
    @staticmethod
    def send_msg_ring(
        target: IoUring | int, data: int, len: int = 0, *, cqe_flags: int = 0
    ) -> None: ...
    def register_file_alloc_range(self, offset: int, length: int) -> None: ...
    def register_eventfd_async(self, fd: _FileDescriptor) -> None: ...
    def register_buffers_sparse(self, count: int) -> None: ...
    def register_buffers_update(
        self, offset: int, buffers: Iterable[_Buffer], *, tags: Iterable[int] | None = None
    ) -> int: ...
    def clone_buffers(
        self,
        source: IoUring,
        *,
        src_offset: int = 0,
        dst_offset: int = 0,
        count: int | None = None,
        replace: bool = False,
    ) -> None: ...
    def register_napi(
        self, busy_poll_us: int, prefer_busy_poll: bool = False, *, static_tracking: bool = False
    ) -> None: ...
    def napi_add_id(self, napi_id: int) -> None: ...
    def napi_del_id(self, napi_id: int) -> None: ...
    def unregister_napi(self) -> None: ...
    # --- IoUring: batch preparation ---
    def nop_batch(
        self, user_data: _IntArg, *, count: int | None = None, sqe_flags: _IntArg = 0
    ) -> int: ...
    def read_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        buffer: _Buffer,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
        rw_flags: _IntArg = 0,
    ) -> int: ...
    def write_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        buffer: _Buffer,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
        rw_flags: _IntArg = 0,
    ) -> int: ...
    def readv_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        buffer: _Buffer,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
        rw_flags: _IntArg = 0,
    ) -> int: ...
    def writev_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        buffer: _Buffer,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
        rw_flags: _IntArg = 0,
    ) -> int: ...
    def read_fixed_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        buffer_index: _IntArg,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
        rw_flags: _IntArg = 0,
    ) -> int: ...
    def write_fixed_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        buffer_index: _IntArg,
        offset: _IntArg,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
        rw_flags: _IntArg = 0,
    ) -> int: ...
    def fsync_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        flags: _IntArg = 0,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
    ) -> int: ...
    def close_batch(
        self, user_data: _IntArg, fd: _FdArg, *, count: int | None = None, sqe_flags: _IntArg = 0
    ) -> int: ...
    def openat_batch(
        self,
        user_data: _IntArg,
        dir_fd: _FdArg | None,
        paths: _StrOrBytesPath | Sequence[_StrOrBytesPath],
        flags: _IntArg,
        mode: _IntArg = 0o666,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
    ) -> int: ...
    def send_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        buffer: _Buffer,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
        flags: _IntArg = 0,
    ) -> int: ...
    def recv_batch(
        self,
        user_data: _IntArg,
        fd: _FdArg,
        buffer: _Buffer,
        length: _IntArg,
        buf_offset: _IntArg | None = None,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
        flags: _IntArg = 0,
    ) -> int: ...
    def statx_batch(
        self,
        user_data: _IntArg,
        dir_fd: _FdArg | None,
        paths: _StrOrBytesPath | Sequence[_StrOrBytesPath],
        flags: _IntArg,
        mask: _IntArg,
        out: _Buffer,
        *,
        count: int | None = None,
        sqe_flags: _IntArg = 0,
    ) -> int: ...
    def push_sqes(self, sqes: npt.NDArray[np.void], buffer: _Buffer | None = None) -> int: ...
