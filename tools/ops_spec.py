"""Every operation of IoUring and Sqe, once: the source tools/gen_ops.py generates from.

An entry is one operation, exposed twice by the bindings: as the one-call ring method
``IoUring.<name>(...) -> Sqe`` and as ``Sqe.<prep>(...) -> Self`` on a vacant SQE. From it
tools/gen_ops.py writes the ``def_op`` registration (cpp/bindings/generated/ops_<family>.inc,
included by the family's ``register_*_ops()``) and both stub blocks of python/iouring/_core.pyi.

Adding an operation: the core prep function (cpp/include/iouring/sqe_*.hpp), its converter
``make_<op>`` (cpp/bindings/register_ops*.cpp: Python arguments to a Prepared SQE and its
pins), an entry here, then ``python tools/gen_ops.py``, and its tests (tests/ops/). A new
opcode also gets its row in cpp/bindings/op_policy.hpp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The families in the order of the stub's sections; each has its generated include,
# cpp/bindings/generated/ops_<family>.inc.
FAMILIES = ("core", "fs", "control", "net", "buffer")


@dataclass(frozen=True)
class Op:
    name: str
    """The ring method's name (IoUring.<name>)."""
    family: str
    """One of FAMILIES: which register_*_ops() registers it and where the stub lists it."""
    make: str
    """The C++ converter (``make_<op>`` or a template instance): ``Prepared(py::handle...)``,
    or ``Prepared(const Ring&, py::handle...)`` when its checks need the ring."""
    args: str
    """The parameters after self as the stub writes them: names, stub types, defaults (``*``
    starts the keyword-only ones); the compiled module takes them in this order."""
    doc: str
    """The docstring, ending with the liburing man page it matches; the bindings insert the
    errors every operation shares before that last sentence."""
    prep: str = ""
    """The Sqe method's name; prep_<name> when empty."""
    kept: bool = False
    """Registered with def_kept_op: the ring keeps a buffer until it closes (provide_buffers)."""
    cpp_defaults: dict[str, str] = field(default_factory=dict)
    """C++ expressions of defaults the stub cannot spell as a literal (the stub writes ``...``
    or the value), by parameter name."""

    def __post_init__(self) -> None:
        if not self.prep:
            object.__setattr__(self, "prep", "prep_" + self.name)


# futex_wait and futex_wake take the same arguments (FUTEX2 words: any bit of the mask, 32 bits).
_FUTEX_ARGS = (
    "user_data: int, futex: _Buffer, val: int, mask: int = 0xFFFFFFFF, "
    "futex_flags: int = 2, flags: int = 0"
)
_FUTEX_DEFAULTS = {
    "mask": "py::int_(kFutexBitsetMatchAny)",
    "futex_flags": "py::int_(futex2::SIZE_U32)",
}

