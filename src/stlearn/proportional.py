"""Test risks of linear estimators in the proportional regime ``N, d -> infinity``, ``N / d = gamma``.

Closed forms from the Marchenko-Pastur law of the sample covariance
``S = G G^T / N`` of ``N`` standard Gaussian samples in ``d`` dimensions, with
aspect ratio ``q = d / N = 1 / gamma`` (note: Hastie et al. (2022) write
``gamma`` for ``d / N``; here ``gamma`` is ``N / d`` as in the book). The law has
a density on ``[(1 - sqrt q)^2, (1 + sqrt q)^2]`` and, for ``q > 1``, an atom of
mass ``1 - 1/q`` at zero.

The estimators are regressions of ``y = B z + noise`` on isotropic features
``z`` with signal ``r2 = ||B||_F^2`` and noise power ``noise`` (the trace of the
noise covariance): min-norm least squares, ridge with penalty ``lam`` and
gradient flow on ``(1/2N) ||B Z - Y||^2`` from zero stopped at time ``t``. Their
excess risks ``E ||(B_hat - B) z||^2`` are below; :func:`noisy_inputs` maps the
book's noisy-input problem onto them, and :func:`two_stage_limit` gives the
proportional limit of the two-stage (ST) estimator. :func:`spiked_ridge` is the
deterministic equivalent of ridge for the covariance ``U U^T + sigma^2 I``.
Everything is numpy float64.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq

from .validation import ParameterError, check_float


def _q(gamma: float) -> float:
    gamma = check_float("gamma", gamma, low=0.0, low_open=True)
    return 1.0 / gamma


# --------------------------------------------------------------------------- the Marchenko-Pastur law
def mp_edges(q: float) -> tuple[float, float]:
    """Edges ``(1 -+ sqrt q)^2`` of the continuous part of the law with aspect ratio ``q = d / N``."""
    q = check_float("q", q, low=0.0, low_open=True)
    return (1 - math.sqrt(q)) ** 2, (1 + math.sqrt(q)) ** 2


def mp_density(x, q: float):
    """Density of the continuous part, ``sqrt((b - x)(x - a)) / (2 pi q x)`` on ``[a, b]`` (mass ``min(1, 1/q)``)."""
    a, b = mp_edges(q)
    x = np.asarray(x, dtype=float)
    inside = (x > a) & (x < b)
    out = np.zeros_like(x)
    out[inside] = np.sqrt((b - x[inside]) * (x[inside] - a)) / (2 * math.pi * q * x[inside])
    return out


def mp_atom(q: float) -> float:
    """Mass of the atom at zero, ``max(0, 1 - 1/q)``."""
    return max(0.0, 1.0 - 1.0 / check_float("q", q, low=0.0, low_open=True))


def mp_integral(f, q: float) -> float:
    """``int f(x) dmu(x)`` over the law (atom included), by quadrature in ``x = a + (b - a)(1 - cos th)/2``."""
    a, b = mp_edges(q)

    def integrand(th):
        x = a + (b - a) * (1 - math.cos(th)) / 2
        dens = math.sqrt((b - x) * (x - a)) / (2 * math.pi * q * x) if x > 0 else 0.0
        return f(x) * dens * (b - a) * math.sin(th) / 2

    value, _ = quad(integrand, 0.0, math.pi, limit=200, epsabs=1e-13, epsrel=1e-11)
    atom = mp_atom(q)
    return value + (atom * f(0.0) if atom > 0 else 0.0)


def mp_stieltjes(z, q: float):
    """``m(z) = int dmu(x) / (x - z)``, the root of ``q z m^2 - (1 - q - z) m + 1 = 0`` with ``Im m Im z > 0``.

    For real ``z < 0`` (``z = -lam``) the root is real and positive.
    """
    q = check_float("q", q, low=0.0, low_open=True)
    z = np.asarray(z, dtype=complex)
    root = np.sqrt((1 - q - z) ** 2 - 4 * q * z)
    m1, m2 = (1 - q - z + root) / (2 * q * z), (1 - q - z - root) / (2 * q * z)
    real_neg = (np.abs(z.imag) < 1e-300) & (z.real < 0)
    pick = np.where(real_neg, np.where(m1.real > 0, m1, m2), np.where(m1.imag * np.sign(z.imag) > 0, m1, m2))
    return pick.real if bool(np.all(real_neg)) else pick


def mp_stieltjes_derivative(z, q: float):
    """``m'(z) = int dmu(x) / (x - z)^2``, by implicit differentiation of the quadratic for ``m``."""
    m = mp_stieltjes(z, q)
    return (q * m**2 + m) / ((1 - q - z) - 2 * q * z * m)


