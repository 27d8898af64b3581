"""The nonlinear chapters' helpers draw every set from its own role stream.

Teachers, students, validation and test sets never share an input (the audit of
:mod:`stlearn.streams`), and changing one role's index leaves the other roles'
draws unchanged (``stlearn.experiments.nonlinear``, and the decomposition and teacher-knowledge studies on
the study runner).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import stlearn as st
from stlearn import protocol, streams
from stlearn.experiments import nonlinear as nl
from stlearn.experiments import nonlinear_decomposition as nd
from stlearn.experiments import nonlinear_early_stopping as es
from stlearn.experiments import nonlinear_teacher_knowledge as tk

D, UNITS, WIDTH = 4, 3, 6
N_TRAIN, N_TEST, N_VAL, N_TEACHER = 20, 30, 10, 40
CONFIG = st.TrainConfig(steps=8, lr=0.05, momentum=0.9, log_points=4, progress=False)
RUNNER_CONFIG = dataclasses.replace(CONFIG, feature_scale="relative")  # the mechanism chapters' studies


def _roles(log: streams.DrawLog) -> dict[str, np.ndarray]:
    """The recorded sets by stream name (``seed 0 / student_data[1]`` ...)."""
    return {name: ids for name, ids in log.sets.values()}


def _assert_pairwise_disjoint(sets: dict[str, np.ndarray], expected: list[str]) -> None:
    missing = [name for name in expected if name not in sets]
    assert not missing, f"sets not drawn: {missing}; drawn: {sorted(sets)}"
    names = sorted(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = np.intersect1d(sets[a], sets[b]).size
            assert shared == 0, f"{a} and {b} share {shared} inputs"


def _train(task, teacher, lams, seeds, rng, index=(), n_train=N_TRAIN):
    """Runs (``lam``, ``k``) for every pair, one ensemble on :class:`~stlearn.experiments.nonlinear.Students`."""
    runs = [protocol.Run("ST", f"lam={lam:g}", k, lam=lam) for lam in lams for k in seeds]
    students = nl.Students(task, n_train, N_VAL, N_TEST, CONFIG, rng, index=tuple(index))
    model = students.network(WIDTH, [m.seed for m in runs])
    return students.train(model, runs, teacher=teacher, layers=["h1"],
                          member_info={"seed": [m.seed for m in runs]}).history


def _run_names(root: str, runs, data_index=()) -> list[str]:
    extra = "".join(f", {i}" for i in data_index)
    return ([f"{root} / student_data[{k}{extra}]" for k in runs] + [f"{root} / validation[{k}]" for k in runs]
            + [f"{root} / test[{k}]" for k in runs])


def test_disjoint_early_stopping_teacher_students_validation_test():
    rng = st.Stream(3)
    task = nl.relu_task(D, UNITS, 0.5, rng)
    log = streams.audit()
    teacher = nl.clean_teacher(task, WIDTH, N_TEACHER, rng, steps=5)
    reference = st.draw(task, N_TEST, rng.child("reference", 0), label_noise=False)
    history = _train(task, teacher, [0.0, 1.0], [0, 1, 2], rng)
    assert streams.assert_disjoint() == 1 + 1 + 3 * 3  # paired lam runs share their sets: counted once
    _assert_pairwise_disjoint(_roles(log), ["seed 3 / teacher_data[0]", "seed 3 / reference[0]",
                                            *_run_names("seed 3", range(3))])
    assert sorted(history.seed.unique()) == [0, 1, 2] and reference.n == N_TEST


def test_disjoint_early_stopping_protocol_methods():
    """Every method of the early-stopping chapter, on the study runner: the large teachers' sets are their own,
    the own-samples teachers train on exactly the students' training sets (the same set, counted once), nothing
    else is shared, and runs of equal knobs (base = ST at lam 0 = weight decay 0 ...) train once."""
    rng = st.Stream(1)
    task = nl.relu_task(D, UNITS, 0.5, rng)
    log = streams.audit()
    runs = (0, 1)
    nets = es.teachers(task, WIDTH, N_TEACHER, N_TRAIN, rng, runs, steps=3)
    plan = es.study([0.0, 1.0], [0.0, 0.1], [0.0, 1.0], [0.5, 1.0], 0.5, runs)
    setting = es.Setting(nl.Students(task, N_TRAIN, N_VAL, N_TEST, CONFIG, rng), nets, runs)
    result = es.run(setting, plan)
    es.continue_at_zero_lam(setting, result)
    assert streams.assert_disjoint() == 2 + 3 * 2  # teacher_data per run, and each run's train/val/test
    _assert_pairwise_disjoint(_roles(log), ["seed 1 / teacher_data[0]", "seed 1 / teacher_data[1]",
                                            *_run_names("seed 1", runs)])
    history = result.history
    assert set(result.table.method) == {m.name for m in plan.methods}
    fixed = [m for m in plan.runs() if es.group_of(m) == "fixed"]
    assert result.models["fixed"].members < len(fixed)  # runs of equal knobs train once
    base, st0 = (history[(history.method == m) & (history.config == c)].sort_values(["seed", "step"])
                 for m, c in (("base", "-"), ("ST", "lam=0")))
    np.testing.assert_array_equal(base.test_noisy.to_numpy(), st0.test_noisy.to_numpy())


def test_disjoint_teacher_knowledge_grid_over_sample_sizes():
    rng = st.Stream(0)
    task = nl.relu_task(D, UNITS, 0.0, rng)
    log = streams.audit()
    teachers = [nl.clean_teacher(task, WIDTH, n, rng, steps=5, k=k) for k, n in enumerate([15, 40])]
    for n_train in (N_TRAIN, 2 * N_TRAIN):  # the sizes share no input: each has its own student_data stream
        for sigma in (0.5, 1.0):             # the noise levels share their sets
            _train(task.with_noise(sigma), teachers[0], [0.0, 1.0], [0, 1], rng, (n_train,), n_train)
    streams.assert_disjoint()
    expected = ["seed 0 / teacher_data[0]", "seed 0 / teacher_data[1]",
                *_run_names("seed 0", [0, 1], (N_TRAIN,)), *_run_names("seed 0", [0, 1], (2 * N_TRAIN,))]
    _assert_pairwise_disjoint(_roles(log), expected)
    assert len(log.sets) == len(set(expected))  # validation and test sets drawn once per run index


def _teachers(rng, seeds, thetas=(0.0, 1.0), deep_steps=3):
    task = nl.relu_task(D, UNITS, 0.5, rng)
    clean_test = st.draw(task, N_TEST, rng.child("reference", 0), label_noise=False)
    x_fit = st.draw(task, 50, rng.child("reference", 1), label_noise=False).clean
    match = st.draw(task, N_TEST, rng.child("reference", 2), label_noise=False)
    teachers = nd.make_teachers(task, WIDTH, N_TEACHER, 5, rng, seeds, list(thetas), [2], deep_steps, x_fit,
                                clean_test, match)
    return task, teachers, x_fit


def test_stream_changing_one_run_index_leaves_the_other_runs_unchanged():
    rng = st.Stream(2)
    task = nl.relu_task(D, UNITS, 0.5, rng)
    teacher = nl.clean_teacher(task, WIDTH, N_TEACHER, rng, steps=5)
    a, b = (_train(task, teacher, [0.0, 1.0], runs, rng) for runs in ([0, 1], [0, 5]))
    cols = ["test_noisy", "val_noisy", "train_task"]
    run0 = [h[h.seed == 0].sort_values(["lam", "step"])[cols].to_numpy() for h in (a, b)]
    np.testing.assert_allclose(run0[0], run0[1], rtol=1e-5, atol=1e-7)
    assert not np.allclose(a[a.seed == 1][cols].to_numpy(), b[b.seed == 5][cols].to_numpy())


def test_stream_student_data_index_changes_only_the_training_set():
    rng = st.Stream(2)
    task = nl.relu_task(D, UNITS, 0.5, rng)
    teacher = nl.clean_teacher(task, WIDTH, N_TEACHER, rng, steps=5)
    a, b = (_train(task, teacher, [0.0, 1.0], [0, 1], rng, (i,)) for i in (0, 1))
    start = [h[h.step == 0].sort_values(["lam", "seed"])[["test_noisy", "val_noisy"]].to_numpy() for h in (a, b)]
    np.testing.assert_array_equal(start[0], start[1])  # same init, validation and test sets
    assert not np.allclose(a.train_task, b.train_task)  # other training sets


def test_stream_teacher_index_and_target_are_independent():
    rng = st.Stream(4)
    task = nl.relu_task(D, UNITS, 0.5, rng)
    assert torch.equal(task.target.w1, nl.relu_task(D, UNITS, 1.0, rng).target.w1)  # the target ignores sigma
    t0, t1 = (nl.clean_teacher(task, WIDTH, N_TEACHER, rng, steps=5, k=k).model for k in (0, 1))
    again = nl.clean_teacher(task, WIDTH, N_TEACHER, rng, steps=5, k=1).model
    assert not torch.equal(t0.layers[0].weight, t1.layers[0].weight)
    assert torch.equal(t1.layers[0].weight, again.layers[0].weight)


def test_stream_decomposition_teacher_k_does_not_depend_on_the_other_seeds():
    rng = st.Stream(5)
    _, both, _ = _teachers(rng, [0, 1])
    _, alone, _ = _teachers(rng, [1])
    for name in both.names:
        torch.testing.assert_close(both.transform[name, 1], alone.transform[name, 1], rtol=1e-5, atol=1e-6)
        w_both = st.member(both.models, both.index[name, 1]).layers[0].weight
        w_alone = st.member(alone.models, alone.index[name, 1]).layers[0].weight
        torch.testing.assert_close(w_both, w_alone, rtol=1e-5, atol=1e-6)
    assert both.pre_scale[1] == pytest.approx(alone.pre_scale[1], rel=1e-5)
    same_q = nd.rotation(WIDTH, 1.0, rng.child("rotation", 1))
    torch.testing.assert_close(same_q, both.transform["rot1", 1])  # one Q per run index, for every theta
    assert not torch.equal(both.transform["permuted units", 0], both.transform["permuted units", 1])


def test_disjoint_decomposition_teachers_and_students_on_the_runner():
    """Every method of the decomposition chapter (post-ReLU, pre-activation and connector students, weight
    decay, noise augmentation, the teacher as is): the teachers' sets are their own, each run's sets are
    shared by its members."""
    rng = st.Stream(1)
    log = streams.audit()
    task = nl.relu_task(D, UNITS, 0.5, rng)
    clean_test = st.draw(task, N_TEST, rng.child("reference", 0), label_noise=False)
    x_fit = st.draw(task, 50, rng.child("reference", 1), label_noise=False).clean
    match = st.draw(task, N_TEST, rng.child("reference", 2), label_noise=False)
    teachers = nd.make_teachers(task, WIDTH, N_TEACHER, 5, rng, [0, 1], [0.0, 1.0], [2], 3, x_fit, clean_test, match)
    plan = nd.the_study([0.0, 1.0], [0.0, 0.1], nd.st_methods(teachers, "rot1"), 0.5, [1.0, 1.5], [0, 1])
    result = nd.run_students(task, teachers, plan, WIDTH, N_TRAIN, N_VAL, N_TEST, RUNNER_CONFIG, rng)
    streams.assert_disjoint()
    # the shallow, deep and matched teachers of run k train on the same set, teacher_data[k]: one set each
    expected = ["seed 1 / reference[0]", "seed 1 / reference[1]", "seed 1 / reference[2]",
                "seed 1 / teacher_data[0]", "seed 1 / teacher_data[1]", *_run_names("seed 1", [0, 1])]
    _assert_pairwise_disjoint(_roles(log), expected)
    assert len(log.sets) == len(expected)
    assert set(result.table.method) == {m.name for m in plan.methods}


def test_disjoint_teacher_knowledge_conditions_on_the_runner():
    """Every teacher of every level trains on its own set; the sample sizes have their own student sets and
    the noise levels share them; each run's validation and test sets are drawn once."""
    rng = st.Stream(0)
    task = nl.relu_task(D, UNITS, 0.0, rng)
    log = streams.audit()
    teachers = tk.make_teachers(task, UNITS, WIDTH, [5, 20], 20, rng, [0, 1], steps=3)
    results = tk.run_all(task, teachers, [N_TRAIN, 2 * N_TRAIN], [0.5, 1.0], [0.0, 1.0], [0.0, 0.1], [1.0, 1.5],
                         N_VAL, N_TEST, RUNNER_CONFIG, rng)
    streams.assert_disjoint()
    levels = range(len(teachers.levels))
    expected = [f"seed 0 / teacher_data[{k}, {j}]" for k in (0, 1) for j in levels if j > 0]
    expected += [*_run_names("seed 0", [0, 1], (N_TRAIN,)), *_run_names("seed 0", [0, 1], (2 * N_TRAIN,))]
    _assert_pairwise_disjoint(_roles(log), expected)
    assert len(log.sets) == len(set(expected))
    assert set(results) == {(n, s) for n in (N_TRAIN, 2 * N_TRAIN) for s in (0.5, 1.0)}
