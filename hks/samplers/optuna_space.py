"""hyperopt spaces, nested ``hp.choice`` included, as Optuna distributions with activation conditions.

A hyperopt space is a pyll graph; its hyperparameters are ``hyperopt_param`` nodes, and a
``switch`` node (``hp.choice`` / ``hp.pchoice``) makes everything under option ``i`` depend on
its index being ``i``. :func:`translate` flattens that into :class:`Param` records in a parents-first
order, each with the Optuna distribution that models it and the conditions under which it is
active, and converts values both ways: Optuna's (what the samplers model) and hyperopt's
(``misc['vals']``: choice indices, rounded q-values).

Optuna has no normal prior: ``normal``/``lognormal`` (and their q- forms) become uniform ranges
of +-4 sigma (in log space for the log forms), which covers every value hyperopt draws but a few in 10^4.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hyperopt.pyll import Apply, as_apply
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from hks.errors import SpaceError

Condition = tuple[tuple[str, int], ...]  # every (choice label, option index) must hold
SIGMAS = 4.0


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its Optuna distribution, its hyperopt form and when it is active."""

    label: str
    kind: str  # the hyperopt distribution: uniform, quniform, loguniform, randint, choice, ...
    distribution: BaseDistribution
    conditions: tuple[Condition, ...]  # active when any one holds; ((),) = always
    q: float | None = None  # quniform: Optuna models the integer k of the value k * q

    def active(self, values: Mapping[str, Any]) -> bool:
        return any(all(values.get(label) == index for label, index in cond) for cond in self.conditions)

    def to_hyperopt(self, value: Any) -> Any:
        """Optuna's value as hyperopt stores it in ``misc['vals']``."""
        if self.kind == "quniform":
            return float(value * self.q)
        if self.q is not None:  # qloguniform, qnormal, qlognormal
            return float(round(value / self.q) * self.q)
        return int(value) if isinstance(self.distribution, (IntDistribution, CategoricalDistribution)) else float(value)

    def from_hyperopt(self, value: Any) -> Any:
        """hyperopt's stored value as Optuna's, clipped into the (finite) Optuna range."""
        if self.kind == "quniform":
            value = round(float(value) / self.q)
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            return int(value)
        if isinstance(dist, IntDistribution):
            return int(min(max(int(round(value)), dist.low), dist.high))
        return float(min(max(float(value), dist.low), dist.high))


    def from_hyperopt_array(self, raw: np.ndarray) -> np.ndarray:
        """:meth:`from_hyperopt` for many values at once (floats out)."""
        if self.kind == "quniform":
            raw = np.round(raw / self.q)
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            return raw
        if isinstance(dist, IntDistribution):
            raw = np.round(raw)
        return np.clip(raw, dist.low, dist.high)


def _literal(node: Apply, label: str | None = None) -> Any:
    """A constant of the space (a bound of ``label``, or a label itself), refused when it is computed."""
    if not hasattr(node, "obj"):
        what = f"hyperparameter {label!r}: bounds" if label else "hyperparameter labels"
        raise SpaceError(f"{what} must be constants, got an expression ({node.name})")
    return node.obj


def _distribution(label: str, node: Apply, is_index: bool) -> tuple[str, BaseDistribution, float | None]:
    """(kind, Optuna distribution, q) of one hyperopt distribution node."""
    name = node.name
    args = [_literal(a, label) for a in node.pos_args] + [_literal(v, label) for _, v in node.named_args]
    if name == "categorical":  # hp.pchoice: p is a list of probabilities
        return "choice", CategoricalDistribution(list(range(len(args[0])))), None
    if name == "randint":
        low, high = (0, args[0]) if len(args) == 1 else (args[0], args[1])
        if is_index:
            return "choice", CategoricalDistribution(list(range(int(high) - int(low)))), None
        return "randint", IntDistribution(int(low), int(high) - 1), None
    q = args[2] if len(args) > 2 else None
    if name == "uniform":
        return name, FloatDistribution(args[0], args[1]), None
    if name == "quniform":
        return name, IntDistribution(round(args[0] / q), round(args[1] / q)), q
    if name in ("loguniform", "qloguniform"):
        return name, FloatDistribution(math.exp(args[0]), math.exp(args[1]), log=True), q
    if name in ("normal", "qnormal"):
        mu, sigma = args[0], args[1]
        return name, FloatDistribution(mu - SIGMAS * sigma, mu + SIGMAS * sigma), q
    if name in ("lognormal", "qlognormal"):
        mu, sigma = args[0], args[1]
        return name, FloatDistribution(math.exp(mu - SIGMAS * sigma), math.exp(mu + SIGMAS * sigma), log=True), q
    raise SpaceError(f"hyperparameter {label!r}: hyperopt distribution {name!r} is not supported by this sampler; "
                     "use hp.choice/pchoice/randint/uniform/quniform/loguniform/qloguniform/normal/lognormal")


