"""The classic sample's model module, kept for users who import it.

``build_model(space)`` returns the compiled two-headed Keras model of a point of the space;
``build_and_train(space)`` trains it as one trial of the search and returns the hyperopt result.
Settings come from the environment (``HKS_EPOCHS``, ``HKS_DATA_DIR``, ...), as for a search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hks.config import resolve
from hks.data import spec_for
from hks.model import build_model as _build_model
from hks.objective import run_trial

if TYPE_CHECKING:
    import keras


def build_model(space: dict[str, Any]) -> keras.Model:
    spec = spec_for(resolve().dataset)
    return _build_model(space, spec.num_fine, spec.num_coarse)


def build_and_train(space: dict[str, Any], save_best_weights: bool = False) -> dict[str, Any]:
    settings = resolve()
    if save_best_weights:
        settings = settings.replace(save_models=True)
    return run_trial(space, settings)
