"""Asynchronous successive halving (ASHA, Li et al., MLSys 2020).

Rungs at ``min_epochs * eta**k`` epochs (before ``--epochs``). At a rung a trial goes on when its
best so far is in the top ``1/eta`` of what the rung has recorded so far (this trial included);
otherwise it stops there. Asynchronous: it never waits for a rung to fill, so early trials meet
a thin rung (see :func:`hks.pruners.base.halving_decision` for few records and ties).
"""

from __future__ import annotations

from collections.abc import Sequence

from hks.pruners.base import Curve, Decision, Pruner, best_until, halving_decision, recorded_at, rung_epochs


def asha_decision(tid: int, values: Sequence[float], others: Sequence[Curve], rungs: list[int], eta: int,
                  warmup_trials: int, bracket: int | None = None) -> Decision:
    """ASHA's decision over these rungs, against these rivals (Hyperband passes one bracket's)."""
    epoch = len(values)
    if epoch not in rungs:
        return Decision(False, bracket=bracket)
    prune, reason = halving_decision(best_until(values, epoch), recorded_at(others, tid, epoch), eta, warmup_trials)
    return Decision(prune, rungs.index(epoch), bracket, f"epoch {epoch}: {reason}")


class AshaPruner(Pruner):
    name = "asha"

    @property
    def rungs(self) -> list[int]:
        return rung_epochs(self.min_epochs, self.eta, self.epochs)

    def decide(self, tid: int, values: Sequence[float], others: Sequence[Curve]) -> Decision:
        return asha_decision(tid, values, others, self.rungs, self.eta, self.warmup_trials)

    def budget_warning(self, max_evals: int) -> str | None:
        """Warns when the last rung lets fewer than ``eta`` trials (of trials in random order) run to
        the end: the best model then rests on one or two trials, and a lucky early one holds every
        rung (bench/pruning.py lost 10 points on one seed of six so, with 30 trials and rungs 1, 3, 9)."""
        rungs = self.rungs
        if not rungs:
            return None
        kept = self.eta ** len(rungs)  # one trial in this many passes every rung
        if max_evals >= self.eta * kept:
            return None
        return (f"--prune asha with rungs at {', '.join(map(str, rungs))} epochs lets about 1 trial in {kept} run to "
                f"the end, {max_evals / kept:.1f} of --max-evals {max_evals}, and the best model comes from those; "
                f"use --max-evals {self.eta * kept} or more, a higher --prune-min-epochs, or fewer --epochs")
