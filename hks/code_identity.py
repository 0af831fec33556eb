"""The identity of an objective's code, saved with a search so that a resume with other code is refused.

hks's own objectives are their module's source: any change to how hks trains changes what a score
means. A user's objective is its own source and, recursively, that of what it uses from its module
(functions, classes and the assignments of the module-level names it reads), so that editing the rest
of the script (its budget, its prints, an unused helper) keeps the search, while editing a helper it
calls or a constant it reads does not. Every part is source text or bytecode, never a value's repr, so
two runs of an unchanged script agree (object addresses and string hashing differ between runs).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any


def code_fingerprint(function: Callable[..., Any]) -> str:
    """A short hash of the objective's code (see the module's docstring)."""
    from hks.evaluation import keras_objective

    if isinstance(function, functools.partial):  # its function, and what is bound to it
        bound = [_stable(value) for value in (*function.args, *sorted(function.keywords.items()))]
        return _digest(code_fingerprint(function.func) + repr(bound))
    target = function.build if isinstance(function, keras_objective) else function  # the builder is the code
    if not (inspect.isfunction(target) or inspect.isclass(target)) and callable(target):
        target = type(target)  # an object with __call__: its class
    module = inspect.getmodule(target)
    if module is not None and module.__name__.split(".")[0] == "hks":
        return _digest(_source(module) or _bytecode(target))
    if getattr(target, "__name__", "") == "<lambda>":  # its source line holds whatever else is on it
        return _digest(_bytecode(target))
    try:
        return _digest("\n".join(_own_code(target, module, _assignments(module), set())))
    except (OSError, TypeError):
        return _digest(_source(module) or _bytecode(target))


def _own_code(item: Any, module: ModuleType | None, assignments: dict[str, str], seen: set[int]) -> list[str]:
    """The source of ``item``, then of what it uses from its module (``assignments``: its module-level
    names' assignments), recursively."""
    if id(item) in seen:
        return []
    seen.add(id(item))
    parts = [inspect.getsource(item)]
    for name in sorted(_names_used(item)):
        value = getattr(module, name, None) if module is not None else None
        if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == item.__module__:
            parts += _own_code(value, module, assignments, seen)
        elif name in assignments:
            parts.append(assignments[name])
    return parts


def _names_used(item: Any) -> set[str]:
    """The global names a function's code, or a class's methods, refer to."""
    codes = [item.__code__] if hasattr(item, "__code__") else [
        member.__code__ for member in vars(item).values() if hasattr(member, "__code__")]
    return set().union(*(_code_names(code) for code in codes)) if codes else set()


def _code_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _code_names(const)
    return names


def _assignments(module: ModuleType | None) -> dict[str, str]:
    """Each module-level name's assignment, as source text (``LAYERS = [64, 128]``)."""
    source = _source(module)
    if not source:
        return {}
    out: dict[str, str] = {}
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    out[name.id] = out.get(name.id, "") + (ast.get_source_segment(source, node) or "")
    return out


def _source(module: ModuleType | None) -> str:
    """The module's source as the file holds it now (read each time: a reloaded module may have changed)."""
    if module is None:
        return ""
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return ""


def _bytecode(item: Any) -> str:
    """Bytecode, names and constants, recursively (a code object's repr holds its address)."""
    code = getattr(item, "__code__", None)
    if code is None:
        return getattr(item, "__qualname__", type(item).__qualname__)
    return _code_text(code)


def _code_text(code: Any) -> str:
    consts = [_code_text(c) if inspect.iscode(c) else _stable(c) for c in code.co_consts]
    return repr((code.co_code, code.co_names, consts))


def _stable(value: Any) -> str:
    """A value as text that is the same in every run: scalars as themselves, containers item by item
    (sets sorted), anything else by its type (an object's repr holds its address)."""
    if isinstance(value, (int, float, complex, str, bytes, bool, type(None))):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(map(_stable, value)) + ")"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(map(_stable, value))) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(sorted(f"{_stable(k)}: {_stable(v)}" for k, v in value.items())) + "}"
    return type(value).__qualname__


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
