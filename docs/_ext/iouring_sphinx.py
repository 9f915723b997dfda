"""Sphinx helpers for the iouring reference, generated from the installed package.

The compiled module grows an operation at a time, so the reference lists nothing by hand that
introspection can find:

- Signatures of the compiled functions come from the type stubs (``iouring/_core.pyi``) when
  they have an entry, instead of pybind11's ``object``-typed ones.
- ``.. iouring-members:: CLASS GROUP`` documents the members of ``iouring.CLASS`` that belong to
  GROUP (``operations``, ``batch``, ``registration``, ``other``... see ``_GROUPS``); every member
  lands in exactly one group, and ``other`` collects whatever no group claims.
- ``.. iouring-operations::`` is the table of operations: each ring method with its ``Sqe``
  twin and the liburing function it matches.
- ``.. iouring-prep-methods::`` lists the ``Sqe.prep_*`` methods, each pointing at its ring
  method (they share arguments and docstring).
- ``.. iouring-names:: KIND`` documents the module-level names of one kind (``classes``,
  ``enums``, ``exceptions``, ``constants``, ``functions``); with ``:core-only:`` those that
  ``iouring._core`` has and ``iouring`` does not re-export.
"""

from __future__ import annotations

import ast
import enum
import inspect
import re
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import iouring
from iouring import _core

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Signatures from the stubs


