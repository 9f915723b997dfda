"""BufferArena: page-aligned memory registered as fixed buffers and seen as NumPy arrays.

Reads through the arena must land in ``arena.array`` itself (zero copies), ranges are checked
against each registered buffer, the registration follows the arena's lifetime, and memory that
an operation in flight still uses outlives ``close()``.
"""

from __future__ import annotations

import errno
import gc
import mmap
import os
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from kernel_support import require_kernel

from iouring import BufferArena, Cqe, IoUring, Op, _kernel

PAGE = mmap.PAGESIZE


def reap(ring: IoUring, n: int) -> dict[int, Cqe]:
    if ring.sq_ready():
        ring.submit()
    got = {}
    for _ in range(n):
        cqe = ring.copy_cqe()
        got[cqe.user_data] = cqe
    return got


def test_arena_is_page_aligned_registered_array(ring: IoUring) -> None:
    with BufferArena(ring, 10_000) as arena:
        assert arena.size == 3 * PAGE  # rounded up to whole pages
        assert arena.buffers == 1 and arena.buffer_size == 3 * PAGE
        assert arena.page_kind == "normal" and arena.page_size == PAGE
        assert arena.ring is ring
        array = arena.array
        assert array.dtype == np.uint8 and array.shape == (3 * PAGE,)
        assert array.flags.writeable and array.flags.c_contiguous
        assert array.ctypes.data % PAGE == 0
        assert "BufferArena" in repr(arena)
        # The registration is the arena's memory: a read_fixed into a slice of it is accepted.
        sqe = ring.read_fixed(1, 0, array.data[PAGE : 2 * PAGE], 0, 0)
        assert sqe.fields()["addr"] == array.ctypes.data + PAGE
        sqe.prep_nop(1)  # do not actually read stdin
        assert reap(ring, 1) == {1: Cqe(1, 0, 0)}
    assert arena.closed
    with pytest.raises(ValueError, match="closed"):
        _ = arena.ring


def test_arena_read_batch_lands_in_array(ring: IoUring, tmp_file: Any) -> None:
    content = os.urandom(8 * 4096)
    f = tmp_file(content)
    with BufferArena(ring, 4 * 4096) as arena:
        slots = np.arange(4, dtype=np.uint64) * 4096
        offsets = np.array([7, 0, 3, 5], dtype=np.uint64) * 4096
        assert arena.read_batch(slots, f.fd, offsets, 4096, slots) == 4
        assert reap(ring, 4) == {int(s): Cqe(int(s), 4096, 0) for s in slots}
        blocks = arena.array.reshape(4, 4096)
        for i, off in enumerate(offsets):
            assert blocks[i].tobytes() == content[int(off) : int(off) + 4096]
        # Typed zero-copy views of the same memory.
        words = arena.view(4096, 512, np.uint64)
        assert np.shares_memory(words, arena.array)
        assert words.tobytes() == content[0:4096]
        assert arena.view(0).shape == (4 * 4096,)
        assert ring.pinned == 0  # nothing pinned per call: the registration holds the memory


def test_arena_write_batch_packed(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file()
    with BufferArena(ring, PAGE) as arena:
        arena.array[:10] = np.frombuffer(b"0123456789", dtype=np.uint8)
        assert arena.write_batch([1, 2], f.fd, [100, 0], [4, 6]) == 2
        assert reap(ring, 2) == {1: Cqe(1, 4, 0), 2: Cqe(2, 6, 0)}
    assert f.pread(106) == b"456789" + bytes(94) + b"0123"


def test_arena_several_registered_buffers(
    make_default_ring: Callable[..., IoUring], tmp_file: Any
) -> None:
    ring = make_default_ring(16)
    content = os.urandom(4 * PAGE)
    f = tmp_file(content)
    with BufferArena(ring, 4 * PAGE, buffer_size=PAGE) as arena:
        assert arena.buffers == 4
        assert arena.locate(2 * PAGE + 5) == (2, 5)
        index, local = arena.locate(np.array([0, PAGE, 3 * PAGE + 1], dtype=np.uint64))
        assert index.tolist() == [0, 1, 3] and local.tolist() == [0, 0, 1]
        # One read per registered buffer, each at the start of its buffer.
        buf_offsets = np.arange(4, dtype=np.uint64) * PAGE
        assert (
            arena.read_batch(np.arange(4), f.fd, buf_offsets[::-1].copy(), PAGE, buf_offsets) == 4
        )
        reap(ring, 4)
        for i in range(4):
            start = (3 - i) * PAGE
            assert arena.array[i * PAGE : (i + 1) * PAGE].tobytes() == content[start : start + PAGE]
        # Packed reads are placed in arena order and may not straddle two buffers.
        assert arena.read_batch([10, 11], f.fd, 0, [PAGE, PAGE]) == 2
        reap(ring, 2)
        before = ring.sq_ready()
        with pytest.raises(ValueError, match="registered buffer 0"):
            arena.read_batch(0, f.fd, 0, PAGE, PAGE // 2, count=1)
        with pytest.raises(ValueError, match="length array"):
            arena.read_batch(0, f.fd, 0, PAGE, count=1)
        assert ring.sq_ready() == before
    assert ring.pinned == 0


def test_arena_huge_pages(ring: IoUring) -> None:
    with BufferArena(ring, 3 << 20, huge_pages=True) as arena:
        assert arena.page_kind in ("hugetlb", "transparent", "normal")
        assert arena.size == 4 << 20  # whole 2 MiB pages
        assert arena.page_size == 2 << 20
        assert arena.array.ctypes.data % PAGE == 0
        arena.array[:] = 7
        assert int(arena.array.sum()) == 7 * (4 << 20)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size must be positive"),
        ({"size": -1}, "size must be positive"),
        ({"size": PAGE, "buffer_size": 100}, "multiple of the page size"),
        ({"size": PAGE, "buffer_size": 0}, "multiple of the page size"),
        ({"size": PAGE, "buffer_size": 2 << 30}, "at most 1 GiB"),
        ({"size": (1 << 14) * PAGE + PAGE, "buffer_size": PAGE}, "at most 16384"),
    ],
)
def test_arena_bad_sizes(
    make_default_ring: Callable[..., IoUring], kwargs: dict[str, Any], message: str
) -> None:
    ring = make_default_ring(4)
    with pytest.raises(ValueError, match=message):
        BufferArena(ring, **kwargs)
    ring.register_buffers([bytearray(8)])  # the failed arena left the table free
    ring.unregister_buffers()


