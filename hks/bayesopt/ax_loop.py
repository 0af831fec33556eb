"""Ax, imported on demand: the ``Client`` that :mod:`hks.samplers.ax_gp` rebuilds from the records.

Knows nothing about Keras or storage: a client over a flat space that minimises ``loss``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hks.bayesopt.flat import FlatSpace, to_ax_parameters
from hks.errors import ConfigError, HksError

if TYPE_CHECKING:
    from ax import Client

METRIC = "loss"
INSTALL_HINT = "install torch's CPU build first, then pip install -e .[bo] (see docs/bayesopt.md)"

Evaluate = Callable[[int, dict[str, Any]], dict[str, Any]]
OnResult = Callable[[int, dict[str, Any], dict[str, Any]], None]


class AxMissing(ConfigError):
    """``--algo gp`` without Ax (the ``bo`` extra) installed."""


class SuggestionError(HksError):
    """Ax could not propose another point (e.g. a small discrete space is used up)."""


def import_ax() -> type[Client]:
    """The Ax ``Client`` class, quietened; :class:`AxMissing` with the install line when absent."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))  # Ax logs an INFO line about its SQL storage while imported
    try:
        from ax import Client
        from ax.utils.common.logger import set_stderr_log_level
    except ImportError as exc:
        raise AxMissing(f"--algo gp needs Ax, which is not installed ({exc.name or exc}): {INSTALL_HINT}") from None
    finally:
        logging.disable(previous)
    set_stderr_log_level(logging.WARNING)
    return Client


def limit_threads(threads: int) -> None:
    """Cap torch's threads (GP fitting) like TensorFlow's, so several processes share the cores."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def new_client(space: FlatSpace, *, seed: int, init_trials: int, name: str, description: str = "") -> Client:
    """A fresh Ax experiment minimising ``loss`` over the flat space."""
    if init_trials < 1:
        raise ConfigError(f"--gp-init-trials must be >= 1, got {init_trials}")
    client = import_ax()(random_seed=seed)
    client.configure_experiment(parameters=to_ax_parameters(space), name=name, description=description)
    client.configure_optimization(objective=f"-{METRIC}")
    # hks draws the first --gp-init-trials points itself (Sobol by trial id, the same on resume). Ax's default
    # starts each fresh client at its centre point and Sobol nodes, and the client is rebuilt for every
    # suggestion, so with those nodes a search one trial at a time never reached the GP.
    client.configure_generation_strategy(initialization_budget=init_trials, initialization_random_seed=seed,
                                         initialize_with_center=False)
    return client
