"""TensorBoard logs of a trial with its hyperparameters, for the HParams dashboard (``--tensorboard``).

Keras's TensorBoard callback writes the per-epoch scalars (``train/`` and ``validation/``); this one
adds the trial's point as HParams session data and its best validation figures as metrics, so the
HParams view lists every trial, numbered from 1 as everywhere else, with its settings and results.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

BEST_METRICS = ("val_fine_accuracy", "val_coarse_accuracy")


def hparam_values(point: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """A point as HParams values: nested keys dotted, anything not a number, bool or string as text."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in point.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(hparam_values(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def trial_callback(log_dir: str | Path, trial_id: str,
                   point: Mapping[str, Any] | None) -> keras.callbacks.TensorBoard:
    """Keras's TensorBoard callback that also records the point (HParams) and the best validation metrics."""
    import keras

    class HParamsTensorBoard(keras.callbacks.TensorBoard):
        def on_train_begin(self, logs: dict | None = None) -> None:
            super().on_train_begin(logs)
            self.best: dict[str, float] = {}
            if point is not None:
                from tensorboard.plugins.hparams import api as hp

                with self._hparams_writer().as_default():
                    hp.hparams(hparam_values(point), trial_id=trial_id)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            super().on_epoch_end(epoch, logs)
            for key in BEST_METRICS:
                if logs and key in logs:
                    self.best[key] = max(self.best.get(key, float("-inf")), float(logs[key]))
            if logs and "val_loss" in logs:
                self.best["val_loss"] = min(self.best.get("val_loss", float("inf")), float(logs["val_loss"]))

        def on_train_end(self, logs: dict | None = None) -> None:
            import tensorflow as tf

            with self._hparams_writer().as_default():
                for key, value in self.best.items():
                    tf.summary.scalar(f"best_{key}", value, step=0)
            self._hparams_writer().flush()
            super().on_train_end(logs)

        def _hparams_writer(self) -> tf.summary.SummaryWriter:
            import tensorflow as tf

            if getattr(self, "_hp_writer", None) is None:
                self._hp_writer = tf.summary.create_file_writer(str(log_dir))
            return self._hp_writer

    return HParamsTensorBoard(log_dir=str(log_dir))
