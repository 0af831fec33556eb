"""What every pruner sees and answers: learning curves in, a stop/continue decision out.

Pruners are pure: they read the asking trial's per-epoch validation fine accuracy and small
:class:`Curve` records of the other trials (from the job store, or from memory in process) and
return a :class:`Decision`. No I/O and no clock, so a restarted master or worker, handed the same
records, computes the same rungs, brackets and decisions.

Conventions shared by all pruners:

* epochs count from 1; ``values[e - 1]`` is the accuracy after epoch ``e``;
* a trial's figure at epoch ``e`` is its best accuracy up to ``e`` (what early stopping keeps);
  non-finite accuracies count as 0;
* failed trials and trials that have not reached ``e`` are ignored at ``e``; finished, running
  and pruned trials count with what they recorded (decisions are asynchronous);
* with fewer than ``warmup_trials`` other trials recorded at ``e`` the trial goes on;
* ties go on: only strictly better trials count against the asking one;
* nothing is pruned at the last epoch (``--epochs``): it would save nothing.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

FINISHED = "finished"
RUNNING = "running"
PRUNED = "pruned"
FAILED = "failed"
CURVE_STATES = (FINISHED, RUNNING, PRUNED, FAILED)


@dataclass(frozen=True)
class Curve:
    """One other trial as a pruner sees it: its id, state and per-epoch validation fine accuracy."""

    tid: int
    state: str
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.state not in CURVE_STATES:
            raise ValueError(f"curve state {self.state!r} is not one of {', '.join(CURVE_STATES)}")


@dataclass(frozen=True)
class Decision:
    """Stop or go on; truthy when the trial should stop. ``rung`` is the index of the check that
    decided (None between rungs), ``bracket`` Hyperband's bracket of the trial; ``pause``: the stop
    is a pause (ASHA with ``--prune-pause``): the trial may be resumed from its checkpoint later."""

    prune: bool
    rung: int | None = None
    bracket: int | None = None
    reason: str = ""
    pause: bool = False

    def __bool__(self) -> bool:
        return self.prune


def best_until(values: Sequence[float], epoch: int) -> float | None:
    """Best accuracy over the first ``epoch`` epochs, or None when fewer were recorded."""
    if epoch < 1 or len(values) < epoch:
        return None
    return max(v if math.isfinite(v) else 0.0 for v in values[:epoch])


def recorded_at(others: Iterable[Curve], tid: int, epoch: int) -> list[float]:
    """The figures at ``epoch`` of every other non-failed trial that reached it."""
    out = []
    for curve in others:
        if curve.tid == tid or curve.state == FAILED:
            continue
        value = best_until(curve.values, epoch)
        if value is not None:
            out.append(value)
    return out


def rung_epochs(first: int, eta: int, epochs: int) -> list[int]:
    """Rungs at ``first * eta**k`` epochs, those before the last epoch only."""
    rungs, epoch = [], first
    while epoch < epochs:
        rungs.append(epoch)
        epoch *= eta
    return rungs


def halving_decision(mine: float, rivals: Sequence[float], eta: int, warmup_trials: int,
                     keep_best: bool = True) -> tuple[bool, str]:
    """Successive halving at one rung: go on when in the top ``1/eta`` of the rung's records.

    With ``n`` records (this trial included) the top ``max(1, n // eta)`` go on, so with few
    records only the best one does (``keep_best``; without it the top ``n // eta``, none of a thin
    rung: a paused trial waits for the rung to fill); fewer than ``warmup_trials`` rivals: go on.
    """
    if len(rivals) < warmup_trials:
        return False, f"{len(rivals)} trials recorded at this rung, fewer than {warmup_trials}"
    keep = (len(rivals) + 1) // eta
    keep = max(1, keep) if keep_best else keep
    better = sum(1 for value in rivals if value > mine)
    return better >= keep, f"{better} of {len(rivals)} trials better, top {keep} go on"


class Pruner(abc.ABC):
    """Decides, after each epoch of a trial, whether to stop it."""

    name: str = ""
    pause = False  # whether a stop only pauses the trial, which :meth:`promotion` may resume
    default_warmup_trials = 0  # --prune-warmup-trials auto: halving needs none (a thin rung keeps its best)

    def __init__(self, epochs: int, min_epochs: int = 1, reduction_factor: int = 3, warmup_trials: int = 0) -> None:
        self.epochs = epochs
        self.min_epochs = min_epochs
        self.eta = reduction_factor
        self.warmup_trials = warmup_trials

    @abc.abstractmethod
    def decide(self, tid: int, values: Sequence[float], others: Sequence[Curve]) -> Decision:
        """``values``: the asking trial's accuracies so far (its last epoch is the one just run)."""

    def budget_warning(self, max_evals: int) -> str | None:
        """A line saying why ``max_evals`` trials are too few for this pruner, or None."""
        return None

    def promotion(self, curves: Sequence[Curve], paused: Mapping[int, int], final: bool = False) -> int | None:
        """The paused trial to resume now (tid), or None; only pruners that pause trials have one.
        ``paused``: tid -> the epoch it waits at; ``final``: nothing else is left to run."""
        return None


class NoPruner(Pruner):
    """``--prune none``: every trial runs to its epochs or its early-stopping patience."""

    name = "none"

    def decide(self, tid: int, values: Sequence[float], others: Sequence[Curve]) -> Decision:
        return Decision(False)
