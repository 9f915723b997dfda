"""Threads sharing one ring: nothing lost, nothing duplicated, no crash, no thread starved.

What is safe to share between threads (free-threaded builds included):

- **Every method of one ``IoUring``**, from any number of threads. Each call keeps the ring's
  bookkeeping (slots, pins, in-flight counts) consistent on its own; only blocking waits
  release the GIL, and they touch no bookkeeping while it is released.
- **One-call operations** (``ring.read(...)``, ``ring.nop(...)``, the ``*_batch`` methods) take
  a vacant SQE and prepare it in one atomic call. ``get_sqe()`` followed by ``prep_*()`` and
  field writes are separate calls: another thread's ``submit()`` may flush the slot in between
  (the kernel then runs what the slot held - a NOP, or your first prep - and your next write
  raises ``StaleSqeError``). Threads that share a ring should use the one-call methods, or
  their own lock around get/prep/submit.
- **Completions belong to whoever reaps them.** A completion may be copied out by any thread;
  route it by ``user_data``. A thread waiting in ``copy_cqe()``, ``copy_cqes(wait_nr=...)`` or
  ``submit_and_wait(n)`` waits for completions *in the queue*: if other threads reap them
  first it keeps waiting, so give such waits a ``timeout=`` or wake them with a NOP carrying a
  sentinel ``user_data``.
- **close()** from any thread, even while other threads are blocked in a wait on the ring:
  from its first instant the ring counts as closed (calls from other threads raise
  ``ValueError``, so none can start a new wait), it wakes the blocked threads (with NOPs
  whose completions they never see) and they raise ``ValueError``, and only once every one
  of them has left does it drain and unmap the ring. ``close()`` from a second thread
  meanwhile returns at once. The one exception: a SINGLE_ISSUER ring whose waiter cannot be
  woken because the closing thread may not submit to it; then ``close()`` raises
  ``RuntimeError`` and the ring stays open.
- **SINGLE_ISSUER / DEFER_TASKRUN** rings belong to the thread that created them: the kernel
  refuses submissions (and, with DEFER_TASKRUN, waits) from other threads (``OSError``
  EEXIST).
- **Operations belong to the thread that submitted them**: when that thread exits, the kernel
  cancels what it still has in flight (io-wq work such as buffered file writes completes
  with ``-ECANCELED``). Keep submitting threads alive until their operations completed.
- A ring is never shared with a forked child (``RingForkedError``, see test_safety.py).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from sqe_support import nop_submitting_when_full

from iouring import Cqe, IoUring, SetupFlags, SubmissionQueueFull

N_THREADS = 8
OPS_PER_THREAD = 1500
JOIN_TIMEOUT = 60.0


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, to shake out interleavings."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    """Runs each target in its own thread, joins them (bounded), returns their exceptions."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"threads still running after {JOIN_TIMEOUT} s: {alive}"
    return errors


