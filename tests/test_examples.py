"""Every program in examples/ runs as a user would run it (a subprocess of this interpreter,
with this environment) against real files, pipes and sockets, and its output is checked."""

from __future__ import annotations

import importlib.util
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kernel_support import slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(
    name: str, *args: str | Path, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Runs ``examples/<name>`` with ``args``; returns the finished process."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=slow(timeout),
        check=False,
    )


def test_every_example_is_tested() -> None:
    tested = {"cat.py", "cp.py", "async_files.py", "completion_stats.py", "echo_server.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} <= tested


# --------------------------------------------------------------------------------------------
# cat.py


def test_cat(tmp_path: Path) -> None:
    big = os.urandom(1_000_003)  # many chunks, several reads in flight, a short last one
    (tmp_path / "big").write_bytes(big)
    (tmp_path / "small").write_bytes(b"small\n")
    (tmp_path / "empty").write_bytes(b"")
    proc = run_example(
        "cat.py", tmp_path / "small", tmp_path / "big", tmp_path / "empty", tmp_path / "small"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"small\n" + big + b"small\n"
    assert proc.stderr == b""


def test_cat_stdin_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"A\n")
    proc = run_example("cat.py", "-", tmp_path / "a", stdin=b"from stdin\n" * 10_000)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"from stdin\n" * 10_000 + b"A\n"
    proc = run_example("cat.py", tmp_path / "missing", tmp_path / "a", tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == b"A\n"
    assert b"missing: No such file or directory" in proc.stderr
    assert b"Is a directory" in proc.stderr


# --------------------------------------------------------------------------------------------
# cp.py


@pytest.mark.parametrize(
    "options", [[], ["--chunk", "4096", "--depth", "3"], ["--chunk", "1000", "--depth", "1"]]
)
def test_cp(tmp_path: Path, options: list[str]) -> None:
    data = os.urandom(300_001)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(data)
    dst.write_bytes(b"x" * 400_000)  # longer: must be truncated
    proc = run_example("cp.py", "-v", *options, src, dst)
    assert proc.returncode == 0, proc.stderr
    assert dst.read_bytes() == data
    assert re.match(rb"300001 bytes in [0-9.]+ s \([0-9.]+ MB/s\)\n", proc.stdout), proc.stdout


def test_cp_empty_and_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    proc = run_example("cp.py", tmp_path / "empty", tmp_path / "copy")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert (tmp_path / "copy").read_bytes() == b""
    proc = run_example("cp.py", tmp_path / "missing", tmp_path / "copy")
    assert proc.returncode == 1
    assert b"missing: No such file or directory" in proc.stderr
    proc = run_example("cp.py", tmp_path, tmp_path / "copy2")
    assert proc.returncode == 1 and b"Is a directory" in proc.stderr
    if os.path.exists("/dev/full"):
        (tmp_path / "data").write_bytes(b"d" * 10_000)
        proc = run_example("cp.py", tmp_path / "data", "/dev/full")
        assert proc.returncode == 1
        assert b"/dev/full: No space left on device" in proc.stderr


# --------------------------------------------------------------------------------------------
# async_files.py


def test_async_files(tmp_path: Path) -> None:
    proc = run_example("async_files.py", tmp_path, "--files", "50", "--size", "1000")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "wrote 50 files with 50 tasks" in out
    assert "read 50 files with 50 tasks" in out
    assert "read 50 files in 3 batch awaits" in out
    assert "timed out after" in out
    assert out.endswith("ok\n")
    files = sorted(tmp_path.glob("async_*.txt"))
    assert len(files) == 50
    assert files[7].read_bytes().startswith(b"file 000007\n")


# --------------------------------------------------------------------------------------------
# completion_stats.py


def test_completion_stats(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(os.urandom(1 << 20))
    png = tmp_path / "plot.png"
    proc = run_example(
        "completion_stats.py",
        data,
        "--ops",
        "3000",
        "--depth",
        "16",
        "--errors",
        "0.1",
        "--png",
        png,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert re.search(r"^3000 reads of 4096 bytes, queue depth 16", out, re.M), out
    assert re.search(
        r"latency \(us\): p50 [0-9.]+, p90 [0-9.]+, p99 [0-9.]+, p99\.9 [0-9.]+, "
        r"max [0-9.]+",
        out,
    ), out
    bad = int(re.search(r"errors by errno: EBADF: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert 150 < bad < 450  # 10% of 3000
    moved = int(re.search(r"throughput: [0-9.]+ MB/s \((\d+) bytes\)", out).group(1))  # type: ignore[union-attr]
    assert moved == (3000 - bad) * 4096
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib is not installed: no plot" in out
        assert not png.exists()
    else:
        assert f"plot saved to {png}" in out
        assert png.read_bytes().startswith(b"\x89PNG")


def test_completion_stats_no_errors() -> None:
    proc = run_example("completion_stats.py", "--ops", "500", "--errors", "0")
    assert proc.returncode == 0, proc.stderr
    assert b"errors by errno: none" in proc.stdout


# --------------------------------------------------------------------------------------------
# echo_server.py


def _echo_missing() -> list[str]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import echo_server

        return list(echo_server.missing_operations())
    finally:
        sys.path.pop(0)


def test_echo_server() -> None:
    missing = _echo_missing()
    if missing:
        pytest.skip(f"echo server unsupported here: {', '.join(missing)}")
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", "0", "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], slow(30))
        assert ready, "the server printed nothing"
        line = proc.stdout.readline().decode()
        match = re.match(r"echo server listening on 127\.0\.0\.1:(\d+)$", line.strip())
        assert match, line
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=slow(10)) as conn:
            for message in (b"hello\n", b"x" * 100_000, b"bye\n"):
                conn.sendall(message)
                got = b""
                while len(got) < len(message):
                    chunk = conn.recv(65536)
                    assert chunk, "the server closed early"
                    got += chunk
                assert got == message
        out, err = proc.communicate(timeout=slow(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.decode().strip() == "served 1 connections, echoed 100010 bytes"


def test_echo_server_usage_error() -> None:
    start = time.monotonic()
    proc = run_example("echo_server.py", "--port", "not-a-number")
    assert proc.returncode == 2
    assert b"invalid int value" in proc.stderr
    assert time.monotonic() - start < 60
