"""High-level helpers for the common jobs: read many files (or many ranges of one file), write
many files, stat many files, copy a file, and :func:`run_batches`, the loop underneath them
that keeps a ring full with N batch-prepared operations and hands back their results in order.

    >>> from iouring import read_files, write_files, copy_file
    >>> write_files({"a.bin": b"hello", "b.bin": bytes(10)})
    >>> [bytes(a) for a in read_files(["a.bin", "b.bin"])]
    [b'hello', b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00']
    >>> copy_file("a.bin", "c.bin")
    5

Every step is a batch: the files of a call are opened with ``openat_batch``, sized with
``statx_batch``, read with ``read_batch`` and closed with ``close_batch``, with no Python code
per file or per range, on a ring sized for the work (or the ``ring=`` you pass: an idle
:class:`iouring.IoUring`, left idle). ``progress=`` is called as ``progress(done_bytes,
total_bytes)`` after every batch of completions. Reads land in page-aligned blocks (a
misaligned destination copies about 3x slower here) returned as NumPy views without copies;
blocks whose arrays are all gone are reused by later calls (see :func:`set_memory_cache`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import pairwise, repeat
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

import iouring
from iouring._core import (
    AT_FDCWD,
    CQE_DTYPE,
    STATX_DTYPE,
    CancelFlags,
    Op,
    SqeFlags,
    statx_fds,
    statx_paths,
)

if TYPE_CHECKING:
    from iouring._core import _Buffer, _StrOrBytesPath

_P = TypeVar("_P", bound="_StrOrBytesPath")

__all__ = [
    "STAT_DTYPE",
    "Progress",
    "aligned_empty",
    "copy_file",
    "copy_files",
    "read_files",
    "read_ranges",
    "run_batches",
    "set_memory_cache",
    "stat_files",
    "write_files",
]

Progress = Callable[[int, int], None]
"""A progress callback: ``progress(done_bytes, total_bytes)``."""

PAGE: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DEFAULT_CHUNK: Final = 1 << 20
DEFAULT_DEPTH: Final = 1024  # most operations in flight on a ring the helpers create
DEFAULT_MAX_OPEN: Final = 2048  # at most this many files open at once by default (see below)
_LARGE: Final = 16 * 1024  # files at least this big start on a page boundary in the arena
_RETRY: Final = (errno.EINTR, errno.EAGAIN)
_ECANCELED: Final = errno.ECANCELED
_AT_EMPTY_PATH: Final = 0x1000
_AT_SYMLINK_NOFOLLOW: Final = 0x100
_STATX_TYPE_SIZE: Final = 0x1 | 0x200
_STATX_BASIC: Final = 0x7FF
_STATX_INO: Final = 0x100  # stx_dev_* come with every statx
_CANCEL_USER_DATA: Final = 2**64 - 1
_OPEN_READ: Final = os.O_RDONLY | os.O_CLOEXEC
_OPEN_WRITE: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC

_Ops = npt.NDArray[np.uint64]
_Res = npt.NDArray[np.int32]


def _path_name(path: _StrOrBytesPath | int) -> str | int:
    return path if isinstance(path, int) else os.fsdecode(path)


def _oserror(code: int, filename: str | int, filename2: str | int | None = None) -> OSError:
    """``OSError(code, strerror, filename)``: Python picks the subclass from ``code``."""
    if filename2 is None:
        return OSError(code, os.strerror(code), filename)
    return OSError(code, os.strerror(code), filename, None, filename2)


def aligned_empty(nbytes: int, alignment: int = PAGE) -> npt.NDArray[np.uint8]:
    """An uninitialised ``uint8`` array of ``nbytes`` whose first byte is ``alignment``-aligned
    (NumPy itself aligns large arrays to page + 16 bytes). Raises ValueError for a negative
    size."""
    if nbytes < 0:
        raise ValueError("nbytes must be >= 0")
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start : start + nbytes]


# --------------------------------------------------------------------------------------------
# Memory: page-aligned blocks, reused once nothing refers to them


class _BlockCache:
    """Page-aligned blocks of at least ``_MIN_CACHED`` bytes that the helpers read into. The
    cache keeps a reference to the array that owns each block it made (up to ``limit`` bytes
    in all); a block whose owner has no reference left but the cache's (every array made from
    it is gone: NumPy views refer to the owner directly) is handed out again. Fresh memory
    costs a page fault and the zeroing of every page on first touch (here about as much as
    copying the data in), which a loop of ``f.read()`` calls never pays: small allocations come
    from malloc's warm heap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.owners: list[npt.NDArray[np.uint8]] = []
        self.lock = threading.Lock()

    def _free(self, i: int) -> bool:
        return _refs(self.owners, i) - _registered_refs(self.owners[i]) <= _FREE_REFS

    def take(self, nbytes: int) -> npt.NDArray[np.uint8]:
        if nbytes < _MIN_CACHED or self.limit <= 0:
            return aligned_empty(nbytes)
        with self.lock:
            owners = self.owners
            best = -1
            for i in range(len(owners)):
                size = owners[i].size - PAGE
                smaller = best < 0 or size < owners[best].size - PAGE
                if nbytes <= size <= 2 * nbytes + DEFAULT_CHUNK and smaller and self._free(i):
                    best = i
            if best >= 0:
                return _aligned_view(owners[best], nbytes)
            size = -(-nbytes // DEFAULT_CHUNK) * DEFAULT_CHUNK
            held = sum(owner.size for owner in owners)
            if held + size > self.limit:  # make room: let go of free blocks, oldest first
                keep = []
                for i in range(len(owners)):
                    if held + size > self.limit and self._free(i):
                        held -= owners[i].size
                    else:
                        keep.append(owners[i])
                self.owners = owners = keep
            owner = np.empty(size + PAGE, dtype=np.uint8)
            if held + owner.size <= self.limit:
                owners.append(owner)
            return _aligned_view(owner, nbytes)

    def set_limit(self, limit: int) -> int:
        with self.lock:
            old, self.limit = self.limit, limit
            held = 0
            keep = []
            for owner in self.owners:
                if held + owner.size <= limit:
                    keep.append(owner)
                    held += owner.size
            self.owners = keep  # blocks in use live on with their arrays
            return old


def _refs(owners: list[npt.NDArray[np.uint8]], i: int) -> int:
    return sys.getrefcount(owners[i])


def _aligned_view(owner: npt.NDArray[np.uint8], nbytes: int) -> npt.NDArray[np.uint8]:
    start = (-owner.ctypes.data) % PAGE
    return owner[start : start + nbytes]


# What _refs() counts for an array only the cache refers to (interpreters count differently).
_FREE_REFS: Final = _refs([np.empty(1, dtype=np.uint8)], 0)
_MIN_CACHED: Final = 1 << 20
_CACHE = _BlockCache(128 << 20)


def set_memory_cache(nbytes: int) -> int:
    """Sets how many bytes of read blocks the helpers keep for reuse (default 128 MiB) and
    returns the previous limit; 0 turns the cache off and lets go of the blocks it holds.

    ``read_files`` and ``read_ranges`` return views into page-aligned blocks of memory. A block
    is reused by a later call only once every array made from it is gone, so results are never
    shared; the cache saves the page faults and zeroing of fresh memory, which cost about as
    much as the copy from the page cache itself. Raises ValueError for a negative size."""
    nbytes = _check_count(nbytes, "nbytes", 0)
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    if nbytes == 0:
        _release_buffer_slots()
    return _CACHE.set_limit(nbytes)


def _release_buffer_slots() -> None:
    """Unregisters the blocks registered with this thread's helper ring (when it is idle)."""
    cache = _RINGS
    ring = cache.buffers_ring
    if ring is None or cache.busy or ring is not cache.ring or not _idle(ring):
        return
    _forget_buffer_slots(cache)
    with contextlib.suppress(Exception):
        ring.unregister_buffers()


# --------------------------------------------------------------------------------------------
# The runner: N operations through a ring, results in operation order


def _check_ring(ring: object, name: str = "ring") -> iouring.IoUring:
    if not isinstance(ring, iouring._core.IoUring):
        raise TypeError(f"{name} must be an iouring.IoUring, not {type(ring).__name__}")
    if ring.closed:
        raise ValueError(f"{name}: the ring is closed")
    if ring.in_flight or ring.cq_ready() or (ring.sq_ready() and not _sq_drains(ring)):
        raise ValueError(f"{name}: the ring must be idle (nothing prepared or in flight)")
    return cast("iouring.IoUring", ring)


def _sq_drains(ring: iouring._core.IoUring) -> bool:
    """Whether the SQEs that ``sq_ready()`` counts on an idle ring are an SQPOLL thread's
    leftovers: it posts completions before it moves the SQ head past their SQEs, so for a
    moment after the last completion was reaped the SQ still looks busy (seen on 6.12 under
    an emulator). SQEs the caller prepared and did not submit never drain: False after 1 s."""
    if not ring.flags & iouring.SetupFlags.SQPOLL:
        return False
    deadline = time.monotonic() + 1.0
    while ring.sq_ready():
        if ring.in_flight or time.monotonic() > deadline:
            return False
        time.sleep(0.0002)
    return True


def _check_count(value: object, name: str, low: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def run_batches(
    ring: iouring.IoUring,
    prepare: Callable[[_Ops], int],
    n: int,
    *,
    on_complete: Callable[[_Ops, _Res], npt.ArrayLike | None] | None = None,
    depth: int | None = None,
    out: _Res | None = None,
) -> _Res:
    """Runs operations ``0..n-1`` through ``ring`` and returns their results (the ``res`` of
    each final completion) as an ``int32`` array in operation order: a file descriptor, a byte
    count, or ``-errno``. It keeps up to ``depth`` operations in flight (default: as many as
    the completion queue holds), preparing more as completions arrive, one
    ``submit_and_copy_cqes`` per round::

        res = iouring.run_batches(
            ring, lambda ops: ring.read_batch(ops, fd, buf, ops * 4096, 4096, ops * 4096), n
        )

    ``prepare(ops)`` prepares the operations numbered ``ops`` (a ``uint64`` array, usually a
    contiguous run ``start..stop-1``), each with ``user_data`` equal to its number, with the
    ring's batch methods, and returns how many it prepared from the front (batch methods
    return exactly that; fewer when the SQ is full). ``on_complete(ops, res)`` is called after
    every batch of completions with the numbers and results that just arrived; it may return
    operations to run again (say, the rest of a short read, after updating the arrays that
    ``prepare`` reads), which are prepared before any new one, each such batch in a call of its
    own. ``out`` is an ``int32`` array of ``n`` to fill instead of a new one (results of
    operations not run are left as they were).

    The ring must be idle (ValueError) and is idle again on return. If ``prepare`` or
    ``on_complete`` raises (or Ctrl-C interrupts the wait), what is in flight is cancelled and
    reaped before the exception propagates. Raises TypeError/ValueError naming the argument,
    RuntimeError when ``prepare`` prepares nothing though the ring has room, or a completion
    carries a ``user_data`` that is not an operation number.
    """
    _check_ring(ring)
    if not _callable(prepare):
        raise TypeError(f"prepare must be callable, not {type(prepare).__name__}")
    if on_complete is not None and not _callable(on_complete):
        raise TypeError(f"on_complete must be callable or None, not {type(on_complete).__name__}")
    n = _check_count(n, "n", 0)
    cq = ring.cq_entries
    limit = cq if depth is None else min(_check_count(depth, "depth", 1), cq)
    if out is None:
        res = np.empty(n, dtype=np.int32)
    else:
        given: object = out
        if not isinstance(given, np.ndarray) or out.dtype != np.int32 or out.shape != (n,):
            raise ValueError(f"out must be an int32 array of shape ({n},)")
        if not out.flags.writeable:
            raise ValueError("out must be writable")
        res = out
    cqes = np.empty(cq, dtype=CQE_DTYPE)
    numbers = np.arange(n, dtype=np.uint64)
    retry: list[_Ops] = []
    cursor = in_flight = 0
    try:
        while True:
            room = min(ring.sq_space_left(), limit - in_flight)
            while room > 0 and retry:
                again = retry[0]
                take = again[:room]
                k = _prepared(prepare(take), len(take))
                in_flight += k
                room -= k
                if k == len(again):
                    retry.pop(0)
                else:
                    retry[0] = again[k:]
                    break
            if room > 0 and cursor < n and not retry:
                k = _prepared(prepare(numbers[cursor : cursor + room]), min(room, n - cursor))
                cursor += k
                in_flight += k
            if in_flight == 0:
                if cursor >= n and not retry:
                    return res
                if room > 0:
                    raise RuntimeError("prepare prepared no operation although the ring has room")
                # SQPOLL: the kernel thread may post completions before it frees their SQ
                # slots; let it catch up.
                ring.submit()
                continue
            got = ring.submit_and_copy_cqes(cqes, 1)
            in_flight -= got
            done = cqes[:got]
            ops = done["user_data"]
            if got and int(ops.max()) >= n:
                raise RuntimeError(
                    f"a completion has user_data {int(ops.max())}, not an operation number "
                    f"(0..{n - 1}): prepare must set user_data to the operation's number"
                )
            results = done["res"]
            res[ops] = results
            if on_complete is not None:
                asked = on_complete(ops, results)
                if asked is not None:
                    more = np.asarray(asked, dtype=np.uint64).reshape(-1)
                    if len(more):
                        if int(more.max()) >= n:
                            raise ValueError("on_complete returned an operation number >= n")
                        retry.append(more)
    except BaseException:
        _drain(ring, cqes, res)
        raise


def _prepared(count: object, asked: int) -> int:
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool):
        raise TypeError(f"prepare must return the number prepared, not {type(count).__name__}")
    if not 0 <= count <= asked:
        raise ValueError(f"prepare returned {count}; it was given {asked} operations")
    return int(count)


def _drain(ring: iouring.IoUring, cqes: npt.NDArray[np.void], res: _Res) -> None:
    """Cancels and reaps everything in flight after an exception, so the ring is idle again
    (best effort: a closed or broken ring is left as it is). The results of operations that
    complete meanwhile still land in ``res`` (an open that finished is a descriptor the
    caller must close)."""
    n = len(res)

    def record(got: int) -> None:
        done = cqes[:got]
        ops = done["user_data"]
        mine = ops < n
        res[ops[mine]] = done["res"][mine]

    with contextlib.suppress(Exception):
        if ring.closed:
            return
        if ring.in_flight and ring.sq_space_left():
            ring.cancel(_CANCEL_USER_DATA, 0, int(CancelFlags.ANY))
        while ring.in_flight or ring.sq_ready():
            record(ring.submit_and_copy_cqes(cqes, 1))
        while ring.cq_ready():
            record(len(ring.copy_cqes(cqes)))


def _span(ops: _Ops) -> slice:
    """The slice of a contiguous run of operation numbers."""
    start = int(ops[0])
    return slice(start, start + len(ops))


class _RingCache(threading.local):
    """Each thread's ring for the helpers, kept from call to call: setting up and tearing
    down a ring of 1024 entries costs about 0.2-1.5 ms here, a few percent of reading 2,000
    small files. ``busy`` while a helper runs on it (a progress callback that calls a helper
    gets a ring of its own)."""

    ring: iouring.IoUring | None = None
    busy: bool = False
    files_ring: iouring.IoUring | None = None  # the ring with a file table of one slot
    # The ring's registered buffer table (see _fixed_slot): the block owner in each slot, the
    # references the ring's registration adds to it, and the order of last use.
    buffers_ring: iouring.IoUring | None = None
    buffer_owners: list[npt.NDArray[np.uint8] | None]
    buffer_refs: list[int]
    buffer_used: list[int]
    buffer_clock: int = 0
    buffers_failed: bool = False  # registering failed on this ring (RLIMIT_MEMLOCK...)

    def __init__(self) -> None:
        self.buffer_owners, self.buffer_refs, self.buffer_used = [], [], []


_RINGS = _RingCache()
_BUFFER_SLOTS: Final = 8


def _forget_buffer_slots(cache: _RingCache) -> None:
    """Forgets the registered blocks (before the ring that holds them is closed or dropped)."""
    cache.buffers_ring = None
    cache.buffer_owners, cache.buffer_refs, cache.buffer_used = [], [], []
    cache.buffers_failed = False


def _forget_ring_after_fork() -> None:
    _forget_buffer_slots(_RINGS)
    _RINGS.ring = None  # the parent's ring is unusable in the child (RingForkedError)
    _RINGS.files_ring = None
    _RINGS.busy = False


def _registered_refs(owner: npt.NDArray[np.uint8]) -> int:
    """The references to ``owner`` that this thread's helper ring holds because the block is
    registered with it: the slot list's own, and the ring's registration, counted only while
    that ring is open (a closed ring may or may not have let go; then the block looks in use,
    never free while a caller still has a view). Other threads' registrations are not
    counted: to them such a block looks in use."""
    cache = _RINGS
    owners = cache.buffer_owners
    if not owners:
        return 0
    ring = cache.buffers_ring
    live = ring is not None and ring is cache.ring and not ring.closed
    refs = 0
    for held, ring_refs in zip(owners, cache.buffer_refs, strict=True):
        if held is owner:
            refs += 1 + (ring_refs if live else 0)
    return refs


def _register_block(ring: iouring.IoUring, slot: int, owner: npt.NDArray[np.uint8]) -> int:
    """Registers ``owner`` in buffer ``slot`` of ``ring``; returns the references to it that
    the registration added. Nothing else can change them meanwhile: the block is free (no
    array refers to it) or new, and only the cache hands out views of it."""
    before = sys.getrefcount(owner)
    ring.register_buffers_update(slot, [owner])
    return sys.getrefcount(owner) - before


def _fixed_slot(ring: iouring.IoUring, block: npt.NDArray[np.uint8]) -> tuple[int, int] | None:
    """``(slot, shift)`` when ``block`` (a view of a cached owner) is registered with the
    helper ring ``ring`` (registered now if it is not yet): reads into it can then be
    READ_FIXED at ``buf_offset + shift``, which skips importing and checking the destination
    on every read (0-5% of the CPU time of cached 16 KiB reads here, within the noise of this
    shared machine; the copy itself dominates). None for a caller's ring, a
    block the cache does not keep, or when registering fails: use plain reads.

    The block cache counts the ring's reference (``_registered_refs``), so a registered block
    is reused once every array made from it is gone, like any other. The ring is idle here
    (``_ring_for``), so replacing a slot releases the old block's registration at once."""
    cache = _RINGS
    owner = block.base
    if ring is not cache.ring or cache.buffers_failed or not isinstance(owner, np.ndarray):
        return None
    if _CACHE.limit <= 0 or not any(held is owner for held in _CACHE.owners):
        return None
    owners = cache.buffer_owners
    try:
        if cache.buffers_ring is not ring:
            _forget_buffer_slots(cache)
            ring.register_buffers_sparse(_BUFFER_SLOTS)
            cache.buffers_ring = ring
            owners = cache.buffer_owners = [None] * _BUFFER_SLOTS
            cache.buffer_refs = [0] * _BUFFER_SLOTS
            cache.buffer_used = [0] * _BUFFER_SLOTS
        cache.buffer_clock += 1
        slot = next((k for k, held in enumerate(owners) if held is owner), -1)
        if slot < 0:
            # An empty slot, else one whose block the cache has let go of (only the ring
            # keeps it alive), else the one used longest ago.
            cached = {id(held) for held in _CACHE.owners}
            slot = min(
                range(len(owners)),
                key=lambda k: (
                    owners[k] is not None,
                    id(owners[k]) in cached,
                    cache.buffer_used[k],
                ),
            )
            owners[slot] = None  # the old block's references go with the update below
            cache.buffer_refs[slot] = _register_block(ring, slot, owner)
            owners[slot] = owner
        cache.buffer_used[slot] = cache.buffer_clock
    except (OSError, NotImplementedError):
        # Registering is refused (RLIMIT_MEMLOCK before 5.12, no memory, no sparse tables
        # before 5.13): plain reads from now on for this ring.
        _forget_buffer_slots(cache)
        cache.buffers_failed = True
        with contextlib.suppress(Exception):
            ring.unregister_buffers()
        return None
    return slot, int(block.ctypes.data) - int(owner.ctypes.data)


@contextlib.contextmanager
def _registered_file(ring: iouring.IoUring, fd: int) -> Iterator[int | None]:
    """Slot 0 of the helper ring's registered file table, holding ``fd`` for the duration (on a
    ring of the caller, or if registering fails: None, use the fd itself). Reads of a
    registered file skip the file reference each operation takes and drops (about 5% of a
    cached 16 KiB read here)."""
    cache = _RINGS
    if ring is not cache.ring:
        yield None
        return
    try:
        if cache.files_ring is not ring:
            ring.register_files_sparse(1)
            cache.files_ring = ring
        ring.register_files_update(0, [fd])
    except OSError:
        yield None
        return
    try:
        yield 0
    finally:
        with contextlib.suppress(Exception):
            ring.register_files_update(0, [-1])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_ring_after_fork)


