"""Finite-lambda and finite-sample results for the two-layer linear ST student.

Code conventions follow :mod:`stlearn.theory` (samples are rows: ``X`` is ``(n, d)``,
teacher features ``T`` are ``(n, h)``, labels ``Y`` are ``(n, d_y)``; leading member
dimensions give one result per member; float64 on the CPU). The chapters write the
same formulas with samples as columns.

Contents:

* :func:`st_minimizer`: the global minimizer of the ST loss
  ``(1/2n) ||X W1^T W2^T - Y||^2 + (lam/2n) ||X W1^T - T||^2`` of a two-layer
  student of hidden width ``h``, in closed form: the fitted values are ``R R^T Y``
  with ``R`` the top-``h`` eigenvectors of ``H (Y Y^T + lam T T^T) H`` (``H`` the
  hat matrix of ``X``); :func:`st_loss` and :func:`st_gradients` check it;
* :func:`gradient_descent`: full-batch gradient descent on that loss with a step
  set from the local curvature (half of ``2 / L``) and a gradient-norm stopping
  criterion, one run per member;
* the exact two-stage risk (``lam -> infinity``): the per-sample decomposition of
  :func:`two_stage_pieces` and the two scalars ``tau``, ``alpha``
  (:func:`two_stage_scalars`) it leaves, and the slope of the gain in the
  teacher's deficit (:func:`knowledge_slope`, :func:`knowledge_window`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .data import randn
from .streams import Stream, as_stream
from .theory import as_float64, min_norm_interpolator
from .validation import ParameterError, check_float, check_int

Tensor = torch.Tensor


def _lam_tensor(lam, like: Tensor) -> Tensor:
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    if bool((lam_t < 0).any()):
        raise ParameterError(f"lam must be >= 0; got {lam}")
    if lam_t.ndim == 0:
        return lam_t.expand(like.shape[:-2]) if like.ndim > 2 else lam_t
    if like.ndim < 3 or lam_t.shape != like.shape[:-2]:
        raise ParameterError(f"lam must be a number or one value per member {tuple(like.shape[:-2])}; "
                             f"got shape {tuple(lam_t.shape)}")
    return lam_t


def _bcast(v: Tensor) -> Tensor:
    return v[..., None, None] if v.ndim else v


@dataclass(frozen=True)
class Minimizer:
    """The closed-form ST minimizer of :func:`st_minimizer` (one per member)."""

    w1: Tensor  # (..., h, d) first layer (the least-norm one when X has rank < d)
    w2: Tensor  # (..., d_y, h) head
    end_to_end: Tensor  # (..., d_y, d) = W2 W1 = Y^T R R^T (X^T)^+
    value: Tensor  # (...,) the minimum of the loss
    gap: Tensor  # (...,) relative eigengap (mu_h - mu_{h+1}) / mu_1; the minimizer is unique when > 0
    head_conditioning: Tensor  # (...,) smallest singular value of R^T T over the largest; > 0 for a minimizer


def st_minimizer(x: Tensor, features: Tensor, y: Tensor, lam, width: int | None = None) -> Minimizer:
    """The global minimizer of the ST loss of a two-layer linear student of hidden width ``width``.

    With ``H`` the projector onto the columns of ``X`` (n x n) and ``R`` (n x h) the
    top-``h`` eigenvectors of ``C = H (Y Y^T + lam T T^T) H``: the features are
    ``X W1^T = R R^T T``, the fit ``X W1^T W2^T = R R^T Y``, ``W2^T = (R^T T)^{-1} R^T Y``
    and the end-to-end map ``Y^T R R^T (X^T)^+``; the minimum is
    ``(||Y||^2 + lam ||T||^2 - sum_{i <= h} mu_i(C)) / 2n``. It is the unique
    minimizer (up to ``W1``'s part orthogonal to the inputs) when the eigengap
    ``mu_h > mu_{h+1}`` and ``R^T T`` is invertible (``lam > 0``); at ``lam = 0`` only
    the end-to-end map is unique (reduced-rank regression). ``width`` defaults to the
    teacher's ``h = features.shape[-1]``. When ``h >= rank(X)`` there is no bottleneck: the
    features are ``H T``, the fit ``H Y`` and the end-to-end map least squares (min-norm), a
    minimizer when ``H Y`` lies in the span of ``H T`` (condition (C) of the coincidence chapter).

    ``x`` of one data set ``(n, d)`` with ``lam`` a vector ``(L,)`` gives the ``L`` minimizers on it (leading
    dimension ``L``), the inputs' decomposition computed once.
    """
    x, t, y = as_float64(x), as_float64(features), as_float64(y)
    h = t.shape[-1] if width is None else check_int("width", width, low=1)
    if h != t.shape[-1]:
        raise ParameterError(f"width must equal the teacher's hidden width {t.shape[-1]}; got {h}")
    per_lam = x.ndim == 2 and torch.as_tensor(lam).ndim == 1  # one data set, a minimizer per lam
    lam_t = _lam_tensor(lam, x[None].expand(len(lam), *x.shape) if per_lam else x)
    n = x.shape[-2]
    ux, sx, vxh = torch.linalg.svd(x, full_matrices=False)
    keep = sx > sx[..., :1] * max(x.shape[-2:]) * torch.finfo(torch.float64).eps
    rank = int(keep.sum(-1).min())
    ux, sx, vxh = ux[..., :rank], sx[..., :rank], vxh[..., :rank, :]
    xpinv_t = (ux / sx.unsqueeze(-2)) @ vxh  # (X^T)^+ as (n, d)
    yh = ux @ (ux.transpose(-1, -2) @ y)  # H Y
    th = ux @ (ux.transpose(-1, -2) @ t)  # H T
    if h >= rank:  # no bottleneck: the features are H T and the fit is H Y (when H Y lies in their span)
        w1 = th.transpose(-1, -2) @ xpinv_t
        w2 = min_norm_interpolator(th, yh)
        end = y.transpose(-1, -2) @ xpinv_t
        value = ((y - yh).pow(2).sum((-2, -1)) + lam_t * (t - th).pow(2).sum((-2, -1))
                 + (th @ w2.transpose(-1, -2) - yh).pow(2).sum((-2, -1))) / (2 * n)
        sv = torch.linalg.svdvals(th)
        w1, w2, end, cond = (v.expand(*value.shape, *v.shape) if per_lam else v
                             for v in (w1, w2, end, sv[..., rank - 1] / sv[..., 0]))
        return Minimizer(w1, w2, end, value, torch.ones_like(value), cond)
    # C = M M^T with M = [H Y, sqrt(lam) H T]: its eigenvectors are M's left singular vectors
    scaled = _bcast(lam_t.sqrt()) * th
    stacked = torch.cat([yh.expand(*scaled.shape[:-1], yh.shape[-1]), scaled], dim=-1)
    left, sv_m, _ = torch.linalg.svd(stacked, full_matrices=False)
    mu = sv_m.pow(2)
    r = left[..., :h]
    rt = r.transpose(-1, -2) @ t  # (h, h)
    sv = torch.linalg.svdvals(rt)
    feats = r @ rt  # (n, h)
    w1 = feats.transpose(-1, -2) @ xpinv_t
    w2 = torch.linalg.solve(rt, r.transpose(-1, -2) @ y).transpose(-1, -2) if bool((sv[..., -1] > 0).all()) \
        else torch.full((*y.shape[:-2], y.shape[-1], h), float("nan"), dtype=torch.float64)
    end = y.transpose(-1, -2) @ r @ (r.transpose(-1, -2) @ xpinv_t)
    value = (y.pow(2).sum((-2, -1)) + lam_t * t.pow(2).sum((-2, -1)) - mu[..., :h].sum(-1)) / (2 * n)
    nxt = mu[..., h] if mu.shape[-1] > h else torch.zeros_like(mu[..., 0])
    gap = (mu[..., h - 1] - nxt) / mu[..., 0]
    return Minimizer(w1, w2, end, value, gap, sv[..., -1] / sv[..., 0])


def st_loss(x: Tensor, features: Tensor, y: Tensor, w1: Tensor, w2: Tensor, lam) -> Tensor:
    """``(1/2n) ||X W1^T W2^T - Y||^2 + (lam/2n) ||X W1^T - T||^2`` (one value per member)."""
    x, t, y, w1, w2 = map(as_float64, (x, features, y, w1, w2))
    lam_t = _lam_tensor(lam, x)
    phi = x @ w1.transpose(-1, -2)
    n = x.shape[-2]
    return ((phi @ w2.transpose(-1, -2) - y).pow(2).sum((-2, -1))
            + lam_t * (phi - t).pow(2).sum((-2, -1))) / (2 * n)


def st_gradients(x: Tensor, features: Tensor, y: Tensor, w1: Tensor, w2: Tensor, lam) -> tuple[Tensor, Tensor]:
    """The gradients ``(dL/dW1, dL/dW2)`` of :func:`st_loss`."""
    lam_t = _lam_tensor(lam, x)
    n = x.shape[-2]
    phi = x @ w1.transpose(-1, -2)
    res_y = phi @ w2.transpose(-1, -2) - y
    res_t = phi - features
    g2 = res_y.transpose(-1, -2) @ phi / n
    g1 = (res_y @ w2 + _bcast(lam_t) * res_t).transpose(-1, -2) @ x / n
    return g1, g2


@dataclass(frozen=True)
class DescentResult:
    """The end of :func:`gradient_descent` (one entry per member)."""

    w1: Tensor
    w2: Tensor
    steps: Tensor  # steps taken by each member (it stops once converged)
    grad_norm: Tensor  # final ||grad||_F / ||grad at the start||_F
    converged: Tensor  # bool: grad_norm <= tol
    time: Tensor  # gradient-flow time sum of the step sizes, in units of 1 / lambda_max(X^T X / n)
    stalled: Tensor  # bool: stopped by the loss criterion (not the gradient one)


def gradient_descent(x: Tensor, features: Tensor, y: Tensor, lam, width: int, rng, *,
                     init_scale: float = 0.1, tol: float = 1e-9, max_steps: int = 200_000,
                     momentum: float = 0.9, loss_tol: float = 1e-10, window: int = 1000) -> DescentResult:
    """Full-batch gradient descent (heavy ball) on :func:`st_loss` from a small random start, one run per member.

    Each layer's step is recomputed every step from a bound on the curvature of the loss in
    that layer at the current weights, ``L_1 = (||W2||^2 + lam) s + r`` for the first layer and
    ``L_2 = ||X W1^T||^2 / n + r`` for the head, with ``s = lambda_max(X^T X / n)``,
    ``r = ||X W1^T W2^T - Y||_F sqrt(s / n)`` (the residual's part) and operator norms: the step is
    ``(1 - momentum) / L_i``. Scaled by these per-layer curvatures the Hessian has eigenvalues at most
    3 (two diagonal blocks and the residual's off-diagonal part), well within the heavy-ball
    method's stability limit ``2 (1 + momentum) / (1 - momentum)``; the head is not slowed by ``lam``.
    A member stops when ``||grad|| <= tol ||grad at the start||`` or when its loss has fallen
    by less than ``loss_tol`` times its initial value over the last ``window`` steps (the two
    convergence criteria, reported in ``converged``; the second catches the slow, sublinear
    decay of superfluous directions of an over-complete product), or after ``max_steps``. ``rng`` is one
    stream per member (``student_init``): the initial weights are ``init_scale / sqrt(fan_in)``
    times standard normals.
    """
    x, t, y = as_float64(x), as_float64(features), as_float64(y)
    if x.ndim != 3:
        raise ParameterError("x must carry a member dimension (E, n, d)")
    width = check_int("width", width, low=1)
    tol = check_float("tol", tol, low=0.0, low_open=True)
    max_steps = check_int("max_steps", max_steps, low=1)
    momentum = check_float("momentum", momentum, low=0.0, high=0.99)
    e, n, d = x.shape
    d_y = y.shape[-1]
    lam_t = _lam_tensor(lam, x)
    rngs = list(rng)
    if len(rngs) != e:
        raise ParameterError(f"rng must be one stream per member ({e}); got {len(rngs)}")
    w1 = torch.stack([randn(as_stream(r).child("inputs"), width, d) for r in rngs]) * init_scale / math.sqrt(d)
    w2 = torch.stack([randn(as_stream(r).child("noise"), d_y, width) for r in rngs]) * init_scale / math.sqrt(width)
    gram = x.transpose(-1, -2) @ x / n
    s = torch.linalg.eigvalsh(gram)[..., -1]
    g1, g2 = st_gradients(x, t, y, w1, w2, lam_t)
    g0 = torch.sqrt(g1.pow(2).sum((-2, -1)) + g2.pow(2).sum((-2, -1)))
    steps = torch.zeros(e, dtype=torch.long)
    time = torch.zeros(e, dtype=torch.float64)
    rel = torch.ones(e, dtype=torch.float64)
    loss0 = st_loss(x, t, y, w1, w2, lam_t)
    last = loss0.clone()
    stalled = torch.zeros(e, dtype=torch.bool)
    end1, end2 = w1.clone(), w2.clone()  # each member's weights where it stopped
    # Only the members still running are stepped: a member's step reads nothing of the others', so a stopped one
    # is set aside (its state kept as it was) and the running ones go on as a smaller batch of the same products.
    idx = torch.arange(e)
    run = [x, t, y, gram, s, lam_t, g0, w1, w2, torch.zeros_like(w1), torch.zeros_like(w2), g1, g2]
    for step in range(1, max_steps + 1):
        x_, t_, y_, gram_, s_, lam_, g0_, w1, w2, v1, v2, g1, g2 = run
        phi = x_ @ w1.transpose(-1, -2)
        res = phi @ w2.transpose(-1, -2) - y_
        w2_op = torch.linalg.eigvalsh(w2.transpose(-1, -2) @ w2 if d_y > width else w2 @ w2.transpose(-1, -2))[..., -1]
        phi_op = torch.linalg.eigvalsh(w1 @ gram_ @ w1.transpose(-1, -2))[..., -1]
        cross = res.pow(2).sum((-2, -1)).sqrt() * torch.sqrt(s_ / n)
        rate = (1.0 - momentum) / ((w2_op + lam_) * s_ + cross)  # first layer
        rate2 = (1.0 - momentum) / (phi_op + cross)  # head: its own curvature, not slowed by lam
        v1 = momentum * v1 - _bcast(rate) * g1
        v2 = momentum * v2 - _bcast(rate2) * g2
        w1, w2 = w1 + v1, w2 + v2
        steps[idx] += 1
        time[idx] += rate * s_ / (1.0 - momentum)
        g1, g2 = st_gradients(x_, t_, y_, w1, w2, lam_)
        rel[idx] = torch.sqrt(g1.pow(2).sum((-2, -1)) + g2.pow(2).sum((-2, -1))) / g0_
        if not bool(torch.isfinite(rel).all()):
            raise FloatingPointError("gradient descent diverged (non-finite gradient)")
        if step % window == 0:
            now = st_loss(x_, t_, y_, w1, w2, lam_)
            stalled[idx] |= last[idx] - now <= loss_tol * loss0[idx]
            last[idx] = now
        run = [x_, t_, y_, gram_, s_, lam_, g0_, w1, w2, v1, v2, g1, g2]
        going = (rel[idx] > tol) & ~stalled[idx]
        if not bool(going.all()):
            end1[idx[~going]], end2[idx[~going]] = w1[~going], w2[~going]
            idx, run = idx[going], [v[going] for v in run]
            if not len(idx):
                break
    end1[idx], end2[idx] = run[7], run[8]  # the members that ran out of steps
    return DescentResult(end1, end2, steps, rel, (rel <= tol) | stalled, time, stalled)


# --------------------------------------------------------------------------- the exact two-stage risk
def two_stage_pieces(x_clean: Tensor, x_noisy: Tensor, y: Tensor, q: Tensor, w_star: Tensor,
                     sigma: float) -> dict[str, Tensor]:
    """The exact decomposition of ``W_ST - c W*`` (isotropic inputs, ``n > d``) into its three parts.

    With ``c = 1/(1+sigma^2)``, ``E = X - c X~`` (the clean inputs' part unexplained by the
    noisy ones), ``X~^T = V S U^T`` (SVD, samples as rows here), ``F = W* Q^T``,
    ``G = W* (I - Pi_Q)``: ``E_a = Q E^T V`` (k x d), ``K = c Q U S + E_a``,
    ``Pi_K`` the projector onto the rows of ``K``, ``A = U S Pi_K S^{-1} U^T`` and
    ``N_b = (G E^T + (Y - X W*^T)^T) V`` (the label part the features cannot carry, seen in
    the basis ``V``). Then ``W_ST - c W* = stage_one + bias + noise`` with
    ``stage_one = F E_a S^{-1} U^T``, ``bias = -c G (I - A)``, ``noise = N_b Pi_K S^{-1} U^T``.
    Returns those three and ``w_st`` (the two-stage map) for a check.
    """
    x, xn, y, q, w_star = map(as_float64, (x_clean, x_noisy, y, q, w_star))
    sigma = check_float("sigma", sigma, low=0.0)
    c = 1.0 / (1.0 + sigma**2)
    eye = torch.eye(x.shape[-1], dtype=torch.float64)
    v, s, uh = torch.linalg.svd(xn, full_matrices=False)  # xn = v diag(s) uh, v (n, d), uh = U^T
    u = uh.transpose(-1, -2)
    e_res = x - c * xn
    e_a = q @ e_res.transpose(-1, -2) @ v
    k_mat = c * q @ u * s.unsqueeze(-2) + e_a
    pi_k = torch.linalg.pinv(k_mat) @ k_mat
    s_inv_ut = uh / s.unsqueeze(-1)
    a_mat = (u * s.unsqueeze(-2)) @ pi_k @ s_inv_ut
    f = w_star @ q.transpose(-1, -2)
    g = w_star @ (eye - q.transpose(-1, -2) @ q)
    label_noise = y - x @ w_star.transpose(-1, -2)
    n_b = (g @ e_res.transpose(-1, -2) + label_noise.transpose(-1, -2)) @ v
    from .theory import two_stage_estimator
    return {"stage_one": f @ e_a @ s_inv_ut, "bias": -c * g @ (eye - a_mat), "noise": n_b @ pi_k @ s_inv_ut,
            "w_st": two_stage_estimator(xn, x @ q.transpose(-1, -2), y), "c_w_star": c * w_star}


def two_stage_scalars(n: int, d: int, k: int, sigma: float, runs: int, rng: Stream | int) -> tuple[Tensor, Tensor]:
    """Monte Carlo draws of ``(tau, alpha)``, the two scalars of the exact two-stage risk.

    ``tau = (1 + sigma^2) tr(Pi_K S^{-2})`` and ``alpha = ||Q_perp (I - A)||_F^2 / (d - k)``
    (notation of :func:`two_stage_pieces`); their means depend on ``(n, d, k, sigma)`` only.
    Draw ``j`` uses ``rng.child("reference", j)``. At ``sigma = 0`` their means are
    ``k / (n - k - 1)`` and ``1 + k / (n - k - 1)``.
    """
    n, d, k = check_int("n", n, low=d + 2), check_int("d", d, low=2), check_int("k", k, low=1, high=d - 1)
    runs = check_int("runs", runs, low=1)
    sigma = check_float("sigma", sigma, low=0.0)
    rng = as_stream(rng)
    c = 1.0 / (1.0 + sigma**2)
    xn = torch.stack([randn(rng.child("reference", j).child("inputs"), d, n) for j in range(runs)])
    xn = xn * math.sqrt(1.0 + sigma**2)  # columns are noisy inputs
    e_a = torch.stack([randn(rng.child("reference", j).child("noise"), k, d) for j in range(runs)]) * math.sqrt(
        c * sigma**2)
    evals, u = torch.linalg.eigh(xn @ xn.transpose(-1, -2))  # X~ X~^T = U S^2 U^T (cheaper than an SVD)
    s = evals.clamp_min(0).sqrt()
    q = torch.eye(d, dtype=torch.float64)[:k]
    k_mat = c * q @ u * s.unsqueeze(-2) + e_a
    pi_k = torch.linalg.pinv(k_mat) @ k_mat
    tau = (1.0 + sigma**2) * torch.einsum("...ii->...", pi_k / s.pow(2).unsqueeze(-2))
    a_mat = (u * s.unsqueeze(-2)) @ pi_k @ (u.transpose(-1, -2) / s.unsqueeze(-1))
    q_perp = torch.eye(d, dtype=torch.float64)[k:]
    alpha = (q_perp @ (torch.eye(d, dtype=torch.float64) - a_mat)).pow(2).sum((-2, -1)) / (d - k)
    return tau, alpha


def knowledge_slope(d: int, k: int, sigma: float, n: float, finite_sample: bool = True, tau: float | None = None,
                    alpha: float | None = None) -> float:
    """The slope ``d gain / d kappa`` of the two-stage gain over least squares (``||W*||``, ``k`` fixed).

    Exactly ``c [sigma^2 d / (n - d - 1) - alpha_n - sigma^2 tau_n]`` (pass the means ``tau``,
    ``alpha`` of :func:`two_stage_scalars`); with the finite-sample values ``tau_n = k / (n - k - 1)``,
    ``alpha_n = 1 + (1 - sigma^2) k / (n - k - 1)``: ``c [sigma^2 d / (n - d - 1) - 1 - k / (n - k - 1)]``;
    to leading order in ``1/n`` (``finite_sample=False``), ``c (sigma^2 d - k - n) / n``. Positive: a
    teacher that misses more of the target helps more.
    """
    sigma = check_float("sigma", sigma, low=0.0)
    c = 1.0 / (1.0 + sigma**2)
    if tau is not None and alpha is not None:
        return c * (sigma**2 * d / (n - d - 1) - alpha - sigma**2 * tau)
    if finite_sample:
        return c * (sigma**2 * d / (n - d - 1) - 1.0 - k / (n - k - 1))
    return c * (sigma**2 * d - k - n) / n


def knowledge_window(d: int, k: int, sigma: float) -> tuple[float, float]:
    """``(d + 1, N_w)``: the student sizes where the finite-sample slope of :func:`knowledge_slope` is positive.

    The slope ``c [sigma^2 d / (n - d - 1) - 1 - k / (n - k - 1)]`` vanishes where
    ``(n - 1)^2 - (1 + sigma^2) d (n - 1) + sigma^2 d k = 0``, whose larger root is
    ``N_w = 1 + ((1 + sigma^2) d + sqrt((1 + sigma^2)^2 d^2 - 4 sigma^2 d k)) / 2``, about
    ``(1 + sigma^2) d + 1``: where least squares stops being worse than predicting zero without label noise.
    Non-empty for every ``sigma > 0``. (The leading order in ``1/n``, ``sigma^2 d - k``, is not an
    approximation of it when ``n`` grows with ``d``: it drops the ``-d - 1`` of ``n - d - 1``.)
    """
    sigma = check_float("sigma", sigma, low=0.0)
    a = (1 + sigma**2) * d
    return float(d + 1), float(1 + (a + math.sqrt(max(a * a - 4 * sigma**2 * d * k, 0.0))) / 2)


def two_stage_error_exact(w_star: Tensor, q: Tensor, sigma: float, label_noise: float, n: int, tau: float,
                          alpha: float) -> float:
    """The exact expected test error of the two-stage estimator, given the means of ``(tau, alpha)``.

    ``M + c kappa + c sigma^2 ||W* Pi_Q||^2 d / (n - d - 1) + (c sigma^2 kappa + d_y s^2) tau
    + c kappa (alpha - 1)`` (isotropic inputs, ``n > d + 1``); ``tau`` and ``alpha`` are the means
    of :func:`two_stage_scalars` for ``(n, d, k, sigma)``.
    """
    from .theory import _teacher_terms, mmse

    w_star = as_float64(w_star)
    sigma = check_float("sigma", sigma, low=0.0)
    s = check_float("label_noise", label_noise, low=0.0)
    c = 1.0 / (1.0 + sigma**2)
    d_y, d = w_star.shape
    n = check_int("n", n, low=d + 2)
    k, kappa, carried = _teacher_terms(w_star, q)
    return (mmse(w_star, sigma) + c * kappa + c * sigma**2 * carried * d / (n - d - 1)
            + (c * sigma**2 * kappa + d_y * s**2) * tau + c * kappa * (alpha - 1.0))
