"""Chapter "When the minimizers coincide": ST and base students trained to convergence.

Five cases, each a (teacher, labels) pair built by hand:

* bottleneck teachers (hidden width ``r`` = rank of the target): perfect with
  clean labels, perfect with noisy labels, imperfect (features tilted away from
  the target's row space) with clean labels;
* wide teachers (hidden width ``d``, features an orthonormal basis of ``R^d``
  whose first ``r`` rows are the bottleneck teacher's): noisy labels, and
  imperfect with clean labels.

The student has the teacher's architecture. Every (case, lam, seed) of one
hidden width is one member of an ensemble, trained by full-batch gradient descent to a
gradient-norm criterion; each member is compared with the closed-form base minimizer and the
closed-form ST minimizer of its own training set. Run ``k`` at sample size
``N`` draws its training set from ``rng.child("student_data", k, N)`` (the sets
of two sizes are independent, not one a prefix of the other) and its
initialization from ``rng.child("student_init", k, width)``; both are shared by
every case and ``lam`` (paired runs). The directions that tilt or widen teacher
``k``'s features come from ``rng.child("direction", k, TILT)`` and
``rng.child("direction", k, WIDEN)``. The yardstick (:func:`simple_estimators`) is fitted on the
same training sets and tuned on run ``k``'s validation set ``rng.child("validation", k, N)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm import tqdm

from .. import theory, theory_finite
from ..data import Task
from ..protocol import by_sign, interval
from ..stats import rounded_interval
from ..streams import Stream, as_stream
from .linear_common import (
    TILT,
    WIDEN,
    member_samples,
    relative_gain_table,
    ridge_penalties,
    stronger_simple,
    target_factors,
    tilted,
    tuned_ridge,
    widened,
)


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
FAILS = ("label noise", "imperfect teacher")  # the cases where (C) fails: ST moves the end point


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


def coincidence_sweep(task: Task, n_trains, lams, rng: Stream | int, seeds, angle: float, init_scale: float, *,
                      tol: float, loss_tol: float, max_steps: int) -> pd.DataFrame:
    """One row per (n_train, case, lam, seed): distances to the base and closed-form ST minimizers, the gap of (C).

    ``seeds`` are the run indices ``k`` (column ``seed``); every stream is a child of ``rng``. The
    students are trained by :func:`stlearn.theory_finite.gradient_descent` (curvature-set steps,
    stopped when the gradient norm has fallen by ``tol`` or the loss decreases by less than ``loss_tol``
    of its initial value per 1000 steps; ``converged`` records it); the closed form
    is :func:`stlearn.theory_finite.st_minimizer`. ``fit_to_closed`` compares fitted values on the
    training set (unique even when the map is not, for ``N <= d``).
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
                                   dtype=torch.float64)
        weights = [teacher_weights(c, w_star, angle, rng, k) for c, _, k in members]
        width = weights[0][0].shape[0]
        x_noisy, y = train_set.noisy, train_set.y
        feats = train_set.clean @ torch.stack([v for v, _ in weights]).transpose(-1, -2)
        lam_t = torch.tensor([l for _, l, _ in members], dtype=torch.float64)
        run = theory_finite.gradient_descent(x_noisy, feats, y, lam_t, width,
                                             [rng.child("student_init", k, width) for _, _, k in members],
                                             init_scale=init_scale, tol=tol, loss_tol=loss_tol,
                                             max_steps=max_steps)
        closed = theory_finite.st_minimizer(x_noisy, feats, y, lam_t)
        w_end = run.w2 @ run.w1
        w_base = theory.reduced_rank_regression(x_noisy, y, min(width, task.d_out))
        min_task = 0.5 * (x_noisy @ w_base.transpose(-1, -2) - y).pow(2).sum((-2, -1)) / n_train
        zero_task = 0.5 * y.pow(2).sum((-2, -1)) / n_train
        task_loss = 0.5 * (x_noisy @ w_end.transpose(-1, -2) - y).pow(2).sum((-2, -1)) / n_train
        gap = theory.coincidence_gap(x_noisy, feats, x_noisy @ w_base.transpose(-1, -2))
        w_two_stage = theory.two_stage_estimator(x_noisy, feats, y)
        fit, fit_closed = x_noisy @ w_end.transpose(-1, -2), x_noisy @ closed.end_to_end.transpose(-1, -2)
        cov = task.inputs.covariance()
        err = theory.linear_test_error(w_end, w_star, cov, task.sigma)
        err_base = theory.linear_test_error(w_base, w_star, cov, task.sigma)
        err_closed = theory.linear_test_error(closed.end_to_end, w_star, cov, task.sigma)
        for e, (case, lam, seed) in enumerate(members):
            rows.append({
                "n_train": n_train, "regime": "over" if n_train <= task.d else "under",
                "case": case.name, "wide": case.wide, "lam": lam, "seed": seed,
                "gap_C": float(gap[e]), "steps": int(run.steps[e]), "converged": bool(run.converged[e]),
                "distance": float((w_end[e] - w_base[e]).norm() / w_base[e].norm()),
                "distance_closed": float((w_end[e] - closed.end_to_end[e]).norm() / closed.end_to_end[e].norm()),
                "closed_to_base": float((closed.end_to_end[e] - w_base[e]).norm() / w_base[e].norm()),
                "fit_to_closed": float((fit[e] - fit_closed[e]).norm() / fit_closed[e].norm()),
                "distance_two_stage": float((w_two_stage[e] - w_base[e]).norm() / w_base[e].norm()),
                "excess_task": float((task_loss[e] - min_task[e]) / zero_task[e]),
                "test_error": float(err[e]), "test_error_base_min": float(err_base[e]),
                "test_error_closed": float(err_closed[e]),
            })
    return pd.DataFrame(rows)


