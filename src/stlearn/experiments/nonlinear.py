"""Pieces shared by the nonlinear chapters: the ReLU task, clean teachers, one
ensemble per configuration holding every (lam, seed) pair, and per-run
summaries of the training path.

A run is one member with a run index ``k`` (the ``seed`` column of the
tables). Its random draws come from the streams of its roles below the
chapter's root stream ``rng``: training inputs ``rng.child("student_data", k)``,
initialization ``rng.child("student_init", k)``, validation set
``rng.child("validation", k)`` and test set ``rng.child("test", k)``. Runs of
the same ``k`` with different ``lam`` share all four (paired runs). Teacher
``k`` trains on ``rng.child("teacher_data", k)`` from
``rng.child("teacher_init", k)``, apart from every student's data. ST members
use the learning rate ``lr / (1 + lam)`` (the ST loss is about ``1 + lam``
times as curved), so ``lam = 0`` is exactly the base loss at rate ``lr``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pandas as pd

from ..data import Samples, Task, draw, gaussian_inputs, relu_target
from ..losses import FrozenTeacher
from ..models import MLP, select_members, stack_members
from ..protocol import stop_on_validation
from ..streams import Stream, as_stream
from ..teachers import fit_clean_teacher
from ..train import TrainConfig, st_rate_scale, train


def relu_task(d: int, units: int, sigma: float, rng: Stream | int) -> Task:
    """Isotropic Gaussian inputs in ``R^d`` and a random two-layer ReLU target with ``units`` units.

    The target is drawn from ``rng.child("target")`` (``rng`` is the chapter's root stream).
    """
    return Task(gaussian_inputs(d), relu_target(d, units, 1, rng=as_stream(rng).child("target")), sigma=sigma)


def teacher_config(steps: int, lr: float = 0.01) -> TrainConfig:
    """Full-batch Adam on clean inputs: teachers are trained well, not studied."""
    return TrainConfig(steps=steps, lr=lr, optimizer="adam", progress=False)


def clean_teacher(task: Task, width: int, n_teacher: int, rng: Stream | int, steps: int, k: int = 0,
                  device=None) -> FrozenTeacher:
    """Teacher ``k``: a one-hidden-layer ReLU network of width ``width`` trained on ``n_teacher`` clean samples.

    Its initialization is ``rng.child("teacher_init", k)`` and its data ``rng.child("teacher_data", k)``.
    """
    rng = as_stream(rng)
    model = MLP([task.d, width, task.d_out], rng=rng.child("teacher_init", k), device=device)
    return fit_clean_teacher(model, task, n_teacher, rng.child("teacher_data", k), teacher_config(steps))


def lam_seed_pairs(lams: Sequence[float], seeds: Sequence[int]) -> tuple[list[float], list[int]]:
    pairs = list(itertools.product(lams, seeds))
    return [float(l) for l, _ in pairs], [s for _, s in pairs]


def run_sets(task: Task, n: int, streams: Sequence[Stream], label_noise: bool = True, device=None) -> Samples:
    """One set of ``n`` samples per member, stacked ``(E, n, .)``; members with the same stream share one draw."""
    unique = list(dict.fromkeys(streams))
    drawn = [draw(task, n, s, label_noise=label_noise, device=device) for s in unique]
    return Samples.stack([drawn[unique.index(s)] for s in streams])


def validation_samples(task: Task, n_val: int, rng: Stream | int, runs: Sequence[int], device=None) -> Samples:
    """A labelled noisy validation set per member: run ``k``'s from ``rng.child("validation", k)``."""
    rng = as_stream(rng)
    return run_sets(task, n_val, [rng.child("validation", k) for k in runs], device=device)


def train_members(task: Task, width: int, n_train: int, n_test: int, n_val: int, member_lams: Sequence[float],
                  member_seeds: Sequence[int], teacher: FrozenTeacher, config: TrainConfig, rng: Stream | int,
                  device=None, layers: Sequence[str] = ("h1",), member_info: dict | None = None,
                  data_index: Sequence[int] = ()) -> pd.DataFrame:
    """One ensemble, member ``e`` the run ``k = member_seeds[e]`` with weight ``member_lams[e]``.

    Run ``k`` trains on ``rng.child("student_data", k, *data_index)`` (``data_index`` names an extra
    configuration axis whose sets differ, e.g. the sample size) from ``rng.child("student_init", k)``, and
    is measured on ``rng.child("validation", k)`` and ``rng.child("test", k)`` (no label noise).
    Returns the tidy training history, with a ``seed`` column (the run index) and those of ``member_info``.
    """
    rng = as_stream(rng)
    runs = [int(k) for k in member_seeds]
    data = run_sets(task, n_train, [rng.child("student_data", k, *data_index) for k in runs], device=device)
    test = run_sets(task, n_test, [rng.child("test", k) for k in runs], label_noise=False, device=device)
    model = MLP([task.d, width, task.d_out], members=len(runs), rng=[rng.child("student_init", k) for k in runs],
                device=device)
    result = train(model, data, teacher=teacher, lam=list(member_lams), layers=list(layers), config=config,
                   eval_sets={"test": test, "val": validation_samples(task, n_val, rng, runs, device)},
                   member_info={"seed": runs, **(member_info or {})},
                   lr_scale=st_rate_scale(member_lams))
    return result.history


def path_summary(history: pd.DataFrame, by: Sequence[str] = ("lam", "seed"),
                 metric: str = "test_noisy") -> pd.DataFrame:
    """Per run: :func:`stlearn.protocol.stop_on_validation` under the older column names of these chapters.

    ``best`` (the oracle: lowest test error along the path), ``val_stopped`` (at the step of lowest
    validation error), ``end``.
    """
    names = {"oracle_test": "best", "oracle_step": "best_step", "test_error": "val_stopped", "end_test": "end"}
    return stop_on_validation(history, by, test=metric).rename(columns=names)


def stack_teachers(models: Sequence[MLP], assignment: Sequence[int]) -> FrozenTeacher:
    """One frozen ensemble teacher whose member ``e`` is a copy of ``models[assignment[e]]``.

    Lets one student ensemble learn from a different teacher in each member.
    """
    return FrozenTeacher(select_members(stack_members(models), assignment))


def train_teacher_grid(task: Task, width: int, lams, seeds, teacher_models: Sequence[MLP], n_train: int,
                       n_test: int, n_val: int, config: TrainConfig, rng: Stream | int, device=None,
                       data_index: Sequence[int] = ()) -> pd.DataFrame:
    """One ensemble: a base member per run index, and an ST member per (teacher, run) with weight from ``lams``.

    ``lams`` holds one ST weight per teacher. The history gets a ``teacher`` column (-1 for base).
    ``data_index`` as in :func:`train_members`.
    """
    k = len(teacher_models)
    member_teacher = [-1] * len(seeds) + [t for t in range(k) for _ in seeds]
    member_seeds = list(seeds) * (k + 1)
    member_lams = [0.0] * len(seeds) + [float(lams[t]) for t in range(k) for _ in seeds]
    teacher = stack_teachers(teacher_models, [max(t, 0) for t in member_teacher])
    return train_members(task, width, n_train, n_test, n_val, member_lams, member_seeds, teacher, config, rng,
                         device, member_info={"teacher": member_teacher}, data_index=data_index)
