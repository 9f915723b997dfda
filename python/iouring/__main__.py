"""``python -m iouring``: what the running kernel's io_uring offers, and a demonstration.

The demonstration writes a file of random bytes, reads it back through the ring with many reads
in flight at once, and checks every byte against what was written.
"""

from __future__ import annotations

import argparse
import errno
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

import iouring
from iouring import IoUring, Op, SetupFlags

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


def demo(size: int, chunk: int, depth: int, out: object = sys.stdout) -> None:
    """Writes `size` random bytes to a temporary file and reads them back through the ring.

    Keeps up to `depth` reads of `chunk` bytes in flight, matches completions by user_data,
    verifies the data and prints the throughput next to a plain os.pread loop.
    """
    write = out.write  # type: ignore[attr-defined]
    expected = np.random.default_rng(2026).integers(0, 256, size, dtype=np.uint8)
    with tempfile.NamedTemporaryFile(prefix="iouring-demo-") as tmp:
        tmp.write(expected.tobytes())
        tmp.flush()
        fd = os.open(tmp.name, os.O_RDONLY)
        try:
            # Touch every page first: a read into a never-touched page cannot complete inline
            # (the kernel retries it from a worker thread), which would measure page faults.
            got = np.full(size, 0xFF, dtype=np.uint8)
            start = time.perf_counter()
            reads = _read_through_ring(fd, got, chunk, depth)
            ring_seconds = time.perf_counter() - start
            if not np.array_equal(got, expected):
                bad = int(np.flatnonzero(got != expected)[0])
                raise SystemExit(f"demo FAILED: first wrong byte at offset {bad}")
            start = time.perf_counter()
            for offset in range(0, size, chunk):
                os.pread(fd, chunk, offset)
            pread_seconds = time.perf_counter() - start
        finally:
            os.close(fd)
    mib = size / (1 << 20)
    write(
        f"demo: read {mib:.0f} MiB in {reads} reads of {chunk // 1024} KiB, {depth} in flight: "
        f"data verified\n"
        f"  io_uring  {mib / ring_seconds:8.0f} MiB/s\n"
        f"  os.pread  {mib / pread_seconds:8.0f} MiB/s  (page-cached file, same process)\n"
    )


def _read_through_ring(fd: int, target: np.ndarray, chunk: int, depth: int) -> int:
    size = len(target)
    offsets = list(range(0, size, chunk))
    view = target.data  # memoryview(target); NumPy stubs declare no __buffer__ before 3.12
    completions = np.zeros(depth, dtype=iouring.CQE_DTYPE)
    next_index = 0
    pending = 0
    with IoUring(depth) as ring:
        while next_index < len(offsets) or pending:
            while next_index < len(offsets) and pending < depth:
                offset = offsets[next_index]
                ring.read(next_index, fd, view[offset : offset + chunk], offset)
                next_index += 1
                pending += 1
            ring.submit_and_wait(1)
            for cqe in ring.copy_cqes(completions):
                index = int(cqe["user_data"])
                expected = min(chunk, size - offsets[index])
                if cqe["res"] != expected:
                    raise SystemExit(f"demo FAILED: read {index} returned {cqe['res']}")
                pending -= 1
    return len(offsets)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iouring",
        description="Show what io_uring offers on this kernel and run a checked demonstration.",
    )
    parser.add_argument("--version", action="version", version=f"iouring {iouring.__version__}")
    parser.add_argument("--size", type=int, default=64 << 20, help="demo file size in bytes")
    parser.add_argument("--chunk", type=int, default=64 << 10, help="bytes per read")
    parser.add_argument("--depth", type=int, default=32, help="reads in flight (power of two)")
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
    try:
        report()
    except PermissionError as error:
        print(f"io_uring is not available here: {error}", file=sys.stderr)
        return 1
    demo(args.size, args.chunk, args.depth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
