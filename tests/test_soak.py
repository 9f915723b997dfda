"""Completions are never lost or duplicated.

CQ overflow far past the CQ size (IORING_FEAT_NODROP), the TASKRUN flag, DEFER_TASKRUN, SQPOLL
wakeups and the SQPOLL "SQ still full after every completion was reaped" window, and a soak
that pushes 1,000,000 operations of mixed kinds (batches and single operations) through small
rings of every configuration, accounting for every user_data exactly once.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from iouring import (
    CQE_DTYPE,
    Cqe,
    Features,
    IoUring,
    SetupFlags,
    SqFlags,
)

SOAK_OPERATIONS = 1_000_000


class Ledger:
    """Every user_data handed out, and every completion seen; each seen exactly once."""

    def __init__(self, capacity: int) -> None:
        self.seen = np.zeros(capacity, dtype=np.uint8)
        self.res = np.zeros(capacity, dtype=np.int64)
        self.issued = 0

    def take(self, n: int) -> int:
        start = self.issued
        self.issued += n
        assert self.issued <= len(self.seen)
        return start

    def record(self, cqes: np.ndarray) -> None:
        ud = cqes["user_data"].astype(np.int64)
        assert (ud < self.issued).all(), f"foreign user_data {ud[ud >= self.issued][:5]}"
        assert len(np.unique(ud)) == len(ud), "a completion was seen twice in one batch"
        assert not self.seen[ud].any(), f"completions seen twice: {ud[self.seen[ud] != 0][:5]}"
        self.seen[ud] = 1
        self.res[ud] = cqes["res"]

    @property
    def outstanding(self) -> int:
        return self.issued - int(self.seen[: self.issued].sum())


def drain(ring: IoUring, ledger: Ledger, out: np.ndarray, timeout: float = 10.0) -> None:
    """Reaps until every operation completed; fails when ``timeout`` seconds pass without a
    completion (a bound on a stall, not on the drain: thousands of overflowed CQEs come back
    a CQ-full at a time, which takes far longer under an emulator such as qemu's TCG)."""
    deadline = time.monotonic() + timeout
    while ledger.outstanding:
        assert time.monotonic() < deadline, f"{ledger.outstanding} completions never came"
        got = ring.copy_cqes(out, wait_nr=1, timeout=1.0)
        ledger.record(got)
        if len(got):
            deadline = time.monotonic() + timeout


def need_nodrop(ring: IoUring) -> None:
    if not ring.features & Features.NODROP:
        pytest.skip("kernel without IORING_FEAT_NODROP drops CQEs on overflow")


# --------------------------------------------------------------------------------------------
# Overflow


def test_overflow_nops_far_past_cq_size(
    make_ring: Callable[..., IoUring], ring_config: Any
) -> None:
    ring = make_ring(8)
    need_nodrop(ring)
    cq = ring.cq_entries
    rounds = 64  # 512 completions into a 16-entry CQ
    ledger = Ledger(rounds * 8)
    saw_overflow = False
    for _ in range(rounds):
        start = ledger.take(8)
        assert ring.nop_batch(start, count=8) == 8
        ring.submit()
        if ring_config.sqpoll:  # the kernel thread must take them before we queue more
            deadline = time.monotonic() + 5
            while ring.sq_ready():
                assert time.monotonic() < deadline
        saw_overflow |= bool(ring.sq_flags & SqFlags.CQ_OVERFLOW)
    if ring_config.inline_completions:
        assert saw_overflow, "the CQ never overflowed"
        assert ring.cq_ready() == cq
    assert ring.in_flight == rounds * 8
    drain(ring, ledger, np.empty(cq // 2 + 3, dtype=CQE_DTYPE))
    assert (ledger.res[: ledger.issued] == 0).all()
    assert ring.cq_overflow == 0  # NODROP: nothing was dropped
    assert (ring.in_flight, ring.pinned, ring.cq_ready()) == (0, 0, 0)
    assert not ring.cq_ring_needs_flush()


def test_overflow_pinned_reads_every_consumer(
    make_ring: Callable[..., IoUring], ring_config: Any, tmp_file: Any
) -> None:
    """Pinned reads overflow the CQ; completions are consumed through every path (copy_cqes,
    copy_cqe, peek_cqe + cqe_seen, cq_advance) and each releases exactly its pins."""
    ring = make_ring(4)
    need_nodrop(ring)
    data = os.urandom(4096)
    src = tmp_file(data)
    buffers: dict[int, bytearray] = {}
    user_data = 0
    for _ in range(24):  # 96 reads into an 8-entry CQ, never reaped meanwhile
        for _ in range(4):
            buf = bytearray(32)
            buffers[user_data] = buf
            ring.read(user_data, src, buf, user_data * 32)
            user_data += 1
        ring.submit()
        deadline = time.monotonic() + 5
        while ring.sq_ready():
            assert time.monotonic() < deadline
    assert ring.in_flight == 96
    seen: Counter[int] = Counter()
    way = 0
    deadline = time.monotonic() + 10
    while sum(seen.values()) < 96:
        assert time.monotonic() < deadline
        way = (way + 1) % 4
        if way == 0:
            cqes = ring.copy_cqes(wait_nr=1, timeout=1)
            assert (cqes["res"] == 32).all()
            seen.update(cqes["user_data"].tolist())
        elif way == 1:
            cqe = ring.copy_cqe(timeout=5)
            assert cqe.res == 32
            seen[cqe.user_data] += 1
        elif way == 2:
            maybe = ring.peek_cqe()
            if maybe is None:  # peek_cqe() brought in what the kernel held back, if anything
                continue
            seen[maybe.user_data] += 1
            ring.cqe_seen(maybe)
        else:
            ready = ring.cq_ready()
            if ready == 0:
                continue
            head = ring.copy_cqes(np.empty(0, dtype=CQE_DTYPE))  # nothing copied
            assert len(head) == 0
            peeked = [ring.peek_cqe()]
            assert peeked[0] is not None
            seen[peeked[0].user_data] += 1
            ring.cq_advance(1)
        assert ring.in_flight == 96 - sum(seen.values())
    assert seen == Counter(range(96))
    for u, buf in buffers.items():
        assert bytes(buf) == data[u * 32 : u * 32 + 32]
        buf.append(0)  # no pin left on it
    assert (ring.in_flight, ring.pinned) == (0, 0)


# --------------------------------------------------------------------------------------------
# Task work: TASKRUN flag, DEFER_TASKRUN


@pytest.mark.parametrize(
    "flags",
    [
        int(SetupFlags.COOP_TASKRUN | SetupFlags.TASKRUN_FLAG),
        int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN),
        int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN | SetupFlags.TASKRUN_FLAG),
    ],
    ids=["coop_taskrun_flag", "defer_taskrun", "defer_taskrun_flag"],
)
def test_task_work_completions_reaped_without_waiting(
    make_default_ring: Callable[..., IoUring],
    make_pipe: Callable[[], tuple[int, int]],
    delayed_write: Callable[..., Any],
    flags: int,
) -> None:
    """Reads completed by another process post their CQEs through task work: polling with
    copy_cqes()/peek_cqe() (no wait) must bring them in (IORING_SQ_TASKRUN, DEFER_TASKRUN)."""
    ring = make_default_ring(8, flags=flags)
    pipes = [make_pipe() for _ in range(6)]
    bufs = [bytearray(2) for _ in pipes]
    for i, ((r, w), buf) in enumerate(zip(pipes, bufs, strict=True)):
        ring.read(0x7A5C0 + i, r, buf, -1)
        ring.submit()  # in flight before its writer runs: completed through task work
        delayed_write(w, b"%02d" % i, 0.05 + 0.02 * i)
    got: list[Cqe] = []
    saw_flag = False
    deadline = time.monotonic() + 20
    while len(got) < len(pipes):
        assert time.monotonic() < deadline, f"only {len(got)} completions came"
        saw_flag |= bool(ring.sq_flags & SqFlags.TASKRUN)
        if len(got) % 2:
            cqe = ring.peek_cqe()
            if cqe is not None:
                got.append(cqe)
                ring.cqe_seen()
        else:
            got.extend(Cqe(int(u), int(r), int(f)) for u, r, f in ring.copy_cqes().tolist())
        time.sleep(0.001)
    assert sorted(got, key=lambda c: c.user_data) == [
        Cqe(0x7A5C0 + i, 2, 0) for i in range(len(pipes))
    ]
    assert [bytes(b) for b in bufs] == [b"%02d" % i for i in range(len(pipes))]
    assert (ring.in_flight, ring.pinned) == (0, 0)
    del saw_flag  # seen or not depends on when the kernel runs the task work


# --------------------------------------------------------------------------------------------
# SQPOLL


def sqpoll_ring(make_default_ring: Callable[..., IoUring], entries: int) -> IoUring:
    return make_default_ring(entries, flags=int(SetupFlags.SQPOLL), sq_thread_idle=1)


def wait_for_sleeping_sq_thread(ring: IoUring) -> bool:
    deadline = time.monotonic() + 2
    while not ring.sq_flags & SqFlags.NEED_WAKEUP:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_sqpoll_wakeups(make_default_ring: Callable[..., IoUring]) -> None:
    """The kernel thread goes to sleep (idle 1 ms) again and again; every submit wakes it."""
    ring = sqpoll_ring(make_default_ring, 4)
    slept = 0
    for i in range(40):
        slept += wait_for_sleeping_sq_thread(ring)
        ring.nop(0x5900 + i)
        assert ring.sq_ring_needs_enter() == bool(ring.sq_flags & SqFlags.NEED_WAKEUP)
        assert ring.submit() == 1
        assert ring.copy_cqe(timeout=5) == Cqe(0x5900 + i, 0, 0)
    assert slept > 0, "the SQ thread never went to sleep"


@pytest.mark.parametrize("how", ["copy_cqe", "copy_cqes", "close"])
def test_sqpoll_flush_then_wait_wakes_sleeping_thread(
    make_default_ring: Callable[..., IoUring], pipe: tuple[int, int], how: str
) -> None:
    """SQEs published with flush_sq() while the kernel thread sleeps: a wait (or close) must
    wake it, or it would wait forever (close: 2 s, then keep the buffer for ever)."""
    ring = sqpoll_ring(make_default_ring, 4)
    if not wait_for_sleeping_sq_thread(ring):
        pytest.skip("the SQ thread never went to sleep")
    if how == "close":
        buf = bytearray(4)
        ring.read(0x5C10, pipe[0], buf, -1)
        ring.flush_sq()
        start = time.monotonic()
        ring.close()  # filterwarnings=error: a ResourceWarning fails the test
        assert time.monotonic() - start < 1.5
        buf.append(0)
        return
    ring.nop(0x5F1)
    ring.flush_sq()
    if how == "copy_cqe":
        assert ring.copy_cqe(timeout=1.5) == Cqe(0x5F1, 0, 0)
    else:
        assert ring.copy_cqes(wait_nr=1, timeout=1.5)["user_data"].tolist() == [0x5F1]


@pytest.mark.parametrize("entries", [1, 2, 4])
def test_sqpoll_sq_never_full_after_reaping(
    make_default_ring: Callable[..., IoUring], entries: int
) -> None:
    """The kernel thread posts CQEs before it moves the SQ head: once every completion is
    reaped, a full set of SQEs must still be available (get_sqe waits with SQ_WAIT)."""
    ring = make_default_ring(entries, flags=int(SetupFlags.SQPOLL))
    out = np.empty(entries, dtype=CQE_DTYPE)
    for i in range(3000):
        # A batch takes what is free (it may find the single NOP below not yet taken) and
        # waits only when nothing is.
        done = 0
        while done < entries:
            done += ring.nop_batch(i * entries + done, count=entries - done)
        ring.submit()
        got = 0
        while got < entries:
            got += len(ring.copy_cqes(out[got:], wait_nr=1, timeout=5))
        ring.nop(0xFFFF)  # single-op path too
        ring.submit()
        assert ring.copy_cqe(timeout=5) == Cqe(0xFFFF, 0, 0)
    assert (ring.in_flight, ring.sq_ready()) == (0, 0)


# --------------------------------------------------------------------------------------------
# Soak


SOAK_CONFIGS = [
    ("default", 0, 8),
    ("coop_taskrun_flag", int(SetupFlags.COOP_TASKRUN | SetupFlags.TASKRUN_FLAG), 16),
    ("defer_taskrun", int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN), 32),
    ("no_sqarray", int(SetupFlags.NO_SQARRAY), 4),
    ("sqpoll", int(SetupFlags.SQPOLL), 32),
]


