"""amago_fast/_C.pyi covers the native module: every exported name, every ReplayStore
member, with the parameter names pybind11 reports (so the stub cannot rot)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import amago_fast
from amago_fast import _C

# Next to the package that was imported: in CI that is the installed wheel, so this
# also checks that the stub ships.
STUB = Path(amago_fast.__file__).parent / "_C.pyi"


def _stub() -> ast.Module:
    assert STUB.is_file(), f"{STUB} is missing (not shipped in the wheel?)"
    return ast.parse(STUB.read_text())


def _split_top(s: str) -> list:
    """Split a pybind11 parameter list at commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur] if cur.strip() else parts


def _native_params(obj) -> list:
    """Parameter names from pybind11's signature line 'name(a: T, b: U) -> R'."""
    sig = (obj.__doc__ or "").splitlines()[0]
    assert "(" in sig, f"no pybind11 signature in {obj!r}"
    inner = sig[sig.index("(") + 1 : sig.rindex(") ->")]
    names = [p.split(":")[0].strip() for p in _split_top(inner)]
    return [n for n in names if n not in ("self", "arg0")]


def _stub_params(fn: ast.FunctionDef) -> list:
    return [a.arg for a in fn.args.args if a.arg != "self"]


def _public(names) -> set:
    return {n for n in names if not n.startswith("_")}


def test_every_module_name_is_in_the_stub():
    tree = _stub()
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    native = _public(dir(_C))
    assert native - stubbed == set(), f"names missing from _C.pyi: {sorted(native - stubbed)}"
    assert _public(stubbed) - native == set(), f"stale names in _C.pyi: {sorted(stubbed - native)}"


def test_functions_have_the_native_parameters():
    tree = _stub()
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert funcs, "no functions in the stub"
    for name, fn in funcs.items():
        assert _stub_params(fn) == _native_params(getattr(_C, name)), name


@pytest.mark.parametrize("cls_name", sorted(n for n in _public(dir(_C)) if inspect.isclass(getattr(_C, n))))
def test_class_members_match(cls_name):
    tree = _stub()
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    members: dict = {}
    for n in cls.body:
        if isinstance(n, ast.FunctionDef):
            is_prop = any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)
            members.setdefault(n.name, (n, is_prop))
    native_cls = getattr(_C, cls_name)
    native = _public(vars(native_cls)) | {"__init__"}
    assert native - set(members) == set(), f"{cls_name} members missing: {sorted(native - set(members))}"
    assert _public(members) - native == set(), f"stale {cls_name} members: {sorted(_public(members) - native)}"
    for name in native:
        obj = inspect.getattr_static(native_cls, name)
        fn, is_prop = members[name]
        if isinstance(obj, property):
            assert is_prop, f"{cls_name}.{name} is a property natively"
        else:
            assert not is_prop, f"{cls_name}.{name} is a method natively"
            assert _stub_params(fn) == _native_params(obj), f"{cls_name}.{name}"
