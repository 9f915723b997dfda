"""Batch preparation from NumPy (``*_batch``) and SQE arrays (``SQE_DTYPE`` + ``push_sqes``).

The prepared SQEs are read back through a read-only mapping of the ring's SQE array, viewed
with ``SQE_DTYPE``, so every field of every SQE of a batch is checked, not only the completions.
Then: data lands where each operation says, arguments broadcast, every validation error leaves
the ring exactly as it was, a short SQ is filled partially, and the pin a batch shares is
released only when its last operation completes.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import mmap
import os
import pathlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np
import pytest
from kernel_support import require_kernel
from sqe_support import SQE_FIELDS as COMMON_SQE_FIELDS
from sqe_support import U64_MAX, addr_of, iovecs_at, sq_counters, zeroed_except

from iouring import (
    CQE_DTYPE,
    OFF_SQES,
    SQE_DTYPE,
    Cqe,
    FsyncFlags,
    IoUring,
    Op,
    SqeFlags,
    SubmissionQueueFull,
)

AT_FDCWD = -100
RWF_NOWAIT = 0x8
SQE_FIELDS = (*COMMON_SQE_FIELDS, "pad2")  # push_sqes also checks the padding


# --------------------------------------------------------------------------------------------
# Helpers


class SqeArray:
    """The ring's SQE array, mapped read-only and viewed as SQE_DTYPE records."""

    def __init__(self, ring: IoUring) -> None:
        self.entries = ring.sq_entries
        self._map = mmap.mmap(
            ring.fd, self.entries * 64, mmap.MAP_SHARED, mmap.PROT_READ, offset=OFF_SQES
        )

    def at(self, first: int, n: int) -> np.ndarray:
        """Copies of the n SQEs from absolute position `first` on."""
        view = np.frombuffer(self._map, dtype=SQE_DTYPE)
        index = (first + np.arange(n)) % self.entries
        return view[index].copy()

    def close(self) -> None:
        self._map.close()


@pytest.fixture
def sqe_array() -> Iterator[Callable[[IoUring], SqeArray]]:
    maps: list[SqeArray] = []

    def make(ring: IoUring) -> SqeArray:
        maps.append(SqeArray(ring))
        return maps[-1]

    yield make
    for m in maps:
        m.close()


def record(sqe: Any) -> dict[str, int]:
    return {name: int(sqe[name]) for name in SQE_FIELDS}


def expected(**fields: int) -> dict[str, int]:
    return zeroed_except(SQE_FIELDS, fields)


def reap(ring: IoUring, n: int) -> dict[int, Cqe]:
    """Submits and reaps n completions, keyed by user_data (each user_data once)."""
    if ring.sq_ready():
        ring.submit()
    got: dict[int, Cqe] = {}
    for _ in range(n):
        cqe = ring.copy_cqe()
        assert cqe.user_data not in got
        got[cqe.user_data] = cqe
    return got


def require_ops(ring: IoUring, *ops: Op) -> None:
    missing = [op.name for op in ops if op not in ring.probe()]
    if missing:
        pytest.skip(f"kernel lacks {', '.join(missing)}")


# --------------------------------------------------------------------------------------------
# nop_batch


