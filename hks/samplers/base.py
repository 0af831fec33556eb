"""What a sampler is: given the trial records so far, propose the points of new trial ids.

Samplers read trials only as records of the storage (finished, failed and pending alike), so any
sampler works with any storage and any runner. Randomness comes only from
:func:`hks.seeding.trial_seed` (search seed, trial id), so the same records and ids always give
the same suggestions: a resumed search suggests what an uninterrupted one would have.
"""

from __future__ import annotations

import abc
import math
from typing import Any

from hks.store import protocol as p

PENDING_STATES = (p.NEW, p.RUNNING)


class Sampler(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    def suggest(self, history: list[p.Job], tids: list[int]) -> list[dict[str, Any]]:
        """One job document (hyperopt ``spec`` and ``misc`` with ``vals``/``idxs``) per new trial id.

        ``history`` holds every record of the experiment, pending ones included: a sampler must
        not propose the same point to two workers asking at once.
        """


def finished(history: list[p.Job]) -> list[p.Job]:
    return [job for job in history if job.state in p.FINAL_STATES]


def pending(history: list[p.Job]) -> list[p.Job]:
    return [job for job in history if job.state in PENDING_STATES]


def finite_loss(job: p.Job) -> float | None:
    """The loss of a finished trial that produced one (ok or pruned), else None."""
    result = job.result or {}
    loss = result.get("loss")
    if job.state != p.DONE or result.get("status") == "fail" or not isinstance(loss, (int, float)):
        return None
    return float(loss) if math.isfinite(loss) else None


def scored(history: list[p.Job]) -> list[p.Job]:
    """Finished trials with a finite loss: what a model of the objective can learn from."""
    return [job for job in history if finite_loss(job) is not None]
