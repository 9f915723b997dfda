"""One rule per argument kind, the same on every path (one-call, prep, batch, asyncio).

Each test here pins a place where two paths used to apply two different rules to the same
kind of argument (issue 12):

- registered-file slots: ``socket_direct``/``accept_direct`` took ``2**32-2``, which the kernel
  stores as slot + 1 = ``FILE_INDEX_ALLOC`` ("any free slot"), while ``openat_direct``
  refused it;
- ``AsyncRing.read_batch`` had its own broadcasting rule and refused arguments that
  ``IoUring.read_batch`` runs;
- batch methods refused file objects (with ``fileno()``) that the one-call methods take;
- ``raise_for_errors`` lived in ``iouring.aio`` and refused CQE32 completions.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import iouring
from iouring import CQE32_DTYPE, CQE_DTYPE, FILE_INDEX_ALLOC, IoUring, SetupFlags, aio

MakeRing = Callable[..., IoUring]

# --------------------------------------------------------------------------------------------
# Registered-file slots

# Every operation that names a slot, with a callable preparing it with that slot, and whether
# FILE_INDEX_ALLOC ("the kernel picks a free slot, res is the slot") is meaningful there.
_SLOT_OPS: dict[str, tuple[Callable[[IoUring, int], Any], bool]] = {
    "socket_direct": (
        lambda r, slot: r.socket_direct(1, socket.AF_INET, socket.SOCK_STREAM, 0, slot),
        True,
    ),
    "accept_direct": (lambda r, slot: r.accept_direct(1, 0, None, 0, slot), True),
    "openat_direct": (
        lambda r, slot: r.openat_direct(1, iouring.AT_FDCWD, "/", os.O_RDONLY, 0, slot),
        True,
    ),
    "openat2_direct": (
        lambda r, slot: r.openat2_direct(1, iouring.AT_FDCWD, "/", os.O_RDONLY, 0, 0, slot),
        True,
    ),
    "msg_ring_fd": (lambda r, slot: r.msg_ring_fd(1, r.fd, 0, slot), True),
    "close_direct": (lambda r, slot: r.close_direct(1, slot), False),
    "fixed_fd_install": (lambda r, slot: r.fixed_fd_install(1, slot), False),
    "prep_socket_direct": (
        lambda r, slot: r.get_sqe().prep_socket_direct(
            1, socket.AF_INET, socket.SOCK_STREAM, 0, slot
        ),
        True,
    ),
    "prep_accept_direct": (
        lambda r, slot: r.get_sqe().prep_accept_direct(1, 0, None, 0, slot),
        True,
    ),
}


@pytest.mark.parametrize("op", sorted(_SLOT_OPS))
@pytest.mark.parametrize("slot", [2**32 - 2, 2**31 - 1, 2**32, -1])
def test_arguments_slot_out_of_range_refused_everywhere(
    make_default_ring: MakeRing, op: str, slot: int
) -> None:
    ring = make_default_ring(4)
    prepare, _ = _SLOT_OPS[op]
    with pytest.raises(OverflowError, match=r"must be a slot in 0\.\.2\*\*31-2"):
        prepare(ring, slot)
    assert ring.pinned == 0


@pytest.mark.parametrize("op", sorted(_SLOT_OPS))
def test_arguments_slot_alloc_where_meaningful(make_default_ring: MakeRing, op: str) -> None:
    ring = make_default_ring(4)
    prepare, alloc = _SLOT_OPS[op]
    if alloc:
        prepare(ring, FILE_INDEX_ALLOC)
    else:
        with pytest.raises(ValueError, match="FILE_INDEX_ALLOC is not allowed here"):
            prepare(ring, FILE_INDEX_ALLOC)
    prepare(ring, 2**31 - 2)  # the highest slot is a slot everywhere
    # no file table: the kernel answers each with an error, at once
    ring.submit_and_wait(ring.sq_ready())
    ring.copy_cqes(None, 1 + alloc)
    assert ring.in_flight == 0


def test_arguments_slot_2_32_minus_2_would_allocate(make_default_ring: MakeRing) -> None:
    """Why 2**32-2 must be refused: the kernel stores slot + 1, and reads 2**32-1 as "any free
    slot" (FILE_INDEX_ALLOC), so 2**32-2 would silently land in whatever slot is free."""
    ring = make_default_ring(4)
    ring.register_files_sparse(4)
    ring.socket_direct(0xAAAA, socket.AF_INET, socket.SOCK_STREAM, 0, FILE_INDEX_ALLOC)
    ring.submit_and_wait(1)
    cqe = ring.copy_cqe()
    if cqe.res == -22:  # EINVAL: a kernel without socket_direct
        pytest.skip("kernel refuses socket_direct")
    assert cqe.res == 0  # the slot the kernel picked, where a named slot would give 0 too...
    ring.socket_direct(0xBBBB, socket.AF_INET, socket.SOCK_STREAM, 0, FILE_INDEX_ALLOC)
    ring.submit_and_wait(1)
    assert ring.copy_cqe().res == 1  # ...but the next one shows it: slots are being allocated
    with pytest.raises(OverflowError, match="file_index must be a slot"):
        ring.socket_direct(0xCCCC, socket.AF_INET, socket.SOCK_STREAM, 0, 2**32 - 2)


