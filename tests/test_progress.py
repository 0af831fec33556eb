"""What a search prints: start lines, epoch lines with validation loss, time, the budget, the next step,
SIGTERM, and no TensorFlow noise unless --verbose (the CLI cases run real searches in subprocesses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hks import progress
from hks.config import Settings
from hks.quiet import NOISE, without_noise
from hks.space import classic_demo_point

ROOT = Path(__file__).resolve().parents[1]
SMALL_SPACE = str(ROOT / "tests" / "spaces" / "small_space.py")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ok(tid: int, acc: float) -> dict:
    return {"tid": tid, "status": "ok", "loss": -acc, "fine_best_accuracy": acc, "epochs_run": 3,
            "model_name": f"model_{acc:.4f}_x", "train_seconds": 12.0}


def test_durations_read_well():
    assert [progress.format_duration(s) for s in (4.4, 65, 3600 + 125, 26 * 3600)] == ["4s", "1m05s", "1h02m",
                                                                                         "26h00m"]


def test_time_left_follows_this_sessions_pace_not_the_resumed_trials():
    clock = Clock()
    bar = progress.SearchProgress(10, previous=[_ok(0, 0.1), _ok(1, 0.2)], clock=clock, stream=open(os.devnull, "w"))
    assert bar.time_left() is None and bar.describe_time() == "0s elapsed"
    clock.now += 120
    line = bar.record(_ok(2, 0.3))
    assert line.startswith("trial 3/10: val fine acc 0.3000 in 3 epochs [12.0s] | best 0.3000")
    assert line.endswith("| 2m00s elapsed, ~14m00s left")  # 7 more at 2 minutes each
    clock.now += 60
    bar.record(_ok(3, 0.1))
    assert bar.time_left() == pytest.approx(90 * 6)


def test_a_trial_finishing_out_of_order_is_named():
    bar = progress.SearchProgress(4, clock=Clock(), stream=open(os.devnull, "w"))
    assert "(trial #3)" in bar.record(_ok(2, 0.5)) and "#" not in bar.record(_ok(1, 0.4))


def test_a_resumed_search_whose_budget_is_spent_says_so():
    bar = progress.SearchProgress(0, previous=[_ok(i, 0.1) for i in range(6)])
    assert bar.spent
    assert bar.describe_start() == ("nothing to run: 6 trials are done and --max-evals (HKS_MAX_EVALS) is 0; it "
                                    "counts every trial so far, so pass --max-evals 16 (say) to run 10 more")
    assert progress.SearchProgress(8, previous=[_ok(0, 0.1)]).describe_start() == (
        "resuming search: 1/8 trials done, best so far 0.1000")


def test_start_line_names_trial_worker_main_values_and_size(monkeypatch):
    monkeypatch.setattr(progress, "_worker_label", "local")  # what a process that is no worker says
    line = progress.trial_start_line(4, 30, classic_demo_point(), params=1234567)
    assert line == ("trial 5/30 started on local: Nadam, lr x1, batch 300, 3 conv blocks (inception), 4 residual, "
                    "BN, elu; 1,234,567 parameters")
    other = progress.trial_start_line(0, 2, {"x": 0.123456, "y": "a"}, worker="host:1:ab")
    assert other == "trial 1/2 started on host:1:ab: x 0.123, y a"


def test_the_master_announces_each_running_trial_once():
    lines: list[str] = []

    class Stream:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    bar = progress.SearchProgress(3, stream=Stream())
    for _ in range(3):
        bar.announce_start(1, lambda: {"x": 1}, "w1")
    bar.announce_start(1, {"x": 1}, "w2")  # requeued on another worker: a new start
    assert [line for line in lines if line.strip()] == ["trial 2/3 started on w1: x 1", "trial 2/3 started on w2: x 1"]


def test_epoch_lines_show_validation_loss():
    logs = {"loss": 2.5, "val_loss": 2.25, "fine_accuracy": 0.1, "val_fine_accuracy": 0.2, "other": 9.0}
    assert progress.epoch_line(0, 20, logs, 41.23) == (
        "    epoch 1/20  loss 2.5000  val_loss 2.2500  fine_accuracy 0.1000  val_fine_accuracy 0.2000  (41.2s)")


def test_next_step_names_the_flags_that_find_this_search():
    assert progress.next_step_line(Settings()).startswith("next: python -m hks retrain-best  (")
    line = progress.next_step_line(Settings(results_dir="out dir", trials_file="out dir/r.pkl"))
    assert "retrain-best --results-dir 'out dir' --trials-file 'out dir/r.pkl'  (" in line
    assert "retrain-best --from results  (" in progress.next_step_line(Settings(workers=2), store="sqlite:///x")
    # a results folder does not record which images the trials saw: the line says it
    line = progress.next_step_line(Settings(dataset_size=600, augment_crop=True), store="sqlite:///x")
    assert "retrain-best --from results --dataset-size 600 --augment-crop  (" in line


def test_only_tensorflows_informational_start_up_lines_are_dropped():
    captured = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1795948343.552818   10405 port.cc:153] oneDNN custom operations are on.\n"
        "W0000 00:00:1795948343.552818   10405 gpu_device.cc:2344] Cannot dlopen some GPU libraries.\n"
        "I0000 00:00:1795948524.014405   14158 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
        "E0000 00:00:1795948343.552818   10405 cuda_dnn.cc:8310] Unable to register cuDNN factory\n"
        "Traceback (most recent call last):\n")
    assert without_noise(captured) == ("E0000 00:00:1795948343.552818   10405 cuda_dnn.cc:8310] Unable to register "
                                       "cuDNN factory\nTraceback (most recent call last):\n")


# --- the command line, end to end ------------------------------------------------------------------

def _command(tmp_path: Path, cifar10_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "hyperopt_optimize.py"), "--dataset", "cifar10", "--data-dir", str(cifar10_dir),
            "--no-download", "--dataset-size", "300", "--epochs", "1", "--space", SMALL_SPACE, "--results-dir",
            str(tmp_path / "results"), "--trials-file", str(tmp_path / "results.pkl"), "--no-plots", *extra]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HKS_", "TF_CPP"))}
    return {**env, "HKS_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def quiet_search(tmp_path_factory, cifar10_dir):
    tmp_path = tmp_path_factory.mktemp("console")
    done = subprocess.run(_command(tmp_path, cifar10_dir, "--max-evals", "2"), capture_output=True, text=True,
                          env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    return tmp_path, done


def test_a_search_prints_start_lines_time_and_the_next_step_without_tensorflow_noise(quiet_search):
    _, done = quiet_search
    out = done.stdout
    assert "trial 1/2 started on local: " in out and "trial 2/2 started on local: " in out and " parameters" in out
    assert "val_loss " in out and " elapsed, ~" in out and " elapsed, done" in out
    assert out.strip().splitlines()[-1].startswith("next: python -m hks retrain-best --data-dir ")
    noise = [line for line in done.stderr.splitlines() if NOISE.match(line) or "retracing" in line]
    assert noise == []


def test_verbose_shows_tensorflows_start_up_log(quiet_search, cifar10_dir):
    tmp_path, _ = quiet_search
    done = subprocess.run(_command(tmp_path, cifar10_dir, "--max-evals", "3", "--verbose"), capture_output=True,
                          text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    assert any(NOISE.match(line) for line in done.stderr.splitlines())


def test_a_spent_budget_is_said_plainly(quiet_search, cifar10_dir):
    tmp_path, _ = quiet_search
    done = subprocess.run(_command(tmp_path, cifar10_dir, "--max-evals", "1"), capture_output=True, text=True,
                          env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "nothing to run: " in done.stdout and "trials are done and --max-evals (HKS_MAX_EVALS) is 1" in done.stdout
    assert "resuming search" not in done.stdout and "started on" not in done.stdout


def test_a_failed_start_writes_nothing(tmp_path, cifar10_dir):
    command = _command(tmp_path, tmp_path / "no_data", "--plots", "--max-evals", "2")
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("hks: error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "starting search" not in done.stdout
    assert not (tmp_path / "results").exists() and not (tmp_path / "results.pkl").exists()


def test_sigterm_says_what_ctrl_c_says(tmp_path, cifar10_dir):
    command = _command(tmp_path, cifar10_dir, "--max-evals", "3", "--epochs", "200", "--patience", "200")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        for line in process.stdout:
            if "started on local" in line:
                break
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert "terminated (SIGTERM): every finished trial is saved; run the same command again to resume" in err
    assert "Traceback" not in err


def _square(point: dict) -> float:
    return (point["x"] - 0.3) ** 2


def test_a_user_objective_gets_start_lines_time_and_no_retrain_hint(tmp_path, capsys):
    from hyperopt import hp

    import hks

    hks.optimize(_square, {"x": hp.uniform("x", 0, 1)}, max_evals=2, storage=":memory:",
                 results_dir=str(tmp_path), algo="rand")
    out = capsys.readouterr().out
    assert "trial 1/2 started on local:" in out and "trial 2/2 started on local:" in out and ": x 0." in out
    assert "trial 2/2: loss " in out and " elapsed, done" in out
    assert "retrain-best" not in out  # only hks's own CNN objective has a model to retrain


def test_a_modern_space_point_is_described_by_what_matters_whatever_its_key_order():
    from hks.modern_space import demo_point as modern_point

    point = dict(sorted(modern_point().items()))  # as hyperopt's space_eval gives it: alphabetical
    assert progress.describe_point(point) == "resnet width 32, depth 2, SGD lr 0.1 wd 0.0005, one_cycle, batch 128, " \
                                             "cutout 8"


def test_of_equally_good_trials_the_best_is_the_earliest_whatever_the_order_they_come_in():
    from hks.results import best_result

    results = [{"status": "ok", "loss": -0.5, "tid": 3, "model_name": "b"},
               {"status": "ok", "loss": -0.5, "tid": 1, "model_name": "a"},
               {"status": "ok", "loss": -0.4, "tid": 0, "model_name": "c"}]
    assert best_result(results)["model_name"] == "a" and best_result(results[::-1])["model_name"] == "a"
