"""Chapter "A knowledgeable teacher": the two-stage ST estimator against least squares.

A teacher is fitted on ``n_teacher`` clean samples (least squares, then the
best rank-``r`` approximation); its features are ``Q x`` with ``Q`` the top
``r`` right singular vectors of its map. The student sees ``n_student`` noisy
samples; base = least squares, ST = the two-stage estimator (the
``lam -> infinity`` limit). Both are closed-form, so a grid over
(``n_student``, ``n_teacher``) with many seeds costs seconds; one ensemble of
two-layer networks checks that finite ``lam`` moves the trained student from
the base solution to the two-stage one.

Streams (children of the chapter's root ``rng``): teacher ``k`` fitted on
``N_t`` samples draws them from ``rng.child("teacher_data", k, N_t)``; student
run ``k`` with ``N`` samples from ``rng.child("student_data", k, N)`` (the same
for every teacher and noise level: paired comparisons); sets of different sizes
are independent draws, never one a prefix of another. The trained networks of
run ``k`` start from ``rng.child("student_init", k)``. The extra Monte Carlo runs
of least squares draw from ``rng.child("reference", j, N)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import theory
from ..data import Task, draw, draw_members
from ..models import DeepLinear
from ..streams import Stream, as_stream
from ..train import TrainConfig, st_rate_scale, train
from .linear_common import linear_teacher


def fitted_teacher(task: Task, rank: int, n_teacher: int, rng: Stream | int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Q, head)``: features ``Q x`` (orthonormal rows) and head of a rank-``rank`` teacher fitted on clean data.

    ``rng`` is the teacher's data stream, e.g. ``root.child("teacher_data", k, n_teacher)``.
    """
    data = draw(task, n_teacher, rng, dtype=torch.float64)
    w = theory.min_norm_interpolator(data.clean, data.y)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    return vh[:rank], u[:, :rank] * s[:rank]


def padded(q: torch.Tensor, head: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same teacher with ``width - rank`` silent hidden units (zero features, zero head columns)."""
    extra = width - q.shape[0]
    return (torch.cat([q, q.new_zeros(extra, q.shape[1])]),
            torch.cat([head, head.new_zeros(head.shape[0], extra)], dim=1))


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
        clean_err = [float(theory.linear_test_error(h @ q, w_star, eye, 0.0)) for q, h in teachers]
        crossovers = {(sigma, i): (theory.crossover_samples(w_star, q, sigma, task.label_noise),
                                   theory.crossover_samples(w_star, q, sigma, task.label_noise, finite_sample=False))
                      for sigma in sigmas for i, q in enumerate(qs)}
        for sigma, n_s in itertools.product(sigmas, n_students):
            t = task.with_noise(sigma)
            base, st = errors(t, qs, n_s, [rng.child("student_data", k, n_s) for k in seeds])
            for i, s in enumerate(seeds):
                rows.append({"sigma": sigma, "n_teacher": n_t, "n_student": n_s, "seed": s, "kappa": kappa[i],
                             "teacher_clean_error": clean_err[i], "base": base[i], "st": st[i],
                             "pred_base": theory.base_error(w_star, sigma, task.label_noise, n_s),
                             "pred_st": theory.two_stage_error(w_star, qs[i], sigma, task.label_noise, n_s),
                             "pred_st_leading": theory.two_stage_error(w_star, qs[i], sigma, task.label_noise, n_s,
                                                                   finite_sample=False),
                             "pred_crossover": crossovers[(sigma, i)][0],
                             "pred_crossover_leading": crossovers[(sigma, i)][1]})
    return pd.DataFrame(rows)


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


def finite_lam_check(task: Task, rank: int, n_student: int, n_teacher: int, lams, rng: Stream | int, seeds,
                     config: TrainConfig, device=None, dtype=torch.float64) -> pd.DataFrame:
    """Two-layer students trained on the ST loss: their test errors against the closed forms.

    Run ``k`` uses the grid's teacher ``k`` (fitted on ``n_teacher`` samples) and student data of size
    ``n_student``, and starts from ``rng.child("student_init", k)``.

    Student and teacher have hidden width ``d_out``; the teacher's hidden layer
    has rank ``rank`` (its features ``Q x`` padded with zero units), so the base
    minimizer is least squares and the ``lam -> infinity`` limit the two-stage
    estimator with features ``Q x``.
    """
    rng = as_stream(rng)
    pairs = list(itertools.product(lams, seeds))
    teachers = {k: padded(*fitted_teacher(task, rank, n_teacher, rng.child("teacher_data", k, n_teacher)), task.d_out)
                for k in seeds}
    teacher = linear_teacher([teachers[k][0] for _, k in pairs], [teachers[k][1] for _, k in pairs], device, dtype)
    data = draw_members(task, n_student, [rng.child("student_data", k, n_student) for _, k in pairs],
                        device=device, dtype=dtype)
    model = DeepLinear([task.d, task.d_out, task.d_out], members=len(pairs), init_scale=0.1,
                       rng=[rng.child("student_init", k) for _, k in pairs], device=device, dtype=dtype)
    lam_list = [l for l, _ in pairs]
    train(model, data, teacher=teacher, lam=lam_list, layers=["h1"], config=config,
          lr_scale=st_rate_scale(lam_list))
    cov, w_star = task.inputs.covariance(), task.target.weight
    w = model.end_to_end().detach().to("cpu", torch.float64)
    feats = teacher.features(data.clean, ["h1"])["h1"].to("cpu", torch.float64)
    x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
    w_two = theory.two_stage_estimator(x, feats, y)
    w_rrr = theory.min_norm_interpolator(x, y)

    def err(m):
        return theory.linear_test_error(m, w_star, cov, task.sigma).numpy()

    return pd.DataFrame({"lam": lam_list, "seed": [s for _, s in pairs], "trained": err(w),
                         "two_stage": err(w_two), "base_min": err(w_rrr)})
