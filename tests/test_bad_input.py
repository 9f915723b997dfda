"""Bad input to every public method of IoUring and Sqe, generated from the API itself.

For each method (found with ``dir()``, signatures read from the pybind11 docstrings) the test
first *discovers* a call that gets past argument conversion: it tries candidate values per
parameter and, whenever an error names a parameter, moves that parameter to its next
candidate. From that valid call it then replaces one argument at a time with bad values (wrong
types, NaN, negative and huge numbers, strings with NUL, non-contiguous arrays, read-only
buffers where the kernel writes, unknown flag bits...) and checks that

- a TypeError, ValueError or OverflowError is raised whose message names the argument,
- the ring is unchanged: sq_ready, sq_space_left, sqe_tail, in_flight, pinned, cq_ready (no SQE
  consumed, no pin leaked), the Sqe's fields are unchanged, and the reference counts of the
  other arguments are back where they were.

New operations are covered as they appear; a method whose valid call cannot be discovered is
skipped with the reason (add a candidate for its parameter in CANDIDATES). Closed and invalid
file descriptors are the kernel's business: such operations are accepted and complete with a
negative ``res``, which is checked separately.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqe_support import SETTABLE_SQE_FIELDS

import iouring
from iouring import CQE_DTYPE, IoUring, Sqe, SqeFlags

AT_FDCWD = -100
CONVERSION_ERRORS = (TypeError, ValueError, OverflowError)
# Methods without arguments to get wrong, or that are not about one ring.
SKIPPED_METHODS = {"close", "probe", "fields"}
# (method, parameter): accepted on purpose, whatever is passed.
IGNORED_PARAMETERS = {
    ("cqe_seen", "cqe"),  # accepted for liburing compatibility; the next CQE is consumed
}
# (method without prep_, parameter): known defects reported to the owners of the operation;
# their findings are left out until fixed (delete the entry with the fix).
KNOWN_ISSUES: dict[tuple[str, str], str] = {}


# --------------------------------------------------------------------------------------------
# Signatures


@dataclass(frozen=True)
class Param:
    name: str
    required: bool
    annotation: str = "object"
    default: str = ""

    @property
    def boolean(self) -> bool:
        """A flag taken by truth value (any object with __bool__ is fine, as in Python)."""
        return self.annotation == "bool" or self.default in ("True", "False")


def parameters(func: Any) -> list[Param] | None:
    """The parameters after self, from a pybind11 docstring's first line."""
    doc = (getattr(func, "__doc__", None) or "").strip().splitlines()
    match = re.match(r"^\w+\((.*)\)\s*->", doc[0]) if doc else None
    if match is None:
        return None
    params = []
    for part in re.split(r",\s*(?![^\[\(]*[\]\)])", match.group(1)):
        part = part.strip()
        if part in ("", "*") or part.startswith("self"):
            continue
        if part.startswith("*"):
            return None
        name = part.split(":")[0].split("=")[0].strip()
        annotation = part.split(":", 1)[1].split("=")[0].strip() if ":" in part else "object"
        default = part.split("=", 1)[1].strip() if "=" in part else ""
        params.append(Param(name, "=" not in part, annotation, default))
    return params


def public_methods(cls: type) -> list[str]:
    names = []
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in SKIPPED_METHODS:
            continue
        attr = getattr(cls, name)
        if isinstance(attr, property) or not callable(attr):
            continue
        params = parameters(attr)
        if params:  # nothing to get wrong without parameters
            names.append(name)
    return names


RING_METHODS = public_methods(iouring._core.IoUring)
SQE_METHODS = public_methods(Sqe)


