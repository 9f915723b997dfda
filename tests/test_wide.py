"""Wide rings: 128-byte SQEs (SetupFlags.SQE128) and 32-byte CQEs (SetupFlags.CQE32), and the
Cqe type.

Every ring test runs over the configurations of conftest.py combined with SQE128, CQE32 and
both: completions must be read with the ring's CQE stride on every path (copy_cqe, copy_cqes,
peek_cqe, cq_advance, close), SQE slots must be reset over their whole size, and the extra
64 bytes of an SQE128 entry are reachable only as ``Sqe.cmd`` on URING_CMD SQEs.
"""

from __future__ import annotations

import errno
import os
import pickle
import socket
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pytest
from conftest import RingConfig, TmpFile
from kernel_support import skip_lacking

from iouring import (
    CQE32_DTYPE,
    CQE_DTYPE,
    SQE_DTYPE,
    Cqe,
    CqeFlags,
    IoUring,
    NopFlags,
    Op,
    SetupFlags,
    SocketCmd,
    Sqe,
    SqeFlags,
    StaleSqeError,
)

WIDE_FLAGS = (
    SetupFlags.SQE128,
    SetupFlags.CQE32,
    SetupFlags.SQE128 | SetupFlags.CQE32,
)
WIDE_IDS = ("sqe128", "cqe32", "sqe128_cqe32")

MakeRing = Callable[..., IoUring]


@pytest.fixture(params=WIDE_FLAGS, ids=WIDE_IDS)
def wide_flags(request: pytest.FixtureRequest) -> SetupFlags:
    """SQE128, CQE32 or both, combined with the ring configuration of the run."""
    return SetupFlags(request.param)


@pytest.fixture
def make_wide_ring(make_ring: MakeRing, wide_flags: SetupFlags) -> MakeRing:
    """``make_wide_ring(entries, **kwargs)``: ``make_ring`` with the wide flags or-ed in."""

    def make(entries: int = 8, **kwargs: object) -> IoUring:
        flags = int(kwargs.pop("flags", 0)) | int(wide_flags)  # type: ignore[call-overload]
        return make_ring(entries, flags=flags, **kwargs)

    return make


@pytest.fixture
def wide_ring(make_wide_ring: MakeRing) -> IoUring:
    """A 16-entry wide ring of the current configuration."""
    return make_wide_ring(16)


