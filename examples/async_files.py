"""Files with asyncio on io_uring: many tasks sharing one ring, then the same work in batches.

    python examples/async_files.py [DIR] [--files N] [--size BYTES]

1. N tasks each create a file, write it and close it (``await ring.open/write/close_fd``).
2. N tasks each stat a file and read it back (``await ring.statx/read_bytes``), then the
   same with the whole-file helpers (``await ring.write_file/read_file``).
3. The same reads as three batch awaits: ``openat_batch``, ``read_batch`` into one NumPy
   array, ``close_batch``; each resolves to a NumPy array of completions.
4. ``asyncio.timeout`` around a read that never completes: the task is cancelled and so is
   the read in the kernel.

It runs on ``iouring.aio.IoUringEventLoop`` (``iouring.aio.run``), whose wait is the ring:
all tasks share the loop's ring, and operations prepared in the same loop iteration are
submitted and waited for together. Without DIR a temporary directory is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import iouring.aio
from iouring.aio import AsyncRing, raise_for_errors


def contents(i: int, size: int) -> bytes:
    """What file ``i`` holds: its number, repeated."""
    unit = f"file {i:06d}\n".encode()
    return (unit * (size // len(unit) + 1))[:size]


async def write_one(ring: AsyncRing, path: Path, data: bytes) -> None:
    fd = await ring.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        offset = 0
        while offset < len(data):  # a write may be short: continue where it stopped
            offset += await ring.write(fd, view[offset:], offset)
    finally:
        await ring.close_fd(fd)


async def read_one(ring: AsyncRing, path: Path) -> bytes:
    size = (await ring.statx(path)).st_size
    fd = await ring.open(path)
    try:
        return await ring.read_bytes(fd, size, 0)
    finally:
        await ring.close_fd(fd)


async def run(directory: Path, count: int, size: int) -> None:
    paths = [directory / f"async_{i:06d}.txt" for i in range(count)]
    expected = [contents(i, size) for i in range(count)]
    async with AsyncRing() as ring:  # the loop's ring
        start = time.perf_counter()
        await asyncio.gather(*(write_one(ring, p, d) for p, d in zip(paths, expected, strict=True)))
        print(f"wrote {count} files with {count} tasks in {time.perf_counter() - start:.3f} s")

        start = time.perf_counter()
        got = await asyncio.gather(*(read_one(ring, p) for p in paths))
        assert got == expected, "a file read back differs"
        print(f"read {count} files with {count} tasks in {time.perf_counter() - start:.3f} s")

        start = time.perf_counter()
        copies = [p.with_suffix(".copy") for p in paths]
        await asyncio.gather(*(ring.write_file(c, d) for c, d in zip(copies, got, strict=True)))
        assert await asyncio.gather(*(ring.read_file(c) for c in copies)) == expected
        for copy in copies:
            copy.unlink()
        elapsed = time.perf_counter() - start
        print(f"wrote and read {count} copies with write_file/read_file in {elapsed:.3f} s")

        start = time.perf_counter()
        opened = await ring.openat_batch(paths)
        raise_for_errors(opened, "open")
        fds = opened["res"]
        buffer = np.empty(count * size, dtype=np.uint8)
        reads = await ring.read_batch(fds, buffer, 0, size)  # file i -> buffer[i*size:]
        raise_for_errors(reads, "read")
        raise_for_errors(await ring.close_batch(fds), "close")
        assert (reads["res"] == size).all(), "short reads"
        assert buffer.tobytes() == b"".join(expected), "batch contents differ"
        print(f"read {count} files in 3 batch awaits in {time.perf_counter() - start:.3f} s")

        read_end, write_end = os.pipe()
        try:
            start = time.perf_counter()
            try:
                async with asyncio.timeout(0.05):
                    await ring.read(read_end, bytearray(16))  # nobody ever writes
            except TimeoutError:
                waited = time.perf_counter() - start
                print(f"a read of an idle pipe timed out after {waited:.3f} s and was cancelled")
        finally:
            os.close(read_end)
            os.close(write_end)
    print("ok")


def main(argv: list[str]) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description="asyncio file I/O on io_uring")
    parser.add_argument("directory", nargs="?", help="where to write (default: a temp dir)")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args(argv)
    if args.files < 1 or args.size < 1:
        parser.error("--files and --size must be positive")
    if args.directory:
        iouring.aio.run(run(Path(args.directory), args.files, args.size))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            iouring.aio.run(run(Path(tmp), args.files, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
