"""Analyse a batch of completions with NumPy: errors by errno, bytes moved, latencies.

Each read carries its submission time in user_data (nanoseconds of time.monotonic_ns), so the
latency of every operation is one vectorised subtraction at reaping time.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time

import numpy as np

from iouring import IoUring

with tempfile.TemporaryFile() as f, IoUring(64) as ring:
    f.write(os.urandom(1 << 20))
    f.flush()
    good, bad = f.fileno(), os.open(os.devnull, os.O_WRONLY)  # reading bad fails: EBADF
    buf = np.empty(64 * 4096, dtype=np.uint8)
    batches, latencies = [], []
    for round_ in range(4):
        for i in range(64):
            fd = bad if i % 16 == 0 else good
            offset = (i * 4096 + round_ * 64 * 4096) % (1 << 20)
            ring.read(time.monotonic_ns(), fd, buf[i * 4096 : (i + 1) * 4096], offset)
        ring.submit()
        cqes = ring.copy_cqes(wait_nr=64)
        reaped_at = time.monotonic_ns()
        batches.append(cqes)
        latencies.append(reaped_at - cqes["user_data"].astype(np.int64))
    os.close(bad)

completions = np.concatenate(batches)  # CQE_DTYPE records: user_data, res, flags
res = completions["res"]
ok = res >= 0
codes, counts = np.unique(-res[~ok], return_counts=True)
errors = {errno.errorcode[int(code)]: int(n) for code, n in zip(codes, counts, strict=True)}
latency_us = np.concatenate(latencies) / 1000
print(f"{ok.sum()} reads moved {res[ok].sum()} bytes; errors: {errors}")
print("latency (us) p50 {:.1f}  p99 {:.1f}".format(*np.percentile(latency_us, [50, 99])))
assert errors == {"EBADF": 16}
assert int(res[ok].sum()) == 240 * 4096
print("completion_analysis: ok")
