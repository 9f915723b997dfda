"""The fs family: readv2/writev2, sync_file_range, fallocate, fadvise, madvise, ftruncate, openat2,
the direct-descriptor variants, close_direct, statx, renameat, unlinkat, mkdirat, symlinkat,
linkat, the xattr operations, tee and pipe.

Ports Zig's IoUring tests 16 (fallocate), 17 (statx), 21 (renameat), 22 (unlinkat),
23 (mkdirat), 24 (symlinkat), 25 (linkat) and 35 (openat_direct/close_direct). Every operation
gets an SQE field test, a whole-CQE test, argument validation with the ring's counters
unchanged, and, where it pins memory, a lifetime test that drops every reference and collects
garbage before the completion.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import errno
import gc
import mmap
import os
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from sqe_support import refused

from iouring import (
    AT_FDCWD,
    FILE_INDEX_ALLOC,
    STATX_DTYPE,
    AtFlags,
    Cqe,
    FallocateFlags,
    IoUring,
    Op,
    RenameFlags,
    ResolveFlags,
    SqeFlags,
    Statx,
    StatxMask,
    SyncFileRangeFlags,
    XattrFlags,
    _kernel,
)

from .conftest import (
    addr_of,
    iovecs_at,
    require_ops,
    run_one,
    sq_counters,
    sqe_fields,
    submit_and_reap,
)

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable, Iterator

U32 = 2**32
PAGE = mmap.PAGESIZE


def skip_if_refused(cqe: Cqe, what: str, *errnos: int) -> None:
    refused = errnos or (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
    if -cqe.res in refused:
        pytest.skip(f"kernel refuses {what}: {os.strerror(-cqe.res)}")


class Buf(bytearray):
    """A bytearray that can be weakly referenced (to watch its lifetime)."""


class IntArray(array.array):  # type: ignore[type-arg]
    """An array.array subclass that can be weakly referenced."""


@pytest.fixture
def dir_fd(tmp_path: pathlib.Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    yield fd
    os.close(fd)


# --------------------------------------------------------------------------------------------
# Zig ports


def test_fallocate(make_ring: Callable[..., IoUring], tmp_file: Any) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.FALLOCATE)
    f = tmp_file()
    assert os.fstat(f.fd).st_size == 0
    sqe = ring.fallocate(0xAAAAAAAA, f, 0, 0, 65536)
    assert sqe.fields() == sqe_fields(
        opcode=Op.FALLOCATE, fd=f.fd, addr=65536, len=0, off=0, user_data=0xAAAAAAAA
    )
    cqe = run_one(ring)
    skip_if_refused(cqe, "FALLOCATE")
    assert cqe == Cqe(0xAAAAAAAA, 0, 0)
    assert os.fstat(f.fd).st_size == 65536


def test_statx(make_ring: Callable[..., IoUring], tmp_file: Any) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.STATX)
    f = tmp_file(b"foobar")
    stx = Statx()
    sqe = ring.statx(0xAAAAAAAA, AT_FDCWD, f.path, 0, StatxMask.SIZE, stx)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.STATX,
        fd=AT_FDCWD,
        addr=fields["addr"],
        len=StatxMask.SIZE,
        off=addr_of(stx),
        user_data=0xAAAAAAAA,
    )
    assert ctypes.string_at(fields["addr"]) == os.fsencode(f.path)
    cqe = run_one(ring)
    skip_if_refused(cqe, "STATX", errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF)
    assert cqe == Cqe(0xAAAAAAAA, 0, 0)
    assert stx.stx_mask & StatxMask.SIZE
    assert stx.st_size == 6


def test_renameat(make_ring: Callable[..., IoUring], tmp_path: pathlib.Path, dir_fd: int) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.RENAMEAT)
    (tmp_path / "old").write_bytes(b"hello")
    sqe = ring.renameat(0x12121212, AT_FDCWD, tmp_path / "old", dir_fd, "new")
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.RENAMEAT,
        fd=AT_FDCWD,
        addr=fields["addr"],
        len=dir_fd,
        off=fields["off"],
        user_data=0x12121212,
    )
    assert ctypes.string_at(fields["addr"]) == os.fsencode(tmp_path / "old")
    assert ctypes.string_at(fields["off"]) == b"new"
    cqe = run_one(ring)
    skip_if_refused(cqe, "RENAMEAT", errno.EINVAL, errno.EBADF)
    assert cqe == Cqe(0x12121212, 0, 0)
    assert (tmp_path / "new").read_bytes() == b"hello"
    assert not (tmp_path / "old").exists()


def test_renameat_new_dir_fd_at_fdcwd_in_len(ring: IoUring, tmp_path: pathlib.Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    sqe = ring.renameat(
        0x1E, AT_FDCWD, tmp_path / "a", AT_FDCWD, tmp_path / "b", RenameFlags.NOREPLACE
    )
    assert (sqe.len, sqe.rw_flags) == (AT_FDCWD % U32, RenameFlags.NOREPLACE)
    assert run_one(ring) == Cqe(0x1E, -errno.EEXIST, 0)
    assert (tmp_path / "a").read_bytes() == b"a"


def test_unlinkat(make_ring: Callable[..., IoUring], tmp_path: pathlib.Path) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.UNLINKAT)
    path = tmp_path / "test_io_uring_unlinkat"
    path.write_bytes(b"")
    sqe = ring.unlinkat(0x12121212, AT_FDCWD, path)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.UNLINKAT, fd=AT_FDCWD, addr=fields["addr"], user_data=0x12121212
    )
    assert ctypes.string_at(fields["addr"]) == os.fsencode(path)
    cqe = run_one(ring)
    skip_if_refused(cqe, "UNLINKAT", errno.EINVAL, errno.EBADF)
    assert cqe == Cqe(0x12121212, 0, 0)
    assert not path.exists()


def test_unlinkat_removedir(ring: IoUring, tmp_path: pathlib.Path, dir_fd: int) -> None:
    (tmp_path / "d").mkdir()
    sqe = ring.unlinkat(0x0D, dir_fd, "d", AtFlags.REMOVEDIR)
    assert (sqe.fd, sqe.rw_flags) == (dir_fd, AtFlags.REMOVEDIR)
    assert run_one(ring) == Cqe(0x0D, 0, 0)
    assert not (tmp_path / "d").exists()
    ring.unlinkat(0x0E, dir_fd, "missing")
    assert run_one(ring) == Cqe(0x0E, -errno.ENOENT, 0)


def test_mkdirat(make_ring: Callable[..., IoUring], tmp_path: pathlib.Path) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.MKDIRAT)
    path = tmp_path / "test_io_uring_mkdirat"
    sqe = ring.mkdirat(0x12121212, AT_FDCWD, path, 0o700)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.MKDIRAT, fd=AT_FDCWD, addr=fields["addr"], len=0o700, user_data=0x12121212
    )
    cqe = run_one(ring)
    skip_if_refused(cqe, "MKDIRAT", errno.EINVAL, errno.EBADF)
    assert cqe == Cqe(0x12121212, 0, 0)
    assert path.is_dir()
    assert ring.mkdirat(0x13, AT_FDCWD, path).len == 0o777
    assert run_one(ring) == Cqe(0x13, -errno.EEXIST, 0)


def test_symlinkat(make_ring: Callable[..., IoUring], tmp_path: pathlib.Path, dir_fd: int) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.SYMLINKAT)
    (tmp_path / "target").write_bytes(b"hello")
    sqe = ring.symlinkat(0x12121212, "target", dir_fd, "link")
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.SYMLINKAT,
        fd=dir_fd,
        addr=fields["addr"],
        off=fields["off"],
        user_data=0x12121212,
    )
    assert ctypes.string_at(fields["addr"]) == b"target"
    assert ctypes.string_at(fields["off"]) == b"link"
    cqe = run_one(ring)
    skip_if_refused(cqe, "SYMLINKAT", errno.EINVAL, errno.EBADF)
    assert cqe == Cqe(0x12121212, 0, 0)
    assert (tmp_path / "link").is_symlink()
    assert os.readlink(tmp_path / "link") == "target"
    assert (tmp_path / "link").read_bytes() == b"hello"


def test_linkat(make_ring: Callable[..., IoUring], tmp_path: pathlib.Path, dir_fd: int) -> None:
    ring = make_ring(1)
    require_ops(ring, Op.LINKAT)
    (tmp_path / "first").write_bytes(b"hello")
    sqe = ring.linkat(0x12121212, dir_fd, "first", AT_FDCWD, tmp_path / "second")
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.LINKAT,
        fd=dir_fd,
        addr=fields["addr"],
        len=AT_FDCWD % U32,
        off=fields["off"],
        user_data=0x12121212,
    )
    assert ctypes.string_at(fields["addr"]) == b"first"
    assert ctypes.string_at(fields["off"]) == os.fsencode(tmp_path / "second")
    cqe = run_one(ring)
    skip_if_refused(cqe, "LINKAT", errno.EINVAL, errno.EBADF)
    assert cqe == Cqe(0x12121212, 0, 0)
    assert (tmp_path / "second").read_bytes() == b"hello"
    assert os.stat(tmp_path / "first").st_nlink == 2


def test_openat_direct_close_direct(
    make_ring: Callable[..., IoUring], tmp_path: pathlib.Path
) -> None:
    ring = make_ring(2)
    require_ops(ring, Op.OPENAT, Op.CLOSE)
    try:
        ring.register_files_sparse(3)
    except OSError as exc:
        pytest.skip(f"register_files_sparse: {exc}")
    path = tmp_path / "test_io_uring_openat_direct"
    flags = os.O_RDWR | os.O_CREAT

    sqe = ring.openat_direct(0x33333333, AT_FDCWD, path, flags, 0o666, 0)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.OPENAT,
        fd=AT_FDCWD,
        addr=fields["addr"],
        len=0o666,
        rw_flags=flags,
        splice_fd_in=1,
        user_data=0x33333333,
    )
    cqe = run_one(ring)
    skip_if_refused(cqe, "OPENAT direct", errno.EINVAL, errno.EBADF)
    assert cqe == Cqe(0x33333333, 0, 0)

    sqe = ring.openat_direct(0x33333334, AT_FDCWD, path, flags, 0o666, 1)
    assert sqe.splice_fd_in == 2
    assert run_one(ring) == Cqe(0x33333334, 0, 0)

    sqe = ring.openat_direct(0x33333335, AT_FDCWD, path, flags, 0o666, FILE_INDEX_ALLOC)
    assert sqe.splice_fd_in == -1  # FILE_INDEX_ALLOC, as the kernel's s32 file_index
    assert run_one(ring) == Cqe(0x33333335, 2, 0)  # the slot it allocated

    # Table full.
    ring.openat_direct(0x33333336, AT_FDCWD, path, flags, 0o666, FILE_INDEX_ALLOC)
    assert run_one(ring) == Cqe(0x33333336, -errno.ENFILE, 0)

    for slot in range(3):
        sqe = ring.close_direct(0x44444444 + slot, slot)
        assert sqe.fields() == sqe_fields(
            opcode=Op.CLOSE, fd=0, splice_fd_in=slot + 1, user_data=0x44444444 + slot
        )
        assert run_one(ring) == Cqe(0x44444444 + slot, 0, 0)
    ring.close_direct(0x45, 0)
    assert run_one(ring) == Cqe(0x45, -errno.EBADF, 0)
    ring.unregister_files()


# --------------------------------------------------------------------------------------------
# Reads and writes with flags


def test_writev2_append_flag(ring: IoUring, tmp_file: Any) -> None:
    if not hasattr(os, "RWF_APPEND"):
        pytest.skip("os.RWF_APPEND unavailable")
    f = tmp_file(b"0123")
    data = bytearray(b"ab")
    sqe = ring.writev2(0x2A2A, f, [data], 0, os.RWF_APPEND)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.WRITEV,
        fd=f.fd,
        addr=fields["addr"],
        len=1,
        off=0,
        rw_flags=os.RWF_APPEND,
        user_data=0x2A2A,
    )
    assert iovecs_at(fields["addr"], 1) == [(addr_of(data), 2)]
    cqe = run_one(ring)
    skip_if_refused(cqe, "RWF_APPEND", errno.EOPNOTSUPP)
    assert cqe == Cqe(0x2A2A, 2, 0)
    assert f.contents() == b"0123ab"


def test_readv2_lifetime_and_prep(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"hello world")
    bufs = [Buf(5), Buf(6)]
    sqe = ring.get_sqe().prep_readv2(0x2B2B, f, bufs, 0, 0)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.READV, fd=f.fd, addr=fields["addr"], len=2, user_data=0x2B2B
    )
    assert iovecs_at(fields["addr"], 2) == [(addr_of(b), len(b)) for b in bufs]
    first, ref = bufs[0], weakref.ref(bufs[1])
    del bufs
    gc.collect()
    assert ref() is not None  # pinned by the ring
    assert run_one(ring) == Cqe(0x2B2B, 11, 0)
    gc.collect()
    assert ref() is None  # released once reaped
    assert first == b"hello"


def test_readv2_nowait(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"cached")
    buf = bytearray(6)
    sqe = ring.readv2(0x4E, f, [buf], 0, os.RWF_NOWAIT)
    assert sqe.rw_flags == os.RWF_NOWAIT
    cqe = run_one(ring)
    assert cqe in (Cqe(0x4E, 6, 0), Cqe(0x4E, -errno.EAGAIN, 0))
    if cqe.res == 6:
        assert buf == b"cached"


def test_readv2_refuses_read_only_buffers(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"x")
    before = sq_counters(ring)
    with pytest.raises(TypeError, match="iovecs"):
        ring.readv2(1, f, [bytearray(1), b"read-only"], 0, 0)
    with pytest.raises(TypeError, match="flags"):
        ring.writev2(1, f, [b"x"], 0, "0")  # type: ignore[arg-type]
    with pytest.raises(OverflowError, match="flags"):
        ring.writev2(1, f, [b"x"], 0, -1)
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# Syncing, space and advice


def test_sync_file_range(ring: IoUring, tmp_file: Any) -> None:
    require_ops(ring, Op.SYNC_FILE_RANGE)
    f = tmp_file(b"x" * 8192)
    flags = SyncFileRangeFlags.WAIT_BEFORE | SyncFileRangeFlags.WRITE
    sqe = ring.sync_file_range(0x5F5F, f, 4096, 4096, flags)
    assert sqe.fields() == sqe_fields(
        opcode=Op.SYNC_FILE_RANGE, fd=f.fd, len=4096, off=4096, rw_flags=flags, user_data=0x5F5F
    )
    assert run_one(ring) == Cqe(0x5F5F, 0, 0)


def test_fallocate_keep_size_and_punch_hole(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"\xff" * 8192)
    mode = FallocateFlags.PUNCH_HOLE | FallocateFlags.KEEP_SIZE
    sqe = ring.fallocate(0xFA11, f, mode, 0, 4096)
    assert (sqe.len, sqe.off, sqe.addr) == (mode, 0, 4096)
    cqe = run_one(ring)
    skip_if_refused(cqe, "PUNCH_HOLE")
    assert cqe == Cqe(0xFA11, 0, 0)
    assert f.pread(8192) == bytes(4096) + b"\xff" * 4096


def test_fallocate_64_bit_offset_and_length(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file()
    sqe = ring.get_sqe().prep_fallocate(0xFA12, f, FallocateFlags.KEEP_SIZE, 2**40, 2**33)
    assert (sqe.off, sqe.addr, sqe.len) == (2**40, 2**33, FallocateFlags.KEEP_SIZE)
    sqe.prep_nop(0xFA12)  # not run: it would really allocate 8 GiB
    assert run_one(ring) == Cqe(0xFA12, 0, 0)
    # A small range far beyond the end of the file: allocated, size unchanged (KEEP_SIZE).
    ring.fallocate(0xFA13, f, FallocateFlags.KEEP_SIZE, 2**33, 4096)
    cqe = run_one(ring)
    skip_if_refused(cqe, "FALLOC_FL_KEEP_SIZE")
    assert cqe == Cqe(0xFA13, 0, 0)
    assert os.fstat(f.fd).st_size == 0
    assert os.fstat(f.fd).st_blocks >= 8


def test_fadvise(ring: IoUring, tmp_file: Any) -> None:
    require_ops(ring, Op.FADVISE)
    f = tmp_file(b"x" * 4096)
    sqe = ring.fadvise(0xFAD, f, 0, 4096, os.POSIX_FADV_DONTNEED)
    assert sqe.fields() == sqe_fields(
        opcode=Op.FADVISE,
        fd=f.fd,
        off=0,
        len=4096,
        rw_flags=os.POSIX_FADV_DONTNEED,
        user_data=0xFAD,
    )
    assert run_one(ring) == Cqe(0xFAD, 0, 0)
    # A 64-bit length goes into addr (io_uring_prep_fadvise64); older kernels refuse it.
    sqe = ring.fadvise(0xFAE, f, 16, 2**32, os.POSIX_FADV_SEQUENTIAL)
    assert (sqe.addr, sqe.len, sqe.off) == (2**32, 0, 16)
    fadvise64 = not _kernel.older_than("6.11")
    assert run_one(ring) == Cqe(0xFAE, 0 if fadvise64 else -errno.EINVAL, 0)
    ring.fadvise(0xFAF, f, 0, 0, 12345)
    assert run_one(ring) == Cqe(0xFAF, -errno.EINVAL, 0)


def test_ftruncate(ring: IoUring, tmp_file: Any) -> None:
    require_ops(ring, Op.FTRUNCATE)
    f = tmp_file(b"0123456789")
    sqe = ring.ftruncate(0xF7, f, 4)
    assert sqe.fields() == sqe_fields(opcode=Op.FTRUNCATE, fd=f.fd, off=4, user_data=0xF7)
    assert run_one(ring) == Cqe(0xF7, 0, 0)
    assert f.contents() == b"0123"
    ring.ftruncate(0xF8, f, 4096)
    assert run_one(ring) == Cqe(0xF8, 0, 0)
    assert os.fstat(f.fd).st_size == 4096


@pytest.fixture
def anon_map() -> Iterator[mmap.mmap]:
    # Private: MADV_DONTNEED zeroes private anonymous pages (a shared mapping keeps them).
    m = mmap.mmap(-1, 4 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    yield m
    m.close()


def test_madvise_dontneed_zeroes_whole_pages(ring: IoUring, anon_map: mmap.mmap) -> None:
    require_ops(ring, Op.MADVISE)
    anon_map[:] = b"\x5a" * len(anon_map)
    view = memoryview(anon_map)[PAGE : 3 * PAGE]
    base = addr_of(anon_map)
    sqe = ring.madvise(0x3AD, view, mmap.MADV_DONTNEED)
    assert sqe.fields() == sqe_fields(
        opcode=Op.MADVISE,
        fd=-1,
        addr=base + PAGE,
        len=2 * PAGE,
        rw_flags=mmap.MADV_DONTNEED,
        user_data=0x3AD,
    )
    del view
    assert run_one(ring) == Cqe(0x3AD, 0, 0)
    assert anon_map[:PAGE] == b"\x5a" * PAGE
    assert anon_map[PAGE : 3 * PAGE] == bytes(2 * PAGE)
    assert anon_map[3 * PAGE :] == b"\x5a" * PAGE


def test_madvise_preserving_advice_takes_any_buffer(ring: IoUring) -> None:
    data = b"read-only bytes are fine for advice that keeps the contents"
    sqe = ring.madvise(0x3AE, data, mmap.MADV_WILLNEED)
    assert (sqe.addr, sqe.len) == (
        ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value,
        len(data),
    )
    cqe = run_one(ring)
    # The kernel wants a page-aligned start; an unaligned one is its EINVAL, not our error.
    assert cqe in (Cqe(0x3AE, 0, 0), Cqe(0x3AE, -errno.EINVAL, 0))
    assert data.startswith(b"read-only")


def test_madvise_lifetime(ring: IoUring) -> None:
    m = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m[:4] = b"abcd"
    ring.madvise(0x3AF, m, mmap.MADV_DONTNEED)
    # The export holds the mapping: it cannot be closed while the operation may run.
    with pytest.raises(BufferError):
        m.close()
    assert ring.pinned == 1
    assert run_one(ring) == Cqe(0x3AF, 0, 0)
    assert ring.pinned == 0
    assert m[:4] == bytes(4)
    m.close()


@pytest.mark.parametrize(
    ("make_buffer", "advice", "error", "match"),
    [
        (lambda m: memoryview(m)[1 : PAGE + 1], mmap.MADV_DONTNEED, ValueError, "page"),
        (lambda m: memoryview(m)[: PAGE - 8], mmap.MADV_DONTNEED, ValueError, "page"),
        (lambda m: bytearray(PAGE + 8), getattr(mmap, "MADV_REMOVE", 9), ValueError, "page"),
        (lambda m: bytes(PAGE), mmap.MADV_DONTNEED, TypeError, "writable"),
        (lambda m: m, 10, ValueError, "refused"),  # MADV_DONTFORK
        (lambda m: m, 102, ValueError, "refused"),  # MADV_GUARD_INSTALL
        (lambda m: m, 100, ValueError, "refused"),  # MADV_HWPOISON
        (lambda m: m, 77, ValueError, "not a known"),
        (lambda m: "text", mmap.MADV_WILLNEED, TypeError, "buffer"),
        (lambda m: m, "4", TypeError, "advice"),
    ],
    ids=[
        "unaligned_start",
        "partial_page",
        "bytearray_remove",
        "read_only_dontneed",
        "dontfork",
        "guard_install",
        "hwpoison",
        "unknown",
        "str_buffer",
        "str_advice",
    ],
)
def test_madvise_validation(
    ring: IoUring,
    anon_map: mmap.mmap,
    make_buffer: Callable[[mmap.mmap], Any],
    advice: Any,
    error: type[Exception],
    match: str,
) -> None:
    before = sq_counters(ring)
    buffer = make_buffer(anon_map)
    with pytest.raises(error, match=match):
        ring.madvise(1, buffer, advice)
    assert sq_counters(ring) == before
    sqe = ring.get_sqe()
    with pytest.raises(error, match=match):
        sqe.prep_madvise(1, buffer, advice)
    del buffer
    # The refused prep left its slot a NOP with nothing pinned.
    assert (sqe.opcode, ring.pinned) == (Op.NOP, 0)
    assert run_one(ring) == Cqe(0, 0, 0)


# --------------------------------------------------------------------------------------------
# Opening and closing


def open_how_at(addr: int) -> tuple[int, int, int]:
    words = (ctypes.c_uint64 * 3).from_address(addr)
    return (words[0], words[1], words[2])


def test_openat2(ring: IoUring, tmp_path: pathlib.Path, dir_fd: int) -> None:
    require_ops(ring, Op.OPENAT2)
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    sqe = ring.openat2(0x0A2, dir_fd, "file", flags, 0o640, ResolveFlags.BENEATH)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.OPENAT2,
        fd=dir_fd,
        addr=fields["addr"],
        len=24,
        off=fields["off"],
        user_data=0x0A2,
    )
    assert ctypes.string_at(fields["addr"]) == b"file"
    assert open_how_at(fields["off"]) == (flags, 0o640, ResolveFlags.BENEATH)
    cqe = run_one(ring)
    assert cqe.user_data == 0x0A2
    assert cqe.flags == 0
    assert cqe.res > 0, os.strerror(-cqe.res)
    try:
        assert os.path.samestat(os.fstat(cqe.res), os.stat(tmp_path / "file"))
        assert os.stat(tmp_path / "file").st_mode & 0o777 == 0o640 & ~_umask()
    finally:
        os.close(cqe.res)
    # RESOLVE_BENEATH refuses to leave dir_fd.
    ring.openat2(0x0A3, dir_fd, "../escape", os.O_RDONLY, 0, ResolveFlags.BENEATH)
    assert run_one(ring) == Cqe(0x0A3, -errno.EXDEV, 0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_openat2_direct(ring: IoUring, tmp_path: pathlib.Path) -> None:
    require_ops(ring, Op.OPENAT2)
    ring.register_files_sparse(2)
    (tmp_path / "f").write_bytes(b"direct!")
    sqe = ring.openat2_direct(0x0A4, AT_FDCWD, tmp_path / "f", os.O_RDONLY, 0, 0, 1)
    assert (sqe.opcode, sqe.len, sqe.splice_fd_in) == (Op.OPENAT2, 24, 2)
    assert run_one(ring) == Cqe(0x0A4, 0, 0)
    buf = bytearray(7)
    read = ring.read(0x0A5, 1, buf, 0)
    read.flags |= SqeFlags.FIXED_FILE
    assert run_one(ring) == Cqe(0x0A5, 7, 0)
    assert buf == b"direct!"
    ring.openat2_direct(0x0A6, AT_FDCWD, tmp_path / "f", os.O_RDONLY, 0, 0, FILE_INDEX_ALLOC)
    assert run_one(ring) == Cqe(0x0A6, 0, 0)
    ring.unregister_files()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.openat2(1, AT_FDCWD, b"a\0b", 0), ValueError, "path"),
        (lambda r: r.openat2(1, AT_FDCWD, 42, 0), TypeError, "path"),
        (lambda r: r.openat2(1, AT_FDCWD, "p", 0, 0, -1), OverflowError, "resolve"),
        (lambda r: r.openat2(1, "dir", "p", 0), TypeError, "dir_fd"),
        (lambda r: r.openat_direct(1, AT_FDCWD, "p", 0, 0, -1), OverflowError, "file_index"),
        (lambda r: r.openat_direct(1, AT_FDCWD, "p", 0, 0, 2**31), OverflowError, "file_index"),
        (lambda r: r.openat2_direct(1, AT_FDCWD, "p", 0, 0, 0, "0"), TypeError, "file_index"),
        (lambda r: r.close_direct(1, FILE_INDEX_ALLOC), ValueError, "FILE_INDEX_ALLOC"),
        (lambda r: r.close_direct(1, -2), OverflowError, "file_index"),
    ],
)
def test_open_close_validation(
    ring: IoUring, call: Callable[[IoUring], Any], error: type[Exception], match: str
) -> None:
    with refused(ring, error, match):
        call(ring)


# --------------------------------------------------------------------------------------------
# statx


def test_statx_result_object_matches_os_stat(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"x" * 1000)
    stx = Statx()
    assert stx.st_size == 0
    assert len(bytes(stx)) == 256
    ring.statx(0x57A7, AT_FDCWD, str(f.path), 0, StatxMask.BASIC_STATS | StatxMask.BTIME, stx)
    assert run_one(ring) == Cqe(0x57A7, 0, 0)
    st = os.stat(f.path)
    assert stx.stx_mask & StatxMask.BASIC_STATS == StatxMask.BASIC_STATS
    assert isinstance(stx.stx_mask, StatxMask)
    for name in (
        "st_mode",
        "st_ino",
        "st_dev",
        "st_nlink",
        "st_uid",
        "st_gid",
        "st_size",
        "st_blksize",
        "st_blocks",
        "st_rdev",
    ):
        assert getattr(stx, name) == getattr(st, name), name
    for name in ("st_atime_ns", "st_mtime_ns", "st_ctime_ns"):
        assert getattr(stx, name) == getattr(st, name), name
    for name in ("st_atime", "st_mtime", "st_ctime"):
        assert getattr(stx, name) == pytest.approx(getattr(st, name), abs=1e-6), name
    if stx.stx_mask & StatxMask.BTIME:
        assert stx.st_birthtime_ns is not None
        assert stx.st_birthtime == pytest.approx(stx.st_birthtime_ns / 1e9)
    else:
        assert stx.st_birthtime is None
        assert stx.st_birthtime_ns is None
    assert "size=1000" in repr(stx)


def test_statx_empty_path_on_fd_into_numpy_record(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"12345")
    out = np.zeros(2, STATX_DTYPE)
    assert STATX_DTYPE.itemsize == 256
    sqe = ring.get_sqe().prep_statx(0x57A8, f, "", AtFlags.EMPTY_PATH, StatxMask.SIZE, out[1:])
    assert (sqe.fd, sqe.rw_flags, sqe.len, sqe.off) == (
        f.fd,
        AtFlags.EMPTY_PATH,
        StatxMask.SIZE,
        out.ctypes.data + 256,
    )
    assert run_one(ring) == Cqe(0x57A8, 0, 0)
    assert out[1]["stx_size"] == 5
    assert out[1]["stx_mask"] & StatxMask.SIZE
    assert out[0]["stx_size"] == 0


def test_statx_missing_file(ring: IoUring, tmp_path: pathlib.Path) -> None:
    stx = Statx()
    ring.statx(
        0x57A9, AT_FDCWD, tmp_path / "missing", AtFlags.SYMLINK_NOFOLLOW, StatxMask.BASIC_STATS, stx
    )
    assert run_one(ring) == Cqe(0x57A9, -errno.ENOENT, 0)


def test_statx_lifetime(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"abc")
    stx = Statx()
    ref = weakref.ref(stx)
    sqe = ring.statx(0x57AA, AT_FDCWD, f.path, 0, StatxMask.SIZE, stx)
    address = sqe.off
    del stx, sqe
    gc.collect()
    assert ref() is not None  # pinned by the ring
    assert ring.pinned == 2  # the path copy and the Statx
    cqe = run_one(ring)
    assert cqe == Cqe(0x57AA, 0, 0)
    # Reaped: the ring let go; the kernel wrote into the object while it was alive.
    gc.collect()
    assert ref() is None
    assert ring.pinned == 0
    assert address != 0


def test_statx_result_kept_alive_by_caller(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"abcd")
    stx = Statx()
    ring.statx(0x57AB, AT_FDCWD, f.path, 0, StatxMask.SIZE, stx)
    ring.submit_and_wait(1)
    gc.collect()
    assert ring.copy_cqe() == Cqe(0x57AB, 0, 0)
    assert stx.st_size == 4


@pytest.mark.parametrize(
    ("statxbuf", "error", "match"),
    [
        (bytearray(255), ValueError, "256"),
        (bytes(256), TypeError, "writable"),
        (memoryview(bytearray(300)).toreadonly(), TypeError, "writable"),
        ("s" * 256, TypeError, "statxbuf"),
        (None, TypeError, "statxbuf"),
    ],
    ids=["small", "bytes", "readonly_view", "str", "none"],
)
def test_statx_validation(
    ring: IoUring, tmp_file: Any, statxbuf: Any, error: type[Exception], match: str
) -> None:
    f = tmp_file()
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        ring.statx(1, AT_FDCWD, f.path, 0, StatxMask.SIZE, statxbuf)
    with pytest.raises(TypeError, match="path"):
        ring.statx(1, AT_FDCWD, None, 0, StatxMask.SIZE, Statx())  # type: ignore[arg-type]
    with pytest.raises(OverflowError, match="mask"):
        ring.statx(1, AT_FDCWD, f.path, 0, -1, Statx())
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# Names: validation and lifetimes


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.renameat(1, AT_FDCWD, "a", AT_FDCWD, None), TypeError, "new_path"),
        (lambda r: r.renameat(1, AT_FDCWD, "a\0", AT_FDCWD, "b"), ValueError, "old_path"),
        (lambda r: r.renameat(1, AT_FDCWD, "a", 1.5, "b"), TypeError, "new_dir_fd"),
        (lambda r: r.unlinkat(1, AT_FDCWD, b"x", -1), OverflowError, "flags"),
        (lambda r: r.mkdirat(1, AT_FDCWD, "x", -1), OverflowError, "mode"),
        (lambda r: r.symlinkat(1, 3, AT_FDCWD, "l"), TypeError, "target"),
        (lambda r: r.symlinkat(1, "t", AT_FDCWD, b"l\0"), ValueError, "link_path"),
        (lambda r: r.linkat(1, AT_FDCWD, "a", AT_FDCWD, [], 0), TypeError, "new_path"),
        (lambda r: r.linkat(-1, AT_FDCWD, "a", AT_FDCWD, "b"), OverflowError, "user_data"),
    ],
)
def test_name_ops_validation(
    ring: IoUring, call: Callable[[IoUring], Any], error: type[Exception], match: str
) -> None:
    with refused(ring, error, match):
        call(ring)


def test_name_ops_paths_are_private_copies(ring: IoUring, tmp_path: pathlib.Path) -> None:
    class Path(os.PathLike[str]):
        def __init__(self, p: str) -> None:
            self.p = p

        def __fspath__(self) -> str:
            return self.p

    (tmp_path / "src").write_bytes(b"x")
    old, new = Path(str(tmp_path / "src")), Path(str(tmp_path / "dst"))
    refs = [weakref.ref(old), weakref.ref(new)]
    ring.renameat(0x7E, AT_FDCWD, old, AT_FDCWD, new)
    del old, new
    gc.collect()
    assert all(r() is None for r in refs)  # copies, not references
    assert ring.pinned == 2
    assert run_one(ring) == Cqe(0x7E, 0, 0)
    assert (tmp_path / "dst").exists()
    assert ring.pinned == 0


# --------------------------------------------------------------------------------------------
# Extended attributes


@pytest.fixture
def xattr_file(tmp_file: Any) -> Any:
    f = tmp_file(b"x")
    try:
        os.setxattr(f.path, "user.probe", b"1")
    except OSError as exc:
        pytest.skip(f"file system refuses user xattrs: {exc}")
    return f


def test_setxattr_getxattr(ring: IoUring, xattr_file: Any) -> None:
    require_ops(ring, Op.SETXATTR, Op.GETXATTR)
    f = xattr_file
    value = b"some value"
    sqe = ring.setxattr(0x5E7, "user.iouring", value, f.path, XattrFlags.CREATE)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.SETXATTR,
        addr=fields["addr"],
        off=ctypes.cast(ctypes.c_char_p(value), ctypes.c_void_p).value or 0,
        len=len(value),
        rw_flags=XattrFlags.CREATE,
        addr3=fields["addr3"],
        user_data=0x5E7,
    )
    assert ctypes.string_at(fields["addr"]) == b"user.iouring"
    assert ctypes.string_at(fields["addr3"]) == os.fsencode(f.path)
    assert run_one(ring) == Cqe(0x5E7, 0, 0)
    assert os.getxattr(f.path, "user.iouring") == value
    # XATTR_CREATE on an existing attribute.
    ring.setxattr(0x5E8, "user.iouring", b"v", f.path, XattrFlags.CREATE)
    assert run_one(ring) == Cqe(0x5E8, -errno.EEXIST, 0)

    # An empty buffer asks for the size.
    sqe = ring.getxattr(0x6E7, b"user.iouring", bytearray(), f.path)
    assert (sqe.opcode, sqe.len) == (Op.GETXATTR, 0)
    assert run_one(ring) == Cqe(0x6E7, len(value), 0)
    out = Buf(32)
    ref = weakref.ref(out)
    sqe = ring.getxattr(0x6E8, "user.iouring", out, f.path)
    assert (sqe.off, sqe.len) == (addr_of(out), 32)
    del out, sqe
    gc.collect()
    got = ref()
    assert got is not None
    assert run_one(ring) == Cqe(0x6E8, len(value), 0)
    assert bytes(got[: len(value)]) == value
    del got
    gc.collect()
    assert ref() is None
    ring.getxattr(0x6E9, "user.missing", bytearray(8), f.path)
    assert run_one(ring) == Cqe(0x6E9, -errno.ENODATA, 0)


def test_fsetxattr_fgetxattr(ring: IoUring, xattr_file: Any) -> None:
    require_ops(ring, Op.FSETXATTR, Op.FGETXATTR)
    f = xattr_file
    sqe = ring.fsetxattr(0x5F1, f, "user.fd", bytearray(b"by fd"))
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.FSETXATTR,
        fd=f.fd,
        addr=fields["addr"],
        off=fields["off"],
        len=5,
        user_data=0x5F1,
    )
    assert run_one(ring) == Cqe(0x5F1, 0, 0)
    out = np.zeros(16, np.uint8)
    sqe = ring.fgetxattr(0x6F1, f, "user.fd", out)
    assert (sqe.fd, sqe.off, sqe.len, sqe.addr3) == (f.fd, out.ctypes.data, 16, 0)
    assert run_one(ring) == Cqe(0x6F1, 5, 0)
    assert out[:5].tobytes() == b"by fd"
    ring.fgetxattr(0x6F2, f, "user.fd", bytearray(2))
    assert run_one(ring) == Cqe(0x6F2, -errno.ERANGE, 0)
    ring.fsetxattr(0x5F2, f, "user.new", b"x", XattrFlags.REPLACE)
    assert run_one(ring) == Cqe(0x5F2, -errno.ENODATA, 0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r, p: r.getxattr(1, "user.a", b"read-only", p), TypeError, "value"),
        (lambda r, p: r.fgetxattr(1, 0, "user.a", bytes(4)), TypeError, "value"),
        (lambda r, p: r.getxattr(1, None, bytearray(4), p), TypeError, "name"),
        (lambda r, p: r.setxattr(1, "user.a\0", b"v", p), ValueError, "name"),
        (lambda r, p: r.setxattr(1, "user.a", "str", p), TypeError, "value"),
        (lambda r, p: r.fsetxattr(1, 0, "user.a", b"v", -1), OverflowError, "flags"),
        (lambda r, p: r.setxattr(1, "user.a", b"v", 5), TypeError, "path"),
    ],
)
def test_xattr_validation(
    ring: IoUring,
    tmp_path: pathlib.Path,
    call: Callable[[IoUring, pathlib.Path], Any],
    error: type[Exception],
    match: str,
) -> None:
    with refused(ring, error, match):
        call(ring, tmp_path)


# --------------------------------------------------------------------------------------------
# Pipes


def test_tee(ring: IoUring, make_pipe: Callable[[], tuple[int, int]]) -> None:
    require_ops(ring, Op.TEE)
    r1, w1 = make_pipe()
    r2, w2 = make_pipe()
    os.write(w1, b"hello")
    sqe = ring.tee(0x7EE, r1, w2, 5)
    assert sqe.fields() == sqe_fields(opcode=Op.TEE, fd=w2, len=5, splice_fd_in=r1, user_data=0x7EE)
    assert run_one(ring) == Cqe(0x7EE, 5, 0)
    assert os.read(r2, 16) == b"hello"
    assert os.read(r1, 16) == b"hello"  # tee does not consume
    # Non-pipes are the kernel's EINVAL.
    sqe = ring.tee(0x7EF, r1, w1, 1, os.SPLICE_F_NONBLOCK)
    assert sqe.rw_flags == os.SPLICE_F_NONBLOCK
    assert run_one(ring) == Cqe(0x7EF, -errno.EINVAL, 0)  # a pipe onto itself


def close_all(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def test_pipe(ring: IoUring) -> None:
    require_ops(ring, Op.PIPE)
    fds = array.array("i", [-1, -1])
    sqe = ring.pipe(0x919E, fds, os.O_CLOEXEC)
    assert sqe.fields() == sqe_fields(
        opcode=Op.PIPE, addr=addr_of(fds), rw_flags=os.O_CLOEXEC, user_data=0x919E
    )
    assert ring.pinned == 1
    cqe = run_one(ring)
    skip_if_refused(cqe, "PIPE")
    assert cqe == Cqe(0x919E, 0, 0)
    assert ring.pinned == 0
    r, w = fds
    try:
        assert r > 2
        assert w > 2
        assert r != w
        assert os.get_inheritable(r) is False
        os.write(w, b"through")
        assert os.read(r, 16) == b"through"
    finally:
        close_all(r, w)


def test_pipe_lifetime(ring: IoUring) -> None:
    require_ops(ring, Op.PIPE)
    ring.register_files_sparse(2)  # direct: the kernel writes slots, nothing leaks
    fds = IntArray("i", [-1, -1])
    ref = weakref.ref(fds)
    ring.pipe_direct(0x919F, fds, 0, 0)
    del fds
    gc.collect()
    assert ref() is not None  # pinned by the ring until the completion is reaped
    assert run_one(ring) == Cqe(0x919F, 0, 0)
    gc.collect()
    assert ref() is None
    assert ring.pinned == 0
    ring.unregister_files()


def test_pipe_into_numpy_and_bytearray(ring: IoUring) -> None:
    require_ops(ring, Op.PIPE)
    a = np.full(2, -1, np.int32)
    b = bytearray(16)
    ring.pipe(0x91, a)
    ring.get_sqe().prep_pipe(0x92, b, os.O_NONBLOCK | os.O_CLOEXEC)
    got = submit_and_reap(ring, 2)
    assert got == {0x91: Cqe(0x91, 0, 0), 0x92: Cqe(0x92, 0, 0)}
    fds_b = list(np.frombuffer(b, np.int32)[:2])
    try:
        assert min(a) > 2
        assert min(fds_b) > 2
        assert os.get_blocking(int(fds_b[0])) is False
    finally:
        close_all(*(int(x) for x in a), *(int(x) for x in fds_b))
    assert b[8:] == bytes(8)  # only two ints written


def test_pipe_direct(ring: IoUring) -> None:
    require_ops(ring, Op.PIPE)
    ring.register_files_sparse(4)
    slots = array.array("i", [-1, -1])
    sqe = ring.pipe_direct(0x93, slots, 0, 1)
    assert (sqe.opcode, sqe.splice_fd_in) == (Op.PIPE, 2)
    assert run_one(ring) == Cqe(0x93, 0, 0)
    assert list(slots) == [1, 2]
    data = bytearray(b"via slots")
    w = ring.write(0x94, 2, data, -1)
    w.flags |= SqeFlags.FIXED_FILE
    assert run_one(ring) == Cqe(0x94, 9, 0)
    out = bytearray(9)
    rd = ring.read(0x95, 1, out, -1)
    rd.flags |= SqeFlags.FIXED_FILE
    assert run_one(ring) == Cqe(0x95, 9, 0)
    assert out == data
    ring.pipe_direct(0x96, slots, 0, FILE_INDEX_ALLOC)
    assert run_one(ring) == Cqe(0x96, 0, 0)
    assert sorted(slots) == [0, 3]
    ring.unregister_files()


@pytest.mark.parametrize(
    ("fds", "error", "match"),
    [
        (bytes(8), TypeError, "writable"),
        (bytearray(7), ValueError, "8 bytes"),
        (array.array("h", [0, 0]), ValueError, "8 bytes"),
        ([0, 0], TypeError, "fds"),
    ],
    ids=["bytes", "short", "short_array", "list"],
)
def test_pipe_validation(ring: IoUring, fds: Any, error: type[Exception], match: str) -> None:
    before = sq_counters(ring)
    with pytest.raises(error, match=match):
        ring.pipe(1, fds)
    with pytest.raises(error, match=match):
        ring.pipe_direct(1, fds, 0, 0)
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# Plain fields and the two spellings


def test_plain_fields_only_where_safe(ring: IoUring, tmp_file: Any, tmp_path: pathlib.Path) -> None:
    require_ops(ring, Op.PIPE)
    f = tmp_file(b"x")
    sqe = ring.fallocate(1, f, 0, 0, 1)
    sqe.off = 0  # plain: no pointer meaning
    sqe.rw_flags = 0
    stx = Statx()
    sqe2 = ring.statx(2, AT_FDCWD, f.path, 0, StatxMask.SIZE, stx)
    with pytest.raises(ValueError, match="off"):
        sqe2.off = 0  # the statx buffer pointer
    m = mmap.mmap(-1, PAGE)
    sqe3 = ring.madvise(3, m, mmap.MADV_WILLNEED)
    with pytest.raises(ValueError, match="rw_flags"):
        sqe3.rw_flags = mmap.MADV_DONTNEED  # the advice was checked against the buffer
    fds = array.array("i", [-1, -1])
    sqe4 = ring.pipe(4, fds)
    with pytest.raises(ValueError, match="rw_flags"):
        sqe4.rw_flags = 0
    got = submit_and_reap(ring, 4)
    assert got[1] == Cqe(1, 0, 0)
    assert got[2] == Cqe(2, 0, 0)
    assert got[3] == Cqe(3, 0, 0)
    assert got[4] == Cqe(4, 0, 0)
    close_all(*fds)
    m.close()


def _fs_cases(f: Any, tmp_path: pathlib.Path) -> list[tuple[str, tuple[Any, ...]]]:
    return [
        ("readv2", (f, [bytearray(1)], 0, 0)),
        ("writev2", (f, [b"x"], 0, 0)),
        ("sync_file_range", (f, 0, 0, 0)),
        ("fallocate", (f, 0, 0, 1)),
        ("fadvise", (f, 0, 1, 0)),
        ("madvise", (b"x", mmap.MADV_NORMAL)),
        ("ftruncate", (f, 1)),
        ("openat2", (AT_FDCWD, tmp_path / "o", os.O_RDONLY, 0, 0)),
        ("openat_direct", (AT_FDCWD, "p", 0, 0, 0)),
        ("openat2_direct", (AT_FDCWD, "p", 0, 0, 0, 0)),
        ("close_direct", (0,)),
        ("statx", (AT_FDCWD, "p", 0, 1, bytearray(256))),
        ("renameat", (AT_FDCWD, "a", AT_FDCWD, "b", 0)),
        ("unlinkat", (AT_FDCWD, "a", 0)),
        ("mkdirat", (AT_FDCWD, "a", 0o700)),
        ("symlinkat", ("t", AT_FDCWD, "l")),
        ("linkat", (AT_FDCWD, "a", AT_FDCWD, "b", 0)),
        ("getxattr", ("user.a", bytearray(4), "p")),
        ("setxattr", ("user.a", b"v", "p", 0)),
        ("fgetxattr", (f, "user.a", bytearray(4))),
        ("fsetxattr", (f, "user.a", b"v", 0)),
        ("tee", (0, 1, 1, 0)),
        ("pipe", (bytearray(8), 0)),
        ("pipe_direct", (bytearray(8), 0, 0)),
    ]


def test_ring_method_and_prep_build_the_same_sqe(
    ring: IoUring, tmp_file: Any, tmp_path: pathlib.Path
) -> None:
    f = tmp_file(b"x")
    pointer_fields = {"addr", "off", "addr3"}
    for name, args in _fs_cases(f, tmp_path):
        a = getattr(ring, name)(0xAB, *args)
        b = getattr(ring.get_sqe(), "prep_" + name)(0xAB, *args)
        fa, fb = a.fields(), b.fields()
        assert fa["opcode"] == fb["opcode"] != Op.NOP, name
        assert {k: v for k, v in fa.items() if k not in pointer_fields} == {
            k: v for k, v in fb.items() if k not in pointer_fields
        }, name
        # Nothing runs: both slots become NOPs again (releasing their pins).
        a.prep_nop(0xAB)
        b.prep_nop(0xAC)
        assert ring.pinned == 0
        assert submit_and_reap(ring, 2) == {0xAB: Cqe(0xAB, 0, 0), 0xAC: Cqe(0xAC, 0, 0)}
