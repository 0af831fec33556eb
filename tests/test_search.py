"""The local search driver end to end: real Keras trials, real hyperopt, results.pkl, resume."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hks import objective, search
from hks.errors import TrialsFileError
from hks.model import build_model
from hks.results import best_result, load_results

ROOT = Path(__file__).resolve().parents[1]
SMALL_SPACE = str(ROOT / "tests" / "spaces" / "small_space.py")


def _vals(trials):
    return [{k: v for k, v in t["misc"]["vals"].items()} for t in trials.trials]


def test_classic_space_search_writes_json_results_trials_and_plots(tiny_settings, capsys):
    settings = tiny_settings.replace(plots=True, seed=5)
    results = search.run_search(settings)
    assert len(results) == 3
    saved = load_results(settings.results_dir)
    assert sorted(r["model_name"] for r in saved) == sorted(r["model_name"] for r in results)
    for result in saved:
        assert result["status"] == "ok", result.get("error")
        assert result["loss"] == -result["fine_best_accuracy"]
        assert result["fine_best_accuracy"] == max(result["history"]["val_fine_accuracy"])
        assert result["coarse_end_accuracy"] == result["history"]["val_coarse_accuracy"][-1]
        assert set(result["space"]) >= {"lr_rate_mult", "pooling_type", "residual"} and result["params"] > 0
        assert result["model_name"].startswith(f"model_{result['fine_best_accuracy']:.4f}_")
    with open(settings.trials_file, "rb") as handle:
        assert len(pickle.load(handle).trials) == 3
    results_dir = Path(settings.results_dir)
    assert (results_dir / "model_demo.png").stat().st_size > 1000
    assert (results_dir / "model_best.png").stat().st_size > 1000
    assert (results_dir / "report.html").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "trial 3/3:" in out and "epoch 1/1" in out and "best " in out
    assert "search done: 3 trials" in out and "report written to" in out


def test_resume_runs_only_the_missing_trials_and_matches_an_uninterrupted_search(tiny_settings, tmp_path):
    settings = tiny_settings.replace(space=SMALL_SPACE, max_evals=2, n_startup_trials=1)
    search.run_search(settings)
    resumed = search.run_search(settings.replace(max_evals=4))
    assert len(resumed) == 4
    with open(settings.trials_file, "rb") as handle:
        trials = pickle.load(handle)
    assert [t["tid"] for t in trials.trials] == [0, 1, 2, 3]
    assert len(load_results(settings.results_dir)) == 4

    straight = tiny_settings.replace(space=SMALL_SPACE, max_evals=4, n_startup_trials=1,
                                     trials_file=str(tmp_path / "straight.pkl"),
                                     results_dir=str(tmp_path / "straight"))
    search.run_search(straight)
    with open(straight.trials_file, "rb") as handle:
        assert _vals(pickle.load(handle)) == _vals(trials)


def test_failing_and_diverging_trials_are_recorded_and_the_search_goes_on(tiny_settings, monkeypatch):
    def flaky_builder(point, num_fine, num_coarse, tid):
        if tid == 0:
            raise RuntimeError("simulated crash while building")
        model = build_model(point, num_fine, num_coarse)
        if tid == 1:
            model.layers[-1].set_weights([np.full_like(w, np.nan) for w in model.layers[-1].get_weights()])
        return model

    def patched(point, *, settings, splits, tid):
        return objective.run_trial(point, settings, splits=splits, tid=tid,
                                   build=lambda p, f, c: flaky_builder(p, f, c, tid))

    monkeypatch.setattr(search, "_objective", patched)
    settings = tiny_settings.replace(space=SMALL_SPACE, max_evals=3)
    results = search.run_search(settings)
    assert [r["status"] for r in results] == ["fail", "fail", "ok"]
    assert results[0]["error"] == "RuntimeError: simulated crash while building"
    assert "Traceback" in results[0]["traceback"]
    assert results[1]["error_type"] == "NonFiniteLoss"
    assert best_result(results)["tid"] == 2
    on_disk = {r["tid"]: r for r in load_results(settings.results_dir)}
    assert on_disk[0]["status"] == "fail" and on_disk[0]["model_name"].startswith("model_fail_")


def test_corrupt_trials_file_is_refused_and_left_untouched(tiny_settings):
    path = Path(tiny_settings.trials_file)
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(TrialsFileError, match="is corrupt or unreadable") as err:
        search.run_search(tiny_settings)
    assert "delete_results.sh" in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == b"\x80\x04garbage"


def test_trials_file_of_another_space_is_refused(tiny_settings):
    search.run_search(tiny_settings.replace(space=SMALL_SPACE, max_evals=1))
    before = Path(tiny_settings.trials_file).read_bytes()
    with pytest.raises(TrialsFileError, match="another space fingerprint"):
        search.run_search(tiny_settings.replace(max_evals=2))
    assert Path(tiny_settings.trials_file).read_bytes() == before


def _cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "hyperopt_optimize.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin",
                                                                           "HKS_THREADS": "1"})


def test_cli_rejects_unknown_algorithm_in_one_line(tmp_path):
    done = _cli("--algo", "bogus", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("hks: error: --algo='bogus' is not one of tpe")
    assert "Traceback" not in done.stderr


def test_cli_reports_missing_dataset_with_path_and_url(tmp_path):
    done = _cli("--no-download", "--max-evals", "1", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ml_req/cifar-100-python.tar.gz not found" in done.stderr
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in done.stderr
    assert not (tmp_path / "results.pkl").exists()


def test_cli_runs_a_search_on_cifar10_with_environment_settings(tmp_path, cifar10_dir):
    env = {"HKS_MAX_EVALS": "1", "HKS_EPOCHS": "1", "HKS_DATASET": "cifar10", "HKS_DATASET_SIZE": "300",
           "HKS_DATA_DIR": str(cifar10_dir), "HKS_DOWNLOAD": "0", "HKS_SPACE": SMALL_SPACE, "HKS_PLOTS": "0"}
    done = subprocess.run([sys.executable, str(ROOT / "hyperopt_optimize.py")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "HKS_THREADS": "1", **env})
    assert done.returncode == 0, done.stderr
    assert "trial 1/1: val fine acc" in done.stdout
    [result] = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.txt.json")]
    assert result["dataset"] == "cifar10" and result["coarse_best_accuracy"] is None
    assert "val_coarse_accuracy" not in result["history"]


@pytest.mark.parametrize("algo", ["tpe", "rand", "anneal", "atpe"])
def test_every_hyperopt_algorithm_searches_the_classic_space(algo):
    """Each algorithm draws distinct, complete points of the classic space, every one of which builds
    a valid two-headed model (checked on the space's own validation, not by training)."""
    from hyperopt import Trials, fmin

    from hks.config import Settings
    from hks.space import SPACE

    points = []

    def cheap(point):  # prefers small learning-rate multipliers and max pooling
        points.append(point)
        return point["lr_rate_mult"] + (0 if point["pooling_type"] == "max" else 1)

    trials = Trials()
    fmin(cheap, SPACE, algo=search.suggest_algorithm(Settings(algo=algo, n_startup_trials=4)), max_evals=12,
         trials=trials, rstate=np.random.default_rng(0), show_progressbar=False)
    assert len(trials.trials) == 12 and all(t["result"]["status"] == "ok" for t in trials.trials)
    keys = set(points[0])
    assert keys >= {"lr_rate_mult", "batch_size", "optimizer", "pooling_type", "residual", "nb_conv_pool_layers"}
    assert all(set(point) == keys for point in points)
    assert len({point["lr_rate_mult"] for point in points}) == 12  # twelve different suggestions
    assert all(np.exp(-0.5) <= point["lr_rate_mult"] <= np.exp(0.5) for point in points)
    assert all(point["pooling_type"] in ("max", "avg", "all_conv", "inception") for point in points)
    for point in points[:3]:  # the points build real models with both heads
        model = build_model(point, 100, 20)
        assert sorted(output.shape[-1] for output in model.outputs) == [20, 100]