def closed_form_path(task: Task, n_train: int, lams, rng: Stream | int, seeds, angle: float) -> pd.DataFrame:
    """The closed-form ST minimizer's relative distance to the base minimizer, per (case, lam, seed).

    Same training sets and teachers as :func:`coincidence_sweep` (no training): the curve that the
    trained students should lie on.
    """
    rng = as_stream(rng)
    w_star = task.target.weight
    clean = Task(task.inputs, task.target, task.sigma, 0.0)
    rows = []
    for case in CASES:
        data = member_samples([task if case.noisy_labels else clean] * len(seeds), n_train,
                              [rng.child("student_data", k, n_train) for k in seeds], dtype=torch.float64)
        weights = [teacher_weights(case, w_star, angle, rng, k) for k in seeds]
        feats = data.clean @ torch.stack([v for v, _ in weights]).transpose(-1, -2)
        width = weights[0][0].shape[0]
        w_base = theory.reduced_rank_regression(data.noisy, data.y, min(width, task.d_out))
        for lam in lams:
            w = theory_finite.st_minimizer(data.noisy, feats, data.y, float(lam)).end_to_end
            dist = (w - w_base).norm(dim=(-2, -1)) / w_base.norm(dim=(-2, -1))
            rows += [{"case": case.name, "lam": float(lam), "seed": k, "closed_to_base": float(dist[i])}
                     for i, k in enumerate(seeds)]
    return pd.DataFrame(rows)


def end_points(under: pd.DataFrame, holds_below: float = 1e-8) -> dict:
    """Where the trained under-parameterized students end, by whether (C) holds (``gap_C < holds_below``).

    ``base_max``: the base students' largest distance to the base minimizer; ``hold_by_lam``, ``hold_max``: the
    ST students' largest distance to it where (C) holds (by lambda, and over all); ``fail_min``: their smallest
    distance to it where (C) fails, by lambda; ``closed_max``: the ST students' largest distance to the
    closed-form ST minimizer; ``fail_ratio``: where (C) fails, the smallest ratio of the distance to the base
    minimizer over that to the ST minimizer; ``apart``: whether each student where (C) fails is told apart from
    the base minimizer (see :func:`check_end_points`).
    """
    positive = under[under.lam > 0]
    hold_by_lam = positive[positive.gap_C < holds_below].groupby("lam").distance.max()
    fails = positive[positive.gap_C >= holds_below]
    # where (C) fails, the ST minimizer is off the base minimizer by an amount that depends on lambda and the data
    # (below 1e-2 at lambda = 1 at some root seeds), so each trained student is told apart from the base minimizer
    # by comparison with its own distance to the closed-form ST minimizer, not by a fixed threshold
    apart = (fails.distance > 100 * fails.distance_closed) & (fails.closed_to_base > 1e-6)
    return {"base_max": under[under.lam == 0].distance.max(), "hold_by_lam": hold_by_lam,
            "hold_max": hold_by_lam.max(), "fail_min": fails.groupby("lam").distance.min(),
            "closed_max": positive.distance_closed.max(),
            "fail_ratio": (fails.distance / fails.distance_closed).min(), "apart": bool(apart.all())}


def check_end_points(ends: dict) -> None:
    """Raise AssertionError unless :func:`end_points` match the corollary: base and ST students at their
    closed-form minimizers, ST students at the base minimizer exactly where (C) holds."""
    assert ends["base_max"] < 1e-3, "gradient descent on the base loss did not reach the base minimizer"
    assert ends["closed_max"] < 1e-3, "a converged ST student is not at the closed-form ST minimizer"
    assert (ends["hold_by_lam"] < 1e-3).all() and ends["apart"], \
        "ST students under (C) are not at the base minimizer, or the others are"


