"""Open, read and close a file in one submission, through a registered-file slot.

A plain openat returns its fd in the completion, too late for SQEs submitted with it. A
direct open puts the file in a slot of the ring's file table instead, which linked SQEs can
name in advance with SqeFlags.FIXED_FILE. IO_LINK starts the read only if the open
succeeded; IO_HARDLINK starts the close even when the read came back short (a short read
counts as a failure for links).
"""

from __future__ import annotations

import os
import tempfile

from iouring import Cqe, IoUring, SqeFlags

AT_FDCWD = -100  # dir_fd meaning "the working directory" (os does not export it)
SLOT = 0
TEXT = b"direct descriptors never enter the process's fd table"

with tempfile.NamedTemporaryFile() as f:
    f.write(TEXT)
    f.flush()
    with IoUring(8) as ring:
        ring.register_files_sparse(4)  # a file table of 4 empty slots
        buf = bytearray(100)  # larger than the file: the read is short
        open_sqe = ring.openat_direct(0x1, AT_FDCWD, f.name, os.O_RDONLY, 0, SLOT)
        open_sqe.flags = SqeFlags.IO_LINK
        read_sqe = ring.read(0x2, SLOT, buf, 0)  # fd is the slot number...
        read_sqe.flags = SqeFlags.FIXED_FILE | SqeFlags.IO_HARDLINK  # ...of the file table
        ring.close_direct(0x3, SLOT)
        ring.submit_and_wait(3)
        done = [Cqe(*cqe) for cqe in sorted(ring.copy_cqes().tolist())]
        assert done == [Cqe(0x1, 0, 0), Cqe(0x2, len(TEXT), 0), Cqe(0x3, 0, 0)], done
        ring.unregister_files()
    assert buf[: len(TEXT)] == TEXT

print("direct_descriptors: ok")
