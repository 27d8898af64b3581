"""Chapter "A knowledgeable teacher": the two-stage ST estimator against least squares.

A teacher is fitted on ``n_teacher`` clean samples (least squares, then the
best rank-``r`` approximation); its features are ``Q x`` with ``Q`` the top
``r`` right singular vectors of its map. The student sees ``n_student`` noisy
samples; base = least squares, ST = the two-stage estimator (the
``lam -> infinity`` limit). Both are closed-form, so a grid over
(``n_student``, ``n_teacher``) with many seeds costs seconds; one ensemble of
two-layer networks of the teacher's width ``r`` (no silent unit) checks that gradient
descent reaches the closed-form finite-``lam`` minimizer
(:func:`stlearn.theory_finite.st_minimizer`), which moves from reduced-rank regression
(``lam = 0``) to the two-stage estimator (``lam -> infinity``).

Streams (children of the chapter's root ``rng``): teacher ``k`` fitted on
``N_t`` samples draws them from ``rng.child("teacher_data", k, N_t)``; student
run ``k`` with ``N`` samples from ``rng.child("student_data", k, N)`` (the same
for every teacher and noise level: paired comparisons); sets of different sizes
are independent draws, never one a prefix of another. The trained networks of
run ``k`` start from ``rng.child("student_init", k)``; its validation set (selecting lambda)
comes from ``rng.child("validation", k, N)``. The extra Monte Carlo runs of least squares
draw from ``rng.child("reference", j, N)``; the probe teachers' replacement directions from
``rng.child("direction", m, TILT)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import theory, theory_finite
from ..data import Task, draw, draw_members
from ..protocol import interval, lowest_label
from ..stats import collapse_intervals, fixed, mean_ci
from ..streams import Stream, as_stream
from ..validation import ParameterError
from .linear_common import TILT, complement, relative_gain_table, ridge_penalties, target_factors, tuned_ridge


def fitted_teacher(task: Task, rank: int, n_teacher: int, rng: Stream | int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Q, head)``: features ``Q x`` (orthonormal rows) and head of a rank-``rank`` teacher fitted on clean data.

    ``rng`` is the teacher's data stream, e.g. ``root.child("teacher_data", k, n_teacher)``.
    """
    data = draw(task, n_teacher, rng, dtype=torch.float64)
    w = theory.min_norm_interpolator(data.clean, data.y)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    return vh[:rank], u[:, :rank] * s[:rank]


def errors(task: Task, qs, n_student: int, rngs) -> tuple[np.ndarray, np.ndarray]:
    """Test errors of least squares and of the two-stage estimator (features ``qs[e] x``), one per data stream."""
    split = draw_members(task, n_student, list(rngs), dtype=torch.float64)
    feats = split.clean @ torch.stack(qs).transpose(-1, -2)
    cov, w_star = task.inputs.covariance(), task.target.weight
    w_base = theory.min_norm_interpolator(split.noisy, split.y)
    w_st = theory.two_stage_estimator(split.noisy, feats, split.y)
    return (theory.linear_test_error(w_base, w_star, cov, task.sigma).numpy(),
            theory.linear_test_error(w_st, w_star, cov, task.sigma).numpy())


def base_errors(task: Task, n_student: int, rng: Stream | int, runs: int) -> np.ndarray:
    """Test errors of least squares on ``n_student`` noisy samples, one per run ``j < runs``.

    Run ``j`` draws its samples from ``rng.child("reference", j, n_student)``: a Monte Carlo of the
    least-squares error of its own, sharing no input with the grid's teachers and students.
    """
    rng = as_stream(rng)
    split = draw_members(task, n_student, [rng.child("reference", j, n_student) for j in range(runs)],
                         dtype=torch.float64)
    w = theory.min_norm_interpolator(split.noisy, split.y)
    return theory.linear_test_error(w, task.target.weight, task.inputs.covariance(), task.sigma).numpy()