# --------------------------------------------------------------------------------------------
# The asyncio batch awaits hand their columns to the ring's rule


def test_arguments_aio_read_batch_broadcasts_like_the_ring(
    make_default_ring: MakeRing, tmp_file: Any
) -> None:
    data = bytes(range(256)) * 4
    f = tmp_file(data)
    offsets = np.array([0, 100, 200, 300])
    # fd as a length-1 array: it applies to every operation (NumPy's rule, the ring's rule).
    args = (np.array([f.fd]), offsets, 16)

    ring = make_default_ring(8)
    buf = bytearray(64)
    assert ring.read_batch(0, args[0], buf, args[1], args[2]) == 4
    ring.submit_and_wait(4)
    assert sorted(ring.copy_cqes()["res"].tolist()) == [16] * 4
    expected = b"".join(data[o : o + 16] for o in offsets)
    assert bytes(buf) == expected

    async def main() -> None:
        aring = aio.AsyncRing(ring=make_default_ring(8))
        abuf = bytearray(64)
        cqes = await aring.read_batch(args[0], abuf, args[1], args[2])
        assert cqes["res"].tolist() == [16] * 4
        assert bytes(abuf) == expected
        # a length-1 length array broadcasts too, packed offsets follow it
        abuf2 = bytearray(64)
        cqes = await aring.read_batch(f, abuf2, offsets, np.array([16]))
        assert cqes["res"].tolist() == [16] * 4
        assert bytes(abuf2) == expected
        await aring.aclose()

    asyncio.run(main())


def test_arguments_aio_batch_same_errors_as_ring(make_default_ring: MakeRing) -> None:
    async def main() -> None:
        aring = aio.AsyncRing(ring=make_default_ring(8))
        with pytest.raises(ValueError, match="array lengths differ: fd has 2, offset has 3"):
            await aring.read_batch(np.array([0, 0]), bytearray(8), np.zeros(3, np.int64), 1)
        with pytest.raises(ValueError, match="count is needed"):
            await aring.read_batch(0, bytearray(8), 0, 1)
        await aring.aclose()

    asyncio.run(main())


def test_arguments_batch_size_is_the_rings_rule() -> None:
    from iouring import _core

    assert _core.batch_size({"a": 1, "b": np.arange(5), "c": [7]}) == 5
    assert _core.batch_size({"a": 1}, 3) == 3
    assert _core.batch_size({"a": np.zeros(0)}) == 0
    with pytest.raises(ValueError, match="array lengths differ: a has 2, b has 3"):
        _core.batch_size({"a": [1, 2], "b": [1, 2, 3]})
    with pytest.raises(ValueError, match="count is needed"):
        _core.batch_size({"a": 1, "b": None})


# --------------------------------------------------------------------------------------------
# File objects in batches


def test_arguments_batch_accepts_file_objects(make_default_ring: MakeRing, tmp_file: Any) -> None:
    f = tmp_file(b"abcdefgh")
    ring = make_default_ring(8)
    buf = bytearray(8)
    with open(f.fd, "rb", closefd=False) as pyfile:
        # the same file object the one-call method takes
        ring.read(1, pyfile, bytearray(1), 0)
        assert ring.read_batch(np.array([2, 3], np.uint64), pyfile, buf, [0, 4], 4) == 2
        assert ring.fsync_batch(np.array([4], np.uint64), f) == 1
        ring.submit_and_wait(4)
        cqes = ring.copy_cqes()
    assert sorted(cqes["res"].tolist()) == [0, 1, 4, 4]
    assert bytes(buf) == b"abcdefgh"