def _idle(ring: iouring.IoUring) -> bool:
    return not (ring.closed or ring.in_flight or ring.sq_ready() or ring.cq_ready())


@contextlib.contextmanager
def _ring_for(
    ring: iouring.IoUring | None, depth: int | None, work: int | None = None
) -> Iterator[iouring.IoUring]:
    """The caller's ring (checked idle), or this thread's helper ring with at least enough
    entries for ``work`` operations (at most ``depth``, default DEFAULT_DEPTH)."""
    if depth is not None:
        _check_count(depth, "queue_depth", 1)
    if ring is not None:
        yield _check_ring(ring)
        return
    want = depth if depth is not None else DEFAULT_DEPTH
    if work is not None:
        want = min(want, max(work, 1))
    entries = 1 << max(0, min(want, 4096) - 1).bit_length()
    cache = _RINGS
    if cache.busy:  # re-entered from a callback: a ring of its own
        with iouring.IoUring(entries) as temporary:
            yield temporary
        return
    own = cache.ring
    if own is None or not _idle(own) or own.sq_entries < entries:
        size = max(entries, 256)  # small calls get room to grow into
        if own is not None:
            _forget_buffer_slots(cache)
            cache.ring = None
            with contextlib.suppress(Exception):
                size = max(size, own.sq_entries)
                own.close()
        own = cache.ring = _new_helper_ring(size)
    cache.busy = True
    try:
        yield own
    finally:
        cache.busy = False
        if not _idle(own):  # an interrupted helper left work behind: start afresh next time
            _forget_buffer_slots(cache)
            cache.ring = None
            with contextlib.suppress(Exception):
                own.close()


