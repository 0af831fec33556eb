"""``--algo mtpe``: multivariate, group-aware TPE with local search around the incumbent.

A hyperopt ``suggest`` function (``suggest(new_ids, domain, trials, seed)``), so it runs under
``hyperopt.fmin`` and any ``Trials``. Per suggestion, with every draw from ``seed``:

* **start-up** (fewer than ``n_startup`` finished trials): the most distant of ``n_fill``
  random points from every trial so far, pending ones included (space-filling, not i.i.d.);
* **local search** (probability ``local_prob``): a one- or two-parameter move from one of the best
  trials, the move White et al. (2020) found state of the art on cell-based NAS tables;
* otherwise **TPE**: Optuna's Parzen estimators (``optuna.samplers._tpe``, the code behind its
  ``TPESampler(multivariate=True, group=True)``), fitted jointly over each group of
  hyperparameters that are active together, parents before the branches they open.

Pending trials (hyperopt ``JOB_STATE_NEW`` / ``RUNNING``, and the earlier ids of the same batch)
count as bad results for TPE (Optuna's constant liar), and no suggestion repeats or nearly repeats
(:func:`near_duplicate`) a trial that is done, failed or pending. Only finished trials count toward
the start-up phase. The model is rebuilt from ``trials`` on each call (no hidden state), so equal
inputs give equal outputs; Optuna's estimators are vectorised, which keeps this cheap at 1,000 trials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hyperopt import JOB_STATE_DONE, JOB_STATE_NEW, JOB_STATE_RUNNING, STATUS_OK
from hyperopt.base import miscs_update_idxs_vals
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import default_gamma, default_weights

from hks.samplers.optuna_space import Param, idxs_vals, translate, values_from_misc

PARZEN = _ParzenEstimatorParameters(prior_weight=1.0, consider_magic_clip=True, consider_endpoints=False,
                                    weights=default_weights, multivariate=True)


@dataclass(frozen=True)
class Knobs:
    """The sampler's settings; the defaults are those that won ``bench/search_quality.py``."""

    n_startup: int = 10  # finished trials before TPE models
    n_fill: int = 64  # random points the start-up design picks the most distant of
    local_prob: float = 0.25  # share of post-start-up suggestions that are local moves
    n_candidates: int = 24  # TPE draws from l(x) scored by l(x)/g(x)
    min_gap: float = 0.01  # floats closer than this share of their range count as equal
    explore_prob: float = 0.0  # share of post-start-up suggestions drawn space-filling
    liar: bool = True  # pending trials count as bad results for TPE (else they only block repeats)


@dataclass
class History:
    """Every trial so far in Optuna's terms: finished (with loss), failed and pending."""

    params: list[Param]
    done: list[dict[str, Any]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)  # failed and pending: never repeated
    pending: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_trials(cls, params: list[Param], docs: Sequence[dict]) -> History:
        history = cls(params)
        for doc in sorted(docs, key=lambda d: d["tid"]):
            values = values_from_misc(params, doc["misc"])
            result = doc.get("result") or {}
            if doc["state"] == JOB_STATE_DONE and result.get("status") == STATUS_OK and _finite(result.get("loss")):
                history.done.append(values)
                history.losses.append(float(result["loss"]))
            elif doc["state"] in (JOB_STATE_NEW, JOB_STATE_RUNNING):
                history.add_pending(values)
            else:
                history.others.append(values)
        return history

    def add_pending(self, values: dict[str, Any]) -> None:
        self.pending.append(values)
        self.others.append(values)

    def everything(self) -> list[dict[str, Any]]:
        return self.done + self.others

    def ranked(self) -> list[dict[str, Any]]:
        """Finished trials, best first."""
        return [self.done[i] for i in np.argsort(self.losses, kind="stable")]


def _finite(loss: Any) -> bool:
    try:
        return math.isfinite(float(loss))
    except (TypeError, ValueError):
        return False


# --- encoding: positions in [0, 1] (categorical: the index), NaN where inactive ------------------

def encode(params: list[Param], configs: Sequence[dict[str, Any]]) -> np.ndarray:
    out = np.full((len(configs), len(params)), np.nan)
    for j, p in enumerate(params):
        dist = p.distribution
        for i, values in enumerate(configs):
            if p.label not in values:
                continue
            v = values[p.label]
            if isinstance(dist, CategoricalDistribution):
                out[i, j] = v
            else:
                low, high, v = (math.log(dist.low), math.log(dist.high), math.log(v)) if dist.log else \
                    (dist.low, dist.high, v)
                out[i, j] = 0.0 if high == low else (v - low) / (high - low)
    return out


def _tolerances(params: list[Param], min_gap: float) -> np.ndarray:
    """Largest difference per parameter that still counts as the same value."""
    tol = []
    for p in params:
        dist = p.distribution
        if isinstance(dist, FloatDistribution):
            tol.append(min_gap)
        elif isinstance(dist, CategoricalDistribution):
            tol.append(0.0)
        else:
            tol.append(0.5 / max(dist.high - dist.low, 1))
    return np.array(tol)


