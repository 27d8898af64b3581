"""Chapter "Well-decomposed knowledge in linear networks".

Three experiments:

* re-mixing: the same teacher with its hidden features re-mixed by an
  orthogonal matrix (exact invariance of the training path, checked with the
  library's ``FrozenTeacher(transform=...)``) or by invertible matrices of
  growing condition number (which change finite-``lam`` students);
* content: teachers with the same end-to-end map whose hidden layers carry
  ``k >= r`` directions of the input, compared through the two-stage estimator
  (closed form, many seeds) and through trained networks.

Streams (children of the chapter's root ``rng``): trained-network run ``k``
draws its training set from ``rng.child("student_data", k)`` and its
initialization from ``rng.child("student_init", k)``, the same in the three
network experiments (rotation, re-mixing, content); the closed-form run ``k`` with
``N`` samples draws from ``rng.child("student_data", k, N)``. The rotation of
:func:`rotation_check` is ``rng.child("rotation")``, the re-mixing of run ``k``
``rng.child("rotation", k)`` (the same for every condition number); the content
teachers' tilt and extra directions are ``rng.child("direction", 0, TILT)`` and
``rng.child("direction", 0, WIDEN)`` (one set of teachers for every run).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import theory
from ..data import draw_members, random_orthonormal
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..streams import Stream, as_stream
from ..train import TrainConfig, st_rate_scale, train
from .linear_common import TILT, WIDEN, linear_teacher, target_factors, tilted, widened


def mixing(width: int, condition: float, rng: Stream | int) -> torch.Tensor:
    """A random invertible ``width x width`` matrix with singular values spread log-evenly in ``[1, condition]``.

    Its two rotations come from ``rng.child("rotation", 0)`` and ``rng.child("rotation", 1)``.
    """
    rng = as_stream(rng)
    u, v = (random_orthonormal(width, width, rng.child("rotation", i)) for i in (0, 1))
    s = torch.logspace(0, float(np.log10(condition)), width, dtype=torch.float64)
    return u @ torch.diag(s / s.prod() ** (1 / width)) @ v.T  # determinant +-1: same overall scale


def network_data(task, n_train: int, rng: Stream, seeds, device=None, dtype=torch.float64):
    """The training sets of the trained-network runs ``k`` in ``seeds``: ``rng.child("student_data", k)``."""
    return draw_members(task, n_train, [rng.child("student_data", k) for k in seeds], device=device, dtype=dtype)


def rotation_check(task, n_train: int, rng: Stream | int, seeds, lam: float, config: TrainConfig, device=None,
                   dtype=torch.float64):
    """Train with the teacher and with its features rotated (and the student's init rotated alike).

    ``seeds`` are the run indices ``k``. Returns the largest relative gap between the two students' end-to-end maps.
    """
    rng = as_stream(rng)
    a, b = target_factors(task.target.weight)
    width = b.shape[0]
    teacher = linear_teacher([b] * len(seeds), [a] * len(seeds), device, dtype)
    rot = random_orthonormal(width, width, rng.child("rotation"))
    rotated = FrozenTeacher(teacher.model, transform={"h1": rot.to(device=device, dtype=dtype)})
    data = network_data(task, n_train, rng, seeds, device, dtype)
    maps = []
    for t, turn in ((teacher, None), (rotated, rot)):
        model = DeepLinear([task.d, width, task.d_out], members=len(seeds), init_scale=0.5,
                           rng=[rng.child("student_init", k) for k in seeds], device=device, dtype=dtype)
        if turn is not None:
            with torch.no_grad():
                turn = turn.to(model.layers[0].weight)
                model.layers[0].weight.copy_(turn @ model.layers[0].weight)
                model.layers[1].weight.copy_(model.layers[1].weight @ turn.T)
        train(model, data, teacher=t, lam=lam, layers=["h1"], config=config,
              lr_scale=st_rate_scale([lam] * len(seeds)))
        maps.append(model.end_to_end().detach().to("cpu", torch.float64))
    return float(((maps[0] - maps[1]).norm(dim=(-2, -1)) / maps[0].norm(dim=(-2, -1))).max())


def mixing_sweep(task, n_train: int, conditions, lams, rng: Stream | int, seeds, config: TrainConfig, device=None,
                 dtype=torch.float64) -> pd.DataFrame:
    """Trained students for teachers whose features are re-mixed by ``M`` of each condition number.

    Every teacher computes the same function: features ``M B x``, head ``A M^{-1}``.
    Condition number 1 is a rotation. Run ``k``'s re-mixings share their rotations
    (``rng.child("rotation", k)``) and differ in their singular values.
    """
    rng = as_stream(rng)
    a, b = target_factors(task.target.weight)
    members = list(itertools.product(conditions, lams, seeds))
    feats, heads = [], []
    for cond, _, k in members:
        m = mixing(b.shape[0], cond, rng.child("rotation", k))
        feats.append(m @ b)
        heads.append(a @ torch.linalg.inv(m))
    teacher = linear_teacher(feats, heads, device, dtype)
    data = network_data(task, n_train, rng, [k for _, _, k in members], device, dtype)
    model = DeepLinear([task.d, b.shape[0], task.d_out], members=len(members), init_scale=0.1,
                       rng=[rng.child("student_init", k) for _, _, k in members], device=device, dtype=dtype)
    lam_list = [l for _, l, _ in members]
    scale = [1.0 / ((1.0 + l) * c) for c, l, _ in members]  # re-mixed features need unbalanced layers: go slower
    train(model, data, teacher=teacher, lam=lam_list, layers=["h1"], config=config, lr_scale=scale)
    w = model.end_to_end().detach().to("cpu", torch.float64)
    x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
    t = teacher.features(data.clean, ["h1"])["h1"].to("cpu", torch.float64)
    cov, w_star = task.inputs.covariance(), task.target.weight
    err = theory.linear_test_error(w, w_star, cov, task.sigma).numpy()
    two = theory.linear_test_error(theory.two_stage_estimator(x, t, y), w_star, cov, task.sigma).numpy()
    return pd.DataFrame({"condition": [c for c, _, _ in members], "lam": lam_list,
                         "seed": [s for _, _, s in members], "error": err, "two_stage": two})


def content_teachers(w_star: torch.Tensor, extras, angles, rng: Stream | int):
    """``{(k_extra, angle): features}``: the target's row space (tilted by ``angle``) plus ``k_extra`` directions.

    The tilt comes from ``rng.child("direction", 0, TILT)``, the extra directions from
    ``rng.child("direction", 0, WIDEN)``: one set of teachers (teacher index 0) for every run.
    """
    rng = as_stream(rng)
    _, b = target_factors(w_star)
    tilt, widen = rng.child("direction", 0, TILT), rng.child("direction", 0, WIDEN)
    out = {}
    for extra, angle in itertools.product(extras, angles):
        out[(extra, angle)] = widened(tilted(b, angle, tilt) if angle > 0 else b, extra, widen)
    return out


def content_sweep(task, n_students, extras, angles, rng: Stream | int, seeds) -> pd.DataFrame:
    """Two-stage estimator vs least squares for each teacher content, with the predicted gain.

    Run ``k`` with ``n`` samples draws them from ``rng.child("student_data", k, n)``.
    """
    rng = as_stream(rng)
    w_star = task.target.weight
    cov = task.inputs.covariance()
    teachers = content_teachers(w_star, extras, angles, rng)
    rows = []
    for n in tqdm(n_students, desc="student samples"):
        data = draw_members(task, n, [rng.child("student_data", k, n) for k in seeds], dtype=torch.float64)
        w_base = theory.min_norm_interpolator(data.noisy, data.y)
        base = theory.linear_test_error(w_base, w_star, cov, task.sigma).numpy()
        for (extra, angle), q in teachers.items():
            w = theory.two_stage_estimator(data.noisy, data.clean @ q.T, data.y)
            err = theory.linear_test_error(w, w_star, cov, task.sigma).numpy()
            pred_gain = theory.two_stage_gain(w_star, q, task.sigma, task.label_noise, n)
            pred_leading = theory.two_stage_gain(w_star, q, task.sigma, task.label_noise, n, finite_sample=False)
            for i, s in enumerate(seeds):
                rows.append({"n_student": n, "extra": extra, "angle": angle, "k": q.shape[0],
                             "kappa": theory.knowledge_deficit(w_star, q), "seed": s, "base": base[i], "st": err[i],
                             "pred_gain": pred_gain, "pred_gain_leading": pred_leading})
    return pd.DataFrame(rows)


def content_networks(task, n_train: int, extras, lams, rng: Stream | int, seeds, config: TrainConfig, device=None,
                     dtype=torch.float64) -> pd.DataFrame:
    """Trained students of width ``r + max(extras)`` for teachers with the same end-to-end map.

    A teacher with ``k_extra`` extra directions uses ``r + k_extra`` units; the
    rest are silent (zero features), so every teacher has the same width. Its
    extra directions are those of :func:`content_teachers` (no tilt).
    """
    rng = as_stream(rng)
    a, b = target_factors(task.target.weight)
    width = b.shape[0] + max(extras)
    members = list(itertools.product(extras, lams, seeds))
    padded = {}  # per extra: the target's rows, extra directions, then silent (zero) units up to width
    for extra in extras:
        v = widened(b, extra, rng.child("direction", 0, WIDEN))
        padded[extra] = torch.cat([v, v.new_zeros(width - v.shape[0], v.shape[1])])
    head = torch.cat([a, a.new_zeros(a.shape[0], width - a.shape[1])], dim=1)
    feats = [padded[extra] for extra, _, _ in members]
    heads = [head] * len(members)
    teacher = linear_teacher(feats, heads, device, dtype)
    data = network_data(task, n_train, rng, [k for _, _, k in members], device, dtype)
    model = DeepLinear([task.d, width, task.d_out], members=len(members), init_scale=0.1,
                       rng=[rng.child("student_init", k) for _, _, k in members], device=device, dtype=dtype)
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
