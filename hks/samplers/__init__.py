"""Samplers decide what to try next; :func:`make_sampler` builds the one ``--algo`` names.

Every sampler reads the trial records of the storage (:mod:`hks.samplers.base`), so each works
with every storage (``results.pkl``, SQLite, PostgreSQL, MongoDB) and every runner.
"""

from __future__ import annotations

import functools
from typing import Any

from hks.config import Settings
from hks.errors import ConfigError
from hks.samplers.base import Sampler

HYPEROPT_ALGORITHMS = ("tpe", "rand", "anneal", "atpe", "mtpe")  # mtpe: hyperopt's interface, Optuna inside


HYPEROPT_STARTUP = 20  # hyperopt's own n_startup_jobs: random trials before its TPE models


def startup_trials(settings: Settings) -> int | None:
    """Finished trials before ``--algo``'s model starts (``--n-startup-trials``; ``auto``: the
    algorithm's own), or None for an algorithm without a start-up phase."""
    if settings.algo in ("tpe", "atpe"):
        return HYPEROPT_STARTUP if settings.n_startup_trials == "auto" else settings.n_startup_trials
    if settings.algo == "mtpe":
        from hks.samplers.mtpe import Knobs

        return Knobs.n_startup if settings.n_startup_trials == "auto" else settings.n_startup_trials
    return None


def make_sampler(settings: Settings, space: Any, flat: Any = None) -> Sampler:
    """The sampler of ``--algo`` over ``space`` (a hyperopt space; ``gp`` also needs the flat space itself:
    ``flat``, else the one ``--gp-space`` names)."""
    if settings.algo == "mtpe":
        from hks.samplers import mtpe
        from hks.samplers.hyperopt_algos import HyperoptSampler

        mtpe.check_space(space)
        algorithm = functools.partial(mtpe.suggest, n_startup=startup_trials(settings))
        return HyperoptSampler("mtpe", space, settings.seed, algorithm=algorithm)  # start-up is mtpe's own
    if settings.algo in HYPEROPT_ALGORITHMS:
        from hks.samplers.hyperopt_algos import HyperoptSampler

        return HyperoptSampler(settings.algo, space, settings.seed, n_startup=startup_trials(settings) or 0)
    if settings.algo == "gp":
        from hks.samplers.ax_gp import AxSampler

        return AxSampler(settings, space, flat=flat)
    raise ConfigError(f"unknown algorithm {settings.algo!r}")


__all__ = ["HYPEROPT_ALGORITHMS", "Sampler", "make_sampler", "startup_trials"]