def knowledge_grid(task: Task, rank: int, n_students, n_teachers, rng: Stream | int, seeds,
                   sigmas) -> pd.DataFrame:
    """One row per (sigma, n_teacher, n_student, seed): errors, the teacher's deficit and clean error.

    ``seeds`` are the run indices ``k`` (column ``seed``): teacher ``k`` and student run ``k`` are paired.
    """
    rng = as_stream(rng)
    rows = []
    w_star = task.target.weight
    eye = torch.eye(task.d, dtype=torch.float64)
    for n_t in tqdm(n_teachers, desc="teachers"):
        teachers = [fitted_teacher(task, rank, n_t, rng.child("teacher_data", k, n_t)) for k in seeds]
        qs = [q for q, _ in teachers]
        kappa = [theory.knowledge_deficit(w_star, q) for q in qs]
        carried = [float((w_star @ q.T @ q).pow(2).sum()) for q in qs]
        clean_err = [float(theory.linear_test_error(h @ q, w_star, eye, 0.0)) for q, h in teachers]
        crossovers = {(sigma, i): (theory.crossover_samples(w_star, q, sigma, task.label_noise),
                                   theory.crossover_samples(w_star, q, sigma, task.label_noise, finite_sample=False))
                      for sigma in sigmas for i, q in enumerate(qs)}
        for sigma, n_s in itertools.product(sigmas, n_students):
            t = task.with_noise(sigma)
            base, st = errors(t, qs, n_s, [rng.child("student_data", k, n_s) for k in seeds])
            for i, s in enumerate(seeds):
                rows.append({"sigma": sigma, "n_teacher": n_t, "n_student": n_s, "seed": s, "kappa": kappa[i],
                             "carried": carried[i],
                             "teacher_clean_error": clean_err[i], "base": base[i], "st": st[i],
                             "pred_base": theory.base_error(w_star, sigma, task.label_noise, n_s),
                             "pred_st": theory.two_stage_error(w_star, qs[i], sigma, task.label_noise, n_s),
                             "pred_st_leading": theory.two_stage_error(w_star, qs[i], sigma, task.label_noise, n_s,
                                                                   finite_sample=False),
                             "pred_crossover": crossovers[(sigma, i)][0],
                             "pred_crossover_leading": crossovers[(sigma, i)][1]})
    return pd.DataFrame(rows)


def exact_predictions(grid: pd.DataFrame, w_star: torch.Tensor, label_noise: float, scalars: pd.DataFrame):
    """The exact two-stage error (:func:`stlearn.theory_finite.two_stage_error_exact`) for every grid row.

    ``scalars`` holds the means ``tau`` and ``alpha`` indexed by ``(sigma, n_student)``.
    """
    d_y, d = w_star.shape
    norm2 = float(w_star.pow(2).sum())
    sc = scalars.set_index(["sigma", "n_student"]).loc[list(zip(grid.sigma, grid.n_student))]
    tau, alpha = sc.tau.to_numpy(), sc.alpha.to_numpy()
    sigma, n = grid.sigma.to_numpy(), grid.n_student.to_numpy()
    c = 1.0 / (1.0 + sigma**2)
    kappa, carried = grid.kappa.to_numpy(), grid.carried.to_numpy()
    return (c * sigma**2 * norm2 + c * kappa + c * sigma**2 * carried * d / (n - d - 1)
            + (c * sigma**2 * kappa + d_y * label_noise**2) * tau + c * kappa * (alpha - 1.0))


def measured_crossover(cells: pd.DataFrame) -> float:
    """Where the mean gain (base - st) changes sign along ``n_student`` (log-linear interpolation).

    nan if it does not.
    """
    g = cells.groupby("n_student")[["base", "st"]].mean()
    gain = (g.base - g.st).to_numpy()
    n = g.index.to_numpy(dtype=float)
    for i in range(len(n) - 1):
        if gain[i] > 0 >= gain[i + 1]:
            frac = gain[i] / (gain[i] - gain[i + 1])
            return float(np.exp(np.log(n[i]) + frac * (np.log(n[i + 1]) - np.log(n[i]))))
    return float("nan")


