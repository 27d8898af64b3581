"""Chapter "Training to zero loss erases the teacher": the interpolation sweep.

For each depth and init scale, one ensemble holds every (lam, seed) pair; each
member has its own training split (drawn from its seed) and its own init, and
the learning rate ``lr / (1 + lam)``, since the ST loss is about ``1 + lam``
times as curved as the base loss.
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
from ..data import Task, make_splits
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..train import TrainConfig, st_rate_scale, train


def widths(d: int, hidden: int, depth: int, d_out: int) -> list[int]:
    return [d] + [hidden] * (depth - 1) + [d_out]


def interpolation_sweep(task: Task, n_train: int, n_test: int, hidden: int, depths, lams, init_scales,
                        seeds, teachers: dict[int, FrozenTeacher], config: TrainConfig, device=None,
                        dtype=torch.float64):
    """Returns ``(summary, histories)``: one summary row per member and run, and the training logs."""
    rows, logs = [], []
    pairs = list(itertools.product(lams, seeds))
    member_lams = [l for l, _ in pairs]
    member_seeds = [s for _, s in pairs]
    split = make_splits(task, n_train, n_test, member_seeds, device=device, dtype=dtype)
    w_mn = theory.min_norm_interpolator(split.train.noisy, split.train.y)
    proj = theory.row_space_projector(split.train.noisy)
    eye = torch.eye(task.d, dtype=torch.float64)
    cov, w_star = task.inputs.covariance(), task.target.weight
    for depth, init in tqdm(list(itertools.product(depths, init_scales)), desc="depth x init"):
        model = DeepLinear(widths(task.d, hidden, depth, task.d_out), members=len(pairs), init_scale=init,
                           seed=[1000 * depth + s for s in member_seeds], device=device, dtype=dtype)
        w1_init = model.layers[0].weight.detach().to("cpu", torch.float64).clone()
        teacher = teachers[depth]
        result = train(model, split.train, teacher=teacher, lam=member_lams, layers=model.feature_names,
                       config=config, eval_sets={"test": split.test},
                       member_info={"seed": member_seeds},
                       lr_scale=st_rate_scale(member_lams))
        w_end = model.end_to_end().detach().to("cpu", torch.float64)
        w1 = model.layers[0].weight.detach().to("cpu", torch.float64)
        w_rest = _upper_product(model)
        init_term = w_rest @ w1_init @ (eye - proj)
        x_noisy = split.train.noisy.to("cpu", torch.float64)
        residual = w_end @ x_noisy.transpose(-1, -2) - split.train.y.to("cpu", torch.float64).transpose(-1, -2)
        residual_term = residual @ torch.linalg.pinv(x_noisy).transpose(-1, -2)
        rel = lambda a, b: ((a - b).norm(dim=(-2, -1)) / b.norm(dim=(-2, -1)))
        invariance = rel(w1 @ (eye - proj), w1_init @ (eye - proj))  # init_scales > 0 (checked by the spec)
        final = result.history[result.history.step == result.history.step.max()].set_index("member")
        for e, (lam, seed) in enumerate(pairs):
            rows.append({
                "depth": depth, "init_scale": init, "lam": lam, "seed": seed,
                "train_task": final.loc[e, "train_task"],
                "distance": float(rel(w_end[e], w_mn[e])),
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
