"""Pieces shared by the deep-linear theory chapters: hand-built teachers, per-member data and the yardstick.

A hand-built teacher is a two-layer linear network ``x -> A V x`` whose hidden
features ``V x`` are chosen exactly (no training), so a chapter controls what
the teacher knows and how its features are laid out. The random directions
that tilt or widen a teacher's features come from its own streams,
``rng.child("direction", k, TILT)`` and ``rng.child("direction", k, WIDEN)``.

The yardstick every theory chapter states its verdicts against (CONTRIBUTING 4b') is ridge tuned on a
validation set with the same budget as ST's weights: :func:`ridge_penalties`, :func:`tuned_ridge`. Every
linear chapter gives a method against it in one form, the relative gain ``(reference - method) / mean(reference)``
paired by run, in % (signed: above 0 the method is better; the chapters' error scales differ), printed by
:func:`relative_gain_table` with :data:`RELATIVE_DIGITS` decimals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .. import theory
from ..data import Samples, Task, draw, random_orthonormal
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..protocol import first_lowest
from ..stats import as_percent, collapse_intervals
from ..streams import Stream
from ..validation import ParameterError, check_float

TILT, WIDEN = 0, 1  # the last index of a teacher's direction streams: tilting and widening its features


def target_factors(w_star: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` with ``W* = A B`` and ``B`` (r x d) orthonormal rows spanning the row space of ``W*``."""
    u, s, vh = torch.linalg.svd(w_star.to(torch.float64), full_matrices=False)
    r = int((s > s.max() * 1e-10).sum())
    return u[:, :r] * s[:r], vh[:r]


def complement(rows: torch.Tensor, k: int, rng: Stream | int) -> torch.Tensor:
    """``k`` random orthonormal rows orthogonal to the row span of ``rows``, drawn from the stream ``rng``."""
    q, _ = torch.linalg.qr(rows.T, mode="complete")
    free = q[:, rows.shape[0]:]  # (d, d - r), orthonormal complement
    if k > free.shape[1]:
        raise ParameterError(f"k must be <= {free.shape[1]} (the complement's dimension); got {k}")
    return (free @ random_orthonormal(free.shape[1], k, rng)).T if k else rows[:0]


def widened(rows: torch.Tensor, extra: int, rng: Stream | int) -> torch.Tensor:
    """``rows`` followed by ``extra`` random orthonormal rows orthogonal to them (:func:`complement`)."""
    return torch.cat([rows, complement(rows, extra, rng)])


def tilted(rows: torch.Tensor, angle: float, rng: Stream | int) -> torch.Tensor:
    """Rows spanning a subspace tilted by ``angle`` (radians) from that of ``rows``, towards random directions.

    Each orthonormal row ``b_i`` becomes ``cos(angle) b_i + sin(angle) c_i`` with
    orthonormal ``c_i`` orthogonal to all of ``rows`` (drawn from ``rng``): every principal angle
    between the two subspaces equals ``angle``.
    """
    angle = check_float("angle", angle, low=0.0, high=torch.pi / 2)
    c = complement(rows, rows.shape[0], rng)
    return torch.cos(torch.tensor(angle, dtype=torch.float64)) * rows + \
        torch.sin(torch.tensor(angle, dtype=torch.float64)) * c


def linear_teacher(features: Sequence[torch.Tensor], heads: Sequence[torch.Tensor], device=None,
                   dtype=torch.float64) -> FrozenTeacher:
    """A frozen two-layer teacher ensemble: member ``e`` computes ``heads[e] @ features[e] @ x``."""
    v, a = torch.stack([f.to(torch.float64) for f in features]), torch.stack([h.to(torch.float64) for h in heads])
    model = DeepLinear([v.shape[2], v.shape[1], a.shape[1]], members=len(features), device=device, dtype=dtype)
    with torch.no_grad():
        model.layers[0].weight.copy_(v.to(model.layers[0].weight))
        model.layers[1].weight.copy_(a.to(model.layers[1].weight))
    return FrozenTeacher(model)


def member_samples(tasks: Sequence[Task], n: int, rngs: Sequence[Stream], *, label_noise: bool = True,
                   device=None, dtype=torch.float64) -> Samples:
    """One set of ``n`` samples per (task, stream) pair, stacked ``(E, n, .)``.

    Members may differ in their task (noise level, label noise) as well as in their stream; members that
    share a stream share their clean inputs (paired runs). Test sets pass ``label_noise=False``.
    """
    if len(tasks) != len(rngs) or not tasks:
        raise ParameterError(f"tasks and rngs must be non-empty lists of one length; got {len(tasks)} and {len(rngs)}")
    return Samples.stack([draw(t, n, r, label_noise=label_noise, device=device, dtype=dtype)
                          for t, r in zip(tasks, rngs)])


# ------------------------------------------------------------------------------- the yardstick
def ridge_penalties(budget: int) -> list[float]:
    """``budget`` ridge penalties: 0 (least squares) and a log grid from 1e-3 to 1e2 (inputs of unit scale)."""
    return [0.0, *np.geomspace(1e-3, 1e2, budget - 1).tolist()]