def near_duplicate(x: np.ndarray, known: np.ndarray, tol: np.ndarray) -> bool:
    """Whether encoded point ``x`` matches a row of ``known`` on activity, choices, integers and
    (within ``tol``) floats."""
    if not len(known):
        return False
    x_nan, k_nan = np.isnan(x), np.isnan(known)
    same = (x_nan & k_nan) | (~x_nan & ~k_nan & (np.abs(np.nan_to_num(known) - np.nan_to_num(x)) <= tol + 1e-12))
    return bool(same.all(axis=1).any())


def distances(x: np.ndarray, known: np.ndarray, params: list[Param]) -> np.ndarray:
    """Sum over parameters: 1 for a differing choice or activity, else the gap in [0, 1]."""
    categorical = np.array([isinstance(p.distribution, CategoricalDistribution) for p in params])
    x_nan, k_nan = np.isnan(x), np.isnan(known)
    gap = np.abs(np.nan_to_num(known) - np.nan_to_num(x))
    gap = np.where(categorical, (gap > 0).astype(float), gap)
    return np.where(x_nan & k_nan, 0.0, np.where(x_nan | k_nan, 1.0, gap)).sum(axis=1)


# --- proposals ---------------------------------------------------------------------------------

def random_value(p: Param, rng: np.random.Generator) -> Any:
    dist = p.distribution
    if isinstance(dist, CategoricalDistribution):
        return int(rng.integers(len(dist.choices)))
    if isinstance(dist, FloatDistribution):
        if dist.log:
            return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
        return float(rng.uniform(dist.low, dist.high))
    return int(rng.integers(dist.low, dist.high + 1))


def complete(params: list[Param], values: dict[str, Any], fill) -> dict[str, Any]:
    """Keep the active values, drop inactive ones and ``fill(param)`` newly active ones, parents first."""
    out: dict[str, Any] = {}
    for p in params:
        if p.active(out):
            out[p.label] = values[p.label] if p.label in values else fill(p)
    return out


def random_point(params: list[Param], rng: np.random.Generator) -> dict[str, Any]:
    return complete(params, {}, lambda p: random_value(p, rng))


def neighbour(params: list[Param], base: dict[str, Any], rng: np.random.Generator,
              donors: list[dict[str, Any]]) -> dict[str, Any]:
    """``base`` with one (sometimes two) active parameters moved a step; newly opened branches take
    their values from the best trial that has them (``donors``, best first), else at random."""
    moved = dict(base)
    active = [p for p in params if p.label in base]
    for p in rng.choice(active, size=min(len(active), 1 + int(rng.random() < 0.3)), replace=False):
        moved[p.label] = _step(p, base[p.label], rng)

    def fill(p: Param) -> Any:
        for donor in donors:
            if p.label in donor:
                return donor[p.label]
        return random_value(p, rng)

    return complete(params, moved, fill)


def _step(p: Param, value: Any, rng: np.random.Generator) -> Any:
    dist = p.distribution
    if isinstance(dist, CategoricalDistribution):
        others = [c for c in dist.choices if c != value]
        return int(rng.choice(others)) if others else value
    if isinstance(dist, FloatDistribution):
        low, high, v = (math.log(dist.low), math.log(dist.high), math.log(value)) if dist.log else \
            (dist.low, dist.high, value)
        moved = v + rng.normal(0.0, 0.15) * (high - low)
        moved = _reflect(moved, low, high)
        return float(math.exp(moved)) if dist.log else float(moved)
    if dist.high == dist.low:
        return value
    step = int(rng.choice([-1, 1])) * (1 + int(rng.random() < 0.25))
    target = value + step
    if not dist.low <= target <= dist.high:
        target = value - step
    return int(min(max(target, dist.low), dist.high))


def _reflect(x: float, low: float, high: float) -> float:
    """``x`` folded back into [low, high] at the bounds."""
    if high <= low:
        return low
    t = (x - low) % (2 * (high - low))
    return low + (t if t <= high - low else 2 * (high - low) - t)


def _groups(params: list[Param]) -> list[list[Param]]:
    """Parameters that are active together (same conditions), in parents-first order."""
    groups: dict[tuple, list[Param]] = {}
    for p in params:
        groups.setdefault(p.conditions, []).append(p)
    return list(groups.values())