# --------------------------------------------------------------------------- isotropic excess risks
def min_norm_risk(gamma: float, r2: float, noise: float) -> float:
    """Excess risk of min-norm least squares (Hastie et al. 2022, Theorem 1, in ``gamma = N/d``).

    ``noise / (gamma - 1)`` for ``gamma > 1``; ``r2 (1 - gamma) + noise gamma / (1 - gamma)`` for ``gamma < 1``.
    """
    q = _q(gamma)
    if abs(q - 1) < 1e-12:
        return math.inf
    if q < 1:
        return noise * q / (1 - q)
    return r2 * (1 - 1 / q) + noise / (q - 1)


def ridge_risk(gamma: float, lam: float, r2: float, noise: float) -> float:
    """Excess risk of ridge ``(S + lam I)^{-1} Z^T y / N``: ``r2 lam^2 m'(-lam) + noise q (m(-lam) - lam m'(-lam))``."""
    q = _q(gamma)
    lam = check_float("lam", lam, low=0.0, low_open=True)
    m, dm = float(mp_stieltjes(-lam, q)), float(mp_stieltjes_derivative(-lam, q))
    return r2 * lam**2 * dm + noise * q * (m - lam * dm)


def flow_risk(gamma: float, t: float, r2: float, noise: float) -> float:
    """Excess risk of gradient flow from zero at time ``t`` (Advani and Saxe 2020):

    ``r2 int e^{-2tx} dmu + noise q int (1 - e^{-tx})^2 / x dmu`` (the atom at zero keeps its signal).
    """
    q = _q(gamma)
    t = check_float("t", t, low=0.0)
    bias = mp_integral(lambda x: math.exp(-2 * t * x), q)
    var = mp_integral(lambda x: (-math.expm1(-t * x)) ** 2 / x if x > 0 else 0.0, q)
    return r2 * bias + noise * q * var


