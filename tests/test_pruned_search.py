"""Pruning through the whole search: the oracle asks the pruner after every epoch, with the other
trials' curves read from the storage, in process and on workers; a restart keeps the rungs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import objectives_for_tests
import pytest
from distributed_helpers import SPACE
from distributed_helpers import env as child_env
from store_fixtures import postgres_url, unique_exp_key

from hks.config import Settings
from hks.store import open_store
from hks.store import protocol as p
from hks.study import Study

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 9


def _settings(tmp_path, **changes) -> Settings:
    fields = {"space": SPACE, "objective": "tests.objectives_for_tests:learning_curve", "epochs": EPOCHS,
              "algo": "rand", "max_evals": 16, "prune": "asha", "prune_warmup_trials": 2, "plots": False,
              "results_dir": str(tmp_path / "results"), "trials_file": str(tmp_path / "results.pkl"), **changes}
    return Settings(**fields)


def _outcomes(results) -> list[tuple[int, str, int]]:
    return [(r["tid"], r["status"], r.get("pruned_at_epoch") or r["epochs_run"]) for r in results]


def test_an_in_process_search_prunes_at_the_rungs_and_saves_epochs(tmp_path, capsys):
    with Study(_settings(tmp_path), objective=objectives_for_tests.learning_curve) as study:
        results = study.optimize()
    pruned = [r for r in results if r["status"] == "pruned"]
    assert len(results) == 16 and 0 < len(pruned) < 16
    assert {r["pruned_at_epoch"] for r in pruned} <= {1, 3}  # ASHA's rungs: 1 and 3 epochs (eta 3, 9 epochs)
    assert all(r["history"]["val_fine_accuracy"] and len(r["history"]["val_fine_accuracy"]) == r["pruned_at_epoch"]
               for r in pruned)
    assert sum(r.get("pruned_at_epoch") or r["epochs_run"] for r in results) < 16 * EPOCHS
    best = study.best
    assert best["status"] == "ok" and all(best["fine_best_accuracy"] >= r["fine_best_accuracy"] for r in pruned)
    out = capsys.readouterr().out
    assert "pruned at epoch" in out
    assert "warning: --prune asha with rungs at 1, 3 epochs lets about 1 trial in 9 run to the end, 1.8 of " \
           "--max-evals 16" in out  # the search runs all the same


def test_a_resumed_search_makes_the_same_pruning_decisions(tmp_path):
    objective = objectives_for_tests.learning_curve
    settings = _settings(tmp_path)
    with Study(settings.replace(max_evals=8), objective=objective) as study:
        study.optimize()
    with Study(settings, objective=objective) as study:
        resumed = study.optimize()
    straight = _settings(tmp_path / "straight")
    with Study(straight, objective=objective) as study:
        uninterrupted = study.optimize()
    assert _outcomes(resumed) == _outcomes(uninterrupted)


def _search_with_two_workers(tmp_path, kind: str, objective: str, *prune_args: str):
    """``python -m hks search --workers 2`` over 16 trials of a test objective; its output and stored jobs."""
    url = postgres_url() if kind == "postgresql" else f"sqlite:///{tmp_path / 'store.sqlite3'}"
    exp = unique_exp_key("prune")
    args = [sys.executable, "-m", "hks", "search", "--store", url, "--workers", "2", "--experiment-name", exp,
            "--space", SPACE, "--objective", f"tests.objectives_for_tests:{objective}", "--epochs", str(EPOCHS),
            "--algo", "rand", "--max-evals", "16", *prune_args, "--no-plots",
            "--results-dir", str(tmp_path / "results")]
    try:
        done = subprocess.run(args, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        with open_store(url) as store:
            jobs = store.load(exp)
    finally:
        with open_store(url) as store:
            store.delete_experiment(exp)
    assert len(jobs) == 16 and all(j.state == p.DONE for j in jobs)
    return done, jobs


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_two_workers_prune_from_the_curves_in_the_store(tmp_path, kind):
    done, jobs = _search_with_two_workers(tmp_path, kind, "learning_curve", "--prune", "median",
                                          "--prune-warmup-trials", "2")
    pruned = [j for j in jobs if j.result["status"] == "pruned"]
    assert pruned and len(pruned) < 16
    for job in pruned:  # stopped by the pruner, with the epochs it ran stored as its metrics
        assert len(job.metrics) == job.result["pruned_at_epoch"] < EPOCHS
    assert "started 2 local workers" in done.stdout  # which worker takes which instant trial is timing


def _json_results(results_dir: Path) -> list[dict]:
    import json

    return [json.loads(path.read_text()) for path in results_dir.glob("*.txt.json")]


def test_asha_with_pauses_resumes_promoted_trials_and_records_each_trial_once(tmp_path, capsys):
    settings = _settings(tmp_path, objective="tests.objectives_for_tests:fading_curve", prune_pause=True,
                         prune_warmup_trials=0)
    with Study(settings, objective=objectives_for_tests.fading_curve) as study:
        results = {r["tid"]: r for r in study.optimize()}
    # Each trial is worse than all before it, so each new one pauses at epoch 1, and each time rung 1
    # reaches 3k trials the k-th best (trial k - 1) is promoted: trials 0-4 reach rung 3 (16 // 3 = 5).
    # There trial 0 is promoted once 3 trials wait; 5 // 3 = 1, so no other.
    assert sorted(results) == list(range(16))
    assert (results[0]["status"], results[0]["epochs_run"], results[0]["resumed_from_epoch"]) == ("ok", EPOCHS, 3)
    assert len(results[0]["history"]["val_fine_accuracy"]) == EPOCHS  # its whole curve, across two pauses
    for tid in range(1, 5):
        assert (results[tid]["paused"], results[tid]["pruned_at_epoch"], results[tid]["resumed_from_epoch"]) == \
            (True, 3, 1), results[tid]
    for tid in range(5, 16):
        assert (results[tid]["paused"], results[tid]["pruned_at_epoch"], results[tid].get("resumed_from_epoch")) \
            == (True, 1, None), results[tid]
    assert sorted(r["tid"] for r in _json_results(tmp_path / "results")) == list(range(16))  # one JSON per trial
    kept = sorted(path.name for path in (tmp_path / "results" / "checkpoints").glob("*/*"))
    assert kept == sorted(f"trial_{tid + 1}.npz" for tid in range(1, 16))  # the paused trials' only: a longer
    out = capsys.readouterr().out                                         # search may still promote them
    assert out.count("promoted: resumes after epoch 1") == 5 and out.count("promoted: resumes after epoch 3") == 1
    assert "note: 15 paused trials keep their checkpoints in" in out


def test_a_restarted_search_with_pauses_promotes_the_trials_paused_before(tmp_path):
    settings = _settings(tmp_path, objective="tests.objectives_for_tests:fading_curve", prune_pause=True,
                         prune_warmup_trials=0)
    objective = objectives_for_tests.fading_curve
    with Study(settings.replace(max_evals=5), objective=objective) as study:
        first = {r["tid"]: r for r in study.optimize()}
    assert first[1]["paused"] and first[1]["pruned_at_epoch"] == 1  # 5 // 3 = 1 promoted: trial 0
    with Study(settings, objective=objective) as study:
        results = {r["tid"]: r for r in study.optimize()}
    assert sorted(results) == list(range(16))
    assert results[1]["resumed_from_epoch"] == 1 and results[1]["pruned_at_epoch"] == 3  # promoted after the restart


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_two_workers_pause_and_resume_trials_through_the_store(tmp_path, kind):
    done, jobs = _search_with_two_workers(tmp_path, kind, "fading_curve", "--prune", "asha", "--prune-pause")
    promoted = [j for j in jobs if j.result.get("resumed_from_epoch")]
    assert sorted(j.tid for j in promoted) == [0, 1, 2, 3, 4]  # rung 1's top 16 // 3, whatever the timing
    assert done.stdout.count("promoted: resumes after epoch") >= 6
    for job in promoted:  # the worker handed the epochs before the pause on again, then its own
        assert len(job.metrics) == len(job.result["history"]["val_fine_accuracy"])
    assert any(j.result["status"] == "ok" for j in jobs)
    assert sorted(r["tid"] for r in _json_results(tmp_path / "results")) == list(range(16))
    kept = {path.name for path in (tmp_path / "results" / "checkpoints").glob("*/*")}
    assert kept == {f"trial_{j.tid + 1}.npz" for j in jobs if j.result.get("paused")}


def test_a_promoted_trial_whose_checkpoint_is_out_of_reach_trains_again_without_being_judged_again(tmp_path):
    # Two trials: both pause at the 1-epoch rung (2 // 3 = 0 go on), then the thin rung keeps its best,
    # trial 0. Without its checkpoint it trains from epoch 1 again; were that epoch judged again it would
    # pause again and be promoted again, for ever (so the search runs in a child process: a failure, not a hang).
    args = [sys.executable, "-m", "hks", "search", "--space", SPACE, "--objective",
            "tests.objectives_for_tests:forgetful_fading_curve", "--epochs", str(EPOCHS), "--algo", "rand",
            "--max-evals", "2", "--prune", "asha", "--prune-pause", "--no-plots",
            "--results-dir", str(tmp_path / "results"), "--trials-file", str(tmp_path / "results.pkl")]
    done = subprocess.run(args, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = {r["tid"]: r for r in _json_results(tmp_path / "results")}
    assert (results[0]["status"], results[0]["epochs_run"]) == ("ok", EPOCHS)
    assert (results[1]["paused"], results[1]["pruned_at_epoch"]) == (True, 1)
    out = done.stdout
    assert out.count("trial 1 promoted: resumes after epoch 1") == 1 and out.count("promoted:") == 2