def test_arguments_batch_file_object_bad_fileno(make_default_ring: MakeRing) -> None:
    class Bad:
        def fileno(self) -> str:
            return "x"

    ring = make_default_ring(4)
    with pytest.raises(TypeError, match="fd must be an int"):
        ring.read_batch(0, Bad(), bytearray(4), [0], 4)  # type: ignore[arg-type]
    assert ring.sq_ready() == 0


# --------------------------------------------------------------------------------------------
# raise_for_errors


def test_arguments_raise_for_errors_in_core_package() -> None:
    assert aio.raise_for_errors is iouring.raise_for_errors
    assert "raise_for_errors" in iouring.__all__


@pytest.mark.parametrize("flags", [0, int(SetupFlags.CQE32)], ids=["cqe16", "cqe32"])
def test_arguments_raise_for_errors_any_cqe_size(make_default_ring: MakeRing, flags: int) -> None:
    ring = make_default_ring(4, flags=flags)
    r, w = os.pipe()
    os.close(r)
    os.close(w)  # a closed fd: EBADF
    ring.nop(0xAAAA)
    ring.read(0xBBBB, r, bytearray(1), 0)
    ring.submit_and_wait(2)
    cqes = ring.copy_cqes(None, 2)
    assert cqes.dtype == (CQE32_DTYPE if flags else CQE_DTYPE)
    with pytest.raises(OSError, match=r"\(read 48059; 1 of 2 failed\)") as info:
        iouring.raise_for_errors(cqes, "read")
    assert info.value.errno == 9
    iouring.raise_for_errors(cqes[cqes["res"] >= 0])
    with pytest.raises(TypeError, match="CQE_DTYPE or CQE32_DTYPE"):
        iouring.raise_for_errors(np.zeros(2, np.int32))


# --------------------------------------------------------------------------------------------
# dir_fd=None, the default offset, the names docstrings use


def test_arguments_dir_fd_none_is_the_working_directory(
    make_default_ring: MakeRing, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").write_bytes(b"A")
    ring = make_default_ring(8)
    ring.openat(1, None, "a", os.O_RDONLY | os.O_CLOEXEC, 0)  # as os.open(..., dir_fd=None)
    ring.get_sqe().prep_mkdirat(2, None, "d")
    assert ring.openat_batch(np.array([3], np.uint64), None, ["a"], os.O_RDONLY) == 1
    ring.submit_and_wait(3)
    cqes = ring.copy_cqes(None, 3)
    fds = [int(c["res"]) for c in cqes if c["user_data"] in (1, 3)]
    try:
        assert all(fd >= 0 for fd in fds), cqes
        assert [int(c["res"]) for c in cqes if c["user_data"] == 2] == [0]
        assert (tmp_path / "d").is_dir()
        assert [os.pread(fd, 1, 0) for fd in fds] == [b"A", b"A"]
    finally:
        for fd in fds:
            if fd >= 0:
                os.close(fd)


def test_arguments_read_write_offset_defaults_to_current_position(
    make_default_ring: MakeRing, tmp_file: Any
) -> None:
    f = tmp_file(b"0123456789")
    os.lseek(f.fd, 4, os.SEEK_SET)
    ring = make_default_ring(4)
    buf = bytearray(3)
    ring.read(1, f, buf)  # offset -1, as AsyncRing.read: the file position, which advances
    ring.submit_and_wait(1)
    assert ring.copy_cqe().res == 3
    assert bytes(buf) == b"456"
    ring.get_sqe().prep_write(2, f, b"xy")
    ring.submit_and_wait(1)
    assert ring.copy_cqe().res == 2
    assert f.contents() == b"0123456xy9"


def test_arguments_docstrings_name_iouring_at_fdcwd() -> None:
    """os has no AT_FDCWD: docstrings point at iouring.AT_FDCWD."""
    from iouring import _core

    docs = [_core.__doc__ or ""]
    for cls in vars(_core).values():
        for member in vars(cls).values() if isinstance(cls, type) else [cls]:
            docs.append(getattr(member, "__doc__", None) or "")
    assert not hasattr(os, "AT_FDCWD")
    assert not [d for d in docs if "os.AT_FDCWD" in d]
    assert any("iouring.AT_FDCWD" in d for d in docs)
