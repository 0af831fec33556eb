"""Resumable trials: a trial stopped mid-training goes on from its checkpoint, with its optimizer,
early stopping and pruning state, and a checkpoint that is not the trial's is set aside."""

import json
import time

import numpy as np
import pytest

from hks import checkpoint as ckpt
from hks import config, objective
from hks.config import Settings
from hks.errors import ConfigError
from hks.space import demo_point

SMALL = {**demo_point(), "conv_hiddn_units_mult": 0.2, "fc_units_1_mult": 0.05, "residual": None,
         "first_conv": None, "batch_size": 64, "use_BN": False}
FROZEN = {**SMALL, "lr_rate_mult": 1e-9}  # cannot learn: validation accuracy never improves


@pytest.fixture
def settings(tiny_settings, cifar10_dir):
    return tiny_settings.replace(dataset="cifar10", data_dir=str(cifar10_dir), dataset_size=600, epochs=4,
                                 patience=10)


def _interrupted_after(epochs: int, seen: list):
    """An on_epoch hook that records the logs and stops the trial (as SIGTERM does) after ``epochs`` epochs."""
    def on_epoch(epoch, logs):
        seen.append((epoch, logs))
        if epoch + 1 == epochs:
            raise KeyboardInterrupt
    return on_epoch


def _saved(path):
    """(epochs done, the optimizer's step count) in a checkpoint file; Keras keeps the count first."""
    with np.load(path) as data:
        return len(json.loads(str(data["meta"]))["history"]["loss"]), int(data["o0"])


def test_a_trial_stopped_mid_training_resumes_from_its_last_epoch_exactly_as_if_never_stopped(settings, tmp_path):
    uninterrupted = objective.run_trial(SMALL, settings, tid=7, verbose=False)
    path = tmp_path / "trial_8.npz"
    first: list = []
    with pytest.raises(KeyboardInterrupt):
        objective.run_trial(SMALL, settings, tid=7, verbose=False, checkpoint=path,
                            on_epoch=_interrupted_after(2, first))
    epochs_done, steps_after_two = _saved(path)
    assert epochs_done == 2 and steps_after_two > 0

    seen: list = []
    second_attempt = time.perf_counter()
    result = objective.run_trial(SMALL, settings, tid=7, verbose=False, checkpoint=path,
                                 on_epoch=lambda epoch, logs: seen.append((epoch, logs)))
    second_attempt = time.perf_counter() - second_attempt
    assert result["status"] == "ok" and result["resumed_from_epoch"] == 2
    assert result["train_seconds"] > second_attempt  # the first attempt's two epochs are counted too
    assert [epoch for epoch, _ in seen] == [0, 1, 2, 3]  # the past epochs are handed on again, then the new ones
    assert seen[:2] == first  # ...as they were measured
    assert result["history"]["val_fine_accuracy"][:2] == [logs["val_fine_accuracy"] for _, logs in first]
    assert len(result["history"]["val_fine_accuracy"]) == 4 and result["epochs_run"] == 4
    assert _saved(path) == (4, 2 * steps_after_two)  # the optimizer went on counting: 2 more epochs, not 4
    # Its optimizer, dropout masks, shuffles and flips go on where they stopped: not a replay of its first epochs,
    # whose batches and masks the model has already fitted (it once logged 0.97 training accuracy at epoch 3)
    assert result["history"].keys() == uninterrupted["history"].keys()
    for key, values in uninterrupted["history"].items():
        assert result["history"][key] == pytest.approx(values, rel=1e-5), key


def test_early_stopping_keeps_its_patience_count_across_a_resume(settings, tmp_path):
    path, stopped_early = tmp_path / "trial_1.npz", settings.replace(epochs=8, patience=2)
    with pytest.raises(KeyboardInterrupt):
        objective.run_trial(FROZEN, stopped_early, tid=0, verbose=False, checkpoint=path,
                            on_epoch=_interrupted_after(2, []))
    result = objective.run_trial(FROZEN, stopped_early, tid=0, verbose=False, checkpoint=path)
    # uninterrupted, it stops after epoch 3 (best at 1, two epochs without progress); a fresh count would run 5
    assert result["resumed_from_epoch"] == 2 and result["epochs_run"] == 3 and result["best_epoch"] == 1


def test_a_resumed_trial_is_not_judged_again_at_the_epochs_it_ran_and_is_pruned_later_as_usual(settings, tmp_path):
    path = tmp_path / "trial_3.npz"
    with pytest.raises(KeyboardInterrupt):
        objective.run_trial(SMALL, settings, tid=2, verbose=False, checkpoint=path, on_epoch=_interrupted_after(2, []))
    asked = []

    def stop_everything(epoch, logs):
        asked.append(epoch)
        return True

    result = objective.run_trial(SMALL, settings, tid=2, verbose=False, checkpoint=path, should_prune=stop_everything)
    assert asked == [0, 1, 2]  # the past epochs are shown to the pruner (it keeps the curve), their answers ignored
    assert result["status"] == "pruned" and result["pruned_at_epoch"] == 3 and result["resumed_from_epoch"] == 2


