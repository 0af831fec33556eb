"""Where a report's trial results come from: ``results.pkl``, a folder of JSON results, or a store URL.

The default follows what a search leaves behind: the trials file when it exists, else the JSON
results folder. Every reader returns result dicts (see :mod:`hks.results`) in trial order.
"""

from __future__ import annotations

import os
import pickle
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
    """Results of the hyperopt ``Trials`` pickled in ``path`` (what the local search saves)."""
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
    return with_base_lr(res.results_from_trials(trials), (experiment.get("settings") or {}).get("base_lr"))


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
    from hks.distributed import finished_result
    from hks.space import load_space
    from hks.store.protocol import FINAL_STATES

    record = store.get_experiment(experiment)
    if record is None:
        raise ReportSourceError(f"the store {store.url} has no experiment {experiment!r}: pass the search's "
                                "--experiment-name (EXPERIMENT_NAME)")
    jobs = sorted((j for j in store.load(experiment) if j.state in FINAL_STATES), key=lambda j: j.tid)
    needs_space = any((j.result or {}).get("space") is None for j in jobs)
    space = load_space(record.space) if needs_space else None
    return with_base_lr([finished_result(job, space) for job in jobs], record.settings.get("base_lr"))