def _stub_signatures() -> dict[tuple[str, str], tuple[str, str | None]]:
    """(class or "", name) -> (argument list without self, return annotation) from _core.pyi."""
    path = Path(iouring.__file__).with_name("_core.pyi")
    if not path.exists():
        return {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[tuple[str, str], tuple[str, str | None]] = {}

    def add(owner: str, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if any(_decorator_name(d) == "overload" for d in fn.decorator_list):
            return  # several signatures: keep pybind11's text, which lists them all
        args = fn.args
        if any(_decorator_name(d) == "staticmethod" for d in fn.decorator_list):
            owner_arg = False  # no self to drop
        else:
            owner_arg = bool(owner)
        if owner_arg and args.posonlyargs:
            args.posonlyargs = args.posonlyargs[1:]
        elif owner_arg and args.args:
            args.args = args.args[1:]
        returns = ast.unparse(fn.returns) if fn.returns is not None else None
        if returns == "Self":
            returns = owner
        found.setdefault((owner, fn.name), (f"({ast.unparse(args)})", returns))

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            add("", node)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    add(node.name, item)
    return found


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_compiled(obj: Any) -> bool:
    """A pybind11 function or method, or a class defined by (or derived from) iouring._core."""
    if inspect.isclass(obj):
        return any(getattr(base, "__module__", "") == "iouring._core" for base in obj.__mro__)
    return type(obj).__name__ in ("instancemethod", "builtin_function_or_method") and (
        getattr(obj, "__module__", None) in (None, "iouring._core")
    )


_STUBS: dict[tuple[str, str], tuple[str, str | None]] = {}

# The stubs' type aliases are private (_Buffer, _FileDescriptor, _StrOrBytesPath, _Timeout...:
# stubtest wants no name the module lacks at runtime); signatures show them without the "_".
_PRIVATE_ALIAS = re.compile(r"(?<![\w.])_(?=[A-Z])")


def _public_aliases(text: str | None) -> str | None:
    return None if text is None else _PRIVATE_ALIAS.sub("", text)


def _process_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    if not _is_compiled(obj):
        if signature is None or _PRIVATE_ALIAS.search(f"{signature} {return_annotation}") is None:
            return None
        return _public_aliases(signature), _public_aliases(return_annotation)
    parts = name.split(".")
    if what == "class":
        key = (parts[-1], "__init__")
    elif what == "method":
        key = (parts[-2], parts[-1])
    elif what == "function":
        key = ("", parts[-1])
    else:
        return None
    runtime = _drop_self(signature) if signature else None
    stub = _STUBS.get(key)
    if stub is None or (runtime is not None and not _same_parameters(stub[0], runtime)):
        # No stub, or a stub that lags behind the extension: show the extension's own
        # signature (without pybind11's "self: iouring._core.X").
        if stub is not None:
            STALE_STUBS.append(f"{name}: stub {stub[0]} vs runtime {runtime}")
        return (runtime, return_annotation) if runtime is not None else None
    args, returns = stub
    return _public_aliases(args), (None if what == "class" else _public_aliases(returns))


STALE_STUBS: list[str] = []


def _drop_self(signature: str) -> str:
    return re.sub(r"^\(self(: [\w.]+)?(, )?", "(", signature)


def _parameter_names(signature: str) -> list[str] | None:
    """The parameter names of a signature, with "*" and "/" markers; None if unparsable."""
    try:
        tree = ast.parse(f"def f{signature}: pass")
    except SyntaxError:
        return None
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    a = fn.args
    names = [p.arg for p in a.posonlyargs] + (["/"] if a.posonlyargs else [])
    names += [p.arg for p in a.args]
    names += ["*"] if a.vararg or a.kwonlyargs else []  # *args or a bare *: names don't matter
    names += [p.arg for p in a.kwonlyargs]
    names += ["**"] if a.kwarg else []
    return names


def _same_parameters(stub: str, runtime: str) -> bool:
    stub_names, runtime_names = _parameter_names(stub), _parameter_names(runtime)
    if stub_names is None or runtime_names is None:
        return True  # cannot tell: trust the stub
    strip = [n for n in stub_names if n != "/"]
    return strip == [n for n in runtime_names if n != "/"]


# pybind11 docstrings are plain text, not reST: a lone "*" or "|" (IORING_OP_*, ANY|ALL) would
# start inline markup, and a word ending in "_" (RWF_*) would be a hyperlink reference. Escape
# them; ``literals`` and `interpreted text` are left alone.
_PLAIN_MARKUP = re.compile(r"(``.*?``|`[^`]*`)|([*|]|(?<=\w)_(?!\w))")


def _escape_plain(line: str) -> str:
    return _PLAIN_MARKUP.sub(lambda m: m.group(1) or "\\" + m.group(2), line)


def _process_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "class" and getattr(obj, "__module__", "") != "iouring._core":
        # A Python subclass of a compiled class: its own docstring is reST already; only the
        # lines that autoclass_content = "both" took from the compiled __init__ are plain.
        plain = set(_doc_body(getattr(obj, "__init__", None)).splitlines())
        lines[:] = [_escape_plain(line) if line in plain else line for line in lines]
    elif (what in ("method", "function", "class", "exception") and _is_compiled(obj)) or (
        what == "property" and isinstance(obj, property) and _is_compiled(obj.fget)
    ):
        lines[:] = [_escape_plain(line) for line in lines]


# --------------------------------------------------------------------------------------------
# What the classes and the module hold


def _doc_body(obj: Any) -> str:
    """A pybind11 docstring without its first line (the signature)."""
    text = inspect.getdoc(obj) or ""
    first, _, rest = text.partition("\n")
    if re.match(r"^\w+\(.*\)( -> .*)?$", first) and inspect.isroutine(obj):
        return rest.strip()
    return text.strip()


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    match = re.match(r"(.+?\.)(\s|$)", text)
    return match.group(1) if match else text


def operations() -> list[tuple[str, str]]:
    """(ring method, Sqe method) of every operation, sorted by ring method."""
    preps = {n for n in dir(_core.Sqe) if n.startswith("prep_")}
    by_doc: dict[str, str] = {}
    for prep in sorted(preps):
        by_doc.setdefault(_doc_body(getattr(_core.Sqe, prep)), prep)
    pairs = []
    for name in sorted(dir(_core.IoUring)):
        if name.startswith("_") or isinstance(
            inspect.getattr_static(_core.IoUring, name), property
        ):
            continue
        body = _doc_body(getattr(_core.IoUring, name))
        if f"prep_{name}" in preps and ("Prepares" in body or "io_uring_prep_" in body):
            pairs.append((name, f"prep_{name}"))
        elif (twin := by_doc.get(body)) is not None:
            pairs.append((name, twin))
    return pairs


# IoUring members in reading order, by group. Names the module does not have are skipped.
_GROUPS: dict[str, list[str]] = {
    "lifecycle": [
        "close",
        "closed",
        "__enter__",
        "__exit__",
        "probe",
        "probe_ops",
        "require_ops",
        "fd",
        "flags",
        "features",
        "sq_entries",
        "cq_entries",
    ],
    "submission": [
        "get_sqe",
        "get_sqe_raw",
        "flush_sq",
        "submit",
        "submit_and_wait",
        "enter",
        "sq_ready",
        "sq_space_left",
        "sq_ring_needs_enter",
        "sqe_head",
        "sqe_tail",
        "sq_head",
        "sq_tail",
        "sq_flags",
        "sq_dropped",
    ],
    "completion": [
        "copy_cqes",
        "copy_cqe",
        "peek_cqe",
        "cqe_seen",
        "cq_advance",
        "cq_ready",
        "cq_ring_needs_flush",
        "cq_head",
        "cq_tail",
        "cq_overflow",
    ],
    "safety": ["in_flight", "pinned"],
}


def _public_members(cls: type) -> list[str]:
    names = [n for n in dir(cls) if not n.startswith("_") or n in ("__enter__", "__exit__")]
    return [n for n in names if not (n.startswith("__") and n not in ("__enter__", "__exit__"))]


def ring_groups() -> dict[str, list[str]]:
    """Every public member of iouring.IoUring, each in exactly one group."""
    members = _public_members(iouring.IoUring)
    groups: dict[str, list[str]] = {
        g: [n for n in names if n in members] for g, names in _GROUPS.items()
    }
    taken = {n for names in groups.values() for n in names}
    ops = [ring for ring, _ in operations() if ring not in taken]
    groups["operations"] = ops
    taken.update(ops)
    groups["batch"] = [n for n in members if n not in taken and n.endswith("_batch")]
    taken.update(groups["batch"])
    groups["registration"] = [
        n
        for n in members
        if n not in taken
        and (
            n.startswith(("register", "unregister", "wait_region", "napi_"))
            or n in ("enable_rings", "clone_buffers", "query", "send_msg_ring", "live_tags")
            or n == "ring_fd_registered"
        )
    ]
    taken.update(groups["registration"])
    groups["other"] = [n for n in members if n not in taken]
    return groups


def sqe_groups() -> dict[str, list[str]]:
    members = _public_members(iouring.Sqe)
    preps = [n for n in members if n.startswith("prep_")]
    return {"fields": [n for n in members if n not in preps], "prep": preps}


def _kind(value: Any) -> str:
    if inspect.isclass(value):
        if issubclass(value, BaseException):
            return "exceptions"
        if issubclass(value, enum.Enum):
            return "enums"
        return "classes"
    if callable(value):
        return "functions"
    return "constants"


def module_names(kind: str, core_only: bool) -> list[tuple[str, str]]:
    """(module, name) of the module-level names of one kind, sorted by name."""
    if core_only:
        public = set(dir(iouring))
        names = [("iouring._core", n) for n in dir(_core) if not n.startswith("_")]
        names = [(m, n) for m, n in names if n not in public]
        source: Any = _core
    else:
        names = [("iouring", n) for n in iouring.__all__ if not n.startswith("_")]
        source = iouring
    # Names defined by a public submodule (iouring.aio, iouring.helpers) are documented on
    # that module's page, even when iouring re-exports them.
    return sorted(
        (
            (m, n)
            for m, n in names
            if _kind(getattr(source, n)) == kind and not _from_public_submodule(getattr(source, n))
        ),
        key=lambda item: item[1].lower(),
    )


def _from_public_submodule(value: Any) -> bool:
    module = getattr(value, "__module__", None) or ""
    return module.startswith("iouring.") and not module.split(".")[-1].startswith("_")


# --------------------------------------------------------------------------------------------
# Directives


def _is_property(cls: type, name: str) -> bool:
    for klass in cls.__mro__:
        if name in vars(klass):
            return isinstance(vars(klass)[name], property)
    return False


class _GeneratingDirective(SphinxDirective):
    def emit(self, text: str) -> list[nodes.Node]:
        return list(self.parse_text_to_nodes(text))


class IoUringMembers(_GeneratingDirective):
    """``.. iouring-members:: CLASS GROUP``: autodoc entries for one group of members."""

    required_arguments = 2

    def run(self) -> list[nodes.Node]:
        cls_name, group = self.arguments
        cls = getattr(iouring, cls_name)
        groups: dict[str, list[str]] = ring_groups() if cls_name == "IoUring" else sqe_groups()
        if group not in groups:
            raise self.error(f"unknown group {group!r} of {cls_name}: {sorted(groups)}")
        lines = []
        for name in groups[group]:
            kind = "autoproperty" if _is_property(cls, name) else "automethod"
            lines.append(f".. {kind}:: iouring.{cls_name}.{name}")
            lines.append("")
        if not lines:
            lines = ["(None in this build.)"]
        return self.emit("\n".join(lines))


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], widths: str = "") -> str:
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {widths}")
    lines.append("")
    for row in [list(header), *map(list, rows)]:
        for i, cell in enumerate(row):
            first, *rest = cell.split("\n")
            lines.append(("   * - " if i == 0 else "     - ") + first)
            lines.extend(("       " + line) if line else "" for line in rest)
    return "\n".join(lines)


