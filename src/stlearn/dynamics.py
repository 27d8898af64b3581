"""Exact gradient-flow dynamics of a two-layer linear student, with and without the feature term.

The setting of Saxe, McClelland and Ganguli (2014): whitened inputs
(``X~^T X~ / n = I``, samples as rows) and correlations that share their
singular vectors. With ``Sigma_yx = Y^T X~ / n = U diag(s) V^T`` and the teacher's
feature-input correlation ``Sigma_tx = T^T X~ / n = R diag(tau) V^T``, the
gradient flow of the ST loss

    (1/2n) ||X~ W_1^T W_2^T - Y||^2 + lam (1/2n) ||X~ W_1^T - T||^2

keeps ``W_1 = R diag(a) V^T`` and ``W_2 = U diag(b) R^T`` if it starts there, and
each mode follows

    a' = b (s - a b) + lam (tau - a),     b' = a (s - a b).

Contents: the base closed form (the sigmoid of Saxe et al.), the escape rate of
a mode the teacher does not carry, the linearized escape phase (exact for the
linear part), the ``lam -> infinity`` reduced flow, a numerical integrator of
the mode equations, and the helpers that build the aligned problem and read the
mode strengths of a trained :class:`stlearn.models.DeepLinear`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.integrate import solve_ivp

from .data import Samples, random_orthonormal
from .streams import Stream
from .validation import ParameterError, check_float

Tensor = torch.Tensor


# --------------------------------------------------------------------------- closed forms
def saxe_strength(t, s: float, u0: float):
    """Base mode strength ``u(t) = s e^{2st} / (e^{2st} - 1 + s/u0)`` from a balanced start ``a0 = b0 = sqrt(u0)``."""
    s, u0 = np.asarray(s, dtype=float), np.asarray(u0, dtype=float)
    if not (np.all(s > 0) and np.all(u0 > 0)):
        raise ParameterError(f"s and u0 must be > 0; got s = {s}, u0 = {u0}")
    t = np.asarray(t, dtype=float)
    return s / (1.0 + (s / u0 - 1.0) * np.exp(-2.0 * s * t))


def saxe_half_time(s: float, u0: float) -> float:
    """The time at which the base mode reaches half its strength: ``ln(s/u0 - 1) / (2 s)`` (``u0 < s/2``)."""
    s = check_float("s", s, low=0.0, low_open=True)
    u0 = check_float("u0", u0, low=0.0, low_open=True)
    if u0 >= s / 2:
        raise ParameterError(f"u0 must be below s/2 = {s / 2:g} for the mode to have a rise; got {u0}")
    return math.log(s / u0 - 1.0) / (2.0 * s)


def escape_rate(s: float, lam: float) -> float:
    """Unstable rate of the origin for a mode the teacher does not carry: ``(sqrt(lam^2 + 4 s^2) - lam) / 2``."""
    s = check_float("s", s, low=0.0)
    lam = check_float("lam", lam, low=0.0)
    return 0.5 * (math.sqrt(lam**2 + 4.0 * s**2) - lam)


def linearized(t, a0: float, b0: float, s: float, tau: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Solution of the mode equations without their cubic terms: ``(a, b)' = M (a, b) + (lam tau, 0)``.

    ``M = [[-lam, s], [s, 0]]``; exact for the linear system, and the nonlinear
    flow's first-order approximation while ``a b`` is small against ``s``.
    """
    t = np.asarray(t, dtype=float)
    m = np.array([[-lam, s], [s, 0.0]])
    f = np.array([lam * tau, 0.0])
    evals, evecs = np.linalg.eigh(m)  # M is symmetric
    if np.min(np.abs(evals)) < 1e-300:
        raise ParameterError("s must be > 0 for the linearized mode flow")
    fixed = -np.linalg.solve(m, f)  # the linear system's fixed point
    c = evecs.T @ (np.array([a0, b0]) - fixed)
    path = fixed[:, None] + evecs @ (c[:, None] * np.exp(np.outer(evals, t)))
    return path[0], path[1]


def reduced_flow(t, b0: float, s: float, tau: float) -> np.ndarray:
    """The ``lam -> infinity`` limit of the mode strength: ``a = tau``, ``b' = tau (s - tau b)``; returns ``tau b``."""
    tau = check_float("tau", tau, low=0.0, low_open=True)
    t = np.asarray(t, dtype=float)
    b = s / tau + (b0 - s / tau) * np.exp(-tau**2 * t)
    return tau * b


