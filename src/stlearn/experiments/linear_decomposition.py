"""Chapter "Well-decomposed knowledge in linear networks".

Three experiments:

* re-mixing: the same teacher with its hidden features re-mixed by an
  orthogonal matrix (exact invariance of the training path, checked with the
  library's ``FrozenTeacher(transform=...)``) or by invertible matrices of
  growing condition number (which change finite-``lam`` students);
* content: teachers with the same end-to-end map whose hidden layers carry
  ``k >= r`` directions of the input, compared through the two-stage estimator
  (closed form, many seeds) and through trained networks.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import theory as lt
from .. import theory
from ..data import generator, make_splits, random_orthonormal
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..train import TrainConfig, st_rate_scale, train
from .linear_common import linear_teacher, target_factors, tilted, widened


def mixing(width: int, condition: float, seed: int) -> torch.Tensor:
    """A random invertible ``width x width`` matrix with singular values spread log-evenly in ``[1, condition]``."""
    gen = generator(seed)
    u, v = random_orthonormal(width, width, gen), random_orthonormal(width, width, gen)
    s = torch.logspace(0, float(np.log10(condition)), width, dtype=torch.float64)
    return u @ torch.diag(s / s.prod() ** (1 / width)) @ v.T  # determinant +-1: same overall scale


def rotation_check(task, n_train: int, seeds, lam: float, config: TrainConfig, device=None, dtype=torch.float64):
    """Train with the teacher and with its features rotated (and the student's init rotated alike).

    Returns the largest relative gap between the two students' end-to-end maps.
    """
    a, b = target_factors(task.target.weight)
    width = b.shape[0]
    teacher = linear_teacher([b] * len(seeds), [a] * len(seeds), device, dtype)
    rot = random_orthonormal(width, width, generator(seeds[0] + 77))
    rotated = FrozenTeacher(teacher.model, transform={"h1": rot.to(device=device, dtype=dtype)})
    data = make_splits(task, n_train, 1, list(seeds), device, dtype).train
    maps = []
    for t, turn in ((teacher, None), (rotated, rot)):
        model = DeepLinear([task.d, width, task.d_out], members=len(seeds), init_scale=0.5, seed=list(seeds),
                           device=device, dtype=dtype)
        if turn is not None:
            with torch.no_grad():
                turn = turn.to(model.layers[0].weight)
                model.layers[0].weight.copy_(turn @ model.layers[0].weight)
                model.layers[1].weight.copy_(model.layers[1].weight @ turn.T)
        train(model, data, teacher=t, lam=lam, layers=["h1"], config=config, lr_scale=st_rate_scale([lam] * len(seeds)))
        maps.append(model.end_to_end().detach().to("cpu", torch.float64))
    return float(((maps[0] - maps[1]).norm(dim=(-2, -1)) / maps[0].norm(dim=(-2, -1))).max())


def mixing_sweep(task, n_train: int, conditions, lams, seeds, config: TrainConfig, device=None,
                 dtype=torch.float64) -> pd.DataFrame:
    """Trained students for teachers whose features are re-mixed by ``M`` of each condition number.

    Every teacher computes the same function: features ``M B x``, head ``A M^{-1}``.
    Condition number 1 is a rotation.
    """
    a, b = target_factors(task.target.weight)
    members = list(itertools.product(conditions, lams, seeds))
    feats, heads = [], []
    for cond, _, s in members:
        m = mixing(b.shape[0], cond, 500 + s)
        feats.append(m @ b)
        heads.append(a @ torch.linalg.inv(m))
    teacher = linear_teacher(feats, heads, device, dtype)
    data = make_splits(task, n_train, 1, [s for _, _, s in members], device, dtype).train
    model = DeepLinear([task.d, b.shape[0], task.d_out], members=len(members), init_scale=0.1,
                       seed=[s for _, _, s in members], device=device, dtype=dtype)
    lam_list = [l for _, l, _ in members]
    scale = [1.0 / ((1.0 + l) * c) for c, l, _ in members]  # re-mixed features need unbalanced layers: go slower
    train(model, data, teacher=teacher, lam=lam_list, layers=["h1"], config=config, lr_scale=scale)
    w = model.end_to_end().detach().to("cpu", torch.float64)
    x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
    t = teacher.features(data.clean, ["h1"])["h1"].to("cpu", torch.float64)
    cov, w_star = task.inputs.covariance(), task.target.weight
    err = theory.linear_test_error(w, w_star, cov, task.sigma).numpy()
    two = theory.linear_test_error(lt.two_stage_estimator(x, t, y), w_star, cov, task.sigma).numpy()
    return pd.DataFrame({"condition": [c for c, _, _ in members], "lam": lam_list,
                         "seed": [s for _, _, s in members], "error": err, "two_stage": two})


def content_teachers(w_star: torch.Tensor, extras, angles, seed: int):
    """``{(k_extra, angle): features}``: the target's row space (tilted by ``angle``) plus ``k_extra`` directions."""
    _, b = target_factors(w_star)
    out = {}
    for extra, angle in itertools.product(extras, angles):
        out[(extra, angle)] = widened(tilted(b, angle, seed) if angle > 0 else b, extra, seed + 1)
    return out


def content_sweep(task, n_students, extras, angles, seeds) -> pd.DataFrame:
    """Two-stage estimator vs least squares for each teacher content, with the predicted gain."""
    w_star = task.target.weight
    cov = task.inputs.covariance()
    rows = []
    for n in tqdm(n_students, desc="student samples"):
        data = make_splits(task, n, 1, [2000 + s for s in seeds], dtype=torch.float64).train
        w_base = theory.min_norm_interpolator(data.noisy, data.y)
        base = theory.linear_test_error(w_base, w_star, cov, task.sigma).numpy()
        for (extra, angle), q in content_teachers(w_star, extras, angles, 900).items():
            w = lt.two_stage_estimator(data.noisy, data.clean @ q.T, data.y)
            err = theory.linear_test_error(w, w_star, cov, task.sigma).numpy()
            pred_gain = lt.two_stage_gain(w_star, q, task.sigma, task.label_noise, n)
            pred_leading = lt.two_stage_gain(w_star, q, task.sigma, task.label_noise, n, finite_sample=False)
            for i, s in enumerate(seeds):
                rows.append({"n_student": n, "extra": extra, "angle": angle, "k": q.shape[0],
                             "kappa": lt.knowledge_deficit(w_star, q), "seed": s, "base": base[i], "st": err[i],
                             "pred_gain": pred_gain, "pred_gain_leading": pred_leading})
    return pd.DataFrame(rows)


def content_networks(task, n_train: int, extras, lams, seeds, config: TrainConfig, device=None,
                     dtype=torch.float64) -> pd.DataFrame:
    """Trained students of width ``r + max(extras)`` for teachers with the same end-to-end map.

    A teacher with ``k_extra`` extra directions uses ``r + k_extra`` units; the
    rest are silent (zero features), so every teacher has the same width.
    """
    a, b = target_factors(task.target.weight)
    width = b.shape[0] + max(extras)
    members = list(itertools.product(extras, lams, seeds))
    padded = {}  # per extra: the target's rows, extra directions, then silent (zero) units up to width
    for extra in extras:
        v = widened(b, extra, 901)
        padded[extra] = torch.cat([v, v.new_zeros(width - v.shape[0], v.shape[1])])
    head = torch.cat([a, a.new_zeros(a.shape[0], width - a.shape[1])], dim=1)
    feats = [padded[extra] for extra, _, _ in members]
    heads = [head] * len(members)
    teacher = linear_teacher(feats, heads, device, dtype)
    data = make_splits(task, n_train, 1, [3000 + s for _, _, s in members], device, dtype).train
    model = DeepLinear([task.d, width, task.d_out], members=len(members), init_scale=0.1,
                       seed=[s for _, _, s in members], device=device, dtype=dtype)
    lam_list = [l for _, l, _ in members]
    train(model, data, teacher=teacher, lam=lam_list, layers=["h1"], config=config,
          lr_scale=st_rate_scale(lam_list))
    w = model.end_to_end().detach().to("cpu", torch.float64)
    x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
    cov, w_star = task.inputs.covariance(), task.target.weight
    return pd.DataFrame({"extra": [e for e, _, _ in members], "lam": lam_list, "seed": [s for _, _, s in members],
                         "error": theory.linear_test_error(w, w_star, cov, task.sigma).numpy(),
                         "base_min": theory.linear_test_error(theory.min_norm_interpolator(x, y), w_star, cov,
                                                              task.sigma).numpy()})
