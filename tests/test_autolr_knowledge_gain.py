"""Knowledge gain of conv kernels (AdaS) and autoHyper's zero-gain fraction Z."""

from __future__ import annotations

import numpy as np
import pytest

from hks.autolr.knowledge_gain import conv_kernels, kernel_gains, layer_gains, response, unfold, zero_fraction


def _glorot(rng, shape):
    kh, kw, cin, cout = shape
    limit = np.sqrt(6.0 / (kh * kw * (cin + cout)))
    return rng.uniform(-limit, limit, size=shape)


def test_unfoldings_put_one_channel_per_row():
    kernel = np.arange(3 * 3 * 8 * 16, dtype=float).reshape(3, 3, 8, 16)
    mode3, mode4 = unfold(kernel, 3), unfold(kernel, 4)
    assert mode3.shape == (8, 144) and mode4.shape == (16, 72)
    assert sorted(mode3[5]) == sorted(kernel[:, :, 5, :].ravel())
    assert sorted(mode4[11]) == sorted(kernel[:, :, :, 11].ravel())
    with pytest.raises(ValueError):
        unfold(np.zeros((3, 3, 8)), 3)


@pytest.mark.parametrize("shape", [(3, 3, 3, 16), (3, 3, 40, 40), (1, 1, 40, 80), (3, 3, 80, 80)])
def test_a_random_initial_kernel_has_zero_knowledge_gain(shape):
    g3, g4 = kernel_gains(_glorot(np.random.default_rng(0), shape))
    assert g3.is_zero and g4.is_zero
    assert g3.gain == 0.0 and g4.gain == 0.0


def test_a_partial_identity_kernel_gains_the_share_of_channels_it_maps():
    # A 1x1 kernel mapping 8 of 32 channels through (plus weight noise): rank 8, and with equal kept
    # singular values the gain sum(s) / (N * s1) is 8 / 32.
    rng = np.random.default_rng(2)
    kernel = np.diag([1.0] * 8 + [0.0] * 24) + rng.normal(scale=0.01, size=(32, 32))
    g3, g4 = kernel_gains(kernel.reshape(1, 1, 32, 32))
    assert (g3.rank, g4.rank) == (8, 8)
    assert g3.gain == pytest.approx(0.25, abs=0.01) and g4.gain == pytest.approx(0.25, abs=0.01)


def test_a_perfectly_flat_spectrum_reads_as_noise():
    # EVBMF estimates the noise level from the matrix itself: a pure identity (all singular values
    # equal) is indistinguishable from noise, so it carries no knowledge gain.
    g3, g4 = kernel_gains(np.eye(32).reshape(1, 1, 32, 32))
    assert g3.is_zero and g4.is_zero


def test_learned_structure_gives_a_gain_between_zero_and_one():
    rng = np.random.default_rng(1)
    shape = (3, 3, 40, 40)
    structure = np.einsum("hwi,o->hwio", rng.normal(size=(3, 3, 40)), rng.normal(size=40)) * 0.05
    g3, g4 = kernel_gains(_glorot(rng, shape) + structure)
    assert g3.rank >= 1 and g4.rank >= 1
    assert 0.0 < g3.gain < 0.5 and 0.0 < g4.gain < 0.5


def test_zero_fraction_and_response_count_layers_modes_and_epochs():
    epoch1 = {"a": {"rank3": 0, "rank4": 0}, "b": {"rank3": 2, "rank4": 0}}
    epoch2 = {"a": {"rank3": 1, "rank4": 1}, "b": {"rank3": 2, "rank4": 3}}
    assert zero_fraction(epoch1) == 0.75
    assert zero_fraction(epoch2) == 0.0
    assert response([epoch1, epoch2]) == 0.375
    with pytest.raises(ValueError):
        zero_fraction({})


def test_a_freshly_built_network_has_z_one():
    """The demo architecture's conv layers, before any training, carry no knowledge: Z = 1."""
    import keras

    from hks.model import build_model
    from hks.space import demo_point

    keras.utils.set_random_seed(0)
    model = build_model(demo_point(), 10, None)
    kernels = conv_kernels(model)
    assert len(kernels) >= 4 and all(k.ndim == 4 for k in kernels.values())
    assert zero_fraction(layer_gains(kernels)) == 1.0
    keras.backend.clear_session()
