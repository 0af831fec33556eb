"""``--algo gp``: the Ax loop over a flat space, each point trained by :func:`hks.objective.run_trial`.

Trials write the same JSON results as the TPE driver. The Ax experiment is saved to
``<results_dir>/ax_experiment.json`` after every trial; running again resumes it, and
``--max-evals`` counts the trials already finished.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from hks import results as res
from hks.bayesopt import ax_loop
from hks.bayesopt.fixed_model import build_fixed, check_space, fixed_architecture, full_point
from hks.bayesopt.flat import FlatSpace, check_flat_space, fingerprint
from hks.config import Settings, is_auto
from hks.errors import ConfigError, TrialsFileError
from hks.objective import base_learning_rate, run_trial, splits_for
from hks.progress import SearchProgress
from hks.search import finish_search
from hks.space import load_space

AX_FILE = "ax_experiment.json"


def ax_file(settings: Settings) -> Path:
    return Path(settings.results_dir) / AX_FILE


def load_flat_space(settings: Settings) -> FlatSpace:
    """The ``--gp-space`` module's SPACE, checked to be flat and to configure the fixed model."""
    origin = f"--gp-space {settings.gp_space}"
    space = check_flat_space(load_space(settings.gp_space), origin)
    check_space(space, origin)
    return space


def identity(settings: Settings, space: FlatSpace) -> str:
    """What a saved experiment must match to be resumed (stored as the Ax experiment's description)."""
    return json.dumps({"hks_gp": 1, "space_fingerprint": fingerprint(space),
                       "dataset": settings.dataset, "architecture": fixed_architecture()}, sort_keys=True)


def open_client(settings: Settings, space: FlatSpace):
    """Resume the saved experiment when there is one (and it is this search's), else start one."""
    path = ax_file(settings)
    expected = identity(settings, space)
    if not path.exists():
        return ax_loop.new_client(space, seed=settings.seed, init_trials=settings.gp_init_trials,
                                  name=settings.experiment_name, description=expected)
    client = ax_loop.load_client(path)
    saved = ax_loop.experiment_description(client)
    if saved != expected:
        raise TrialsFileError(f"{path} belongs to another GP search (its space, dataset or architecture differ: "
                              f"{saved[:200]}); move it away or pass another --results-dir (it was left untouched)")
    return client


def earlier_results(client, results_dir: str) -> list[dict[str, Any]]:
    """The JSON results of the trials a previous run finished, matched by trial index and point."""
    done = ax_loop.finished(client)
    found: dict[int, dict[str, Any]] = {}
    for result in res.load_results(results_dir):
        point = done.get(result.get("tid"))
        space = result.get("space") or {}
        if point is not None and all(space.get(k) == v for k, v in point.items()):
            found[result["tid"]] = result
    return [found[index] for index in sorted(found)]


def _builder(settings: Settings):
    """The fixed-model builder; ``--base-lr`` matters only to a flat space without ``learning_rate``."""
    if is_auto(settings.base_lr):
        raise ConfigError("--base-lr auto does not apply to --algo gp, which searches the learning rate itself; "
                          "drop it, or give a number for a --gp-space without learning_rate")
    return functools.partial(build_fixed, base_lr=base_learning_rate(settings))


def run_gp_search(settings: Settings) -> list[dict[str, Any]]:
    """Run (or resume) the GP search; returns every finished trial's result, earlier runs included."""
    space = load_flat_space(settings)
    build = _builder(settings)
    ax_loop.limit_threads(settings.threads)
    client = open_client(settings, space)
    progress = SearchProgress(settings.max_evals, earlier_results(client, settings.results_dir))
    print(progress.describe_start() + f" (Ax GP over {', '.join(space)}; {ax_file(settings)})", flush=True)
    if settings.max_evals <= settings.gp_init_trials:
        print(f"warning: --max-evals {settings.max_evals} <= --gp-init-trials {settings.gp_init_trials}: "
              "the GP never models, so this is a Sobol (quasi-random) search", flush=True)
    splits = splits_for(settings) if len(ax_loop.finished(client)) < settings.max_evals else None

    def evaluate(index: int, flat_point: dict[str, Any]) -> dict[str, Any]:
        return run_trial(full_point(flat_point), settings, splits=splits, tid=index, build=build)

    def on_result(index: int, flat_point: dict[str, Any], result: dict[str, Any]) -> None:
        ax_loop.save_client(client, ax_file(settings))
        progress.record(result)

    ax_loop.optimize(client, evaluate, settings.max_evals, on_result=on_result)
    finish_search(settings, progress.results)
    return progress.results
