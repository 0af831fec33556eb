"""The job-store protocol: what a trial document holds, how it moves between states, and the
interface every driver (SQL, MongoDB) implements.

A trial ("job") of experiment ``exp_key`` is identified by its hyperopt ``tid`` and moves::

    new --reserve--> running --complete--> done
     ^                  |  \\--lease expired, attempts == max_attempts--> failed
     +--release/lease expired (attempts < max_attempts)--+
     +--reopen (a paused trial promoted: ``--prune-pause``)----------------+

* ``reserve`` is atomic in every driver: a job is handed to exactly one worker. It sets the
  ``owner``, adds one to ``attempts`` and to ``reservation`` and sets ``lease_expires`` = now + lease.
* The owner renews the lease with ``heartbeat`` while it trains. A worker killed with SIGKILL or
  lost with its machine stops renewing it; whoever calls :meth:`JobStore.requeue_expired` next
  (the master, or any worker before reserving) puts the job back to ``new``, or marks it
  ``failed`` with the reason once it has been tried ``max_attempts`` times.
* ``complete``, ``heartbeat``, ``push_metrics`` and ``release`` are fenced by (owner, reservation):
  a worker that lost its lease cannot overwrite the trial's new reservation. ``reservation`` only
  ever grows (``attempts`` does not: ``release`` gives the attempt back), so a fence never repeats.
* Whoever completes a trial writes its JSON result, once, after ``complete`` succeeded.
* ``reopen`` puts a ``done`` trial whose result says it is paused (ASHA with ``--prune-pause``)
  back to ``new``, fenced by its ``version``: its result goes (the trial resumes from its checkpoint
  and completes again), its attempts start again from 0, and the epochs it ran stay as its metrics
  (``reserve`` keeps them): they were judged already, and are not judged again.
* When the search is over the master calls :meth:`JobStore.finish_experiment`; workers seeing
  ``Experiment.finished_at`` set exit. A master (re)registering the experiment clears it.
* ``version`` grows with every state change, so a reader can fetch only what changed.

Times are unix seconds from the writer's clock: machines sharing a store need synchronised
clocks (NTP), and the lease must be much longer than their skew.
The experiment record holds the space fingerprint, the space and objective names and the master's
settings (never a password) with the search's identity, including the objective's code fingerprint;
workers rebuild both by name and refuse to run when they differ, so no code ever travels through
the store.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Any

NEW = "new"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
STATES = (NEW, RUNNING, DONE, FAILED)
FINAL_STATES = (DONE, FAILED)
WORKER_LOST = "WorkerLost"


@dataclass
class Experiment:
    """One search: workers check their space and objective against it and use its settings."""

    exp_key: str
    fingerprint: str
    space: str
    objective: str
    settings: dict[str, Any]
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None  # set by the master when the search is over: workers exit


@dataclass
class Job:
    """One trial document. ``doc`` is hyperopt's trial (``misc`` with ``vals``/``idxs``...)."""

    exp_key: str
    tid: int
    state: str = NEW
    doc: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None
    attempts: int = 0
    reservation: int = 0
    version: int = 0
    lease_expires: float | None = None
    heartbeat_at: float | None = None
    book_time: float | None = None
    finished_at: float | None = None
    created_at: float = field(default_factory=time.time)
    result: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def vals(self) -> dict[str, Any]:
        """hyperopt's assignment of this trial: ``{label: value}`` for the active labels."""
        misc_vals = (self.doc.get("misc") or {}).get("vals") or {}
        return {label: vals[0] for label, vals in misc_vals.items() if vals}


@dataclass(frozen=True)
class Watch:
    """The jobs a reader still expects to change: those it knows as pending or paused (``tids``), any
    job now new or running, and any job after ``after`` (new suggestions). Other finished jobs never
    change, so a reader of thousands of them need not fetch their versions at every poll."""

    tids: tuple[int, ...]
    after: int

    def wants(self, job: Job) -> bool:
        return job.tid in self.tids or job.state in (NEW, RUNNING) or job.tid > self.after


@dataclass
class WorkerInfo:
    """A worker's presence record: the master counts live workers to size its queue."""

    worker_id: str
    exp_key: str
    state: str
    tid: int | None
    last_seen: float


def lease_lost_reason(job: Job, now: float) -> str:
    seconds = now - (job.heartbeat_at or job.book_time or now)
    return (f"worker {job.owner} stopped sending heartbeats {seconds:.0f}s ago (killed, or its machine lost) "
            f"on attempt {job.attempts}")


def gave_up(job: Job, max_attempts: int) -> bool:
    """Whether a running job whose lease expires is failed for good rather than requeued."""
    return job.attempts >= max_attempts


