"""Clean teachers (stlearn.teachers): trained on clean inputs drawn from the teacher's own data stream, then frozen."""

import pytest
import torch

import stlearn as st
from stlearn import streams
from stlearn.teachers import clean_view, fit_clean_teacher

F64 = torch.float64
RNG = st.Stream(0)


@pytest.fixture
def audit_off(monkeypatch):
    monkeypatch.setattr(streams, "_LOG", None)


def _task():
    inputs = st.gaussian_inputs(6, rank=4, rng=RNG.child("task"))
    return st.Task(inputs, st.linear_target(inputs, 2, rng=RNG.child("target")), sigma=0.5, label_noise=0.1)


def test_a_teacher_trains_on_clean_inputs_of_its_own_stream_and_is_frozen(audit_off):
    task, config = _task(), st.TrainConfig(steps=50, lr=0.05, progress=False)
    log = streams.audit()
    teacher = fit_clean_teacher(st.DeepLinear([6, 5, 2], rng=RNG.child("teacher_init"), dtype=F64), task, 20,
                                RNG.child("teacher_data", 3), config)
    assert [name for name, _ in log.sets.values()] == [RNG.child("teacher_data", 3).name]
    assert all(not p.requires_grad for p in teacher.model.parameters())
    by_hand = st.DeepLinear([6, 5, 2], rng=RNG.child("teacher_init"), dtype=F64)
    st.train(by_hand, clean_view(st.draw(task, 20, RNG.child("teacher_data", 3), dtype=F64)), config=config)
    assert torch.equal(teacher.model.end_to_end(), by_hand.end_to_end())


def test_an_ensemble_of_teachers_takes_one_data_stream_per_member():
    task, config = _task(), st.TrainConfig(steps=30, lr=0.05, progress=False)
    data = RNG.children("teacher_data", 2)
    init = RNG.children("teacher_init", 2)
    teachers = fit_clean_teacher(st.DeepLinear([6, 5, 2], members=2, rng=init, dtype=F64), task, 20, data, config)
    for e in range(2):
        alone = fit_clean_teacher(st.DeepLinear([6, 5, 2], rng=init[e], dtype=F64), task, 20, data[e], config)
        torch.testing.assert_close(teachers.model.end_to_end()[e], alone.model.end_to_end(), rtol=1e-10, atol=1e-12)


def test_clean_view_replaces_the_noisy_inputs():
    s = st.draw(_task(), 5, RNG.child("student_data"))
    view = clean_view(s)
    assert view.noisy is s.clean and view.clean is s.clean and view.y is s.y
