"""EVBMF: a low-rank matrix plus noise gives back its rank, pure noise gives rank 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hks.autolr.evbmf import evbmf, tau_bar, x_bar


def _low_rank_plus_noise(rng, L, M, rank, noise, scale=1.0):
    signal = rng.normal(size=(L, rank)) @ rng.normal(size=(rank, M)) * 2.0
    return scale * signal, scale * (signal + rng.normal(scale=noise, size=(L, M)))


@pytest.mark.parametrize("L, M, rank, noise, scale", [
    (40, 360, 3, 0.1, 1.0),
    (80, 720, 10, 0.5, 1.0),
    (100, 100, 5, 1.0, 1.0),
    (16, 27, 2, 0.1, 1e-3),      # the size of a small conv unfolding, with network-sized weights
    (360, 40, 4, 0.2, 1e3),      # a tall matrix, large values
    (3, 144, 1, 0.05, 1.0),      # three input channels (the first conv layer)
])
def test_recovers_the_rank_of_a_low_rank_matrix_plus_noise(L, M, rank, noise, scale):
    rng = np.random.default_rng(L * M + rank)
    signal, observed = _low_rank_plus_noise(rng, L, M, rank, noise, scale)
    result = evbmf(observed)
    assert result.rank == rank
    assert math.isclose(math.sqrt(result.sigma2), noise * scale, rel_tol=0.1)
    # The low-rank estimate is closer to the signal than the observation is: the noise was removed.
    assert np.linalg.norm(result.low_rank() - signal) < 0.7 * np.linalg.norm(observed - signal)
    assert result.low_rank().shape == (L, M)


@pytest.mark.parametrize("L, M", [(64, 64), (40, 360), (200, 30)])
def test_pure_noise_has_rank_zero_and_its_variance_is_estimated(L, M):
    rng = np.random.default_rng(L + M)
    result = evbmf(rng.normal(scale=0.3, size=(L, M)))
    assert result.rank == 0
    assert math.isclose(result.sigma2, 0.09, rel_tol=0.05)


def test_known_case_with_given_noise_variance():
    # diag(10, 0.5), sigma2 = 1: threshold sqrt(2 * x_bar(1)) = 3.134; 10 is kept and shrunk to
    # 10/2 * (1 - 4/100 + sqrt((1 - 4/100)**2 - 16/10**4)) = 9.5958; 0.5 is noise.
    result = evbmf(np.diag([10.0, 0.5]), sigma2=1.0)
    assert result.rank == 1
    assert result.threshold == pytest.approx(3.1339, abs=1e-3)
    assert result.singular_values[0] == pytest.approx(9.59583, abs=1e-4)


def test_tau_bar_is_the_published_constant():
    assert tau_bar(1.0) == pytest.approx(2.5129, abs=1e-4)
    for alpha in (0.3, 0.5, 0.8):  # the papers' approximation 2.5129 * sqrt(alpha) holds within 1% here
        assert tau_bar(alpha) == pytest.approx(2.5129 * math.sqrt(alpha), rel=0.01)
    # The EVB threshold lies above the largest singular value of pure noise (Marchenko-Pastur edge).
    for alpha in (0.01, 0.1, 1.0):
        assert x_bar(alpha) > (1 + math.sqrt(alpha)) ** 2


def test_scaling_the_matrix_scales_the_estimate():
    rng = np.random.default_rng(7)
    _, observed = _low_rank_plus_noise(rng, 30, 90, 3, 0.3)
    base = evbmf(observed)
    tiny = evbmf(observed * 1e-6)
    assert tiny.rank == base.rank
    np.testing.assert_allclose(tiny.singular_values, base.singular_values * 1e-6, rtol=1e-6)


def test_degenerate_inputs():
    assert evbmf(np.zeros((5, 8))).rank == 0
    # One row: its single singular value cannot be told from noise of unknown variance, but can be
    # from a known small one.
    assert evbmf(np.ones((1, 10))).rank == 0
    assert evbmf(np.ones((1, 10)), sigma2=0.01).rank == 1
    assert evbmf(np.eye(6), max_rank=0).rank == 0
    with pytest.raises(ValueError):
        evbmf(np.zeros((2, 2, 2)))