# --------------------------------------------------------------------------- numerics
def integrate_modes(times, a0, b0, s, tau, lam: float, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Integrate the mode equations numerically (DOP853) for every mode at once.

    Returns ``a, b`` of shape (modes, times).
    """
    a0, b0, s, tau = (np.broadcast_to(np.asarray(v, dtype=float), np.shape(s)) for v in (a0, b0, s, tau))
    m = a0.size
    times = np.asarray(times, dtype=float)

    def rhs(_, y):
        a, b = y[:m], y[m:]
        r = s - a * b
        return np.concatenate([b * r + lam * (tau - a), a * r])

    sol = solve_ivp(rhs, (0.0, float(times[-1])), np.concatenate([a0.ravel(), b0.ravel()]), t_eval=times,
                    method="DOP853", rtol=rtol, atol=1e-14)
    if not sol.success:
        raise RuntimeError(f"mode integration failed: {sol.message}")
    return sol.y[:m], sol.y[m:]


def half_time(times, u, s) -> np.ndarray:
    """First time each mode's strength ``u`` (modes, times) reaches ``s/2``, interpolated (``inf`` if never)."""
    times = np.asarray(times, dtype=float)
    out = []
    rows = np.atleast_2d(u)
    for row, target in zip(rows, np.broadcast_to(np.asarray(s, dtype=float), (rows.shape[0],))):
        above = np.nonzero(row >= target / 2)[0]
        if above.size == 0:
            out.append(math.inf)
            continue
        i = above[0]
        if i == 0:
            out.append(float(times[0]))
            continue
        t0, t1, u0, u1 = times[i - 1], times[i], row[i - 1], row[i]
        out.append(float(t0 + (target / 2 - u0) * (t1 - t0) / (u1 - u0)))
    return np.array(out)


# --------------------------------------------------------------------------- the aligned problem
def aligned_problem(s, tau, n: int, rng: Stream, hidden: int | None = None, dtype=torch.float64):
    """Whitened inputs and correlations sharing their singular vectors, as training samples and a teacher layer.

    ``m = len(s)`` modes in ``d = d_y = m`` dimensions; ``hidden`` (default ``m``)
    hidden units. Returns ``(samples, teacher_weight, bases)``: ``samples`` has
    inputs ``X~`` with ``X~^T X~ / n = I`` (also used as the teacher's inputs,
    since the flow depends on the data only through the three correlations),
    labels ``Y = X~ V diag(s) U^T``; ``teacher_weight = R diag(tau) V^T``
    (``hidden x d``, zero rows past ``m``) gives ``T^T X~ / n = Sigma_tx``;
    ``bases = (U, V, R)``.
    """
    s = torch.as_tensor(np.asarray(s, dtype=float), dtype=dtype)
    tau = torch.as_tensor(np.asarray(tau, dtype=float), dtype=dtype)
    m = s.numel()
    hidden = m if hidden is None else hidden
    if hidden < m:
        raise ParameterError(f"hidden must be >= the number of modes {m}; got {hidden}")
    if n < m:
        raise ParameterError(f"n must be >= the number of modes {m} for whitened inputs; got {n}")
    x = random_orthonormal(n, m, rng.child("inputs")).to(dtype) * math.sqrt(n)
    u = random_orthonormal(m, m, rng.child("rotation", 0)).to(dtype)
    v = random_orthonormal(m, m, rng.child("rotation", 1)).to(dtype)
    r = random_orthonormal(hidden, hidden, rng.child("rotation", 2)).to(dtype)
    w_y = u @ torch.diag(s) @ v.T
    w_t = r[:, :m] @ torch.diag(tau) @ v.T
    samples = Samples(clean=x, noisy=x, y=x @ w_y.T)
    return samples, w_t, (u, v, r)


def stack_bases(bases_list) -> tuple[Tensor, Tensor, Tensor]:
    """Per-member bases ``(U, V, R)`` stacked along a leading member dimension."""
    return tuple(torch.stack([b[i] for b in bases_list]) for i in range(3))


def set_aligned(model, bases, a0, b0) -> None:
    """Put a two-layer :class:`~stlearn.models.DeepLinear` at ``W_1 = R diag(a0) V^T``, ``W_2 = U diag(b0) R^T``.

    ``bases`` are one problem's ``(U, V, R)`` or per-member stacks (:func:`stack_bases`) for an ensemble;
    ``a0``, ``b0`` are ``(modes,)``.
    """
    u, v, r = bases
    m = u.shape[-1]
    a0 = torch.as_tensor(np.asarray(a0, dtype=float), dtype=u.dtype)
    b0 = torch.as_tensor(np.asarray(b0, dtype=float), dtype=u.dtype)
    w1 = (r[..., :m] * a0) @ v.transpose(-1, -2)
    w2 = (u * b0) @ r[..., :m].transpose(-1, -2)
    first, second = model.layers
    with torch.no_grad():
        first.weight.copy_(w1.to(first.weight).expand_as(first.weight))
        second.weight.copy_(w2.to(second.weight).expand_as(second.weight))


def strengths(model, bases) -> Tensor:
    """Mode strengths ``u_alpha^T W_2 W_1 v_alpha`` of the end-to-end map: ``(modes,)`` or ``(members, modes)``."""
    u, v, _ = bases
    w = model.end_to_end().detach().to(u.dtype)
    return torch.diagonal(u.transpose(-1, -2) @ w @ v, dim1=-2, dim2=-1)


def growing_overlap(model, bases) -> Tensor:
    """``|c_alpha|^2`` with ``c_alpha = (W_1 v_alpha + W_2^T u_alpha) / 2``: the part of a random start that grows.

    In the linear regime the flow of the base loss multiplies ``c_alpha`` by
    ``e^{s_alpha t}`` and damps ``(W_1 v_alpha - W_2^T u_alpha)/2`` by ``e^{-s_alpha t}``,
    so ``u_alpha(t) ~ |c_alpha|^2 e^{2 s_alpha t}``: Saxe's curve with ``u0 = |c_alpha|^2``.
    """
    u, v, _ = bases
    first, second = model.layers
    w1, w2 = first.weight.detach().to(u.dtype), second.weight.detach().to(u.dtype)
    c = 0.5 * (w1 @ v + w2.transpose(-1, -2) @ u)  # (..., hidden, modes)
    return c.pow(2).sum(-2)
