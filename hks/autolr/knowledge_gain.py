"""Knowledge gain of convolution layers, and autoHyper's response Z: the rate of zero knowledge gain.

Hosseini & Plataniotis, "AdaS: Adaptive Scheduling of Stochastic Gradients" (2020): a conv kernel
is unfolded along its input-channel mode (mode 3) and its output-channel mode (mode 4); EVBMF
(:mod:`hks.autolr.evbmf`) removes the part of each unfolding that is indistinguishable from noise,
and the knowledge gain of a mode is ``sum_i sigma_i / (N * sigma_1)`` over the kept singular values,
N being the number of channels of that mode. A freshly initialised (random) kernel has no structure
above the noise level, so its knowledge gain is exactly zero.

Tuli, Hosseini & Plataniotis, "Towards Robust and Automatic Hyper-Parameter Tunning" (autoHyper,
2021): the response of a learning rate is Z, the fraction of (layer, mode, epoch) entries whose
knowledge gain is zero. Z is 1 when nothing was learned and falls to 0 once every layer learns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hks.autolr.evbmf import evbmf

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class ModeGain:
    """Knowledge gain of one unfolding: its EVBMF rank and the normalised sum of kept singular values."""

    gain: float
    rank: int
    channels: int

    @property
    def is_zero(self) -> bool:
        return self.rank == 0


def unfold(kernel: np.ndarray, mode: int) -> np.ndarray:
    """Mode-3 (input channels) or mode-4 (output channels) unfolding of a Keras (kh, kw, in, out) kernel.

    The rows are the channels of that mode; each row holds every weight that touches the channel.
    """
    if kernel.ndim != 4:
        raise ValueError(f"a conv kernel has 4 dimensions (kh, kw, in, out), got shape {kernel.shape}")
    axis = {3: 2, 4: 3}[mode]
    return np.moveaxis(kernel, axis, 0).reshape(kernel.shape[axis], -1)


def mode_gain(matrix: np.ndarray) -> ModeGain:
    """AdaS knowledge gain of one unfolding (rows = channels)."""
    channels = matrix.shape[0]
    kept = evbmf(matrix).singular_values
    if kept.size == 0 or not np.isfinite(kept).all() or kept[0] <= 0:
        return ModeGain(0.0, 0, channels)
    return ModeGain(float(np.sum(kept) / (channels * kept[0])), int(kept.size), channels)


def kernel_gains(kernel: np.ndarray) -> tuple[ModeGain, ModeGain]:
    """(mode-3, mode-4) knowledge gains of one conv kernel."""
    kernel = np.asarray(kernel, dtype=np.float64)
    return mode_gain(unfold(kernel, 3)), mode_gain(unfold(kernel, 4))


def conv_kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """The 4-D kernels of every Conv2D layer of a Keras model, by layer name, in layer order."""
    import keras

    return {layer.name: np.asarray(layer.kernel.numpy()) for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D)}


def layer_gains(kernels: dict[str, np.ndarray]) -> dict[str, dict[str, float | int]]:
    """Per conv kernel: mode-3 / mode-4 knowledge gains and ranks (JSON-ready)."""
    out = {}
    for name, kernel in kernels.items():
        g3, g4 = kernel_gains(kernel)
        out[name] = {"gain3": g3.gain, "rank3": g3.rank, "gain4": g4.gain, "rank4": g4.rank}
    return out


def zero_fraction(gains: dict[str, dict[str, float | int]]) -> float:
    """Fraction of (layer, mode) knowledge gains that are zero in one epoch's measurement."""
    flags = [entry[key] == 0 for entry in gains.values() for key in ("rank3", "rank4")]
    if not flags:
        raise ValueError("the model has no Conv2D layer: autoHyper needs convolution weights")
    return float(np.mean(flags))


def response(per_epoch: list[dict[str, dict[str, float | int]]]) -> float:
    """autoHyper's Z of one trial: the zero-gain fraction averaged over its epochs."""
    if not per_epoch:
        raise ValueError("no epoch was measured")
    return float(np.mean([zero_fraction(gains) for gains in per_epoch]))
