"""The two mechanism chapters on the study runner draw every set from its own role stream.

Replaces ``test_disjoint_nonlinear.py::test_disjoint_decomposition_teachers_and_students`` (written for the
decomposition chapter's own training loop, which the study runner replaced), and adds the same audit for
the teacher-knowledge chapter's conditions.
"""

from __future__ import annotations

import numpy as np

import stlearn as st
from stlearn import streams
from stlearn.experiments import nonlinear as nl
from stlearn.experiments import nonlinear_decomposition as nd
from stlearn.experiments import nonlinear_teacher_knowledge as tk

D, UNITS, WIDTH = 4, 3, 6
N_TRAIN, N_TEST, N_VAL, N_TEACHER = 20, 30, 10, 40
CONFIG = st.TrainConfig(steps=8, lr=0.05, momentum=0.9, log_points=4, progress=False, feature_scale="relative")


def _roles(log: streams.DrawLog) -> dict[str, np.ndarray]:
    return {name: ids for name, ids in log.sets.values()}


def _assert_pairwise_disjoint(sets: dict[str, np.ndarray], expected: list[str]) -> None:
    missing = [name for name in expected if name not in sets]
    assert not missing, f"sets not drawn: {missing}; drawn: {sorted(sets)}"
    names = sorted(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = np.intersect1d(sets[a], sets[b]).size
            assert shared == 0, f"{a} and {b} share {shared} inputs"


def _run_names(root: str, runs, data_index=()) -> list[str]:
    extra = "".join(f", {i}" for i in data_index)
    return ([f"{root} / student_data[{k}{extra}]" for k in runs] + [f"{root} / validation[{k}]" for k in runs]
            + [f"{root} / test[{k}]" for k in runs])


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
    result = nd.run_students(task, teachers, plan, WIDTH, N_TRAIN, N_VAL, N_TEST, CONFIG, rng)
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
                         N_VAL, N_TEST, CONFIG, rng)
    streams.assert_disjoint()
    levels = range(len(teachers.levels))
    expected = [f"seed 0 / teacher_data[{k}, {j}]" for k in (0, 1) for j in levels if j > 0]
    expected += [*_run_names("seed 0", [0, 1], (N_TRAIN,)), *_run_names("seed 0", [0, 1], (2 * N_TRAIN,))]
    _assert_pairwise_disjoint(_roles(log), expected)
    assert len(log.sets) == len(set(expected))
    assert set(results) == {(n, s) for n in (N_TRAIN, 2 * N_TRAIN) for s in (0.5, 1.0)}