def tpe_candidates(history: History, rng: np.random.Generator, n_candidates: int,
                   liar: bool = True) -> list[dict[str, Any]]:
    """Points drawn group by group from the good trials' Parzen density l(x), each group's draws
    ranked by l(x)/g(x) (g: the other finished trials plus pending ones), best first."""
    params = history.params
    n_below = default_gamma(len(history.done))
    order = np.argsort(history.losses, kind="stable")
    below_ids = set(order[:n_below].tolist())
    below = [v for i, v in enumerate(history.done) if i in below_ids]  # tid order, as Optuna's weights expect
    above = [v for i, v in enumerate(history.done) if i not in below_ids] + (history.pending if liar else [])
    random_state = np.random.RandomState(rng.integers(2**32 - 1))
    partial: list[dict[str, Any]] = [{} for _ in range(n_candidates)]
    for group in _groups(params):
        space = {p.label: p.distribution for p in group}
        # every candidate that opens this group gets one of the same fit's draws, best first
        users = [c for c in partial if group[0].active(c)]
        if not users:
            continue
        est_below = _estimator(below, space)
        est_above = _estimator(above, space)
        draws = est_below.sample(random_state, n_candidates)
        score = est_below.log_pdf(draws) - est_above.log_pdf(draws)
        ranked = np.argsort(-score, kind="stable")
        for rank, c in enumerate(users):
            pick = ranked[rank % len(ranked)]
            for label in space:
                c[label] = _external(space[label], draws[label][pick])
    return partial


def _estimator(configs: list[dict[str, Any]], space: dict[str, Any]) -> _ParzenEstimator:
    rows = [c for c in configs if all(label in c for label in space)]
    observations = {label: np.asarray([c[label] for c in rows], dtype=float) for label in space}
    return _ParzenEstimator(observations, space, PARZEN)


def _external(dist: Any, value: float) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return int(value)
    if isinstance(dist, FloatDistribution):
        return float(value)
    return int(round(value))


# --- the suggest function ------------------------------------------------------------------------

class Proposer:
    """One call's state: the history (growing with this batch's suggestions) and its encoding."""

    def __init__(self, params: list[Param], history: History, knobs: Knobs, rng: np.random.Generator) -> None:
        self.params, self.history, self.knobs, self.rng = params, history, knobs, rng
        self.tol = _tolerances(params, knobs.min_gap)
        self.known = encode(params, history.everything())

    def fresh(self, values: dict[str, Any]) -> bool:
        return not near_duplicate(encode(self.params, [values])[0], self.known, self.tol)

    def accept(self, values: dict[str, Any]) -> dict[str, Any]:
        self.history.add_pending(values)
        self.known = np.vstack([self.known, encode(self.params, [values])])
        return values

    def propose(self) -> dict[str, Any]:
        knobs, rng = self.knobs, self.rng
        if len(self.history.done) < knobs.n_startup:
            return self.accept(self.space_filling())
        draw = rng.random()
        if draw < knobs.explore_prob:
            return self.accept(self.space_filling())
        first = self.local() if draw < knobs.explore_prob + knobs.local_prob else self.tpe()
        return self.accept(first or self.local() or self.tpe() or self.space_filling())

    def space_filling(self) -> dict[str, Any]:
        """The random point farthest from every known trial (a fresh one if all are repeats)."""
        points = [random_point(self.params, self.rng) for _ in range(self.knobs.n_fill)]
        if not len(self.known):
            return points[0]
        encoded = encode(self.params, points)
        nearest = [distances(x, self.known, self.params).min() for x in encoded]
        return points[int(np.argmax(nearest))]

    def local(self, tries: int = 24, bases: int = 5) -> dict[str, Any] | None:
        """A fresh neighbour of one of the best trials (the best first, the next once its
        neighbourhood looks exhausted)."""
        ranked = self.history.ranked()
        for base in ranked[:bases]:
            for _ in range(tries):
                candidate = neighbour(self.params, base, self.rng, ranked)
                if self.fresh(candidate):
                    return candidate
        return None

    def tpe(self) -> dict[str, Any] | None:
        for _ in range(3):
            for candidate in tpe_candidates(self.history, self.rng, self.knobs.n_candidates, self.knobs.liar):
                if self.fresh(candidate):
                    return candidate
        return None


def suggest(new_ids: Sequence[int], domain: Any, trials: Any, seed: int, **knobs: Any) -> list[dict]:
    """hyperopt's ``suggest`` protocol: one new trial document per id, none a near-repeat of another."""
    params = _params(domain)
    rng = np.random.default_rng(seed)
    proposer = Proposer(params, History.from_trials(params, trials.trials), Knobs(**knobs), rng)
    docs = []
    for new_id in new_ids:
        values = proposer.propose()
        idxs, vals = idxs_vals(params, values, new_id)
        misc = {"tid": new_id, "cmd": domain.cmd, "workdir": domain.workdir}
        miscs_update_idxs_vals([misc], idxs, vals)
        docs.extend(trials.new_trial_docs([new_id], [None], [domain.new_result()], [misc]))
    return docs


def _params(domain: Any) -> list[Param]:
    """The translated space, cached on the domain (hyperopt builds one per search)."""
    cached = getattr(domain, "_hks_mtpe_params", None)
    if cached is None:
        cached = translate(domain.expr)
        domain._hks_mtpe_params = cached
    return cached
