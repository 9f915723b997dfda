"""msg_ring with a final CQE on the target: msg_ring(more=False), msg_ring_fd(post_cqe=True) and
MSG_RING through push_sqes.

Such a CQE would count, in the target ring, as the final completion of an operation with its
user_data and release that operation's pins. The submit reserves the user_data on the target
(an open IoUring of this process) so that the message's CQE ends the reservation instead; a
failed message (the sender's CQE has res < 0) drops it. Targets that are not rings of this
process are refused.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from iouring import SQE_DTYPE, Cqe, CqeFlags, IoUring, Op, SetupFlags, SqeFlags

from .conftest import require_kernel, require_ops, run_one

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MSG_RING_CQE_SKIP = 1
MSG_RING_FLAGS_PASS = 2


class Buf(bytearray):
    """A bytearray that can be weakly referenced."""


def pinned_read(ring: IoUring, user_data: int, fd: int) -> weakref.ref[Buf]:
    """Submits a read of fd under user_data into a buffer only the ring references."""
    buf = Buf(8)
    ref = weakref.ref(buf)
    ring.read(user_data, fd, buf, -1)
    ring.submit()
    del buf
    gc.collect()
    return ref


def read_still_pinned_then_done(ring: IoUring, ref: weakref.ref[Buf], w: int, key: int) -> None:
    """The read of pinned_read is still counted and its buffer pinned; then it completes (one
    byte written to w) and releases it."""
    gc.collect()
    assert (ring.in_flight, ring.pinned) == (1, 1) and ref() is not None
    os.write(w, b"d")
    assert ring.copy_cqe(timeout=10) == Cqe(key, 1, 0)
    gc.collect()
    assert (ring.in_flight, ring.pinned, ref()) == (0, 0, None)


@pytest.fixture
def raw_ring_fd() -> Iterator[int]:
    """An io_uring made with the raw syscall, unknown to iouring (as a ring of another library
    or process would be)."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    fd = libc.syscall(425, 4, params)
    if fd < 0:
        pytest.skip(f"io_uring_setup: {os.strerror(ctypes.get_errno())}")
    yield fd
    os.close(fd)


@pytest.fixture
def src_dst(make_ring: Callable[..., IoUring]) -> tuple[IoUring, IoUring]:
    """A sender and a target ring of the current configuration, with MSG_RING probed."""
    src, dst = make_ring(4), make_ring(4)
    require_ops(src, Op.MSG_RING)
    return src, dst


@pytest.fixture
def default_src_dst(make_default_ring: Callable[..., IoUring]) -> tuple[IoUring, IoUring]:
    """src_dst of the default configuration."""
    src, dst = make_default_ring(4), make_default_ring(4)
    require_ops(src, Op.MSG_RING)
    return src, dst


def test_msg_ring_final_keeps_the_targets_pins(
    src_dst: tuple[IoUring, IoUring], pipe: tuple[int, int]
) -> None:
    src, dst = src_dst
    r, w = pipe
    ref = pinned_read(dst, 0xDA7A, r)
    sqe = src.msg_ring(0x5E4D, dst.fd, 7, 0xDA7A, more=False)
    # No FLAGS_PASS without flags to pass: the kernel posts flags 0 (Linux 5.18+).
    assert (sqe.rw_flags, sqe.splice_fd_in) == (0, 0)
    assert run_one(src) == Cqe(0x5E4D, 0, 0)
    assert dst.copy_cqe(timeout=10) == Cqe(0xDA7A, 7, 0)  # final, like the read's will be
    read_still_pinned_then_done(dst, ref, w, 0xDA7A)


def test_msg_ring_final_before_the_read_completes_in_either_order(
    src_dst: tuple[IoUring, IoUring], pipe: tuple[int, int]
) -> None:
    src, dst = src_dst
    require_kernel("6.3", "IORING_MSG_RING_FLAGS_PASS")
    r, w = pipe
    ref = pinned_read(dst, 0xBEEF, r)
    src.msg_ring(0x11, dst.fd, -errno.EIO, 0xBEEF, CqeFlags.NOTIF, more=False)
    assert run_one(src) == Cqe(0x11, 0, 0)
    os.write(w, b"x")
    got = sorted((dst.copy_cqe(timeout=10) for _ in range(2)), key=lambda c: c.res)
    assert got == [Cqe(0xBEEF, -errno.EIO, CqeFlags.NOTIF), Cqe(0xBEEF, 1, 0)]
    gc.collect()
    assert (dst.in_flight, dst.pinned, ref()) == (0, 0, None)