# --------------------------------------------------------------------------------------------
# The environment a call needs: files, sockets, a registered buffer, another ring


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.path = str(tmp_path / "file")
        Path(self.path).write_bytes(b"0123456789abcdef" * 256)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        self.sock, self.peer = socket.socketpair()
        self.registered = bytearray(4096)
        self.other = IoUring(4)
        self.other.register_buffers([bytearray(64)])
        self.closed: list[int] = []

    def close(self) -> None:
        os.close(self.fd)
        self.sock.close()
        self.peer.close()
        self.other.close()

    def candidates(self, name: str) -> list[Any]:
        """Values to try for parameter `name`, most likely first."""
        first: list[Any] = []
        if name in ("timeout", "ts", "min_wait"):
            first = [0.01]
        elif name in ("wait_nr", "min_complete", "to_submit", "count"):
            first = [0]
        elif name.endswith("fd") or name in ("fd_in", "fd_out", "epfd"):
            first = [self.fd, self.sock.fileno(), AT_FDCWD]
        elif "path" in name or name == "target":
            first = [str(self.tmp_path / f"new_{name}"), self.path]
        elif name == "name":
            first = ["user.test", self.path]
        elif name == "events":
            first = [np.zeros(4, dtype=getattr(iouring, "EPOLL_EVENT_DTYPE", np.uint8)), 0]
        elif name == "futex":
            first = [np.zeros(1, dtype=np.uint32)]
        elif name == "futexes":
            first = [[(np.zeros(1, dtype=np.uint32), 0)]]
        elif name in ("buffer", "value", "optval", "statxbuf", "infop"):
            first = [bytearray(4096), memoryview(self.registered)[:64]]
        elif name in ("addr",):
            first = [None, ("127.0.0.1", 0), iouring.SockAddr(("127.0.0.1", 0))]
        elif name in ("msg",):
            first = [
                iouring.Msghdr([bytearray(16)]),
                iouring.Msghdr([memoryview(self.registered)[:16]]),  # the *_fixed sends
            ]
        elif name == "iovecs":
            first = [[bytearray(16)], [memoryview(self.registered)[:16]]]
        elif name == "source":
            first = [self.other]
        elif name == "out":
            first = [None, np.zeros(4, dtype=CQE_DTYPE)]
        return [
            *first,
            0,
            1,
            16,
            bytearray(4096),
            [self.fd],
            [bytearray(16)],
            self.path,
            0.01,
            None,
            ("127.0.0.1", 0),
            np.zeros(2, dtype=np.int32),
            np.zeros(1, dtype=getattr(iouring, "SQE_DTYPE", np.uint8)),
            [np.zeros(1, dtype=np.uint32)],
            True,
        ]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


class Hang(Exception):
    pass


@contextlib.contextmanager
def watchdog(seconds: float = 5.0) -> Iterator[None]:
    """Turns a call that blocks into an exception (the waits run signal handlers)."""

    def fire(signum: int, frame: object) -> None:
        raise Hang("the call blocked")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------------------------
# Calls and their effects


def snapshot(ring: IoUring) -> tuple[int, ...]:
    return (
        ring.sq_ready(),
        ring.sq_space_left(),
        ring.sqe_tail,
        ring.in_flight,
        ring.pinned,
        ring.cq_ready(),
    )


def named(exc: BaseException, params: list[Param]) -> list[str]:
    """The parameters an error message names, in the order the message names them."""
    text = str(exc)
    found = []
    for p in params:
        m = re.search(rf"(?<![\w.]){re.escape(p.name)}(?!\w)", text)
        if m:
            found.append((m.start(), p.name))
    return [n for _, n in sorted(found)]


@dataclass
class Target:
    """How to call one method: on a ring, or on a fresh Sqe handle of that ring."""

    method: str
    on_sqe: bool

    def call(self, ring: IoUring, handle: Sqe | None, kwargs: dict[str, Any]) -> Any:
        if self.on_sqe:
            assert handle is not None
            return getattr(handle, self.method)(**kwargs)
        return getattr(ring, self.method)(**kwargs)


