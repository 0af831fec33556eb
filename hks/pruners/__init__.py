"""Pruners: stop hopeless trials after an epoch (``--prune none|median|asha|hyperband``).

* :func:`make_pruner` builds the configured pruner from the settings;
* :func:`epoch_hook` turns it into run_trial's ``should_prune(epoch, logs)``, fed with the other
  trials' curves by whoever holds them (the oracle reads them from the job store);
* :func:`curves_from_jobs` makes those curves from the store's jobs;
* :func:`sampler_result` is the view of a pruned result that hyperopt's samplers get.

See docs/pruning.md for when to use which pruner.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hks import results as res
from hks.errors import ConfigError
from hks.pruners.asha import AshaPruner
from hks.pruners.base import FAILED, FINISHED, PRUNED, RUNNING, Curve, Decision, NoPruner, Pruner
from hks.pruners.hyperband import HyperbandPruner
from hks.pruners.median import MedianPruner
from hks.store import protocol as store

if TYPE_CHECKING:
    from hks.config import Settings

PRUNERS: dict[str, type[Pruner]] = {cls.name: cls for cls in (NoPruner, MedianPruner, AshaPruner, HyperbandPruner)}
MONITOR = "val_fine_accuracy"

__all__ = ["PRUNERS", "Curve", "Decision", "Pruner", "curve_of_result", "curves_from_jobs", "epoch_hook", "make_pruner",
           "paused_trials", "sampler_result", "FAILED", "FINISHED", "PRUNED", "RUNNING"]


def make_pruner(settings: Settings) -> Pruner:
    """The pruner ``--prune`` names, with its knobs from the settings."""
    cls = PRUNERS[settings.prune]
    knobs: dict[str, Any] = {"min_epochs": settings.prune_min_epochs,
                             "reduction_factor": settings.prune_reduction_factor,
                             "warmup_trials": cls.default_warmup_trials if settings.prune_warmup_trials == "auto"
                             else settings.prune_warmup_trials}
    if cls is HyperbandPruner:
        knobs["brackets"] = settings.prune_brackets
    if cls is AshaPruner:
        knobs["pause"] = settings.prune_pause
    return cls(settings.epochs, **knobs)


def epoch_hook(pruner: Pruner, tid: int, others: Callable[[], Sequence[Curve]]) -> Callable[[int, dict], Decision]:
    """run_trial's ``should_prune(epoch, logs)``: collects this trial's curve, asks the pruner.

    ``others()`` is called after each epoch and returns the other trials' curves as recorded now.
    """
    values: list[float] = []

    def should_prune(epoch: int, logs: dict[str, float]) -> Decision:
        if MONITOR not in logs:  # a custom objective's logs: without it, pruning would silently never act
            raise ConfigError(f"should_prune(epoch, logs) needs logs[{MONITOR!r}], the validation score (higher is "
                              f"better) that pruning compares trials by; got {sorted(logs) or 'no values'}")
        values.append(float(logs[MONITOR]))
        return pruner.decide(tid, values, others())

    return should_prune


def curve_of_result(tid: int, result: dict[str, Any]) -> Curve:
    """A finished trial's curve from its result (hks's result dict, any status)."""
    status = result.get("status")
    state = PRUNED if status == res.STATUS_PRUNED or result.get("pruned") else (
        FINISHED if status == res.STATUS_OK else FAILED)
    return Curve(tid, state, tuple((result.get("history") or {}).get(MONITOR, [])))


def curves_from_jobs(jobs: Iterable[store.Job]) -> list[Curve]:
    """The curves of a store's jobs: running ones from their per-epoch metrics, done ones from
    their results; queued ones from their metrics too (a resumed trial's epochs so far; a new one
    has none)."""
    curves = []
    for job in jobs:
        if job.state == store.RUNNING or (job.state == store.NEW and job.metrics):
            curves.append(Curve(job.tid, RUNNING, tuple(float(m.get(MONITOR, math.nan)) for m in job.metrics)))
        elif job.state == store.DONE and job.result is not None:
            curves.append(curve_of_result(job.tid, job.result))
        elif job.state == store.FAILED:
            curves.append(Curve(job.tid, FAILED))
    return curves


def paused_trials(jobs: Iterable[store.Job]) -> dict[int, int]:
    """``{tid: epoch}`` of the trials paused at a rung (``--prune-pause``), which may be resumed."""
    return {job.tid: int(job.result["pruned_at_epoch"]) for job in jobs
            if job.state == store.DONE and job.result and job.result.get("paused")}


def sampler_result(result: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What hyperopt gets for a result: a pruned one becomes ``status: ok`` with a numeric loss.

    hyperopt refuses statuses other than its own (``InvalidResultStatus``) and models only ``ok``
    trials, so a pruned trial is ``ok`` for it, with ``pruned: True`` kept. Its loss follows
    ``--prune-sampler-loss``:

    * ``ranked`` (default): below every completed trial and every trial pruned later, then by
      accuracy: ``epochs not run + 1 - best accuracy`` (> 0 > any completed trial's -accuracy).
      TPE splits good from bad trials by the rank of their losses only;
    * ``best``: minus its best accuracy so far, as if it had finished there.
    """
    if result.get("status") != res.STATUS_PRUNED:
        return result
    best = result.get("fine_best_accuracy") or 0.0
    if settings.prune_sampler_loss == "best":
        loss = -best
    else:
        stopped = result.get("pruned_at_epoch") or settings.epochs  # a custom objective may not say when
        loss = float(settings.epochs - stopped) + 1.0 - best
    return {**result, "status": res.STATUS_OK, "loss": loss, "pruned": True}