def test_soak_million_mixed_operations(tmp_file: Any) -> None:
    """1,000,000 operations through small rings of every configuration: NOP, read and write
    batches, single reads/writes/readv/writev/nops, several submits before each reap (so the
    CQ overflows), every user_data accounted for exactly once, every read's data checked."""
    block = 64
    data = np.frombuffer(os.urandom(block * 256), dtype=np.uint8)
    src = tmp_file(data.tobytes())
    sink = tmp_file()
    rng = np.random.default_rng(0x50A4)
    ledger = Ledger(SOAK_OPERATIONS + 64)
    checks: list[tuple[int, memoryview, int]] = []  # (user_data, target, file offset)
    per_config = SOAK_OPERATIONS // len(SOAK_CONFIGS)
    ran: list[str] = []
    for name, flags, entries in SOAK_CONFIGS:
        try:
            ring = IoUring(entries, flags=flags)
        except OSError:
            continue
        ran.append(name)
        try:
            if not ring.features & Features.NODROP:
                pytest.skip("kernel without IORING_FEAT_NODROP")
            out = np.empty(ring.cq_entries * 4, dtype=CQE_DTYPE)
            target_end = ledger.issued + per_config
            submits_since_reap = 0
            while ledger.issued < target_end:
                space = ring.sq_space_left()
                left = target_end - ledger.issued
                kind = rng.integers(0, 100)
                if space == 0:
                    pass
                elif kind < 60:  # a NOP batch
                    n = min(space, left)
                    assert ring.nop_batch(ledger.take(n), count=n) == n
                elif kind < 85:  # a read batch into one pinned buffer
                    n = min(space, left)
                    blocks = rng.integers(0, 256, size=n)
                    target = bytearray(n * block)
                    start = ledger.take(n)
                    assert ring.read_batch(start, src.fd, target, blocks * block, block) == n
                    view = memoryview(target)
                    checks.extend(
                        (start + j, view[j * block : (j + 1) * block], int(blocks[j]) * block)
                        for j in range(0, n, 7)
                    )
                elif kind < 95:  # a write batch from one pinned buffer
                    n = min(space, left)
                    source = data[: n * block].tobytes()
                    assert ring.write_batch(ledger.take(n), sink.fd, source, 0, block, count=n) == n
                else:  # single operations
                    u = ledger.take(1)
                    op = kind % 5
                    if op == 0:
                        ring.nop(u)
                    elif op == 1:
                        buf = bytearray(block)
                        off = int(rng.integers(0, 256)) * block
                        ring.read(u, src, buf, off)
                        checks.append((u, memoryview(buf), off))
                    elif op == 2:
                        ring.write(u, sink, b"w" * 16, 0)
                    elif op == 3:
                        a, b = bytearray(24), bytearray(40)
                        ring.readv(u, src, [a, b], 128)
                        checks.append((u, memoryview(a), 128))
                    else:
                        ring.writev(u, sink, [b"ab", b"cd"], 64)
                ring.submit()
                submits_since_reap += 1
                if space == 0 or submits_since_reap >= rng.integers(1, 5):
                    ledger.record(ring.copy_cqes(out, wait_nr=1, timeout=10))
                    submits_since_reap = 0
            drain(ring, ledger, out)
            assert (ring.in_flight, ring.pinned) == (0, 0)
        finally:
            ring.close()
    assert ran, "the kernel refused every ring configuration"
    issued = ledger.issued
    assert issued >= SOAK_OPERATIONS * len(ran) // len(SOAK_CONFIGS)
    assert ledger.seen[:issued].all()
    failed = np.flatnonzero(ledger.res[:issued] < 0)
    assert len(failed) == 0, f"{len(failed)} operations failed, e.g. {ledger.res[failed[:5]]}"
    for u, view, off in checks:
        assert ledger.res[u] > 0
        assert bytes(view) == data[off : off + len(view)].tobytes(), f"user_data {u}"
