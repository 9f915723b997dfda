"""``python -m iouring``: what the running kernel's io_uring offers, and a demonstration.

The demonstration writes a file of random bytes, reads it back through the ring with many reads
in flight at once, and checks every byte against what was written.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

import iouring
from iouring import IoUring, Op, SetupFlags, SqeFlags, _bench_user
from iouring.helpers import aligned_empty

__all__ = ["main"]

# Setup configurations worth reporting, each probed by creating a small ring.
_SETUP_CONFIGS: list[tuple[str, dict[str, int]]] = [
    ("SQPOLL", {"flags": SetupFlags.SQPOLL}),
    ("NO_SQARRAY", {"flags": SetupFlags.NO_SQARRAY}),
    ("COOP_TASKRUN | TASKRUN_FLAG", {"flags": SetupFlags.COOP_TASKRUN | SetupFlags.TASKRUN_FLAG}),
    (
        "SINGLE_ISSUER | DEFER_TASKRUN",
        {"flags": SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN},
    ),
    ("CQSIZE (cq_entries=64)", {"cq_entries": 64}),
]


def _setup_supported(options: dict[str, int]) -> str:
    try:
        with IoUring(8, **options):
            return "yes"
    except OSError as error:
        return f"no ({errno.errorcode.get(error.errno or 0, error.errno)})"


def _flag_names(value: int, enum_type: type[iouring.Features]) -> list[str]:
    return [member.name or "" for member in enum_type if member & value]


def report(out: object = sys.stdout) -> None:
    """Prints the kernel's io_uring features, setup options and supported operations."""
    write = out.write  # type: ignore[attr-defined]
    write(f"iouring {iouring.__version__} on Linux {platform.release()} ({platform.machine()})\n")
    with IoUring(8) as ring:
        write(f"features: {', '.join(_flag_names(ring.features, iouring.Features))}\n")
        supported = ring.probe()
    write("setup options:\n")
    for name, options in _SETUP_CONFIGS:
        write(f"  {name:<32} {_setup_supported(options)}\n")
    missing = [op.name for op in Op if op not in supported]
    write(f"operations supported: {len(supported)} of the {len(Op)} that iouring knows\n")
    names = sorted(op.name or "" for op in supported)
    for start in range(0, len(names), 6):
        write("  " + " ".join(f"{name:<16}" for name in names[start : start + 6]).rstrip() + "\n")
    if missing:
        write(f"  not supported here: {', '.join(missing)}\n")


