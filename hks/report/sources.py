"""Where a report's trial records come from: ``results.pkl``, a folder of JSON results, or a store URL.

The default follows what a search leaves behind: the trials file when it exists, else the JSON
results folder. :func:`load_source` returns the finished results (see :mod:`hks.results`) in trial
order; :func:`load_snapshot` adds what the page needs while a search runs (queued and running
trials, budget, start time, whether it is over). Only a job store knows about running trials, through
:func:`store_snapshot`, the one adapter from :class:`hks.store.protocol.JobStore` to the report.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from hks import results as res
from hks.config import Settings
from hks.errors import HksError
from hks.report.snapshot import QUEUED, RUNNING, PendingTrial, Snapshot


class ReportSourceError(HksError):
    """The results to report on cannot be found or read."""


def is_store_url(source: str) -> bool:
    return "://" in source


def default_source(settings: Settings) -> str:
    """``results.pkl`` when a local search left one, else the JSON results folder."""
    trials_file = Path(settings.trials_file)
    return str(trials_file) if trials_file.is_file() else settings.results_dir


def load_source(source: str | os.PathLike | None, settings: Settings) -> list[dict[str, Any]]:
    """The results held by ``source`` (a ``.pkl`` file, a JSON folder or a store URL)."""
    source = str(source) if source is not None else default_source(settings)
    if is_store_url(source):
        return load_store(source, settings)
    path = Path(source)
    if path.is_dir():
        return load_json_folder(path)
    if path.is_file():
        return load_trials_pickle(path)
    raise ReportSourceError(f"{source} not found: pass --from with a results.pkl, a folder of "
                            f"*{res.RESULT_SUFFIX} results or a store URL (e.g. sqlite:///hks.db)")


def load_snapshot(source: str | os.PathLike | None, settings: Settings, *, watching: bool = False) -> Snapshot:
    """The search in ``source`` as it stands. Without a budget to compare with (a JSON folder), a search
    is taken as running while ``watching`` (``report --watch``) and as over otherwise."""
    source = str(source) if source is not None else default_source(settings)
    if is_store_url(source):
        with _open_store(source) as store:
            return store_snapshot(store, settings.experiment_name)
    path = Path(source)
    if path.is_file():
        results, experiment = _read_trials_pickle(path)
        budget = (experiment.get("settings") or {}).get("max_evals")
        return _snapshot(results, budget, settings.experiment_name, experiment.get("dataset") or settings.dataset)
    results = load_source(source, settings)
    snapshot = _snapshot(results, None, settings.experiment_name, settings.dataset)
    snapshot.finished = not watching
    return snapshot


def _snapshot(results: list[dict[str, Any]], budget: Any, experiment: str, dataset: str) -> Snapshot:
    starts = [r["started_at"] for r in results if isinstance(r.get("started_at"), (int, float))]
    budget = int(budget) if isinstance(budget, (int, float)) else None
    dataset = next((r["dataset"] for r in results if r.get("dataset")), dataset)
    return Snapshot(results, budget=budget, started_at=min(starts) if starts else None,
                    finished=budget is None or len(results) >= budget, experiment=experiment, dataset=dataset)


def load_trials_pickle(path: Path) -> list[dict[str, Any]]:
    """Results of the hyperopt ``Trials`` pickled in ``path`` (what the local search saves)."""
    return _read_trials_pickle(path)[0]


def _read_trials_pickle(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            trials = pickle.load(handle)
    except Exception as exc:  # noqa: BLE001 - unpickling raises anything; all mean "unreadable"
        raise ReportSourceError(f"{path} is not a readable trials pickle ({type(exc).__name__}: {exc}); "
                                "pass --from with the results folder instead") from None
    if not hasattr(trials, "trials"):
        raise ReportSourceError(f"{path} holds a {type(trials).__name__}, not hyperopt Trials; "
                                "pass --from with the results folder instead")
    from hks.search import EXPERIMENT_KEY

    experiment = getattr(trials, "attachments", {}).get(EXPERIMENT_KEY) or {}
    base_lr = (experiment.get("settings") or {}).get("base_lr")
    return with_base_lr(res.results_from_trials(trials), base_lr), experiment


def with_base_lr(results: list[dict[str, Any]], base_lr: Any) -> list[dict[str, Any]]:
    """Results completed with the search's numeric base learning rate (retraining needs the same one)."""
    try:
        value = float(base_lr)
    except (TypeError, ValueError):
        return results  # unknown or 'auto' never calibrated: retrain-best falls back to --base-lr
    return [{**r, "base_lr": r.get("base_lr", value)} for r in results]


def load_json_folder(path: Path) -> list[dict[str, Any]]:
    """Every ``*.txt.json`` result in ``path``, in trial order (an empty list when there is none)."""
    return in_trial_order(res.load_results(path))


def in_trial_order(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sorted by trial id, then start time: files list by accuracy, and ties must break as in the search."""
    def key(result: dict[str, Any]) -> tuple[bool, float, float]:
        tid, started = result.get("tid"), result.get("started_at")
        return (tid is None, float(tid) if tid is not None else 0.0, float(started or 0.0))

    return sorted(results, key=key)


def _open_store(url: str) -> Any:
    try:
        from hks.store import open_store
    except ImportError as exc:
        raise ReportSourceError(f"cannot read {url}: the distributed store support (hks.store) is not "
                                f"available ({exc}); report from results.pkl or the results folder") from None
    return open_store(url)


def load_store(url: str, settings: Settings) -> list[dict[str, Any]]:
    """Finished trials of experiment ``--experiment-name`` in a distributed job store, by trial id."""
    with _open_store(url) as store:
        return store_snapshot(store, settings.experiment_name).results


def store_snapshot(store: Any, experiment: str) -> Snapshot:
    """An experiment in a :class:`~hks.store.protocol.JobStore`: finished jobs as results (completed like
    the master completes them), ``new`` jobs as queued and ``running`` ones with their owner and metrics."""
    from hks.distributed import finished_result
    from hks.space import load_space
    from hks.store.protocol import FINAL_STATES, NEW

    record = store.get_experiment(experiment)
    if record is None:
        raise ReportSourceError(f"the store {store.url} has no experiment {experiment!r}: pass the search's "
                                "--experiment-name (EXPERIMENT_NAME)")
    jobs = store.load(experiment)
    finished = [j for j in jobs if j.state in FINAL_STATES]
    needs_space = any(j.state not in FINAL_STATES or (j.result or {}).get("space") is None for j in jobs)
    space = load_space(record.space) if needs_space else None
    results = with_base_lr([finished_result(job, space) for job in finished], record.settings.get("base_lr"))
    pending = [PendingTrial(j.tid, QUEUED if j.state == NEW else RUNNING, _point(space, j), j.owner,
                            j.book_time, list(j.metrics or [])) for j in jobs if j.state not in FINAL_STATES]
    budget = record.settings.get("max_evals")
    budget = int(budget) if isinstance(budget, (int, float)) else None
    return Snapshot(results, pending, budget, record.created_at,
                    finished=not pending and (budget is None or len(results) >= budget), experiment=experiment,
                    dataset=record.settings.get("dataset") or "")


def _point(space: Any, job: Any) -> dict[str, Any]:
    from hyperopt import space_eval

    try:
        return dict(space_eval(space, job.vals()))
    except Exception:  # noqa: BLE001 - a point that cannot be rebuilt is shown without its settings
        return {}