def tuned_ridge(train_set, val, penalties, w_star, cov, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Per member, ridge ``W = Y^T X (X^T X + N mu I)^{-1}`` at the penalty with the lowest validation error
    (ties within rounding: the first): its validation error and its exact test error."""
    x, y = train_set.noisy, train_set.y
    n, d = x.shape[-2:]
    gram, cross = x.transpose(-1, -2) @ x, x.transpose(-1, -2) @ y
    val_err, test_err = [], []
    for mu in penalties:
        w = (theory.min_norm_interpolator(x, y) if mu == 0 else
             torch.linalg.solve(gram + n * mu * torch.eye(d, dtype=x.dtype), cross).transpose(-1, -2))
        val_err.append((val.y - val.noisy @ w.transpose(-1, -2)).pow(2).sum(-1).mean(-1).numpy())
        test_err.append(theory.linear_test_error(w, w_star, cov, sigma).numpy())
    val_err, test_err = np.stack(val_err), np.stack(test_err)  # (penalties, members)
    pick = [first_lowest(val_err[:, e]) for e in range(val_err.shape[1])]
    members = np.arange(val_err.shape[1])
    return val_err[pick, members], test_err[pick, members]


def stronger_simple(train_set, val, width: int, ridge: np.ndarray, ridge_val: np.ndarray, w_star, cov,
                    sigma: float) -> dict:
    """Reduced-rank regression of rank ``width`` where it is a bottleneck (``width < min(d, d_y)``; NaN otherwise)
    beside tuned ridge (:func:`tuned_ridge`'s ``ridge``, ``ridge_val``), and per member the one that validates
    better (ties go to reduced-rank regression): columns ``rrr``, ``rrr_val``, ``simple``, ``simple_method``."""
    d_out, d = w_star.shape
    rrr = rrr_val = np.full(len(ridge), np.nan)
    if width < min(d, d_out):
        w = theory.reduced_rank_regression(train_set.noisy, train_set.y, width)
        rrr = theory.linear_test_error(w, w_star, cov, sigma).numpy()
        rrr_val = (val.y - val.noisy @ w.transpose(-1, -2)).pow(2).sum(-1).mean(-1).numpy()
    ridge_wins = ~(rrr_val <= ridge_val)  # NaN (no bottleneck): ridge
    return {"rrr": rrr, "rrr_val": rrr_val, "simple": np.where(ridge_wins, ridge, rrr),
            "simple_method": np.where(ridge_wins, "ridge", "reduced-rank regression")}


RELATIVE_DIGITS = 1  # decimals of a relative gain in % (the linear chapters' one form against the yardstick)


def relative_gain_table(df, names: dict[str, str], signed: Sequence[str] = ()):
    """``df`` with each relative gain of ``names`` (a fraction, its ``_low`` and ``_high`` beside it) as one text
    column in %, signed as the book prints a paired effect: ``"+3.2 [0.3, 6.1]"`` under ``names[c] [95% interval]``
    (name it by its comparison and direction, e.g. ``"ST vs simple, % (above 0: ST better)"``); the other
    intervals of ``df`` as :func:`stlearn.stats.collapse_intervals` prints them (3 decimals), signed where
    ``signed`` names them (absolute paired effects)."""
    shown = list(names.values())
    return collapse_intervals(as_percent(df, names), digits={n: RELATIVE_DIGITS for n in shown},
                              signed=[*shown, *signed])


# ------------------------------------------------------------------------------- the setting's checks
def simulated_test_error(maps: torch.Tensor, test: Samples, w_star: torch.Tensor, cov: torch.Tensor,
                         sigma: float) -> dict:
    """Each linear map's test error in closed form and by Monte Carlo on ``test`` (clean labels), to check the
    closed form: keys ``closed``, ``simulated`` (per map), ``rel_err`` (largest relative gap) and ``z`` (largest
    gap in standard errors of the Monte Carlo mean)."""
    closed = theory.linear_test_error(maps, w_star, cov, sigma)
    squared = (test.y - test.noisy @ maps.transpose(-1, -2)).pow(2).sum(-1)
    simulated, std_error = squared.mean(-1), squared.std(-1) / test.y.shape[-2] ** 0.5
    return {"closed": closed, "simulated": simulated,
            "rel_err": ((simulated - closed).abs() / closed).max().item(),
            "z": ((simulated - closed).abs() / std_error).max().item()}


def perfect_teacher_check(task: Task, n: int, rng: Stream, lams: Sequence[float] = (0.0, 1.0, 10.0)) -> dict:
    """A perfect teacher (features ``B x``, head ``A``, ``A B = W*``) on ``n`` training samples drawn from ``rng``,
    once with clean labels and once with label noise 1: how far its two-stage estimator is from least squares
    (``gaps``, relative, keyed by the label noise) and, with clean labels, the largest norm of the ST loss's
    gradient at ``(T X~^+, A)`` over ``lams`` (``grad_max``). Without label noise both vanish (to rounding)."""
    a_t, v_t = target_factors(task.target.weight)
    gaps, grad_max = {}, None
    for s_label in (0.0, 1.0):
        data = draw(Task(task.inputs, task.target, sigma=task.sigma, label_noise=s_label), n, rng,
                    dtype=torch.float64)
        t_feat = data.clean @ v_t.T  # rows: the teacher's features on the clean inputs
        w_ls = theory.min_norm_interpolator(data.noisy, data.y)  # least squares (n > d)
        w_two = theory.two_stage_estimator(data.noisy, t_feat, data.y)
        gaps[s_label] = ((w_two - w_ls).norm() / w_ls.norm()).item()
        if s_label == 0.0:
            h = data.noisy @ theory.min_norm_interpolator(data.noisy, t_feat).T  # features of T X~^+ (in rows)
            resid = h @ a_t.T - data.y
            grads = [(a_t.T @ resid.T @ data.noisy / n + lam * (h - t_feat).T @ data.noisy / n).norm().item()
                     for lam in lams]
            grad_max = max(grads + [(resid.T @ h / n).norm().item()])
    return {"gaps": gaps, "grad_max": grad_max}
