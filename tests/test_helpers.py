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
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iouring import AT_FDCWD, STATX_DTYPE, IoUring, Op, SqeFlags, helpers
from iouring._core import statx_fds, statx_paths
from iouring.helpers import (
    PAGE,
    STAT_DTYPE,
    _Copier,
    aligned_empty,
    copy_file,
    copy_files,
    read_files,
    read_ranges,
    run_batches,
    set_memory_cache,
    stat_files,
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


# --------------------------------------------------------------------------------------------
# Leaks: every test below checks that no fd stays open and the ring is usable after errors


def _open_fds() -> set[str]:
    """The open fds other than rings (a test's rings and the helpers' per-thread ring)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the fd of the listing itself
        if "io_uring" not in target:
            fds.add(name)
    return fds


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    before = _open_fds()
    yield
    leaked = _open_fds() - before
    assert not leaked, f"fds left open: {leaked}"


def _idle(ring: IoUring) -> bool:
    return ring.in_flight == 0 and ring.pinned == 0 and ring.sq_ready() == 0


# --------------------------------------------------------------------------------------------
# run_batches


def test_run_batches_results_in_order(make_ring: MakeRing, tmp_path: Path) -> None:
    """Reads of different lengths through an 8-entry ring: results by operation number."""
    data = os.urandom(50_000)
    path = tmp_path / "data"
    path.write_bytes(data)
    ring = make_ring(8)
    n = 300
    lengths = np.arange(n, dtype=np.int64) % 97
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    offsets = (np.arange(n, dtype=np.int64) * 131) % 40_000
    buf = np.zeros(int(lengths.sum()), dtype=np.uint8)
    calls: list[tuple[int, int]] = []
    fd = os.open(path, os.O_RDONLY)
    try:

        def prepare(ops: npt.NDArray[np.uint64]) -> int:
            calls.append((int(ops[0]), len(ops)))
            s = slice(int(ops[0]), int(ops[0]) + len(ops))
            return ring.read_batch(ops, fd, buf, offsets[s], lengths[s], starts[s])

        res = run_batches(ring, prepare, n)
    finally:
        os.close(fd)
    assert res.dtype == np.int32 and res.tolist() == lengths.tolist()
    for i in range(n):
        got = buf[starts[i] : starts[i] + lengths[i]].tobytes()
        assert got == data[offsets[i] : offsets[i] + lengths[i]]
    # Contiguous runs that cover 0..n-1 exactly once, in order.
    assert [c[0] for c in calls] == np.cumsum([0] + [c[1] for c in calls[:-1]]).tolist()
    assert sum(c[1] for c in calls) == n
    assert _idle(ring)
    assert run_batches(ring, lambda ops: pytest.fail("prepare called"), 0).size == 0


def test_run_batches_reruns_and_depth(make_ring: MakeRing) -> None:
    """on_complete asks for every even operation once more; depth bounds what is in flight."""
    ring = make_ring(16)
    seen = np.zeros(100, dtype=np.int64)
    most = [0]

    def prepare(ops: npt.NDArray[np.uint64]) -> int:
        seen[ops.astype(np.intp)] += 1
        most[0] = max(most[0], ring.sq_ready() + len(ops))
        return ring.nop_batch(ops)

    def on_complete(ops: npt.NDArray[np.uint64], res: npt.NDArray[np.int32]) -> Any:
        assert (res == 0).all()
        first_time = ops[(ops % 2 == 0) & (seen[ops.astype(np.intp)] == 1)]
        return first_time

    out = np.full(100, -1, dtype=np.int32)
    res = run_batches(ring, prepare, 100, on_complete=on_complete, depth=5, out=out)
    assert res is out and (out == 0).all()
    assert seen.tolist() == [2 if i % 2 == 0 else 1 for i in range(100)]
    assert most[0] <= 5
    assert _idle(ring)


def test_run_batches_bad_arguments(make_ring: MakeRing) -> None:
    ring = make_ring(8)

    def nops(ops: npt.NDArray[np.uint64]) -> int:
        return ring.nop_batch(ops)

    with pytest.raises(TypeError, match="ring"):
        run_batches("ring", nops, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prepare"):
        run_batches(ring, 5, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_complete"):
        run_batches(ring, nops, 3, on_complete=7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n must be an int"):
        run_batches(ring, nops, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be >= 0"):
        run_batches(ring, nops, -1)
    with pytest.raises(ValueError, match="depth"):
        run_batches(ring, nops, 3, depth=0)
    with pytest.raises(ValueError, match="out"):
        run_batches(ring, nops, 3, out=np.zeros(4, dtype=np.int32))
    with pytest.raises(ValueError, match="out"):
        run_batches(ring, nops, 3, out=np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="prepare must return"):
        run_batches(ring, lambda ops: None, 3)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="prepare returned 9"):
        run_batches(ring, lambda ops: 9, 3)
    with pytest.raises(RuntimeError, match="prepared no operation"):
        run_batches(ring, lambda ops: 0, 3)
    with pytest.raises(RuntimeError, match="user_data"):
        run_batches(ring, lambda ops: ring.nop_batch(ops + 1000), 3)
    assert _idle(ring)
    ring.nop(1)
    with pytest.raises(ValueError, match="idle"):
        run_batches(ring, nops, 3)
    ring.submit_and_wait(1)
    ring.copy_cqes()
    assert run_batches(ring, nops, 3).tolist() == [0, 0, 0]  # still usable


def test_run_batches_exception_mid_run_leaves_ring_idle(make_ring: MakeRing) -> None:
    """prepare raises after operations went in flight (some of them slow timeouts): they are
    cancelled and reaped, the exception comes out, and the ring works afterwards."""
    ring = make_ring(8)
    calls = [0]

    def prepare(ops: npt.NDArray[np.uint64]) -> int:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyError("boom")
        return ring.nop_batch(ops[:2])

    with pytest.raises(KeyError, match="boom"):
        run_batches(ring, prepare, 10, depth=2)
    assert _idle(ring) and not ring.cq_ready()

    def complete(ops: npt.NDArray[np.uint64], res: npt.NDArray[np.int32]) -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run_batches(ring, lambda ops: ring.nop_batch(ops), 10, on_complete=complete)
    assert _idle(ring) and not ring.cq_ready()
    assert (run_batches(ring, lambda ops: ring.nop_batch(ops), 20) == 0).all()


# --------------------------------------------------------------------------------------------
# stat_files


def _check_against_os_stat(record: Any, st: os.stat_result) -> None:
    assert record["errno"] == 0
    assert record["size"] == st.st_size
    assert record["mode"] == st.st_mode
    assert record["nlink"] == st.st_nlink
    assert record["uid"] == st.st_uid and record["gid"] == st.st_gid
    assert record["ino"] == st.st_ino
    assert record["dev"] == st.st_dev
    assert record["blocks"] == st.st_blocks
    assert record["mtime_ns"] == st.st_mtime_ns
    assert record["ctime_ns"] == st.st_ctime_ns
    assert record["atime_ns"] == st.st_atime_ns


@pytest.mark.parametrize("method", ["direct", "ring"])
def test_stat_files_matches_os_stat(
    files: dict[Path, bytes], tmp_path: Path, method: Literal["direct", "ring"]
) -> None:
    link = tmp_path / "link"
    link.symlink_to(next(iter(files)))
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        paths: list[Any] = [*files, tmp_path, str(link), os.fsencode(link), fd]
        st = stat_files(paths, method=method)
        assert st.dtype == STAT_DTYPE and st.shape == (len(paths),)
        for record, path in zip(st, paths, strict=True):
            _check_against_os_stat(record, os.stat(path))
        lst = stat_files([link], follow_symlinks=False, method=method)
        _check_against_os_stat(lst[0], os.lstat(link))
    finally:
        os.close(fd)
    assert stat_files([]).shape == (0,)
    sizes = stat_files(list(files))["size"]
    assert sizes.tolist() == [len(d) for d in files.values()]


@pytest.mark.parametrize("method", ["direct", "ring"])
def test_stat_files_errors(
    make_ring: MakeRing, tmp_path: Path, no_fd_leak: None, method: Literal["direct", "ring"]
) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"abc")
    ring = make_ring(4)
    paths: list[Any] = [good] * 9 + [tmp_path / "missing1", good, tmp_path / "missing2"]
    with pytest.raises(FileNotFoundError) as missing:
        stat_files(paths, ring=ring, method=method)
    assert missing.value.filename == str(tmp_path / "missing1")
    st = stat_files(paths, errors="return", ring=ring, method=method)
    assert st["errno"].tolist() == [0] * 9 + [errno.ENOENT, 0, errno.ENOENT]
    assert st["size"].tolist() == [3] * 9 + [0, 3, 0]
    assert st[9]["mode"] == 0 and st[9]["mtime_ns"] == 0
    with pytest.raises(ValueError, match="errors"):
        stat_files(paths, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        stat_files(paths, method="fast")  # type: ignore[arg-type]
    # Bad entries are named by their index in the whole argument, past the first batch.
    with pytest.raises(TypeError, match=r"paths\[10\]"):
        stat_files([good] * 10 + [None], ring=ring, method=method)  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"paths\[6\]"):
        stat_files([good] * 6 + ["bad\0path"], ring=ring, method=method)
    with pytest.raises(ValueError, match=r"paths\[1\]"):
        stat_files([good, -3], ring=ring, method=method)
    assert _idle(ring)


def test_statx_fds(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1234)
    fd = os.open(path, os.O_RDONLY)
    try:
        out = np.zeros(3, dtype=STATX_DTYPE)
        res = statx_fds(np.array([fd, 2**31 - 1, fd]), out)
        assert res.tolist() == [0, -errno.EBADF, 0]
        assert out["stx_size"].tolist() == [1234, 0, 1234]
        with pytest.raises(ValueError, match="out holds 2"):
            statx_fds([fd, fd, fd], np.zeros(2, dtype=STATX_DTYPE))
        with pytest.raises(ValueError, match="out must be a writable"):
            statx_fds([fd], bytes(256))
        with pytest.raises(ValueError, match="fds must be a one-dimensional"):
            statx_fds([[fd]], out)
        with pytest.raises(TypeError, match="fds must hold integers"):
            statx_fds([1.5], out)
        with pytest.raises(TypeError, match="fds must be"):
            statx_fds("12", out)
        with pytest.raises(OverflowError, match=r"fds\[0\]"):
            statx_fds([-1], out)
        with pytest.raises(OverflowError, match="mask"):
            statx_fds([fd], out, mask=-1)
        res = statx_paths([AT_FDCWD, fd], [str(path), ""], [0, 0x1000], 0x7FF, out)
        assert res.tolist() == [0, 0] and out["stx_size"][:2].tolist() == [1234, 1234]
        strided = np.array([AT_FDCWD, 99, fd, 99], dtype=np.int32)[::2]  # read as a copy
        out[:] = 0
        res = statx_paths(strided, [path, ""], np.array([0, 7, 0x1000, 7])[::2], 0x7FF, out)
        assert res.tolist() == [0, 0] and out["stx_size"][:2].tolist() == [1234, 1234]
        with pytest.raises(TypeError, match=r"paths\[1\]"):
            statx_paths([AT_FDCWD] * 2, [path, 5], [0, 0], 0x7FF, out)  # type: ignore[list-item]
        with pytest.raises(ValueError, match="dir_fds"):
            statx_paths([AT_FDCWD], [path, path], [0, 0], 0x7FF, out)
        with pytest.raises(ValueError, match="out holds 3"):
            statx_paths([AT_FDCWD] * 4, [path] * 4, [0] * 4, 0x7FF, out)
        with pytest.raises(TypeError, match="paths must be a sequence"):
            statx_paths([AT_FDCWD], str(path), [0], 0x7FF, out)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# read_files: properties, errors, memory reuse


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(0, 40_000), min_size=0, max_size=40),
    chunk=st.sampled_from([1000, 4096, 1 << 20]),
    depth=st.sampled_from([1, 3, 64, None]),
    max_open=st.sampled_from([1, 5, 256]),
    seed=st.integers(0, 2**32 - 1),
)
def test_read_files_matches_plain_reads(
    tmp_path: Path,
    sizes: list[int],
    chunk: int,
    depth: int | None,
    max_open: int,
    seed: int,
) -> None:
    rng = random.Random(seed)
    directory = tmp_path / f"p{seed}"
    directory.mkdir(exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        path = directory / f"f{i}"
        path.write_bytes(rng.randbytes(size))
        paths.append(path)
    before = _open_fds()
    got = read_files(paths, chunk_size=chunk, queue_depth=depth, max_open=max_open)
    assert [a.tobytes() for a in got] == [p.read_bytes() for p in paths]
    for array in got:
        if array.size >= 16 * 1024:
            assert array.ctypes.data % PAGE == 0
    assert _open_fds() == before


def test_read_files_bad_input_names_the_path(
    files: dict[Path, bytes], tmp_path: Path, no_fd_leak: None, make_ring: MakeRing
) -> None:
    """A bad entry in a later group: named by its index in the whole list; the files of the
    groups before it were opened and are closed again."""
    paths: list[Any] = list(files)
    ring = make_ring(4)
    with pytest.raises(TypeError, match=r"paths\[10\]"):
        read_files([*paths, paths[0], paths[1], None], max_open=3, ring=ring)  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"paths\[8\]"):
        read_files([*paths, "a\0b"], max_open=4, ring=ring)
    with pytest.raises(ValueError, match=r"paths\[1\]"):
        read_files([paths[0], -5])
    with pytest.raises(FileNotFoundError):
        read_files([*paths, tmp_path / "missing", *paths], max_open=4, ring=ring)
    with pytest.raises(TypeError, match="progress"):
        read_files(paths, progress=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="chunk_size"):
        read_files(paths, chunk_size="big")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="ring"):
        read_files(paths, ring=object())  # type: ignore[call-overload]
    assert _idle(ring)
    assert read_files(paths, ring=ring, as_bytes=True) == list(files.values())


def test_read_files_results_are_never_shared(tmp_path: Path) -> None:
    """Blocks are reused only once no array refers to them: results kept from one call are
    intact after many more calls, and a block comes back once its arrays are gone."""
    a_paths = []
    b_paths = []
    for i in range(40):
        (tmp_path / f"a{i}").write_bytes(bytes([1]) * 60_000)
        (tmp_path / f"b{i}").write_bytes(bytes([2]) * 60_000)
        a_paths.append(tmp_path / f"a{i}")
        b_paths.append(tmp_path / f"b{i}")
    kept = read_files(a_paths)  # 2.4 MB: from the block cache
    address = kept[0].ctypes.data
    for _ in range(3):
        other = read_files(b_paths)
        assert all((x == 2).all() for x in other)
        assert all((x == 1).all() for x in kept)
        del other
    one = kept[5]
    del kept
    again = read_files(b_paths)
    assert (one == 1).all()  # a single view keeps its block
    del one, again
    reused = read_files(a_paths)
    assert reused[0].ctypes.data in {address} or all((x == 1).all() for x in reused)
    old = set_memory_cache(0)
    try:
        assert all((x == 1).all() for x in read_files(a_paths))
    finally:
        assert set_memory_cache(old) == 0
    with pytest.raises(ValueError, match="nbytes"):
        set_memory_cache(-1)
    with pytest.raises(TypeError, match="nbytes"):
        set_memory_cache(1.5)  # type: ignore[arg-type]


def test_read_files_shrunk_file_comes_back_shorter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that shrank after it was sized: the read that finds the end stops it there."""
    path = tmp_path / "f"
    path.write_bytes(b"0123456789" * 1000)
    real = helpers._statx_fds

    def larger(fds: Any, mask: int) -> Any:
        records, res = real(fds, mask)
        records["stx_size"] += 5000  # as if the file had been 5000 bytes longer
        return records, res

    monkeypatch.setattr(helpers, "_statx_fds", larger)
    got = read_files([path, path], chunk_size=4096, as_bytes=True)
    assert got == [path.read_bytes()] * 2


# --------------------------------------------------------------------------------------------
# read_ranges: properties, out=, bad input


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ranges=st.lists(st.tuples(st.integers(0, 25_000), st.integers(0, 9000)), max_size=60),
    chunk=st.sampled_from([512, 4096, 1 << 20]),
    depth=st.sampled_from([1, 4, None]),
)
def test_read_ranges_matches_pread(
    tmp_path: Path, ranges: list[tuple[int, int]], chunk: int, depth: int | None
) -> None:
    path = tmp_path / "data"
    if not path.exists():
        path.write_bytes(random.Random(1).randbytes(20_000))
    data = path.read_bytes()
    offsets = [o for o, _ in ranges]
    lengths = [n for _, n in ranges]
    got = read_ranges(path, offsets, lengths, chunk_size=chunk, queue_depth=depth, as_bytes=True)
    assert got == [data[o : o + n] for o, n in ranges]


