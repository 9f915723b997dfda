"""Sphinx configuration of the iouring documentation.

The API reference is generated from the *installed* package (``python -m pip install .``):
autodoc imports ``iouring`` and its compiled ``iouring._core``, so the reference always matches
the extension that was built. Build with warnings as errors, as CI does::

    python -m pip install -r docs/requirements.txt
    python -m sphinx -W -b html docs build/docs
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

try:
    import iouring
except ImportError as error:  # pragma: no cover - a configuration error, reported clearly
    raise SystemExit(
        "the documentation is generated from the installed iouring package; "
        f"run `python -m pip install .` first ({error})"
    ) from error

project = "iouring"
author = "the iouring authors"
copyright = "the iouring authors"
release = iouring.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "iouring_sphinx",
]

exclude_patterns = ["_build"]
templates_path: list[str] = []
root_doc = "index"
nitpicky = False

# autodoc: the class docstring and the constructor's together; members in source order where
# autodoc can know it (pybind11 classes fall back to alphabetical order).
autoclass_content = "both"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options: dict[str, bool | str] = {}

html_theme = "furo"
html_title = f"iouring {release}"
html_static_path: list[str] = []