_MATCHES = re.compile(r"Matches (io_uring_prep_\w+)\(3\)")


class IoUringOperations(_GeneratingDirective):
    """``.. iouring-operations::``: every operation, its Sqe method and its liburing twin."""

    def run(self) -> list[nodes.Node]:
        rows = []
        for ring_name, prep in operations():
            body = _doc_body(getattr(_core.IoUring, ring_name))
            match = _MATCHES.search(body)
            liburing = f"``{match.group(1)}``" if match else ""
            summary = _escape_plain(_first_sentence(body)) or "(no docstring)"
            method = f":meth:`~iouring.IoUring.{ring_name}`"
            if prep != f"prep_{ring_name}":
                method += f" (``Sqe.{prep}``)"
            if liburing:
                method += f"\n\nliburing: {liburing}"
            rows.append([method, summary])
        intro = (
            f"{len(rows)} operations in this build. Each ring method ``name`` has an"
            " ``Sqe.prep_name`` twin, unless the table says otherwise.\n\n"
        )
        return self.emit(intro + _table(["operation", "summary"], rows, "35 65"))


class IoUringPrepMethods(_GeneratingDirective):
    """``.. iouring-prep-methods::``: the Sqe.prep_* twins, pointing at their ring methods."""

    def run(self) -> list[nodes.Node]:
        twins = {prep: ring for ring, prep in operations()}
        lines = []
        for prep in sqe_groups()["prep"]:
            ring = twins.get(prep)
            if ring is None:
                lines += [f".. automethod:: iouring.Sqe.{prep}", ""]
                continue
            args = _STUBS.get(("Sqe", prep), _STUBS.get(("IoUring", ring), ("(...)", None)))[0]
            args = _public_aliases(args) or args
            lines += [
                f".. py:method:: Sqe.{prep}{args} -> Sqe",
                "   :no-index-entry:",
                "",
                f"   Prepares this SQE like :meth:`IoUring.{ring}` (same arguments, same",
                "   errors) and returns the handle.",
                "",
            ]
        return self.emit("\n".join(lines))


