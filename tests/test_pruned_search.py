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


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_two_workers_prune_from_the_curves_in_the_store(tmp_path, kind):
    url = postgres_url() if kind == "postgresql" else f"sqlite:///{tmp_path / 'store.sqlite3'}"
    exp = unique_exp_key("prune")
    args = [sys.executable, "-m", "hks", "search", "--store", url, "--workers", "2", "--experiment-name", exp,
            "--space", SPACE, "--objective", "tests.objectives_for_tests:learning_curve", "--epochs", str(EPOCHS),
            "--algo", "rand", "--max-evals", "16", "--prune", "median", "--prune-warmup-trials", "2", "--no-plots",
            "--results-dir", str(tmp_path / "results")]
    try:
        done = subprocess.run(args, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        with open_store(url) as store:
            jobs = store.load(exp)
        assert len(jobs) == 16 and all(j.state == p.DONE for j in jobs)
        pruned = [j for j in jobs if j.result["status"] == "pruned"]
        assert pruned and len(pruned) < 16
        for job in pruned:  # stopped by the pruner, with the epochs it ran stored as its metrics
            assert len(job.metrics) == job.result["pruned_at_epoch"] < EPOCHS
        assert "started 2 local workers" in done.stdout  # which worker takes which instant trial is timing
    finally:
        with open_store(url) as store:
            store.delete_experiment(exp)
