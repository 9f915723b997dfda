"""cat on io_uring: print files to stdout, reading each with several reads in flight.

    python examples/cat.py FILE...        # "-" reads standard input

Each read's ``user_data`` is the index of the chunk it fills; completions arrive in any order
and chunks are printed in file order, with writes through the same ring. A short read is
continued where it stopped; a read of 0 bytes is the end of the file. Pipes and terminals
(which have no offsets) get one read at a time, printed as soon as it arrives.
"""

from __future__ import annotations

import os
import sys

from iouring import IoUring

QUEUE_DEPTH = 8
CHUNK_SIZE = 64 * 1024
WRITE = 1 << 32  # user_data of the writes to stdout; reads carry their chunk index


class Chunk:
    """One buffer of the file: where it starts and how much of it is filled."""

    def __init__(self) -> None:
        self.data = bytearray(CHUNK_SIZE)
        self.view = memoryview(self.data)
        self.offset = 0
        self.filled = 0
        self.eof = False
        self.in_flight = False


class Cat:
    """Copies one file descriptor to another through a ring."""

    def __init__(self, ring: IoUring, fd: int, out: int) -> None:
        self.ring, self.fd, self.out = ring, fd, out
        self.stream = not seekable(fd)
        self.chunks = [Chunk() for _ in range(1 if self.stream else QUEUE_DEPTH)]
        self.next_offset = 0  # where the next fresh chunk starts in the file
        self.printed = 0  # how many chunks were printed (the next one is printed % depth)
        self.eof = False
        self.write_result: int | None = None

    def run(self) -> None:
        """Reads and prints the whole file. Raises OSError for a failed read or write."""
        for index in range(len(self.chunks)):
            self.start_chunk(index)
        while not self.eof or any(c.in_flight for c in self.chunks):
            self.wait()
            self.print_ready()

    def start_chunk(self, index: int) -> None:
        chunk = self.chunks[index]
        chunk.offset, chunk.filled, chunk.eof = self.next_offset, 0, False
        self.next_offset += CHUNK_SIZE
        self.queue_read(index)

    def queue_read(self, index: int) -> None:
        """Reads into the unfilled rest of chunk ``index``."""
        chunk = self.chunks[index]
        offset = -1 if self.stream else chunk.offset + chunk.filled
        self.ring.read(index, self.fd, chunk.view[chunk.filled :], offset)
        chunk.in_flight = True

    def wait(self) -> None:
        """Submits what is queued, waits for at least one completion and handles them all."""
        self.ring.submit_and_wait(1)
        for user_data, res, _flags in self.ring.copy_cqes().tolist():
            if res < 0:
                raise OSError(-res, os.strerror(-res))
            if user_data == WRITE:
                self.write_result = res
                continue
            chunk = self.chunks[user_data]
            chunk.in_flight = False
            chunk.filled += res
            if res == 0:
                chunk.eof = True
            elif chunk.filled < CHUNK_SIZE and not self.stream:
                self.queue_read(user_data)  # a short read: continue where it stopped

    def print_ready(self) -> None:
        """Prints the chunks that are complete, in file order, and reuses their buffers."""
        while not self.eof:
            index = self.printed % len(self.chunks)
            chunk = self.chunks[index]
            complete = chunk.eof or chunk.filled == CHUNK_SIZE or (self.stream and chunk.filled)
            if chunk.in_flight or not complete:
                return
            self.write_all(chunk.view[: chunk.filled])
            self.printed += 1
            if chunk.eof:
                self.eof = True
            else:
                self.start_chunk(index)

    def write_all(self, data: memoryview) -> None:
        """Writes ``data`` to the output (offset -1: its current position), continuing after
        short writes, while the reads in flight keep completing."""
        while data:
            self.ring.write(WRITE, self.out, data, -1)
            data = data[self.wait_for_write() :]

    def wait_for_write(self) -> int:
        """Handles completions until the write's arrives; returns its byte count."""
        while True:
            self.wait()
            result, self.write_result = self.write_result, None
            if result is not None:
                return result


def seekable(fd: int) -> bool:
    """Whether reads of ``fd`` can name an offset (regular files yes, pipes no)."""
    try:
        os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    """Prints every file named in ``argv``; returns the exit status."""
    status = 0
    out = sys.stdout.fileno()
    with IoUring(QUEUE_DEPTH * 2) as ring:
        for name in argv or ["-"]:
            fd = sys.stdin.fileno() if name == "-" else -1
            try:
                if fd < 0:
                    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
                Cat(ring, fd, out).run()
            except OSError as exc:
                print(f"cat.py: {name}: {exc.strerror}", file=sys.stderr)
                status = 1
                # Let the operations still in flight finish before the ring is reused.
                while ring.in_flight:
                    ring.submit_and_wait(1)
                    ring.copy_cqes()
            finally:
                if name != "-" and fd >= 0:
                    os.close(fd)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
