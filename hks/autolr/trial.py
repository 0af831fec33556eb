"""One autoHyper trial: train the fixed architecture a few epochs at one learning rate, measure Z.

Every trial starts from the same initial weights and sees the same batches (one seed for all), so
the learning rate is the only thing that differs between trials. Knowledge gains are measured at
the end of every epoch; Z is their zero fraction averaged over the epochs (autoHyper, Tuli et al.
2021). A trial whose loss diverges gets Z = 0: the rate lies beyond the useful range, which makes
the scan zoom in below it instead of raising the rate further.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hks.autolr.knowledge_gain import conv_kernels, layer_gains, response, zero_fraction
from hks.data import Splits, make_dataset
from hks.model import build_model

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class TrialSetup:
    """What stays fixed across the trials of one scan."""

    point: dict[str, Any]
    splits: Splits
    optimizer: str
    epochs: int
    seed: int
    augment_crop: bool = False
    verbose: bool = True

    @property
    def batch_size(self) -> int:
        return int(self.point.get("batch_size") or 128)


def _callback(setup: TrialSetup, epochs_out: list[dict[str, Any]]) -> keras.callbacks.Callback:
    import keras

    class MeasureGains(keras.callbacks.Callback):
        """Knowledge gains of every conv layer after each epoch; stops a diverged run at once."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            kernels = conv_kernels(self.model)
            finite = all(math.isfinite(v) for v in logs.values()) and all(
                np.isfinite(k).all() for k in kernels.values())
            entry: dict[str, Any] = {"epoch": epoch + 1, **logs}
            if finite:
                entry["layers"] = layer_gains(kernels)
                entry["Z"] = zero_fraction(entry["layers"])
            else:
                self.model.stop_training = True
            epochs_out.append(entry)
            if setup.verbose:
                z_text = f"Z {entry['Z']:.3f}" if "Z" in entry else "diverged"
                accuracy = logs.get("fine_accuracy", logs.get("accuracy", float("nan")))
                print(f"    epoch {epoch + 1}/{setup.epochs}  loss {logs.get('loss', float('nan')):.4f}  "
                      f"accuracy {accuracy:.4f}  {z_text}", flush=True)

    return MeasureGains()


def run_lr_trial(lr: float, setup: TrialSetup) -> dict[str, Any]:
    """Train at ``lr`` and return the trial record (Z, per-epoch metrics and per-layer gains)."""
    import keras

    started = time.perf_counter()
    epochs: list[dict[str, Any]] = []
    keras.utils.set_random_seed(setup.seed)
    point = {**setup.point, "optimizer": setup.optimizer, "lr_rate_mult": 1.0}
    model = build_model(point, setup.splits.spec.num_fine, setup.splits.spec.num_coarse)
    model.optimizer.learning_rate = lr
    try:
        train = make_dataset(setup.splits.train, setup.batch_size, training=True,
                             augment_crop=setup.augment_crop, seed=setup.seed)
        val = make_dataset(setup.splits.val, setup.batch_size, training=False)
        model.fit(train, validation_data=val, epochs=setup.epochs, verbose=0, shuffle=False,
                  callbacks=[keras.callbacks.TerminateOnNaN(), _callback(setup, epochs)])
    finally:
        del model
        keras.backend.clear_session()
    diverged = not epochs or any("layers" not in e for e in epochs)
    z = 0.0 if diverged else response([e["layers"] for e in epochs])
    return {"lr": lr, "Z": z, "diverged": diverged, "epochs": epochs,
            "seconds": round(time.perf_counter() - started, 3)}
