"""Chapter "When the minimizers coincide": ST and base students trained to convergence.

Five cases, each a (teacher, labels) pair built by hand:

* bottleneck teachers (hidden width ``r`` = rank of the target): perfect with
  clean labels, perfect with noisy labels, imperfect (features tilted away from
  the target's row space) with clean labels;
* wide teachers (hidden width ``d``, features an orthonormal basis of ``R^d``
  whose first ``r`` rows are the bottleneck teacher's): noisy labels, and
  imperfect with clean labels.

The student has the teacher's architecture. Every (case, lam, seed) of one
hidden width is one member of an ensemble; each member is compared with the
closed-form base minimizer of its own training set. Run ``k`` at sample size
``N`` draws its training set from ``rng.child("student_data", k, N)`` (the sets
of two sizes are independent, not one a prefix of the other) and its
initialization from ``rng.child("student_init", k, width)``; both are shared by
every case and ``lam`` (paired runs). The directions that tilt or widen teacher
``k``'s features come from ``rng.child("direction", k, TILT)`` and
``rng.child("direction", k, WIDEN)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm import tqdm

from .. import theory
from ..data import Task
from ..models import DeepLinear
from ..streams import Stream, as_stream
from ..train import TrainConfig, st_rate_scale, train
from .linear_common import TILT, WIDEN, linear_teacher, member_samples, target_factors, tilted, widened


@dataclass(frozen=True)
class Case:
    name: str
    wide: bool
    noisy_labels: bool
    imperfect: bool


CASES = (
    Case("perfect teacher, clean labels", wide=False, noisy_labels=False, imperfect=False),
    Case("label noise", wide=False, noisy_labels=True, imperfect=False),
    Case("imperfect teacher", wide=False, noisy_labels=False, imperfect=True),
    Case("label noise, wide teacher", wide=True, noisy_labels=True, imperfect=False),
    Case("imperfect, wide teacher", wide=True, noisy_labels=False, imperfect=True),
)


def teacher_weights(case: Case, w_star: torch.Tensor, angle: float, rng: Stream | int, k: int):
    """``(features V, head A')`` of the case's teacher ``k``; its end-to-end map is ``A' V``.

    The tilt and the widening directions come from ``rng.child("direction", k, TILT | WIDEN)``.
    """
    rng = as_stream(rng)
    a, b = target_factors(w_star)
    v = tilted(b, angle, rng.child("direction", k, TILT)) if case.imperfect else b
    if not case.wide:
        return v, a
    full = widened(v, w_star.shape[1] - v.shape[0], rng.child("direction", k, WIDEN))
    return full, torch.cat([a, torch.zeros(a.shape[0], full.shape[0] - a.shape[1], dtype=a.dtype)], dim=1)


def coincidence_sweep(task: Task, n_trains, lams, rng: Stream | int, seeds, angle: float, config: TrainConfig,
                      init_scale: float, device=None, dtype=torch.float64) -> pd.DataFrame:
    """One row per (n_train, case, lam, seed): distance to the base minimizer, excess task loss, the gap of (C).

    ``seeds`` are the run indices ``k`` (column ``seed``); every stream is a child of ``rng``.
    """
    rng = as_stream(rng)
    w_star = task.target.weight
    noisy = task
    clean = Task(task.inputs, task.target, task.sigma, 0.0)
    rows = []
    groups = [(n, wide) for n in n_trains for wide in (False, True)]
    for n_train, wide in tqdm(groups, desc="regime x width"):
        cases = [c for c in CASES if c.wide == wide]
        members = list(itertools.product(cases, lams, seeds))
        train_set = member_samples([noisy if c.noisy_labels else clean for c, _, _ in members], n_train,
                                   [rng.child("student_data", k, n_train) for _, _, k in members],
                                   device=device, dtype=dtype)
        weights = [teacher_weights(c, w_star, angle, rng, k) for c, _, k in members]
        teacher = linear_teacher([v for v, _ in weights], [a for _, a in weights], device, dtype)
        width = weights[0][0].shape[0]
        model = DeepLinear([task.d, width, task.d_out], members=len(members), init_scale=init_scale,
                           rng=[rng.child("student_init", k, width) for _, _, k in members],
                           device=device, dtype=dtype)
        lam_list = [l for _, l, _ in members]
        result = train(model, train_set, teacher=teacher, lam=lam_list, layers=["h1"], config=config,
                       lr_scale=st_rate_scale(lam_list))
        w_end = model.end_to_end().detach().to("cpu", torch.float64)
        x_noisy, y = train_set.noisy.to("cpu", torch.float64), train_set.y.to("cpu", torch.float64)
        feats = teacher.features(train_set.clean, ["h1"])["h1"].to("cpu", torch.float64)
        w_base = theory.reduced_rank_regression(x_noisy, y, min(width, task.d_out))
        min_task = 0.5 * (x_noisy @ w_base.transpose(-1, -2) - y).pow(2).sum((-2, -1)) / n_train
        zero_task = 0.5 * y.pow(2).sum((-2, -1)) / n_train
        gap = theory.coincidence_gap(x_noisy, feats, x_noisy @ w_base.transpose(-1, -2))
        w_two_stage = theory.two_stage_estimator(x_noisy, feats, y)
        final = result.history[result.history.step == result.history.step.max()].set_index("member")
        cov = task.inputs.covariance()
        err = theory.linear_test_error(w_end, w_star, cov, task.sigma)
        err_base = theory.linear_test_error(w_base, w_star, cov, task.sigma)
        for e, (case, lam, seed) in enumerate(members):
            rows.append({
                "n_train": n_train, "regime": "over" if n_train <= task.d else "under",
                "case": case.name, "wide": case.wide, "lam": lam, "seed": seed,
                "gap_C": float(gap[e]),
                "distance": float((w_end[e] - w_base[e]).norm() / w_base[e].norm()),
                "distance_two_stage": float((w_two_stage[e] - w_base[e]).norm() / w_base[e].norm()),
                "excess_task": float((final.loc[e, "train_task"] - min_task[e]) / zero_task[e]),
                "test_error": float(err[e]), "test_error_base_min": float(err_base[e]),
            })
    return pd.DataFrame(rows)
