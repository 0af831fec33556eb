"""A reader's up-to-date copy of an experiment's trial records, fetched incrementally.

Every state change bumps a record's ``version``; one cheap ``versions()`` call says which
records changed, and only those are loaded again. The master, the oracle and the report read
trials through this, whatever the backend.
"""

from __future__ import annotations

from hks.store import protocol as p


class RecordCache:
    def __init__(self, store: p.JobStore, exp_key: str):
        self.store, self.exp_key = store, exp_key
        self.jobs: dict[int, p.Job] = {}

    def refresh(self) -> list[p.Job]:
        """Fetch what changed since the last call; returns the records that changed.

        The first call reads every version; later ones only those of records that can still change
        (finished records never do, but paused ones, which may be reopened), so a poll costs the same
        with 100 or 10,000 trials stored."""
        watch = None
        if self.jobs:
            pending = tuple(tid for tid, job in self.jobs.items() if p.may_change(job))
            watch = p.Watch(pending, max(self.jobs))
        versions = self.store.versions(self.exp_key, watch)
        changed = [tid for tid, version in versions.items()
                   if tid not in self.jobs or self.jobs[tid].version != version]
        fresh = self.store.load(self.exp_key, changed) if changed else []
        for job in fresh:
            self.jobs[job.tid] = job
        if watch is None:
            for tid in set(self.jobs) - set(versions):  # deleted under us (a fresh start of the experiment)
                del self.jobs[tid]
        return fresh

    def records(self) -> list[p.Job]:
        return [self.jobs[tid] for tid in sorted(self.jobs)]

    def in_states(self, *states: str) -> list[p.Job]:
        return [job for job in self.records() if job.state in states]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(p.STATES, 0)
        for job in self.jobs.values():
            out[job.state] += 1
        return out

    def next_tid(self) -> int:
        return max(self.jobs, default=-1) + 1
