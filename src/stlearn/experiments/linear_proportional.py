"""The proportional-regime chapter: finite-d simulations of min-norm, ridge, stopped gradient flow and two-stage ST.

Every estimator is computed in closed form on drawn data (float64): min-norm
least squares and the two-stage estimator with :mod:`stlearn.theory`, ridge by
a linear solve, gradient flow from zero at time ``t`` as the spectral filter
``(1 - e^{-t s}) / s`` of the sample covariance ``S = X~^T X~ / N`` (samples as
rows). Test errors are exact (:func:`stlearn.theory.linear_test_error`).
"""

from __future__ import annotations

import pandas as pd
import torch

from .. import theory
from ..data import GaussianInputs, LinearTarget, Task, draw, random_orthonormal
from ..streams import Stream

DTYPE = torch.float64


def target_and_teacher(d: int, d_out: int, missing: int, rng: Stream) -> tuple[torch.Tensor, torch.Tensor]:
    """``W*`` with ``d_out`` orthonormal rows and a teacher ``Q`` (as many rows) that misses ``missing`` of them.

    ``Q`` keeps the first ``d_out - missing`` target rows and replaces the others by
    unrelated directions, so ``||W*||^2 = d_out``, ``kappa = missing`` and ``||W* Pi||^2 = d_out - missing``.
    """
    basis = random_orthonormal(d, d_out + missing, rng.child("direction")).to(DTYPE).T
    w_star = basis[:d_out]
    q = torch.cat([basis[: d_out - missing], basis[d_out:]])
    return w_star, q


