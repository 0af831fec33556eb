"""``--algo gp``: Gaussian-process Bayesian optimisation through Ax (BoTorch) as a sampler.

The Ax client is rebuilt from the storage records at each suggestion, so the GP works with
every storage and runner (``--workers`` included) and resumes with the search: finished trials
are attached with their loss, pending ones are attached as running (Ax then proposes points
away from them, which is how a batch for several idle workers stays diverse). Before
``--gp-init-trials`` trials have a loss, points come from a scrambled Sobol sequence indexed by
trial id (quasi-random, evenly spread, and the same on every resume).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from hks.bayesopt.flat import Choice, FlatSpace, Float, Int, check_flat_space, to_ax_point
from hks.config import Settings
from hks.samplers.base import Sampler, finite_loss, pending, scored
from hks.seeding import trial_seed
from hks.store import protocol as p

METRIC = "loss"


def _flat_space(settings: Settings) -> FlatSpace:
    from hks.space import load_raw_space

    return check_flat_space(load_raw_space(settings.space), f"--gp-space {settings.space}")


def hyperopt_vals(space: FlatSpace, point: dict[str, Any]) -> dict[str, Any]:
    """hyperopt's stored value for each parameter (choices are stored as their index)."""
    return {name: (space[name].values.index(value) if isinstance(space[name], Choice) else value)
            for name, value in point.items()}


def job_doc(space: FlatSpace, tid: int, point: dict[str, Any]) -> dict[str, Any]:
    vals = hyperopt_vals(space, point)
    misc = {"tid": tid, "cmd": ("domain_attachment", "FMinIter_Domain"), "workdir": None,
            "idxs": {name: [tid] for name in vals}, "vals": {name: [value] for name, value in vals.items()}}
    return {"spec": None, "misc": misc}


def from_unit(space: FlatSpace, unit: np.ndarray) -> dict[str, Any]:
    """A point of the space from a point of the unit cube (one coordinate per parameter)."""
    point: dict[str, Any] = {}
    for u, (name, param) in zip(unit, space.items()):
        if isinstance(param, Choice):
            point[name] = param.values[min(int(u * len(param.values)), len(param.values) - 1)]
        elif param.log:
            value = math.exp(math.log(param.low) + u * (math.log(param.high) - math.log(param.low)))
            point[name] = min(int(value), param.high) if isinstance(param, Int) else value
        elif isinstance(param, Int):
            point[name] = min(param.low + int(u * (param.high - param.low + 1)), param.high)
        else:
            point[name] = param.low + u * (param.high - param.low)
    return point


class AxSampler(Sampler):
    name = "gp"

    def __init__(self, settings: Settings, space: Any, flat: FlatSpace | None = None):
        """``space`` is the flat space as hyperopt expressions; ``flat`` the flat space itself (by default,
        loaded from ``settings.space``, which ``--algo gp`` sets to ``--gp-space``)."""
        self.flat = check_flat_space(flat, "the flat space") if flat is not None else _flat_space(settings)
        self.hyperopt_space = space
        self.seed, self.init_trials, self.threads = settings.seed, settings.gp_init_trials, settings.threads
        from hks.bayesopt.ax_loop import import_ax

        import_ax()  # a one-line error naming the extra, now rather than after the Sobol phase

    def suggest(self, history: list[p.Job], tids: list[int]) -> list[dict[str, Any]]:
        if len(scored(history)) < self.init_trials:
            return [job_doc(self.flat, tid, self._sobol(tid)) for tid in tids]
        points = self._gp(history, tids)
        return [job_doc(self.flat, tid, point) for tid, point in zip(tids, points)]

    def _sobol(self, tid: int) -> dict[str, Any]:
        from scipy.stats import qmc

        engine = qmc.Sobol(d=len(self.flat), scramble=True, seed=self.seed)
        if tid > 0:  # scipy's fast_forward(0) underflows
            engine.fast_forward(tid)
        return from_unit(self.flat, engine.random(1)[0])

    def _point(self, job: p.Job) -> dict[str, Any]:
        from hyperopt import space_eval

        return space_eval(self.hyperopt_space, job.vals())

    def _ax_point(self, job: p.Job) -> dict[str, Any]:
        return to_ax_point(self.flat, self._point(job))

    def _gp(self, history: list[p.Job], tids: list[int]) -> list[dict[str, Any]]:
        from hks.bayesopt.ax_loop import limit_threads, new_client

        limit_threads(self.threads)
        client = new_client(self.flat, seed=trial_seed(self.seed, tids[0]), init_trials=self.init_trials,
                            name="hks")
        for job in scored(history):
            client.complete_trial(client.attach_trial(self._ax_point(job)), raw_data={METRIC: finite_loss(job)})
        for job in pending(history):
            client.attach_trial(self._ax_point(job))
        from hks.bayesopt.ax_loop import SuggestionError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # BoTorch's numerical notes are not for the user to act on
                proposals = client.get_next_trials(max_trials=len(tids))
        except Exception as exc:  # noqa: BLE001 - Ax raises many kinds; each means no suggestion
            raise SuggestionError(f"Ax could not suggest another point ({type(exc).__name__}: {str(exc)[:300]}); "
                                  "finished trials are saved, rerun with a larger space or smaller --max-evals") \
                from None
        points = [dict(point) for _, point in sorted(proposals.items())]
        while len(points) < len(tids):  # Ax may cap a batch: fill it quasi-randomly rather than stall
            points.append(self._sobol(tids[len(points)]))
        return points


__all__ = ["AxSampler", "Float", "Int", "Choice"]
