"""asyncio on io_uring: an event loop whose wait is the ring, awaitable operations and batch
awaits.

:class:`IoUringEventLoop` (``iouring.aio.run(main())``, or ``loop_factory=new_event_loop`` for
``asyncio.run``/``asyncio.Runner``) is asyncio's selector event loop waiting in
``io_uring_enter``: the iteration's operations are submitted and waited for in one call, the
ordinary fds of asyncio (streams, the self-pipe) are watched through a poll of the epoll fd on
the same ring, and completions resolve their futures in the same iteration.

:class:`AsyncRing` gives the awaitable operations::

    async def main() -> None:
        async with AsyncRing() as ring:          # on an IoUringEventLoop: the loop's ring
            data = await ring.read_file("data.bin")
            fd = await ring.open("data.bin")
            buf = bytearray(4096)
            n = await ring.read(fd, buf, 0)
            await ring.close_fd(fd)

    iouring.aio.run(main())                      # or asyncio.run(main()): see below

On another event loop (``asyncio.run(main())``), the adapter brings a ring of its own:

- A plain eventfd is registered with the ring (``register_eventfd``; not ``EVENTFD_ASYNC``,
  which is not signalled for completions posted inline during submit) and the loop watches it
  with ``loop.add_reader``. When it fires, the adapter drains the completion queue and hands
  each completion to the future waiting for its ``user_data`` (the adapter allocates unique
  ``user_data`` values itself).
- Operations are prepared into SQEs at once, in the awaiting task, and submitted together
  once per loop iteration (a ``loop.call_soon`` flush), so many concurrent awaits share one
  ``io_uring_enter``. After every submit the completion queue is drained, since completions
  can be posted inline. A flush that reaped completions queues itself again behind the tasks
  they woke, so what those tasks prepare next is submitted in the same iteration: one loop
  iteration per await. While it polls like this the eventfd is turned off
  (``IoUring.cq_eventfd_toggle``, Linux 6.10+), so the loop is not woken for completions
  already handled; the first flush that reaps nothing turns it on again. A full submission
  queue is submitted on the spot and the preparation retried.

On both:

- Each awaitable returns the operation's result (``Cqe.res``) or raises the ``OSError``
  subclass matching ``-res`` (``FileNotFoundError``, ``ConnectionResetError``, ...).
- Cancelling the awaiting task (``task.cancel()``, ``asyncio.timeout``, ``wait_for``) cancels
  the operation in the kernel with ``IORING_OP_ASYNC_CANCEL`` when the ring offers it. Its
  buffers stay pinned by the ring until the kernel's final completion arrives, so a cancelled
  read never writes into freed memory. (Without an ``async_cancel`` operation on the ring the
  operation runs to completion in the kernel and its result is discarded.) An operation that
  returns a new file descriptor (``openat``, ``accept``) and completes after its task was
  cancelled has that descriptor closed, so nothing leaks.
- One future per operation costs a few microseconds in asyncio. For throughput, the batch
  awaits (:meth:`AsyncRing.read_batch` and friends) submit N operations prepared from NumPy
  arrays and resolve one future to all their completions as a ``CQE_DTYPE`` array.
- Closing the adapter (``close()``, ``aclose()``, ``async with``) closes the ring it created;
  the ring cancels what is still in flight and keeps buffers alive until the kernel is done
  with them. Under ``asyncio.run`` the adapter also closes itself when the loop shuts down.

An :class:`AsyncRing` belongs to one event loop and must be used from that loop's thread. It
owns the completion side of its ring: do not reap the ring's completions elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import socket
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt

import iouring
from iouring._core import (
    CQE_DTYPE,
    AtFlags,
    BufferRing,
    Cqe,
    CqeFlags,
    EnterFlags,
    Msghdr,
    Op,
    SetupFlags,
    Siginfo,
    SockAddr,
    Sqe,
    Statx,
    StatxMask,
    SubmissionQueueFull,
    _AsyncRingBase,
    aio_flush,
)
from iouring._core import batch_size as _batch_size
from iouring._errors import raise_for_errors as _raise_for_errors
from iouring._loop import BATCH_BIT as _BATCH_BIT
from iouring._loop import COUNTER_LIMIT as _COUNTER_LIMIT
from iouring._loop import SLOT_SHIFT as _SLOT_SHIFT
from iouring._loop import IoUringEventLoop, _Pump, new_event_loop, pump_of, run

_T = TypeVar("_T")
_Future = asyncio.Future

if TYPE_CHECKING:
    # Stub-only aliases: any bytes-like object (NumPy arrays included), an int or an object
    # with fileno(), a str/bytes/os.PathLike path.
    from typing_extensions import Buffer

    from iouring._core import _Buffer, _FileDescriptor, _StrOrBytesPath

__all__ = [
    "AsyncRing",
    "IoUringEventLoop",
    "MultishotOperation",
    "new_event_loop",
    "raise_for_errors",
    "run",
]

# user_data layout (see _loop.py): single operations carry the adapter's slot in bits 55..62
# and count up below; batch operations carry BATCH_BIT | batch_id << 32 | index, so a whole
# array of completions is split by batch with vectorised NumPy instead of one dictionary
# lookup per completion.
_BATCH_MAX: Final = 1 << 32
_MORE: Final = int(CqeFlags.MORE)
_BUFFER: Final = int(CqeFlags.BUFFER)
_ETIME: Final = errno.ETIME
_AT_FDCWD: Final = getattr(os, "AT_FDCWD", -100)
# Module-level copies: inside AsyncRing the name "socket" is the method.
_AF_INET: Final = socket.AF_INET
_SOCK_STREAM: Final = socket.SOCK_STREAM
_SOCK_CLOEXEC: Final = socket.SOCK_CLOEXEC
_SHUT_RDWR: Final = socket.SHUT_RDWR
_AF_INET6: Final = socket.AF_INET6
_Socket: TypeAlias = socket.socket
_AI_PASSIVE: Final = socket.AI_PASSIVE
_AT_EMPTY_PATH: Final = int(AtFlags.EMPTY_PATH)
_STATX_SIZE: Final = int(StatxMask.SIZE)
_WEXITED: Final = getattr(os, "WEXITED", 4)
_AT_REMOVEDIR: Final = int(AtFlags.REMOVEDIR)


def _numeric_family(host: str) -> int:
    """AF_INET or AF_INET6 for a numeric address (no name resolution needed), else 0."""
    for family in (_AF_INET, _AF_INET6):
        try:
            socket.inet_pton(family, host.split("%", 1)[0])
        except OSError:
            continue
        return family
    return 0


def _socket_family(fd: Any) -> int:
    """The address family of a socket object or socket fd."""
    family = getattr(fd, "family", None)
    if isinstance(family, int):
        return family
    return _with_socket(fd, lambda s: int(s.family))


def _with_socket(fd: Any, call: Callable[[socket.socket], _T]) -> _T:
    """``call(sock)`` on a socket object, or on a temporary one for a socket fd (detached
    afterwards: the fd stays the caller's)."""
    if isinstance(fd, socket.socket):
        return call(fd)
    number = fd if isinstance(fd, int) else fd.fileno()
    sock = socket.socket(fileno=number)
    try:
        return call(sock)
    finally:
        sock.detach()


def _eventfd_toggle_works(ring: iouring.IoUring) -> bool:
    """Whether the adapter may turn the ring's eventfd off while it reaps completions itself
    (IORING_CQ_EVENTFD_DISABLED). That needs the CQ ring's flags word (5.8+) and a kernel that
    passes a full barrier (io_cqring_wake's smp_mb) between publishing a completion and reading
    the flag, so that a completion racing with turning it back on is either signalled or seen
    by the look at the CQ that follows. Kernels from 6.10 on order it so (6.1's io-wq
    completions read the flag first); older ones clear the eventfd by reading it instead."""
    release = os.uname().release.split(".")
    try:
        version = (int(release[0]), int(release[1].split("-")[0]))
    except (IndexError, ValueError):
        return False
    if version < (6, 10):
        return False
    try:
        ring.cq_eventfd_toggle(True)
    except OSError:
        return False
    return True


def _error(res: int) -> OSError:
    """The OSError subclass for a negative CQE result (``-errno``)."""
    return OSError(-res, os.strerror(-res))


# The core package's (iouring.raise_for_errors), kept under its first home's name.
raise_for_errors = _raise_for_errors


class _Discard:
    """Handler of an operation nobody waits for any more (its task was cancelled)."""

    __slots__ = ()

    def complete(self, res: int, flags: int) -> None:
        """Ignores the result: reaping the completion is what releases the operation's pins."""

    def more(self, res: int, flags: int) -> None:
        """Ignores a non-final completion."""


_DISCARD: Final = _Discard()


class _CloseFd:
    """Handler of an abandoned operation whose result is a new fd: closes it if one came."""

    __slots__ = ()

    def complete(self, res: int, flags: int) -> None:
        """Closes the descriptor a late success created."""
        if res >= 0:
            with contextlib.suppress(OSError):
                os.close(res)

    def more(self, res: int, flags: int) -> None:
        """Closes a descriptor from a non-final completion (multishot accept)."""
        self.complete(res, flags)


_CLOSE_FD: Final = _CloseFd()


class _CqeWaiter:
    """Handler that resolves a future to the whole completion instead of its result."""

    __slots__ = ("future", "user_data")

    def __init__(self, future: asyncio.Future[Cqe], user_data: int = 0) -> None:
        self.future = future
        self.user_data = user_data

    def complete(self, res: int, flags: int) -> None:
        """Resolves the future to a Cqe (unless its task has given up)."""
        if not self.future.done():
            self.future.set_result(Cqe(self.user_data, res, flags))

    def more(self, res: int, flags: int) -> None:
        """Not expected for single-shot operations; kept for completeness."""
        self.complete(res, flags)


class _ZeroCopySend:
    """Handler of a zero-copy send: the first completion carries the result (flagged MORE),
    the final one (NOTIF) says the kernel is done with the buffer; the future resolves then."""

    __slots__ = ("future", "result")

    def __init__(self, future: asyncio.Future[int]) -> None:
        self.future = future
        self.result: int | None = None

    def more(self, res: int, flags: int) -> None:
        """Records the send's result."""
        self.result = res

    def complete(self, res: int, flags: int) -> None:
        """The buffer is free again (or the send failed at once): resolve the future."""
        if not self.future.done():
            self.future.set_result(res if self.result is None else self.result)


class _Batch:
    """A batch in flight: completions collected by index until the last one arrives."""

    __slots__ = ("base", "count", "done", "future", "owner", "remaining", "result")

    def __init__(
        self,
        owner: AsyncRing,
        base: int,
        count: int,
        future: asyncio.Future[npt.NDArray[np.void]],
    ) -> None:
        self.owner = owner
        self.base = base
        self.count = count
        self.result = np.zeros(count, dtype=CQE_DTYPE)
        self.done = np.zeros(count, dtype=bool)
        self.remaining = count
        self.future = future


class MultishotOperation:
    """A multishot operation (multishot accept, recv, poll, timeout): an async iterator of
    its completions.

    Each completion is yielded as a :class:`iouring.Cqe` (check ``cqe.result()`` or
    ``cqe.res``; ``cqe.buffer_id`` for provided buffers). Iteration ends after the final
    completion (one without ``CqeFlags.MORE``), which is yielded too. ``cancel()`` (or leaving
    ``async with``) cancels the operation in the kernel; iteration then drains the remaining
    completions. Completions arriving before they are consumed are queued.
    """

    __slots__ = (
        "_aring",
        "_buffer_ring",
        "_closes_fds",
        "_finished",
        "_queue",
        "_user_data",
        "_waiter",
    )

    def __init__(
        self,
        aring: AsyncRing,
        closes_fds: bool,
        buffer_ring: BufferRing | None = None,
    ) -> None:
        self._aring = aring
        self._user_data = 0  # set once the operation is prepared
        self._queue: deque[tuple[int, int]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._closes_fds = closes_fds
        self._buffer_ring = buffer_ring

    @property
    def finished(self) -> bool:
        """True once the final completion has arrived (it may still be queued)."""
        return self._finished

    def more(self, res: int, flags: int) -> None:
        """Queues a non-final completion and wakes the consumer."""
        self._queue.append((res, flags))
        self._wake()

    def complete(self, res: int, flags: int) -> None:
        """Queues the final completion and wakes the consumer."""
        self._finished = True
        self._queue.append((res, flags))
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def cancel(self) -> None:
        """Asks the kernel to cancel the operation (ASYNC_CANCEL). Iteration continues until
        the final completion; does nothing once it has arrived."""
        if not self._finished:
            self._aring._cancel_in_kernel(self._user_data)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Cqe:
        """The next completion; ``StopAsyncIteration`` after the final one."""
        while not self._queue:
            if self._finished:
                raise StopAsyncIteration
            self._waiter = self._aring._new_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        res, flags = self._queue.popleft()
        return Cqe(self._user_data, res, flags)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancels the operation if it is still running and waits for its final completion.
        Queued completions nobody consumed are released: their descriptors closed (multishot
        accept), their provided buffers handed back to the buffer ring."""
        self.cancel()
        while not self._finished and not self._aring.closed:
            self._waiter = self._aring._new_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.release_queued()

    def release_queued(self) -> None:
        """Drops the completions queued but not consumed, releasing what they hold (fds of a
        multishot accept, buffers of a buffer ring)."""
        while self._queue:
            res, flags = self._queue.popleft()
            if self._closes_fds:
                _CLOSE_FD.complete(res, flags)
            ring = self._buffer_ring
            if ring is not None and flags & _BUFFER and ring.registered:
                ring.put(Cqe(self._user_data, res, flags))


async def _close_with_loop(ref: weakref.ref[AsyncRing]) -> AsyncGenerator[None, None]:
    """An async generator the loop tracks: ``loop.shutdown_asyncgens()`` (run by
    ``asyncio.run`` before it closes the loop) closes it, and with it the adapter."""
    try:
        yield
    finally:
        aring = ref()
        if aring is not None:
            aring._closer = None  # this generator is finishing already
            aring.close()


_Handler = (
    asyncio.Future[int] | _Discard | _CloseFd | _CqeWaiter | _ZeroCopySend | MultishotOperation
)


class AsyncRing(_AsyncRingBase):
    """An io_uring driven by an asyncio event loop: awaitable operations and batch awaits.

    ``AsyncRing(entries=None, *, ring=None, **ring_options)`` must be created inside a running
    event loop (in a coroutine). On an :class:`IoUringEventLoop` with no arguments it uses the
    loop's own ring: its operations are submitted and completed by the loop's wait, with no
    eventfd and no extra system call. Otherwise (another loop, ``entries`` or ring options
    given) it creates ``IoUring(entries or 256, **ring_options)`` and owns it: closing the
    adapter closes the ring. With ``ring`` it drives that ring (which must be idle and have no
    eventfd registered) and leaves it open on close. Use it as an async context manager or
    call ``close()``/``aclose()``; under ``asyncio.run`` it is also closed when the loop shuts
    down.

    Every awaitable operation returns ``Cqe.res`` or raises the matching ``OSError``; batch
    awaits return ``CQE_DTYPE`` arrays. Raises ``RuntimeError`` outside a running loop,
    ``ValueError`` for a closed or busy ring, and whatever ``IoUring`` raises for bad options.
    """

    # The state of the per-await path (_loop, _ops, _new_future, _future_type, _closed,
    # _flush_scheduled, _thread_checked, _next_user_data, _ud_first, _ud_end) lives in the C
    # base, whose _start() begins an operation in one call; the rest in slots.
    __slots__ = (
        "__weakref__",
        "_batch_ops",
        "_cancel_op",
        "_closer",
        "_cq_toggle",
        "_efd",
        "_fd_ops",
        "_idle_waiters",
        "_owns_ring",
        "_pump",
        "_ring",
        "_shared",
        "_slot",
        "_sqpoll",
        "_supported_ops",
    )

    def __init__(
        self,
        entries: int | None = None,
        *,
        ring: iouring.IoUring | None = None,
        **ring_options: Any,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        loop_pump = pump_of(self._loop)
        self._efd: int | None = None
        self._cq_toggle = False  # the eventfd is turned off while completions are reaped
        if ring is None and entries is None and not ring_options and loop_pump is not None:
            # The loop's ring: its wait submits and completes our operations.
            pump = loop_pump
            ring = pump.ring
            self._owns_ring = False
            self._shared = True
        else:
            if ring is None:
                ring = iouring.IoUring(256 if entries is None else entries, **ring_options)
                self._owns_ring = True
            else:
                if ring_options or entries is not None:
                    raise TypeError("entries and ring options cannot be combined with ring=")
                if ring.closed:
                    raise ValueError("ring: the ring is closed")
                if ring.in_flight or ring.sq_ready() or ring.cq_ready():
                    raise ValueError("ring: the ring must be idle (nothing prepared or in flight)")
                self._owns_ring = False
            if ring.flags & SetupFlags.IOPOLL:
                if self._owns_ring:
                    ring.close()
                raise ValueError(
                    "ring: IOPOLL rings complete only when polled, which an event loop cannot "
                    "wait for"
                )
            pump = _Pump(ring)
            self._shared = False
        self._ring = ring
        self._pump = pump
        self._closed = False
        self._slot, self._ops = pump.attach(self)
        self._ud_first = self._slot << _SLOT_SHIFT
        self._next_user_data = self._ud_first | pump.counters[self._slot]
        self._ud_end = self._ud_first + _COUNTER_LIMIT
        self._fd_ops: set[int] = set()  # operations whose result is a new fd
        self._supported_ops: frozenset[int] | None = None  # the kernel's probe, when asked
        self._batch_ops = 0  # operations of our batches whose completion has not arrived yet
        # Always "scheduled" on the loop's ring: the loop's own wait submits.
        self._flush_scheduled = self._shared
        self._idle_waiters: list[asyncio.Future[None]] = []  # aclose() waiting for in_flight 0
        self._sqpoll = bool(ring.flags & SetupFlags.SQPOLL)
        self._cancel_op: Callable[..., Sqe] | None = getattr(
            ring, "async_cancel", getattr(ring, "cancel", None)
        )
        self._thread_checked = isinstance(self._loop, asyncio.BaseEventLoop)
        # asyncio.Future(loop=...) directly: loop.create_future() is one more Python call.
        loop_type = type(self._loop)
        if getattr(loop_type, "create_future", None) is asyncio.BaseEventLoop.create_future:
            self._new_future = functools.partial(asyncio.Future, loop=self._loop)
            self._future_type = asyncio.Future  # _start() calls asyncio.Future(loop=...)
        else:
            self._new_future = self._loop.create_future
            self._future_type = None
        if not self._shared:
            efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            try:
                ring.register_eventfd(efd)
                self._loop.add_reader(efd, self._on_eventfd)
            except BaseException:
                os.close(efd)
                pump.detach(self._slot)
                if self._owns_ring:
                    ring.close()
                raise
            self._efd = efd
            self._cq_toggle = _eventfd_toggle_works(ring)
        # Closed by loop.shutdown_asyncgens() (asyncio.run) if nobody closes us first.
        self._closer: AsyncGenerator[None, None] | None = _close_with_loop(weakref.ref(self))
        with contextlib.suppress(StopIteration):
            self._closer.asend(None).send(None)

    # --- properties ----------------------------------------------------------------------

    @property
    def ring(self) -> iouring.IoUring:
        """The underlying :class:`iouring.IoUring` (for registration and inspection; do not
        reap its completions yourself). On an :class:`IoUringEventLoop` it is the loop's."""
        return self._ring

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop this adapter belongs to."""
        return self._loop

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    @property
    def uses_loop_ring(self) -> bool:
        """True when the adapter runs on the ring of its :class:`IoUringEventLoop` (no
        eventfd; the loop's wait completes its operations)."""
        return self._shared

    @property
    def in_flight(self) -> int:
        """Operations submitted through this adapter whose final completion has not arrived
        (including cancelled ones the kernel has not finished yet)."""
        return len(self._ops) + self._batch_ops

    @property
    def can_cancel(self) -> bool:
        """True when the ring offers ASYNC_CANCEL, so cancelled tasks cancel their operation."""
        return self._cancel_op is not None

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"in_flight={self.in_flight}"
        return f"<iouring.aio.AsyncRing {state} ring={self._ring!r}>"

    # --- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def close(self) -> None:
        """Stops using the ring and closes it if the adapter created it.

        Operations still waited for fail with ``OSError(ECANCELED)``. An owned ring cancels
        what is in flight and keeps its buffers alive until the kernel has finished with them
        (``IoUring.close``). On the loop's ring, the adapter's operations are cancelled in the
        kernel and their late completions discarded (a late fd is closed). A ring passed in
        stays open with its pins: prefer ``aclose()``, which waits for the operations to end.
        Closing twice is fine.
        """
        self._shutdown(None)

    def _loop_closing(self) -> None:
        """The IoUringEventLoop closes (and its ring with it)."""
        self._shutdown(None)

    def _shutdown(self, cause: BaseException | None) -> None:
        """close(): waiters fail with OSError(ECANCELED), or with ``cause`` when the ring
        broke."""
        if self._closed:
            return
        self._closed = True
        pump = self._pump
        if self._efd is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._efd)
            if not self._ring.closed:
                with contextlib.suppress(OSError):
                    self._ring.unregister_eventfd()
                if self._cq_toggle:  # a ring passed in is left as it came
                    with contextlib.suppress(ValueError):  # a broken ring
                        self._ring.cq_eventfd_toggle(True)
            os.close(self._efd)
            self._efd = None

        def error() -> BaseException:
            if cause is not None:
                return cause
            return OSError(errno.ECANCELED, "the AsyncRing was closed")

        ops = self._ops
        for user_data, handler in list(ops.items()):
            if isinstance(handler, asyncio.Future):
                if not handler.done():
                    with contextlib.suppress(RuntimeError):  # a closed loop
                        handler.set_exception(error())
            elif isinstance(handler, (_CqeWaiter, _ZeroCopySend)):
                if not handler.future.done():
                    with contextlib.suppress(RuntimeError):
                        handler.future.set_exception(error())
            elif isinstance(handler, MultishotOperation):
                handler.complete(-errno.ECANCELED, 0)
            # Late completions on a ring that stays open are discarded (late fds closed).
            ops[user_data] = _CLOSE_FD if user_data in self._fd_ops else _DISCARD
        for batch_id, batch in list(pump.batches.items()):
            if batch.owner is self:
                del pump.batches[batch_id]
                if not batch.future.done():
                    with contextlib.suppress(RuntimeError):
                        batch.future.set_exception(error())
        self._fd_ops.clear()
        self._batch_ops = 0
        pump.wake_room()
        self._wake_idle()
        pump.watchers.discard(self)
        if self._shared and not self._ring.closed and self._cancel_op is not None:
            # The ring stays open: cancel what we left in the kernel, discarding the results.
            with contextlib.suppress(Exception):
                for user_data in list(ops):
                    self._cancel_in_kernel(user_data, force=True)
        pump.counters[self._slot] = self._next_user_data - self._ud_first
        if self._shared:
            pump.detach(self._slot)
        else:
            ops.clear()
            pump.detach(self._slot)
        if self._owns_ring:
            self._ring.close()
        closer, self._closer = self._closer, None
        if closer is not None:
            # Finish the generator here so that no finalizer is scheduled on the loop later.
            with contextlib.suppress(StopIteration):
                closer.aclose().send(None)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Cancels the operations in flight, waits (at most ``timeout`` seconds) for their
        final completions, then ``close()``. After it a ring passed in is idle and clean."""
        if self._closed:
            return
        for user_data in list(self._ops):
            self._cancel_in_kernel(user_data)
        for batch in list(self._pump.batches.values()):
            if batch.owner is self:
                self._cancel_batch(batch)
        if self.in_flight:
            idle: asyncio.Future[None] = self._new_future()
            self._idle_waiters.append(idle)
            self._pump.watchers.add(self)
            self._schedule_flush()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await idle
        self.close()

    def __del__(self) -> None:
        # Reached only once the loop dropped our reader (a closed loop): release the eventfd
        # and finish the loop-close generator without involving the loop. The ring's own
        # destructor closes an owned ring.
        if not getattr(self, "_closed", True):
            self._closed = True
            efd = getattr(self, "_efd", None)
            if efd is not None:
                with contextlib.suppress(OSError):
                    os.close(efd)
        closer = getattr(self, "_closer", None)
        if closer is not None:
            self._closer = None
            with contextlib.suppress(StopIteration, RuntimeError):
                closer.aclose().send(None)

    # --- submission ----------------------------------------------------------------------

    def _check_open(self) -> None:
        """Raises ValueError once closed, RuntimeError outside the adapter's event loop."""
        if self._closed:
            raise ValueError("I/O operation on closed AsyncRing")
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("this AsyncRing belongs to another event loop")

    def _prepare(
        self,
        method: Callable[..., Sqe],
        user_data: int,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None = None,
    ) -> Sqe:
        """Prepares one SQE now; a full SQ is submitted on the spot and the call retried."""
        kw = kwargs or {}
        while True:
            try:
                return method(user_data, *args, **kw)
            except SubmissionQueueFull:
                self._make_room()

    def _make_room(self) -> None:
        """Submits what is prepared so the SQ has space again (waiting for an SQPOLL thread
        to consume it), and drains the completions the submit produced."""
        self._flush_now()
        if self._sqpoll:
            while self._ring.sq_space_left() == 0:
                self._ring.enter(0, 0, int(EnterFlags.SQ_WAIT))

    def _schedule_flush(self) -> None:
        # On the loop's ring the loop's wait submits; otherwise one flush per iteration.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._closed:
            try:
                if self._flush_now() and not self._closed:
                    # Completions were reaped: the tasks they woke run in the next iteration,
                    # and this flush, queued behind them, submits what they prepare in that
                    # same iteration (one loop iteration per await instead of two). Polling
                    # stops at the first flush that reaps nothing; meanwhile the eventfd is off.
                    self._flush_scheduled = True
                    self._loop.call_soon(self._flush)
            except Exception as exc:  # reported, and every waiter gets it
                self._broken(exc)

    def _broken(self, exc: Exception) -> None:
        """The ring failed outside any awaiting task: report it, close, fail the waiters."""
        self._loop.call_exception_handler(
            {"message": "iouring.aio: the ring failed; closing the AsyncRing", "exception": exc}
        )
        self._shutdown(exc)

    def _flush_now(self) -> bool:
        """Submits every prepared SQE, then dispatches the completions (they can be posted
        inline, while the SQEs are submitted). Returns True when a completion was reaped."""
        pump = self._pump
        try:
            n, reaped = aio_flush(self._ring, pump.tables, _Future, pump.batch_out, self._cq_toggle)
            if n or pump.watchers:
                pump.run(-1.0, pending=n)
        except (BlockingIOError, InterruptedError):
            # EAGAIN (kernel out of resources) / EINTR: completions first, then try again.
            pump.run(-1.0)
            self._loop.call_soon(self._retry_flush)
            return False
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            pump.run(-1.0)
            self._loop.call_soon(self._retry_flush)
            return False
        efd = self._efd
        if efd is not None and not self._cq_toggle:
            # No eventfd toggle: completions posted inline signalled the eventfd. Clear it and
            # look once more, which saves the loop a wakeup that would find nothing (anything
            # posted after the clear signals again).
            try:  # noqa: SIM105 (hot path: contextlib.suppress costs more than the read)
                os.eventfd_read(efd)
            except BlockingIOError:
                pass
            pump.run(-1.0)
        return reaped

    def _retry_flush(self) -> None:
        if not self._closed and self._ring.sq_ready():
            self._schedule_flush()

    def _next_ud(self) -> int:
        user_data = self._next_user_data
        self._next_user_data = user_data + 1
        if self._next_user_data >= self._ud_end:
            self._next_user_data = self._ud_first | 1
        return user_data

    # _start(method, *args, **kwargs) and _begin(...) are the C base's: _start returns the
    # awaitable of res (the OSError of a negative one; a cancelled task abandons the
    # operation), _begin returns (user_data, future) for the callers that look at res
    # themselves.

    def _launch(
        self,
        handler: _Handler,
        method: Callable[..., Sqe],
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None = None,
    ) -> int:
        """Prepares one operation whose completions go to ``handler`` (not a plain future:
        the slow path); returns its user_data."""
        self._check_open()
        user_data = self._next_ud()
        self._prepare(method, user_data, args, kwargs)
        self._ops[user_data] = handler
        self._schedule_flush()
        return user_data

    async def _run_fd(self, method: Callable[..., Sqe], *args: Any) -> int:
        """Like _start for operations whose result is a new fd: a late fd is closed."""
        user_data, future = self._begin(method, *args)
        self._fd_ops.add(user_data)
        try:
            res = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                _CLOSE_FD.complete(future.result(), 0)
            self._abandon(user_data, _CLOSE_FD)
            raise
        finally:
            self._fd_ops.discard(user_data)
        if res < 0:
            raise _error(res)
        return res

    def _abandon(self, user_data: int, handler: _Discard | _CloseFd = _DISCARD) -> None:
        """The awaiting task gave up: cancel the operation, reap its completion silently."""
        if user_data in self._ops:
            self._ops[user_data] = handler
            self._cancel_in_kernel(user_data)

    def _cancel_in_kernel(self, target: int, *, force: bool = False) -> None:
        """Prepares an ASYNC_CANCEL of the operation carrying ``target`` (if the ring has the
        operation); its own completion is discarded."""
        cancel = self._cancel_op
        if cancel is None or (self._closed and not force):
            return
        user_data = self._next_ud()
        self._prepare(cancel, user_data, (target,))
        self._ops[user_data] = _DISCARD
        self._schedule_flush()

    # --- completion ----------------------------------------------------------------------

    def _on_eventfd(self) -> None:
        # Clear the eventfd before draining: a completion posted after the drain signals again.
        efd = self._efd
        if efd is None or self._closed:
            return
        try:  # noqa: SIM105 (hot path: contextlib.suppress costs more than the read)
            os.eventfd_read(efd)
        except BlockingIOError:
            pass
        try:
            if self._flush_now() and not self._closed:
                self._schedule_flush()  # poll behind the tasks just woken (see _flush)
        except Exception as exc:  # reported, and every waiter gets it
            self._broken(exc)

    def _check_idle(self) -> None:
        """Called by the pump while aclose() waits: wakes it once nothing is in flight."""
        if not self._ops and not self._batch_ops:
            self._pump.watchers.discard(self)
            self._wake_idle()

    def _wake_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                with contextlib.suppress(RuntimeError):
                    waiter.set_result(None)

    # --- generic operations ----------------------------------------------------------------

    async def call(self, method: Callable[..., Sqe], *args: Any, **kwargs: Any) -> int:
        """Runs any one-call ring method: ``await aring.call(aring.ring.fsync, fd)``.

        ``method`` is called as ``method(user_data, *args, **kwargs)`` and must prepare exactly
        one SQE of the adapter's ring (a bound ``IoUring`` method such as ``ring.statx``, or a
        function that gets an SQE and tweaks its flags). Returns ``res`` or raises its OSError.
        """
        return await self._start(method, *args, **kwargs)

    async def call_cqe(self, method: Callable[..., Sqe], *args: Any, **kwargs: Any) -> Cqe:
        """Like :meth:`call` but returns the whole :class:`iouring.Cqe` (flags included) and
        never raises for a negative ``res``."""
        future: asyncio.Future[Cqe] = self._new_future()
        waiter = _CqeWaiter(future)
        user_data = waiter.user_data = self._launch(waiter, method, args, kwargs)
        try:
            return await future
        except asyncio.CancelledError:
            self._abandon(user_data, _DISCARD)
            raise

    def multishot(
        self,
        method: Callable[..., Sqe],
        *args: Any,
        closes_fds: bool = False,
        buffer_ring: BufferRing | None = None,
        **kwargs: Any,
    ) -> MultishotOperation:
        """Starts a multishot operation and returns the async iterator of its completions::

            async with aring.multishot(aring.ring.multishot_accept, listener) as accepts:
                async for cqe in accepts:
                    conn = cqe.result()

        ``method(user_data, *args, **kwargs)`` must prepare one SQE. With ``closes_fds=True``
        (for multishot accept), descriptors in completions that nobody consumed are closed
        when the operation ends; with ``buffer_ring``, their provided buffers are handed back.
        Raises ValueError on a closed adapter.
        """
        operation = MultishotOperation(self, closes_fds, buffer_ring)
        operation._user_data = self._launch(operation, method, args, kwargs)
        return operation

    # --- file operations ---------------------------------------------------------------------

    async def nop(self) -> int:
        """A no-op: completes with 0. Useful to measure the adapter's own cost."""
        return await self._start(self._ring.nop)

    async def read(self, fd: _FileDescriptor, buffer: _Buffer, offset: int = -1) -> int:
        """Reads into ``buffer`` (writable, pinned until the kernel is done) from ``fd`` at
        ``offset`` (-1: the current position); returns the byte count (0 at EOF).

        Raises the OSError of a failed read, ``TypeError`` for a read-only buffer.
        """
        return await self._start(self._ring.read, fd, buffer, offset)

    async def read_bytes(self, fd: _FileDescriptor, size: int, offset: int = -1) -> bytes:
        """Reads up to ``size`` bytes from ``fd`` at ``offset`` and returns them (shorter at
        EOF). Raises the OSError of a failed read, ``ValueError`` for a negative size."""
        if size < 0:
            raise ValueError("size must be >= 0")
        buffer = bytearray(size)
        n = await self._start(self._ring.read, fd, buffer, offset)
        del buffer[n:]
        return bytes(buffer)

    async def write(self, fd: _FileDescriptor, data: _Buffer, offset: int = -1) -> int:
        """Writes ``data`` to ``fd`` at ``offset`` (-1: the current position); returns the
        byte count, which may be short. Raises the OSError of a failed write."""
        return await self._start(self._ring.write, fd, data, offset)

    async def readv(self, fd: _FileDescriptor, buffers: Sequence[_Buffer], offset: int = -1) -> int:
        """Vectored read into ``buffers``; returns the total byte count. Raises OSError."""
        return await self._start(self._ring.readv, fd, buffers, offset)

    async def writev(
        self, fd: _FileDescriptor, buffers: Sequence[_Buffer], offset: int = -1
    ) -> int:
        """Vectored write of ``buffers``; returns the total byte count. Raises OSError."""
        return await self._start(self._ring.writev, fd, buffers, offset)

    async def read_fixed(
        self, fd: _FileDescriptor, buffer: _Buffer, offset: int, buffer_index: int
    ) -> int:
        """Reads into a slice of registered buffer ``buffer_index``. Raises OSError, or
        ValueError when ``buffer`` is not inside that registered buffer."""
        return await self._start(self._ring.read_fixed, fd, buffer, offset, buffer_index)

    async def write_fixed(
        self, fd: _FileDescriptor, buffer: _Buffer, offset: int, buffer_index: int
    ) -> int:
        """Writes from a slice of registered buffer ``buffer_index``. Raises OSError, or
        ValueError when ``buffer`` is not inside that registered buffer."""
        return await self._start(self._ring.write_fixed, fd, buffer, offset, buffer_index)

    async def fsync(self, fd: _FileDescriptor, flags: int = 0) -> None:
        """fsync (``flags=FsyncFlags.DATASYNC``: fdatasync). Raises OSError."""
        await self._start(self._ring.fsync, fd, flags)

    async def splice(
        self,
        fd_in: _FileDescriptor,
        off_in: int,
        fd_out: _FileDescriptor,
        off_out: int,
        nbytes: int,
        flags: int = 0,
    ) -> int:
        """Moves up to ``nbytes`` between ``fd_in`` and ``fd_out`` (one must be a pipe; -1:
        no offset, as pipes need); returns the byte count. Raises OSError."""
        return await self._start(self._ring.splice, fd_in, off_in, fd_out, off_out, nbytes, flags)

    async def openat(
        self,
        dir_fd: _FileDescriptor,
        path: _StrOrBytesPath,
        flags: int = os.O_RDONLY | os.O_CLOEXEC,
        mode: int = 0o666,
    ) -> int:
        """Opens ``path`` relative to ``dir_fd``; returns the new fd. Raises the OSError of
        the open (``FileNotFoundError``...), whose ``filename`` is ``path``."""
        try:
            return await self._run_fd(self._ring.openat, dir_fd, path, flags, mode)
        except OSError as exc:
            exc.filename = os.fsdecode(path)
            raise

    async def open(
        self, path: _StrOrBytesPath, flags: int = os.O_RDONLY | os.O_CLOEXEC, mode: int = 0o666
    ) -> int:
        """``openat(AT_FDCWD, path, flags, mode)``: opens ``path``; returns the new fd.
        Raises the OSError of the open with ``filename`` set."""
        return await self.openat(_AT_FDCWD, path, flags, mode)

    async def close_fd(self, fd: _FileDescriptor) -> None:
        """Closes ``fd`` through the ring. Raises OSError (``EBADF``...)."""
        await self._start(self._ring.close_fd, fd)

    async def statx(
        self,
        path: _StrOrBytesPath,
        *,
        dir_fd: _FileDescriptor = _AT_FDCWD,
        flags: int = 0,
        mask: int = StatxMask.BASIC_STATS,
    ) -> Statx:
        """statx(2) of ``path`` relative to ``dir_fd``: returns an :class:`iouring.Statx`
        (``st_size``, ``st_mode``, ``st_mtime``...; ``stx_mask`` says which fields are
        filled). ``flags`` are AtFlags (``EMPTY_PATH`` with ``path=""``: ``dir_fd`` itself,
        ``SYMLINK_NOFOLLOW``). Raises the OSError of the call with ``filename`` set."""
        result = Statx()
        try:
            await self._start(self._ring.statx, dir_fd, path, flags, mask, result)
        except OSError as exc:
            exc.filename = os.fsdecode(path)
            raise
        return result

    async def timeout(self, seconds: float, count: int = 0, flags: int = 0) -> bool:
        """An io_uring timeout: returns True when ``seconds`` passed (the kernel's -ETIME),
        False when ``count`` other completions were posted first. ``flags``: TimeoutFlags
        (``ABS`` with a ``time.monotonic()`` deadline, ``BOOTTIME``, ``REALTIME``). Cancelling
        the task removes the timeout. Raises OSError for other failures."""
        user_data, future = self._begin(self._ring.timeout, seconds, count, flags)
        try:
            res = await future
        except asyncio.CancelledError:
            self._abandon(user_data, _DISCARD)
            raise
        if res == -_ETIME:
            return True
        if res < 0:
            raise _error(res)
        return False

    async def sleep(self, seconds: float) -> None:
        """Sleeps ``seconds`` with an io_uring timeout (see :meth:`timeout`)."""
        await self.timeout(seconds)

    async def fallocate(self, fd: _FileDescriptor, offset: int, length: int, mode: int = 0) -> None:
        """fallocate(2): allocates ``length`` bytes of ``fd`` from ``offset`` (``mode``:
        FallocateFlags; 0 also extends the file). Raises OSError."""
        await self._start(self._ring.fallocate, fd, mode, offset, length)

    async def ftruncate(self, fd: _FileDescriptor, length: int) -> None:
        """ftruncate(2) of ``fd`` to ``length`` bytes (Linux 6.9+). Raises OSError."""
        await self._start(self._ring.ftruncate, fd, length)

    async def rename(self, old: _StrOrBytesPath, new: _StrOrBytesPath, flags: int = 0) -> None:
        """Renames ``old`` to ``new`` (renameat2 with RenameFlags). Raises the OSError with
        ``filename`` and ``filename2`` set."""
        try:
            await self._start(self._ring.renameat, _AT_FDCWD, old, _AT_FDCWD, new, flags)
        except OSError as exc:
            exc.filename, exc.filename2 = os.fsdecode(old), os.fsdecode(new)
            raise

    async def unlink(self, path: _StrOrBytesPath, *, directory: bool = False) -> None:
        """Removes the file ``path`` (with ``directory=True``: the empty directory). Raises
        the OSError with ``filename`` set."""
        try:
            await self._start(
                self._ring.unlinkat, _AT_FDCWD, path, _AT_REMOVEDIR if directory else 0
            )
        except OSError as exc:
            exc.filename = os.fsdecode(path)
            raise

    async def mkdir(self, path: _StrOrBytesPath, mode: int = 0o777) -> None:
        """Creates the directory ``path``. Raises the OSError with ``filename`` set."""
        try:
            await self._start(self._ring.mkdirat, _AT_FDCWD, path, mode)
        except OSError as exc:
            exc.filename = os.fsdecode(path)
            raise

    async def waitid(self, idtype: int, id: int, options: int = _WEXITED) -> Siginfo:
        """waitid(2) for a child (``os.P_PID``, ``P_PGID``, ``P_ALL``, ``P_PIDFD``) without
        blocking the loop (Linux 6.7+); returns the :class:`iouring.Siginfo` (``si_pid``,
        ``si_status``, ``si_code``). Raises OSError (``ChildProcessError``...)."""
        info = Siginfo()
        await self._start(self._ring.waitid, idtype, id, info, options)
        return info

    async def poll(self, fd: _FileDescriptor, mask: int) -> int:
        """Waits until ``fd`` is ready for the ``select.POLL*`` events in ``mask``; returns
        the ready events. Raises OSError."""
        return await self._start(self._ring.poll_add, fd, mask)

    def poll_multishot(self, fd: _FileDescriptor, mask: int) -> MultishotOperation:
        """A multishot poll: one completion (``res``: ready events) per readiness change,
        until cancelled. See :class:`MultishotOperation`."""
        return self.multishot(self._ring.poll_multishot, fd, mask)

    # --- socket operations -------------------------------------------------------------------

    async def socket(
        self, family: int = _AF_INET, type: int = _SOCK_STREAM, protocol: int = 0
    ) -> int:
        """Creates a socket through the ring (add ``socket.SOCK_CLOEXEC`` to ``type`` as
        needed); returns its fd. Raises OSError."""
        return await self._run_fd(self._ring.socket, family, type, protocol)

    async def accept(self, fd: _FileDescriptor, flags: int = _SOCK_CLOEXEC) -> tuple[int, Any]:
        """Accepts a connection on the listening socket ``fd``; returns ``(conn_fd,
        address)`` like ``socket.accept`` (the address as the socket module gives it).
        ``flags``: accept4 flags. A connection accepted after the task was cancelled is
        closed. Raises OSError."""
        address = SockAddr()
        conn = await self._run_fd(self._ring.accept, fd, address, flags)
        return conn, address.address

    def multishot_accept(
        self, fd: _FileDescriptor, flags: int = _SOCK_CLOEXEC
    ) -> MultishotOperation:
        """A multishot accept: one completion per connection (``cqe.result()`` is its fd)
        while ``cqe.more``; connections queued and never consumed are closed when the
        operation ends. See :class:`MultishotOperation`."""
        return self.multishot(self._ring.multishot_accept, fd, None, flags, closes_fds=True)

    async def connect(self, fd: _FileDescriptor, address: Any) -> None:
        """Connects ``fd`` to ``address``: a ``(host, port)`` tuple (a host name is resolved
        with ``loop.getaddrinfo`` for the socket's family and each address tried in turn), an
        AF_UNIX path, or a :class:`iouring.SockAddr`. Raises OSError
        (``ConnectionRefusedError``...), ``socket.gaierror`` for an unknown host name."""
        if (
            isinstance(address, tuple)
            and address
            and isinstance(address[0], str)
            and not _numeric_family(address[0])
        ):
            self._check_open()
            infos = await self._resolve(fd, address, passive=False)
            error: OSError | None = None
            for _, sockaddr in infos:
                try:
                    await self._start(self._ring.connect, fd, sockaddr)
                except OSError as exc:
                    error = exc
                    continue
                return
            assert error is not None
            raise error
        await self._start(self._ring.connect, fd, address)

    async def send(self, fd: _FileDescriptor, data: _Buffer, flags: int = 0) -> int:
        """Sends ``data``; returns the bytes sent (may be short). Raises OSError."""
        return await self._start(self._ring.send, fd, data, flags)

    async def send_zc(self, fd: _FileDescriptor, data: _Buffer, flags: int = 0) -> int:
        """A zero-copy send (Linux 6.0+): returns the bytes sent once the kernel no longer
        reads ``data`` (its notification completion). Worth it for large buffers. Raises
        OSError."""
        future: asyncio.Future[int] = self._new_future()
        user_data = self._launch(_ZeroCopySend(future), self._ring.send_zc, (fd, data, flags))
        try:
            res = await future
        except asyncio.CancelledError:
            self._abandon(user_data, _DISCARD)
            raise
        if res < 0:
            raise _error(res)
        return res

    async def sendall(self, fd: _FileDescriptor, data: _Buffer, flags: int = 0) -> None:
        """Sends all of ``data``, repeating after short sends. Raises OSError."""
        view = memoryview(cast("Buffer", data)).cast("B")
        send = self._ring.send
        start = self._start
        while view:
            n = await start(send, fd, view, flags)
            view = view[n:]

    async def sendto(self, fd: _FileDescriptor, data: _Buffer, address: Any, flags: int = 0) -> int:
        """Sends a datagram to ``address``; returns the bytes sent. Raises OSError."""
        return await self._start(self._ring.sendto, fd, data, address, flags)

    async def recv(self, fd: _FileDescriptor, buffer: _Buffer, flags: int = 0) -> int:
        """Receives into ``buffer`` (writable, pinned until the kernel is done); returns the
        byte count (0: the peer closed). Raises OSError."""
        return await self._start(self._ring.recv, fd, buffer, flags)

    async def recv_bytes(self, fd: _FileDescriptor, size: int, flags: int = 0) -> bytes:
        """Receives up to ``size`` bytes and returns them (``b""``: the peer closed). Raises
        OSError, or ValueError for a negative size."""
        if size < 0:
            raise ValueError("size must be >= 0")
        buffer = bytearray(size)
        n = await self._start(self._ring.recv, fd, buffer, flags)
        del buffer[n:]
        return bytes(buffer)

    def recv_multishot(
        self, fd: _FileDescriptor, buffer_ring: BufferRing, flags: int = 0
    ) -> MultishotOperation:
        """A multishot recv into the provided buffers of ``buffer_ring``: one completion per
        chunk; read it with ``buffer_ring.get(cqe)`` and hand it back with
        ``buffer_ring.put(cqe)``. ``res`` 0 means the peer closed; ``-ENOBUFS`` (final) means
        the buffers ran out: start a new one once some are back. Queued chunks nobody
        consumed are handed back when the operation ends."""
        return self.multishot(
            self._ring.recv_multishot, fd, buffer_ring, flags, buffer_ring=buffer_ring
        )

    async def sendmsg(self, fd: _FileDescriptor, msg: Msghdr, flags: int = 0) -> int:
        """sendmsg with an :class:`iouring.Msghdr` (buffers, destination name, ancillary
        data); returns the bytes sent. Raises OSError."""
        return await self._start(self._ring.sendmsg, fd, msg, flags)

    async def recvmsg(self, fd: _FileDescriptor, msg: Msghdr, flags: int = 0) -> int:
        """recvmsg into an :class:`iouring.Msghdr`; returns the bytes received, and
        ``msg.name``, ``msg.ancdata``, ``msg.flags`` hold the rest. Raises OSError."""
        return await self._start(self._ring.recvmsg, fd, msg, flags)

    async def shutdown(self, fd: _FileDescriptor, how: int = _SHUT_RDWR) -> None:
        """shutdown(2) of a socket (``socket.SHUT_RD``/``SHUT_WR``/``SHUT_RDWR``). Raises
        OSError."""
        await self._start(self._ring.shutdown, fd, how)

    # --- addresses, servers and connections ----------------------------------------------

    async def _resolve(
        self, fd: _FileDescriptor | None, address: Any, *, passive: bool, family: int = 0
    ) -> list[tuple[int, Any]]:
        """``[(family, sockaddr), ...]`` for ``address``: a ``(host, port)`` tuple whose host
        is a name (or ``""``) goes through ``loop.getaddrinfo``; anything else (a numeric
        host, an AF_UNIX path, a SockAddr) is passed on as it is."""
        if fd is not None and not family:
            family = _socket_family(fd)
        if not isinstance(address, tuple) or len(address) < 2:
            return [(family, address)]
        host, port = address[0], address[1]
        if not isinstance(host, str) or not isinstance(port, int):
            raise TypeError("address must be a (host: str, port: int) tuple")
        numeric = _numeric_family(host) if host else 0
        if numeric:
            return [(family or numeric, address)]
        if family not in (0, _AF_INET, _AF_INET6):
            raise ValueError("address: a host name needs an AF_INET or AF_INET6 socket")
        infos = await self._loop.getaddrinfo(
            host or None,
            port,
            family=family,
            type=_SOCK_STREAM,
            flags=_AI_PASSIVE if passive else 0,
        )
        if not infos:
            raise OSError(errno.EADDRNOTAVAIL, f"getaddrinfo found no address for {host!r}")
        return [(info[0], info[4]) for info in infos]

    async def bind(self, fd: _FileDescriptor, address: Any) -> None:
        """Binds the socket ``fd`` to ``address``: ``(host, port)`` (a host name or ``""``
        resolves with ``loop.getaddrinfo``, and the first address is used), an AF_UNIX path,
        or a :class:`iouring.SockAddr`. Uses IORING_OP_BIND where the kernel has it (6.11+),
        ``bind(2)`` otherwise (it never blocks). Raises OSError (``OSError(EADDRINUSE)``...),
        ``socket.gaierror`` for an unknown host name."""
        self._check_open()
        (_, sockaddr), *_ = await self._resolve(fd, address, passive=True)
        if self._has_op(Op.BIND):
            await self._start(self._ring.bind, fd, sockaddr)
        else:
            _with_socket(fd, lambda s: s.bind(sockaddr))

    async def listen(self, fd: _FileDescriptor, backlog: int = 128) -> None:
        """Marks the bound socket ``fd`` as listening (IORING_OP_LISTEN on 6.11+, ``listen(2)``
        otherwise). Raises OSError."""
        self._check_open()
        if self._has_op(Op.LISTEN):
            await self._start(self._ring.listen, fd, backlog)
        else:
            _with_socket(fd, lambda s: s.listen(backlog))

    def _has_op(self, op: int) -> bool:
        supported = self._supported_ops
        if supported is None:
            try:
                supported = self._supported_ops = frozenset(self._ring.probe_ops())
            except OSError:
                supported = self._supported_ops = frozenset()
        return op in supported

    async def create_server(
        self,
        host: str | None,
        port: int,
        *,
        family: int = 0,
        backlog: int = 128,
        reuse_address: bool = True,
    ) -> _Socket:
        """A listening TCP socket (a ``socket.socket``) on ``host`` (a name, a numeric
        address, or None/``""`` for every interface) and ``port`` (0: any free port; read it
        with ``sock.getsockname()``). Raises OSError, ``socket.gaierror``."""
        self._check_open()
        infos = await self._resolve(None, (host or "", port), passive=True, family=family)

        async def serve(sock: _Socket, sockaddr: Any) -> None:
            if reuse_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            await self.bind(sock, sockaddr)
            await self.listen(sock, backlog)

        return await self._first_socket(infos, serve)

    async def open_connection(self, host: str, port: int, *, family: int = 0) -> _Socket:
        """A TCP ``socket.socket`` connected to ``host`` (a name resolved with
        ``loop.getaddrinfo``, or a numeric address) and ``port``; each resolved address is
        tried in turn. Raises the OSError of the last attempt (``ConnectionRefusedError``...),
        ``socket.gaierror``."""
        self._check_open()
        infos = await self._resolve(None, (host, port), passive=False, family=family)

        async def connect(sock: _Socket, sockaddr: Any) -> None:
            await self._start(self._ring.connect, sock, sockaddr)

        return await self._first_socket(infos, connect)

    @staticmethod
    async def _first_socket(
        infos: list[tuple[int, Any]], setup: Callable[[_Socket, Any], Awaitable[None]]
    ) -> _Socket:
        """A new TCP socket for each ``(family, sockaddr)`` of ``infos`` in turn, through
        ``await setup(sock, sockaddr)``, until one succeeds; a failed one is closed. Raises the
        OSError of the last attempt."""
        error: OSError | None = None
        for fam, sockaddr in infos:
            sock = socket.socket(fam, _SOCK_STREAM | _SOCK_CLOEXEC)
            try:
                await setup(sock, sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        assert error is not None
        raise error

    async def accept_socket(
        self, fd: _FileDescriptor, flags: int = _SOCK_CLOEXEC
    ) -> tuple[_Socket, Any]:
        """Like :meth:`accept` but returns ``(socket.socket, address)``, as
        ``socket.accept()`` does. Raises OSError."""
        conn, address = await self.accept(fd, flags)
        return socket.socket(fileno=conn), address

    # --- whole files -----------------------------------------------------------------------

    async def read_file(self, path: _StrOrBytesPath) -> bytes:
        """The whole content of the file ``path``, read through the ring (open, statx, reads,
        close) without blocking the loop. Raises the OSError of the failing step with
        ``filename`` set (``FileNotFoundError``, ``IsADirectoryError``...)."""
        fd = await self.open(path)
        try:
            info = await self.statx("", dir_fd=fd, flags=_AT_EMPTY_PATH, mask=_STATX_SIZE)
            size = info.st_size
            # One byte more than the size: a read that fills it means the file grew.
            buffer = bytearray(max(size, 0) + 1)
            view = memoryview(buffer)
            got = 0
            while True:
                if got == len(buffer):  # the file is larger than statx said: grow
                    view.release()
                    buffer.extend(bytes(max(len(buffer), 65536)))
                    view = memoryview(buffer)
                n = await self.read(fd, view[got:], got)
                if n == 0:
                    break
                got += n
                if size > 0 and got >= size and got < len(buffer):
                    break  # read to its size without filling the spare byte: the end (no 0 read)
            view.release()
            del buffer[got:]
            return bytes(buffer)
        except OSError as exc:
            exc.filename = os.fsdecode(path)
            raise
        finally:
            await self._close_quietly(fd)

    async def write_file(
        self, path: _StrOrBytesPath, data: _Buffer, *, mode: int = 0o666, append: bool = False
    ) -> int:
        """Writes ``data`` to the file ``path`` (created with ``mode``, truncated unless
        ``append``) through the ring without blocking the loop; returns the byte count.
        Raises the OSError of the failing step with ``filename`` set, ``TypeError`` when
        ``data`` is not bytes-like."""
        view = memoryview(cast("Buffer", data)).cast("B")
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        fd = await self.open(path, flags, mode)
        try:
            done = 0
            while done < len(view):
                n = await self.write(fd, view[done:], -1 if append else done)
                if n == 0:
                    raise OSError(errno.EIO, "write wrote nothing")
                done += n
            return done
        except OSError as exc:
            exc.filename = os.fsdecode(path)
            raise
        finally:
            await self._close_quietly(fd)

    async def _close_quietly(self, fd: int) -> None:
        """Closes ``fd`` through the ring; synchronously when the task is being cancelled
        or the adapter closed, so the descriptor never leaks."""
        try:
            await self.close_fd(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    # --- batch awaits ----------------------------------------------------------------------

    async def batch(
        self,
        method: Callable[..., int],
        count: int,
        columns: Mapping[str, Any] | None = None,
        **fixed: Any,
    ) -> npt.NDArray[np.void]:
        """Runs ``count`` operations of one batch method and returns all their completions.

        ``method`` is a batch method of the adapter's ring (``ring.read_batch``...), called as
        ``method(user_data_array, count=k, **columns_chunk, **fixed)``. ``columns`` holds the
        per-operation arguments (1-D arrays or lists of length ``count``, or ints applied to
        all);
        they are cut into chunks when the SQ has less room than ``count``. ``fixed`` holds the
        rest (a buffer, flags). Pass buffer offsets explicitly: a packed layout (no
        ``buf_offset``) would restart at 0 in every chunk.

        Returns a ``CQE_DTYPE`` array in operation order whose ``user_data`` field is the
        operation's index (0..count-1); failed operations have ``res < 0`` (see
        :func:`raise_for_errors`). Cancelling the awaiting task cancels the operations still
        running. Raises ValueError/TypeError from the batch method; operations of earlier
        chunks are awaited before the error is raised.
        """
        self._check_open()
        if count < 0 or count > _BATCH_MAX:
            raise ValueError(f"count must be in 0..{_BATCH_MAX}")
        if count == 0:
            return np.zeros(0, dtype=CQE_DTYPE)
        # The broadcasting rule is the ring's (iouring._core.batch_size, the one every batch
        # method applies): ints, fds and length-1 arrays apply to every operation, the other
        # arrays must all hold count values. Only those are cut into chunks.
        _batch_size(dict(columns or {}), count)
        cols: dict[str, Any] = {}
        sliced: set[str] = set()
        for name, value in (columns or {}).items():
            if value is None or not _is_column(value) or len(value) == 1:
                cols[name] = value
            else:
                cols[name] = value if isinstance(value, (np.ndarray, list)) else np.asarray(value)
                sliced.add(name)
        pump = self._pump
        batch_id = pump.new_batch_id()
        base = _BATCH_BIT | batch_id << 32
        user_data = np.arange(base, base + count, dtype=np.uint64)
        future: asyncio.Future[npt.NDArray[np.void]] = self._new_future()
        batch = _Batch(self, base, count, future)
        pump.batches[batch_id] = batch
        prepared = 0
        try:
            while prepared < count:
                # Keep at most cq_entries batch operations in flight: no CQ overflow.
                room = self._ring.cq_entries - pump.batch_ops
                space = self._ring.sq_space_left()
                if room <= 0:
                    waiter: asyncio.Future[None] = self._new_future()
                    pump.room_waiters.append(waiter)
                    self._schedule_flush()
                    await waiter
                    self._check_open()
                    continue
                if space == 0:
                    self._make_room()
                    continue
                k = min(count - prepared, room, space)
                chunk = slice(prepared, prepared + k)
                args = {
                    name: value[chunk] if name in sliced else value for name, value in cols.items()
                }
                n = method(user_data[chunk], count=k, **args, **fixed)
                prepared += n
                self._batch_ops += n
                pump.batch_ops += n
                self._schedule_flush()
        except BaseException as exc:
            # Earlier chunks are in flight: they must complete (their pins are the ring's)
            # before the error surfaces.
            unprepared = count - prepared
            batch.remaining -= unprepared
            batch.done[prepared:] = True
            if prepared == 0:
                pump.batches.pop(batch_id, None)
                raise
            if batch.remaining <= 0 and batch_id in pump.batches:
                pump.finish_batch(batch_id, batch)
            if isinstance(exc, asyncio.CancelledError):
                self._cancel_batch(batch)
            else:
                await asyncio.shield(future)
            raise
        try:
            return await future
        except asyncio.CancelledError:
            if batch_id in pump.batches:
                self._cancel_batch(batch)
            raise

    def _cancel_batch(self, batch: _Batch) -> None:
        """Cancels every operation of ``batch`` whose completion has not arrived."""
        if self._cancel_op is None:
            return
        for index in np.flatnonzero(~batch.done):
            self._cancel_in_kernel(batch.base + int(index))

    async def nop_batch(self, count: int) -> npt.NDArray[np.void]:
        """``count`` no-ops in one await; returns their completions (see :meth:`batch`)."""
        return await self.batch(self._ring.nop_batch, count)

    def _packed_offsets(self, length: Any, buf_offset: Any, count: int) -> Any:
        if buf_offset is not None:
            return buf_offset
        if isinstance(length, (int, np.integer)):
            return np.arange(count, dtype=np.uint64) * np.uint64(length)
        lengths = np.broadcast_to(np.asarray(length, dtype=np.uint64), (count,))
        offsets = np.zeros(count, dtype=np.uint64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        return offsets

    async def _rw_batch(
        self,
        method: Callable[..., int],
        fd: Any,
        extra: dict[str, Any],
        offset: Any,
        length: Any,
        buf_offset: Any,
        **fixed: Any,
    ) -> npt.NDArray[np.void]:
        # The four read/write batches: extra holds the columns between fd and offset
        # (buffer_index of the fixed ones), in the order the ring method takes them.
        count = _batch_size(
            {"fd": fd, **extra, "offset": offset, "length": length, "buf_offset": buf_offset}
        )
        columns = {
            "fd": fd,
            **extra,
            "offset": offset,
            "length": length,
            "buf_offset": self._packed_offsets(length, buf_offset, count),
        }
        return await self.batch(method, count, columns, **fixed)

    async def read_batch(
        self,
        fd: Any,
        buffer: _Buffer,
        offset: Any,
        length: Any,
        buf_offset: Any = None,
    ) -> npt.NDArray[np.void]:
        """N reads into one writable buffer in one await (see ``IoUring.read_batch``).

        ``fd``, ``offset``, ``length`` and ``buf_offset`` are ints (applied to all) or arrays
        of N; without ``buf_offset`` the ranges follow each other from 0. Returns the N
        completions in operation order (``res``: bytes read, or ``-errno``). Raises
        ValueError/TypeError/OverflowError for bad arguments.
        """
        return await self._rw_batch(
            self._ring.read_batch, fd, {}, offset, length, buf_offset, buffer=buffer
        )

    async def write_batch(
        self,
        fd: Any,
        buffer: _Buffer,
        offset: Any,
        length: Any,
        buf_offset: Any = None,
    ) -> npt.NDArray[np.void]:
        """N writes from one buffer in one await (see ``IoUring.write_batch`` and
        :meth:`read_batch`). Returns the N completions in operation order."""
        return await self._rw_batch(
            self._ring.write_batch, fd, {}, offset, length, buf_offset, buffer=buffer
        )

    async def read_fixed_batch(
        self, fd: Any, buffer_index: Any, offset: Any, length: Any, buf_offset: Any = None
    ) -> npt.NDArray[np.void]:
        """N reads into registered buffers in one await (see ``IoUring.read_fixed_batch``).
        Returns the N completions in operation order."""
        return await self._rw_batch(
            self._ring.read_fixed_batch,
            fd,
            {"buffer_index": buffer_index},
            offset,
            length,
            buf_offset,
        )

    async def write_fixed_batch(
        self, fd: Any, buffer_index: Any, offset: Any, length: Any, buf_offset: Any = None
    ) -> npt.NDArray[np.void]:
        """N writes from registered buffers in one await (see ``IoUring.write_fixed_batch``).
        Returns the N completions in operation order."""
        return await self._rw_batch(
            self._ring.write_fixed_batch,
            fd,
            {"buffer_index": buffer_index},
            offset,
            length,
            buf_offset,
        )

    async def openat_batch(
        self,
        paths: Sequence[_StrOrBytesPath],
        flags: Any = os.O_RDONLY | os.O_CLOEXEC,
        mode: Any = 0o666,
        *,
        dir_fd: Any = _AT_FDCWD,
    ) -> npt.NDArray[np.void]:
        """Opens every path of ``paths`` in one await; ``res`` of completion i is the fd of
        ``paths[i]`` or ``-errno``. ``flags``, ``mode`` and ``dir_fd`` are ints or arrays.
        Returns the completions in operation order."""
        count = len(paths)
        if count == 0:
            return np.zeros(0, dtype=CQE_DTYPE)
        columns = {"paths": list(paths), "dir_fd": dir_fd, "flags": flags, "mode": mode}
        return await self.batch(self._ring.openat_batch, count, columns)

    async def fsync_batch(self, fd: Any, flags: int = 0) -> npt.NDArray[np.void]:
        """fsync of every fd of the array ``fd`` in one await. Returns the completions."""
        return await self.batch(
            self._ring.fsync_batch, _batch_size({"fd": fd}), {"fd": fd}, flags=flags
        )

    async def close_batch(self, fd: Any) -> npt.NDArray[np.void]:
        """Closes every fd of the array ``fd`` in one await. Returns the completions."""
        return await self.batch(self._ring.close_batch, _batch_size({"fd": fd}), {"fd": fd})


def _is_column(value: Any) -> bool:
    """Whether a batch argument is an array (or sequence) rather than one value for all."""
    if isinstance(value, (int, np.integer)):
        return False
    return hasattr(value, "__len__") or not hasattr(value, "fileno")


def __dir__() -> list[str]:
    return list(__all__)