class IoUringNames(_GeneratingDirective):
    """``.. iouring-names:: KIND``: autodoc entries for the module-level names of one kind."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {
        "core-only": directives.flag,
        "exclude": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        kind = self.arguments[0]
        core_only = "core-only" in self.options
        excluded = {n.strip() for n in self.options.get("exclude", "").split(",")}
        entries = [(m, n) for m, n in module_names(kind, core_only) if n not in excluded]
        lines = []
        for module, name in entries:
            if kind == "constants":
                value = getattr(iouring if module == "iouring" else _core, name)
                lines += _constant(module, name, value)
            elif kind == "functions":
                lines += [f".. autofunction:: {module}.{name}", ""]
            elif kind == "enums":
                lines += [
                    f".. autoclass:: {module}.{name}",
                    "   :members:",
                    "   :undoc-members:",
                    "   :member-order: bysource",
                    "",
                ]
            elif kind == "exceptions":
                lines += [f".. autoexception:: {module}.{name}", "   :show-inheritance:", ""]
            else:
                lines += [
                    f".. autoclass:: {module}.{name}",
                    "   :members:",
                    "   :undoc-members:",
                    "",
                ]
        if not lines:
            lines = [] if core_only else ["(None in this build.)"]
        return self.emit("\n".join(lines))


# The C++ prep helpers, read from the headers: a comment block right above each is its doc.
_CPP_PREP = re.compile(
    r"((?:^[ \t]*//[^\n]*\n)*)^inline void (prep_\w+)\(([^)]*)\)\s*noexcept", re.MULTILINE
)


def cpp_preps(include_dir: Path) -> list[tuple[str, str, str, str]]:
    """(header, function, parameters, comment) of every prep_* helper of the C++ core."""
    found = []
    for header in sorted(include_dir.glob("sqe*.hpp")):
        for match in _CPP_PREP.finditer(header.read_text(encoding="utf-8")):
            comment = " ".join(
                line.strip().removeprefix("//").strip() for line in match.group(1).splitlines()
            )
            if comment.startswith("---"):
                comment = ""
            params = " ".join(match.group(3).split()).replace("std::", "")
            found.append((header.name, match.group(2), params, comment))
    return found


class IoUringCppPreps(_GeneratingDirective):
    """``.. iouring-cpp-preps:: INCLUDE_DIR``: a synopsis of the C++ prep helpers, by header."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        include_dir = Path(self.env.srcdir, self.arguments[0]).resolve()
        preps = cpp_preps(include_dir)
        if not preps:
            raise self.error(f"no prep_* helpers found in {include_dir}")
        for header in sorted(include_dir.glob("*.hpp")):
            self.env.note_dependency(str(header))
        lines = [f"{len(preps)} helpers in this source tree, all ``inline`` and ``noexcept``.", ""]
        for header in dict.fromkeys(h for h, _, _, _ in preps):
            lines += [f"``{header}``:", "", ".. code-block:: cpp", ""]
            for h, fn, params, comment in preps:
                if h != header:
                    continue
                if comment:
                    lines += [
                        "   " + line
                        for line in textwrap.wrap(
                            comment, 84, initial_indent="// ", subsequent_indent="// "
                        )
                    ]
                lines += ["   " + line for line in _wrap_call(f"void {fn}(", params, ");")]
            lines.append("")
        return self.emit("\n".join(lines))