def discover(
    target: Target, params: list[Param], env: Env, ring: IoUring, handle: Sqe | None
) -> dict[str, Any] | str:
    """A set of arguments that passes conversion, or why none was found."""
    choice = {p.name: 0 for p in params}
    options = {p.name: env.candidates(p.name) for p in params}
    optional: dict[str, bool] = {}
    last = ""
    for _ in range(sum(len(o) for o in options.values()) + len(params)):
        kwargs = {
            p.name: options[p.name][choice[p.name]]
            for p in params
            if p.required or p.name in optional or p.name == "timeout"
        }
        try:
            with watchdog():
                target.call(ring, handle, kwargs)
            return kwargs
        except CONVERSION_ERRORS as exc:
            mentioned = named(exc, params)
            absent = [n for n in mentioned if n not in kwargs]
            if absent and not [n for n in mentioned if n in kwargs]:
                # An optional parameter the call needs after all ("count is needed ...").
                optional[absent[0]] = True
                continue
            names = [n for n in mentioned if n in kwargs]
            if not names:
                return kwargs  # a state-dependent refusal: the arguments themselves passed
            name = names[0]
            last = f"{name}: {exc}"
            choice[name] += 1
            if choice[name] >= len(options[name]):
                return f"no candidate value accepted for {name!r} ({last})"
        except Hang:
            return "the call blocked with the candidate values"
        except Exception:
            return kwargs
    return f"gave up ({last})"


def non_contiguous() -> np.ndarray:
    return np.zeros((8, 8), dtype=np.uint8)[:, ::2]


def bad_values(method: str, name: str, valid: Any) -> list[tuple[str, Any]]:
    """Bad values for one parameter, given a value that passes."""
    bad: list[tuple[str, Any]] = [("object()", object())]
    if isinstance(valid, bool) or valid is None:
        return bad  # flags taken by truth value, or optional objects
    bad.append(("nan", float("nan")))
    if isinstance(valid, int):
        bad += [("2**70", 2**70), ("-2**70", -(2**70)), ("str", "7"), ("float", 1.5)]
        if name in ("user_data", "target_user_data", "old_user_data", "new_user_data"):
            bad += [("2**64", 2**64), ("-1", -1)]
    elif isinstance(valid, float):
        bad += [("-1.0", -1.0), ("inf", float("inf")), ("str", "0.1")]
    elif isinstance(valid, (bytearray, memoryview)):
        bad += [("non-contiguous", non_contiguous()), ("str", "abc")]
        if method.removeprefix("prep_") in ("read", "readv", "recv", "read_fixed"):
            bad += [("read-only bytes", b"\x00" * len(valid))]
    elif isinstance(valid, str):
        bad += [("NUL in str", "a\x00b"), ("NUL in bytes", b"a\x00b"), ("int 5.5", 5.5)]
    elif isinstance(valid, list):
        bad += [("int", 5), ("list of object()", [object()])]
        if method.removeprefix("prep_") in ("readv", "readv2") and valid:
            bad += [("read-only items", [b"\x00" * 8])]
    return bad


@dataclass
class Finding:
    method: str
    param: str
    case: str
    problem: str

    def __str__(self) -> str:
        return f"{self.method}({self.param}={self.case}): {self.problem}"


def refcounts(objects: dict[str, Any]) -> dict[str, int]:
    """Reference counts, measured in a scope of their own (no loop variable left behind)."""
    return {k: sys.getrefcount(objects[k]) for k in objects}


def attempt(
    target: Target, ring: IoUring, handle: Sqe | None, kwargs: dict[str, Any]
) -> tuple[str, str]:
    """Calls and describes the outcome; no exception (nor its traceback, which would hold
    references to the arguments) outlives this function."""
    try:
        with watchdog():
            target.call(ring, handle, kwargs)
    except CONVERSION_ERRORS as exc:
        return "conversion error", f"{type(exc).__name__}: {exc}"
    except Hang:
        return "blocked", ""
    except Exception as exc:
        return "raised", f"{type(exc).__name__}: {exc}"
    return "accepted", ""


@dataclass
class Discovered:
    """A call of one method that gets past conversion, and a clean ring to make it on."""

    target: Target
    params: list[Param]
    kwargs: dict[str, Any]
    ring: IoUring


