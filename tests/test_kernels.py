"""What differs between kernel releases: the table of the release that added each operation and
setup flag (iouring._kernel), checked against the running kernel's probe and setup, and the
errors that name what a kernel lacks. tools/kernel-matrix runs these on 6.1 and 6.12 too."""

from __future__ import annotations

import errno
import platform
import time
from collections.abc import Callable

import pytest

from iouring import IoUring, Op, SetupFlags, _kernel

# Setup flags with what each needs besides itself to be accepted on its own.
_SETUP_ALONE = {
    SetupFlags.SQPOLL: 0,
    SetupFlags.CLAMP: 0,
    SetupFlags.SUBMIT_ALL: 0,
    SetupFlags.COOP_TASKRUN: 0,
    SetupFlags.TASKRUN_FLAG: SetupFlags.COOP_TASKRUN,
    SetupFlags.SQE128: 0,
    SetupFlags.CQE32: 0,
    SetupFlags.SINGLE_ISSUER: 0,
    SetupFlags.DEFER_TASKRUN: SetupFlags.SINGLE_ISSUER,
    SetupFlags.NO_SQARRAY: 0,
}


def test_kernels_every_op_and_setup_flag_has_a_release() -> None:
    assert set(_kernel.OP_SINCE) == set(Op)
    assert set(_kernel.SETUP_SINCE) >= set(SetupFlags) - {SetupFlags.SQ_REWIND}


def test_kernels_op_releases_match_the_probe() -> None:
    """An operation the probe lists was added in this release or before; one it does not list
    was added after it."""
    with IoUring(4) as ring:
        supported = ring.probe()
    release = platform.release()
    wrong = [
        f"{op.name} (Linux {since}, probe says {'yes' if op in supported else 'no'})"
        for op, since in _kernel.OP_SINCE.items()
        if (op in supported) == _kernel.older_than(since, release)
    ]
    assert not wrong, f"on {release}: {wrong}"


@pytest.mark.parametrize("flag", list(_SETUP_ALONE), ids=lambda f: f.name)
def test_kernels_setup_releases_match_the_kernel(flag: SetupFlags) -> None:
    """A ring with ``flag`` is refused with EINVAL exactly on kernels older than its release,
    and the refusal names the flag and that release."""
    since = _kernel.SETUP_SINCE[flag]
    refusal: OSError | None = None
    try:
        IoUring(4, flags=flag | _SETUP_ALONE[flag]).close()
    except OSError as exc:
        refusal = exc
    if refusal is None:
        assert not _kernel.older_than(since), f"{platform.release()} accepted {flag.name}"
        return
    if refusal.errno == errno.EPERM:
        pytest.skip(f"{flag.name} needs a privilege here: {refusal}")
    assert refusal.errno == errno.EINVAL
    assert _kernel.older_than(since), f"Linux {since}+ refused {flag.name}: {refusal}"
    assert f"SetupFlags.{flag.name} (Linux {since})" in str(refusal)
    assert "Invalid argument" in str(refusal)


def test_kernels_setup_refusal_names_what_this_release_lacks() -> None:
    error = OSError(errno.EINVAL, "io_uring_setup: Invalid argument")
    flags = int(SetupFlags.SQPOLL | SetupFlags.NO_SQARRAY | SetupFlags.DEFER_TASKRUN)
    refusal = _kernel.setup_refusal(flags, error, "6.1.0-57-amd64")
    assert refusal.errno == errno.EINVAL
    assert str(refusal) == (
        "[Errno 22] io_uring_setup: Invalid argument (SetupFlags.NO_SQARRAY (Linux 6.6): "
        "not supported by this kernel, 6.1.0-57-amd64)"
    )
    # Nothing newer than the kernel: the kernel's own error, unchanged.
    assert _kernel.setup_refusal(flags, error, "6.12.95+deb12-amd64") is error
    # Another errno, or a release that is not a version: unchanged too.
    busy = OSError(errno.EBUSY, "io_uring_setup: Device or resource busy")
    assert _kernel.setup_refusal(flags, busy, "6.1.0") is busy
    assert _kernel.setup_refusal(flags, error, "custom") is error


def test_kernels_unsupported_op_message_names_the_release() -> None:
    assert _kernel.unsupported_op_message(Op.PIPE, "6.1.0-57-amd64") == (
        "Op.PIPE needs Linux 6.16 or newer; this kernel (6.1.0-57-amd64) does not support it"
    )
    assert _kernel.older_than("6.6", "6.1.0-57-amd64")
    assert not _kernel.older_than("6.1", "6.1.0-57-amd64")
    assert not _kernel.older_than("6.6", "6.12.95+deb12-amd64")
    assert _kernel.older_than("6.13", "6.12.95+deb12-amd64")


def test_kernels_require_ops(ring: IoUring) -> None:
    supported = ring.probe()
    ring.require_ops(Op.NOP, Op.READ)
    missing = [op for op in Op if op not in supported]
    if not missing:
        return
    with pytest.raises(NotImplementedError, match=f"Op.{missing[0].name} needs Linux"):
        ring.require_ops(Op.NOP, *missing)


# Register operations and the release that added each, as the library's errors name them.
_REGISTER_CALLS: list[tuple[str, str, Callable[[IoUring], object]]] = [
    ("register_napi", "6.9", lambda ring: ring.register_napi(0)),
    ("register_clock", "6.12", lambda ring: ring.register_clock(time.CLOCK_MONOTONIC)),
    ("register_sync_cancel", "6.0", lambda ring: ring.register_sync_cancel(user_data=1)),
    ("register_file_alloc_range", "6.0", lambda ring: ring.register_file_alloc_range(0, 0)),
    ("buffer_ring_head", "6.8", lambda ring: ring.register_buffer_ring(1, 2, 16).head()),
]


@pytest.mark.parametrize(
    ("call", "since", "run"), _REGISTER_CALLS, ids=[c[0] for c in _REGISTER_CALLS]
)
def test_kernels_register_refusal_names_the_release(
    make_default_ring: Callable[..., IoUring],
    call: str,
    since: str,
    run: Callable[[IoUring], object],
) -> None:
    """On a kernel older than the release that added a register operation, its EINVAL says
    so; newer kernels carry the call out (or refuse it for another reason, without the note)."""
    ring = make_default_ring(4)
    try:
        run(ring)
    except OSError as exc:
        message = str(exc)
    else:
        message = ""
    finally:
        ring.close()
    note = f"{call} needs Linux {since} or newer; this kernel is {platform.release()}"
    if _kernel.older_than(since):
        assert note in message
    else:
        assert note not in message