def test_msg_ring_final_counts_on_the_target_until_reaped(
    src_dst: tuple[IoUring, IoUring],
) -> None:
    src, dst = src_dst
    src.msg_ring(0x21, dst.fd, 3, 0x22, more=False)
    assert dst.in_flight == 0
    assert run_one(src) == Cqe(0x21, 0, 0)
    assert dst.in_flight == 1  # reserved at submit, until its CQE is reaped
    # The reservation also lets the target wait for the message without a timeout.
    assert dst.copy_cqe() == Cqe(0x22, 3, 0)
    assert dst.in_flight == 0


def test_msg_ring_final_to_itself(ring: IoUring, pipe: tuple[int, int]) -> None:
    require_ops(ring, Op.MSG_RING)
    r, w = pipe
    ref = pinned_read(ring, 0x70, r)
    ring.msg_ring(0x5E1F, ring.fd, 7, 0x70, more=False)
    ring.submit()
    got = [ring.copy_cqe(timeout=10) for _ in range(2)]
    assert sorted(got, key=lambda c: c.user_data) == [Cqe(0x70, 7, 0), Cqe(0x5E1F, 0, 0)]
    gc.collect()
    assert (ring.in_flight, ring.pinned) == (1, 1)
    assert ref() is not None
    os.write(w, b"z")
    assert ring.copy_cqe(timeout=10) == Cqe(0x70, 1, 0)
    assert (ring.in_flight, ring.pinned) == (0, 0)


def test_msg_ring_final_failure_drops_the_reservation(make_ring: Callable[..., IoUring]) -> None:
    src = make_ring(4)
    require_ops(src, Op.MSG_RING)
    # A ring that is not enabled yet: the kernel fails the message with EBADFD, posting nothing.
    dst = IoUring(4, flags=SetupFlags.R_DISABLED)
    try:
        src.msg_ring(0x31, dst.fd, 1, 0x32, more=False)
        src.submit()
        assert dst.in_flight == 1
        assert src.copy_cqe(timeout=10) == Cqe(0x31, -errno.EBADFD, 0)
        assert dst.in_flight == 0
    finally:
        dst.close()


def test_msg_ring_fd_post_cqe(src_dst: tuple[IoUring, IoUring], tmp_file: Any, pipe: Any) -> None:
    src, dst = src_dst
    f = tmp_file(b"passed along")
    src.register_files([f.fd])
    dst.register_files_sparse(4)
    r, _w = pipe
    ref = pinned_read(dst, 0xCAFE, r)
    sqe = src.msg_ring_fd(0xF0, dst.fd, 0, 2, 0xCAFE, post_cqe=True)
    assert (sqe.rw_flags, sqe.splice_fd_in, sqe.off) == (0, 3, 0xCAFE)
    assert run_one(src) == Cqe(0xF0, 0, 0)
    assert dst.copy_cqe(timeout=10) == Cqe(0xCAFE, 0, 0)
    gc.collect()
    assert (dst.in_flight, dst.pinned) == (1, 1) and ref() is not None
    sqe = src.msg_ring_fd_alloc(0xF1, dst.fd, 0, 0xCAFF, post_cqe=True)
    slot = run_one(src)
    assert slot.user_data == 0xF1 and slot.res >= 0
    assert dst.copy_cqe(timeout=10) == Cqe(0xCAFF, slot.res, 0)
    # A failure (an empty source slot) posts nothing and drops the reservation.
    src.msg_ring_fd(0xF4, dst.fd, 5, 3, 0xCB00, post_cqe=True)
    assert run_one(src) == Cqe(0xF4, -errno.EBADF, 0)
    assert dst.in_flight == 1  # the read only
    dst.cancel(0xC0, 0xCAFE)
    dst.submit()
    assert {dst.copy_cqe(timeout=10).user_data for _ in range(2)} == {0xC0, 0xCAFE}
    assert (dst.in_flight, dst.pinned) == (0, 0)
    src.unregister_files()
    dst.unregister_files()