def probe_features(w_star: torch.Tensor, missing: int, rng: Stream | int) -> torch.Tensor:
    """Teacher features (rows) spanning the target's row space except its ``missing`` weakest directions.

    The missed directions are replaced by as many random directions orthogonal to the row space
    (from ``rng``), so the teacher keeps ``k = r`` features: ``missing = 0`` is the perfect teacher.
    """
    _, b = target_factors(w_star)
    missing = int(missing)
    if not 0 <= missing <= b.shape[0]:
        raise ParameterError(f"missing must be in [0, {b.shape[0]}]; got {missing}")
    if missing == 0:
        return b
    return torch.cat([b[: b.shape[0] - missing], complement(b, missing, rng)])


def probe(task: Task, missing, n_students, rng: Stream | int, seeds) -> tuple[pd.DataFrame, dict]:
    """Least squares and the two-stage estimator of teachers that miss ``m`` target directions, on the same data.

    One row per (n_student, seed): ``base`` and ``st_m{m}`` for each ``m`` in ``missing``, and the
    deficits ``kappa_m{m}``. Teacher ``m`` draws its replacement directions from
    ``rng.child("direction", m, TILT)``; student run ``k`` uses ``rng.child("student_data", k, N)``.
    """
    rng = as_stream(rng)
    w_star = task.target.weight
    qs = {m: probe_features(w_star, m, rng.child("direction", m, TILT)) for m in missing}
    rows = []
    for n_s in n_students:
        streams = [rng.child("student_data", k, n_s) for k in seeds]
        out = {}
        for m, q in qs.items():
            out["base"], out[f"st_m{m}"] = errors(task, [q] * len(seeds), n_s, streams)
        for i, k in enumerate(seeds):
            rows.append({"n_student": n_s, "seed": k, **{c: float(v[i]) for c, v in out.items()},
                         **{f"kappa_m{m}": theory.knowledge_deficit(w_star, q) for m, q in qs.items()}})
    return pd.DataFrame(rows), qs


def strongest_simple(paths: pd.DataFrame) -> pd.DataFrame:
    """Per (n_teacher, n_student, seed), the simple estimator that validates better: the base student of the
    same width (``lam = 0``, reduced-rank regression) or tuned ridge; columns ``method``, ``test_error``."""
    base = paths[paths.lam == 0].set_index(["n_teacher", "n_student", "seed"])
    ridge_wins = base.ridge_val < base.val_error  # ties go to the base student
    table = pd.DataFrame({"method": np.where(ridge_wins, "ridge", "reduced-rank regression"),
                          "test_error": np.where(ridge_wins, base.ridge, base.test_error)}, index=base.index)
    return table.sort_index()


def lam_path(task: Task, rank: int, n_students, n_teacher: int, lams, rng: Stream | int, seeds,
             n_val: int) -> pd.DataFrame:
    """Test and validation errors of the closed-form ST minimizer of a width-``rank`` student, per lambda.

    One row per (n_student, seed, lam) with ``lam = inf`` the two-stage limit; columns ``test_error``
    (exact), ``head`` (the closed form's head conditioning), ``val_error`` (mean squared error on
    ``n_val`` noisy validation samples with noisy labels, drawn from ``rng.child("validation", k, N)``) and
    ``ols`` (least squares' test error), and ``ridge``, ``ridge_val``: ridge tuned on the same validation set
    over as many penalties as there are weights (:func:`tuned_ridge`; the same in every row of a run).
    Teacher ``k`` is the grid's (``rng.child("teacher_data", k, n_teacher)``); student data as in the grid.
    """
    rng = as_stream(rng)
    w_star, cov = task.target.weight, task.inputs.covariance()
    qs = [fitted_teacher(task, rank, n_teacher, rng.child("teacher_data", k, n_teacher))[0] for k in seeds]
    q_all = torch.stack(qs)
    rows = []
    for n_s in n_students:
        split = draw_members(task, n_s, [rng.child("student_data", k, n_s) for k in seeds], dtype=torch.float64)
        val = draw_members(task, n_val, [rng.child("validation", k, n_s) for k in seeds], dtype=torch.float64)
        feats = split.clean @ q_all.transpose(-1, -2)
        ols = theory.linear_test_error(theory.min_norm_interpolator(split.noisy, split.y), w_star, cov, task.sigma)
        ridge_val, ridge_test = tuned_ridge(split, val, ridge_penalties(len(lams)), w_star, cov, task.sigma)
        for lam in lams:
            if np.isinf(lam):
                w, head = theory.two_stage_estimator(split.noisy, feats, split.y), torch.full((len(seeds),), np.nan)
            else:
                m = theory_finite.st_minimizer(split.noisy, feats, split.y, float(lam))
                w, head = m.end_to_end, m.head_conditioning
            test = theory.linear_test_error(w, w_star, cov, task.sigma)
            v = (val.y - val.noisy @ w.transpose(-1, -2)).pow(2).sum(-1).mean(-1)
            for i, k in enumerate(seeds):
                rows.append({"n_student": n_s, "seed": k, "lam": float(lam), "test_error": float(test[i]),
                             "val_error": float(v[i]), "ols": float(ols[i]), "head": float(head[i]),
                             "ridge": float(ridge_test[i]), "ridge_val": float(ridge_val[i]),
                             "kappa": theory.knowledge_deficit(w_star, qs[i])})
    return pd.DataFrame(rows)


