"""The deep-linear chapters' helpers draw every set from its own role stream.

Teachers', students', validation, test and reference sets never share an input
(the audit of :mod:`stlearn.streams`), sets of two sample sizes are independent
draws (not one a prefix of the other), and changing one role's index leaves the
other roles' draws unchanged (``stlearn.experiments.zero_loss``,
``linear_coincide``, ``linear_early_stopping``, ``linear_teacher_knowledge``,
``linear_decomposition`` and ``linear_common``).
"""

from __future__ import annotations

import numpy as np
import torch

import stlearn as st
from stlearn import streams
from stlearn.data import random_orthonormal
from stlearn.experiments import linear_coincide as lc
from stlearn.experiments import linear_decomposition as ld
from stlearn.experiments import linear_early_stopping as les
from stlearn.experiments import linear_teacher_knowledge as ltk
from stlearn.experiments import zero_loss as zl
from stlearn.experiments.linear_common import TILT, WIDEN, member_samples, target_factors, tilted, widened

CONFIG = st.TrainConfig(steps=6, lr=0.02, momentum=0.9, log_points=3, progress=False)
DESCENT = zl.Descent(progress=False)


def _roles(log: streams.DrawLog) -> dict[str, np.ndarray]:
    """The recorded sets by stream name (``seed 0 / student_data[1]`` ...)."""
    return {name: ids for name, ids in log.sets.values()}


