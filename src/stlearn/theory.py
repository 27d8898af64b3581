"""Closed forms for linear maps under the data model, and for the deep-linear theory chapters.

Conventions follow :mod:`stlearn.data`: samples are rows, ``X`` is ``(n, d)``,
``Y`` is ``(n, d_y)``, a linear map ``W`` is ``(d_y, d)`` and predicts
``x W^T``; leading member dimensions ``(E, n, d)`` give one result per member.
Everything is computed in float64 on the CPU.

Contents:

* linear maps: the min-norm interpolator, the row-space projector, the Wiener
  map and the exact test error of a linear map on noisy inputs;
* the gradient-descent path of a one-layer least-squares problem from zero
  (a spectral filter along the singular directions of the inputs);
* the minimizers that the coincidence chapter compares: reduced-rank regression
  (the base two-layer minimizer) and the test of whether the teacher's features
  can carry the fitted labels;
* the two-stage estimator (the ``lam -> infinity`` limit of the ST loss) and
  its large-sample test error, the base (OLS) test error, and the crossover
  sample size beyond which an imperfect teacher hurts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .validation import ParameterError, check_float, check_int

Tensor = torch.Tensor


def as_float64(t: Tensor) -> Tensor:
    """``t`` detached, as float64 on the CPU (where every closed form is computed)."""
    return t.detach().to(device="cpu", dtype=torch.float64)


def min_norm_interpolator(x: Tensor, y: Tensor) -> Tensor:
    """The minimum-Frobenius-norm ``W`` with ``X W^T = Y`` (least squares if none interpolates): ``Y^T (X^T)^+``.

    Leading member dimensions ``(E, n, d)`` give one map per member ``(E, d_y, d)``.
    """
    return as_float64(y).transpose(-1, -2) @ torch.linalg.pinv(as_float64(x)).transpose(-1, -2)


def row_space_projector(x: Tensor) -> Tensor:
    """``P = X^+ X``: the orthogonal projector of ``R^d`` onto the span of the samples (rows of ``X``)."""
    x = as_float64(x)
    return torch.linalg.pinv(x) @ x


def wiener_map(w_star: Tensor, cov_x: Tensor, sigma: float) -> Tensor:
    """The best linear map from noisy inputs: ``W* Sigma_x (Sigma_x + sigma^2 I)^{-1}``."""
    sigma = check_float("sigma", sigma, low=0.0)
    cov_x = as_float64(cov_x)
    eye = torch.eye(cov_x.shape[0], dtype=torch.float64)
    return torch.linalg.solve(cov_x + sigma**2 * eye, cov_x @ as_float64(w_star).T).T


def linear_test_error(w: Tensor, w_star: Tensor, cov_x: Tensor, sigma: float) -> Tensor:
    """``E ||W* x - W (x + sigma e)||^2 = tr((W*-W) Sigma_x (W*-W)^T) + sigma^2 ||W||_F^2``.

    ``w`` may carry a leading member dimension ``(E, d_y, d)``; the result then has shape ``(E,)``.
    """
    sigma = check_float("sigma", sigma, low=0.0)
    w, w_star, cov_x = as_float64(w), as_float64(w_star), as_float64(cov_x)
    diff = w_star - w
    bias = torch.einsum("...ij,jk,...ik->...", diff, cov_x, diff)
    return bias + sigma**2 * w.pow(2).sum((-1, -2))


# --------------------------------------------------------------------------- gradient-descent paths
def gd_regression_path(x: Tensor, y: Tensor, lr: float, steps: Sequence[int]) -> Tensor:
    """The maps ``W(t)`` of gradient descent on ``(1/2n) ||X W^T - Y||_F^2`` from ``W(0) = 0``.

    With the SVD ``X = U S V^T``, ``W(t) = Y^T U diag(phi_t(s)) V^T`` and
    ``phi_t(s) = (1 - (1 - lr s^2 / n)^t) / s``: every singular direction of the
    inputs is fitted at its own rate. Returns ``(len(steps), ..., d_y, d)``.
    """
    lr = check_float("lr", lr, low=0.0, low_open=True)
    x, y = as_float64(x), as_float64(y)
    n = x.shape[-2]
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    keep = s > s.amax(-1, keepdim=True) * max(x.shape[-2:]) * torch.finfo(torch.float64).eps
    safe = torch.where(keep, s, torch.ones_like(s))
    rate = 1.0 - lr * safe**2 / n
    if bool(((rate.abs() >= 1) & keep).any()):
        raise ParameterError(f"lr must be < 2 n / s_max^2 = {float(2 * n / s.max() ** 2):.3g} for gradient "
                             f"descent to converge; got {lr}")
    coef = y.transpose(-1, -2) @ u  # (..., d_y, k)
    paths = []
    for t in steps:
        t = check_int("step", t, low=0)
        phi = torch.where(keep, (1.0 - rate**t) / safe, torch.zeros_like(s))
        paths.append((coef * phi.unsqueeze(-2)) @ vh)
    return torch.stack(paths)


# --------------------------------------------------------------------------- minimizers
def reduced_rank_regression(x: Tensor, y: Tensor, rank: int) -> Tensor:
    """The least-squares map of rank at most ``rank`` (and least norm): the base minimizer of a width-``rank`` net.

    It projects the least-squares map onto the top-``rank`` right singular
    directions of the fitted values ``X W_ls^T``.
    """
    rank = check_int("rank", rank, low=1)
    w_ls = min_norm_interpolator(x, y)
    fitted = as_float64(x) @ w_ls.transpose(-1, -2)
    _, _, vh = torch.linalg.svd(fitted, full_matrices=False)
    top = vh[..., :rank, :]
    return top.transpose(-1, -2) @ top @ w_ls


def column_projector(z: Tensor) -> Tensor:
    """``Z Z^+``: the orthogonal projector of ``R^n`` onto the column span of ``Z`` (n x k)."""
    z = as_float64(z)
    return z @ torch.linalg.pinv(z)


def coincidence_gap(x_noisy: Tensor, features: Tensor, fitted: Tensor) -> Tensor:
    """How far a base minimizer's fitted values ``F = X~ W_base^T`` are from the span of the fitted teacher features.

    ``||(I - Pi) F||_F / ||F||_F`` with ``Pi`` the projector onto the columns of
    ``P T`` (``P`` projects onto the columns of ``X~``). It is zero exactly when
    that base minimizer can be written with first-layer features ``P T``: the
    condition under which base and ST share their minimizers.
    """
    fitted_t = column_projector(x_noisy) @ as_float64(features)
    fitted = as_float64(fitted)
    resid = fitted - column_projector(fitted_t) @ fitted
    return resid.norm(dim=(-2, -1)) / fitted.norm(dim=(-2, -1))


def two_stage_estimator(x_noisy: Tensor, features: Tensor, y: Tensor) -> Tensor:
    """The ``lam -> infinity`` ST solution of a two-layer student: ``W_2 W_1``.

    Stage one regresses the teacher's clean features on the noisy inputs,
    ``W_1 = T^T (X~^T)^+``; stage two regresses the labels on the fitted features
    ``Z = X~ W_1^T``, ``W_2 = Y^T (Z^T)^+``.
    """
    w1 = min_norm_interpolator(x_noisy, features)
    z = as_float64(x_noisy) @ w1.transpose(-1, -2)
    return min_norm_interpolator(z, y) @ w1


# --------------------------------------------------------------------------- isotropic-input risks
def _isotropic(w_star: Tensor, sigma: float, label_noise: float):
    sigma = check_float("sigma", sigma, low=0.0)
    label_noise = check_float("label_noise", label_noise, low=0.0)
    w_star = as_float64(w_star)
    return w_star, 1.0 / (1.0 + sigma**2), sigma, label_noise


def knowledge_deficit(w_star: Tensor, q: Tensor) -> float:
    """``kappa = ||W* (I - Pi_q)||_F^2``: the part of the target the features ``q x`` do not carry."""
    return _teacher_terms(as_float64(w_star), q)[1]


def _teacher_terms(w_star: Tensor, q: Tensor) -> tuple[int, float, float]:
    """``(k, kappa, ||W* Pi_q||_F^2)``: the rank of the features ``q x``, the deficit and the part carried."""
    proj = row_space_projector(q)
    eye = torch.eye(w_star.shape[1], dtype=torch.float64)
    k = int(round(float(torch.trace(proj))))
    return k, float((w_star @ (eye - proj)).pow(2).sum()), float((w_star @ proj).pow(2).sum())


def mmse(w_star: Tensor, sigma: float) -> float:
    """The best linear test error from noisy isotropic inputs: ``||W*||^2 sigma^2 / (1 + sigma^2)``."""
    w_star, c, sigma, _ = _isotropic(w_star, sigma, 0.0)
    return float(w_star.pow(2).sum()) * sigma**2 * c


def base_error(w_star: Tensor, sigma: float, label_noise: float, n: int) -> float:
    """Expected test error of least squares on ``n`` noisy isotropic samples (exact, ``n > d + 1``).

    ``M + (M + d_y s^2) d / (n - d - 1)`` with ``M`` the MMSE: the regression
    residual has covariance trace ``M + d_y s^2`` and ``E tr(Sigma (X^T X)^{-1})
    = d / (n - d - 1)`` for Gaussian rows.
    """
    w_star, c, sigma, s = _isotropic(w_star, sigma, label_noise)
    d_y, d = w_star.shape
    n = check_int("n", n, low=d + 2)
    m = mmse(w_star, sigma)
    return m + (m + d_y * s**2) * d / (n - d - 1)


def two_stage_error(w_star: Tensor, q: Tensor, sigma: float, label_noise: float, n: float,
                    finite_sample: bool = True) -> float:
    """Large-sample test error of the two-stage estimator with teacher features ``q x``.

    Leading order in ``1/n`` (``finite_sample=False``):
    ``M + c kappa + [c sigma^2 ||W* Pi||^2 d + (c kappa + d_y s^2) k] / n`` with
    ``c = 1/(1+sigma^2)``, ``Pi`` the projector onto the row span of ``q``, ``k``
    its rank and ``kappa`` the knowledge deficit. With ``finite_sample=True``
    each of the two regressions gets the exact least-squares factor instead of
    ``1/n``: ``d / (n - d - 1)`` for stage one (``d`` inputs) and
    ``k / (n - k - 1)`` for stage two (``k`` features). ``n = inf`` gives the limit. (The
    stage-two coefficient ``c kappa + d_y s^2`` is that of the exact risk of
    :mod:`stlearn.theory_finite` to leading order; it was ``kappa + d_y s^2`` before, exact only at
    ``sigma = 0``.)
    """
    w_star, _, sigma, label_noise = _isotropic(w_star, sigma, label_noise)
    return _two_stage_error(w_star, _teacher_terms(w_star, q), sigma, label_noise, n, finite_sample)


def _two_stage_error(w_star: Tensor, terms: tuple[int, float, float], sigma: float, label_noise: float, n: float,
                     finite_sample: bool) -> float:
    """:func:`two_stage_error` from the teacher's ``terms`` (:func:`_teacher_terms`), computed once per teacher."""
    c, s = 1.0 / (1.0 + sigma**2), label_noise
    d_y, d = w_star.shape
    k, kappa, carried = terms
    limit = mmse(w_star, sigma) + c * kappa
    if math.isinf(n):
        return limit
    if finite_sample:
        n = check_int("n", n, low=d + 2)
        return limit + c * sigma**2 * carried * d / (n - d - 1) + (c * kappa + d_y * s**2) * k / (n - k - 1)
    return limit + (c * sigma**2 * carried * d + (c * kappa + d_y * s**2) * k) / n


