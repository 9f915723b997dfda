"""The wait keywords of submit_and_wait / copy_cqe / copy_cqes / submit_and_copy_cqes: min_wait
(IORING_FEAT_MIN_TIMEOUT), sigmask, deadline (IORING_ENTER_ABS_TIMER) and iowait
(IORING_ENTER_NO_IOWAIT). Each is probe-gated; no test asserts a wall-clock time: the
outcomes (what is ready, what was raised, which signal handler ran) are what is checked."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from kernel_support import require_kernel

from iouring import CQE_DTYPE, Cqe, Features, IoUring, SetupFlags

LONG = 30.0  # an operation that would end the test by timing out: always cancelled first


def _require(ring: IoUring, feature: Features, since: str) -> None:
    if not ring.features & feature:
        pytest.skip(f"kernel lacks IORING_FEAT_{feature.name} (Linux {since}+)")


def _cancel_and_reap(ring: IoUring, target: int) -> list[Cqe]:
    """Removes the timeout `target` and reaps everything in flight."""
    ring.timeout_remove(0xC0FFEE, target)
    ring.submit()
    seen = []
    while ring.in_flight:
        seen.append(ring.copy_cqe(timeout=10))
    while ring.cq_ready():
        seen.append(ring.copy_cqe())
    return seen


# --- min_wait -------------------------------------------------------------------------------


def test_min_wait_returns_with_fewer_than_wait_nr(ring: IoUring) -> None:
    _require(ring, Features.MIN_TIMEOUT, "6.12")
    ring.nop(0xAAAA0001)
    ring.timeout(0xAAAA0002, LONG)
    # Without min_wait this would wait for the 30 s timer; with it, the wait ends once
    # min_wait passed, since one completion (the NOP) is ready.
    assert ring.submit_and_wait(2, min_wait=0.02) == 2
    assert ring.cq_ready() == 1
    assert ring.copy_cqe() == Cqe(0xAAAA0001, 0, 0)
    seen = _cancel_and_reap(ring, 0xAAAA0002)
    assert {c.user_data for c in seen} == {0xAAAA0002, 0xC0FFEE}


def test_min_wait_with_timeout_is_not_a_timeout(ring: IoUring) -> None:
    _require(ring, Features.MIN_TIMEOUT, "6.12")
    ring.nop(0xAAAA0011)
    ring.timeout(0xAAAA0012, LONG)
    # One completion ready once min_wait passed: success, not TimeoutError.
    assert ring.submit_and_wait(2, min_wait=0.01, timeout=LONG) == 2
    out = np.empty(4, CQE_DTYPE)
    got = ring.copy_cqes(out, 2, min_wait=0.01, timeout=LONG)
    assert [int(u) for u in got["user_data"]] == [0xAAAA0011]
    _cancel_and_reap(ring, 0xAAAA0012)


def test_min_wait_past_it_waits_for_the_first_completion(ring: IoUring) -> None:
    _require(ring, Features.MIN_TIMEOUT, "6.12")
    ring.timeout(0xAAAA0021, 0.05)
    # Nothing is ready when min_wait passes: the wait goes on until the first completion
    # (the kernel alone would return -ETIME here; the ring keeps waiting, as documented).
    assert ring.submit_and_wait(2, min_wait=0.001) == 1
    assert ring.copy_cqe() == Cqe(0xAAAA0021, -62, 0)  # -ETIME: the timer expired


def test_min_wait_in_submit_and_copy_cqes(ring: IoUring) -> None:
    _require(ring, Features.MIN_TIMEOUT, "6.12")
    ring.nop(0xAAAA0031)
    ring.timeout(0xAAAA0032, LONG)
    out = np.empty(4, CQE_DTYPE)
    assert ring.submit_and_copy_cqes(out, 2, min_wait=0.01) == 1
    assert int(out[0]["user_data"]) == 0xAAAA0031
    _cancel_and_reap(ring, 0xAAAA0032)


def test_min_wait_nothing_in_flight_still_refused(ring: IoUring) -> None:
    _require(ring, Features.MIN_TIMEOUT, "6.12")
    # Past min_wait the wait needs one completion, which nothing in flight can post.
    with pytest.raises(ValueError, match="nothing is in flight"):
        ring.submit_and_wait(1, min_wait=0.01)
    with pytest.raises(ValueError, match="nothing is in flight"):
        ring.copy_cqe(min_wait=0.01)


# --- deadline (absolute) --------------------------------------------------------------------


def test_deadline_expires_like_a_timeout(ring: IoUring, pipe: tuple[int, int]) -> None:
    require_kernel("6.12", "IORING_ENTER_ABS_TIMER")
    r, w = pipe
    buf = bytearray(2)
    ring.read(0xAAAA0101, r, buf, -1)
    with pytest.raises(TimeoutError, match="0 of 1"):
        ring.submit_and_wait(1, deadline=time.monotonic() + 0.05)
    with pytest.raises(TimeoutError):
        ring.copy_cqe(deadline=time.monotonic() - 1)  # already past: no sleep at all
    out = np.empty(2, CQE_DTYPE)
    assert len(ring.copy_cqes(out, 1, deadline=time.monotonic() + 0.01)) == 0
    os.write(w, b"ok")
    assert ring.copy_cqe(deadline=time.monotonic() + LONG) == Cqe(0xAAAA0101, 2, 0)


def test_deadline_not_reached_returns_completions(ring: IoUring) -> None:
    require_kernel("6.12", "IORING_ENTER_ABS_TIMER")
    ring.nop(0xAAAA0111)
    assert ring.submit_and_wait(1, deadline=time.monotonic() + LONG) == 1
    assert ring.copy_cqe(deadline=time.monotonic() + LONG) == Cqe(0xAAAA0111, 0, 0)


def test_deadline_allows_waiting_with_nothing_in_flight(ring: IoUring) -> None:
    require_kernel("6.12", "IORING_ENTER_ABS_TIMER")
    # Bounded, like a timeout: for completions another ring or thread would post.
    with pytest.raises(TimeoutError):
        ring.copy_cqe(deadline=time.monotonic() + 0.01)


def test_deadline_on_the_registered_clock(make_default_ring: Callable[..., IoUring]) -> None:
    require_kernel("6.12", "IORING_ENTER_ABS_TIMER")
    ring = make_default_ring(8)
    ring.register_clock(time.CLOCK_BOOTTIME)
    with pytest.raises(TimeoutError):
        ring.copy_cqe(deadline=time.clock_gettime(time.CLOCK_BOOTTIME) + 0.02)
    ring.nop(0xAAAA0121)
    ring.submit_and_wait(1, deadline=time.clock_gettime(time.CLOCK_BOOTTIME) + LONG)
    assert ring.copy_cqe() == Cqe(0xAAAA0121, 0, 0)


# --- sigmask --------------------------------------------------------------------------------


class _Fired(Exception):
    pass


@pytest.fixture
def pending_sigusr1() -> Iterator[list[int]]:
    """SIGUSR1 blocked in this thread and pending, with a handler that records each call and
    raises _Fired; the mask and handler are restored afterwards (the signal is consumed)."""
    assert threading.current_thread() is threading.main_thread()
    calls: list[int] = []

    def handler(signum: int, frame: object) -> None:
        calls.append(signum)
        raise _Fired

    old_handler = signal.signal(signal.SIGUSR1, handler)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        assert signal.SIGUSR1 in signal.sigpending()
        yield calls
    finally:
        signal.signal(signal.SIGUSR1, lambda *_: None)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a pending one is delivered now
        signal.signal(signal.SIGUSR1, old_handler)


def test_sigmask_empty_unblocks_for_the_wait(ring: IoUring, pending_sigusr1: list[int]) -> None:
    ring.timeout(0xAAAA0201, LONG)
    # The thread blocks SIGUSR1; the wait's mask does not, so the pending signal interrupts
    # it and its handler's exception comes out of the wait.
    with pytest.raises(_Fired):
        ring.submit_and_wait(1, sigmask=set())
    assert pending_sigusr1 == [signal.SIGUSR1]
    assert ring.cq_ready() == 0  # the handler ran during the wait, not after the timer
    _cancel_and_reap(ring, 0xAAAA0201)


def test_sigmask_blocks_during_the_wait(ring: IoUring, pending_sigusr1: list[int]) -> None:
    ring.timeout(0xAAAA0211, 0.02)
    ring.submit_and_wait(1, sigmask={signal.SIGUSR1})
    assert ring.copy_cqe() == Cqe(0xAAAA0211, -62, 0)
    assert pending_sigusr1 == []  # blocked during the wait and still blocked now
    assert signal.SIGUSR1 in signal.sigpending()
    with pytest.raises(_Fired):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    assert pending_sigusr1 == [signal.SIGUSR1]


def test_sigmask_keyboard_interrupt(ring: IoUring) -> None:
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        ring.timeout(0xAAAA0221, LONG)
        with pytest.raises(KeyboardInterrupt):
            ring.submit_and_wait(1, sigmask=[signal.SIGUSR2])  # SIGINT not in it: unblocked
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    _cancel_and_reap(ring, 0xAAAA0221)


def test_sigmask_accepts_signal_enums_and_valid_signals(ring: IoUring) -> None:
    valid = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
    ring.nop(0xAAAA0231)
    ring.submit_and_wait(1, sigmask=valid)
    ring.nop(0xAAAA0232)
    ring.submit_and_wait(1, sigmask=(signal.Signals.SIGUSR1, signal.SIGTERM), timeout=LONG)
    assert [ring.copy_cqe().user_data for _ in range(2)] == [0xAAAA0231, 0xAAAA0232]


def test_wait_with_options_releases_the_gil(ring: IoUring, pipe: tuple[int, int]) -> None:
    r, w = pipe
    buf = bytearray(3)
    ring.read(0xAAAA0241, r, buf, -1)
    writer = threading.Timer(0.01, os.write, (w, b"abc"))
    writer.start()
    try:
        # The writer thread needs the GIL to write: the wait must release it.
        kwargs: dict[str, object] = {"sigmask": set(), "timeout": LONG}
        if ring.features & Features.MIN_TIMEOUT:
            kwargs["min_wait"] = 0.001
        ring.submit_and_wait(1, **kwargs)  # type: ignore[arg-type]
    finally:
        writer.join()
    assert ring.copy_cqe() == Cqe(0xAAAA0241, 3, 0)
    assert buf == b"abc"


# --- iowait ---------------------------------------------------------------------------------


def test_iowait_false(ring: IoUring) -> None:
    _require(ring, Features.NO_IOWAIT, "6.15")
    ring.timeout(0xAAAA0301, 0.01)
    assert ring.submit_and_wait(1, iowait=False) == 1
    assert ring.copy_cqe(iowait=False) == Cqe(0xAAAA0301, -62, 0)
    ring.nop(0xAAAA0302)
    ring.submit_and_wait(1, iowait=True)
    assert ring.copy_cqe() == Cqe(0xAAAA0302, 0, 0)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"min_wait": -0.5}, ValueError, "min_wait"),
        ({"min_wait": -1}, OverflowError, "min_wait"),
        ({"min_wait": "1"}, TypeError, "min_wait"),
        ({"min_wait": 5000}, ValueError, "min_wait"),
        ({"sigmask": 5}, TypeError, "sigmask"),
        ({"sigmask": [0]}, ValueError, "sigmask"),
        ({"sigmask": [65]}, ValueError, "sigmask"),
        ({"sigmask": ["x"]}, TypeError, "sigmask"),
        # Bounded: these kept the wait converting for ever, GIL held.
        ({"sigmask": np.broadcast_to(np.int8(1), (2**40,))}, ValueError, "sigmask: more than"),
        ({"sigmask": itertools.repeat(1)}, ValueError, "sigmask: more than"),
        ({"deadline": -1.0}, ValueError, "deadline"),
        ({"deadline": "soon"}, TypeError, "deadline"),
        ({"iowait": 0}, TypeError, "iowait"),
        ({"timeout": 1, "deadline": 1.0}, ValueError, "timeout and deadline"),
    ],
)
def test_wait_options_bad_input(
    ring: IoUring, kwargs: dict[str, object], exc: type[Exception], match: str
) -> None:
    ring.nop(0xAAAA0401)
    for call in (
        lambda: ring.submit_and_wait(1, **kwargs),  # type: ignore[arg-type]
        lambda: ring.copy_cqe(**kwargs),  # type: ignore[arg-type]
        lambda: ring.copy_cqes(None, 1, **kwargs),  # type: ignore[arg-type]
        lambda: ring.submit_and_copy_cqes(np.empty(1, CQE_DTYPE), 1, **kwargs),  # type: ignore[arg-type]
    ):
        with pytest.raises(exc, match=match):
            call()
    assert ring.sq_ready() == 1  # refused before anything was submitted
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0xAAAA0401, 0, 0)  # the ring is usable after


def test_wait_options_on_closed_ring() -> None:
    ring = IoUring(2)
    ring.close()
    with pytest.raises(ValueError, match="closed"):
        ring.submit_and_wait(1, sigmask=set())


# --- registered wait region (IORING_ENTER_EXT_ARG_REG) ----------------------------------------


@pytest.fixture
def region_ring(ring_registry: list[IoUring]) -> IoUring:
    require_kernel("6.13", "IORING_REGISTER_MEM_REGION with REG_WAIT_ARG")
    ring = IoUring(8, flags=SetupFlags.R_DISABLED)
    ring_registry.append(ring)
    ring.register_wait_region()
    ring.enable_rings()
    assert ring.wait_region_slots == os.sysconf("SC_PAGESIZE") // 64
    return ring


def test_wait_region_timeout_and_deadline(region_ring: IoUring, pipe: tuple[int, int]) -> None:
    ring = region_ring
    r, w = pipe
    buf = bytearray(2)
    ring.read(0xAAAA0501, r, buf, -1)
    with pytest.raises(TimeoutError, match="0 of 1"):
        ring.submit_and_wait(1, timeout=0.02)
    with pytest.raises(TimeoutError):
        ring.copy_cqe(deadline=time.monotonic() + 0.02)
    assert ring.wait_region_waits == 2  # both went through the region
    os.write(w, b"hi")
    assert ring.copy_cqe(timeout=LONG) == Cqe(0xAAAA0501, 2, 0)


def test_wait_region_min_wait(region_ring: IoUring) -> None:
    _require(region_ring, Features.MIN_TIMEOUT, "6.12")
    ring = region_ring
    ring.nop(0xAAAA0511)
    ring.timeout(0xAAAA0512, LONG)
    assert ring.submit_and_wait(2, min_wait=0.01) == 2
    assert ring.wait_region_waits >= 1
    assert ring.copy_cqe() == Cqe(0xAAAA0511, 0, 0)
    _cancel_and_reap(ring, 0xAAAA0512)


def test_wait_region_sigmask(region_ring: IoUring, pending_sigusr1: list[int]) -> None:
    ring = region_ring
    ring.timeout(0xAAAA0521, LONG)
    with pytest.raises(_Fired):
        ring.submit_and_wait(1, sigmask=set())  # unblocks the pending SIGUSR1 for the wait
    assert ring.wait_region_waits == 1
    _cancel_and_reap(ring, 0xAAAA0521)


def test_wait_region_refused_after_enable(make_default_ring: Callable[..., IoUring]) -> None:
    ring = make_default_ring(4)
    with pytest.raises(ValueError, match="R_DISABLED"):
        ring.register_wait_region()
    with pytest.raises(ValueError, match="pages"):
        ring.register_wait_region(0)
    assert ring.wait_region_slots == 0
    ring.nop(1)
    ring.submit_and_wait(1)  # usable after
    assert ring.copy_cqe() == Cqe(1, 0, 0)


def test_wait_region_second_refused(region_ring: IoUring) -> None:
    with pytest.raises(ValueError, match="already"):
        region_ring.register_wait_region()
