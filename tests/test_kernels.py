"""What differs between kernel releases: the table of the release that added each operation and
setup flag (iouring._kernel), checked against the running kernel's probe and setup, and the
errors that name what a kernel lacks. tools/kernel-matrix runs these on 6.1 and 6.12 too."""

from __future__ import annotations

import errno
import platform

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