@pytest.mark.parametrize(
    "flags",
    [0, int(SetupFlags.COOP_TASKRUN | SetupFlags.TASKRUN_FLAG), int(SetupFlags.SQPOLL)],
    ids=["default", "coop_taskrun_flag", "sqpoll"],
)
def test_threads_eight_submit_and_reap(
    make_default_ring: Callable[..., IoUring], tmp_file: Any, fast_switching: None, flags: int
) -> None:
    """8 threads: 3 submit only, 3 reap only, 2 do both; nops, reads and writes with pins."""
    ring = make_default_ring(32, flags=flags)
    data = bytes(range(256)) * 16
    src = tmp_file(data)
    sink = tmp_file()
    total = 5 * OPS_PER_THREAD  # 3 submitters + 2 mixed threads submit
    reaped: list[list[tuple[int, int]]] = [[] for _ in range(N_THREADS)]
    reads: dict[int, tuple[bytearray, int]] = {}
    count_lock = threading.Lock()
    reaped_count = [0]

    def reap(tid: int, wait: bool) -> None:
        cqes = ring.copy_cqes(wait_nr=1 if wait else 0, timeout=0.02 if wait else None)
        if len(cqes):
            reaped[tid].extend(zip(cqes["user_data"].tolist(), cqes["res"].tolist(), strict=True))
            with count_lock:
                reaped_count[0] += len(cqes)

    def submit_one(tid: int, i: int) -> None:
        user_data = (tid << 32) | i
        kind = i % 3
        while True:
            try:
                if kind == 0:
                    ring.nop(user_data)
                elif kind == 1:
                    buf = bytearray(64)
                    offset = (i * 64) % len(data)
                    reads[user_data] = (buf, offset)
                    ring.read(user_data, src, buf, offset)
                else:
                    ring.write(user_data, sink, data[:32], (tid * OPS_PER_THREAD + i) * 32)
                return
            except SubmissionQueueFull:
                ring.submit()
                if tid >= 6:
                    reap(tid, wait=False)

    def submitter(tid: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(OPS_PER_THREAD):
                submit_one(tid, i)
                if i % 8 == 7:
                    ring.submit()
                    if tid >= 6:
                        reap(tid, wait=False)
            ring.submit()
            # The kernel cancels the operations of a thread that exits (io-wq writes then
            # complete with -ECANCELED): stay until everything was reaped.
            deadline = time.monotonic() + JOIN_TIMEOUT / 2
            while reaped_count[0] < total and time.monotonic() < deadline:
                if tid >= 6:
                    reap(tid, wait=True)
                else:
                    time.sleep(0.001)

        return run

    def reaper(tid: int) -> Callable[[], None]:
        def run() -> None:
            deadline = time.monotonic() + JOIN_TIMEOUT / 2
            while reaped_count[0] < total and time.monotonic() < deadline:
                reap(tid, wait=True)

        return run

    targets = [submitter(t) for t in range(3)] + [reaper(t) for t in range(3, 6)]
    targets += [submitter(t) for t in range(6, 8)]
    errors = run_threads(targets)
    assert errors == []
    ring.submit()
    deadline = time.monotonic() + JOIN_TIMEOUT
    while reaped_count[0] < total and time.monotonic() < deadline:
        reap(0, wait=True)
    got = [u for part in reaped for u, _ in part]
    expected = [(tid << 32) | i for tid in (0, 1, 2, 6, 7) for i in range(OPS_PER_THREAD)]
    counts = Counter(got)
    assert [u for u, n in counts.items() if n > 1] == [], "duplicated completions"
    assert set(got) == set(expected), "lost or foreign completions"
    results = {u: res for part in reaped for u, res in part}
    for user_data, (buf, offset) in reads.items():
        assert results[user_data] == 64
        assert bytes(buf) == data[offset : offset + 64]
    writes = [u for u in expected if (u & 0xFFFFFFFF) % 3 == 2]
    assert Counter(results[u] for u in writes) == Counter({32: len(writes)})
    assert (ring.in_flight, ring.pinned, ring.sq_ready(), ring.cq_ready()) == (0, 0, 0, 0)


def test_threads_batches_and_single_ops_share_a_ring(
    make_default_ring: Callable[..., IoUring], fast_switching: None
) -> None:
    """Batch calls are atomic against single-op calls from other threads."""
    ring = make_default_ring(16)
    per_thread = 400

    def worker(tid: int) -> Callable[[], None]:
        def run() -> None:
            i = 0
            while i < per_thread:
                base = (tid << 32) | i
                try:
                    if tid % 2:
                        n = ring.nop_batch(
                            np.arange(base, base + min(5, per_thread - i), dtype=np.uint64)
                        )
                    else:
                        ring.nop(base)
                        n = 1
                except SubmissionQueueFull:
                    n = 0
                i += n
                ring.submit()

        return run

    got: list[int] = []
    stop = threading.Event()

    def reaper() -> None:
        while not stop.is_set() or ring.in_flight:
            got.extend(ring.copy_cqes(wait_nr=1, timeout=0.01)["user_data"].tolist())

    reaper_thread = threading.Thread(target=reaper)
    reaper_thread.start()
    try:
        errors = run_threads([worker(t) for t in range(N_THREADS - 1)])
    finally:
        stop.set()
        reaper_thread.join(JOIN_TIMEOUT)
    assert not reaper_thread.is_alive()
    assert errors == []
    expected = Counter((t << 32) | i for t in range(N_THREADS - 1) for i in range(per_thread))
    assert Counter(got) == expected
    assert (ring.in_flight, ring.pinned) == (0, 0)


def test_threads_blocked_waiter_does_not_block_others(
    make_default_ring: Callable[..., IoUring],
    pipe: tuple[int, int],
    delayed_write: Callable[..., Any],
) -> None:
    """One thread sits in submit_and_wait on an empty pipe; 7 others keep using the ring."""
    ring = make_default_ring(16)
    r, w = pipe
    buf = bytearray(4)
    ring.read(0xB10C, r, buf, -1)
    ring.submit()  # from this thread: the read would be cancelled if the waiter exited first
    delayed_write(w, b"WDOG", 30.0)  # ends the wait if the GIL were held while blocked
    waiting = threading.Event()
    done = threading.Event()
    result: dict[str, Any] = {}

    def waiter() -> None:
        waiting.set()
        result["submitted"] = ring.submit_and_wait(1)
        done.set()

    per_thread = 300
    got: list[list[int]] = [[] for _ in range(N_THREADS - 1)]

    def busy(tid: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(per_thread):
                nop_submitting_when_full(ring, (tid << 32) | i)
                ring.submit()
                got[tid].extend(ring.copy_cqes()["user_data"].tolist())

        return run

    waiter_thread = threading.Thread(target=waiter)
    waiter_thread.start()
    assert waiting.wait(5)
    time.sleep(0.05)
    start = time.monotonic()
    errors = run_threads([busy(t) for t in range(N_THREADS - 1)])
    busy_time = time.monotonic() - start
    assert errors == []
    assert busy_time < 25.0, "the busy threads waited for the blocked one"
    # The waiter may have woken on a NOP completion (submit_and_wait(1) counts any CQE);
    # either way the read is still in flight until the pipe has data.
    os.write(w, b"data")
    waiter_thread.join(JOIN_TIMEOUT)
    assert not waiter_thread.is_alive()
    assert done.is_set() and result["submitted"] == 0
    rest: list[int] = []
    while 0xB10C not in rest:
        rest.extend(ring.copy_cqes(wait_nr=1, timeout=5)["user_data"].tolist())
    rest.extend(ring.copy_cqes()["user_data"].tolist())
    expected = Counter((t << 32) | i for t in range(N_THREADS - 1) for i in range(per_thread))
    expected[0xB10C] += 1
    assert Counter([u for part in got for u in part] + rest) == expected
    assert buf == b"data"
    assert (ring.in_flight, ring.pinned) == (0, 0)


@pytest.mark.parametrize("how", ["copy_cqe", "copy_cqes", "submit_and_wait", "enter"])
def test_threads_close_wakes_blocked_waiters(
    make_default_ring: Callable[..., IoUring],
    pipe: tuple[int, int],
    delayed_write: Callable[..., Any],
    how: str,
) -> None:
    """close() from the main thread while 3 threads are blocked in waits on the ring: the
    waiters raise ValueError promptly, close() returns, the cancelled read's buffer is free."""
    ring = make_default_ring(8)
    r, w = pipe
    buf = bytearray(3)
    ring.read(0xC1D5, r, buf, -1)
    ring.submit()
    delayed_write(w, b"WDG", 30.0)  # ends the waits if close() cannot
    waits: dict[str, Callable[[], object]] = {
        "copy_cqe": ring.copy_cqe,
        "copy_cqes": lambda: ring.copy_cqes(wait_nr=4),
        "submit_and_wait": lambda: ring.submit_and_wait(8),
        "enter": lambda: ring.enter(0, 2, 1),  # EnterFlags.GETEVENTS
    }
    results: list[Any] = []

    def waiter() -> None:
        try:
            results.append(waits[how]())
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    assert all(t.is_alive() for t in threads)
    start = time.monotonic()
    ring.close()
    elapsed = time.monotonic() - start
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    assert elapsed < 5.0
    assert ring.closed
    assert [type(r) for r in results] == [ValueError] * 3, results
    assert all("closed" in str(r) for r in results)
    buf.append(0)  # unpinned: the read was cancelled and reaped


def test_threads_close_cannot_wake_single_issuer_owner(pipe: tuple[int, int]) -> None:
    """The one close() that cannot proceed: the waiter owns a SINGLE_ISSUER|DEFER_TASKRUN
    ring, so the closing thread may not submit the NOPs that would wake it."""
    r, w = pipe
    flags = int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN)
    state: dict[str, Any] = {}
    ready = threading.Event()
    buf = bytearray(2)

    def owner() -> None:
        try:
            ring = IoUring(4, flags=flags)
        except OSError as exc:
            state["skip"] = str(exc)
            ready.set()
            return
        state["ring"] = ring
        ring.read(0x0E1, r, buf, -1)
        ring.submit()
        ready.set()
        try:
            state["cqe"] = ring.copy_cqe(timeout=10)
            ring.submit()  # close()'s NOP, flushed but not submitted by the other thread
            state["rest"] = ring.copy_cqes(wait_nr=1, timeout=5)["user_data"].tolist()
        finally:
            ring.close()

    thread = threading.Thread(target=owner)
    thread.start()
    assert ready.wait(10)
    if "skip" in state:
        thread.join()
        pytest.skip(f"kernel refuses SINGLE_ISSUER|DEFER_TASKRUN: {state['skip']}")
    time.sleep(0.2)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="could not be woken"):
        state["ring"].close()
    assert time.monotonic() - start < 5.0
    assert not state["ring"].closed
    os.write(w, b"ok")
    thread.join(JOIN_TIMEOUT)
    assert not thread.is_alive()
    assert state["cqe"] == Cqe(0x0E1, 2, 0)
    assert state["rest"] == [0]
    assert buf == b"ok"