def trained_check(task: Task, rank: int, n_student: int, n_teacher: int, lams, rng: Stream | int, seeds, *,
                  tol: float, max_steps: int) -> pd.DataFrame:
    """Two-layer students of width ``rank`` trained by gradient descent on the ST loss, against the closed form.

    Run ``k`` uses the grid's teacher ``k`` (its ``rank`` features, no silent unit) and student data,
    and starts from ``rng.child("student_init", k)`` (:func:`stlearn.theory_finite.gradient_descent`:
    curvature-set steps, stopped when the gradient norm has fallen by ``tol``). One row per (lam, seed):
    steps, convergence, the relative distance of the trained map to the closed-form minimizer, and both
    test errors.
    """
    rng = as_stream(rng)
    pairs = list(itertools.product(lams, seeds))
    qs = {k: fitted_teacher(task, rank, n_teacher, rng.child("teacher_data", k, n_teacher))[0] for k in seeds}
    data = draw_members(task, n_student, [rng.child("student_data", k, n_student) for _, k in pairs],
                        dtype=torch.float64)
    feats = data.clean @ torch.stack([qs[k] for _, k in pairs]).transpose(-1, -2)
    lam_t = torch.tensor([l for l, _ in pairs], dtype=torch.float64)
    run = theory_finite.gradient_descent(data.noisy, feats, data.y, lam_t, rank,
                                         [rng.child("student_init", k) for _, k in pairs], tol=tol,
                                         max_steps=max_steps)
    closed = theory_finite.st_minimizer(data.noisy, feats, data.y, lam_t).end_to_end
    w = run.w2 @ run.w1
    cov, w_star = task.inputs.covariance(), task.target.weight
    return pd.DataFrame({"lam": lam_t.numpy(), "seed": [k for _, k in pairs], "steps": run.steps.numpy(),
                         "time": run.time.numpy(), "converged": run.converged.numpy(),
                         "grad_norm": run.grad_norm.numpy(),
                         "distance": ((w - closed).norm(dim=(-2, -1)) / closed.norm(dim=(-2, -1))).numpy(),
                         "trained": theory.linear_test_error(w, w_star, cov, task.sigma).numpy(),
                         "closed_form": theory.linear_test_error(closed, w_star, cov, task.sigma).numpy()})


# ------------------------------------------------------------------------------- the chapter's tables
def cell_means(grid: pd.DataFrame) -> pd.DataFrame:
    """Per (sigma, n_teacher, n_student) of :func:`knowledge_grid`: the mean errors and predictions, with the
    relative gap of least squares (``base_rel``) and of the two-stage estimator (``st_rel``) to their forms."""
    cells = grid.groupby(["sigma", "n_teacher", "n_student"])[
        ["base", "pred_base", "st", "pred_st", "pred_st_leading", "kappa"]].mean()
    cells["base_rel"] = cells.base / cells.pred_base - 1
    cells["st_rel"] = cells.st / cells.pred_st - 1
    return cells


