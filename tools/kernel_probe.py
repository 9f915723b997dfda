"""Prints, as JSON, what the running kernel's io_uring offers: operations (the probe), setup
flags (each tried by creating a small ring) and features.

Run inside each guest by ``tools/kernel-matrix probe``; the table in README.md is made from it.
"""

from __future__ import annotations

import json
import platform
import sys

from iouring import Features, IoUring, Op, SetupFlags

# Setup flags and the options each one needs to be tried on its own.
_SETUP: list[tuple[str, int, dict[str, int]]] = [
    ("SQPOLL", SetupFlags.SQPOLL, {}),
    ("CQSIZE", 0, {"cq_entries": 64}),
    ("CLAMP", SetupFlags.CLAMP, {}),
    ("SUBMIT_ALL", SetupFlags.SUBMIT_ALL, {}),
    ("COOP_TASKRUN", SetupFlags.COOP_TASKRUN, {}),
    ("TASKRUN_FLAG", SetupFlags.COOP_TASKRUN | SetupFlags.TASKRUN_FLAG, {}),
    ("SQE128", SetupFlags.SQE128, {}),
    ("CQE32", SetupFlags.CQE32, {}),
    ("SINGLE_ISSUER", SetupFlags.SINGLE_ISSUER, {}),
    ("DEFER_TASKRUN", SetupFlags.SINGLE_ISSUER | SetupFlags.DEFER_TASKRUN, {}),
    ("NO_SQARRAY", SetupFlags.NO_SQARRAY, {}),
]


def _setup_ok(flags: int, options: dict[str, int]) -> bool:
    try:
        with IoUring(8, flags=flags, **options):
            return True
    except OSError:
        return False


def main() -> int:
    with IoUring(8) as ring:
        ops = sorted(op.name or "" for op in ring.probe())
        features = [f.name or "" for f in Features if f & ring.features]
    setup = [name for name, flags, options in _SETUP if _setup_ok(flags, options)]
    json.dump(
        {
            "release": platform.release(),
            "ops": ops,
            "known_ops": len(Op),
            "setup": setup,
            "features": features,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
