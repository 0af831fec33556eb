"""retrain-best and evaluate on the CIFAR-10 mini archive, and --tensorboard logs per trial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hyperopt import hp

from hks import results as res
from hks.cli import main
from hks.config import Settings
from hks.objective import run_trial, save_result, splits_for
from hks.report import write_report
from hks.report.sources import load_json_folder
from hks.retrain import EXPORT_SUFFIX, RETRAINED_SUFFIX, retrain_settings
from hks.space import demo_point
from hks.study import Study

# Small and quick to train on two shared cores, yet able to learn CIFAR-10 in a few epochs.
SMALL_POINT = {**demo_point(), "use_BN": False, "residual": None, "conv_hiddn_units_mult": 0.8,
               "fc_units_1_mult": 0.128, "batch_size": 64.0}
CHANCE = 0.1


def _settings(tmp_path: Path, cifar10_dir: Path, **changes) -> Settings:
    return Settings(dataset="cifar10", data_dir=str(cifar10_dir), download=False, epochs=1, patience=1, threads=1,
                    dataset_size=600, results_dir=str(tmp_path / "results"),
                    trials_file=str(tmp_path / "results.pkl"), plots=False).replace(**changes)


def _cli_settings(settings: Settings) -> list[str]:
    return ["--data-dir", settings.data_dir, "--no-download", "--threads", "1", "--results-dir",
            settings.results_dir, "--trials-file", settings.trials_file]


@pytest.fixture(scope="module")
def trials(tmp_path_factory, cifar10_dir) -> Settings:
    """Two real 1-epoch trials on 600 CIFAR-10 images: the search whose best model is retrained."""
    settings = _settings(tmp_path_factory.mktemp("retrain"), cifar10_dir)
    splits = splits_for(settings)
    for tid, lr in enumerate((1.0, 0.3)):
        result = run_trial({**SMALL_POINT, "lr_rate_mult": lr}, settings, splits=splits, tid=tid, verbose=False)
        assert result["status"] == "ok"
        save_result(result, settings.results_dir)  # what the search does once the trial is recorded
    return settings


@pytest.fixture(scope="module")
def retrained(trials) -> dict:
    """retrain-best from the JSON results with 3 epochs on train + validation (the full 5,170 images)."""
    before = {r["model_name"]: r for r in load_json_folder(Path(trials.results_dir))}
    args = ["retrain-best", "--from", trials.results_dir, "--epochs", "3", "--dataset-size", "0",
            *_cli_settings(trials)]
    assert main(args) == 0
    best = res.best_result(list(before.values()))
    recorded = json.loads((Path(trials.results_dir) / f"{best['model_name']}{res.RESULT_SUFFIX}").read_text())
    return {"best": best, "recorded": recorded, "before": before}


def test_retrain_best_tests_the_winner_once_and_records_it_beside_its_result(retrained, trials):
    best, recorded = retrained["best"], retrained["recorded"]
    test = recorded["test"]
    assert test["fine_accuracy"] > 2 * CHANCE  # well above chance on the 1,017 test images
    assert test["coarse_accuracy"] is None and test["test_images"] == 1017
    assert test["epochs"] == 3 and test["train_images"] == 5170 and test["dataset"] == "cifar10"
    unchanged = {k: v for k, v in recorded.items() if k != "test"}
    assert unchanged == json.loads(json.dumps(res.to_jsonable(best)))  # the trial's own figures are kept
    assert Path(test["model_file"]).name == best["model_name"] + RETRAINED_SUFFIX
    assert Path(test["model_file"]).is_file()
    assert (Path(test["export_dir"]) / "saved_model.pb").is_file()
    assert Path(test["export_dir"]).name == best["model_name"] + EXPORT_SUFFIX


@pytest.mark.parametrize("which", ["model_file", "export_dir"])
def test_evaluate_a_saved_model_gives_the_recorded_test_accuracy(retrained, trials, which, capsys):
    test = retrained["recorded"]["test"]
    assert main(["evaluate", test[which], *_cli_settings(trials)[:5]]) == 0
    line = capsys.readouterr().out.strip().splitlines()[0]
    assert "cifar10 test accuracy: fine" in line and "(1017 images)" in line
    accuracy = float(line.split("fine ")[1].split()[0].rstrip(","))
    assert accuracy == pytest.approx(test["fine_accuracy"], abs=2.5 / 1017)  # float rounding may flip an image


def test_retrain_records_loss_top5_and_per_class_accuracy_that_agree_with_top1(retrained, cifar10_dir):
    from hks.data import load_cifar

    test = retrained["recorded"]["test"]
    assert 0 < test["fine_loss"] < 10 and test["fine_accuracy"] <= test["fine_top5_accuracy"] <= 1
    assert test["fine_top5_accuracy"] > 5 * CHANCE * 0.9  # top-5 of 10 classes is far above top-1's chance
    counts = np.bincount(load_cifar("cifar10", cifar10_dir, download=False).test.fine, minlength=10)
    per_class = test["fine_per_class_accuracy"]
    assert len(per_class) == 10 and len(set(per_class)) > 1
    assert np.dot(per_class, counts) / counts.sum() == pytest.approx(test["fine_accuracy"], abs=1e-9)


def test_evaluate_prints_loss_top5_per_class_and_draws_the_confusion_matrix(retrained, trials, tmp_path, capsys):
    picture = tmp_path / "confusion.png"
    test = retrained["recorded"]["test"]
    assert main(["evaluate", test["model_file"], "--confusion", str(picture), *_cli_settings(trials)[:5]]) == 0
    out = capsys.readouterr().out
    head_line = next(line for line in out.splitlines() if line.startswith("  fine   loss "))
    assert float(head_line.split()[2]) == pytest.approx(test["fine_loss"], abs=0.01) and "top-5 " in head_line
    assert "per-class fine accuracy, worst first:" in out
    for name in ("airplane", "automobile", "truck"):  # the class names from the archive's batches.meta
        assert f"{name} " in out
    assert f"confusion matrix: {picture}" in out
    from matplotlib.image import imread

    image = imread(picture)
    assert image.shape[0] > 300 and image[..., :3].std() > 0.05  # drawn, not blank


def test_retrain_best_refreshes_the_report(retrained, trials):
    page = Path(trials.results_dir) / "report.html"
    assert page.stat().st_mtime >= Path(retrained["recorded"]["test"]["model_file"]).stat().st_mtime
    assert f"{retrained['recorded']['test']['fine_accuracy']:.4g}" in page.read_text()


def test_the_report_shows_the_test_accuracy_of_the_retrained_best(retrained, trials, tmp_path):
    page = write_report(load_json_folder(Path(trials.results_dir)), trials, out_dir=tmp_path).page.read_text()
    assert f"<td>test fine accuracy</td><td>{retrained['recorded']['test']['fine_accuracy']:.4g}</td>" in page
    assert "Its test accuracy is not measured yet" not in page


def test_retrain_without_a_successful_trial_is_a_one_line_error(tmp_path, cifar10_dir, capsys):
    settings = _settings(tmp_path, cifar10_dir)
    Path(settings.results_dir).mkdir()
    assert main(["retrain-best", "--from", settings.results_dir, *_cli_settings(settings)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no successful trial among 0 result(s)" in err and len(err.splitlines()) == 1


def test_evaluate_refuses_a_missing_or_foreign_file_in_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.keras")]) == 2
    assert "missing.keras not found" in capsys.readouterr().err
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    assert main(["evaluate", str(fake)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a loadable Keras model" in err and len(err.splitlines()) == 1



def test_evaluate_refuses_a_confusion_path_it_could_not_write_before_evaluating(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for picture, fragment in ((tmp_path / "conf.txt", "give an image file name ending in .png"),
                              (tmp_path, "give an image file name"),  # a folder: it would have written beside it
                              (a_file / "conf.png", f"{a_file} is in the way")):
        assert main(["evaluate", str(tmp_path / "missing.keras"), "--confusion", str(picture)]) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and "missing.keras" not in err and len(err.splitlines()) == 1  # before the model
    assert a_file.read_text() == "mine"


def _summaries(folder: Path) -> list:
    import tensorflow as tf

    return [value for path in sorted(folder.glob("events.out.tfevents.*"))
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value]


def test_tensorboard_writes_logs_and_hparams_per_trial_numbered_from_one(tmp_path, cifar10_dir):
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    settings = _settings(tmp_path, cifar10_dir, tensorboard=True, dataset_size=300)
    result = run_trial(SMALL_POINT, settings, tid=7, verbose=False)
    assert result["status"] == "ok"
    logs = Path(settings.results_dir) / "tensorboard" / "trial_8"
    assert list((logs / "train").glob("events.out.tfevents.*"))
    assert list((logs / "validation").glob("events.out.tfevents.*"))
    summaries = _summaries(logs)
    starts = [plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content).session_start_info
              for v in summaries if v.metadata.plugin_data.plugin_name == "hparams"
              and v.tag == "_hparams_/session_start_info"]
    assert len(starts) == 1 and starts[0].group_name == "trial_8"
    hparams = starts[0].hparams
    assert hparams["optimizer"].string_value == SMALL_POINT["optimizer"]
    assert hparams["batch_size"].number_value == SMALL_POINT["batch_size"]
    assert hparams["residual"].string_value == "None" and hparams["use_BN"].bool_value is False
    best = {v.tag: float(tf.make_ndarray(v.tensor)) for v in summaries if v.tag.startswith("best_")}
    assert best["best_val_fine_accuracy"] == pytest.approx(result["fine_best_accuracy"])
    assert best["best_val_loss"] == pytest.approx(result["real_loss"])


def test_retrain_best_of_a_trials_file_trains_on_the_images_the_search_used(trials, tmp_path, capsys):
    best = res.best_result(load_json_folder(Path(trials.results_dir)))
    search = _settings(tmp_path, Path(trials.data_dir), max_evals=1, dataset_size=600, augment_crop=True)
    with Study(search, space={"x": hp.uniform("x", 0, 1)}, objective=lambda point: dict(best)) as study:
        study.optimize()
    capsys.readouterr()
    # no --dataset-size given: the search's 600 images, not the whole archive (its default)
    assert main(["retrain-best", "--epochs", "1", *_cli_settings(search)]) == 0
    assert "retraining on the data the search used: --dataset-size 600 --augment-crop" in capsys.readouterr().out
    recorded = json.loads((Path(search.results_dir) / f"{best['model_name']}{res.RESULT_SUFFIX}").read_text())
    assert recorded["test"]["train_images"] == 600


def test_flags_and_environment_override_the_searchs_data_settings_when_retraining():
    saved = {"dataset_size": 600, "val_fraction": 0.2, "augment_crop": True, "seed": 7, "epochs": 30}
    settings, taken = retrain_settings({}, saved, environ={})
    assert (settings.dataset_size, settings.val_fraction, settings.augment_crop, settings.seed) == (600, 0.2, True, 7)
    assert settings.epochs == Settings().epochs  # only the data settings are taken from the search
    assert taken == "--dataset-size 600 --val-fraction 0.2 --augment-crop --seed 7"
    settings, taken = retrain_settings({"dataset_size": "0"}, saved, environ={"HKS_SEED": "3"})
    assert (settings.dataset_size, settings.seed, settings.val_fraction) == (0, 3, 0.2)
    assert taken == "--val-fraction 0.2 --augment-crop"
    assert retrain_settings({}, {}, environ={})[1] == ""  # a JSON folder saves no settings


def _tiny_build(point, num_fine, num_coarse):
    import keras

    x = keras.Input((32, 32, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(x))
    model = keras.Model(x, {"fine": keras.layers.Dense(num_fine, activation="softmax", name="fine")(h)})
    model.compile("adam", {"fine": "sparse_categorical_crossentropy"}, metrics={"fine": ["accuracy"]})
    return model


def test_a_keras_objective_winner_is_retrained_with_its_builder_and_the_command_says_how(tmp_path, cifar10_dir,
                                                                                         capsys):
    from hks.retrain import retrain_best

    settings = _settings(tmp_path, cifar10_dir)
    best = {"status": "ok", "loss": -0.2, "fine_best_accuracy": 0.2, "best_epoch": 1, "tid": 0,
            "model_name": "model_0.2000_mine", "space": {"u": 0.5}, "dataset": "cifar10"}
    res.write_result(best, settings.results_dir)
    assert main(["retrain-best", "--from", settings.results_dir, *_cli_settings(settings)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot rebuild: from Python, call hks.retrain.retrain_best(settings, results, build=" in err
    assert len(err.splitlines()) == 1
    test = retrain_best(settings, [best], build=_tiny_build, verbose=False)
    assert test["train_images"] == 600 and 0.0 <= test["fine_accuracy"] <= 1.0 and Path(test["model_file"]).is_file()
