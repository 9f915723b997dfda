"""An asyncio event loop whose wait is an io_uring (see :mod:`iouring.aio`).

The pieces:

- :class:`_Pump` drives one ring for asyncio: it submits what is prepared, waits, and resolves
  the futures of the completions (``iouring._core.aio_dispatch``, in C++). Every
  :class:`iouring.aio.AsyncRing` using the ring owns one of its 255 handler tables (the
  "slot" in bits 55..62 of its operations' ``user_data``); batches (bit 63) are routed here.
- :class:`_RingSelector` is an ``EpollSelector`` whose ``select(timeout)`` is the pump: a
  ``POLL_ADD`` of the epoll fd is armed on the ring before it waits, so one ``io_uring_enter``
  submits the operations of the iteration, waits for ring completions and for ordinary fds
  (sockets of asyncio streams, the loop's self-pipe), and resolves the futures of the
  completions in the same iteration. With no io_uring work at all it is a plain
  ``epoll_wait``.
- :class:`IoUringEventLoop` is asyncio's own selector event loop on that selector, so
  ordinary asyncio code (streams, ``loop.sock_*``, ``call_later``, signal handlers,
  subprocesses, executors) runs on it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import selectors
import weakref
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

import iouring
from iouring._core import (
    CQE_DTYPE,
    SetupFlags,
    SubmissionQueueFull,
    aio_dispatch,
    aio_has_work,
)

if TYPE_CHECKING:
    from iouring.aio import AsyncRing, _Batch

__all__ = ["IoUringEventLoop", "new_event_loop", "run"]

_T = TypeVar("_T")

# user_data layout shared with aio.py (and register_aio.cpp): single operations carry their
# adapter's slot in bits 55..62 and a counter below; batches carry bit 63, a batch id in bits
# 32..62 and the operation's index below.
SLOT_SHIFT: Final = 55
SLOTS: Final = 256
LOOP_SLOT: Final = SLOTS - 1  # the loop's own operations (the epoll poll)
COUNTER_LIMIT: Final = 1 << SLOT_SHIFT
BATCH_BIT: Final = 1 << 63
BATCH_ID_MASK: Final = (1 << 31) - 1
_EPOLL_USER_DATA: Final = LOOP_SLOT << SLOT_SHIFT | 1
_POLLIN: Final = select.POLLIN
_Future: Final = asyncio.Future


class _Pump:
    """Submission, wait and completion dispatch of one ring for asyncio."""

    __slots__ = (
        "batch_ops",
        "batch_out",
        "batches",
        "counters",
        "next_batch",
        "owners",
        "ring",
        "room_waiters",
        "tables",
        "watchers",
    )

    def __init__(self, ring: iouring.IoUring) -> None:
        self.ring = ring
        self.tables: list[dict[int, Any] | None] = [None] * SLOTS
        # Weak: an adapter dropped without close() frees its slot once its operations ended.
        self.owners: list[weakref.ref[AsyncRing] | None] = [None] * SLOTS
        self.counters = [1] * SLOTS  # next counter per slot: never reused, so no stale match
        self.batches: dict[int, _Batch] = {}
        self.next_batch = 0
        self.batch_ops = 0  # batch operations in flight (CQ room accounting)
        self.room_waiters: list[asyncio.Future[None]] = []
        self.watchers: set[AsyncRing] = set()  # adapters waiting until they are idle
        self.batch_out = np.empty(max(ring.cq_entries, 64), dtype=CQE_DTYPE)

    # --- slots ---------------------------------------------------------------------------

    def attach(self, aring: AsyncRing) -> tuple[int, dict[int, Any]]:
        """A free slot for ``aring`` and its handler table. A slot whose previous owner left
        operations behind (being cancelled) is taken only once they have completed."""
        for slot in range(SLOTS - 1):
            table = self.tables[slot]
            owner = self.owners[slot]
            if (owner is None or owner() is None) and not table:
                table = {}
                self.tables[slot] = table
                self.owners[slot] = weakref.ref(aring)
                return slot, table
        raise RuntimeError(f"too many AsyncRing adapters on one ring (at most {SLOTS - 1})")

    def detach(self, slot: int) -> None:
        """The adapter in ``slot`` closed; its leftover handlers (cancelled operations) stay
        until their completions arrive."""
        self.owners[slot] = None
        if not self.tables[slot]:
            self.tables[slot] = None

    # --- the pump --------------------------------------------------------------------------

    def run(self, timeout: float | None = 0.0, *, pending: int = 0) -> None:
        """Submits the prepared SQEs, waits at most ``timeout`` seconds (None: until a
        completion; 0: not at all; negative: no submit either) and dispatches every ready
        completion. ``pending``: the count of batch completions the caller's own
        aio_dispatch() call left in batch_out."""
        out = self.batch_out
        n = pending or aio_dispatch(self.ring, self.tables, _Future, out, timeout)
        while n:
            self._dispatch_batches(out[:n].copy())
            if n < len(out):
                break
            n = aio_dispatch(self.ring, self.tables, asyncio.Future, out, -1.0)
        if self.watchers:
            for aring in list(self.watchers):
                aring._check_idle()

    def new_batch_id(self) -> int:
        batch_id = self.next_batch
        while batch_id in self.batches:
            batch_id = (batch_id + 1) & BATCH_ID_MASK
        self.next_batch = (batch_id + 1) & BATCH_ID_MASK
        return batch_id

    def _dispatch_batches(self, cqes: npt.NDArray[np.void]) -> None:
        user_data = cqes["user_data"]
        ids = (user_data >> np.uint64(32)) & np.uint64(BATCH_ID_MASK)
        first = ids[0]
        groups = [first] if (ids == first).all() else np.unique(ids)
        for batch_id in groups:
            sel = cqes if len(groups) == 1 else cqes[ids == batch_id]
            self.batch_ops -= len(sel)
            batch = self.batches.get(int(batch_id))
            if batch is None:
                continue
            index = (sel["user_data"] & np.uint64(0xFFFF_FFFF)).astype(np.intp)
            batch.result[index] = sel
            batch.done[index] = True
            batch.remaining -= len(sel)
            batch.owner._batch_ops -= len(sel)
            if batch.remaining <= 0:
                self.finish_batch(int(batch_id), batch)
        self.batch_ops = max(self.batch_ops, 0)
        self.wake_room()

    def finish_batch(self, batch_id: int, batch: _Batch) -> None:
        """Resolves a batch whose last completion has arrived."""
        del self.batches[batch_id]
        batch.result["user_data"] = np.arange(batch.count, dtype=np.uint64)
        if not batch.future.done():
            batch.future.set_result(batch.result)

    def wake_room(self) -> None:
        waiters, self.room_waiters = self.room_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class _RingSelector(selectors.EpollSelector):
    """An epoll selector whose wait is the ring: see the module docstring."""

    def __init__(self, pump: _Pump) -> None:
        super().__init__()
        self._pump = pump
        self._ring = pump.ring
        self._tables = pump.tables
        self._batch_out = pump.batch_out
        self._table: dict[int, Any] = {}
        pump.tables[LOOP_SLOT] = self._table
        self._armed = False  # a POLL_ADD of the epoll fd is on the ring
        self._fired = False  # it completed: epoll has events
        self._closed = False

    # Handler of the poll on the epoll fd (called by aio_dispatch).
    def complete(self, res: int, flags: int) -> None:
        self._armed = False
        self._fired = True

    def more(self, res: int, flags: int) -> None:
        self._fired = True

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ring = self._ring
        if not aio_has_work(ring, self._armed):
            # No io_uring work in flight or prepared: wait in epoll, as the stock selector
            # does.
            return super().select(timeout)
        if not self._armed:
            # One-shot, armed again before each wait that needs it: arming checks the epoll
            # fd at once, so level-triggered fds still ready (which do not wake the epoll
            # again) complete it inline, and nothing fires while epoll is asked directly.
            try:
                ring.poll_add(_EPOLL_USER_DATA, self.fileno(), _POLLIN)
            except SubmissionQueueFull:
                # Submit what the tasks prepared first; what that completed is ready to
                # run, so this iteration must not sleep.
                self._pump.run(0.0)
                timeout = 0
                ring.poll_add(_EPOLL_USER_DATA, self.fileno(), _POLLIN)
            self._table[_EPOLL_USER_DATA] = self
            self._armed = True
        # pump.run(timeout), inlined: this is once per loop iteration.
        n = aio_dispatch(ring, self._tables, _Future, self._batch_out, timeout)
        if n or self._pump.watchers:
            self._pump.run(-1.0, pending=n)
        if self._fired:
            self._fired = False
            return super().select(0)
        return []

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            ring = self._pump.ring
            if not ring.closed:
                # Cancels and drains what is in flight (the epoll poll included), keeping
                # buffers alive until the kernel is done with them.
                ring.close()
        super().close()


class IoUringEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop that waits in io_uring (see :mod:`iouring.aio`).

    ``IoUringEventLoop(entries=256, **ring_options)`` creates an ``IoUring(entries,
    **ring_options)`` that the loop owns and closes with itself. Everything asyncio offers
    works as on the default loop; :class:`iouring.aio.AsyncRing` created on it uses this ring
    (``loop.ring``), and its operations are submitted, waited for and completed by the loop's
    own wait. Raises what ``IoUring`` raises for bad options, ``ValueError`` for an IOPOLL or
    SQPOLL ring (an event loop cannot wait on those).
    """

    def __init__(self, entries: int = 256, **ring_options: Any) -> None:
        self._closed = True  # until set up: BaseEventLoop.__del__ looks at it
        ring = iouring.IoUring(entries, **ring_options)
        try:
            if ring.flags & (SetupFlags.IOPOLL | SetupFlags.SQPOLL):
                raise ValueError(
                    "ring_options: an IoUringEventLoop ring cannot use IOPOLL or SQPOLL"
                )
            # Enters from this thread skip the fd lookup (other threads use the fd as usual).
            with contextlib.suppress(OSError):
                ring.register_ring_fd()
            self._iouring_pump = _Pump(ring)
            selector = _RingSelector(self._iouring_pump)
        except BaseException:
            ring.close()
            raise
        super().__init__(selector)

    @property
    def ring(self) -> iouring.IoUring:
        """The loop's :class:`iouring.IoUring` (closed with the loop)."""
        return self._iouring_pump.ring

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} running={self.is_running()} "
            f"closed={self.is_closed()} ring={self._iouring_pump.ring!r}>"
        )

    def close(self) -> None:
        """Closes the loop and its ring (operations still in flight are cancelled and
        drained by the ring). Raises RuntimeError while the loop runs."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        pump = self._iouring_pump
        for owner in pump.owners:
            aring = owner() if owner is not None else None
            if aring is not None:
                with contextlib.suppress(Exception):
                    aring._loop_closing()
        super().close()


def pump_of(loop: asyncio.AbstractEventLoop) -> _Pump | None:
    """The pump of an :class:`IoUringEventLoop`, None for any other loop."""
    return getattr(loop, "_iouring_pump", None) if isinstance(loop, IoUringEventLoop) else None


def new_event_loop(entries: int = 256, **ring_options: Any) -> IoUringEventLoop:
    """A new :class:`IoUringEventLoop`: the ``loop_factory`` of ``asyncio.run`` (3.12+) and
    ``asyncio.Runner``. ``entries`` and ``ring_options`` are those of ``IoUring``."""
    return IoUringEventLoop(entries, **ring_options)


def run(
    main: Coroutine[Any, Any, _T],
    *,
    debug: bool | None = None,
    entries: int = 256,
    **ring_options: Any,
) -> _T:
    """``asyncio.run(main)`` on a new :class:`IoUringEventLoop` (``entries`` and
    ``ring_options`` as for ``IoUring``); works on Python 3.11, whose ``asyncio.run`` has no
    ``loop_factory``. Raises what ``asyncio.run`` raises, and what ``IoUring`` raises for bad
    options."""

    def factory() -> asyncio.AbstractEventLoop:
        return IoUringEventLoop(entries, **ring_options)

    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)
