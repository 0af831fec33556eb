"""What a report shows: a snapshot of a search's trial records at one moment.

Finished trials are result dicts (:mod:`hks.results`; ``status`` ``ok``, ``fail`` or ``pruned``);
queued and running trials are :class:`PendingTrial` records with their per-epoch metrics so far. The
budget, the start time and whether the search is over let the page say how far it has gone, estimate
the time left, and decide whether to keep reloading itself. Sources (:mod:`hks.report.sources`) build
snapshots; :func:`hks.report.write_report` draws them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

QUEUED = "queued"
RUNNING = "running"


@dataclass
class PendingTrial:
    """A trial not finished yet: queued (suggested, not started) or running on a worker."""

    tid: int
    state: str  # QUEUED or RUNNING
    point: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    started_at: float | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)  # one dict per finished epoch, newest last

    @property
    def epoch(self) -> int:
        return int(self.metrics[-1].get("epoch", len(self.metrics))) if self.metrics else 0

    @property
    def val_accuracy(self) -> float | None:
        value = self.metrics[-1].get("val_fine_accuracy") if self.metrics else None
        return float(value) if isinstance(value, (int, float)) else None


@dataclass
class Snapshot:
    """A search as it stands: finished results, pending trials, budget and whether it is over."""

    results: list[dict[str, Any]]
    pending: list[PendingTrial] = field(default_factory=list)
    budget: int | None = None
    started_at: float | None = None
    finished: bool = True
    experiment: str = ""
    dataset: str = ""
    taken_at: float = field(default_factory=time.time)

    @property
    def running(self) -> list[PendingTrial]:
        return [p for p in self.pending if p.state == RUNNING]

    @property
    def queued(self) -> list[PendingTrial]:
        return [p for p in self.pending if p.state == QUEUED]

    def seconds_left(self) -> float | None:
        """Time left at the rate trials finished so far (parallel workers included), or None."""
        done = len(self.results)
        if not self.budget or not self.started_at or done == 0 or self.finished:
            return None
        elapsed = self.taken_at - self.started_at
        return max(self.budget - done, 0) * elapsed / done if elapsed > 0 else None


def as_snapshot(results: Sequence[dict[str, Any]] | Snapshot, **fields: Any) -> Snapshot:
    """A snapshot from a finished search's results (what search drivers pass), or the snapshot itself."""
    if isinstance(results, Snapshot):
        return results
    return Snapshot(list(results), **fields)
