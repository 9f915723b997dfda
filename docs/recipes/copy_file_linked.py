"""Copy a file with linked read/write pairs: each write starts when its read has finished.

With SqeFlags.IO_LINK the kernel runs the next SQE only after this one succeeded; a read that
comes back short (or fails) cancels its write (res -ECANCELED). Several pairs are in flight at
once, each with its own buffer; a pair that was cut short is queued again from its offset.
"""

from __future__ import annotations

import errno
import os
import tempfile

from iouring import IoUring, SqeFlags

CHUNK = 128 * 1024
PAIRS = 8  # pairs in flight: the ring needs 2 * PAIRS SQEs


def copy_file(ring: IoUring, src: int, dst: int) -> int:
    size = os.fstat(src).st_size
    buffers = [bytearray(CHUNK) for _ in range(PAIRS)]
    pending = list(range(0, size, CHUNK))  # chunk offsets still to copy
    busy: dict[int, int] = {}  # slot -> offset of the pair in flight
    copied = 0
    while pending or busy:
        for slot in range(PAIRS):
            if slot in busy or not pending:
                continue
            offset = pending.pop()
            length = min(CHUNK, size - offset)
            view = memoryview(buffers[slot])[:length]
            # user_data: the slot, with bit 0 of the key telling read (0) from write (1).
            ring.read(slot << 1, src, view, offset).flags = SqeFlags.IO_LINK
            ring.write(slot << 1 | 1, dst, view, offset)
            busy[slot] = offset
        ring.submit_and_wait(1)
        for user_data, res, _flags in ring.copy_cqes():
            slot, is_write = int(user_data) >> 1, int(user_data) & 1
            if res < 0 and res != -errno.ECANCELED:
                raise OSError(-res, os.strerror(-res), "write" if is_write else "read")
            if not is_write:
                continue  # the write's completion settles the pair
            offset = busy.pop(slot)
            if res == -errno.ECANCELED or res < min(CHUNK, size - offset):
                pending.append(offset)  # short read or short write: copy the chunk again
            else:
                copied += int(res)
    return copied


with tempfile.TemporaryDirectory() as tmp:
    source = os.path.join(tmp, "source.bin")
    target = os.path.join(tmp, "target.bin")
    with open(source, "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024 + 12345))
    src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        with IoUring(2 * PAIRS) as ring:
            copied = copy_file(ring, src, dst)
    finally:
        os.close(src)
        os.close(dst)
    with open(source, "rb") as a, open(target, "rb") as b:
        assert a.read() == b.read()

print(f"copy_file_linked: {copied} bytes: ok")
