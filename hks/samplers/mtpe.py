"""``--algo mtpe``: multivariate, group-aware TPE with local search around the incumbent.

A hyperopt ``suggest`` function (``suggest(new_ids, domain, trials, seed)``), so it runs under
``hyperopt.fmin`` and any ``Trials``. Per suggestion, with every draw from ``seed``:

* **start-up** (fewer than ``n_startup`` finished trials): the most distant of ``n_fill``
  random points from every trial so far, pending ones included (space-filling, not i.i.d.);
* **local search** (probability ``local_prob``, ``pending_local_prob`` while trials are pending): a one-
  or two-parameter move from one of the best trials, the move White et al. (2020) found state of the art
  on cell-based NAS tables; with trials pending, half of them (``merge``) instead carry over to the best
  trial a move that improved another finished trial, as moves asked together come back together;
* **branch turn** (probability ``arm_prob`` times the share of the parameters that belong to one
  option of a top-level ``hp.choice``, so none in a flat space): the top-level branch (say, a model
  family) with the fewest trials gets the turn, and the point is TPE fitted to that branch's trials
  only, so its "good" trials are the branch's best, not the search's. TPE alone (hyperopt's and
  Optuna's too) settles on the family that looked best early; a family whose random points look
  worst but whose best is best (a narrow good region) is then never modelled;
* otherwise **TPE**: Optuna's Parzen estimators (``optuna.samplers._tpe``, the code behind its
  ``TPESampler(multivariate=True, group=True)``), fitted jointly over each group of
  hyperparameters that are active together, parents before the branches they open.

Pending trials (hyperopt ``JOB_STATE_NEW`` / ``RUNNING``, and the earlier ids of the same batch)
count as bad results for TPE (Optuna's constant liar), and no suggestion repeats or nearly repeats
(:func:`near_duplicate`) a trial that is done, failed or pending. Only finished trials count toward
the start-up phase. The model is rebuilt from ``trials`` on each call (no hidden state), so equal
inputs give equal outputs; the history is held as one matrix, so this stays cheap at 1,000 trials.
Optuna's estimators are private API: optuna is pinned to the version this was written against.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hyperopt import JOB_STATE_DONE, JOB_STATE_NEW, JOB_STATE_RUNNING, STATUS_OK
from hyperopt.base import miscs_update_idxs_vals
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import default_gamma, default_weights

from hks.errors import SpaceError
from hks.samplers.optuna_space import Param, idxs_vals, matrix, translate

PARZEN = _ParzenEstimatorParameters(prior_weight=1.0, consider_magic_clip=True, consider_endpoints=False,
                                    weights=default_weights, multivariate=True)
DONE, PENDING, OTHER = 0, 1, 2  # failed, cancelled or errored: never modelled, never repeated


@dataclass(frozen=True)
class Knobs:
    """The sampler's settings; defaults picked on bench/search_quality.py with seeds >= 100 (the
    reported table uses seeds 0-19; NAS-Bench-201 was never run)."""

    n_startup: int = 10  # finished trials before TPE models
    n_fill: int = 64  # random points the start-up design picks the most distant of
    local_prob: float = 0.4  # share of post-start-up suggestions that are local moves
    pending_local_prob: float = 0.7  # the same while trials are pending (several workers): neighbours of the best
    # tried at once are how a hill-climb runs in parallel; tuned on seeds 100-139, checked on 0-59 (search_quality.md)
    explore_prob: float = 0.0  # share of post-start-up suggestions drawn space-filling
    n_candidates: int = 64  # TPE draws from l(x) scored by l(x)/g(x) (Optuna: 24)
    min_gap: float = 0.01  # floats closer than this share of their range count as equal
    liar: bool = True  # pending trials count as bad results for TPE (else they only block repeats)
    branch_prob: float = 0.3  # share of local moves made from the best trial of a random branch
    arm_prob: float = 0.5  # share of post-start-up suggestions made inside the least-tried top-level branch,
    # times the share of the parameters that belong to one top-level branch (cash 0.93, classic 0.14)
    n_branch_startup: int = 3  # finished trials of a branch before its turns are modelled
    max_arms: int = 64  # more top-level branches than this: turns only go to those already tried
    max_above: int = 250  # g(x) is fitted to the most recent this many other trials (cost stays flat)
    spread: float = 1.0  # a local move's odds of moving a parameter, times this per pending neighbour of its
    # base that moved it (1: no preference); an ablation: 0.25 helped on the tuning seeds, not on seeds 0-59
    merge: float = 0.5  # with trials pending, share of local moves that carry an improving sibling move over to the
    # best trial (0: never); tuned on seeds 100-139, checked on 0-59 (bench/results/search_quality.md)
    merge_top: int = 32  # improving moves are looked for among those that ended in this many best trials


class Space:
    """The translated space and vectorised views of it: positions in [0, 1] and tolerances."""

    def __init__(self, params: list[Param], min_gap: float) -> None:
        self.params = params
        dists = [p.distribution for p in params]
        self.categorical = np.array([isinstance(d, CategoricalDistribution) for d in dists])
        self.log = np.array([bool(getattr(d, "log", False)) for d in dists])
        low = np.array([0.0 if c else d.low for c, d in zip(self.categorical, dists)], dtype=float)
        high = np.array([1.0 if c else d.high for c, d in zip(self.categorical, dists)], dtype=float)
        self.low = np.where(self.log, np.log(np.where(self.log, low, 1.0)), low)
        self.high = np.where(self.log, np.log(np.where(self.log, high, 1.0)), high)
        # largest difference that still counts as the same value: floats min_gap of their range, else equal
        is_float = np.array([isinstance(d, FloatDistribution) for d in dists])
        span = np.maximum(self.high - self.low, 1.0)
        self.tol = np.where(is_float, min_gap, np.where(self.categorical, 0.0, 0.5 / span))
        parents = {label for p in params for cond in p.conditions for label, _ in cond}
        self.branching = [j for j, p in enumerate(params) if p.label in parents]  # choices that open branches
        self.top = [j for j in self.branching if params[j].conditions == ((),)]  # ...always active themselves
        top_labels = {params[j].label for j in self.top}
        # share of the parameters that belong to one option of a top-level choice (a model family's own)
        self.owned = sum(len(p.conditions) == 1 and bool(p.conditions[0]) and p.conditions[0][0][0] in top_labels
                         for p in params) / len(params)

    def keys(self, x: np.ndarray) -> np.ndarray:
        """The branch of each row: its values of the choices that open branches (-1: inactive)."""
        return np.nan_to_num(x[:, self.branching], nan=-1.0)

    def arms(self, limit: int) -> np.ndarray | None:
        """Every combination of the top-level choices that open branches (rows like :meth:`top_keys`),
        or None past ``limit``."""
        sizes = [len(self.params[j].distribution.choices) for j in self.top]
        if math.prod(sizes) > limit:
            return None
        return np.array(list(itertools.product(*map(range, sizes))), dtype=float).reshape(-1, len(sizes))

    def top_keys(self, x: np.ndarray) -> np.ndarray:
        """The top-level branch of each row: its values of the top-level choices that open branches."""
        return x[:, self.top]

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Positions in [0, 1] (categorical: the index), NaN where inactive."""
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(self.log, np.log(np.where(self.log, x, 1.0)), x)
            span = self.high - self.low
            pos = np.where(span > 0, (v - self.low) / np.where(span > 0, span, 1.0), 0.0)
        return np.where(np.isnan(x), np.nan, np.where(self.categorical, x, pos))

    def row(self, values: dict[str, Any]) -> np.ndarray:
        return np.array([float(values[p.label]) if p.label in values else np.nan for p in self.params])

    def values(self, row: np.ndarray) -> dict[str, Any]:
        return {p.label: _external(p.distribution, v) for p, v in zip(self.params, row) if not np.isnan(v)}


