"""The modern space: every architecture and training choice builds a valid two-headed model, its
schedules and loss do what they say, a trial trains, and ``--space modern`` names it."""

import itertools
import json
import math
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from hks.data import Split, make_dataset
from hks.errors import SpaceError
from hks.model import build_model
from hks.modern_model import SmoothedSparseCrossentropy, WarmupSchedule
from hks.modern_space import BATCH_SIZES, CUTOUT_SIZES, SCHEDULES, SPACE, WIDTHS, demo_point
from hks.space import SPACE as CLASSIC
from hks.space import fingerprint, load_space, sample_point

ROOT = Path(__file__).resolve().parents[1]
OPTIMIZERS = ({"name": "SGD", "learning_rate": 0.4, "weight_decay": 1e-3},
              {"name": "AdamW", "learning_rate": 3e-4, "weight_decay": 1e-3})


def _points():
    """Every width x depth, with the optimizers, schedules, batch sizes and cutouts cycled through them."""
    others = itertools.cycle(itertools.product(OPTIMIZERS, SCHEDULES, BATCH_SIZES, CUTOUT_SIZES))
    for width, depth in itertools.product(WIDTHS, (1, 2, 3)):
        optimizer, schedule, batch, cutout = next(others)
        yield {**demo_point(), "width": width, "depth": depth, "optimizer": optimizer, "schedule": schedule,
               "batch_size": batch, "cutout": cutout, "head_dropout": 0.0 if depth == 1 else 0.3,
               "label_smoothing": 0.0 if width == 16 else 0.2}


def test_every_architecture_builds_a_two_headed_resnet_with_float32_softmax_heads():
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    for point in _points():
        model = build_model(point, 100, 20, train_steps=50)
        out = model(x, training=False)
        assert set(out) == {"fine", "coarse"}
        assert tuple(out["fine"].shape) == (2, 100) and tuple(out["coarse"].shape) == (2, 20)
        assert np.allclose(keras.ops.sum(out["fine"], axis=-1), 1.0, atol=1e-4)
        assert model.get_layer("fine").compute_dtype == "float32"
        adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
        assert len(adds) == 3 * point["depth"]  # three residual stages of `depth` blocks
        assert type(model.optimizer).__name__ == point["optimizer"]["name"]
        keras.backend.clear_session()


def test_sampled_points_build_and_cifar10_gets_one_head():
    for seed in range(4):
        point = sample_point(SPACE, seed)
        assert point["architecture"] == "resnet" and point["random_crop"] is True
        model = build_model(point, 10, None)
        assert list(model.output_names) == ["fine"]
        keras.backend.clear_session()


def test_the_schedules_warm_up_to_the_peak_then_decay_to_zero():
    for shape in SCHEDULES:
        schedule = WarmupSchedule(0.4, total_steps=100, warmup_steps=20, shape=shape)
        lr = [float(schedule(step)) for step in range(101)]
        assert lr[0] == pytest.approx(0.02) and lr[19] == pytest.approx(0.4)
        assert all(a <= b + 1e-7 for a, b in zip(lr[:20], lr[1:20]))
        assert all(a >= b - 1e-7 for a, b in zip(lr[19:], lr[20:]))
        assert lr[100] == pytest.approx(0.0, abs=1e-7)
    assert float(WarmupSchedule(1.0, 100, 0, "cosine")(50)) == pytest.approx(0.5, abs=1e-6)
    assert float(WarmupSchedule(1.0, 100, 0, "one_cycle")(50)) == pytest.approx(0.5, abs=1e-6)


def test_label_smoothing_is_plain_cross_entropy_at_zero_and_penalises_confidence_above():
    y_true = np.array([0, 2])
    y_pred = np.array([[0.97, 0.02, 0.01], [0.1, 0.1, 0.8]], dtype="float32")
    plain = keras.losses.SparseCategoricalCrossentropy()(y_true, y_pred)
    assert float(SmoothedSparseCrossentropy(0.0)(y_true, y_pred)) == pytest.approx(float(plain), rel=1e-5)
    assert float(SmoothedSparseCrossentropy(0.2)(y_true, y_pred)) > float(plain)


def test_cutout_zeroes_one_square_per_training_image_only():
    split = Split(np.full((64, 32, 32, 3), 255, dtype=np.uint8), np.zeros(64, dtype=np.int32), None)
    batch = next(iter(make_dataset(split, 64, training=True, cutout=8, seed=3)))[0].numpy()
    zeroed = (batch == 0).all(axis=-1).sum(axis=(1, 2))
    assert (zeroed > 0).all() and (zeroed <= 64).all() and (zeroed == 64).any()
    plain = next(iter(make_dataset(split, 64, training=False)))[0].numpy()
    assert (plain == 255).all()


def test_short_names_load_the_built_in_spaces_and_the_modern_one_differs():
    assert load_space("modern") is SPACE and load_space("classic") is CLASSIC
    assert fingerprint(SPACE) != fingerprint(CLASSIC)


def test_a_modern_point_missing_a_key_is_refused_by_name():
    point = {k: v for k, v in demo_point().items() if k != "schedule"}
    with pytest.raises(SpaceError, match="has no schedule"):
        build_model(point, 10, None)


def test_a_modern_search_trains_end_to_end_from_the_command_line(tmp_path, cifar10_dir):
    """``--space modern`` through the CLI, mixed precision and XLA on: crops, cutout and the schedule in real
    training, in its own process."""
    results = tmp_path / "results"
    args = [sys.executable, "-m", "hks", "search", "--space", "modern", "--dataset", "cifar10", "--data-dir",
            str(cifar10_dir), "--no-download", "--dataset-size", "300", "--epochs", "1", "--max-evals", "1",
            "--threads", "1", "--precision", "mixed", "--jit", "on", "--no-plots", "--results-dir", str(results),
            "--trials-file", str(tmp_path / "results.pkl"), "--algo", "tpe", "--n-startup-trials", "1"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (result_file,) = results.glob("model_*.txt.json")
    result = json.loads(result_file.read_text())
    assert result["status"] == "ok", result.get("error")
    assert result["space"]["architecture"] == "resnet" and result["peak_rss_mb"] > 0

    # retrain-best: the point's schedule spans the retraining's own steps (train + validation images)
    retrain = [sys.executable, "-m", "hks", "retrain-best", "--dataset", "cifar10", "--data-dir", str(cifar10_dir),
               "--no-download", "--dataset-size", "300", "--epochs", "2", "--threads", "1", "--results-dir",
               str(results), "--trials-file", str(tmp_path / "results.pkl")]
    done = subprocess.run(retrain, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (keras_file,) = results.glob("*_retrained.keras")
    with zipfile.ZipFile(keras_file) as saved:
        steps = {int(s) for s in re.findall(r'"total_steps": (\d+)', saved.read("config.json").decode())}
    assert steps == {2 * math.ceil(300 / result["space"]["batch_size"])}
