"""SqeFlags.CQE_SKIP_SUCCESS on linked chains (issue 13 item 2), against the running kernel.

The ring takes the flag on every member of a linked chain but the last, all members carrying
the chain's user_data: the kernel then posts exactly one completion for the chain in every
outcome (the last member's on success, else the first failing member's, the rest being
cancelled without completions), and that completion releases the memory of every member.
Everything else is refused with a ValueError naming the flag: when the SQE is written for the
rules of one SQE, at submit for the rules of its chain (nothing is submitted then).
"""

from __future__ import annotations

import errno
import gc
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqe_support import addr_of

from iouring import SQE_DTYPE, IoUring, Op, PollFlags, SetupFlags, SqeFlags

LINK = int(SqeFlags.IO_LINK)
SKIP = int(SqeFlags.CQE_SKIP_SUCCESS)
MEMBER = LINK | SKIP


def skip_ring(make_ring: Callable[..., IoUring], entries: int = 16) -> IoUring:
    """A ring of the current configuration that takes the flag (SQPOLL rings refuse it)."""
    ring = make_ring(entries)
    if ring.flags & SetupFlags.SQPOLL:
        sqe = ring.nop(1)
        with pytest.raises(ValueError, match=r"CQE_SKIP_SUCCESS.*SQPOLL"):
            sqe.flags = MEMBER
        ring.submit_and_wait(1)
        ring.copy_cqes(wait_nr=1, timeout=5)
        pytest.skip("SQPOLL rings refuse CQE_SKIP_SUCCESS (the kernel thread may split a chain)")
    return ring


def reap_all(ring: IoUring, expected: int) -> list[tuple[int, int]]:
    """Submits, waits for `expected` completions and checks that no more come."""
    ring.submit()
    got = ring.copy_cqes(wait_nr=expected, timeout=5) if expected else ring.copy_cqes()
    out = [(int(c["user_data"]), int(c["res"])) for c in got]
    assert len(out) == expected, out
    # A NOP after everything: when its completion is back, any stray one would be too.
    ring.nop(0xFFFF)
    ring.submit()
    tail = [(int(c["user_data"]), int(c["res"])) for c in ring.copy_cqes(wait_nr=1, timeout=5)]
    assert tail == [(0xFFFF, 0)], tail
    return out


def test_skip_chain_posts_one_completion(make_ring: Callable[..., IoUring], tmp_file: Any) -> None:
    ring = skip_ring(make_ring)
    f = tmp_file(bytes(range(64)))
    bufs = [bytearray(16) for _ in range(3)]
    for i, buf in enumerate(bufs):
        ring.read(0xC4A1, f.fd, buf, 16 * i).flags = MEMBER
    ring.nop(0xC4A1)
    assert ring.in_flight == 0
    ring.submit()
    assert ring.in_flight == 1  # the chain counts once
    assert ring.pinned == 3
    got = ring.copy_cqes(wait_nr=1, timeout=5)
    assert [(int(c["user_data"]), int(c["res"])) for c in got] == [(0xC4A1, 0)]
    assert ring.in_flight == 0 and ring.pinned == 0
    assert b"".join(bufs) == bytes(range(48))
    assert reap_all(ring, 0) == []


def test_skip_chain_failing_member_ends_it(
    make_ring: Callable[..., IoUring], tmp_file: Any
) -> None:
    """A skipped member that fails posts its completion; the rest are cancelled silently."""
    ring = skip_ring(make_ring)
    f = tmp_file(b"z" * 64)
    first = bytearray(8)
    ring.read(0xFA11, f.fd, first, 0).flags = MEMBER
    ring.read(0xFA11, 987654, bytearray(8), 0).flags = MEMBER  # EBADF
    later = bytearray(8)
    ring.read(0xFA11, f.fd, later, 0).flags = MEMBER
    ring.nop(0xFA11)
    assert reap_all(ring, 1) == [(0xFA11, -errno.EBADF)]
    assert first == b"z" * 8 and later == bytes(8)  # the member after the failure never ran


def test_skip_chain_short_read_ends_it(make_ring: Callable[..., IoUring], make_pipe: Any) -> None:
    """A short read counts as a failure for links: it posts, with its (positive) result."""
    ring = skip_ring(make_ring)
    r, w = make_pipe()
    os.write(w, b"abc")
    ring.nop(0x5407).flags = MEMBER
    ring.read(0x5407, r, bytearray(8), -1).flags = MEMBER
    ring.nop(0x5407)
    assert reap_all(ring, 1) == [(0x5407, 3)]