def _wrap_call(head: str, params: str, tail: str, width: int = 84) -> list[str]:
    """``head params tail`` on lines of at most ``width``, continuations aligned after ``(``."""
    out, line = [], head
    for i, param in enumerate(params.split(", ")):
        piece = param + (", " if i < len(params.split(", ")) - 1 else tail)
        if len(line) + len(piece.rstrip()) > width and line.strip() != head.strip():
            out.append(line.rstrip())
            line = " " * len(head)
        line += piece
    out.append(line.rstrip())
    return out


def _constant(module: str, name: str, value: Any) -> list[str]:
    """A py:data entry; NumPy dtypes are described by their fields."""
    if isinstance(value, np.dtype) and value.names and value.fields:
        layout = value.fields
        fields = ", ".join(f"``{n}`` (``{layout[n][0].str}``)" for n in value.names)
        return [
            f".. py:data:: {name}",
            f"   :module: {module}",
            "   :type: numpy.dtype",
            "",
            f"   A NumPy structured dtype of {value.itemsize} bytes: {fields}.",
            "",
        ]
    return [
        f".. py:data:: {name}",
        f"   :module: {module}",
        f"   :value: {_const_repr(value)}",
        "",
    ]


def _const_repr(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return hex(value) if value > 0xFFFF else str(value)
    text = repr(value)
    return text if len(text) < 100 else type(value).__name__


def setup(app: Sphinx) -> dict[str, Any]:
    _STUBS.update(_stub_signatures())
    app.connect("autodoc-process-signature", _process_signature)
    app.connect("autodoc-process-docstring", _process_docstring)
    directive: Callable[..., Any]
    for name, directive in (
        ("iouring-members", IoUringMembers),
        ("iouring-operations", IoUringOperations),
        ("iouring-prep-methods", IoUringPrepMethods),
        ("iouring-names", IoUringNames),
        ("iouring-cpp-preps", IoUringCppPreps),
    ):
        app.add_directive(name, directive)
    app.connect("doctree-read", _strip_private_aliases)
    app.connect("build-finished", _report_stale_stubs)
    return {"version": iouring.__version__, "parallel_read_safe": True}


def _strip_private_aliases(app: Sphinx, doctree: nodes.document) -> None:
    """The signatures that autodoc-process-signature does not see (overloads of Python
    functions) show the stubs' private aliases without their "_" too."""
    for signature in doctree.findall(addnodes.desc_signature):
        for text in list(signature.findall(nodes.Text)):
            public = _PRIVATE_ALIAS.sub("", text)
            if public != text and text.parent is not None:
                text.parent.replace(text, nodes.Text(public))


def _report_stale_stubs(app: Sphinx, exception: BaseException | None) -> None:
    """Says (without failing the build) where the stubs lag behind the extension."""
    if STALE_STUBS:
        logger.info(
            "iouring: %d stub signatures differ from the extension; shown from the "
            "extension instead:\n  %s",
            len(STALE_STUBS),
            "\n  ".join(STALE_STUBS),
        )
