"""The two heads every hks model ends with (``fine``, and ``coarse`` when the dataset has coarse
labels), shared by the classic and the modern model builders."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def softmax_heads(x: keras.KerasTensor, num_fine: int, num_coarse: int | None,
                  coarse_weight: float) -> tuple[dict, dict]:
    """The ``fine`` (and ``coarse``) softmax heads and their loss weights (fine 1).

    The heads compute in float32 whatever the precision policy: a float16 softmax loses the small
    probabilities that cross-entropy and early stopping read.
    """
    from keras import layers

    outputs = {"fine": layers.Dense(num_fine, activation="softmax", name="fine", dtype="float32")(x)}
    loss_weights = {"fine": 1.0}
    if num_coarse:
        outputs["coarse"] = layers.Dense(num_coarse, activation="softmax", name="coarse", dtype="float32")(x)
        loss_weights["coarse"] = float(coarse_weight)
    return outputs, loss_weights


def head_metrics(heads: list[str]) -> dict[str, list]:
    """Accuracy per head, logged as ``<head>_accuracy`` however many heads there are.

    Keras prefixes metric names with the output name only for multi-output models, so a single
    head names its metric itself; the history then reads the same for CIFAR-10 and CIFAR-100.
    """
    import keras

    name = "accuracy" if len(heads) > 1 else f"{heads[0]}_accuracy"
    return {head: [keras.metrics.SparseCategoricalAccuracy(name=name)] for head in heads}
