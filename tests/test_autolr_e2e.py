"""``python -m hks autolr`` end to end on the CIFAR-10 mini archive, and ``--base-lr``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hks.autolr.calibrate import LRRT_FILE, TRIALS_FILE, calibrate_base_lr, load_point
from hks.cli import main
from hks.config import Settings, resolve
from hks.errors import ConfigError
from hks.space import BASE_LEARNING_RATE, demo_point

SCAN_FLAGS = ["--min-lr", "0.01", "--max-lr", "0.1", "--num-lrs", "4", "--epochs-per-trial", "1",
              "--max-trials", "3"]


def _data_flags(cifar10_dir: Path, results: Path) -> list[str]:
    return ["--dataset", "cifar10", "--data-dir", str(cifar10_dir), "--no-download", "--dataset-size", "300",
            "--threads", "1", "--results-dir", str(results)]


def test_autolr_scans_real_training_writes_its_log_and_resumes(cifar10_dir, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["autolr", *_data_flags(cifar10_dir, results), *SCAN_FLAGS]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    chosen = float(printed[-1])
    assert any("Z " in line and "->" in line for line in printed)  # one progress line per trial

    with open(results / "autolr" / LRRT_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0].keys()) == ["lr", "Z", "decision"]
    measured = [r for r in rows if r["Z"] != ""]
    assert 1 <= len({r["lr"] for r in measured}) <= 3  # the trial cap (a zoomed grid may revisit a rate)
    assert all(0.0 <= float(r["Z"]) <= 1.0 for r in measured)
    assert rows[-1]["decision"] == "chosen" and float(rows[-1]["lr"]) == pytest.approx(chosen, rel=1e-5)
    scanned = [float(r["lr"]) for r in measured]
    assert min(scanned) <= chosen <= max(scanned)

    saved = json.loads((results / "autolr" / TRIALS_FILE).read_text())
    assert saved["chosen_lr"] == pytest.approx(chosen, rel=1e-5) and saved["trials_run"] == len(saved["trials"])
    for trial in saved["trials"]:
        epoch = trial["epochs"][0]
        assert epoch["layers"] and all({"gain3", "rank3", "gain4", "rank4"} <= set(layer)
                                       for layer in epoch["layers"].values())
        assert "loss" in epoch and trial["seconds"] > 0
    by_lr = {t["lr"]: t["Z"] for t in saved["trials"]}
    assert len(by_lr) >= 2, by_lr  # the scan compares learning rates: it must have trained more than one
    # the paper's premise: a larger learning rate leaves fewer layers without knowledge gain
    assert by_lr[max(by_lr)] < by_lr[min(by_lr)]

    # --base-lr auto runs the same scan: every learning rate is already measured, nothing is trained again.
    settings = resolve({"dataset": "cifar10", "data_dir": str(cifar10_dir), "download": False, "dataset_size": 300,
                        "threads": 1, "results_dir": str(results), "autolr_min_lr": 0.01, "autolr_max_lr": 0.1,
                        "autolr_num_lrs": 4, "autolr_epochs": 1, "autolr_max_trials": 3, "base_lr": "auto"})
    assert calibrate_base_lr(settings) == pytest.approx(chosen, rel=1e-5)
    assert "training at" not in capsys.readouterr().out
    assert json.loads((results / "autolr" / TRIALS_FILE).read_text())["trials_run"] == 0


def test_a_numeric_base_lr_is_used_as_given(tmp_path):
    settings = Settings(base_lr="0.003", results_dir=str(tmp_path))
    assert calibrate_base_lr(settings) == 0.003
    assert not any(tmp_path.iterdir())


def test_base_lr_auto_keeps_the_default_when_no_rate_learned(tmp_path, monkeypatch, capsys):
    from hks.autolr import calibrate

    def scan_where_nothing_learned(settings):  # Z = 1 at every rate: the scan's pick ranks nothing
        return calibrate.AutoLRResult(1e-4, "trial-cap", 3, tmp_path, learned=False)

    monkeypatch.setattr(calibrate, "run_autolr", scan_where_nothing_learned)
    assert calibrate_base_lr(Settings(base_lr="auto", results_dir=str(tmp_path))) == BASE_LEARNING_RATE
    assert f"keeps the default base learning rate {BASE_LEARNING_RATE:g}" in capsys.readouterr().out


def test_base_lr_setting_validation(monkeypatch):
    assert float(Settings().base_lr) == BASE_LEARNING_RATE
    assert resolve({}, {"HKS_BASE_LR": "auto"}).base_lr == "auto"
    with pytest.raises(ConfigError, match="--base-lr"):
        resolve({"base_lr": "fast"}, {})
    with pytest.raises(ConfigError, match="--base-lr"):
        resolve({"base_lr": "-0.1"}, {})


def test_point_files(tmp_path, cifar10_dir, capsys):
    result_file = tmp_path / "model_0.5_ab.txt.json"
    result_file.write_text(json.dumps({"loss": -0.5, "space": demo_point()}))
    assert load_point(str(result_file)) == demo_point()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"batch_size": 64}))
    code = main(["autolr", *_data_flags(cifar10_dir, tmp_path / "r"), "--point", str(bad), "--max-trials", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--point" in err