_HELPER_FLAGS: Final = int(iouring.SetupFlags.SINGLE_ISSUER | iouring.SetupFlags.DEFER_TASKRUN)


def _new_helper_ring(entries: int) -> iouring.IoUring:
    """A thread's helper ring: SINGLE_ISSUER | DEFER_TASKRUN (6.1+), as only its thread ever
    submits to it and every helper waits for its completions in io_uring_enter, which is
    where a deferred-taskrun ring posts them (about 3% less CPU time per cached 16 KiB read
    here than a default ring); a default ring on kernels that refuse the flags."""
    try:
        return iouring.IoUring(entries, flags=_HELPER_FLAGS)
    except (OSError, ValueError, NotImplementedError):
        return iouring.IoUring(entries)


def _depth(ring: iouring.IoUring, queue_depth: int | None) -> int:
    return ring.cq_entries if queue_depth is None else max(1, min(queue_depth, ring.cq_entries))


def _check_chunk(chunk_size: int) -> int:
    chunk_size = _check_count(chunk_size, "chunk_size", 0)
    if not 1 <= chunk_size <= 1 << 30:
        raise ValueError("chunk_size must be in 1..2**30")
    return chunk_size


def _default_max_open() -> int:
    """A quarter of the soft RLIMIT_NOFILE, at most DEFAULT_MAX_OPEN, at least 16: 256 with
    the usual limit of 1024 descriptors. read_files keeps two groups of max_open // 2 files
    open (one being read while the next opens), so more files open at once means more reads
    in flight, which is what a cold page cache needs (2,000 small files, cold: groups of 1024
    with the next group's opens overlapped ran 1.17x the same without the overlap, 1.83x a
    16-thread pool; per-round median ratios of 25 rounds, scratch/bench_cold2.py)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 256
    if soft == getattr(resource, "RLIM_INFINITY", -1) or soft <= 0:
        return DEFAULT_MAX_OPEN
    return int(max(16, min(DEFAULT_MAX_OPEN, soft // 4)))


def _check_max_open(max_open: int | None) -> int:
    if max_open is None:
        return _default_max_open()
    max_open = _check_count(max_open, "max_open", 0)
    if max_open < 1:
        raise ValueError("max_open must be >= 1")
    return max_open


def _callable(value: Any) -> bool:
    # callable() on a value typed ``object`` makes mypy invent a "callable subtype of object",
    # which stubtest then looks for in the module.
    return callable(value)


def _check_progress(progress: object) -> None:
    if progress is not None and not _callable(progress):
        raise TypeError(f"progress must be callable or None, not {type(progress).__name__}")


_PATH_INDEX = re.compile(r"^paths\[(\d+)\]")


@contextlib.contextmanager
def _paths_from(base: npt.NDArray[np.intp] | int, name: str) -> Iterator[None]:
    """Renames the ``paths[i]`` of a batch method's argument error to ``name[j]``, the index
    in the caller's argument (``base``: the first index of the batch, or each index)."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        text = str(exc)
        match = _PATH_INDEX.match(text)
        if match is None:
            raise
        i = int(match.group(1))
        j = base + i if isinstance(base, int) else int(base[i])
        raise type(exc)(f"{name}[{j}]{text[match.end() :]}") from None


# --------------------------------------------------------------------------------------------
# Batched open, stat and close


def _split_fds(items: Sequence[object]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int32]]:
    """Which items are open fds (ints), and those fds (-1 elsewhere)."""
    n = len(items)
    is_fd = np.fromiter(map(isinstance, items, repeat(int)), dtype=bool, count=n)
    fds = np.full(n, -1, dtype=np.int32)
    if is_fd.any():
        where = np.flatnonzero(is_fd)
        given = np.array([items[i] for i in where.tolist()], dtype=np.int64)
        if (given < 0).any() or (given > 2**31 - 1).any():
            bad = int(where[np.flatnonzero((given < 0) | (given > 2**31 - 1))[0]])
            raise ValueError(f"paths[{bad}]: a file descriptor must be >= 0, got {items[bad]}")
        fds[where] = given
    return is_fd, fds


def _open_batch(
    ring: iouring.IoUring,
    items: Sequence[object],
    where: npt.NDArray[np.intp],
    flags: int,
    mode: int,
    depth: int,
    fds: npt.NDArray[np.int32],
    first: int,
    name: str,
) -> None:
    """Opens ``items[where]`` in batches, storing each fd (or -errno) into ``fds[where]``;
    ``first`` is the index of items[0] in the caller's argument, for error messages. On an
    exception the fds opened so far are in ``fds``."""
    if len(where) == 0:
        return
    contiguous = len(where) == len(items)
    paths = items if contiguous else [items[i] for i in where.tolist()]
    got = np.full(len(where), -_ECANCELED, dtype=np.int32)

    def prepare(ops: _Ops) -> int:
        span = _span(ops)
        base = first + span.start if contiguous else first + where[span]
        with _paths_from(base, name):
            return ring.openat_batch(ops, AT_FDCWD, cast("Any", paths[span]), flags, mode)

    try:
        run_batches(ring, prepare, len(where), depth=depth, out=got)
    finally:
        fds[where] = got


def _close_batch(ring: iouring.IoUring, fds: npt.NDArray[np.int32], depth: int) -> None:
    """Closes ``fds`` (ignoring failures, like a close in a finally block)."""
    fds = fds[fds >= 0]
    if len(fds) == 0:
        return
    try:
        run_batches(ring, lambda ops: ring.close_batch(ops, fds[_span(ops)]), len(fds), depth=depth)
    except BaseException:
        for fd in fds.tolist():  # the ring failed us: close what is left directly
            with contextlib.suppress(OSError):
                os.close(fd)
        raise


def _statx_fds(fds: npt.NDArray[np.int32], mask: int) -> tuple[npt.NDArray[np.void], _Res]:
    """statx of open fds: the records and each fd's 0 or -errno. Direct system calls from C++
    (``_core.statx_fds``): the statx of an open fd never waits for I/O, and io_uring would hand
    each one to a worker thread (about 3.5 us each here, against 0.4 us)."""
    records = np.zeros(len(fds), dtype=STATX_DTYPE)
    res = statx_fds(fds, records, mask)
    return records, res


# --------------------------------------------------------------------------------------------
# stat_files

STAT_DTYPE: Final = np.dtype(
    [
        ("size", "<i8"),
        ("mode", "<u4"),
        ("nlink", "<u4"),
        ("uid", "<u4"),
        ("gid", "<u4"),
        ("ino", "<u8"),
        ("dev", "<u8"),
        ("blocks", "<u8"),
        ("atime_ns", "<i8"),
        ("mtime_ns", "<i8"),
        ("ctime_ns", "<i8"),
        ("errno", "<i4"),
    ]
)
"""The record :func:`stat_files` returns per path: the fields of ``os.stat_result`` under
their short names (``size`` is ``st_size``, ``mtime_ns`` is ``st_mtime_ns``...), and ``errno``
(0, or the error of that path with ``errors="return"``)."""


