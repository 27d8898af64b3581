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
from ..streams import Stream, as_stream
from ..validation import ParameterError
from .linear_common import TILT, complement, ridge_penalties, target_factors, tuned_ridge


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
