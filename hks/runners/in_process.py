"""Trials run one after another in this process, through the same worker loop remote workers use.

The store is usually ``results.pkl``: each trial is reserved (marked running, attempt counted,
saved) before it trains, so a process that dies mid-trial leaves a record the next run finds.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from hks.store import protocol as p

if TYPE_CHECKING:
    from hks.study import Study


def run_in_process(study: Study) -> None:
    """Suggest, train and record trials until the budget is spent."""
    from hks.worker import Worker

    settings = study.settings
    worker = Worker(study.store, study.experiment, settings, study.space, study.objective,
                    worker_id=f"local:{os.getpid()}", oracle=study.oracle, quiet=True)
    while True:
        study.store.requeue_expired(study.exp_key, settings.max_attempts)
        study.sync()
        if study.finished_count() >= settings.max_evals:
            return
        job = study.store.reserve(study.exp_key, worker.worker_id, settings.lease_seconds)
        if job is None:
            study.oracle.ask(1)
            continue
        study.trial_started(job)
        worker.run_job(job)
        time.sleep(0)  # let the heartbeat thread's last word land before the next reservation
        if job.state == p.RUNNING:
            study.sync()