def _makedev(major: npt.NDArray[Any], minor: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    """glibc's makedev(), as os.stat reports st_dev."""
    ma = major.astype(np.uint64)
    mi = minor.astype(np.uint64)
    dev: npt.NDArray[np.uint64] = (
        ((ma & np.uint64(0xFFF)) << np.uint64(8))
        | ((ma & np.uint64(0xFFFFF000)) << np.uint64(32))
        | (mi & np.uint64(0xFF))
        | ((mi & np.uint64(0xFFFFFF00)) << np.uint64(12))
    )
    return dev


def _ns(ts: npt.NDArray[np.void]) -> npt.NDArray[np.int64]:
    return ts["tv_sec"].astype(np.int64) * 1_000_000_000 + ts["tv_nsec"].astype(np.int64)


def stat_files(
    paths: Iterable[_StrOrBytesPath | int],
    *,
    follow_symlinks: bool = True,
    errors: Literal["raise", "return"] = "raise",
    method: Literal["direct", "ring"] | None = None,
    ring: iouring.IoUring | None = None,
    queue_depth: int | None = None,
) -> npt.NDArray[np.void]:
    """``os.stat`` of many paths (or open fds) at once: one ``statx`` per path.

    ``method="direct"`` (the default without ``ring``) makes the statx system calls from one
    C++ loop without the GIL (``_core.statx_paths``): when the metadata is cached, as it
    usually is, that is the fastest way (about 2x an ``os.stat`` loop here). ``method="ring"``
    (the default with ``ring=``) submits them as ``statx_batch`` operations, up to
    ``queue_depth`` in flight: io_uring runs each on a worker thread, which costs more per call
    (about 3.5 us here) but overlaps lookups that have to wait for a disk or a network file
    system.

    Returns a NumPy array of :data:`STAT_DTYPE`, one record per path in order, so that
    ``st["size"].sum()`` or ``st["mtime_ns"] > t`` need no loop; ``stat.S_ISDIR(st["mode"])``
    works on the whole column. ``follow_symlinks=False`` stats links themselves (like
    ``os.lstat``). With ``errors="raise"`` (the default) the first failing path in order raises
    its ``OSError`` (``FileNotFoundError``, ...) with ``filename`` set, after every statx has
    completed; with ``errors="return"`` a failed record has its ``errno`` set and every other
    field 0. Raises TypeError/ValueError naming the argument for bad paths or options.
    """
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', not {errors!r}")
    if method is None:
        method = "direct" if ring is None else "ring"
    if method not in ("direct", "ring"):
        raise ValueError(f"method must be 'direct' or 'ring', not {method!r}")
    items = list(paths)
    n = len(items)
    is_fd, fds = _split_fds(items)
    dir_fd = np.where(is_fd, fds, np.int32(AT_FDCWD)).astype(np.int32)
    names: list[Any] = items
    if is_fd.any():
        names = list(items)
        for i in np.flatnonzero(is_fd).tolist():
            names[i] = ""
    flags = np.where(is_fd, _AT_EMPTY_PATH, 0 if follow_symlinks else _AT_SYMLINK_NOFOLLOW)
    flags = flags.astype(np.int32)
    records = np.zeros(n, dtype=STATX_DTYPE)
    if method == "direct":
        if ring is not None:
            _check_ring(ring)
        if queue_depth is not None:
            _check_count(queue_depth, "queue_depth", 1)
        res = statx_paths(dir_fd, names, flags, _STATX_BASIC, records)
    else:
        with _ring_for(ring, queue_depth, n) as r:
            depth = _depth(r, queue_depth)

            def prepare(ops: _Ops) -> int:
                span = _span(ops)
                with _paths_from(span.start, "paths"):
                    return r.statx_batch(
                        ops, dir_fd[span], names[span], flags[span], _STATX_BASIC, records[span]
                    )

            res = run_batches(r, prepare, n, depth=depth)
    failed = res < 0
    if errors == "raise" and failed.any():
        i = int(np.flatnonzero(failed)[0])
        raise _oserror(-int(res[i]), _path_name(items[i]))
    out = np.zeros(n, dtype=STAT_DTYPE)
    out["size"] = records["stx_size"]
    out["mode"] = records["stx_mode"]
    out["nlink"] = records["stx_nlink"]
    out["uid"] = records["stx_uid"]
    out["gid"] = records["stx_gid"]
    out["ino"] = records["stx_ino"]
    out["dev"] = _makedev(records["stx_dev_major"], records["stx_dev_minor"])
    out["blocks"] = records["stx_blocks"]
    out["atime_ns"] = _ns(records["stx_atime"])
    out["mtime_ns"] = _ns(records["stx_mtime"])
    out["ctime_ns"] = _ns(records["stx_ctime"])
    if failed.any():
        out[failed] = np.zeros(1, dtype=STAT_DTYPE)
        out["errno"][failed] = -res[failed]
    return out


# --------------------------------------------------------------------------------------------
# The transfer: reads or writes described by columns, with short transfers continued


class _Transfer:
    """Operation i moves ``length[i]`` bytes of file ``file[i]`` (fd ``fds[file[i]]``) at
    ``offset[i]`` to or from ``buffers[buf[i]][buf_offset[i]:]``; runs them all with
    :func:`run_batches`, continuing short transfers (the columns move forward in place) and
    retrying EINTR/EAGAIN. Afterwards ``error[i]`` holds the errno of a failed operation,
    ``eof`` the lowest offset at which a read of each file found the end."""

    def __init__(
        self,
        ring: iouring.IoUring,
        write: bool,
        fds: npt.NDArray[np.int32],
        file: npt.NDArray[np.intp],
        offset: npt.NDArray[np.int64],
        length: npt.NDArray[np.int64],
        buf_offset: npt.NDArray[np.int64],
        buffers: Sequence[Any],
        buf: npt.NDArray[np.intp] | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.ring = ring
        self.write = write
        self.fds = fds
        self.file = file
        self.offset = offset.astype(np.int64)
        self.length = length.astype(np.int64)
        self.buf_offset = buf_offset.astype(np.int64)
        self.buffers = buffers
        self.buf = buf
        self.progress = progress
        self.done = 0
        self.error = np.zeros(len(file), dtype=np.int32)
        self.eof = np.full(len(fds), np.iinfo(np.int64).max, dtype=np.int64)
        self.sqe_flags = 0  # SqeFlags.FIXED_FILE when fds are registered file slots
        self.base = 0  # operation i runs as operation number base + i (see _read_pipelined)
        # (slot, shift) when buffers[0] is registered with the ring (_fixed_slot): READ_FIXED
        # or WRITE_FIXED at buf_offset + shift in that slot.
        self.fixed: tuple[int, int] | None = None

    def run(self, depth: int) -> None:
        if len(self.file):
            run_batches(
                self.ring, self._prepare, len(self.file), on_complete=self._complete, depth=depth
            )

    def _prepare(self, ops: _Ops) -> int:
        contiguous = int(ops[-1]) - int(ops[0]) + 1 == len(ops)
        if contiguous:
            index: Any = slice(int(ops[0]) - self.base, int(ops[0]) - self.base + len(ops))
        else:
            index = ops.astype(np.intp) - self.base
        method = self.ring.write_batch if self.write else self.ring.read_batch
        if self.buf is None:
            fds: Any = int(self.fds[0]) if len(self.fds) == 1 else self.fds[self.file[index]]
            if self.fixed is not None:
                slot, shift = self.fixed
                fixed = self.ring.write_fixed_batch if self.write else self.ring.read_fixed_batch
                return fixed(
                    ops,
                    fds,
                    slot,
                    self.offset[index],
                    self.length[index],
                    self.buf_offset[index] + shift,
                    sqe_flags=self.sqe_flags,
                )
            return method(
                ops,
                fds,
                self.buffers[0],
                self.offset[index],
                self.length[index],
                self.buf_offset[index],
                sqe_flags=self.sqe_flags,
            )
        # One call per run of operations that share a buffer.
        bufs = self.buf[index]
        cuts = [0, *(np.flatnonzero(np.diff(bufs)) + 1).tolist(), len(ops)]
        prepared = 0
        for a, b in pairwise(cuts):
            part = ops[a:b].astype(np.intp) - self.base
            k = method(
                ops[a:b],
                self.fds[self.file[part]],
                self.buffers[int(bufs[a])],
                self.offset[part],
                self.length[part],
                self.buf_offset[part],
            )
            prepared += k
            if k < b - a or not self.ring.sq_space_left():
                break
        return prepared

    def _complete(self, ops: _Ops, res: _Res) -> _Ops | None:
        index = ops.astype(np.intp) - self.base
        full = res == self.length[index]
        if full.all():
            self.done += int(res.sum(dtype=np.int64))
        else:
            self.done += int(res[res > 0].sum(dtype=np.int64))
        again = None
        if not full.all():
            short = ~full
            i, r = index[short], res[short].astype(np.int64)
            failed = r < 0
            retry_errno = failed & ((r == -errno.EINTR) | (r == -errno.EAGAIN))
            hard = failed & ~retry_errno
            self.error[i[hard]] = -r[hard]
            ended = r == 0
            if ended.any():
                if self.write:  # a write that moves nothing would loop forever
                    self.error[i[ended]] = errno.EIO
                else:  # the file ended early (it shrank since it was sized)
                    np.minimum.at(self.eof, self.file[i[ended]], self.offset[i[ended]])
            moved = r > 0
            if moved.any():
                j, step = i[moved], r[moved]
                self.offset[j] += step
                self.buf_offset[j] += step
                self.length[j] -= step
            rerun = i[retry_errno | moved]
            if len(rerun):
                again = (np.sort(rerun) + self.base).astype(np.uint64)
        if self.progress is not None:
            self.progress(self.done)
        return again

    def first_error(self) -> tuple[int, int] | None:
        """``(file, errno)`` of the first failed operation in operation order."""
        failed = np.flatnonzero(self.error)
        if len(failed) == 0:
            return None
        i = int(failed[np.argmin(self.file[failed])])  # the first file, its first failure
        return int(self.file[i]), int(self.error[i])


def _chunks(
    sizes: npt.NDArray[np.int64], chunk_size: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Splits item k of ``sizes`` bytes into operations of at most chunk_size: each
    operation's item, offset within the item and length (items of size 0 get none)."""
    counts = -(-sizes // chunk_size)
    item = np.repeat(np.arange(len(sizes), dtype=np.intp), counts)
    first = np.cumsum(counts) - counts
    within = (np.arange(len(item), dtype=np.int64) - np.repeat(first, counts)) * chunk_size
    length = np.minimum(sizes[item] - within, chunk_size)
    return item, within, length


# --------------------------------------------------------------------------------------------
# Reading


def _layout(sizes: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], int]:
    """Where each file starts in one block: files of _LARGE bytes or more on page boundaries
    (they come first), the rest 64-byte aligned after them. Returns (bases, total)."""
    large = sizes >= _LARGE
    slot = np.where(large, -(-sizes // PAGE) * PAGE, -(-sizes // 64) * 64)
    order = np.argsort(~large, kind="stable")
    ends = np.cumsum(slot[order])
    bases = np.empty(len(sizes), dtype=np.int64)
    bases[order] = ends - slot[order]
    return bases, int(ends[-1]) if len(ends) else 0


def _views(
    block: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> list[npt.NDArray[np.uint8]]:
    """``[block[s : s + n] for s, n in ...]`` without a Python loop; when every piece has one
    length and they follow each other, the rows of a 2-D view (about twice as fast)."""
    n = len(starts)
    if n > 1 and lengths[0] > 0 and (lengths == lengths[0]).all():
        size = int(lengths[0])
        first = int(starts[0])
        if (starts == first + size * np.arange(n)).all():
            return list(block[first : first + n * size].reshape(n, size))
    ends = (starts + lengths).tolist()
    return list(map(block.__getitem__, map(slice, starts.tolist(), ends)))


def _read_stream(
    ring: iouring.IoUring, fd: int, name: str | int, chunk_size: int
) -> npt.NDArray[np.uint8]:
    """Reads a file of unknown size (pipe, /proc file) sequentially until EOF."""
    pieces: list[npt.NDArray[np.uint8]] = []
    seekable = _seekable(fd)
    offset = 0
    while True:
        buf = aligned_empty(chunk_size)
        ring.read(0, fd, buf.data, offset if seekable else -1)
        ring.submit_and_wait(1)
        res = ring.copy_cqe().res
        if -res in _RETRY:
            continue
        if res < 0:
            raise _oserror(-res, name)
        if res == 0:
            break
        pieces.append(buf[:res])
        offset += res
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint8)


def _seekable(fd: int) -> bool:
    try:
        os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return False
    return True


class _Progress:
    """Progress over a whole call: ``total`` from the sizes known up front (grown if more turns
    up); ``reporter()`` for the batches of one part of the work, ``add`` when a part is done.
    What is reported never goes backwards."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.before = 0
        self.reported = 0

    def _report(self, done: int) -> None:
        if self.progress is not None:
            self.reported = max(self.reported, done)
            self.total = max(self.total, self.reported)
            self.progress(self.reported, self.total)

    def reporter(self) -> Callable[[int], None] | None:
        if self.progress is None:
            return None
        before = self.before
        return lambda done: self._report(before + done)

    def add(self, done: int) -> None:
        self.before += done
        self._report(self.before)


@overload
def read_files(
    paths: Iterable[_StrOrBytesPath | int],
    *,
    as_bytes: Literal[False] = ...,
    ring: iouring.IoUring | None = ...,
    chunk_size: int = ...,
    queue_depth: int | None = ...,
    max_open: int | None = ...,
    progress: Progress | None = ...,
) -> list[npt.NDArray[np.uint8]]: ...
@overload
def read_files(
    paths: Iterable[_StrOrBytesPath | int],
    *,
    as_bytes: Literal[True],
    ring: iouring.IoUring | None = ...,
    chunk_size: int = ...,
    queue_depth: int | None = ...,
    max_open: int | None = ...,
    progress: Progress | None = ...,
) -> list[bytes]: ...
def read_files(
    paths: Iterable[_StrOrBytesPath | int],
    *,
    as_bytes: bool = False,
    ring: iouring.IoUring | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    queue_depth: int | None = None,
    max_open: int | None = None,
    progress: Progress | None = None,
) -> list[npt.NDArray[np.uint8]] | list[bytes]:
    """Reads whole files, all at once through one ring.

    ``paths`` are paths (str, bytes, os.PathLike) or open fds (read from offset 0, left open).
    Returns one ``uint8`` array per file, views into page-aligned blocks (``.view(dtype)``
    reinterprets them; files of 16 KiB or more start on a page boundary), or ``bytes`` with
    ``as_bytes=True``. Up to ``max_open`` files at a time (default: a quarter of the soft
    ``RLIMIT_NOFILE``, at most 2048) are open: groups of ``max_open // 2`` files are opened
    (``openat_batch``, while the group before is being read), sized (``statx`` of the
    open fds, see ``_core.statx_fds``), read in ``chunk_size`` pieces (``read_batch``) and closed
    (``close_batch``), with up to ``queue_depth`` operations in flight (default: a ring sized
    for the work, up to 1024). Short reads are continued; a file that shrank while being read
    comes back shorter. Files of unknown size (pipes, ``/proc`` files) are read sequentially
    to EOF.

    Raises the ``OSError`` of the first file in order that failed (``FileNotFoundError``,
    ``IsADirectoryError``, ...) with ``filename`` set (the path, or the fd), once every
    operation in flight has completed, with every file it opened closed; TypeError/ValueError
    naming the argument for bad arguments or a busy ``ring``.
    """
    path_list = list(paths)
    _check_chunk(chunk_size)
    max_open = _check_max_open(max_open)
    _check_progress(progress)
    is_fd, given = _split_fds(path_list)
    results: list[npt.NDArray[np.uint8]] = []
    with _ring_for(ring, queue_depth, 4 * min(len(path_list), max_open)) as r:
        depth = _depth(r, queue_depth)
        report = _Progress(progress, 0)
        if progress is not None and path_list:
            st = stat_files(path_list, errors="return", method="direct")
            regular = (st["mode"] & 0o170000) == stat.S_IFREG
            report.total = int(st["size"][regular].sum())
        results = _read_pipelined(
            r, path_list, is_fd, given, chunk_size, depth, report, max(1, max_open // 2)
        )
    if as_bytes:
        return list(map(bytes, results))
    return results


def _encoded_paths(items: Sequence[Any], where: npt.NDArray[np.intp]) -> list[bytes]:
    """``os.fsencode`` of ``items[where]``, checked up front (TypeError/ValueError naming
    ``paths[i]``), so that no open of a later group can fail on its argument while reads are
    in flight."""
    picked = [items[i] for i in where.tolist()]
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    try:
        # str.encode inline for the common case: os.fsencode is a Python call per path.
        encoded = [
            item.encode(encoding, errors) if type(item) is str else os.fsencode(item)
            for item in picked
        ]
    except TypeError:
        for i, item in zip(where.tolist(), picked, strict=True):
            if not isinstance(item, (str, bytes, os.PathLike)):
                raise TypeError(
                    f"paths[{i}] must be a str, bytes, os.PathLike or an open fd, "
                    f"not {type(item).__name__}"
                ) from None
        raise
    if b"\0" in b"".join(encoded):  # one scan; the index only when there is one
        bad = [i for i, e in zip(where.tolist(), encoded, strict=True) if b"\0" in e]
        raise ValueError(f"paths[{bad[0]}]: embedded null byte")
    return encoded


class _ReadGroup:
    """One group of read_files: its files' fds sized, laid out in a block, and the reads."""

    def __init__(
        self,
        ring: iouring.IoUring,
        items: Sequence[Any],
        fds: npt.NDArray[np.int32],
        first: int,
        chunk_size: int,
        report: _Progress,
    ) -> None:
        n = len(fds)
        self.items, self.fds, self.first, self.chunk_size = items, fds, first, chunk_size
        errors = np.where(fds < 0, -fds, 0).astype(np.int32)
        usable = np.flatnonzero(fds >= 0)
        records, res = _statx_fds(fds[usable], _STATX_TYPE_SIZE)
        errors[usable[res < 0]] = -res[res < 0]
        kind = records["stx_mode"].astype(np.int64) & 0o170000
        isdir = np.zeros(n, dtype=bool)
        isdir[usable] = (kind == stat.S_IFDIR) & (res >= 0)
        errors[isdir] = errno.EISDIR
        if errors.any():
            i = int(np.flatnonzero(errors)[0])
            raise _oserror(int(errors[i]), _path_name(items[first + i]))
        regular = np.zeros(n, dtype=bool)
        regular[usable] = kind == stat.S_IFREG
        sizes = np.zeros(n, dtype=np.int64)
        sizes[usable] = records["stx_size"].astype(np.int64)
        sizes[~regular] = 0
        # Regular files that say 0 bytes may still have content (procfs, sysfs): a probe read
        # of one page each, into the scratch page at the end of the block, tells them apart.
        probe = regular & (sizes == 0)
        bases, total = _layout(sizes)
        block = _CACHE.take(total + (PAGE if probe.any() else 0))
        item, within, length = _chunks(np.where(probe, PAGE, sizes), chunk_size)
        buf_offset = np.where(probe[item], total, bases[item] + within)
        self.regular, self.sizes, self.probe, self.bases, self.block = (
            regular,
            sizes,
            probe,
            bases,
            block,
        )
        self.report = report
        self.transfer = _Transfer(
            ring, False, fds, item, within, length, buf_offset, [block], None, report.reporter()
        )
        self.transfer.fixed = _fixed_slot(ring, block)

    def finish(self, ring: iouring.IoUring) -> list[npt.NDArray[np.uint8]]:
        """After the reads: the error of the first failed file, or the files' arrays (files
        of unknown size read to their end, sequentially)."""
        transfer, items, first = self.transfer, self.items, self.first
        failed = transfer.first_error()
        if failed is not None:
            raise _oserror(failed[1], _path_name(items[first + failed[0]]))
        lengths = np.minimum(self.sizes, transfer.eof)
        stream = ~self.regular
        probed = np.flatnonzero(self.probe)
        probe_bytes = 0
        if len(probed):
            # A probe that read something is a file whose size statx does not know.
            content = probed[transfer.eof[probed] != 0]
            stream[content] = True
            probe_bytes = int(np.minimum(transfer.eof[content], PAGE).sum())
        self.report.add(transfer.done - probe_bytes)
        results = _views(self.block, self.bases, lengths)
        for i in np.flatnonzero(stream).tolist():
            name = _path_name(items[first + i])
            data = _read_stream(ring, int(self.fds[i]), name, min(self.chunk_size, 1 << 16))
            results[i] = data
            self.report.add(len(data))
        return results


def _read_pipelined(
    ring: iouring.IoUring,
    items: Sequence[Any],
    is_fd: npt.NDArray[np.bool_],
    given: npt.NDArray[np.int32],
    chunk_size: int,
    depth: int,
    report: _Progress,
    group: int,
) -> list[npt.NDArray[np.uint8]]:
    """read_files in groups of ``group`` files, one run_batches per group whose operations
    are the closes of the group before, the reads of this group and the opens of the next
    (in that order): a cold cache keeps reads in flight while the next files open."""
    n = len(items)
    fds = given.copy()
    mine = ~is_fd  # the fds read_files opens, and closes
    encoded = _encoded_paths(items, np.flatnonzero(mine))
    names: list[Any] = [None] * n
    for i, e in zip(np.flatnonzero(mine).tolist(), encoded, strict=True):
        names[i] = e
    bounds = [*range(0, n, group), n]
    groups = list(pairwise(bounds))
    results: list[npt.NDArray[np.uint8]] = []
    open_now = np.zeros(n, dtype=bool)  # opened by us and not closed yet
    try:
        closing = np.zeros(0, dtype=np.intp)
        for g in range(-1, len(groups)):
            current = None
            if g >= 0:
                a, b = groups[g]
                current = _ReadGroup(ring, items, fds[a:b], a, chunk_size, report)
            opening = np.zeros(0, dtype=np.intp)
            if g + 1 < len(groups):
                a, b = groups[g + 1]
                opening = a + np.flatnonzero(mine[a:b])
            _run_group(ring, fds, names, closing, current, opening, open_now, depth)
            closing = np.zeros(0, dtype=np.intp)
            if current is not None:
                results += current.finish(ring)
                a, b = groups[g]
                closing = a + np.flatnonzero(open_now[a:b])
        _run_group(ring, fds, names, closing, None, np.zeros(0, dtype=np.intp), open_now, depth)
        return results
    finally:
        left = np.flatnonzero(open_now)
        if len(left):
            _close_batch(ring, fds[left], depth)


def _run_group(
    ring: iouring.IoUring,
    fds: npt.NDArray[np.int32],
    names: Sequence[Any],
    closing: npt.NDArray[np.intp],
    current: _ReadGroup | None,
    opening: npt.NDArray[np.intp],
    open_now: npt.NDArray[np.bool_],
    depth: int,
) -> None:
    """One run_batches: operations 0..C-1 close fds[closing], C..C+R-1 are the reads of
    ``current``, C+R.. open names[opening] into fds[opening]."""
    c = len(closing)
    transfer = current.transfer if current is not None else None
    r = len(transfer.file) if transfer is not None else 0
    o = len(opening)
    total = c + r + o
    if total == 0:
        return
    close_fds = fds[closing]
    open_names = [names[i] for i in opening.tolist()]
    if transfer is not None:
        transfer.base = c

    def prepare(ops: _Ops) -> int:
        done = 0
        while done < len(ops):
            rest = ops[done:]
            start = int(rest[0])
            if start < c:
                stop = min(c, start + len(rest))
                k = ring.close_batch(rest[: stop - start], close_fds[start:stop])
            elif start < c + r:
                assert transfer is not None
                stop = min(c + r, start + len(rest))
                k = transfer._prepare(rest[: stop - start])
            else:
                stop = start + len(rest)
                a = start - c - r
                k = ring.openat_batch(
                    rest, AT_FDCWD, cast("Any", open_names[a : a + len(rest)]), _OPEN_READ, 0
                )
            done += k
            if k < stop - start or not ring.sq_space_left():
                break
        return done

    def complete(ops: _Ops, res: _Res) -> _Ops | None:
        if transfer is None or r == 0:
            return None
        reads = (ops >= c) & (ops < c + r)
        if reads.all():
            return transfer._complete(ops, res)
        if reads.any():
            return transfer._complete(ops[reads], res[reads])
        return None

    out = np.full(total, -_ECANCELED, dtype=np.int32)
    try:
        run_batches(ring, prepare, total, on_complete=complete, depth=depth, out=out)
    finally:
        if c:
            # A close that ran released its fd whatever it returned; one cancelled or never
            # prepared (-ECANCELED) still holds it.
            closed = out[:c] != -_ECANCELED
            open_now[closing[closed]] = False
        if o:
            got = out[c + r :]
            fds[opening] = got
            open_now[opening] = got >= 0


@overload
def read_ranges(
    path: _StrOrBytesPath | int,
    offsets: npt.ArrayLike,
    lengths: npt.ArrayLike,
    *,
    as_bytes: Literal[False] = ...,
    out: _Buffer | None = ...,
    ring: iouring.IoUring | None = ...,
    chunk_size: int = ...,
    queue_depth: int | None = ...,
    progress: Progress | None = ...,
) -> list[npt.NDArray[np.uint8]]: ...
@overload
def read_ranges(
    path: _StrOrBytesPath | int,
    offsets: npt.ArrayLike,
    lengths: npt.ArrayLike,
    *,
    as_bytes: Literal[True],
    out: _Buffer | None = ...,
    ring: iouring.IoUring | None = ...,
    chunk_size: int = ...,
    queue_depth: int | None = ...,
    progress: Progress | None = ...,
) -> list[bytes]: ...
def read_ranges(
    path: _StrOrBytesPath | int,
    offsets: npt.ArrayLike,
    lengths: npt.ArrayLike,
    *,
    as_bytes: bool = False,
    out: _Buffer | None = None,
    ring: iouring.IoUring | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    queue_depth: int | None = None,
    progress: Progress | None = None,
) -> list[npt.NDArray[np.uint8]] | list[bytes]:
    """Reads many ``(offset, length)`` ranges of one file (a path, or an open fd left open).

    ``offsets`` and ``lengths`` are 1-D integer arrays (a single length applies to every
    range). Returns one ``uint8`` array per range, views into one packed page-aligned block
    (range i starts at ``sum(lengths[:i])``), or ``bytes`` with ``as_bytes=True``; a range past
    the end of the file comes back shorter. ``out`` (a writable buffer of at least
    ``sum(lengths)`` bytes, reused from call to call) receives the ranges in that packed layout
    instead of a new block. Every range (split into ``chunk_size`` pieces) is one read of a
    ``read_batch``, up to ``queue_depth`` in flight (default: a ring sized for the work, up to
    1024); short reads are continued.

    Raises the ``OSError`` of the first failed read with ``filename`` set, once every read in
    flight has completed; TypeError/ValueError naming the argument for offsets and lengths
    that are negative, mismatched or not integers, an ``out`` too small or read-only, or a busy
    ``ring``.
    """
    off = _int_column(offsets, "offsets")
    lens = _int_column(lengths, "lengths")
    if lens.ndim == 0 or len(lens) == 1:
        lens = np.broadcast_to(lens.reshape(-1)[:1], off.shape) if lens.size else lens
    if off.ndim != 1 or lens.shape != off.shape:
        raise ValueError(
            f"offsets and lengths must be 1-D of one length (or lengths a single value), got "
            f"shapes {off.shape} and {lens.shape}"
        )
    if (off < 0).any():
        raise ValueError("offsets must be >= 0")
    if (lens < 0).any():
        raise ValueError("lengths must be >= 0")
    chunk_size = _check_chunk(chunk_size)
    _check_progress(progress)
    starts = np.zeros(len(off), dtype=np.int64)
    if len(off) > 1:
        np.cumsum(lens[:-1], out=starts[1:])
    total = int(lens.sum())
    if out is not None:
        block = _out_block(out, total)
    name = _path_name(path)
    file_offset, length, buf_offset = _range_reads(off, lens, starts, chunk_size)
    with _ring_for(ring, queue_depth, len(length)) as r:
        depth = _depth(r, queue_depth)
        fd = path if isinstance(path, int) else os.open(path, _OPEN_READ)
        try:
            if out is None:
                block = _CACHE.take(total)
            report = _Progress(progress, total)
            with _registered_file(r, fd) as slot:
                transfer = _Transfer(
                    r,
                    False,
                    np.array([fd if slot is None else slot], dtype=np.int32),
                    np.zeros(len(length), dtype=np.intp),
                    file_offset,
                    length,
                    buf_offset,
                    [block],
                    None,
                    report.reporter(),
                )
                if slot is not None:
                    transfer.sqe_flags = int(SqeFlags.FIXED_FILE)
                if out is None:
                    transfer.fixed = _fixed_slot(r, block)
                transfer.run(depth)
        finally:
            if not isinstance(path, int):
                os.close(fd)
    failed = transfer.first_error()
    if failed is not None:
        raise _oserror(failed[1], name)
    end = int(transfer.eof[0])
    got = np.clip(end - off, 0, lens) if end < np.iinfo(np.int64).max else lens
    results = _views(block, starts, got.astype(np.int64))
    if as_bytes:
        return list(map(bytes, results))
    return results


def _range_reads(
    off: npt.NDArray[np.int64],
    lens: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    chunk_size: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """read_ranges' reads: each one's file offset, length and offset in the block, in the
    order of their file offsets. Reads in file order run about 4% faster in the kernel than
    in random order (2,000 cached 16 KiB reads here: neighbouring page-cache lookups share
    the upper levels of the file's page tree)."""
    if len(lens) and int(lens.max()) <= chunk_size and int(lens.min()) > 0:
        # One read per range (the usual case).
        file_offset, length, buf_offset = off, np.ascontiguousarray(lens), starts
    else:
        item, within, length = _chunks(np.ascontiguousarray(lens), chunk_size)
        file_offset, buf_offset = off[item] + within, starts[item] + within
    if len(file_offset) > 1 and (file_offset[1:] < file_offset[:-1]).any():
        order = np.argsort(file_offset, kind="stable")
        return file_offset[order], length[order], buf_offset[order]
    return file_offset, length, buf_offset


def _int_column(values: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    array = np.asarray(values)
    if array.size == 0 and array.dtype.kind == "f":  # [] is float64 to NumPy
        array = array.astype(np.int64)
    if array.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integers, not {array.dtype}")
    if array.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name} values must be < 2**63")
    return array.astype(np.int64, copy=False)


def _out_block(out: object, total: int) -> npt.NDArray[np.uint8]:
    try:
        view = memoryview(out)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"out must be a writable buffer, not {type(out).__name__}") from None
    if view.readonly:
        raise ValueError("out must be writable")
    if not view.c_contiguous:
        raise ValueError("out must be C-contiguous")
    block = np.frombuffer(
        view.cast("B") if view.format != "B" or view.ndim != 1 else view, dtype=np.uint8
    )
    if block.size < total:
        raise ValueError(f"out holds {block.size} bytes; the ranges need {total}")
    return block


# --------------------------------------------------------------------------------------------
# Writing


def write_files(
    files: Mapping[_P, _Buffer] | Iterable[tuple[_StrOrBytesPath, _Buffer]],
    *,
    mode: int = 0o666,
    fsync: bool = False,
    ring: iouring.IoUring | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    queue_depth: int | None = None,
    max_open: int | None = None,
    progress: Progress | None = None,
) -> None:
    """Writes many files at once: each path is created (or truncated) with ``mode`` and gets
    the bytes of its buffer (any bytes-like object: ``bytes``, ``bytearray``, NumPy arrays).

    Up to ``max_open`` files at a time (default as in :func:`read_files`) are opened
    (``openat_batch``), written in
    ``chunk_size`` pieces (``write_batch``: buffers under 64 KiB are first gathered into one
    block, larger ones are written from where they lie), fsynced with ``fsync=True``
    (``fsync_batch``) and closed (``close_batch``), with up to ``queue_depth`` operations in
    flight; short writes are continued. Raises the ``OSError`` of the first file in order that
    failed (``PermissionError``, ``OSError(ENOSPC)``...) with ``filename`` set, after the
    operations in flight have completed; files are closed in every case. TypeError/ValueError
    naming the argument for bad arguments.
    """
    items = list(files.items()) if isinstance(files, Mapping) else list(files)
    _check_chunk(chunk_size)
    max_open = _check_max_open(max_open)
    _check_progress(progress)
    mode = _check_count(mode, "mode", 0)
    paths: list[Any] = []
    views: list[memoryview] = []
    try:
        for i, entry in enumerate(items):
            try:
                path, data = entry
            except (TypeError, ValueError):
                raise TypeError(f"files[{i}] must be a (path, buffer) pair") from None
            if isinstance(path, int):
                raise TypeError(f"files[{i}]: the path must be a str, bytes or os.PathLike")
            try:
                view = memoryview(data).cast("B")
            except TypeError as exc:
                raise TypeError(
                    f"files[{i}]: the data must be a contiguous buffer: {exc}"
                ) from None
            paths.append(path)
            views.append(view)
        report = _Progress(progress, sum(v.nbytes for v in views))
        with _ring_for(ring, queue_depth, 2 * min(len(items), max_open)) as r:
            depth = _depth(r, queue_depth)
            for first in range(0, len(items), max_open):
                stop = first + max_open
                _write_group(
                    r,
                    paths[first:stop],
                    views[first:stop],
                    first,
                    mode,
                    fsync,
                    chunk_size,
                    depth,
                    report,
                )
    finally:
        for view in views:
            view.release()


_GATHER: Final = 64 * 1024


def _write_group(
    ring: iouring.IoUring,
    paths: Sequence[Any],
    views: Sequence[memoryview],
    first: int,
    mode: int,
    fsync: bool,
    chunk_size: int,
    depth: int,
    report: _Progress,
) -> None:
    """write_files for up to max_open files: open, write, fsync and close, each a batch."""
    n = len(paths)
    fds = np.full(n, -1, dtype=np.int32)
    try:
        _open_batch(
            ring, paths, np.arange(n, dtype=np.intp), _OPEN_WRITE, mode, depth, fds, first, "files"
        )
        if (fds < 0).any():
            i = int(np.flatnonzero(fds < 0)[0])
            raise _oserror(-int(fds[i]), _path_name(paths[i]))
        sizes = np.fromiter(map(len, views), dtype=np.int64, count=n)
        small = sizes < _GATHER
        # Buffer 0 gathers the small files; buffer 1 + k is large file k's own.
        buffers: list[Any] = [b"".join([views[i] for i in np.flatnonzero(small).tolist()])]
        large = np.flatnonzero(~small)
        buffers += [views[i] for i in large.tolist()]
        buf_of_file = np.zeros(n, dtype=np.intp)
        buf_of_file[large] = np.arange(1, len(large) + 1)
        base = np.zeros(n, dtype=np.int64)
        small_sizes = np.where(small, sizes, 0)
        base[small] = (np.cumsum(small_sizes) - small_sizes)[small]
        order = np.argsort(buf_of_file, kind="stable")  # operations grouped by buffer
        item, within, length = _chunks(sizes[order], chunk_size)
        file = order[item]
        transfer = _Transfer(
            ring,
            True,
            fds,
            file,
            within,
            length,
            base[file] + within,
            buffers,
            buf_of_file[file],
            report.reporter(),
        )
        transfer.run(depth)
        failed = transfer.first_error()
        if failed is not None:
            raise _oserror(failed[1], _path_name(paths[failed[0]]))
        if fsync:
            res = run_batches(
                ring, lambda ops: ring.fsync_batch(ops, fds[_span(ops)]), n, depth=depth
            )
            if (res < 0).any():
                i = int(np.flatnonzero(res < 0)[0])
                raise _oserror(-int(res[i]), _path_name(paths[i]))
        report.add(transfer.done)
    finally:
        _close_batch(ring, fds, depth)


# --------------------------------------------------------------------------------------------
# Copying


class _CopySlot:
    """One chunk of a copy in progress: what has been read into its buffer (or pipe) and what
    has been written out of it."""

    __slots__ = ("length", "nread", "nwritten", "offset", "read_res", "waiting", "write_res")

    def __init__(self) -> None:
        self.offset = 0
        self.length = 0
        self.nread = 0
        self.nwritten = 0
        self.waiting = 0  # completions still expected for the step in flight
        self.read_res: int | None = None
        self.write_res: int | None = None


def copy_file(
    src: _StrOrBytesPath,
    dst: _StrOrBytesPath,
    *,
    method: Literal["auto", "readwrite", "splice"] = "auto",
    ring: iouring.IoUring | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    queue_depth: int = 8,
    progress: Progress | None = None,
) -> int:
    """Copies the contents of ``src`` to ``dst`` (created or truncated, like
    ``shutil.copyfile``); returns the number of bytes copied.

    Each chunk is one linked pair of operations: a read into a page-aligned buffer linked
    (``IO_LINK``) to the write of that buffer (``method="readwrite"``), or a splice from
    ``src`` into a pipe linked to a splice from the pipe into ``dst`` (``method="splice"``:
    the data never enters user space). ``queue_depth`` chains are in flight at a time, all
    pushed in one ``push_sqes`` call per round. A short read breaks its link (the kernel
    cancels the write); the helper writes what arrived and continues. ``"auto"`` picks
    splice for two regular files when the kernel has it, read/write otherwise (devices may
    refuse splice with EINVAL). Measured here on a 256 MiB file, warm or cold: splice 0.87-1.20x
    ``shutil.copyfile`` (which copies with ``sendfile`` in the kernel), read/write 0.72-0.96x:
    on par at best, both bound by the page-cache writes of the destination. For many files
    use :func:`copy_files`.

    Raises the ``OSError`` of the first failure with ``filename`` set to ``src`` (reads) or
    ``dst`` (writes), after the operations in flight have completed; ``ValueError`` for bad
    arguments.
    """
    if method not in ("auto", "readwrite", "splice"):
        raise ValueError("method must be 'auto', 'readwrite' or 'splice'")
    _check_chunk(chunk_size)
    if queue_depth < 1:
        raise ValueError("queue_depth must be >= 1")
    src_name, dst_name = _path_name(src), _path_name(dst)
    src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    dst_fd = -1
    try:
        src_stat = os.fstat(src_fd)
        size = src_stat.st_size
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        both_regular = stat.S_ISREG(src_stat.st_mode) and stat.S_ISREG(os.fstat(dst_fd).st_mode)
        with _ring_for(ring, 2 * queue_depth) as r:
            return _copy_fds(
                r,
                src_fd,
                dst_fd,
                src_name,
                dst_name,
                size,
                both_regular,
                method,
                chunk_size,
                queue_depth,
                progress,
            )
    finally:
        for fd in (src_fd, dst_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


_SPLICE_SUPPORT: dict[int, bool] = {}


def _has_splice(ring: iouring.IoUring) -> bool:
    """Whether the kernel has IORING_OP_SPLICE (probed once per process)."""
    known = _SPLICE_SUPPORT.get(0)
    if known is None:
        known = _SPLICE_SUPPORT[0] = Op.SPLICE in ring.probe()
    return known


def _copy_fds(
    ring: iouring.IoUring,
    src_fd: int,
    dst_fd: int,
    src_name: str | int,
    dst_name: str | int,
    size: int,
    both_regular: bool,
    method: str,
    chunk_size: int,
    queue_depth: int,
    progress: Progress | None,
) -> int:
    """copy_file on open fds: splice or read/write chains through ``ring``."""
    use_splice = method == "splice" or (method == "auto" and both_regular and _has_splice(ring))
    depth = max(1, min(queue_depth, ring.sq_entries // 2, ring.cq_entries // 2))
    pipes: list[tuple[int, int]] = []
    try:
        if use_splice:
            for _ in range(depth):
                pipes.append(os.pipe2(os.O_CLOEXEC))
                chunk_size = min(chunk_size, _grow_pipe(pipes[-1][1], chunk_size))
        copier = _Copier(
            ring, src_fd, dst_fd, src_name, dst_name, size, chunk_size, depth, pipes, progress
        )
        return copier.run()
    finally:
        for fd in (fd for pair in pipes for fd in pair):
            with contextlib.suppress(OSError):
                os.close(fd)


_COPY_BATCHED: Final = 4 << 20  # copy_files: smaller files go through the shared block
_COPY_BLOCK: Final = 64 << 20  # at most this many bytes of small files read before written


def copy_files(
    pairs: Mapping[_P, _StrOrBytesPath] | Iterable[tuple[_StrOrBytesPath, _StrOrBytesPath]],
    *,
    ring: iouring.IoUring | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    queue_depth: int | None = None,
    max_open: int | None = None,
    progress: Progress | None = None,
) -> npt.NDArray[np.int64]:
    """Copies many files at once: the contents of each ``src`` to its ``dst`` (created or
    truncated, like ``shutil.copyfile``); returns the bytes copied per pair, an ``int64``
    array in order.

    ``pairs`` is a mapping ``{src: dst}`` or an iterable of ``(src, dst)`` pairs of paths.
    Up to ``max_open // 2`` pairs at a time (``max_open`` as in :func:`read_files`) go
    through batches: the sources are opened (``openat_batch``) and sized (``statx`` of the
    open fds), the destinations opened, files under 4 MiB read into one page-aligned block
    (``read_batch``, at most 64 MiB at a time) and written out of it (``write_batch``), and
    every file closed (``close_batch``), with no Python code per file; larger files are
    copied one by one as :func:`copy_file` does (splice chains). A source that shrank while
    being copied is copied as far as it goes.

    Raises the ``OSError`` of the first pair in order that failed, with ``filename`` set to
    its source (open, read, a directory) or destination (open, write), after the operations
    in flight have completed, with every file it opened closed (pairs before it in the same
    group may have been copied, later ones not); ``shutil.SameFileError`` when a destination
    is its source (before any file of its group is opened for writing); TypeError/ValueError
    naming the argument for bad arguments.
    """
    items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
    chunk_size = _check_chunk(chunk_size)
    max_open = _check_max_open(max_open)
    _check_progress(progress)
    srcs: list[Any] = []
    dsts: list[Any] = []
    for i, entry in enumerate(items):
        try:
            src, dst = entry
        except (TypeError, ValueError):
            raise TypeError(f"pairs[{i}] must be a (src, dst) pair of paths") from None
        for which, value in (("src", src), ("dst", dst)):
            if not isinstance(value, (str, bytes, os.PathLike)):
                raise TypeError(
                    f"pairs[{i}]: {which} must be a str, bytes or os.PathLike, "
                    f"not {type(value).__name__}"
                )
        srcs.append(src)
        dsts.append(dst)
    n = len(items)
    copied = np.zeros(n, dtype=np.int64)
    group = max(1, max_open // 2)
    report = _Progress(progress, 0)
    with _ring_for(ring, queue_depth, 2 * min(n, group)) as r:
        depth = _depth(r, queue_depth)
        for first in range(0, n, group):
            stop = min(n, first + group)
            copied[first:stop] = _copy_group(
                r, srcs[first:stop], dsts[first:stop], first, chunk_size, depth, report
            )
    return copied


def _copy_group(
    ring: iouring.IoUring,
    srcs: Sequence[Any],
    dsts: Sequence[Any],
    first: int,
    chunk_size: int,
    depth: int,
    report: _Progress,
) -> npt.NDArray[np.int64]:
    """copy_files for up to max_open // 2 pairs."""
    import shutil

    n = len(srcs)
    every = np.arange(n, dtype=np.intp)
    src_fds = np.full(n, -1, dtype=np.int32)
    dst_fds = np.full(n, -1, dtype=np.int32)
    copied = np.zeros(n, dtype=np.int64)
    try:
        _open_batch(ring, srcs, every, _OPEN_READ, 0, depth, src_fds, first, "pairs")
        errors = np.where(src_fds < 0, -src_fds, 0).astype(np.int32)
        usable = np.flatnonzero(src_fds >= 0)
        records, res = _statx_fds(src_fds[usable], _STATX_BASIC)
        errors[usable[res < 0]] = -res[res < 0]
        kind = records["stx_mode"].astype(np.int64) & 0o170000
        errors[usable[(kind == stat.S_IFDIR) & (res >= 0)]] = errno.EISDIR
        if errors.any():
            i = int(np.flatnonzero(errors)[0])
            raise _oserror(int(errors[i]), _path_name(srcs[i]))
        # A destination that is its source would be truncated before it is read.
        there = np.zeros(n, dtype=STATX_DTYPE)
        found = statx_paths(
            np.full(n, AT_FDCWD, dtype=np.int32),
            dsts,
            np.zeros(n, dtype=np.int32),
            _STATX_INO,
            there,
        )
        same = (
            (found == 0)
            & (there["stx_ino"] == records["stx_ino"])
            & (there["stx_dev_major"] == records["stx_dev_major"])
            & (there["stx_dev_minor"] == records["stx_dev_minor"])
        )
        if same.any():
            i = int(np.flatnonzero(same)[0])
            raise shutil.SameFileError(
                f"{_path_name(srcs[i])!r} and {_path_name(dsts[i])!r} are the same file"
            )
        _open_batch(ring, dsts, every, _OPEN_WRITE, 0o666, depth, dst_fds, first, "pairs")
        if (dst_fds < 0).any():
            i = int(np.flatnonzero(dst_fds < 0)[0])
            raise _oserror(-int(dst_fds[i]), _path_name(dsts[i]))
        regular = kind == stat.S_IFREG
        sizes = records["stx_size"].astype(np.int64)
        report.total += int(sizes.sum())
        small = np.flatnonzero(sizes < _COPY_BATCHED)
        small = small[sizes[small] > 0]
        # Runs of small files of at most _COPY_BLOCK bytes: read them all, then write them all.
        ends = np.cumsum(sizes[small])
        cut = 0
        while cut < len(small):
            stop = int(np.searchsorted(ends, ends[cut] - sizes[small[cut]] + _COPY_BLOCK, "right"))
            stop = max(stop, cut + 1)
            part = small[cut:stop]
            copied[part] = _copy_small(
                ring,
                src_fds[part],
                dst_fds[part],
                sizes[part],
                srcs,
                dsts,
                part,
                chunk_size,
                depth,
                report,
            )
            cut = stop
        for i in np.flatnonzero(sizes >= _COPY_BATCHED).tolist():
            copied[i] = _copy_fds(
                ring,
                int(src_fds[i]),
                int(dst_fds[i]),
                _path_name(srcs[i]),
                _path_name(dsts[i]),
                int(sizes[i]),
                bool(regular[i]),
                "auto",
                chunk_size,
                8,
                None,
            )
            report.add(int(copied[i]))
        return copied
    finally:
        both = np.concatenate([src_fds, dst_fds])
        _close_batch(ring, both[both >= 0], depth)


def _copy_small(
    ring: iouring.IoUring,
    src_fds: npt.NDArray[np.int32],
    dst_fds: npt.NDArray[np.int32],
    sizes: npt.NDArray[np.int64],
    srcs: Sequence[Any],
    dsts: Sequence[Any],
    index: npt.NDArray[np.intp],
    chunk_size: int,
    depth: int,
    report: _Progress,
) -> npt.NDArray[np.int64]:
    """Reads the files into one block (one read_batch per round), then writes them out."""
    bases, total = _layout(sizes)
    block = _CACHE.take(total)
    item, within, length = _chunks(sizes, chunk_size)
    reader = _Transfer(
        ring, False, src_fds, item, within, length, bases[item] + within, [block], None, None
    )
    reader.run(depth)
    failed = reader.first_error()
    if failed is not None:
        raise _oserror(failed[1], _path_name(srcs[int(index[failed[0]])]))
    got = np.minimum(sizes, reader.eof)
    item, within, length = _chunks(got, chunk_size)
    writer = _Transfer(
        ring,
        True,
        dst_fds,
        item,
        within,
        length,
        bases[item] + within,
        [block],
        None,
        report.reporter(),
    )
    writer.run(depth)
    failed = writer.first_error()
    if failed is not None:
        raise _oserror(failed[1], _path_name(dsts[int(index[failed[0]])]))
    report.add(writer.done)
    return got


def _grow_pipe(fd: int, size: int) -> int:
    """Asks for a pipe buffer of ``size`` bytes; returns the size obtained."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))


_NO_OFFSET: Final = 2**64 - 1


class _Copier:
    """The state machine of copy_file: one slot per chain in flight."""

    def __init__(
        self,
        ring: iouring.IoUring,
        src: int,
        dst: int,
        src_name: str | int,
        dst_name: str | int,
        size: int,
        chunk_size: int,
        depth: int,
        pipes: Sequence[tuple[int, int]],
        progress: Progress | None,
    ) -> None:
        self.ring = ring
        self.src, self.dst = src, dst
        self.src_name, self.dst_name = src_name, dst_name
        self.size = size
        self.chunk = chunk_size
        self.pipes = pipes
        self.splice = bool(pipes)
        self.progress = progress
        self.slots = [_CopySlot() for _ in range(depth)]
        self.arena = None if self.splice else aligned_empty(depth * chunk_size)
        self.base = 0 if self.arena is None else int(self.arena.ctypes.data)
        self.next_offset = 0
        self.end = size  # lowered when the source turns out shorter
        self.done = 0
        self.error: OSError | None = None
        self.sqes = np.zeros(2 * depth, dtype=iouring.SQE_DTYPE)

    def run(self) -> int:
        ring = self.ring
        out = np.empty(ring.cq_entries, dtype=CQE_DTYPE)
        for slot in self.slots:
            self._assign(slot)
        in_flight = self._push([i for i, s in enumerate(self.slots) if s.length])
        while in_flight:
            ring.submit_and_wait(1)
            cqes = ring.copy_cqes(out)
            in_flight -= len(cqes)
            ready = []
            for user_data, res in zip(
                cqes["user_data"].tolist(), cqes["res"].tolist(), strict=True
            ):
                slot = self.slots[user_data >> 1]
                if user_data & 1:
                    slot.write_res = res
                else:
                    slot.read_res = res
                slot.waiting -= 1
                if slot.waiting == 0:
                    ready.append(user_data >> 1)
            for index in ready:
                self._settle(self.slots[index])
            if self.progress is not None:
                self.progress(self.done, self.size)
            if self.error is None:
                in_flight += self._push([i for i in ready if self.slots[i].length])
        if self.error is not None:
            raise self.error
        return self.done

    def _assign(self, slot: _CopySlot) -> None:
        """Gives the slot the next chunk (length 0: nothing left)."""
        start = self.next_offset
        length = max(0, min(self.chunk, self.end - start))
        slot.offset, slot.length, slot.nread, slot.nwritten = start, length, 0, 0
        self.next_offset = start + length

    def _settle(self, slot: _CopySlot) -> None:
        """Accounts for a finished step; picks the slot's next step (or next chunk)."""
        r, w = slot.read_res, slot.write_res
        slot.read_res = slot.write_res = None
        if r is not None:
            if r < 0:
                if -r not in _RETRY and self.error is None:
                    self.error = _oserror(-r, self.src_name)
            elif r == 0 and slot.nread < slot.length:
                # The source ended early (it shrank): this chunk and all after it stop here.
                slot.length = slot.nread
                self.end = min(self.end, slot.offset + slot.nread)
            else:
                slot.nread += r
        if w is not None:
            if w == -_ECANCELED and r is not None:
                pass  # a short or failed read broke the link: the write never ran
            elif w < 0:
                if -w not in _RETRY and self.error is None:
                    self.error = _oserror(-w, self.dst_name)
            elif w == 0 and slot.nwritten < slot.nread:
                if self.error is None:
                    self.error = _oserror(errno.EIO, self.dst_name)
            else:
                slot.nwritten += w
                self.done += w
        if slot.nwritten >= slot.length and slot.nread >= slot.length:
            self._assign(slot)

    def _push(self, indices: Sequence[int]) -> int:
        """Pushes the next step of every slot in ``indices`` in one push_sqes call; returns
        the number of SQEs pushed."""
        if not indices:
            return 0
        sqes = self.sqes
        sqes[:] = 0
        n = 0
        for index in indices:
            slot = self.slots[index]
            pending = slot.nread - slot.nwritten
            if pending > 0:  # data waiting in the buffer (or pipe): write it alone
                self._write_sqe(sqes[n], index, slot, pending)
                n += 1
                slot.waiting = 1
            else:  # a linked read -> write of the rest of the chunk
                want = slot.length - slot.nread
                self._read_sqe(sqes[n], index, slot, want)
                self._write_sqe(sqes[n + 1], index, slot, want)
                n += 2
                slot.waiting = 2
        pushed = self.ring.push_sqes(sqes[:n], self.arena)
        if pushed != n:  # cannot happen: the ring has room for 2 * depth SQEs
            raise RuntimeError(f"push_sqes took {pushed} of {n} SQEs")
        return n

    def _read_sqe(self, sqe: Any, index: int, slot: _CopySlot, want: int) -> None:
        sqe["flags"] = int(SqeFlags.IO_LINK)
        sqe["user_data"] = index << 1
        sqe["len"] = want
        if self.splice:
            sqe["opcode"] = int(Op.SPLICE)
            sqe["splice_fd_in"] = self.src
            sqe["addr"] = slot.offset + slot.nread  # splice_off_in
            sqe["fd"] = self.pipes[index][1]
            sqe["off"] = _NO_OFFSET
        else:
            sqe["opcode"] = int(Op.READ)
            sqe["fd"] = self.src
            sqe["off"] = slot.offset + slot.nread
            sqe["addr"] = self.base + index * self.chunk + slot.nread

    def _write_sqe(self, sqe: Any, index: int, slot: _CopySlot, nbytes: int) -> None:
        sqe["user_data"] = index << 1 | 1
        sqe["len"] = nbytes
        sqe["fd"] = self.dst
        sqe["off"] = slot.offset + slot.nwritten
        if self.splice:
            sqe["opcode"] = int(Op.SPLICE)
            sqe["splice_fd_in"] = self.pipes[index][0]
            sqe["addr"] = _NO_OFFSET  # splice_off_in: a pipe has none
        else:
            sqe["opcode"] = int(Op.WRITE)
            sqe["addr"] = self.base + index * self.chunk + slot.nwritten


def __dir__() -> list[str]:
    return list(__all__)
