"""A hypothesis state machine against a model of the ring's bookkeeping.

Random sequences of get_sqe/prep (nop, read, write, readv, writev, read_fixed), one-call ring
methods, flag and user_data changes, flush_sq/submit/submit_and_wait, every way of consuming
completions (copy_cqes, copy_cqe, peek_cqe + cqe_seen, cq_advance), register/unregister
buffers and close, with fresh buffers whose references the test keeps or drops. After every
step: sq_ready, in_flight and pinned match the model; every completion arrives exactly once
with the result the model predicts; data read equals the file's; dropped buffers stay alive
exactly while an operation may write into them; stale handles raise.

Bounded for CI: ``MAX_EXAMPLES`` runs of at most ``STEPS`` steps, derandomized.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import os
import sys
import tempfile
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from kernel_support import emulated

from iouring import CQE_DTYPE, EnterFlags, IoUring, SetupFlags, SqeFlags, StaleSqeError, _kernel

MAX_EXAMPLES = 100
STEPS = 50
FILE_SIZE = 512
REGION = 64  # read_fixed targets are REGION-sized slices of the registered buffer
WAIT = 3.0  # seconds: a wait the model says must end; hitting it is a failure

CONFIGS = {
    "default": 0,
    "no_sqarray": int(SetupFlags.NO_SQARRAY),
    "defer_taskrun": int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN),
    "coop_taskrun_flag": int(SetupFlags.COOP_TASKRUN | SetupFlags.TASKRUN_FLAG),
}


class WeakBytearray(bytearray):
    """A bytearray that supports weak references."""


@dataclass
class Registration:
    """One register_buffers() call: alive while registered, while a fixed op uses it, and,
    once unregistered, until every key in flight at the unregister has completed (an op flushed
    earlier may still resolve buf_index against it: the ring pins it once to each such key)."""

    buffers: list[WeakBytearray]
    refs: list[weakref.ref[WeakBytearray]]
    registered: bool = True
    fixed_in_flight: int = 0
    holders: set[int] = field(default_factory=set)  # keys in flight when it was unregistered


@dataclass
class Op:
    kind: str
    user_data: int
    pins: int  # pins the prep recorded on the slot
    res: int  # the result the kernel will report
    targets: list[tuple[Any, int]] = field(default_factory=list)  # (buffer, file offset) to check
    refs: list[weakref.ref[Any]] = field(default_factory=list)  # buffers only the ring keeps
    keep: list[Any] = field(default_factory=list)  # buffers the test keeps, to check refcounts
    refcounts: list[int] = field(default_factory=list)
    sink: bytes | None = None  # what a write sends into the sink pipe
    region: int | None = None  # read_fixed: the region of the registered buffer
    registration: Registration | None = None  # read_fixed: the registration it pins once flushed
    prepared_with: Registration | None = None  # read_fixed: the registration its buffer is in
    fixed_offset: int = 0  # read_fixed: the file offset
    other_res: tuple[int, ...] = ()  # results that are right too
    actual_res: int | None = None  # what the kernel reported


def expected_read(length: int, offset: int) -> int:
    return max(0, min(length, FILE_SIZE - offset))


def whole_writes_in_some_order(received: bytes, writes: list[bytes]) -> bool:
    """Whether ``received`` is every one of ``writes``, each whole, in some order. Writes in
    flight together are not ordered (on 6.1 pipe writes run on io-wq workers, and 9 of them
    landed as 103254768); each is atomic (under PIPE_BUF), so none may be split or lost."""
    left = Counter(w for w in writes if w)
    failed: set[tuple[int, tuple[tuple[bytes, int], ...]]] = set()

    def match(at: int) -> bool:
        if at == len(received):
            return not +left
        key = (at, tuple(sorted((+left).items())))
        if key in failed:
            return False
        for write in list(left):
            if left[write] and received.startswith(write, at):
                left[write] -= 1
                if match(at + len(write)):
                    return True
                left[write] += 1
        failed.add(key)
        return False

    return match(0)


class RingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.data = os.urandom(FILE_SIZE)
        src = os.path.join(self.dir.name, "src")
        with open(src, "wb") as f:
            f.write(self.data)
        self.src = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        # Writes go into a pipe: like reads of the page cache and NOPs they complete during
        # submit, so each run of a rule sequence sees the same completions (hypothesis needs
        # that), and their bytes come out in submission order.
        self.sink_out, self.sink = os.pipe2(os.O_CLOEXEC)
        fcntl.fcntl(self.sink, fcntl.F_SETPIPE_SZ, 1 << 20)
        self.sent: list[bytes] = []
        self.written: list[tuple[int, bytes]] = []
        self.ring: IoUring | None = None
        self.closed = False
        self.pending: list[tuple[Any, Op]] = []  # prepared, not flushed, in slot order
        self.unsubmitted = 0  # flushed, not yet taken by the kernel
        # Fixed reads flushed but not yet taken by the kernel: the kernel resolves buf_index
        # when it takes the SQE, so an unregister in between makes them fail with EFAULT.
        self.unconsumed_fixed: list[Op] = []
        self.in_flight: dict[int, list[Op]] = {}  # by user_data
        self.key_pins: Counter[int] = Counter()
        self.stale: list[Any] = []
        self.registration: Registration | None = None
        self.registrations: list[Registration] = []
        self.busy_regions: set[int] = set()
        self.finished: list[Op] = []

    # -- setup and teardown -------------------------------------------------------------------

    @initialize(config=st.sampled_from(sorted(CONFIGS)), entries=st.sampled_from([1, 2, 4, 8]))
    def make_ring(self, config: str, entries: int) -> None:
        try:
            self.ring = IoUring(entries, flags=CONFIGS[config])
        except OSError:
            self.ring = IoUring(entries)

    def teardown(self) -> None:
        try:
            if self.ring is not None and not self.closed:
                self.finish()
        finally:
            if self.ring is not None:
                self.ring.close()
            os.close(self.src)
            os.close(self.sink)
            os.close(self.sink_out)
            self.dir.cleanup()

    def finish(self) -> None:
        """Submits and reaps everything, then checks the whole history."""
        ring = self.ring
        assert ring is not None
        self.do_submit()
        while self.outstanding():
            cqes = ring.copy_cqes(wait_nr=1, timeout=WAIT)
            assert len(cqes), f"never completed: {self.in_flight}, ring in_flight {ring.in_flight}"
            self.consume(cqes)
        self.check_counters()
        assert ring.pinned == 0
        size = sum(map(len, self.sent))
        received = os.read(self.sink_out, size + 1) if size else b""
        assert whole_writes_in_some_order(received, self.sent), (received, self.sent)

    # -- the model ----------------------------------------------------------------------------

    def outstanding(self) -> int:
        return sum(len(ops) for ops in self.in_flight.values())

    def completable(self) -> int:
        """Completions that will arrive without another submit (flushed SQEs are only taken
        by the next enter)."""
        return self.outstanding() - self.unsubmitted

    def model_pinned(self) -> int:
        return sum(op.pins for _, op in self.pending) + sum(self.key_pins.values())

    def check_counters(self) -> None:
        ring = self.ring
        assert ring is not None
        assert ring.in_flight == self.outstanding()
        assert ring.pinned == self.model_pinned()
        assert ring.sq_ready() == len(self.pending) + self.unsubmitted
        assert ring.cq_ready() <= self.outstanding()

    def flushed(self, submitted: bool) -> None:
        for handle, op in self.pending:
            self.stale.append(handle)
            if op.kind == "read_fixed":
                if self.registration is None:
                    op.res = -errno.EFAULT  # the kernel finds no registered buffer
                else:
                    op.pins += 1  # the registration current at flush time
                    op.registration = self.registration
                    self.registration.fixed_in_flight += 1
                    if not submitted:
                        self.unconsumed_fixed.append(op)
                    if self.registration is not op.prepared_with:
                        # The address lies in an earlier registration's buffer (or, if that
                        # memory was freed and reused, in this one's).
                        op.other_res, op.res = (op.res,), -errno.EFAULT
            self.in_flight.setdefault(op.user_data, []).append(op)
            if op.sink is not None:
                self.sent.append(op.sink)
            self.key_pins[op.user_data] += op.pins
        self.unsubmitted = 0 if submitted else self.unsubmitted + len(self.pending)
        if submitted:
            self.unconsumed_fixed.clear()
        self.pending.clear()
        if submitted:
            self.settle()

    def settle(self) -> None:
        """Waits (up to WAIT) until every completion the kernel will post without another
        submit is in the CQ. Operations a kernel runs on io-wq workers (pipe writes on 6.1)
        complete a moment after the submit returns; a later step that looked at the CQ before
        they arrived would see another state than when hypothesis first ran that step, which
        it reports as FlakyStrategyDefinition."""
        ring = self.ring
        assert ring is not None
        want = min(self.completable(), ring.cq_entries)
        deadline = time.monotonic() + WAIT
        while ring.cq_ready() < want and time.monotonic() < deadline:
            ring.enter(0, 0, int(EnterFlags.GETEVENTS))  # posts deferred completions; no wait
            time.sleep(0.0005)
        del self.stale[:-16]

    def consume(self, cqes: Any) -> None:
        """Accounts for consumed completions: each must match an operation in flight."""
        for user_data, res, flags in cqes.tolist() if isinstance(cqes, np.ndarray) else cqes:
            assert flags == 0
            ops = self.in_flight.get(user_data)
            assert ops, f"completion {user_data:#x} was not in flight (or seen twice)"
            matching = [op for op in ops if res == op.res or res in op.other_res]
            assert matching, f"{user_data:#x}: res {res} not in {[op.res for op in ops]}"
            matching[0].actual_res = res
            ops.remove(matching[0])
            self.finished.append(matching[0])
            if not ops:
                del self.in_flight[user_data]
                del self.key_pins[user_data]
                self.key_done(user_data)
                for reg in list(self.registrations):
                    if user_data in reg.holders:
                        reg.holders.discard(user_data)
                        self.release_registration(reg)

    def key_done(self, user_data: int) -> None:
        """Every op under user_data completed: its pins are released, its data can be checked."""
        done = [op for op in self.finished if op.user_data == user_data and op.targets is not None]
        gc.collect()
        for op in done:
            # Refcounts first, before this function holds references of its own.
            for i, before in enumerate(op.refcounts):
                now = sys.getrefcount(op.keep[i])
                assert now == before, f"{op.kind} {user_data:#x}: refcount {now}, not {before}"
            for ref in op.refs:
                assert ref() is None, f"{op.kind} {user_data:#x}: buffer leaked after completion"
            for target, offset in op.targets:
                # A read that reaches the end of the file fills only the start of its buffer.
                got = bytes(target)
                want = self.data[offset : offset + len(got)]
                assert got[: len(want)] == want and not any(got[len(want) :]), (
                    f"{op.kind} {user_data:#x}: data differs from the file"
                )
            reg = op.registration
            if (
                reg is not None
                and reg is op.prepared_with
                and reg.buffers
                and op.region is not None
                and op.actual_res is not None
                and op.actual_res >= 0
            ):
                start = op.region * REGION
                got = bytes(reg.buffers[0][start : start + REGION])
                end = min(FILE_SIZE, op.fixed_offset + REGION)
                assert got[: end - op.fixed_offset] == self.data[op.fixed_offset : end], (
                    f"read_fixed {user_data:#x}: data differs from the file"
                )
            if op.registration is not None:
                op.registration.fixed_in_flight -= 1
                self.release_registration(op.registration)
            if op.region is not None:
                self.busy_regions.discard(op.region)
            op.targets = None  # type: ignore[assignment]

    def release_registration(self, reg: Registration) -> None:
        if reg.registered or reg.fixed_in_flight or reg.holders:
            return
        if reg in self.registrations:
            self.registrations.remove(reg)
        reg.buffers.clear()
        gc.collect()
        assert all(ref() is None for ref in reg.refs), "registered buffer leaked"

    def add(self, handle: Any, op: Op, replaces: int | None = None) -> None:
        if replaces is None:
            self.pending.append((handle, op))
        else:
            self.pending[replaces] = (handle, op)

    # -- operations ---------------------------------------------------------------------------

    def make_op(self, data: st.DataObject, kind: str, user_data: int) -> tuple[Op, tuple[Any, ...]]:
        """The Op and the arguments after user_data for the prep of `kind`."""
        keep = data.draw(st.booleans(), label="keep references")

        def fresh(size: int, content: bytes | None = None) -> Any:
            buf = WeakBytearray(content if content is not None else bytes(size))
            return buf

        if kind == "nop":
            return Op(kind, user_data, 0, 0), ()
        if kind == "read":
            length = data.draw(st.integers(0, 96), label="length")
            offset = data.draw(st.integers(0, FILE_SIZE + 16), label="offset")
            buf = fresh(length)
            op = Op(kind, user_data, 1, expected_read(length, offset))
            op.targets = [(buf, offset)]
            return self.track(op, [buf], keep), (self.src, buf, offset)
        if kind == "readv":
            sizes = data.draw(st.lists(st.integers(0, 40), min_size=1, max_size=4), label="iovecs")
            offset = data.draw(st.integers(0, FILE_SIZE + 16), label="offset")
            bufs = [fresh(n) for n in sizes]
            op = Op(kind, user_data, len(bufs) + 1, expected_read(sum(sizes), offset))
            at = offset
            for b in bufs:
                op.targets.append((b, at))
                at += len(b)
            # Only the bytes the read reached can be checked.
            op.targets = [(b, o) for b, o in op.targets if o + len(b) <= FILE_SIZE]
            return self.track(op, bufs, keep), (self.src, bufs, offset)
        if kind == "write":
            payload = data.draw(st.binary(min_size=0, max_size=64), label="payload")
            buf = fresh(0, payload)
            op = Op(kind, user_data, 1, len(payload))
            op.sink = payload
            return self.track(op, [buf], keep), (self.sink, buf, -1)
        if kind == "writev":
            parts = data.draw(st.lists(st.binary(max_size=24), min_size=1, max_size=4), label="iov")
            bufs = [fresh(0, p) for p in parts]
            op = Op(kind, user_data, len(bufs) + 1, sum(map(len, parts)))
            op.sink = b"".join(parts)
            return self.track(op, bufs, keep), (self.sink, bufs, -1)
        assert kind == "read_fixed"
        reg = self.registration
        assert reg is not None and reg.buffers
        free = [r for r in range(len(reg.buffers[0]) // REGION) if r not in self.busy_regions]
        region = data.draw(st.sampled_from(free), label="region")
        offset = data.draw(st.integers(0, FILE_SIZE), label="offset")
        # A slice of the registered buffer; the test keeps no reference to it (it would keep
        # the registered bytearray alive).
        target = memoryview(reg.buffers[0])[region * REGION : (region + 1) * REGION]
        op = Op(kind, user_data, 0, expected_read(REGION, offset))
        op.region = region
        op.prepared_with = reg
        op.fixed_offset = offset
        return op, (self.src, target, offset, 0)

    def track(self, op: Op, buffers: list[Any], keep: bool) -> Op:
        if keep:
            op.keep = buffers
        else:  # only the ring keeps them: nothing of ours may refer to them
            op.refs = [weakref.ref(b) for b in buffers]
            op.targets = []
        return op

    def kinds(self) -> list[str]:
        kinds = ["nop", "read", "readv", "write", "writev"]
        reg = self.registration
        if reg is not None and len(self.busy_regions) < len(reg.buffers[0]) // REGION:
            kinds.append("read_fixed")
        return kinds

    def prep(self, data: st.DataObject, handle: Any | None, replaces: int | None) -> None:
        ring = self.ring
        assert ring is not None
        kind = data.draw(st.sampled_from(self.kinds()), label="kind")
        user_data = data.draw(
            st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1)), label="user_data"
        )
        op, args = self.make_op(data, kind, user_data)
        if op.kind == "read_fixed":
            assert op.region is not None
            self.busy_regions.add(op.region)
        if handle is None:
            method = {"read_fixed": ring.read_fixed}.get(kind) or getattr(ring, kind)
            handle = method(user_data, *args)
        else:
            returned = getattr(handle, "prep_" + kind)(user_data, *args)
            assert returned is handle
            if replaces is not None:
                old = self.pending[replaces][1]
                if old.region is not None:
                    self.busy_regions.discard(old.region)
        del args
        # Each buffer is pinned by exactly one export: one reference more than the test's own.
        op.refcounts = [sys.getrefcount(op.keep[i]) - 1 for i in range(len(op.keep))]
        assert handle.user_data == user_data
        self.add(handle, op, replaces)
        for ref in op.refs:
            assert ref() is not None

    # -- rules ----------------------------------------------------------------------------------

    def usable(self) -> bool:
        return self.ring is not None and not self.closed

    def has_room(self) -> bool:
        ring = self.ring
        return self.usable() and ring is not None and ring.sq_space_left() > 0

    @precondition(has_room)
    @rule(data=st.data(), how=st.sampled_from(["get_sqe", "get_sqe_raw", "ring_method"]))
    def prepare(self, data: st.DataObject, how: str) -> None:
        ring = self.ring
        assert ring is not None
        if how == "ring_method":
            self.prep(data, None, None)
            return
        handle = getattr(ring, how)()
        assert handle.fields()["opcode"] == 0  # a vacant slot is a NOP
        if data.draw(st.booleans(), label="leave it a NOP"):
            self.add(handle, Op("nop", 0, 0, 0))
        else:
            self.pending.append((handle, Op("nop", 0, 0, 0)))
            self.prep(data, handle, len(self.pending) - 1)

    @precondition(lambda self: self.usable() and self.pending)
    @rule(data=st.data())
    def reprepare(self, data: st.DataObject) -> None:
        """Prepares an unflushed slot again: its earlier pins are released."""
        index = data.draw(st.integers(0, len(self.pending) - 1), label="slot")
        handle, old = self.pending[index]
        self.prep(data, handle, index)
        gc.collect()
        for ref in old.refs:
            assert ref() is None, "a replaced prep kept its buffer"
        if old.region is not None:
            self.busy_regions.discard(old.region)

    @precondition(lambda self: self.usable() and self.pending)
    @rule(data=st.data())
    def change_fields(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.pending) - 1), label="slot")
        handle, op = self.pending[index]
        flags = data.draw(
            # Not ASYNC: io-wq would complete operations after submit returns, at times that
            # vary from run to run.
            st.sampled_from([0, int(SqeFlags.IO_DRAIN), 1 << 6, 1 << 7, 256]),
            label="flags",
        )
        before = handle.fields()
        if flags in (1 << 6, 1 << 7, 256):  # CQE_SKIP_SUCCESS and unknown bits are refused
            with pytest.raises(ValueError, match="flags"):
                handle.flags = flags
            assert handle.fields() == before
        else:
            handle.flags = flags
            assert handle.flags == flags
        if data.draw(st.booleans(), label="change user_data"):
            user_data = data.draw(st.integers(0, 3), label="new user_data")
            handle.user_data = user_data
            op.user_data = user_data
        with pytest.raises(OverflowError, match="user_data"):
            handle.user_data = 2**64
        assert handle.user_data == op.user_data

    @precondition(lambda self: self.usable() and self.stale)
    @rule(data=st.data())
    def use_stale_handle(self, data: st.DataObject) -> None:
        handle = data.draw(st.sampled_from(self.stale), label="stale handle")
        assert not handle.valid
        with pytest.raises(StaleSqeError):
            handle.prep_nop(0xBAD)
        with pytest.raises(StaleSqeError):
            handle.user_data = 0xBAD
        with pytest.raises(StaleSqeError):
            handle.fields()

    @precondition(usable)
    @rule()
    def flush_sq(self) -> None:
        ring = self.ring
        assert ring is not None
        unconsumed = ring.flush_sq()
        self.flushed(submitted=False)
        assert unconsumed == self.unsubmitted

    def do_submit(self) -> int:
        ring = self.ring
        assert ring is not None
        expected = len(self.pending) + self.unsubmitted
        submitted = ring.submit()
        self.flushed(submitted=True)
        return expected if submitted == expected else -1

    @precondition(usable)
    @rule()
    def submit(self) -> None:
        assert self.do_submit() != -1

    @precondition(usable)
    @rule(data=st.data())
    def submit_and_wait(self, data: st.DataObject) -> None:
        ring = self.ring
        assert ring is not None
        possible = min(self.outstanding() + len(self.pending), ring.cq_entries)
        wait_nr = data.draw(st.integers(0, possible), label="wait_nr")
        ring.submit_and_wait(wait_nr, timeout=WAIT)
        self.flushed(submitted=True)
        assert ring.cq_ready() >= wait_nr or self.outstanding() < wait_nr

    @precondition(usable)
    @rule(data=st.data(), size=st.one_of(st.none(), st.integers(0, 9)))
    def copy_cqes(self, data: st.DataObject, size: int | None) -> None:
        ring = self.ring
        assert ring is not None
        wait_nr = data.draw(st.integers(0, min(self.completable(), ring.cq_entries)), label="wait")
        if size is None:
            cqes = ring.copy_cqes(wait_nr=wait_nr, timeout=WAIT)
        else:
            out = np.empty(size, dtype=CQE_DTYPE)
            cqes = ring.copy_cqes(out, wait_nr=min(wait_nr, size), timeout=WAIT)
            assert len(cqes) <= size
        self.consume(cqes)

    @precondition(lambda self: self.usable() and self.completable())
    @rule()
    def copy_cqe(self) -> None:
        ring = self.ring
        assert ring is not None
        cqe = ring.copy_cqe(timeout=WAIT)
        self.consume([(cqe.user_data, cqe.res, cqe.flags)])

    @precondition(usable)
    @rule(advance=st.booleans())
    def peek_and_seen(self, advance: bool) -> None:
        ring = self.ring
        assert ring is not None
        cqe = ring.peek_cqe()
        if cqe is None:
            with pytest.raises(ValueError, match="no completion is ready"):
                ring.cqe_seen()
            ring.cq_advance(0)
            return
        assert ring.peek_cqe() == cqe  # peeking does not consume
        if advance:
            ring.cq_advance(1)
        else:
            ring.cqe_seen(cqe)
        self.consume([(cqe.user_data, cqe.res, cqe.flags)])

    @precondition(lambda self: self.usable() and self.registration is None)
    @rule(keep=st.booleans(), count=st.integers(1, 2))
    def register_buffers(self, keep: bool, count: int) -> None:
        ring = self.ring
        assert ring is not None
        buffers = [WeakBytearray(4 * REGION) for _ in range(count)]
        ring.register_buffers(buffers)
        reg = Registration(list(buffers), [weakref.ref(b) for b in buffers])
        self.registration = reg
        self.registrations.append(reg)
        for b in buffers:
            with pytest.raises(BufferError):
                b.append(0)  # exported while registered
        if not keep:
            del buffers

    @precondition(usable)
    @rule()
    def unregister_buffers(self) -> None:
        ring = self.ring
        assert ring is not None
        if self.registration is None:
            with pytest.raises(OSError, match="No such device or address"):  # ENXIO
                ring.unregister_buffers()
            return
        fixed_in_flight = any(
            op.kind == "read_fixed" for ops in self.in_flight.values() for op in ops
        )
        if fixed_in_flight and _kernel.older_than("6.13"):
            # Refused, nothing changed: the kernel would wait for every operation using a
            # registered buffer or file, whichever registration it was flushed under (even none:
            # an EFAULT read not yet reaped counts), test_safety.
            with pytest.raises(BlockingIOError) as info:
                ring.unregister_buffers()
            assert info.value.errno == errno.EBUSY
            return
        ring.unregister_buffers()
        reg, self.registration = self.registration, None
        reg.registered = False
        for key in self.in_flight:  # the retired table is pinned to every key in flight
            self.key_pins[key] += 1
            reg.holders.add(key)
        for op in self.unconsumed_fixed:
            if op.registration is reg and -errno.EFAULT not in (op.res, *op.other_res):
                op.other_res = (*op.other_res, -errno.EFAULT)
        # Prepared (unflushed) fixed reads now fail in the kernel: no registration to pin.
        self.release_registration(reg)

    @precondition(usable)
    @rule()
    def close(self) -> None:
        ring = self.ring
        assert ring is not None
        weak = [ref for ops in self.in_flight.values() for op in ops for ref in op.refs]
        weak += [ref for _, op in self.pending for ref in op.refs]
        kept = [b for ops in self.in_flight.values() for op in ops for b in op.keep]
        kept += [b for _, op in self.pending for b in op.keep]
        handles = [h for h, _ in self.pending]
        ring.close()
        self.closed = True
        ring.close()  # twice is fine
        for handle in handles + self.stale:
            assert not handle.valid
            with pytest.raises((StaleSqeError, ValueError)):
                handle.prep_nop(0)
        for call in (ring.submit, ring.copy_cqes, ring.sq_ready, lambda: ring.in_flight):
            with pytest.raises(ValueError, match="closed ring"):
                call()
        gc.collect()
        assert all(ref() is None for ref in weak), "close() kept a buffer"
        for b in kept:
            b.append(0)  # no export left: resizable
        for reg in list(self.registrations):
            reg.registered = False
            reg.fixed_in_flight = 0
            reg.holders.clear()
            self.release_registration(reg)

    @precondition(lambda self: self.closed)
    @rule()
    def use_closed_ring(self) -> None:
        ring = self.ring
        assert ring is not None and ring.closed
        with pytest.raises(ValueError, match="closed ring"):
            ring.nop(0)
        ring.close()

    @invariant()
    def counters_match_model(self) -> None:
        if self.usable():
            self.check_counters()
            for _, op in self.pending:
                assert all(ref() is not None for ref in op.refs)
            for ops in self.in_flight.values():
                for op in ops:
                    assert all(ref() is not None for ref in op.refs), "freed while in flight"


RingMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # Under an emulator shrinking a failure outlasts any test timeout: report it as found.
    phases=[p for p in Phase if not (emulated() and p in (Phase.shrink, Phase.explain))],
)
test_ring_state_machine = RingMachine.TestCase
