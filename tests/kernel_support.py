"""Skips for what differs between kernel releases and the probe does not list (an operation's
flags, a register option, a changed behaviour): ``require_kernel("6.6", "CancelFlags.OP")``.
The releases come from iouring._kernel, which also names them in the library's errors."""

from __future__ import annotations

import os
import platform
from typing import NoReturn

import pytest

from iouring import _kernel

__all__ = ["emulated", "require_kernel", "skip_lacking", "slow"]


def require_kernel(since: str, what: str) -> None:
    """Skips the test on kernels older than Linux ``since`` ("6.6"), naming ``what`` they lack;
    call it before anything is in flight (a skipped test's rings must still be clean)."""
    if _kernel.older_than(since):
        skip_lacking(since, what)


def skip_lacking(since: str, what: str) -> NoReturn:
    """Skips the test because the kernel refused ``what``, which Linux ``since`` added; for
    tests that learn it from the kernel's answer (a flag the probe does not list)."""
    pytest.skip(f"kernel lacks {what} (Linux {since}+; this is {platform.release()})")


# How many times slower than the host this machine runs: tools/kernel-matrix sets it in guests
# under qemu's TCG emulator (10-30x), where a child Python takes seconds to start.
_SLOWDOWN = float(os.environ.get("IOURING_TEST_SLOWDOWN", "1") or 1)


def slow(seconds: float) -> float:
    """A bound of ``seconds`` on this machine (a child process, a wait for another thread):
    generous on the host, scaled up in an emulated guest so that a slow kernel is not taken for
    a hang."""
    return seconds * _SLOWDOWN


def emulated() -> bool:
    """Whether this runs in a guest under an emulator (IOURING_TEST_SLOWDOWN above 1)."""
    return _SLOWDOWN > 1
