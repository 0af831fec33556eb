"""hks: distributed hyperparameter and architecture search for Keras CNNs, driven by hyperopt.

The public API (loaded on first use, so that a worker importing ``hks.worker`` stays lean)::

    hks.optimize(objective, space, max_evals=30)   # search; returns the study
    hks.Study(settings, space=..., objective=...)  # optimize(), ask() / tell(), best, results
    hks.keras_objective(build)                     # train your own Keras model builder on CIFAR
    hks.Settings                                   # every setting, as for the command line
"""

import os
from typing import Any

# TensorFlow's C++ start-up chatter hides the progress lines users read; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_EXPORTS = {"optimize": "hks.study", "Study": "hks.study", "Trial": "hks.study", "Settings": "hks.config",
            "keras_objective": "hks.evaluation"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hks' has no attribute {name!r}")
