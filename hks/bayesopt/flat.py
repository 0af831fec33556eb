"""Flat search spaces: a dict of named floats, ints and choices, nothing nested.

This is what a Gaussian process models well, and what Ax accepts. One description feeds
both Ax (:func:`to_ax_parameters`) and hyperopt (:func:`to_hyperopt`), so an algorithm
comparison searches exactly the same space with every algorithm.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hks.errors import SpaceError

ChoiceValue = bool | int | float | str


@dataclass(frozen=True)
class Float:
    """A real number in [low, high]; ``log`` samples and models it on a log scale."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_range(self, float)


@dataclass(frozen=True)
class Int:
    """An integer in [low, high], both included."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        _check_range(self, int)


@dataclass(frozen=True)
class Choice:
    """One of a few values; ``ordered`` says the order means something (e.g. a grid of sizes)."""

    values: tuple[ChoiceValue, ...]
    ordered: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if len(self.values) < 2 or len(set(self.values)) != len(self.values):
            raise SpaceError(f"Choice needs at least two distinct values, got {list(self.values)}")
        kinds = {_value_kind(v) for v in self.values}
        if None in kinds:
            raise SpaceError(f"Choice values must be str, int, float or bool, got {list(self.values)}")
        if len(kinds) > 1 and kinds != {"int", "float"}:
            raise SpaceError(f"Choice values must all be of one type, got {list(self.values)}")

    @property
    def kind(self) -> str:
        kinds = {_value_kind(v) for v in self.values}
        return "float" if "float" in kinds else kinds.pop()


Param = Float | Int | Choice
FlatSpace = Mapping[str, Param]


def _value_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float) and math.isfinite(value):
        return "float"
    return "str" if isinstance(value, str) else None


def _check_range(param: Float | Int, kind: type) -> None:
    """Validate the bounds, then store them as ``kind`` (``Float(0, 1)`` holds 0.0 and 1.0)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (param.low, param.high)):
        raise SpaceError(f"{type(param).__name__} bounds must be numbers, got {param.low!r}, {param.high!r}")
    if kind is int and not all(float(v).is_integer() for v in (param.low, param.high)):
        raise SpaceError(f"Int bounds must be whole numbers, got {param.low!r}, {param.high!r}")
    object.__setattr__(param, "low", kind(param.low))
    object.__setattr__(param, "high", kind(param.high))
    if not param.low < param.high:
        raise SpaceError(f"{type(param).__name__} needs low < high, got {param.low!r}, {param.high!r}")
    if param.log and param.low <= 0:
        raise SpaceError(f"a log-scale {type(param).__name__} needs low > 0, got {param.low!r}")


def is_flat_space(space: Any) -> bool:
    """Whether ``space`` is a flat space (a non-empty dict of :class:`Float`, :class:`Int`, :class:`Choice`)."""
    return isinstance(space, Mapping) and bool(space) and all(isinstance(p, (Float, Int, Choice))
                                                               for p in space.values())


def check_flat_space(space: Any, origin: str = "the space") -> dict[str, Param]:
    """The space as a plain dict, or a :class:`SpaceError` saying what is not flat in it."""
    if not isinstance(space, Mapping) or not space:
        raise SpaceError(f"{origin} must be a non-empty dict of name -> Float/Int/Choice (hks.bayesopt), "
                         f"got {type(space).__name__}")
    bad = [name for name, param in space.items() if not isinstance(param, (Float, Int, Choice))]
    if bad:
        raise SpaceError(f"{origin} is not flat: {', '.join(map(str, bad))} must be hks.bayesopt Float, Int or "
                         "Choice (hyperopt expressions and nesting are for --algo tpe/rand/anneal)")
    return dict(space)


def fingerprint(space: FlatSpace) -> str:
    """A stable hash of names, kinds and ranges: a saved search is resumed only with the same space."""
    text = repr(sorted((name, repr(param)) for name, param in space.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def representative(space: FlatSpace) -> dict[str, ChoiceValue]:
    """One valid point (lower bounds, first choices): enough to check that a space builds."""
    return {name: p.values[0] if isinstance(p, Choice) else p.low for name, p in space.items()}


def to_ax_parameters(space: FlatSpace) -> list[Any]:
    """Ax ``RangeParameterConfig`` / ``ChoiceParameterConfig`` for each parameter."""
    from ax.api.configs import ChoiceParameterConfig, RangeParameterConfig

    configs = []
    for name, p in space.items():
        if isinstance(p, Choice):
            values = [float(v) for v in p.values] if p.kind == "float" else list(p.values)
            configs.append(ChoiceParameterConfig(name=name, values=values, parameter_type=p.kind,
                                                 is_ordered=p.ordered))
        else:
            kind = "int" if isinstance(p, Int) else "float"
            cast = int if kind == "int" else float
            configs.append(RangeParameterConfig(name=name, bounds=(cast(p.low), cast(p.high)), parameter_type=kind,
                                                scaling="log" if p.log else "linear"))
    return configs


def to_ax_point(space: FlatSpace, point: Mapping[str, Any]) -> dict[str, Any]:
    """``point`` with each value of the type its Ax parameter has (:func:`to_ax_parameters`): a choice
    among floats and ints, such as ``[0.001, 0.1, 1]``, is a float parameter, which Ax refuses an int for."""
    out = dict(point)
    for name, p in space.items():
        if name in out and (isinstance(p, Float) or (isinstance(p, Choice) and p.kind == "float")):
            out[name] = float(out[name])
        elif name in out and isinstance(p, Int):
            out[name] = int(out[name])
    return out


def to_hyperopt(space: FlatSpace) -> dict[str, Any]:
    """The same space as hyperopt expressions (ints stay ints, ordered choices keep their order)."""
    from hyperopt import hp
    from hyperopt.pyll import scope

    out: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Float):
            out[name] = (hp.loguniform(name, math.log(p.low), math.log(p.high)) if p.log
                         else hp.uniform(name, p.low, p.high))
        elif isinstance(p, Int):
            # Widened by half a step so that the end points are as likely as the others.
            low, high = p.low - 0.499, p.high + 0.499
            q = hp.qloguniform(name, math.log(low), math.log(high), 1) if p.log else hp.quniform(name, low, high, 1)
            out[name] = scope.int(q)
        elif p.ordered:
            index = scope.int(hp.quniform(name, -0.499, len(p.values) - 0.501, 1))
            out[name] = scope.getitem(list(p.values), index)
        else:
            out[name] = hp.choice(name, list(p.values))
    return out
