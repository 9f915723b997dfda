"""NumPy analysis of completion batches: latency percentiles, errors by errno, throughput.

    python examples/completion_stats.py [FILE] [--ops N] [--depth D] [--block B]
                                        [--errors FRACTION] [--png PLOT.png]

Runs random reads of FILE (default: a temporary 64 MiB file) through one ring, ``--depth``
at a time, prepared with ``read_batch`` from NumPy arrays. Each operation's ``user_data`` is
its submission time in nanoseconds (``time.monotonic_ns()``), so a completion's latency is
simply ``reap_time - cqe["user_data"]``: no table of operations in flight is needed.
``--errors`` sends that fraction of the reads to a bad file descriptor so the error report
has something to show. Every completion batch is analysed with vectorised NumPy:

- latency percentiles (p50, p90, p99, p99.9, max),
- errors counted by errno (``-res`` of the failed completions),
- bytes per second (sum of the positive ``res``).

With ``--png`` and matplotlib installed, a latency histogram and a throughput timeline are
saved to that file; without matplotlib the plot is skipped with a message.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from iouring import CQE_DTYPE, IoUring, SetupFlags

BAD_FD = 1_000_000  # not an open descriptor: reads sent there complete with -EBADF


@dataclass
class Recorder:
    """Collects what every completion batch says."""

    latency_ns: list[npt.NDArray[np.int64]] = field(default_factory=list)
    res: list[npt.NDArray[np.int32]] = field(default_factory=list)
    reaped_at_ns: list[npt.NDArray[np.int64]] = field(default_factory=list)

    def add(self, cqes: npt.NDArray[np.void], now_ns: int) -> None:
        """Records one batch of completions reaped at ``now_ns``."""
        self.latency_ns.append(now_ns - cqes["user_data"].astype(np.int64))
        self.res.append(cqes["res"].copy())
        self.reaped_at_ns.append(np.full(len(cqes), now_ns, dtype=np.int64))


@dataclass
class Report:
    """The analysis of all completions."""

    operations: int
    seconds: float
    percentiles_us: dict[str, float]
    errors: dict[str, int]
    bytes_total: int

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_total / self.seconds if self.seconds else 0.0


def analyse(rec: Recorder, seconds: float) -> Report:
    """Latency percentiles, errors by errno and bytes transferred, all vectorised."""
    latency_us = np.concatenate(rec.latency_ns) / 1e3
    res = np.concatenate(rec.res)
    points = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9, "max": 100.0}
    values = np.percentile(latency_us, list(points.values()))
    codes, counts = np.unique(-res[res < 0], return_counts=True)
    errors = {
        errno.errorcode.get(int(code), str(int(code))): int(count)
        for code, count in zip(codes, counts, strict=True)
    }
    return Report(
        operations=len(res),
        seconds=seconds,
        percentiles_us=dict(zip(points, values.tolist(), strict=True)),
        errors=errors,
        bytes_total=int(res[res > 0].sum(dtype=np.int64)),
    )


def run(
    path: str, ops: int, depth: int, block: int, error_fraction: float, seed: int
) -> tuple[Recorder, float]:
    """Random reads of ``path``; returns the recorded completions and the elapsed time."""
    rng = np.random.default_rng(seed)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        blocks = max(1, os.fstat(fd).st_size // block)
        offsets = rng.integers(0, blocks, ops, dtype=np.int64) * block
        fds = np.where(rng.random(ops) < error_fraction, BAD_FD, fd).astype(np.int32)
        buffer = bytearray(depth * block)  # the reads land here; nobody looks at them
        slots = np.arange(depth, dtype=np.uint64) * np.uint64(block)
        free = list(range(depth))  # buffer slots not in use by a read in flight
        rec = Recorder()
        out = np.empty(depth * 2, dtype=CQE_DTYPE)
        ring_entries = 1 << (depth - 1).bit_length()
        flags = int(SetupFlags.CQSIZE)
        with IoUring(ring_entries, cq_entries=ring_entries * 2, flags=flags) as ring:
            start = time.monotonic_ns()
            submitted = reaped = 0
            next_stamp = 0  # timestamps stay unique even if the clock has not moved
            busy: dict[int, int] = {}  # submission timestamp -> slot (timestamps are unique)
            while reaped < ops:
                n = min(len(free), ops - submitted, ring.sq_space_left())
                if n:
                    now = max(time.monotonic_ns(), next_stamp)
                    next_stamp = now + n
                    use = [free.pop() for _ in range(n)]
                    # user_data i = now + i: the submission time, unique per operation.
                    ring.read_batch(
                        now,
                        fds[submitted : submitted + n],
                        buffer,
                        offsets[submitted : submitted + n],
                        block,
                        slots[use],
                    )
                    for i, slot in enumerate(use):
                        busy[now + i] = slot
                    submitted += n
                ring.submit_and_wait(1)
                cqes = ring.copy_cqes(out)
                rec.add(cqes, time.monotonic_ns())
                for user_data in cqes["user_data"].tolist():
                    free.append(busy.pop(user_data))
                reaped += len(cqes)
            seconds = (time.monotonic_ns() - start) / 1e9
    finally:
        os.close(fd)
    return rec, seconds


def plot(rec: Recorder, report: Report, png: str) -> bool:
    """Saves a latency histogram and a throughput timeline to ``png``; False without
    matplotlib."""
    try:
        # Imported by name: matplotlib is optional, and this keeps type checkers calm
        # whether it is installed or not.
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt: Any = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return False
    latency_us = np.concatenate(rec.latency_ns) / 1e3
    reaped_s = np.concatenate(rec.reaped_at_ns)
    reaped_s = (reaped_s - reaped_s.min()) / 1e9
    res = np.concatenate(rec.res)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.logspace(np.log10(max(latency_us.min(), 0.1)), np.log10(latency_us.max() + 1), 60)
    left.hist(latency_us, bins=bins)
    left.set_xscale("log")
    left.set_xlabel("latency (us)")
    left.set_ylabel("completions")
    for name, color in (("p50", "tab:green"), ("p99", "tab:red")):
        left.axvline(report.percentiles_us[name], color=color, linestyle="--", label=name)
    left.legend()
    edges = np.linspace(0, max(reaped_s.max(), 1e-3), 51)
    moved, _ = np.histogram(reaped_s, bins=edges, weights=np.maximum(res, 0))
    right.plot(edges[:-1], moved / np.diff(edges) / 1e6)
    right.set_xlabel("time (s)")
    right.set_ylabel("MB/s")
    fig.suptitle(f"{report.operations} reads, {report.bytes_per_second / 1e6:.1f} MB/s")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return True


def main(argv: list[str]) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description="latency and error statistics of completions")
    parser.add_argument("file", nargs="?", help="file to read (default: a temporary one)")
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--block", type=int, default=4096)
    parser.add_argument("--errors", type=float, default=0.01, help="fraction sent to a bad fd")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--png", help="save a plot here (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.ops < 1 or args.depth < 1 or args.block < 1 or not 0 <= args.errors <= 1:
        parser.error("--ops, --depth and --block must be positive, --errors in 0..1")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = os.path.join(tmp, "data.bin")
            with open(path, "wb") as f:
                f.write(np.random.default_rng(0).bytes(64 << 20))
        rec, seconds = run(path, args.ops, args.depth, args.block, args.errors, args.seed)
    report = analyse(rec, seconds)
    print(
        f"{report.operations} reads of {args.block} bytes, queue depth {args.depth}, "
        f"{seconds:.3f} s, {report.operations / seconds:,.0f} ops/s"
    )
    print("latency (us): " + ", ".join(f"{k} {v:.1f}" for k, v in report.percentiles_us.items()))
    errors = ", ".join(f"{name}: {count}" for name, count in report.errors.items()) or "none"
    print(f"errors by errno: {errors}")
    print(f"throughput: {report.bytes_per_second / 1e6:.1f} MB/s ({report.bytes_total} bytes)")
    if args.png:
        if plot(rec, report, args.png):
            print(f"plot saved to {args.png}")
        else:
            print("matplotlib is not installed: no plot")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
