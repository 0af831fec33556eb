"""A hyperopt ``Trials`` backed by a job store, so ``fmin`` and every hyperopt algorithm drive
remote workers unchanged.

``fmin`` asks this object for trial ids, inserts its suggestions with ``insert_trial_docs``
(they become ``new`` jobs) and, being ``asynchronous``, polls ``refresh`` until workers have
finished them. A restarted master builds a new ``StoreTrials`` over the same experiment and
sees every job (new, running, done, failed), so nothing is lost or repeated.

What is sent to the store is only data: the trial's hyperopt assignment (``misc``). The
pickled ``Domain`` that hyperopt attaches to asynchronous trials stays in this process.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from hyperopt import base
from hyperopt.fmin import FMinIter

from hks.store import protocol as p

POLL_SECONDS = 0.5  # the longest the master sleeps between looks at the store
POLL_MIN_SECONDS = 0.01  # right after something changed: short trials are not held up by the master
SWEEP_SECONDS = 1.0  # how often to requeue expired leases and to count live workers (leases last longer)

_HYPEROPT_STATE = {p.NEW: base.JOB_STATE_NEW, p.RUNNING: base.JOB_STATE_RUNNING,
                   p.DONE: base.JOB_STATE_DONE, p.FAILED: base.JOB_STATE_DONE}
_STORE_STATES = {base.JOB_STATE_NEW: (p.NEW,), base.JOB_STATE_RUNNING: (p.RUNNING,),
                 base.JOB_STATE_DONE: p.FINAL_STATES}
# The hyperopt trial fields that describe the job itself, not its progress: what the store keeps in ``doc``.
_DOC_FIELDS = ("spec", "misc")


def _when(unix: float | None) -> datetime.datetime | None:
    return None if unix is None else datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).replace(tzinfo=None)


def hyperopt_trial(job: p.Job) -> dict[str, Any]:
    """The job as hyperopt sees a trial; a job failed by the store is a ``done`` trial with a failed result."""
    return {
        "state": _HYPEROPT_STATE[job.state], "tid": job.tid, "exp_key": job.exp_key, "owner": job.owner,
        "version": job.version, "spec": job.doc.get("spec"), "misc": job.doc.get("misc", {}),
        "result": job.result if job.state in p.FINAL_STATES and job.result else {"status": base.STATUS_NEW},
        "book_time": _when(job.book_time), "refresh_time": _when(job.finished_at or job.heartbeat_at),
    }


class StoreTrials(base.Trials):
    """Trials of experiment ``exp_key`` in ``store``. ``on_finished(job)`` hears once of each job that
    finishes after construction (those already finished count as heard); ``on_poll(self)`` of each refresh."""

    asynchronous = True

    def __init__(self, store: p.JobStore, exp_key: str, *, max_attempts: int, lease_seconds: float,
                 queue_len: int = 0, poll_seconds: float = POLL_SECONDS, sweep_seconds: float = SWEEP_SECONDS,
                 on_finished: Callable[[p.Job], None] | None = None,
                 on_poll: Callable[[StoreTrials], None] | None = None):
        self.store = store
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.queue_len = queue_len
        self.poll_seconds = poll_seconds
        self.sweep_seconds = sweep_seconds
        self.on_finished = on_finished
        self.on_poll = on_poll
        self.jobs: dict[int, p.Job] = {}
        self._docs: dict[int, dict[str, Any]] = {}
        self._announced: set[int] = set()
        self._last_inserted = -1
        self._changed_at = time.monotonic()
        self._swept_at = -float("inf")
        self._live: tuple[float, int] = (-float("inf"), 1)
        super().__init__(exp_key=exp_key, refresh=True)

    @property
    def exp_key(self) -> str:
        return self._exp_key

    # --- reading the store -------------------------------------------------------------
    def refresh(self) -> None:
        """Requeue lost workers' trials (every second at most), then fetch the jobs whose version changed."""
        now = time.monotonic()
        if now - self._swept_at >= min(self.sweep_seconds, self.lease_seconds / 4):
            self.store.requeue_expired(self._exp_key, self.max_attempts)
            self._swept_at = now
        versions = self.store.versions(self._exp_key)
        changed = [tid for tid, version in versions.items()
                   if tid not in self.jobs or self.jobs[tid].version != version]
        if changed:
            self._changed_at = now
        for job in self.store.load(self._exp_key, changed) if changed else []:
            self.jobs[job.tid] = job
            self._docs[job.tid] = hyperopt_trial(job)
        self._dynamic_trials = [self._docs[tid] for tid in sorted(self._docs)]
        super().refresh()
        self._announce_finished()
        if self.on_poll is not None:
            self.on_poll(self)

    def _announce_finished(self) -> None:
        for tid in sorted(self.jobs):
            job = self.jobs[tid]
            if job.state in p.FINAL_STATES and tid not in self._announced:
                self._announced.add(tid)
                if self.on_finished is not None:
                    self.on_finished(job)

    def count_by_state_unsynced(self, arg: Any) -> int:
        """Counted by the store itself: fmin calls this in its polling loop."""
        wanted = [arg] if isinstance(arg, int) else list(arg)
        states = tuple(s for state in wanted for s in _STORE_STATES.get(state, ()))
        return self.store.count(self._exp_key, states) if states else 0

    def counts(self) -> dict[str, int]:
        """Jobs per store state, as of the last refresh."""
        out = dict.fromkeys(p.STATES, 0)
        for job in self.jobs.values():
            out[job.state] += 1
        return out

    def poll_interval(self) -> float:
        """Seconds until the next look: half the time since the store last changed, within
        [POLL_MIN_SECONDS, poll_seconds]: quick while trials are short, quiet while they are long."""
        quiet = time.monotonic() - self._changed_at
        return min(self.poll_seconds, max(POLL_MIN_SECONDS, quiet / 2))

    def queue_target(self) -> int:
        """How many suggestions to keep queued: ``queue_len``, or one per live worker."""
        if self.queue_len > 0:
            return self.queue_len
        checked_at, live = self._live
        if time.monotonic() - checked_at >= self.sweep_seconds:
            live = len(self.store.live_workers(self._exp_key, since=time.time() - self.lease_seconds))
            self._live = (time.monotonic(), live)
        return max(1, live)

    # --- writing to the store ----------------------------------------------------------
    def new_trial_ids(self, n: int) -> list[int]:
        """Ids after the last inserted job. TPE uses only the first id it is given: the others are
        handed out again next time, so the store's tids stay 0, 1, 2... (only one master inserts)."""
        start = max(max(self.jobs, default=-1), self._last_inserted) + 1
        ids = list(range(start, start + n))
        self._ids.update(ids)
        return ids

    def _insert_trial_docs(self, docs: list[dict[str, Any]]) -> list[int]:
        jobs = [p.Job(exp_key=self._exp_key, tid=doc["tid"], doc={k: doc.get(k) for k in _DOC_FIELDS})
                for doc in docs]
        self.store.insert_jobs(jobs)
        self._last_inserted = max([self._last_inserted, *(job.tid for job in jobs)])
        return [job.tid for job in jobs]

    def delete_all(self) -> None:
        raise NotImplementedError("delete the experiment from its store instead (JobStore.delete_experiment)")

    # --- fmin --------------------------------------------------------------------------
    def fmin(self, fn, space, algo=None, max_evals=None, timeout=None, loss_threshold=None, max_queue_len=1,
             rstate=None, verbose=False, pass_expr_memo_ctrl=None, catch_eval_exceptions=False,
             return_argmin=True, show_progressbar=True, early_stop_fn=None, trials_save_file=""):
        """What ``hyperopt.fmin(..., trials=this)`` runs: hyperopt's own loop, polling the store every
        :meth:`poll_interval` and keeping :meth:`queue_target` suggestions queued."""
        from hyperopt import tpe

        domain = base.Domain(fn, space, pass_expr_memo_ctrl=pass_expr_memo_ctrl)
        loop = _StoreFMinIter(algo or tpe.suggest, domain, self, rstate=rstate or np.random.default_rng(),
                              max_evals=max_evals if max_evals is not None else np.iinfo(np.int64).max,
                              timeout=timeout, loss_threshold=loss_threshold, verbose=verbose,
                              show_progressbar=show_progressbar, early_stop_fn=early_stop_fn)
        loop.catch_eval_exceptions = catch_eval_exceptions
        loop.exhaust()
        if return_argmin:
            return self.argmin
        return None


class _StoreFMinIter(FMinIter):
    """hyperopt's loop with a queue length that follows the live workers and an adaptive poll."""

    @property
    def poll_interval_secs(self) -> float:
        return self.trials.poll_interval()

    @poll_interval_secs.setter
    def poll_interval_secs(self, value: float) -> None:
        pass

    @property
    def max_queue_len(self) -> int:
        return self.trials.queue_target()

    @max_queue_len.setter
    def max_queue_len(self, value: int) -> None:
        pass  # fixed by the store's live workers or --queue-len, not by fmin's argument