def test_msg_ring_final_survives_the_reuse_of_the_targets_fd(
    default_src_dst: tuple[IoUring, IoUring],
    make_default_ring: Callable[..., IoUring],
    pipe: tuple[int, int],
) -> None:
    """A message linked behind a read runs long after the submit: the SQE names a duplicate of
    the target's fd, so closing the target and opening a ring on the same number cannot
    redirect it there."""
    src, dst = default_src_dst
    r, w = pipe
    number = dst.fd
    src.read(0x41, r, bytearray(1), -1).flags |= SqeFlags.IO_LINK
    src.msg_ring(0x42, dst.fd, 9, 0x43, more=False)
    src.submit()
    dst.close()
    other = make_default_ring(4)
    if other.fd != number:
        pytest.skip("the new ring did not reuse the closed ring's fd number")
    q, x = os.pipe()
    try:
        ref = pinned_read(other, 0x43, q)
        os.write(w, b"!")
        assert {src.copy_cqe(timeout=10) for _ in range(2)} == {Cqe(0x41, 1, 0), Cqe(0x42, 0, 0)}
        gc.collect()
        assert other.cq_ready() == 0
        assert (other.in_flight, other.pinned) == (1, 1) and ref() is not None
        os.write(x, b"?")
        assert other.copy_cqe(timeout=10) == Cqe(0x43, 1, 0)
    finally:
        os.close(q)
        os.close(x)


def test_msg_ring_final_close_of_the_sender_drops_the_reservation(
    default_src_dst: tuple[IoUring, IoUring], pipe: tuple[int, int]
) -> None:
    src, dst = default_src_dst
    r, _w = pipe
    src.read(0x51, r, bytearray(1), -1).flags |= SqeFlags.IO_LINK
    src.msg_ring(0x52, dst.fd, 1, 0x53, more=False)
    src.submit()
    assert dst.in_flight == 1
    src.close()  # cancels the read, and so the message linked to it
    assert dst.in_flight == 0
    assert dst.cq_ready() == 0


def test_push_sqes_msg_ring_without_more_keeps_the_read_pinned(
    src_dst: tuple[IoUring, IoUring], pipe: tuple[int, int]
) -> None:
    """A raw MSG_RING without FLAGS_PASS carrying the user_data of a read in flight."""
    src, dst = src_dst
    r, w = pipe
    ref = pinned_read(dst, 0xDA7A, r)
    sqes = np.zeros(1, dtype=SQE_DTYPE)
    sqes[0]["opcode"] = Op.MSG_RING
    sqes[0]["fd"] = dst.fd
    sqes[0]["len"] = 5
    sqes[0]["off"] = 0xDA7A
    sqes[0]["user_data"] = 0x99
    assert src.push_sqes(sqes) == 1
    assert run_one(src) == Cqe(0x99, 0, 0)
    assert dst.copy_cqe(timeout=10) == Cqe(0xDA7A, 5, 0)
    read_still_pinned_then_done(dst, ref, w, 0xDA7A)


