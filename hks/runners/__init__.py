"""Runners decide how trials run: in this process (:mod:`.in_process`), or on workers that a
master keeps supplied through the store (:mod:`.master`, with :mod:`hks.worker` on the other side).

A runner drives a :class:`Search` (what :class:`hks.study.Study` is), so it needs nothing from the
study module itself.
"""

from __future__ import annotations

from typing import Any, Protocol

from hks.config import Settings
from hks.oracle import Oracle
from hks.store import protocol as p


class Search(Protocol):
    """What a runner reads and calls of a search."""

    settings: Settings
    store: p.JobStore
    experiment: p.Experiment
    oracle: Oracle
    space: Any
    objective: Any
    url: str

    @property
    def exp_key(self) -> str: ...

    def sync(self) -> bool:
        """Read what changed in the store and announce finished trials; True when anything changed."""

    def finished_count(self) -> int: ...

    def trial_started(self, job: p.Job) -> None: ...