@pytest.fixture
def udp_socket() -> Iterator[socket.socket]:
    """A UDP socket bound to 127.0.0.1 (SIOCINQ on it is a socket command that reads no cmd)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def is_cqe32(ring: IoUring) -> bool:
    return bool(ring.flags & SetupFlags.CQE32)


def is_sqe128(ring: IoUring) -> bool:
    return bool(ring.flags & SetupFlags.SQE128)


def dtype_of(ring: IoUring) -> np.dtype[np.void]:
    return CQE32_DTYPE if is_cqe32(ring) else CQE_DTYPE


def reap(ring: IoUring, count: int) -> dict[int, list[Cqe]]:
    """Submits, waits for and reaps exactly ``count`` completions, grouped by user_data."""
    ring.submit_and_wait(count)
    got: dict[int, list[Cqe]] = {}
    for _ in range(count):
        cqe = ring.copy_cqe(timeout=5)
        got.setdefault(cqe.user_data, []).append(cqe)
    assert ring.cq_ready() == 0
    return got


def cmd_field(sqe: Sqe) -> object:
    """The "cmd" entry of sqe.fields() (bytes, on SQE128 rings only)."""
    fields: dict[str, object] = dict(sqe.fields())
    return fields["cmd"]


def nop_cqe32_sqes(items: list[tuple[int, int, int]]) -> npt.NDArray[np.void]:
    """NOPs with NopFlags.CQE32: each (user_data, off, addr) posts big_cqe = (off, addr)."""
    sqes = np.zeros(len(items), SQE_DTYPE)
    for i, (user_data, extra1, extra2) in enumerate(items):
        sqes[i]["opcode"] = Op.NOP
        sqes[i]["user_data"] = user_data
        sqes[i]["rw_flags"] = NopFlags.CQE32
        sqes[i]["off"] = extra1
        sqes[i]["addr"] = extra2
    return sqes


# --------------------------------------------------------------------------------------------
# The Cqe type


def test_cqe_fields_equality_and_hash() -> None:
    cqe = Cqe(0xAAAAAAAA, -errno.ENOENT, CqeFlags.MORE)
    assert (cqe.user_data, cqe.res, cqe.flags) == (0xAAAAAAAA, -errno.ENOENT, 2)
    assert cqe == Cqe(0xAAAAAAAA, -errno.ENOENT, CqeFlags.MORE)
    assert cqe != Cqe(0xAAAAAAAA, -errno.ENOENT, 0)
    assert hash(cqe) == hash(Cqe(0xAAAAAAAA, -errno.ENOENT, 2))
    assert len({cqe, Cqe(0xAAAAAAAA, -errno.ENOENT, 2), Cqe(1)}) == 2
    assert cqe != (0xAAAAAAAA, -errno.ENOENT, 2)  # a Cqe compares with Cqes only
    user_data, res, flags = cqe
    assert (user_data, res, flags) == (0xAAAAAAAA, -errno.ENOENT, 2)
    assert Cqe() == Cqe(0, 0, 0) == Cqe(user_data=0, res=0, flags=0)
    assert Cqe(2**64 - 1, -(2**31), 2**32 - 1).user_data == 2**64 - 1


def test_cqe_big_cqe_none_equals_zero_pair() -> None:
    plain = Cqe(0xBB, 0, 0)
    wide = Cqe(0xBB, 0, 0, (0, 0))
    assert plain.big_cqe is None
    assert wide.big_cqe == (0, 0)
    assert plain == wide and hash(plain) == hash(wide)
    extra = Cqe(0xBB, 0, 0, big_cqe=(1, 2**64 - 1))
    assert extra.big_cqe == (1, 2**64 - 1)
    assert extra != plain
    assert extra != Cqe(0xBB, 0, 0, (2, 1))
    assert list(extra) == [0xBB, 0, 0]  # unpacks as the 16-byte CQE


def test_cqe_repr_pickle_and_record_access() -> None:
    cqe = Cqe(0xAAAAAAAA, 5, CqeFlags.BUFFER | (7 << 16))
    assert repr(cqe) == "Cqe(user_data=0xaaaaaaaa, res=5, flags=0x70001)"
    assert repr(Cqe(1, 0, 0, (0x10, 0))) == "Cqe(user_data=0x1, res=0, flags=0, big_cqe=(0x10, 0))"
    for value in (cqe, Cqe(1, -1, 0, (3, 4))):
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value and copy.big_cqe == value.big_cqe
    assert (cqe["user_data"], cqe["res"], cqe["flags"]) == (0xAAAAAAAA, 5, 0x70001)
    assert cqe.dtype == CQE_DTYPE
    assert Cqe(1, 0, 0, (3, 4)).dtype == CQE32_DTYPE
    assert Cqe(1, 0, 0, (3, 4))["big_cqe"] == (3, 4)
    with pytest.raises(KeyError):
        cqe["big_cqe"]
    with pytest.raises(KeyError):
        cqe[0]  # type: ignore[index]


def test_cqe_flag_helpers() -> None:
    assert Cqe(1, 0, CqeFlags.BUFFER | (513 << 16)).buffer_id == 513
    assert Cqe(1, 0, 513 << 16).buffer_id is None
    helpers = {
        "more": CqeFlags.MORE,
        "notif": CqeFlags.NOTIF,
        "sock_nonempty": CqeFlags.SOCK_NONEMPTY,
        "buf_more": CqeFlags.BUF_MORE,
    }
    for name, flag in helpers.items():
        assert getattr(Cqe(1, 0, flag), name) is True, name
        assert getattr(Cqe(1, 0, ~flag & 0xFFFF), name) is False, name
    assert Cqe(1, 7, 0).result() == 7
    with pytest.raises(FileNotFoundError):
        Cqe(1, -errno.ENOENT, 0).result()


def test_cqe_is_immutable_and_checks_its_arguments() -> None:
    cqe = Cqe(1, 2, 3)
    with pytest.raises(AttributeError):
        cqe.res = 4  # type: ignore[misc]
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: Cqe(-1), OverflowError, "user_data"),
        (lambda: Cqe(2**64), OverflowError, "user_data"),
        (lambda: Cqe(1, 2**31), OverflowError, "res"),
        (lambda: Cqe(1, 0, -1), OverflowError, "flags"),
        (lambda: Cqe("1"), TypeError, "user_data"),  # type: ignore[arg-type]
        (lambda: Cqe(1, 0, 0, (1,)), TypeError, "big_cqe"),  # type: ignore[arg-type]
        (lambda: Cqe(1, 0, 0, (1, -1)), OverflowError, r"big_cqe\[1\]"),
        (lambda: Cqe(1, 0, 0, (0, 0), 0), TypeError, "at most"),  # type: ignore[call-arg]
    ]
    for make, exc_type, message in cases:
        with pytest.raises(exc_type, match=message):
            make()


# --------------------------------------------------------------------------------------------
# SQE128 / CQE32 rings


def test_wide_ring_reports_its_flags(wide_ring: IoUring, wide_flags: SetupFlags) -> None:
    assert wide_ring.flags & wide_flags == wide_flags
    assert wide_ring.sq_entries == 16


def test_wide_nop_copy_cqe_and_peek(wide_ring: IoUring, ring_config: RingConfig) -> None:
    ring = wide_ring
    sqe = ring.nop(0xAAAAAAAA)
    assert sqe.fields()["opcode"] == Op.NOP
    ring.submit_and_wait(1)
    peeked = ring.peek_cqe()
    assert peeked is not None
    assert peeked == Cqe(0xAAAAAAAA, 0, 0)
    assert peeked.big_cqe == ((0, 0) if is_cqe32(ring) else None)
    ring.cqe_seen(peeked)
    ring.nop(0xBBBBBBBB)
    cqe = reap(ring, 1)[0xBBBBBBBB][0]
    assert cqe == Cqe(0xBBBBBBBB, 0, 0)
    assert cqe.big_cqe == ((0, 0) if is_cqe32(ring) else None)
    assert ring.in_flight == 0 and ring.pinned == 0


def test_wide_copy_cqes_uses_the_ring_dtype(make_wide_ring: MakeRing) -> None:
    ring = make_wide_ring(4)
    dtype = dtype_of(ring)
    total = 0
    # Wraps the 4-entry SQ and 8-entry CQ many times: the stride must hold around the wrap.
    for round_ in range(40):
        for i in range(3):
            ring.nop(round_ * 3 + i)
        ring.submit_and_wait(3)
        out = np.zeros(2, dtype)
        first = ring.copy_cqes(out)
        rest = ring.copy_cqes()
        assert first.dtype == dtype and rest.dtype == dtype
        got = np.concatenate([first, rest])
        assert sorted(got["user_data"].tolist()) == [round_ * 3 + i for i in range(3)]
        assert got["res"].tolist() == [0, 0, 0] and got["flags"].tolist() == [0, 0, 0]
        if is_cqe32(ring):
            assert got["big_cqe"].tolist() == [[0, 0]] * 3
        total += len(got)
    assert total == 120
    assert ring.in_flight == 0


def test_wide_copy_cqes_refuses_the_other_dtype(make_wide_ring: MakeRing) -> None:
    ring = make_wide_ring(4)
    ring.nop(0xCC)
    ring.submit_and_wait(1)
    wrong = CQE_DTYPE if is_cqe32(ring) else CQE32_DTYPE
    with pytest.raises(ValueError, match="out"):
        ring.copy_cqes(np.zeros(4, wrong))
    with pytest.raises(TypeError, match="out"):
        ring.copy_cqes(np.zeros(4, np.uint64))
    assert ring.cq_ready() == 1  # nothing was consumed
    assert ring.copy_cqes(np.zeros(4, dtype_of(ring)))["user_data"].tolist() == [0xCC]


def test_cqe_dtype_mismatch_on_plain_ring(ring: IoUring) -> None:
    ring.nop(0xDD)
    ring.submit_and_wait(1)
    with pytest.raises(ValueError, match="out has dtype CQE32_DTYPE"):
        ring.copy_cqes(np.zeros(2, CQE32_DTYPE))
    assert ring.copy_cqe() == Cqe(0xDD, 0, 0)


def test_wide_nop_cqe32_extra_data(make_ring: MakeRing) -> None:
    ring = make_ring(8, flags=SetupFlags.CQE32)
    ring.push_sqes(nop_cqe32_sqes([(0xAAAAAAAA, 0x1111, 0x2222), (0xBBBBBBBB, 2**64 - 1, 0)]))
    ring.submit_and_wait(2, timeout=30)
    first = ring.copy_cqe()
    if first.res == -errno.EINVAL:  # the probe lists operations, not NOP's flags: ask NOP
        ring.copy_cqes(wait_nr=1)
        skip_lacking("6.18", "NopFlags.CQE32")
    rest = ring.copy_cqes(np.zeros(4, CQE32_DTYPE), wait_nr=1)
    assert first == Cqe(0xAAAAAAAA, 0, 0, (0x1111, 0x2222))
    assert first.big_cqe == (0x1111, 0x2222)
    assert rest["user_data"].tolist() == [0xBBBBBBBB]
    assert rest["big_cqe"].tolist() == [[2**64 - 1, 0]]
    # cq_advance and close settle CQE32 entries too.
    ring.push_sqes(nop_cqe32_sqes([(0xCC, 5, 6), (0xDD, 7, 8)]))
    ring.submit_and_wait(2)
    ring.cq_advance(2)
    assert ring.in_flight == 0


def test_wait_submits_what_the_kernel_left_after_a_failed_sqe(make_ring: MakeRing) -> None:
    """Without SetupFlags.SUBMIT_ALL the kernel stops a submission at an SQE that fails before
    it is issued and leaves the rest in the SQ: a wait for their completions submits them
    (it waited for ever before, on every kernel; on 6.1 and 6.12 a NOP with NopFlags.CQE32
    is such an SQE)."""
    ring = make_ring(8)
    sqes = np.zeros(3, SQE_DTYPE)
    sqes["opcode"] = Op.NOP
    sqes["user_data"] = [0xBAD, 0x600D1, 0x600D2]
    sqes[0]["rw_flags"] = 1 << 30  # no NOP flag: EINVAL in the prep on every kernel
    ring.push_sqes(sqes)
    ring.submit_and_wait(3, timeout=30)
    got = sorted(ring.copy_cqes(wait_nr=3, timeout=30).tolist())
    assert got == [(0xBAD, -errno.EINVAL, 0), (0x600D1, 0, 0), (0x600D2, 0, 0)]
    assert (ring.in_flight, ring.sq_ready()) == (0, 0)
    # The same through copy_cqes(wait_nr) alone, after a submit() that stopped early.
    sqes["user_data"] = [0xBAD3, 0x600D3, 0x600D4]
    ring.push_sqes(sqes)
    ring.submit()
    got = sorted(ring.copy_cqes(wait_nr=3, timeout=30).tolist())
    assert got == [(0xBAD3, -errno.EINVAL, 0), (0x600D3, 0, 0), (0x600D4, 0, 0)]
    assert (ring.in_flight, ring.sq_ready()) == (0, 0)


def test_nop_cqe32_on_a_16_byte_ring_fails_in_the_cqe(make_ring: MakeRing) -> None:
    ring = make_ring(8)
    ring.push_sqes(nop_cqe32_sqes([(0xEE, 1, 2)]))
    cqe = reap(ring, 1)[0xEE][0]
    assert cqe.big_cqe is None
    assert cqe.res in (-errno.EINVAL, 0)  # 0: a kernel before NOP flags ignores them


def test_push_sqes_nop_off_addr_need_nop_cqe32(ring: IoUring) -> None:
    sqes = nop_cqe32_sqes([(1, 5, 6)])
    sqes[0]["rw_flags"] = 0
    with pytest.raises(ValueError, match=r"sqes\[0\]: off must be 0"):
        ring.push_sqes(sqes)
    assert ring.sq_ready() == 0


def test_wide_batch_paths(wide_ring: IoUring, tmp_file: Callable[..., TmpFile]) -> None:
    ring = wide_ring
    data = bytes(range(256)) * 16
    f = tmp_file(data)
    fd = f.fileno()
    assert ring.nop_batch(np.arange(0x100, 0x108)) == 8
    buf = bytearray(4096)
    assert ring.read_batch(np.arange(0x200, 0x208), fd, buf, np.arange(8) * 512, 512) == 8
    got = reap(ring, 16)
    assert sorted(got) == [*range(0x100, 0x108), *range(0x200, 0x208)]
    for user_data, cqes in got.items():
        expected = 512 if user_data >= 0x200 else 0
        assert cqes == [Cqe(user_data, expected, 0)]
        assert cqes[0].big_cqe == ((0, 0) if is_cqe32(ring) else None)
    assert bytes(buf) == data[:4096]
    assert ring.in_flight == 0 and ring.pinned == 0


def test_wide_push_sqes(wide_ring: IoUring, tmp_file: Callable[..., TmpFile]) -> None:
    ring = wide_ring
    f = tmp_file(b"0123456789abcdef")
    fd = f.fileno()
    buf = bytearray(16)
    base = np.frombuffer(buf, np.uint8).ctypes.data
    sqes = np.zeros(3, SQE_DTYPE)
    sqes["user_data"] = [0xA1, 0xA2, 0xA3]
    sqes[1:]["opcode"] = Op.READ
    sqes[1:]["fd"] = fd
    sqes[1]["addr"], sqes[1]["len"], sqes[1]["off"] = base, 8, 0
    sqes[2]["addr"], sqes[2]["len"], sqes[2]["off"] = base + 8, 8, 8
    assert ring.push_sqes(sqes, buf) == 3
    got = reap(ring, 3)
    assert got == {0xA1: [Cqe(0xA1, 0, 0)], 0xA2: [Cqe(0xA2, 8, 0)], 0xA3: [Cqe(0xA3, 8, 0)]}
    assert bytes(buf) == b"0123456789abcdef"
    assert ring.pinned == 0


def test_wide_sqe_slots_wrap_around(make_wide_ring: MakeRing) -> None:
    ring = make_wide_ring(4)
    seen: list[int] = []
    for round_ in range(50):
        for i in range(4):
            sqe = ring.get_sqe()
            assert sqe.fields()["user_data"] == 0  # reset over the whole entry
            if is_sqe128(ring):
                assert sqe.cmd == bytes(64)
            sqe.prep_nop(round_ * 4 + i)
        seen.extend(reap(ring, 4))
    assert sorted(seen) == list(range(200))


# --------------------------------------------------------------------------------------------
# Sqe.cmd: the extra 64 bytes of SQE128 entries


def test_sqe_fields_include_cmd_on_sqe128_only(make_ring: MakeRing) -> None:
    wide = make_ring(4, flags=SetupFlags.SQE128)
    sqe = wide.nop(0xAB)
    assert cmd_field(sqe) == bytes(64)
    assert sqe.cmd == bytes(64)
    plain = make_ring(4)
    other = plain.nop(0xAC)
    assert "cmd" not in other.fields()
    assert other.cmd == b""
    with pytest.raises(AttributeError):
        other.cmd = b"x"  # type: ignore[misc]
    reap(wide, 1)
    reap(plain, 1)


def test_sqe_cmd_on_uring_cmd(make_ring: MakeRing, udp_socket: socket.socket) -> None:
    """cmd is read-only and zeros: the socket commands read none of it, and bytes from Python
    could reach another driver's uring_cmd handler (NVMe passthrough reads addresses there)."""
    ring = make_ring(4, flags=SetupFlags.SQE128)
    if Op.URING_CMD not in ring.probe_ops():
        pytest.skip("kernel lacks IORING_OP_URING_CMD")
    sqe = ring.cmd_sock(0xC0DE, SocketCmd.SIOCINQ, udp_socket)
    assert sqe.cmd == bytes(64)
    assert cmd_field(sqe) == sqe.cmd
    with pytest.raises(AttributeError):
        sqe.cmd = b"\x01"  # type: ignore[misc]
    assert sqe.cmd == bytes(64)
    sqe.flags = SqeFlags.FIXED_FILE  # nothing in cmd can reach a registered file's driver
    sqe.flags = 0
    got = reap(ring, 1)
    res = got[0xC0DE][0].res
    if res in (-errno.EOPNOTSUPP, -errno.EINVAL):
        pytest.skip(f"kernel refuses socket commands: {os.strerror(-res)}")
    assert got[0xC0DE] == [Cqe(0xC0DE, 0, 0)]  # nothing queued on the socket
    # The slot comes back zeroed.
    for _ in range(3):
        reap(ring, 0)
        sqe = ring.get_sqe()
        assert sqe.cmd == bytes(64)
        sqe.prep_nop(0x2)
        reap(ring, 1)