def demo(size: int, chunk: int, depth: int, rounds: int = 9, out: object = sys.stdout) -> None:
    """Writes `size` random bytes to a temporary file, reads them back through the ring and
    verifies every byte; then times the same jobs done the plain-Python way and with iouring,
    interleaved in rounds, like with like: a big file read into one array, and many small files
    read whole."""
    write = out.write  # type: ignore[attr-defined]
    expected = np.random.default_rng(2026).integers(0, 256, size, dtype=np.uint8)
    directory = tempfile.gettempdir()
    with tempfile.NamedTemporaryFile(prefix="iouring-demo-", dir=directory) as tmp:
        tmp.write(expected.tobytes())
        tmp.flush()
        fd = os.open(tmp.name, os.O_RDONLY)
        files = None
        reader = None
        try:
            # Pages touched before the first read: a read into a never-touched page cannot
            # complete inline (the kernel retries it from a worker thread), which would time
            # page faults rather than reads.
            target = aligned_empty(size)
            target.fill(0xFF)
            reader = _RingReads(fd, target, chunk, depth)
            reads = reader.run()
            if not np.array_equal(target, expected):
                bad = int(np.flatnonzero(target != expected)[0])
                raise SystemExit(f"demo FAILED: first wrong byte at offset {bad}")
            mib = size / (1 << 20)
            write(
                f"demo: read {mib:.0f} MiB through the ring in {reads} reads of "
                f"{chunk // 1024} KiB, {depth} in flight: every byte verified\n"
            )
            files = _bench_user.FileSet(directory, sync=False)
            jobs = _jobs(fd, target, chunk, reader, files)
            samples = _interleaved(jobs, rounds)
        finally:
            if reader is not None:
                reader.close()
            os.close(fd)
            if files is not None:
                files.remove()
    write(
        f"\nthe same job done both ways, in the same process (page-cached files, "
        f"{rounds} interleaved rounds):\n"
    )
    rows = [("job", "without iouring", "", "with iouring", "", "ratio", "rounds won")]
    for job in jobs:
        base, ring = samples[job.baseline], samples[job.contender]
        won = sum(r > b for r, b in zip(ring, base, strict=True))
        rows.append(
            (
                job.title,
                job.baseline,
                job.rate_text(statistics.median(base)),
                job.contender,
                job.rate_text(statistics.median(ring)),
                f"{statistics.median(ring) / statistics.median(base):.2f}x",
                f"{won}/{len(ring)}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.rjust(w) if i in (2, 4, 5, 6) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        write("  " + "  ".join(cells).rstrip() + "\n")
    write(
        "\nRates are medians of the rounds (in a round the two ways of a job take turns, "
        f"{_OPS_PER_ROUND} runs each,\nand a round's rate is its median run's); a ratio "
        "above 1.00x means iouring did the job faster,\nand 'rounds won' counts the rounds in "
        "which it was faster than the way without iouring.\nBoth sides of a row do the same work into the same "
        "kind of destination, each\nset up once outside the timing (the ring with the array "
        "and file registered, the loop with\nits file open). A page-cached read is mostly "
        "the kernel copying memory, so the big-file row is\nclose to a tie; io_uring pays "
        "off where many operations are in flight (many files, cold\ncaches, O_DIRECT, "
        "sockets). `python -m iouring bench` measures more.\n"
    )


@dataclass
class _Job:
    title: str
    baseline: str
    contender: str
    items: int  # items per run: rates are items per second
    unit: str
    scale: float  # rate_text divides by this
    runs: dict[str, Callable[[], None]] = field(default_factory=dict)  # way -> one run

    def rate_text(self, rate: float) -> str:
        value = rate / self.scale
        return f"{value:,.0f} {self.unit}" if value >= 100 else f"{value:.1f} {self.unit}"


_OPS_PER_ROUND = 3  # a round times each way of each job this many times, alternating


def _jobs(
    fd: int, target: np.ndarray, chunk: int, reader: _RingReads, files: _bench_user.FileSet
) -> list[_Job]:
    size = len(target)
    big = _Job(
        f"read {size >> 20} MiB into one array, {chunk >> 10} KiB reads",
        "os.preadv loop",
        reader.label,
        size,
        "MiB/s",
        1 << 20,
    )
    small = _Job(
        f"read {len(files.paths):,} files of 1-64 KiB whole",
        "open/read loop",
        "iouring.read_files",
        len(files.paths),
        "files/s",
        1,
    )
    view = target.data  # NumPy stubs declare no __buffer__ before Python 3.12

    def preadv_loop() -> None:
        preadv = os.preadv
        for offset in range(0, size, chunk):
            if preadv(fd, [view[offset : offset + chunk]], offset) != min(chunk, size - offset):
                raise SystemExit("demo FAILED: a short os.preadv")

    def ring_reads() -> None:
        reader.run()

    def plain_files() -> None:
        contents = [_bench_user._plain_read(p) for p in files.paths]  # kept, like read_files'
        files.check([len(data) for data in contents], "the plain loop")

    def ring_files() -> None:
        files.check([len(a) for a in iouring.read_files(files.paths)], "read_files")

    big.runs = {big.baseline: preadv_loop, big.contender: ring_reads}
    small.runs = {small.baseline: plain_files, small.contender: ring_files}
    return [big, small]


def _interleaved(jobs: list[_Job], rounds: int) -> dict[str, list[float]]:
    """Items per second of every way of doing every job in each of `rounds` rounds. In a
    round each job's ways alternate one run at a time (so the two sides of a comparison see the
    same load), which of them goes first alternating from round to round, until each has run
    _OPS_PER_ROUND times; a round's rate is its median run's (on a shared machine a run is now
    and then descheduled for many times its length, which would decide an average)."""
    for job in jobs:  # warm up: caches, code paths
        for run in job.runs.values():
            run()
    samples: dict[str, list[float]] = {name: [] for job in jobs for name in job.runs}
    for r in range(rounds):
        for job in jobs:
            ways = list(job.runs.items())
            if r % 2:
                ways.reverse()
            times: dict[str, list[float]] = {name: [] for name, _ in ways}
            for _ in range(_OPS_PER_ROUND):
                for name, run in ways:
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
            for name, _ in ways:
                samples[name].append(job.items / statistics.median(times[name]))
    return samples


class _RingReads:
    """The big-file job done through the ring, set up once and kept for every run (as a program
    that reads this way would): `target` and the file are registered with the ring, so each
    read is a READ_FIXED of a registered file, which skips mapping the destination's pages and
    taking a file reference per read (a `preadv` loop and plain READs pay both on every call).
    Where registering fails (RLIMIT_MEMLOCK on old kernels), plain `read_batch` reads.
    `depth` reads of `chunk` bytes are in flight: every submit_and_copy_cqes call frees slots
    that one batch call refills. A read's user_data is its index; every result is checked at
    the end of a run, at once."""

    def __init__(self, fd: int, target: np.ndarray, chunk: int, depth: int) -> None:
        size = len(target)
        self.fd, self.target, self.depth = fd, target, depth
        self.offsets = np.arange(0, size, chunk, dtype=np.uint64)
        self.lengths = np.minimum(np.uint64(size) - self.offsets, np.uint64(chunk)).astype(np.int32)
        self.index = np.arange(len(self.offsets), dtype=np.uint64)
        self.ring = IoUring(depth)
        self.out = np.empty(self.ring.cq_entries, dtype=iouring.CQE_DTYPE)
        self.fixed = True
        try:
            self.ring.register_buffers([target])
            self.ring.register_files([fd])
        except OSError:
            self.fixed = False
            with contextlib.suppress(OSError):
                self.ring.unregister_buffers()

    @property
    def label(self) -> str:
        kind = "read_fixed_batch" if self.fixed else "read_batch"
        return f"{kind}, {self.depth} in flight"

    def _issue(self, start: int, stop: int) -> int:
        span = slice(start, stop)
        if self.fixed:
            return self.ring.read_fixed_batch(
                self.index[span],
                0,
                0,
                self.offsets[span],
                self.lengths[span],
                self.offsets[span],
                sqe_flags=SqeFlags.FIXED_FILE,
            )
        return self.ring.read_batch(
            self.index[span],
            self.fd,
            self.target,
            self.offsets[span],
            self.lengths[span],
            self.offsets[span],
        )

    def run(self) -> int:
        """Reads the whole file into `target` once; returns the number of reads."""
        count = len(self.offsets)
        results = np.zeros(count, dtype=np.int32)
        out = self.out
        ud_column, res_column = out["user_data"], out["res"]
        submit_and_copy = self.ring.submit_and_copy_cqes
        issued = self._issue(0, min(self.depth, count))
        done = 0
        while done < count:
            n = submit_and_copy(out, 1)
            results[ud_column[:n]] = res_column[:n]
            done += n
            if issued < count:
                issued += self._issue(issued, min(issued + n, count))
        if not np.array_equal(results, self.lengths):
            bad = int(np.flatnonzero(results != self.lengths)[0])
            raise SystemExit(f"demo FAILED: read {bad} returned {results[bad]}")
        return count

    def close(self) -> None:
        self.ring.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iouring",
        description="Show what io_uring offers on this kernel and run a checked demonstration.",
    )
    parser.add_argument("--version", action="version", version=f"iouring {iouring.__version__}")
    parser.add_argument("--size", type=int, default=64 << 20, help="demo file size in bytes")
    parser.add_argument("--chunk", type=int, default=64 << 10, help="bytes per read")
    parser.add_argument("--depth", type=int, default=16, help="reads in flight (power of two)")
    parser.add_argument(
        "--rounds", type=int, default=9, help="interleaved rounds of the comparison"
    )
    commands = parser.add_subparsers(dest="command", metavar="{bench}")
    bench = commands.add_parser(
        "bench",
        help="benchmark iouring against C and plain Python (see --help)",
        description="Benchmarks iouring against a C reference and plain-Python baselines, "
        "interleaved in one process, and prints a table of ratios.",
    )
    from iouring import _bench

    _bench.add_arguments(bench)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench.run_from_args(args)
    if args.size <= 0 or args.chunk <= 0:
        parser.error("--size and --chunk must be positive")
    if args.depth <= 0 or args.depth & (args.depth - 1):
        parser.error("--depth must be a power of two")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    try:
        report()
    except PermissionError as error:
        print(f"io_uring is not available here: {error}", file=sys.stderr)
        return 1
    demo(args.size, args.chunk, args.depth, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
