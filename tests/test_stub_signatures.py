"""The stub ``_core.pyi`` against the compiled module: every signature, parameter by parameter.

stubtest cannot see the argument lists of pybind11 functions (they are C functions with
``*args, **kwargs`` to ``inspect``), so a stub with swapped or renamed arguments would pass it.
pybind11 writes each callable's real signature as the first line(s) of its ``__doc__``
(numbered, for overloads); C functions of the Python C API carry ``__text_signature__``. This
file parses both sides and compares, for every function and method the stub declares: the
parameter names, their order, their kinds (positional-only, keyword-only, ``*args``,
``**kwargs``), which have defaults and, where the stub spells one, the default's value.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from iouring import _core

STUB = Path(_core.__file__).with_name("_core.pyi")

# Parameter kinds, as inspect names them.
POS_ONLY = "positional-only"
POS = "positional"
VAR_POS = "*args"
KW_ONLY = "keyword-only"
VAR_KW = "**kwargs"

_NO_DEFAULT = object()
_ANY_DEFAULT = object()  # the stub wrote `= ...`: a default whose value it does not state


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any = _NO_DEFAULT

    def __str__(self) -> str:
        prefix = {VAR_POS: "*", VAR_KW: "**"}.get(self.kind, "")
        text = prefix + self.name
        if self.default is _ANY_DEFAULT:
            text += "=..."
        elif self.default is not _NO_DEFAULT:
            text += f"={self.default!r}"
        return f"{text} [{self.kind}]"


Signature = tuple[Param, ...]


def _literal(text: str) -> Any:
    """The value of a default as written (a literal), or the text itself if it is no literal."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip()


# --------------------------------------------------------------------------------------------
# The stub side


def _stub_default(node: ast.expr | None) -> Any:
    if node is None:
        return _NO_DEFAULT
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return _ANY_DEFAULT
    return _literal(ast.unparse(node))


def _stub_signature(fn: ast.FunctionDef, *, drop_self: bool) -> Signature:
    a = fn.args
    params: list[Param] = []
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(
        a.defaults
    )
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = POS_ONLY if i < len(a.posonlyargs) else POS
        params.append(Param(arg.arg, kind, _stub_default(default)))
    if a.vararg is not None:
        params.append(Param(a.vararg.arg, VAR_POS))
    for arg, kw_default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        params.append(Param(arg.arg, KW_ONLY, _stub_default(kw_default)))
    if a.kwarg is not None:
        params.append(Param(a.kwarg.arg, VAR_KW))
    if drop_self and params:
        params = params[1:]
    return tuple(params)


def _decorators(fn: ast.FunctionDef) -> set[str]:
    return {ast.unparse(d) for d in fn.decorator_list}


