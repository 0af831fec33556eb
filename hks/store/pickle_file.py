"""``results.pkl``: the job store of a search that runs without a server.

The file is a hyperopt ``Trials`` (``pickle.load`` opens it, and its ``trials`` hold hyperopt's
documents with each trial's result, as the classic sample's users expect). The trial records of
the store protocol ride along in its ``attachments``, so a local search has the same records as
a distributed one: a trial is marked running (and its attempt counted) in the file before it
trains, per-epoch values are saved after every epoch, and a trial whose process died is found
running by the next run, which counts the attempt and requeues it or, after ``--max-attempts``,
fails it, so a point that kills the process cannot loop forever.

One process owns the file at a time (an advisory lock beside it); every change is written
atomically, except heartbeats and worker presence, which only matter while this process lives.
"""

from __future__ import annotations

import copy
import fcntl
import os
import pickle
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hyperopt import Trials

from hks.errors import StoreError, TrialsFileError
from hks.results import atomic_pickle
from hks.store import protocol as p
from hks.store.hyperopt_docs import hyperopt_trial

EXPERIMENT_KEY = "hks_experiment"  # attachment: the experiment record
JOBS_KEY = "hks_jobs"  # attachment: the trial records, as dicts


def _hint(path: Path) -> str:
    # not ./delete_results.sh: it deletes HKS_TRIALS_FILE's file and folder, which need not be this one
    return (f"move it away or delete it to start a new search, or pass --trials-file OTHER.pkl; {path} was left "
            "untouched")


def read_trials_file(path: Path) -> Trials:
    """The hyperopt ``Trials`` pickled at ``path``, or a one-line :class:`TrialsFileError`."""
    if path.is_dir():
        raise TrialsFileError(f"--trials-file {path} is a folder: give a file in it, e.g. {path / 'results.pkl'}")
    try:
        with path.open("rb") as handle:
            trials = pickle.load(handle)
    except Exception as exc:  # noqa: BLE001 - unpickling raises anything; all mean "unreadable"
        raise TrialsFileError(f"{path} is corrupt or unreadable ({type(exc).__name__}: {exc}); {_hint(path)}") \
            from None
    if not isinstance(trials, Trials):
        raise TrialsFileError(f"{path} holds a {type(trials).__name__}, not hyperopt Trials; {_hint(path)}")
    return trials


def _jobs_of(trials: Trials, path: Path) -> dict[int, p.Job]:
    saved = trials.attachments.get(JOBS_KEY)
    if saved is not None:
        return {record["tid"]: p.Job(**record) for record in saved}
    if len(trials.trials):  # hyperopt's own pickle (or hks before records): finished trials only
        raise TrialsFileError(f"{path} was not written by this version of hks (no trial records); {_hint(path)}")
    return {}


def read_records(path: Path) -> tuple[p.Experiment | None, list[p.Job]]:
    """The experiment and trial records of a ``results.pkl``, read-only (no lock: a search may be running)."""
    trials = read_trials_file(path)
    saved = trials.attachments.get(EXPERIMENT_KEY)
    experiment = p.Experiment(**saved) if isinstance(saved, dict) and "exp_key" in saved else None
    return experiment, [_jobs_of(trials, path)[tid] for tid in sorted(_jobs_of(trials, path))]


class _Lock:
    """An exclusive advisory lock on ``<file>.lock``: two searches never write one ``results.pkl``."""

    def __init__(self, path: Path):
        self.path = path.with_name(path.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise StoreError(f"{path} is in use by another search ({holder}); wait for it to finish, or pass "
                             "--trials-file OTHER.pkl") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()}")
        self.handle.flush()

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


