"""bench/pruning_replay.py: measured curves replayed through the real pruners, as a sequential search."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pruning_replay import main, patience_cut, pruner_of, replay  # noqa: E402


def test_patience_cut_ends_a_curve_after_patience_epochs_without_a_new_best():
    assert patience_cut([0.1, 0.3, 0.2, 0.25, 0.28, 0.4], 3) == [0.1, 0.3, 0.2, 0.25, 0.28]
    assert patience_cut([0.1, 0.2, 0.3], 3) == [0.1, 0.2, 0.3]


def test_asha_replay_stops_the_slow_starter_at_the_first_rung_and_loses_its_final_accuracy():
    leader = [0.30, 0.35, 0.40, 0.41, 0.42, 0.43, 0.44, 0.45, 0.46]
    slow_starter = [0.10, 0.20, 0.35, 0.45, 0.50, 0.55, 0.56, 0.57, 0.60]
    assert replay(pruner_of("none", 9), [leader, slow_starter], patience=3) == (0.60, 18)
    assert replay(pruner_of("asha:3:1", 9), [leader, slow_starter], patience=3) == (0.46, 10)  # stopped at epoch 1
    # Rungs at 2 and 6: the early leader goes on at epoch 2, then stops at epoch 6, behind the slow starter.
    assert replay(pruner_of("asha:3:2", 9), [slow_starter, leader], patience=3) == (0.60, 15)


def test_the_table_reports_each_pruner_and_refuses_too_few_curves(tmp_path, capsys):
    curves = [[0.1 * (i % 5) + 0.01 * e for e in range(1, 10)] for i in range(8)]
    run = tmp_path / "run.json"
    run.write_text(json.dumps([{"prune": "none", "curves": curves}, {"prune": "asha", "curves": curves[:2]}]))
    assert main([str(run), "--trials", "6", "--draws", "20", "--pruners", "asha:3:1,median"]) == 0
    out = capsys.readouterr().out
    assert "8 measured curves" in out and "asha:3:1" in out and "median" in out
    with pytest.raises(SystemExit) as exit_:
        main([str(run), "--trials", "9"])
    assert exit_.value.code == 2
    assert "8 unpruned curves" in capsys.readouterr().err


def test_pruning_bench_summarizes_saved_searches_and_skips_fields_it_does_not_know(tmp_path, capsys):
    from bench.pruning import main as bench_main

    def run(prune, seed, best, epochs):
        return {"prune": prune, "seed": seed, "best": best, "trial_epochs": epochs, "pruned": 0, "wall": 100.0,
                "progress": [[50.0, best]], "curves": [], "loss_curves": [[2.0]]}  # loss_curves: a newer field

    saved = tmp_path / "runs.json"
    saved.write_text(json.dumps([run("none", 0, 0.50, 600), run("asha", 0, 0.48, 200),
                                 run("none", 1, 0.52, 600), run("asha", 1, 0.52, 220)]))
    assert bench_main(["--summarize", str(saved)]) == 0
    none, asha = capsys.readouterr().out.splitlines()[1:]
    assert none.split()[:2] == ["none", "0.5100"] and asha.split()[:2] == ["asha", "0.5000"]
    assert asha.split()[5:7] == ["210.0", "0.35"]  # trial-epochs, and their ratio to 600


def test_paused_asha_resumes_the_best_of_a_full_rung_where_stopping_keeps_whoever_came_first():
    from bench.pruning_replay import replay_paused, replayer

    early = [0.30, 0.31, 0.32, 0.33, 0.34, 0.35, 0.36, 0.37, 0.40]  # first at the 3-epoch rung
    better = [0.30, 0.33, 0.35, 0.40, 0.45, 0.50, 0.55, 0.58, 0.60]
    weak = [0.05, 0.08, 0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16]
    # Stops: the first trial meets an empty rung and runs on; the better one is in the top 1 of 2 and runs on.
    assert replay(pruner_of("asha:3:3", 9), [early, better, weak], patience=3) == (0.60, 9 + 9 + 3)
    # Pauses: all three wait at epoch 3, then only the top floor(3 / 3) = 1 of them is resumed.
    assert replay_paused([early, better, weak], patience=3, eta=3, rungs=[3], epochs=9) == (0.60, 3 + 9 + 3)
    assert replayer("pause:3:3", 9)([early, better, weak], 3) == (0.60, 15)
    # Two of them fill no rung: nobody is resumed until nothing else is left; then the thin rung keeps its best.
    assert replay_paused([early, better], patience=3, eta=3, rungs=[3], epochs=9) == (0.60, 3 + 9)


def test_a_trial_that_ends_on_a_rung_counts_there_and_is_not_resumed():
    from bench.pruning_replay import replay_paused

    ends_at_3 = [0.50, 0.40, 0.45, 0.44, 0.43, 0.42]  # patience 2 ends it after epoch 3
    rising = [0.10, 0.20, 0.30, 0.35, 0.40, 0.45]
    flat = [0.05, 0.05, 0.06, 0.06, 0.07, 0.07]
    best, epochs = replay_paused([ends_at_3, rising, flat], patience=2, eta=3, rungs=[3], epochs=6)
    assert (best, epochs) == (0.50, 3 + 3 + 3)  # it holds the rung's one slot; the others wait


def test_optunas_median_pruner_as_shipped_stops_a_trial_below_the_median_once_five_have_completed():
    from bench.pruning_replay import optuna_pruner, replay_optuna, replayer

    good = [[0.30 + 0.01 * i + 0.02 * e for e in range(6)] for i in range(5)]
    bad = [0.05, 0.50, 0.60, 0.70, 0.80, 0.90]  # would have been the best, had it gone on
    assert replay_optuna(optuna_pruner("median"), [*good, bad], patience=3) == (max(good[-1]), 5 * 6 + 1)
    assert replay_optuna(optuna_pruner("median"), [bad, *good], patience=3) == (0.90, 6 * 6)  # no median yet
    assert replayer("optuna-median", 6)([*good, bad], 3) == (max(good[-1]), 5 * 6 + 1)  # the spec names it


def test_the_live_optuna_arm_reports_every_epoch_and_tells_optuna_which_trials_its_pruner_stopped(monkeypatch):
    """The glue of bench/pruning.py's Optuna arm (the training itself is run_trial's, tested elsewhere): each
    epoch reaches Optuna's MedianPruner as shipped, a pruned trial is told as pruned and scores nothing."""
    import optuna

    import hks.objective
    from bench.pruning import pruner_settings, run_optuna_search, small_space
    from hks.config import Settings
    from hks.pruners import MONITOR

    curves = [[0.30 + 0.01 * tid + 0.02 * e for e in range(4)] for tid in range(5)] + [[0.05, 0.9, 0.9, 0.9]]
    points = []

    def scripted_trial(point, settings, *, tid, should_prune, **_):
        points.append(point)
        seen = []
        for epoch, value in enumerate(curves[tid]):
            seen.append(value)
            if should_prune(epoch, {MONITOR: value}):
                return {"status": "pruned", "history": {MONITOR: seen}}
        return {"status": "ok", "fine_best_accuracy": max(seen), "history": {MONITOR: seen}}

    studies = []
    create_study = optuna.create_study
    monkeypatch.setattr(optuna, "create_study", lambda **kw: studies.append(create_study(**kw)) or studies[-1])
    monkeypatch.setattr(hks.objective, "run_trial", scripted_trial)
    monkeypatch.setattr(hks.objective, "splits_for", lambda settings: None)
    settings = pruner_settings(Settings(max_evals=6, algo="tpe"), "optuna-median", seed=3)
    run = run_optuna_search(settings, small_space(), "optuna-median")
    assert settings.prune == "none"  # hks's own pruner stays out of the Optuna arm
    assert (run.prune, run.seed, run.pruned) == ("optuna-median", 3, 1)
    assert run.best == max(curves[4]) and run.trial_epochs == 5 * 4 + 1  # the last stopped after its first epoch
    states = [t.state for t in studies[0].trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 5 + [optuna.trial.TrialState.PRUNED]
    assert studies[0].trials[0].intermediate_values == dict(enumerate(curves[0]))
    assert len({json.dumps(p, sort_keys=True, default=str) for p in points}) == 6  # Optuna's TPE drew each point
    assert all(p["batch_size"] == 64 and 0.05 <= p["lr_rate_mult"] <= 20.0 for p in points)
