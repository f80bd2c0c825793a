"""The type stub of the native module (_core.pyi) against the module itself.

Embedding programs type-check against the stub, so it must declare what
_core has: every function, class, method and property, with the runtime's
parameter names (keyword calls), which of them have defaults, and which
properties can be set.  pybind11 writes each callable's signatures as the
first lines of its docstring; those are compared with the stub's.
"""
import ast
import inspect
import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

import fastdense
from fastdense import _core

STUB = Path(fastdense.__file__).with_name("_core.pyi")

Params = Tuple[Tuple[str, bool], ...]  # (name, has a default) after self


def _split_top(s: str) -> List[str]:
    """s split at the commas outside brackets."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return parts


def _runtime_signatures(obj: object, name: str) -> Set[Params]:
    """The parameter lists pybind11 wrote into obj's docstring."""
    doc = inspect.getdoc(obj) or ""
    sigs = set()
    for line in doc.splitlines():
        m = re.match(r"^(?:\d+\. )?" + re.escape(name) + r"\((.*)\) -> ", line)
        if not m:
            continue
        params = []
        for p in _split_top(m.group(1)):
            pname = p.split(":")[0].split("=")[0].strip()
            if pname in ("self", "*args", "**kwargs"):
                continue
            params.append((pname, "=" in p.split(":", 1)[-1] if ":" in p else "=" in p))
        sigs.add(tuple(params))
    return sigs


def _stub_params(f: ast.FunctionDef) -> Params:
    args = f.args
    pos = args.posonlyargs + args.args
    first_default = len(pos) - len(args.defaults)
    out = [(a.arg, i >= first_default) for i, a in enumerate(pos)]
    out += [(a.arg, d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return tuple(p for p in out if p[0] != "self")


def _decorators(f: ast.FunctionDef) -> List[str]:
    return [ast.unparse(d) for d in f.decorator_list]


class _Stub:
    def __init__(self) -> None:
        tree = ast.parse(STUB.read_text(encoding="utf-8"))
        self.functions: Dict[str, Set[Params]] = {}
        self.classes: Dict[str, Dict[str, object]] = {}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                self.functions.setdefault(node.name, set()).add(_stub_params(node))
            elif isinstance(node, ast.ClassDef):
                methods: Dict[str, Set[Params]] = {}
                props: Dict[str, bool] = {}  # name -> settable
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        props[item.target.id] = True
                    elif isinstance(item, ast.FunctionDef):
                        decs = _decorators(item)
                        if "property" in decs:
                            props.setdefault(item.name, False)
                        elif any(d.endswith(".setter") for d in decs):
                            props[item.name] = True
                        else:
                            methods.setdefault(item.name, set()).add(_stub_params(item))
                bases = [ast.unparse(b) for b in node.bases]
                self.classes[node.name] = {"methods": methods, "props": props, "bases": bases}


@pytest.fixture(scope="module")
def stub() -> _Stub:
    return _Stub()


def _runtime_functions() -> Dict[str, object]:
    return {n: getattr(_core, n) for n in dir(_core)
            if not n.startswith("__") and not inspect.isclass(getattr(_core, n))
            and callable(getattr(_core, n))}


def _runtime_classes() -> Dict[str, type]:
    return {n: getattr(_core, n) for n in dir(_core) if inspect.isclass(getattr(_core, n))}


def _own_members(cls: type) -> Dict[str, object]:
    return {n: v for n, v in vars(cls).items()
            if (not n.startswith("__") or n == "__init__") and n != "_pybind11_conduit_v1_"}


def test_stub_ships_beside_the_package_with_py_typed() -> None:
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_stub_declares_every_function_and_class(stub: _Stub) -> None:
    assert set(stub.functions) == set(_runtime_functions())
    assert set(stub.classes) == set(_runtime_classes())


@pytest.mark.parametrize("name", sorted(_runtime_functions()))
def test_function_parameters_match(stub: _Stub, name: str) -> None:
    runtime = _runtime_signatures(_runtime_functions()[name], name)
    assert runtime, f"no signature in {name}'s docstring"
    assert stub.functions.get(name) == runtime


@pytest.mark.parametrize("cls_name", sorted(_runtime_classes()))
def test_class_members_match(stub: _Stub, cls_name: str) -> None:
    cls = _runtime_classes()[cls_name]
    declared = stub.classes[cls_name]
    methods: Dict[str, Set[Params]] = declared["methods"]  # type: ignore[assignment]
    props: Dict[str, bool] = declared["props"]  # type: ignore[assignment]
    runtime_methods, runtime_props = {}, {}
    for n, v in _own_members(cls).items():
        if isinstance(v, property):
            runtime_props[n] = v.fset is not None
        elif n == "__init__" and not (inspect.getdoc(v) or "").startswith(("__init__(",
                                                                           "Overloaded")):
            continue  # (a class without a constructor of its own: object's)
        else:
            runtime_methods[n] = _runtime_signatures(v, n)
    assert props == runtime_props
    assert set(methods) == set(runtime_methods)
    for n, sigs in runtime_methods.items():
        assert sigs, f"no signature in {cls_name}.{n}'s docstring"
        assert methods[n] == sigs, n
    # the base classes pybind11 registered
    runtime_bases = [b.__name__ for b in cls.__bases__ if b.__module__ == _core.__name__]
    bases: List[str] = declared["bases"]  # type: ignore[assignment]
    assert [b for b in bases if b != "object"] == runtime_bases


def test_signature_parser_reads_overloads_and_defaults() -> None:
    class F:
        """Overloaded function.

        1. f(self: X, a: list[int], b: tuple[int, int] = (1, 2)) -> None

        2. f(self: X, c: typing.SupportsInt) -> None
        """
    assert _runtime_signatures(F, "f") == {(("a", False), ("b", True)), (("c", False),)}