def test_read_ranges_into_out(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    path = tmp_path / "data"
    path.write_bytes(data)
    out = np.zeros(3 * 4096 + 10, dtype=np.uint8)
    got = read_ranges(path, [0, 50_000, 99_000], 4096, out=out)
    assert [g.tobytes() for g in got] == [data[:4096], data[50_000:54_096], data[99_000:]]
    assert got[1].ctypes.data == out.ctypes.data + 4096  # views into out, packed
    assert out[: 2 * 4096 + 1000].tobytes() == data[:4096] + data[50_000:54_096] + data[99_000:]
    words = np.zeros(2048, dtype=np.uint32)  # any writable buffer
    read_ranges(path, [8], [8192], out=words)
    assert words.tobytes() == data[8:8200]
    with pytest.raises(ValueError, match="out holds 8"):
        read_ranges(path, [0, 1], 5, out=bytearray(8))
    with pytest.raises(ValueError, match="out must be writable"):
        read_ranges(path, [0], 5, out=bytes(10))
    with pytest.raises(TypeError, match="out must be a writable buffer"):
        read_ranges(path, [0], 5, out=12)  # type: ignore[call-overload]


def _registered_with_helper_ring(array: npt.NDArray[np.uint8]) -> bool:
    return any(owner is array.base for owner in helpers._RINGS.buffer_owners)


def test_read_ranges_registered_blocks_are_never_shared(tmp_path: Path) -> None:
    """Blocks registered with the helper ring (READ_FIXED reads) are reused like any other:
    only once every array made from them is gone, though the ring holds a reference."""
    data = np.random.default_rng(11).integers(0, 256, 8 << 20, dtype=np.uint8)
    path = tmp_path / "data"
    path.write_bytes(data.tobytes())
    size = 16 * 1024
    a = np.arange(256, dtype=np.int64) * size  # 4 MiB of ranges: a cached, registered block
    b = a[::-1] + (4 << 20)  # descending offsets: read in file order, returned in this order
    old = set_memory_cache(0)  # start from an empty cache
    set_memory_cache(old)
    try:
        kept = read_ranges(path, a, size)
        if helpers._RINGS.buffers_failed:
            pytest.skip("registering buffers is refused here (RLIMIT_MEMLOCK?)")
        assert _registered_with_helper_ring(kept[0])
        kept_at = kept[0].ctypes.data  # (a reference to the block would keep it in use)
        for _ in range(3):
            other = read_ranges(path, b, size)
            assert other[0].ctypes.data != kept_at
            for got, offset in zip(other, b.tolist(), strict=True):
                assert np.array_equal(got, data[offset : offset + size])
            del other
        one = kept[7]
        del kept
        again = read_ranges(path, b, size)
        assert again[0].ctypes.data != kept_at  # a single view keeps its block
        assert np.array_equal(one, data[7 * size : 8 * size])
        del one, again
        reused = read_ranges(path, a, size)
        assert reused[0].ctypes.data == kept_at  # and the block comes back once it is gone
        assert np.array_equal(np.concatenate(reused), data[: 256 * size])
        del reused
    finally:
        set_memory_cache(0)  # unregisters this thread's blocks
        assert helpers._RINGS.buffer_owners == []
        set_memory_cache(old)


def test_read_ranges_when_registering_fails_reads_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(4 << 20)
    path = tmp_path / "data"
    path.write_bytes(data)

    def refuse(ring: IoUring, slot: int, owner: Any) -> int:
        raise OSError(errno.ENOMEM, "no memory to pin")

    old = set_memory_cache(0)  # no block registered yet
    set_memory_cache(old)
    monkeypatch.setattr(helpers, "_register_block", refuse)
    try:
        for _ in range(2):
            got = read_ranges(path, np.arange(128) * 32768, 32768)
            assert b"".join(g.tobytes() for g in got) == data
            assert helpers._RINGS.buffers_failed
            assert not _registered_with_helper_ring(got[0])
    finally:
        monkeypatch.undo()
        helpers._forget_buffer_slots(helpers._RINGS)  # later calls may register again


def test_read_ranges_ring_of_the_caller_registers_nothing(
    tmp_path: Path, make_ring: MakeRing
) -> None:
    data = os.urandom(2 << 20)
    path = tmp_path / "data"
    path.write_bytes(data)
    ring = make_ring(64)
    got = read_ranges(path, np.arange(64) * 32768, 32768, ring=ring)
    assert b"".join(g.tobytes() for g in got) == data
    assert not _registered_with_helper_ring(got[0])
    assert _idle(ring)
    with pytest.raises(ValueError, match="no buffers are registered"):
        ring.read_fixed_batch(np.arange(1, dtype=np.uint64), 0, 0, 0, 1)


def test_read_ranges_in_a_forked_child(tmp_path: Path) -> None:
    """The child drops the parent's helper ring and its registered blocks, and reads anew."""
    data = os.urandom(4 << 20)
    path = tmp_path / "data"
    path.write_bytes(data)
    offsets = np.arange(128, dtype=np.int64) * 32768
    assert b"".join(g.tobytes() for g in read_ranges(path, offsets, 32768)) == data
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            got = read_ranges(path, offsets, 32768)
            code = 0 if b"".join(g.tobytes() for g in got) == data else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_read_ranges_in_any_order_come_back_in_the_order_given(tmp_path: Path) -> None:
    """Reads run in file order; the ranges come back as asked: descending, overlapping,
    repeated, empty, past the end, and longer than chunk_size."""
    data = os.urandom(300_000)
    path = tmp_path / "data"
    path.write_bytes(data)
    offsets = [250_000, 10, 250_000, 5, 0, 299_990, 400_000, 100_000, 7]
    lengths = [4096, 100, 4096, 0, 9, 50, 10, 150_000, 1]
    got = read_ranges(path, offsets, lengths, chunk_size=65536, as_bytes=True)
    assert got == [data[o : o + n] for o, n in zip(offsets, lengths, strict=True)]
    got = read_ranges(path, offsets[::-1], 3, as_bytes=True)
    assert got == [data[o : o + 3] for o in offsets[::-1]]


def test_helpers_from_many_threads_at_once(tmp_path: Path) -> None:
    """Each thread reads through a helper ring of its own (a SINGLE_ISSUER ring where the
    kernel has it, submitted to only by the thread that made it), with its own registered
    blocks; results are never mixed up between threads."""
    import threading

    data = os.urandom(4 << 20)
    path = tmp_path / "data"
    path.write_bytes(data)
    offsets = np.arange(128, dtype=np.int64) * 32768
    small = []
    for i in range(50):
        small.append(tmp_path / f"s{i}")
        small[-1].write_bytes(bytes([i]) * (1000 + 500 * i))
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            order = np.random.default_rng(seed).permutation(128)
            for _ in range(5):
                got = read_ranges(path, offsets[order], 32768)
                for k, part in zip(order.tolist(), got, strict=True):
                    assert part.tobytes() == data[k * 32768 : (k + 1) * 32768]
                files = read_files(small)
                assert [f.tobytes() for f in files] == [p.read_bytes() for p in small]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_read_ranges_bad_input(tmp_path: Path, no_fd_leak: None) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"x" * 100)
    with pytest.raises(TypeError, match="offsets must hold integers"):
        read_ranges(path, [0.5], [1])
    with pytest.raises(TypeError, match="lengths must hold integers"):
        read_ranges(path, [0], ["a"])
    with pytest.raises(ValueError, match="offsets must be one-dimensional"):
        read_ranges(path, [[0]], [1])
    with pytest.raises(ValueError, match="one length"):
        read_ranges(path, [0, 1, 2], [1, 2])
    with pytest.raises(ValueError, match="lengths must be >= 0"):
        read_ranges(path, [0], [-1])
    with pytest.raises(ValueError, match="offsets"):
        read_ranges(path, np.array([2**63], dtype=np.uint64), [1])
    with pytest.raises(ValueError, match="chunk_size"):
        read_ranges(path, [0], [1], chunk_size=0)
    with pytest.raises(IsADirectoryError) as directory:
        read_ranges(tmp_path, [0], [1])
    assert directory.value.filename == str(tmp_path)
    assert read_ranges(path, [], 5) == []


