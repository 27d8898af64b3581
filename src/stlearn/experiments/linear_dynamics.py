"""The learning-dynamics chapter: mode strengths of a two-layer linear student over gradient-flow time.

The trainer (:func:`stlearn.train.train`, full-batch gradient descent on
:class:`stlearn.models.DeepLinear`) runs on the aligned, whitened problem of
:func:`stlearn.dynamics.aligned_problem`; time is ``step x lr`` (gradient-flow
units). The mode strengths are read every ``chunk`` steps by training in
segments (plain SGD has no state, so segments are one run).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .. import dynamics as dy
from .. import stats
from ..data import Samples
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..streams import Stream
from ..train import TrainConfig, train

DTYPE = torch.float64


def mode_table(signal, noise, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strengths ``s``, teacher strengths ``tau`` and test targets ``s*`` (both zero on the noise modes)."""
    s = np.array([*signal, *noise], dtype=float)
    t = np.array([tau] * len(signal) + [0.0] * len(noise))
    target = np.array([*signal, *[0.0] * len(noise)], dtype=float)
    return s, t, target


def curvature(s, tau: float, lams) -> float:
    """A bound on the largest Hessian eigenvalue of the mode losses at their end points.

    Base: ``2 s`` at ``a = b = sqrt(s)``; ST: the trace ``s^2/tau^2 + lam + tau^2`` at ``(tau, s/tau)``.
    """
    s_max = float(np.max(s))
    st = max((s_max**2 / tau**2 + lam + tau**2 for lam in lams if lam > 0), default=0.0)
    return max(2.0 * s_max, st)


def horizon(s, u0: float, level: float = 0.99) -> float:
    """The base flow's time for every mode to reach ``level`` of its strength from ``u0`` (Saxe's closed form)."""
    s = np.asarray(s, dtype=float)
    return float(np.max(np.log(level / (1 - level) * (s / u0 - 1.0)) / (2.0 * s)))


def mode_error(u, target) -> np.ndarray:
    """Test error of the mode model, ``sum_alpha (u_alpha - s*_alpha)^2``, for ``u`` of shape (..., modes, times)."""
    return ((np.asarray(u) - np.asarray(target)[:, None]) ** 2).sum(-2)


