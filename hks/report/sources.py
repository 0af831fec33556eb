"""Where a report's trial results come from: ``results.pkl``, a folder of JSON results, or a store URL.

The default follows what a search leaves behind: the trials file when it exists, else the JSON
results folder. Every reader returns result dicts (see :mod:`hks.results`) in trial order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hks import results as res
from hks.config import Settings
from hks.errors import HksError


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


def load_trials_pickle(path: Path) -> list[dict[str, Any]]:
    """Results of the ``results.pkl`` a local search saves (read without taking its lock)."""
    from hks.errors import TrialsFileError
    from hks.store.pickle_file import read_records

    try:
        experiment, jobs = read_records(path)
    except TrialsFileError as exc:
        raise ReportSourceError(f"{exc}; or pass --from with the results folder instead") from None
    return finished_results(experiment, jobs)


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


def load_store(url: str, settings: Settings) -> list[dict[str, Any]]:
    """Finished trials of experiment ``--experiment-name`` in a distributed job store, by trial id."""
    try:
        from hks.store import open_store
    except ImportError as exc:
        raise ReportSourceError(f"cannot read {url}: the distributed store support (hks.store) is not "
                                f"available ({exc}); report from results.pkl or the results folder") from None
    with open_store(url) as store:
        return store_results(store, settings.experiment_name)


def store_results(store: Any, experiment: str) -> list[dict[str, Any]]:
    """The results of an open store's finished jobs, completed like the master completes them."""
    record = store.get_experiment(experiment)
    if record is None:
        raise ReportSourceError(f"the store {store.url} has no experiment {experiment!r}: pass the search's "
                                "--experiment-name (EXPERIMENT_NAME)")
    return finished_results(record, store.load(experiment))


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
