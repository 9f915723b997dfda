"""File operations: read/write (+v, +fixed, +v fixed), fsync, splice, openat, close;
registered files.

Ports Zig's IoUring tests 3 (readv), 4 (writev/fsync/readv), 5 (write/read), 6 (splice/read),
7 (write_fixed/read_fixed), 8 (openat), 9 (close) and 19 (register_files_update), then checks
every operation's argument validation: a refused call consumes no SQE and pins nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import pathlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sqe_support import refused

from iouring import (
    Cqe,
    Features,
    FsyncFlags,
    IoUring,
    Op,
    SqeFlags,
    SubmissionQueueFull,
)

from .conftest import (
    U64_MAX,
    addr_of,
    check_submit,
    iovecs_at,
    reap_grouped,
    register_or_skip,
    require_ops,
    sq_counters,
    sqe_fields,
)

AT_FDCWD = -100


# --------------------------------------------------------------------------------------------
# Zig ports


def test_readv_fixed_file_dev_zero(
    make_ring: Callable[..., IoUring], ring_config: Any, dev_zero: int
) -> None:
    ring = make_ring(1)
    ring.register_files([dev_zero])
    buf = bytearray(b"\x2a" * 128)
    sqe = ring.readv(0xCCCCCCCC, 0, [buf], 0)
    sqe.flags |= SqeFlags.FIXED_FILE
    fields = sqe.fields()
    assert fields["addr"] != 0
    assert fields == sqe_fields(
        opcode=Op.READV,
        flags=SqeFlags.FIXED_FILE,
        fd=0,
        addr=fields["addr"],
        len=1,
        off=0,
        user_data=0xCCCCCCCC,
    )
    assert iovecs_at(fields["addr"], 1) == [(addr_of(buf), 128)]
    with pytest.raises(SubmissionQueueFull):
        ring.get_sqe()
    check_submit(ring, ring_config.sqpoll, 1)
    assert ring.copy_cqe() == Cqe(0xCCCCCCCC, 128, 0)
    assert buf == bytes(128)
    ring.unregister_files()


def test_writev_fsync_readv_linked(
    make_ring: Callable[..., IoUring], ring_config: Any, tmp_file: Any
) -> None:
    ring = make_ring(4)
    f = tmp_file()
    buffer_write = bytearray(b"\x2a" * 128)
    buffer_read = bytearray(b"\x62" * 128)

    sqe_writev = ring.writev(0xDDDDDDDD, f, [buffer_write], 17)
    sqe_writev.flags |= SqeFlags.IO_LINK
    fields = sqe_writev.fields()
    assert fields == sqe_fields(
        opcode=Op.WRITEV,
        flags=SqeFlags.IO_LINK,
        fd=f.fd,
        addr=fields["addr"],
        len=1,
        off=17,
        user_data=0xDDDDDDDD,
    )
    assert iovecs_at(fields["addr"], 1) == [(addr_of(buffer_write), 128)]

    sqe_fsync = ring.fsync(0xEEEEEEEE, f)
    sqe_fsync.flags |= SqeFlags.IO_LINK
    assert sqe_fsync.fields() == sqe_fields(
        opcode=Op.FSYNC, flags=SqeFlags.IO_LINK, fd=f.fd, user_data=0xEEEEEEEE
    )

    sqe_readv = ring.readv(0xFFFFFFFF, f, [buffer_read], 17)
    fields = sqe_readv.fields()
    assert fields == sqe_fields(
        opcode=Op.READV, fd=f.fd, addr=fields["addr"], len=1, off=17, user_data=0xFFFFFFFF
    )
    assert iovecs_at(fields["addr"], 1) == [(addr_of(buffer_read), 128)]

    assert ring.sq_ready() == 3
    submitted = ring.submit_and_wait(3)
    if not ring_config.sqpoll:
        assert submitted == 3
    assert ring.cq_ready() == 3
    assert ring.copy_cqe() == Cqe(0xDDDDDDDD, 128, 0)
    assert ring.cq_ready() == 2
    assert ring.copy_cqe() == Cqe(0xEEEEEEEE, 0, 0)
    assert ring.cq_ready() == 1
    assert ring.copy_cqe() == Cqe(0xFFFFFFFF, 128, 0)
    assert ring.cq_ready() == 0
    assert buffer_read == buffer_write
    assert f.pread(200) == bytes(17) + b"\x2a" * 128


def test_write_read_linked(
    make_ring: Callable[..., IoUring], ring_config: Any, tmp_file: Any
) -> None:
    ring = make_ring(2)
    f = tmp_file()
    buffer_write = bytearray(b"a" * 20)
    buffer_read = bytearray(b"b" * 20)

    sqe_write = ring.write(0x11111111, f, buffer_write, 10)
    sqe_write.flags |= SqeFlags.IO_LINK
    assert sqe_write.fields() == sqe_fields(
        opcode=Op.WRITE,
        flags=SqeFlags.IO_LINK,
        fd=f.fd,
        addr=addr_of(buffer_write),
        len=20,
        off=10,
        user_data=0x11111111,
    )
    sqe_read = ring.read(0x22222222, f, buffer_read, 10)
    assert sqe_read.fields() == sqe_fields(
        opcode=Op.READ, fd=f.fd, addr=addr_of(buffer_read), len=20, off=10, user_data=0x22222222
    )
    check_submit(ring, ring_config.sqpoll, 2)
    assert ring.copy_cqe() == Cqe(0x11111111, 20, 0)
    assert ring.copy_cqe() == Cqe(0x22222222, 20, 0)
    assert buffer_read == buffer_write
    assert f.pread(64) == bytes(10) + b"a" * 20


def test_splice_read(
    make_ring: Callable[..., IoUring],
    ring_config: Any,
    tmp_file: Any,
    pipe: tuple[int, int],
) -> None:
    ring = make_ring(4)
    require_ops(ring, Op.SPLICE)
    src = tmp_file(b"a" * 20)
    dst = tmp_file()
    pipe_r, pipe_w = pipe
    buffer_read = bytearray(b"b" * 20)

    sqe_to_pipe = ring.splice(0x11111111, src, 0, pipe_w, -1, 20)
    sqe_to_pipe.flags |= SqeFlags.IO_LINK
    assert sqe_to_pipe.fields() == sqe_fields(
        opcode=Op.SPLICE,
        flags=SqeFlags.IO_LINK,
        fd=pipe_w,
        off=U64_MAX,
        addr=0,
        len=20,
        splice_fd_in=src.fd,
        user_data=0x11111111,
    )
    sqe_from_pipe = ring.splice(0x22222222, pipe_r, -1, dst, 10, 20)
    sqe_from_pipe.flags |= SqeFlags.IO_LINK
    assert sqe_from_pipe.fields() == sqe_fields(
        opcode=Op.SPLICE,
        flags=SqeFlags.IO_LINK,
        fd=dst.fd,
        off=10,
        addr=U64_MAX,
        len=20,
        splice_fd_in=pipe_r,
        user_data=0x22222222,
    )
    sqe_read = ring.read(0x33333333, dst, buffer_read, 10)
    assert sqe_read.fields() == sqe_fields(
        opcode=Op.READ, fd=dst.fd, addr=addr_of(buffer_read), len=20, off=10, user_data=0x33333333
    )
    check_submit(ring, ring_config.sqpoll, 3)
    cqes = [ring.copy_cqe() for _ in range(3)]
    if cqes[0].res == -errno.EINVAL:
        pytest.skip("kernel refuses SPLICE with these files")
    assert cqes == [Cqe(0x11111111, 20, 0), Cqe(0x22222222, 20, 0), Cqe(0x33333333, 20, 0)]
    assert buffer_read == b"a" * 20


def test_write_fixed_read_fixed(
    make_ring: Callable[..., IoUring], ring_config: Any, tmp_file: Any
) -> None:
    ring = make_ring(2)
    f = tmp_file()
    buffers = [bytearray(b"foobar" + b"z" * 5), bytearray(11)]
    register_or_skip(ring, buffers)

    sqe_write = ring.write_fixed(0x45454545, f, buffers[0], 3, 0)
    sqe_write.flags |= SqeFlags.IO_LINK
    assert sqe_write.fields() == sqe_fields(
        opcode=Op.WRITE_FIXED,
        flags=SqeFlags.IO_LINK,
        fd=f.fd,
        addr=addr_of(buffers[0]),
        len=11,
        off=3,
        buf_index=0,
        user_data=0x45454545,
    )
    sqe_read = ring.read_fixed(0x12121212, f, buffers[1], 0, 1)
    assert sqe_read.fields() == sqe_fields(
        opcode=Op.READ_FIXED,
        fd=f.fd,
        addr=addr_of(buffers[1]),
        len=11,
        off=0,
        buf_index=1,
        user_data=0x12121212,
    )
    check_submit(ring, ring_config.sqpoll, 2)
    assert ring.copy_cqe() == Cqe(0x45454545, 11, 0)
    assert ring.copy_cqe() == Cqe(0x12121212, 11, 0)
    assert buffers[1] == b"\0\0\0foobarzz"
    ring.unregister_buffers()


@pytest.mark.parametrize(
    "path_type", [str, os.fsencode, pathlib.Path], ids=["str", "bytes", "pathlike"]
)
def test_openat_sqe_layout(
    make_ring: Callable[..., IoUring],
    ring_config: Any,
    tmp_path: pathlib.Path,
    path_type: Callable[[Any], Any],
) -> None:
    ring = make_ring(1)
    path = tmp_path / "test_io_uring_openat"
    flags = os.O_CLOEXEC | os.O_RDWR | os.O_CREAT
    sqe = ring.openat(0x33333333, AT_FDCWD, path_type(path), flags, 0o666)
    fields = sqe.fields()
    assert fields["addr"] != 0
    assert fields == sqe_fields(
        opcode=Op.OPENAT,
        fd=AT_FDCWD,
        addr=fields["addr"],
        len=0o666,
        rw_flags=flags,
        user_data=0x33333333,
    )
    # A private NUL-terminated copy of the path, held by the ring.
    assert ctypes.string_at(fields["addr"]) == os.fsencode(path)
    check_submit(ring, ring_config.sqpoll, 1)
    cqe = ring.copy_cqe()
    if cqe.res in (-errno.EINVAL, -errno.EBADF):
        pytest.skip(f"kernel refuses OPENAT: {os.strerror(-cqe.res)}")
    assert cqe.user_data == 0x33333333
    assert cqe.res > 0
    assert cqe.flags == 0
    try:
        assert os.path.samestat(os.fstat(cqe.res), os.stat(path))
    finally:
        os.close(cqe.res)


def test_openat_default_mode(ring: IoUring, tmp_path: pathlib.Path) -> None:
    sqe = ring.openat(0x0DE, AT_FDCWD, tmp_path / "m", os.O_RDONLY)
    assert sqe.len == 0o666
    assert sqe.rw_flags == os.O_RDONLY
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x0DE, -errno.ENOENT, 0)


def test_openat_relative_to_dir_fd(ring: IoUring, tmp_path: pathlib.Path) -> None:
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        flags = os.O_CLOEXEC | os.O_WRONLY | os.O_CREAT | os.O_EXCL
        sqe = ring.openat(0x0D1F, dir_fd, "relative", flags, 0o600)
        fields = sqe.fields()
        assert fields == sqe_fields(
            opcode=Op.OPENAT,
            fd=dir_fd,
            addr=fields["addr"],
            len=0o600,
            rw_flags=flags,
            user_data=0x0D1F,
        )
        assert ctypes.string_at(fields["addr"]) == b"relative"
        ring.submit_and_wait(1)
        cqe = ring.copy_cqe()
        assert cqe.user_data == 0x0D1F
        assert cqe.res > 0, os.strerror(-cqe.res)
        os.close(cqe.res)
        assert (tmp_path / "relative").is_file()
    finally:
        os.close(dir_fd)


def test_openat_missing_file_enoent(ring: IoUring, tmp_path: pathlib.Path) -> None:
    ring.openat(0x0E0E, AT_FDCWD, tmp_path / "missing" / "file", os.O_RDONLY)
    ring.submit_and_wait(1)
    cqe = ring.copy_cqe()
    assert cqe == Cqe(0x0E0E, -errno.ENOENT, 0)
    with pytest.raises(FileNotFoundError):
        cqe.result()


def test_close(make_ring: Callable[..., IoUring], ring_config: Any, tmp_path: pathlib.Path) -> None:
    ring = make_ring(1)
    fd = os.open(tmp_path / "close", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    sqe = ring.close_fd(0x44444444, fd)
    assert sqe.fields() == sqe_fields(opcode=Op.CLOSE, fd=fd, user_data=0x44444444)
    check_submit(ring, ring_config.sqpoll, 1)
    assert ring.copy_cqe() == Cqe(0x44444444, 0, 0)
    with pytest.raises(OSError, match="Bad file descriptor") as excinfo:
        os.fstat(fd)
    assert excinfo.value.errno == errno.EBADF


def test_close_prep_close(ring: IoUring, tmp_path: pathlib.Path) -> None:
    fd = os.open(tmp_path / "close", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    sqe = ring.get_sqe()
    assert sqe.prep_close(0x45454545, fd) is sqe
    assert sqe.fields() == sqe_fields(opcode=Op.CLOSE, fd=fd, user_data=0x45454545)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x45454545, 0, 0)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


def test_fsync_datasync_flag(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"data")
    sqe = ring.fsync(0xF5F5, f, FsyncFlags.DATASYNC)
    assert sqe.fields() == sqe_fields(
        opcode=Op.FSYNC, fd=f.fd, rw_flags=FsyncFlags.DATASYNC, user_data=0xF5F5
    )
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0xF5F5, 0, 0)


def test_read_offset_minus_one_current_position(ring: IoUring, tmp_file: Any) -> None:
    if Features.RW_CUR_POS not in ring.features:
        pytest.skip("kernel lacks IORING_FEAT_RW_CUR_POS")
    f = tmp_file(b"0123456789")
    os.lseek(f.fd, 4, os.SEEK_SET)
    buf = bytearray(3)
    sqe = ring.read(0x4E4E, f, buf, -1)
    assert sqe.fields() == sqe_fields(
        opcode=Op.READ, fd=f.fd, addr=addr_of(buf), len=3, off=U64_MAX, user_data=0x4E4E
    )
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x4E4E, 3, 0)
    assert buf == b"456"
    assert os.lseek(f.fd, 0, os.SEEK_CUR) == 7


def test_write_offset_minus_one_current_position(ring: IoUring, tmp_file: Any) -> None:
    if Features.RW_CUR_POS not in ring.features:
        pytest.skip("kernel lacks IORING_FEAT_RW_CUR_POS")
    f = tmp_file(b"0123456789")
    os.lseek(f.fd, 2, os.SEEK_SET)
    sqe = ring.write(0x3E3E, f, b"ab", -1)  # bytes are fine as a write source
    assert (sqe.opcode, sqe.off, sqe.len) == (Op.WRITE, U64_MAX, 2)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x3E3E, 2, 0)
    assert f.contents() == b"01ab456789"
    assert os.lseek(f.fd, 0, os.SEEK_CUR) == 4


def test_read_bad_fd_ebadf(ring: IoUring, closed_fd: int) -> None:
    buf = bytearray(8)
    ring.read(0xBADF, closed_fd, buf, 0)
    ring.submit_and_wait(1)
    cqe = ring.copy_cqe()
    assert cqe == Cqe(0xBADF, -errno.EBADF, 0)
    with pytest.raises(OSError, match="Bad file descriptor") as excinfo:
        cqe.result()
    assert excinfo.value.errno == errno.EBADF


def test_read_fd_from_fileno_object(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"hello, world")
    with open(f.path, "rb") as fileobj:
        buf = bytearray(5)
        sqe = ring.read(0xF11E, fileobj, buf, 7)
        assert sqe.fd == fileobj.fileno()
        ring.submit_and_wait(1)
        assert ring.copy_cqe() == Cqe(0xF11E, 5, 0)
    assert buf == b"world"


def test_read_into_numpy_array(ring: IoUring, dev_zero: int) -> None:
    arr = np.full(64, 7, dtype=np.uint8)
    sqe = ring.read(0xA4A4, dev_zero, arr, 0)
    assert (sqe.addr, sqe.len) == (arr.ctypes.data, 64)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0xA4A4, 64, 0)
    assert not arr.any()


def test_readv_several_iovecs(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"abcdefghij")
    bufs = [bytearray(3), bytearray(4), bytearray(3)]
    sqe = ring.readv(0x5EC7, f, bufs, 0)
    assert sqe.len == 3
    assert iovecs_at(sqe.addr, 3) == [(addr_of(b), len(b)) for b in bufs]
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x5EC7, 10, 0)
    assert [bytes(b) for b in bufs] == [b"abc", b"defg", b"hij"]


def test_read_fixed_slice_of_registered_buffer(ring: IoUring, dev_zero: int) -> None:
    arr = np.full(64, 0x2A, dtype=np.uint8)
    ring.register_buffers([arr])
    sqe = ring.read_fixed(0x511CE, dev_zero, arr[8:24], 0, 0)
    assert sqe.fields() == sqe_fields(
        opcode=Op.READ_FIXED,
        fd=dev_zero,
        addr=arr.ctypes.data + 8,
        len=16,
        buf_index=0,
        user_data=0x511CE,
    )
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x511CE, 16, 0)
    assert not arr[8:24].any()
    assert (arr[:8] == 0x2A).all() and (arr[24:] == 0x2A).all()
    ring.unregister_buffers()


# --------------------------------------------------------------------------------------------
# readv_fixed / writev_fixed: vectored I/O on registered buffers (6.15+)


def test_writev_fixed_readv_fixed(
    make_ring: Callable[..., IoUring], ring_config: Any, tmp_file: Any
) -> None:
    ring = make_ring(2)
    require_ops(ring, Op.READV_FIXED, Op.WRITEV_FIXED)
    f = tmp_file()
    reg = bytearray(64)
    reg[0:5], reg[10:14], reg[20:26] = b"hello", b"ABCD", b"world!"
    register_or_skip(ring, [reg])
    view = memoryview(reg)
    base = addr_of(reg)

    sqe_write = ring.writev_fixed(0xAAAAAAAA, f, [view[0:5], view[10:14], view[20:26]], 3, 0)
    sqe_write.flags |= SqeFlags.IO_LINK
    fields = sqe_write.fields()
    assert fields["addr"] != 0  # a private copy of the iovec array
    assert fields == sqe_fields(
        opcode=Op.WRITEV_FIXED,
        flags=SqeFlags.IO_LINK,
        fd=f.fd,
        addr=fields["addr"],
        len=3,
        off=3,
        buf_index=0,
        user_data=0xAAAAAAAA,
    )
    assert iovecs_at(fields["addr"], 3) == [(base, 5), (base + 10, 4), (base + 20, 6)]

    sqe_read = ring.readv_fixed(0xBBBBBBBB, f, [view[32:40], view[48:55]], 3, 0)
    fields = sqe_read.fields()
    assert fields == sqe_fields(
        opcode=Op.READV_FIXED,
        fd=f.fd,
        addr=fields["addr"],
        len=2,
        off=3,
        buf_index=0,
        user_data=0xBBBBBBBB,
    )
    assert iovecs_at(fields["addr"], 2) == [(base + 32, 8), (base + 48, 7)]
    check_submit(ring, ring_config.sqpoll, 2)
    got = reap_grouped(ring, 2)
    assert got == {
        0xAAAAAAAA: [Cqe(0xAAAAAAAA, 15, 0)],
        0xBBBBBBBB: [Cqe(0xBBBBBBBB, 15, 0)],
    }
    assert f.pread(32) == b"\0\0\0helloABCDworld!"
    assert reg[32:40] == b"helloABC"
    assert reg[48:55] == b"Dworld!"
    assert (reg[40:48], reg[55:]) == (bytearray(8), bytearray(9))
    ring.unregister_buffers()


def test_writev_fixed_second_buffer_with_flags(ring: IoUring, tmp_file: Any) -> None:
    require_ops(ring, Op.WRITEV_FIXED)
    f = tmp_file()
    first = bytearray(16)
    second = np.frombuffer(b"0123456789abcdef", dtype=np.uint8).copy()
    register_or_skip(ring, [first, second])
    sqe = ring.writev_fixed(0x5EC0, f, [second[4:8], second[0:2]], 0, 1, os.RWF_DSYNC)
    fields = sqe.fields()
    assert fields == sqe_fields(
        opcode=Op.WRITEV_FIXED,
        fd=f.fd,
        addr=fields["addr"],
        len=2,
        rw_flags=os.RWF_DSYNC,
        buf_index=1,
        user_data=0x5EC0,
    )
    assert iovecs_at(fields["addr"], 2) == [
        (second.ctypes.data + 4, 4),
        (second.ctypes.data, 2),
    ]
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x5EC0, 6, 0)
    assert f.contents() == b"456701"
    ring.unregister_buffers()


def test_readv_fixed_keeps_registration_until_completion(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    """Unregistering while a readv_fixed waits for data: the ring keeps the registered memory
    (and the private iovec array) until the completion is reaped."""
    require_ops(ring, Op.READV_FIXED)
    r, w = pipe
    reg = bytearray(32)
    register_or_skip(ring, [reg])
    view = memoryview(reg)
    ring.readv_fixed(0x7E6, r, [view[0:4], view[8:12]], -1, 0)
    ring.submit()
    assert ring.copy_cqes(timeout=0.05).size == 0  # waiting for data
    pinned = ring.pinned
    assert pinned >= 2  # the iovec array and the registration
    ring.unregister_buffers()
    # Nothing is released; the one operation in flight also holds the retired table.
    assert ring.pinned == pinned + 1
    del view
    os.write(w, b"abcdefgh")
    cqe = ring.copy_cqe(timeout=10)
    # Whether the kernel still finds the buffer depends on when it imported it: a retry
    # after the unregistration (seen with SQPOLL) resolves buf_index again and gets EFAULT.
    assert cqe in (Cqe(0x7E6, 8, 0), Cqe(0x7E6, -errno.EFAULT, 0))
    if cqe.res == 8:
        assert reg[0:4] == b"abcd" and reg[8:12] == b"efgh"
    assert ring.pinned == 0


@pytest.mark.parametrize("method", ["read_fixed", "write_fixed", "readv_fixed", "writev_fixed"])
def test_fixed_ops_without_registered_buffers(ring: IoUring, tmp_file: Any, method: str) -> None:
    f = tmp_file(b"0123456789")
    buf = bytearray(8)
    arg: Any = [buf] if method.endswith("v_fixed") else buf
    before = sq_counters(ring)
    with pytest.raises(ValueError, match="buffer_index: no buffers are registered"):
        getattr(ring, method)(1, f, arg, 0, 0)
    sqe = ring.get_sqe()
    with pytest.raises(ValueError, match="buffer_index: no buffers are registered"):
        getattr(sqe, "prep_" + method)(1, f, arg, 0, 0)
    assert sqe.opcode == Op.NOP
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0, 0, 0)
    assert sq_counters(ring)["pinned"] == before["pinned"]


def test_register_files_update(
    make_ring: Callable[..., IoUring], ring_config: Any, dev_zero: int
) -> None:
    ring = make_ring(1)
    fd2 = os.open("/dev/zero", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            ring.register_files([dev_zero, -1])
        except OSError as exc:
            if exc.errno == errno.EBADF:
                pytest.skip("kernel lacks sparse registered-file sets")
            raise
        buf = bytearray(b"\x2a" * 128)

        def read_slot0(user_data: int) -> Cqe:
            sqe = ring.read(user_data, 0, buf, 0)
            sqe.flags |= SqeFlags.FIXED_FILE
            assert sqe.fields() == sqe_fields(
                opcode=Op.READ,
                flags=SqeFlags.FIXED_FILE,
                fd=0,
                addr=addr_of(buf),
                len=128,
                user_data=user_data,
            )
            check_submit(ring, ring_config.sqpoll, 1)
            return ring.copy_cqe()

        assert ring.register_files_update(0, [fd2, -1]) == 2
        assert read_slot0(0xCCCCCCCC) == Cqe(0xCCCCCCCC, 128, 0)
        assert buf == bytes(128)

        assert ring.register_files_update(1, [dev_zero]) == 1
        buf[:] = b"\x2a" * 128
        assert read_slot0(0xCCCCCCCC) == Cqe(0xCCCCCCCC, 128, 0)
        assert buf == bytes(128)

        assert ring.register_files_update(0, [-1, -1]) == 2
        assert read_slot0(0xCCCCCCCC) == Cqe(0xCCCCCCCC, -errno.EBADF, 0)
        ring.unregister_files()
    finally:
        os.close(fd2)


def test_register_files_sparse_then_update(ring: IoUring, dev_zero: int) -> None:
    ring.register_files_sparse(4)
    assert ring.register_files_update(2, [dev_zero]) == 1
    buf = bytearray(b"\x2a" * 16)
    sqe = ring.read(0x5A, 2, buf, 0)
    sqe.flags |= SqeFlags.FIXED_FILE
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x5A, 16, 0)
    assert buf == bytes(16)
    ring.unregister_files()


@pytest.mark.parametrize(
    "buffers",
    [[b"read-only"], [bytearray(8), memoryview(b"read-only")], ["text"], [42]],
    ids=["bytes", "readonly_memoryview", "str", "int"],
)
def test_register_buffers_refuses_non_writable(ring: IoUring, buffers: list[Any]) -> None:
    with pytest.raises(TypeError):
        ring.register_buffers(buffers)
    assert ring.pinned == 0
    # Nothing registered: a fixed read has no buffer to lie in.
    with pytest.raises(ValueError, match="buffer_index: no buffers are registered"):
        ring.read_fixed(1, 0, bytearray(8), 0, 0)


# --------------------------------------------------------------------------------------------
# The one-call ring methods and Sqe.prep_* build the same SQE


def _prep_cases() -> list[tuple[str, str, str, Callable[[Any], tuple[Any, ...]], bool]]:
    """(id, ring method, Sqe method, args from the context, addr is a private copy)."""
    return [
        ("nop", "nop", "prep_nop", lambda c: (), False),
        ("read", "read", "prep_read", lambda c: (c.file, c.rbuf, 3), False),
        ("write", "write", "prep_write", lambda c: (c.out, c.wbuf, 5), False),
        ("readv", "readv", "prep_readv", lambda c: (c.file, [c.rbuf, c.rbuf2], 0), True),
        ("writev", "writev", "prep_writev", lambda c: (c.out, [c.wbuf, b"xy"], 0), True),
        ("fsync", "fsync", "prep_fsync", lambda c: (c.out, int(FsyncFlags.DATASYNC)), False),
        ("read_fixed", "read_fixed", "prep_read_fixed", lambda c: (c.file, c.fixed, 1, 0), False),
        (
            "write_fixed",
            "write_fixed",
            "prep_write_fixed",
            lambda c: (c.out, c.fixed, 2, 0),
            False,
        ),
        (
            "readv_fixed",
            "readv_fixed",
            "prep_readv_fixed",
            lambda c: (c.file, [c.fixed_view[0:4], c.fixed_view[8:10]], 2, 0),
            True,
        ),
        (
            "writev_fixed",
            "writev_fixed",
            "prep_writev_fixed",
            lambda c: (c.out, [c.fixed_view[4:8], c.fixed_view[0:1]], 0, 0, os.RWF_SYNC),
            True,
        ),
        ("splice", "splice", "prep_splice", lambda c: (c.file, 0, c.pipe_w, -1, 4, 0), False),
        (
            "openat",
            "openat",
            "prep_openat",
            lambda c: (AT_FDCWD, c.missing, os.O_RDONLY, 0o640),
            True,
        ),
        ("close", "close_fd", "prep_close", lambda c: (c.close_fd,), False),
    ]


PREP_CASES = _prep_cases()


@pytest.mark.parametrize("case", PREP_CASES, ids=[c[0] for c in PREP_CASES])
def test_prep_matches_ring_method(
    ring: IoUring, tmp_file: Any, pipe: tuple[int, int], tmp_path: pathlib.Path, case: Any
) -> None:
    _, method, prep, make_args, private_addr = case
    require_ops(ring, Op.CLOSE if method == "close_fd" else Op[method.upper()])
    fixed = bytearray(b"f" * 16)
    ring.register_buffers([fixed])
    ctx = SimpleNamespace(
        file=tmp_file(b"0123456789abcdef"),
        out=tmp_file(),
        rbuf=bytearray(8),
        rbuf2=bytearray(4),
        wbuf=bytearray(b"payload"),
        fixed=fixed,
        fixed_view=memoryview(fixed),
        pipe_w=pipe[1],
        missing=tmp_path / "missing",
        close_fd=os.open(tmp_path / "to_close", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600),
    )
    try:
        args = make_args(ctx)
        by_ring = getattr(ring, method)(0x1111, *args)
        sqe = ring.get_sqe()
        by_prep = getattr(sqe, prep)(0x1111, *args)
        assert by_prep is sqe
        f_ring, f_prep = by_ring.fields(), by_prep.fields()
        if private_addr:
            assert f_ring.pop("addr") != 0
            assert f_prep.pop("addr") != 0
        assert f_ring == f_prep
        assert f_ring["user_data"] == 0x1111
        ring.submit_and_wait(2)
        cqes = [ring.copy_cqe(), ring.copy_cqe()]
        assert [c.user_data for c in cqes] == [0x1111, 0x1111]
        if method == "close_fd":
            assert sorted(c.res for c in cqes) == [-errno.EBADF, 0]
        else:
            assert cqes[0].res == cqes[1].res
    finally:
        with contextlib.suppress(OSError):
            os.close(ctx.close_fd)
        ring.unregister_buffers()


# --------------------------------------------------------------------------------------------
# Argument validation: refused calls consume no SQE and pin nothing

_USER_DATA_ERRORS = (OverflowError, ValueError)
_OFFSET_ERRORS = (ValueError, OverflowError)

# The ring is typed Any: these calls pass wrong types on purpose.
BAD_CALLS: list[tuple[str, Callable[[Any, Any], object], Any, str | None]] = [
    # read
    ("read_bytes_target", lambda r, c: r.read(1, c.fd, b"xxxx", 0), TypeError, "buffer"),
    (
        "read_readonly_memoryview",
        lambda r, c: r.read(1, c.fd, memoryview(b"xxxx"), 0),
        TypeError,
        "buffer",
    ),
    ("read_str_target", lambda r, c: r.read(1, c.fd, "xxxx", 0), TypeError, None),
    ("read_int_target", lambda r, c: r.read(1, c.fd, 4, 0), TypeError, None),
    ("read_str_fd", lambda r, c: r.read(1, "3", bytearray(4), 0), TypeError, None),
    ("read_float_fd", lambda r, c: r.read(1, 3.0, bytearray(4), 0), TypeError, None),
    ("read_none_fd", lambda r, c: r.read(1, None, bytearray(4), 0), TypeError, None),
    ("read_str_offset", lambda r, c: r.read(1, c.fd, bytearray(4), "0"), TypeError, None),
    ("read_offset_minus_two", lambda r, c: r.read(1, c.fd, bytearray(4), -2), _OFFSET_ERRORS, None),
    (
        "read_user_data_negative",
        lambda r, c: r.read(-1, c.fd, bytearray(4), 0),
        _USER_DATA_ERRORS,
        "user_data",
    ),
    (
        "read_user_data_2_64",
        lambda r, c: r.read(2**64, c.fd, bytearray(4), 0),
        _USER_DATA_ERRORS,
        "user_data",
    ),
    # write
    ("write_str_source", lambda r, c: r.write(1, c.fd, "text", 0), TypeError, None),
    ("write_int_source", lambda r, c: r.write(1, c.fd, 5, 0), TypeError, None),
    ("write_str_fd", lambda r, c: r.write(1, "1", b"x", 0), TypeError, None),
    ("write_offset_minus_five", lambda r, c: r.write(1, c.fd, b"x", -5), _OFFSET_ERRORS, None),
    (
        "write_user_data_2_64",
        lambda r, c: r.write(2**64, c.fd, b"x", 0),
        _USER_DATA_ERRORS,
        "user_data",
    ),
    # readv / writev
    ("readv_bytes_iovec", lambda r, c: r.readv(1, c.fd, [b"xx"], 0), TypeError, "iovecs"),
    (
        "readv_mixed_iovecs",
        lambda r, c: r.readv(1, c.fd, [bytearray(2), b"xx"], 0),
        TypeError,
        "iovecs",
    ),
    ("readv_int_iovec", lambda r, c: r.readv(1, c.fd, [bytearray(2), 3], 0), TypeError, None),
    ("readv_not_a_sequence", lambda r, c: r.readv(1, c.fd, 5, 0), TypeError, None),
    ("readv_bytearray_as_list", lambda r, c: r.readv(1, c.fd, bytearray(4), 0), TypeError, None),
    (
        "readv_offset_minus_two",
        lambda r, c: r.readv(1, c.fd, [bytearray(2)], -2),
        _OFFSET_ERRORS,
        None,
    ),
    (
        "readv_user_data_negative",
        lambda r, c: r.readv(-1, c.fd, [bytearray(2)], 0),
        _USER_DATA_ERRORS,
        "user_data",
    ),
    ("writev_str_iovec", lambda r, c: r.writev(1, c.fd, ["text"], 0), TypeError, None),
    ("writev_int_iovec", lambda r, c: r.writev(1, c.fd, [b"x", 1], 0), TypeError, None),
    ("writev_str_fd", lambda r, c: r.writev(1, "1", [b"x"], 0), TypeError, None),
    ("writev_offset_minus_two", lambda r, c: r.writev(1, c.fd, [b"x"], -2), _OFFSET_ERRORS, None),
    # fsync
    ("fsync_str_fd", lambda r, c: r.fsync(1, "1"), TypeError, None),
    ("fsync_str_flags", lambda r, c: r.fsync(1, c.fd, "1"), TypeError, None),
    ("fsync_user_data_2_64", lambda r, c: r.fsync(2**64, c.fd), _USER_DATA_ERRORS, "user_data"),
    # read_fixed / write_fixed
    (
        "read_fixed_readonly_view_of_registered",
        lambda r, c: r.read_fixed(1, c.fd, memoryview(c.fixed).toreadonly(), 0, 0),
        TypeError,
        "buffer",
    ),
    (
        "read_fixed_outside_buffer",
        lambda r, c: r.read_fixed(1, c.fd, bytearray(16), 0, 0),
        ValueError,
        None,
    ),
    (
        "read_fixed_other_buffers_index",
        lambda r, c: r.read_fixed(1, c.fd, c.fixed, 0, 1),
        ValueError,
        None,
    ),
    (
        "read_fixed_straddles_end",
        lambda r, c: r.read_fixed(1, c.fd, c.big_view[8:24], 0, 1),
        ValueError,
        None,
    ),
    (
        "read_fixed_index_out_of_range",
        lambda r, c: r.read_fixed(1, c.fd, c.fixed, 0, 2),
        ValueError,
        None,
    ),
    (
        "read_fixed_offset_minus_two",
        lambda r, c: r.read_fixed(1, c.fd, c.fixed, -2, 0),
        _OFFSET_ERRORS,
        None,
    ),
    (
        "write_fixed_outside_buffer",
        lambda r, c: r.write_fixed(1, c.fd, bytearray(16), 0, 0),
        ValueError,
        None,
    ),
    (
        "write_fixed_user_data_negative",
        lambda r, c: r.write_fixed(-1, c.fd, c.fixed, 0, 0),
        _USER_DATA_ERRORS,
        "user_data",
    ),
    # readv_fixed / writev_fixed
    (
        "readv_fixed_outside_buffer",
        lambda r, c: r.readv_fixed(1, c.fd, [bytearray(16)], 0, 0),
        ValueError,
        r"iovecs\[0\] must lie inside registered buffer 0",
    ),
    (
        "readv_fixed_second_iovec_outside",
        lambda r, c: r.readv_fixed(1, c.fd, [c.fixed, bytearray(4)], 0, 0),
        ValueError,
        r"iovecs\[1\]",
    ),
    (
        "readv_fixed_straddles_end",
        lambda r, c: r.readv_fixed(1, c.fd, [c.big_view[8:24]], 0, 1),
        ValueError,
        r"iovecs\[0\]",
    ),
    (
        "readv_fixed_in_other_buffer",
        lambda r, c: r.readv_fixed(1, c.fd, [c.fixed], 0, 1),
        ValueError,
        "registered buffer 1",
    ),
    (
        "readv_fixed_index_out_of_range",
        lambda r, c: r.readv_fixed(1, c.fd, [c.fixed], 0, 2),
        ValueError,
        "buffer_index 2 is out of range",
    ),
    (
        "readv_fixed_index_negative",
        lambda r, c: r.readv_fixed(1, c.fd, [c.fixed], 0, -1),
        OverflowError,
        "buffer_index",
    ),
    (
        "readv_fixed_readonly_view",
        lambda r, c: r.readv_fixed(1, c.fd, [memoryview(c.fixed).toreadonly()], 0, 0),
        TypeError,
        "iovecs",
    ),
    (
        "readv_fixed_not_a_sequence",
        lambda r, c: r.readv_fixed(1, c.fd, c.fixed, 0, 0),
        TypeError,
        "iovecs",
    ),
    (
        "readv_fixed_offset_minus_two",
        lambda r, c: r.readv_fixed(1, c.fd, [c.fixed], -2, 0),
        _OFFSET_ERRORS,
        "offset",
    ),
    (
        "readv_fixed_str_flags",
        lambda r, c: r.readv_fixed(1, c.fd, [c.fixed], 0, 0, "0"),
        TypeError,
        "flags",
    ),
    (
        "writev_fixed_bytes_outside",
        lambda r, c: r.writev_fixed(1, c.fd, [c.fixed, b"xy"], 0, 0),
        ValueError,
        r"iovecs\[1\]",
    ),
    (
        "writev_fixed_index_out_of_range",
        lambda r, c: r.writev_fixed(1, c.fd, [c.fixed], 0, 7),
        ValueError,
        "buffer_index 7",
    ),
    (
        "writev_fixed_user_data_negative",
        lambda r, c: r.writev_fixed(-1, c.fd, [c.fixed], 0, 0),
        _USER_DATA_ERRORS,
        "user_data",
    ),
    # splice
    ("splice_str_fd_in", lambda r, c: r.splice(1, "0", -1, c.fd, -1, 4), TypeError, None),
    ("splice_str_fd_out", lambda r, c: r.splice(1, c.fd, -1, "1", -1, 4), TypeError, None),
    (
        "splice_off_in_minus_two",
        lambda r, c: r.splice(1, c.fd, -2, c.fd, -1, 4),
        _OFFSET_ERRORS,
        None,
    ),
    (
        "splice_off_out_minus_three",
        lambda r, c: r.splice(1, c.fd, -1, c.fd, -3, 4),
        _OFFSET_ERRORS,
        None,
    ),
    (
        "splice_user_data_2_64",
        lambda r, c: r.splice(2**64, c.fd, -1, c.fd, -1, 4),
        _USER_DATA_ERRORS,
        "user_data",
    ),
    # openat
    ("openat_int_path", lambda r, c: r.openat(1, AT_FDCWD, 123, os.O_RDONLY), TypeError, None),
    ("openat_none_path", lambda r, c: r.openat(1, AT_FDCWD, None, os.O_RDONLY), TypeError, None),
    (
        "openat_nul_in_path",
        lambda r, c: r.openat(1, AT_FDCWD, "a\0b", os.O_RDONLY),
        ValueError,
        None,
    ),
    ("openat_str_dir_fd", lambda r, c: r.openat(1, "dir", "x", os.O_RDONLY), TypeError, None),
    ("openat_str_flags", lambda r, c: r.openat(1, AT_FDCWD, "x", "r"), TypeError, None),
    (
        "openat_user_data_negative",
        lambda r, c: r.openat(-1, AT_FDCWD, "x", os.O_RDONLY),
        _USER_DATA_ERRORS,
        "user_data",
    ),
    # close
    ("close_str_fd", lambda r, c: r.close_fd(1, "3"), TypeError, None),
    ("close_none_fd", lambda r, c: r.close_fd(1, None), TypeError, None),
    ("close_user_data_2_64", lambda r, c: r.close_fd(2**64, c.fd), _USER_DATA_ERRORS, "user_data"),
    # nop
    ("nop_str_user_data", lambda r, c: r.nop("1"), TypeError, None),
]


@pytest.mark.parametrize(
    ("call", "exc_type", "match"),
    [(c, e, m) for _, c, e, m in BAD_CALLS],
    ids=[n for n, _, _, _ in BAD_CALLS],
)
def test_op_argument_validation(
    ring: IoUring, tmp_file: Any, call: Any, exc_type: Any, match: str | None
) -> None:
    f = tmp_file(b"0123456789abcdef")
    fixed = bytearray(16)
    big = bytearray(32)
    ring.register_buffers([fixed, memoryview(big)[0:16]])
    ctx = SimpleNamespace(fd=f.fd, fixed=fixed, big_view=memoryview(big))
    try:
        with refused(ring, exc_type, match):
            call(ring, ctx)
    finally:
        ring.unregister_buffers()
    # The ring still works.
    ring.nop(0x600D)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x600D, 0, 0)


PREP_BAD_CALLS: list[tuple[str, Callable[[Any, Any], object]]] = [
    ("prep_read_bytes_target", lambda s, c: s.prep_read(1, c.fd, b"xxxx", 0)),
    ("prep_read_str_fd", lambda s, c: s.prep_read(1, "3", bytearray(4), 0)),
    ("prep_readv_bytes_iovec", lambda s, c: s.prep_readv(1, c.fd, [bytearray(2), b"xx"], 0)),
    ("prep_write_str_source", lambda s, c: s.prep_write(1, c.fd, "text", 0)),
    ("prep_openat_int_path", lambda s, c: s.prep_openat(1, AT_FDCWD, 123, os.O_RDONLY)),
    ("prep_close_str_fd", lambda s, c: s.prep_close(1, "3")),
    ("prep_nop_user_data_negative", lambda s, c: s.prep_nop(-1)),
]


@pytest.mark.parametrize("call", [c for _, c in PREP_BAD_CALLS], ids=[n for n, _ in PREP_BAD_CALLS])
def test_prep_argument_validation_leaves_sqe_untouched(
    ring: IoUring, tmp_file: Any, call: Any
) -> None:
    f = tmp_file(b"0123456789")
    sqe = ring.get_sqe()
    sqe.user_data = 0xBEEF
    before = sqe.fields()
    pinned = ring.pinned
    with pytest.raises((TypeError, ValueError, OverflowError)):
        call(sqe, SimpleNamespace(fd=f.fd))
    assert sqe.fields() == before
    assert ring.pinned == pinned
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0xBEEF, 0, 0)
