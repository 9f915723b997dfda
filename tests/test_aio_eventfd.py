"""The CQ eventfd toggle (IORING_CQ_EVENTFD_DISABLED) and how AsyncRing uses it on an ordinary
asyncio loop: one loop iteration per await, no wakeup for completions it reaped itself, and
the eventfd back on whenever the adapter stops polling.

Real kernel, real eventfds and pipes; loop iterations are counted (selector.select calls),
never timed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import RingConfig

import iouring
from iouring import IoUring
from iouring.aio import AsyncRing

MakeRing = Callable[..., IoUring]


def _eventfd() -> int:
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def _enabled(ring: IoUring) -> bool:
    """ring.cq_eventfd_enabled, read afresh (a call, so that type checkers do not narrow it)."""
    return ring.cq_eventfd_enabled


def _signalled(efd: int) -> bool:
    try:
        os.eventfd_read(efd)
    except BlockingIOError:
        return False
    return True


def test_cq_eventfd_toggle_stops_and_resumes_signals(
    make_ring: MakeRing, ring_config: RingConfig
) -> None:
    ring = make_ring(8)
    efd = _eventfd()
    try:
        ring.register_eventfd(efd)
        assert _enabled(ring)
        ring.nop(0xAAAAAAAA)
        ring.submit_and_wait(1)
        assert ring.copy_cqe().user_data == 0xAAAAAAAA
        assert _signalled(efd)

        ring.cq_eventfd_toggle(False)
        assert not _enabled(ring)
        ring.cq_eventfd_toggle(False)  # twice is fine
        ring.nop(0xBBBBBBBB)
        ring.submit_and_wait(1)
        assert ring.cq_ready() == 1  # posted, but not signalled
        assert not _signalled(efd)

        ring.cq_eventfd_toggle(True)
        assert _enabled(ring)
        # A completion posted while disabled is not signalled later: it is in the CQ.
        assert not _signalled(efd)
        assert ring.copy_cqe().user_data == 0xBBBBBBBB
        ring.nop(0xCCCCCCCC)
        ring.submit_and_wait(1)
        assert ring.copy_cqe().user_data == 0xCCCCCCCC
        assert _signalled(efd)
        ring.unregister_eventfd()
    finally:
        os.close(efd)


def test_cq_eventfd_toggle_bad_input(make_default_ring: MakeRing) -> None:
    ring = make_default_ring(8)

    for bad in (object(), "no", 0.0, 2):
        with pytest.raises((TypeError, OverflowError), match="enabled"):
            ring.cq_eventfd_toggle(bad)  # type: ignore[arg-type]
    assert _enabled(ring)
    ring.cq_eventfd_toggle(0)  # type: ignore[arg-type]  # 0/1 and NumPy bools count too
    assert not _enabled(ring)
    ring.cq_eventfd_toggle(np.True_)  # type: ignore[arg-type]
    assert _enabled(ring)
    with pytest.raises(TypeError):
        ring.cq_eventfd_toggle()  # type: ignore[call-arg]
    closed = IoUring(4)
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        closed.cq_eventfd_toggle(False)
    with pytest.raises(ValueError, match="closed"):
        _ = closed.cq_eventfd_enabled


def _count_iterations(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Counts the loop's iterations: one selector.select() call each."""
    selector: Any = loop._selector  # type: ignore[attr-defined]
    select = selector.select
    count = [0]

    def counting(timeout: float | None = None) -> Any:
        count[0] += 1
        return select(timeout)

    selector.select = counting
    return count


def test_aio_default_loop_one_iteration_per_await(
    make_ring: MakeRing, ring_config: RingConfig
) -> None:
    """A task awaiting operations one after the other on the default asyncio loop: each await
    takes one loop iteration (two before the adapter polled behind the woken tasks)."""
    if ring_config.sqpoll:
        pytest.skip("under SQPOLL completions come from the kernel thread, not inline")
    n = 2000

    async def main() -> None:
        aring = AsyncRing(ring=make_ring(8))
        for _ in range(10):
            await aring.nop()
        count = _count_iterations(asyncio.get_running_loop())
        for _ in range(n):
            assert await aring.nop() == 0
        assert count[0] <= n + 2
        await aring.aclose()

    asyncio.run(main())


def test_aio_default_loop_eventfd_off_only_while_polling(
    make_ring: MakeRing, ring_config: RingConfig, pipe: tuple[int, int]
) -> None:
    """The eventfd is off while the adapter reaps completions itself, back on as soon as a
    flush finds nothing (so a completion posted later wakes the loop), and on again after
    close (a ring passed in is left as it came)."""
    r, w = pipe

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ring = make_ring(8)
        aring = AsyncRing(ring=ring)
        toggles = aring._cq_toggle
        for _ in range(50):
            await aring.nop()
        if toggles and not ring_config.sqpoll:
            # Polling: the next flush is queued. Under SQPOLL the kernel thread posts the
            # completion whenever it runs, so the last await may have been woken through the
            # eventfd after a flush that found nothing (which turned it back on).
            assert not _enabled(ring)
        for _ in range(3):
            await asyncio.sleep(0)
        assert _enabled(ring)  # a flush found nothing: waiting on the eventfd
        # After a burst, a completion posted while the loop sleeps still wakes it.
        for _ in range(3):
            buf = bytearray(8)
            pending = asyncio.ensure_future(aring.read(r, buf, -1))
            for _ in range(20):
                await aring.nop()
            loop.call_later(0.02, os.write, w, b"late")
            assert await asyncio.wait_for(pending, timeout=10) == 4
            assert buf[:4] == b"late"
        await aring.aclose()
        assert _enabled(ring)

    asyncio.run(main())


def test_aio_eventfd_toggle_used_on_this_kernel(make_default_ring: MakeRing) -> None:
    """On the kernels the adapter trusts with the toggle (6.10+, as here), it uses it."""
    release = os.uname().release.split(".")
    if (int(release[0]), int(release[1].split("-")[0])) < (6, 10):
        pytest.skip("the adapter reads the eventfd instead on kernels before 6.10")

    async def main() -> None:
        aring = AsyncRing(ring=make_default_ring(8))
        assert aring._cq_toggle
        await aring.aclose()

    asyncio.run(main())
    assert iouring.aio.run(_uses_loop_ring())


async def _uses_loop_ring() -> bool:
    aring = AsyncRing()
    try:
        # On iouring's own loop there is no eventfd and nothing to toggle.
        return aring.uses_loop_ring and not aring._cq_toggle
    finally:
        await aring.aclose()
