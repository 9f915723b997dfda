"""The generated operation files are what tools/gen_ops.py writes from tools/ops_spec.py.

The lint stage runs ``tools/gen_ops.py --check`` too; this test makes a stale stub block or
registration fail the suite where it is run from a source tree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GEN_OPS = ROOT / "tools" / "gen_ops.py"


@pytest.mark.skipif(not GEN_OPS.exists(), reason="not run from a source tree")
def test_gen_ops_generated_files_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(GEN_OPS), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def _spec_ops_with_literal_cpp_defaults() -> dict[str, dict[str, str]]:
    """Operation -> {parameter: the stub's literal default} where the C++ default is written
    separately (cpp_defaults): the one place where registration and stub could disagree."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_ops  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    out: dict[str, dict[str, str]] = {}
    for op in gen_ops.OPS:
        for arg in gen_ops.parse_args(op):
            if arg.name in op.cpp_defaults and arg.default not in (None, "..."):
                out.setdefault(op.name, {})[arg.name] = arg.default
    return out


@pytest.mark.skipif(not GEN_OPS.exists(), reason="not run from a source tree")
def test_gen_ops_cpp_defaults_are_the_stub_defaults() -> None:
    """Passing the stub's default explicitly prepares the same SQE as leaving it out."""
    import numpy as np

    from iouring import IoUring

    literal = _spec_ops_with_literal_cpp_defaults()
    assert set(literal) == {"futex_wait", "futex_wake"}, "add a case for the new operation"
    futex = np.zeros(1, dtype=np.uint32)
    with IoUring(4) as ring:
        for name, defaults in literal.items():
            implicit = ring.get_sqe()
            getattr(implicit, "prep_" + name)(1, futex, 0)
            explicit = ring.get_sqe()
            values = {k: int(v, 0) for k, v in defaults.items()}
            getattr(explicit, "prep_" + name)(1, futex, 0, **values)
            assert implicit.fields() == explicit.fields(), name
