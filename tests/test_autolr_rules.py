"""autoHyper's decision rules on synthetic Z(lr) responses (no training)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hks.autolr.rules import DECISIONS, ScanConfig, scan
from hks.errors import ConfigError


def sigmoid_response(transition: float):
    """Z falls from 1 to 0 around ``transition``: exactly 1 far below it, exactly 0 from 3x above it."""
    def z(lr: float) -> float:
        if lr <= transition / 30:
            return 1.0
        if lr >= 3 * transition:
            return 0.0
        return 1.0 / (1.0 + math.exp(6.0 * math.log10(lr / transition) + 1.0))
    return z


class Recorder:
    def __init__(self, response):
        self.response = response
        self.calls: list[float] = []

    def __call__(self, lr: float) -> float:
        self.calls.append(lr)
        return self.response(lr)


@pytest.mark.parametrize("transition", [3e-4, 1e-3, 3e-3, 2e-2])
def test_converges_where_z_saturates(transition):
    evaluate = Recorder(sigmoid_response(transition))
    out = scan(evaluate, ScanConfig(max_trials=60))
    assert out.stop_reason == "converged"
    assert {s.decision for s in out.steps} <= set(DECISIONS)
    assert out.steps[-1].decision == "chosen" and out.steps[-1].lr == out.chosen_lr
    # The answer is where Z has (nearly) reached zero, not far above it and not in the region still at Z ~ 1.
    assert evaluate.response(out.chosen_lr) < 0.25
    assert transition / 2 < out.chosen_lr < 3 * transition
    assert len(evaluate.calls) == len(set(evaluate.calls)) == out.trials  # no learning rate trained twice
    assert min(evaluate.calls) <= out.chosen_lr <= max(evaluate.calls)


def test_trial_cap_stops_the_scan():
    evaluate = Recorder(sigmoid_response(2e-2))
    out = scan(evaluate, ScanConfig(max_trials=7))
    assert out.stop_reason == "trial-cap"
    assert out.trials == len(evaluate.calls) == 7
    assert min(evaluate.calls) <= out.chosen_lr <= max(evaluate.calls)


def test_all_zero_raises_the_low_end_fivefold():
    evaluate = Recorder(lambda lr: 1.0 if lr < 1e-3 else 0.0)
    out = scan(evaluate, ScanConfig(min_lr=1e-4, max_lr=0.1, num_lrs=10, max_trials=3))
    assert out.steps[0].decision == "all-zero"
    assert evaluate.calls[:3] == pytest.approx([1e-4, 5e-4, 2.5e-3])


def test_early_cross_lowers_the_grid_tenfold():
    evaluate = Recorder(sigmoid_response(1e-5))
    out = scan(evaluate, ScanConfig(min_lr=1e-4, max_lr=0.1, num_lrs=20, max_trials=30))
    assert out.steps[0].decision == "early-cross"
    assert evaluate.calls[1] == pytest.approx(1e-5)
    assert out.chosen_lr < 1e-4


def test_saturation_zooms_into_the_rates_just_below():
    grid = np.geomspace(1e-4, 0.1, 20)
    evaluate = Recorder(lambda lr: 0.0 if lr >= grid[6] else 0.9)
    out = scan(evaluate, ScanConfig(max_trials=8))
    saturated = next(i for i, s in enumerate(out.steps) if s.decision == "saturated")
    assert out.steps[saturated].lr == pytest.approx(grid[6])
    assert out.steps[saturated + 1].lr == pytest.approx(grid[4])  # the new grid spans [lr_{i-2}, lr_{i-1}]
    assert max(s.lr for s in out.steps[saturated + 1:-1]) <= grid[5] * (1 + 1e-9)


def test_known_measurements_are_not_trained_again():
    first = scan(Recorder(sigmoid_response(1e-3)), ScanConfig(max_trials=60))
    again = Recorder(sigmoid_response(1e-3))
    second = scan(again, ScanConfig(max_trials=60), known=first.measured)
    assert again.calls == [] and second.trials == 0
    assert second.chosen_lr == first.chosen_lr
    assert all(s.cached for s in second.steps if s.z is not None)


def test_a_resumed_scan_ends_where_the_uninterrupted_one_does():
    config = ScanConfig(max_trials=12)
    whole = Recorder(sigmoid_response(2e-3))
    uninterrupted = scan(whole, config)
    interrupted = {lr: whole.response(lr) for lr in whole.calls[:5]}  # the first run died after 5 trials
    rest = Recorder(sigmoid_response(2e-3))
    resumed = scan(rest, config, known=interrupted)
    assert rest.calls == whole.calls[5:]
    numbers = [s.trial for s in resumed.steps if s.trial is not None]
    assert numbers == list(range(6, 6 + len(numbers))) and numbers[-1] <= config.max_trials  # after the first run's 5
    assert resumed.chosen_lr == uninterrupted.chosen_lr and resumed.stop_reason == uninterrupted.stop_reason


@pytest.mark.parametrize("changes, message", [
    ({"num_lrs": 3}, "--num-lrs"),
    ({"min_lr": 0.1, "max_lr": 0.01}, "--min-lr"),
    ({"min_lr": 0.0}, "--min-lr"),
    ({"max_trials": 0}, "--max-trials"),
])
def test_bad_scan_settings_are_one_line_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        scan(lambda lr: 0.5, ScanConfig(**changes))
