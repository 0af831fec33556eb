"""The modern built-in space: residual networks trained the way current CIFAR recipes train them.

Residual stages of searched depth and width, SGD with Nesterov momentum or AdamW (each with its
own learning-rate and weight-decay range), a one-cycle or cosine schedule with linear warm-up,
label smoothing, random 4-pixel crops and flips on every training batch with optional cutout,
and the batch size; two softmax heads as in the classic space. ``--space modern`` names it;
:mod:`hks.modern_model` builds its points (``build_model`` dispatches on ``architecture``).
"""

from __future__ import annotations

import math
from typing import Any

from hyperopt import hp
from hyperopt.pyll import Apply

from hks.space import int_range

WIDTHS = (16, 32, 48, 64)
BATCH_SIZES = (64, 128, 256, 512)
SCHEDULES = ("one_cycle", "cosine")
CUTOUT_SIZES = (0, 8, 12)


def _log_range(label: str, low: float, high: float) -> Apply:
    return hp.loguniform(label, math.log(low), math.log(high))


SPACE: dict[str, Any] = {
    "architecture": "resnet",
    # Architecture: a stem, three stages of basic residual blocks (width, 2x, 4x), global pooling.
    "width": hp.choice("width", list(WIDTHS)),
    "depth": int_range("depth", 1, 3),
    "head_dropout": hp.uniform("head_dropout", 0.0, 0.3),
    # Training.
    "optimizer": hp.choice("optimizer", [
        {"name": "SGD", "learning_rate": _log_range("sgd_learning_rate", 0.01, 0.4),
         "weight_decay": _log_range("sgd_weight_decay", 5e-5, 1e-3)},
        {"name": "AdamW", "learning_rate": _log_range("adamw_learning_rate", 3e-4, 5e-3),
         "weight_decay": _log_range("adamw_weight_decay", 1e-3, 1e-1)},
    ]),
    "schedule": hp.choice("schedule", list(SCHEDULES)),
    "warmup_fraction": hp.uniform("warmup_fraction", 0.02, 0.3),
    "label_smoothing": hp.uniform("label_smoothing", 0.0, 0.2),
    "batch_size": hp.choice("batch_size", list(BATCH_SIZES)),
    "coarse_labels_weight": hp.uniform("coarse_labels_weight", 0.1, 0.7),
    # Augmentation of training batches (flips always, as everywhere in hks).
    "random_crop": True,
    "cutout": hp.choice("cutout", list(CUTOUT_SIZES)),
}


def demo_point() -> dict[str, Any]:
    """A fixed mid-size point of the modern space, for tests and benchmarks."""
    return {"architecture": "resnet", "width": 32, "depth": 2, "head_dropout": 0.1,
            "optimizer": {"name": "SGD", "learning_rate": 0.1, "weight_decay": 5e-4},
            "schedule": "one_cycle", "warmup_fraction": 0.2, "label_smoothing": 0.1, "batch_size": 128,
            "coarse_labels_weight": 0.3, "random_crop": True, "cutout": 8}