class MemoryStore(p.JobStore):
    """A :class:`~hks.store.protocol.JobStore` in this process's memory (``storage=":memory:"``):
    for searches nobody needs to resume, and for benchmarks of the samplers themselves."""

    url = ":memory:"

    def __init__(self) -> None:
        self._mutex = threading.RLock()
        self._trials = Trials()
        self._jobs: dict[int, p.Job] = {}
        self._workers: dict[str, p.WorkerInfo] = {}

    def _save(self) -> None:
        """Persist the records (nothing to do in memory)."""

    def _change(self, job: p.Job, changes: dict[str, Any], *, save: bool = True) -> None:
        for key, value in changes.items():
            setattr(job, key, value)
        job.version += 1
        if save:
            self._save()

    # --- experiments -----------------------------------------------------------------------
    def get_experiment(self, exp_key: str) -> p.Experiment | None:
        saved = self._trials.attachments.get(EXPERIMENT_KEY)
        if not isinstance(saved, dict) or "exp_key" not in saved:
            return None
        return p.Experiment(**saved) if saved["exp_key"] == exp_key else None

    def experiment_keys(self) -> list[str]:
        saved = self._trials.attachments.get(EXPERIMENT_KEY)
        return [saved["exp_key"]] if isinstance(saved, dict) and "exp_key" in saved else []

    def put_experiment(self, experiment: p.Experiment) -> None:
        with self._mutex:
            self._trials.attachments[EXPERIMENT_KEY] = asdict(experiment)
            self._save()

    def finish_experiment(self, exp_key: str, now: float | None = None) -> None:
        with self._mutex:
            saved = self._trials.attachments.get(EXPERIMENT_KEY)
            if isinstance(saved, dict) and saved.get("exp_key") == exp_key:
                saved["finished_at"] = time.time() if now is None else now
                self._save()

    # --- the master's side ---------------------------------------------------------------
    def insert_jobs(self, jobs: list[p.Job]) -> None:
        with self._mutex:
            for job in jobs:
                if job.tid in self._jobs:
                    raise StoreError(f"trial {job.tid} already exists in {self.url}")
            for job in jobs:
                self._jobs[job.tid] = copy.deepcopy(job)
            self._save()

    def versions(self, exp_key: str, watch: p.Watch | None = None) -> dict[int, int]:
        with self._mutex:
            return {tid: job.version for tid, job in self._jobs.items()
                    if job.exp_key == exp_key and (watch is None or watch.wants(job))}

    def load(self, exp_key: str, tids: list[int] | None = None) -> list[p.Job]:
        with self._mutex:
            wanted = set(self._jobs) if tids is None else set(tids)
            return [copy.deepcopy(self._jobs[tid]) for tid in sorted(wanted & set(self._jobs))
                    if self._jobs[tid].exp_key == exp_key]

    def count(self, exp_key: str, states: tuple[str, ...] = p.STATES) -> int:
        with self._mutex:
            return sum(1 for job in self._jobs.values() if job.exp_key == exp_key and job.state in states)

    # --- the workers' side ---------------------------------------------------------------
    def reserve(self, exp_key: str, owner: str, lease_seconds: float) -> p.Job | None:
        with self._mutex:
            waiting = [job for job in self._jobs.values() if job.exp_key == exp_key and job.state == p.NEW]
            if not waiting:
                return None
            job = min(waiting, key=lambda j: j.tid)
            now = time.time()
            self._change(job, {"state": p.RUNNING, "owner": owner, "attempts": job.attempts + 1, "book_time": now,
                               "heartbeat_at": now, "lease_expires": now + lease_seconds,
                               "reservation": job.reservation + 1})
            return copy.deepcopy(job)

    def _mine(self, job: p.Job) -> p.Job | None:
        current = self._jobs.get(job.tid)
        if current is None or current.state != p.RUNNING or current.owner != job.owner \
                or current.reservation != job.reservation:
            return None
        return current

    def heartbeat(self, job: p.Job, lease_seconds: float) -> bool:
        with self._mutex:
            current = self._mine(job)
            if current is not None:
                now = time.time()
                current.heartbeat_at, current.lease_expires = now, now + lease_seconds
            return current is not None

    def push_metrics(self, job: p.Job, metrics: list[dict[str, Any]]) -> bool:
        with self._mutex:
            current = self._mine(job)
            if current is not None:
                self._change(current, {"metrics": list(metrics)})
            return current is not None

    def complete(self, job: p.Job, result: dict[str, Any]) -> bool:
        with self._mutex:
            current = self._mine(job)
            if current is not None:
                self._change(current, {"state": p.DONE, "result": result, "finished_at": time.time(),
                                       "lease_expires": None, "error": result.get("error")})
            return current is not None

    def release(self, job: p.Job) -> bool:
        with self._mutex:
            current = self._mine(job)
            if current is not None:
                self._change(current, {**p.release_changes(), "attempts": current.attempts - 1})
            return current is not None

    def reopen(self, job: p.Job) -> bool:
        with self._mutex:
            current = self._jobs.get(job.tid)
            if current is None or current.state != p.DONE or current.version != job.version:
                return False
            self._change(current, p.reopen_changes(current))
            return True

    def requeue_expired(self, exp_key: str, max_attempts: int, now: float | None = None) -> list[p.Job]:
        with self._mutex:
            now = time.time() if now is None else now
            expired = [job for job in self._jobs.values() if job.exp_key == exp_key and job.state == p.RUNNING
                       and job.lease_expires is not None and job.lease_expires < now]
            for job in expired:
                self._change(job, p.expiry_changes(job, now, max_attempts), save=False)
            if expired:
                self._save()
            return [copy.deepcopy(job) for job in expired]

    # --- worker presence (this process only) ---------------------------------------------
    def touch_worker(self, info: p.WorkerInfo) -> None:
        with self._mutex:
            self._workers[info.worker_id] = copy.copy(info)

    def remove_worker(self, worker_id: str) -> None:
        with self._mutex:
            self._workers.pop(worker_id, None)

    def live_workers(self, exp_key: str, since: float) -> list[p.WorkerInfo]:
        with self._mutex:
            return [w for w in self._workers.values() if w.exp_key == exp_key and w.last_seen >= since]

    # --- housekeeping --------------------------------------------------------------------
    def delete_experiment(self, exp_key: str) -> None:
        with self._mutex:
            self._jobs = {tid: job for tid, job in self._jobs.items() if job.exp_key != exp_key}
            if self.get_experiment(exp_key) is not None:
                del self._trials.attachments[EXPERIMENT_KEY]
            self._save()

    def close(self) -> None:
        """Nothing to release in memory."""


class PickleStore(MemoryStore):
    """The :class:`~hks.store.protocol.JobStore` of one ``results.pkl``, held by one process."""

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self.url = str(self.path)
        self._lock = _Lock(self.path)
        try:
            self._trials = read_trials_file(self.path) if self.path.exists() else Trials()
            self._jobs = _jobs_of(self._trials, self.path)
        except BaseException:
            self._lock.release()
            raise
        for job in self._jobs.values():  # running in a process that is gone: its lease is over now
            if job.state == p.RUNNING:
                job.lease_expires = 0.0

    def _save(self) -> None:
        jobs = [self._jobs[tid] for tid in sorted(self._jobs)]
        self._trials._dynamic_trials = [hyperopt_trial(job) for job in jobs]
        self._trials.attachments[JOBS_KEY] = [asdict(job) for job in jobs]
        self._trials.refresh()
        atomic_pickle(self._trials, self.path)

    def close(self) -> None:
        self._lock.release()
