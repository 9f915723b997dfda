"""IORING_REGISTER_QUERY (IoUring.query) and IORING_REGISTER_SEND_MSG_RING
(IoUring.send_msg_ring): the register operations that need no ring of ours."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kernel_support import require_kernel

from iouring import Cqe, CqeFlags, Features, IoUring, Op, SetupFlags


def test_query_reports_what_the_kernel_supports() -> None:
    require_kernel("6.18", "IORING_REGISTER_QUERY")
    info = IoUring.query()
    assert set(info) == {
        "nr_request_opcodes",
        "nr_register_opcodes",
        "feature_flags",
        "ring_setup_flags",
        "enter_flags",
        "sqe_flags",
        "nr_query_opcodes",
    }
    with IoUring(2) as ring:
        probed = ring.probe_ops()
        features = int(ring.features)
    # The probe and the setup features agree with the query.
    assert max(probed) + 1 == info["nr_request_opcodes"]
    assert features & ~info["feature_flags"] == 0
    assert info["sqe_flags"] == 0x7F and info["nr_register_opcodes"] >= 36
    # Every opcode the kernel knows has a name in Op (iouring knows some newer ones too).
    assert info["nr_request_opcodes"] <= Op.URING_CMD128 + 1
    assert info["ring_setup_flags"] & SetupFlags.DEFER_TASKRUN


def test_send_msg_ring_posts_to_the_target(make_ring: Callable[..., IoUring]) -> None:
    require_kernel("6.13", "IORING_REGISTER_SEND_MSG_RING")
    target = make_ring(4)
    IoUring.send_msg_ring(target, 0x5E0D, 42)
    IoUring.send_msg_ring(target.fd, 0x5E0E, -5, cqe_flags=CqeFlags.SOCK_NONEMPTY)
    got = [target.copy_cqe(timeout=5) for _ in range(2)]
    more = int(CqeFlags.MORE)
    assert got == [
        Cqe(0x5E0D, 42, more),
        Cqe(0x5E0E, -5, more | int(CqeFlags.SOCK_NONEMPTY)),
    ]
    assert target.in_flight == 0


def test_send_msg_ring_never_retires_an_operation(
    make_default_ring: Callable[..., IoUring], pipe: tuple[int, int]
) -> None:
    require_kernel("6.13", "IORING_REGISTER_SEND_MSG_RING")
    import os

    r, w = pipe
    target = make_default_ring(4)
    buf = bytearray(2)
    target.read(0x5E01, r, buf, -1)
    target.submit()
    IoUring.send_msg_ring(target, 0x5E01, 0)  # same user_data as the read in flight
    assert target.copy_cqe(timeout=5) == Cqe(0x5E01, 0, int(CqeFlags.MORE))
    assert target.in_flight == 1 and target.pinned == 1  # the read keeps its buffer
    os.write(w, b"ok")
    assert target.copy_cqe(timeout=5) == Cqe(0x5E01, 2, 0)


def test_msg_ring_cqe_is_not_taken_for_a_tag(
    make_default_ring: Callable[..., IoUring], pipe: tuple[int, int]
) -> None:
    require_kernel("6.13", "IORING_REGISTER_SEND_MSG_RING")
    ring = make_default_ring(4)
    if not ring.features & Features.RSRC_TAGS:
        pytest.skip("kernel lacks IORING_FEAT_RSRC_TAGS (Linux 5.13+)")
    buf = bytearray(8)
    ring.register_buffers([buf], tags=[0x5E7A])
    IoUring.send_msg_ring(ring, 0x5E7A, 0)  # forged "tag" CQE: flagged MORE, so not a tag
    assert ring.copy_cqe(timeout=5) == Cqe(0x5E7A, 0, int(CqeFlags.MORE))
    assert ring.live_tags == 1
    with pytest.raises(BufferError):
        buf.extend(b"x")  # still held: the tag's CQE has not come
    ring.unregister_buffers()
    assert ring.copy_cqe(timeout=5) == Cqe(0x5E7A, 0, 0)
    assert ring.live_tags == 0
    buf.extend(b"x")


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((-1, 1), {}, ValueError, "target"),
        ((-7, 1), {}, ValueError, "target"),
        (("x", 1), {}, TypeError, "target"),
        ((0, -1), {}, OverflowError, "data"),
        ((0, 1, 2**33), {}, OverflowError, "len"),
        ((0, 1), {"cqe_flags": int(CqeFlags.SKIP)}, ValueError, "cqe_flags"),
    ],
)
def test_send_msg_ring_bad_input(
    args: tuple[object, ...], kwargs: dict[str, object], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        IoUring.send_msg_ring(*args, **kwargs)  # type: ignore[arg-type]


def test_send_msg_ring_closed_or_not_a_ring(tmp_path: object) -> None:
    require_kernel("6.13", "IORING_REGISTER_SEND_MSG_RING")
    ring = IoUring(2)
    ring.close()
    with pytest.raises(ValueError, match="closed"):
        IoUring.send_msg_ring(ring, 1)
    import os

    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        with pytest.raises(OSError, match="send_msg_ring"):
            IoUring.send_msg_ring(fd, 1)
    finally:
        os.close(fd)


def test_napi_static_tracking(make_default_ring: Callable[..., IoUring]) -> None:
    require_kernel("6.13", "IO_URING_NAPI_TRACKING_STATIC")
    ring = make_default_ring(4)
    napi_id = 1 << 20  # above the kernel's range of invalid ids (at most NR_CPUS)
    ring.register_napi(10, static_tracking=True)
    ring.napi_add_id(napi_id)
    with pytest.raises(FileExistsError, match="napi_add_id"):
        ring.napi_add_id(napi_id)
    with pytest.raises(OSError, match="napi_add_id"):
        ring.napi_add_id(1)  # an invalid id
    ring.napi_del_id(napi_id)
    with pytest.raises(FileNotFoundError, match="napi_del_id"):
        ring.napi_del_id(napi_id)
    with pytest.raises(OverflowError, match="napi_id"):
        ring.napi_add_id(-1)
    ring.unregister_napi()
    ring.register_napi(10)  # dynamic tracking: no static ids
    with pytest.raises(OSError, match="napi_add_id"):
        ring.napi_add_id(napi_id)
    ring.unregister_napi()
