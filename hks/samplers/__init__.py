"""Samplers decide what to try next; :func:`make_sampler` builds the one ``--algo`` names.

Every sampler reads the trial records of the storage (:mod:`hks.samplers.base`), so each works
with every storage (``results.pkl``, SQLite, PostgreSQL, MongoDB) and every runner.
"""

from __future__ import annotations

from typing import Any

from hks.config import Settings
from hks.errors import ConfigError
from hks.samplers.base import Sampler

HYPEROPT_ALGORITHMS = ("tpe", "rand", "anneal", "atpe", "mtpe")  # mtpe: hyperopt's interface, Optuna inside


def make_sampler(settings: Settings, space: Any) -> Sampler:
    """The sampler of ``--algo`` over ``space`` (a hyperopt space; ``gp`` also needs ``--gp-space``)."""
    if settings.algo in HYPEROPT_ALGORITHMS:
        from hks.samplers.hyperopt_algos import HyperoptSampler

        startup = settings.n_startup_trials if settings.algo in ("tpe", "atpe") else 0
        return HyperoptSampler(settings.algo, space, settings.seed, n_startup=startup)
    if settings.algo == "gp":
        from hks.samplers.ax_gp import AxSampler

        return AxSampler(settings, space)
    raise ConfigError(f"unknown algorithm {settings.algo!r}")


__all__ = ["HYPEROPT_ALGORITHMS", "Sampler", "make_sampler"]