def best_flow_time(gamma: float, r2: float, noise: float, t_max: float = 1e3) -> tuple[float, float]:
    """The stopping time minimizing :func:`flow_risk` (golden-section search in ``log t``) and its risk."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda lt: flow_risk(gamma, math.exp(lt), r2, noise), bounds=(math.log(1e-3),
                          math.log(t_max)), method="bounded", options={"xatol": 1e-6})
    return math.exp(res.x), float(res.fun)


def optimal_ridge(gamma: float, r2: float, noise: float) -> tuple[float, float]:
    """The ridge penalty minimizing the isotropic risk, ``lam* = noise / (gamma r2)`` in ``q`` units, and its risk.

    For isotropic features and signal, ``lam* = q noise / r2`` (Dobriban and Wager 2018).
    """
    q = _q(gamma)
    lam = q * noise / r2
    return lam, ridge_risk(gamma, lam, r2, noise)


def optimal_ridge_risk(gamma, r2: float, noise: float):
    """The risk of ridge at its best penalty in closed form, elementwise in ``gamma`` (an array is fine).

    At ``lam* = q noise / r2`` the two terms of :func:`ridge_risk` combine into ``noise q m(-lam*)``, and for
    real ``z = -lam < 0`` the Stieltjes transform is the positive root
    ``m = (sqrt((1 - q + lam)^2 + 4 q lam) - (1 - q + lam)) / (2 q lam)``, so
    ``R* = noise (sqrt((1 - q + lam*)^2 + 4 q lam*) - (1 - q + lam*)) / (2 lam*)``.
    """
    gamma = np.asarray(gamma, dtype=float)
    if np.any(~(gamma > 0)) or not (r2 > 0 and noise > 0):
        raise ParameterError(f"gamma, r2 and noise must be > 0; got {gamma}, {r2}, {noise}")
    q = 1.0 / gamma
    lam = q * noise / r2
    b = 1 - q + lam
    return noise * (np.sqrt(b * b + 4 * q * lam) - b) / (2 * lam)


# --------------------------------------------------------------------------- the book's noisy-input problem
def noisy_inputs(w_norm2: float, sigma: float, label_noise: float, d_out: int) -> dict[str, float]:
    """The isotropic regression that noisy inputs ``x~ = x + sigma e`` (``x ~ N(0, I)``) pose.

    With ``c = 1/(1 + sigma^2)``: ``y = c W* x~ + eps``, ``eps`` independent of ``x~``,
    so in ``z = x~ / sqrt(1 + sigma^2)`` the signal is ``r2 = c ||W*||^2``, the noise
    power ``M + d_y s^2`` with the MMSE ``M = c sigma^2 ||W*||^2``, and the test
    error on noisy inputs is ``M + excess``. Ridge penalty ``lam`` on ``x~`` is ``lam c``
    on ``z``; gradient-flow time ``t`` on ``x~`` is ``t / c`` on ``z``.
    """
    sigma = check_float("sigma", sigma, low=0.0)
    c = 1.0 / (1.0 + sigma**2)
    mmse = c * sigma**2 * w_norm2
    return {"c": c, "mmse": mmse, "r2": c * w_norm2, "noise": mmse + d_out * label_noise**2}


def two_stage_limit(gamma: float, sigma: float, label_noise: float, d_out: int, carried: float,
                    deficit: float) -> float:
    """Proportional limit of the two-stage (ST) estimator's test error (teacher rank and ``d_y`` fixed):

    ``M + c kappa + c sigma^2 ||W_par||^2 / (gamma - 1)`` for ``gamma > 1``, with
    ``carried = ||W* Pi||^2`` and ``deficit = kappa``.
    """
    if gamma <= 1:
        raise ParameterError(f"gamma must be > 1 for the two-stage estimator (stage one needs N > d); got {gamma}")
    c = 1.0 / (1.0 + sigma**2)
    mmse = c * sigma**2 * (carried + deficit)
    return mmse + c * deficit + c * sigma**2 * carried / (gamma - 1)


def base_limit(gamma: float, sigma: float, label_noise: float, d_out: int, w_norm2: float) -> float:
    """Proportional limit of least squares' test error: ``M + (M + d_y s^2) / (gamma - 1)`` (``gamma > 1``)."""
    p = noisy_inputs(w_norm2, sigma, label_noise, d_out)
    return p["mmse"] + min_norm_risk(gamma, p["r2"], p["noise"])


def crossover_gamma(sigma: float, label_noise: float, d_out: int, deficit: float) -> float:
    """``gamma* = (1 + sigma^2)(1 + d_y s^2 / kappa)``: beyond it the two-stage estimator loses to least squares.

    ``inf`` for a teacher that carries the whole target (``kappa = 0``) when there is label noise.
    """
    deficit = check_float("deficit", deficit, low=0.0)
    if deficit == 0:
        return math.inf if d_out * label_noise**2 > 0 else 1 + sigma**2
    return (1 + sigma**2) * (1 + d_out * label_noise**2 / deficit)


# --------------------------------------------------------------------------- ST against tuned ridge
def ridge_gap(gamma, sigma: float, label_noise: float, d_out: int, carried: float, deficit: float):
    """Tuned ridge's test error minus the two-stage estimator's, both in the proportional limit (``gamma > 1``).

    Positive where two-stage ST beats ridge at its best penalty. Elementwise in ``gamma``. The target has
    ``||W*||^2 = carried + deficit``; the difference does not involve the MMSE ``M``, which both errors share.
    """
    gamma = np.asarray(gamma, dtype=float)
    if np.any(gamma <= 1):
        raise ParameterError(f"gamma must be > 1 for the two-stage estimator (stage one needs N > d); got {gamma}")
    p = noisy_inputs(carried + deficit, sigma, label_noise, d_out)
    st_excess = p["c"] * deficit + p["c"] * sigma**2 * carried / (gamma - 1)
    return optimal_ridge_risk(gamma, p["r2"], p["noise"]) - st_excess


