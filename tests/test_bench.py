"""The benchmark suite: ``python -m iouring bench --quick`` end to end, the C reference it
compiles, and the record format of ``--json``. No test asserts a speed."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kernel_support import slow

import iouring
from iouring import __main__ as cli
from iouring import _bench

RECORD_KEYS = [
    "case",
    "params",
    "unit",
    "ops_per_s",
    "baseline",
    "baseline_ops_per_s",
    "ratio",
    "noise",
    "baseline_noise",
    "round_ratios",
    "rounds_won",
]
BASELINES = ("c", "pread", "preadv", "threads", "loop", "sleep(0)", "sock_*", "streams", "uvloop")


def _env() -> dict[str, str]:
    """The environment of a child that imports this very iouring."""
    package_root = str(Path(iouring.__file__).resolve().parent.parent)
    here = str(Path(iouring.__file__).parent.parent)
    paths = [here, package_root, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.fixture(scope="module")
def c_reference() -> Any:
    with tempfile.TemporaryDirectory() as workdir:
        built = _bench.CReference.build(None, None, workdir)
        if isinstance(built, str):
            pytest.skip(built)
        yield built


def test_bench_quick_cli_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "iouring", "bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=slow(240),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stdout = proc.stdout
    assert "mode: quick" in stdout
    assert any(
        line.split()[:4] == ["case", "params", "iouring", "rate"] for line in stdout.splitlines()
    )
    assert "summary: iouring's fastest path is faster in" in stdout
    assert "targets" not in stdout and "MISSED" not in stdout  # no internal target lists
    assert "memory:" in stdout and "growth" in stdout
    assert "FAILED" not in stdout
    assert "[1/" in proc.stderr  # the progress line
    records = json.loads(out.read_text())
    assert records, stdout
    for r in records:
        assert list(r) == RECORD_KEYS
        assert r["ops_per_s"] > 0 and r["baseline_ops_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["ops_per_s"] / r["baseline_ops_per_s"])
        assert r["baseline"] in BASELINES
        assert r["unit"] == _bench.UNITS[r["case"]]
        if r["case"] in _bench.CORE_CASES:
            assert r["params"]["path"] in ("batch", "single")
    cases = {(r["case"], r["params"].get("qd"), r["params"].get("batch")) for r in records}
    c_skipped = "C reference skipped" in stdout
    if not c_skipped:
        for batch in (1, 64, 1024):
            assert ("nop", None, batch) in cases
    for qd in (1, 16, 64, 256):
        assert ("random_read", qd, None) in cases
    assert ("sequential_read", 4, None) in cases
    if "direct_read skipped" not in stdout:
        for qd in (1, 8, 64):
            assert ("direct_read", qd, None) in cases
    buffers = {r["params"]["buffers"] for r in records if r["case"] == "random_read"}
    assert buffers == {"plain", "fixed"}
    # The tuned QD 64 variant, next to the plain one, names what it uses; its baselines are
    # pread, preadv and the C reference tuned alike.
    tuned = [r for r in records if r["params"].get("tuned")]
    if "random_read tuned skipped" not in stdout:
        assert {r["params"]["buffers"] for r in tuned} == {"plain", "fixed"}
        assert {r["params"]["qd"] for r in tuned} == {64}
        assert {r["baseline"] for r in tuned} <= {"pread", "preadv", "c"}
        assert any(
            line.startswith("random_read ") and "qd=64 4 KiB buffers=plain tuned" in line
            for line in stdout.splitlines()
        )
        assert "note: random_read tuned: the ring and the C reference use " in stdout
    assert any(not r["params"].get("tuned") and r["params"].get("qd") == 64 for r in records)
    # The user-level cases, each against what a user would write without iouring.
    for case, baseline in [
        ("small_files", "loop"),
        ("ranges", "preadv"),
        ("aio_await", "sleep(0)"),
        ("aio_echo", "sock_*"),
        ("aio_echo", "streams"),
    ]:
        assert any(r["case"] == case and r["baseline"] == baseline for r in records), case
    caches = {r["params"]["cache"] for r in records if r["case"] == "small_files"}
    assert caches == {"warm", "cold"}
    # Every row of the table is the record of iouring's fastest path against one baseline.
    names = tuple(f"{case} " for case in _bench.ALL_CASES)
    rows = [line for line in stdout.splitlines() if line.startswith(names)]
    assert len(rows) == len(_bench._best(records)) < len(records)


def test_bench_subset_in_process() -> None:
    opts = _bench.Options(
        quick=True, rounds=1, seconds=0.005, direct_seconds=0.005, cases=frozenset({"nop"})
    )
    out, err = io.StringIO(), io.StringIO()
    records = _bench.run(opts, out=out, err=err)
    text = out.getvalue()
    if "C reference skipped" in text:
        assert records == []  # NOPs have no baseline but C
    else:
        assert {(r["params"]["batch"], r["params"]["path"]) for r in records} == {
            (b, p) for b in (1, 64, 1024) for p in ("batch", "single")
        }
        assert all(r["baseline"] == "c" for r in records)
        assert "summary:" in text


def test_cli_help_lists_bench_and_keeps_demo_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "bench" in text and "--size" in text and "--depth" in text
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    text = capsys.readouterr().out
    for option in ("--quick", "--json", "--rounds", "--cases", "--dir"):
        assert option in text


def test_cli_without_subcommand_runs_report_and_demo(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "iouring", "--size", str(1 << 20), "--depth", "4"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=slow(120),
    )
    assert proc.returncode == 0, proc.stderr
    assert "operations supported" in proc.stdout
    assert "every byte verified" in proc.stdout
    # Like with like: each job's row names both ways and their ratio.
    lines = proc.stdout.splitlines()
    big = next(line for line in lines if "read 1 MiB into one array" in line)
    assert "os.preadv loop" in big and "_batch, 4 in flight" in big  # read_fixed_batch, or
    # read_batch where registering the array fails
    assert big.split()[-2].endswith("x") and big.split()[-1].endswith("/9")  # rounds won
    small = next(line for line in lines if "files of 1-64 KiB whole" in line)
    assert "open/read loop" in small and "iouring.read_files" in small
    assert "a ratio above 1.00x means iouring did the job faster" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "0"], "--size and --chunk must be positive"),
        (["--depth", "3"], "--depth must be a power of two"),
        (["--rounds", "0"], "--rounds must be >= 1"),
    ],
)
def test_cli_rejects_bad_demo_options(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main(args)
    assert message in capsys.readouterr().err


def test_cli_rejects_unknown_case() -> None:
    with pytest.raises(SystemExit, match="unknown cases"):
        cli.main(["bench", "--cases", "nop,bogus"])


def test_options_quick_and_full_defaults() -> None:
    parser = argparse.ArgumentParser()
    _bench.add_arguments(parser)
    quick = _bench.options_from(parser.parse_args(["--quick"]))
    assert (quick.quick, quick.rounds, quick.file_size) == (True, 2, 64 << 20)
    full = _bench.options_from(parser.parse_args(["--rounds", "7", "--cases", "nop,memory"]))
    assert (full.quick, full.rounds, full.file_size) == (False, 7, 1 << 30)
    assert full.cases == frozenset({"nop", "memory"})


def test_records_one_per_path_and_baseline() -> None:
    def never(n: int) -> float:
        raise AssertionError

    case = _bench.Case(
        "nop",
        {"batch": 64},
        [
            _bench.Contender("batch", never, True),
            _bench.Contender("single", never, True),
            _bench.Contender("c", never, False),
        ],
    )
    measured = {
        "batch": _bench.Measured([8.0, 10.0, 12.0]),
        "single": _bench.Measured([3.0]),
        "c": _bench.Measured([20.0, 20.0]),
    }
    records = _bench._records(case, measured)
    assert records == [
        {
            "case": "nop",
            "params": {"batch": 64, "path": "batch"},
            "unit": "ops/s",
            "ops_per_s": 10.0,
            "baseline": "c",
            "baseline_ops_per_s": 20.0,
            "ratio": 0.5,
            "noise": pytest.approx(0.4),
            "baseline_noise": 0.0,
            "round_ratios": [0.4, 0.5],  # rounds pair up in order
            "rounds_won": 0,
        },
        {
            "case": "nop",
            "params": {"batch": 64, "path": "single"},
            "unit": "ops/s",
            "ops_per_s": 3.0,
            "baseline": "c",
            "baseline_ops_per_s": 20.0,
            "ratio": 0.15,
            "noise": 0.0,
            "baseline_noise": 0.0,
            "round_ratios": [0.15],
            "rounds_won": 0,
        },
    ]
    assert measured["batch"].spread == pytest.approx(0.4)
    lines = _bench._table(records)
    assert len(lines) == 4  # header, rule, two rows
    assert "0.50x" in lines[2] and lines[2].endswith("won 0/2, 0.40-0.50x")
    # Aligned: every column starts at the same place on every line.
    assert len({line.index("ratio") if i == 0 else -1 for i, line in enumerate(lines)}) == 2
    assert lines[2].index("0.50x") == lines[3].index("0.15x")


def test_long_operations_interleave_one_by_one_within_a_round() -> None:
    """A case whose rounds hold a few long operations runs them alternately, one call of
    one operation each, so both sides of a comparison see the same load."""
    calls: list[tuple[str, int]] = []

    def contender(name: str, seconds_per_op: float) -> _bench.Contender:
        def run(n: int) -> float:
            calls.append((name, n))
            return n * seconds_per_op

        return _bench.Contender(name, run, name == "ring")

    case = _bench.Case(
        "ranges",
        {},
        [contender("ring", 0.01), contender("loop", 0.02)],
        first_ops=1,
        seconds=0.04,
    )
    progress = _bench.Progress(io.StringIO(), 1)
    measured = _bench._measure(case, 2, progress, "ranges", [])
    # Calibration: one operation each (ring: 4 per round, loop: 2). Then round 1 (ring
    # first) and round 2 (loop first), alternating until each has run its count.
    ring, loop = ("ring", 1), ("loop", 1)
    calibration = [ring, loop]
    round_1 = [ring, loop, ring, loop, ring, ring]
    round_2 = [loop, ring, loop, ring, ring, ring]
    assert calls == calibration + round_1 + round_2
    assert measured["ring"].rates == [100.0, 100.0]
    assert measured["loop"].rates == [50.0, 50.0]
    # Short operations (many per round) still run a round per call.
    many = _bench.Case("nop", {}, [contender("ring", 1e-6)], first_ops=64, seconds=0.01)
    calls.clear()
    _bench._measure(many, 1, progress, "nop", [])
    assert all(n > 1 for _, n in calls)


def test_scaled_case_counts_items() -> None:
    def never(n: int) -> float:
        raise AssertionError

    contenders = [
        _bench.Contender("read_files", never, True),
        _bench.Contender("loop", never, False),
    ]
    case = _bench.Case("small_files", {"cache": "warm"}, contenders, scale=2000)
    measured = {"read_files": _bench.Measured([3.0]), "loop": _bench.Measured([2.0])}
    [record] = _bench._records(case, measured)
    assert (record["ops_per_s"], record["baseline_ops_per_s"]) == (6000.0, 4000.0)
    assert record["ratio"] == 1.5 and record["unit"] == "files/s"
    assert "files/s" in _bench._table([record])[2]


def test_c_reference_skips_without_compiler_or_source(tmp_path: Path) -> None:
    message = _bench.CReference.build(str(tmp_path / "no-such-cc"), None, str(tmp_path))
    assert isinstance(message, str) and message.startswith("C reference skipped")
    message = _bench.CReference.build(None, str(tmp_path / "missing.c"), str(tmp_path))
    assert isinstance(message, str) and "missing.c not found" in message


def test_c_reference_nop(c_reference: Any) -> None:
    for batch in (1, 64):
        assert c_reference.nop(batch, 1000) > 0
    with pytest.raises(OSError, match="Invalid argument"):
        c_reference.nop(0, 10)


@pytest.mark.parametrize("fixed", [False, True], ids=["plain", "fixed"])
def test_c_reference_reads_land_in_buffer(c_reference: Any, tmp_path: Path, fixed: bool) -> None:
    path = tmp_path / "data"
    _bench._make_file(str(path), 1 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        qd, size = 4, 4096
        offsets = np.array([5, 9, 0, 200, 17, 3], dtype=np.uint64) * size
        buf = _bench._aligned(qd * size)
        assert c_reference.reads(fd, qd, size, offsets, len(offsets), buf, fixed) > 0
        # Every slot holds one of the blocks read; a block starts with its own offset.
        heads = set(buf.reshape(qd, size)[:, :8].copy().view(np.uint64).ravel().tolist())
        assert heads <= set(offsets.tolist()) and len(heads) == qd
        # A read past the end of the file is a short read: the reference reports EIO.
        with pytest.raises(OSError, match="Input/output error"):
            c_reference.reads(fd, qd, size, np.array([1 << 20], dtype=np.uint64), 1, buf, fixed)
    finally:
        os.close(fd)


def test_make_file_layout(tmp_path: Path) -> None:
    path = tmp_path / "layout"
    _bench._make_file(str(path), 1 << 20)
    data = np.fromfile(path, dtype=np.uint64)
    assert data.size == (1 << 20) // 8
    assert (data[::512] == np.arange(0, 1 << 20, 4096, dtype=np.uint64)).all()


def _record(case: str, path: str, baseline: str, ratio: float, noise: float = 0.02) -> Any:
    return {
        "case": case,
        "params": {"qd": 1, "path": path},
        "unit": "ops/s",
        "ops_per_s": ratio,
        "baseline": baseline,
        "baseline_ops_per_s": 1.0,
        "ratio": ratio,
        "noise": noise,
        "baseline_noise": noise,
    }


def test_summary_counts_wins_ties_and_losses_of_the_best_path() -> None:
    records = [
        _record("random_read", "batch", "pread", 1.5),
        _record("random_read", "single", "pread", 0.5),  # not the best path: not counted
        _record("random_read", "batch", "c", 0.99, noise=0.04),  # within ±2%: a tie
        _record("direct_read", "batch", "preadv", 0.7),
    ]
    lines = _bench._summary(records)
    assert lines[0].endswith("faster in 1, within the noise in 1 and slower in 1 of 3 comparisons")
    assert lines[1].split()[:2] == ["faster", "1.50x"]
    assert lines[1].endswith("random_read qd=1: batch vs pread")
    assert lines[2].split()[:2] == ["slower", "0.70x"]
    assert len(lines) == 3
    assert _bench._summary([]) == []


def test_summary_counts_a_win_only_when_three_quarters_of_the_rounds_agree() -> None:
    def with_rounds(case: str, rounds: list[float], ratio: float) -> Any:
        r = _record(case, "batch", "pread", ratio, noise=0.0)
        r["round_ratios"] = rounds
        r["rounds_won"] = sum(x > 1.0 for x in rounds)
        return r

    records = [
        with_rounds("random_read", [1.2, 1.3, 0.9, 1.1], 1.15),  # 3 of 4: faster
        with_rounds("direct_read", [1.2, 1.3, 0.9, 0.8], 1.05),  # 2 of 4: a tie
        with_rounds("sequential_read", [0.9, 0.8, 0.95, 0.7, 1.1], 0.9),  # lost 4 of 5: slower
    ]
    lines = _bench._summary(records)
    assert lines[0].endswith("faster in 1, within the noise in 1 and slower in 1 of 3 comparisons")
    table = _bench._table(records)
    assert table[2].endswith("won 3/4, 0.90-1.30x")
    assert table[4].endswith("won 1/5, 0.70-1.10x")


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "ratios.png"
    _bench._plot(
        [_record("nop", "batch", "c", 0.8), _record("ranges", "read_ranges", "preadv", 1.4)],
        str(path),
        "t",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# The TUNE_* bits of c_reference.c that a test may ask for, one at a time and all together
# (ref_reads_tuned refuses DEFER_TASKRUN with COOP_TASKRUN).
C_TUNES = {
    "fixed_file": 1,
    "defer_taskrun": 2,
    "coop_taskrun": 4,
    "ring_fd": 8,
    "no_sqarray": 16,
    "single_issuer": 32,
    "halves": 64,
    "best": 1 | 2 | 8 | 16,
}


@pytest.mark.parametrize("fixed", [False, True], ids=["plain", "fixed"])
@pytest.mark.parametrize("tune", list(C_TUNES.values()), ids=list(C_TUNES))
def test_c_reference_tuned_reads_land_in_buffer(
    c_reference: Any, tmp_path: Path, fixed: bool, tune: int
) -> None:
    path = tmp_path / "data"
    _bench._make_file(str(path), 1 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        qd, size = 4, 4096
        offsets = np.array([5, 9, 0, 200, 17, 3, 8, 100], dtype=np.uint64) * size
        buf = _bench._aligned(qd * size)
        try:
            assert c_reference.reads(fd, qd, size, offsets, len(offsets), buf, fixed, tune) > 0
        except OSError as exc:
            if exc.errno == 22:  # a ring flag this kernel does not know
                pytest.skip(f"the kernel refuses TUNE mask {tune}: {exc}")
            raise
        heads = set(buf.reshape(qd, size)[:, :8].copy().view(np.uint64).ravel().tolist())
        # In halves, reads that complete at once reuse the first qd/2 slots over and over.
        assert heads <= set(offsets.tolist()) and len(heads) >= (qd // 2 if tune & 64 else qd)
        with pytest.raises(OSError, match="Input/output error"):
            c_reference.reads(
                fd, qd, size, np.array([1 << 20], dtype=np.uint64), 1, buf, fixed, tune
            )
    finally:
        os.close(fd)


def test_c_reference_registered_ring_does_not_leak(c_reference: Any, tmp_path: Path) -> None:
    """A thread has 16 registered-ring slots and closing a ring does not free its slot: the
    reference unregisters, so 40 tuned runs in one thread all succeed (else EBUSY)."""
    path = tmp_path / "data"
    _bench._make_file(str(path), 1 << 16)
    fd = os.open(path, os.O_RDONLY)
    try:
        offsets = np.zeros(1, dtype=np.uint64)
        buf = _bench._aligned(4096)
        try:
            c_reference.reads(fd, 1, 4096, offsets, 1, buf, False, _bench.TUNE_REGISTERED_RING)
        except OSError as exc:
            pytest.skip(f"no registered ring fds here: {exc}")
        for _ in range(40):
            c_reference.reads(fd, 1, 4096, offsets, 1, buf, False, _bench.TUNE_REGISTERED_RING)
    finally:
        os.close(fd)


def test_c_reference_refuses_unknown_tune_bits(c_reference: Any) -> None:
    buf = _bench._aligned(4096)
    offsets = np.zeros(1, dtype=np.uint64)
    with pytest.raises(OSError, match="Invalid argument"):
        c_reference.reads(0, 1, 4096, offsets, 1, buf, False, 1 << 20)
    with pytest.raises(OSError, match="Invalid argument"):  # DEFER_TASKRUN with COOP_TASKRUN
        c_reference.reads(0, 1, 4096, offsets, 1, buf, False, 2 | 4)


def test_probe_tuning_is_consistent(tmp_path: Path) -> None:
    path = tmp_path / "data"
    _bench._make_file(str(path), 1 << 16)
    fd = os.open(path, os.O_RDONLY)
    try:
        tuning = _bench._probe_tuning(fd)
    finally:
        os.close(fd)
    bits = {
        "fixed_file": _bench.TUNE_FIXED_FILE,
        "defer_taskrun": _bench.TUNE_DEFER_TASKRUN,
        "no_sqarray": _bench.TUNE_NO_SQARRAY,
        "ring_fd": _bench.TUNE_REGISTERED_RING,
    }
    assert set(tuning.names) <= set(bits)
    assert tuning.c_mask == sum(bits[n] for n in tuning.names)
    assert tuning.label == ("+".join(tuning.names) or "none")
    assert tuning.fixed_file == ("fixed_file" in tuning.names)
    assert tuning.registered_ring == ("ring_fd" in tuning.names)
    defer = int(iouring.SetupFlags.SINGLE_ISSUER | iouring.SetupFlags.DEFER_TASKRUN)
    assert bool(tuning.setup_flags & defer) == ("defer_taskrun" in tuning.names)
    no_sqarray = int(iouring.SetupFlags.NO_SQARRAY)
    assert bool(tuning.setup_flags & no_sqarray) == ("no_sqarray" in tuning.names)


@pytest.mark.parametrize("fixed", [False, True], ids=["plain", "fixed"])
def test_tuned_batch_reader_reads_and_cleans_up(tmp_path: Path, fixed: bool) -> None:
    path = tmp_path / "data"
    _bench._make_file(str(path), 1 << 20)
    fd = os.open(path, os.O_RDONLY)
    cleanup: list[Any] = []
    try:
        tuning = _bench._probe_tuning(fd)
        if not tuning.names:
            pytest.skip("the kernel supports none of the tuning")
        offsets = _bench._random_offsets(1 << 20, 4096, 300, seed=3)
        work = _bench.ReadWork(fd, 4096, 16, offsets, offsets.tolist(), False)
        run = _bench._batch_reader(work, fixed, cleanup, tuning)  # checks the data it reads
        assert run(300) > 0 and run(7) > 0
    finally:
        for done in cleanup:
            done()
        os.close(fd)
    # Twenty more tuned rings in this thread: each one's registered ring fd was released.
    if tuning.registered_ring:
        for _ in range(20):
            ring = iouring.IoUring(2)
            ring.register_ring_fd()
            ring.unregister_ring_fd()
            ring.close()
