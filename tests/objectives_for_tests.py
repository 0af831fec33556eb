"""A cheap objective and spaces for the distributed tests, imported by name by real worker processes.

``quadratic`` behaves like ``hks.objective:run_trial`` (same signature, reports epochs, returns its
result for whoever completes the trial to write) but sleeps instead of training, so the tests
exercise the protocol, not TensorFlow.
``HKS_TEST_TRIAL_SECONDS`` sets how long a trial takes.
"""

from __future__ import annotations

import os
import time

from hyperopt import hp

from hks import results as res

SPACE = {
    "x": hp.uniform("x", -3.0, 3.0),
    "shape": hp.choice("shape", ["flat", {"bump": hp.uniform("bump", 0.0, 1.0)}]),
}
EPOCHS = 2


def quadratic(point, settings, *, tid=None, on_epoch=None, **_):
    """Loss ``(x - 1)^2 (+ bump)``, after ``HKS_TEST_TRIAL_SECONDS`` spread over two "epochs"."""
    seconds = float(os.environ.get("HKS_TEST_TRIAL_SECONDS", "0.2"))
    started = time.time()
    bump = point["shape"]["bump"] if isinstance(point["shape"], dict) else 0.0
    loss = (point["x"] - 1.0) ** 2 + bump
    for epoch in range(EPOCHS):
        time.sleep(seconds / EPOCHS)
        if on_epoch is not None:
            on_epoch(epoch, {"loss": loss + 1.0 / (epoch + 1), "val_fine_accuracy": -loss})
    result = {"status": res.STATUS_OK, "loss": loss, "fine_best_accuracy": -loss, "space": point, "tid": tid,
              "epochs_run": EPOCHS, "started_at": started, "finished_at": time.time(),
              "train_seconds": time.time() - started, "model_name": res.make_model_name(-loss)}
    return result



def missing_data(point, settings, **_):
    """A worker whose machine lacks the dataset: a setup problem, not the trial's fault."""
    from hks.errors import DatasetError

    raise DatasetError(f"{settings.data_dir}/cifar-100-python.tar.gz not found: put the archive there")


def dies_on_first_trial(point, settings, *, tid=None, **kwargs):
    """Kills its own process (as a segfault or the kernel's OOM killer would) on trial 0."""
    import signal

    if tid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return quadratic(point, settings, tid=tid, **kwargs)


def flat_quadratic(point, **_):
    """A cheap objective over tests/spaces/flat_space.py, for --algo gp with workers."""
    return (point["x"] - 0.3) ** 2 + (0.5 if point["kind"] == "b" else 0.0)


def learning_curve(point, settings, *, tid=None, on_epoch=None, should_prune=None, checkpoint=None, **_):
    """A trial of ``settings.epochs`` quick "epochs" whose validation accuracy rises towards a level set by
    the point (better near x = 1), asking ``should_prune`` after each epoch as hks's own trials do. Like
    them it pauses when told to (keeping its epoch count in ``checkpoint``), and a resumed trial hands
    its past epochs on again and goes on after them."""
    return _curve_trial(1.0 / (1.0 + (point["x"] - 1.0) ** 2), settings, on_epoch, should_prune, checkpoint)


def fading_curve(point, settings, *, tid=None, on_epoch=None, should_prune=None, checkpoint=None, **_):
    """:func:`learning_curve` whose level falls with the trial's number, whatever the point: each trial is
    worse than every earlier one, so which trials ASHA runs on is known in advance."""
    return _curve_trial(0.9 ** (tid or 0), settings, on_epoch, should_prune, checkpoint)


def forgetful_fading_curve(point, settings, *, tid=None, on_epoch=None, should_prune=None, checkpoint=None, **_):
    """:func:`fading_curve` on a worker whose checkpoints are out of reach of the next one: a paused
    trial's checkpoint is gone when it is promoted, so it trains its first epochs again."""
    from pathlib import Path

    result = fading_curve(point, settings, tid=tid, on_epoch=on_epoch, should_prune=should_prune,
                          checkpoint=checkpoint)
    if checkpoint:
        Path(checkpoint).unlink(missing_ok=True)
    return result


def _curve_trial(level, settings, on_epoch, should_prune, checkpoint):
    import json
    from pathlib import Path

    saved = Path(checkpoint) if checkpoint else None
    done = json.loads(saved.read_text())["epochs"] if saved is not None and saved.exists() else 0
    history = {"val_fine_accuracy": []}
    for epoch in range(settings.epochs):
        accuracy = level * (1.0 - 0.5 ** (epoch + 1))
        history["val_fine_accuracy"].append(accuracy)
        logs = {"val_fine_accuracy": accuracy, "loss": 1.0 - accuracy}
        if on_epoch is not None:
            on_epoch(epoch, logs)
        decision = should_prune(epoch, logs) if should_prune is not None else False
        if decision and epoch >= done:
            result = {"status": res.STATUS_PRUNED, "pruned": True, "loss": -max(history["val_fine_accuracy"]),
                      "fine_best_accuracy": max(history["val_fine_accuracy"]), "history": history,
                      "pruned_at_epoch": epoch + 1, "rung": getattr(decision, "rung", None), "epochs_run": epoch + 1,
                      "resumed_from_epoch": done or None}
            if getattr(decision, "pause", False) and saved is not None:
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(json.dumps({"epochs": epoch + 1}))
                result["paused"] = True
            return result
    best = max(history["val_fine_accuracy"])
    return {"status": res.STATUS_OK, "loss": -best, "fine_best_accuracy": best, "history": history,
            "epochs_run": settings.epochs, "resumed_from_epoch": done or None}