def _walk(node: Apply, condition: Condition, found: dict[str, dict[str, Any]], seen: set[int]) -> None:
    """Collect every hyperparameter node under ``node`` with the condition of the path to it."""
    if node.name == "switch":
        index = node.inputs()[0]
        label = _literal(index.arg["label"])
        _walk(index, condition, found, seen)
        found[label]["is_index"] = True
        for i, option in enumerate(node.inputs()[1:]):
            _walk(option, condition + ((label, i),), found, seen)
        return
    if node.name == "hyperopt_param":
        label = _literal(node.arg["label"])
        entry = found.setdefault(label, {"node": node.arg["obj"], "conditions": [], "is_index": False})
        if entry["node"] is not node.arg["obj"]:
            raise SpaceError(f"the label {label!r} is used by two different hyperparameters; give each its own label")
        if condition not in entry["conditions"]:
            entry["conditions"].append(condition)
    key = (id(node), condition)
    if key in seen:
        return
    seen.add(key)
    for child in node.inputs():
        _walk(child, condition, found, seen)


def translate(space: Any) -> list[Param]:
    """The space's hyperparameters, parents before their conditional children."""
    found: dict[str, dict[str, Any]] = {}
    _walk(as_apply(space), (), found, set())
    params = []
    for label, entry in found.items():
        kind, dist, q = _distribution(label, entry["node"], entry["is_index"])
        conditions = tuple(entry["conditions"])
        if () in conditions:
            conditions = ((),)
        params.append(Param(label, kind, dist, conditions, q))
    return params


def values_from_misc(params: list[Param], misc: Mapping[str, Any]) -> dict[str, Any]:
    """A hyperopt trial's active values (``misc['vals']``) in Optuna's terms."""
    vals = misc.get("vals", {})
    return {p.label: p.from_hyperopt(vals[p.label][0]) for p in params if vals.get(p.label)}


def matrix(params: list[Param], miscs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Many trials' values at once: one row per ``misc``, one column per param, NaN where inactive."""
    column = {p.label: j for j, p in enumerate(params)}
    rows: list[list[int]] = [[] for _ in params]
    raw: list[list[float]] = [[] for _ in params]
    for i, misc in enumerate(miscs):
        for label, stored in misc["vals"].items():
            if stored and label in column:
                j = column[label]
                rows[j].append(i)
                raw[j].append(stored[0])
    out = np.full((len(miscs), len(params)), np.nan)
    for j, p in enumerate(params):
        if rows[j]:
            out[rows[j], j] = p.from_hyperopt_array(np.asarray(raw[j], dtype=float))
    return out


def idxs_vals(params: list[Param], values: Mapping[str, Any], tid: int) -> tuple[dict, dict]:
    """hyperopt's ``idxs``/``vals`` for one new trial from Optuna-side values of its active params."""
    idxs = {p.label: ([tid] if p.label in values else []) for p in params}
    vals = {p.label: ([p.to_hyperopt(values[p.label])] if p.label in values else []) for p in params}
    return idxs, vals


def ask_values(trial: Any, params: list[Param]) -> dict[str, Any]:
    """Define-by-run: ask an Optuna trial for each active parameter, parents first; hyperopt's ``vals``."""
    values: dict[str, Any] = {}
    for p in params:
        if p.active(values):
            values[p.label] = _ask(trial, p)
    return {p.label: p.to_hyperopt(v) for p in params if (v := values.get(p.label)) is not None}


def _ask(trial: Any, p: Param) -> Any:
    dist = p.distribution
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(p.label, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(p.label, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(p.label, dist.low, dist.high, log=dist.log)
