"""Hyperband (Li et al., JMLR 2018) as asynchronous brackets of ASHA.

Bracket ``s`` starts pruning at ``min_epochs * eta**s`` epochs and halves at every ``eta``-fold
epoch count after it, up to ``--epochs``: bracket 0 is the most aggressive, the last may never
prune. Brackets whose first rung would exceed ``--epochs`` do not exist, so the budget in epochs
always respects ``--epochs``. A trial's bracket is a pure function of its id: a fixed,
interleaved sequence in which each bracket appears as often as Hyperband would give it trials
(``ceil(S / (a + 1) * eta**a)`` for a bracket with ``a`` rungs, of ``S`` brackets), indexed by ``tid``. Each
trial competes only with the trials of its own bracket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property

from hks.pruners.asha import asha_decision
from hks.pruners.base import Curve, Decision, Pruner, rung_epochs


def bracket_count(min_epochs: int, eta: int, epochs: int, wanted: int) -> int:
    """Brackets whose first rung fits within ``epochs`` (all of them when ``wanted`` is 0)."""
    fitting = 1
    while min_epochs * eta ** fitting <= epochs:
        fitting += 1
    return fitting if wanted <= 0 else min(wanted, fitting)


def bracket_sequence(weights: Sequence[int]) -> list[int]:
    """Each bracket ``weights[s]`` times, spread evenly: ``[0, 1, 0, 2, 0, 1, ...]``."""
    slots = sorted(((j + 0.5) / w, s) for s, w in enumerate(weights) for j in range(w))
    return [s for _, s in slots]


class HyperbandPruner(Pruner):
    name = "hyperband"

    def __init__(self, epochs: int, min_epochs: int = 1, reduction_factor: int = 3, warmup_trials: int = 0,
                 brackets: int = 0) -> None:
        super().__init__(epochs, min_epochs, reduction_factor, warmup_trials)
        self.n_brackets = bracket_count(min_epochs, reduction_factor, epochs, brackets)

    @cached_property
    def bracket_rungs(self) -> list[list[int]]:
        return [rung_epochs(self.min_epochs * self.eta ** s, self.eta, self.epochs) for s in range(self.n_brackets)]

    @cached_property
    def sequence(self) -> list[int]:
        weights = [math.ceil(self.n_brackets / (len(rungs) + 1) * self.eta ** len(rungs))
                   for rungs in self.bracket_rungs]
        return bracket_sequence(weights)

    def bracket_of(self, tid: int) -> int:
        return self.sequence[tid % len(self.sequence)]

    def decide(self, tid: int, values: Sequence[float], others: Sequence[Curve]) -> Decision:
        bracket = self.bracket_of(tid)
        rivals = [curve for curve in others if self.bracket_of(curve.tid) == bracket]
        return asha_decision(tid, values, rivals, self.bracket_rungs[bracket], self.eta, self.warmup_trials,
                             bracket)