def test_final_messages_to_unknown_rings_are_refused(
    make_ring: Callable[..., IoUring], raw_ring_fd: int
) -> None:
    src = make_ring(4)
    with pytest.raises(ValueError, match=r"fd: \d+ is not an open IoUring of this process"):
        src.msg_ring(1, raw_ring_fd, 1, 2, more=False)
    with pytest.raises(ValueError, match=r"^fd: .*post_cqe=True"):
        src.msg_ring_fd(1, raw_ring_fd, 0, 1, post_cqe=True)
    with pytest.raises(ValueError, match=r"^fd: "):
        src.msg_ring_fd_alloc(1, raw_ring_fd, 0, post_cqe=True)
    closed = IoUring(4)
    closed_fd = closed.fd
    closed.close()
    with pytest.raises(ValueError, match=r"^fd: "):
        src.msg_ring(1, closed_fd, 1, 2, more=False)
    # push_sqes: refused at submit, with nothing submitted.
    sqes = np.zeros(1, dtype=SQE_DTYPE)
    sqes[0]["opcode"] = Op.MSG_RING
    sqes[0]["fd"] = raw_ring_fd
    sqes[0]["user_data"] = 7
    assert src.push_sqes(sqes) == 1
    with pytest.raises(ValueError, match=r"not an open IoUring of this process.*Nothing was sub"):
        src.submit()
    assert src.in_flight == 0
    # The defaults (MORE, CQE_SKIP) stay allowed to any ring: no CQE of theirs is final.
    src.msg_ring(3, raw_ring_fd, 1, 2)
    src.msg_ring_fd(4, raw_ring_fd, 0, 1)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s, d: s.msg_ring(1, d.fd, 1, 2, more="no"), TypeError, "more"),
        (
            lambda s, d: s.msg_ring(1, d.fd, 1, 2, CqeFlags.MORE, more=False),
            ValueError,
            "cqe_flags",
        ),
        (lambda s, d: s.msg_ring_fd(1, d.fd, 0, 1, post_cqe="yes"), TypeError, "post_cqe"),
        (lambda s, d: s.msg_ring_fd_alloc(1, d.fd, 0, post_cqe=None), TypeError, "post_cqe"),
        (lambda s, d: s.msg_ring(1, 1 << 20, 1, 2, more=False), ValueError, r"^fd: "),
    ],
)
def test_msg_ring_final_validation(
    make_default_ring: Callable[..., IoUring],
    call: Callable[[IoUring, IoUring], Any],
    error: type[Exception],
    match: str,
) -> None:
    src, dst = make_default_ring(4), make_default_ring(4)
    before = (src.sq_ready(), src.in_flight, dst.in_flight)
    with pytest.raises(error, match=match):
        call(src, dst)
    src.submit()
    assert (src.sq_ready(), src.in_flight, dst.in_flight) == before


def test_msg_ring_final_submit_refusals(
    make_default_ring: Callable[..., IoUring], pipe: tuple[int, int]
) -> None:
    src, dst = make_default_ring(8), make_default_ring(4)
    require_ops(src, Op.MSG_RING)
    r, _w = pipe
    src.read(0x61, r, bytearray(1), -1)
    src.submit()
    cases: list[tuple[Callable[[], Any], str]] = [
        # Its user_data is that of an operation in flight, or of another SQE of the submit.
        (lambda: src.msg_ring(0x61, dst.fd, 1, 2, more=False), "user_data of its own"),
        (
            lambda: (src.nop(0x62), src.msg_ring(0x62, dst.fd, 1, 2, more=False)),
            "user_data of its own",
        ),
        # FIXED_FILE: a registered file, not a ring known by its fd.
        (
            lambda: setattr(
                src.msg_ring(0x63, dst.fd, 1, 2, more=False), "flags", SqeFlags.FIXED_FILE
            ),
            "FIXED_FILE",
        ),
        (
            lambda: setattr(
                src.msg_ring(0x64, dst.fd, 1, 2, more=False),
                "flags",
                SqeFlags.IO_LINK | SqeFlags.CQE_SKIP_SUCCESS,
            ),
            "CQE_SKIP_SUCCESS",
        ),
        # A message to itself reserving the user_data of another message of the same submit.
        (
            lambda: (
                src.msg_ring(0x65, dst.fd, 1, 2, more=False),
                src.msg_ring(0x66, src.fd, 1, 0x65, more=False),
            ),
            "user_data of a message or poll update submitted with it",
        ),
    ]
    for prepare, match in cases:
        prepare()
        with pytest.raises(ValueError, match=match):
            src.submit()
        assert (src.in_flight, dst.in_flight) == (1, 0), match
        src.close()
        src = make_default_ring(8)
        src.read(0x61, r, bytearray(1), -1)
        src.submit()
    # A message in flight: no other SQE may take its user_data, and no ring may reserve it.
    src.read(0x71, r, bytearray(1), -1).flags |= SqeFlags.IO_LINK
    src.msg_ring(0x72, dst.fd, 1, 2, more=False)
    src.submit()
    src.nop(0x72)
    with pytest.raises(ValueError, match="message with a final CQE or a poll update"):
        src.submit()
    dst.msg_ring(0x81, src.fd, 1, 0x72, more=False)
    with pytest.raises(ValueError, match="user_data of an SQE with a reservation"):
        dst.submit()
    assert dst.in_flight == 1  # src's message only
    src.close()  # cancels the read and the message linked to it
    assert dst.in_flight == 0
