"""--trial-process: each trial in its own process, the search process the only owner of the storage.

Real processes throughout: hks's own Keras trials on the CIFAR-10 mini archive, and a test objective
that kills its own process as the kernel's out-of-memory killer would."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from distributed_helpers import env as child_env

from hks.config import resolve
from hks.errors import ConfigError
from hks.evaluation import keras_objective
from hks.objective import run_trial
from hks.store import protocol as p
from hks.store.pickle_file import read_records
from hks.trial_process import wants_fresh_process

ROOT = Path(__file__).resolve().parents[1]


def _search(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hks", "search", "--no-plots", "--results-dir", str(tmp_path / "results"),
            "--trials-file", str(tmp_path / "results.pkl"), *args]


def _keras_search(tmp_path: Path, data_dir: Path, *args: str) -> list[str]:
    return _search(tmp_path, "--dataset", "cifar10", "--data-dir", str(data_dir), "--no-download",
                   "--dataset-size", "300", "--threads", "1", "--algo", "rand", *args)


def test_auto_means_fresh_for_hks_keras_objectives_only_and_unknown_choices_are_refused():
    assert wants_fresh_process("auto", run_trial)
    assert wants_fresh_process("auto", keras_objective(_build))
    assert not wants_fresh_process("auto", _square)  # a user's own objective runs where it always did
    assert wants_fresh_process("fresh", _square)
    assert not wants_fresh_process("fresh", lambda point: 0.0)  # cannot be sent to another process
    assert not wants_fresh_process("same", run_trial)
    with pytest.raises(ConfigError, match="trial.process"):
        resolve({"trial_process": "thread"})


def test_a_trial_whose_process_is_killed_is_failed_at_once_and_the_search_goes_on(tmp_path):
    command = _search(tmp_path, "--space", "tests.objectives_for_tests", "--objective",
                      "tests.objectives_for_tests:dies_on_first_trial", "--trial-process", "fresh",
                      "--max-evals", "3", "--algo", "rand")
    done = subprocess.run(command, cwd=ROOT, env=child_env(HKS_TEST_TRIAL_SECONDS="0"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    jobs = read_records(tmp_path / "results.pkl")[1]
    assert [(j.tid, j.state, j.attempts, j.result["status"]) for j in jobs] == [
        (0, p.DONE, 1, "fail"), (1, p.DONE, 1, "ok"), (2, p.DONE, 1, "ok")]  # one run, no retry of trial 0
    assert jobs[0].result["error_type"] == "TrialProcessDied"
    assert "killed by SIGKILL (out of memory?)" in jobs[0].result["error"]


def test_keras_trials_train_in_child_processes_and_the_search_process_never_imports_tensorflow(tmp_path,
                                                                                             cifar10_dir):
    script = (
        "import sys\n"
        "from hks.config import resolve\n"
        "from hks.study import run_search\n"
        f"settings = resolve({{'dataset': 'cifar10', 'data_dir': {str(cifar10_dir)!r}, 'download': False,\n"
        "    'dataset_size': 300, 'epochs': 2, 'patience': 2, 'threads': 1, 'max_evals': 2, 'plots': False,\n"
        f"    'algo': 'rand', 'results_dir': {str(tmp_path / 'results')!r},\n"
        f"    'trials_file': {str(tmp_path / 'results.pkl')!r}}})\n"
        "run_search(settings)\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=child_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "tensorflow imported: False" in done.stdout
    results = [json.loads(path.read_text()) for path in (tmp_path / "results").glob("model_*.json")]
    assert len(results) == 2 and all(r["status"] == "ok" and len(r["history"]["val_fine_accuracy"]) == 2
                                     for r in results)
    assert "epoch 2/2" in done.stdout  # the child's epoch lines reach the user


@contextlib.contextmanager
def _search_reaching(command: list[str], line: str):
    """A search started with ``command``, once it printed ``line`` (with its training child under way);
    killed on the way out if it still runs."""
    search = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        for out in search.stdout:
            if line in out:
                break
        yield search
    finally:
        search.kill()


def test_sigterm_kills_the_training_child_at_once_and_releases_its_trial(tmp_path, cifar10_dir):
    command = _keras_search(tmp_path, cifar10_dir, "--max-evals", "2", "--epochs", "200", "--patience", "200")
    with _search_reaching(command, "epoch 1/200") as search:
        children = psutil.Process(search.pid).children(recursive=True)
        assert children, "the trial trains in a child process"
        search.send_signal(signal.SIGTERM)
        search.communicate(timeout=120)
    assert search.returncode == 128 + signal.SIGTERM
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"training processes left behind: {alive}"
    jobs = read_records(tmp_path / "results.pkl")[1]
    assert [(j.state, j.attempts) for j in jobs] == [(p.NEW, 0)]  # handed back, not counted as an attempt


def _square(point: dict) -> float:
    return (point["x"] - 0.3) ** 2


def _build(point, num_fine, num_coarse):
    raise NotImplementedError  # never called: only whether the objective can be sent to a child matters


def test_a_users_script_without_a_main_guard_runs_once_with_trials_in_fresh_processes(tmp_path):
    script = tmp_path / "my_search.py"
    script.write_text(
        "import hks\n"
        "from tests.objectives_for_tests import SPACE, quadratic\n"
        "print('script body ran', flush=True)\n"
        f"study = hks.optimize(quadratic, SPACE, max_evals=2, storage=':memory:', algo='rand',\n"
        f"                     trial_process='fresh', results_dir={str(tmp_path / 'results')!r})\n"
        "print('statuses', sorted(r['status'] for r in study.results))\n")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=child_env(
                          HKS_TEST_TRIAL_SECONDS="0"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("script body ran") == 1  # the children did not run the script again
    assert "statuses ['ok', 'ok']" in done.stdout


def test_a_keras_builder_defined_in_the_users_script_trains_in_its_process_and_fresh_is_refused(tmp_path,
                                                                                                 cifar10_dir):
    script = tmp_path / "my_keras_search.py"
    script.write_text(
        "import hks, keras\n"
        "from hyperopt import hp\n"
        "def build(point, num_fine, num_coarse):\n"
        "    x = keras.Input((32, 32, 3))\n"
        "    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(x))\n"
        "    model = keras.Model(x, {'fine': keras.layers.Dense(num_fine, activation='softmax', name='fine')(h)})\n"
        "    model.compile('adam', {'fine': 'sparse_categorical_crossentropy'}, metrics={'fine': ['accuracy']})\n"
        "    return model\n"
        "settings = dict(max_evals=1, storage=':memory:', algo='rand', dataset='cifar10', epochs=1, threads=1,\n"
        f"                data_dir={str(cifar10_dir)!r}, download=False, dataset_size=300, plots=False,\n"
        f"                results_dir={str(tmp_path / 'results')!r})\n"
        "study = hks.optimize(hks.keras_objective(build), {'u': hp.uniform('u', 0, 1)}, **settings)\n"
        "print('statuses', [r['status'] for r in study.results], flush=True)\n"
        "hks.optimize(hks.keras_objective(build), {'u': hp.uniform('u', 0, 1)}, trial_process='fresh', **settings)\n")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=300)
    assert "statuses ['ok']" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]  # auto: in this process
    assert done.stdout.count(" started on ") == 1 and "parameters" in done.stdout  # one start line, with its size
    assert done.returncode != 0 and "ConfigError: --trial-process fresh runs each trial in a new process, which " \
                                    "cannot import an objective" in done.stderr


def test_a_search_killed_mid_trial_resumes_that_trial_from_its_checkpoint_when_run_again(tmp_path, cifar10_dir):
    command = _keras_search(tmp_path, cifar10_dir, "--max-evals", "1", "--epochs", "8", "--patience", "8")
    with _search_reaching(command, "epoch 2/8") as first:  # the checkpoint is written before the epoch's line
        children = psutil.Process(first.pid).children(recursive=True)
        first.kill()  # kill -9: nothing is handed back, the trial stays "running" in results.pkl
        first.wait(30)
    psutil.wait_procs(children, timeout=10)
    saved = list((tmp_path / "results" / "checkpoints").glob("*/trial_1.npz"))
    assert len(saved) == 1

    again = subprocess.run(command, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    resumed = re.search(r"resumed from its checkpoint after epoch (\d+)", again.stdout)
    assert resumed and 2 <= int(resumed[1]) < 8, again.stdout[-2000:]
    done = int(resumed[1])
    assert "epoch 1/8" not in again.stdout and f"epoch {done + 1}/8" in again.stdout  # no epoch trained twice
    [result] = [json.loads(path.read_text()) for path in (tmp_path / "results").glob("model_*.json")]
    assert result["status"] == "ok" and result["resumed_from_epoch"] == done and result["epochs_run"] == 8
    assert not saved[0].exists() and not saved[0].parent.exists()  # removed once the result was recorded


def test_a_paused_keras_trial_is_resumed_from_its_checkpoint_in_a_fresh_process(tmp_path, cifar10_dir):
    # One trial: alone at its 1-epoch rung it pauses (1 // 3 = 0 go on); then, nothing else being left
    # to run, the thin rung keeps its best and the trial is promoted, in a new process, from its checkpoint.
    command = _keras_search(tmp_path, cifar10_dir, "--max-evals", "1", "--epochs", "3", "--patience", "3",
                            "--prune", "asha", "--prune-pause")
    done = subprocess.run(command, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "paused at epoch 1" in out and "trial 1 promoted: resumes after epoch 1" in out
    assert "resumed from its checkpoint after epoch 1" in out and out.count("epoch 1/3") == 1
    [result] = [json.loads(path.read_text()) for path in (tmp_path / "results").glob("model_*.json")]
    assert (result["status"], result["resumed_from_epoch"], result["epochs_run"]) == ("ok", 1, 3)
    assert not list((tmp_path / "results").glob("checkpoints/*/*"))  # finished: its checkpoint went


def test_a_keras_objective_without_its_dataset_is_refused_before_anything_is_written(tmp_path):
    from hyperopt import hp

    from hks.config import Settings
    from hks.errors import HksError
    from hks.study import Study

    settings = Settings(dataset="cifar10", data_dir=str(tmp_path / "nowhere"), download=False, max_evals=1,
                        trials_file=str(tmp_path / "r.pkl"), results_dir=str(tmp_path / "r"), plots=False)
    with pytest.raises(HksError, match="cifar-10-python.tar.gz not found"):
        Study(settings, space={"u": hp.uniform("u", 0, 1)}, objective=keras_objective(_build))
    assert not (tmp_path / "r.pkl").exists() and not (tmp_path / "r").exists()
    assert not (tmp_path / "r.pkl.lock").exists()  # not even the trials file's lock