def base_check(task: Task, sigmas, n_students, rng: Stream | int, runs: int) -> pd.DataFrame:
    """Least squares on its own, with ``runs`` Monte Carlo runs (:func:`base_errors`), against its exact expected
    error, per noise level and student size ``N`` with ``2 d <= N <= 20 d`` (its error is heavy-tailed for ``N``
    near ``d``): columns ``pred``, and ``mean``, ``low``, ``high`` over runs."""
    d, w_star = task.d, task.target.weight
    return pd.DataFrame([{"sigma": s, "n_student": n, "pred": theory.base_error(w_star, s, task.label_noise, n),
                          **dict(zip(["mean", "low", "high"], mean_ci(base_errors(task.with_noise(s), n, rng, runs))))}
                         for s in sigmas for n in n_students if 2 * d <= n <= 20 * d])


def gain_cells(grid: pd.DataFrame) -> pd.DataFrame:
    """Per (sigma, n_teacher, n_student): the mean relative gain of ST over least squares ``1 - st / base``, the
    teacher's deficit, the predicted crossover and the teacher's clean error."""
    return grid.assign(gain=1 - grid.st / grid.base).groupby(["sigma", "n_teacher", "n_student"]).agg(
        gain=("gain", "mean"), kappa=("kappa", "mean"), pred=("pred_crossover", "mean"),
        teacher_clean_error=("teacher_clean_error", "mean")).reset_index()


def crossovers(grid: pd.DataFrame, d: int, rank: int, label_noise: float) -> pd.DataFrame:
    """Per (sigma, n_teacher): the teacher's deficit (measured, and its approximation ``s^2 r (d - r) /
    (N_t - d - 1)``), its clean error, and the crossover N* where ST stops beating least squares, measured
    (:func:`measured_crossover`), predicted by the finite-sample forms and at leading order, with the ratio of
    measured to predicted."""
    rows = []
    for (s, n_t), g in grid.groupby(["sigma", "n_teacher"]):
        rows.append({"sigma": s, "n_teacher": n_t, "kappa": g.kappa.mean(),
                     "teacher clean error": g.teacher_clean_error.mean(),
                     "kappa approx": label_noise**2 * rank * (d - rank) / (n_t - d - 1) if n_t > d + 1 else np.nan,
                     "measured N*": measured_crossover(g), "predicted N*": g.pred_crossover.mean(),
                     "leading-order N*": g.pred_crossover_leading.mean()})
    cross = pd.DataFrame(rows)
    cross["ratio"] = cross["measured N*"] / cross["predicted N*"]
    return cross


def scalar_table(sigmas, n_students, d: int, rank: int, rng: Stream | int, runs: int = 100) -> pd.DataFrame:
    """Monte Carlo means and 95% intervals of the exact form's two scalars ``tau`` and ``alpha``
    (:func:`stlearn.theory_finite.two_stage_scalars`, ``runs`` draws from ``rng.child("reference", 1, N)``) per
    noise level and student size, with their rescalings ``N tau / k`` (limit 1) and ``N (alpha - 1) / k``
    (conjectured limit ``1 - sigma^2``)."""
    rng = as_stream(rng)
    rows = []
    for s_ in sigmas:
        for n in n_students:
            tau, alpha = theory_finite.two_stage_scalars(n, d, rank, s_, runs, rng.child("reference", 1, n))
            rows.append({"sigma": s_, "n_student": n, **dict(zip(["tau", "tau_low", "tau_high"], mean_ci(tau))),
                         **dict(zip(["alpha", "alpha_low", "alpha_high"], mean_ci(alpha)))})
    scalars = pd.DataFrame(rows)
    scalars["N tau / k"] = scalars.n_student * scalars.tau / rank
    scalars["N (alpha - 1) / k"] = scalars.n_student * (scalars.alpha - 1) / rank
    scalars["1 - sigma^2"] = 1 - scalars.sigma**2
    return scalars


