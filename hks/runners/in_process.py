"""Trials run one after another in this process, through the same worker loop remote workers use.

The store is usually ``results.pkl``: each trial is reserved (marked running, attempt counted,
saved) before it trains, so a process that dies mid-trial leaves a record the next run finds.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hks.runners import Search
from hks.worker import requeue_lost

if TYPE_CHECKING:
    from hks.stopping import Stopper
    from hks.worker import Worker

STOP_DEADLINE_SECONDS = 30.0  # a long epoch: release the trial and exit rather than keep the user waiting


def run_in_process(study: Search) -> None:
    """Suggest, train and record trials until the budget is spent.

    SIGTERM / Ctrl-C stop it at the next safe point (an epoch boundary, between trials), or after
    :data:`STOP_DEADLINE_SECONDS` at the latest (:mod:`hks.stopping`); the running trial is released,
    not counted as an attempt."""
    from hks.stopping import Stopper
    from hks.worker import Worker

    settings = study.settings
    stopper = Stopper(deadline=STOP_DEADLINE_SECONDS, immediate=False)
    with _installed(stopper):
        worker = Worker(study.store, study.experiment, settings, study.space, study.objective,
                        worker_id=f"local:{os.getpid()}", oracle=study.oracle, quiet=True, stopper=stopper)
        _serve(study, worker)


@contextlib.contextmanager
def _installed(stopper: Stopper) -> Iterator[None]:
    """The stopper's SIGTERM / SIGINT handlers while the search runs (main thread only)."""
    try:
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        stopper.install()
    except ValueError:  # not the main thread: signals stay with whoever owns them
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _serve(study: Search, worker: Worker) -> None:
    settings = study.settings
    while True:
        worker.stopper.check()
        requeue_lost(study.store, study.exp_key, settings)
        study.sync()
        if study.finished_count() >= settings.max_evals and not study.promote(final=True):
            return
        job = study.store.reserve(study.exp_key, worker.worker_id, settings.lease_seconds)
        if job is None:
            if not study.promote():  # a paused trial goes before a new one (ASHA with --prune-pause)
                study.oracle.ask(1)
            continue
        study.trial_started(job)
        worker.run_job(job)
