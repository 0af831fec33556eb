"""Asynchronous successive halving (ASHA, Li et al., MLSys 2020).

Rungs at ``min_epochs * eta**k`` epochs (before ``--epochs``). At a rung a trial goes on when its
best so far is in the top ``1/eta`` of what the rung has recorded so far (this trial included);
otherwise it stops there. Asynchronous: it never waits for a rung to fill, so early trials meet
a thin rung (see :func:`hks.pruners.base.halving_decision` for few records and ties).

With ``pause`` (``--prune-pause``) a trial that is not in the top ``n // eta`` of its rung pauses
there instead, with its checkpoint, and :func:`promotion` resumes it once it ranks in the top
``n // eta`` of the filled rung: the paper's promotions. The trials that run on are then chosen
from the whole rung, not from those that came first, whatever order the sampler finds them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hks.pruners.base import FAILED, Curve, Decision, Pruner, best_until, halving_decision, recorded_at, rung_epochs


def asha_decision(tid: int, values: Sequence[float], others: Sequence[Curve], rungs: list[int], eta: int,
                  warmup_trials: int, bracket: int | None = None, pause: bool = False) -> Decision:
    """ASHA's decision over these rungs, against these rivals (Hyperband passes one bracket's)."""
    epoch = len(values)
    if epoch not in rungs:
        return Decision(False, bracket=bracket)
    prune, reason = halving_decision(best_until(values, epoch), recorded_at(others, tid, epoch), eta, warmup_trials,
                                     keep_best=not pause)
    return Decision(prune, rungs.index(epoch), bracket, f"epoch {epoch}: {reason}", pause=prune and pause)


def promotion(curves: Sequence[Curve], paused: Mapping[int, int], rungs: Sequence[int], eta: int,
              final: bool = False) -> int | None:
    """The paused trial to resume next, or None: highest rung first, one waiting at a rung (``paused``:
    tid -> the epoch it paused at) that ranks in the top ``n // eta`` of the ``n`` trials recorded
    there (ties: the older trial), as :func:`asha_decision` with ``pause`` would let it go on.

    ``final`` (every trial has run as far as it may): a rung keeps its best even when ``n < eta``, as
    ASHA without pauses does, so that a search whose top rung stayed thin still trains a trial to
    the end."""
    for rung in sorted(rungs, reverse=True):
        recorded = sorted((-best_until(c.values, rung), c.tid) for c in curves
                          if c.state != FAILED and len(c.values) >= rung)
        keep = max(1, len(recorded) // eta) if final else len(recorded) // eta
        for _, tid in recorded[:keep]:
            if paused.get(tid) == rung:
                return tid
    return None


class AshaPruner(Pruner):
    name = "asha"

    def __init__(self, epochs: int, min_epochs: int = 1, reduction_factor: int = 3, warmup_trials: int = 0,
                 pause: bool = False) -> None:
        super().__init__(epochs, min_epochs, reduction_factor, warmup_trials)
        self.pause = pause

    @property
    def rungs(self) -> list[int]:
        return rung_epochs(self.min_epochs, self.eta, self.epochs)

    def decide(self, tid: int, values: Sequence[float], others: Sequence[Curve]) -> Decision:
        return asha_decision(tid, values, others, self.rungs, self.eta, self.warmup_trials, pause=self.pause)

    def promotion(self, curves: Sequence[Curve], paused: Mapping[int, int], final: bool = False) -> int | None:
        """The paused trial to resume next (None without ``pause``); see :func:`promotion`."""
        return promotion(curves, paused, self.rungs, self.eta, final) if self.pause else None

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
