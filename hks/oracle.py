"""The oracle: what to try next, and whether a running trial goes on.

It owns no state of its own: it reads the experiment's trial records through the storage
interface (:class:`~hks.store.cache.RecordCache`), asks the sampler for new points, writes them
as queued trials, and asks the pruner (if any) about running ones. So a restarted master, or
one on another machine, makes the same decisions from the same records.
"""

from __future__ import annotations

from typing import Any, Protocol

from hks.samplers import Sampler
from hks.store import protocol as p
from hks.store.cache import RecordCache


class Pruner(Protocol):
    def should_prune(self, tid: int, values: list[float], history: list[p.Job]) -> bool: ...


class Oracle:
    def __init__(self, store: p.JobStore, exp_key: str, sampler: Sampler, pruner: Pruner | None = None):
        self.store, self.exp_key, self.sampler, self.pruner = store, exp_key, sampler, pruner
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
        docs = self.sampler.suggest(self.records.records(), tids)
        jobs = [p.Job(exp_key=self.exp_key, tid=tid, doc=doc) for tid, doc in zip(tids, docs)]
        self.store.insert_jobs(jobs)
        for job in jobs:
            self.records.jobs[job.tid] = job
        return jobs

    def should_prune(self, tid: int, values: list[float]) -> bool:
        """Whether trial ``tid``, with these per-epoch validation values so far, should stop now."""
        if self.pruner is None:
            return False
        self.refresh()
        return self.pruner.should_prune(tid, values, self.records.records())

    def finished(self) -> list[p.Job]:
        return self.records.in_states(*p.FINAL_STATES)

    def describe(self) -> dict[str, Any]:
        return {"sampler": self.sampler.name, "pruner": type(self.pruner).__name__ if self.pruner else None}
