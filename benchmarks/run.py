"""Runs the iouring benchmark suite: the same as ``python -m iouring bench``.

    python benchmarks/run.py                 # full run (about 3-4 minutes)
    python benchmarks/run.py --quick         # every case briefly (well under 30 s)
    python benchmarks/run.py --json benchmarks/results/latest.json
    python benchmarks/run.py --cases nop,random_read --rounds 9

Each case runs iouring and its baselines (os.pread loop, os.preadv into a reused buffer, a
ThreadPoolExecutor of os.pread, and the C reference in c_reference.c, compiled here with the
system compiler) in this one process, interleaved, and prints ops/s, ratios and the spread of
the rounds. Run it on a quiet machine: the spread column says how much to trust a ratio.
"""

from __future__ import annotations

import sys

from iouring._bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