def simple_estimators(task: Task, n_trains, rng: Stream | int, seeds, n_val: int, budget: int) -> pd.DataFrame:
    """The yardstick on each case's training sets: one row per (n_train, case, seed).

    Run ``k`` at ``N`` samples uses the sweep's training set (``rng.child("student_data", k, N)``, with the
    case's labels) and ``n_val`` validation samples of the same kind from ``rng.child("validation", k, N)``.
    ``ridge``/``ridge_val``: ridge tuned over ``budget`` penalties, 0 among them
    (:func:`~stlearn.experiments.linear_common.tuned_ridge`); ``rrr``/``rrr_val``: reduced-rank
    regression of rank ``h``, the student's width, where it is a bottleneck (``h < min(d, d_y)``; NaN
    otherwise) -- the base minimizer itself. ``simple`` is the test error of whichever of the two validates
    better in that run (ties go to reduced-rank regression), ``simple_method`` its name.
    """
    rng = as_stream(rng)
    w_star, cov = task.target.weight, task.inputs.covariance()
    clean = Task(task.inputs, task.target, task.sigma, 0.0)
    frames = []
    for n_train, case in itertools.product(n_trains, CASES):
        tasks = [task if case.noisy_labels else clean] * len(seeds)
        data = member_samples(tasks, n_train, [rng.child("student_data", k, n_train) for k in seeds],
                              dtype=torch.float64)
        val = member_samples(tasks, n_val, [rng.child("validation", k, n_train) for k in seeds], dtype=torch.float64)
        ridge_val, ridge = tuned_ridge(data, val, ridge_penalties(budget), w_star, cov, task.sigma)
        width = task.d if case.wide else target_factors(w_star)[1].shape[0]  # the teacher's, and the student's
        frames.append(pd.DataFrame({
            "n_train": n_train, "case": case.name, "seed": list(seeds), "ridge": ridge, "ridge_val": ridge_val,
            **stronger_simple(data, val, width, ridge, ridge_val, w_star, cov, task.sigma)}))
    return pd.concat(frames, ignore_index=True)


def against_simple(runs: pd.DataFrame, simple: pd.DataFrame) -> pd.DataFrame:
    """Per (case, lam), the trained students against the stronger simple estimator, paired by run.

    ``runs``: rows of :func:`coincidence_sweep` at one sample size; ``simple``: :func:`simple_estimators`.
    ``relative gain`` is ``(simple - student) / mean(simple)`` (> 0: the student is better), with its 95%
    interval over runs; ``ridge share`` the share of runs in which tuned ridge was the stronger simple estimator.
    """
    keyed = simple.set_index(["n_train", "case", "seed"])
    rows = []
    for (case, lam), g in runs.groupby(["case", "lam"], sort=False):
        ref = keyed.loc[list(zip(g.n_train, g.case, g.seed))]
        iv = interval((ref.simple.to_numpy() - g.test_error.to_numpy()) / ref.simple.mean())
        rows.append({"case": case, "lam": lam, "student": g.test_error.mean(), "simple": ref.simple.mean(),
                     "ridge share": float((ref.simple_method == "ridge").mean()), "relative gain": iv["gain"],
                     "relative gain_low": iv["low"], "relative gain_high": iv["high"]})
    return pd.DataFrame(rows)


def minimizer_change(under: pd.DataFrame, case: str, lam: float) -> dict[str, float]:
    """The ST minimizer's relative gain over the base minimizer of the same training set (``rel_gain``; above 0:
    ST is better) for ``case`` at ``lam``, in %: mean and 95% interval over runs, each rounded to the 1 decimal
    the book prints (no negative zero)."""
    iv = interval(under[(under.case == case) & (under.lam == lam)].rel_gain.to_numpy())
    return rounded_interval(iv, 1, scale=100)


def change_words(change: dict[str, float]) -> str:
    """What a :func:`minimizer_change` says, chosen by the sign of its interval."""
    return by_sign(change, "it helps (the ST minimizer is resolvably better than the base minimizer)",
                   "it hurts (the ST minimizer is resolvably worse than the base minimizer)",
                   "no resolvable difference from the base minimizer over these runs (the interval includes 0)")


SIMPLE_GAIN = "student vs simple, % (above 0: student better)"  # the yardstick column of simple_table


def simple_table(versus: pd.DataFrame) -> pd.DataFrame:
    """:func:`against_simple` for the reader: mean test errors, and the student's relative gain over the stronger
    simple estimator in %, signed, with its 95% interval (:func:`~.linear_common.relative_gain_table`)."""
    shown = versus.rename(columns={"student": "student's test error", "simple": "simple estimator's test error",
                                   "ridge share": "ridge chosen (share of runs)"})
    return relative_gain_table(shown, {"relative gain": SIMPLE_GAIN})
