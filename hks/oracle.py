"""The oracle: what to try next, and whether a running trial goes on.

It owns no state of its own: it reads the experiment's trial records through the storage
interface (:class:`~hks.store.cache.RecordCache`), asks the sampler for new points, writes them
as queued trials, and asks the pruner (if any) about running ones. So a restarted master, or
one on another machine, makes the same decisions from the same records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hks.store import protocol as p
from hks.store.cache import RecordCache

if TYPE_CHECKING:
    from hks.pruners import Curve, Pruner
    from hks.samplers import Sampler

ResultView = Callable[[dict[str, Any]], dict[str, Any]]


class Oracle:
    """``sampler`` may be None for a worker's oracle, which only prunes; ``result_view`` is how the
    sampler sees a result (a pruned trial's, see :func:`hks.pruners.sampler_result`)."""

    def __init__(self, store: p.JobStore, exp_key: str, sampler: Sampler | None, pruner: Pruner | None = None,
                 result_view: ResultView | None = None):
        self.store, self.exp_key, self.sampler, self.pruner = store, exp_key, sampler, pruner
        self.result_view = result_view
        self.records = RecordCache(store, exp_key)

    def refresh(self) -> list[p.Job]:
        """Read what changed in the store; returns the changed records."""
        return self.records.refresh()

    def ask(self, n: int = 1) -> list[p.Job]:
        """Suggest ``n`` new trials (one batch, no duplicates) and queue them in the store."""
        if n <= 0:
            return []
        start = self.records.next_tid()
        tids = list(range(start, start + n))
        docs = self.sampler.suggest(self._sampler_history(), tids)
        jobs = [p.Job(exp_key=self.exp_key, tid=tid, doc=doc) for tid, doc in zip(tids, docs)]
        self.store.insert_jobs(jobs)
        for job in jobs:
            self.records.jobs[job.tid] = job
        return jobs

    def _sampler_history(self) -> list[p.Job]:
        if self.result_view is None:
            return self.records.records()
        return [dataclasses.replace(job, result=self.result_view(job.result)) if job.result else job
                for job in self.records.records()]

    def prune_hook(self, tid: int, judged: int = 0) -> Callable[[int, dict[str, float]], Any] | None:
        """Trial ``tid``'s ``should_prune(epoch, logs)``: asks the pruner with the other trials' curves as
        stored now (None without a pruner). ``judged``: its first epochs were judged already (a promoted
        trial's, which may have to train them again when its checkpoint is out of reach): no stop there."""
        if self.pruner is None:
            return None
        from hks.pruners import curves_from_jobs, epoch_hook

        def others() -> list[Curve]:
            self.refresh()
            return curves_from_jobs(job for job in self.records.records() if job.tid != tid)

        hook = epoch_hook(self.pruner, tid, others)
        if not judged:
            return hook

        def should_prune(epoch: int, logs: dict[str, float]) -> Any:
            answer = hook(epoch, logs)  # asked all the same: the hook keeps the trial's curve
            return answer if epoch >= judged else None

        return should_prune

    def promotion(self, final: bool = False) -> p.Job | None:
        """The paused trial the pruner would resume now (``final``: nothing else is left to run), or None."""
        if self.pruner is None or not self.pruner.pause:  # nothing to read at every poll of other searches
            return None
        from hks.pruners import curves_from_jobs, paused_trials

        jobs = self.records.records()
        paused = paused_trials(jobs)
        tid = self.pruner.promotion(curves_from_jobs(jobs), paused, final) if paused else None
        return self.records.jobs[tid] if tid is not None else None

    def promote(self, final: bool = False) -> p.Job | None:
        """Queue the paused trial :meth:`promotion` names again; returns it as it was (paused), or None."""
        job = self.promotion(final)
        if job is None:
            return None
        if not self.store.reopen(job):
            return None  # changed meanwhile: the next refresh shows how
        # As the store has it now; not refreshed here, which would take other changes from the caller's sync
        self.records.jobs[job.tid] = dataclasses.replace(job, **p.reopen_changes(job), version=job.version + 1)
        return job

    def finished(self) -> list[p.Job]:
        return self.records.in_states(*p.FINAL_STATES)