def test_a_trial_pruned_just_before_it_died_stays_pruned_without_training_more(settings, tmp_path):
    path = tmp_path / "trial_4.npz"

    def stop_at_two(epoch, logs):
        return epoch == 1

    with pytest.raises(KeyboardInterrupt):  # told to stop after epoch 2, killed before its result was recorded
        objective.run_trial(SMALL, settings, tid=3, verbose=False, checkpoint=path, should_prune=stop_at_two,
                            on_epoch=_interrupted_after(2, []))
    seen = []
    result = objective.run_trial(SMALL, settings, tid=3, verbose=False, checkpoint=path, should_prune=lambda *_: False,
                                 on_epoch=lambda epoch, logs: seen.append(epoch))
    assert seen == [0, 1] and result["status"] == "pruned" and result["pruned_at_epoch"] == 2


def test_a_paused_trial_keeps_a_checkpoint_of_its_pause_epoch_whatever_checkpoint_every_says(settings, tmp_path):
    from hks.pruners import Decision

    path = tmp_path / "trial_6.npz"

    def pause_at_three(epoch, logs):
        return Decision(True, rung=0, pause=True) if epoch == 2 else Decision(False)

    result = objective.run_trial(SMALL, settings.replace(checkpoint_every=5), tid=5, verbose=False, checkpoint=path,
                                 should_prune=pause_at_three)
    assert result["status"] == "pruned" and result["paused"] and result["pruned_at_epoch"] == 3
    assert _saved(path)[0] == 3
    resumed = objective.run_trial(SMALL, settings, tid=5, verbose=False, checkpoint=path,
                                  should_prune=lambda *_: Decision(False))
    assert resumed["status"] == "ok" and resumed["resumed_from_epoch"] == 3 and resumed["epochs_run"] == 4
    assert resumed["history"]["val_fine_accuracy"][:3] == result["history"]["val_fine_accuracy"]


def test_a_checkpoint_of_another_point_is_set_aside_and_the_trial_starts_afresh(settings, tmp_path, capsys):
    path = tmp_path / "trial_5.npz"
    with pytest.raises(KeyboardInterrupt):
        objective.run_trial(SMALL, settings, tid=4, verbose=False, checkpoint=path, on_epoch=_interrupted_after(1, []))
    other = {**SMALL, "lr_rate_mult": 0.5}
    result = objective.run_trial(other, settings.replace(epochs=2), tid=4, checkpoint=path)
    assert "resumed_from_epoch" not in result and result["epochs_run"] == 2
    assert "is of another point, seed or --epochs; starting afresh" in capsys.readouterr().out


def test_an_unreadable_checkpoint_is_set_aside(settings, tmp_path):
    path = tmp_path / "trial_2.npz"
    path.write_bytes(b"half a file")
    saved, note = ckpt.load(path, "whatever")
    assert saved is None and "unreadable checkpoint trial_2.npz set aside" in note


def test_checkpoints_round_trip_and_a_model_of_other_shapes_is_left_untouched(settings):
    import keras

    def model(width):
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(width), keras.layers.Dropout(0.5),
                              keras.layers.Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        m.fit(np.ones((4, 3)), np.ones((4, 1)), verbose=0)
        return m

    trained = model(2)
    saved = ckpt.capture(trained, "key", {"loss": [1.0]}, {"wait": 0, "best": 1.0, "best_epoch": 0})
    fresh = model(2)
    assert ckpt.restore(fresh, saved)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), trained.get_weights()))
    assert all(np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(fresh.optimizer.variables, trained.optimizer.variables))
    assert saved.seeds and all(np.array_equal(np.asarray(a), b) for a, b in zip(ckpt.seed_states(fresh), saved.seeds))
    assert not np.array_equal(np.asarray(ckpt.seed_states(model(2))[0]), saved.seeds[0])  # training moved them on
    wider = model(3)
    before = [w.copy() for w in wider.get_weights()]
    assert not ckpt.restore(wider, saved)
    assert all(np.array_equal(a, b) for a, b in zip(wider.get_weights(), before))


def test_checkpoint_paths_are_per_experiment_and_trial_and_off_with_zero(tmp_path):
    on = Settings(results_dir=str(tmp_path))
    assert ckpt.trial_checkpoint(on, "my search/1", 0) == tmp_path / "checkpoints" / "my_search_1" / "trial_1.npz"
    assert ckpt.trial_checkpoint(on.replace(checkpoint_every=0), "x", 0) is None
    with pytest.raises(ConfigError, match="--checkpoint-every must be >= 0"):
        config.resolve({"checkpoint_every": "-1"}, environ={})


def test_a_checkpoint_that_cannot_be_written_costs_the_resume_not_the_trial(settings, tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    result = objective.run_trial(SMALL, settings.replace(epochs=2), tid=0, checkpoint=blocker / "trial_1.npz")
    assert result["status"] == "ok" and result["epochs_run"] == 2
    out = capsys.readouterr().out
    assert out.count("cannot write the checkpoint") == 1 and "training goes on without one" in out
