"""Resource tags: register_files/register_buffers(..., tags=) and their updates
(IORING_REGISTER_FILES2/BUFFERS2, FILES_UPDATE2/BUFFERS_UPDATE), and the CQEs the kernel posts
with user_data=tag when it releases a tagged resource.

Two things changed in Linux 6.13, and the tests hold on both sides of it:
- Before 6.13 the kernel drops the entries still in a table at unregister without posting their
  tags; the ring then settles those tags itself (their buffers are released at once). From 6.13
  unregistering posts them like any other release.
- On 6.1 the CQE of a replaced entry comes from a delayed work item, about a second after the
  update, so the tests wait for tag CQEs instead of expecting them at once.

Operations are retired by user_data, so the ring never lets one value be both a live tag and
the user_data of an operation: the collision tests check that a tag CQE never retires an
operation or releases its pins, and that tag CQEs are neither lost nor counted as operations."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable

import numpy as np
import pytest
from kernel_support import slow

from iouring import (
    CQE_DTYPE,
    REGISTER_FILES_SKIP,
    Cqe,
    EnterFlags,
    Features,
    IoUring,
    _kernel,
)

# Whether unregistering a table posts the tags of the entries still in it (Linux 6.13+).
UNREGISTER_POSTS_TAGS = not _kernel.older_than("6.13")


@pytest.fixture
def tagged_ring(ring: IoUring) -> IoUring:
    if not ring.features & Features.RSRC_TAGS:
        pytest.skip("kernel lacks IORING_FEAT_RSRC_TAGS (Linux 5.13+)")
    return ring


def cqes(ring: IoUring) -> list[tuple[int, int, int]]:
    return [(int(u), int(r), int(f)) for u, r, f in ring.copy_cqes()]


def reap(ring: IoUring, count: int) -> list[tuple[int, int, int]]:
    """The next ``count`` CQEs, waiting (bounded) for those the kernel posts late, and then
    whatever else is already there."""
    got: list[tuple[int, int, int]] = []
    out = np.empty(count, CQE_DTYPE)
    while len(got) < count:
        batch = ring.copy_cqes(out[: count - len(got)], wait_nr=1, timeout=slow(10))
        assert len(batch) > 0, f"only {got} of {count} CQEs came"
        got += [(int(u), int(r), int(f)) for u, r, f in batch]
    return got + cqes(ring)


def posted_at_unregister(
    expected: list[tuple[int, int, int]],
) -> list[tuple[int, int, int]]:
    """The tag CQEs unregistering posts for the entries still in the table: none before 6.13."""
    return sorted(expected) if UNREGISTER_POSTS_TAGS else []


def test_file_tags_posted_on_update_and_unregister(
    tagged_ring: IoUring, pipe: tuple[int, int]
) -> None:
    ring = tagged_ring
    r, w = pipe
    ring.register_files([r, w, -1], tags=[0x7A6001, 0x7A6002, 0])
    assert ring.live_tags == 2
    # Replacing slot 0 releases the file tagged 0x7A6001 (nothing uses it): its CQE comes.
    assert ring.register_files_update(0, [w, REGISTER_FILES_SKIP], tags=[0x7A6003, 0]) == 2
    assert ring.live_tags == 3  # 0x7A6001 (its CQE not seen yet), 0x7A6002, 0x7A6003
    assert reap(ring, 1) == [(0x7A6001, 0, 0)]
    assert ring.live_tags == 2 and ring.in_flight == 0
    # The kernel refuses a tag on a SKIP entry and stops there: only what it applied counts.
    with pytest.raises(OSError, match="FILES_UPDATE2"):
        ring.register_files_update(1, [REGISTER_FILES_SKIP], tags=[0x7A6009])
    assert ring.live_tags == 2
    ring.unregister_files()
    assert sorted(cqes(ring)) == posted_at_unregister([(0x7A6002, 0, 0), (0x7A6003, 0, 0)])
    assert ring.live_tags == 0


def test_buffer_tag_keeps_the_buffer_until_its_cqe(
    tagged_ring: IoUring, pipe: tuple[int, int]
) -> None:
    ring = tagged_ring
    r, w = pipe
    old, new = bytearray(8), bytearray(8)
    ring.register_buffers([old], tags=[0x7A6101])
    ring.read_fixed(0x7A61AA, r, memoryview(old)[:4], -1, 0)
    ring.submit()
    assert ring.in_flight == 1
    for _ in range(10_000):  # SQPOLL: until the kernel thread has taken (and issued) the read
        if ring.sq_ready() == 0:
            break
        time.sleep(0.001)
    # The read holds the old buffer: the kernel releases it (and posts the tag) only after it.
    ring.register_buffers_update(0, [new], tags=[0x7A6102])
    assert ring.cq_ready() == 0
    os.write(w, b"data")
    out = np.empty(1, CQE_DTYPE)
    ring.copy_cqes(out, 1, timeout=10)  # the read's completion only
    assert tuple(int(x) for x in out[0]) == (0x7A61AA, 4, 0)
    assert ring.in_flight == 0 and bytes(old[:4]) == b"data"
    # The operation is done, but until the tag CQE is seen the old buffer stays exported (a
    # bytearray cannot be resized while it is).
    with pytest.raises(BufferError):
        old.extend(b"x")
    assert ring.copy_cqe(timeout=slow(10)) == Cqe(0x7A6101, 0, 0)  # bounded: no op posts it
    old.extend(b"x")  # released with the tag CQE
    with pytest.raises(BufferError):
        new.extend(b"x")  # still registered
    ring.unregister_buffers()
    assert cqes(ring) == posted_at_unregister([(0x7A6102, 0, 0)])
    new.extend(b"x")
    assert ring.live_tags == 0 and ring.pinned == 0


def test_buffer_tag_pin_outlives_the_operations(tagged_ring: IoUring) -> None:
    ring = tagged_ring
    buf = bytearray(16)
    ring.register_buffers([buf], tags=[0x7A6201])
    assert ring.pinned == 1
    ring.unregister_buffers()
    if not UNREGISTER_POSTS_TAGS:
        # No CQE comes: the kernel let go of the buffer when unregister returned.
        assert ring.cq_ready() == 0 and ring.pinned == 0 and ring.live_tags == 0
        buf.extend(b"x")
        return
    # The kernel posted the tag CQE; until it is reaped the buffer stays exported.
    assert ring.cq_ready() == 1 and ring.pinned == 1
    with pytest.raises(BufferError):
        buf.extend(b"x")
    assert ring.copy_cqe() == Cqe(0x7A6201, 0, 0)
    assert ring.pinned == 0
    buf.extend(b"x")


# --- collisions between tags and user_data ----------------------------------------------------


def test_tag_equal_to_in_flight_user_data_refused(
    tagged_ring: IoUring, pipe: tuple[int, int]
) -> None:
    ring = tagged_ring
    r, w = pipe
    buf = bytearray(4)
    ring.read(0x7A6301, r, buf, -1)
    ring.submit()
    with pytest.raises(ValueError, match=r"tags\[1\].*in flight"):
        ring.register_files([r, w], tags=[0x7A6399, 0x7A6301])
    with pytest.raises(ValueError, match=r"tags\[0\]"):
        ring.register_buffers([bytearray(8)], tags=[0x7A6301])
    assert ring.live_tags == 0 and ring.in_flight == 1  # nothing registered, read untouched
    ring.register_files([r, w])  # the ring is usable after
    ring.unregister_files()
    os.write(w, b"abcd")
    assert ring.copy_cqe(timeout=10) == Cqe(0x7A6301, 4, 0)
    assert buf == b"abcd"
    # Once the operation completed, the value may become a tag.
    ring.register_files([r], tags=[0x7A6301])
    ring.unregister_files()
    assert cqes(ring) == posted_at_unregister([(0x7A6301, 0, 0)])
    assert ring.live_tags == 0


def test_submitting_a_live_tag_as_user_data_refused(
    tagged_ring: IoUring, pipe: tuple[int, int]
) -> None:
    ring = tagged_ring
    r, _ = pipe
    ring.register_files([r], tags=[0x7A6401])
    ring.nop(0x7A6400)
    sqe = ring.nop(0x7A6401)
    with pytest.raises(ValueError, match="live resource tag"):
        ring.submit()
    assert ring.sq_ready() == 2 and ring.in_flight == 0  # nothing was submitted
    sqe.user_data = 0x7A6402  # the handle is still valid: nothing was flushed
    assert ring.submit_and_wait(2) == 2
    assert sorted(cqes(ring)) == [(0x7A6400, 0, 0), (0x7A6402, 0, 0)]
    ring.unregister_files()
    assert cqes(ring) == posted_at_unregister([(0x7A6401, 0, 0)])
    # Seen (or, before 6.13, settled by the unregistration): no longer live, so the value is free for operations again.
    ring.nop(0x7A6401)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x7A6401, 0, 0)


def test_tag_cqe_never_retires_an_operation(tagged_ring: IoUring, pipe: tuple[int, int]) -> None:
    ring = tagged_ring
    r, w = pipe
    pinned_buf = bytearray(3)
    ring.read(0x7A6501, r, pinned_buf, -1)
    ring.submit()
    pinned = ring.pinned
    ring.register_files([w], tags=[0x7A6502])
    ring.register_files_update(0, [-1])  # releases the tagged file: its CQE is posted
    assert reap(ring, 1) == [(0x7A6502, 0, 0)]  # not lost
    assert ring.in_flight == 1 and ring.pinned == pinned  # the read keeps its buffer
    with pytest.raises(BufferError):
        pinned_buf.extend(b"x")
    ring.unregister_files()
    os.write(w, b"xyz")
    assert ring.copy_cqe(timeout=10) == Cqe(0x7A6501, 3, 0)
    assert pinned_buf == b"xyz" and ring.pinned == 0


def test_duplicate_tags_each_post(tagged_ring: IoUring, pipe: tuple[int, int]) -> None:
    ring = tagged_ring
    r, w = pipe
    ring.register_files([r, w], tags=[0x7A6601, 0x7A6601])
    assert ring.live_tags == 2
    ring.register_files_update(0, [-1])
    assert reap(ring, 1) == [(0x7A6601, 0, 0)]
    assert ring.live_tags == 1
    sqe = ring.nop(0x7A6601)  # still live: one CQE to come
    with pytest.raises(ValueError, match="live resource tag"):
        ring.submit()
    sqe.user_data = 1
    ring.submit_and_wait(1)
    ring.unregister_files()
    assert sorted(cqes(ring)) == sorted([(1, 0, 0), *posted_at_unregister([(0x7A6601, 0, 0)])])
    assert ring.live_tags == 0


def wait_posted(ring: IoUring, count: int) -> None:
    """Waits (bounded) until ``count`` CQEs are in the CQ, without reaping them."""
    deadline = time.monotonic() + slow(10)
    while ring.cq_ready() < count:
        assert time.monotonic() < deadline, f"{ring.cq_ready()} of {count} CQEs came"
        ring.enter(0, 0, int(EnterFlags.GETEVENTS))  # posts deferred task work, no wait
        time.sleep(0.005)


def test_unregister_settles_every_tag_not_posted(tagged_ring: IoUring) -> None:
    """After unregister_buffers, a tag whose CQE is in the CQ stays live (and its buffer
    exported) until it is reaped; any other tag of the table is settled: by its CQE from 6.13
    on, by the ring itself before, when the kernel posts none. Either way no buffer is held
    for ever and no tag is counted twice."""
    ring = tagged_ring
    replaced, kept, newer = bytearray(8), bytearray(8), bytearray(8)
    ring.register_buffers([replaced, kept], tags=[0x7A6A01, 0x7A6A02])
    ring.register_buffers_update(0, [newer], tags=[0x7A6A03])
    wait_posted(ring, 1)  # 0x7A6A01's CQE, posted for the update and not reaped yet
    ring.unregister_buffers()
    assert ring.live_tags == ring.cq_ready()  # exactly the tags whose CQEs are in the CQ
    with pytest.raises(BufferError):
        replaced.extend(b"x")  # its CQE is not reaped yet
    got = cqes(ring)
    assert sorted(got) == sorted(
        [(0x7A6A01, 0, 0), *posted_at_unregister([(0x7A6A02, 0, 0), (0x7A6A03, 0, 0)])]
    )
    assert ring.live_tags == 0 and ring.pinned == 0
    for buf in (replaced, kept, newer):
        buf.extend(b"x")
    # The values are free again, for operations and for either table.
    ring.nop(0x7A6A02)
    ring.submit_and_wait(1)
    assert ring.copy_cqe() == Cqe(0x7A6A02, 0, 0)
    r, w = os.pipe()
    try:
        ring.register_files([r], tags=[0x7A6A03])
        ring.unregister_files()
        assert cqes(ring) == posted_at_unregister([(0x7A6A03, 0, 0)])
        assert ring.live_tags == 0
    finally:
        os.close(r)
        os.close(w)


def test_tag_live_in_the_other_table_refused(tagged_ring: IoUring, pipe: tuple[int, int]) -> None:
    ring = tagged_ring
    r, w = pipe
    ring.register_files([r, w], tags=[0x7A6B01, 0x7A6B02])
    with pytest.raises(ValueError, match=r"tags\[1\].*live tag of the registered files"):
        ring.register_buffers([bytearray(8), bytearray(8)], tags=[0x7A6B03, 0x7A6B02])
    assert ring.live_tags == 2 and ring.pinned == 0  # nothing registered
    buf = bytearray(8)
    ring.register_buffers([buf], tags=[0x7A6B03])  # the ring is usable after
    with pytest.raises(ValueError, match=r"tags\[0\].*live tag of the registered buffers"):
        ring.register_files_update(0, [w], tags=[0x7A6B03])
    assert ring.live_tags == 3
    ring.register_files_update(0, [w], tags=[0x7A6B04])  # a tag no table has: accepted
    ring.unregister_files()
    ring.unregister_buffers()
    got = cqes(ring)
    assert ring.live_tags == 0 and ring.pinned == 0
    assert (0x7A6B01, 0, 0) in got  # replaced by the update: posted on every kernel
    buf.extend(b"x")


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "exc"),
    [
        ([1], ValueError),
        ([1, 2, 3], ValueError),
        ([-1, 0], OverflowError),
        (5, TypeError),
        (["a", 1], TypeError),
        ([2**64, 0], OverflowError),
        # Read no further than one entry too many: these exhausted memory or never ended.
        (np.broadcast_to(np.int32(1), (2**40,)), ValueError),
        (itertools.count(1), ValueError),
    ],
)
def test_bad_tags(
    tagged_ring: IoUring, pipe: tuple[int, int], tags: object, exc: type[Exception]
) -> None:
    ring = tagged_ring
    r, w = pipe
    calls: list[Callable[[], object]] = [
        lambda: ring.register_files([r, w], tags=tags),  # type: ignore[arg-type]
        lambda: ring.register_buffers([bytearray(8), bytearray(8)], tags=tags),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(exc, match="tags"):
            call()
    assert ring.live_tags == 0
    ring.register_files([r, w])
    with pytest.raises(exc, match="tags"):
        ring.register_files_update(0, [r, w], tags=tags)  # type: ignore[arg-type]
    ring.unregister_files()
    ring.register_buffers([bytearray(8), bytearray(8)])
    with pytest.raises(exc, match="tags"):
        ring.register_buffers_update(0, [bytearray(8), bytearray(8)], tags=tags)  # type: ignore[arg-type]
    ring.unregister_buffers()
    assert ring.live_tags == 0 and ring.pinned == 0


def test_tag_on_empty_slot_is_the_kernels_einval(tagged_ring: IoUring) -> None:
    with pytest.raises(OSError, match="FILES2") as info:
        tagged_ring.register_files([-1], tags=[0x7A6701])
    assert info.value.errno == 22
    assert tagged_ring.live_tags == 0


def test_close_with_live_tags_releases_buffers(make_default_ring: Callable[..., IoUring]) -> None:
    ring = make_default_ring(4)
    if not ring.features & Features.RSRC_TAGS:
        pytest.skip("kernel lacks IORING_FEAT_RSRC_TAGS (Linux 5.13+)")
    buf = bytearray(8)
    ring.register_buffers([buf], tags=[0x7A6801])
    ring.close()
    buf.extend(b"x")  # the ring let go of it
