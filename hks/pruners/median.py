"""Median stopping (Google Vizier; Optuna's MedianPruner): stop a trial whose best so far is below
the median of the other trials' best at the same epoch. Checked every epoch from ``min_epochs``."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from hks.pruners.base import Curve, Decision, Pruner, best_until, recorded_at


class MedianPruner(Pruner):
    name = "median"
    default_warmup_trials = 4  # a median of one or two curves is noise

    def decide(self, tid: int, values: Sequence[float], others: Sequence[Curve]) -> Decision:
        epoch = len(values)
        if epoch < self.min_epochs or epoch >= self.epochs:
            return Decision(False)
        rung = epoch - self.min_epochs
        rivals = recorded_at(others, tid, epoch)
        if len(rivals) < self.warmup_trials:
            return Decision(False, rung, reason=f"{len(rivals)} trials recorded at epoch {epoch}, "
                                               f"fewer than {self.warmup_trials}")
        mine, median = best_until(values, epoch), statistics.median(rivals)
        prune = mine < median
        return Decision(prune, rung, reason=f"best {mine:.4f} {'<' if prune else '>='} median {median:.4f} "
                                            f"of {len(rivals)} trials at epoch {epoch}")