# --------------------------------------------------------------------------------------------
# write_files: gathered and large buffers, bad input


def test_write_files_small_and_large(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    sizes = [0, 10, 65_535, 65_536, 200_001, 3, 70_000]
    contents = {tmp_path / f"w{i}": rng.bytes(n) for i, n in enumerate(sizes)}
    progress = ProgressLog()
    write_files(contents, chunk_size=4096, queue_depth=5, max_open=3, progress=progress)
    for path, data in contents.items():
        assert path.read_bytes() == data
    assert progress.calls[-1] == (sum(sizes), sum(sizes))


def test_write_files_bad_input(tmp_path: Path, no_fd_leak: None) -> None:
    with pytest.raises(TypeError, match=r"files\[1\] must be a \(path, buffer\) pair"):
        write_files([(tmp_path / "a", b"1"), b"xyz"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"files\[0\]: the data"):
        write_files({tmp_path / "a": 5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"files\[0\]: the path"):
        write_files([(3, b"x")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="mode"):
        write_files({tmp_path / "a": b"x"}, mode=-1)
    with pytest.raises(ValueError, match=r"files\[4\]"):
        write_files([(tmp_path / f"ok{i}", b"x") for i in range(4)] + [("n\0ul", b"x")])
    with pytest.raises(IsADirectoryError) as directory:
        write_files({tmp_path / "b": b"x", tmp_path: b"y"}, max_open=1)
    assert directory.value.filename == str(tmp_path)
    assert (tmp_path / "b").read_bytes() == b"x"


def test_helpers_progress_that_raises(files: dict[Path, bytes], no_fd_leak: None) -> None:
    """An exception from the progress callback comes out of the helper once what is in
    flight has been reaped; the files are closed and the next call works."""

    def boom(done: int, total: int) -> None:
        raise KeyError("stop")

    with pytest.raises(KeyError, match="stop"):
        read_files(list(files), chunk_size=4096, progress=boom)
    with pytest.raises(KeyError, match="stop"):
        read_ranges(next(reversed(files)), [0, 10], 100, progress=boom)
    with pytest.raises(KeyError, match="stop"):
        write_files({p.with_suffix(".out"): d for p, d in files.items()}, progress=boom)
    assert read_files(list(files), as_bytes=True) == list(files.values())


# --------------------------------------------------------------------------------------------
# copy_files


def test_copy_files(tmp_path: Path, no_fd_leak: None) -> None:
    """Small files through the shared block, one of 4 MiB + 1 through copy_file's chains, empty
    files, destinations that existed (truncated), in groups of max_open // 2 pairs."""
    sizes = [0, 1, 4095, 4096, 4097, 100_000, 1, 0, 4 * 1024 * 1024 + 1, 70_000, 3]
    pairs = []
    datas = []
    for i, size in enumerate(sizes):
        src, dst = tmp_path / f"s{i}", tmp_path / f"d{i}"
        data = os.urandom(size)
        src.write_bytes(data)
        if i % 2:
            dst.write_bytes(b"older and longer contents" * 1000)
        pairs.append((src, dst))
        datas.append(data)
    progress = ProgressLog()
    got = copy_files(pairs, max_open=4, chunk_size=4096, progress=progress)
    assert got.dtype == np.int64
    assert got.tolist() == sizes
    assert [dst.read_bytes() for _, dst in pairs] == datas
    assert progress.calls[-1] == (sum(sizes), sum(sizes))
    again = copy_files({str(src): os.fsencode(dst) for src, dst in pairs[:3]})
    assert again.tolist() == sizes[:3]
    assert copy_files([]).tolist() == []


def test_copy_files_on_a_ring(make_ring: MakeRing, tmp_path: Path, no_fd_leak: None) -> None:
    pairs = []
    for i in range(30):
        (tmp_path / f"s{i}").write_bytes(bytes([i]) * (i * 1000))
        pairs.append((tmp_path / f"s{i}", tmp_path / f"d{i}"))
    ring = make_ring(4)
    assert copy_files(pairs, ring=ring, max_open=6).sum() == sum(i * 1000 for i in range(30))
    assert all((tmp_path / f"d{i}").read_bytes() == bytes([i]) * (i * 1000) for i in range(30))
    assert _idle(ring)


def test_copy_files_errors(tmp_path: Path, no_fd_leak: None, make_ring: MakeRing) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"z" * 10_000)
    ok = (src, tmp_path / "ok")
    with pytest.raises(FileNotFoundError) as missing:
        copy_files([ok, (tmp_path / "nope", tmp_path / "dst")])
    assert missing.value.filename == str(tmp_path / "nope")
    assert not (tmp_path / "dst").exists()  # no destination opened once a source failed
    with pytest.raises(FileNotFoundError) as no_dir:
        copy_files([ok, (src, tmp_path / "no" / "dst")])
    assert no_dir.value.filename == str(tmp_path / "no" / "dst")
    with pytest.raises(IsADirectoryError) as isdir:
        copy_files([(tmp_path, tmp_path / "dst")])
    assert isdir.value.filename == str(tmp_path)
    with pytest.raises(shutil.SameFileError):
        copy_files([ok, (src, src)])
    assert src.read_bytes() == b"z" * 10_000  # not truncated
    (tmp_path / "link").symlink_to(src)
    with pytest.raises(shutil.SameFileError):
        copy_files([(src, tmp_path / "link")])
    assert src.read_bytes() == b"z" * 10_000
    with pytest.raises(TypeError, match=r"pairs\[1\] must be a \(src, dst\) pair"):
        copy_files([ok, (src,)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"pairs\[0\]: dst must be"):
        copy_files([(src, None)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"pairs\[0\]: src must be"):
        copy_files([(3, tmp_path / "dst")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"pairs\[1\]"):
        copy_files([ok, ("a\0b", tmp_path / "dst")])
    with pytest.raises(ValueError, match="max_open"):
        copy_files([ok], max_open=0)
    with pytest.raises(ValueError, match="chunk_size"):
        copy_files([ok], chunk_size=0)
    with pytest.raises(TypeError, match="progress"):
        copy_files([ok], progress=3)  # type: ignore[arg-type]
    ring = make_ring(4)
    ring.nop(1)
    with pytest.raises(ValueError, match="idle"):
        copy_files([ok], ring=ring)
    ring.submit_and_wait(1)
    ring.copy_cqes()
    if os.path.exists("/dev/full"):
        with pytest.raises(OSError, match="/dev/full") as full:
            copy_files([ok, (src, "/dev/full")], chunk_size=4096)
        assert full.value.errno == errno.ENOSPC
        assert full.value.filename == "/dev/full"
    assert (tmp_path / "ok").read_bytes() == b"z" * 10_000


# --------------------------------------------------------------------------------------------
# read_files groups overlapped, run_batches after an exception


def test_read_files_overlapped_groups_fail_in_order(
    tmp_path: Path, no_fd_leak: None, make_ring: MakeRing
) -> None:
    """Groups of max_open // 2 files: the next group is opened while one is read. A missing
    file in a later group raises after the groups before it were read, and its group's
    opened files (and the next group's) are closed; a directory likewise."""
    paths = []
    for i in range(40):
        (tmp_path / f"f{i}").write_bytes(bytes([i]) * (i * 300 + 1))
        paths.append(tmp_path / f"f{i}")
    for max_open in (1, 2, 5, 8, 100):
        got = read_files(paths, max_open=max_open, as_bytes=True, chunk_size=1000)
        assert got == [p.read_bytes() for p in paths]
    broken: list[Path] = [*paths[:13], tmp_path / "missing", *paths[13:], tmp_path]
    with pytest.raises(FileNotFoundError) as missing:
        read_files(broken, max_open=8)
    assert missing.value.filename == str(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        read_files([*paths, tmp_path], max_open=8, ring=make_ring(4))


def test_run_batches_records_results_while_draining(tmp_path: Path, make_ring: MakeRing) -> None:
    """prepare raises while opens are still in flight (forced to worker threads): what the
    opens return while run_batches drains (an fd, or -ECANCELED for one the cancel caught)
    still lands in out, so the caller can close the fds."""
    for i in range(8):
        (tmp_path / f"f{i}").write_bytes(b"x")
    names = [str(tmp_path / f"f{i}") for i in range(8)]
    unset = 1 << 30
    out = np.full(9, unset, dtype=np.int32)
    ring2 = make_ring(16)

    def prepare2(ops: npt.NDArray[np.uint64]) -> int:
        if int(ops[0]) == 0:
            ring2.nop_batch(ops[:1])
            k = ring2.openat_batch(
                ops[1:8], AT_FDCWD, names[:7], os.O_RDONLY, sqe_flags=SqeFlags.ASYNC
            )
            return 1 + k
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_batches(ring2, prepare2, 9, depth=16, out=out)
    assert _idle(ring2)
    fds = out[1:8]
    try:
        assert ((fds != unset) & ((fds >= 0) | (fds == -errno.ECANCELED))).all(), out
    finally:
        for fd in fds[(fds >= 0) & (fds != unset)].tolist():
            os.close(fd)