@contextlib.contextmanager
def discovered(env: Env, method: str, *, on_sqe: bool = False) -> Iterator[Discovered]:
    """Discovers valid arguments for ``method`` on a throwaway ring (discovery may prepare
    SQEs) and hands them over with a fresh ring; skips when discovery found none."""
    owner = Sqe if on_sqe else iouring._core.IoUring
    params = parameters(getattr(owner, method))
    assert params
    target = Target(method, on_sqe=on_sqe)
    ring = fresh_ring(env)
    try:
        kwargs = discover(target, params, env, ring, ring.get_sqe() if on_sqe else None)
    finally:
        ring.close()
    if isinstance(kwargs, str):
        pytest.skip(f"{owner.__name__}.{method}: {kwargs}")
    ring = fresh_ring(env)
    try:
        yield Discovered(target, params, kwargs, ring)
    finally:
        ring.close()


def run_bad_inputs(d: Discovered, env: Env) -> tuple[int, list[Finding]]:
    target, params, kwargs, ring = d.target, d.params, d.kwargs, d.ring
    tried = 0
    findings: list[Finding] = []
    for p in params:
        key = (target.method.removeprefix("prep_"), p.name)
        if key in IGNORED_PARAMETERS or key in KNOWN_ISSUES:
            continue
        valid = kwargs.get(p.name)
        if valid is None:
            valid = env.candidates(p.name)[0]
        cases = [("object()", object())] if p.boolean else bad_values(target.method, p.name, valid)
        for case, value in cases:
            tried += 1
            handle = ring.get_sqe() if target.on_sqe else None
            objects = {k: v for k, v in kwargs.items() if not isinstance(v, (int, float, str))}
            if not isinstance(value, (int, float, str, bytes)):
                objects["(bad value)"] = value
            refs = refcounts(objects)
            call_args = dict(kwargs)
            call_args[p.name] = value
            before = snapshot(ring)
            fields = handle.fields() if handle is not None else None
            outcome, message = attempt(target, ring, handle, call_args)
            if outcome == "conversion error":
                if p.name not in message:
                    findings.append(
                        Finding(target.method, p.name, case, f"message does not name it: {message}")
                    )
            else:
                findings.append(Finding(target.method, p.name, case, f"{outcome} {message}"))
                if outcome in ("accepted", "blocked"):
                    continue
            after = snapshot(ring)
            if after != before:
                findings.append(
                    Finding(target.method, p.name, case, f"ring changed {before} -> {after}")
                )
            if handle is not None and handle.fields() != fields:
                findings.append(Finding(target.method, p.name, case, "the Sqe was changed"))
            del call_args
            now = refcounts(objects)
            findings += [
                Finding(target.method, p.name, case, f"references to {k}: {refs[k]} -> {now[k]}")
                for k in refs
                if now[k] != refs[k]
            ]
    return tried, findings


def fresh_ring(env: Env) -> IoUring:
    ring = IoUring(64)
    ring.register_buffers([env.registered])
    ring.register_files([env.fd])
    return ring


TRIED: list[int] = []


@pytest.mark.parametrize("method", RING_METHODS)
def test_bad_input_ring_method(env: Env, method: str) -> None:
    with discovered(env, method) as d:
        tried, findings = run_bad_inputs(d, env)
        TRIED.append(tried)
        assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize("method", SQE_METHODS)
def test_bad_input_sqe_method(env: Env, method: str) -> None:
    with discovered(env, method, on_sqe=True) as d:
        tried, findings = run_bad_inputs(d, env)
        TRIED.append(tried)
        assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize("field", SETTABLE_SQE_FIELDS)
def test_bad_input_sqe_field(ring: IoUring, field: str) -> None:
    sqe = ring.nop(0x5E7)
    before = sqe.fields()
    cases: list[Any] = [object(), float("nan"), "7", 1.5, 2**70, -(2**70)]
    if field in ("flags",):
        cases += [int(SqeFlags.CQE_SKIP_SUCCESS), 1 << 7, 256]
    if field in ("user_data",):
        cases += [2**64, -1]
    if field in ("ioprio", "buf_index", "personality"):
        cases += [2**16, -1]
    for value in cases:
        with pytest.raises(CONVERSION_ERRORS) as info:
            setattr(sqe, field, value)
        assert field in str(info.value), f"{field}={value!r}: {info.value}"
        assert sqe.fields() == before
    TRIED.append(len(cases))
    ring.submit()
    ring.copy_cqes(wait_nr=1, timeout=5)


