"""Quickstart: one write and one read through a ring, linked so the read waits for the write."""

import tempfile

import iouring
from iouring import IoUring, SqeFlags

with tempfile.TemporaryFile() as f, IoUring(8) as ring:
    fd = f.fileno()
    data = b"hello, io_uring"
    target = bytearray(len(data))

    # One call per operation: take a vacant SQE and prepare it. user_data comes first.
    ring.write(0x1, fd, data, 0).flags = SqeFlags.IO_LINK  # the read waits for the write
    ring.read(0x2, fd, target, 0)

    ring.submit_and_wait(2)  # releases the GIL while it waits
    cqes = ring.copy_cqes()  # a NumPy array of CQE_DTYPE
    assert sorted(cqes["user_data"]) == [0x1, 0x2]
    assert (cqes["res"] == len(data)).all()  # res is bytes transferred, or -errno
    assert target == data

    # Or the get / prepare / tweak / submit flow, one completion at a time:
    sqe = ring.get_sqe()
    sqe.prep_nop(0xAAAAAAAA)
    ring.submit()
    assert ring.copy_cqe() == iouring.Cqe(0xAAAAAAAA, 0, 0)

print("quickstart: ok")
