"""Every public name of iouring has a docstring.

The walk covers the public modules (``iouring``, ``iouring.aio``, ``iouring.helpers``): each name
of their ``__all__`` that is a class or a function, and every public method, property and
static method of those classes, including what they inherit from iouring's own classes
(``iouring.IoUring`` from the compiled ``iouring._core.IoUring``). Enum members and constants
are values, documented where their class or module is. pybind11 puts the signature in the first
line(s) of a docstring; a docstring that is only a signature counts as missing.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
from collections.abc import Iterator
from typing import Any

import iouring
import iouring.aio
import iouring.helpers

PUBLIC_MODULES = (iouring, iouring.aio, iouring.helpers)

_DESCRIPTORS = (property, types.GetSetDescriptorType, types.MemberDescriptorType)


def _doc_text(obj: object, name: str) -> str:
    """The docstring of `obj` without pybind11's signature lines."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str):
        return ""
    signature = re.compile(rf"^\s*(\d+\.\s+)?{re.escape(name)}\(.*\)(\s*->\s*.*)?$")
    kept = [
        line
        for line in doc.splitlines()
        if not signature.match(line) and line.strip() != "Overloaded function."
    ]
    return "\n".join(kept).strip()


def _is_own(klass: type) -> bool:
    return str(getattr(klass, "__module__", "")).startswith("iouring")


def _is_compiled_init(value: object) -> bool:
    # A pybind11 constructor (its docstring documents the arguments and errors). Not a Python
    # __init__, nor a C slot wrapper ("Initialize self. See help(type(self))..."): their class
    # docstring documents construction.
    return not inspect.isfunction(value) and not isinstance(value, types.WrapperDescriptorType)


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties of `cls` that iouring defines (the nearest one of each
    name along the MRO), and the constructor of compiled classes (a Python class documents its
    constructor in the class docstring)."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not _is_own(klass):
            continue
        for name, value in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            if name.startswith("_") and not (name == "__init__" and _is_compiled_init(value)):
                continue
            if issubclass(cls, enum.Enum) and isinstance(value, enum.Enum):
                continue  # an enum member
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            if callable(value) or isinstance(value, _DESCRIPTORS):
                yield name, value


def _public_names() -> Iterator[tuple[str, Any, str]]:
    """(qualified name, object, name the docstring's signature uses) for everything checked."""
    for module in PUBLIC_MODULES:
        yield module.__name__, module, module.__name__
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # constants, dtypes, type aliases
            yield f"{module.__name__}.{name}", obj, name
            if inspect.isclass(obj):
                for member, value in _members(obj):
                    yield f"{module.__name__}.{name}.{member}", value, member


def test_docs_every_public_name_has_a_docstring() -> None:
    missing = [qualified for qualified, obj, name in _public_names() if not _doc_text(obj, name)]
    assert missing == [], "public names without a docstring:\n" + "\n".join(missing)


def test_docs_walk_reaches_the_api() -> None:
    # Guards the walk itself: if it stopped seeing members, the test above would pass vacuously.
    names = {qualified for qualified, _, _ in _public_names()}
    for expected in (
        "iouring.IoUring.submit_and_wait",
        "iouring.IoUring.read",
        "iouring.IoUring.fd",
        "iouring.IoUring.probe",
        "iouring.Sqe.prep_read",
        "iouring.Sqe.user_data",
        "iouring.Cqe.res",
        "iouring.Statx.st_size",
        "iouring.SockAddr.from_bytes",
        "iouring.CqeFlags",
        "iouring.SubmissionQueueFull",
        "iouring.BufferArena",
        "iouring.copy_file",
        "iouring.aio.AsyncRing.read",
        "iouring.helpers.read_files",
    ):
        assert expected in names
    assert not any(name.startswith("iouring.Op.") for name in names)  # members are values
    assert len(names) > 400


def test_docs_signature_lines_do_not_count() -> None:
    def undocumented() -> None:
        pass

    undocumented.__doc__ = "undocumented(self: iouring._core.IoUring) -> int\n"
    assert _doc_text(undocumented, "undocumented") == ""
    undocumented.__doc__ = "undocumented(self) -> int\n\nDoes a thing. Raises OSError.\n"
    assert _doc_text(undocumented, "undocumented") == "Does a thing. Raises OSError."


_ERROR_WORDS = re.compile(r"\braise|\bRaises|Error\b|Exception\b|Warning\b")


def test_docs_methods_of_the_ring_and_sqe_name_their_errors() -> None:
    """Every public method of IoUring and Sqe says what it raises (the operation methods get
    the errors they share appended by the bindings; the others state theirs)."""
    silent = [
        qualified
        for qualified, obj, name in _public_names()
        if qualified.startswith(("iouring.IoUring.", "iouring.Sqe."))
        and inspect.isroutine(obj)
        and not _ERROR_WORDS.search(_doc_text(obj, name))
    ]
    assert silent == [], "methods whose docstring names no error:\n" + "\n".join(silent)


def test_docs_operations_carry_the_shared_errors() -> None:
    read = _doc_text(iouring.IoUring.read, "read")
    assert "SubmissionQueueFull" in read and read.endswith("Matches io_uring_prep_read(3).")
    prep = _doc_text(iouring.Sqe.prep_read, "prep_read")
    assert "StaleSqeError" in prep and prep.endswith("Matches io_uring_prep_read(3).")
