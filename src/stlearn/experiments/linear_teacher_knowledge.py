"""Chapter "A knowledgeable teacher": the two-stage ST estimator against least squares.

A teacher is fitted on ``n_teacher`` clean samples (least squares, then the
best rank-``r`` approximation); its features are ``Q x`` with ``Q`` the top
``r`` right singular vectors of its map. The student sees ``n_student`` noisy
samples; base = least squares, ST = the two-stage estimator (the
``lam -> infinity`` limit). Both are closed-form, so a grid over
(``n_student``, ``n_teacher``) with many seeds costs seconds; one ensemble of
two-layer networks checks that finite ``lam`` moves the trained student from
the base solution to the two-stage one.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import theory as lt
from .. import theory
from ..data import Task, make_split, make_splits
from ..models import DeepLinear
from ..train import TrainConfig, st_rate_scale, train
from .linear_common import linear_teacher


def fitted_teacher(task: Task, rank: int, n_teacher: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Q, head)``: features ``Q x`` (orthonormal rows) and head of a rank-``rank`` teacher fitted on clean data."""
    data = make_split(task, n_teacher, 1, seed=seed, dtype=torch.float64).train
    w = theory.min_norm_interpolator(data.clean, data.y)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    return vh[:rank], u[:, :rank] * s[:rank]


def padded(q: torch.Tensor, head: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same teacher with ``width - rank`` silent hidden units (zero features, zero head columns)."""
    extra = width - q.shape[0]
    return (torch.cat([q, q.new_zeros(extra, q.shape[1])]),
            torch.cat([head, head.new_zeros(head.shape[0], extra)], dim=1))


def errors(task: Task, qs, n_student: int, seeds) -> tuple[np.ndarray, np.ndarray]:
    """Test errors of least squares and of the two-stage estimator (features ``qs[e] x``), one per seed."""
    split = make_splits(task, n_student, 1, seeds, dtype=torch.float64).train
    feats = split.clean @ torch.stack(qs).transpose(-1, -2)
    cov, w_star = task.inputs.covariance(), task.target.weight
    w_base = theory.min_norm_interpolator(split.noisy, split.y)
    w_st = lt.two_stage_estimator(split.noisy, feats, split.y)
    return (theory.linear_test_error(w_base, w_star, cov, task.sigma).numpy(),
            theory.linear_test_error(w_st, w_star, cov, task.sigma).numpy())


def base_errors(task: Task, n_student: int, seeds) -> np.ndarray:
    """Test errors of least squares on ``n_student`` noisy samples, one per seed."""
    split = make_splits(task, n_student, 1, seeds, dtype=torch.float64).train
    w = theory.min_norm_interpolator(split.noisy, split.y)
    return theory.linear_test_error(w, task.target.weight, task.inputs.covariance(), task.sigma).numpy()


def knowledge_grid(task: Task, rank: int, n_students, n_teachers, seeds, sigmas) -> pd.DataFrame:
    """One row per (sigma, n_teacher, n_student, seed): errors, the teacher's deficit and clean error."""
    rows = []
    w_star = task.target.weight
    eye = torch.eye(task.d, dtype=torch.float64)
    for n_t in tqdm(n_teachers, desc="teachers"):
        teachers = [fitted_teacher(task, rank, n_t, 10_000 + s) for s in seeds]
        qs = [q for q, _ in teachers]
        kappa = [lt.knowledge_deficit(w_star, q) for q in qs]
        clean_err = [float(theory.linear_test_error(h @ q, w_star, eye, 0.0)) for q, h in teachers]
        crossovers = {(sigma, i): (lt.crossover_samples(w_star, q, sigma, task.label_noise),
                                   lt.crossover_samples(w_star, q, sigma, task.label_noise, finite_sample=False))
                      for sigma in sigmas for i, q in enumerate(qs)}
        for sigma, n_s in itertools.product(sigmas, n_students):
            t = task.with_noise(sigma)
            base, st = errors(t, qs, n_s, [1000 * n_s + s for s in seeds])
            for i, s in enumerate(seeds):
                rows.append({"sigma": sigma, "n_teacher": n_t, "n_student": n_s, "seed": s, "kappa": kappa[i],
                             "teacher_clean_error": clean_err[i], "base": base[i], "st": st[i],
                             "pred_base": lt.base_error(w_star, sigma, task.label_noise, n_s),
                             "pred_st": lt.two_stage_error(w_star, qs[i], sigma, task.label_noise, n_s),
                             "pred_st_leading": lt.two_stage_error(w_star, qs[i], sigma, task.label_noise, n_s,
                                                                   finite_sample=False),
                             "pred_crossover": crossovers[(sigma, i)][0],
                             "pred_crossover_leading": crossovers[(sigma, i)][1]})
    return pd.DataFrame(rows)


def measured_crossover(cells: pd.DataFrame) -> float:
    """Where the mean gain (base - st) changes sign along ``n_student`` (log-linear interpolation); nan if it does not."""
    g = cells.groupby("n_student")[["base", "st"]].mean()
    gain = (g.base - g.st).to_numpy()
    n = g.index.to_numpy(dtype=float)
    for i in range(len(n) - 1):
        if gain[i] > 0 >= gain[i + 1]:
            frac = gain[i] / (gain[i] - gain[i + 1])
            return float(np.exp(np.log(n[i]) + frac * (np.log(n[i + 1]) - np.log(n[i]))))
    return float("nan")


def finite_lam_check(task: Task, rank: int, n_student: int, n_teacher: int, lams, seeds, config: TrainConfig,
                     device=None, dtype=torch.float64) -> pd.DataFrame:
    """Two-layer students trained on the ST loss: their test errors against the closed forms.

    Student and teacher have hidden width ``d_out``; the teacher's hidden layer
    has rank ``rank`` (its features ``Q x`` padded with zero units), so the base
    minimizer is least squares and the ``lam -> infinity`` limit the two-stage
    estimator with features ``Q x``.
    """
    pairs = list(itertools.product(lams, seeds))
    teachers = {s: padded(*fitted_teacher(task, rank, n_teacher, 10_000 + s), task.d_out) for s in seeds}
    teacher = linear_teacher([teachers[s][0] for _, s in pairs], [teachers[s][1] for _, s in pairs], device, dtype)
    data = make_splits(task, n_student, 1, [1000 * n_student + s for _, s in pairs], device, dtype).train
    model = DeepLinear([task.d, task.d_out, task.d_out], members=len(pairs), init_scale=0.1,
                       seed=[s for _, s in pairs], device=device, dtype=dtype)
    lam_list = [l for l, _ in pairs]
    train(model, data, teacher=teacher, lam=lam_list, layers=["h1"], config=config,
          lr_scale=st_rate_scale(lam_list))
    cov, w_star = task.inputs.covariance(), task.target.weight
    w = model.end_to_end().detach().to("cpu", torch.float64)
    feats = teacher.features(data.clean, ["h1"])["h1"].to("cpu", torch.float64)
    x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
    w_two = lt.two_stage_estimator(x, feats, y)
    w_rrr = theory.min_norm_interpolator(x, y)
    err = lambda m: theory.linear_test_error(m, w_star, cov, task.sigma).numpy()
    return pd.DataFrame({"lam": lam_list, "seed": [s for _, s in pairs], "trained": err(w),
                         "two_stage": err(w_two), "base_min": err(w_rrr)})