def _external(dist: Any, value: float) -> Any:
    if isinstance(dist, FloatDistribution):
        return float(value)
    return int(round(value))


def differences(x: np.ndarray, known: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """(rows of ``known`` x parameters): where encoded point ``x`` differs from the row in activity,
    choice, integer or (beyond ``tol``) float."""
    x_nan, k_nan = np.isnan(x), np.isnan(known)
    same = (x_nan & k_nan) | (~x_nan & ~k_nan & (np.abs(np.nan_to_num(known) - np.nan_to_num(x)) <= tol + 1e-12))
    return ~same


def near_duplicate(x: np.ndarray, known: np.ndarray, tol: np.ndarray) -> bool:
    """Whether encoded point ``x`` matches a row of ``known`` everywhere (see :func:`differences`)."""
    return bool(len(known)) and bool((~differences(x, known, tol).any(axis=1)).any())


def distances(points: np.ndarray, known: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    """(points x known) sums over parameters: 1 for a differing choice or activity, else the gap in [0, 1]."""
    a, b = points[:, None, :], known[None, :, :]
    a_nan, b_nan = np.isnan(a), np.isnan(b)
    gap = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    gap = np.where(categorical, (gap > 0).astype(float), gap)
    return np.where(a_nan & b_nan, 0.0, np.where(a_nan | b_nan, 1.0, gap)).sum(axis=2)


@dataclass
class History:
    """Every trial so far, in tid order: Optuna-side values (NaN: inactive), state and loss."""

    x: np.ndarray
    state: np.ndarray
    loss: np.ndarray

    @classmethod
    def from_trials(cls, params: list[Param], docs: Sequence[dict]) -> History:
        docs = sorted(docs, key=lambda d: d["tid"])
        state, loss = np.full(len(docs), OTHER), np.full(len(docs), np.nan)
        for i, doc in enumerate(docs):
            result = doc.get("result") or {}
            if doc["state"] in (JOB_STATE_NEW, JOB_STATE_RUNNING) or result.get("lie"):
                state[i] = PENDING  # hks's samplers show pending trials as finished with a lie: undo it
            elif doc["state"] == JOB_STATE_DONE and result.get("status") == STATUS_OK and _finite(result.get("loss")):
                state[i], loss[i] = DONE, float(result["loss"])
        return cls(matrix(params, [d["misc"] for d in docs]), state, loss)

    def add_pending(self, row: np.ndarray) -> None:
        self.x = np.vstack([self.x, row[None, :]])
        self.state = np.append(self.state, PENDING)
        self.loss = np.append(self.loss, np.nan)

    @property
    def n_done(self) -> int:
        return int((self.state == DONE).sum())

    @property
    def n_pending(self) -> int:
        return int((self.state == PENDING).sum())

    def ranked(self) -> np.ndarray:
        """Rows of the finished trials, best first (ties: the earlier)."""
        done = np.flatnonzero(self.state == DONE)
        return done[np.argsort(self.loss[done], kind="stable")]


def _finite(loss: Any) -> bool:
    try:
        return math.isfinite(float(loss))
    except (TypeError, ValueError):
        return False


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


def complete(params: list[Param], values: dict[str, Any], fill: Callable[[Param], Any]) -> dict[str, Any]:
    """Keep the active values, drop inactive ones and ``fill(param)`` newly active ones, parents first."""
    out: dict[str, Any] = {}
    for p in params:
        if p.active(out):
            out[p.label] = values[p.label] if p.label in values else fill(p)
    return out


def random_point(params: list[Param], rng: np.random.Generator) -> dict[str, Any]:
    return complete(params, {}, lambda p: random_value(p, rng))


def neighbour(params: list[Param], base: dict[str, Any], rng: np.random.Generator,
              donor: dict[str, Any], weights: dict[str, float] | None = None) -> dict[str, Any]:
    """``base`` with one (sometimes two) active parameters moved a step; a newly opened branch takes
    its values from ``donor`` (the best trial's value of each parameter) or else at random."""
    moved = dict(base)
    active = [p for p in params if p.label in base]
    chance = None
    if weights:
        w = np.array([weights.get(p.label, 1.0) for p in active])
        chance = w / w.sum()
    for p in rng.choice(active, size=min(len(active), 1 + int(rng.random() < 0.3)), replace=False, p=chance):
        moved[p.label] = _step(p, base[p.label], rng)
    return complete(params, moved, lambda p: donor[p.label] if p.label in donor else random_value(p, rng))


def _step(p: Param, value: Any, rng: np.random.Generator) -> Any:
    dist = p.distribution
    if isinstance(dist, CategoricalDistribution):
        others = [c for c in dist.choices if c != value]
        return int(rng.choice(others)) if others else value
    if isinstance(dist, FloatDistribution):
        low, high, v = (math.log(dist.low), math.log(dist.high), math.log(value)) if dist.log else \
            (dist.low, dist.high, value)
        moved = _reflect(v + rng.normal(0.0, 0.15) * (high - low), low, high)
        return float(math.exp(moved)) if dist.log else float(moved)
    if dist.high == dist.low:
        return value
    step = int(rng.choice([-1, 1])) * (1 + int(rng.random() < 0.25))
    target = value + step if dist.low <= value + step <= dist.high else value - step
    return int(min(max(target, dist.low), dist.high))


def _reflect(x: float, low: float, high: float) -> float:
    """``x`` folded back into [low, high] at the bounds."""
    if high <= low:
        return low
    t = (x - low) % (2 * (high - low))
    return low + (t if t <= high - low else 2 * (high - low) - t)


def _groups(params: list[Param]) -> list[list[int]]:
    """Columns of the parameters that are active together (same conditions), parents first."""
    groups: dict[tuple, list[int]] = {}
    for j, p in enumerate(params):
        groups.setdefault(p.conditions, []).append(j)
    return list(groups.values())


def tpe_candidates(space: Space, history: History, rng: np.random.Generator, n_candidates: int,
                   liar: bool = True, max_above: int = 250, fixed: dict[str, Any] | None = None
                   ) -> list[dict[str, Any]]:
    """Points drawn group by group from the good trials' Parzen density l(x), each group's draws
    ranked by l(x)/g(x) (g: the other finished trials, and pending ones with ``liar``), best first;
    ``fixed`` values replace the draws of their parameters (a branch chosen beforehand)."""
    params = space.params
    random_state = np.random.RandomState(rng.integers(2**32 - 1))
    candidates: list[dict[str, Any]] = [{} for _ in range(n_candidates)]
    below, above = _split(history, liar, max_above)
    for group in _groups(params):
        users = [c for c in candidates if params[group[0]].active(c)]
        if not users:
            continue
        dists = {params[j].label: params[j].distribution for j in group}
        est_below, est_above = (_estimator(history.x[rows], group, dists) for rows in (below, above))
        draws = est_below.sample(random_state, n_candidates)
        order = np.argsort(est_above.log_pdf(draws) - est_below.log_pdf(draws), kind="stable")
        for rank, candidate in enumerate(users):  # every candidate opening the group gets a draw, best first
            pick = order[rank % len(order)]
            for label, dist in dists.items():
                candidate[label] = fixed[label] if fixed and label in fixed else _external(dist, draws[label][pick])
    return candidates


def _split(history: History, liar: bool, max_above: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the good trials (Optuna's gamma share of the finished ones) and of the others."""
    ranked = history.ranked()
    below = np.zeros(len(history.state), dtype=bool)
    below[ranked[:default_gamma(len(ranked))]] = True  # rows stay in tid order, as Optuna's weights expect
    above = ((history.state == DONE) | ((history.state == PENDING) & liar)) & ~below
    above[np.flatnonzero(above)[:-max_above]] = False  # the oldest carry least weight in Optuna's ramp anyway
    return below, above


def _estimator(x: np.ndarray, columns: list[int], dists: dict[str, Any]) -> _ParzenEstimator:
    rows = x[~np.isnan(x[:, columns[0]])][:, columns]
    return _ParzenEstimator({label: rows[:, i] for i, label in enumerate(dists)}, dists, PARZEN)


# --- the suggest function ------------------------------------------------------------------------

class Proposer:
    """One call's state: the history (growing with this batch's suggestions) and its encoding."""

    def __init__(self, space: Space, history: History, knobs: Knobs, rng: np.random.Generator) -> None:
        self.space, self.history, self.knobs, self.rng = space, history, knobs, rng
        self.known = space.encode(history.x)

    def fresh(self, values: dict[str, Any]) -> bool:
        return not near_duplicate(self.space.encode(self.space.row(values)), self.known, self.space.tol)

    def accept(self, values: dict[str, Any]) -> dict[str, Any]:
        row = self.space.row(values)
        self.history.add_pending(row)
        self.known = np.vstack([self.known, self.space.encode(row)[None, :]])
        return values

    def propose(self) -> dict[str, Any]:
        knobs, rng = self.knobs, self.rng
        if self.history.n_done < knobs.n_startup:
            return self.accept(self.space_filling())
        draw = rng.random()
        if draw < knobs.explore_prob:
            return self.accept(self.space_filling())
        if self.space.top and rng.random() < knobs.arm_prob * self.space.owned:
            return self.accept(self.in_branch(self.pick_arm()) or self.space_filling())
        local_prob = knobs.pending_local_prob if self.history.n_pending else knobs.local_prob
        first = self.local() if draw < knobs.explore_prob + local_prob else self.tpe()
        return self.accept(first or self.local() or self.tpe() or self.space_filling())

    def pick_arm(self) -> np.ndarray:
        """The top-level branch (values of the top-level choices that open branches) with the fewest
        trials so far, pending included; ties at random. Branch turns are thus spread evenly, as random
        search spreads its points, while the other suggestions exploit the branch that leads. (A UCB on
        each branch's best loss, tried instead, starved the branches whose random points look worst.)"""
        keys = self.space.top_keys(self.history.x)
        counted = self.history.state != OTHER
        arms = self.space.arms(self.knobs.max_arms)
        if arms is None:
            arms = np.unique(keys[counted], axis=0)
        counts = np.array([int(((keys == arm).all(axis=1) & counted).sum()) for arm in arms])
        return arms[int(self.rng.choice(np.flatnonzero(counts == counts.min())))]

    def in_branch(self, arm: np.ndarray) -> dict[str, Any] | None:
        """A point of branch ``arm``: TPE fitted to that branch's trials only once it has
        ``n_branch_startup`` finished ones (its good trials are then the branch's best, not the
        search's), else the branch's random point farthest from every known trial."""
        fixed = {self.space.params[j].label: int(v) for j, v in zip(self.space.top, arm)}
        mine = (self.space.top_keys(self.history.x) == arm).all(axis=1)
        branch = History(self.history.x[mine], self.history.state[mine], self.history.loss[mine])
        if branch.n_done >= self.knobs.n_branch_startup:
            return self.tpe(fixed, branch)
        return self.space_filling(fixed)

    def space_filling(self, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
        """The random point (with the ``fixed`` values) farthest from every known trial."""
        params, rng = self.space.params, self.rng
        points = [complete(params, fixed, lambda p: random_value(p, rng)) if fixed else random_point(params, rng)
                  for _ in range(self.knobs.n_fill)]
        if not len(self.known):
            return points[0]
        encoded = self.space.encode(np.array([self.space.row(p) for p in points]))
        nearest = distances(encoded, self.known, self.space.categorical).min(axis=1)
        return points[int(np.argmax(nearest))]

    def local(self, tries: int = 24, bases: int = 5) -> dict[str, Any] | None:
        """A fresh neighbour of one of the best trials (the best first, the next once its
        neighbourhood looks exhausted)."""
        ranked = self.history.ranked()
        if not len(ranked):
            return None
        if self.knobs.merge and self.history.n_pending and self.rng.random() < self.knobs.merge:
            merged = self.merged(ranked)
            if merged is not None:
                return merged
        donor = self._donor(ranked)
        starts = list(ranked[:bases])
        if self.rng.random() < self.knobs.branch_prob:
            starts.insert(0, self._branch_leader(ranked))
        for row in starts:
            base = self.space.values(self.history.x[row])
            weights = self._unmoved(row)
            for _ in range(tries):
                candidate = neighbour(self.space.params, base, self.rng, donor, weights)
                if self.fresh(candidate):
                    return candidate
        return None

    def merged(self, ranked: np.ndarray) -> dict[str, Any] | None:
        """The best trial with an improving sibling move carried over to it (see :meth:`improving_moves`).

        Why, with trials pending only: a sequential hill-climb moves from each new best at once. With 8
        pending, the moves asked together from one base come back together; the best of them becomes the
        new base, and the others that also improved would otherwise be found again one by one from it,
        each about 8 evaluations late."""
        params, best_values = self.space.params, self.space.values(self.history.x[ranked[0]])
        for row, columns in self.improving_moves(ranked):
            moved = {params[j].label for j in columns}
            kept = {label: value for label, value in best_values.items() if label not in moved}
            candidate = complete(params, self.space.values(self.history.x[row]) | kept,
                                 lambda p: random_value(p, self.rng))
            if self.fresh(candidate):
                return candidate
        return None

    def improving_moves(self, ranked: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(trial, the columns it changed) for each finished trial among the ``merge_top`` best that
        changed one or two parameters of a worse finished trial where the best trial agrees with that
        worse one (so the move applies to the best as it stands); the largest improvement first."""
        best, tops = ranked[0], ranked[1:self.knobs.merge_top]
        x, tol, loss = self.known, self.space.tol, self.history.loss
        changed = differences(x[tops][:, None, :], x[ranked][None, :, :], tol)  # (tops, bases, parameters)
        size = changed.sum(axis=2)
        like_best = ~differences(x[best], x[ranked], tol)  # (bases, parameters)
        applies = ~(changed & ~like_best[None, :, :]).any(axis=2)
        gain = loss[ranked][None, :] - loss[tops][:, None]
        top, base = np.nonzero((size >= 1) & (size <= 2) & (gain > 0) & applies)
        order = np.argsort(-gain[top, base], kind="stable")
        return [(int(tops[top[k]]), np.flatnonzero(changed[top[k], base[k]])) for k in order]

    def _unmoved(self, row: int) -> dict[str, float] | None:
        """Weights that favour the parameters no pending neighbour of trial ``row`` has moved (a batch of
        local moves then explores different directions), or None without such neighbours or with
        ``spread`` 1 (then the moves draw exactly as they did before the knob existed)."""
        pending = np.flatnonzero(self.history.state == PENDING)
        if self.knobs.spread == 1.0 or not len(pending):
            return None
        differs = differences(self.known[row], self.known[pending], self.space.tol)
        near = differs.sum(axis=1) <= 2  # a local move changes one or two parameters
        if not near.any():
            return None
        counts = differs[near].sum(axis=0)
        weights = np.maximum(self.knobs.spread ** (counts - counts.min()), 1e-9)  # never all zero, never underflow
        return {p.label: float(weights[j]) for j, p in enumerate(self.space.params)}

    def _branch_leader(self, ranked: np.ndarray) -> int:
        """The best trial of a random branch: one combination of the choices that open other
        parameters (an ``hp.choice`` over models, depths...), so that no branch is given up for good
        because its first random points were bad."""
        if not self.space.branching:
            return int(ranked[0])
        _, first = np.unique(self.space.keys(self.history.x[ranked]), axis=0, return_index=True)
        return int(ranked[self.rng.choice(first)])

    def _donor(self, ranked: np.ndarray) -> dict[str, Any]:
        """Each parameter's value in the best finished trial where it is active."""
        donor = {}
        for j, p in enumerate(self.space.params):
            column = self.history.x[ranked, j]
            active = np.flatnonzero(~np.isnan(column))
            if len(active):
                donor[p.label] = _external(p.distribution, column[active[0]])
        return donor

    def tpe(self, fixed: dict[str, Any] | None = None, history: History | None = None) -> dict[str, Any] | None:
        """The best-scored TPE candidate that is fresh (fitted to ``history``, by default all trials)."""
        knobs, history = self.knobs, self.history if history is None else history
        for _ in range(3):
            for candidate in tpe_candidates(self.space, history, self.rng, knobs.n_candidates, knobs.liar,
                                            knobs.max_above, fixed):
                if self.fresh(candidate):
                    return candidate
        return None


def suggest(new_ids: Sequence[int], domain: Any, trials: Any, seed: int, **knobs: Any) -> list[dict]:
    """hyperopt's ``suggest`` protocol: one new trial document per id, none a near-repeat of another."""
    settings = Knobs(**knobs)
    params = _params(domain)
    space = Space(params, settings.min_gap)
    proposer = Proposer(space, History.from_trials(params, trials.trials), settings, np.random.default_rng(seed))
    docs = []
    for new_id in new_ids:
        idxs, vals = idxs_vals(params, proposer.propose(), new_id)
        misc = {"tid": new_id, "cmd": domain.cmd, "workdir": domain.workdir}
        miscs_update_idxs_vals([misc], idxs, vals)
        docs.extend(trials.new_trial_docs([new_id], [None], [domain.new_result()], [misc]))
    return docs


def check_space(space: Any) -> None:
    """Refuse, before the search starts, a space mtpe cannot model, saying how to search it anyway."""
    try:
        translate(space)
    except SpaceError as exc:
        raise SpaceError(f"--algo mtpe cannot model this space: {exc}. Fix the space, or search it with "
                         "--algo tpe (hyperopt's TPE)") from None


def _params(domain: Any) -> list[Param]:
    """The translated space, cached on the domain (hyperopt builds one per search)."""
    cached = getattr(domain, "_hks_mtpe_params", None)
    if cached is None:
        cached = translate(domain.expr)
        domain._hks_mtpe_params = cached
    return cached
