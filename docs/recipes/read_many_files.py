"""Read many whole files into one NumPy array with batch reads: one Python call per batch."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from iouring import IoUring


def read_files(ring: IoUring, paths: list[Path]) -> list[np.ndarray]:
    """The contents of each file, as views of one array (each file must be < 4 GiB)."""
    fds = [os.open(path, os.O_RDONLY | os.O_CLOEXEC) for path in paths]
    try:
        sizes = np.array([os.fstat(fd).st_size for fd in fds], dtype=np.int64)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        data = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
        done = 0
        while done < len(fds):
            # Operation i reads file done+i at offset 0 into data[starts[i]:][:sizes[i]]; its
            # user_data is done+i. The batch takes as many SQEs as the ring has free.
            n = ring.read_batch(done, fds[done:], data, 0, sizes[done:], starts[done:])
            ring.submit()
            cqes = ring.copy_cqes(wait_nr=n)  # waits for all n, in completion order
            index = cqes["user_data"].astype(np.int64)
            short = cqes["res"] != sizes[index]
            if short.any():
                i = int(index[short][0])
                raise OSError(f"{paths[i]}: read returned {int(cqes['res'][short][0])}")
            done += n
        return np.split(data, ends[:-1])
    finally:
        for fd in fds:
            os.close(fd)


with tempfile.TemporaryDirectory() as tmp:
    paths = []
    for i in range(100):
        path = Path(tmp) / f"file{i}.bin"
        path.write_bytes(bytes([i]) * (i * 100))
        paths.append(path)
    with IoUring(32) as ring:  # fewer SQEs than files: read_files loops
        contents = read_files(ring, paths)
    assert all(c.tobytes() == p.read_bytes() for c, p in zip(contents, paths, strict=True))

print(f"read_many_files: {len(contents)} files, {sum(c.size for c in contents)} bytes: ok")
