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
