"""run_trial's should_prune hook on real tiny training: a pruned trial keeps its partial history."""

import json
from pathlib import Path

import pytest

from hks import objective, pruners
from hks.pruners import Curve, Decision
from hks.space import demo_point

SMALL = {**demo_point(), "conv_hiddn_units_mult": 0.2, "fc_units_1_mult": 0.05, "residual": None,
         "first_conv": None, "batch_size": 64, "use_BN": False}


@pytest.fixture
def settings(tiny_settings, cifar10_dir):
    return tiny_settings.replace(dataset="cifar10", data_dir=str(cifar10_dir), dataset_size=500, epochs=3,
                                 patience=3, prune="asha", prune_warmup_trials=2)


def test_asha_prunes_a_trial_behind_its_rung_with_its_partial_history(settings):
    strong = [Curve(t, pruners.FINISHED, (0.99, 0.99, 0.99)) for t in (1, 2)]
    asked = []

    def others():
        asked.append(len(asked))
        return strong

    hook = pruners.epoch_hook(pruners.make_pruner(settings), 7, others)
    result = objective.run_trial(SMALL, settings, tid=7, verbose=False, should_prune=hook)
    assert result["status"] == "pruned" and result["pruned"] is True
    assert result["pruned_at_epoch"] == 1 and result["rung"] == 0 and asked == [0]
    assert "2 of 2 trials better" in result["prune_reason"]
    history = result["history"]
    assert len(history["val_fine_accuracy"]) == 1 and result["epochs_run"] == 1
    assert result["fine_best_accuracy"] == history["val_fine_accuracy"][0] == -result["loss"]
    objective.save_result(result, settings.results_dir)  # what the runner does once the store accepted it
    saved = [json.loads(p.read_text()) for p in Path(settings.results_dir).glob("*.txt.json")]
    assert [r["status"] for r in saved] == ["pruned"]
    view = pruners.sampler_result(result, settings)
    assert view["status"] == "ok" and view["loss"] > 0


def test_pruning_composes_with_early_stopping(settings):
    frozen = {**SMALL, "lr_rate_mult": 1e-9}  # cannot learn: early stopping ends it after patience
    calls = []

    def never(epoch, logs):
        calls.append((epoch, "val_fine_accuracy" in logs))
        return Decision(False)

    result = objective.run_trial(frozen, settings.replace(epochs=6, patience=1), verbose=False, should_prune=never)
    assert result["status"] == "ok" and "pruned" not in result
    assert result["epochs_run"] == 2 and calls == [(0, True), (1, True)]

    stop_second = objective.run_trial(SMALL, settings, tid=3, verbose=False,
                                      should_prune=lambda epoch, logs: epoch == 1)
    assert stop_second["status"] == "pruned" and stop_second["pruned_at_epoch"] == 2
    assert stop_second["rung"] is None and len(stop_second["history"]["loss"]) == 2