def test_threads_concurrent_close_and_waits_never_crash(
    pipe: tuple[int, int], fast_switching: None
) -> None:
    """Threads keep starting short waits while the main thread closes the ring: each wait
    either completes, times out, or sees a closed ring; close() either closes or says another
    thread is blocked. Nothing touches a ring after it was unmapped."""
    r, _ = pipe
    outcomes: Counter[str] = Counter()
    for _ in range(60):
        ring = IoUring(8)
        buf = bytearray(8)
        ring.read(0xC0C0, r, buf, -1)  # never completes: close must cancel it
        ring.submit()
        stop = threading.Event()

        def hammer(ring: IoUring = ring, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                try:
                    ring.copy_cqes(wait_nr=1, timeout=0.002)
                    ring.submit_and_wait(1, timeout=0.002)
                except TimeoutError:
                    outcomes["timeout"] += 1
                except ValueError:
                    outcomes["closed"] += 1
                    return

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.005)
        ring.close()
        stop.set()
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        assert not any(t.is_alive() for t in threads)
        assert ring.closed
        buf.append(0)  # the pin was released: the cancelled read was reaped
    assert outcomes["closed"] > 0


def test_threads_close_from_two_threads(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    for _ in range(20):
        ring = IoUring(4)
        buf = bytearray(8)
        ring.read(0xD0D0, r, buf, -1)
        ring.submit()
        errors = run_threads([ring.close, ring.close, ring.close])
        assert errors == []
        assert ring.closed
        buf.append(0)


def test_threads_single_issuer_ring_refuses_other_threads(
    make_default_ring: Callable[..., IoUring],
) -> None:
    flags = int(SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN)
    ring = make_default_ring(4, flags=flags)
    result: list[OSError] = []

    def other() -> None:
        ring.nop(0x0777)
        try:
            ring.submit()
        except OSError as exc:
            result.append(exc)

    errors = run_threads([other])
    assert errors == []
    if not result:
        pytest.skip("this kernel lets other threads submit to a SINGLE_ISSUER ring")
    import errno

    assert result[0].errno == errno.EEXIST
    # The owner submits the NOP that the other thread prepared.
    assert ring.submit() == 1
    assert ring.copy_cqe(timeout=5) == Cqe(0x0777, 0, 0)


def test_threads_close_during_unregister_buffers_leaves_other_rings_alone(
    fast_switching: None,
) -> None:
    """unregister_buffers runs its syscall without the GIL. close() from another thread must
    wait for it to leave: else the ring's fd number could be closed, reused by a new ring, and
    the unregister land on that ring, whose fixed-buffer reads would then fail."""
    data = os.urandom(64)
    rfd, wfd = os.pipe()
    try:
        for _ in range(40):
            ring = IoUring(4)
            stop = threading.Event()

            def churn(ring: IoUring = ring, stop: threading.Event = stop) -> None:
                buffers = [bytearray(64)]
                while not stop.is_set():
                    try:
                        ring.register_buffers(buffers)
                        ring.unregister_buffers()
                    except ValueError:  # closed
                        return
                    except RuntimeError:  # close() could not wait for this thread: retried
                        continue

            thread = threading.Thread(target=churn)
            thread.start()
            time.sleep(0.002)
            while True:
                try:
                    ring.close()
                    break
                except RuntimeError:
                    continue
            other = IoUring(4)  # likely takes the closed ring's fd number
            try:
                buf = bytearray(64)
                other.register_buffers([buf])
                stop.set()
                thread.join(JOIN_TIMEOUT)
                assert not thread.is_alive()
                os.write(wfd, data)
                other.read_fixed(0x51, rfd, buf, -1, 0)
                other.submit()
                cqe = other.copy_cqe(timeout=5)
                assert (cqe.user_data, cqe.res) == (0x51, 64)  # its registration is intact
                assert bytes(buf) == data
            finally:
                other.close()
    finally:
        os.close(rfd)
        os.close(wfd)
