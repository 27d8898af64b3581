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
from .linear_common import relative_gain_table

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
    """Per ``lam``: the mean best error along the path and its relative gain over the best simple estimator,
    ``(yardstick - best error) / yardstick`` (``gain``, with ``gain_low``, ``gain_high``, a 95% interval over runs;
    above 0 the path's best point beats it), the linear chapters' one form against the yardstick."""
    rows = []
    for lam, g in stops.groupby("lam"):
        gain, low, high = stats.mean_ci((yardstick - g.best_error.to_numpy()) / yardstick)
        rows.append({"lam": lam, "best error along the path": g.best_error.mean(), "gain": gain, "gain_low": low,
                     "gain_high": high})
    return pd.DataFrame(rows).set_index("lam")


def yardstick_table(versus: pd.DataFrame) -> pd.DataFrame:
    """:func:`against_yardstick` for the reader: the mean lowest error along the path (``.2e``: it falls to
    ``1e-5`` and below at large lambda) and the relative gain in %, signed, with its 95% interval
    (:func:`~.linear_common.relative_gain_table`)."""
    name = "lowest error on the path"
    shown = versus.rename(columns={"best error along the path": name}).rename_axis("λ")
    shown[name] = shown[name].map(lambda v: f"{v:.2e}")
    return relative_gain_table(shown, {"gain": "best point vs best simple, % (above 0: best point better)"})


WINDOW_HEADERS = {"enter": "enters the 1% window (t)", "leave": "last time in it (t)",
                  "best_error": "lowest error on the path", "best_time": "time of the lowest error (t)"}


def window_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per lambda, the means over runs of :func:`error_windows` and :func:`stopping_table` for the reader: the
    first time the mode-model test error is within 1% of its initial value, the last time it is (the window of
    early stopping), the lowest error along the path (``.2e``: it falls to ``1e-5`` and below at large lambda)
    and its time; "—" where some run never enters the window (its mean is undefined). A window still open at
    the horizon has its last time there."""
    shown = table[list(WINDOW_HEADERS)].replace(np.inf, np.nan).rename_axis("λ")
    shown["best_error"] = shown.best_error.map(lambda v: f"{v:.2e}")
    return shown.rename(columns=WINDOW_HEADERS)


# ------------------------------------------------------------------------------- checks against the closed forms
def closed_form_gaps(u, ode, saxe, s) -> tuple[float, float]:
    """From the aligned start (``u``: ``(lams, modes, times)``, the base loss first), the largest gap, relative to
    each mode's strength, of the base student to Saxe's closed form ``saxe`` and of every student to the integrated
    mode equations ``ode``: the trainer follows the mode model."""
    s = np.asarray(s, dtype=float)
    return float((np.abs(u[0] - saxe) / s[:, None]).max()), float((np.abs(u - ode) / s[None, :, None]).max())


def end_point_gaps(u, s, n_signal: int) -> tuple[float, float]:
    """At the last reading of an aligned-start path ``u`` (base loss first), the largest relative gap to its end
    point ``s`` of every base mode and of every taught mode under ST: whether the horizon is long enough."""
    s = np.asarray(s, dtype=float)
    return float(np.abs(u[0, :, -1] / s - 1).max()), float(np.abs(u[1:, :n_signal, -1] / s[:n_signal] - 1).max())


def noise_bound_holds(times, ode, u, s, lams, n_signal: int, u0: float) -> bool:
    """Whether every mode the teacher does not carry stays below its growth bound (eq. noise-bound),
    ``u0 (1 + q)^2 / (4 q) exp(2 mu t)`` with ``mu`` the escape rate and ``q = s / mu``, at every lambda: on the
    integrated equations ``ode`` to rounding, on the trainer's path ``u`` within 5%."""
    ok = True
    for j, lam in enumerate(lams):
        for i in range(n_signal, len(s)):
            mu = dy.escape_rate(s[i], lam)
            q = s[i] / mu
            bound = u0 * (1 + q) ** 2 / (4 * q) * np.exp(2 * mu * times)
            ok &= bool((ode[j, i] <= bound * (1 + 1e-6)).all() and (u[j, i] <= bound * 1.05 + 1e-12).all())
    return ok