CTOR_CASES: list[tuple[str, dict[str, Any]]] = [
    ("entries", {"entries": "8"}),
    ("entries", {"entries": 2**70}),
    ("entries", {"entries": -8}),
    ("entries", {"entries": 8.0}),
    ("flags", {"entries": 8, "flags": 1 << 31}),
    ("flags", {"entries": 8, "flags": -1}),
    ("flags", {"entries": 8, "flags": "0"}),
    ("sq_thread_idle", {"entries": 8, "sq_thread_idle": -1}),
    ("sq_thread_idle", {"entries": 8, "sq_thread_idle": object()}),
    ("sq_thread_cpu", {"entries": 8, "sq_thread_cpu": 2**40}),
    ("cq_entries", {"entries": 8, "cq_entries": 4}),
    ("cq_entries", {"entries": 8, "cq_entries": 2**40}),
    ("cq_entries", {"entries": 8, "cq_entries": "16"}),
    ("wq_fd", {"entries": 8, "wq_fd": "3"}),
    ("wq_fd", {"entries": 8, "wq_fd": 2**40}),
]


@pytest.mark.parametrize(
    ("name", "kwargs"), CTOR_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CTOR_CASES)]
)
def test_bad_input_constructor(name: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(CONVERSION_ERRORS) as info:
        IoUring(**kwargs).close()
    assert name in str(info.value) or "SetupFlags" in str(info.value), str(info.value)


# --------------------------------------------------------------------------------------------
# Closed and invalid file descriptors: accepted, completed by the kernel with an error


FD_OPS = [
    "read",
    "write",
    "readv",
    "writev",
    "fsync",
    "recv",
    "send",
    "poll_add",
    "splice",
    "statx",
    "openat",
    "accept",
    "connect",
    "shutdown",
    "fadvise",
    "fallocate",
    "tee",
]


@pytest.mark.parametrize("method", [m for m in FD_OPS if m in RING_METHODS])
@pytest.mark.parametrize("bad_fd", ["closed", "huge"])
def test_bad_fd_completes_with_error(env: Env, method: str, bad_fd: str) -> None:
    with discovered(env, method) as d:
        target, kwargs, ring = d.target, d.kwargs, d.ring
        fd_params = [
            p.name for p in d.params if p.name in ("fd", "fd_in", "dir_fd") and p.name in kwargs
        ]
        if not fd_params:
            pytest.skip(f"{method} has no fd parameter")
        if bad_fd == "closed":
            r, w = os.pipe()
            os.close(r)
            os.close(w)
            value = r
        else:
            value = 1 << 20
        kwargs = dict(kwargs)
        kwargs[fd_params[0]] = value
        target.call(ring, None, kwargs)
        ring.submit()
        cqes = ring.copy_cqes(wait_nr=1, timeout=5)
        assert len(cqes) == 1, f"{method} on a {bad_fd} fd did not complete"
        assert cqes["res"][0] < 0, f"{method} on a {bad_fd} fd: res {cqes['res'][0]}"
        assert (ring.in_flight, ring.pinned) == (0, 0)


# --------------------------------------------------------------------------------------------
# Unknown flag bits, where the flags have a defined set


FLAG_CASES = [
    ("fsync", "flags", 1 << 4),
    ("fsync_batch", "flags", 1 << 4),
    ("enter", "flags", 1 << 30),
    ("timeout", "flags", 1 << 20),
    ("link_timeout", "flags", 1 << 20),
    ("timeout_remove", "flags", 1 << 20),
    ("cancel", "flags", 1 << 30),
    ("cancel_fd", "flags", 1 << 30),
    ("poll_add", "flags", 1 << 20),
    ("nop_batch", "sqe_flags", 1 << 7),
    ("read_batch", "sqe_flags", int(SqeFlags.CQE_SKIP_SUCCESS)),
    ("futex_wait", "futex_flags", 1 << 20),
    ("futex_wait", "flags", 1 << 0),
    ("futex_wake", "flags", 1 << 0),
    ("futex_waitv", "flags", 1 << 0),
    ("epoll_wait", "flags", 1 << 0),
    ("sync_file_range", "flags", 1 << 3),
    ("renameat", "flags", 1 << 3),
    ("unlinkat", "flags", 1 << 0),
    ("linkat", "flags", 1 << 0),
    ("statx", "flags", 1 << 0),
    ("fixed_fd_install", "flags", 1 << 1),
    ("openat2", "resolve", 1 << 6),
    ("openat2_direct", "resolve", 1 << 6),
    ("fallocate", "mode", 1 << 8),
    ("setxattr", "flags", 1 << 2),
    ("fsetxattr", "flags", 1 << 2),
    ("splice", "flags", 1 << 4),
    ("tee", "flags", 1 << 4),
    ("pipe", "flags", 1 << 0),
    ("socket", "flags", 1 << 0),
    ("accept", "flags", 1 << 0),
    ("accept_direct", "flags", 1 << 0),
    ("multishot_accept", "flags", 1 << 0),
    ("waitid", "flags", 1 << 0),
    ("send_zc_fixed", "zc_flags", 1 << 2),
]
# Passed to the kernel unchecked on purpose: sets that grow with the kernel (os.RWF_* of
# readv2/writev2/readv_fixed/writev_fixed, MSG_* of the socket operations, O_* of openat).


@pytest.mark.parametrize(
    ("method", "param", "value"),
    [c for c in FLAG_CASES if c[0] in RING_METHODS],
    ids=[f"{m}-{p}" for m, p, _ in FLAG_CASES if m in RING_METHODS],
)
def test_bad_input_unknown_flag_bits(env: Env, method: str, param: str, value: int) -> None:
    with discovered(env, method) as d:
        before = snapshot(d.ring)
        outcome, message = attempt(d.target, d.ring, None, {**d.kwargs, param: value})
        assert outcome == "conversion error" and param in message, f"{outcome} {message}"
        assert snapshot(d.ring) == before


# --------------------------------------------------------------------------------------------
# Reference counts: every operation's pins give back exactly what they took


def returns_sqe(method: str) -> bool:
    doc = (getattr(iouring._core.IoUring, method).__doc__ or "").splitlines()[0]
    return doc.endswith("-> iouring._core.Sqe") or method.endswith("_batch")


# Operations the refcount test prepares but does not run: they would close the test's own
# descriptors or reap another test's child processes.
NOT_RUN = {"close_fd", "close_batch", "close_direct", "waitid"}


def tracked(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The objects (and the items of lists and tuples) handed to the call."""
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        if isinstance(v, (int, float, type(None))):
            continue
        out[k] = v  # str too: paths are copied, so their count must not change at all
        if isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                if not isinstance(item, (int, float, type(None))):
                    out[f"{k}[{i}]"] = item
    return out


@pytest.mark.parametrize("run", [False, True], ids=["prepared", "run"])
@pytest.mark.parametrize("method", [m for m in RING_METHODS if returns_sqe(m)])
def test_refcounts_restored_after_completion(env: Env, method: str, run: bool) -> None:
    """Pinned objects hold at least their references while prepared or in flight (no early
    free) and are back to their original reference counts once the operation completed or
    the ring closed (no leak)."""
    with discovered(env, method) as d:
        target, kwargs, ring = d.target, d.kwargs, d.ring
        objects = tracked(kwargs)
        if not objects:
            return  # nothing is pinned by reference
        base = refcounts(objects)
        outcome, message = attempt(target, ring, None, kwargs)
        if outcome != "accepted":
            pytest.skip(f"{method}: {outcome} {message}")
        during = refcounts(objects)
        assert all(during[k] >= base[k] for k in base), (base, during)
        if run and method not in NOT_RUN:
            ring.submit()
            ring.copy_cqes(wait_nr=1, timeout=0.2)  # completes, or close() cancels it
            ring.copy_cqes()
        ring.close()  # filterwarnings=error: a drain that cannot finish fails the test
        assert refcounts(objects) == base


def test_bad_input_count(request: pytest.FixtureRequest) -> None:
    """Reports how many bad inputs the other tests of this module tried (for the notes)."""
    print(f"\nbad inputs tried so far: {sum(TRIED)} in {len(TRIED)} methods/fields")


def test_bad_input_covers_every_method() -> None:
    """The parametrisation follows the API: a method added later is tested automatically."""
    assert "read" in RING_METHODS and "prep_read" in SQE_METHODS
    assert all(parameters(getattr(iouring._core.IoUring, m)) for m in RING_METHODS)


# --- issue 11, class 11: BufferRing methods given something that is not a CQE -----------------

_BUF = int(iouring.CqeFlags.BUFFER)
_NOT_CQES: dict[str, Any] = {
    "cqe array": np.zeros(2, CQE_DTYPE),
    "one-element cqe array": np.zeros(1, CQE_DTYPE),
    "numpy float": np.float64(1.0),
    "float array": np.zeros(3),
    "int array": np.arange(3),
    "list": [0, 3, _BUF],
    "float": 1.5,
    "str": "abc",
    "dict": {"res": 3, "flags": _BUF},
    "float record": np.zeros(1, [("user_data", "f8"), ("res", "f8"), ("flags", "f8")])[0],
    "record of other fields": np.zeros(1, [("a", "u8"), ("b", "i4")])[0],
    "record with float flags": np.array(
        [(0, 3, float(_BUF))], [("user_data", "u8"), ("res", "i4"), ("flags", "f8")]
    )[0],
}


@pytest.mark.parametrize("method", ["get", "put", "bundle"])
@pytest.mark.parametrize("kind", list(_NOT_CQES))
def test_buffer_ring_methods_refuse_non_cqes(method: str, kind: str) -> None:
    with IoUring(8) as ring:
        try:
            br = iouring.BufferRing(ring, 1, 4, 64)
        except OSError as e:
            pytest.skip(f"no provided buffer rings: {e}")
        with pytest.raises(TypeError, match=r"^cqe must be an iouring\.Cqe"):
            getattr(br, method)(_NOT_CQES[kind])
        record = np.zeros(1, CQE_DTYPE)[0]
        record["flags"] = _BUF  # buffer 0
        record["res"] = 3
        assert bytes(br.get(record)) == bytes(3)
        zero_d = np.array(record)  # a 0-d array of CQE_DTYPE is a record too
        assert bytes(br.get(zero_d)) == bytes(3)  # type: ignore[arg-type]


# --- issue 11, class 12: SetupFlags.CLAMP -------------------------------------------------------


def test_clamp_lets_the_kernel_clamp_entries() -> None:
    clamp = iouring.SetupFlags.CLAMP
    with IoUring(65536, flags=clamp) as ring:
        assert (ring.sq_entries, ring.cq_entries) == (32768, 65536)
    with IoUring(8, flags=clamp, cq_entries=1 << 20) as ring:
        assert (ring.sq_entries, ring.cq_entries) == (8, 65536)
    with IoUring(1 << 31, flags=clamp, cq_entries=40000) as ring:
        assert (ring.sq_entries, ring.cq_entries) == (32768, 65536)
    # Without CLAMP the limits stay, and CLAMP does not excuse a bad value.
    with pytest.raises(ValueError, match="entries"):
        IoUring(65536)
    with pytest.raises(ValueError, match="cq_entries"):
        IoUring(8, cq_entries=1 << 20)
    with pytest.raises(iouring.EntriesNotPowerOfTwo):
        IoUring(65535, flags=clamp)
    with pytest.raises(ValueError, match="cq_entries"):
        IoUring(64, flags=clamp, cq_entries=8)
    with pytest.raises(OverflowError):
        IoUring(1 << 32, flags=clamp)
