"""Shared fixtures: the io_uring probe, ring configurations, rings, files, pipes and writers.

Every ring made through ``make_ring``/``ring``/``make_default_ring`` is registered; after the
test, each one that is still open must have nothing in flight and nothing pinned, and is closed.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import itertools
import os
import platform
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest

import iouring
from iouring import IoUring, SetupFlags

# --------------------------------------------------------------------------------------------
# Session: is io_uring usable at all?


def _io_uring_unavailable_reason() -> str | None:
    """Why io_uring_setup fails here (seccomp, sysctl, old kernel), or None when it works."""
    try:
        with IoUring(1):
            pass
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno in (
            errno.EPERM,
            errno.EACCES,
            errno.ENOSYS,
        ):
            return (
                f"io_uring_setup failed: {exc} (a container's seccomp profile, "
                "kernel.io_uring_disabled, or a kernel without io_uring)"
            )
    return None


def _read_sysctl(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "n/a"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"kernel.io_uring_disabled: {_read_sysctl('/proc/sys/kernel/io_uring_disabled')}",
        f"iouring: {getattr(iouring, '__version__', '?')} from {os.path.dirname(iouring.__file__)}",
    ]


# --------------------------------------------------------------------------------------------
# The kernel-sensitive selection, ``pytest -m kernel``: what differs between kernel releases
# (setup flags and ring configurations, the probe, each operation family, registration, the
# safety basics, the high-level helpers), sized to run in about 15 minutes per kernel under
# qemu's TCG emulator (tools/kernel-matrix runs it on Debian's 6.1 and 6.12 in CI). Each entry is a node-id prefix
# and whether its tests run over every ring configuration or the default one only (tests not
# parametrised over ring_config always run).
KERNEL_SELECTION: tuple[tuple[str, bool], ...] = (
    ("tests/test_ring.py::test_setup", True),
    ("tests/test_ring.py::test_probe", True),
    ("tests/test_ring.py::test_entries", True),
    ("tests/test_ring.py::test_nop", True),
    ("tests/test_ring.py::test_sq_", True),
    ("tests/test_ring.py::test_cq_", True),
    ("tests/test_ring.py::test_copy_cqes", True),
    ("tests/test_ring.py::test_submit_and_wait", True),
    ("tests/test_ring.py::test_enter", True),
    ("tests/test_ring.py::test_register_eventfd", True),
    ("tests/test_ring.py", False),
    ("tests/test_register.py", True),
    ("tests/test_kernels.py", False),
    ("tests/test_aio.py", False),
    ("tests/test_arena.py", False),
    ("tests/test_helpers.py", False),
    ("tests/ops/", False),
    ("tests/test_safety.py::test_pin", False),
    ("tests/test_safety.py::test_refcount", False),
    ("tests/test_safety.py::test_stale", False),
    ("tests/test_safety.py::test_registered", False),
    ("tests/test_safety.py::test_close_with", False),
    ("tests/test_safety.py::test_fork", False),
    ("tests/test_safety.py::test_unregister_", False),
    ("tests/test_wide.py::test_wait_submits", False),
)


def _in_kernel_selection(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    config = callspec.params.get("ring_config") if callspec is not None else None
    for prefix, all_configs in KERNEL_SELECTION:
        if item.nodeid.startswith(prefix):
            return all_configs or config is None or config == DEFAULT_CONFIG
    return False


# IOURING_TEST_TIMEOUT=<seconds> (tools/kernel-matrix sets it in its guests): a test still
# running after that long is interrupted by SIGUSR2 from a watchdog thread (a blocking wait
# then fails with TestTimeout and the run goes on); one that ignores it a minute later too
# ends the run with every thread's traceback (faulthandler). So a wait that never returns on
# some kernel fails one test instead of using up the guest's time.
_TEST_TIMEOUT = float(os.environ.get("IOURING_TEST_TIMEOUT", "0") or 0)
# Where the tracebacks go (pytest captures fd 2 during a test): IOURING_TEST_TIMEOUT_LOG, a file
# appended to, or stderr.
_TIMEOUT_LOG = os.environ.get("IOURING_TEST_TIMEOUT_LOG")


class TestTimeout(Exception):
    """Raised in a test that ran longer than IOURING_TEST_TIMEOUT seconds."""

    __test__ = False


def _timeout_log() -> TextIO:
    return open(_TIMEOUT_LOG, "a") if _TIMEOUT_LOG else sys.stderr


def _on_test_timeout(signum: int, frame: object) -> None:
    log = _timeout_log()
    faulthandler.dump_traceback(file=log, all_threads=True)
    if log is sys.stderr:
        log.flush()
    else:
        log.close()
    raise TestTimeout(f"the test ran longer than IOURING_TEST_TIMEOUT={_TEST_TIMEOUT:g} s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    if _TEST_TIMEOUT <= 0:
        return (yield)
    previous = signal.signal(signal.SIGUSR2, _on_test_timeout)
    watchdog = threading.Timer(
        _TEST_TIMEOUT, signal.pthread_kill, (threading.get_ident(), signal.SIGUSR2)
    )
    watchdog.daemon = True
    watchdog.start()
    log = _timeout_log()
    if log is not sys.stderr:
        print(f"{item.nodeid}: running", file=log, flush=True)
    # A blocking call that holds the GIL keeps the watchdog thread from running: then this
    # C-level one ends the run.
    faulthandler.dump_traceback_later(_TEST_TIMEOUT + 60, exit=True, file=log)
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()
        if log is not sys.stderr:
            log.close()
        watchdog.cancel()
        signal.signal(signal.SIGUSR2, previous)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kernel: the kernel-sensitive selection run on other kernels (conftest.py)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _in_kernel_selection(item):
            item.add_marker(pytest.mark.kernel)
    reason = _io_uring_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        item.add_marker(skip)


# --------------------------------------------------------------------------------------------
# Ring configurations


@dataclass(frozen=True)
class RingConfig:
    """One way of setting up a ring; tests run once per configuration."""

    name: str
    flags: int

    @property
    def sqpoll(self) -> bool:
        """A kernel thread consumes the SQ: sq_head and completions move on their own."""
        return bool(self.flags & SetupFlags.SQPOLL)

    @property
    def defer_taskrun(self) -> bool:
        """Completions needing task work are only posted when the issuer enters with GETEVENTS."""
        return bool(self.flags & SetupFlags.DEFER_TASKRUN)

    @property
    def inline_completions(self) -> bool:
        """NOPs submitted by submit() are surely visible in the CQ when submit() returns (with
        SQPOLL or DEFER_TASKRUN a test must wait for them instead)."""
        return not (self.sqpoll or self.defer_taskrun)

    def __str__(self) -> str:
        return self.name


RING_CONFIGS = (
    RingConfig("default", 0),
    RingConfig("sqpoll", int(SetupFlags.SQPOLL)),
    RingConfig("no_sqarray", int(SetupFlags.NO_SQARRAY)),
    RingConfig(
        "single_issuer_defer_taskrun",
        int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN),
    ),
    RingConfig("coop_taskrun_flag", int(SetupFlags.COOP_TASKRUN | SetupFlags.TASKRUN_FLAG)),
)
DEFAULT_CONFIG = RING_CONFIGS[0]

# Errnos with which a kernel says "this setup is not for you": an unknown flag (EINVAL), a
# privilege it wants (EPERM), a feature compiled out (EOPNOTSUPP).
_REFUSAL_ERRNOS = (errno.EINVAL, errno.EPERM, errno.EOPNOTSUPP)


@pytest.fixture(autouse=True)
def ring_registry() -> Iterator[list[IoUring]]:
    """Rings made through the fixtures; checked clean and closed after the test."""
    rings: list[IoUring] = []
    yield rings
    problems = []
    for ring in rings:
        if ring.closed:
            continue
        try:
            in_flight, pinned = ring.in_flight, ring.pinned
            if in_flight != 0 or pinned != 0:
                problems.append(f"ring fd {ring.fd}: in_flight={in_flight} pinned={pinned}")
        finally:
            ring.close()
    if problems:
        pytest.fail("rings not clean at teardown: " + "; ".join(problems), pytrace=False)


def _new_ring(
    registry: list[IoUring], config: RingConfig, entries: int, kwargs: dict[str, object]
) -> IoUring:
    flags = int(kwargs.pop("flags", 0)) | config.flags  # type: ignore[call-overload]
    try:
        ring = IoUring(entries, flags=flags, **kwargs)  # type: ignore[arg-type]
    except OSError as exc:
        if exc.errno in _REFUSAL_ERRNOS:
            pytest.skip(f"kernel refuses the {config.name} ring (flags {flags:#x}): {exc}")
        raise
    registry.append(ring)
    return ring


@pytest.fixture(params=RING_CONFIGS, ids=[c.name for c in RING_CONFIGS])
def ring_config(request: pytest.FixtureRequest) -> RingConfig:
    """The ring configuration of this run of the test."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_ring(ring_config: RingConfig, ring_registry: list[IoUring]) -> Callable[..., IoUring]:
    """``make_ring(entries, **kwargs)``: a ring of the current configuration (extra ``flags`` are
    or-ed in); skips when the kernel refuses the configuration; closed at teardown."""

    def make(entries: int = 8, **kwargs: object) -> IoUring:
        return _new_ring(ring_registry, ring_config, entries, dict(kwargs))

    return make


