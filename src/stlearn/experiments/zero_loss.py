"""Chapter "Training to zero loss erases the teacher": the interpolation sweep.

For each depth and init scale, one ensemble holds every (lam, run) pair; run
``k`` draws its training set from ``rng.child("student_data", k)``, its test set
from ``rng.child("test", k)`` and its initialization from
``rng.child("student_init", k, depth)`` (the same for every ``lam`` and init
scale: paired runs), and trains at the learning rate ``lr / (1 + lam)``, since
the ST loss is about ``1 + lam`` times as curved as the base loss. The teachers
train on their own stream (:func:`clean_teachers`).
After training, each member's end-to-end map is compared with the min-norm
interpolator of its noisy training inputs, and the two exact identities of the
theorem are checked.
"""

from __future__ import annotations

import itertools

import pandas as pd
import torch
from tqdm import tqdm

from .. import theory
from ..data import Task, draw_members
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..streams import Stream, as_stream
from ..teachers import fit_clean_teacher
from ..train import TrainConfig, st_rate_scale, train


def widths(d: int, hidden: int, depth: int, d_out: int) -> list[int]:
    return [d] + [hidden] * (depth - 1) + [d_out]


def clean_teachers(task: Task, hidden: int, depths, n_teacher: int, rng: Stream | int, config: TrainConfig,
                   device=None, dtype=torch.float64) -> dict[int, FrozenTeacher]:
    """One deep linear teacher per depth, trained on ``n_teacher`` clean samples and frozen.

    All depths share teacher 0's training set ``rng.child("teacher_data", 0)``; the teacher of depth ``L``
    starts from ``rng.child("teacher_init", 0, L)``. It serves every student run of that depth.
    """
    rng = as_stream(rng)
    return {L: fit_clean_teacher(DeepLinear(widths(task.d, hidden, L, task.d_out), init_scale=0.5,
                                            rng=rng.child("teacher_init", 0, L), device=device, dtype=dtype),
                                 task, n_teacher, rng.child("teacher_data", 0), config)
            for L in depths}


def _relative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a - b||_F / ||b||_F`` over the last two dimensions."""
    return (a - b).norm(dim=(-2, -1)) / b.norm(dim=(-2, -1))


def interpolation_sweep(task: Task, n_train: int, n_test: int, hidden: int, depths, lams, init_scales,
                        rng: Stream | int, seeds, teachers: dict[int, FrozenTeacher], config: TrainConfig,
                        device=None, dtype=torch.float64):
    """Returns ``(summary, histories)``: one summary row per member and run, and the training logs.

    ``seeds`` are the run indices ``k`` (column ``seed``); every stream is a child of ``rng``.
    """
    rng = as_stream(rng)
    rows, logs = [], []
    pairs = list(itertools.product(lams, seeds))
    member_lams = [l for l, _ in pairs]
    member_seeds = [k for _, k in pairs]
    train_set = draw_members(task, n_train, [rng.child("student_data", k) for k in member_seeds],
                             device=device, dtype=dtype)
    test_set = draw_members(task, n_test, [rng.child("test", k) for k in member_seeds], label_noise=False,
                            device=device, dtype=dtype)
    w_mn = theory.min_norm_interpolator(train_set.noisy, train_set.y)
    proj = theory.row_space_projector(train_set.noisy)
    eye = torch.eye(task.d, dtype=torch.float64)
    cov, w_star = task.inputs.covariance(), task.target.weight
    for depth, init in tqdm(list(itertools.product(depths, init_scales)), desc="depth x init"):
        model = DeepLinear(widths(task.d, hidden, depth, task.d_out), members=len(pairs), init_scale=init,
                           rng=[rng.child("student_init", k, depth) for k in member_seeds], device=device,
                           dtype=dtype)
        w1_init = model.layers[0].weight.detach().to("cpu", torch.float64).clone()
        teacher = teachers[depth]
        result = train(model, train_set, teacher=teacher, lam=member_lams, layers=model.feature_names,
                       config=config, eval_sets={"test": test_set},
                       member_info={"seed": member_seeds},
                       lr_scale=st_rate_scale(member_lams))
        w_end = model.end_to_end().detach().to("cpu", torch.float64)
        w1 = model.layers[0].weight.detach().to("cpu", torch.float64)
        w_rest = _upper_product(model)
        init_term = w_rest @ w1_init @ (eye - proj)
        x_noisy = train_set.noisy.to("cpu", torch.float64)
        residual = w_end @ x_noisy.transpose(-1, -2) - train_set.y.to("cpu", torch.float64).transpose(-1, -2)
        residual_term = residual @ torch.linalg.pinv(x_noisy).transpose(-1, -2)
        invariance = _relative(w1 @ (eye - proj), w1_init @ (eye - proj))  # init_scales > 0 (checked by the spec)
        final = result.history[result.history.step == result.history.step.max()].set_index("member")
        for e, (lam, k) in enumerate(pairs):
            rows.append({
                "depth": depth, "init_scale": init, "lam": lam, "seed": k,
                "train_task": final.loc[e, "train_task"],
                "distance": float(_relative(w_end[e], w_mn[e])),
                "identity_gap": float((w_end[e] - w_mn[e] - residual_term[e] - init_term[e]).norm()
                                      / w_mn[e].norm()),
                "residual_term": float(residual_term[e].norm() / w_mn[e].norm()),
                "init_term": float(init_term[e].norm() / w_mn[e].norm()),
                "invariance_gap": float(invariance[e]),
                "test_error": float(theory.linear_test_error(w_end[e], w_star, cov, task.sigma)),
                "test_error_min_norm": float(theory.linear_test_error(w_mn[e], w_star, cov, task.sigma)),
            })
        logs.append(result.history.assign(depth=depth, init_scale=init))
    return pd.DataFrame(rows), pd.concat(logs, ignore_index=True)


def _upper_product(model: DeepLinear) -> torch.Tensor:
    """``W_L ... W_2`` (the identity for a one-layer model), float64 on the CPU."""
    layers = [l.weight.detach().to("cpu", torch.float64) for l in model.layers[1:]]
    if not layers:
        return torch.eye(model.widths[1], dtype=torch.float64)
    w = layers[0]
    for nxt in layers[1:]:
        w = nxt @ w
    return w