def test_skip_chain_last_member_fails(make_ring: Callable[..., IoUring]) -> None:
    ring = skip_ring(make_ring)
    ring.nop(0x1A57).flags = MEMBER
    ring.read(0x1A57, 987654, bytearray(8), 0)
    assert reap_all(ring, 1) == [(0x1A57, -errno.EBADF)]


def test_skip_chain_member_refused_at_submission(make_ring: Callable[..., IoUring]) -> None:
    """A member the kernel refuses when it takes the SQE (a NOP flag it does not know): the
    chain's first member completes with -ECANCELED, the rest without completions."""
    ring = skip_ring(make_ring)
    ring.nop(0xBAD).flags = MEMBER
    bad = ring.nop(0xBAD)
    bad.rw_flags = 1 << 30  # an unknown NOP flag: EINVAL at submission
    bad.flags = MEMBER
    ring.nop(0xBAD)
    assert reap_all(ring, 1) == [(0xBAD, -errno.ECANCELED)]


def test_skip_chain_drain_is_refused_after(make_ring: Callable[..., IoUring]) -> None:
    """Documented kernel behaviour: once the flag was used, IO_DRAIN fails with EOPNOTSUPP."""
    ring = skip_ring(make_ring)
    ring.nop(0xD1).flags = MEMBER
    ring.nop(0xD1)
    assert reap_all(ring, 1) == [(0xD1, 0)]
    ring.nop(0xD2).flags = int(SqeFlags.IO_DRAIN)
    assert reap_all(ring, 1) == [(0xD2, -errno.EOPNOTSUPP)]


# --- refusals ---------------------------------------------------------------------------------


def test_skip_refused_for_one_sqe(make_ring: Callable[..., IoUring], make_pipe: Any) -> None:
    ring = skip_ring(make_ring)
    r, _ = make_pipe()
    cases: list[tuple[Any, int, str]] = [
        (ring.nop(1), SKIP, "IO_LINK"),
        (ring.nop(2), SKIP | int(SqeFlags.IO_HARDLINK), "IO_HARDLINK"),
        (ring.nop(3), MEMBER | int(SqeFlags.IO_HARDLINK), "IO_HARDLINK"),
        (ring.nop(4), MEMBER | int(SqeFlags.BUFFER_SELECT), "BUFFER_SELECT"),
        (ring.poll_add(5, r, 1, PollFlags.ADD_MULTI), MEMBER, "more than one completion"),
        (ring.timeout(6, 0.001), MEMBER, "timeout"),
        (ring.link_timeout(7, 10), MEMBER, "LINK_TIMEOUT"),
    ]
    for sqe, flags, message in cases:
        before = sqe.fields()
        with pytest.raises(ValueError, match=f"Sqe.flags: SqeFlags.CQE_SKIP_SUCCESS.*{message}"):
            sqe.flags = flags
        assert sqe.fields() == before
    ring.poll_add(8, r, 1).flags = MEMBER  # single-shot poll is fine...
    ring.nop(8)
    ring.submit()  # (the poll waits forever: cancel it)
    ring.cancel(9, 8)
    ring.cancel(10, 5)
    ring.submit()
    got = ring.copy_cqes(wait_nr=len(cases) + 3, timeout=5)
    assert len(got) == len(cases) + 3  # the 7 SQEs, the chain's one, the two cancels
    assert ring.in_flight == 0


def test_skip_refused_for_its_chain_at_submit(make_ring: Callable[..., IoUring]) -> None:
    """Chain rules are checked at submit: nothing is submitted, and the ring stays usable once
    the chain is fixed through its handles or completed."""
    ring = skip_ring(make_ring)

    def refused(message: str) -> None:
        ready = ring.sq_ready()
        with pytest.raises(ValueError, match=f"CQE_SKIP_SUCCESS.*{message}"):
            ring.submit()
        assert ring.sq_ready() == ready and ring.in_flight == 0

    # An unfinished chain: finishing it makes it valid.
    ring.nop(0xA).flags = MEMBER
    refused("not finished")
    ring.nop(0xA)
    assert reap_all(ring, 1) == [(0xA, 0)]
    # Members with different user_data.
    ring.nop(0xB).flags = MEMBER
    last = ring.nop(0xC)
    refused("user_data")
    last.user_data = 0xB
    assert reap_all(ring, 1) == [(0xB, 0)]
    # A member without the flag before a skipped one.
    plain = ring.nop(0xD)
    plain.flags = LINK
    ring.nop(0xD).flags = MEMBER
    ring.nop(0xD)
    refused("does not carry the flag")
    plain.flags = MEMBER
    assert reap_all(ring, 1) == [(0xD, 0)]
    # A LINK_TIMEOUT as the last member.
    head = ring.nop(0xE)
    head.flags = MEMBER
    ring.link_timeout(0xE, 10)
    refused("LINK_TIMEOUT")
    head.flags = LINK  # a plain chain: two completions
    assert sorted(reap_all(ring, 2)) == [(0xE, -errno.ECANCELED), (0xE, 0)]
    # The member after the skipped ones links further.
    ring.nop(0xF).flags = MEMBER
    mid = ring.nop(0xF)
    mid.flags = LINK
    ring.nop(0xF)
    refused("links further")
    mid.flags = MEMBER
    assert reap_all(ring, 1) == [(0xF, 0)]


