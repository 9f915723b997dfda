"""asyncio on io_uring: whole-file helpers, a timeout that cancels an operation, a batch await.

It runs on iouring.aio.IoUringEventLoop (``iouring.aio.run``), whose wait is the ring itself.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import numpy as np

import iouring.aio
from iouring.aio import AsyncRing, raise_for_errors


async def main(directory: Path) -> None:
    paths = sorted(directory.iterdir())
    async with AsyncRing() as aring:  # on an IoUringEventLoop: the loop's own ring
        # Many tasks share one ring; their SQEs go to the kernel together. read_file opens,
        # sizes, reads and closes through the ring (FileNotFoundError carries the file name).
        contents = await asyncio.gather(*(aring.read_file(path) for path in paths))
        assert contents == [path.read_bytes() for path in paths]
        await aring.write_file(directory / "copy.txt", contents[0])

        # Cancelling the awaiting task cancels the operation in the kernel; the buffer stays
        # pinned until the kernel says it is done with it.
        r, w = os.pipe()
        try:
            async with asyncio.timeout(0.05):
                await aring.read(r, bytearray(10))  # nobody writes: only the timeout ends it
        except TimeoutError:
            pass
        finally:
            os.close(r)
            os.close(w)

        # A batch await: 256 reads, one future, completions as a CQE_DTYPE array (in
        # operation order). Read 100 bytes at offsets 0, 100, ..., 900, 0, 100... of a file.
        fd = os.open(paths[0], os.O_RDONLY)
        try:
            buf = np.empty(256 * 100, dtype=np.uint8)
            offsets = np.arange(256) % 10 * 100
            cqes = await aring.read_batch(fd, buf, offsets, 100)
            raise_for_errors(cqes, paths[0].name)  # OSError of the first failed read, if any
            assert (cqes["res"] == 100).all()
        finally:
            os.close(fd)
    print(f"asyncio_files: {len(paths)} files and a batch of {len(cqes)} reads: ok")


with tempfile.TemporaryDirectory() as tmp:
    for i in range(20):
        (Path(tmp) / f"{i:02}.txt").write_bytes(bytes([65 + i]) * 1000)
    iouring.aio.run(main(Path(tmp)))
