"""Build the two-headed CNN that a point of the search space describes.

Input: 32x32x3 images with pixel values 0..255 (rescaled inside the model, so an exported
model takes raw pixels). Output: a dict of softmax heads, ``fine`` (and ``coarse`` when the
dataset has coarse labels). Augmentation is not part of the model: it happens in the training
input pipeline only, so evaluation never sees flipped images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hks import space as sp
from hks.errors import SpaceError
from hks.heads import head_metrics, softmax_heads

if TYPE_CHECKING:
    from types import ModuleType

    import keras


def _layers() -> tuple[ModuleType, ModuleType]:
    from keras import layers, regularizers

    return layers, regularizers


class _Builder:
    """Holds the point of the space while the layers are stacked."""

    def __init__(self, point: dict[str, Any]) -> None:
        layers, regularizers = _layers()
        self.layers = layers
        self.p = point
        self.activation = point["activation"]
        self.l2 = regularizers.l2(sp.BASE_L2_REG * point["l2_weight_reg_mult"])

    def conv(self, x: keras.KerasTensor, filters: int, kernel: int | None = None,
             strides: int = 1) -> keras.KerasTensor:
        kernel = int(kernel or self.p["conv_kernel_size"])
        return self.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                                  activation=self.activation, kernel_regularizer=self.l2)(x)

    def batch_norm(self, x: keras.KerasTensor) -> keras.KerasTensor:
        # Momentum 0.9 rather than Keras's 0.99: the running statistics must settle within the few
        # hundred steps of a short trial, or evaluation sees unsettled normalisation.
        return self.layers.BatchNormalization(momentum=0.9)(x) if self.p["use_BN"] else x

    def dropout(self, x: keras.KerasTensor, conv: bool) -> keras.KerasTensor:
        rate = self.p["conv_dropout_drop_proba" if conv else "fc_dropout_drop_proba"]
        return self.layers.Dropout(rate)(x) if rate > 0 else x

    def residual(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        """Pre-activation-free residual units: a linear 1x1 projection plus a dropped-out conv."""
        for _ in range(int(self.p["residual"])):
            shortcut = self.layers.Conv2D(filters, 1, padding="same", activation="linear",
                                          kernel_regularizer=self.l2)(x)
            branch = self.conv(self.dropout(x, conv=True), filters, self.p["res_conv_kernel_size"])
            x = self.batch_norm(self.layers.Add()([shortcut, branch]))
        return x

    def pool(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        kind = self.p["pooling_type"]
        if kind == "max":
            return self.layers.MaxPooling2D(2, padding="same")(x)
        if kind == "avg":
            return self.layers.AveragePooling2D(2, padding="same")(x)
        if kind == "all_conv":
            return self.conv(x, filters, kernel=3, strides=2)
        return self.inception_reduction(x, filters)

    def inception_reduction(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        """Halve the resolution through four parallel branches, concatenated (Inception-style)."""
        narrow = max(int(filters * 0.33) + 1, 1)
        wide = max(int(filters * 0.4) + 1, 1)
        a = self.conv(self.conv(x, narrow, kernel=1), narrow, kernel=3, strides=2)
        b = self.conv(self.conv(self.conv(x, wide, kernel=1), wide, kernel=3), wide, kernel=3, strides=2)
        c = self.layers.MaxPooling2D(2, padding="same")(self.conv(x, wide, kernel=1))
        d = self.layers.AveragePooling2D(2, padding="same")(self.conv(x, narrow, kernel=1))
        return self.layers.Concatenate()([a, b, c, d])

    def dense(self, x: keras.KerasTensor, units: int) -> keras.KerasTensor:
        x = self.layers.Dense(max(units, 1), activation=self.activation, kernel_regularizer=self.l2)(x)
        return self.dropout(self.batch_norm(x), conv=False)


def build_model(point: dict[str, Any], num_fine: int = 100, num_coarse: int | None = 20, *,
                base_lr: float = sp.BASE_LEARNING_RATE, train_steps: int | None = None) -> keras.Model:
    """A compiled Keras model for one point of the space (see :data:`hks.space.SPACE`).

    The learning rate is ``base_lr * point["lr_rate_mult"]``. A point of the modern space
    (:mod:`hks.modern_space`) is built by :mod:`hks.modern_model`, whose schedules span
    ``train_steps`` optimizer steps (the trial's whole budget).

    Raises :class:`SpaceError` naming the offending key when the point cannot build a model.
    """
    if point.get("architecture") == "resnet":
        from hks.modern_model import build_modern_model

        return build_modern_model(point, num_fine, num_coarse, train_steps=train_steps)
    missing = sp.missing_keys(point)
    if missing:
        raise SpaceError(f"the space point has no {', '.join(missing)}: a custom space must define every key "
                         "of hks.space.SPACE or pass its own model builder")
    try:
        return _build(point, num_fine, num_coarse, base_lr)
    except (ValueError, TypeError, KeyError) as exc:
        raise SpaceError(f"this point of the space builds no valid model ({exc}): {point}") from None


def _build(point: dict[str, Any], num_fine: int, num_coarse: int | None, base_lr: float) -> keras.Model:
    import keras

    b = _Builder(point)
    layers = b.layers
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    if point["first_conv"] is not None:
        x = b.conv(x, 16, kernel=int(point["first_conv"]))
    filters = max(int(sp.BASE_CONV_FILTERS * point["conv_hiddn_units_mult"]), 1)
    for index in range(int(point["nb_conv_pool_layers"])):
        x = b.batch_norm(b.conv(x, filters))
        if point["residual"] is not None and index >= int(point["conv_pool_res_start_idx"]):
            x = b.residual(x, filters)
        x = b.dropout(b.pool(x, filters), conv=True)
        filters *= 2
    x = layers.Flatten()(x)
    x = b.dense(x, int(sp.BASE_FC_UNITS_1 * point["fc_units_1_mult"]))
    if point["one_more_fc"] is not None:
        x = b.dense(x, int(sp.BASE_FC_UNITS_2 * point["one_more_fc"]))
    outputs, loss_weights = softmax_heads(x, num_fine, num_coarse, point["coarse_labels_weight"])
    model = keras.Model(inputs, outputs, name="hks_cnn")
    model.compile(
        optimizer=make_optimizer(point["optimizer"], base_lr * point["lr_rate_mult"]),
        loss={head: "sparse_categorical_crossentropy" for head in outputs},
        loss_weights=loss_weights,
        metrics=head_metrics(list(outputs)),
    )
    return model


def make_optimizer(name: str, learning_rate: float, **kwargs: Any) -> keras.optimizers.Optimizer:
    """A Keras optimizer by its class name (Adam, Nadam, RMSprop, SGD, ...)."""
    import keras

    cls = getattr(keras.optimizers, name, None)
    if cls is None or not isinstance(cls, type):
        raise SpaceError(f"unknown optimizer {name!r}; use a keras.optimizers class name such as Adam")
    return cls(learning_rate=float(learning_rate), **kwargs)