OPS = [
    Op(
        "nop",
        "core",
        make="make_nop",
        args="user_data: int",
        doc="Prepares a no-op that completes with res 0. Matches io_uring_prep_nop(3).",
    ),
    Op(
        "read",
        "core",
        make="make_rw<false>",
        args="user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int = -1",
        doc=(
            "Prepares a read of len(buffer) bytes from fd at offset (-1: the current position) "
            "into buffer, a writable bytes-like object kept alive until the completion is reaped. "
            "Raises TypeError for a read-only buffer. Matches io_uring_prep_read(3)."
        ),
    ),
    Op(
        "write",
        "core",
        make="make_rw<true>",
        args="user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int = -1",
        doc=(
            "Prepares a write of buffer (any bytes-like object, kept alive until the completion "
            "is reaped) to fd at offset (-1: the current position). Matches "
            "io_uring_prep_write(3)."
        ),
    ),
    Op(
        "readv",
        "core",
        make="make_rw_vectored<false>",
        args="user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int",
        doc=(
            "Prepares a vectored read into a sequence of writable buffers (at most 1024), kept "
            "alive with a private copy of the iovec array until the completion is reaped. Matches "
            "io_uring_prep_readv(3)."
        ),
    ),
    Op(
        "writev",
        "core",
        make="make_rw_vectored<true>",
        args="user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int",
        doc=(
            "Prepares a vectored write from a sequence of buffers (at most 1024). Matches "
            "io_uring_prep_writev(3)."
        ),
    ),
    Op(
        "fsync",
        "core",
        make="make_fsync",
        args="user_data: int, fd: _FileDescriptor, flags: int = 0",
        doc=(
            "Prepares an fsync of fd; flags=FsyncFlags.DATASYNC for fdatasync. Link it after "
            "writes (SqeFlags.IO_LINK) to order it. Matches io_uring_prep_fsync(3)."
        ),
    ),
    Op(
        "read_fixed",
        "core",
        make="make_rw_fixed<false>",
        args="user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int, buffer_index: int",
        doc=(
            "Prepares a read into registered buffer buffer_index; buffer must lie inside it (a "
            "memoryview slice of the registered object). Raises ValueError otherwise. Matches "
            "io_uring_prep_read_fixed(3)."
        ),
    ),
    Op(
        "write_fixed",
        "core",
        make="make_rw_fixed<true>",
        args="user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int, buffer_index: int",
        doc=(
            "Prepares a write from registered buffer buffer_index; buffer must lie inside it. "
            "Raises ValueError otherwise. Matches io_uring_prep_write_fixed(3)."
        ),
    ),
    Op(
        "readv_fixed",
        "core",
        make="make_rwv_fixed<false>",
        args=(
            "user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int, "
            "buffer_index: int, flags: int = 0"
        ),
        doc=(
            "Prepares a vectored read (6.15+) into iovecs, a sequence of writable buffers (at "
            "most 1024) that all lie inside registered buffer buffer_index (memoryview slices of "
            "the registered object), with preadv2(2) flags (os.RWF_*). The iovec array is a "
            "private copy kept until the completion is reaped. Raises TypeError for read-only "
            "buffers, ValueError for an iovec outside the registered buffer, an index out of "
            "range or a ring without registered buffers. Matches io_uring_prep_readv_fixed(3)."
        ),
    ),
    Op(
        "writev_fixed",
        "core",
        make="make_rwv_fixed<true>",
        args=(
            "user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int, "
            "buffer_index: int, flags: int = 0"
        ),
        doc=(
            "Prepares a vectored write (6.15+) from iovecs, a sequence of buffers (at most 1024) "
            "that all lie inside registered buffer buffer_index, with pwritev2(2) flags "
            "(os.RWF_*). Raises ValueError for an iovec outside the registered buffer, an index "
            "out of range or a ring without registered buffers. Matches "
            "io_uring_prep_writev_fixed(3)."
        ),
    ),
    Op(
        "splice",
        "core",
        make="make_splice",
        args=(
            "user_data: int, fd_in: _FileDescriptor, off_in: int, fd_out: _FileDescriptor, "
            "off_out: int, len: int, flags: int = 0"
        ),
        doc=(
            "Prepares a splice of len bytes from fd_in at off_in to fd_out at off_out; an offset "
            "of -1 means none (required for pipes). Raises ValueError for unknown bits in flags. "
            "Matches io_uring_prep_splice(3)."
        ),
    ),
    Op(
        "openat",
        "core",
        make="make_openat",
        args=(
            "user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, flags: int, "
            "mode: int = 0o666"
        ),
        doc=(
            "Prepares an openat of path (str, bytes or os.PathLike; a private copy is kept) "
            "relative to dir_fd (iouring.AT_FDCWD or None for the working directory); res is the "
            "new fd. Matches io_uring_prep_openat(3)."
        ),
    ),
    Op(
        "close_fd",
        "core",
        make="make_close",
        prep="prep_close",
        args="user_data: int, fd: _FileDescriptor",
        doc=(
            "Prepares a close of fd. (The ring method is close_fd because close() closes the "
            "ring.) Matches io_uring_prep_close(3)."
        ),
    ),
    Op(
        "readv2",
        "fs",
        make="make_rw_vectored2<false>",
        args=(
            "user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int, "
            "flags: int = 0"
        ),
        doc=(
            "Prepares a vectored read like readv() with preadv2(2) flags (os.RWF_*). Raises "
            "TypeError for read-only buffers. Matches io_uring_prep_readv2(3)."
        ),
    ),
    Op(
        "writev2",
        "fs",
        make="make_rw_vectored2<true>",
        args=(
            "user_data: int, fd: _FileDescriptor, iovecs: Sequence[_Buffer], offset: int, "
            "flags: int = 0"
        ),
        doc=(
            "Prepares a vectored write like writev() with pwritev2(2) flags (os.RWF_*). Matches "
            "io_uring_prep_writev2(3)."
        ),
    ),
    Op(
        "sync_file_range",
        "fs",
        make="make_sync_file_range",
        args="user_data: int, fd: _FileDescriptor, len: int, offset: int, flags: int = 0",
        doc=(
            "Prepares a sync_file_range(2) of len bytes (0: to the end) of fd from offset, with "
            "SyncFileRangeFlags. Raises ValueError for unknown bits in flags. Matches "
            "io_uring_prep_sync_file_range(3)."
        ),
    ),
    Op(
        "fallocate",
        "fs",
        make="make_fallocate",
        args="user_data: int, fd: _FileDescriptor, mode: int, offset: int, len: int",
        doc=(
            "Prepares a fallocate(2) of len bytes of fd from offset with mode (FallocateFlags; 0 "
            "allocates and extends the file). The SQE carries the mode in len and the length in "
            "addr. Raises OverflowError for negative offsets or lengths. Raises ValueError for "
            "unknown bits in mode. Matches io_uring_prep_fallocate(3)."
        ),
    ),
    Op(
        "fadvise",
        "fs",
        make="make_fadvise",
        args="user_data: int, fd: _FileDescriptor, offset: int, len: int, advice: int",
        doc=(
            "Prepares a posix_fadvise(2) of fd for len bytes from offset (advice: "
            "os.POSIX_FADV_*). Lengths over 4 GiB - 1 go in addr (io_uring_prep_fadvise64(3)), "
            "which older kernels ignore. Matches io_uring_prep_fadvise(3)."
        ),
    ),
    Op(
        "madvise",
        "fs",
        make="make_madvise",
        args="user_data: int, buffer: _Buffer, advice: int",
        doc=(
            "Prepares a madvise(2) of the memory of buffer (a bytes-like object, kept alive until "
            "the completion is reaped) with advice (mmap.MADV_*). The kernel rounds the range out "
            "to whole pages, so advice that changes memory contents (MADV_DONTNEED, FREE, REMOVE, "
            "WIPEONFORK, KEEPONFORK, DOFORK, DONTNEED_LOCKED) needs a writable buffer that starts "
            "on a page boundary and spans whole pages (an mmap.mmap, or a page-aligned slice of "
            "one); other known advice takes any buffer. Raises ValueError for unaligned buffers, "
            "unknown advice and advice that could crash the process (MADV_DONTFORK, MADV_GUARD_*, "
            "MADV_HWPOISON, MADV_SOFT_OFFLINE), TypeError for a read-only buffer with "
            "content-changing advice. Matches io_uring_prep_madvise(3)."
        ),
    ),
    Op(
        "ftruncate",
        "fs",
        make="make_ftruncate",
        args="user_data: int, fd: _FileDescriptor, len: int",
        doc="Prepares an ftruncate(2) of fd to len bytes. Matches io_uring_prep_ftruncate(3).",
    ),
    Op(
        "openat2",
        "fs",
        make="make_openat2",
        args=(
            "user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, flags: int, "
            "mode: int = 0, resolve: int = 0"
        ),
        doc=(
            "Prepares an openat2(2) of path relative to dir_fd; flags, mode and resolve "
            "(ResolveFlags) go into a private copy of struct open_how. res is the new fd. Raises "
            "ValueError for unknown bits in resolve. Matches io_uring_prep_openat2(3)."
        ),
    ),
    Op(
        "openat_direct",
        "fs",
        make="make_openat_direct",
        args=(
            "user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, flags: int, "
            "mode: int, file_index: int"
        ),
        doc=(
            "Prepares an openat into registered-file slot file_index (res 0), or into a free slot "
            "with file_index=FILE_INDEX_ALLOC (res is the slot). The ring needs a file table "
            "(register_files / register_files_sparse). Matches io_uring_prep_openat_direct(3)."
        ),
    ),
    Op(
        "openat2_direct",
        "fs",
        make="make_openat2_direct",
        args=(
            "user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, flags: int, "
            "mode: int, resolve: int, file_index: int"
        ),
        doc=(
            "Prepares an openat2 into registered-file slot file_index (or FILE_INDEX_ALLOC). "
            "Raises ValueError for unknown bits in resolve. Matches "
            "io_uring_prep_openat2_direct(3)."
        ),
    ),
    Op(
        "close_direct",
        "fs",
        make="make_close_direct",
        args="user_data: int, file_index: int",
        doc=(
            "Prepares the close of registered-file slot file_index. Matches "
            "io_uring_prep_close_direct(3)."
        ),
    ),
    Op(
        "statx",
        "fs",
        make="make_statx",
        args=(
            "user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, flags: int, "
            "mask: int, statxbuf: Statx | _Buffer"
        ),
        doc=(
            'Prepares a statx(2) of path relative to dir_fd (with AtFlags.EMPTY_PATH and path "": '
            "dir_fd itself), asking for the StatxMask fields in mask. statxbuf receives the "
            "result: an iouring.Statx() (read its st_* attributes after the completion) or any "
            "writable buffer of at least 256 bytes (such as a record of a STATX_DTYPE array); it "
            "is kept alive until the completion is reaped. Raises TypeError for a read-only "
            "statxbuf, ValueError for one under 256 bytes or unknown bits in flags. Matches "
            "io_uring_prep_statx(3)."
        ),
    ),
    Op(
        "renameat",
        "fs",
        make="make_two_paths<false>",
        args=(
            "user_data: int, old_dir_fd: _FileDescriptor | None, old_path: _StrOrBytesPath, "
            "new_dir_fd: _FileDescriptor | None, new_path: _StrOrBytesPath, flags: int = 0"
        ),
        doc=(
            "Prepares a renameat2(2) of old_path (relative to old_dir_fd) to new_path (relative "
            "to new_dir_fd) with RenameFlags; both paths are private copies. The SQE carries "
            "new_dir_fd in len and new_path in off. Raises ValueError for unknown bits in flags. "
            "Matches io_uring_prep_renameat(3)."
        ),
    ),
    Op(
        "unlinkat",
        "fs",
        make="make_unlinkat",
        args=(
            "user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, flags: int = 0"
        ),
        doc=(
            "Prepares an unlinkat(2) of path relative to dir_fd (AtFlags.REMOVEDIR removes a "
            "directory). Raises ValueError for unknown bits in flags. Matches "
            "io_uring_prep_unlinkat(3)."
        ),
    ),
    Op(
        "mkdirat",
        "fs",
        make="make_mkdirat",
        args=(
            "user_data: int, dir_fd: _FileDescriptor | None, path: _StrOrBytesPath, "
            "mode: int = 0o777"
        ),
        doc=(
            "Prepares a mkdirat(2) of path relative to dir_fd with mode. Matches "
            "io_uring_prep_mkdirat(3)."
        ),
    ),
    Op(
        "symlinkat",
        "fs",
        make="make_symlinkat",
        args=(
            "user_data: int, target: _StrOrBytesPath, new_dir_fd: _FileDescriptor | None, "
            "link_path: _StrOrBytesPath"
        ),
        doc=(
            "Prepares a symlinkat(2): a link named link_path (relative to new_dir_fd) pointing to "
            "target. Matches io_uring_prep_symlinkat(3)."
        ),
    ),
    Op(
        "linkat",
        "fs",
        make="make_two_paths<true>",
        args=(
            "user_data: int, old_dir_fd: _FileDescriptor | None, old_path: _StrOrBytesPath, "
            "new_dir_fd: _FileDescriptor | None, new_path: _StrOrBytesPath, flags: int = 0"
        ),
        doc=(
            "Prepares a linkat(2): a hard link new_path (relative to new_dir_fd) to old_path "
            "(relative to old_dir_fd); AtFlags.SYMLINK_FOLLOW follows a symlink old_path. Raises "
            "ValueError for unknown bits in flags. Matches io_uring_prep_linkat(3)."
        ),
    ),
    Op(
        "getxattr",
        "fs",
        make="make_getxattr",
        args="user_data: int, name: str | bytes, value: _Buffer, path: _StrOrBytesPath",
        doc=(
            "Prepares a getxattr(2) of attribute name of path into value, a writable buffer kept "
            "alive until the completion (res is the value's length; an empty buffer asks for the "
            "length only). name and path are private copies. Raises TypeError for a read-only "
            "value. Matches io_uring_prep_getxattr(3)."
        ),
    ),
    Op(
        "setxattr",
        "fs",
        make="make_setxattr",
        args=(
            "user_data: int, name: str | bytes, value: _Buffer, path: _StrOrBytesPath, "
            "flags: int = 0"
        ),
        doc=(
            "Prepares a setxattr(2) of attribute name of path to value (any bytes-like object, "
            "kept alive until the completion), with XattrFlags. Raises ValueError for unknown "
            "bits in flags. Matches io_uring_prep_setxattr(3)."
        ),
    ),
    Op(
        "fgetxattr",
        "fs",
        make="make_fgetxattr",
        args="user_data: int, fd: _FileDescriptor, name: str | bytes, value: _Buffer",
        doc=(
            "Prepares an fgetxattr(2) of attribute name of fd into the writable buffer value. "
            "Matches io_uring_prep_fgetxattr(3)."
        ),
    ),
    Op(
        "fsetxattr",
        "fs",
        make="make_fsetxattr",
        args=(
            "user_data: int, fd: _FileDescriptor, name: str | bytes, value: _Buffer, flags: int = 0"
        ),
        doc=(
            "Prepares an fsetxattr(2) of attribute name of fd to value, with XattrFlags. Raises "
            "ValueError for unknown bits in flags. Matches io_uring_prep_fsetxattr(3)."
        ),
    ),
    Op(
        "tee",
        "fs",
        make="make_tee",
        args=(
            "user_data: int, fd_in: _FileDescriptor, fd_out: _FileDescriptor, len: int, "
            "flags: int = 0"
        ),
        doc=(
            "Prepares a tee(2) of up to len bytes from pipe fd_in to pipe fd_out without "
            "consuming them. Raises ValueError for unknown bits in flags. Matches "
            "io_uring_prep_tee(3)."
        ),
    ),
    Op(
        "pipe",
        "fs",
        make="make_pipe",
        args="user_data: int, fds: _Buffer, flags: int = 0",
        doc=(
            "Prepares a pipe2(2); the kernel writes the read and write fds into fds, a writable "
            "buffer of at least 8 bytes read as two C ints (array.array('i', [-1, -1]) or "
            "numpy.empty(2, numpy.int32)), kept alive until the completion is reaped. flags: "
            "os.O_CLOEXEC, os.O_NONBLOCK, os.O_DIRECT. Raises TypeError for a read-only fds, "
            "ValueError for one under 8 bytes. Raises ValueError for unknown bits in flags. "
            "Matches io_uring_prep_pipe(3)."
        ),
    ),
    Op(
        "pipe_direct",
        "fs",
        make="make_pipe_direct",
        args="user_data: int, fds: _Buffer, flags: int, file_index: int",
        doc=(
            "Prepares a pipe whose two ends go into registered-file slots from file_index (or "
            "free slots with FILE_INDEX_ALLOC); fds receives the two slots. Raises ValueError for "
            "unknown bits in flags. Matches io_uring_prep_pipe_direct(3)."
        ),
    ),
    Op(
        "timeout",
        "control",
        make="make_timeout",
        args="user_data: int, ts: _Timeout, count: int = 0, flags: int = 0",
        doc=(
            "Prepares a timeout: completes with res -ETIME when ts passes (seconds as int or "
            "float, or a datetime.timedelta; with TimeoutFlags.ABS an absolute time of the clock "
            "- CLOCK_MONOTONIC, i.e. time.monotonic(), or BOOTTIME / REALTIME), or with res 0 "
            "once count other completions were posted (0: time only). TimeoutFlags.MULTISHOT "
            "fires every ts, count times (0: until removed), each CQE but the last flagged MORE. "
            "The timespec is a private copy kept until the final completion. Raises "
            "TypeError/ValueError for a bad ts, ValueError for flags other than ABS, BOOTTIME, "
            "REALTIME, ETIME_SUCCESS, MULTISHOT. Matches io_uring_prep_timeout(3)."
        ),
    ),
    Op(
        "timeout_remove",
        "control",
        make="make_timeout_remove",
        args="user_data: int, target_user_data: int, flags: int = 0",
        doc=(
            "Prepares the removal of the timeout whose user_data is target_user_data: res 0 (the "
            "timeout completes with -ECANCELED), -ENOENT or -EALREADY. Raises ValueError for the "
            "update flags (use timeout_update). Matches io_uring_prep_timeout_remove(3)."
        ),
    ),
    Op(
        "timeout_update",
        "control",
        make="make_timeout_update",
        args="user_data: int, ts: _Timeout, target_user_data: int, flags: int = 0",
        doc=(
            "Prepares an update of the timeout target_user_data to fire at ts (relative, or "
            "absolute with TimeoutFlags.ABS; a linked timeout with "
            "TimeoutFlags.LINK_TIMEOUT_UPDATE). The SQE carries the target in addr and the "
            "private timespec copy in off. Matches io_uring_prep_timeout_update(3)."
        ),
    ),
    Op(
        "link_timeout",
        "control",
        make="make_link_timeout",
        args="user_data: int, ts: _Timeout, flags: int = 0",
        doc=(
            "Prepares a timeout for the SQE just before it, which must carry SqeFlags.IO_LINK: if "
            "ts passes first that operation is cancelled (-ECANCELED, or -EINTR) and this "
            "completes with -ETIME; otherwise this completes with -ECANCELED (-EALREADY while "
            "cancelling). Matches io_uring_prep_link_timeout(3)."
        ),
    ),
    Op(
        "cancel",
        "control",
        make="make_cancel",
        args=(
            "user_data: int, target_user_data: int = 0, flags: int = 0, *, "
            "fd: _FileDescriptor | None = None, op: int | None = None"
        ),
        doc=(
            "Prepares an async cancel of the operation whose user_data is target_user_data; with "
            "fd= (CancelFlags.FD, + FD_FIXED for a registered slot) of operations on that file, "
            "with op= (CancelFlags.OP) of operations with that opcode, with CancelFlags.ANY of "
            "any operation; USERDATA adds the user_data match to fd/op; ALL cancels every match "
            "(res: the count) instead of the first. res is 0 (or the count), -ENOENT or "
            "-EALREADY. Raises ValueError for FD/OP flags without fd/op. Matches "
            "io_uring_prep_cancel64(3)."
        ),
    ),
    Op(
        "cancel_fd",
        "control",
        make="make_cancel_fd",
        args="user_data: int, fd: _FileDescriptor, flags: int = 0",
        doc=(
            "Prepares an async cancel of operations on fd (CancelFlags.FD is implied; ALL for "
            "every one, FD_FIXED when fd is a registered slot). Matches "
            "io_uring_prep_cancel_fd(3)."
        ),
    ),
    Op(
        "poll_add",
        "control",
        make="make_poll_add",
        args="user_data: int, fd: _FileDescriptor, poll_mask: int, flags: int = 0",
        doc=(
            "Prepares a poll of fd for poll_mask (select.POLLIN, ...); res is the mask of ready "
            "events. flags: PollFlags.ADD_MULTI (multishot: a CQE flagged MORE per event until "
            "removed) and ADD_LEVEL. Matches io_uring_prep_poll_add(3)."
        ),
    ),
    Op(
        "poll_multishot",
        "control",
        make="make_poll_multishot",
        args="user_data: int, fd: _FileDescriptor, poll_mask: int",
        doc=(
            "Prepares a multishot poll of fd: one CQE flagged MORE per event, until poll_remove "
            "(final CQE -ECANCELED without MORE). Matches io_uring_prep_poll_multishot(3)."
        ),
    ),
    Op(
        "poll_remove",
        "control",
        make="make_poll_remove",
        args="user_data: int, target_user_data: int",
        doc=(
            "Prepares the removal of the poll whose user_data is target_user_data (res 0 or "
            "-ENOENT). Matches io_uring_prep_poll_remove(3)."
        ),
    ),
    Op(
        "poll_update",
        "control",
        make="make_poll_update",
        args="user_data: int, old_user_data: int, new_user_data: int, poll_mask: int, flags: int",
        doc=(
            "Prepares an update of the poll old_user_data: its events to poll_mask with "
            "PollFlags.UPDATE_EVENTS. The update changes the mask only: ADD_MULTI is passed to "
            "the kernel, but a single-shot poll stays single-shot (prepare a poll_multishot for "
            "that). new_user_data must be 0 without UPDATE_USER_DATA (the kernel's EINVAL). With "
            "UPDATE_USER_DATA the poll's later CQEs carry new_user_data: the submit reserves "
            "new_user_data on this ring's count of operations in flight, and this update's CQE "
            "settles it (res 0: the poll now counts under new_user_data only; -ENOENT or "
            "-EALREADY, when the poll fired or ended first: it keeps old_user_data, and the "
            "reservation goes). Such an update needs a user_data that no other operation in "
            "flight uses (nor old_user_data or new_user_data), new_user_data may not be a live "
            "resource tag, and a poll skipped by a CQE_SKIP_SUCCESS chain cannot be renamed "
            "(ValueError at submit, nothing submitted). Matches io_uring_prep_poll_update(3)."
        ),
    ),
    Op(
        "epoll_ctl",
        "control",
        make="make_epoll_ctl",
        args=(
            "user_data: int, epfd: _FileDescriptor, fd: _FileDescriptor, op: int, "
            "events: int = 0, data: int | None = None"
        ),
        doc=(
            "Prepares an epoll_ctl(2) of fd on the epoll instance epfd with op "
            "(EPOLL_CTL_ADD/MOD/DEL); the struct epoll_event {events, data} is a private copy "
            "(data defaults to fd). Matches io_uring_prep_epoll_ctl(3)."
        ),
    ),
    Op(
        "epoll_wait",
        "control",
        make="make_epoll_wait",
        args="user_data: int, epfd: _FileDescriptor, events: _Buffer, flags: int = 0",
        doc=(
            "Prepares an epoll_wait on epfd into events, a writable buffer of whole struct "
            "epoll_event records (numpy.zeros(n, EPOLL_EVENT_DTYPE)) kept alive until the "
            "completion; res is the number of events written. Raises TypeError for a read-only "
            "buffer, ValueError for a size that is not a multiple of EPOLL_EVENT_SIZE, and for "
            "non-zero flags (the kernel defines none). Matches io_uring_prep_epoll_wait(3)."
        ),
    ),
    Op(
        "msg_ring",
        "control",
        make="make_msg_ring",
        args=(
            "user_data: int, fd: _FileDescriptor, len: int, data: int, cqe_flags: int = 0, *, "
            "more: bool = True"
        ),
        doc=(
            "Prepares a message to the ring whose fd is fd: it gets a CQE {user_data: data, res: "
            "len, flags: cqe_flags | CqeFlags.MORE}; this ring's CQE has res 0 (or -errno: then "
            "the target got nothing). MORE is set by default (IORING_MSG_RING_FLAGS_PASS, Linux "
            "6.3+; older kernels complete with -EINVAL), so that the target counts the CQE as no "
            "operation's last. more=False sends flags cqe_flags exactly (flags 0 needs no "
            "FLAGS_PASS: Linux 5.18+); fd must then be an open IoUring of this process, and the "
            "submit reserves data on its count of operations in flight, so that the message's CQE "
            "ends the reservation rather than an operation with that user_data (whose memory "
            "stays pinned until both were reaped); the reservation goes if this ring's CQE "
            "reports a failure. Such a message needs a user_data no other operation in flight "
            "here uses, and data may not be a live resource tag of the target (ValueError at "
            "submit, nothing submitted). The rings of other processes cannot be protected this "
            "way: ValueError naming fd. Raises ValueError for cqe_flags SKIP or F_32, and MORE "
            "with more=False. Matches io_uring_prep_msg_ring_cqe_flags(3)."
        ),
    ),
    Op(
        "msg_ring_fd",
        "control",
        make="make_msg_ring_fd",
        args=(
            "user_data: int, fd: _FileDescriptor, source_fd: int, target_fd: int, data: int = 0, "
            "*, post_cqe: bool = False"
        ),
        doc=(
            "Prepares the passing of this ring's registered file source_fd (a slot) into slot "
            "target_fd (or FILE_INDEX_ALLOC) of the ring whose fd is fd; res is 0 (or the slot "
            "allocated). By default the target gets no CQE (IORING_MSG_RING_CQE_SKIP: the kernel "
            "posts it without CqeFlags.MORE, and the target would count it as the final "
            "completion of an operation with user_data data). post_cqe=True asks for it, "
            "{user_data: data, res: the slot or 0, flags: 0}, under the rules of "
            "msg_ring(more=False): fd must be an open IoUring of this process (ValueError naming "
            "fd otherwise) and data is reserved there until the CQE is reaped. A res of "
            "-EOVERFLOW here means the file was installed but no CQE posted. Matches "
            "io_uring_prep_msg_ring_fd(3)."
        ),
    ),
    Op(
        "msg_ring_fd_alloc",
        "control",
        make="make_msg_ring_fd_alloc",
        args=(
            "user_data: int, fd: _FileDescriptor, source_fd: int, data: int = 0, *, "
            "post_cqe: bool = False"
        ),
        doc=(
            "msg_ring_fd() into a free slot of the target ring (res is the slot). Matches "
            "io_uring_prep_msg_ring_fd_alloc(3)."
        ),
    ),
    Op(
        "waitid",
        "control",
        make="make_waitid",
        args=(
            "user_data: int, idtype: int, id: int, infop: Siginfo | _Buffer | None, options: int, "
            "flags: int = 0"
        ),
        doc=(
            "Prepares a waitid(2) for the child id of idtype (os.P_PID, P_PGID, P_ALL, P_PIDFD) "
            "with options (os.WEXITED, ...); res 0 or -errno. infop receives the siginfo_t: an "
            "iouring.Siginfo() (read si_pid, si_status, si_code after the completion), any "
            "writable buffer of at least 128 bytes, or None. Raises TypeError for a read-only "
            "infop, ValueError for a small one or for flags other than 0. Matches "
            "io_uring_prep_waitid(3)."
        ),
    ),
    Op(
        "futex_wait",
        "control",
        make="make_futex<false>",
        args=_FUTEX_ARGS,
        cpp_defaults=_FUTEX_DEFAULTS,
        doc=(
            "Prepares a futex wait while the word futex holds val (else res -EAGAIN) until a "
            "futex_wake with an intersecting mask; res 0. futex is a buffer of exactly the futex "
            "word (4 bytes for FutexFlags.SIZE_U32; twice that, writable, with NUMA), aligned to "
            "its size, kept alive until the completion. Raises ValueError for a bad size or "
            "alignment, unknown futex_flags or non-zero flags (the kernel defines none). Matches "
            "io_uring_prep_futex_wait(3)."
        ),
    ),
    Op(
        "futex_wake",
        "control",
        make="make_futex<true>",
        args=_FUTEX_ARGS,
        cpp_defaults=_FUTEX_DEFAULTS,
        doc=(
            "Prepares a wake of up to val waiters on the word futex whose mask intersects mask; "
            "res is the number woken. Raises ValueError as futex_wait does. Matches "
            "io_uring_prep_futex_wake(3)."
        ),
    ),
    Op(
        "futex_waitv",
        "control",
        make="make_futex_waitv",
        args=(
            "user_data: int, futexes: Sequence[tuple[_Buffer, int] | tuple[_Buffer, int, int]], "
            "flags: int = 0"
        ),
        doc=(
            "Prepares a wait on several futexes: futexes is a sequence of (futex, val) or (futex, "
            "val, futex_flags) tuples (1..FUTEX_WAITV_MAX; futex_flags default "
            "FutexFlags.SIZE_U32), copied into a private struct futex_waitv array; res is the "
            "index of the futex woken. Raises ValueError for non-zero flags (the kernel defines "
            "none). Matches io_uring_prep_futex_waitv(3)."
        ),
    ),
    Op(
        "fixed_fd_install",
        "control",
        make="make_fixed_fd_install",
        args="user_data: int, fd: int, flags: int = 0",
        doc=(
            "Prepares the installation of registered file slot fd as a normal descriptor (res; "
            "O_CLOEXEC unless FixedFdFlags.NO_CLOEXEC). The SQE carries SqeFlags.FIXED_FILE. "
            "Raises ValueError for unknown bits in flags. Matches "
            "io_uring_prep_fixed_fd_install(3)."
        ),
    ),
    Op(
        "files_update",
        "control",
        make="make_files_update",
        args="user_data: int, fds: _Buffer | Sequence[_FileDescriptor], offset: int",
        doc=(
            "Prepares an update of the registered-file table from slot offset with fds (-1 "
            "empties a slot, REGISTER_FILES_SKIP keeps it); res is the number updated. fds is a "
            "sequence of fds (copied) or an array of C ints (array.array('i'), numpy int32) kept "
            "alive until the completion. With offset=FILE_INDEX_ALLOC the kernel picks free slots "
            "and writes them back into fds, which must then be a writable array. Matches "
            "io_uring_prep_files_update(3)."
        ),
    ),
    Op(
        "nop_inject",
        "control",
        make="make_nop_inject",
        args="user_data: int, res: int, flags: int = 0",
        doc=(
            "Prepares a NOP that completes with res (any int32, e.g. -errno.EIO) "
            "(IORING_NOP_INJECT_RESULT, Linux 6.13+; older kernels complete with -EINVAL or 0); "
            "flags may add NopFlags.TW. Matches io_uring_prep_nop(3)."
        ),
    ),
    Op(
        "socket",
        "net",
        make="make_socket",
        args="user_data: int, domain: int, type: int, protocol: int = 0, flags: int = 0",
        doc=(
            "Prepares the creation of a socket(domain, type, protocol); res is the new fd. flags "
            "must be 0 (ValueError otherwise). Matches io_uring_prep_socket(3)."
        ),
    ),
    Op(
        "socket_direct",
        "net",
        make="make_socket_direct",
        args=(
            "user_data: int, domain: int, type: int, protocol: int, file_index: int, flags: int = 0"
        ),
        doc=(
            "Prepares a socket created straight into registered-file slot file_index "
            "(FILE_INDEX_ALLOC: a free slot, returned in res); res is 0 otherwise. Raises "
            "ValueError for unknown bits in flags. Matches io_uring_prep_socket_direct(3)."
        ),
    ),
    Op(
        "socket_direct_alloc",
        "net",
        make="make_socket_direct_alloc",
        args="user_data: int, domain: int, type: int, protocol: int = 0, flags: int = 0",
        doc=(
            "Prepares a socket created into a free registered-file slot; res is the slot. Raises "
            "ValueError for unknown bits in flags. Matches io_uring_prep_socket_direct_alloc(3)."
        ),
    ),
    Op(
        "bind",
        "net",
        make="make_bind_connect<false>",
        args="user_data: int, fd: _FileDescriptor, addr: _Address",
        doc=(
            "Prepares bind(fd, addr); addr is a Python address (tuple, AF_UNIX path) or a "
            "SockAddr, copied privately. Raises TypeError/ValueError/OverflowError for a bad "
            "address. Matches io_uring_prep_bind(3)."
        ),
    ),
    Op(
        "listen",
        "net",
        make="make_listen",
        args="user_data: int, fd: _FileDescriptor, backlog: int",
        doc="Prepares listen(fd, backlog). Matches io_uring_prep_listen(3).",
    ),
    Op(
        "accept",
        "net",
        make="make_accept",
        args=(
            "user_data: int, fd: _FileDescriptor, addr: SockAddr | None = None, flags: int = 0, "
            "*, ioprio: int = 0"
        ),
        doc=(
            "Prepares accept4(fd, addr, flags); res is the new fd. addr is None or a SockAddr() "
            "the kernel writes the peer's address into (kept alive until the completion). flags "
            "are accept4 flags (SOCK_NONBLOCK, SOCK_CLOEXEC); ioprio may hold "
            "AcceptFlags.DONTWAIT / POLL_FIRST. Raises TypeError for another addr. Raises "
            "ValueError for unknown bits in flags. Matches io_uring_prep_accept(3)."
        ),
    ),
    Op(
        "accept_direct",
        "net",
        make="make_accept_direct",
        args=(
            "user_data: int, fd: _FileDescriptor, addr: SockAddr | None = None, flags: int = 0, "
            "file_index: int = ..."
        ),
        cpp_defaults={"file_index": "kFileIndexAlloc"},
        doc=(
            "Prepares an accept into registered-file slot file_index (FILE_INDEX_ALLOC, the "
            "default: a free slot, returned in res; -ENFILE when none is free). Raises ValueError "
            "for unknown bits in flags. Matches io_uring_prep_accept_direct(3)."
        ),
    ),
    Op(
        "multishot_accept",
        "net",
        make="make_multishot_accept<false>",
        args="user_data: int, fd: _FileDescriptor, addr: SockAddr | None = None, flags: int = 0",
        doc=(
            "Prepares a multishot accept: one completion per connection (res = the new fd), "
            "flagged CqeFlags.MORE while the accept stays armed; addr (a SockAddr or None) is "
            "kept until the last completion. Raises ValueError for unknown bits in flags. Matches "
            "io_uring_prep_multishot_accept(3)."
        ),
    ),
    Op(
        "multishot_accept_direct",
        "net",
        make="make_multishot_accept<true>",
        args="user_data: int, fd: _FileDescriptor, addr: SockAddr | None = None, flags: int = 0",
        doc=(
            "Prepares a multishot accept into free registered-file slots (res = the slot; -ENFILE "
            "without MORE once the table is full). Raises ValueError for unknown bits in flags. "
            "Matches io_uring_prep_multishot_accept_direct(3)."
        ),
    ),
    Op(
        "connect",
        "net",
        make="make_bind_connect<true>",
        args="user_data: int, fd: _FileDescriptor, addr: _Address",
        doc=(
            "Prepares connect(fd, addr); addr is a Python address ((host, port) tuples with a "
            "numeric host, (host, port, flowinfo, scope_id), an AF_UNIX path as "
            "str/bytes/PathLike) or a SockAddr (SockAddr.from_bytes for raw sockaddrs), copied "
            "privately. Raises TypeError/ValueError/OverflowError for a bad address. Matches "
            "io_uring_prep_connect(3)."
        ),
    ),
    Op(
        "send",
        "net",
        make="make_send_recv<false>",
        args=(
            "user_data: int, fd: _FileDescriptor, buffer: _Buffer, flags: int = 0, *, "
            "ioprio: int = 0"
        ),
        doc=(
            "Prepares send(fd, buffer, flags); buffer (any bytes-like object) is kept until the "
            "completion. ioprio may hold RecvSendFlags.POLL_FIRST. Matches io_uring_prep_send(3)."
        ),
    ),
    Op(
        "send_vectorized",
        "net",
        make="make_send_vectorized",
        args="user_data: int, fd: _FileDescriptor, buffers: Sequence[_Buffer], flags: int = 0",
        doc=(
            "Prepares one send of a sequence of buffers (at most 1024), in order, like "
            "socket.sendmsg(buffers) without ancillary data (IORING_SEND_VECTORIZED, Linux 6.17+; "
            "older kernels complete with -EINVAL). The buffers are kept alive with a private copy "
            "of the iovec array until the completion is reaped. Matches io_uring_prep_send(3)."
        ),
    ),
    Op(
        "sendto",
        "net",
        make="make_sendto",
        args="user_data: int, fd: _FileDescriptor, buffer: _Buffer, addr: _Address, flags: int = 0",
        doc=(
            "Prepares sendto(fd, buffer, flags, addr): a send with a destination address (a "
            "private copy, in addr2/addr_len). Matches io_uring_prep_sendto(3)."
        ),
    ),
    Op(
        "send_zc",
        "net",
        make="make_send_zc",
        args=(
            "user_data: int, fd: _FileDescriptor, buffer: _Buffer, flags: int = 0, "
            "zc_flags: int = 0, *, addr: _Address | None = None"
        ),
        doc=(
            "Prepares a zero-copy send. It completes twice: first with the result and "
            "CqeFlags.MORE, then with a notification (res 0, CqeFlags.NOTIF) once the kernel no "
            "longer reads buffer, which stays pinned until then. zc_flags: "
            "RecvSendFlags.POLL_FIRST / SEND_ZC_REPORT_USAGE (the notification's res then has "
            "NOTIF_USAGE_ZC_COPIED when the data was copied). addr: an optional destination. "
            "Matches io_uring_prep_send_zc(3)."
        ),
    ),
    Op(
        "send_zc_fixed",
        "net",
        make="make_send_zc_fixed",
        args=(
            "user_data: int, fd: _FileDescriptor, buffer: _Buffer, buffer_index: int, "
            "flags: int = 0, zc_flags: int = 0, *, addr: _Address | None = None"
        ),
        doc=(
            "Prepares a zero-copy send from registered buffer buffer_index: buffer must lie "
            "inside it (a memoryview slice of the registered object). Completes like send_zc: the "
            "result flagged CqeFlags.MORE, then the CqeFlags.NOTIF notification, until which the "
            "registration is kept alive. Raises ValueError for a buffer outside the registered "
            "buffer, an index out of range or a ring without registered buffers. Matches "
            "io_uring_prep_send_zc_fixed(3)."
        ),
    ),
    Op(
        "send_bundle",
        "net",
        make="make_send_bundle",
        args=(
            "user_data: int, fd: _FileDescriptor, buf_group: _BufGroup, len: int = 0, "
            "flags: int = 0"
        ),
        doc=(
            "Prepares a bundle send from the provided buffers of buf_group (an int or a "
            "BufferRing) in ring order, at most len bytes (0: no limit); needs "
            "Features.RECVSEND_BUNDLE. Matches io_uring_prep_send_bundle(3)."
        ),
    ),
    Op(
        "recv",
        "net",
        make="make_send_recv<true>",
        args=(
            "user_data: int, fd: _FileDescriptor, buffer: _Buffer, flags: int = 0, *, "
            "ioprio: int = 0"
        ),
        doc=(
            "Prepares recv(fd, buffer, flags) into a writable buffer kept until the completion. "
            "Raises TypeError for a read-only buffer. Matches io_uring_prep_recv(3)."
        ),
    ),
    Op(
        "recv_provided",
        "net",
        make="make_recv_provided",
        args=(
            "user_data: int, fd: _FileDescriptor, buf_group: _BufGroup, len: int = 0, "
            "flags: int = 0, *, ioprio: int = 0"
        ),
        doc=(
            "Prepares a recv into a provided buffer of buf_group (an int, or a BufferRing), at "
            "most len bytes (0: the whole buffer): SqeFlags.BUFFER_SELECT, addr 0. The CQE "
            "carries CqeFlags.BUFFER and the buffer id (Cqe.buffer_id), or -ENOBUFS. Matches "
            "io_uring_prep_recv(3)."
        ),
    ),
    Op(
        "recv_multishot",
        "net",
        make="make_recv_multishot",
        args=(
            "user_data: int, fd: _FileDescriptor, buf_group: _BufGroup, flags: int = 0, "
            "len: int = 0"
        ),
        doc=(
            "Prepares a multishot recv into provided buffers of buf_group (an int or a "
            "BufferRing): one completion per chunk with CqeFlags.BUFFER, flagged MORE while "
            "armed; -ENOBUFS (without MORE) when the group runs dry. Matches "
            "io_uring_prep_recv_multishot(3)."
        ),
    ),
    Op(
        "recv_bundle",
        "net",
        make="make_recv_bundle",
        args=(
            "user_data: int, fd: _FileDescriptor, buf_group: _BufGroup, flags: int = 0, *, "
            "multishot: bool = False"
        ),
        doc=(
            "Prepares a bundle recv that may fill several consecutive provided buffers of "
            "buf_group: res is the total, Cqe.buffer_id the first buffer (BufferRing.bundle gives "
            "the pieces). multishot=True keeps it armed. Needs Features.RECVSEND_BUNDLE. Matches "
            "io_uring_prep_recv(3)."
        ),
    ),
    Op(
        "sendmsg",
        "net",
        make="make_sendmsg<false>",
        args="user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0",
        doc=(
            "Prepares sendmsg(fd, msg, flags) with a Msghdr (its iovecs, name and control are "
            "kept until the completion). Raises TypeError for another msg. Matches "
            "io_uring_prep_sendmsg(3)."
        ),
    ),
    Op(
        "sendmsg_zc",
        "net",
        make="make_sendmsg<true>",
        args="user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0",
        doc=(
            "Prepares a zero-copy sendmsg: a result CQE flagged MORE, then a NOTIF CQE once the "
            "buffers are free again (kept pinned until then). Matches io_uring_prep_sendmsg_zc(3)."
        ),
    ),
    Op(
        "sendmsg_zc_fixed",
        "net",
        make="make_sendmsg_zc_fixed",
        args="user_data: int, fd: _FileDescriptor, msg: Msghdr, buffer_index: int, flags: int = 0",
        doc=(
            "Prepares a zero-copy sendmsg (6.15+) whose buffers all lie inside registered buffer "
            "buffer_index; completes like sendmsg_zc (MORE, then NOTIF). Raises ValueError for a "
            "buffer outside the registered buffer, an index out of range or a ring without "
            "registered buffers. Matches io_uring_prep_sendmsg_zc_fixed(3)."
        ),
    ),
    Op(
        "recvmsg",
        "net",
        make="make_recvmsg",
        args="user_data: int, fd: _FileDescriptor, msg: Msghdr, flags: int = 0",
        doc=(
            "Prepares recvmsg(fd, msg, flags) with a Msghdr whose buffers (and control) are "
            "writable; after the completion msg.namelen, msg.controllen, msg.flags, msg.name and "
            "msg.ancdata hold what the kernel wrote. Raises TypeError for read-only buffers. "
            "Matches io_uring_prep_recvmsg(3)."
        ),
    ),
    Op(
        "recvmsg_multishot",
        "net",
        make="make_recvmsg_multishot",
        args=(
            "user_data: int, fd: _FileDescriptor, msg: Msghdr, buf_group: _BufGroup, flags: int = 0"
        ),
        doc=(
            "Prepares a multishot recvmsg into provided buffers of buf_group; msg (no buffers, or "
            "one giving the length) reserves room for name and control in every buffer. Parse "
            "each completed buffer with iouring.RecvmsgOut.parse(data, msg). Matches "
            "io_uring_prep_recvmsg_multishot(3)."
        ),
    ),
    Op(
        "shutdown",
        "net",
        make="make_shutdown",
        args="user_data: int, fd: _FileDescriptor, how: int",
        doc=(
            "Prepares shutdown(fd, how) (socket.SHUT_RD/SHUT_WR/SHUT_RDWR). Matches "
            "io_uring_prep_shutdown(3)."
        ),
    ),
    Op(
        "cmd_sock",
        "net",
        make="make_cmd_sock",
        args=(
            "user_data: int, cmd_op: int, fd: _FileDescriptor, level: int = 0, optname: int = 0, "
            "optval: _Buffer | int | None = None"
        ),
        doc=(
            "Prepares a socket command (IORING_OP_URING_CMD, 6.7+): SocketCmd.SIOCINQ / SIOCOUTQ "
            "(res = bytes queued), GETSOCKOPT (optval: a writable buffer; res = the option's "
            "length) or SETSOCKOPT (optval: an int or a bytes-like object). optval is kept until "
            "the completion. Raises TypeError/ValueError for a missing or unexpected optval, "
            "ValueError for a cmd_op that is not one of these four. Matches "
            "io_uring_prep_cmd_sock(3)."
        ),
    ),
    Op(
        "getsockopt",
        "net",
        make="make_getsockopt",
        args="user_data: int, fd: _FileDescriptor, level: int, optname: int, optval: _Buffer",
        doc=(
            "Prepares getsockopt(fd, level, optname) into optval (a writable buffer); res is the "
            "option's length. Matches io_uring_prep_cmd_sock(3)."
        ),
    ),
    Op(
        "setsockopt",
        "net",
        make="make_setsockopt",
        args="user_data: int, fd: _FileDescriptor, level: int, optname: int, optval: _Buffer | int",
        doc=(
            "Prepares setsockopt(fd, level, optname, optval) with optval an int or a bytes-like "
            "object. Matches io_uring_prep_cmd_sock(3)."
        ),
    ),
    Op(
        "tx_timestamp",
        "net",
        make="make_tx_timestamp",
        args="user_data: int, fd: _FileDescriptor",
        doc=(
            "Prepares a multishot read of fd's TX timestamps (SOCKET_URING_OP_TX_TIMESTAMP, Linux "
            "6.17+; enable them with SO_TIMESTAMPING): one 32-byte completion flagged "
            "CqeFlags.MORE per timestamp, decoded by iouring.TxTimestamp.from_cqe (res: tskey, "
            "flags >> 17: tstype, bit 16: hardware, big_cqe: tv_sec, tv_nsec), until cancelled. "
            "Raises ValueError on a ring without SetupFlags.CQE32 or CQE_MIXED. Matches "
            "io_uring_prep_cmd_sock(3)."
        ),
    ),
    Op(
        "provide_buffers",
        "buffer",
        make="make_provide_buffers",
        kept=True,
        args="user_data: int, buffer: _Buffer, buf_len: int, nr: int, bgid: int, bid: int = 0",
        doc=(
            "Prepares handing nr buffers of buf_len bytes each, carved from the start of buffer "
            "(writable, at least nr * buf_len bytes), to buffer group bgid with ids bid, bid + 1, "
            "... The kernel owns them until an operation consumes one or remove_buffers takes "
            "them back, so the ring keeps buffer exported until it closes. Raises ValueError when "
            "buffer is too small or ids exceed 65535. Matches io_uring_prep_provide_buffers(3)."
        ),
    ),
    Op(
        "remove_buffers",
        "buffer",
        make="make_remove_buffers",
        args="user_data: int, nr: int, bgid: int",
        doc=(
            "Prepares removing up to nr buffers from group bgid; res is the number removed. "
            "Matches io_uring_prep_remove_buffers(3)."
        ),
    ),
    Op(
        "read_provided",
        "buffer",
        make="make_read_provided",
        args=(
            "user_data: int, fd: _FileDescriptor, buf_group: _BufGroup, len: int = 0, "
            "offset: int = -1"
        ),
        doc=(
            "Prepares a read of at most len bytes (0: a whole buffer) from fd at offset into a "
            "provided buffer of buf_group (an int or a BufferRing): SqeFlags.BUFFER_SELECT, addr "
            "0. The CQE carries CqeFlags.BUFFER and Cqe.buffer_id, or -ENOBUFS. Matches "
            "io_uring_prep_read(3)."
        ),
    ),
    Op(
        "read_multishot",
        "buffer",
        make="make_read_multishot",
        args="user_data: int, fd: _FileDescriptor, nbytes: int, offset: int, buf_group: _BufGroup",
        doc=(
            "Prepares a multishot read (6.7+; pipes, eventfds, sockets...): one completion per "
            "chunk, each in a provided buffer of buf_group, flagged CqeFlags.MORE while armed "
            "(nbytes 0: whole buffers; offset -1 for streams). Matches "
            "io_uring_prep_read_multishot(3)."
        ),
    ),
]