def test_skip_chain_after_an_open_plain_chain(make_ring: Callable[..., IoUring]) -> None:
    """A submit that ended with IO_LINK on its last SQE ended that chain in the kernel: the
    next submit's skip chain starts a chain of its own and is taken."""
    ring = skip_ring(make_ring)
    ring.nop(0x0A).flags = LINK  # links to nothing: the kernel ends the chain at the submit
    assert reap_all(ring, 1) == [(0x0A, 0)]
    ring.nop(0x0B).flags = MEMBER
    ring.nop(0x0B)
    assert reap_all(ring, 1) == [(0x0B, 0)]
    # Flushed but not submitted, the open chain would continue into the next SQEs.
    ring.nop(0x0C).flags = LINK
    ring.flush_sq()
    ring.nop(0x0D).flags = MEMBER
    ring.nop(0x0D)
    with pytest.raises(ValueError, match="does not carry the flag"):
        ring.submit()
    ring.close()


def test_skip_refused_when_enter_would_split_a_chain(make_ring: Callable[..., IoUring]) -> None:
    ring = skip_ring(make_ring)
    for _ in range(2):
        ring.nop(0x5B).flags = MEMBER
    ring.nop(0x5B)
    assert ring.flush_sq() == 3
    with pytest.raises(ValueError, match=r"to_submit=2.*CQE_SKIP_SUCCESS.*at least 3"):
        ring.enter(2, 0)
    assert ring.sq_ready() == 3
    assert ring.enter(3, 0) == 3
    got = ring.copy_cqes(wait_nr=1, timeout=5)
    assert [(int(c["user_data"]), int(c["res"])) for c in got] == [(0x5B, 0)]
    assert ring.in_flight == 0


# --- batch and push_sqes ----------------------------------------------------------------------


def test_skip_batch_flags_column(make_ring: Callable[..., IoUring], tmp_file: Any) -> None:
    ring = skip_ring(make_ring)
    f = tmp_file(bytes(range(32)))
    buf = bytearray(32)
    ud = np.full(4, 0xBA7C, np.uint64)
    flags = np.array([MEMBER, MEMBER, MEMBER, 0], np.uint8)
    assert ring.read_batch(ud, f.fd, buf, [0, 8, 16, 24], 8, sqe_flags=flags) == 4
    assert reap_all(ring, 1) == [(0xBA7C, 0 + 8)]  # the last read's result
    assert buf == bytes(range(32))
    assert ring.pinned == 0
    with pytest.raises(ValueError, match=r"sqe_flags: SqeFlags.CQE_SKIP_SUCCESS.*IO_LINK"):
        ring.nop_batch(ud, sqe_flags=SKIP)
    # Chain rules at submit: a scalar user_data counts up, so the members differ.
    assert ring.nop_batch(7, count=2, sqe_flags=[MEMBER, 0]) == 2
    with pytest.raises(ValueError, match="user_data"):
        ring.submit()
    ring.close()  # a batch has no handles to fix it with: close() discards it


def test_skip_push_sqes(make_ring: Callable[..., IoUring], tmp_file: Any) -> None:
    ring = skip_ring(make_ring)
    f = tmp_file(b"p" * 16)
    buf = bytearray(16)
    rows = np.zeros(3, dtype=SQE_DTYPE)
    rows["user_data"] = 0x9054
    rows["opcode"] = [Op.READ, Op.NOP, Op.NOP]
    rows["fd"][0] = f.fd
    rows["addr"][0], rows["len"][0] = addr_of(buf), 16
    rows["flags"] = [MEMBER, MEMBER, 0]
    assert ring.push_sqes(rows, buf) == 3
    assert reap_all(ring, 1) == [(0x9054, 0)]
    assert buf == b"p" * 16 and ring.pinned == 0
    bad = rows.copy()
    bad["flags"][1] = SKIP
    with pytest.raises(ValueError, match=r"sqes\[1\]: SqeFlags.CQE_SKIP_SUCCESS.*IO_LINK"):
        ring.push_sqes(bad, buf)
    assert ring.sq_ready() == 0


# --- random chains ----------------------------------------------------------------------------