def two_stage_gain(w_star: Tensor, q: Tensor, sigma: float, label_noise: float, n: float,
                   finite_sample: bool = True) -> float:
    """Least squares' expected error minus the two-stage estimator's (``finite_sample`` as in :func:`two_stage_error`).

    To leading order, ``[c sigma^2 kappa d + d_y s^2 (d - k) - c kappa k] / n - c kappa``:
    for a teacher that carries the target (``kappa = 0``), ``d_y s^2 (d - k) / n``.
    """
    w_star, _, sigma, label_noise = _isotropic(w_star, sigma, label_noise)
    return _two_stage_gain(w_star, _teacher_terms(w_star, q), sigma, label_noise, n, finite_sample)


def _two_stage_gain(w_star: Tensor, terms: tuple[int, float, float], sigma: float, label_noise: float, n: float,
                    finite_sample: bool) -> float:
    d_y, d = w_star.shape
    m = mmse(w_star, sigma)
    base = base_error(w_star, sigma, label_noise, n) if finite_sample else m + (m + d_y * label_noise**2) * d / n
    return base - _two_stage_error(w_star, terms, sigma, label_noise, n, finite_sample)


def crossover_samples(w_star: Tensor, q: Tensor, sigma: float, label_noise: float,
                      finite_sample: bool = True) -> float:
    """Student sample size beyond which ST (two-stage) with features ``q x`` loses to least squares.

    Leading order (``finite_sample=False``), in closed form:
    ``n* = [c sigma^2 kappa d + d_y s^2 (d - k) - c kappa k] / (c kappa)``
    ``= sigma^2 d - k + d_y s^2 (d - k) / (c kappa)``.
    With ``finite_sample=True``, the root in ``n`` of :func:`two_stage_gain`
    (found by bisection on ``log n``). ``inf`` for a teacher that carries the
    whole target (``kappa = 0``) and ``d + 2`` (the smallest size) when ST never helps.
    """
    w_star, c, sigma, s = _isotropic(w_star, sigma, label_noise)
    d_y, d = w_star.shape
    terms = _teacher_terms(w_star, q)  # the projector once, not once per bisection step
    k, kappa, _ = terms
    if kappa <= 1e-12 * float(w_star.pow(2).sum()):
        return math.inf
    if not finite_sample:
        return max((c * sigma**2 * kappa * d + d_y * s**2 * (d - k) - c * kappa * k) / (c * kappa), 0.0)
    def gain(n: float) -> float:
        return _two_stage_gain(w_star, terms, sigma, label_noise, int(round(n)), True)

    low, high = float(d + 2), 1e9
    if gain(low) <= 0:
        return low
    for _ in range(80):  # gain is positive below the root and negative above it
        mid = math.sqrt(low * high)
        low, high = (mid, high) if gain(mid) > 0 else (low, mid)
    return math.sqrt(low * high)
