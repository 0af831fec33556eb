"""Build and compile a point of the modern space (:mod:`hks.modern_space`): a two-headed ResNet.

Basic residual blocks (two 3x3 convs with batch norm, projection shortcuts where the shape
changes) in three stages of ``width``, 2x and 4x filters, ``depth`` blocks each; global average
pooling; float32 softmax heads. The optimizer's learning rate follows a warm-up schedule spread
over the trial's whole step budget; the loss is label-smoothed sparse cross-entropy.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from hks.errors import SpaceError
from hks.heads import head_metrics, softmax_heads

DEFAULT_TRAIN_STEPS = 30_000  # when the caller does not know the budget (e.g. an architecture picture)
PIXEL_MEAN, PIXEL_STD = 121.0, 64.0
REQUIRED = ("width", "depth", "head_dropout", "optimizer", "schedule", "warmup_fraction", "label_smoothing",
            "coarse_labels_weight")


@keras.saving.register_keras_serializable(package="hks")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup_steps``, then a linear (one-cycle) or cosine decay to 0."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int, shape: str = "one_cycle") -> None:
        self.peak, self.total_steps, self.warmup_steps, self.shape = peak, total_steps, warmup_steps, shape

    def __call__(self, step: int | keras.KerasTensor) -> keras.KerasTensor:
        step = ops.cast(step, "float32")
        warm = ops.minimum(1.0, (step + 1.0) / float(max(self.warmup_steps, 1)))
        progress = ops.clip((step - self.warmup_steps) / float(max(self.total_steps - self.warmup_steps, 1)), 0.0, 1.0)
        if self.shape == "cosine":
            decay = 0.5 * (1.0 + ops.cos(3.141592653589793 * progress))
        else:
            decay = 1.0 - progress
        return self.peak * ops.minimum(warm, decay)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "shape": self.shape}


@keras.saving.register_keras_serializable(package="hks")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy against labels smoothed by ``label_smoothing`` (Keras has none)."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        one_hot = ops.one_hot(y_true, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _conv_bn(x: keras.KerasTensor, filters: int, strides: int = 1, kernel: int = 3,
             relu: bool = True) -> keras.KerasTensor:
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # settles within a short trial, as in hks.model
    return layers.ReLU()(x) if relu else x


def _block(x: keras.KerasTensor, filters: int, strides: int) -> keras.KerasTensor:
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, strides, kernel=1, relu=False)
    y = _conv_bn(_conv_bn(x, filters, strides), filters, relu=False)
    return layers.ReLU()(layers.Add()([shortcut, y]))


def _backbone(point: dict[str, Any]) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    # Raw pixels to about zero mean and unit variance (CIFAR's pixel mean 121 and deviation 64).
    x = layers.Rescaling(1.0 / PIXEL_STD, offset=-PIXEL_MEAN / PIXEL_STD)(inputs)
    width, depth = int(point["width"]), int(point["depth"])
    x = _conv_bn(x, width)
    for stage in range(3):
        for index in range(depth):
            x = _block(x, width * 2 ** stage, strides=2 if stage > 0 and index == 0 else 1)
    x = layers.GlobalAveragePooling2D()(x)
    if point["head_dropout"] > 0:
        x = layers.Dropout(float(point["head_dropout"]))(x)
    return inputs, x


def _optimizer(point: dict[str, Any], train_steps: int) -> keras.optimizers.Optimizer:
    choice = point["optimizer"]
    warmup = int(round(train_steps * float(point["warmup_fraction"])))
    schedule = WarmupSchedule(float(choice["learning_rate"]), train_steps, warmup, point["schedule"])
    extra = {"momentum": 0.9, "nesterov": True} if choice["name"] == "SGD" else {}
    optimizer = getattr(keras.optimizers, choice["name"])(learning_rate=schedule,
                                                          weight_decay=float(choice["weight_decay"]), **extra)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def build_modern_model(point: dict[str, Any], num_fine: int = 100, num_coarse: int | None = 20, *,
                       train_steps: int | None = None) -> keras.Model:
    """A compiled two-headed ResNet for one point of :data:`hks.modern_space.SPACE`."""
    missing = [key for key in REQUIRED if key not in point]
    if missing:
        raise SpaceError(f"the modern space point has no {', '.join(missing)}: see hks.modern_space.SPACE")
    try:
        inputs, features = _backbone(point)
        outputs, loss_weights = softmax_heads(features, num_fine, num_coarse, point["coarse_labels_weight"])
        model = keras.Model(inputs, outputs, name="hks_resnet")
        loss = SmoothedSparseCrossentropy(float(point["label_smoothing"]))
        model.compile(optimizer=_optimizer(point, int(train_steps or DEFAULT_TRAIN_STEPS)),
                      loss={head: loss for head in outputs}, loss_weights=loss_weights,
                      metrics=head_metrics(list(outputs)))
    except (ValueError, TypeError, KeyError) as exc:
        raise SpaceError(f"this point of the modern space builds no valid model ({exc}): {point}") from None
    return model