def expiry_changes(job: Job, now: float, max_attempts: int) -> dict[str, Any]:
    """The fields to set on a running job whose lease expired: requeue it, or fail it for good."""
    reason = lease_lost_reason(job, now)
    if gave_up(job, max_attempts):
        error = f"gave up after {job.attempts} attempt{'s' if job.attempts != 1 else ''}: {reason}"
        result = {"status": "fail", "loss": None, "error": error, "error_type": WORKER_LOST, "tid": job.tid,
                  "finished_at": now}
        return {"state": FAILED, "error": error, "result": result, "finished_at": now, "lease_expires": None}
    return {"state": NEW, "owner": None, "error": reason, "lease_expires": None, "metrics": []}


def release_changes() -> dict[str, Any]:
    """A worker stopped on purpose (SIGTERM, Ctrl-C): the attempt does not count against the trial."""
    return {"state": NEW, "owner": None, "lease_expires": None, "metrics": [], "error": None}


def may_change(job: Job) -> bool:
    """Whether a reader must keep watching a job: it is not final yet, or it is paused (it may be reopened)."""
    return job.state not in FINAL_STATES or bool((job.result or {}).get("paused"))


def reopen_changes(job: Job) -> dict[str, Any]:
    """A paused trial promoted to go on: queued again, as if new, with the epochs it ran as its metrics
    (so that the pruners still count them while it waits for a worker)."""
    history = (job.result or {}).get("history") or {}
    epochs = max((len(values) for values in history.values()), default=0)
    metrics = [{"epoch": e + 1, **{k: values[e] for k, values in history.items() if e < len(values)}}
               for e in range(epochs)]
    return {"state": NEW, "owner": None, "result": None, "error": None, "finished_at": None, "lease_expires": None,
            "metrics": metrics, "attempts": 0}


class JobStore(abc.ABC):
    """A driver: every method is one atomic step of the protocol above."""

    url: str  # with the password masked: safe to print

    # --- experiments -------------------------------------------------------------------
    @abc.abstractmethod
    def get_experiment(self, exp_key: str) -> Experiment | None: ...

    @abc.abstractmethod
    def experiment_keys(self) -> list[str]:
        """Every experiment's key, oldest first (to name them when a wrong one is asked for)."""

    @abc.abstractmethod
    def put_experiment(self, experiment: Experiment) -> None:
        """Create the record, or replace its settings (a restarted master's may differ)."""

    @abc.abstractmethod
    def finish_experiment(self, exp_key: str, now: float | None = None) -> None:
        """Mark the search over (``finished_at``): every worker serving it exits."""

    # --- the master's side -------------------------------------------------------------
    @abc.abstractmethod
    def insert_jobs(self, jobs: list[Job]) -> None: ...

    @abc.abstractmethod
    def versions(self, exp_key: str, watch: Watch | None = None) -> dict[int, int]:
        """``{tid: version}`` of every job (or only of those ``watch`` names): cheap, to decide what
        :meth:`load` must fetch."""

    @abc.abstractmethod
    def load(self, exp_key: str, tids: list[int] | None = None) -> list[Job]:
        """Full jobs (all, or those tids), sorted by tid."""

    @abc.abstractmethod
    def count(self, exp_key: str, states: tuple[str, ...] = STATES) -> int: ...

    # --- the workers' side -------------------------------------------------------------
    @abc.abstractmethod
    def reserve(self, exp_key: str, owner: str, lease_seconds: float) -> Job | None:
        """Atomically take the oldest ``new`` job, or None when there is none."""

    @abc.abstractmethod
    def heartbeat(self, job: Job, lease_seconds: float) -> bool:
        """Renew the lease; False when the job is no longer this worker's."""

    @abc.abstractmethod
    def push_metrics(self, job: Job, metrics: list[dict[str, Any]]) -> bool:
        """Store the per-epoch metrics so far (the whole list, newest last)."""

    @abc.abstractmethod
    def complete(self, job: Job, result: dict[str, Any]) -> bool:
        """Write the result and mark the job done; False when the lease was lost meanwhile."""

    @abc.abstractmethod
    def release(self, job: Job) -> bool:
        """Put a job back to ``new`` at once (the worker is stopping)."""

    @abc.abstractmethod
    def reopen(self, job: Job) -> bool:
        """Apply :func:`reopen_changes` to a ``done`` job unless it changed since ``job`` was read."""

    @abc.abstractmethod
    def requeue_expired(self, exp_key: str, max_attempts: int, now: float | None = None) -> list[Job]:
        """Apply :func:`expiry_changes` to every running job whose lease expired; returns them."""

    # --- worker presence ---------------------------------------------------------------
    @abc.abstractmethod
    def touch_worker(self, info: WorkerInfo) -> None: ...

    @abc.abstractmethod
    def remove_worker(self, worker_id: str) -> None: ...

    @abc.abstractmethod
    def live_workers(self, exp_key: str, since: float) -> list[WorkerInfo]: ...

    # --- housekeeping ------------------------------------------------------------------
    @abc.abstractmethod
    def delete_experiment(self, exp_key: str) -> None:
        """Remove an experiment, its jobs and its workers (tests, benchmarks, a fresh start)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
