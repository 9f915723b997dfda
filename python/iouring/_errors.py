"""Completion results as exceptions, on request (a negative ``res`` is data while reaping)."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from iouring._core import CQE32_DTYPE, CQE_DTYPE

__all__ = ["raise_for_errors"]


def raise_for_errors(cqes: npt.NDArray[np.void], what: str = "operation") -> None:
    """Raises the OSError of the first failed completion in an array of completions.

    ``cqes`` is a ``CQE_DTYPE`` array (``copy_cqes``, the batch awaits of ``iouring.aio``) or a
    ``CQE32_DTYPE`` one (rings made with ``SetupFlags.CQE32``). ``what`` names the operations
    in the message, for example a file name. Does nothing when every ``res`` is >= 0. The
    OSError's errno is the completion's ``-res``, so Python picks its subclass
    (``FileNotFoundError``...), and the message names the failed ``user_data`` and how many
    failed. Raises ``TypeError`` when ``cqes`` is not an array of either dtype.
    """
    if getattr(cqes, "dtype", None) not in (CQE_DTYPE, CQE32_DTYPE):
        raise TypeError("cqes must be a numpy array of CQE_DTYPE or CQE32_DTYPE")
    res = cqes["res"]
    failed = np.flatnonzero(res < 0)
    if failed.size:
        i = int(failed[0])
        code = -int(res.flat[i])
        raise OSError(
            code,
            f"{os.strerror(code)} ({what} {int(cqes['user_data'].flat[i])}; "
            f"{failed.size} of {res.size} failed)",
        )


def __dir__() -> list[str]:
    return list(__all__)
