"""Read many whole files into one NumPy array: open, read and close as batches with
``run_batches``, which keeps the ring full and hands back every result in operation order
(``iouring.read_files`` does the same, with short reads, errors by file name and memory reuse)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from iouring import AT_FDCWD, IoUring, run_batches, stat_files


def read_files(ring: IoUring, paths: list[Path]) -> list[np.ndarray]:
    """The contents of each file, as views of one array (each file must be < 4 GiB)."""

    def run(ops: np.ndarray) -> slice:  # the operations of a batch are a contiguous run
        return slice(int(ops[0]), int(ops[0]) + len(ops))

    # Operation i opens paths[i]; its result is the new fd (or -errno).
    fds = run_batches(
        ring,
        lambda ops: ring.openat_batch(ops, AT_FDCWD, paths[run(ops)], os.O_RDONLY | os.O_CLOEXEC),
        len(paths),
    )
    try:
        if (fds < 0).any():
            i = int(np.flatnonzero(fds < 0)[0])
            raise OSError(-int(fds[i]), os.strerror(-int(fds[i])), str(paths[i]))
        sizes = stat_files(fds.tolist(), ring=ring)["size"]  # statx of each open fd
        ends = np.cumsum(sizes)
        starts = ends - sizes
        data = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
        # Operation i reads file i at offset 0 into data[starts[i]:][:sizes[i]].
        got = run_batches(
            ring,
            lambda ops: ring.read_batch(
                ops, fds[run(ops)], data, 0, sizes[run(ops)], starts[run(ops)]
            ),
            len(paths),
        )
        if (got != sizes).any():
            i = int(np.flatnonzero(got != sizes)[0])
            raise OSError(f"{paths[i]}: read returned {int(got[i])}")
        return np.split(data, ends[:-1])
    finally:
        opened = fds[fds >= 0]
        run_batches(ring, lambda ops: ring.close_batch(ops, opened[run(ops)]), len(opened))


with tempfile.TemporaryDirectory() as tmp:
    paths = []
    for i in range(100):
        path = Path(tmp) / f"file{i}.bin"
        path.write_bytes(bytes([i]) * (i * 100))
        paths.append(path)
    with IoUring(32) as ring:  # fewer SQEs than files: run_batches refills as completions come
        contents = read_files(ring, paths)
    assert all(c.tobytes() == p.read_bytes() for c, p in zip(contents, paths, strict=True))

print(f"read_many_files: {len(contents)} files, {sum(c.size for c in contents)} bytes: ok")