@pytest.fixture
def ring(make_ring: Callable[..., IoUring]) -> IoUring:
    """A 16-entry ring of the current configuration."""
    return make_ring(16)


@pytest.fixture
def make_default_ring(ring_registry: list[IoUring]) -> Callable[..., IoUring]:
    """Like ``make_ring`` but always the default configuration: for per-process behaviour
    (threads, fork, signals) that SINGLE_ISSUER forbids or other configurations don't change."""

    def make(entries: int = 8, **kwargs: object) -> IoUring:
        return _new_ring(ring_registry, DEFAULT_CONFIG, entries, dict(kwargs))

    return make


# --------------------------------------------------------------------------------------------
# Files, pipes, writers


@dataclass
class TmpFile:
    """A file in the test's tmp_path, open read-write; usable wherever an fd is."""

    path: Path
    fd: int

    def fileno(self) -> int:
        return self.fd

    def pread(self, size: int, offset: int = 0) -> bytes:
        return os.pread(self.fd, size, offset)

    def contents(self) -> bytes:
        return self.path.read_bytes()


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


@pytest.fixture
def tmp_file(tmp_path: Path) -> Iterator[Callable[..., TmpFile]]:
    """``tmp_file(content=b"", name=None)``: a new file with ``content``, open O_RDWR."""
    fds: list[int] = []
    counter = itertools.count()

    def make(content: bytes = b"", name: str | None = None) -> TmpFile:
        path = tmp_path / (name or f"tmp_file_{next(counter)}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        fds.append(fd)
        if content:
            assert os.pwrite(fd, content, 0) == len(content)
        return TmpFile(path, fd)

    yield make
    for fd in fds:
        _close_quietly(fd)


@pytest.fixture
def closed_fd(tmp_path: Path) -> int:
    """A descriptor number that was open a moment ago and is closed now: an operation on it
    completes with -EBADF (ask for it after the ring, so nothing takes the number again)."""
    fd = os.open(tmp_path / "closed", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    os.close(fd)
    return fd


@pytest.fixture
def make_pipe() -> Iterator[Callable[[], tuple[int, int]]]:
    """``make_pipe()``: a new (read_fd, write_fd) pair, closed at teardown."""
    fds: list[int] = []

    def make() -> tuple[int, int]:
        r, w = os.pipe2(os.O_CLOEXEC)
        fds.extend((r, w))
        return r, w

    yield make
    for fd in fds:
        _close_quietly(fd)


@pytest.fixture
def pipe(make_pipe: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    """A (read_fd, write_fd) pipe."""
    return make_pipe()


_WRITER = (
    "import os, sys, time\n"
    "os.write(int(sys.argv[4]), b'r')\n"
    "os.close(int(sys.argv[4]))\n"
    "time.sleep(float(sys.argv[2]))\n"
    "os.write(int(sys.argv[1]), bytes.fromhex(sys.argv[3]))\n"
)
# How long a writer process may take to start: seconds under qemu's TCG emulator (15 s for six
# at once on 6.12), which no test's own bound should include.
_WRITER_START_TIMEOUT = 300.0


@pytest.fixture
def delayed_write() -> Iterator[Callable[[int, bytes, float], subprocess.Popen[bytes]]]:
    """``delayed_write(fd, data, delay)``: another process writes ``data`` to ``fd`` ``delay``
    seconds after this call returns (it returns once the process runs, so its start-up counts
    in no test's bound). Needs neither our GIL nor our ring, so it also unblocks a test whose
    blocking call wrongly holds the GIL. Processes still running at teardown are killed."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(fd: int, data: bytes, delay: float) -> subprocess.Popen[bytes]:
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _WRITER, str(fd), str(delay), data.hex(), str(ready_w)],
                pass_fds=(fd, ready_w),
            )
            procs.append(proc)
            os.close(ready_w)
            ready_w = -1
            readable, _, _ = select.select([ready_r], [], [], _WRITER_START_TIMEOUT)
            if not readable or os.read(ready_r, 1) != b"r":
                pytest.fail(f"the writer process did not start in {_WRITER_START_TIMEOUT:g} s")
        finally:
            os.close(ready_r)
            if ready_w >= 0:
                os.close(ready_w)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
