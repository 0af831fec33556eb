"""Where a report's trial records come from: ``results.pkl``, a folder of JSON results, or a store URL.

The default follows what a search leaves behind: the trials file when it exists, else the JSON
results folder. :func:`load_source` returns the finished results (see :mod:`hks.results`) in trial
order; :func:`load_snapshot` adds what the page needs while a search runs (queued and running
trials, budget, start time, whether it is over). ``results.pkl`` and every store hold the same trial
records (:class:`hks.store.protocol.Job`); :func:`records_snapshot` is the one adapter from them to
the report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hks import results as res
from hks.config import Settings
from hks.errors import HksError
from hks.report.snapshot import QUEUED, RUNNING, PendingTrial, Snapshot
from hks.store.urls import is_store_url

NAMED_EXPERIMENTS = 8  # a store without the experiment asked for names its newest this many


class ReportSourceError(HksError):
    """The results to report on cannot be found or read."""


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


def search_settings(source: str | os.PathLike, settings: Settings) -> dict[str, Any]:
    """The settings the search behind ``source`` saved: those of its experiment in a store or a
    ``results.pkl``; none for a folder of JSON results."""
    source = str(source)
    if is_store_url(source):
        with _open_store(source) as store:
            return dict(_experiment(store, settings.experiment_name).settings or {})
    path = Path(source)
    if path.is_file():
        record, _ = _read_pickle(path)
        return dict(record.settings or {}) if record is not None else {}
    return {}


def load_snapshot(source: str | os.PathLike | None, settings: Settings, *, watching: bool = False,
                  budget: int | None = None) -> Snapshot:
    """The search in ``source`` as it stands. A JSON folder records no budget: its search is over once it
    holds ``budget`` results, else it is taken as running while ``watching`` (``report --watch``) and as
    over otherwise."""
    source = str(source) if source is not None else default_source(settings)
    if is_store_url(source):
        with _open_store(source) as store:
            record = _experiment(store, settings.experiment_name)
            return records_snapshot(record, store.load(settings.experiment_name), settings)
    path = Path(source)
    if path.is_file():
        return records_snapshot(*_read_pickle(path), settings)
    results = load_source(source, settings)
    starts = [r["started_at"] for r in results if isinstance(r.get("started_at"), (int, float))]
    finished = not watching or (budget is not None and len(results) >= budget)
    return Snapshot(results, budget=budget, started_at=min(starts) if starts else None, finished=finished,
                    experiment=settings.experiment_name,
                    dataset=next((r["dataset"] for r in results if r.get("dataset")), settings.dataset))


def records_snapshot(record: Any, jobs: list[Any], settings: Settings) -> Snapshot:
    """Trial records (:class:`~hks.store.protocol.Job`) and their experiment as a snapshot: finished jobs as
    results, ``new`` ones as queued, ``running`` ones with their owner and per-epoch metrics."""
    from hks.store.protocol import FINAL_STATES, NEW

    pending_jobs = sorted((j for j in jobs if j.state not in FINAL_STATES), key=lambda j: j.tid)
    space = _space(record) if pending_jobs else None
    pending = [PendingTrial(j.tid, QUEUED if j.state == NEW else RUNNING, _point(space, j), j.owner,
                            j.book_time, list(j.metrics or [])) for j in pending_jobs]
    results = finished_results(record, jobs)
    saved = (record.settings if record is not None else None) or {}
    budget = saved.get("max_evals")
    budget = int(budget) if isinstance(budget, (int, float)) else None
    starts = [j.book_time for j in jobs if j.book_time] or [r["started_at"] for r in results
                                                          if isinstance(r.get("started_at"), (int, float))]
    return Snapshot(results, pending, budget, min(starts) if starts else None,
                    finished=not pending and (budget is None or len(results) >= budget),
                    experiment=record.exp_key if record is not None else settings.experiment_name,
                    dataset=saved.get("dataset") or settings.dataset)


def _space(record: Any) -> Any:
    from hks.space import load_space

    try:
        return load_space(record.space, record.settings.get("dataset")) if record is not None else None
    except HksError:  # a space that cannot be imported here: pending trials are shown without settings
        return None


def _point(space: Any, job: Any) -> dict[str, Any]:
    from hyperopt import space_eval

    if space is None:
        return {}
    try:
        return dict(space_eval(space, job.vals()))
    except Exception:  # noqa: BLE001 - a point that cannot be rebuilt is shown without its settings
        return {}


def _read_pickle(path: Path) -> tuple[Any, list[Any]]:
    from hks.errors import TrialsFileError
    from hks.store.pickle_file import read_records

    if path.name.endswith(res.RESULT_SUFFIX):
        raise ReportSourceError(f"{path} is one trial's result: pass --from with its folder, {path.parent}")
    try:
        return read_records(path)
    except TrialsFileError as exc:
        raise ReportSourceError(f"{exc}; or pass --from with the results folder instead") from None


def load_trials_pickle(path: Path) -> list[dict[str, Any]]:
    """Results of the ``results.pkl`` a local search saves (read without taking its lock)."""
    return finished_results(*_read_pickle(path))


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
        return store_results(store, settings.experiment_name)


def store_results(store: Any, experiment: str) -> list[dict[str, Any]]:
    """The results of an open store's finished jobs, completed like the master completes them."""
    return finished_results(_experiment(store, experiment), store.load(experiment))


def _experiment(store: Any, experiment: str) -> Any:
    record = store.get_experiment(experiment)
    if record is None:
        keys = store.experiment_keys()
        newest = ", ".join(map(repr, reversed(keys[-NAMED_EXPERIMENTS:])))
        more = f" and {len(keys) - NAMED_EXPERIMENTS} older" if len(keys) > NAMED_EXPERIMENTS else ""
        held = f"it holds {newest}{more}" if keys else "it holds none yet"
        raise ReportSourceError(f"the store {store.url} has no experiment {experiment!r} ({held}): pass the "
                                "search's --experiment-name (EXPERIMENT_NAME)")
    return record


def finished_results(record: Any, jobs: list[Any]) -> list[dict[str, Any]]:
    """Result dicts of the finished jobs, by trial id (the space is rebuilt only if a result lacks it)."""
    from hks.space import load_space
    from hks.store.hyperopt_docs import finished_result
    from hks.store.protocol import FINAL_STATES

    jobs = sorted((j for j in jobs if j.state in FINAL_STATES), key=lambda j: j.tid)
    needs_space = record is not None and any((j.result or {}).get("space") is None for j in jobs)
    space = load_space(record.space, record.settings.get("dataset")) if needs_space else None
    base_lr = record.settings.get("base_lr") if record is not None else None
    return with_base_lr([finished_result(job, space) for job in jobs], base_lr)
