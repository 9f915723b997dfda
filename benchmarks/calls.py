"""The cost of each call on the single-operation path and the completion fast path.

    python benchmarks/calls.py [--rounds 5] [--number 100000]

Prints nanoseconds per call (best of each round, median of the rounds, and the spread), next to
the C reference doing the same work with the same syscalls. Use it before and after changing
the bindings: ``ring.nop``/``ring.read`` (conversion, slot, pins, the returned Sqe handle),
``submit_and_wait(1)`` (flush, enter, a GIL release only when the wait can block),
``copy_cqe``/``copy_cqes`` (the copy, the pin-table lookup, the returned object) and
``submit_and_copy_cqes`` (all of a round trip in one call).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import timeit

import numpy as np

from iouring import CQE_DTYPE, IoUring
from iouring._bench import CReference, _aligned


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=100_000)
    args = parser.parse_args(argv)

    ring = IoUring(64)
    out = np.empty(ring.cq_entries, dtype=CQE_DTYPE)
    ud64 = np.arange(64, dtype=np.uint64)
    ud1 = ud64[:1]
    with (
        tempfile.NamedTemporaryFile(prefix="iouring-calls-") as tmp,
        tempfile.TemporaryDirectory(prefix="iouring-calls-") as workdir,
    ):
        tmp.write(os.urandom(1 << 20))
        tmp.flush()
        fd = os.open(tmp.name, os.O_RDONLY)
        buf = _aligned(4096)
        view = buf.data
        env = {"r": ring, "out": out, "ud64": ud64, "ud1": ud1, "fd": fd, "view": view, "os": os}
        # (label, statement, setup, operations per execution of the statement)
        cases = [
            ("pybind11 floor: ring.sq_ready()", "f()", "f = r.sq_ready", 1),
            (
                "ring.nop (x64, then submit + copy_cqes)",
                "for i in range(64): nop(i)\nsub(); cq(out)",
                "nop=r.nop; sub=r.submit; cq=r.copy_cqes",
                64,
            ),
            ("copy_cqes(out), nothing ready", "f(out)", "f = r.copy_cqes", 1),
            (
                "batch 1: nop + submit_and_wait(1) + copy_cqe",
                "nop(0); saw(1); cc()",
                "nop=r.nop; saw=r.submit_and_wait; cc=r.copy_cqe",
                1,
            ),
            (
                "batch 1: nop + submit() + copy_cqe",
                "nop(0); sub(); cc()",
                "nop=r.nop; sub=r.submit; cc=r.copy_cqe",
                1,
            ),
            (
                "batch 1: nop_batch(ud1) + submit_and_wait(1) + copy_cqes",
                "nb(ud1); saw(1); cq(out)",
                "nb=r.nop_batch; saw=r.submit_and_wait; cq=r.copy_cqes",
                1,
            ),
            (
                "batch 1: nop + submit_and_copy_cqes(out, 1)",
                "nop(0); sac(out, 1)",
                "nop=r.nop; sac=r.submit_and_copy_cqes",
                1,
            ),
            (
                "batch 64: nop_batch(ud64) + submit_and_wait(64) + copy_cqes",
                "nb(ud64); saw(64); cq(out)",
                "nb=r.nop_batch; saw=r.submit_and_wait; cq=r.copy_cqes",
                64,
            ),
            (
                "batch 64: nop_batch(ud64) + submit_and_copy_cqes(out, 64)",
                "nb(ud64); sac(out, 64)",
                "nb=r.nop_batch; sac=r.submit_and_copy_cqes",
                64,
            ),
            (
                "QD 1: read + submit_and_wait(1) + copy_cqe (4 KiB, cached)",
                "rd(0, fd, view, 4096); saw(1); cc()",
                "rd=r.read; saw=r.submit_and_wait; cc=r.copy_cqe",
                1,
            ),
            ("QD 1: os.pread (4 KiB, cached)", "pr(fd, 4096, 4096)", "pr = os.pread", 1),
        ]
        rows: list[tuple[str, list[float]]] = [(label, []) for label, *_ in cases]
        c_nop = CReference.build(None, None, workdir)
        c_rows: list[float] = []
        for _ in range(args.rounds):  # interleaved: every case once per round
            for (_label, stmt, setup, ops), (_, times) in zip(cases, rows, strict=True):
                number = max(1, args.number // ops)
                t = min(timeit.repeat(stmt, setup, globals=env, number=number, repeat=3))
                times.append(t / (number * ops) * 1e9)
            if isinstance(c_nop, CReference):
                n = args.number * 4
                c_rows.append(c_nop.nop(1, n) / n * 1e9)
        os.close(fd)
    ring.close()
    print(f"{'ns per operation (median of rounds, spread)':64} {'ns':>8} {'spread':>8}")
    for label, times in rows:
        med = statistics.median(times)
        spread = (max(times) - min(times)) / med * 50
        print(f"{label:64} {med:8.0f} {spread:7.0f}%")
    if c_rows:
        med = statistics.median(c_rows)
        print(f"{'C reference, NOP batch 1 (get, prep, submit_and_wait, reap)':64} {med:8.0f}")
    elif isinstance(c_nop, str):
        print(c_nop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
