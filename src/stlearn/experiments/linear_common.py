"""Pieces shared by the deep-linear theory chapters: hand-built teachers and per-member data.

A hand-built teacher is a two-layer linear network ``x -> A V x`` whose hidden
features ``V x`` are chosen exactly (no training), so a chapter controls what
the teacher knows and how its features are laid out.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..data import Samples, Task, generator, make_split, random_orthonormal
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..validation import ParameterError, check_float


def target_factors(w_star: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` with ``W* = A B`` and ``B`` (r x d) orthonormal rows spanning the row space of ``W*``."""
    u, s, vh = torch.linalg.svd(w_star.to(torch.float64), full_matrices=False)
    r = int((s > s.max() * 1e-10).sum())
    return u[:, :r] * s[:r], vh[:r]


def complement(rows: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """``k`` random orthonormal rows orthogonal to the row span of ``rows``."""
    d = rows.shape[1]
    q, _ = torch.linalg.qr(rows.T, mode="complete")
    free = q[:, rows.shape[0]:]  # (d, d - r), orthonormal complement
    if k > free.shape[1]:
        raise ParameterError(f"k must be <= {free.shape[1]} (the complement's dimension); got {k}")
    return (free @ random_orthonormal(free.shape[1], k, generator(seed))).T if k else rows[:0]


def widened(rows: torch.Tensor, extra: int, seed: int) -> torch.Tensor:
    """``rows`` followed by ``extra`` random orthonormal rows orthogonal to them (:func:`complement`)."""
    return torch.cat([rows, complement(rows, extra, seed)])


def tilted(rows: torch.Tensor, angle: float, seed: int) -> torch.Tensor:
    """Rows spanning a subspace tilted by ``angle`` (radians) from that of ``rows``, towards random directions.

    Each orthonormal row ``b_i`` becomes ``cos(angle) b_i + sin(angle) c_i`` with
    orthonormal ``c_i`` orthogonal to all of ``rows``: every principal angle
    between the two subspaces equals ``angle``.
    """
    angle = check_float("angle", angle, low=0.0, high=torch.pi / 2)
    c = complement(rows, rows.shape[0], seed)
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


def member_samples(tasks: Sequence[Task], n_train: int, n_test: int, seeds: Sequence[int], device=None,
                   dtype=torch.float64):
    """One split per (task, seed) pair, stacked ``(E, n, .)``: returns ``(train, test)`` Samples."""
    splits = [make_split(t, n_train, n_test, s, device, dtype) for t, s in zip(tasks, seeds)]
    return Samples.stack([s.train for s in splits]), Samples.stack([s.test for s in splits])
