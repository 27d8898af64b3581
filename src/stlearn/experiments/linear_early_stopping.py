"""Chapter "Early stopping along the path": test error along training for base and ST.

The setting is over-parameterized (``n_train <= d``), labels are clean and the
teacher is perfect (``x -> A (B x)`` with ``W* = A B``), so base and ST share
their end point: the min-norm interpolator. Every (sigma, lam, seed) is one
member of an ensemble; the test error is logged along training on a held-out
noisy test set. Run ``k`` draws its training set from
``rng.child("student_data", k)``, its test set from ``rng.child("test", k)`` and
its initialization from ``rng.child("student_init", k)``, the same at every
noise level and ``lam`` (paired runs: only the input noise differs between noise
levels). The one-layer gradient-descent path, which has a closed form
(:func:`stlearn.theory.gd_regression_path`), is computed alongside.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch

from .. import theory
from ..data import Samples, Task, draw
from ..models import DeepLinear
from ..streams import Stream, as_stream
from ..train import TrainConfig, log_schedule, st_rate_scale, train
from .linear_common import linear_teacher, member_samples, target_factors


def perfect_teacher(task: Task, device=None, dtype=torch.float64):
    a, b = target_factors(task.target.weight)
    return linear_teacher([b], [a], device, dtype), a, b


def path_sweep(task: Task, n_train: int, n_test: int, sigmas, lams, rng: Stream | int, seeds, config: TrainConfig,
               init_scale: float, device=None, dtype=torch.float64):
    """Returns ``(history, members, closed)``; ``seeds`` are the run indices ``k`` (streams below ``rng``).

    ``history``: test error along training per member (two-layer students);
    ``members``: one row per member with its end-point and min-norm errors, its final training loss
    relative to its initial one (``final_loss``) and the largest factor by which its training loss rose
    above its running minimum between two log points (``rebound``: about 1 for a run that converges,
    far above 1 for one that oscillates at the edge of stability);
    ``closed``: the one-layer closed-form path per (sigma, seed), on the same steps.
    """
    rng = as_stream(rng)
    teacher, a, b = perfect_teacher(task, device, dtype)
    pairs = list(itertools.product(sigmas, lams, seeds))
    tasks = [task.with_noise(s) for s, _, _ in pairs]
    kw = {"device": device, "dtype": dtype}
    train_set = member_samples(tasks, n_train, [rng.child("student_data", k) for _, _, k in pairs], **kw)
    test_set = member_samples(tasks, n_test, [rng.child("test", k) for _, _, k in pairs], label_noise=False, **kw)
    width = b.shape[0]
    model = DeepLinear([task.d, width, task.d_out], members=len(pairs), init_scale=init_scale,
                       rng=[rng.child("student_init", k) for _, _, k in pairs], **kw)
    w1_init = model.layers[0].weight.detach().to("cpu", torch.float64).clone()
    lam_list = [l for _, l, _ in pairs]
    result = train(model, train_set, teacher=teacher, lam=lam_list, layers=["h1"], config=config,
                   eval_sets={"test": test_set},
                   member_info={"sigma": [s for s, _, _ in pairs], "seed": [sd for _, _, sd in pairs]},
                   lr_scale=st_rate_scale(lam_list))
    history = result.history
    history["time"] = history.step * config.lr / (1.0 - config.momentum)
    loss = history.sort_values("step").groupby("member").train_total
    final_loss = loss.last() / loss.first()
    rebound = loss.apply(_rebound)

    cov, w_star = task.inputs.covariance(), task.target.weight
    x_noisy = train_set.noisy.to("cpu", torch.float64)
    y = train_set.y.to("cpu", torch.float64)
    w_mn = theory.min_norm_interpolator(x_noisy, y)
    w_end = model.end_to_end().detach().to("cpu", torch.float64)
    w_st_end = st_end_point(x_noisy, teacher.features(train_set.clean, ["h1"])["h1"], a, w1_init)
    rows = []
    for e, (s, lam, sd) in enumerate(pairs):
        rows.append({"sigma": s, "lam": lam, "seed": sd,
                     "end_error": float(theory.linear_test_error(w_end[e], w_star, cov, s)),
                     "min_norm_error": float(theory.linear_test_error(w_mn[e], w_star, cov, s)),
                     "end_distance": float((w_end[e] - w_mn[e]).norm() / w_mn[e].norm()),
                     "st_end_gap": float((w_end[e] - w_st_end[e]).norm() / w_st_end[e].norm()),
                     "final_loss": float(final_loss.loc[e]), "rebound": float(rebound.loc[e])})
    members = pd.DataFrame(rows)
    closed = one_layer_paths(task, x_noisy, y, pairs, lams[0], config)
    return history, members, closed


def _rebound(loss: pd.Series) -> float:
    """The largest ratio of the loss at a log point to the lowest loss logged before it."""
    v = loss.to_numpy()
    return float((v[1:] / np.minimum.accumulate(v)[:-1]).max()) if len(v) > 1 else 1.0


def st_end_point(x_noisy, features, head, w1_init) -> torch.Tensor:
    """The end-to-end map where a converged ST student must end: ``A (T^T (X~^T)^+ + W_1(0)(I - P))``."""
    x_noisy = x_noisy.to("cpu", torch.float64)
    proj = theory.row_space_projector(x_noisy)
    eye = torch.eye(x_noisy.shape[-1], dtype=torch.float64)
    w1 = theory.min_norm_interpolator(x_noisy, features) + w1_init @ (eye - proj)
    return head.to(torch.float64) @ w1


def one_layer_paths(task: Task, x_noisy, y, pairs, lam0, config: TrainConfig) -> pd.DataFrame:
    """Closed-form test error along the one-layer GD path (from zero) for each (sigma, seed).

    The one-layer path runs plain gradient descent at rate ``lr / (1 - momentum)``
    (heavy ball's long-run rate), or at the largest rate that is stable for
    every training set if that is smaller, so that all paths share one time axis.
    """
    lr_eff = config.lr / (1.0 - config.momentum)
    n = x_noisy.shape[-2]
    s_max = torch.linalg.matrix_norm(x_noisy, ord=2)
    rate = min(lr_eff, float(n / s_max.max() ** 2))
    steps = log_schedule(config.steps, 4 * config.log_points)
    cov, w_star = task.inputs.covariance(), task.target.weight
    rows = []
    for e, (s, lam, sd) in enumerate(pairs):
        if lam != lam0:
            continue
        errs = theory.linear_test_error(theory.gd_regression_path(x_noisy[e], y[e], rate, steps), w_star, cov, s)
        rows += [{"sigma": s, "seed": sd, "time": t * rate, "test_noisy": float(v)} for t, v in zip(steps, errs)]
    return pd.DataFrame(rows)


def best_along_path(history: pd.DataFrame) -> pd.DataFrame:
    """Per member: the lowest logged test error and the training time where it was reached."""
    idx = history.groupby("member").test_noisy.idxmin()
    best = history.loc[idx, ["member", "sigma", "lam", "seed", "time", "test_noisy"]]
    return best.rename(columns={"time": "best_time", "test_noisy": "best_error"}).reset_index(drop=True)


def feature_path_check(task: Task, n_train: int, rng: Stream | int, steps: int, device=None,
                       dtype=torch.float64) -> dict:
    """Trains one-layer maps with the library's trainer and compares them with the closed form.

    Plain gradient descent from zero at half the largest stable rate. Two
    problems on the same noisy inputs: least squares on the labels (one-layer
    base student), and the teacher's feature regression, read out with the
    teacher's head ``A``. The problem's samples are a reference set of their own,
    ``rng.child("reference", 0)`` (no run's data). Returns the largest relative gaps
    to the closed form and the gap between the two closed-form paths.
    """
    teacher, a, b = perfect_teacher(task, device, dtype)
    data = draw(task, n_train, as_stream(rng).child("reference", 0), device=device, dtype=dtype)
    feats = teacher.features(data.clean, ["h1"])["h1"]
    # half the largest stable rate, so the path is still far from its end after ``steps``
    lr = 0.5 * n_train / float(torch.linalg.matrix_norm(data.noisy.to("cpu", torch.float64), ord=2) ** 2)
    config = TrainConfig(steps=steps, lr=lr, log_points=2, progress=False)
    out = {}
    for name, target, width in (("labels", data.y, task.d_out), ("features", feats, b.shape[0])):
        model = DeepLinear([task.d, width], init_scale=0.0, device=device, dtype=dtype)
        train(model, Samples(data.clean, data.noisy, target), config=config)
        w_sim = model.end_to_end().detach().to("cpu", torch.float64)
        w_closed = theory.gd_regression_path(data.noisy, target, lr, [steps])[0]
        out[f"gap_{name}"] = float((w_sim - w_closed).norm() / w_closed.norm())
        out[f"closed_{name}"] = w_closed
    head = a.to(torch.float64)
    out["gap_paths"] = float((head @ out["closed_features"] - out["closed_labels"]).norm()
                             / out["closed_labels"].norm())
    return out
