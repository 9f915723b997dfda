"""``python -m iouring bench``: iouring against C and plain Python, in one process, interleaved.

Cases (each with the baselines that do the same work):

- ``nop``: NOPs at batch 1, 64 and 1024, through the batch path (``nop_batch`` +
  ``submit_and_copy_cqes`` into a preallocated array) and the single-operation path (one
  ``ring.nop`` call per operation, then ``submit_and_copy_cqes``; at batch 1
  ``submit_and_wait(1)`` + ``copy_cqe``), against the C reference.
- ``random_read``: random 4 KiB reads from a page-cached file at queue depth 1, 16, 64 and 256,
  into plain buffers (``read_batch``) and registered buffers (``BufferArena`` +
  ``read_fixed_batch``); at QD 1 also the single-operation path (``ring.read``/``read_fixed``);
  at QD 64 also a ``tuned`` variant of both, whose ring (and the C reference's, alike) uses what
  pays for these reads: a registered file (``FIXED_FILE``), ``SINGLE_ISSUER|DEFER_TASKRUN``, a
  registered ring fd and ``NO_SQARRAY``, as far as the kernel supports them.
- ``sequential_read``: 1 MiB reads through a page-cached file, QD 4.
- ``direct_read``: random 4 KiB ``O_DIRECT`` reads from a file evicted from the page cache
  (``posix_fadvise(DONTNEED)``) at QD 1, 8 and 64; skipped with a message where the
  filesystem refuses ``O_DIRECT``.
- ``memory``: 10 M operations through the batch path (NOPs, and reads that pin a buffer),
  reporting the growth of the resident set (the target is flat).

Baselines: ``pread`` (an ``os.pread`` loop), ``preadv`` (an ``os.preadv`` loop into one reused,
page-aligned buffer), ``threads`` (a ``ThreadPoolExecutor`` of ``os.pread``, one worker per
operation in flight up to 64) and ``c`` (``benchmarks/c_reference.c``: the same raw syscalls,
the same ring setup and the same algorithm in C, compiled with the system compiler and called
through ctypes, so it runs in this process; skipped with a message without a compiler).

Method: every contender of a case is calibrated to run about ``--seconds`` per round; then
``--rounds`` rounds run each contender once, in an order that rotates from round to round, so
drifts of a shared machine hit every contender alike. ops/s is the median of the rounds;
``noise`` is the spread (max - min) / median of a contender's rounds. Every completion's result
is checked by every contender (a wrong result aborts the case).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import json
import mmap
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

import iouring
from iouring import CQE_DTYPE, BufferArena, IoUring, SetupFlags, SqeFlags, _bench_user

__all__ = ["add_arguments", "main", "run"]

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
THREADS_MAX = 64
C_SOURCE_ENV = "IOURING_BENCH_C_SOURCE"

Run = Callable[[int], float]  # performs n operations, returns the seconds they took


@dataclass
class Options:
    quick: bool = False
    rounds: int = 5
    seconds: float = 0.25
    direct_seconds: float = 0.5
    file_size: int = 1 * GiB
    memory_ops: int = 10_000_000
    directory: str | None = None
    cases: frozenset[str] = frozenset()
    cc: str | None = None
    c_source: str | None = None
    json_path: str | None = None
    plot_path: str | None = None


CORE_CASES = ("nop", "random_read", "sequential_read", "direct_read", "memory")
ALL_CASES = CORE_CASES + _bench_user.USER_CASES

# What one item of a case's rate is.
UNITS = {
    "nop": "ops/s",
    "random_read": "reads/s",
    "sequential_read": "reads/s",
    "direct_read": "reads/s",
    "small_files": "files/s",
    "ranges": "ranges/s",
    "aio_await": "awaits/s",
    "aio_echo": "trips/s",
}


@dataclass
class Contender:
    name: str
    run: Run
    is_path: bool  # an iouring path (else a baseline)
    max_ops: int = 1 << 62


@dataclass
class Case:
    case: str
    params: dict[str, Any]  # without "path": each iouring contender is a path
    contenders: list[Contender]
    first_ops: int = 64  # the calibration starts here
    seconds: float = 0.25
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    scale: int = 1  # items per operation (files per pass, ranges per pass): rates count items


@dataclass
class Measured:
    """The rounds of one contender, in ops/s."""

    rates: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def spread(self) -> float:
        return (max(self.rates) - min(self.rates)) / self.median if self.median else 0.0


# --------------------------------------------------------------------------------------------
# Output


class Progress:
    """A progress line on stderr: rewritten in place on a terminal, one line per case else."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.tty = stream.isatty()
        self.shown = False

    def update(self, text: str, *, new_case: bool = False) -> None:
        line = f"[{self.done + 1}/{self.total}] {text}"
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r\033[K" + line[:width])
            self.stream.flush()
            self.shown = True
        elif new_case:
            self.stream.write(line + "\n")
            self.stream.flush()

    def clear(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f} "


def _size_text(nbytes: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift} {unit}"
    return f"{nbytes} B"


def _params_text(params: dict[str, Any]) -> str:
    """Parameters for people: sizes in KiB/MiB, the tuned variant as just "tuned" (a note
    names its techniques)."""
    words = []
    for key, value in params.items():
        if key == "path":
            continue
        if key == "tuned":
            words.append("tuned")
        elif key == "size" and isinstance(value, int):
            words.append(_size_text(value))
        else:
            words.append(f"{key}={value}")
    return " ".join(words)


def _rounds_text(r: dict[str, Any]) -> str:
    """ "won 6/7, 0.97-1.31x": the rounds iouring won and the range of the per-round ratios
    (records without rounds: the noise of both sides)."""
    rounds = r.get("round_ratios")
    if not rounds:
        return f"±{r['noise'] * 50:.0f}%/±{r['baseline_noise'] * 50:.0f}%"
    return f"won {r['rounds_won']}/{len(rounds)}, {min(rounds):.2f}-{max(rounds):.2f}x"


def _table(records: list[dict[str, Any]]) -> list[str]:
    """The records as an aligned table, one row per record (run() passes the best path's)."""
    header = ("case", "params", "iouring", "rate", "vs", "rate", "ratio", "rounds")
    rows = [header]
    for r in records:
        unit = UNITS.get(r["case"], "ops/s")
        rows.append(
            (
                r["case"],
                _params_text(r["params"]),
                r["params"]["path"],
                f"{_rate(r['ops_per_s'])}{unit}",
                r["baseline"],
                f"{_rate(r['baseline_ops_per_s'])}{unit}",
                f"{r['ratio']:.2f}x",
                _rounds_text(r),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 5, 6, 7}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _best(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every case, parameter set and baseline, the record of iouring's fastest path."""
    best: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in records:
        key = (r["case"], _params_text(r["params"]), r["baseline"])
        if key not in best or r["ratio"] > best[key]["ratio"]:
            best[key] = r
    return list(best.values())


# What a user would write without iouring, per case: the summary's "faster" lines compare
# against these (a thread pool is slower than a loop on most of these jobs, and C is no user's
# alternative to a Python library, except for the NOP floor).
PLAIN = {
    "nop": "c",
    "random_read": "pread",
    "sequential_read": "pread",
    "direct_read": "preadv",
    "small_files": "loop",
    "ranges": "preadv",
    "aio_await": "sleep(0)",
    "aio_echo": "sock_*",
}


def _summary(records: list[dict[str, Any]]) -> list[str]:
    """What the table means, in a few lines: how many comparisons iouring's fastest path wins,
    ties and loses; its best wins over plain Python; every loss."""
    best = _best(records)
    if not best:
        return []

    def tie(r: dict[str, Any]) -> bool:
        rounds = r.get("round_ratios")
        if rounds:
            # A win (or loss) is one the rounds agree on: the same side faster in at least
            # three quarters of them.
            needed = -(-3 * len(rounds) // 4)
            won = int(r["rounds_won"])
            return not (
                (r["ratio"] > 1.0 and won >= needed)
                or (r["ratio"] < 1.0 and len(rounds) - won >= needed)
            )
        # Within the noise of either side: the rounds overlap.
        return bool(abs(r["ratio"] - 1.0) <= max(r["noise"], r["baseline_noise"]) / 2)

    wins = [r for r in best if r["ratio"] > 1.0 and not tie(r)]
    ties = [r for r in best if tie(r)]
    losses = [r for r in best if r["ratio"] < 1.0 and not tie(r)]

    def what(r: dict[str, Any]) -> str:
        text = _params_text(r["params"])
        return f"{r['case']}{' ' + text if text else ''}: {r['params']['path']} vs {r['baseline']}"

    lines = [
        f"summary: iouring's fastest path is faster in {len(wins)}, within the noise in "
        f"{len(ties)} and slower in {len(losses)} of {len(best)} comparisons"
    ]
    plain_wins = [r for r in wins if PLAIN.get(r["case"]) == r["baseline"]]
    for r in sorted(plain_wins, key=lambda r: -r["ratio"])[:5]:
        lines.append(f"  faster  {r['ratio']:6.2f}x  {what(r)}")
    for r in sorted(losses, key=lambda r: r["ratio"]):
        lines.append(f"  slower  {r['ratio']:6.2f}x  {what(r)}")
    return lines


LEGEND = (
    "rate: the median of the interleaved rounds (in cases of long operations, such as a pass "
    "over 2,000 files, the operations of a round alternate one by one between the contenders, "
    "and a round's rate is its median operation's); ratio: iouring's median rate over the "
    "baseline's (above 1.00x iouring is faster); rounds: in how many rounds iouring was "
    "faster than the baseline in the same round (run back to back, under the same load), and "
    "the lowest and highest ratio of a single round. A comparison counts as faster or slower "
    "in the summary when at least three quarters of the rounds agree, else as within the noise."
)


def _plot(records: list[dict[str, Any]], path: str, title: str) -> None:
    """A PNG of iouring's best ratio in every case against what a user would write without it
    (PLAIN; log scale, 1x marked)."""
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]
        import matplotlib.ticker  # type: ignore[import-not-found,unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise SystemExit(
            f"--plot needs matplotlib ({exc}): pip install 'iouring[plot]' or matplotlib"
        ) from exc
    best = [r for r in _best(records) if PLAIN.get(r["case"]) == r["baseline"]] or _best(records)
    labels = [
        f"{r['case']} {_params_text(r['params'])}\n{r['params']['path']} vs {r['baseline']}"
        for r in best
    ]
    ratios = [r["ratio"] for r in best]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(best) + 1.4))
    colors = ["#2a9d8f" if x >= 1.0 else "#e76f51" for x in ratios]
    y = list(range(len(best)))[::-1]
    ax.barh(y, ratios, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ticks = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}x")
    ax.xaxis.set_major_formatter(ticks)
    ax.xaxis.set_minor_formatter(ticks)
    ax.tick_params(axis="x", which="both", labelsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("iouring rate / baseline rate (log scale; right of 1 = iouring faster)")
    for yi, x in zip(y, ratios, strict=True):
        ax.text(x, yi, f" {x:.2f}x", va="center", fontsize=7)
    ax.set_ylim(-0.6, len(best) - 0.4)
    ax.set_title(f"iouring against what you would write without it\n{title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Helpers


def _aligned(nbytes: int) -> npt.NDArray[np.uint8]:
    """A page-aligned, pre-faulted uint8 array (anonymous mmap): what the kernel copies into
    fastest. ``np.empty`` of 256 KiB or more lands 16 bytes past a page, which copies ~3x
    slower here."""
    memory = mmap.mmap(-1, max(nbytes, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    array = np.frombuffer(memory, dtype=np.uint8)
    array[::4096] = 0  # fault every page in
    return array


def _ring_entries(n: int) -> int:
    entries = 1
    while entries < n:
        entries *= 2
    return entries


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * mmap.PAGESIZE


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _make_file(path: str, size: int) -> None:
    """A file of `size` bytes whose every 4 KiB block starts with its own offset (u64)."""
    chunk = 64 * MiB
    with open(path, "wb", buffering=0) as f:
        for start in range(0, size, chunk):
            n = min(chunk, size - start)
            block = np.zeros(n // 8, dtype=np.uint64)
            block[::512] = np.arange(start, start + n, 4096, dtype=np.uint64)
            f.write(block.tobytes())
        os.fsync(f.fileno())


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(what)


# --------------------------------------------------------------------------------------------
# The C reference


def _find_c_source(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    candidates = []
    if os.environ.get(C_SOURCE_ENV):
        candidates.append(Path(os.environ[C_SOURCE_ENV]))
    here = Path(__file__).resolve().parent
    candidates += [
        here / "_c_reference.c",  # shipped next to this module
        here.parent.parent / "benchmarks" / "c_reference.c",  # a source checkout
        Path.cwd() / "benchmarks" / "c_reference.c",  # run from the repository root
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


class CReference:
    """benchmarks/c_reference.c compiled into a shared library, called through ctypes."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.ref_nop.argtypes = [ctypes.c_uint, ctypes.c_longlong]
        lib.ref_nop.restype = ctypes.c_longlong
        lib.ref_reads.argtypes = [
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_longlong,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int32),
        ]
        lib.ref_reads.restype = ctypes.c_longlong
        lib.ref_reads_tuned.argtypes = [
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_longlong,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_int32),
        ]
        lib.ref_reads_tuned.restype = ctypes.c_longlong

    @staticmethod
    def build(cc: str | None, source: str | None, workdir: str) -> CReference | str:
        """The loaded library, or why the C reference is skipped."""
        path = _find_c_source(source)
        if path is None:
            where = source or "benchmarks/c_reference.c"
            return (
                f"C reference skipped: {where} not found (run from a source checkout, or pass "
                f"--c-source / set {C_SOURCE_ENV})"
            )
        compiler = cc or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        compiler = compiler or shutil.which("clang")
        if not compiler:
            return "C reference skipped: no C compiler found (install cc, or set CC / --cc)"
        out = os.path.join(workdir, "c_reference.so")
        cmd = [compiler, "-O2", "-shared", "-fPIC", "-o", out, str(path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"C reference skipped: {' '.join(cmd)} failed: {exc}"
        if proc.returncode != 0:
            return f"C reference skipped: {' '.join(cmd)} failed:\n{proc.stderr.strip()}"
        return CReference(ctypes.CDLL(out))

    def nop(self, batch: int, n: int) -> float:
        ns = self.lib.ref_nop(batch, n)
        if ns < 0:
            raise OSError(-ns, f"C reference nop: {os.strerror(-ns)}")
        return float(ns) / 1e9

    def reads(
        self,
        fd: int,
        qd: int,
        size: int,
        offsets: npt.NDArray[np.uint64],
        n: int,
        buf: npt.NDArray[np.uint8],
        fixed: bool,
        tune: int = 0,
    ) -> float:
        """`tune`: the TUNE_* bits of c_reference.c (see Tuning); 0 is the plain loop."""
        bad = ctypes.c_int32(0)
        if tune:
            ns = self.lib.ref_reads_tuned(
                fd,
                qd,
                size,
                offsets.ctypes.data,
                n,
                buf.ctypes.data,
                int(fixed),
                tune,
                ctypes.byref(bad),
            )
        else:
            ns = self.lib.ref_reads(
                fd, qd, size, offsets.ctypes.data, n, buf.ctypes.data, int(fixed), ctypes.byref(bad)
            )
        if ns < 0:
            raise OSError(-ns, f"C reference reads: {os.strerror(-ns)} (res {bad.value})")
        return float(ns) / 1e9


# --------------------------------------------------------------------------------------------
# NOP


def _nop_case(batch: int, opts: Options, c: CReference | None) -> list[Case]:
    ring = IoUring(_ring_entries(batch))
    out = np.empty(ring.cq_entries, dtype=CQE_DTYPE)
    perf_counter = time.perf_counter

    # user_data as an array rather than a start value with count=: keyword arguments cost a
    # pybind11 call about 100 ns each.
    user_data = np.arange(batch, dtype=np.uint64)

    def batch_path(n: int) -> float:
        # submit_and_copy_cqes: one call (and one enter) per round trip, returning a count
        # rather than a view of out.
        nop_batch, submit_and_copy = ring.nop_batch, ring.submit_and_copy_cqes
        full, rest = divmod(n, batch)
        start = perf_counter()
        for _ in range(full):
            nop_batch(user_data)
            if submit_and_copy(out, batch) != batch:
                raise RuntimeError("nop_batch: a batch did not complete in full")
        if rest:
            nop_batch(user_data[:rest])
            submit_and_copy(out, rest)
        elapsed = perf_counter() - start
        _check(not out["res"][: max(rest, batch if full else 0)].any(), "a NOP failed")
        return elapsed

    def single_path(n: int) -> float:
        nop, wait = ring.nop, ring.submit_and_wait
        if batch == 1:
            copy_cqe = ring.copy_cqe
            start = perf_counter()
            for i in range(n):
                nop(i)
                wait(1)
                if copy_cqe().res:
                    raise RuntimeError("a NOP failed")
            return perf_counter() - start
        submit_and_copy = ring.submit_and_copy_cqes
        full, rest = divmod(n, batch)
        start = perf_counter()
        for _ in range(full):
            for i in range(batch):
                nop(i)
            if submit_and_copy(out, batch) != batch:
                raise RuntimeError("a batch of NOPs did not complete in full")
        for i in range(rest):
            nop(i)
        if rest:
            submit_and_copy(out, rest)
        return perf_counter() - start

    contenders = [Contender("batch", batch_path, True), Contender("single", single_path, True)]
    if c is not None:
        contenders.append(Contender("c", functools.partial(c.nop, batch), False))
    return [Case("nop", {"batch": batch}, contenders, max(batch, 64), opts.seconds, [ring.close])]


# --------------------------------------------------------------------------------------------
# Reads


@dataclass(frozen=True)
class Tuning:
    """What the tuned read variant uses, on the Python side and in the C reference alike.

    Measured in C (c_reference.c, QD 64, page-cached random 4 KiB reads, 11 interleaved
    rounds): only the registered file pays (+6 %, ~55 ns per read: no fd lookup and reference
    per read); NO_SQARRAY, SINGLE_ISSUER|DEFER_TASKRUN and the registered ring fd are within
    +-1 % (kept: they never cost, the reference must stay the best C we know, and together
    they gave the Python path +1 %); COOP_TASKRUN|TASKRUN_FLAG and submitting in halves do
    not pay (-1 %, -0.3 %) and are not used. See benchmarks/README.md."""

    names: tuple[str, ...] = ()
    setup_flags: int = 0
    fixed_file: bool = False
    registered_ring: bool = False
    c_mask: int = 0  # TUNE_* bits of c_reference.c

    @property
    def label(self) -> str:
        return "+".join(self.names) or "none"


# The TUNE_* bits of c_reference.c.
TUNE_FIXED_FILE = 1
TUNE_DEFER_TASKRUN = 2
TUNE_REGISTERED_RING = 8
TUNE_NO_SQARRAY = 16


def _probe_tuning(fd: int) -> Tuning:
    """The techniques this kernel supports (each probed on a scratch ring), for file fd."""
    names: list[str] = []
    setup_flags = mask = 0
    fixed_file = registered_ring = False
    with IoUring(2) as ring:
        try:
            ring.register_files([fd])
            fixed_file = True
            names.append("fixed_file")
            mask |= TUNE_FIXED_FILE
        except OSError:
            pass
    defer = int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN)
    for name, flags, bit in (
        ("defer_taskrun", defer, TUNE_DEFER_TASKRUN),
        ("no_sqarray", int(SetupFlags.NO_SQARRAY), TUNE_NO_SQARRAY),
    ):
        try:
            IoUring(2, flags=flags).close()
        except (OSError, ValueError):
            continue
        names.append(name)
        setup_flags |= flags
        mask |= bit
    with IoUring(2) as ring:
        try:
            ring.register_ring_fd()
            ring.unregister_ring_fd()
            registered_ring = True
            names.append("ring_fd")
            mask |= TUNE_REGISTERED_RING
        except OSError:
            pass
    return Tuning(tuple(names), setup_flags, fixed_file, registered_ring, mask)


@dataclass
class ReadWork:
    """What every contender of a read case shares: the file, the offsets, the sizes."""

    fd: int
    size: int
    qd: int
    offsets: npt.NDArray[np.uint64]
    offset_list: list[int]
    direct: bool


def _batch_reader(
    work: ReadWork, fixed: bool, cleanup: list[Callable[[], None]], tuning: Tuning | None = None
) -> Run:
    """The batch path: QD reads in flight, slot i of a page-aligned buffer per read; each round
    trip submits, waits for one completion and copies every ready CQE into a preallocated array
    (one ``submit_and_copy_cqes`` call), checks their results, and refills the freed slots with
    one batch call. A read's user_data is
    its slot's byte offset, so the completions' user_data column is the next batch's
    buf_offset. With `tuning`, the ring and the SQEs use what it names."""
    fd, size, qd, offsets = work.fd, work.size, work.qd, work.offsets
    tuning = tuning or Tuning()
    ring = IoUring(_ring_entries(qd), flags=tuning.setup_flags)
    out = np.empty(ring.cq_entries, dtype=CQE_DTYPE)
    slots = np.arange(qd, dtype=np.uint64) * np.uint64(size)
    expected = np.full(ring.cq_entries, size, dtype=np.int32).tobytes()
    arena: BufferArena | None = None
    if fixed:
        arena = BufferArena(ring, qd * size)
        buf = arena.array
    else:
        buf = _aligned(qd * size)

    data_fd, sqe_flags = fd, 0
    if tuning.fixed_file:
        ring.register_files([fd])
        data_fd, sqe_flags = 0, int(SqeFlags.FIXED_FILE)
    if tuning.registered_ring:
        ring.register_ring_fd()

    def close() -> None:
        if arena is not None:
            arena.close()
        if ring.ring_fd_registered:
            # The thread's registration holds a reference to the ring, which close() alone
            # does not drop.
            ring.unregister_ring_fd()
        ring.close()

    cleanup.append(close)
    perf_counter = time.perf_counter

    # Column views of `out`, made once: slicing them costs less than taking a field of the
    # filled part on every round trip.
    res_column, ud_column = out["res"], out["user_data"]

    def run(n: int) -> float:
        submit_and_copy = ring.submit_and_copy_cqes
        read: Callable[..., int] = ring.read_batch
        read_fixed: Callable[..., int] = ring.read_fixed_batch
        if sqe_flags:
            read = functools.partial(read, sqe_flags=sqe_flags)
            read_fixed = functools.partial(read_fixed, sqe_flags=sqe_flags)
        fd = data_fd
        start = perf_counter()
        k = min(qd, n)
        if fixed:
            read_fixed(slots[:k], fd, 0, offsets[:k], size, slots[:k])
        else:
            read(slots[:k], fd, buf, offsets[:k], size, slots[:k])
        issued, done = k, 0
        while done < n:
            # Submits the refill, waits for one completion (GIL released only when none is
            # ready) and copies every ready one into out: one call, one enter.
            m = submit_and_copy(out, 1)
            done += m
            # Every result checked at once: the bytes of the res column against `size`s (a
            # bytes comparison costs a tenth of a NumPy reduction on a few elements).
            if res_column[:m].tobytes() != expected[: 4 * m]:
                raise RuntimeError(f"a read returned {res_column[:m].min()} instead of {size}")
            refill = min(m, n - issued)
            if refill > 0:
                ud = ud_column[:refill]
                if fixed:
                    read_fixed(ud, fd, 0, offsets[issued : issued + refill], size, ud)
                else:
                    read(ud, fd, buf, offsets[issued : issued + refill], size, ud)
                issued += refill
        return perf_counter() - start

    # Sanity check of the measured path: the data lands where it should.
    run(min(qd, 16) * 2)
    head = buf[: qd * size].reshape(qd, size)[:, :8].copy().view(np.uint64).ravel()
    _check(bool(np.all(head % 4096 == 0)), "the batch path read wrong data")
    return run


def _single_reader(work: ReadWork, fixed: bool, cleanup: list[Callable[[], None]]) -> Run:
    """The single-operation path at QD 1: ring.read (or read_fixed) + submit_and_wait(1) +
    copy_cqe per read."""
    fd, size = work.fd, work.size
    ring = IoUring(1)
    arena: BufferArena | None = None
    if fixed:
        arena = BufferArena(ring, size)
        view = arena.array.data[:size]
    else:
        view = _aligned(size).data

    def close() -> None:
        if arena is not None:
            arena.close()
        ring.close()

    cleanup.append(close)
    perf_counter = time.perf_counter

    def run(n: int) -> float:
        wait, copy_cqe = ring.submit_and_wait, ring.copy_cqe
        offs = work.offset_list
        start = perf_counter()
        if fixed:
            read_fixed = ring.read_fixed
            for off in islice(offs, n):
                read_fixed(0, fd, view, off, 0)
                wait(1)
                if copy_cqe().res != size:
                    raise RuntimeError("a read_fixed returned a short count")
        else:
            read = ring.read
            for off in islice(offs, n):
                read(0, fd, view, off)
                wait(1)
                if copy_cqe().res != size:
                    raise RuntimeError("a read returned a short count")
        return perf_counter() - start

    return run


def _pread_loop(work: ReadWork) -> Run:
    fd, size = work.fd, work.size
    perf_counter = time.perf_counter

    def run(n: int) -> float:
        pread = os.pread
        start = perf_counter()
        for off in islice(work.offset_list, n):
            if len(pread(fd, size, off)) != size:
                raise RuntimeError("os.pread returned a short read")
        return perf_counter() - start

    return run


def _preadv_loop(work: ReadWork) -> Run:
    fd, size = work.fd, work.size
    buffers = [_aligned(size).data]
    perf_counter = time.perf_counter

    def run(n: int) -> float:
        preadv = os.preadv
        start = perf_counter()
        for off in islice(work.offset_list, n):
            if preadv(fd, buffers, off) != size:
                raise RuntimeError("os.preadv returned a short read")
        return perf_counter() - start

    return run


def _thread_pool(work: ReadWork, cleanup: list[Callable[[], None]]) -> Run:
    fd, size = work.fd, work.size
    workers = min(work.qd, THREADS_MAX)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-pread")
    cleanup.append(functools.partial(pool.shutdown, wait=True))
    if work.direct:
        # O_DIRECT needs an aligned destination: one page-aligned buffer per worker thread.
        local = threading.local()

        def read_one(off: int) -> int:
            bufs = getattr(local, "bufs", None)
            if bufs is None:
                bufs = local.bufs = [_aligned(size).data]
            return os.preadv(fd, bufs, off)

    else:

        def read_one(off: int) -> int:
            return len(os.pread(fd, size, off))

    perf_counter = time.perf_counter

    def run(n: int) -> float:
        offs = work.offset_list
        start = perf_counter()
        for first in range(0, n, 4096):
            for got in pool.map(read_one, offs[first : min(n, first + 4096)]):
                if got != size:
                    raise RuntimeError("a pooled read returned a short count")
        return perf_counter() - start

    run(min(workers * 2, 256))  # start the workers outside the measurement
    return run


def _c_reader(work: ReadWork, c: CReference, fixed: bool, tune: int = 0) -> Run:
    buf = _aligned(work.qd * work.size)
    return lambda n: c.reads(work.fd, work.qd, work.size, work.offsets, n, buf, fixed, tune)


def _read_contenders(
    work: ReadWork,
    buffers: str,
    paths: Sequence[str],
    c: CReference | None,
    cleanup: list[Callable[[], None]],
    baselines: Sequence[str] = ("pread", "preadv", "threads", "c"),
    tuning: Tuning | None = None,
) -> list[Contender]:
    """With `tuning`, the batch path and the C reference both use it (paths: batch only)."""
    fixed = buffers == "fixed"
    limit = len(work.offsets)
    contenders = []
    for path in paths:
        if path == "batch":
            run = _batch_reader(work, fixed, cleanup, tuning)
        else:
            run = _single_reader(work, fixed, cleanup)
        contenders.append(Contender(path, run, True, limit))
    for name in baselines:
        if name == "pread":
            contenders.append(Contender("pread", _pread_loop(work), False, limit))
        elif name == "preadv":
            contenders.append(Contender("preadv", _preadv_loop(work), False, limit))
        elif name == "threads":
            contenders.append(Contender("threads", _thread_pool(work, cleanup), False, limit))
        elif name == "c" and c is not None:
            tune = tuning.c_mask if tuning is not None else 0
            contenders.append(Contender("c", _c_reader(work, c, fixed, tune), False, limit))
    return contenders


def _random_offsets(file_size: int, size: int, count: int, seed: int) -> npt.NDArray[np.uint64]:
    blocks = file_size // size
    rng = np.random.default_rng(seed)
    return rng.integers(0, blocks, count, dtype=np.uint64) * np.uint64(size)


# --------------------------------------------------------------------------------------------
# Running


def _measure(
    case: Case, rounds: int, progress: Progress, label: str, failures: list[str]
) -> dict[str, Measured]:
    """Calibrates every contender to about case.seconds, then runs the interleaved rounds.

    A baseline that fails is reported in `failures` and left out of the case; a failing
    iouring path fails the case (the exception propagates)."""

    def attempt(contender: Contender, n: int) -> float | None:
        try:
            return contender.run(n)
        except Exception as exc:
            if contender.is_path:
                raise
            failures.append(f"{label}: baseline {contender.name}: {type(exc).__name__}: {exc}")
            case.contenders.remove(contender)
            return None

    counts: dict[str, int] = {}
    for contender in list(case.contenders):
        progress.update(f"{label}: calibrating {contender.name}")
        n = min(case.first_ops, contender.max_ops)
        while True:
            elapsed = attempt(contender, n)
            if elapsed is None or elapsed >= case.seconds / 4 or n >= contender.max_ops:
                break
            n = min(contender.max_ops, n * (8 if elapsed < case.seconds / 64 else 2))
        if elapsed is not None:
            rate = n / max(elapsed, 1e-9)
            counts[contender.name] = max(1, min(contender.max_ops, int(rate * case.seconds)))
    rates: dict[str, list[float]] = {c.name: [] for c in case.contenders}
    order = list(case.contenders)
    # Long operations (a pass over 2,000 files or ranges: a few per round) are interleaved one
    # by one within a round, so that every contender of a round sees the same load at the
    # scale of one operation, not of a quarter second; short ones run a round each in one
    # call (a call per operation would time the calls).
    one_by_one = bool(counts) and max(counts.values()) <= INTERLEAVE_OPS
    for r in range(rounds):
        if one_by_one:
            progress.update(f"{label}: round {r + 1}/{rounds}, interleaved")
            _interleaved_round(case, order, counts, attempt, rates)
        else:
            for contender in order:
                if contender not in case.contenders:
                    continue
                progress.update(f"{label}: round {r + 1}/{rounds}, {contender.name}")
                n = counts[contender.name]
                elapsed = attempt(contender, n)
                if elapsed is not None:
                    rates[contender.name].append(n / max(elapsed, 1e-9))
        order = order[1:] + order[:1]  # rotate: no contender always runs first
    return {c.name: Measured(rates[c.name]) for c in case.contenders}


INTERLEAVE_OPS = 64  # rounds of at most this many operations per contender go one by one


def _interleaved_round(
    case: Case,
    order: list[Contender],
    counts: dict[str, int],
    attempt: Callable[[Contender, int], float | None],
    rates: dict[str, list[float]],
) -> None:
    """One round of one-by-one operations: contender A's first, B's first, ..., A's second...
    until each has run its count. Each contender's rate is one over its median operation: on a
    shared machine a pass of 10 ms is now and then descheduled for 100 ms or more, which would
    decide a round's sum; the median pass is the typical one."""
    times: dict[str, list[float]] = {c.name: [] for c in order}
    for i in range(max(counts[c.name] for c in order if c.name in counts)):
        for contender in order:
            if contender in case.contenders and i < counts[contender.name]:
                took = attempt(contender, 1)
                if took is not None:
                    times[contender.name].append(took)
    for contender in order:
        if contender in case.contenders and times[contender.name]:
            rates[contender.name].append(1.0 / max(statistics.median(times[contender.name]), 1e-9))


def _records(case: Case, measured: dict[str, Measured]) -> list[dict[str, Any]]:
    """One record per iouring path and baseline; rates in items per second (UNITS). Besides
    the ratio of the medians, each record keeps the ratio of every round (the path's rate over
    the baseline's in the same round, run back to back, so both saw the same load) and how
    many rounds the path won."""
    records = []
    for path in (c for c in case.contenders if c.is_path):
        for base in (c for c in case.contenders if not c.is_path):
            p, b = measured[path.name].median, measured[base.name].median
            rounds = [
                x / y if y else float("inf")
                # Rounds pair up in order (strict=False: a contender stopped early has fewer).
                for x, y in zip(measured[path.name].rates, measured[base.name].rates, strict=False)
            ]
            records.append(
                {
                    "case": case.case,
                    "params": {**case.params, "path": path.name},
                    "unit": UNITS.get(case.case, "ops/s"),
                    "ops_per_s": p * case.scale,
                    "baseline": base.name,
                    "baseline_ops_per_s": b * case.scale,
                    "ratio": p / b if b else float("inf"),
                    "noise": measured[path.name].spread,
                    "baseline_noise": measured[base.name].spread,
                    "round_ratios": rounds,
                    "rounds_won": sum(x > 1.0 for x in rounds),
                }
            )
    return records


CaseFactory = Callable[[], list[Case]]


def _plan(
    opts: Options,
    c: CReference | None,
    notes: list[str],
    finalizers: list[Callable[[], None]],
) -> Iterator[tuple[str, CaseFactory]]:
    """(label, factory) for every case to run, in order; factories build the contenders only
    when their case comes up, so setup costs (files, thread pools) are paid one at a time.
    What must be undone however the run ends (the test file) goes to `finalizers`."""
    wanted = opts.cases or frozenset(ALL_CASES)
    if "nop" in wanted:
        for batch in (1, 64, 1024):
            yield f"nop batch={batch}", functools.partial(_nop_case, batch, opts, c)
    file_cases = {"random_read", "sequential_read", "direct_read"} & wanted
    if not file_cases:
        return
    directory = opts.directory or tempfile.gettempdir()
    path = os.path.join(directory, f"iouring-bench-{os.getpid()}.dat")
    state: dict[str, Any] = {}

    def open_cached() -> int:
        if "fd" not in state:
            _make_file(path, opts.file_size)
            state["fd"] = os.open(path, os.O_RDONLY)
            # Read it once so that every page is cached before any contender runs.
            with open(path, "rb", buffering=0) as f:
                while f.read(16 * MiB):
                    pass
        return int(state["fd"])

    limit = 1 << (17 if opts.quick else 20)
    if "random_read" in wanted:
        # Same file, same offsets (same seed) and same queue depth as the plain QD 64 case.
        for qd in (1, 16, 64, 256):
            for buffers in ("plain", "fixed"):

                def random_case(qd: int = qd, buffers: str = buffers) -> list[Case]:
                    fd = open_cached()
                    offsets = _random_offsets(opts.file_size, 4 * KiB, limit, seed=qd)
                    work = ReadWork(fd, 4 * KiB, qd, offsets, offsets.tolist(), False)
                    cleanup: list[Callable[[], None]] = []
                    paths = ("batch", "single") if qd == 1 else ("batch",)
                    contenders = _read_contenders(work, buffers, paths, c, cleanup)
                    params = {"qd": qd, "size": 4 * KiB, "buffers": buffers}
                    return [Case("random_read", params, contenders, 64, opts.seconds, cleanup)]

                yield f"random_read qd={qd} {buffers}", random_case
        for buffers in ("plain", "fixed"):

            def tuned_case(buffers: str = buffers) -> list[Case]:
                fd = open_cached()
                if "tuning" not in state:
                    state["tuning"] = _probe_tuning(fd)
                tuning: Tuning = state["tuning"]
                if not tuning.names:
                    if not state.get("tuning_note"):
                        state["tuning_note"] = True
                        notes.append("random_read tuned skipped: the kernel supports none of it")
                    return []
                qd = TUNED_QD
                offsets = _random_offsets(opts.file_size, 4 * KiB, limit, seed=qd)
                work = ReadWork(fd, 4 * KiB, qd, offsets, offsets.tolist(), False)
                cleanup: list[Callable[[], None]] = []
                contenders = _read_contenders(
                    work, buffers, ("batch",), c, cleanup, TUNED_BASELINES, tuning
                )
                params = {"qd": qd, "size": 4 * KiB, "buffers": buffers, "tuned": tuning.label}
                if not state.get("tuned_note"):
                    state["tuned_note"] = True
                    notes.append(
                        f"random_read tuned: the ring and the C reference use {tuning.label}"
                    )
                return [Case("random_read", params, contenders, 64, opts.seconds, cleanup)]

            yield f"random_read qd={TUNED_QD} {buffers} tuned", tuned_case
    if "sequential_read" in wanted:

        def sequential_case() -> list[Case]:
            fd = open_cached()
            blocks = opts.file_size // MiB
            count = 1 << 16
            offsets = (np.arange(count, dtype=np.uint64) % np.uint64(blocks)) * np.uint64(MiB)
            work = ReadWork(fd, MiB, 4, offsets, offsets.tolist(), False)
            cleanup: list[Callable[[], None]] = []
            contenders = _read_contenders(work, "plain", ("batch",), c, cleanup)
            params = {"qd": 4, "size": MiB, "buffers": "plain"}
            case = Case("sequential_read", params, contenders, 8, opts.seconds, cleanup)
            return [case]

        yield "sequential_read 1 MiB", sequential_case
    if "direct_read" in wanted:
        for qd in (1, 8, 64):

            def direct_case(qd: int = qd) -> list[Case]:
                open_cached()
                if "direct_fd" not in state:
                    state["direct_fd"] = _open_direct(path, notes)
                fd = state["direct_fd"]
                if fd is None:
                    return []
                offsets = _random_offsets(opts.file_size, 4 * KiB, 1 << 16, seed=1000 + qd)
                work = ReadWork(fd, 4 * KiB, qd, offsets, offsets.tolist(), True)
                # os.pread reads into a new bytes object, whose address depends on malloc: under
                # O_DIRECT it fails with EINVAL whenever that address is not aligned as the
                # device requires, so the plain-Python baseline is preadv into an aligned buffer.
                baselines: list[str] = ["preadv", "threads", "c"]
                if "pread_direct" not in state:
                    state["pread_direct"] = True
                    notes.append(
                        "direct_read: no os.pread baseline: its bytes buffer is not reliably "
                        "aligned for O_DIRECT (EINVAL); preadv into an aligned buffer stands in"
                    )
                cleanup: list[Callable[[], None]] = []
                contenders = _read_contenders(work, "plain", ("batch",), c, cleanup, baselines)
                params = {"qd": qd, "size": 4 * KiB, "buffers": "plain"}
                return [Case("direct_read", params, contenders, 16, opts.direct_seconds, cleanup)]

            yield f"direct_read qd={qd}", direct_case

    def remove() -> None:
        for key in ("fd", "direct_fd"):
            if state.get(key) is not None:
                os.close(state.pop(key))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    finalizers.append(remove)


def _open_direct(path: str, notes: list[str]) -> int | None:
    """The file opened O_DIRECT after evicting it from the page cache, or None (with a note)."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        notes.append("direct_read skipped: this platform has no O_DIRECT")
        return None
    try:
        fd = os.open(path, os.O_RDONLY | flag)
    except OSError as exc:
        notes.append(f"direct_read skipped: the filesystem of {path} refuses O_DIRECT ({exc})")
        return None
    probe = _aligned(4096)
    try:
        os.preadv(fd, [probe.data], 0)
    except OSError as exc:
        os.close(fd)
        notes.append(f"direct_read skipped: an O_DIRECT read of {path} failed ({exc})")
        return None
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return fd


def _memory_case(opts: Options, progress: Progress) -> str:
    """Runs opts.memory_ops NOPs plus pinned reads through the batch path and reports the
    growth of the resident set after a warm-up."""
    batch = 1024
    ring = IoUring(batch)
    cqes = np.empty(ring.cq_entries, dtype=CQE_DTYPE)
    buf = _aligned(batch * 512)
    slots = np.arange(batch, dtype=np.uint64) * np.uint64(512)
    zero = os.open("/dev/zero", os.O_RDONLY)
    reads = max(opts.memory_ops // 10, batch)
    nops = max(opts.memory_ops - reads, batch)
    samples: list[int] = []

    def nop_round(count: int) -> None:
        for i in range(count):
            ring.nop_batch(i * batch, count=batch)
            ring.submit_and_wait(batch)
            ring.copy_cqes(cqes)
            if i % 256 == 0:
                samples.append(_rss())

    def read_round(count: int) -> None:
        for i in range(count):
            ring.read_batch(slots, zero, buf, 0, 512, slots)
            ring.submit_and_wait(batch)
            got = ring.copy_cqes(cqes)
            if len(got) != batch or got["res"].min() != 512:
                raise RuntimeError("a read of /dev/zero failed")
            if i % 64 == 0:
                samples.append(_rss())

    try:
        progress.update("memory: warm-up", new_case=True)
        nop_round(64)
        read_round(16)
        gc.collect()
        before = _rss()
        samples.clear()
        start = time.perf_counter()
        progress.update(f"memory: {nops:,} NOPs through nop_batch")
        nop_round(nops // batch)
        progress.update(f"memory: {reads:,} pinned reads through read_batch")
        read_round(reads // batch)
        elapsed = time.perf_counter() - start
        gc.collect()
        after = _rss()
        pinned, in_flight = ring.pinned, ring.in_flight
    finally:
        os.close(zero)
        ring.close()
    peak = max([*samples, after])
    total = (nops // batch + reads // batch) * batch
    return (
        f"memory: {total:,} operations through the batch path ({nops // batch * batch:,} NOPs, "
        f"{reads // batch * batch:,} reads pinning one buffer per batch) in {elapsed:.1f} s: "
        f"RSS {before / MiB:.1f} MiB before, peak {peak / MiB:.1f} MiB, {after / MiB:.1f} MiB "
        f"after: growth {(peak - before) / KiB:+.0f} KiB (pinned={pinned}, "
        f"in_flight={in_flight})"
    )


TUNED_QD = 64
TUNED_BASELINES = ("pread", "preadv", "c")


def _run_plan(
    opts: Options,
    plan: list[tuple[str, CaseFactory]],
    progress: Progress,
    records: list[dict[str, Any]],
    failures: list[str],
    wanted: frozenset[str],
) -> str | None:
    """Runs the memory case and every case of the plan, collecting records; returns the memory
    case's report."""
    memory_line = None
    if "memory" in wanted:
        memory_line = _memory_case(opts, progress)
        progress.done += 1
    for label, factory in plan:
        progress.update(f"{label}: setting up", new_case=True)
        try:
            cases = factory()
        except Exception as exc:  # a case that cannot be set up is reported, not fatal
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            cases = []
        for case in cases:
            try:
                measured = _measure(case, opts.rounds, progress, label, failures)
            except Exception as exc:
                failures.append(f"{label}: {type(exc).__name__}: {exc}")
                measured = None
            finally:
                for done in case.cleanup:
                    with contextlib.suppress(Exception):
                        done()
            if measured is not None:
                records.extend(_records(case, measured))
        progress.done += 1
    return memory_line


def run(opts: Options, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> list[dict[str, Any]]:
    """Runs the benchmark, prints the table and its summary to `out` (progress on `err`) and
    returns the records."""
    notes: list[str] = []
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    wanted = opts.cases or frozenset(ALL_CASES)
    title = (
        f"iouring {iouring.__version__} benchmark on Linux {platform.release()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs), Python {platform.python_version()}, "
        f"NumPy {np.__version__}"
    )
    out.write(
        f"{title}\n"
        f"mode: {'quick' if opts.quick else 'full'}, {opts.rounds} interleaved rounds of "
        f"~{opts.seconds:g} s per contender; load average before: {_loadavg()}\n"
    )
    out.flush()
    with tempfile.TemporaryDirectory(prefix="iouring-bench-") as workdir:
        core = wanted & set(CORE_CASES) - {"memory"}
        built = CReference.build(opts.cc, opts.c_source, workdir) if core else None
        c = built if isinstance(built, CReference) else None
        if isinstance(built, str):
            notes.append(built)
        finalizers: list[Callable[[], None]] = []
        plan = list(_plan(opts, c, notes, finalizers))
        plan += list(_bench_user.plan(opts, notes, finalizers))
        progress = Progress(err, len(plan) + ("memory" in wanted))
        try:
            memory_line = _run_plan(opts, plan, progress, records, failures, wanted)
        finally:
            for finalize in reversed(finalizers):
                with contextlib.suppress(Exception):
                    finalize()
            progress.clear()
    if records:
        out.write("\n" + "\n".join(_table(_best(records))) + "\n")
        out.write("(one row per baseline: iouring's fastest path; --json has every path)\n\n")
        out.write("\n".join(_summary(records)) + "\n")
        out.write(textwrap.fill(LEGEND, 100) + "\n")
    out.write(f"load average after: {_loadavg()}\n")
    if memory_line:
        out.write(memory_line + "\n")
    for note in notes:
        out.write(f"note: {note}\n")
    for failure in failures:
        out.write(f"FAILED: {failure}\n")
    out.flush()
    if opts.json_path:
        with open(opts.json_path, "w") as f:
            json.dump(records, f, indent=1)
            f.write("\n")
    if opts.plot_path and records:
        _plot(records, opts.plot_path, title)
        out.write(f"plot: {opts.plot_path}\n")
    if failures:
        raise SystemExit(1)
    return records


# --------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m iouring bench`` (also ``benchmarks/run.py``)."""
    parser.add_argument(
        "--quick", action="store_true", help="run every case briefly (well under 30 s in all)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the records as JSON to PATH")
    parser.add_argument(
        "--plot", metavar="PATH", help="also draw the ratios as a PNG (needs matplotlib)"
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds per case (default 5; 2 quick)"
    )
    parser.add_argument(
        "--seconds", type=float, help="seconds per contender and round (default 0.25; 0.02 quick)"
    )
    parser.add_argument(
        "--cases",
        help=f"comma-separated subset of: {', '.join(ALL_CASES)} (default: all)",
    )
    parser.add_argument(
        "--file-size", type=int, help="bytes of the test file (default 1 GiB; 64 MiB quick)"
    )
    parser.add_argument(
        "--memory-ops", type=int, help="operations of the memory case (default 10 M; 1 M quick)"
    )
    parser.add_argument("--dir", help="directory of the test file (default: the temp directory)")
    parser.add_argument("--cc", help="C compiler for the C reference (default: $CC or cc)")
    parser.add_argument("--c-source", help="path of c_reference.c (default: benchmarks/)")


def options_from(args: argparse.Namespace) -> Options:
    quick = bool(args.quick)
    cases: frozenset[str] = frozenset()
    if args.cases:
        cases = frozenset(x.strip() for x in args.cases.split(",") if x.strip())
        unknown = cases - set(ALL_CASES)
        if unknown:
            raise SystemExit(
                f"unknown cases: {', '.join(sorted(unknown))} (known: {', '.join(ALL_CASES)})"
            )
    seconds = args.seconds if args.seconds is not None else (0.02 if quick else 0.25)
    return Options(
        quick=quick,
        rounds=args.rounds if args.rounds is not None else (2 if quick else 5),
        seconds=seconds,
        direct_seconds=seconds * 2,
        file_size=args.file_size if args.file_size is not None else (64 * MiB if quick else GiB),
        memory_ops=args.memory_ops
        if args.memory_ops is not None
        else (MiB if quick else 10_000_000),
        directory=args.dir,
        cases=cases,
        cc=args.cc,
        c_source=args.c_source,
        json_path=args.json,
        plot_path=args.plot,
    )


def run_from_args(args: argparse.Namespace) -> int:
    opts = options_from(args)
    if opts.rounds < 1 or opts.seconds <= 0 or opts.file_size < 16 * MiB:
        raise SystemExit("--rounds must be >= 1, --seconds > 0, --file-size >= 16 MiB")
    run(opts)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iouring bench", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