def necessary_window(sigma: float, label_noise: float, d_out: int, deficit: float) -> tuple[float, float]:
    """``(1 + sigma^2, gamma*)``: two-stage ST can beat tuned ridge only for ``gamma`` inside (it must beat both
    ridge's limits, predicting zero and least squares); the window is empty without label noise."""
    return 1 + sigma**2, crossover_gamma(sigma, label_noise, d_out, deficit)


def ridge_window(sigma: float, label_noise: float, d_out: int, carried: float, deficit: float,
                 points: int = 4000) -> tuple[float, float] | None:
    """The ratios where two-stage ST beats tuned ridge, ``(low, high)``, or ``None`` where it never does.

    :func:`ridge_gap` is scanned on a log grid of ``points`` ratios inside :func:`necessary_window` (capped at
    ``1e4``), and its sign changes are refined with Brent's method; ``high`` is ``inf`` for a teacher that
    misses nothing (``deficit = 0``), which wins at every large ratio when there is label noise. Raises if the
    gap is positive on more than one interval (the book conjectures that it never is).
    """
    low, high = necessary_window(sigma, label_noise, d_out, deficit)
    if not high > low or carried <= 0:
        return None
    grid = np.geomspace(low, min(high, 1e4), points)[1:-1]
    positive = ridge_gap(grid, sigma, label_noise, d_out, carried, deficit) > 0
    if not positive.any():
        return None
    steps = np.diff(positive.astype(int))
    starts, ends = np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)
    unbounded = bool(positive[-1]) and math.isinf(high)  # a teacher that misses nothing wins for every large gamma
    if len(starts) + positive[0] > 1 or len(ends) + unbounded != 1:
        raise ValueError("the gap is positive on more than one interval, or up to the scan's end")

    def root(i: int) -> float:
        return brentq(lambda g: float(ridge_gap(g, sigma, label_noise, d_out, carried, deficit)), grid[i],
                      grid[i + 1], xtol=1e-12, rtol=1e-12)

    return (float(low) if positive[0] else root(int(starts[0]))), (math.inf if unbounded else root(int(ends[0])))


# --------------------------------------------------------------------------- spiked covariance
def spiked_ridge(gamma: float, lam: float, rho: float, sigma: float, beta2: float, noise: float) -> float:
    """Deterministic equivalent of ridge's excess risk for the covariance ``U U^T + sigma^2 I``.

    ``U`` spans a fraction ``rho`` of the ``d`` dimensions (eigenvalue
    ``e1 = 1 + sigma^2``, the rest ``e0 = sigma^2``), the coefficients
    ``beta`` (norm ``beta2``) lie in the span of ``U``, penalty ``lam >= 0``
    (``0``: min-norm). The effective penalty ``k`` solves
    ``lam = k (1 - q [rho e1/(e1+k) + (1-rho) e0/(e0+k)])``; with
    ``D = q [rho e1^2/(e1+k)^2 + (1-rho) e0^2/(e0+k)^2]`` the risk is
    ``(k^2 beta2 e1/(e1+k)^2 + noise D) / (1 - D)``.
    """
    q = _q(gamma)
    lam = check_float("lam", lam, low=0.0)
    e1, e0 = 1.0 + sigma**2, sigma**2

    def df1(k):
        return q * (rho * e1 / (e1 + k) + ((1 - rho) * e0 / (e0 + k) if e0 > 0 else 0.0))

    def eq(k):
        return k * (1 - df1(k)) - lam

    if lam == 0 and df1(0.0) <= 1:  # under-parameterized in the effective rank: k = 0
        k = 0.0
    else:
        low = 1e-300 if lam == 0 else 0.0
        k = brentq(eq, low if eq(low) < 0 else 0.0, max(10.0, 10 * lam) + 10 * e1 * q, xtol=1e-14, rtol=1e-13) \
            if lam > 0 else brentq(lambda k: 1 - df1(k), 1e-14, 10 * e1 * q + 10, xtol=1e-15, rtol=1e-13)
    dd = q * (rho * e1**2 / (e1 + k) ** 2 + ((1 - rho) * e0**2 / (e0 + k) ** 2 if e0 > 0 else 0.0))
    if dd >= 1:
        return math.inf
    return (k**2 * beta2 * e1 / (e1 + k) ** 2 + noise * dd) / (1 - dd)
