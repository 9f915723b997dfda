"""iouring.helpers: read_files, read_ranges, write_files and copy_file on real files.

Checks contents byte for byte, chunking (many operations per file, more than the ring holds),
short transfers (ranges and copies past the end of a file), progress callbacks, errors that
name the file, rings passed in (left clean) and the page alignment of what is read.
"""

from __future__ import annotations

import errno
import os
import random
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from iouring import IoUring, Op
from iouring.helpers import (
    PAGE,
    _Copier,
    aligned_empty,
    copy_file,
    read_files,
    read_ranges,
    write_files,
)

MakeRing = Callable[..., IoUring]
Method = Literal["auto", "readwrite", "splice"]
SIZES = [0, 1, 100, 4095, 4096, 4097, 16 * 1024 + 3, 300_000]


class ProgressLog:
    """A progress callback that checks every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        assert 0 <= done <= total
        if self.calls:
            assert done >= self.calls[-1][0]
        self.calls.append((done, total))


@pytest.fixture
def files(tmp_path: Path) -> dict[Path, bytes]:
    """Files of awkward sizes with random contents."""
    rng = random.Random(7)
    out = {}
    for i, size in enumerate(SIZES):
        path = tmp_path / f"file{i}.bin"
        data = rng.randbytes(size)
        path.write_bytes(data)
        out[path] = data
    return out


def test_aligned_empty() -> None:
    assert aligned_empty(0).size == 0
    for size in (1, 5000, 300_000):
        a = aligned_empty(size)
        assert a.size == size and a.dtype == np.uint8
        assert a.ctypes.data % PAGE == 0
    with pytest.raises(ValueError, match="nbytes"):
        aligned_empty(-1)


# --------------------------------------------------------------------------------------------
# read_files


def test_read_files_numpy_and_bytes(files: dict[Path, bytes]) -> None:
    progress = ProgressLog()
    arrays = read_files(list(files), chunk_size=4096, queue_depth=4, progress=progress)
    assert len(arrays) == len(files)
    for array, data in zip(arrays, files.values(), strict=True):
        assert array.dtype == np.uint8
        assert array.tobytes() == data
        if len(data) >= 16 * 1024:
            assert array.ctypes.data % PAGE == 0  # large files land page-aligned
    total = sum(SIZES)
    assert progress.calls[-1] == (total, total)
    assert read_files(list(files), as_bytes=True) == list(files.values())
    assert read_files([]) == []


def test_read_files_fds_stay_open(files: dict[Path, bytes]) -> None:
    fds = [os.open(p, os.O_RDONLY) for p in files]
    try:
        os.lseek(fds[-1], 1000, os.SEEK_SET)  # whole files are read whatever the position
        assert read_files(fds, as_bytes=True) == list(files.values())
        for fd in fds:
            os.fstat(fd)  # still open
    finally:
        for fd in fds:
            os.close(fd)


def test_read_files_errors_name_the_file(files: dict[Path, bytes], tmp_path: Path) -> None:
    paths = list(files)
    with pytest.raises(FileNotFoundError) as missing:
        read_files([*paths, tmp_path / "missing"])
    assert missing.value.filename == str(tmp_path / "missing")
    with pytest.raises(IsADirectoryError) as directory:
        read_files([paths[0], tmp_path])
    assert directory.value.filename == str(tmp_path)
    with pytest.raises(ValueError, match="chunk_size"):
        read_files(paths, chunk_size=0)
    with pytest.raises(ValueError, match="queue_depth"):
        read_files(paths, queue_depth=0)


def test_read_files_read_error_after_open(tmp_path: Path) -> None:
    """A read that fails in the kernel (EBADF on a write-only fd) raises with the fd as name,
    once the other reads have completed."""
    good = tmp_path / "good"
    good.write_bytes(b"x" * 100_000)
    wronly = os.open(tmp_path / "wo", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(wronly, b"abc")
    try:
        with pytest.raises(OSError, match="Bad file descriptor") as exc:
            read_files([good, wronly, good], chunk_size=4096)
        assert exc.value.errno == errno.EBADF
        assert exc.value.filename == wronly
    finally:
        os.close(wronly)


def test_read_files_unknown_sizes(tmp_path: Path) -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"through a pipe")
        os.close(w)
        got = read_files([r, "/proc/self/status"], as_bytes=True)
    finally:
        os.close(r)
    assert got[0] == b"through a pipe"
    assert got[1].startswith(b"Name:")


def test_read_files_reuses_an_idle_ring(make_ring: MakeRing, files: dict[Path, bytes]) -> None:
    ring = make_ring(4)
    assert read_files(list(files), ring=ring, chunk_size=8192, as_bytes=True) == list(
        files.values()
    )
    assert ring.in_flight == 0 and ring.pinned == 0 and not ring.closed
    ring.nop(1)
    with pytest.raises(ValueError, match="idle"):
        read_files(list(files), ring=ring)
    ring.submit_and_wait(1)
    ring.copy_cqes()


def test_read_and_write_files_in_groups(tmp_path: Path) -> None:
    """More files than may be open at once: both helpers work through them in groups of
    max_open, and progress counts across the groups."""
    contents = {tmp_path / f"g{i:03d}": bytes([i % 256]) * (i * 37 % 5000) for i in range(600)}
    total = sum(len(d) for d in contents.values())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(400, hard), hard))
    try:
        progress = ProgressLog()
        write_files(contents, progress=progress)  # max_open 256 < 400 descriptors
        assert progress.calls[-1] == (total, total)
        progress = ProgressLog()
        got = read_files(list(contents), as_bytes=True, progress=progress)
        assert got == list(contents.values())
        assert progress.calls[-1] == (total, total)
        small = read_files(list(contents)[:50], max_open=7, chunk_size=1000)
        assert [a.tobytes() for a in small] == list(contents.values())[:50]
        with pytest.raises(ValueError, match="max_open"):
            read_files(list(contents), max_open=0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --------------------------------------------------------------------------------------------
# read_ranges


def test_read_ranges(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = tmp_path / "data"
    path.write_bytes(data)
    rng = np.random.default_rng(3)
    offsets = rng.integers(0, 190_000, 500)
    lengths = rng.integers(0, 10_000, 500)
    progress = ProgressLog()
    got = read_ranges(path, offsets, lengths, chunk_size=4096, queue_depth=8, progress=progress)
    for array, o, n in zip(got, offsets.tolist(), lengths.tolist(), strict=True):
        assert array.tobytes() == data[o : o + n]
    as_bytes = read_ranges(str(path), [0, 5], 3, as_bytes=True)
    assert as_bytes == [data[:3], data[5:8]]
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_ranges(fd, [10], [4], as_bytes=True) == [data[10:14]]
    finally:
        os.close(fd)
    with pytest.raises(ValueError, match=">= 0"):
        read_ranges(path, [-1], [4])
    with pytest.raises(FileNotFoundError) as missing:
        read_ranges(tmp_path / "nope", [0], [1])
    assert missing.value.filename == str(tmp_path / "nope")


def test_read_ranges_past_the_end(tmp_path: Path) -> None:
    """Ranges crossing the end of the file: a short read, then a read of 0 bytes (EOF)."""
    path = tmp_path / "short"
    path.write_bytes(b"0123456789")
    got = read_ranges(path, [0, 5, 8, 20], [4, 10, 100, 5], as_bytes=True, chunk_size=4)
    assert got == [b"0123", b"56789", b"89", b""]


# --------------------------------------------------------------------------------------------
# write_files


def test_write_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    contents: dict[str | Path, Any] = {
        tmp_path / "a.bin": b"hello",
        tmp_path / "b.bin": bytearray(b"\0" * 10_000),
        tmp_path / "c.npy": rng.integers(0, 1000, 50_000, dtype=np.int32),
        tmp_path / "empty": b"",
        str(tmp_path / "d.bin"): memoryview(os.urandom(70_000)),
    }
    (tmp_path / "a.bin").write_bytes(b"old and longer contents")  # truncated
    progress = ProgressLog()
    write_files(contents, chunk_size=4096, queue_depth=4, fsync=True, progress=progress)
    for path, data in contents.items():
        assert Path(path).read_bytes() == bytes(memoryview(data).cast("B"))
    total = sum(memoryview(d).nbytes for d in contents.values())
    assert progress.calls[-1] == (total, total)
    write_files([(tmp_path / "pairs", b"as pairs")], mode=0o600)
    assert (tmp_path / "pairs").read_bytes() == b"as pairs"
    assert (tmp_path / "pairs").stat().st_mode & 0o777 == 0o600 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_files_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as missing:
        write_files({tmp_path / "a": b"1", tmp_path / "no" / "b": b"2"})
    assert missing.value.filename == str(tmp_path / "no" / "b")
    if os.path.exists("/dev/full"):
        targets: dict[str | Path, bytes] = {tmp_path / "ok": b"x" * 5000, "/dev/full": b"y" * 5000}
        with pytest.raises(OSError, match="No space left") as full:
            write_files(targets, chunk_size=1000)
        assert full.value.errno == errno.ENOSPC
        assert full.value.filename == "/dev/full"
        assert (tmp_path / "ok").read_bytes() == b"x" * 5000


# --------------------------------------------------------------------------------------------
# copy_file


@pytest.mark.parametrize("method", ["readwrite", "splice", "auto"])
@pytest.mark.parametrize("size", [0, 1, 4095, 4097, 100_000])
def test_copy_file(tmp_path: Path, method: Method, size: int) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = os.urandom(size)
    src.write_bytes(data)
    dst.write_bytes(b"previous contents, longer than some sources" * 10)
    progress = ProgressLog()
    n = copy_file(src, dst, method=method, chunk_size=4096, queue_depth=3, progress=progress)
    assert n == size
    assert dst.read_bytes() == data
    if size:
        assert progress.calls[-1] == (size, size)


def test_copy_file_on_a_ring(make_ring: MakeRing, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = os.urandom(50_000)
    src.write_bytes(data)
    ring = make_ring(8)
    assert copy_file(src, dst, ring=ring, chunk_size=4096, queue_depth=16) == 50_000
    assert dst.read_bytes() == data
    assert ring.in_flight == 0 and ring.pinned == 0


def test_copy_file_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"z" * 10_000)
    with pytest.raises(FileNotFoundError) as missing:
        copy_file(tmp_path / "nope", tmp_path / "dst")
    assert missing.value.filename == str(tmp_path / "nope")
    with pytest.raises(FileNotFoundError) as no_dir:
        copy_file(src, tmp_path / "no" / "dst")
    assert no_dir.value.filename == str(tmp_path / "no" / "dst")
    with pytest.raises(ValueError, match="method"):
        copy_file(src, tmp_path / "dst", method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue_depth"):
        copy_file(src, tmp_path / "dst", queue_depth=0)
    if os.path.exists("/dev/full"):
        cases: list[tuple[Method, set[int]]] = [
            ("readwrite", {errno.ENOSPC}),
            ("auto", {errno.ENOSPC}),  # not splice: /dev/full is no regular file
            ("splice", {errno.ENOSPC, errno.EINVAL}),  # devices may refuse splice
        ]
        for method, errnos in cases:
            with pytest.raises(OSError, match="/dev/full") as full:
                copy_file(src, "/dev/full", method=method, chunk_size=4096)
            assert full.value.errno in errnos
            assert full.value.filename == "/dev/full"


@pytest.mark.parametrize("splice", [False, True], ids=["readwrite", "splice"])
def test_copy_short_source_breaks_links(tmp_path: Path, splice: bool) -> None:
    """The copier believes the source is longer than it is: the read that hits the end is
    short, the kernel cancels its linked write, the copier writes what arrived, then finds
    the end (a read of 0) and stops there."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = os.urandom(10_000)
    src.write_bytes(data)
    src_fd = os.open(src, os.O_RDONLY)
    dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    pipes = [os.pipe() for _ in range(2)] if splice else []
    try:
        with IoUring(8) as ring:
            if splice and Op.SPLICE not in ring.probe():
                pytest.skip("kernel lacks SPLICE")
            copier = _Copier(ring, src_fd, dst_fd, "src", "dst", 25_000, 4096, 2, pipes, None)
            assert copier.run() == 10_000
            assert copier.end == 10_000
            assert ring.in_flight == 0 and ring.pinned == 0
    finally:
        for fd in (src_fd, dst_fd, *(fd for pair in pipes for fd in pair)):
            os.close(fd)
    assert dst.read_bytes() == data
