"""A bounded random fuzz of the public API: random methods of IoUring, Sqe and BufferRing with
random argument types and values, interleaved with close, resize, register and reaping.

The promise under test is that no Python program can crash the process, hang it, or make the
kernel touch freed memory: every call either works or raises one of the documented exception
types. Run under the ASan build (.ci/run) a use-after-free or out-of-bounds access aborts the
process. The method list and parameter names come from the stubs (``_core.pyi``), so new API is
fuzzed without changes here.

Bounds: a fixed seed (``IOURING_FUZZ_SEED``, default 11) and whichever comes first of
``IOURING_FUZZ_SECONDS`` (default 20) and ``IOURING_FUZZ_CALLS`` (default 200000). The number
of calls made is printed. Any wait is interrupted by a periodic SIGALRM while a fuzzed call runs.
Paths live in a temporary directory (also the working directory), file descriptors are the
test's own (or invalid numbers), and every descriptor the kernel creates is closed at the end.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import gc
import mmap
import os
import pathlib
import random
import signal
import socket
import time
import warnings
from typing import Any

import numpy as np
import pytest
from sqe_support import SETTABLE_SQE_FIELDS

import iouring
from iouring import CQE_DTYPE, SQE_DTYPE, IoUring, SetupFlags

SEED = int(os.environ.get("IOURING_FUZZ_SEED", "11"))
SECONDS = float(os.environ.get("IOURING_FUZZ_SECONDS", "20"))
CALLS = int(os.environ.get("IOURING_FUZZ_CALLS", "200000"))
# IOURING_FUZZ_TRACE=path appends every call to that file before making it.
TRACE = open(os.environ["IOURING_FUZZ_TRACE"], "a") if "IOURING_FUZZ_TRACE" in os.environ else None  # noqa: SIM115

# What a call may raise: argument errors, kernel errors, a full SQ, a stale handle, a closed,
# broken or forked ring, a pinned buffer that cannot change (BufferError) and features this
# kernel lacks. Anything else (IndexError, KeyError, SystemError, MemoryError, ...) is a bug.
EXPECTED = (
    TypeError,
    ValueError,
    OverflowError,
    OSError,
    BufferError,
    RuntimeError,
    NotImplementedError,
    iouring.SubmissionQueueFull,
    iouring.StaleSqeError,
)

RING_FLAGS = [
    0,
    int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN),
    int(SetupFlags.COOP_TASKRUN | SetupFlags.TASKRUN_FLAG),
    int(SetupFlags.NO_SQARRAY),
    int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN | SetupFlags.NO_SQARRAY),
    int(SetupFlags.CQE32),
    int(SetupFlags.SQE128),
    int(SetupFlags.R_DISABLED),
]


# Parameters (and Sqe fields) that are real file descriptors for some operation.
FD_NAMES = {
    "fd",
    "epfd",
    "fd_in",
    "fd_out",
    "wq_fd",
    "splice_fd_in",
    "dir_fd",
    "old_dir_fd",
    "new_dir_fd",
}


class _Alarm(Exception):
    """Interrupts a fuzzed call that waits."""


class _Armed:
    on = False


def _on_alarm(signum: int, frame: object) -> None:
    if _Armed.on:
        raise _Alarm


def _methods() -> dict[str, list[tuple[str, list[str], list[str]]]]:
    """Class -> [(method, positional parameter names, optional/keyword names)] from the stubs."""
    stub = pathlib.Path(iouring.__file__).with_name("_core.pyi").read_text()
    out: dict[str, list[tuple[str, list[str], list[str]]]] = {}
    for node in ast.parse(stub).body:
        if not isinstance(node, ast.ClassDef) or node.name not in ("IoUring", "Sqe", "BufferRing"):
            continue
        methods = []
        for f in node.body:
            if not isinstance(f, ast.FunctionDef) or f.name.startswith("_"):
                continue
            if any(isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list):
                continue
            args = f.args.args[1:]
            required = [a.arg for a in args[: len(args) - len(f.args.defaults)]]
            optional = [a.arg for a in args[len(required) :]] + [a.arg for a in f.args.kwonlyargs]
            methods.append((f.name, required, optional))
        out[node.name] = methods
    return out


class Fuzzer:
    def __init__(self, rng: random.Random, tmp: pathlib.Path) -> None:
        self.rng = rng
        self.tmp = tmp
        self.rings: list[IoUring] = []
        self.sqes: list[Any] = []
        self.buffer_rings: list[Any] = []
        self.fds: list[int] = []
        self.sockets: list[socket.socket] = []
        self.keep: list[Any] = []  # objects whose memory an operation may still use
        self.methods = _methods()
        self.calls = 0
        self.unexpected: list[str] = []
        r, w = os.pipe()
        r2, w2 = os.pipe()
        a, b = socket.socketpair()
        sa, sb = a.detach(), b.detach()  # closed as fds (an operation may close them first)
        f = os.open(tmp / "file", os.O_RDWR | os.O_CREAT, 0o600)
        os.write(f, os.urandom(8192))
        d = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        self.fds += [r, w, r2, w2, sa, sb, f, d]

    # --- values ---------------------------------------------------------------------------

    def integer(self) -> int:
        r = self.rng
        return r.choice(
            [
                0,
                1,
                2,
                3,
                7,
                8,
                64,
                4096,
                -1,
                -2,
                2**31 - 1,
                2**31,
                2**32 - 1,
                2**32,
                2**63,
                2**64 - 1,
                2**64,
                -(2**63),
                r.getrandbits(8),
                r.getrandbits(16),
                r.getrandbits(32),
                r.getrandbits(64),
            ]
        )

    def fd(self) -> Any:
        return self.rng.choice([*self.fds, *self.fds, -1, -100, 10**6, 2**31, 2**40, "3", None])

    def buffer(self) -> Any:
        r = self.rng
        n = r.choice([0, 1, 3, 16, 64, 4096, 8192])
        kind = r.randrange(9)
        if kind == 0:
            return bytearray(n)
        if kind == 1:
            return bytes(n)
        if kind == 2:
            return np.zeros(n, dtype=r.choice([np.uint8, np.int32, np.uint64, np.float64]))
        if kind == 3:
            return memoryview(bytearray(n + 8))[r.randrange(8) :]
        if kind == 4:
            return mmap.mmap(-1, max(n, 1))
        if kind == 5:
            return np.zeros(r.choice([0, 1, 4, 16]), CQE_DTYPE)
        if kind == 6:
            return np.zeros((4, 4), np.uint8)[:, ::2]  # not contiguous
        if kind == 7:
            return np.zeros(r.choice([0, 1, 4]), SQE_DTYPE)
        return self.anything()

    def path(self) -> Any:
        r = self.rng
        name = r.choice(["a", "b", "file", "dir", "", "a/b", "\0x", "x" * 300])
        kind = r.randrange(5)
        if kind == 0:
            return name
        if kind == 1:
            return os.fsencode(name)
        if kind == 2:
            return self.tmp / name
        if kind == 3:
            return [r.choice(["a", "b", "file"]) for _ in range(r.choice([0, 1, 3]))]
        return self.anything()

    def array(self) -> Any:
        r = self.rng
        n = r.choice([0, 1, 2, 3, 8, 100])
        dtype = r.choice([np.uint64, np.int64, np.int32, np.uint32, np.uint8, np.int8, np.float64])
        a = np.arange(n).astype(dtype)
        if r.random() < 0.2:
            a = a[::-1]
        if r.random() < 0.1:
            return np.broadcast_to(np.ones(1, dtype), (r.choice([10, 2**20, 2**40]),))
        if r.random() < 0.1:
            return a.astype(a.dtype.newbyteorder(">"))
        if r.random() < 0.1:
            return list(a)
        return a

    def timeout(self) -> Any:
        return self.rng.choice(
            [None, 0, 0.0, 0.001, 0.01, -1, datetime.timedelta(milliseconds=1), "1", 2**64]
        )

    def anything(self) -> Any:
        r = self.rng
        return r.choice(
            [
                None,
                self.integer(),
                1.5,
                float("nan"),
                "x",
                b"x",
                [],
                [1, 2],
                {},
                object(),
                np.int64(3),
                np.float32(1),
                np.zeros(0),
                _Meddler(self),
                True,
            ]
        )

    def value(self, name: str) -> Any:
        r = self.rng
        if name in FD_NAMES:  # never a random number: fd 1 is pytest's capture file
            if r.random() < 0.8:
                return self.fd()
            # An array of descriptors: only ours (fd 0..n would close the test's own files).
            return np.array([r.choice(self.fds) for _ in range(r.choice([0, 1, 3]))], np.int32)
        if r.random() < 0.04:
            return self.anything()
        if r.random() < 0.01:
            return _Meddler(self)
        if name in ("fds",):
            return [self.fd() for _ in range(r.choice([0, 1, 3]))]
        if name in ("buffers", "iovecs", "futexes", "cpus"):
            return [self.buffer() for _ in range(r.choice([0, 1, 2, 3]))]
        if "timeout" in name or name == "ts":
            return self.timeout()
        if "path" in name:
            return self.path()
        if name in ("buffer", "out", "events", "statxbuf", "infop", "futex", "optval", "msg"):
            return self.buffer()
        if name in ("sqes",):
            return self.sqe_array()
        if name in ("source", "ring", "target") and self.rings:
            return r.choice(self.rings)
        if name == "cqe":
            return self.cqe()
        if name in ("sqe_ops", "register_ops"):
            return [r.randrange(70) for _ in range(r.choice([0, 2]))]
        if r.random() < 0.25:
            return self.array()
        return self.integer()

    def cqe(self) -> Any:
        r = self.rng
        c = np.zeros(1, CQE_DTYPE)
        c["flags"] = r.choice([0, 1, 1 | (1 << 16), 1 | (3 << 16), 1 | (70000 << 16) & 0xFFFFFFFF])
        c["res"] = r.choice([0, 1, 64, 4096, -11, 2**31 - 1])
        return r.choice(
            [c[0], c, iouring.Cqe(0, int(c["res"][0]), int(c["flags"][0])), self.anything()]
        )

    def sqe_array(self) -> Any:
        r = self.rng
        n = r.choice([0, 1, 4, 9])
        a = np.zeros(n, SQE_DTYPE)
        for row in a:
            row["opcode"] = r.randrange(70)
            row["fd"] = r.choice([*self.fds, -1])  # only ours: CLOSE would close any other
            for field in ("off", "addr", "len", "rw_flags", "user_data", "flags"):
                if r.random() < 0.3:
                    row[field] = r.getrandbits(8 if field == "flags" else 16)
        if r.random() < 0.05 and n:
            return np.broadcast_to(a[:1], (2**40,))
        return a

    # --- actions --------------------------------------------------------------------------

    def new_ring(self) -> None:
        r = self.rng
        flags = r.choice(RING_FLAGS)
        kwargs: dict[str, Any] = {}
        if r.random() < 0.2:
            kwargs["cq_entries"] = r.choice([16, 64, 1 << 20])
            if r.random() < 0.5:
                flags |= int(SetupFlags.CLAMP)
        with contextlib.suppress(*EXPECTED):
            self.rings.append(IoUring(r.choice([1, 2, 4, 8, 64]), flags=flags, **kwargs))

    def call(self, target: Any, cls: str) -> None:
        r = self.rng
        name, required, optional = r.choice(self.methods[cls])
        args = [self.value(p) for p in required]
        if r.random() < 0.03 and args:
            args.pop()  # a missing argument
        kwargs = {p: self.value(p) for p in optional if r.random() < 0.3}
        self.calls += 1
        if TRACE is not None:  # the last call before a crash, for a reproducer
            TRACE.write(f"{cls}.{name} {tuple(map(_short, args))} {kwargs}\n")
            TRACE.flush()
        try:
            _Armed.on = True
            try:
                result = getattr(target, name)(*args, **kwargs)
            finally:
                _Armed.on = False
        except _Alarm:
            return
        except EXPECTED:
            return
        except Exception as e:
            self.unexpected.append(f"{cls}.{name}{tuple(map(_short, args))} {kwargs}: {e!r}")
            return
        self.keep.extend(args)
        if isinstance(result, iouring.Sqe):
            self.sqes.append(result)
        elif type(result).__name__ == "BufferRing":
            self.buffer_rings.append(result)

    def set_field(self) -> None:
        sqe = self.rng.choice(self.sqes)
        # The read-only ones too: assigning them must raise AttributeError, nothing worse.
        field = self.rng.choice([*SETTABLE_SQE_FIELDS, "opcode", "addr", "len"])
        self.calls += 1
        try:
            setattr(sqe, field, self.value(field))
        except (*EXPECTED, AttributeError):
            pass

    def step(self) -> None:
        r = self.rng
        self.rings = [ring for ring in self.rings if not ring.closed]  # a _Meddler closes some
        if not self.rings or r.random() < 0.01:
            self.new_ring()
            return
        ring = r.choice(self.rings)
        roll = r.random()
        if roll < 0.01:
            self.calls += 1
            ring.close()
            self.rings.remove(ring)
        elif roll < 0.02:
            self.calls += 1
            with contextlib.suppress(*EXPECTED):
                ring.resize(sq_entries=r.choice([1, 4, 16, 64]))
        elif roll < 0.05:
            self.calls += 1
            try:
                ring.submit()
                ring.copy_cqes(timeout=0)
            except EXPECTED:
                pass
        elif roll < 0.12 and self.sqes:
            if r.random() < 0.5:
                self.set_field()
            else:
                self.call(r.choice(self.sqes), "Sqe")
        elif roll < 0.15 and self.buffer_rings:
            self.call(r.choice(self.buffer_rings), "BufferRing")
        else:
            self.call(ring, "IoUring")
        if len(self.sqes) > 64:
            del self.sqes[:32]
        if len(self.keep) > 2000:
            del self.keep[:1000]
        if r.random() < 0.001:
            gc.collect()

    def close(self) -> None:
        for ring in self.rings:
            ring.close()
        self.rings.clear()
        self.sqes.clear()
        self.buffer_rings.clear()
        self.keep.clear()
        for s in self.sockets:
            s.close()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Meddler:
    """An int, path or buffer argument whose conversion runs Python code that changes the
    ring under the call: closes, resizes, submits or registers."""

    def __init__(self, fuzzer: Fuzzer) -> None:
        self.fuzzer = fuzzer

    def _meddle(self) -> None:
        f = self.fuzzer
        if not f.rings:
            return
        ring = f.rng.choice(f.rings)
        action = f.rng.randrange(4)
        try:
            if action == 0:
                ring.close()
            elif action == 1:
                ring.resize(sq_entries=f.rng.choice([2, 32]))
            elif action == 2:
                ring.submit()
            else:
                ring.register_buffers([bytearray(64)])
        except EXPECTED:
            pass

    def __index__(self) -> int:
        self._meddle()
        return 1_000_003  # not a descriptor: it may stand for one

    def __fspath__(self) -> str:
        self._meddle()
        return "a"

    def __len__(self) -> int:
        self._meddle()
        return 1

    def __getitem__(self, i: int) -> int:
        self._meddle()
        if i > 0:
            raise IndexError(i)
        return 0


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture
def fuzz_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.chdir(tmp_path)  # relative paths (dir_fd AT_FDCWD) stay in here
    (tmp_path / "dir").mkdir()
    return tmp_path


def test_fuzz_public_api(fuzz_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _open_fds()
    rng = random.Random(SEED)
    fuzzer = Fuzzer(rng, fuzz_dir)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    start = time.monotonic()
    kept: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            while fuzzer.calls < CALLS and time.monotonic() - start < SECONDS:
                with contextlib.suppress(_Alarm):
                    fuzzer.step()
            signal.setitimer(signal.ITIMER_REAL, 0)
            fuzzer.close()
            gc.collect()
        kept = [str(w.message) for w in caught]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        fuzzer.close()
        for fd in _open_fds() - before:  # what the kernel opened (openat, socket, accept)
            with contextlib.suppress(OSError):  # EBADF: gone with the directory listing
                os.close(fd)
    elapsed = time.monotonic() - start
    with capsys.disabled():
        print(
            f"\nfuzz: {fuzzer.calls} calls in {elapsed:.1f} s (seed {SEED}), "
            f"{len(fuzzer.unexpected)} unexpected exceptions, {len(kept)} warnings"
        )
    assert not fuzzer.unexpected, "\n".join(fuzzer.unexpected[:20])
