"""The proportional-regime chapter: finite-d simulations of min-norm, ridge, stopped gradient flow and two-stage ST.

Every estimator is computed in closed form on drawn data (float64): min-norm
least squares and the two-stage estimator with :mod:`stlearn.theory`, ridge by
a linear solve, gradient flow from zero at time ``t`` as the spectral filter
``(1 - e^{-t s}) / s`` of the sample covariance ``S = X~^T X~ / N`` (samples as
rows). Test errors are exact (:func:`stlearn.theory.linear_test_error`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.special import stdtrit  # the Student-t quantile

from .. import proportional as pr
from .. import theory, theory_finite
from ..data import GaussianInputs, LinearTarget, Task, draw, random_orthonormal
from ..stats import collapse_intervals, fixed, mean_ci
from ..streams import Stream
from ..validation import ParameterError
from .linear_common import relative_gain_table

DTYPE = torch.float64
FAMILY_ALPHA = 1e-3  # chance that a correct library fails any of a chapter's formula checks, at any seed
MIN_GAP = 10  # samples a simulated N keeps from d (min-norm's error has no finite mean at |N - d| <= 1)


# ------------------------------------------------------------------------------- ratios and tolerances
def realized(gammas, d: int) -> list[float]:
    """The ratios the simulation runs at: ``N / d`` with ``N = round(gamma d)`` samples, so formula and
    simulation share one ratio."""
    return [int(round(g * d)) / d for g in gammas]


def check_ratios(d: int, **ratios) -> None:
    """Every simulated ``N = round(gamma d)`` at least :data:`MIN_GAP` samples from ``d`` and at least 2.

    Near ``N = d`` min-norm's error has heavy tails (no finite mean at ``|N - d| <= 1``), so neither a
    run mean nor its standard error would say anything. ``ratios`` maps a parameter name to its ratios.
    """
    gap = (MIN_GAP + 0.5) / d
    for name, values in ratios.items():
        listed = [float(g) for g in np.atleast_1d(values)]
        bad = [g for g in listed if abs(round(g * d) - d) < MIN_GAP or round(g * d) < 2]
        if bad:
            allowed = [round(max(g, 2.5 / d) if abs(g - 1) >= gap else (1 - gap if g < 1 else 1 + gap), 4)
                     for g in listed]
            raise ParameterError(f"{name} must keep N = round(gamma d) >= 2 and at least {MIN_GAP} samples "
                                 f"from d = {d} (|gamma - 1| >= {gap:.3f}); got {bad}: e.g. {name} = "
                                 f"{allowed if np.ndim(values) else allowed[0]}")


def z_limit(runs: int, points: int, alpha: float = FAMILY_ALPHA) -> float:
    """How many standard errors a mean of ``runs`` runs may stray from its expectation in a formula check.

    The Student-t quantile with ``runs - 1`` degrees of freedom at ``1 - alpha / (2 points)``: with it a
    correct formula fails any of ``points`` checks with probability about ``alpha`` whatever the seed
    (Bonferroni). It follows from the number of runs and of checks, not from seeds tried. (The test errors
    are skewed to the right, which about doubles the lower tail of the t statistic; ``alpha`` is small.)
    """
    if runs < 2 or points < 1:
        raise ParameterError(f"runs must be >= 2 and points >= 1; got {runs} and {points}")
    return float(stdtrit(runs - 1, 1 - alpha / (2 * points)))


def finite_d_allowance(d: int, n: int) -> float:
    """The relative allowance of a proportional limit for finite ``d`` at ``n`` samples.

    ``1 / (|n - d| - 1)``: the exact finite-``n`` correction of min-norm's variance term (``d / (n - d - 1)``
    against its limit ``1 / (gamma - 1)``, and ``n / (d - n - 1)`` against ``gamma / (1 - gamma)``), the
    largest near the threshold; plus ``2 / d`` for the other ``O(1/d)`` terms (the regularized estimators'
    corrections, measured below ``1 / d`` at ``d = 60`` and ``200``).
    """
    return 1.0 / (abs(n - d) - 1) + 2.0 / d


def against_formula(sim: pd.DataFrame, formula, label: str, d: int, z: float, column: str = "test_error",
                    scale=None, extra=None) -> pd.DataFrame:
    """Per point (a value of ``label``), the mean and standard error of ``column`` over runs against ``formula``.

    A point is ``within`` when ``|mean - formula| <= z se + allowance``, the allowance being
    :func:`finite_d_allowance` at the point's ``n`` (column ``n`` of ``sim``) times ``scale(point)``
    (default: the formula's value; a gain near zero passes the sum of its two errors' limits), plus
    ``extra(point)`` if given (a correction of known order that the limit drops). ``used`` is the share of
    its allowance that the point needed (0 when ``z se`` alone covers the gap).
    """
    g = sim.groupby(label)
    table = pd.DataFrame({"simulated": g[column].mean(), "se": g[column].sem()})
    table["formula"] = [formula(key) for key in table.index]
    size = table.formula.abs() if scale is None else pd.Series([scale(k) for k in table.index], table.index)
    n = g.n.first()
    table["allowance"] = [finite_d_allowance(d, int(n[k])) * size[k] + (extra(k) if extra else 0.0)
                          for k in table.index]
    gap = (table.simulated - table.formula).abs()
    table["within"] = gap <= z * table.se + table.allowance
    table["used"] = ((gap - z * table.se) / table.allowance).clip(lower=0.0)
    return table


class FormulaChecks:
    """The chapter's formula checks (:func:`against_formula` at ``d`` and ``z``), every one kept in ``tables``: the
    family of checks is sized in advance (``z`` is :func:`z_limit` for their number), so the chapter counts them
    and reports the largest share of its allowance that any point needed."""

    def __init__(self, d: int, z: float):
        self.d, self.z, self.tables = d, z, []

    def full(self, sim: pd.DataFrame, formula, label: str, **kw) -> pd.DataFrame:
        """One check, kept: the whole table of :func:`against_formula` (with its tolerances)."""
        table = against_formula(sim, formula, label, self.d, self.z, **kw)
        self.tables.append(table)
        return table

    def __call__(self, sim: pd.DataFrame, formula, label: str, **kw) -> pd.DataFrame:
        """One check, kept; per point the mean and standard error against the formula, and whether it is within."""
        return self.full(sim, formula, label, **kw)[["simulated", "se", "formula", "within"]]


FORMULA_HEADERS = {"simulated": "simulated (mean over runs)", "se": "standard error", "formula": "formula",
                   "within": "within tolerance"}


def formula_table(table: pd.DataFrame) -> pd.DataFrame:
    """One formula check (:class:`FormulaChecks`) for the reader: the columns in words."""
    return table[list(FORMULA_HEADERS)].rename(columns=FORMULA_HEADERS)


def noisy_formulas(p: dict, lam_star: dict, t_star: dict) -> dict:
    """The limits on noisy isotropic inputs (``p``: :func:`stlearn.proportional.noisy_inputs`) of min-norm least
    squares, ridge at the penalty ``lam_star[gamma]`` and gradient flow stopped at ``t_star[gamma]``, each a
    function of the ratio ``gamma``."""
    return {
        "min-norm": lambda g: p["mmse"] + pr.min_norm_risk(g, p["r2"], p["noise"]),
        "ridge": lambda g: p["mmse"] + pr.ridge_risk(g, p["c"] * lam_star[g], p["r2"], p["noise"]),
        "flow": lambda g: p["mmse"] + pr.flow_risk(g, t_star[g] / p["c"], p["r2"], p["noise"]),
    }


def ridge_penalty_is_best(p: dict, lam_star: dict, factors=(0.5, 2.0)) -> bool:
    """Whether, at every ratio of ``lam_star``, ridge at half and at twice the penalty ``lam_star[gamma]`` has a
    higher limiting risk than at it (``mu* = q nu / (c |W*|^2)`` is the best penalty)."""
    return all(pr.ridge_risk(g, p["c"] * lam_star[g] * f, p["r2"], p["noise"])
               > pr.ridge_risk(g, p["c"] * lam_star[g], p["r2"], p["noise"]) for g in lam_star for f in factors)


def gain_intervals(runs: pd.DataFrame) -> pd.DataFrame:
    """Per ratio, the mean gain of two-stage ST over least squares with its 95% interval over runs (``gamma``,
    ``gain``, ``low``, ``high``)."""
    return pd.DataFrame([dict(zip(("gamma", "gain", "low", "high"), (g, *mean_ci(grp.gain))))
                         for g, grp in runs.groupby("gamma")])


def interval_sides(gains: pd.DataFrame) -> str:
    """Which side of zero each ratio's 95% interval of the gain lies on (:func:`gain_intervals`), as a clause:
    a verdict per ratio, computed."""
    sides = {"above zero (ST helps)": gains[gains.low > 0].gamma,
             "below zero (least squares wins)": gains[gains.high < 0].gamma,
             "around zero (no resolvable difference)": gains[(gains.low <= 0) & (gains.high >= 0)].gamma}
    return "; ".join(f"{side} at γ = " + ", ".join(f"{g:g}" for g in gs) for side, gs in sides.items() if len(gs))


def crossing(gains: pd.Series, tolerance: pd.Series) -> tuple[float, float, float]:
    """Where the mean gain changes sign, interpolated linearly in ``x = 1 / (gamma - 1)`` (the two-stage
    gain is affine in ``x`` in the limit), and the range of crossings allowed by ``tolerance``.

    ``gains`` and ``tolerance`` are indexed by ``gamma > 1``, increasing. The crossing is that of the first
    sign change from + to - (nan if none); the range holds every zero of a line through points within
    ``tolerance`` of the two bracketing means (an end is ``1`` or ``inf`` when the tolerance reaches zero).
    """
    x = 1.0 / (gains.index.to_numpy() - 1.0)
    g, t = gains.to_numpy(), tolerance.to_numpy()
    change = np.nonzero((g[:-1] > 0) & (g[1:] <= 0))[0]
    if not len(change):
        return float("nan"), float("nan"), float("nan")
    i = int(change[0])

    def zero(u: float, v: float) -> float:  # gamma where the line through (x_i, u > 0), (x_i+1, v < 0) is zero
        return 1.0 + 1.0 / (x[i] + u * (x[i + 1] - x[i]) / (u - v))

    # the zero moves to larger gamma as either end rises: the extremes are the corners of the tolerance box
    low = 1.0 if g[i] - t[i] <= 0 else zero(g[i] - t[i], g[i + 1] - t[i + 1])
    high = float("inf") if g[i + 1] + t[i + 1] >= 0 else zero(g[i] + t[i], g[i + 1] + t[i + 1])
    return zero(g[i], g[i + 1]), low, high


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
        n = int(round(gamma * d))
        data = draw(task, n, rng.child("student_data", k), dtype=DTYPE)
        errs = theory.linear_test_error(flow_maps(data.noisy, data.y, times), w_star, eye, sigma)
        rows += [{"run": k, "time": float(t), "n": n, "test_error": float(e)} for t, e in zip(times, errs)]
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
                rows.append({"run": k, "gamma": gamma, "n": n, "lam": lam,
                             "test_error": float(theory.linear_test_error(w, w_star, cov, sigma))})
    return pd.DataFrame(rows)


def two_stage_runs(d: int, d_out: int, missing: int, sigma: float, label_noise: float, gammas, runs: int,
                   rng: Stream) -> pd.DataFrame:
    """Least squares, ridge at its best penalty and the two-stage (ST) estimator, teacher missing ``missing``
    target rows, per run and gamma, all three on the same samples (``gain``: least squares minus ST;
    ``ridge_gap``: ridge minus ST)."""
    rows = []
    eye = torch.eye(d, dtype=DTYPE)
    for k, gamma, n, w_star, q, data in _isotropic_draws(d, d_out, missing, sigma, label_noise, gammas, runs, rng):
        base = theory.min_norm_interpolator(data.noisy, data.y)
        two = theory.two_stage_estimator(data.noisy, data.clean @ q.T, data.y)
        ridge = ridge_map(data.noisy, data.y, best_ridge_penalty(gamma, d_out, sigma, label_noise))
        e_base, e_st, e_ridge = (float(theory.linear_test_error(w, w_star, eye, sigma)) for w in (base, two, ridge))
        finite = theory.two_stage_error(w_star, q, sigma, label_noise, n)
        rows.append({"run": k, "gamma": gamma, "n": n, "base": e_base, "st": e_st, "ridge": e_ridge,
                     "gain": e_base - e_st, "ridge_gap": e_ridge - e_st, "st_finite_formula": finite,
                     "base_finite_formula": theory.base_error(w_star, sigma, label_noise, n)})
    return pd.DataFrame(rows)


def best_ridge_penalty(gamma: float, d_out: int, sigma: float, label_noise: float) -> float:
    """Ridge's best penalty in the limit for the book's targets (``||W*||^2 = d_out``), on the noisy inputs' scale
    (:func:`stlearn.proportional.optimal_ridge` is on the whitened inputs' scale, ``c`` times smaller)."""
    p = pr.noisy_inputs(float(d_out), sigma, label_noise, d_out)
    return pr.optimal_ridge(gamma, p["r2"], p["noise"])[0] / p["c"]


def ridge_map_runs(d: int, d_out: int, missing: int, sigma: float, points, runs: int, rng: Stream,
                   lams=()) -> pd.DataFrame:
    """Two-stage ST against ridge at its best penalty (from the limit), per run and map point.

    ``points`` lists ``(gamma, label_noise)`` pairs. Run ``k`` draws its target and teacher once
    (``rng.child("target", k)``) and, at point ``i``, ``n = gamma d`` samples from ``rng.child("student_data", k, i)``;
    both estimators fit the same samples, so ``gap`` (ridge minus ST: positive where ST wins) is paired. With
    ``lams``, the closed-form ST minimizer of a student of the teacher's width at each weight
    (:func:`stlearn.theory_finite.st_minimizer`) on the same samples: ``finite_gap`` is ridge minus the best of
    them by *test* error (an oracle over the grid: an upper bound on what tuning ``lam`` can reach) and
    ``best_lam`` that weight.
    """
    rows = []
    eye = torch.eye(d, dtype=DTYPE)
    for k in range(runs):
        w_star, q = target_and_teacher(d, d_out, missing, rng.child("target", k))
        for i, (gamma, label_noise) in enumerate(points):
            lam = best_ridge_penalty(gamma, d_out, sigma, label_noise)
            task = Task(GaussianInputs(d), LinearTarget(w_star), sigma=sigma, label_noise=label_noise)
            n = int(round(gamma * d))
            data = draw(task, n, rng.child("student_data", k, i), dtype=DTYPE)
            e_st = float(theory.linear_test_error(theory.two_stage_estimator(data.noisy, data.clean @ q.T, data.y),
                                                  w_star, eye, sigma))
            e_ridge = float(theory.linear_test_error(ridge_map(data.noisy, data.y, lam), w_star, eye, sigma))
            row = {"run": k, "point": i, "gamma": gamma, "label_noise": label_noise, "n": n, "st": e_st,
                   "ridge": e_ridge, "gap": e_ridge - e_st}
            if len(lams):
                ends = theory_finite.st_minimizer(data.noisy, data.clean @ q.T, data.y,
                                                  torch.tensor([float(w) for w in lams], dtype=DTYPE)).end_to_end
                e_finite = theory.linear_test_error(ends, w_star, eye, sigma).tolist()
                best = int(np.argmin(e_finite))
                row.update(finite_gap=e_ridge - e_finite[best], best_lam=float(lams[best]))
            rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- ST against tuned ridge
def ridge_gap_formula(d_out: int, sigma: float, label_noise: float, missing: int):
    """``gamma -> Delta(gamma)``: tuned ridge's limit minus the two-stage limit for the book's target and teacher."""
    return lambda g: float(pr.ridge_gap(g, sigma, label_noise, d_out, float(d_out - missing), float(missing)))


def map_gap_formula(points, d_out: int, sigma: float, missing: int):
    """``i -> Delta`` at map point ``i`` (``points[i] = (gamma, label_noise)``)."""
    return lambda i: ridge_gap_formula(d_out, sigma, points[i][1], missing)(points[i][0])


def gap_allowances(d: int, d_out: int, sigma: float, label_noise: float | None, missing: int,
                   points=None) -> dict:
    """``scale`` and ``extra`` for :func:`against_formula` on a gap between tuned ridge and two-stage ST.

    ``scale``: the sum of the two limits (the finite-``d`` allowance of a difference). ``extra``: the variance
    of stage two, a least-squares fit on the teacher's ``k = d_out`` features that the limit drops,
    ``k (||W*||^2 + d_y s^2) / (n - k - 1)`` at ``n = gamma d`` (the labels' whole power bounds the noise of
    that fit). Keys are ratios (``label_noise`` given) or map point indices (``points`` given).
    """
    def at(key):
        return (key, label_noise) if points is None else points[key]

    def scale(key):
        gamma, s = at(key)
        p = pr.noisy_inputs(float(d_out), sigma, s, d_out)
        ridge = p["mmse"] + float(pr.optimal_ridge_risk(gamma, p["r2"], p["noise"]))
        return ridge + pr.two_stage_limit(gamma, sigma, s, d_out, float(d_out - missing), float(missing))

    def extra(key):
        gamma, s = at(key)
        return d_out * (d_out + d_out * s**2) / (round(gamma * d) - d_out - 1)

    return {"scale": scale, "extra": extra}


def ridge_intervals(runs: pd.DataFrame) -> pd.DataFrame:
    """Per ratio, two-stage ST against ridge at its best penalty on the same samples, paired by run: the relative
    gain ``(ridge - ST) / mean(ridge)`` (``gain``, ``gain_low``, ``gain_high``; the linear chapters' one form against
    the yardstick, the primary one) and the absolute gap ``ridge - ST`` that the limit predicts (``gap``, ...); above
    0 ST is better."""
    rows = []
    for g, grp in runs.groupby("gamma"):
        rel = mean_ci(grp.ridge_gap / grp.ridge.mean())
        rows.append({"gamma": g, **dict(zip(("gain", "gain_low", "gain_high"), rel)),
                     **dict(zip(("gap", "gap_low", "gap_high"), mean_ci(grp.ridge_gap)))})
    return pd.DataFrame(rows)


RIDGE_GAIN = "ST vs tuned ridge, % (above 0: ST better)"
RIDGE_GAP = "ST vs tuned ridge, absolute gap (the limit's; above 0: ST better)"


def ridge_table(ridge: pd.DataFrame) -> pd.DataFrame:
    """:func:`ridge_intervals` for the reader: the relative gain in % first (the primary form), then the absolute
    gap, both signed with their 95% intervals."""
    shown = ridge.rename(columns={f"gap{e}": f"{RIDGE_GAP}{e}" for e in ("", "_low", "_high")})
    return relative_gain_table(shown, {"gain": RIDGE_GAIN}, signed=[RIDGE_GAP])


def gain_table(gains: pd.DataFrame) -> pd.DataFrame:
    """:func:`gain_intervals` for the reader: two-stage ST against least squares, signed, with its 95% interval."""
    name = "two-stage ST vs least squares (above 0: ST better)"
    return collapse_intervals(gains.rename(columns={"gain": name, "low": f"{name}_low", "high": f"{name}_high"}),
                              signed=[name])


FINITE_GAP = "ST at its best weight vs tuned ridge (above 0: ST better)"


FINITE_LIMIT = "ST (two-stage limit) vs tuned ridge (above 0: ST better)"


def finite_table(finite: pd.DataFrame) -> pd.DataFrame:
    """:func:`finite_lambda_evidence` for the reader: the best finite weight's absolute gap over tuned ridge, signed,
    with its 95% interval, beside the two-stage limit's gap, signed the same way (tuned ridge's test error minus
    ST's; both absolute: the quantity the conjecture predicts)."""
    old = "gap at the best weight"
    shown = finite.rename(columns={f"{old}{e}": f"{FINITE_GAP}{e}" for e in ("", "_low", "_high")})
    shown = shown.rename(columns={"gap, two-stage limit": FINITE_LIMIT})
    shown[FINITE_LIMIT] = shown[FINITE_LIMIT].map(lambda v: fixed(v, signed=True))
    return collapse_intervals(shown, signed=[FINITE_GAP])


MAP_LIMIT = "ST vs tuned ridge, limit (above 0: ST better)"
MAP_SIMULATED = "ST vs tuned ridge, simulated (above 0: ST better)"
MAP_AGREES = "simulated side agrees"


def map_sides(table: pd.DataFrame, points, z: float, missing: int) -> pd.DataFrame:
    """Each map point's side of the boundary: predicted by the limit (or too close to call, where the limit
    lies within the point's tolerance of zero) and simulated (the sign of the mean gap). ``table`` is the
    point's check (:func:`against_formula`) for a teacher missing ``missing`` target rows. The gaps (tuned
    ridge's test error minus ST's) are signed text; :data:`MAP_AGREES` is whether the simulated side agrees
    with the limit's call (always, where it is too close to call)."""
    tol = z * table.se + table.allowance
    predicted = np.where(table.formula > tol, "yes", np.where(table.formula < -tol, "no", "too close to call"))
    simulated = np.where(table.simulated > 0, "yes", "no")
    return pd.DataFrame({"rows the teacher misses": missing, "ratio N/d": [points[i][0] for i in table.index],
                         "label noise": [points[i][1] for i in table.index],
                         MAP_LIMIT: [fixed(v, signed=True) for v in table.formula],
                         MAP_SIMULATED: [fixed(v, signed=True) for v in table.simulated],
                         "ST better, limit": predicted, "ST better, simulated": simulated,
                         MAP_AGREES: (predicted == "too close to call") | (predicted == simulated)})


def window_scan(sigmas=(0.25, 0.5, 1.0, 2.0), label_noises=(0.25, 0.5, 1.0, 2.0, 4.0), d_outs=(1, 2, 6),
                missed=(0.0, 0.25, 0.5, 0.75)) -> pd.DataFrame:
    """:func:`stlearn.proportional.ridge_window` over a grid of parameters (``||W*||^2 = d_out``, the teacher
    missing a fraction ``missed`` of it): the evidence for the conjecture that ST beats tuned ridge on one
    interval or none (``ridge_window`` raises where it finds more)."""
    rows = []
    for sigma in sigmas:
        for s in label_noises:
            for d_out in d_outs:
                for f in missed:
                    window = pr.ridge_window(sigma, s, d_out, d_out * (1 - f), d_out * f)
                    rows.append({"sigma": sigma, "label_noise": s, "d_out": d_out, "missed": f,
                                 "low": window[0] if window else np.nan, "high": window[1] if window else np.nan,
                                 "wins": window is not None})
    return pd.DataFrame(rows)


def finite_lambda_evidence(runs: pd.DataFrame, points, d_out: int, sigma: float, missing: int) -> pd.DataFrame:
    """Per map point: the oracle-best finite weight's gap over tuned ridge (mean, 95% interval over runs; positive:
    ST at that weight wins) beside the two-stage limit's gap, the evidence for the finite-lambda conjecture."""
    limit = map_gap_formula(points, d_out, sigma, missing)
    rows = []
    for i, g in runs.groupby("point"):
        gap, low, high = mean_ci(g.finite_gap)
        rows.append({"rows the teacher misses": missing, "ratio N/d": points[i][0], "label noise": points[i][1],
                     "best weight (median)": float(g.best_lam.median()), "gap at the best weight": gap,
                     "gap at the best weight_low": low, "gap at the best weight_high": high,
                     "gap, two-stage limit": limit(i),
                     "outside the region, resolvably won": bool(limit(i) < 0 and low > 0)})
    return pd.DataFrame(rows)