def trained_paths(s, tau_modes, lams, n: int, rng: Stream, lr: float, steps: int, chunk: int,
                  u0: float | None = None, init_scale: float = 0.01, runs: int = 1):
    """Train base and ST students (one member per ``(run, lam)``, one ensemble) and read their mode strengths.

    ``u0`` set: every member starts aligned at ``a = b = sqrt(u0)`` (the initial
    condition of the exact solution). ``u0=None``: the trainer's random
    initialization of scale ``init_scale``. Each run has its own problem
    (rotations, from ``rng.child("student_data", k)``) and its own initialization
    (``rng.child("student_init", k)``), shared by every ``lam`` of the run, so that
    comparisons between ``lam`` values are paired: they differ in the loss only,
    not in how much of the start lies along each mode. The strengths are read
    every ``chunk`` steps. Returns ``(times, u, overlap)``: ``u`` of shape
    ``(runs, lams, modes, times)`` and ``overlap``
    (:func:`stlearn.dynamics.growing_overlap` at the start) of shape ``(runs, lams, modes)``.
    """
    m, lams = len(s), list(lams)
    problems = [dy.aligned_problem(s, tau_modes, n, rng.child("student_data", k)) for k in range(runs)]
    members = [(k, j) for k in range(runs) for j in range(len(lams))]
    samples = Samples.stack([problems[k][0] for k, _ in members])
    teacher = DeepLinear([m, m, m], members=len(members), dtype=DTYPE)
    model = DeepLinear([m, m, m], members=len(members), dtype=DTYPE, init_scale=init_scale,
                       rng=[rng.child("student_init", k) for k, _ in members])
    bases = dy.stack_bases([problems[k][2] for k, _ in members])
    with torch.no_grad():
        teacher.layers[0].weight.copy_(torch.stack([problems[k][1] for k, _ in members]))
    if u0 is not None:
        dy.set_aligned(model, bases, np.full(m, math.sqrt(u0)), np.full(m, math.sqrt(u0)))

    def read(fn):
        return fn(model, bases).numpy()

    overlap = read(dy.growing_overlap)
    frozen = FrozenTeacher(teacher)
    lam_members = [lams[j] for _, j in members]
    path = [read(dy.strengths)]
    for _ in range(steps // chunk):
        train(model, samples, teacher=frozen, lam=lam_members, layers=["h1"],
              config=TrainConfig(steps=chunk, lr=lr, log_points=2, progress=False))
        path.append(read(dy.strengths))
    times = lr * chunk * np.arange(steps // chunk + 1)
    u = np.stack(path, -1).reshape(runs, len(lams), m, -1)
    return times, u, overlap.reshape(runs, len(lams), m)


def ode_paths(times, s, tau_modes, lams, u0: float) -> np.ndarray:
    """The mode equations integrated from ``a = b = sqrt(u0)``: ``u`` of shape ``(lams, modes, times)``."""
    out = []
    for lam in lams:
        a, b = dy.integrate_modes(times, math.sqrt(u0), math.sqrt(u0), s, tau_modes, lam)
        out.append(a * b)
    return np.stack(out)


def best_stop(times, err) -> tuple[float, float]:
    """The smallest error along a path and the first time it is reached."""
    i = int(np.argmin(err))
    return float(err[i]), float(times[i])


def stopping_table(times, u, lams, target) -> pd.DataFrame:
    """Per run and ``lam``: the best mode-model error along the path and its time."""
    rows = []
    for k in range(u.shape[0]):
        for j, lam in enumerate(lams):
            e, t = best_stop(times, mode_error(u[k, j], target))
            rows.append({"run": k, "lam": lam, "best_error": e, "best_time": t})
    return pd.DataFrame(rows)


def delay_summary(ratio, stretch: float) -> dict:
    """Geometric mean and 95% interval over runs of a half-time ratio (ST / base), with a computed verdict.

    ``ratio`` holds one paired ratio per run; the interval is the Student-t interval of the mean
    log ratio, exponentiated (a ratio's natural scale). ``expected``: whether the stretch
    ``s/mu`` that the theory predicts exceeds twice the interval's half-width on that log scale,
    that is, whether these runs resolve a delay of that size; only then must the interval lie above 1.
    """
    ratio = np.asarray(ratio, dtype=float)
    mean, low, high = stats.mean_ci(np.log(ratio))
    if low > 0:
        verdict = "later on average: the interval lies above 1"
    elif high < 0:
        verdict = "earlier on average: the interval lies below 1"
    else:
        verdict = "no resolvable delay on average: the interval contains 1"
    return {"mean": math.exp(mean), "low": math.exp(low), "high": math.exp(high), "verdict": verdict,
            "later_runs": int((ratio > 1).sum()), "runs": int(ratio.size), "smallest": float(ratio.min()),
            "expected": bool(math.log(stretch) > high - low)}


def best_shrinkage_error(s, target) -> float:
    """The mode-model error of the best single shrinkage ``u = rho s`` (ridge at its best penalty, one-layer
    gradient flow at its best time): ``a b / (a + b)`` with ``a`` the signal's and ``b`` the noise's energy."""
    s, target = np.asarray(s, dtype=float), np.asarray(target, dtype=float)
    a = float((s[target != 0] ** 2).sum())
    b = float((s[target == 0] ** 2).sum())
    return a * b / (a + b) if a + b > 0 else 0.0


def against_yardstick(stops: pd.DataFrame, yardstick: float) -> pd.DataFrame:
    """Per ``lam``: the mean best error along the path and the yardstick minus it, with a 95% interval over runs
    (positive: the path's best point beats the best simple estimator)."""
    rows = []
    for lam, g in stops.groupby("lam"):
        gap, low, high = stats.mean_ci(yardstick - g.best_error.to_numpy())
        rows.append({"lam": lam, "best error along the path": g.best_error.mean(), "yardstick minus it": gap,
                     "low": low, "high": high})
    return pd.DataFrame(rows).set_index("lam")
