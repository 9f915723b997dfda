"""A registered buffer arena: page-aligned memory, registered with a ring, seen as NumPy arrays.

``read_fixed`` operations copy straight into registered memory, so a batch of them lands in a
NumPy array with no copy and no per-call pinning. The arena allocates that memory the way the
kernel and the CPU like it (page-aligned anonymous memory, optionally huge pages), registers it
as fixed buffers and hands it out as NumPy arrays.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import platform
from typing import Any

import numpy as np
import numpy.typing as npt

from iouring._core import IoUring

__all__ = ["BufferArena"]

# The kernel refuses registered buffers larger than 1 GiB each, and more than 16384 of them.
MAX_BUFFER_SIZE = 1 << 30
MAX_BUFFERS = 1 << 14
HUGE_PAGE_SIZE = 2 << 20  # the PMD size on x86-64 and 4 KiB-page arm64
# MAP_HUGETLB is 0x40000 on x86 and arm; Python's mmap module exposes it from 3.13 on.
_MAP_HUGETLB = getattr(
    mmap, "MAP_HUGETLB", 0x40000 if platform.machine() in ("x86_64", "aarch64", "i686") else 0
)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class BufferArena:
    """Page-aligned memory registered with ``ring`` as fixed buffers, as one NumPy array.

    ``BufferArena(ring, size, *, buffer_size=None, huge_pages=False)`` maps ``size`` bytes
    (rounded up to whole pages) of anonymous memory and registers it with
    ``ring.register_buffers`` as ``buffers`` fixed buffers of ``buffer_size`` bytes each
    (default: one buffer, or 1 GiB pieces, the most the kernel takes per buffer). ``array`` is
    the whole arena as a writable ``uint8`` array, with no copy; ``view()`` gives typed views.

    ``read_batch``/``write_batch`` take arena byte offsets (``buf_offset``) and turn them into
    ``read_fixed_batch``/``write_fixed_batch`` calls on the right buffer, so completed reads are
    simply there in ``array``. Nothing is pinned per call: the registration keeps the memory
    alive, including for operations still in flight after ``close()``.

    ``huge_pages=True`` asks for 2 MiB pages: explicit huge pages (``MAP_HUGETLB``) when the
    system has some reserved (``vm.nr_hugepages``), else transparent huge pages
    (``madvise(MADV_HUGEPAGE)``); ``page_kind`` says which one was obtained ("hugetlb",
    "transparent" or "normal"). Huge pages make registration cheaper and TLB misses rarer for
    arenas of many megabytes.

    The ring must have no buffers registered (the kernel keeps one table per ring: OSError
    EBUSY). Raises ValueError for bad sizes and OSError from mmap or the registration (ENOMEM:
    see RLIMIT_MEMLOCK on kernels before 5.12). ``close()`` (or leaving a ``with`` block)
    unregisters the buffers; the memory itself is freed once no array refers to it.
    """

    def __init__(
        self,
        ring: IoUring,
        size: int,
        *,
        buffer_size: int | None = None,
        huge_pages: bool = False,
    ) -> None:
        size = int(size)
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self._ring: IoUring | None = ring
        self._mmap, self._page_kind, page = self._allocate(size, bool(huge_pages))
        self._size = len(self._mmap)
        if buffer_size is None:
            buffer_size = min(self._size, MAX_BUFFER_SIZE)
        buffer_size = int(buffer_size)
        if buffer_size <= 0 or buffer_size % page or buffer_size > MAX_BUFFER_SIZE:
            self._release_memory()
            raise ValueError(
                f"buffer_size must be a positive multiple of the page size ({page}) of at most "
                f"1 GiB, got {buffer_size}"
            )
        count = -(-self._size // buffer_size)
        if count > MAX_BUFFERS:
            self._release_memory()
            raise ValueError(
                f"{count} buffers of {buffer_size} bytes: the kernel registers at most "
                f"{MAX_BUFFERS}; use a larger buffer_size"
            )
        self._buffer_size = buffer_size
        self._page_size = page
        self._array: npt.NDArray[np.uint8] = np.frombuffer(self._mmap, dtype=np.uint8)
        whole = memoryview(self._mmap)
        pieces = [whole[start : start + buffer_size] for start in range(0, self._size, buffer_size)]
        del whole
        try:
            ring.register_buffers(pieces)
        except BaseException:
            del pieces
            self._array = np.empty(0, dtype=np.uint8)
            self._release_memory()
            self._ring = None
            raise
        # The ring holds its own exports of the pieces while they are registered.
        del pieces
        self._buffers = count

    @staticmethod
    def _allocate(size: int, huge: bool) -> tuple[mmap.mmap, str, int]:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        page = mmap.PAGESIZE
        if huge:
            rounded = _round_up(size, HUGE_PAGE_SIZE)
            if _MAP_HUGETLB:
                try:
                    return (
                        mmap.mmap(-1, rounded, flags=flags | _MAP_HUGETLB),
                        "hugetlb",
                        HUGE_PAGE_SIZE,
                    )
                except OSError as exc:
                    if exc.errno not in (errno.ENOMEM, errno.EINVAL, errno.EPERM):
                        raise
            memory = mmap.mmap(-1, rounded, flags=flags)
            advice = getattr(mmap, "MADV_HUGEPAGE", None)
            if advice is not None:
                try:
                    memory.madvise(advice)
                    return memory, "transparent", HUGE_PAGE_SIZE
                except OSError:
                    pass
            return memory, "normal", HUGE_PAGE_SIZE
        return mmap.mmap(-1, _round_up(size, page), flags=flags), "normal", page

    # -- properties ---------------------------------------------------------------------------

    @property
    def ring(self) -> IoUring:
        """The ring the arena is registered with (ValueError once closed)."""
        if self._ring is None:
            raise ValueError("the arena is closed")
        return self._ring

    @property
    def array(self) -> npt.NDArray[np.uint8]:
        """The whole arena as a writable ``uint8`` array (no copy)."""
        return self._array

    @property
    def size(self) -> int:
        """Bytes in the arena (the requested size rounded up to whole pages)."""
        return self._size

    @property
    def buffer_size(self) -> int:
        """Bytes per registered buffer (the last one may be shorter)."""
        return self._buffer_size

    @property
    def buffers(self) -> int:
        """Number of registered buffers: buffer i covers bytes [i * buffer_size, ...)."""
        return self._buffers

    @property
    def page_size(self) -> int:
        """The page size the arena is aligned to (4096, or 2 MiB with huge pages)."""
        return self._page_size

    @property
    def page_kind(self) -> str:
        """ "normal", "transparent" (THP advised) or "hugetlb" (explicit huge pages)."""
        return self._page_kind

    @property
    def closed(self) -> bool:
        """True once close() ran: the buffers are unregistered, the memory released with the last
        array that uses it."""
        return self._ring is None

    # -- views --------------------------------------------------------------------------------

    def view(
        self, offset: int = 0, count: int | None = None, dtype: npt.DTypeLike = np.uint8
    ) -> npt.NDArray[Any]:
        """A zero-copy array of ``count`` items of ``dtype`` at byte ``offset`` of the arena
        (all that fit when ``count`` is None). Raises ValueError outside the arena."""
        dt = np.dtype(dtype)
        offset = int(offset)
        if offset < 0 or offset > self._size:
            raise ValueError(f"offset {offset} lies outside the arena of {self._size} bytes")
        if count is None:
            count = (self._size - offset) // dt.itemsize
        if count < 0 or offset + count * dt.itemsize > self._size:
            raise ValueError(
                f"{count} items of {dt.itemsize} bytes at offset {offset} do not fit in the arena "
                f"of {self._size} bytes"
            )
        return self._array[offset : offset + count * dt.itemsize].view(dt)

    def locate(self, buf_offset: Any) -> tuple[Any, Any]:
        """``(buffer_index, offset_in_buffer)`` of arena byte offsets (ints or arrays)."""
        if self._buffers == 1:
            return 0, buf_offset
        if isinstance(buf_offset, int):
            return divmod(buf_offset, self._buffer_size)
        offsets = np.asarray(buf_offset, dtype=np.uint64)
        return offsets // self._buffer_size, offsets % self._buffer_size

    # -- batches ------------------------------------------------------------------------------

    def _fixed_batch(
        self,
        method: Any,
        user_data: Any,
        fd: Any,
        offset: Any,
        length: Any,
        buf_offset: Any,
        count: int | None,
        sqe_flags: Any,
    ) -> int:
        if buf_offset is None:
            if self._buffers == 1:
                return int(
                    method(user_data, fd, 0, offset, length, None, count=count, sqe_flags=sqe_flags)
                )
            # Packed one after another from arena offset 0, as the ring methods do.
            lengths = np.asarray(length, dtype=np.uint64)
            if lengths.ndim == 0:
                raise ValueError(
                    "with several registered buffers, packed reads need a length array"
                )
            buf_offset = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.uint64)
        index, local = self.locate(buf_offset)
        return int(
            method(user_data, fd, index, offset, length, local, count=count, sqe_flags=sqe_flags)
        )

    def read_batch(
        self,
        user_data: Any,
        fd: Any,
        offset: Any,
        length: Any,
        buf_offset: Any = None,
        *,
        count: int | None = None,
        sqe_flags: Any = 0,
    ) -> int:
        """Prepares N ``read_fixed`` operations into the arena: operation i reads length[i]
        bytes from fd[i] at offset[i] into ``array[buf_offset[i]:][:length[i]]`` (packed from 0
        when buf_offset is None). Same conventions and errors as
        ``IoUring.read_fixed_batch``; a range that crosses a registered buffer's end is refused
        (ValueError). Returns the number prepared."""
        return self._fixed_batch(
            self.ring.read_fixed_batch, user_data, fd, offset, length, buf_offset, count, sqe_flags
        )

    def write_batch(
        self,
        user_data: Any,
        fd: Any,
        offset: Any,
        length: Any,
        buf_offset: Any = None,
        *,
        count: int | None = None,
        sqe_flags: Any = 0,
    ) -> int:
        """Prepares N ``write_fixed`` operations from the arena (see ``read_batch``)."""
        return self._fixed_batch(
            self.ring.write_fixed_batch, user_data, fd, offset, length, buf_offset, count, sqe_flags
        )

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Unregisters the buffers (operations in flight keep them alive until they complete).
        The memory is unmapped when no array made from the arena remains. Idempotent.

        Before Linux 6.13 the kernel cannot unregister buffers that operations in flight use:
        close() then raises BlockingIOError (EBUSY) naming them, and the arena stays open, so
        reap or cancel them and close again."""
        ring = self._ring
        if ring is None:
            return
        try:
            if not ring.closed:
                ring.unregister_buffers()
        except BlockingIOError:
            raise  # still registered in the kernel: the arena stays usable
        except BaseException:
            self._forget()
            raise
        self._forget()

    def _forget(self) -> None:
        """The arena is closed: no ring, no array; the memory goes with its last user."""
        self._ring = None
        self._array = np.empty(0, dtype=np.uint8)
        self._release_memory()

    def _release_memory(self) -> None:
        # Arrays (or the kernel's registration) that still use the memory free it with the last.
        with contextlib.suppress(BufferError):
            self._mmap.close()

    def __enter__(self) -> BufferArena:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._ring is None else f"{self._buffers} x {self._buffer_size} bytes"
        return f"<iouring.BufferArena {self._size} bytes, {self._page_kind} pages, {state}>"
