"""cp on io_uring with linked operations: each chunk is a read linked to the write of its data.

    python examples/cp.py [-v] [--chunk BYTES] [--depth N] SRC DST

``SqeFlags.IO_LINK`` on a read makes the kernel start the following write only once the read
has completed, and in full: one submission moves a chunk from SRC to DST with no round trip
through Python in between. ``--depth`` chains are in flight at once. When a read comes back
short (the file ended, or a signal), the kernel cancels its linked write (``-ECANCELED``); the
program then writes what did arrive and reads the rest. A short write is continued as well.

``iouring.copy_file`` does the same with NumPy-built SQE batches and can splice instead.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time

from iouring import IoUring, SqeFlags


class Chunk:
    """One chunk of the file and the buffer it passes through."""

    def __init__(self, size: int) -> None:
        self.buffer = memoryview(bytearray(size))
        self.offset = 0  # where the chunk starts in both files
        self.length = 0  # its length (0: the slot is idle)
        self.nread = 0  # bytes of it read into the buffer so far
        self.nwritten = 0  # bytes of it written out so far
        self.waiting = 0  # completions still expected for the step in flight
        self.read_res: int | None = None
        self.write_res: int | None = None


def copy(src: int, dst: int, size: int, chunk_size: int, depth: int) -> int:
    """Copies ``size`` bytes from ``src`` to ``dst``; returns the bytes copied (fewer if the
    source turned out shorter). Raises OSError(errno, strerror, "SRC"/"DST")."""
    chunks = [Chunk(chunk_size) for _ in range(depth)]
    next_offset = 0
    end = size
    copied = 0

    def assign(chunk: Chunk) -> None:
        nonlocal next_offset
        chunk.offset = next_offset
        chunk.length = max(0, min(chunk_size, end - next_offset))
        chunk.nread = chunk.nwritten = 0
        next_offset += chunk.length

    def start_step(ring: IoUring, index: int) -> None:
        """Queues the next step of chunk ``index``: a linked read -> write, or a lone write of
        data that is already in the buffer. user_data: index * 2 (+1 for the write)."""
        chunk = chunks[index]
        pending = chunk.nread - chunk.nwritten
        if pending:
            data = chunk.buffer[chunk.nwritten : chunk.nread]
            ring.write(2 * index + 1, dst, data, chunk.offset + chunk.nwritten)
            chunk.waiting = 1
            return
        rest = chunk.buffer[chunk.nread : chunk.length]
        read = ring.read(2 * index, src, rest, chunk.offset + chunk.nread)
        read.flags = SqeFlags.IO_LINK  # the write below runs only after a complete read
        ring.write(2 * index + 1, dst, rest, chunk.offset + chunk.nread)
        chunk.waiting = 2

    entries = 1 << (2 * depth - 1).bit_length()  # a power of two with room for every chain
    with IoUring(entries) as ring:
        for index, chunk in enumerate(chunks):
            assign(chunk)
            if chunk.length:
                start_step(ring, index)
        while ring.sq_ready() or ring.in_flight:
            ring.submit_and_wait(1)
            for user_data, res, _flags in ring.copy_cqes().tolist():
                index, is_write = divmod(user_data, 2)
                chunk = chunks[index]
                if is_write:
                    chunk.write_res = res
                else:
                    chunk.read_res = res
                chunk.waiting -= 1
                if chunk.waiting:
                    continue  # the other half of the chain is still running
                r, w = chunk.read_res, chunk.write_res
                chunk.read_res = chunk.write_res = None
                if r is not None:
                    if r < 0 and r != -errno.EINTR:
                        raise OSError(-r, os.strerror(-r), "SRC")
                    if r == 0:  # the source ended early: stop this chunk (and later ones)
                        chunk.length = chunk.nread
                        end = min(end, chunk.offset + chunk.nread)
                    chunk.nread += max(r, 0)
                if w is not None and not (w == -errno.ECANCELED and r is not None):
                    if w < 0 and w != -errno.EINTR:
                        raise OSError(-w, os.strerror(-w), "DST")
                    chunk.nwritten += max(w, 0)
                    copied += max(w, 0)
                if chunk.nwritten >= chunk.length:
                    assign(chunk)  # this chunk is done: take the next one
                if chunk.length:
                    start_step(ring, index)
    return copied


def main(argv: list[str]) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description="Copy a file with linked io_uring reads/writes.")
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--chunk", type=int, default=1 << 20, help="bytes per chunk")
    parser.add_argument("--depth", type=int, default=8, help="chains in flight")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.chunk < 1 or args.depth < 1:
        parser.error("--chunk and --depth must be positive")
    start = time.perf_counter()
    try:
        src = os.open(args.src, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        print(f"cp.py: {args.src}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        try:
            dst = os.open(args.dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            print(f"cp.py: {args.dst}: {exc.strerror}", file=sys.stderr)
            return 1
        try:
            copied = copy(src, dst, os.fstat(src).st_size, args.chunk, args.depth)
        except OSError as exc:
            name = args.src if exc.filename == "SRC" else args.dst
            print(f"cp.py: {name}: {exc.strerror}", file=sys.stderr)
            return 1
        finally:
            os.close(dst)
    finally:
        os.close(src)
    if args.verbose:
        seconds = time.perf_counter() - start
        print(f"{copied} bytes in {seconds:.3f} s ({copied / max(seconds, 1e-9) / 1e6:.1f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
