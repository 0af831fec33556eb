"""One trial: early stopping, the classic result fields, saved models, the base learning rate."""

import json
import subprocess
from pathlib import Path

import keras
import pytest

from hks import objective, study
from hks.config import Settings
from hks.errors import ConfigError
from hks.seeding import TRAIN, trial_seed
from hks.space import demo_point

SMALL = {**demo_point(), "conv_hiddn_units_mult": 0.2, "fc_units_1_mult": 0.05, "residual": None,
         "first_conv": None, "batch_size": 64, "use_BN": False}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cifar10_settings(tiny_settings, cifar10_dir):
    return tiny_settings.replace(dataset="cifar10", data_dir=str(cifar10_dir), dataset_size=600)


def test_early_stopping_ends_a_trial_that_stops_improving(cifar10_settings):
    frozen = {**SMALL, "lr_rate_mult": 1e-9}  # cannot learn: validation accuracy never improves
    result = objective.run_trial(frozen, cifar10_settings.replace(epochs=8, patience=2), verbose=False)
    assert result["status"] == "ok"
    assert result["epochs_run"] == 3 and result["best_epoch"] == 1


def test_a_learning_trial_reports_consistent_fields_and_saves_its_model(cifar10_settings):
    settings = cifar10_settings.replace(epochs=3, patience=3, save_models=True, dataset_size=1500)
    epochs_seen = []
    result = objective.run_trial(SMALL, settings, tid=7, on_epoch=lambda e, logs: epochs_seen.append(e),
                                 verbose=False)
    assert result["status"] == "ok" and epochs_seen == [0, 1, 2]
    history = result["history"]
    assert len(history["val_fine_accuracy"]) == 3 and len(history["fine_accuracy"]) == 3
    assert result["fine_end_accuracy"] == history["val_fine_accuracy"][-1]
    assert result["real_loss"] == min(history["val_loss"])
    assert result["fine_best_accuracy"] > 0.15  # CIFAR-10 chance level is 0.10
    assert result["seed"] == trial_seed(settings.seed, 7, TRAIN) and result["tid"] == 7
    saved = keras.saving.load_model(result["weights_file"])
    assert saved.count_params() == result["params"]
    path = Path(settings.results_dir) / f"{result['model_name']}.txt.json"
    assert not path.exists()  # run_trial writes nothing: whoever completes the trial saves it, once
    assert objective.save_result(result, settings.results_dir) == path
    on_disk = json.loads(path.read_text())
    assert on_disk["weights_file"] == result["weights_file"] and on_disk["history"] == history


def test_base_learning_rate_setting_reaches_the_optimizer(cifar10_settings, monkeypatch):
    seen = []
    real_fit = keras.Model.fit

    def spy(model, *args, **kwargs):
        seen.append(float(model.optimizer.learning_rate))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    objective.run_trial({**SMALL, "lr_rate_mult": 2.0}, cifar10_settings.replace(base_lr="0.0003"), verbose=False)
    assert seen == [pytest.approx(0.0006)]
    with pytest.raises(ConfigError, match="--base-lr 'auto' is not a number"):
        objective.run_trial(SMALL, cifar10_settings.replace(base_lr="auto"), verbose=False)


def test_auto_base_lr_is_calibrated_once_and_reused_on_resume(monkeypatch):
    from hks.autolr import calibrate as autolr

    calls = []
    monkeypatch.setattr(autolr, "calibrate_base_lr", lambda settings: calls.append(1) or 0.0042)
    settings = Settings(base_lr="auto")
    assert study.resolve_base_lr(settings, {}).base_lr == "0.0042" and calls == [1]
    assert study.resolve_base_lr(settings, {"base_lr": "0.0042"}).base_lr == "0.0042" and calls == [1]
    assert study.resolve_base_lr(settings.replace(base_lr="0.01"), {"base_lr": "0.0042"}).base_lr == "0.01"


def test_delete_results_script_asks_then_deletes(tmp_path):
    script = ROOT / "delete_results.sh"
    (tmp_path / "delete_results.sh").write_bytes(script.read_bytes())
    (tmp_path / "delete_results.sh").chmod(0o755)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "model_0.1_x.txt.json").write_text("{}")
    (tmp_path / "results" / "README.md").write_text("kept")
    (tmp_path / "results.pkl").write_bytes(b"x")
    (tmp_path / "results.pkl.lock").write_text("")
    declined = subprocess.run(["./delete_results.sh"], cwd=tmp_path, input="n\n", capture_output=True, text=True)
    assert declined.returncode == 1 and (tmp_path / "results.pkl").exists()
    elsewhere = tmp_path / "elsewhere"  # run from another folder: that folder's results, as a search there writes
    elsewhere.mkdir()
    (elsewhere / "results.pkl").write_bytes(b"y")
    done = subprocess.run(["../delete_results.sh", "-y"], cwd=elsewhere, capture_output=True, text=True)
    assert done.returncode == 0 and not (elsewhere / "results.pkl").exists() and (tmp_path / "results.pkl").exists()
    done = subprocess.run(["./delete_results.sh", "-y"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "results.pkl").exists() and not (tmp_path / "results.pkl.lock").exists()
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["README.md"]