KINDS = ("nop", "read", "bad_read", "short_read")


def expected_completions(sqes: list[tuple[int, int]]) -> int | None:
    """The model: completions posted for SQEs given as (flags, user_data), or None when the
    ring must refuse them (a chain using the flag that breaks one of its rules)."""
    total = 0
    chain: list[tuple[int, int]] = []
    for i, sqe in enumerate(sqes):
        chain.append(sqe)
        if sqe[0] & LINK and i < len(sqes) - 1:
            continue
        skips = [bool(f & SKIP) for f, _ in chain]
        if not any(skips):
            total += len(chain)
        elif (
            all(skips[:-1])
            and not skips[-1]
            and not chain[-1][0] & LINK
            and len({ud for _, ud in chain}) == 1
        ):
            total += 1
        else:
            return None
        chain = []
    return total


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    chains=st.lists(
        st.tuples(
            st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),  # the members
            st.booleans(),  # skip on every member but the last
            st.sampled_from(["ok", "ok", "lone", "last_skipped", "mixed_ud", "plain_first"]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_skip_random_chains(
    make_default_ring: Callable[..., IoUring], tmp_path: Any, chains: list[Any]
) -> None:
    """Random chains with and without the flag, valid or breaking one rule: valid ones post
    one completion per chain using the flag and one per member of the others, broken ones are
    refused at submit, and nothing stays in flight or pinned."""
    ring = make_default_ring(32)
    path = tmp_path / "data"
    path.write_bytes(bytes(range(256)))
    fd = os.open(path, os.O_RDONLY)
    fds = [fd]
    buffers: list[bytearray] = []
    sqes: list[tuple[int, int]] = []
    try:
        for key, (members, skip, variant) in enumerate(chains, start=1):
            n = len(members)
            for i, kind in enumerate(members):
                buf = bytearray(8)
                buffers.append(buf)
                last = i == n - 1
                ud = key + 1000 if variant == "mixed_ud" and last and n > 1 else key
                if kind == "nop":
                    sqe = ring.nop(ud)
                elif kind == "read":
                    sqe = ring.read(ud, fd, buf, 8 * i)
                elif kind == "bad_read":
                    sqe = ring.read(ud, 987654, buf, 0)
                else:  # a short read: its pipe holds 3 bytes
                    r, w = os.pipe()
                    fds += [r, w]
                    os.write(w, b"abc")
                    sqe = ring.read(ud, r, buf, -1)
                flags = 0 if last else LINK
                if skip and not last:
                    flags |= SKIP
                if variant == "plain_first" and i == 0 and not last:
                    flags = LINK
                if variant == "last_skipped" and skip and last:
                    flags = MEMBER  # links into the next chain (or leaves it unfinished)
                if variant == "lone" and skip and last:
                    with pytest.raises(ValueError, match=r"CQE_SKIP_SUCCESS.*IO_LINK"):
                        sqe.flags = SKIP
                sqe.flags = flags
                sqes.append((flags, ud))
        expected = expected_completions(sqes)
        if expected is None:
            ready = ring.sq_ready()
            with pytest.raises(ValueError, match="CQE_SKIP_SUCCESS"):
                ring.submit()
            assert ring.sq_ready() == ready and ring.in_flight == 0
            ring.close()
            return
        ring.submit()
        got = ring.copy_cqes(wait_nr=expected, timeout=5) if expected else ring.copy_cqes()
        assert len(got) == expected
        assert ring.in_flight == 0 and ring.pinned == 0
        ring.nop(0xFFFF)
        ring.submit()
        tail = ring.copy_cqes(wait_nr=1, timeout=5)
        assert [int(c["user_data"]) for c in tail] == [0xFFFF]  # no stray completion
    finally:
        if not ring.closed:
            ring.close()
        for f in fds:
            os.close(f)
        del buffers
        gc.collect()


def test_batch_with_skip_flag_on_sqpoll_ring_is_refused_before_preparing() -> None:
    # Found only at submit before, with the batch already in the SQ, so every later submit
    # raised and the ring had to be closed.
    try:
        ring = IoUring(8, flags=SetupFlags.SQPOLL)
    except OSError as e:
        pytest.skip(f"SQPOLL rings cannot be made here: {e}")
    with ring:
        with pytest.raises(ValueError, match=r"sqe_flags: operation 0: .*CQE_SKIP_SUCCESS.*SQPOLL"):
            ring.nop_batch(np.array([7, 7], dtype=np.uint64), sqe_flags=[MEMBER, 0])
        assert ring.sq_ready() == 0
        ring.nop(1)
        ring.submit()
        assert [int(c["user_data"]) for c in ring.copy_cqes(wait_nr=1, timeout=5)] == [1]
