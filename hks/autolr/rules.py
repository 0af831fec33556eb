"""autoHyper's learning-rate scan: which learning rate to try next, and when to stop.

Tuli, Hosseini & Plataniotis, "Towards Robust and Automatic Hyper-Parameter Tunning" (autoHyper,
2021). The response Z(lr) (fraction of zero knowledge gain, see :mod:`hks.autolr.knowledge_gain`)
falls from 1 (nothing learned) to 0 (every layer learns) as the learning rate grows; autoHyper
tracks the smallest learning rate at which Z has saturated to zero. It walks a geometric grid
(K points between a low and a high end) upwards and applies these rules after each trial:

* ``all-zero``   Z == 1: nothing learns at this rate; raise the low end fivefold and restart.
* ``early-cross`` the very first trial already has Z < 0.5: the grid starts too high; divide
  the low end by ten and restart.
* ``saturated``  Z == 0 past the grid start: zoom into [lr_{i-2}, lr_{i-1}] (the rates just below).
* ``plateau``    the rate of change zeta = (prod of this grid's Z values) ** 0.8 fell below
  ``min_delta``: Z has flattened near zero; zoom into [lr_{i-2}, lr_i].
* ``advance``    otherwise, try the next grid point. Past the last one (``end-reached``) the grid
  is extended to [lr_{K-2}, 1.5 lr_{K-1}].

The scan stops when the grid's span falls below ``lr_delta`` (``converged``: the high end is the
answer) or after ``max_trials`` trainings (``trial-cap``). Learning rates already measured are
not trained again. This module is pure: the caller supplies ``evaluate(lr) -> Z``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hks.errors import ConfigError

DECISIONS = ("advance", "all-zero", "early-cross", "saturated", "plateau", "end-reached", "chosen")


@dataclass(frozen=True)
class ScanConfig:
    """Parameters of the scan; the defaults are the paper's."""

    min_lr: float = 1e-4
    max_lr: float = 0.1
    num_lrs: int = 20
    max_trials: int = 50
    min_delta: float = 5e-3
    power: float = 0.8
    lr_delta: float = 3e-5
    early_cross: float = 0.5

    def validate(self) -> None:
        if not 0 < self.min_lr < self.max_lr or not math.isfinite(self.max_lr):
            raise ConfigError(f"autoHyper needs 0 < --min-lr < --max-lr, got {self.min_lr} and {self.max_lr}")
        if self.num_lrs < 4:
            raise ConfigError(f"--num-lrs must be >= 4 so that zooming narrows the grid, got {self.num_lrs}")
        if self.max_trials < 1:
            raise ConfigError(f"--max-trials must be >= 1, got {self.max_trials}")


@dataclass(frozen=True)
class Step:
    """One row of the scan log: a measured learning rate (or a grid event, ``z`` None) and the decision."""

    lr: float
    z: float | None
    decision: str
    trial: int | None = None  # counted as max_trials counts: earlier runs' trials first
    cached: bool = False


@dataclass
class ScanOutcome:
    chosen_lr: float
    stop_reason: str
    steps: list[Step] = field(default_factory=list)
    trials: int = 0
    measured: dict[float, float] = field(default_factory=dict)


class _Grid:
    """The current geometric grid and the Z values measured on it since it was (re)built."""

    def __init__(self, low: float, high: float, k: int, power: float):
        self.k, self.power = k, power
        self.reset(low, high)

    def reset(self, low: float, high: float) -> None:
        self.low, self.high = float(low), float(high)
        self.points = np.geomspace(self.low, self.high, self.k)
        self.index = 0
        self.history: list[float] = []

    @property
    def lr(self) -> float:
        return float(self.points[self.index])

    def zeta(self) -> float:
        """autoHyper's rate of change: the cumulative product of this grid's Z values, to the power 0.8."""
        return float(np.prod(self.history)) ** self.power


def decide(grid: _Grid, z: float, first_run: bool, config: ScanConfig) -> str:
    """Apply the published rules to the Z just measured at ``grid.lr``; updates the grid."""
    i, pts = grid.index, grid.points
    if math.isclose(z, 1.0, abs_tol=1e-9):
        low = grid.low * 5
        grid.reset(low, grid.high if low < grid.high else low * 1.5)
        return "all-zero"
    if i == 0:
        if first_run and z < config.early_cross:
            grid.reset(grid.low / 10, grid.high)
            return "early-cross"
    elif math.isclose(z, 0.0, abs_tol=1e-9):
        low = pts[max(i - 2, 0)]
        high = pts[i - 1] if pts[i - 1] != low else (low + pts[i]) / 2
        grid.reset(low, high)
        return "saturated"
    elif grid.zeta() < config.min_delta:
        grid.reset(pts[max(i - 2, 0)], pts[i])
        return "plateau"
    grid.index += 1
    return "advance"


def scan(evaluate: Callable[[float], float], config: ScanConfig,
         on_step: Callable[[Step], None] | None = None, known: dict[float, float] | None = None) -> ScanOutcome:
    """Run the scan with ``evaluate(lr) -> Z`` and return the chosen learning rate and the log.

    ``known`` holds Z values measured by an earlier run of the same scan; they are not trained again
    and count towards ``max_trials``, so a resumed scan ends where the uninterrupted one would.
    """
    config.validate()
    known = known or {}
    grid = _Grid(config.min_lr, config.max_lr, config.num_lrs, config.power)
    out = ScanOutcome(chosen_lr=float("nan"), stop_reason="")
    first_run, zoomed = True, False

    def log(step: Step) -> None:
        out.steps.append(step)
        if on_step is not None:
            on_step(step)

    for _ in range(config.max_trials * 50):  # a guard: every rule changes the state, so this is never hit
        if grid.index == grid.k:
            log(Step(float(grid.points[-1]), None, "end-reached"))
            grid.reset(grid.points[-2], grid.points[-1] * 1.5)
            continue
        if grid.high - grid.low < config.lr_delta:
            out.stop_reason = "converged"
            break
        lr = grid.lr
        if lr not in out.measured and lr in known:
            out.measured[lr] = known[lr]
        cached = lr in out.measured
        if not cached:
            if len(known.keys() | out.measured.keys()) >= config.max_trials:  # earlier runs count too
                out.stop_reason = "trial-cap"
                break
            out.measured[lr] = float(evaluate(lr))
            out.trials += 1
        z = out.measured[lr]
        grid.history.append(z)
        index_before = grid.index
        decision = decide(grid, z, first_run, config)
        if index_before > 0:
            first_run = False
        zoomed = zoomed or decision in ("saturated", "plateau")
        log(Step(lr, z, decision, None if cached else len(known.keys() | out.measured.keys()), cached))
    else:
        out.stop_reason = "no-progress"
    out.chosen_lr = choose(out.measured, grid.high, zoomed, out.stop_reason)
    log(Step(out.chosen_lr, None, "chosen"))
    return out


def choose(measured: dict[float, float], high: float, zoomed: bool, stop_reason: str) -> float:
    """The answer: the high end of the zoomed grid; without a zoom, the smallest lr with the lowest Z.

    It is kept within the measured range, so it never exceeds a rate that was actually tried.
    """
    if not measured:
        return high
    lrs = sorted(measured)
    if stop_reason == "converged" or zoomed:
        candidate = high
    else:
        best = min(measured.values())
        candidate = min(lr for lr in lrs if measured[lr] <= best + 1e-12)
    return float(min(max(candidate, lrs[0]), lrs[-1]))
