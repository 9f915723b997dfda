"""Skips for what differs between kernel releases and the probe does not list (an operation's
flags, a register option, a changed behaviour): ``require_kernel("6.6", "CancelFlags.OP")``.
The releases come from iouring._kernel, which also names them in the library's errors."""

from __future__ import annotations

import platform

import pytest

from iouring import _kernel

__all__ = ["require_kernel"]


def require_kernel(since: str, what: str) -> None:
    """Skips the test on kernels older than Linux ``since`` ("6.6"), naming ``what`` they lack;
    call it before anything is in flight (a skipped test's rings must still be clean)."""
    if _kernel.older_than(since):
        pytest.skip(f"kernel lacks {what} (Linux {since}+; this is {platform.release()})")
