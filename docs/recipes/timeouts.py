"""Bound the time of waits and of operations: wait timeouts, linked timeouts, cancellation."""

from __future__ import annotations

import contextlib
import errno
import os

from iouring import Cqe, IoUring, SqeFlags

r, w = os.pipe()  # nobody writes: reads of r wait forever
try:
    with IoUring(8) as ring:
        buf = bytearray(16)

        # 1. A wait with a timeout raises TimeoutError; the read stays in flight.
        ring.read(0x1, r, buf, -1)
        with contextlib.suppress(TimeoutError):
            ring.submit_and_wait(1, timeout=0.05)
        assert ring.in_flight == 1

        # 2. Cancel it by user_data: the read completes with -ECANCELED, the cancel with 0.
        ring.cancel(0x2, 0x1)
        ring.submit_and_wait(2)
        done = {cqe.user_data: cqe for cqe in (ring.copy_cqe(), ring.copy_cqe())}
        assert done[0x1] == Cqe(0x1, -errno.ECANCELED, 0)
        assert done[0x2] == Cqe(0x2, 0, 0)

        # 3. A linked timeout bounds one operation: when it fires the read is cancelled.
        ring.read(0x3, r, buf, -1).flags = SqeFlags.IO_LINK
        ring.link_timeout(0x4, 0.05)  # seconds, or a datetime.timedelta
        ring.submit_and_wait(2)
        done = {cqe.user_data: cqe for cqe in (ring.copy_cqe(), ring.copy_cqe())}
        assert done[0x3].res in (-errno.ECANCELED, -errno.EINTR)
        assert done[0x4] == Cqe(0x4, -errno.ETIME, 0)

        # 4. A read that is still in flight when the ring closes is cancelled and reaped by
        # close(): its buffer stays pinned until the kernel is done with it.
        ring.read(0x5, r, buf, -1)
        ring.submit()
    # The with block closed the ring.
finally:
    os.close(r)
    os.close(w)

print("timeouts: ok")
