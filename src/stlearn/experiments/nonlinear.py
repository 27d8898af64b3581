"""Pieces shared by the nonlinear chapters: the ReLU task, clean teachers, one
ensemble per configuration holding every (lam, seed) pair, and per-run
summaries of the training path.

A run is one member: its own training, validation and test split drawn from
its seed, its own initialization, its own ``lam``. ST members use the learning
rate ``lr / (1 + lam)`` (the ST loss is about ``1 + lam`` times as curved), so
``lam = 0`` is exactly the base loss at rate ``lr``.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd

from ..data import Samples, Task, gaussian_inputs, make_splits, relu_target
from ..losses import FrozenTeacher
from ..models import MLP, select_members, stack_members
from ..teachers import fit_clean_teacher
from ..train import TrainConfig, st_rate_scale, train
from ..validation import ParameterError


def relu_task(d: int, units: int, sigma: float, seed: int) -> Task:
    """Isotropic Gaussian inputs in ``R^d`` and a random two-layer ReLU target with ``units`` units."""
    return Task(gaussian_inputs(d), relu_target(d, units, 1, seed=seed), sigma=sigma)


def teacher_config(steps: int, lr: float = 0.01) -> TrainConfig:
    """Full-batch Adam on clean inputs: teachers are trained well, not studied."""
    return TrainConfig(steps=steps, lr=lr, optimizer="adam", progress=False)


def clean_teacher(task: Task, width: int, n_teacher: int, seed: int, steps: int, device=None) -> FrozenTeacher:
    """A one-hidden-layer ReLU teacher of width ``width`` trained on ``n_teacher`` clean samples."""
    model = MLP([task.d, width, task.d_out], seed=seed, device=device)
    return fit_clean_teacher(model, task, n_teacher, seed=seed + 1, config=teacher_config(steps))


def lam_seed_pairs(lams: Sequence[float], seeds: Sequence[int]) -> tuple[list[float], list[int]]:
    pairs = list(itertools.product(lams, seeds))
    return [float(l) for l, _ in pairs], [s for _, s in pairs]


def validation_samples(task: Task, n_val: int, seeds: Sequence[int], device=None) -> Samples:
    """A labelled noisy validation set per member, drawn apart from its training data."""
    return make_splits(task, n_val, 1, [s + 100_003 for s in seeds], device=device).train


def train_members(task: Task, width: int, n_train: int, n_test: int, n_val: int, member_lams: Sequence[float],
                  member_seeds: Sequence[int], teacher: FrozenTeacher, config: TrainConfig, device=None,
                  layers: Sequence[str] = ("h1",), member_info: dict | None = None) -> pd.DataFrame:
    """One ensemble, member ``e`` with its own split and init from ``member_seeds[e]`` and weight ``member_lams[e]``.

    Returns the tidy training history, with a ``seed`` column and those of ``member_info``.
    """
    split = make_splits(task, n_train, n_test, member_seeds, device=device)
    model = MLP([task.d, width, task.d_out], members=len(member_seeds), seed=[s + 7 for s in member_seeds],
                device=device)
    result = train(model, split.train, teacher=teacher, lam=list(member_lams), layers=list(layers), config=config,
                   eval_sets={"test": split.test, "val": validation_samples(task, n_val, member_seeds, device)},
                   member_info={"seed": list(member_seeds), **(member_info or {})},
                   lr_scale=st_rate_scale(member_lams))
    return result.history


def train_lam_seed_ensemble(task: Task, width: int, n_train: int, n_test: int, n_val: int, lams, seeds,
                            teacher: FrozenTeacher, config: TrainConfig, device=None,
                            layers: Sequence[str] = ("h1",)) -> pd.DataFrame:
    """One ensemble, one member per (lam, seed); returns the training history (tidy)."""
    member_lams, member_seeds = lam_seed_pairs(lams, seeds)
    return train_members(task, width, n_train, n_test, n_val, member_lams, member_seeds, teacher, config, device,
                         layers)


def path_summary(history: pd.DataFrame, by: Sequence[str] = ("lam", "seed"),
                 metric: str = "test_noisy") -> pd.DataFrame:
    """Per run: the best test error along the path, the one where validation error is lowest, and the end."""
    def one(g: pd.DataFrame) -> pd.Series:
        g = g.sort_values("step")
        best, stop, end = g[metric].idxmin(), g["val_noisy"].idxmin(), g.index[-1]
        return pd.Series({"best": g.at[best, metric], "best_step": g.at[best, "step"],
                          "val_stopped": g.at[stop, metric], "val_step": g.at[stop, "step"],
                          "val_error": g.at[stop, "val_noisy"], "end": g.at[end, metric],
                          "end_train_task": g.at[end, "train_task"]})
    return history.groupby(list(by)).apply(one, include_groups=False).reset_index()


def select_by_validation(summary: pd.DataFrame) -> pd.DataFrame:
    """Per seed, the run (lam and stopping step) with the lowest validation error: what a practitioner can pick."""
    idx = summary.groupby("seed")["val_error"].idxmin()
    return summary.loc[idx].reset_index(drop=True)


def stack_teachers(models: Sequence[MLP], assignment: Sequence[int]) -> FrozenTeacher:
    """One frozen ensemble teacher whose member ``e`` is a copy of ``models[assignment[e]]``.

    Lets one student ensemble learn from a different teacher in each member.
    """
    return FrozenTeacher(select_members(stack_members(models), assignment))


def train_teacher_grid(task: Task, width: int, lams, seeds, teacher_models: Sequence[MLP], n_train: int,
                       n_test: int, n_val: int, config: TrainConfig, device=None) -> pd.DataFrame:
    """One ensemble: a base member per seed, and an ST member per (teacher, seed) with weight from ``lams``.

    ``lams`` holds one ST weight per teacher. The history gets a ``teacher`` column (-1 for base).
    """
    k = len(teacher_models)
    member_teacher = [-1] * len(seeds) + [t for t in range(k) for _ in seeds]
    member_seeds = list(seeds) * (k + 1)
    member_lams = [0.0] * len(seeds) + [float(lams[t]) for t in range(k) for _ in seeds]
    teacher = stack_teachers(teacher_models, [max(t, 0) for t in member_teacher])
    return train_members(task, width, n_train, n_test, n_val, member_lams, member_seeds, teacher, config, device,
                         member_info={"teacher": member_teacher})