def probe_slopes(probe_runs: pd.DataFrame, probe_qs: dict, task: Task, missing: int, rank: int,
                 rng: Stream | int, runs: int = 100) -> pd.DataFrame:
    """Per student size of the probe (:func:`probe`, with ``diff`` = weaker minus perfect teacher): the slope of
    the gain in the deficit, measured (with its 95% interval) and by the exact form (Monte Carlo scalars from
    ``rng.child("reference", 2, N)``), the finite form and at leading order; and the mean errors of least squares,
    the perfect and the weaker teacher, the latter also by its exact and finite forms."""
    rng = as_stream(rng)
    d, sigma, w_star = task.d, task.sigma, task.target.weight
    kappa = float(probe_runs[f"kappa_m{missing}"].iloc[0])
    psc = {n: theory_finite.two_stage_scalars(n, d, rank, sigma, runs, rng.child("reference", 2, n))
           for n in sorted(probe_runs.n_student.unique())}
    rows = []
    for n, g in probe_runs.groupby("n_student"):
        iv = interval(-g["diff"] / kappa)
        tau_n, alpha_n = float(psc[n][0].mean()), float(psc[n][1].mean())
        rows.append({"n_student": n, "slope": iv["gain"], "low": iv["low"], "high": iv["high"],
                     "exact (MC scalars)": theory_finite.knowledge_slope(d, rank, sigma, n, tau=tau_n, alpha=alpha_n),
                     "finite form": theory_finite.knowledge_slope(d, rank, sigma, n),
                     "leading order": theory_finite.knowledge_slope(d, rank, sigma, n, finite_sample=False),
                     "ls": g.base.mean(), "perfect": g.st_m0.mean(), "weaker": g[f"st_m{missing}"].mean(),
                     "weaker (exact form)": theory_finite.two_stage_error_exact(w_star, probe_qs[missing], sigma, 0.0,
                                                                                n, tau_n, alpha_n),
                     "weaker (finite form)": theory.two_stage_error(w_star, probe_qs[missing], sigma, 0.0, n)})
    return pd.DataFrame(rows)


def sign_change(ns, values) -> float:
    """Where ``values`` (along increasing ``ns``) first turns from positive to non-positive (log-linear)."""
    for i in range(len(ns) - 1):
        if values[i] > 0 >= values[i + 1]:
            f = values[i] / (values[i] - values[i + 1])
            return float(np.exp(np.log(ns[i]) + f * (np.log(ns[i + 1]) - np.log(ns[i]))))
    return float("nan")


def check_probe(probe_runs: pd.DataFrame, slopes: pd.DataFrame, window, zero_measured: float,
                zero_exact: float) -> None:
    """Raise AssertionError unless the probe agrees with the knowledge window: without label noise the perfect
    teacher is least squares; inside the window (``N < 0.8 N_w``) the weaker teacher resolvably helps more, well
    outside it (``N > 1.5 N_w``) resolvably less; the slope changes sign within 15% of where the exact form says;
    and the measured slope is within its interval (plus 5% of its largest size) of the exact slope."""
    assert (probe_runs.st_m0 - probe_runs.base).abs().max() < 1e-8 * probe_runs.base.max(), \
        "without label noise the perfect teacher is not least squares"
    inside = slopes[slopes.n_student < 0.8 * window[1]]
    outside = slopes[slopes.n_student > 1.5 * window[1]]
    assert len(inside) >= 1 and (inside.low > 0).all(), "inside the window the weaker teacher does not help more"
    assert abs(zero_measured / zero_exact - 1) < 0.15, "the slope changes sign away from where the exact form says"
    assert (outside.high < 0).all(), "well outside the window the weaker teacher still helps more"
    slope_margin = (slopes.high - slopes.low) + 0.05 * slopes.slope.abs().max()
    assert ((slopes.slope - slopes["exact (MC scalars)"]).abs() <= slope_margin).all(), \
        "the measured slope misses the exact slope"


