"""--precision mixed and --jit on CPU: models build, train an epoch, and their heads stay float32."""

import json

import keras
import numpy as np
import pytest

from hks import objective
from hks.config import resolve
from hks.data import make_dataset
from hks.errors import ConfigError
from hks.memory import PeakRss
from hks.model import build_model
from hks.modern_space import demo_point as modern_demo_point
from hks.precision import apply_jit, dtype_policy
from hks.space import demo_point

SMALL = {**demo_point(), "conv_hiddn_units_mult": 0.2, "fc_units_1_mult": 0.05, "residual": None,
         "first_conv": None, "batch_size": 64}
TINY_RESNET = {**modern_demo_point(), "width": 8, "depth": 1, "batch_size": 64}


@pytest.fixture
def cifar10_settings(tiny_settings, cifar10_dir):
    return tiny_settings.replace(dataset="cifar10", data_dir=str(cifar10_dir), dataset_size=300)


def test_precision_and_jit_settings_parse_and_refuse_unknown_values():
    assert resolve({"precision": "mixed", "jit": "on"}, {}).precision == "mixed"
    assert resolve({}, {"HKS_JIT": "off"}).jit == "off"
    with pytest.raises(ConfigError, match="--precision='half' is not one of float32, mixed"):
        resolve({"precision": "half"}, {})


@pytest.mark.parametrize("point", [SMALL, TINY_RESNET], ids=["classic", "modern"])
def test_mixed_precision_computes_in_bfloat16_on_cpu_with_float32_heads_and_trains(point, cifar10_settings):
    from hks.objective import splits_for

    splits = splits_for(cifar10_settings)
    with dtype_policy("mixed") as policy:
        model = build_model(point, 10, None, train_steps=10)
        two_heads = build_model(point, 100, 20, train_steps=10)
    assert policy == "mixed_bfloat16"  # no GPU here
    assert keras.config.dtype_policy().name == "float32"  # restored for whatever comes next
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.compute_dtype == "bfloat16" for layer in convs)
    assert all(layer.variable_dtype == "float32" for layer in convs)
    for head in ("fine", "coarse"):
        assert two_heads.get_layer(head).compute_dtype == "float32"
    history = model.fit(make_dataset(splits.train, 64, training=True, seed=0), epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    predictions = model.predict(splits.val.x[:8], verbose=0)
    assert predictions["fine"].dtype == np.float32


def test_jit_on_compiles_the_train_step_with_xla_and_off_turns_it_off(cifar10_settings):
    model = build_model(SMALL, 10, None)
    apply_jit(model, "on")
    assert model.jit_compile is True
    apply_jit(model, "off")
    assert model.jit_compile is False


def test_a_trial_with_mixed_precision_and_xla_trains_and_records_its_peak_memory(cifar10_settings, monkeypatch):
    """(The modern space's trial with both runs from the command line: tests/test_modern_space.py.)"""
    settings = cifar10_settings.replace(precision="mixed", jit="on")
    trained = []  # the model the trial built, as it was handed to training
    apply_jit = objective.apply_jit
    monkeypatch.setattr(objective, "apply_jit", lambda model, jit: (apply_jit(model, jit), trained.append(model)))
    result = objective.run_trial(SMALL, settings, tid=1, verbose=False)
    assert result["status"] == "ok", result.get("error")
    [model] = trained
    assert model.jit_compile is True  # XLA, which Keras leaves off on a CPU
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and {layer.compute_dtype for layer in convs} == {"bfloat16"}  # mixed precision on the CPU
    assert model.get_layer("fine").compute_dtype == "float32"  # cifar10: one head, in float32
    assert 0.0 <= result["fine_best_accuracy"] <= 1.0 and np.isfinite(result["real_loss"])
    assert result["peak_rss_mb"] > 100  # TensorFlow alone is more than that
    saved = objective.save_result(result, settings.results_dir)  # as the runner does once the trial is recorded
    on_disk = json.loads(saved.read_text())
    assert on_disk["peak_rss_mb"] == result["peak_rss_mb"]
    assert keras.config.dtype_policy().name == "float32"


def test_peak_rss_sees_memory_used_and_freed_inside_it():
    with PeakRss(interval=0.01) as memory:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
        import time

        time.sleep(0.1)
        del block
    with PeakRss(interval=0.01) as baseline:
        pass
    assert memory.peak_mb - baseline.peak_mb > 150