def reduced_flow_gaps(times, ode, s, n_signal: int, tau: float, lams, u0: float, start: float = 1.0) -> dict:
    """Per lambda > 0, the largest gap from time ``start`` on between the taught modes of the integrated
    equations ``ode`` and the reduced flow (the limit lambda -> infinity), which should shrink as lambda grows."""
    late = times >= start
    reduced = dy.reduced_flow(times[late], math.sqrt(u0), np.asarray(s)[:n_signal, None], tau)
    return {lam: float(np.abs(ode[j, :n_signal][:, late] - reduced).max()) for j, lam in enumerate(lams) if lam > 0}


def linearized_gap(times, ode, s, tau_modes, lams, u0: float, until: float = 0.2) -> float:
    """The largest gap, up to time ``until`` and over every mode and lambda > 0, between the linearized escape
    phase (:func:`stlearn.dynamics.linearized`) and the integrated equations ``ode``."""
    early = times <= until
    gap = 0.0
    for j, lam in enumerate(lams):
        if lam <= 0:
            continue
        for i in range(len(s)):
            a_lin, b_lin = dy.linearized(times[early], math.sqrt(u0), math.sqrt(u0), s[i], tau_modes[i], lam)
            gap = max(gap, float(np.abs(a_lin * b_lin - ode[j, i, early]).max()))
    return gap


def escape_from_origin_gap(end: float, s_taught, tau: float, lams, n_grid: int = 40001) -> float:
    """The largest relative gap, over the taught modes and the ``lams`` (all > 0), between the half time from
    ``u0 = 1e-8`` and that from the origin (the limit u0 -> 0 of the corollary), on a fine grid up to ``end``.

    Raises AssertionError if a taught mode started at the origin does not cross ``s/2`` transversally by ``end``.
    """
    fine = np.linspace(0.0, end, n_grid)
    gap = 0.0
    for lam in lams:
        a0_path, b0_path = dy.integrate_modes(fine, 0.0, 0.0, s_taught, tau, lam)
        t_zero = dy.half_time(fine, a0_path * b0_path, s_taught)
        i_cross = np.searchsorted(fine, t_zero)
        rate = [a0_path[i, k] * b0_path[i, k] - a0_path[i, k - 1] * b0_path[i, k - 1] for i, k in enumerate(i_cross)]
        assert np.isfinite(t_zero).all() and min(rate) > 0, (
            f"a taught mode started at the origin (λ = {lam:g}) does not cross s/2 transversally by the horizon")
        a_tiny, b_tiny = dy.integrate_modes(fine, 1e-4, 1e-4, s_taught, tau, lam)  # u0 = 1e-8
        gap = max(gap, float(np.abs(dy.half_time(fine, a_tiny * b_tiny, s_taught) / t_zero - 1).max()))
    return gap


def far_reduced_gaps(times, s_taught, tau: float, u0: float, lams=(10.0, 100.0, 1000.0),
                     start: float = 1.0) -> dict:
    """Per large lambda, the largest gap from time ``start`` on between the taught modes of the integrated
    equations and the reduced flow: the approach to the reduced flow, which should be O(1/lambda)."""
    late = times >= start
    gaps = {}
    for lam in lams:
        a_far, b_far = dy.integrate_modes(times, math.sqrt(u0), math.sqrt(u0), s_taught, tau, lam)
        gaps[lam] = float(np.abs((a_far * b_far)[:, late]
                                 - dy.reduced_flow(times[late], math.sqrt(u0), s_taught[:, None], tau)).max())
    return gaps


def error_windows(times, u, lams, target, level: float) -> pd.DataFrame:
    """Per run and ``lam``: the first time the mode-model error is at most ``level`` (``inf``: never) and the last
    (NaN: never), from paths ``u`` of shape ``(runs, lams, modes, times)``: the window of early stopping."""
    rows = []
    for k in range(u.shape[0]):
        for j, lam in enumerate(lams):
            inside = times[mode_error(u[k, j], target) <= level]
            rows.append({"run": k, "lam": lam, "enter": inside.min() if inside.size else np.inf,
                         "leave": inside.max() if inside.size else np.nan})
    return pd.DataFrame(rows)