def best_lambdas(paths: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """The mean test error per (n_teacher, n_student, lam) of :func:`lam_path`, and the best lambda on the grid
    per n_student (rows) and n_teacher (columns): idxmin with ties within rounding broken toward the smaller
    lambda (the same on every processor)."""
    mean_err = paths.groupby(["n_teacher", "n_student", "lam"]).test_error.mean()
    lam_star = mean_err.groupby(["n_teacher", "n_student"]).agg(lowest_label).map(lambda ix: ix[2]).unstack("n_teacher")
    return mean_err, lam_star


def tuning_table(paths: pd.DataFrame, mean_err: pd.Series, lam_star: pd.DataFrame) -> pd.DataFrame:
    """Per (n_teacher, n_student): ST with lambda chosen on validation against the base student (relative gain,
    95% interval, share of runs lost) and against the stronger simple estimator (:func:`strongest_simple`), the
    best lambda, and what the oracle lambda gains over base and base over least squares."""
    chosen = paths.loc[paths.groupby(["n_teacher", "n_student", "seed"]).val_error.agg(lowest_label)]
    key = ["n_teacher", "n_student", "seed"]
    base_w = paths[paths.lam == 0].set_index(key).test_error.sort_index()
    tuned = chosen.set_index(key).test_error.sort_index()
    simple = strongest_simple(paths)  # per run: reduced-rank regression or tuned ridge, whichever validates better
    rows = []
    for (n_t, n), g in (base_w - tuned).groupby(["n_teacher", "n_student"]):
        iv = interval(g.to_numpy() / base_w.loc[(n_t, n)].mean())
        best = simple.loc[(n_t, n)]
        vs_simple = interval((best.test_error - tuned.loc[(n_t, n)]).to_numpy() / best.test_error.mean())
        ols = paths[(paths.n_teacher == n_t) & (paths.n_student == n) & (paths.lam == 0)].ols
        rows.append({"n_teacher": n_t, "n_student": n, "lam*": lam_star.loc[n, n_t],
                     "tuned vs base": iv["gain"], "low": iv["low"], "high": iv["high"],
                     "tuned vs best simple": vs_simple["gain"], "simple low": vs_simple["low"],
                     "simple high": vs_simple["high"],
                     "ridge chosen (share of runs)": float((best.method == "ridge").mean()),
                     "lost (share of runs)": float((g < 0).mean()),
                     "oracle vs base": 1 - mean_err.loc[(n_t, n)].min() / mean_err.loc[(n_t, n, 0.0)],
                     "base vs least squares": 1 - mean_err.loc[(n_t, n, 0.0)] / ols.mean()})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- the tables a reader sees
def base_table(base_check: pd.DataFrame) -> pd.DataFrame:
    """:func:`base_check` for the reader: least squares' exact expected test error and its simulated mean
    [95% interval]."""
    return collapse_intervals(base_check.rename(columns={
        "pred": "exact expected error", "mean": "simulated", "low": "simulated_low", "high": "simulated_high"}))


SLOPE = "slope (above 0: the weaker teacher better)"  # the measured column of slope_table


SLOPE_FORMS = {"exact (MC scalars)": "slope, exact form (Monte Carlo scalars)", "finite form": "slope, finite form",
               "leading order": "slope, leading order"}
ERROR_HEADERS = {"ls": "least squares", "perfect": "ST, perfect teacher", "weaker": "ST, weaker teacher",
                 "weaker (exact form)": "ST, weaker teacher (exact form)",
                 "weaker (finite form)": "ST, weaker teacher (finite form)"}


def slope_table(slopes: pd.DataFrame) -> pd.DataFrame:
    """:func:`probe_slopes` for the reader: the measured slope of the weaker teacher's gain over the perfect one in
    the deficit, signed, with its 95% interval, beside its forms (signed the same way) and the mean test errors."""
    shown = slopes.rename(columns={"slope": SLOPE, "low": f"{SLOPE}_low", "high": f"{SLOPE}_high",
                                   **SLOPE_FORMS, **ERROR_HEADERS})
    for c in SLOPE_FORMS.values():
        shown[c] = shown[c].map(lambda v: fixed(v, signed=True))
    return collapse_intervals(shown, signed=[SLOPE])


CELL_HEADERS = {"base": "least squares", "pred_base": "least squares, predicted", "st": "two-stage ST",
                "pred_st": "two-stage ST, predicted", "pred_st_leading": "two-stage ST, leading order"}


def cell_view(cells: pd.DataFrame) -> pd.DataFrame:
    """:func:`cell_means` for the reader: the mean test errors of least squares and of the two-stage student,
    simulated and by their forms (the finite-sample forms, and the two-stage one at leading order in 1/N)."""
    return cells[list(CELL_HEADERS)].rename(columns=CELL_HEADERS)


CROSSOVER_HEADERS = {"kappa approx": "κ, approximation", "ratio": "measured / predicted N*"}
CROSSOVER_CAPTION = "the crossover N*, measured and predicted; the approximation of κ is s²r(d−r)/(N_t−d−1)"


def crossover_table(cross: pd.DataFrame) -> pd.DataFrame:
    """:func:`crossovers` for the reader: the approximation of κ (``s^2 r (d - r) / (N_t - d - 1)``, stated in
    the caption) and the ratio of the measured to the predicted crossover named in words."""
    return cross.rename(columns=CROSSOVER_HEADERS)


SCALAR_HEADERS = {"N tau / k": "Nτ/k", "N (alpha - 1) / k": "N(α−1)/k", "1 - sigma^2": "1−σ²"}
SCALAR_CAPTION = "Monte Carlo scalars, rescaled: Nτ_N/k (limit 1) and N(α_N−1)/k (conjectured limit 1−σ²)"


def scalar_view(scalars: pd.DataFrame) -> pd.DataFrame:
    """:func:`scalar_table` for the reader: the rescaled scalars in symbols (``tau_N``, ``alpha_N`` named in the
    caption: a column name loses its underscores) and the conjectured limit of the second."""
    return scalars[["sigma", "n_student", *SCALAR_HEADERS]].rename(columns=SCALAR_HEADERS)


def lam_text(lam: float) -> str:
    """A weight lambda for a table's cell: 4 significant digits, ``"∞"`` for the limit."""
    return "∞" if np.isinf(lam) else f"{lam:.4g}"


def tuning_view(tune: pd.DataFrame) -> pd.DataFrame:
    """:func:`tuning_table` for the reader: validation-tuned ST against the base student and against the
    stronger simple estimator as relative gains in %, signed, with their 95% intervals
    (:func:`~.linear_common.relative_gain_table`), the shares of runs, and the oracle's relative gains in %."""
    ends = {"low": "tuned vs base_low", "high": "tuned vs base_high", "simple low": "tuned vs best simple_low",
            "simple high": "tuned vs best simple_high"}
    shown = tune.rename(columns={**ends, "lam*": "λ* (oracle)",
                                 "lost (share of runs)": "tuned ST worse than base (share of runs)"})
    for c, better in (("oracle vs base", "oracle"), ("base vs least squares", "base")):
        shown[f"{c}, % (above 0: {better} better)"] = shown.pop(c).map(lambda v: fixed(100 * v, 1, signed=True))
    return relative_gain_table(shown, {"tuned vs base": "tuned ST vs base, % (above 0: ST better)",
                                       "tuned vs best simple": "tuned ST vs simple, % (above 0: ST better)"})


def check_best_lambdas(lam_star: pd.DataFrame, n_t_pair) -> None:
    """Raise AssertionError unless the best lambda falls as the student's data grow, for each teacher, and the
    more knowledgeable teacher (``n_t_pair[1]``) earns a larger best lambda in at least 60% of the sizes
    (an infinite lambda counts as 1e12)."""
    for n_t in n_t_pair:
        ls = lam_star[n_t].replace(np.inf, 1e12)
        assert ls.iloc[-1] < ls.iloc[0], "the best lambda does not fall as the student's data grow"
    assert (lam_star[n_t_pair[1]].replace(np.inf, 1e12) >= lam_star[n_t_pair[0]].replace(np.inf, 1e12)).mean() >= 0.6, \
        "the more knowledgeable teacher does not earn a larger best lambda"
