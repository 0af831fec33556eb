"""The Ax ``Client`` loop: Sobol initialisation, then a Gaussian process (BoTorch), one trial at a time.

Knows nothing about Keras: it minimises whatever ``evaluate(index, point)`` returns, in the
hyperopt result convention (``{"status": "ok", "loss": ...}``; anything else is a failed trial,
marked failed in Ax so the search goes on). The benchmark and the CNN search share it.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hks.bayesopt.flat import FlatSpace, to_ax_parameters
from hks.errors import ConfigError, HksError, TrialsFileError

METRIC = "loss"
INSTALL_HINT = "install torch's CPU build first, then pip install -e .[bo] (see docs/bayesopt.md)"

Evaluate = Callable[[int, dict[str, Any]], dict[str, Any]]
OnResult = Callable[[int, dict[str, Any], dict[str, Any]], None]


class AxMissing(ConfigError):
    """``--algo gp`` without Ax (the ``bo`` extra) installed."""


class SuggestionError(HksError):
    """Ax could not propose another point (e.g. a small discrete space is used up)."""


def import_ax():
    """The Ax ``Client`` class, quietened; :class:`AxMissing` with the install line when absent."""
    try:
        from ax import Client
        from ax.utils.common.logger import set_stderr_log_level
    except ImportError as exc:
        raise AxMissing(f"--algo gp needs Ax, which is not installed ({exc.name or exc}): {INSTALL_HINT}") from None
    set_stderr_log_level(logging.WARNING)
    return Client


def limit_threads(threads: int) -> None:
    """Cap torch's threads (GP fitting) like TensorFlow's, so several processes share the cores."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def new_client(space: FlatSpace, *, seed: int, init_trials: int, name: str, description: str = ""):
    """A fresh Ax experiment minimising ``loss`` over the flat space."""
    if init_trials < 1:
        raise ConfigError(f"--gp-init-trials must be >= 1, got {init_trials}")
    client = import_ax()(random_seed=seed)
    client.configure_experiment(parameters=to_ax_parameters(space), name=name, description=description)
    client.configure_optimization(objective=f"-{METRIC}")
    client.configure_generation_strategy(initialization_budget=init_trials, initialization_random_seed=seed)
    return client


def load_client(path: Path):
    """The Ax client saved at ``path``; a corrupt file raises and is left untouched."""
    client_class = import_ax()
    try:
        client = client_class.load_from_json_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the same to the user
        raise TrialsFileError(f"{path} is corrupt or unreadable ({type(exc).__name__}: {str(exc)[:200]}); move it "
                              "away to start a new GP search (it was left untouched)") from None
    _abandon_unfinished(client)
    return client


def save_client(client, path: Path) -> None:
    """Write the experiment atomically: a crash while saving leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        client.save_to_json_file(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def trials(client) -> dict[int, Any]:
    """Ax's trials by index (the Client exposes no public accessor for them)."""
    return client._experiment.trials


def finished(client) -> dict[int, dict[str, Any]]:
    """Parameters of every completed or failed trial: these count against the budget."""
    return {index: dict(trial.arm.parameters) for index, trial in trials(client).items()
            if trial.status.is_completed or trial.status.is_failed}


def experiment_description(client) -> str:
    return client._experiment.description or ""


def _abandon_unfinished(client) -> None:
    """A trial running when the previous process died has no result: it is redone, not counted."""
    for index, trial in trials(client).items():
        if not trial.status.is_terminal:
            client.mark_trial_abandoned(index)


def record(client, index: int, result: dict[str, Any]) -> None:
    """Report one evaluation to Ax: its loss, or a failure with the error."""
    loss = result.get("loss")
    if result.get("status") == "ok" and isinstance(loss, (int, float)) and math.isfinite(loss):
        client.complete_trial(index, raw_data={METRIC: float(loss)})
    else:
        client.mark_trial_failed(index, failed_reason=str(result.get("error") or "no finite loss")[:500])


def suggest(client) -> tuple[int, dict[str, Any]]:
    """The next point to evaluate (Sobol first, then the GP's expected-improvement maximiser)."""
    try:
        with warnings.catch_warnings():
            # BoTorch's numerical notes (jitter added, optimizer restarts) are not for the user to act on.
            warnings.simplefilter("ignore")
            proposals = client.get_next_trials(max_trials=1)
    except Exception as exc:  # noqa: BLE001 - Ax raises many kinds; each means no suggestion
        raise SuggestionError(f"Ax could not suggest another point ({type(exc).__name__}: {str(exc)[:300]}); "
                              "finished trials are saved, rerun with a larger space or smaller --max-evals") \
            from None
    if not proposals:
        raise SuggestionError("Ax suggested no point; finished trials are saved")
    index, point = next(iter(proposals.items()))
    return index, dict(point)


def optimize(client, evaluate: Evaluate, budget: int, *, on_result: OnResult | None = None) -> None:
    """Evaluate suggestions until ``budget`` trials have finished (counting earlier ones)."""
    while len(finished(client)) < budget:
        index, point = suggest(client)
        result = evaluate(index, point)
        record(client, index, result)
        if on_result is not None:
            on_result(index, point, result)
