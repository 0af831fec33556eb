"""The search driver: hyperopt ``fmin`` over the space, one trial at a time, never losing one.

The local driver runs each trial in this process and saves the ``Trials`` to ``results.pkl``
(atomically) after every trial; running again resumes where it stopped. Each trial is drawn
with a generator seeded by ``seed + trials done``, so an interrupted-and-resumed search makes
the same suggestions as an uninterrupted one. Distributed searches (``--store`` / ``--workers``)
and Ax GP (``--algo gp``) are dispatched to their own drivers from :func:`run_search`.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hks import plotting
from hks import results as res
from hks.config import Settings, is_auto
from hks.errors import ConfigError, TrialsFileError
from hks.objective import run_trial, splits_for
from hks.progress import SearchProgress
from hks.space import demo_point, fingerprint, load_space

EXPERIMENT_KEY = "hks_experiment"


def suggest_algorithm(settings: Settings):
    """The hyperopt ``suggest`` function named by ``--algo``."""
    from hyperopt import anneal, rand, tpe

    if settings.algo == "tpe":
        return functools.partial(tpe.suggest, n_startup_jobs=settings.n_startup_trials)
    if settings.algo == "rand":
        return rand.suggest
    if settings.algo == "anneal":
        return anneal.suggest
    if settings.algo == "atpe":
        from hyperopt import atpe

        try:
            import lightgbm  # noqa: F401  (ATPE's own dependency, checked now rather than mid-search)
        except ImportError:
            raise ConfigError("--algo atpe needs lightgbm: pip install lightgbm") from None
        return atpe.suggest
    if settings.algo == "mtpe":
        from hks.samplers import mtpe

        return mtpe.suggest
    raise ConfigError(f"unknown algorithm {settings.algo!r}; choose one of tpe, rand, anneal, atpe, mtpe, gp")


def experiment_record(settings: Settings, space: Any) -> dict[str, Any]:
    """What identifies a search: resuming it with another space or dataset would mix results."""
    return {"space": settings.space, "space_fingerprint": fingerprint(space), "dataset": settings.dataset,
            "settings": settings.to_dict()}


@dataclass
class TrialsFile:
    """``results.pkl``: a pickled hyperopt ``Trials`` with the experiment record attached."""

    path: Path
    experiment: dict[str, Any]
    trials: Any = field(default=None)
    saved_settings: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        from hyperopt import Trials

        if not self.path.exists():
            self.trials = Trials()
            self.trials.attachments[EXPERIMENT_KEY] = self.experiment
            return self.trials
        hint = (f"move it away or delete it (./delete_results.sh) to start a new search, "
                f"or pass --trials-file OTHER.pkl; {self.path} was left untouched")
        try:
            with self.path.open("rb") as handle:
                trials = pickle.load(handle)
        except Exception as exc:
            raise TrialsFileError(f"{self.path} is corrupt or unreadable ({type(exc).__name__}: {exc}); {hint}") \
                from None
        if not isinstance(trials, Trials):
            raise TrialsFileError(f"{self.path} holds a {type(trials).__name__}, not hyperopt Trials; {hint}")
        self._check_compatible(trials, hint)
        self.trials = trials
        return trials

    def _check_compatible(self, trials: Any, hint: str) -> None:
        saved = trials.attachments.get(EXPERIMENT_KEY)
        self.saved_settings = dict((saved or {}).get("settings") or {})
        if saved is None:
            if len(trials.trials):
                raise TrialsFileError(f"{self.path} was not written by hks (no experiment record); {hint}")
            trials.attachments[EXPERIMENT_KEY] = self.experiment
            return
        for key in ("space_fingerprint", "dataset"):
            if saved.get(key) != self.experiment[key]:
                raise TrialsFileError(
                    f"{self.path} belongs to a search with another {key.replace('_', ' ')} "
                    f"({saved.get('space')}, {saved.get('dataset')}); {hint}")

    def save(self) -> None:
        # Keep only finished trials: one interrupted mid-training must be redone on resume.
        self.trials.attachments[EXPERIMENT_KEY] = self.experiment
        res.atomic_pickle(self.trials, self.path)


def run_search(settings: Settings) -> list[dict[str, Any]]:
    """Run (or resume) the search the settings describe; returns every trial's result."""
    if settings.algo == "gp":
        from hks.bayesopt import run_gp_search

        return run_gp_search(settings)
    space = load_space(settings.space)
    from hks.store import store_url

    if store_url(settings):  # --store, MONGO_DB_HOST or --workers: trials run by workers (hks.distributed)
        from hks.distributed import run_distributed_search

        return run_distributed_search(settings, space)
    return run_local_search(settings, space)