@pytest.mark.parametrize("cmd_op", [4, 5, 0x80, 0xC0484E80, 2**32 - 1])
def test_cmd_sock_refuses_other_commands(
    make_ring: MakeRing, udp_socket: socket.socket, cmd_op: int
) -> None:
    """URING_CMD goes to whatever driver owns fd: only the four socket commands whose layout
    cmd_sock writes are accepted (0xC0484E80 is NVMe passthrough's NVME_URING_CMD_IO)."""
    ring = make_ring(4, flags=SetupFlags.SQE128)
    before = (ring.sq_ready(), ring.in_flight, ring.pinned)
    with pytest.raises(ValueError, match="cmd_op must be SocketCmd"):
        ring.cmd_sock(0xC2, cmd_op, udp_socket)
    assert (ring.sq_ready(), ring.in_flight, ring.pinned) == before


def test_wide_stale_handles(make_wide_ring: MakeRing) -> None:
    ring = make_wide_ring(4)
    sqe = ring.nop(0xF0)
    ring.submit_and_wait(1)
    assert not sqe.valid
    with pytest.raises(StaleSqeError):
        sqe.fields()
    with pytest.raises(StaleSqeError):
        _ = sqe.cmd
    assert ring.copy_cqe() == Cqe(0xF0, 0, 0)
    late = ring.nop(0xF1)
    ring.close()
    assert not late.valid
    with pytest.raises(ValueError, match="closed"):
        _ = late.cmd


def test_wide_close_with_operations_in_flight(
    make_wide_ring: MakeRing, make_pipe: Callable[[], tuple[int, int]]
) -> None:
    ring = make_wide_ring(8)
    r, _w = make_pipe()
    buf = bytearray(8)
    ring.read(0xAB, r, buf, -1)
    ring.nop(0xAC)
    ring.submit()
    assert ring.pinned >= 1
    ring.close()  # cancels the read, drains its CQE32/SQE128 completions, releases buf
    buf.extend(b"resizable again")  # no export is left


def test_wide_setup_refusals_remain() -> None:
    for flag, name in ((SetupFlags.CQE_MIXED, "CQE_MIXED"), (SetupFlags.SQE_MIXED, "SQE_MIXED")):
        with pytest.raises(ValueError, match=name):
            IoUring(4, flags=flag)
