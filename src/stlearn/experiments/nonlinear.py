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
``rng.child("teacher_init", k)``, apart from every student's data.

Learning rates come from the problem, not from a constant: every student
member trains by heavy-ball gradient descent at its own curvature rate
(:func:`train_at_curvature_rates`), ``rate_fraction * 2 (1 + momentum) / L``
with ``L`` the top eigenvalue of the Hessian of its own loss (task, feature
term and decay) where it starts, at most :data:`MAX_RATE`. Teachers are
trained by Adam, whose steps are scaled by the gradients' own size.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from ..data import Samples, Task, draw, gaussian_inputs, relu_target
from ..losses import FrozenTeacher
from ..models import MLP, select_members, stack_members
from ..protocol import stop_on_validation
from ..streams import Stream, as_stream
from ..teachers import fit_clean_teacher
from ..train import TrainConfig, TrainResult, curvature_rates, evaluate, train

RATE_FRACTION = 0.4  # the chapters' default fraction of the stability limit
MAX_RATE = 1.0  # the largest rate a member gets, whatever its curvature (a nearly flat start)


def train_at_curvature_rates(model, data: Samples, config: TrainConfig, rate_fraction: float = RATE_FRACTION, *,
                             teacher: FrozenTeacher | None = None, lam=0.0, layers: Sequence[str] = (),
                             eval_sets: Mapping[str, Samples] | None = None, member_info: dict | None = None,
                             fresh_noise=None) -> TrainResult:
    """:func:`stlearn.train.train` with each member at its own curvature rate (``config.lr`` is not used).

    Member ``e`` trains at ``min(rate_fraction * 2 (1 + momentum) / L_e, MAX_RATE)``, ``L_e`` the top
    Hessian eigenvalue of its own loss at its start (:func:`stlearn.train.curvature_rates`): the same
    fraction of the stability limit for every width, sample size, input dimension and ``lam``. The
    history gets a ``rate`` column.
    """
    rates = curvature_rates(model, data, teacher=teacher, lam=lam, layers=layers, config=config,
                            fraction=rate_fraction, max_rate=MAX_RATE, fresh_noise=fresh_noise)
    single = model.members is None
    return train(model, data, teacher=teacher, lam=lam, layers=layers, eval_sets=eval_sets,
                 config=replace(config, lr=rates[0] if single else 1.0), lr_scale=None if single else rates,
                 member_info={**(member_info or {}), "rate": rates}, fresh_noise=fresh_noise)


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


def teacher_rows(net, task: Task, seeds: Sequence[int], n_val: int, n_test: int, rng: Stream | int,
                 device=None) -> pd.DataFrame:
    """A measured method's rows for the study runner (:func:`stlearn.study.run_study`): member ``e`` of the
    ensemble ``net`` applied as it is to run ``seeds[e]``'s noisy validation and test inputs (the teacher as
    it is). Columns ``member``, ``val_error``, ``test_error``, ``clean_test_error``."""
    rng = as_stream(rng)
    seeds = [int(k) for k in seeds]
    val = validation_samples(task, n_val, rng, seeds, device)
    test = run_sets(task, n_test, [rng.child("test", k) for k in seeds], label_noise=False, device=device)
    v, t = evaluate(net, val)["noisy"], evaluate(net, test)
    return pd.DataFrame({"member": range(len(seeds)), "val_error": v.cpu().numpy(),
                         "test_error": t["noisy"].cpu().numpy(), "clean_test_error": t["clean"].cpu().numpy()})


def train_members(task: Task, width: int, n_train: int, n_test: int, n_val: int, member_lams: Sequence[float],
                  member_seeds: Sequence[int], teacher: FrozenTeacher, config: TrainConfig, rng: Stream | int,
                  device=None, layers: Sequence[str] = ("h1",), member_info: dict | None = None,
                  data_index: Sequence[int] = (), rate_fraction: float = RATE_FRACTION) -> pd.DataFrame:
    """One ensemble, member ``e`` the run ``k = member_seeds[e]`` with weight ``member_lams[e]``.

    Run ``k`` trains on ``rng.child("student_data", k, *data_index)`` (``data_index`` names an extra
    configuration axis whose sets differ, e.g. the sample size) from ``rng.child("student_init", k)``, and
    is measured on ``rng.child("validation", k)`` and ``rng.child("test", k)`` (no label noise), at its
    curvature rate (:func:`train_at_curvature_rates`).
    Returns the tidy training history, with a ``seed`` column (the run index) and those of ``member_info``.
    """
    rng = as_stream(rng)
    runs = [int(k) for k in member_seeds]
    data = run_sets(task, n_train, [rng.child("student_data", k, *data_index) for k in runs], device=device)
    test = run_sets(task, n_test, [rng.child("test", k) for k in runs], label_noise=False, device=device)
    model = MLP([task.d, width, task.d_out], members=len(runs), rng=[rng.child("student_init", k) for k in runs],
                device=device)
    result = train_at_curvature_rates(model, data, config, rate_fraction, teacher=teacher, lam=list(member_lams),
                                      layers=list(layers), member_info={"seed": runs, **(member_info or {})},
                                      eval_sets={"test": test, "val": validation_samples(task, n_val, rng, runs,
                                                                                         device)})
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
                       data_index: Sequence[int] = (), rate_fraction: float = RATE_FRACTION) -> pd.DataFrame:
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
                         device, member_info={"teacher": member_teacher}, data_index=data_index,
                         rate_fraction=rate_fraction)
