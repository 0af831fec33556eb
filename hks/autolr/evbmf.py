"""Empirical variational Bayesian matrix factorisation (EVBMF): the rank a noisy matrix really has.

Global analytic solution of Nakajima, Sugiyama, Babacan & Tomioka, "Global analytic solution of
fully-observed variational Bayesian matrix factorization", JMLR 14 (2013), with the noise variance
estimated as in Nakajima, Tomioka, Sugiyama & Babacan, "Condition for perfect dimensionality recovery
by variational Bayesian PCA", JMLR 16 (2015). For an L x M matrix (L <= M) with singular values
gamma_h, EVB keeps exactly the components with ``gamma_h**2 > M * sigma2 * x_bar`` and shrinks each
kept value; everything below that threshold is indistinguishable from noise. AdaS and autoHyper use
the kept singular values of convolution weight unfoldings as a measure of learned structure.

Numerics: singular values are rescaled to unit mean square before the noise variance is searched
(so tiny network weights are handled like any other matrix), the variance is searched on a log grid
then refined (the objective may have several local minima), and tau_bar is solved exactly instead of
using the ``2.5129 * sqrt(alpha)`` approximation.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

_GRID_POINTS = 64


@dataclass(frozen=True)
class EVBMFResult:
    """The EVB low-rank estimate ``U @ diag(singular_values) @ V.T`` of the input matrix."""

    U: np.ndarray
    singular_values: np.ndarray
    V: np.ndarray
    observed: np.ndarray
    sigma2: float
    threshold: float

    @property
    def rank(self) -> int:
        return int(self.singular_values.size)

    def low_rank(self) -> np.ndarray:
        return (self.U * self.singular_values) @ self.V.T


@functools.lru_cache(maxsize=256)
def tau_bar(alpha: float) -> float:
    """The zero of Phi(tau) + Phi(tau / alpha), Phi(z) = log(1 + z) / z - 1/2 (Nakajima et al. 2013, Thm 13).

    About ``2.5129 * sqrt(alpha)``; exactly 2.5129 for square matrices.
    """
    def phi(z: float) -> float:
        return math.log1p(z) / z - 0.5

    return brentq(lambda t: phi(t) + phi(t / alpha), 1e-12, 1e6, xtol=1e-14, rtol=1e-14)


def x_bar(alpha: float) -> float:
    """EVB threshold in units of ``M * sigma2``: a component is kept iff ``gamma**2 > M * sigma2 * x_bar``."""
    t = tau_bar(alpha)
    return (1.0 + t) * (1.0 + alpha / t)


def _tau(x: np.ndarray, alpha: float) -> np.ndarray:
    b = x - (1.0 + alpha)
    return 0.5 * (b + np.sqrt(np.maximum(b * b - 4.0 * alpha, 0.0)))


def _objective(sigma2: float, s2: np.ndarray, L: int, M: int, H: int, alpha: float, xb: float) -> float:
    """Free energy in sigma2 (constants dropped): sum_h psi0(x_h) + sum_{h<=H, x_h > x_bar} psi1(x_h)."""
    x = s2 / (M * sigma2)
    value = float(np.sum(x)) + L * math.log(sigma2)
    kept = x[:H][x[:H] > xb]
    if kept.size:
        t = _tau(kept, alpha)
        value += float(np.sum(np.log1p(t) + alpha * np.log1p(t / alpha) - t))
    return value


def _bounds(s2: np.ndarray, L: int, M: int, H: int, alpha: float, xb: float) -> tuple[float, float]:
    """The interval that holds the EVB noise variance (Nakajima et al. 2015, Thm 4)."""
    h_bar = min(math.ceil(L / (1.0 + alpha)) - 1, H)
    upper = float(np.sum(s2)) / (L * M)
    lower = max(s2[h_bar] / (M * xb), float(np.mean(s2[h_bar:])) / M)
    return max(lower, upper * 1e-12), upper


def estimate_sigma2(s2: np.ndarray, L: int, M: int, H: int) -> float:
    """Noise variance minimising the EVB free energy: log-grid search, then bounded refinement."""
    alpha = L / M
    xb = x_bar(alpha)
    lower, upper = _bounds(s2, L, M, H, alpha, xb)
    if not lower < upper:
        return upper

    def f(log_s: float) -> float:
        return _objective(math.exp(log_s), s2, L, M, H, alpha, xb)

    grid = np.linspace(math.log(lower), math.log(upper), _GRID_POINTS)
    values = [f(g) for g in grid]
    best = int(np.argmin(values))
    left, right = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    refined = minimize_scalar(f, bounds=(left, right), method="bounded", options={"xatol": 1e-10})
    log_s = refined.x if refined.fun <= values[best] else grid[best]
    return math.exp(log_s)


def evbmf(y: np.ndarray, sigma2: float | None = None, max_rank: int | None = None) -> EVBMFResult:
    """EVB factorisation of a 2-D matrix; ``sigma2`` (noise variance) is estimated when not given.

    Any orientation is accepted (a tall matrix is factorised through its transpose). ``max_rank``
    caps the number of components (H in the papers); by default it is ``min(y.shape)``.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"evbmf needs a 2-D matrix, got shape {y.shape}")
    if y.shape[0] > y.shape[1]:
        r = evbmf(y.T, sigma2, max_rank)
        return EVBMFResult(r.V, r.singular_values, r.U, r.observed, r.sigma2, r.threshold)
    L, M = y.shape
    H = L if max_rank is None else max(0, min(int(max_rank), L))
    U, s, vt = np.linalg.svd(y, full_matrices=False)
    scale = float(np.sqrt(np.mean(s * s))) if s.size else 0.0
    if H == 0 or not math.isfinite(scale) or scale == 0.0:
        return _empty(L, M, s, 0.0 if sigma2 is None else float(sigma2))
    s_scaled = s / scale
    s2 = s_scaled * s_scaled
    sig2 = estimate_sigma2(s2, L, M, H) if sigma2 is None else float(sigma2) / scale**2
    threshold = math.sqrt(M * sig2 * x_bar(L / M))
    pos = int(np.sum(s_scaled[:H] > threshold))
    g = s_scaled[:pos]
    a = 1.0 - (L + M) * sig2 / (g * g)
    d = 0.5 * g * (a + np.sqrt(np.maximum(a * a - 4.0 * L * M * sig2**2 / g**4, 0.0)))
    return EVBMFResult(U[:, :pos], d * scale, vt[:pos].T, s, sig2 * scale**2, threshold * scale)


def _empty(L: int, M: int, s: np.ndarray, sigma2: float) -> EVBMFResult:
    return EVBMFResult(np.zeros((L, 0)), np.zeros(0), np.zeros((M, 0)), s, sigma2, math.inf)
