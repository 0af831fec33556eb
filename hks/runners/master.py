"""The master of a distributed search: keeps the queue of suggestions full for the workers.

Each poll it requeues trials whose worker was lost, reads what changed in the store, announces
finished trials (progress line, JSON result), and tops the queue up with one batch of pending-
aware suggestions, so any number of idle workers find work at once. It rides out store outages
like the workers do, and a second master on the same experiment is refused.
"""

from __future__ import annotations

import math
import os
import shlex
import socket
import time
from contextlib import nullcontext

from hks.errors import ConfigError
from hks.gpus import worker_count
from hks.local_workers import LocalWorkers
from hks.runners import Search
from hks.store import protocol as p
from hks.worker import requeue_lost

POLL_MIN_SECONDS, POLL_MAX_SECONDS = 0.05, 0.5
SWEEP_SECONDS = 1.0  # how often to requeue expired leases and count live workers (leases last longer)
WAITING_NOTE_SECONDS = 30.0
MASTER_STATE = "master"


def master_id() -> str:
    return f"{MASTER_STATE}:{socket.gethostname()}:{os.getpid()}"


def _alive_here(owner: str) -> bool:
    """Whether a master record names a live process on this host (a dead one's record is stale)."""
    _, host, pid = (owner.split(":") + ["", ""])[:3]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's: trust its record until it expires
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_experiment(study: Search, me: str) -> None:
    """Refuse to start when another live master runs this experiment; then announce this one."""
    since = time.time() - study.settings.lease_seconds
    for other in study.store.live_workers(study.exp_key, since):
        if other.state == MASTER_STATE and other.worker_id != me and _alive_here(other.worker_id):
            raise ConfigError(f"another master ({other.worker_id.split(':', 1)[1]}) is running experiment "
                              f"{study.exp_key!r} in {study.store.url} (seen {time.time() - other.last_seen:.0f}s "
                              "ago); nothing was changed. Stop it first, or use another --experiment-name")
    study.store.touch_worker(p.WorkerInfo(me, study.exp_key, MASTER_STATE, None, time.time()))


class Master:
    def __init__(self, study: Search, workers: LocalWorkers | None):
        self.study, self.workers = study, workers
        self.me = master_id()
        self.swept_at = -math.inf
        self.live = 1
        self.changed_at = time.monotonic()
        self.noted_at = time.monotonic()

    def run(self) -> None:
        """Serve the search until its budget is spent, riding out store outages of up to
        ``--store-patience`` seconds (said once when it starts, once when it ends); then mark the
        experiment finished, so that every worker serving it exits."""
        from hks.store.retry import OutageNotice, retrying

        notice, patience = OutageNotice("master"), self.study.settings.store_patience
        retrying(lambda: claim_experiment(self.study, self.me), "registering the master", patience, notice=notice)
        try:
            with self.workers or nullcontext():
                while not retrying(self.step, "running the search", patience, notice=notice):
                    time.sleep(self.poll_interval())
            retrying(lambda: self.study.store.finish_experiment(self.study.exp_key), "marking the search finished",
                     patience, notice=notice)
        finally:
            try:
                self.study.store.remove_worker(self.me)
            except Exception:  # noqa: BLE001 - leaving anyway: the record expires by itself
                pass

    def step(self) -> bool:
        """One look at the store; True once the budget is spent."""
        study, store = self.study, self.study.store
        if time.monotonic() - self.swept_at >= SWEEP_SECONDS:
            requeue_lost(store, study.exp_key, study.settings)
            store.touch_worker(p.WorkerInfo(self.me, study.exp_key, MASTER_STATE, None, time.time()))
            self.live = self._live_workers()
            self.swept_at = time.monotonic()
        if study.sync():
            self.changed_at = self.noted_at = time.monotonic()
        if study.finished_count() >= study.settings.max_evals and not study.promote(final=True):
            return True
        counts = study.oracle.records.counts()
        room = study.settings.max_evals - study.finished_count() - counts[p.NEW] - counts[p.RUNNING]
        wanted = self.queue_target(counts[p.RUNNING]) - counts[p.NEW]
        while wanted > 0 and study.promote():  # paused trials first (ASHA with --prune-pause); a promotion
            wanted -= 1                        # moves a trial from finished to queued: room stays as it is
            self.changed_at = time.monotonic()
        if min(room, wanted) > 0:
            study.oracle.ask(min(room, wanted))
            self.changed_at = time.monotonic()
        if self.workers is not None:
            self.workers.check()
        self._note_waiting(counts)
        return False

    def queue_target(self, running: int) -> int:
        """Queued suggestions to keep: ``--queue-len``, or one per idle live worker plus an eighth."""
        if self.study.settings.queue_len > 0:
            return self.study.settings.queue_len
        idle = max(0, self.live - running)
        return max(1, idle + math.ceil(self.live / 8))

    def _live_workers(self) -> int:
        since = time.time() - self.study.settings.lease_seconds
        return sum(1 for w in self.study.store.live_workers(self.study.exp_key, since) if w.state != MASTER_STATE)

    def poll_interval(self) -> float:
        """Quick right after a change (short trials are not held up), quieter while nothing happens."""
        quiet = time.monotonic() - self.changed_at
        return min(POLL_MAX_SECONDS, max(POLL_MIN_SECONDS, quiet / 2))

    def _note_waiting(self, counts: dict[str, int]) -> None:
        if time.monotonic() - self.noted_at > WAITING_NOTE_SECONDS:
            print(f"waiting: {counts[p.RUNNING]} running, {counts[p.NEW]} queued, {self.live} live workers "
                  f"({self.study.finished_count()}/{self.study.settings.max_evals} done)", flush=True)
            self.noted_at = time.monotonic()


def run_master(study: Search) -> None:
    count = worker_count(study.settings)
    if count == 0:
        print(workers_wanted_line(study), flush=True)
    Master(study, LocalWorkers(study.settings, study.url, count) if count > 0 else None).run()


def workers_wanted_line(study: Search) -> str:
    """What a master without local workers waits for, and how to start them (the password left out)."""
    from hks.store import PASSWORD_ENV, PASSWORD_FILE_ENV, split_credentials

    url, credentials = split_credentials(study.url)
    command = ["python", "-m", "hks", "worker", "--store", url, "--experiment-name", study.exp_key]
    password = f" with the password in {PASSWORD_ENV} (or {PASSWORD_FILE_ENV})" if credentials.get(
        PASSWORD_ENV) else ""
    return (f"no local workers (--workers 0): trials run on workers started on any machine that reaches the store, "
            f"e.g. {shlex.join(command)}{password}; or pass --workers N to start N here")
