"""Completions as NumPy arrays: CQE_DTYPE and copy_cqes (new-array and out= modes, wait_nr)."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_support import slow

import iouring
from iouring import CQE_DTYPE, IoUring

U64_MAX = 2**64 - 1


def prepare_nops(ring: IoUring, user_data: list[int]) -> None:
    for ud in user_data:
        ring.nop(ud)


def submit_nops(ring: IoUring, user_data: list[int]) -> None:
    prepare_nops(ring, user_data)
    ring.submit_and_wait(len(user_data))


def nop_rows(user_data: list[int]) -> list[tuple[int, int, int]]:
    """The rows of the successful NOP completions of ``user_data``."""
    return [(ud, 0, 0) for ud in user_data]


def wait_for_sq_space(ring: IoUring, timeout: float = 5.0) -> None:
    """Under SQPOLL the kernel thread may post a CQE before it releases the SQ slot."""
    deadline = time.monotonic() + timeout
    while ring.sq_space_left() == 0:
        assert time.monotonic() < deadline, "SQ never drained"
        time.sleep(0.001)


def rows(arr: np.ndarray) -> list[tuple[int, int, int]]:
    return [(int(c["user_data"]), int(c["res"]), int(c["flags"])) for c in arr]


def test_cqe_dtype_layout() -> None:
    assert np.dtype([("user_data", "<u8"), ("res", "<i4"), ("flags", "<u4")]) == CQE_DTYPE
    assert CQE_DTYPE.names == ("user_data", "res", "flags")
    assert CQE_DTYPE.itemsize == 16 == iouring.CQE_SIZE
    assert CQE_DTYPE.fields is not None
    offsets = {name: CQE_DTYPE.fields[name][1] for name in CQE_DTYPE.names}
    assert offsets == {"user_data": 0, "res": 8, "flags": 12}


# --------------------------------------------------------------------------------------------
# New-array mode


def test_copy_cqes_new_array(ring: IoUring) -> None:
    uds = [0xAAAA0000 + i for i in range(3)]
    submit_nops(ring, uds)
    arr = ring.copy_cqes()
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == CQE_DTYPE
    assert arr.shape == (3,)
    assert arr.flags.c_contiguous
    assert arr.flags.writeable
    assert sorted(rows(arr)) == nop_rows(uds)
    assert ring.cq_ready() == 0
    assert ring.in_flight == 0


def test_copy_cqes_new_array_empty(ring: IoUring) -> None:
    arr = ring.copy_cqes()
    assert arr.dtype == CQE_DTYPE
    assert arr.shape == (0,)


def test_copy_cqes_new_array_is_a_copy(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring(1)  # a CQ of 2: the second round overwrites the slot of the first
    submit_nops(ring, [0x1111])
    first = ring.copy_cqes()
    assert rows(first) == [(0x1111, 0, 0)]
    for ready, ud in enumerate((0x2222, 0x3333), start=1):
        wait_for_sq_space(ring)
        ring.nop(ud)
        ring.submit_and_wait(ready)  # waits until both are in the CQ, unreaped
    second = ring.copy_cqes()
    assert sorted(rows(second)) == [(0x2222, 0, 0), (0x3333, 0, 0)]
    assert rows(first) == [(0x1111, 0, 0)]
    assert not np.shares_memory(first, second)


def test_copy_cqes_user_data_full_u64(ring: IoUring) -> None:
    submit_nops(ring, [U64_MAX])
    arr = ring.copy_cqes()
    assert arr["user_data"].dtype == np.dtype("<u8")
    assert rows(arr) == [(U64_MAX, 0, 0)]


def test_copy_cqes_negative_res(ring: IoUring, closed_fd: int) -> None:
    buf = bytearray(4)
    ring.read(0xBADF, closed_fd, buf, 0)
    ring.submit_and_wait(1)
    arr = ring.copy_cqes()
    assert rows(arr) == [(0xBADF, -errno.EBADF, 0)]
    assert arr["res"][0] == -errno.EBADF


# --------------------------------------------------------------------------------------------
# out= mode


def test_copy_cqes_into_out_returns_view(ring: IoUring) -> None:
    uds = [0xBBBB0000 + i for i in range(3)]
    submit_nops(ring, uds)
    out = np.zeros(8, dtype=CQE_DTYPE)
    out["user_data"] = 0x5E17
    out["res"] = -1
    result = ring.copy_cqes(out)
    assert result.dtype == CQE_DTYPE
    assert result.shape == (3,)
    assert np.shares_memory(result, out)
    assert result.ctypes.data == out.ctypes.data
    assert sorted(rows(result)) == nop_rows(uds)
    assert sorted(rows(out[:3])) == nop_rows(uds)
    assert rows(out[3:]) == [(0x5E17, -1, 0)] * 5
    result["res"][0] = 99
    assert out["res"][0] == 99
    assert ring.cq_ready() == 0


def test_copy_cqes_into_out_nothing_ready(ring: IoUring) -> None:
    out = np.zeros(4, dtype=CQE_DTYPE)
    result = ring.copy_cqes(out)
    assert result.dtype == CQE_DTYPE
    assert result.shape == (0,)


def test_copy_cqes_out_partial_fill(ring: IoUring) -> None:
    uds = [0xCCCC0000 + i for i in range(5)]
    submit_nops(ring, uds)
    out = np.zeros(2, dtype=CQE_DTYPE)
    got: list[tuple[int, int, int]] = []
    sizes = []
    for expected_left in (3, 1, 0):
        result = ring.copy_cqes(out)
        sizes.append(len(result))
        got.extend(rows(result))
        assert ring.cq_ready() == expected_left
    assert sizes == [2, 2, 1]
    assert len(ring.copy_cqes(out)) == 0
    assert sorted(got) == nop_rows(uds)


def test_copy_cqes_out_exact_fit(ring: IoUring) -> None:
    uds = [0xDDDD0000 + i for i in range(4)]
    submit_nops(ring, uds)
    out = np.zeros(4, dtype=CQE_DTYPE)
    result = ring.copy_cqes(out)
    assert len(result) == 4
    assert sorted(rows(result)) == nop_rows(uds)


def _read_only_out() -> np.ndarray:
    out = np.zeros(4, dtype=CQE_DTYPE)
    out.flags.writeable = False
    return out


BAD_OUTS: list[tuple[str, Callable[[], Any]]] = [
    ("uint64", lambda: np.zeros(4, dtype=np.uint64)),
    ("uint8", lambda: np.zeros(64, dtype=np.uint8)),
    ("other_record", lambda: np.zeros(4, dtype=[("a", "<u8"), ("b", "<u8")])),
    ("big_endian", lambda: np.zeros(4, dtype=CQE_DTYPE.newbyteorder(">"))),
    ("two_dimensional", lambda: np.zeros((2, 2), dtype=CQE_DTYPE)),
    ("non_contiguous", lambda: np.zeros(8, dtype=CQE_DTYPE)[::2]),
    ("read_only", _read_only_out),
    ("bytearray", lambda: bytearray(64)),
    ("list", lambda: [0, 0, 0, 0]),
]


@pytest.mark.parametrize("make_out", [m for _, m in BAD_OUTS], ids=[n for n, _ in BAD_OUTS])
def test_copy_cqes_out_invalid_refused(ring: IoUring, make_out: Callable[[], Any]) -> None:
    submit_nops(ring, [0xEEEE0000, 0xEEEE0001])
    with pytest.raises((TypeError, ValueError)):
        ring.copy_cqes(make_out())
    # Nothing consumed.
    assert ring.cq_ready() == 2
    assert sorted(rows(ring.copy_cqes())) == [(0xEEEE0000, 0, 0), (0xEEEE0001, 0, 0)]


# --------------------------------------------------------------------------------------------
# wait_nr


def test_copy_cqes_wait_nr_waits(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any]
) -> None:
    r, w = pipe
    buf = bytearray(5)
    ring.read(0x3A17, r, buf, -1)
    ring.submit()
    # wait_nr=0 never blocks: the read is still pending.
    assert ring.copy_cqes(wait_nr=0).shape == (0,)
    delayed_write(w, b"hello", 0.2)
    arr = ring.copy_cqes(wait_nr=1)
    assert rows(arr) == [(0x3A17, 5, 0)]
    assert buf == b"hello"


def test_copy_cqes_wait_nr_with_out(
    ring: IoUring, make_pipe: Callable[[], tuple[int, int]], delayed_write: Callable[..., Any]
) -> None:
    (r1, w1), (r2, w2) = make_pipe(), make_pipe()
    buf1, buf2 = bytearray(3), bytearray(4)
    ring.read(0x3A18, r1, buf1, -1)
    ring.read(0x3A19, r2, buf2, -1)
    ring.submit()
    delayed_write(w1, b"abc", 0.1)
    delayed_write(w2, b"defg", 0.3)
    out = np.zeros(4, dtype=CQE_DTYPE)
    result = ring.copy_cqes(out, wait_nr=2)
    assert np.shares_memory(result, out)
    assert sorted(rows(result)) == [(0x3A18, 3, 0), (0x3A19, 4, 0)]
    assert buf1 == b"abc" and buf2 == b"defg"


def test_copy_cqes_async_completion_needs_no_wait(
    ring: IoUring, ring_config: Any, pipe: tuple[int, int]
) -> None:
    """A completion posted by task work (a poll-armed pipe read) is returned by copy_cqes()
    with wait_nr=0 once the writer returned: either the task work already ran, or the ring
    flags it (IORING_SQ_TASKRUN) and copy_cqes flushes it. On 6.1 the read may run on an
    io-wq worker instead, which posts it a moment later: copy_cqes() without a wait still
    returns it then."""
    if ring_config.sqpoll or ring_config.defer_taskrun:
        pytest.skip(f"{ring_config.name}: completions are posted by another thread or only on wait")
    r, w = pipe
    buf = bytearray(3)
    ring.read(0x7A5C, r, buf, -1)
    ring.submit()
    assert ring.copy_cqes().shape == (0,)
    os.write(w, b"xyz")
    got = ring.copy_cqes()
    deadline = time.monotonic() + slow(10)
    while got.shape == (0,) and time.monotonic() < deadline:
        time.sleep(0.001)
        got = ring.copy_cqes()
    assert rows(got) == [(0x7A5C, 3, 0)]
    assert buf == b"xyz"


# --------------------------------------------------------------------------------------------
# Property: whatever the batch sizes, every completion comes back once, in order


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 8), st.integers(1, 12)), min_size=1, max_size=12))
def test_copy_cqes_batches_property(steps: list[tuple[int, int]]) -> None:
    with IoUring(8) as ring:  # CQ of 16: long runs without reaping overflow it
        out = np.zeros(16, dtype=CQE_DTYPE)
        next_ud = 0
        pending = 0
        got: list[int] = []
        for submit_count, out_len in steps:
            for _ in range(submit_count):
                ring.nop(0x1000 + next_ud)
                next_ud += 1
            if submit_count:
                assert ring.submit() == submit_count
            pending += submit_count
            result = ring.copy_cqes(out[:out_len])
            assert len(result) <= min(out_len, pending)
            if pending:
                assert len(result) >= 1
            assert np.all(result["res"] == 0)
            got.extend(int(u) for u in result["user_data"])
            pending -= len(result)
        while pending:
            result = ring.copy_cqes(wait_nr=1)
            assert 1 <= len(result) <= pending
            got.extend(int(u) for u in result["user_data"])
            pending -= len(result)
        # NOPs complete in submission order, and NODROP keeps overflowed ones in order.
        assert got == [0x1000 + i for i in range(next_ud)]
        assert ring.in_flight == 0
        assert ring.cq_overflow == 0


# --------------------------------------------------------------------------------------------
# submit_and_copy_cqes: submit, wait and copy in one call


def test_submit_and_copy_cqes_submits_and_copies(ring: IoUring) -> None:
    uds = [0xAAAA1000 + i for i in range(3)]
    prepare_nops(ring, uds)
    out = np.zeros(8, dtype=CQE_DTYPE)
    n = ring.submit_and_copy_cqes(out, 3)
    assert n == 3
    assert sorted(rows(out[:n])) == nop_rows(uds)
    assert ring.sq_ready() == 0
    assert ring.cq_ready() == 0
    assert ring.in_flight == 0


def test_submit_and_copy_cqes_at_most_len_out(ring: IoUring) -> None:
    uds = [0xBBBB0000 + i for i in range(5)]
    prepare_nops(ring, uds)
    out = np.zeros(2, dtype=CQE_DTYPE)
    assert ring.submit_and_copy_cqes(out, 5) == 2
    first = rows(out)
    # The rest stay in the CQ, in order, for the next call (nothing new to submit).
    rest = np.zeros(8, dtype=CQE_DTYPE)
    assert ring.submit_and_copy_cqes(rest) == 3
    assert sorted(first + rows(rest[:3])) == nop_rows(uds)
    assert ring.in_flight == 0


def test_submit_and_copy_cqes_nothing_to_do(ring: IoUring) -> None:
    out = np.zeros(4, dtype=CQE_DTYPE)
    assert ring.submit_and_copy_cqes(out) == 0
    assert ring.submit_and_copy_cqes(out, 0, timeout=0.01) == 0


def test_submit_and_copy_cqes_releases_pins(ring: IoUring, tmp_file: Callable[..., Any]) -> None:
    f = tmp_file(b"0123456789")
    buf = bytearray(4)
    ring.read(0xCAFE0001, f.fileno(), buf, 2)
    assert ring.pinned >= 1
    out = np.zeros(1, dtype=CQE_DTYPE)
    assert ring.submit_and_copy_cqes(out, 1) == 1
    assert rows(out) == [(0xCAFE0001, 4, 0)]
    assert bytes(buf) == b"2345"
    assert ring.pinned == 0 and ring.in_flight == 0


def test_submit_and_copy_cqes_waits(
    ring: IoUring, pipe: tuple[int, int], delayed_write: Callable[..., Any]
) -> None:
    r, w = pipe
    buf = bytearray(5)
    ring.read(0x3A20, r, buf, -1)
    delayed_write(w, b"hello", 0.2)
    out = np.zeros(4, dtype=CQE_DTYPE)
    assert ring.submit_and_copy_cqes(out, 1) == 1
    assert rows(out[:1]) == [(0x3A20, 5, 0)]
    assert buf == b"hello"


def test_submit_and_copy_cqes_timeout_copies_what_is_ready(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    r, w = pipe
    buf = bytearray(3)
    ring.read(0x3A21, r, buf, -1)
    ring.nop(0x3A22)
    out = np.zeros(4, dtype=CQE_DTYPE)
    start = time.monotonic()
    n = ring.submit_and_copy_cqes(out, 2, timeout=0.05)
    assert time.monotonic() - start < 5
    # The NOP is back; the read still waits for data (and was submitted).
    assert rows(out[:n]) == [(0x3A22, 0, 0)]
    assert ring.in_flight == 1
    os.write(w, b"xyz")
    assert ring.submit_and_copy_cqes(out, 1) == 1
    assert rows(out[:1]) == [(0x3A21, 3, 0)]
    assert buf == b"xyz"


@pytest.mark.parametrize("make_out", [m for _, m in BAD_OUTS], ids=[n for n, _ in BAD_OUTS])
def test_submit_and_copy_cqes_out_invalid_refused(
    ring: IoUring, make_out: Callable[[], Any]
) -> None:
    ring.nop(0xEEEE1000)
    with pytest.raises((TypeError, ValueError), match="out"):
        ring.submit_and_copy_cqes(make_out(), 1)
    # Refused before anything was submitted: the NOP is still prepared, not in flight.
    assert ring.in_flight == 0
    assert ring.submit() == 1
    assert rows(ring.copy_cqes(wait_nr=1)) == [(0xEEEE1000, 0, 0)]


def test_submit_and_copy_cqes_out_refusals_name_the_problem(ring: IoUring) -> None:
    with pytest.raises(TypeError, match="dtype"):
        ring.submit_and_copy_cqes(np.zeros(4, dtype=np.uint64))
    with pytest.raises(ValueError, match="C-contiguous"):
        ring.submit_and_copy_cqes(np.zeros(8, dtype=CQE_DTYPE)[::2])
    with pytest.raises(ValueError, match="writable"):
        ring.submit_and_copy_cqes(_read_only_out())
    with pytest.raises(TypeError, match="numpy array"):
        ring.submit_and_copy_cqes(bytearray(64))  # type: ignore[arg-type]


def test_submit_and_copy_cqes_bad_wait_nr_refused(ring: IoUring) -> None:
    ring.nop(0xEEEE2000)
    out = np.zeros(4, dtype=CQE_DTYPE)
    with pytest.raises(ValueError, match="wait_nr"):
        ring.submit_and_copy_cqes(out, ring.cq_entries + 1)
    with pytest.raises((OverflowError, ValueError), match="wait_nr"):
        ring.submit_and_copy_cqes(out, -1)
    with pytest.raises(TypeError, match="wait_nr"):
        ring.submit_and_copy_cqes(out, "1")  # type: ignore[arg-type]
    assert ring.in_flight == 0  # nothing submitted by the refused calls
    assert ring.submit_and_copy_cqes(out, 1) == 1
    assert rows(out[:1]) == [(0xEEEE2000, 0, 0)]


def test_submit_and_copy_cqes_closed_ring(make_ring: Callable[..., IoUring]) -> None:
    ring = make_ring()
    ring.close()
    with pytest.raises(ValueError, match="closed"):
        ring.submit_and_copy_cqes(np.zeros(4, dtype=CQE_DTYPE))
