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