def stub_signatures(text: str) -> dict[str, list[Signature]]:
    """Qualified name -> the signatures the stub declares (several for @overload), for every
    function and method; properties are left out (their getters have no arguments to drift).
    Methods are given without `self` (static methods have none to drop)."""
    out: dict[str, list[Signature]] = {}

    def walk(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                walk(node.body, prefix + node.name + ".", True)
            elif isinstance(node, ast.FunctionDef):
                decorators = _decorators(node)
                if decorators & {"property"} or any(d.endswith(".setter") for d in decorators):
                    continue
                drop_self = in_class and "staticmethod" not in decorators
                sig = _stub_signature(node, drop_self=drop_self)
                out.setdefault(prefix + node.name, []).append(sig)

    walk(ast.parse(text).body, "", False)
    return out


# --------------------------------------------------------------------------------------------
# The compiled side

_OPEN = "([{<"
_CLOSE = ")]}>"


def _split_top(text: str, sep: str = ",") -> list[str]:
    """`text` split at the `sep`s outside brackets and quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE and not (c == ">" and i > 0 and text[i - 1] == "-"):
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _params_text(line: str, name: str) -> str | None:
    """The text between the parentheses of `name(...) -> ...`, or None if `line` is no
    signature of `name`."""
    if not line.startswith(name + "("):
        return None
    depth = 0
    for i in range(len(name), len(line)):
        if line[i] == "(":
            depth += 1
        elif line[i] == ")":
            depth -= 1
            if depth == 0:
                return line[len(name) + 1 : i]
    return None


def _pybind_signature(params_text: str, *, drop_self: bool) -> Signature:
    params: list[Param] = []
    kind = POS
    pieces = [p.strip() for p in _split_top(params_text)] if params_text.strip() else []
    if "/" in pieces:  # everything before the slash is positional-only
        slash = pieces.index("/")
        pieces = [*pieces[:slash], *pieces[slash + 1 :]]
    else:
        slash = -1
    for i, piece in enumerate(pieces):
        if piece == "*":
            kind = KW_ONLY
            continue
        if piece.startswith("**"):
            params.append(Param(piece[2:].split(":")[0].strip(), VAR_KW))
            continue
        if piece.startswith("*"):
            params.append(Param(piece[1:].split(":")[0].strip(), VAR_POS))
            kind = KW_ONLY
            continue
        default: Any = _NO_DEFAULT
        halves = _split_top(piece, " = ")
        if len(halves) == 2:
            piece, default = halves[0], _literal(halves[1])
        elif "=" in piece and ":" not in piece:  # text signatures: name=default
            piece, text = piece.split("=", 1)
            default = _literal(text)
        name = piece.split(":")[0].strip()
        params.append(Param(name, POS_ONLY if i < slash else kind, default))
    if drop_self and params:
        params = params[1:]
    return tuple(params)


_GENERIC = {"($type, *args, **kwargs)", "($self, /, *args, **kwargs)"}
# id(member) -> the class it was found on, for the constructors of C types (see above).
_owner: dict[int, type] = {}


def compiled_signatures(obj: Any, name: str, *, in_class: bool) -> list[Signature] | None:
    """The signatures of a compiled callable (several when overloaded), without `self`; None
    when it carries none that can be read (not a compiled function)."""
    is_static = isinstance(obj, staticmethod)
    target = obj.__func__ if is_static else obj
    drop_self = in_class and not is_static
    text_sig = getattr(target, "__text_signature__", None)
    if name in ("__new__", "__init__") and text_sig in _GENERIC:
        # a C type's slot: the type itself carries the constructor's signature
        text_sig = getattr(_owner.get(id(obj)), "__text_signature__", None) or text_sig
        if text_sig not in _GENERIC:
            return [_pybind_signature(text_sig.strip()[1:-1], drop_self=False)]
    if text_sig:  # a C function with a signature line (PyMethodDef)
        params = text_sig.strip()[1:-1]
        sig = _pybind_signature(params.replace("$", ""), drop_self=False)
        if text_sig.lstrip("(").startswith("$"):
            sig = sig[1:]
        return [sig]
    doc = getattr(target, "__doc__", None)
    if not isinstance(doc, str):
        return None
    lines = doc.splitlines()
    if len(lines) > 1 and lines[1].strip() == "Overloaded function.":
        out = []
        for line in lines[2:]:
            m = re.match(r"\d+\. (.*)", line)
            if m:
                params = _params_text(m.group(1), name)
                if params is not None:
                    out.append(_pybind_signature(params, drop_self=drop_self))
        return out or None
    params = _params_text(lines[0] if lines else "", name)
    if params is None:
        return None
    return [_pybind_signature(params, drop_self=drop_self)]


def _resolve(qualname: str) -> tuple[Any, bool] | None:
    """The compiled object named `qualname` (raw: static methods stay staticmethods), and
    whether it is a class member."""
    obj: Any = _core
    parts = qualname.split(".")
    for i, part in enumerate(parts):
        container = obj
        try:
            obj = (
                inspect.getattr_static(container, part)
                if isinstance(container, type)
                else getattr(container, part)
            )
        except AttributeError:
            return None
        if i == len(parts) - 1:
            if isinstance(container, type):
                _owner[id(obj)] = container
            return obj, isinstance(container, type)
    return None


# --------------------------------------------------------------------------------------------
# The comparison


def _same_default(stub: Any, compiled: Any) -> bool:
    if stub is _NO_DEFAULT or compiled is _NO_DEFAULT:
        return stub is compiled
    if stub is _ANY_DEFAULT:
        return True
    if stub == compiled:
        return True
    # pybind11 writes an enum member's repr or str; the stub writes the member or its value.
    text = str(compiled)
    m = re.fullmatch(r"<?(?:[\w.]+\.)?(\w+\.\w+)(?:: (-?\d+))?>?", text)
    if m is None:
        return False
    member_name = m.group(1)
    if isinstance(stub, str) and stub.split(".")[-2:] == member_name.split("."):
        return True
    return m.group(2) is not None and stub == int(m.group(2))


def _differences(stub: Signature, compiled: Signature) -> list[str]:
    problems = []
    stub_names = [p.name for p in stub]
    compiled_names = [p.name for p in compiled]
    if stub_names != compiled_names:
        problems.append(f"names {stub_names} in the stub, {compiled_names} compiled")
        return problems
    for s, c in zip(stub, compiled, strict=True):
        if s.kind != c.kind:
            problems.append(f"{s.name}: {s.kind} in the stub, {c.kind} compiled")
        if not _same_default(s.default, c.default):
            problems.append(f"{s.name}: default {s} in the stub, {c} compiled")
    return problems


def _count_differences(stub: Signature, compiled: Signature) -> int:
    return len(_differences(stub, compiled))


def compare(stub_text: str) -> tuple[list[str], int]:
    """Every drift between `stub_text` and the compiled module, and how many callables were
    compared."""
    drifts: list[str] = []
    compared = 0
    for qualname, stub_sigs in sorted(stub_signatures(stub_text).items()):
        found = _resolve(qualname)
        if found is None:
            continue  # a name the stub has and the module lacks: stubtest's business
        obj, in_class = found
        compiled = compiled_signatures(obj, qualname.rsplit(".", 1)[-1], in_class=in_class)
        if compiled is None:
            continue  # a Python-level object (enums, exceptions): stubtest checks those
        compared += 1
        if len(stub_sigs) != len(compiled):
            drifts.append(
                f"{qualname}: {len(stub_sigs)} signature(s) in the stub, {len(compiled)} compiled"
            )
            continue
        unmatched = list(compiled)
        for sig in stub_sigs:
            best = min(unmatched, key=functools.partial(_count_differences, sig))
            problems = _differences(sig, best)
            if problems:
                drifts.append(f"{qualname}: " + "; ".join(problems))
            unmatched.remove(best)
    return drifts, compared


# --------------------------------------------------------------------------------------------
# Tests


def test_stub_signatures_match_compiled_module() -> None:
    drifts, compared = compare(STUB.read_text())
    assert compared > 250, f"only {compared} callables compared: is the parser still right?"
    assert not drifts, "\n".join(drifts)


def test_stub_signatures_cover_every_compiled_callable() -> None:
    """Every public compiled function and method with a signature has its stub entry."""
    declared = stub_signatures(STUB.read_text())
    missing = []
    for cls_name, cls in vars(_core).items():
        if cls_name.startswith("_"):
            continue
        members = vars(cls).items() if isinstance(cls, type) else [(cls_name, cls)]
        for name, obj in members:
            if name.startswith("_"):
                continue
            qual = f"{cls_name}.{name}" if isinstance(cls, type) else name
            if compiled_signatures(obj, name, in_class=isinstance(cls, type)) is None:
                continue
            if qual not in declared:
                missing.append(qual)
    assert not missing, f"compiled, not in the stub: {missing}"


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


READ = "self, user_data: int, fd: _FileDescriptor, buffer: _Buffer, offset: int = -1\n    ) -> Sqe"


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        pytest.param(
            READ,
            "self, fd: _FileDescriptor, user_data: int, buffer: _Buffer, offset: int = -1\n    ) -> Sqe",
            "IoUring.read: names",
            id="swapped",
        ),
        pytest.param(
            READ,
            "self, user_data: int, fd: _FileDescriptor, buf: _Buffer, offset: int = -1\n    ) -> Sqe",
            "IoUring.read: names",
            id="renamed",
        ),
        pytest.param(
            "def enter(self, to_submit: int, min_complete: int, flags: int = 0)",
            "def enter(self, to_submit: int, min_complete: int, flags: int = 1)",
            "IoUring.enter: flags: default",
            id="default",
        ),
        pytest.param(
            "def resize(self, *, sq_entries: int | None = None,",
            "def resize(self, sq_entries: int | None = None,",
            "IoUring.resize: sq_entries: positional in the stub, keyword-only",
            id="kind",
        ),
        pytest.param(
            "def aio_has_work(ring: IoUring, ignore: int, /)",
            "def aio_has_work(ring: IoUring, ignore: int)",
            "aio_has_work: ring: positional in the stub, positional-only",
            id="positional-only",
        ),
    ],
)
def test_stub_signatures_catch_a_mutated_stub(old: str, new: str, needle: str) -> None:
    drifts, _ = compare(_mutate(STUB.read_text(), old, new))
    assert any(needle in d for d in drifts), drifts


def test_stub_signatures_parse_pybind11_lines() -> None:
    sig = _pybind_signature(
        "self: object, a: int, b: Callable[[int, str], None] = None, /, c: object = <X.Y: 3>, "
        "*, d: dict[str, int] = {'x, y': 1}, **kwargs",
        drop_self=True,
    )
    assert [str(p) for p in sig] == [
        "a [positional-only]",
        "b=None [positional-only]",
        "c='<X.Y: 3>' [positional]",
        "d={'x, y': 1} [keyword-only]",
        "**kwargs [**kwargs]",
    ]
