"""The master of a distributed search: hyperopt ``fmin`` over a :class:`~hks.store_trials.StoreTrials`.

The master registers the experiment (space fingerprint, objective, settings), keeps workers
supplied with suggestions, requeues the trials of lost workers, writes each finished trial's
JSON result into its own ``results_dir`` and prints one progress line per finished trial. With
``--workers N`` it also starts N local workers and stops them when the search is done.
Stopped and started again, it resumes from the store: no trial lost, none repeated.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from hks import results as res
from hks.config import Settings
from hks.errors import ConfigError, SpaceError, StoreError
from hks.local_workers import LocalWorkers, worker_count
from hks.progress import SearchProgress
from hks.space import fingerprint
from hks.store import check_settings, describe, is_store_error, mask_url, open_store, store_url
from hks.store import protocol as p
from hks.store_trials import StoreTrials

WAITING_NOTE_SECONDS = 30.0


def register_experiment(store: p.JobStore, settings: Settings, space: Any) -> p.Experiment:
    """Create the experiment record, or check that a resumed one is the same search."""
    recorded = {**settings.to_dict(), "store": mask_url(settings.store)}  # never a password in the store
    mine = p.Experiment(settings.experiment_name, fingerprint(space), settings.space, settings.objective, recorded)
    saved = store.get_experiment(mine.exp_key)
    if saved is not None:
        hint = (f"use the same --space/--objective/--dataset to resume it, or another --experiment-name "
                f"for a new search (store {store.url})")
        if saved.fingerprint != mine.fingerprint:
            raise SpaceError(f"experiment {mine.exp_key!r} was started with search space {saved.space!r} "
                             f"(fingerprint {saved.fingerprint}), not {mine.space!r} ({mine.fingerprint}); {hint}")
        if saved.objective != mine.objective:
            raise ConfigError(f"experiment {mine.exp_key!r} runs objective {saved.objective!r}, "
                              f"not {mine.objective!r}; {hint}")
        if saved.settings.get("dataset") != settings.dataset:
            raise ConfigError(f"experiment {mine.exp_key!r} searches on {saved.settings.get('dataset')}, "
                              f"not {settings.dataset}; {hint}")
    store.put_experiment(mine)
    return mine


def finished_result(job: p.Job, space: Any) -> dict[str, Any]:
    """A finished job's result, complete enough for reports even when its worker was lost."""
    from hyperopt import space_eval

    result = dict(job.result or {"status": res.STATUS_FAIL, "loss": None, "error": job.error})
    result["tid"] = job.tid
    if result.get("space") is None:
        result["space"] = space_eval(space, job.vals())
    if not result.get("model_name"):
        result["model_name"] = res.make_model_name(None)
    return result


class MasterMonitor:
    """What the master does on every poll and every finished trial: progress lines, JSON results,
    a note while it waits, and a check that local workers are alive."""

    def __init__(self, settings: Settings, space: Any, progress: SearchProgress,
                 workers: LocalWorkers | None):
        self.settings, self.space, self.progress, self.workers = settings, space, progress, workers
        self.last_event = time.monotonic()

    def finished(self, job: p.Job) -> None:
        result = finished_result(job, self.space)
        path = Path(self.settings.results_dir) / f"{result['model_name']}{res.RESULT_SUFFIX}"
        if not path.exists():
            res.write_result(result, self.settings.results_dir)
        self.progress.record(result)
        self.last_event = time.monotonic()

    def polled(self, trials: StoreTrials) -> None:
        if self.workers is not None:
            self.workers.check()
        if time.monotonic() - self.last_event > WAITING_NOTE_SECONDS:
            counts = trials.counts()
            live = len(trials.store.live_workers(trials.exp_key, time.time() - self.settings.lease_seconds))
            print(f"waiting: {counts[p.RUNNING]} running, {counts[p.NEW]} queued, {live} live workers "
                  f"({len(self.progress.results)}/{self.progress.budget} done)", flush=True)
            self.last_event = time.monotonic()


def _placeholder_objective(_point: Any) -> None:
    raise RuntimeError("trials of a distributed search are run by workers, never by the master")


def run_distributed_search(settings: Settings, space: Any) -> list[dict[str, Any]]:
    """Run (or resume) the search over the store ``--store``/``MONGO_DB_HOST``/``--workers`` names."""
    from hyperopt import fmin

    from hks.search import finish_search, resolve_base_lr, suggest_algorithm

    check_settings(settings)
    if settings.algo == "gp":
        raise ConfigError("--algo gp runs in one process; use tpe, rand, anneal or atpe with a job store")
    url = store_url(settings)
    with open_store(url) as store:
        saved = store.get_experiment(settings.experiment_name)
        settings = resolve_base_lr(settings, saved.settings if saved is not None else {})
        register_experiment(store, settings, space)
        print(f"job store {store.url}, experiment {settings.experiment_name!r}", flush=True)
        count = worker_count(settings)
        workers = LocalWorkers(settings, url, count) if count > 0 else None
        progress = SearchProgress(settings.max_evals)
        monitor = MasterMonitor(settings, space, progress, workers)
        trials = StoreTrials(store, settings.experiment_name, max_attempts=settings.max_attempts,
                             lease_seconds=settings.lease_seconds, queue_len=settings.queue_len)
        progress.results.extend(finished_result(job, space) for job in trials.jobs.values()
                                if job.state in p.FINAL_STATES)
        print(progress.describe_start(), flush=True)
        trials.on_finished, trials.on_poll = monitor.finished, monitor.polled
        try:
            with workers or nullcontext():
                fmin(_placeholder_objective, space, algo=suggest_algorithm(settings), max_evals=settings.max_evals,
                     trials=trials, rstate=np.random.default_rng(settings.seed + len(trials.trials)),
                     show_progressbar=False, verbose=False, return_argmin=False)
        except Exception as exc:
            if not is_store_error(exc):
                raise
            raise StoreError(f"lost the job store {store.url} ({describe(exc)}); every finished trial is in it: "
                             "run the same command again to resume") from None
        results = [finished_result(job, space) for job in sorted(trials.jobs.values(), key=lambda j: j.tid)
                   if job.state in p.FINAL_STATES]
    finish_search(settings, results)
    return results