def _assert_pairwise_disjoint(log: streams.DrawLog, expected: list[str]) -> None:
    """Every expected set was drawn, nothing else was, and no two of them share an input."""
    sets = _roles(log)
    assert sorted(sets) == sorted(set(expected)), f"drawn {sorted(sets)}; expected {sorted(set(expected))}"
    names = sorted(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = np.intersect1d(sets[a], sets[b]).size
            assert shared == 0, f"{a} and {b} share {shared} inputs"
    assert streams.assert_disjoint() == len(names)


def _linear_task(rng: st.Stream, d: int, d_out: int, rank: int | None = None, input_rank: int | None = None,
                 sigma: float = 0.5, label_noise: float = 0.0) -> st.Task:
    inputs = st.gaussian_inputs(d, rank=input_rank, rng=rng.child("task"))
    return st.Task(inputs, st.linear_target(inputs, d_out, rank=rank, rng=rng.child("target")), sigma=sigma,
                   label_noise=label_noise)


# --------------------------------------------------------------------------- disjoint sets, chapter by chapter
def test_disjoint_zero_loss_teacher_students_and_tests():
    rng = st.Stream(2)  # the seed whose student set was a prefix of the teacher's set before the streams
    task = _linear_task(rng, 8, 2, input_rank=3)
    log = streams.audit()
    teachers = zl.clean_teachers(task, 5, [2], 12, rng, DESCENT)
    summary, _ = zl.interpolation_sweep(task, 4, 7, 5, [2], [0.0, 1.0], [0.1], rng, [0, 1], teachers, DESCENT)
    _assert_pairwise_disjoint(log, ["seed 2 / teacher_data[0]", "seed 2 / student_data[0]",
                                    "seed 2 / student_data[1]", "seed 2 / test[0]", "seed 2 / test[1]"])
    assert sorted(summary.seed.unique()) == [0, 1]


def test_disjoint_coincide_sizes_are_independent_draws():
    rng = st.Stream(0)
    task = _linear_task(rng, 6, 3, rank=1, label_noise=0.5)
    log = streams.audit()
    runs = lc.coincidence_sweep(task, [10, 4], [0.0, 1.0], rng, [0, 1], 0.3, 0.1, tol=1e-6, loss_tol=1e-9,
                                max_steps=50)
    # clean- and noisy-label cases of one run share their inputs: one set per (run, size)
    _assert_pairwise_disjoint(log, [f"seed 0 / student_data[{k}, {n}]" for k in (0, 1) for n in (4, 10)])
    assert set(runs.regime) == {"over", "under"}


def test_disjoint_early_stopping_students_tests_and_reference():
    rng = st.Stream(1)
    task = _linear_task(rng, 8, 2, input_rank=4)
    log = streams.audit()
    history, members, closed = les.path_sweep(task, 5, 6, 7, [0.25, 1.0], [0.0, 1.0], rng, [0, 1], 10, 4, 0.5, 0.01,
                                              max_steps=10)
    check = les.feature_path_check(task.with_noise(1.0), 5, rng, 5)
    # the noise levels of one run share its inputs (only the noise differs): one set per run and role
    _assert_pairwise_disjoint(log, ["seed 1 / student_data[0]", "seed 1 / student_data[1]", "seed 1 / validation[0]",
                                    "seed 1 / validation[1]", "seed 1 / test[0]", "seed 1 / test[1]",
                                    "seed 1 / reference[0]"])
    assert len(members) == 8 and set(closed.seed) == {0, 1} and check["gap_paths"] < 1e-8
    assert history.seed.isin([0, 1]).all()


def test_disjoint_teacher_knowledge_teachers_students_and_reference():
    rng = st.Stream(0)
    task = _linear_task(rng, 4, 3, rank=1, label_noise=1.0)
    log = streams.audit()
    grid = ltk.knowledge_grid(task, 1, [7, 10], [4, 8], rng, [0, 1], [0.5, 1.0])
    base = ltk.base_errors(task, 7, rng, 3)
    nets = ltk.trained_check(task, 1, 7, 4, [0.0, 1.0], rng, [0, 1], tol=1e-6, max_steps=50)
    path = ltk.lam_path(task, 1, [7], 4, [0.0, 1.0, float("inf")], rng, [0, 1], 5)
    expected = ([f"seed 0 / teacher_data[{k}, {n}]" for k in (0, 1) for n in (4, 8)]
                + [f"seed 0 / student_data[{k}, {n}]" for k in (0, 1) for n in (7, 10)]
                + [f"seed 0 / reference[{j}, 7]" for j in range(3)]
                + [f"seed 0 / validation[{k}, 7]" for k in (0, 1)])
    _assert_pairwise_disjoint(log, expected)  # the networks and the path reuse the grid's teacher and student sets
    assert len(grid) == 2 * 2 * 2 * 2 and base.shape == (3,) and len(nets) == 4 and len(path) == 6


def test_disjoint_decomposition_network_and_closed_form_runs():
    rng = st.Stream(4)
    task = _linear_task(rng, 6, 3, rank=1, label_noise=1.0)
    log = streams.audit()
    gap = ld.rotation_check(task, 8, rng, [0, 1], 1.0, 10, 0.5, 0.9)
    mixed = ld.mixing_sweep(task, 8, [1.0, 3.0], [0.0, 1.0], rng, [0, 1], 10, 0.5, 0.9)
    content = ld.content_sweep(task, [9, 12], [0, 2, 5], [0.0, 0.1], rng, [0, 1])
    nets = ld.content_networks(task, 8, [0, 2], [0.0, 1.0], rng, [0, 1], 10, 0.5, 0.9)
    expected = (["seed 4 / student_data[0]", "seed 4 / student_data[1]"]  # the three network experiments
                + [f"seed 4 / student_data[{k}, {n}]" for k in (0, 1) for n in (9, 12)])
    _assert_pairwise_disjoint(log, expected)
    assert gap < 1e-8 and len(mixed) == 8 and len(content) == 2 * 3 * 2 * 2 and len(nets) == 8


# --------------------------------------------------------------------------- one role's index, the others unchanged
def test_stream_member_samples_depend_on_their_own_stream_only():
    rng = st.Stream(0)
    task = _linear_task(rng, 5, 2, input_rank=3, sigma=0.3, label_noise=0.1)
    a = member_samples([task, task.with_noise(1.0)], 6, [rng.child("student_data", 0), rng.child("student_data", 1)])
    b = member_samples([task, task], 6, [rng.child("student_data", 0), rng.child("student_data", 2)])
    assert torch.equal(a.clean[0], b.clean[0]) and torch.equal(a.noisy[0], b.noisy[0]) and torch.equal(a.y[0], b.y[0])
    assert torch.equal(a.clean[1], st.draw(task, 6, rng.child("student_data", 1), dtype=torch.float64).clean)
    assert not torch.equal(a.clean[1], b.clean[1])
    test = member_samples([task], 6, [rng.child("test", 0)], label_noise=False)
    assert torch.allclose(test.y[0], task.target(test.clean[0]))  # test targets carry no label noise


def test_stream_teacher_directions_tilt_and_widen_independently():
    rng = st.Stream(0)
    w_star = _linear_task(rng, 6, 3, rank=2).target.weight
    _, b = target_factors(w_star)
    tilt = tilted(b, 0.3, rng.child("direction", 0, TILT))
    wide = widened(tilt, 4, rng.child("direction", 0, WIDEN))
    assert torch.equal(wide[:2], tilt)  # widening draws from its own stream: the tilt is kept
    assert torch.allclose(wide @ wide.T, torch.eye(6, dtype=torch.float64), atol=1e-12)
    assert not torch.allclose(tilted(b, 0.3, rng.child("direction", 1, TILT)), tilt)  # teacher 1: its own tilt
    narrow, _ = lc.teacher_weights(lc.CASES[2], w_star, 0.3, rng, 0)  # imperfect teacher 0
    full, _ = lc.teacher_weights(lc.CASES[4], w_star, 0.3, rng, 0)    # imperfect, wide teacher 0
    assert torch.equal(narrow, tilt) and torch.equal(full, wide)
    # run 0's re-mixings share their rotations: the condition number changes the singular values only
    u, v = (random_orthonormal(3, 3, rng.child("rotation", 0).child("rotation", i)) for i in (0, 1))
    for condition in (1.0, 10.0):
        core = u.T @ ld.mixing(3, condition, rng.child("rotation", 0)) @ v
        assert torch.allclose(core, torch.diag(torch.diagonal(core)), atol=1e-12)
        assert abs(float(torch.diagonal(core).max() / torch.diagonal(core).min()) - condition) < 1e-9


def test_stream_runs_are_unchanged_by_other_runs_and_roles():
    rng = st.Stream(0)
    task = _linear_task(rng, 8, 2, input_rank=3)
    teachers = zl.clean_teachers(task, 5, [2], 12, rng, DESCENT)
    other = zl.clean_teachers(task, 5, [2], 20, rng, DESCENT)  # another teacher: more teacher data
    args = (task, 4, 7, 5, [2], [0.0, 1.0], [0.1], rng)
    both, _ = zl.interpolation_sweep(*args, [0, 1], teachers, DESCENT)
    alone, _ = zl.interpolation_sweep(*args, [1], other, DESCENT)
    cols = ["distance", "test_error_min_norm"]
    base_both = both[(both.seed == 1) & (both.lam == 0)][cols].to_numpy()
    base_alone = alone[alone.lam == 0][cols].to_numpy()
    # run 1's data, test set and init do not depend on run 0 nor on the teacher: its base run is the same
    assert np.allclose(base_both, base_alone, rtol=1e-10)

    task_k = _linear_task(rng, 4, 3, rank=1, label_noise=1.0)
    q0, _ = ltk.fitted_teacher(task_k, 1, 8, rng.child("teacher_data", 0, 8))
    q1, _ = ltk.fitted_teacher(task_k, 1, 8, rng.child("teacher_data", 1, 8))
    students = [rng.child("student_data", k, 7) for k in (0, 1)]
    base_a, st_a = ltk.errors(task_k, [q0, q0], 7, students)
    base_b, st_b = ltk.errors(task_k, [q0, q1], 7, students)
    assert np.array_equal(base_a, base_b) and st_a[0] == st_b[0] and st_a[1] != st_b[1]


def test_disjoint_yardstick_validation_sets():
    """The yardstick refits each run's own training set and tunes on a validation set of its own."""
    rng = st.Stream(4)
    task = _linear_task(rng, 8, 2, input_rank=3, label_noise=0.3)
    log = streams.audit()
    ridge = zl.ridge_yardstick(task, 5, 6, 2, rng, [0, 1], budget=4)
    _assert_pairwise_disjoint(log, ["seed 4 / student_data[0]", "seed 4 / student_data[1]",
                                    "seed 4 / validation[0]", "seed 4 / validation[1]"])
    assert list(ridge.seed) == [0, 1] and (ridge.ridge_val >= 0).all()