def ridge_map(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """``W = Y^T X (X^T X + N lam I)^{-1}`` (samples as rows): ridge with penalty ``lam`` on the mean squared loss."""
    n, d = x.shape
    gram = x.T @ x + n * lam * torch.eye(d, dtype=x.dtype)
    return torch.linalg.solve(gram, x.T @ y).T


def flow_maps(x: torch.Tensor, y: torch.Tensor, times) -> torch.Tensor:
    """Gradient flow on ``(1/2N) ||X W^T - Y||^2`` from zero at each time: ``(len(times), d_y, d)``."""
    n = x.shape[0]
    evals, evecs = torch.linalg.eigh(x.T @ x / n)
    proj = evecs.T @ (x.T @ y / n)  # (d, d_y)
    out = []
    for t in times:
        filt = torch.where(evals > 1e-12, -torch.expm1(-t * evals.clamp_min(0)) / evals.clamp_min(1e-12),
                           t * torch.ones_like(evals))
        out.append((evecs @ (filt[:, None] * proj)).T)
    return torch.stack(out)


def _isotropic_draws(d: int, d_out: int, missing: int, sigma: float, label_noise: float, gammas, runs: int,
                     rng: Stream):
    """Per run ``k`` and ratio ``gamma``: ``(k, gamma, n, w_star, q, data)``, isotropic inputs.

    Run ``k``'s target and teacher come from ``rng.child("target", k)``, its ``n = gamma d`` training
    samples at ratio ``i`` from ``rng.child("student_data", k, i)``.
    """
    for k in range(runs):
        w_star, q = target_and_teacher(d, d_out, missing, rng.child("target", k))
        task = Task(GaussianInputs(d), LinearTarget(w_star), sigma=sigma, label_noise=label_noise)
        for i, gamma in enumerate(gammas):
            n = int(round(gamma * d))
            yield k, gamma, n, w_star, q, draw(task, n, rng.child("student_data", k, i), dtype=DTYPE)


def isotropic_runs(d: int, d_out: int, sigma: float, label_noise: float, gammas, runs: int, rng: Stream,
                   lam_of, time_of) -> pd.DataFrame:
    """Test errors of min-norm, ridge (penalty ``lam_of(gamma)``) and flow (time ``time_of(gamma)``), per run and gamma.

    Isotropic clean inputs, ``W*`` with ``d_out`` orthonormal rows (one per run,
    ``rng.child("target", k)``), training sets ``rng.child("student_data", k, i)``.
    """
    rows = []
    eye = torch.eye(d, dtype=DTYPE)
    for k, gamma, n, w_star, _, data in _isotropic_draws(d, d_out, 0, sigma, label_noise, gammas, runs, rng):
        maps = {"min-norm": theory.min_norm_interpolator(data.noisy, data.y),
                "ridge": ridge_map(data.noisy, data.y, lam_of(gamma)),
                "flow": flow_maps(data.noisy, data.y, [time_of(gamma)])[0]}
        for name, w in maps.items():
            rows.append({"run": k, "gamma": gamma, "n": n, "estimator": name,
                         "test_error": float(theory.linear_test_error(w, w_star, eye, sigma))})
    return pd.DataFrame(rows)


def flow_path(d: int, d_out: int, sigma: float, label_noise: float, gamma: float, times, runs: int,
              rng: Stream) -> pd.DataFrame:
    """Test error along the gradient-flow path at one ``gamma``, per run (streams as in :func:`isotropic_runs`)."""
    rows = []
    eye = torch.eye(d, dtype=DTYPE)
    for k in range(runs):
        w_star, _ = target_and_teacher(d, d_out, 0, rng.child("target", k))
        task = Task(GaussianInputs(d), LinearTarget(w_star), sigma=sigma, label_noise=label_noise)
        data = draw(task, int(round(gamma * d)), rng.child("student_data", k), dtype=DTYPE)
        errs = theory.linear_test_error(flow_maps(data.noisy, data.y, times), w_star, eye, sigma)
        rows += [{"run": k, "time": float(t), "test_error": float(e)} for t, e in zip(times, errs)]
    return pd.DataFrame(rows)


def spiked_runs(d: int, rank: int, d_out: int, sigma: float, label_noise: float, gammas, lams, runs: int,
                rng: Stream) -> pd.DataFrame:
    """Min-norm (``lam = 0``) and ridge test errors, clean inputs on a ``rank``-dimensional subspace.

    The noisy inputs then have covariance ``U U^T + sigma^2 I``.
    """
    rows = []
    for k in range(runs):
        basis = random_orthonormal(d, rank, rng.child("task", k)).to(DTYPE)
        inputs = GaussianInputs(d, basis)
        w_star = random_orthonormal(rank, d_out, rng.child("target", k)).to(DTYPE).T @ basis.T
        task = Task(inputs, LinearTarget(w_star), sigma=sigma, label_noise=label_noise)
        cov = inputs.covariance()
        for i, gamma in enumerate(gammas):
            n = int(round(gamma * d))
            data = draw(task, n, rng.child("student_data", k, i), dtype=DTYPE)
            for lam in lams:
                w = (theory.min_norm_interpolator(data.noisy, data.y) if lam == 0
                     else ridge_map(data.noisy, data.y, lam))
                rows.append({"run": k, "gamma": gamma, "lam": lam,
                             "test_error": float(theory.linear_test_error(w, w_star, cov, sigma))})
    return pd.DataFrame(rows)


def two_stage_runs(d: int, d_out: int, missing: int, sigma: float, label_noise: float, gammas, runs: int,
                   rng: Stream) -> pd.DataFrame:
    """Least squares and the two-stage (ST) estimator, teacher missing ``missing`` target rows, per run and gamma."""
    rows = []
    eye = torch.eye(d, dtype=DTYPE)
    for k, gamma, n, w_star, q, data in _isotropic_draws(d, d_out, missing, sigma, label_noise, gammas, runs, rng):
        base = theory.min_norm_interpolator(data.noisy, data.y)
        two = theory.two_stage_estimator(data.noisy, data.clean @ q.T, data.y)
        e_base = float(theory.linear_test_error(base, w_star, eye, sigma))
        e_st = float(theory.linear_test_error(two, w_star, eye, sigma))
        finite = theory.two_stage_error(w_star, q, sigma, label_noise, n)
        rows.append({"run": k, "gamma": gamma, "n": n, "base": e_base, "st": e_st, "gain": e_base - e_st,
                     "st_finite_formula": finite,
                     "base_finite_formula": theory.base_error(w_star, sigma, label_noise, n)})
    return pd.DataFrame(rows)