def test_nop_batch_fields_and_completions(
    ring: IoUring, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.nop_batch(0xAAAAAAAA, count=5) == 5
    assert ring.sq_ready() == 5
    for i, sqe in enumerate(sqes.at(first, 5)):
        assert record(sqe) == expected(opcode=Op.NOP, user_data=0xAAAAAAAA + i)
    got = reap(ring, 5)
    assert got == {0xAAAAAAAA + i: Cqe(0xAAAAAAAA + i, 0, 0) for i in range(5)}


def test_nop_batch_user_data_array_and_flags(
    ring: IoUring, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    user_data = np.array([U64_MAX, 0, 0xBBBBBBBB], dtype=np.uint64)
    flags = np.array([SqeFlags.ASYNC, 0, SqeFlags.IO_DRAIN], dtype=np.uint8)
    assert ring.nop_batch(user_data, sqe_flags=flags) == 3
    got = [record(s) for s in sqes.at(first, 3)]
    assert got == [
        expected(opcode=Op.NOP, user_data=U64_MAX, flags=SqeFlags.ASYNC),
        expected(opcode=Op.NOP, user_data=0),
        expected(opcode=Op.NOP, user_data=0xBBBBBBBB, flags=SqeFlags.IO_DRAIN),
    ]
    assert reap(ring, 3) == {u: Cqe(u, 0, 0) for u in (U64_MAX, 0, 0xBBBBBBBB)}


def test_nop_batch_accepts_lists_and_integer_dtypes(
    make_default_ring: Callable[..., IoUring], sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    ring = make_default_ring(32)
    sqes = sqe_array(ring)
    inputs: list[Any] = [
        [1, 2, 3],
        (4, 5),
        np.array([6, 7], dtype=np.int8),
        np.array([8, 9], dtype=np.uint16),
        np.array([10, 11], dtype=np.int32),
        np.array([12, 13], dtype=">u8"),  # big-endian
        np.arange(28, dtype=np.uint64)[14:18:2],  # strided: 14, 16
        np.uint64(20),  # a NumPy scalar is a single value
    ]
    first = ring.sqe_tail
    total = 0
    for value in inputs:
        total += ring.nop_batch(value, count=None if not isinstance(value, np.uint64) else 2)
    assert total == 17
    user_data = [int(s["user_data"]) for s in sqes.at(first, total)]
    assert user_data == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 20, 21]
    reap(ring, total)


def test_nop_batch_empty_array_prepares_nothing(ring: IoUring) -> None:
    before = sq_counters(ring)
    assert ring.nop_batch(np.array([], dtype=np.uint64)) == 0
    assert ring.nop_batch(0, count=0) == 0
    assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# read_batch / write_batch


def test_read_batch_fields_and_data(
    ring: IoUring, tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    content = bytes(range(256)) * 16
    f = tmp_file(content)
    buf = bytearray(64)
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    offsets = np.array([0, 100, 4000, 17], dtype=np.int64)
    lengths = np.array([8, 16, 4, 10], dtype=np.uint32)
    buf_offsets = np.array([0, 8, 24, 30], dtype=np.uint64)
    n = ring.read_batch(0xCAFE0000, f.fd, buf, offsets, lengths, buf_offsets, rw_flags=RWF_NOWAIT)
    assert n == 4
    base = addr_of(buf)
    for i, sqe in enumerate(sqes.at(first, 4)):
        assert record(sqe) == expected(
            opcode=Op.READ,
            fd=f.fd,
            off=offsets[i],
            addr=base + buf_offsets[i],
            len=lengths[i],
            rw_flags=RWF_NOWAIT,
            user_data=0xCAFE0000 + i,
        )
    assert ring.pinned >= 1
    got = reap(ring, 4)
    assert got == {0xCAFE0000 + i: Cqe(0xCAFE0000 + i, int(lengths[i]), 0) for i in range(4)}
    for i in range(4):
        start = int(buf_offsets[i])
        assert buf[start : start + lengths[i]] == content[offsets[i] : offsets[i] + lengths[i]]
    assert ring.pinned == 0


def test_read_batch_packed_broadcast_into_numpy(
    ring: IoUring, tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    content = os.urandom(8192)
    f = tmp_file(content)
    target = np.zeros(6 * 512, dtype=np.uint8)
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    # Without buf_offset the ranges are packed one after another; fd and length broadcast.
    offsets = np.arange(6, dtype=np.uint64) * 1024
    assert ring.read_batch(np.arange(6, dtype=np.uint64), [f.fd], target, offsets, 512) == 6
    for i, sqe in enumerate(sqes.at(first, 6)):
        assert int(sqe["addr"]) == target.ctypes.data + 512 * i
        assert int(sqe["len"]) == 512
        assert int(sqe["fd"]) == f.fd
    assert reap(ring, 6) == {i: Cqe(i, 512, 0) for i in range(6)}
    for i in range(6):
        assert target[512 * i : 512 * (i + 1)].tobytes() == content[1024 * i : 1024 * i + 512]


def test_read_batch_current_position_and_short_reads(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"abcdefghij")
    os.lseek(f.fd, 4, os.SEEK_SET)
    buf = bytearray(32)
    # -1: read at the file position; a read past the end returns what is there.
    assert ring.read_batch([1, 2], f.fd, buf, [-1, 8], [3, 16], [0, 16]) == 2
    assert reap(ring, 2) == {1: Cqe(1, 3, 0), 2: Cqe(2, 2, 0)}
    assert buf[:3] == b"efg" and buf[16:18] == b"ij"


def test_write_batch_fields_and_file_contents(
    ring: IoUring, tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    f = tmp_file()
    data = np.frombuffer(b"0123456789abcdefghij", dtype=np.uint8)
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.write_batch([7, 8], f.fd, data, [100, 0], [10, 5], [10, 0]) == 2
    got = [record(s) for s in sqes.at(first, 2)]
    assert got == [
        expected(
            opcode=Op.WRITE, fd=f.fd, off=100, addr=data.ctypes.data + 10, len=10, user_data=7
        ),
        expected(opcode=Op.WRITE, fd=f.fd, off=0, addr=data.ctypes.data, len=5, user_data=8),
    ]
    assert reap(ring, 2) == {7: Cqe(7, 10, 0), 8: Cqe(8, 5, 0)}
    assert f.pread(200) == b"01234" + bytes(95) + b"abcdefghij"


def test_write_batch_accepts_read_only_buffer(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file()
    assert ring.write_batch(1, f.fd, b"hello world", [0, 6], [5, 5], [0, 6]) == 2
    assert reap(ring, 2) == {1: Cqe(1, 5, 0), 2: Cqe(2, 5, 0)}
    assert f.pread(11) == b"hello\x00world"


def test_write_batch_linked_with_fsync_batch(
    make_ring: Callable[..., IoUring], tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    ring = make_ring(4)
    f = tmp_file()
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.write_batch(0x11, f.fd, b"x" * 64, 0, 64, sqe_flags=SqeFlags.IO_LINK, count=1) == 1
    assert ring.fsync_batch(0x22, f.fd, FsyncFlags.DATASYNC, count=1) == 1
    got = [record(s) for s in sqes.at(first, 2)]
    assert got[0]["flags"] == SqeFlags.IO_LINK and got[0]["opcode"] == Op.WRITE
    assert got[1] == expected(
        opcode=Op.FSYNC, fd=f.fd, rw_flags=FsyncFlags.DATASYNC, user_data=0x22
    )
    assert reap(ring, 2) == {0x11: Cqe(0x11, 64, 0), 0x22: Cqe(0x22, 0, 0)}


# --------------------------------------------------------------------------------------------
# readv_batch / writev_batch


def test_readv_batch_one_iovec_per_operation(
    ring: IoUring, tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    content = bytes(range(200))
    f = tmp_file(content)
    buf = bytearray(64)
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.readv_batch([0xD0, 0xD1, 0xD2], f.fd, buf, [0, 50, 150], [10, 20, 30]) == 3
    base = addr_of(buf)
    starts = [0, 10, 30]
    for i, sqe in enumerate(sqes.at(first, 3)):
        fields = record(sqe)
        assert fields == expected(
            opcode=Op.READV,
            fd=f.fd,
            off=[0, 50, 150][i],
            addr=fields["addr"],
            len=1,
            user_data=0xD0 + i,
        )
        assert iovecs_at(fields["addr"], 1) == [(base + starts[i], [10, 20, 30][i])]
    assert ring.pinned >= 2  # the buffer and the iovec array
    assert reap(ring, 3) == {0xD0: Cqe(0xD0, 10, 0), 0xD1: Cqe(0xD1, 20, 0), 0xD2: Cqe(0xD2, 30, 0)}
    assert bytes(buf[:60]) == content[0:10] + content[50:70] + content[150:180]
    assert ring.pinned == 0


def test_writev_batch_file_contents(
    ring: IoUring, tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    f = tmp_file()
    data = b"AAAABBBBBBCC"
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.writev_batch([1, 2, 3], f.fd, data, [20, 10, 0], [4, 6, 2]) == 3
    assert [int(s["opcode"]) for s in sqes.at(first, 3)] == [Op.WRITEV] * 3
    assert reap(ring, 3) == {1: Cqe(1, 4, 0), 2: Cqe(2, 6, 0), 3: Cqe(3, 2, 0)}
    assert f.pread(24) == b"CC" + bytes(8) + b"BBBBBB" + bytes(4) + b"AAAA"


# --------------------------------------------------------------------------------------------
# read_fixed_batch / write_fixed_batch


def test_read_fixed_batch_fields_and_data(
    ring: IoUring, tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    content = os.urandom(4096)
    f = tmp_file(content)
    bufs: list[Any] = [bytearray(256), np.zeros(512, dtype=np.uint8)]
    ring.register_buffers(bufs)
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    index = np.array([0, 1, 1], dtype=np.uint16)
    n = ring.read_fixed_batch([5, 6, 7], f.fd, index, [0, 1000, 2000], 128, [100, 0, 384])
    assert n == 3
    bases = [addr_of(bufs[0]), addr_of(bufs[1])]
    for i, sqe in enumerate(sqes.at(first, 3)):
        assert record(sqe) == expected(
            opcode=Op.READ_FIXED,
            fd=f.fd,
            off=[0, 1000, 2000][i],
            addr=bases[index[i]] + [100, 0, 384][i],
            len=128,
            buf_index=index[i],
            user_data=5 + i,
        )
    assert reap(ring, 3) == {u: Cqe(u, 128, 0) for u in (5, 6, 7)}
    assert bytes(bufs[0][100:228]) == content[0:128]
    assert bufs[1][:128].tobytes() == content[1000:1128]
    assert bufs[1][384:512].tobytes() == content[2000:2128]
    ring.unregister_buffers()


def test_write_fixed_batch_packed(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file()
    buf = bytearray(b"0123456789")
    ring.register_buffers([buf])
    assert ring.write_fixed_batch([1, 2], f.fd, 0, [0, 100], [4, 6]) == 2
    assert reap(ring, 2) == {1: Cqe(1, 4, 0), 2: Cqe(2, 6, 0)}
    assert f.pread(106) == b"0123" + bytes(96) + b"456789"
    ring.unregister_buffers()


def test_fixed_batch_keeps_registration_after_unregister(
    ring: IoUring, ring_config: Any, make_pipe: Any
) -> None:
    require_kernel("6.13", "unregister_buffers that does not wait for fixed-buffer reads")
    r, w = make_pipe()
    buf = bytearray(16)
    ring.register_buffers([buf])
    assert ring.read_fixed_batch(0x77, r, 0, -1, 16, count=1) == 1
    ring.submit()
    ring.unregister_buffers()
    with pytest.raises(BufferError):
        buf.extend(b"x")  # still exported: the read in flight uses it
    os.write(w, b"fixed read data!")
    cqe = ring.copy_cqe()
    if ring_config.sqpoll and cqe.res == -errno.EFAULT:
        # The SQ thread issued the read after the unregistration: the kernel refused it.
        assert cqe == Cqe(0x77, -errno.EFAULT, 0)
    else:
        assert cqe == Cqe(0x77, 16, 0)
        assert buf == b"fixed read data!"
    buf.extend(b"x")


# --------------------------------------------------------------------------------------------
# fsync_batch / close_batch / openat_batch


def test_fsync_batch_fields(
    ring: IoUring, tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    files = [tmp_file(b"x"), tmp_file(b"y")]
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.fsync_batch(0xF0, [f.fd for f in files], [0, FsyncFlags.DATASYNC]) == 2
    assert [record(s) for s in sqes.at(first, 2)] == [
        expected(opcode=Op.FSYNC, fd=files[0].fd, user_data=0xF0),
        expected(opcode=Op.FSYNC, fd=files[1].fd, rw_flags=FsyncFlags.DATASYNC, user_data=0xF1),
    ]
    assert reap(ring, 2) == {0xF0: Cqe(0xF0, 0, 0), 0xF1: Cqe(0xF1, 0, 0)}


def test_close_batch_closes_every_fd(
    ring: IoUring, tmp_path: pathlib.Path, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    fds = [os.open(tmp_path / f"c{i}", os.O_CREAT | os.O_RDWR, 0o600) for i in range(3)]
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.close_batch(0xC0, np.array(fds, dtype=np.int32)) == 3
    assert [record(s) for s in sqes.at(first, 3)] == [
        expected(opcode=Op.CLOSE, fd=fd, user_data=0xC0 + i) for i, fd in enumerate(fds)
    ]
    assert reap(ring, 3) == {0xC0 + i: Cqe(0xC0 + i, 0, 0) for i in range(3)}
    for fd in fds:
        with pytest.raises(OSError, match="Bad file descriptor") as exc:
            os.fstat(fd)
        assert exc.value.errno == errno.EBADF


def test_openat_batch_paths(
    ring: IoUring, tmp_path: pathlib.Path, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    for i in range(3):
        (tmp_path / f"file{i}").write_bytes(b"content %d" % i)
    paths: list[Any] = [
        tmp_path / "file0",
        str(tmp_path / "file1"),
        os.fsencode(tmp_path / "file2"),
    ]
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.openat_batch(0x0A, AT_FDCWD, paths, os.O_RDONLY | os.O_CLOEXEC) == 3
    fields = [record(s) for s in sqes.at(first, 3)]
    for i, f in enumerate(fields):
        assert f == expected(
            opcode=Op.OPENAT,
            fd=AT_FDCWD,
            addr=f["addr"],
            len=0o666,
            rw_flags=os.O_RDONLY | os.O_CLOEXEC,
            user_data=0x0A + i,
        )
        assert ctypes.string_at(f["addr"]) == os.fsencode(paths[i])
    got = reap(ring, 3)
    try:
        for i in range(3):
            assert got[0x0A + i].res >= 0
            assert os.pread(got[0x0A + i].res, 64, 0) == b"content %d" % i
    finally:
        for cqe in got.values():
            if cqe.res >= 0:
                os.close(cqe.res)
    assert ring.pinned == 0


def test_openat_batch_one_path_broadcast_and_dir_fd(ring: IoUring, tmp_path: pathlib.Path) -> None:
    (tmp_path / "same").write_bytes(b"s")
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert ring.openat_batch([1, 2], dir_fd, "same", os.O_RDONLY) == 2
        assert ring.openat_batch(3, dir_fd, ["missing"], os.O_RDONLY, count=1) == 1
        got = reap(ring, 3)
    finally:
        os.close(dir_fd)
    assert got[3] == Cqe(3, -errno.ENOENT, 0)
    for u in (1, 2):
        assert got[u].res >= 0
        os.close(got[u].res)


def test_openat_batch_creates_with_mode(ring: IoUring, tmp_path: pathlib.Path) -> None:
    paths = [tmp_path / "a", tmp_path / "b"]
    flags = os.O_CREAT | os.O_WRONLY | os.O_EXCL
    assert ring.openat_batch(1, AT_FDCWD, paths, flags, [0o600, 0o640]) == 2
    got = reap(ring, 2)
    for cqe in got.values():
        assert cqe.res >= 0
        os.close(cqe.res)
    assert (paths[0].stat().st_mode & 0o777) == 0o600 & ~_umask()
    assert (paths[1].stat().st_mode & 0o777) == 0o640 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _require_batch(ring: IoUring, name: str, *ops: Op) -> None:
    if not hasattr(ring, name):
        pytest.skip(f"this build has no {name}")
    require_ops(ring, *ops)


def test_statx_batch_fields_and_records(
    ring: IoUring, tmp_path: pathlib.Path, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    _require_batch(ring, "statx_batch", Op.STATX)
    from iouring import STATX_DTYPE

    (tmp_path / "five").write_bytes(b"12345")
    (tmp_path / "dir").mkdir()
    paths = [tmp_path / "five", tmp_path / "dir", tmp_path / "missing"]
    out = np.zeros(3, dtype=STATX_DTYPE)
    sqes = sqe_array(ring)
    first = ring.sqe_tail
    mask = 0x7FF  # STATX_BASIC_STATS
    assert ring.statx_batch(0x57A0, AT_FDCWD, paths, 0, mask, out) == 3
    for i, sqe in enumerate(sqes.at(first, 3)):
        f = record(sqe)
        assert f == expected(
            opcode=Op.STATX,
            fd=AT_FDCWD,
            addr=f["addr"],
            len=mask,
            off=out.ctypes.data + 256 * i,
            user_data=0x57A0 + i,
        )
        assert ctypes.string_at(f["addr"]) == os.fsencode(paths[i])
    assert ring.pinned >= 2
    got = reap(ring, 3)
    assert got[0x57A0] == Cqe(0x57A0, 0, 0) and got[0x57A1] == Cqe(0x57A1, 0, 0)
    assert got[0x57A2] == Cqe(0x57A2, -errno.ENOENT, 0)
    assert int(out[0]["stx_size"]) == 5
    assert int(out[1]["stx_mode"]) & 0o170000 == 0o040000
    assert ring.pinned == 0


def test_statx_batch_empty_path_on_fds_and_validation(
    make_default_ring: Callable[..., IoUring], tmp_file: Any
) -> None:
    ring = make_default_ring(8)
    _require_batch(ring, "statx_batch", Op.STATX)
    files = [tmp_file(b"a" * 3), tmp_file(b"b" * 7)]
    out = bytearray(2 * 256)
    at_empty_path = 0x1000
    n = ring.statx_batch(1, [f.fd for f in files], "", at_empty_path, 0x7FF, out)
    assert n == 2
    assert reap(ring, 2) == {1: Cqe(1, 0, 0), 2: Cqe(2, 0, 0)}
    sizes = [int.from_bytes(out[256 * i + 40 : 256 * i + 48], "little") for i in range(2)]
    assert sizes == [3, 7]
    before = sq_counters(ring)
    with pytest.raises(ValueError, match="2 are needed"):
        ring.statx_batch(1, AT_FDCWD, ["a", "b"], 0, 0x7FF, bytearray(256))
    with pytest.raises(TypeError, match="writable"):
        ring.statx_batch(1, AT_FDCWD, "a", 0, 0x7FF, bytes(256), count=1)
    with pytest.raises(OverflowError, match="mask"):
        ring.statx_batch(1, AT_FDCWD, "a", 0, -1, bytearray(256), count=1)
    assert sq_counters(ring) == before


def test_send_recv_batch(ring: IoUring, sqe_array: Callable[[IoUring], SqeArray]) -> None:
    _require_batch(ring, "send_batch", Op.SEND, Op.RECV)
    import socket

    a, b = socket.socketpair()
    with a, b:
        data = b"first-second"
        sqes = sqe_array(ring)
        first = ring.sqe_tail
        msg_nosignal = 0x4000
        n = ring.send_batch([0x5E, 0x5F], a.fileno(), data, [5, 7], flags=msg_nosignal)
        assert n == 2
        base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
        assert [record(x) for x in sqes.at(first, 2)] == [
            expected(
                opcode=Op.SEND,
                fd=a.fileno(),
                addr=base,
                len=5,
                rw_flags=msg_nosignal,
                user_data=0x5E,
            ),
            expected(
                opcode=Op.SEND,
                fd=a.fileno(),
                addr=base + 5,
                len=7,
                rw_flags=msg_nosignal,
                user_data=0x5F,
            ),
        ]
        assert reap(ring, 2) == {0x5E: Cqe(0x5E, 5, 0), 0x5F: Cqe(0x5F, 7, 0)}
        got = bytearray(16)
        first = ring.sqe_tail
        msg_waitall = 0x100
        n = ring.recv_batch(0x60, b.fileno(), got, [5, 7], [8, 0], flags=msg_waitall)
        assert n == 2
        fields = [record(x) for x in sqes.at(first, 2)]
        assert fields[0]["opcode"] == Op.RECV and fields[0]["addr"] == addr_of(got) + 8
        assert fields[1]["addr"] == addr_of(got) and fields[1]["rw_flags"] == msg_waitall
        ring.submit_and_wait(2)
        cqes = ring.copy_cqes()
        assert sorted((int(c["user_data"]), int(c["res"])) for c in cqes) == [(0x60, 5), (0x61, 7)]
        assert bytes(got[8:13]) == b"first" and bytes(got[:7]) == b"-second"
        before = sq_counters(ring)
        with pytest.raises(TypeError, match="writable"):
            ring.recv_batch(1, b.fileno(), b"ro", 2, count=1)
        with pytest.raises(ValueError, match="outside buffer"):
            ring.send_batch(1, a.fileno(), b"xy", 3, count=1)
        assert sq_counters(ring) == before


# --------------------------------------------------------------------------------------------
# Partial fill, SubmissionQueueFull


def test_partial_fill_when_sq_is_short(
    make_ring: Callable[..., IoUring], tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    ring = make_ring(8)
    f = tmp_file(bytes(range(100)))
    sqes = sqe_array(ring)
    assert ring.nop_batch(100, count=5) == 5
    buf = bytearray(50)
    first = ring.sqe_tail
    # Only 3 of the 10 reads fit: the first 3 are prepared, pinned and returned.
    assert ring.read_batch(np.arange(10, dtype=np.uint64), f.fd, buf, 0, 5) == 3
    assert [int(s["user_data"]) for s in sqes.at(first, 3)] == [0, 1, 2]
    assert ring.sq_space_left() == 0
    with pytest.raises(SubmissionQueueFull):
        ring.read_batch(np.arange(3, 10, dtype=np.uint64), f.fd, buf, 0, 5)
    with pytest.raises(SubmissionQueueFull):
        ring.nop_batch(0, count=1)
    before = sq_counters(ring)
    assert ring.nop_batch(np.array([], dtype=np.uint64)) == 0  # nothing asked, nothing refused
    assert sq_counters(ring) == before
    got = reap(ring, 8)
    assert sorted(got) == [0, 1, 2, 100, 101, 102, 103, 104]
    assert buf[:15] == bytes(range(5)) * 3
    assert ring.pinned == 0


def test_partial_fill_every_method(
    make_default_ring: Callable[..., IoUring], tmp_file: Any, tmp_path: pathlib.Path
) -> None:
    ring = make_default_ring(2)
    f = tmp_file(b"z" * 64)
    buf = bytearray(64)
    ring.register_buffers([bytearray(64)])
    (tmp_path / "p").write_bytes(b"")
    calls: dict[str, Callable[[], int]] = {
        "nop": lambda: ring.nop_batch(0, count=3),
        "read": lambda: ring.read_batch(0, f.fd, buf, 0, 8, count=3),
        "write": lambda: ring.write_batch(0, f.fd, buf, 0, 8, count=3),
        "readv": lambda: ring.readv_batch(0, f.fd, buf, 0, 8, count=3),
        "writev": lambda: ring.writev_batch(0, f.fd, buf, 0, 8, count=3),
        "read_fixed": lambda: ring.read_fixed_batch(0, f.fd, 0, 0, 8, count=3),
        "write_fixed": lambda: ring.write_fixed_batch(0, f.fd, 0, 0, 8, count=3),
        "fsync": lambda: ring.fsync_batch(0, f.fd, count=3),
        "close": lambda: ring.close_batch(0, dups),
        "openat": lambda: ring.openat_batch(0, AT_FDCWD, tmp_path / "p", os.O_RDONLY, count=3),
        "push_sqes": lambda: ring.push_sqes(nops),
    }
    dups = [os.dup(f.fd) for _ in range(3)]
    nops = np.zeros(3, dtype=SQE_DTYPE)
    nops["user_data"] = [0, 1, 2]
    for name, call in calls.items():
        assert call() == 2, name
        ring.submit_and_wait(2)
        cqes = ring.copy_cqes()
        assert len(cqes) == 2, name
        assert sorted(cqes["user_data"]) == [0, 1], name
        assert all(cqe["res"] >= 0 for cqe in cqes), name
        if name == "openat":
            for cqe in cqes:
                os.close(int(cqe["res"]))
        assert ring.pinned == 0, name
    os.close(dups[2])  # the close that did not fit
    ring.unregister_buffers()


# --------------------------------------------------------------------------------------------
# Pins: one per batch, released with the batch's last final completion


def test_batch_pin_released_when_last_operation_completes(ring: IoUring, make_pipe: Any) -> None:
    (r1, w1), (r2, w2) = make_pipe(), make_pipe()
    buf = bytearray(8)
    assert ring.read_batch([0xA1, 0xA2], [r1, r2], buf, -1, 4, [0, 4]) == 2
    ring.submit()
    assert ring.in_flight == 2
    assert ring.pinned >= 1
    os.write(w1, b"1111")
    assert ring.copy_cqe() == Cqe(0xA1, 4, 0)
    # The buffer is still lent to the second read.
    assert ring.in_flight == 1 and ring.pinned >= 1
    with pytest.raises(BufferError):
        buf.extend(b"no")
    os.write(w2, b"2222")
    assert ring.copy_cqe() == Cqe(0xA2, 4, 0)
    assert ring.in_flight == 0 and ring.pinned == 0
    assert buf == b"11112222"
    buf.extend(b"ok")  # released: the bytearray may resize again


def test_batch_pins_survive_user_data_reuse(ring: IoUring, make_pipe: Any) -> None:
    # Every operation of the batch shares one user_data: the buffer stays pinned until the
    # last of them completes.
    (r1, w1), (r2, w2) = make_pipe(), make_pipe()
    buf = bytearray(4)
    assert ring.read_batch(np.array([9, 9], dtype=np.uint64), [r1, r2], buf, -1, 2) == 2
    ring.submit()
    os.write(w1, b"ab")
    assert ring.copy_cqe() == Cqe(9, 2, 0)
    assert ring.pinned >= 1
    os.write(w2, b"cd")
    assert ring.copy_cqe() == Cqe(9, 2, 0)
    assert ring.pinned == 0
    assert buf == b"abcd"


def test_batch_buffer_survives_caller_dropping_it(ring: IoUring, make_pipe: Any) -> None:
    r, w = make_pipe()
    target = np.zeros(8, dtype=np.uint8)
    ref = weakref.ref(target)
    assert ring.read_batch(1, r, target, -1, 8, count=1) == 1
    ring.submit()
    del target
    gc.collect()
    assert ref() is not None  # the ring's pin keeps the array alive
    os.write(w, b"ABCDEFGH")
    assert ring.copy_cqe() == Cqe(1, 8, 0)
    gc.collect()
    assert ref() is None


def test_close_cancels_batch_in_flight(
    make_default_ring: Callable[..., IoUring], make_pipe: Any
) -> None:
    ring = make_default_ring(8)
    r, _ = make_pipe()
    buf = bytearray(16)
    assert ring.read_batch(0, r, buf, -1, 4, count=4) == 4
    ring.submit()
    assert ring.in_flight == 4
    ring.close()
    buf.extend(b"released")


# --------------------------------------------------------------------------------------------
# Validation: every refused call leaves the ring unchanged


def _bad_calls(
    ring: IoUring, f: Any, tmp_path: pathlib.Path
) -> list[tuple[str, Callable[[], Any], type[BaseException], str]]:
    buf = bytearray(64)
    ro = b"x" * 64
    u64 = np.uint64
    return [
        ("nop no count", lambda: ring.nop_batch(0), ValueError, "count is needed"),
        ("nop ud float", lambda: ring.nop_batch(np.array([1.5])), TypeError, "must hold integers"),
        (
            "nop ud str",
            lambda: ring.nop_batch("1", count=1),  # type: ignore[arg-type]
            TypeError,
            "user_data",
        ),
        (
            "nop ud 2-D",
            lambda: ring.nop_batch(np.zeros((2, 2), dtype=u64)),
            ValueError,
            "one-dimensional",
        ),
        ("nop ud negative", lambda: ring.nop_batch(np.array([-1])), OverflowError, "user_data"),
        (
            "nop ud start wraps",
            lambda: ring.nop_batch(U64_MAX, count=2),
            OverflowError,
            "user_data",
        ),
        ("nop count negative", lambda: ring.nop_batch(0, count=-1), OverflowError, "count"),
        ("nop count mismatch", lambda: ring.nop_batch([1, 2], count=3), ValueError, "differs"),
        (
            "nop flags skip",
            lambda: ring.nop_batch(0, count=1, sqe_flags=SqeFlags.CQE_SKIP_SUCCESS),
            ValueError,
            "CQE_SKIP_SUCCESS",
        ),
        (
            "nop flags select",
            lambda: ring.nop_batch(0, count=1, sqe_flags=SqeFlags.BUFFER_SELECT),
            ValueError,
            "BUFFER_SELECT",
        ),
        (
            "nop flags unknown",
            lambda: ring.nop_batch(0, count=1, sqe_flags=0x80),
            OverflowError,
            "sqe_flags",
        ),
        (
            "read lengths differ",
            lambda: ring.read_batch([1, 2], f.fd, buf, [0, 0, 0], 4),
            ValueError,
            "lengths differ",
        ),
        ("read fd overflow", lambda: ring.read_batch(0, [2**31], buf, 0, 4), OverflowError, "fd"),
        (
            "read offset < -1",
            lambda: ring.read_batch(0, f.fd, buf, [-2], 4),
            OverflowError,
            "offset",
        ),
        (
            "read length negative",
            lambda: ring.read_batch(0, f.fd, buf, 0, [-4]),
            OverflowError,
            "length",
        ),
        (
            "read length > u32",
            lambda: ring.read_batch(0, f.fd, buf, 0, [2**32]),
            OverflowError,
            "length",
        ),
        (
            "read past buffer",
            lambda: ring.read_batch(0, f.fd, buf, 0, [60], [8]),
            ValueError,
            "outside buffer",
        ),
        (
            "read packed past buffer",
            lambda: ring.read_batch([0, 1], f.fd, buf, 0, [40, 40]),
            ValueError,
            "operation 1",
        ),
        (
            "read offset wraps",
            lambda: ring.read_batch(0, f.fd, buf, 0, 4, [U64_MAX]),
            ValueError,
            "outside buffer",
        ),
        (
            "read read-only",
            lambda: ring.read_batch(0, f.fd, ro, 0, 4, count=1),
            TypeError,
            "writable",
        ),
        (
            "read not a buffer",
            lambda: ring.read_batch(0, f.fd, [1, 2], 0, 4, count=1),  # type: ignore[arg-type]
            TypeError,
            "bytes-like",
        ),
        (
            "read bad rw_flags",
            lambda: ring.read_batch(0, f.fd, buf, 0, 4, count=1, rw_flags=-1),
            OverflowError,
            "rw_flags",
        ),
        (
            "readv past buffer",
            lambda: ring.readv_batch(0, f.fd, buf, 0, 65, count=1),
            ValueError,
            "outside buffer",
        ),
        (
            "readv read-only",
            lambda: ring.readv_batch(0, f.fd, ro, 0, 4, count=1),
            TypeError,
            "writable",
        ),
        (
            "writev past buffer",
            lambda: ring.writev_batch(0, f.fd, ro, 0, 4, [61]),
            ValueError,
            "outside buffer",
        ),
        (
            "fixed none registered",
            lambda: ring.read_fixed_batch(0, f.fd, 0, 0, 4, count=1),
            ValueError,
            "no buffers are registered",
        ),
        ("fsync bad flags", lambda: ring.fsync_batch(0, f.fd, 2, count=1), ValueError, "DATASYNC"),
        (
            "close fd type",
            lambda: ring.close_batch(0, "3", count=1),  # type: ignore[arg-type]
            TypeError,
            "fd",
        ),
        (
            "openat path type",
            lambda: ring.openat_batch(0, AT_FDCWD, [1], 0),  # type: ignore[list-item]
            TypeError,
            "paths[0]",
        ),
        ("openat NUL", lambda: ring.openat_batch(0, AT_FDCWD, ["a\0b"], 0), ValueError, "paths[0]"),
        (
            "openat not paths",
            lambda: ring.openat_batch(0, AT_FDCWD, 3, 0, count=1),  # type: ignore[arg-type]
            TypeError,
            "paths",
        ),
        (
            "openat lengths",
            lambda: ring.openat_batch([1, 2, 3], AT_FDCWD, ["a", "b"], 0),
            ValueError,
            "lengths differ",
        ),
        (
            "openat flags",
            lambda: ring.openat_batch(0, AT_FDCWD, "a", 2**32),
            OverflowError,
            "flags",
        ),
        ("openat mode", lambda: ring.openat_batch(0, AT_FDCWD, "a", 0, -1), OverflowError, "mode"),
    ]


def test_validation_errors_leave_ring_unchanged(
    make_default_ring: Callable[..., IoUring], tmp_file: Any, tmp_path: pathlib.Path
) -> None:
    ring = make_default_ring(8)
    f = tmp_file(b"q" * 64)
    assert ring.nop_batch(0x1, count=2) == 2  # a non-empty ring, so "unchanged" means something
    before = sq_counters(ring)
    for label, call, exc_type, message in _bad_calls(ring, f, tmp_path):
        with pytest.raises(exc_type, match=message.replace("[", r"\[").replace("]", r"\]")):
            call()
        assert sq_counters(ring) == before, label
    reap(ring, 2)


def test_fixed_batch_validation_leaves_ring_unchanged(
    make_default_ring: Callable[..., IoUring], tmp_file: Any
) -> None:
    ring = make_default_ring(8)
    f = tmp_file(b"q" * 64)
    ring.register_buffers([bytearray(32), bytearray(64)])
    before = sq_counters(ring)
    bad: list[tuple[Callable[[], Any], type[BaseException], str]] = [
        (lambda: ring.read_fixed_batch(0, f.fd, 2, 0, 4, count=1), ValueError, "out of range"),
        (lambda: ring.read_fixed_batch(0, f.fd, [2**16], 0, 4), OverflowError, "buffer_index"),
        (
            lambda: ring.read_fixed_batch(0, f.fd, 0, 0, 33, count=1),
            ValueError,
            "registered buffer 0",
        ),
        (lambda: ring.read_fixed_batch(0, f.fd, [0, 1], 0, 32, [0, 40]), ValueError, "operation 1"),
        (lambda: ring.write_fixed_batch([1, 2], f.fd, 1, 0, [60, 10]), ValueError, "operation 1"),
    ]
    for call, exc_type, message in bad:
        with pytest.raises(exc_type, match=message):
            call()
        assert sq_counters(ring) == before
    ring.unregister_buffers()


def test_batch_on_closed_ring_raises(make_default_ring: Callable[..., IoUring]) -> None:
    ring = make_default_ring(4)
    ring.close()
    calls: list[Callable[[], Any]] = [
        lambda: ring.nop_batch(0, count=1),
        lambda: ring.read_batch(0, 0, bytearray(4), 0, 4, count=1),
        lambda: ring.read_fixed_batch(0, 0, 0, 0, 4, count=1),
        lambda: ring.push_sqes(np.zeros(1, dtype=SQE_DTYPE)),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="closed"):
            call()


# --------------------------------------------------------------------------------------------
# SQE_DTYPE and push_sqes


def test_sqe_dtype_is_the_kernel_layout() -> None:
    assert SQE_DTYPE.itemsize == 64
    fields, names = SQE_DTYPE.fields, SQE_DTYPE.names
    assert fields is not None and names is not None
    offsets = {name: fields[name][1] for name in names}
    assert offsets == {
        "opcode": 0,
        "flags": 1,
        "ioprio": 2,
        "fd": 4,
        "off": 8,
        "addr": 16,
        "len": 24,
        "rw_flags": 28,
        "user_data": 32,
        "buf_index": 40,
        "personality": 42,
        "splice_fd_in": 44,
        "addr3": 48,
        "pad2": 56,
    }
    assert SQE_DTYPE["fd"] == np.dtype("<i4") and SQE_DTYPE["off"] == np.dtype("<u8")


def test_push_sqes_nops_copied_exactly(
    ring: IoUring, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    sqes = np.zeros(4, dtype=SQE_DTYPE)
    sqes["user_data"] = [0xAAAAAAAA, 1, 2, U64_MAX]
    sqes["flags"][1] = SqeFlags.IO_LINK
    sqes["personality"][2] = 0  # accepted field, left 0 so the NOP runs
    view = sqe_array(ring)
    first = ring.sqe_tail
    assert ring.push_sqes(sqes) == 4
    assert view.at(first, 4).tobytes() == sqes.tobytes()
    got = reap(ring, 4)
    assert got == {u: Cqe(u, 0, 0) for u in (0xAAAAAAAA, 1, 2, U64_MAX)}


def test_push_sqes_reads_into_pinned_buffer(ring: IoUring, tmp_file: Any, make_pipe: Any) -> None:
    content = bytes(range(64))
    f = tmp_file(content)
    r, w = make_pipe()
    buf = np.zeros(64, dtype=np.uint8)
    sqes = np.zeros(3, dtype=SQE_DTYPE)
    sqes["opcode"] = Op.READ
    sqes["fd"] = [f.fd, f.fd, r]
    sqes["off"] = [0, 32, U64_MAX]
    sqes["addr"] = buf.ctypes.data + np.array([0, 16, 48])
    sqes["len"] = 16
    sqes["user_data"] = [10, 11, 12]
    assert ring.push_sqes(sqes, buf) == 3
    ring.submit()
    got = {ring.copy_cqe().user_data for _ in range(2)}
    assert got == {10, 11}
    assert ring.pinned >= 1  # the pipe read still holds the buffer
    os.write(w, b"P" * 16)
    assert ring.copy_cqe() == Cqe(12, 16, 0)
    assert ring.pinned == 0
    assert buf[:16].tobytes() == content[:16]
    assert buf[16:32].tobytes() == content[32:48]
    assert buf[48:].tobytes() == b"P" * 16


def test_push_sqes_write_from_read_only_buffer(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file()
    data = b"immutable bytes!"
    address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
    sqes = np.zeros(1, dtype=SQE_DTYPE)
    sqes[0]["opcode"], sqes[0]["fd"], sqes[0]["addr"], sqes[0]["len"] = Op.WRITE, f.fd, address, 16
    assert ring.push_sqes(sqes, data) == 1
    assert reap(ring, 1) == {0: Cqe(0, 16, 0)}
    assert f.pread(16) == data


def test_push_sqes_read_fixed_inside_registration(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"fixed!" * 10)
    reg = bytearray(32)
    ring.register_buffers([reg])
    sqes = np.zeros(1, dtype=SQE_DTYPE)
    sqes["opcode"], sqes["fd"], sqes["len"], sqes["user_data"] = Op.READ_FIXED, f.fd, 6, 0xF1
    sqes["addr"] = addr_of(reg) + 10
    assert ring.push_sqes(sqes) == 1
    assert reap(ring, 1) == {0xF1: Cqe(0xF1, 6, 0)}
    assert reg[10:16] == b"fixed!"
    ring.unregister_buffers()


def test_push_sqes_partial_fill(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(4)
    sqes = np.zeros(6, dtype=SQE_DTYPE)
    sqes["user_data"] = np.arange(6)
    assert ring.push_sqes(sqes) == 4
    with pytest.raises(SubmissionQueueFull):
        ring.push_sqes(sqes[4:])
    assert sorted(reap(ring, 4)) == [0, 1, 2, 3]
    assert ring.push_sqes(sqes[4:]) == 2
    assert sorted(reap(ring, 2)) == [4, 5]


def test_push_sqes_strided_array(ring: IoUring) -> None:
    sqes = np.zeros(6, dtype=SQE_DTYPE)
    sqes["user_data"] = np.arange(6)
    assert ring.push_sqes(sqes[::2]) == 3
    assert sorted(reap(ring, 3)) == [0, 2, 4]


def test_push_sqes_validation_leaves_ring_unchanged(
    make_default_ring: Callable[..., IoUring], tmp_file: Any
) -> None:
    ring = make_default_ring(8)
    f = tmp_file(b"v" * 64)
    buf = bytearray(64)
    base = addr_of(buf)
    ring.register_buffers([bytearray(32)])
    assert ring.nop_batch(0, count=1) == 1
    before = sq_counters(ring)

    def sqe(**fields: int) -> np.ndarray:
        a = np.zeros(2, dtype=SQE_DTYPE)  # a valid NOP first: the second SQE is the bad one
        for k, v in fields.items():
            a[1][k] = v
        return a

    cases: list[tuple[Any, Any, type[BaseException], str]] = [
        (np.zeros(2, dtype=CQE_DTYPE), None, TypeError, "SQE_DTYPE"),
        ([0] * 64, None, TypeError, "numpy array"),
        (np.zeros((2, 2), dtype=SQE_DTYPE), None, ValueError, "one-dimensional"),
        (sqe(opcode=Op.READV), None, ValueError, r"sqes\[1\].*Op.READV"),
        (sqe(opcode=Op.OPENAT), None, ValueError, "cannot validate"),
        (sqe(opcode=Op.TIMEOUT), None, ValueError, "cannot validate"),
        (sqe(opcode=Op.MADVISE), None, ValueError, "cannot validate"),
        (sqe(opcode=200), None, ValueError, "cannot validate"),
        (sqe(flags=SqeFlags.CQE_SKIP_SUCCESS), None, ValueError, "CQE_SKIP_SUCCESS"),
        (sqe(flags=SqeFlags.BUFFER_SELECT), None, ValueError, "BUFFER_SELECT"),
        (sqe(flags=0x80), None, ValueError, "unknown SQE flag"),
        (sqe(addr=base), None, ValueError, "addr must be 0"),
        (sqe(addr3=1), None, ValueError, "addr3 must be 0"),
        (sqe(pad2=1), None, ValueError, "pad2 must be 0"),
        (sqe(opcode=Op.CLOSE, fd=3, off=1), None, ValueError, "off must be 0"),
        (sqe(opcode=Op.READ, fd=f.fd, addr=base, len=8), None, ValueError, "no buffer was given"),
        (sqe(opcode=Op.READ, fd=f.fd, addr=base + 60, len=8), buf, ValueError, "outside buffer"),
        (sqe(opcode=Op.READ, fd=f.fd, addr=base - 1, len=8), buf, ValueError, "outside buffer"),
        (sqe(opcode=Op.READ, fd=f.fd, addr=U64_MAX, len=8), buf, ValueError, "outside buffer"),
        (sqe(opcode=Op.WRITE, fd=f.fd, addr=12345, len=8), b"x" * 64, ValueError, "outside buffer"),
        (sqe(opcode=Op.READ, fd=f.fd, addr=base, len=8, addr3=base), buf, ValueError, "addr3"),
        (sqe(opcode=Op.READ, fd=f.fd, addr=base, len=8, buf_index=1), buf, ValueError, "buf_index"),
        (
            sqe(opcode=Op.READ_FIXED, fd=f.fd, addr=base, len=8),
            None,
            ValueError,
            "registered buffer 0",
        ),
        (
            sqe(opcode=Op.READ_FIXED, fd=f.fd, addr=base, len=8, buf_index=1),
            None,
            ValueError,
            "out of range",
        ),
        (sqe(opcode=Op.FSYNC, fd=f.fd, rw_flags=4), None, ValueError, "DATASYNC"),
        (sqe(opcode=Op.RECV, fd=f.fd, addr=base, len=8, ioprio=2), buf, ValueError, "POLL_FIRST"),
        (
            sqe(opcode=Op.SEND, fd=f.fd, addr=base, len=8, off=base),
            buf,
            ValueError,
            "off must be 0",
        ),
    ]
    for array, buffer, exc_type, message in cases:
        with pytest.raises(exc_type, match=message):
            ring.push_sqes(array, buffer)
        assert sq_counters(ring) == before, message
    # A read into a read-only buffer is a TypeError naming the buffer.
    data = b"r" * 64
    address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
    with pytest.raises(TypeError, match="writable"):
        ring.push_sqes(sqe(opcode=Op.READ, fd=f.fd, addr=address, len=8), data)
    assert sq_counters(ring) == before
    reap(ring, 1)
    ring.unregister_buffers()


def test_push_sqes_plain_opcodes(
    ring: IoUring, tmp_file: Any, sqe_array: Callable[[IoUring], SqeArray]
) -> None:
    f = tmp_file(b"p" * 4096)
    require_ops(ring, Op.FADVISE)
    sqes = np.zeros(3, dtype=SQE_DTYPE)
    sqes["opcode"] = [Op.FSYNC, Op.FADVISE, Op.ASYNC_CANCEL]
    sqes["fd"] = [f.fd, f.fd, -1]
    sqes["rw_flags"][0] = FsyncFlags.DATASYNC
    sqes["len"][1] = 4096
    sqes["rw_flags"][1] = os.POSIX_FADV_DONTNEED
    sqes["addr"][2] = 0xDEAD  # the user_data to cancel: a number, not a pointer
    sqes["user_data"] = [1, 2, 3]
    first = ring.sqe_tail
    view = sqe_array(ring)
    assert ring.push_sqes(sqes) == 3
    assert view.at(first, 3).tobytes() == sqes.tobytes()
    got = reap(ring, 3)
    assert got[1] == Cqe(1, 0, 0) and got[2] == Cqe(2, 0, 0)
    assert got[3] == Cqe(3, -errno.ENOENT, 0)


# --- issue 11: values changed after validation, empty arrays, huge counts ---------------------


class _Mutates:
    """An int (count) whose __index__ first runs `change`: Python code that a batch method runs
    after it has converted (and, before the fix, validated) the arguments before it."""

    def __init__(self, value: int, change: Callable[[], None]) -> None:
        self.value, self.change = value, change

    def __index__(self) -> int:
        self.change()
        return self.value


def _count(value: int, change: Callable[[], None]) -> int:
    """A count argument that runs `change` when converted (typed as the int it stands for)."""
    return cast(int, _Mutates(value, change))


def test_batch_flags_changed_by_a_conversion_are_checked(ring: IoUring) -> None:
    """Class 1: sqe_flags converted, then set to CQE_SKIP_SUCCESS by Python code that the call
    runs later (count's __index__): the value used is the value checked, so it is refused."""
    flags = np.zeros(2, np.uint8)

    def change() -> None:
        flags[:] = int(SqeFlags.CQE_SKIP_SUCCESS)

    ud = np.array([0xAA1, 0xAA2], np.uint64)
    with pytest.raises(ValueError, match="CQE_SKIP_SUCCESS"):
        ring.nop_batch(ud, count=_count(2, change), sqe_flags=flags)
    flags[:] = 0
    assert ring.nop_batch(ud, count=_count(2, lambda: None), sqe_flags=flags) == 2
    ring.submit()
    cqes = ring.copy_cqes(wait_nr=2, timeout=5)
    assert [int(c["user_data"]) for c in cqes] == [0xAA1, 0xAA2]
    assert ring.in_flight == 0


def test_batch_fsync_flags_changed_by_a_conversion_are_checked(
    ring: IoUring, tmp_file: Callable[..., Any]
) -> None:
    f = tmp_file(b"data")
    ff = np.zeros(2, np.uint32)

    def change() -> None:
        ff[:] = 0x80  # not an fsync flag

    with pytest.raises(ValueError, match="DATASYNC"):
        ring.fsync_batch(np.array([1, 2], np.uint64), f.fd, ff, count=_count(2, change))
    assert ring.in_flight == 0


def test_batch_flags_changed_by_a_path_conversion_are_checked(
    ring: IoUring, tmp_path: pathlib.Path
) -> None:
    """A path's __fspath__ runs after sqe_flags were converted."""
    flags = np.zeros(1, np.uint8)
    target = tmp_path / "f"
    target.write_bytes(b"x")

    class Path:
        def __fspath__(self) -> str:
            flags[:] = int(SqeFlags.CQE_SKIP_SUCCESS)
            return str(target)

    with pytest.raises(ValueError, match="CQE_SKIP_SUCCESS"):
        ring.openat_batch(7, AT_FDCWD, [Path()], os.O_RDONLY, sqe_flags=flags)
    with pytest.raises(ValueError, match="CQE_SKIP_SUCCESS"):
        ring.statx_batch(7, AT_FDCWD, [Path()], 0, 0x7FF, bytearray(256), sqe_flags=flags)
    assert ring.in_flight == 0


def test_batch_empty_flag_arrays_are_not_read(ring: IoUring, tmp_file: Callable[..., Any]) -> None:
    """Class 2: an empty array's element 0 is past its end (here: a refused value)."""
    skip = np.full(4, int(SqeFlags.CQE_SKIP_SUCCESS), np.uint8)
    none = np.zeros(0, np.uint64)
    assert ring.nop_batch(none, sqe_flags=skip[:0]) == 0
    bad_fsync = np.full(4, 0x80, np.uint32)
    assert ring.fsync_batch(none, tmp_file().fd, bad_fsync[:0]) == 0
    assert ring.fsync_batch(none, tmp_file().fd, 0, sqe_flags=skip[2:2]) == 0
    with pytest.raises(ValueError, match="differ"):
        ring.nop_batch(5, count=3, sqe_flags=skip[:0])
    with pytest.raises(ValueError, match="differ"):
        ring.nop_batch(np.arange(3, dtype=np.uint64), sqe_flags=skip[:0])
    assert ring.sq_ready() == 0


@pytest.mark.parametrize("kind", ["read", "readv", "send", "push_sqes"])
def test_batch_huge_count_clamped_before_allocating(
    make_default_ring: Callable[..., IoUring], tmp_file: Callable[..., Any], kind: str
) -> None:
    """Class 10: a count (or a broadcast array) far beyond the SQ prepares what fits."""
    ring = make_default_ring(8)
    f = tmp_file(b"x" * 64)
    buf = bytearray(64)
    huge = 1 << 40
    if kind == "read":
        n = ring.read_batch(0, f.fd, buf, 0, 0, count=huge)
    elif kind == "readv":
        n = ring.readv_batch(0, f.fd, buf, 0, 0, count=huge)
    elif kind == "send":
        n = ring.send_batch(0, f.fd, b"", 0, count=huge)
    else:
        row = np.zeros(1, SQE_DTYPE)
        n = ring.push_sqes(np.broadcast_to(row, (huge,)))
    assert n == 8
    ring.submit()
    wait_until_reaped(ring, 8)


def wait_until_reaped(ring: IoUring, count: int) -> None:
    got = 0
    while got < count:
        got += len(ring.copy_cqes(wait_nr=1, timeout=5))
    assert ring.in_flight == 0
