"""Closed-form quantities for linear maps under the data model.

Conventions follow :mod:`stlearn.data`: samples are rows, ``X`` is ``(n, d)``,
``Y`` is ``(n, d_y)``, a linear map ``W`` is ``(d_y, d)`` and predicts
``x W^T``. Everything is computed in float64.
"""

from __future__ import annotations

import torch

from .validation import check_float

Tensor = torch.Tensor


def _f64(t: Tensor) -> Tensor:
    return t.detach().to(device="cpu", dtype=torch.float64)


def min_norm_interpolator(x: Tensor, y: Tensor) -> Tensor:
    """The minimum-Frobenius-norm ``W`` with ``X W^T = Y`` (least squares if none interpolates): ``Y^T (X^T)^+``.

    Leading member dimensions ``(E, n, d)`` give one map per member ``(E, d_y, d)``.
    """
    return _f64(y).transpose(-1, -2) @ torch.linalg.pinv(_f64(x)).transpose(-1, -2)


def row_space_projector(x: Tensor) -> Tensor:
    """``P = X^+ X``: the orthogonal projector of ``R^d`` onto the span of the samples (rows of ``X``)."""
    x = _f64(x)
    return torch.linalg.pinv(x) @ x


def wiener_map(w_star: Tensor, cov_x: Tensor, sigma: float) -> Tensor:
    """The best linear map from noisy inputs: ``W* Sigma_x (Sigma_x + sigma^2 I)^{-1}``."""
    sigma = check_float("sigma", sigma, low=0.0)
    cov_x = _f64(cov_x)
    eye = torch.eye(cov_x.shape[0], dtype=torch.float64)
    return torch.linalg.solve(cov_x + sigma**2 * eye, cov_x @ _f64(w_star).T).T


def linear_test_error(w: Tensor, w_star: Tensor, cov_x: Tensor, sigma: float) -> Tensor:
    """``E ||W* x - W (x + sigma e)||^2 = tr((W*-W) Sigma_x (W*-W)^T) + sigma^2 ||W||_F^2``.

    ``w`` may carry a leading member dimension ``(E, d_y, d)``; the result then has shape ``(E,)``.
    """
    sigma = check_float("sigma", sigma, low=0.0)
    w, w_star, cov_x = _f64(w), _f64(w_star), _f64(cov_x)
    diff = w_star - w
    bias = torch.einsum("...ij,jk,...ik->...", diff, cov_x, diff)
    return bias + sigma**2 * w.pow(2).sum((-1, -2))