def resolve_base_lr(settings: Settings, saved_settings: dict[str, Any]) -> Settings:
    """Settings with a numeric ``base_lr``: ``auto`` is calibrated once (autoHyper), then reused.

    A resumed search keeps the value its first run calibrated, so every trial shares it.
    """
    if not is_auto(settings.base_lr):
        return settings
    saved = str(saved_settings.get("base_lr", "auto"))
    if not is_auto(saved):
        print(f"base learning rate {saved} (calibrated by autoHyper when this search started)", flush=True)
        return settings.replace(base_lr=saved)
    from hks.autolr.search import calibrate_base_lr

    print("calibrating the base learning rate with autoHyper (--base-lr auto)", flush=True)
    chosen = calibrate_base_lr(settings)
    print(f"base learning rate {chosen:.6g} chosen by autoHyper", flush=True)
    return settings.replace(base_lr=repr(float(chosen)))


def _startup_warning(settings: Settings) -> None:
    if settings.algo == "tpe" and settings.max_evals <= settings.n_startup_trials:
        print(f"warning: --max-evals {settings.max_evals} <= --n-startup-trials {settings.n_startup_trials}: "
              "TPE never gets past its random start-up phase, so this is a random search", flush=True)


def run_local_search(settings: Settings, space: Any) -> list[dict[str, Any]]:
    """Trials run in this process; ``results.pkl`` saved after each one."""
    _startup_warning(settings)
    trials_file = TrialsFile(Path(settings.trials_file), experiment_record(settings, space))
    trials = trials_file.load()
    settings = resolve_base_lr(settings, trials_file.saved_settings)
    trials_file.experiment = experiment_record(settings, space)
    progress = SearchProgress(settings.max_evals, res.results_from_trials(trials))
    print(progress.describe_start(), flush=True)
    algo = suggest_algorithm(settings)
    _draw_demo(settings)
    splits = None
    while len(trials.trials) < settings.max_evals:
        if splits is None:
            splits = splits_for(settings)
        done = len(trials.trials)
        objective = functools.partial(_objective, settings=settings, splits=splits, tid=done)
        _fmin_one(objective, space, algo, trials, np.random.default_rng(settings.seed + done))
        trials_file.save()
        latest = res.results_from_trials(trials)[-1]
        previous_best = progress.best
        progress.record(latest)
        if progress.best is not previous_best:
            _draw_best(settings, progress.best)
    finish_search(settings, progress.results, draw_best=False)
    return progress.results


def finish_search(settings: Settings, results: list[dict[str, Any]], *, draw_best: bool = True) -> None:
    """What every driver does once its budget is spent: say so, draw the best model, write the report.

    ``draw_best=False`` for drivers that already redraw ``model_best.png`` whenever the best changes.
    """
    from hks.report import safe_write_report

    best = res.best_result(results)
    summary = f"best {best['fine_best_accuracy']:.4f} ({best['model_name']})" if best else "no successful trial"
    print(f"search done: {len(results)} trials, {summary}", flush=True)
    if draw_best:
        _draw_best(settings, best)
    if results:
        print(safe_write_report(results, settings), flush=True)


def _fmin_one(objective, space: Any, algo, trials: Any, rstate: np.random.Generator) -> None:
    """Suggest and evaluate exactly one more trial."""
    from hyperopt import fmin
    from hyperopt.exceptions import AllTrialsFailed

    try:
        fmin(objective, space, algo=algo, max_evals=len(trials.trials) + 1, trials=trials, rstate=rstate,
             show_progressbar=False, verbose=False, return_argmin=False)
    except AllTrialsFailed:
        pass  # fmin's closing argmin lookup; the failed trial is recorded all the same


def _objective(point: dict[str, Any], *, settings: Settings, splits, tid: int) -> dict[str, Any]:
    return run_trial(point, settings, splits=splits, tid=tid)


def _draw_demo(settings: Settings) -> None:
    if not settings.plots:
        return
    path = Path(settings.results_dir) / "model_demo.png"
    if not path.exists():
        _report_plot(plotting.plot_point(demo_point(), path, *_heads(settings)))


def _draw_best(settings: Settings, best: dict[str, Any] | None) -> None:
    if settings.plots and best is not None:
        path = Path(settings.results_dir) / "model_best.png"
        _report_plot(plotting.plot_point(best["space"], path, *_heads(settings)))


def _heads(settings: Settings) -> tuple[int, int | None]:
    from hks.data import spec_for

    spec = spec_for(settings.dataset)
    return spec.num_fine, spec.num_coarse


def _report_plot(problem: str | None) -> None:
    if problem:
        print(f"note: {problem}", flush=True)