def test_arena_refused_when_buffers_already_registered(
    make_default_ring: Callable[..., IoUring],
) -> None:
    ring = make_default_ring(4)
    ring.register_buffers([bytearray(8)])
    with pytest.raises(OSError, match="busy") as exc:
        BufferArena(ring, PAGE)
    assert exc.value.errno == errno.EBUSY
    ring.unregister_buffers()


def test_arena_close_unregisters(ring: IoUring, tmp_file: Any) -> None:
    f = tmp_file(b"x" * PAGE)
    arena = BufferArena(ring, PAGE)
    arena.close()
    arena.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        arena.read_batch(0, f.fd, 0, 8, count=1)
    with pytest.raises(ValueError, match="no buffers are registered"):
        ring.read_fixed_batch(0, f.fd, 0, 0, 8, count=1)
    # The ring may register new buffers (another arena) afterwards.
    with BufferArena(ring, PAGE) as again:
        assert again.read_batch(5, f.fd, 0, 8, count=1) == 1
        assert reap(ring, 1) == {5: Cqe(5, 8, 0)}


def test_arena_memory_outlives_close_while_in_flight(
    make_default_ring: Callable[..., IoUring], make_pipe: Any
) -> None:
    require_kernel("6.13", "unregister_buffers that does not wait for fixed-buffer reads")
    ring = make_default_ring(4)
    r, w = make_pipe()
    arena = BufferArena(ring, PAGE)
    view = arena.view(0, 16)
    assert arena.read_batch(0xA7, r, -1, 16, count=1) == 1
    ring.submit()
    arena.close()  # unregisters; the read in flight keeps the memory registered and mapped
    os.write(w, b"late but in time")
    assert ring.copy_cqe() == Cqe(0xA7, 16, 0)
    assert view.tobytes() == b"late but in time"


def test_arena_close_refused_while_in_flight_before_6_13(
    make_default_ring: Callable[..., IoUring], make_pipe: Any
) -> None:
    """Before Linux 6.13 the kernel cannot drop a table that a read in flight uses: close()
    raises BlockingIOError naming the read and the arena stays open (it marked itself closed
    and lost the registration before); after the read was reaped, close() works."""
    if not _kernel.older_than("6.13"):
        pytest.skip("from Linux 6.13 close() succeeds with reads in flight (test above)")
    ring = make_default_ring(4)
    r, w = make_pipe()
    arena = BufferArena(ring, PAGE)
    assert arena.read_batch(0xA8, r, -1, 16, count=1) == 1
    ring.submit()
    with pytest.raises(BlockingIOError, match="0xa8") as exc:
        arena.close()
    assert exc.value.errno == errno.EBUSY
    still_open = not arena.closed
    assert still_open
    os.write(w, b"still registered")
    assert ring.copy_cqe() == Cqe(0xA8, 16, 0)
    assert arena.view(0, 16).tobytes() == b"still registered"
    arena.close()
    assert arena.closed
    ring.register_buffers([bytearray(8)])  # the table is free again
    ring.unregister_buffers()


def test_arena_memory_freed_when_unused(ring: IoUring) -> None:
    arena = BufferArena(ring, PAGE)
    memory = weakref.ref(arena._mmap)
    arena.close()
    del arena
    gc.collect()
    assert memory() is None or memory().closed  # type: ignore[union-attr]


def test_arena_with_single_operation_methods(ring: IoUring, tmp_file: Any) -> None:
    content = os.urandom(PAGE)
    f = tmp_file(content)
    if Op.READ_FIXED not in ring.probe():
        pytest.skip("kernel lacks READ_FIXED")
    with BufferArena(ring, 2 * PAGE) as arena:
        target = arena.array.data[PAGE:]
        ring.read_fixed(0xB0, f.fd, target, 0, 0)
        assert reap(ring, 1) == {0xB0: Cqe(0xB0, PAGE, 0)}
        assert arena.array[PAGE:].tobytes() == content
        del target
