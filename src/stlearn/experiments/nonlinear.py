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
``rng.child("teacher_init", k)``, apart from every student's data. :class:`Students` is the one home of
a run's sets and training, which every chapter's study (:mod:`stlearn.study`) trains its groups with.

Learning rates come from the problem, not from a constant: every student
member trains by heavy-ball gradient descent at its own curvature rate
(:func:`train_at_curvature_rates`), ``rate_fraction * 2 (1 + momentum) / L``
with ``L`` the top eigenvalue of the Hessian of its own loss (task, feature
term and decay) where it starts, at most :data:`MAX_RATE`. Teachers are
trained by Adam, whose steps are scaled by the gradients' own size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from ..data import Samples, Task, draw, gaussian_inputs, relu_target
from ..losses import FrozenTeacher
from ..models import MLP, overwrite_members, select_members
from ..streams import Stream, as_stream
from ..teachers import fit_clean_teacher
from ..train import TrainConfig, TrainResult, curvature_rates, evaluate, train
from ..validation import ParameterError

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

    The curvature can grow along the path beyond its value at the start, so a member of an ensemble that
    diverges is trained again from its start at half its fraction, up to :data:`RESTARTS` times
    (:func:`_restart_diverged`); members that did not diverge are untouched, and the history's ``rate`` (and,
    where any member restarted, ``restarts``) columns say what each member ran at.
    """
    single = model.members is None
    start = None if single else select_members(model, range(model.members))
    kw = dict(teacher=teacher, lam=lam, layers=layers, eval_sets=eval_sets, member_info=member_info,
              fresh_noise=fresh_noise)
    result = _train_once(model, data, config, rate_fraction, **kw)
    return result if single else _restart_diverged(model, start, result, data, config, rate_fraction, **kw)


RESTARTS = 3  # how many times a diverged member is trained again from its start, each time at half the fraction


CURVATURE_SAMPLES = 1000  # with minibatches, the curvature is measured on at most this many training samples


def _train_once(model, data, config, rate_fraction, *, teacher, lam, layers, eval_sets, member_info, fresh_noise):
    # With minibatches the loss being descended is an average over exchangeable samples: its curvature is measured on
    # the first CURVATURE_SAMPLES of them, not on all (views x inputs can be many thousands, for every member).
    sampled = config.batch_size is not None and data.n > CURVATURE_SAMPLES
    probe = data.rows(torch.arange(CURVATURE_SAMPLES, device=data.clean.device)) if sampled else data
    rates = curvature_rates(model, probe, teacher=teacher, lam=lam, layers=layers, config=config,
                            fraction=rate_fraction, max_rate=MAX_RATE, fresh_noise=fresh_noise)
    single = model.members is None
    return train(model, data, teacher=teacher, lam=lam, layers=layers, eval_sets=eval_sets,
                 config=replace(config, lr=rates[0] if single else 1.0), lr_scale=None if single else rates,
                 member_info={**(member_info or {}), "rate": rates}, fresh_noise=fresh_noise)


def _restart_diverged(model, start, result: TrainResult, data: Samples, config: TrainConfig, fraction: float,
                      **kw) -> TrainResult:
    """Train each diverged member of ``result`` again from its start (``start``) at half the fraction, until none
    diverges or :data:`RESTARTS` restarts are spent; its weights and its rows of the history are replaced."""
    history = result.history
    if "diverged_at" not in history:
        return result
    history = history.assign(restarts=0)
    for restart in range(1, RESTARTS + 1):
        if history.diverged_at.isna().all():
            break
        failed = sorted(int(e) for e in history.loc[history.diverged_at.notna(), "member"].unique())
        fraction /= 2
        again = select_members(start, failed)
        redo = _train_once(again, _rows_of(data, failed), _members_of(config, failed), fraction,
                           **_member_args(kw, failed))
        overwrite_members(model, failed, again, range(len(failed)))
        rows = redo.history.assign(member=[failed[int(e)] for e in redo.history.member], restarts=restart)
        history = pd.concat([history[~history.member.isin(failed)], rows], ignore_index=True)
    return replace(result, history=history.sort_values(["step", "member"], kind="stable").reset_index(drop=True))


def _rows_of(samples: Samples, index: list[int]) -> Samples:
    """The member-stacked ``samples`` of the members ``index`` only."""
    return samples.map(lambda t: t[index])


def _members_of(config: TrainConfig, index: list[int]) -> TrainConfig:
    """``config`` with its per-member knobs (weight decays, noise streams) of the members ``index`` only."""
    decay = config.weight_decay if np.ndim(config.weight_decay) == 0 else tuple(config.weight_decay[e] for e in index)
    noise = None if config.noise_seeds is None else tuple(config.noise_seeds[e] for e in index)
    return replace(config, weight_decay=decay, noise_seeds=noise)


def _member_args(kw: dict, index: list[int]) -> dict:
    """The training arguments of :func:`train_at_curvature_rates` for the members ``index`` only."""
    teacher, lam, info, noise = kw["teacher"], kw["lam"], kw["member_info"], kw["fresh_noise"]
    if teacher is not None and getattr(teacher.model, "members", None) is not None:  # one teacher per member
        transform = {k: (t[index] if t.dim() == 3 else t) for k, t in teacher.transform.items()}
        teacher = FrozenTeacher(select_members(teacher.model, index), transform, teacher.source, teacher.views,
                                teacher.chunk)
    return {**kw, "teacher": teacher,
            "lam": [lam[e] for e in index] if isinstance(lam, Sequence) else lam,
            "eval_sets": None if kw["eval_sets"] is None else {k: _rows_of(v, index)
                                                               for k, v in kw["eval_sets"].items()},
            "member_info": None if info is None else {k: [v[e] for e in index] for k, v in info.items()},
            "fresh_noise": [noise[e] for e in index] if isinstance(noise, Sequence) else noise}


def relu_task(d: int, units: int, sigma: float, rng: Stream | int, unit_variance: bool = False) -> Task:
    """Isotropic Gaussian inputs in ``R^d`` and a random two-layer ReLU target with ``units`` units (scaled to unit
    variance with ``unit_variance``, :func:`stlearn.data.relu_target`).

    The target is drawn from ``rng.child("target")`` (``rng`` is the chapter's root stream).
    """
    target = relu_target(d, units, 1, rng=as_stream(rng).child("target"), unit_variance=unit_variance)
    return Task(gaussian_inputs(d), target, sigma=sigma)


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


def run_sets(task: Task, n: int, streams: Sequence[Stream], label_noise: bool = True, device=None,
             views: int = 1) -> Samples:
    """One set of ``n`` samples per member (each with ``views`` noisy copies), stacked ``(E, views n, .)``;
    members with the same stream share one draw."""
    unique = list(dict.fromkeys(streams))
    drawn = [draw(task, n, s, label_noise=label_noise, device=device, views=views) for s in unique]
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


@dataclass(frozen=True)
class Students:
    """How a nonlinear chapter's runs train and are scored: one ensemble member per run, on sets of its own.

    Run ``k`` trains on ``rng.child("student_data", k, *index)`` (``index``: an axis whose training sets differ,
    such as the sample size), ``views`` fixed noisy copies of each clean input (:meth:`stlearn.data.Task.sample`;
    nothing draws more), is stopped and selected on ``rng.child("validation", k)`` and scored on
    ``rng.child("test", k)`` (no label noise); its fresh noise, under noise augmentation, comes from
    ``rng.child("noise", k, *index)``, its own whichever runs share its ensemble. Every member trains at its own
    curvature rate (:func:`train_at_curvature_rates`) with its own lam and weight decay. The one home of what
    the chapters' ``execute`` functions (:func:`stlearn.study.run_study`) share.
    """

    task: Task
    n_train: int
    n_val: int
    n_test: int
    config: TrainConfig
    rng: Stream
    device: object = None
    rate_fraction: float = RATE_FRACTION
    index: tuple[int, ...] = ()
    views: int = 1  # fixed noisy copies of each clean training input (:meth:`stlearn.data.Task.sample`)

    def training_sets(self, seeds: Sequence[int]) -> Samples:
        return run_sets(self.task, self.n_train, [self.rng.child("student_data", k, *self.index) for k in seeds],
                        device=self.device, views=self.views)

    def eval_sets(self, seeds: Sequence[int]) -> dict[str, Samples]:
        test = run_sets(self.task, self.n_test, [self.rng.child("test", k) for k in seeds], label_noise=False,
                        device=self.device)
        return {"test": test, "val": validation_samples(self.task, self.n_val, self.rng, seeds, self.device)}

    def network(self, width: int, seeds: Sequence[int]) -> MLP:
        """Fresh students of width ``width``, member ``e`` from ``rng.child("student_init", seeds[e])``."""
        return MLP([self.task.d, width, self.task.d_out], members=len(seeds), device=self.device,
                   rng=[self.rng.child("student_init", k) for k in seeds])

    def train(self, model, runs: Sequence, *, teacher: FrozenTeacher | None = None, layers: Sequence[str] = (),
              data: Samples | None = None, member_info: dict | None = None) -> TrainResult:
        """Train ``model`` (member ``e``: the run ``runs[e]``, whose ``seed``, ``lam``, ``weight_decay`` and
        ``fresh_noise`` it reads) on the runs' training sets (or ``data``), logging their eval sets."""
        seeds = [int(m.seed) for m in runs]
        noise = [getattr(m, "fresh_noise", None) for m in runs]
        if len({v is None for v in noise}) > 1:
            raise ParameterError("runs must all see fixed noisy inputs or all fresh noise (one ensemble each)")
        config = replace(self.config, weight_decay=tuple(float(m.weight_decay) for m in runs),
                         noise_seeds=tuple(self.rng.child("noise", k, *self.index) for k in seeds))
        return train_at_curvature_rates(model, self.training_sets(seeds) if data is None else data, config,
                                        self.rate_fraction, teacher=teacher, lam=[float(m.lam) for m in runs],
                                        layers=list(layers), eval_sets=self.eval_sets(seeds), member_info=member_info,
                                        fresh_noise=None if noise[0] is None else noise)

    def measure(self, net, seeds: Sequence[int]) -> pd.DataFrame:
        """The rows of a measured method (the teacher as it is): :func:`teacher_rows` on the runs' sets."""
        return teacher_rows(net, self.task, seeds, self.n_val, self.n_test, self.rng, self.device)
