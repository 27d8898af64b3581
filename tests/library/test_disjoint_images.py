"""Disjoint sets and independent role streams in the real-image experiments (stlearn.experiments.digits).

The split of a fixed dataset is drawn once (``rng.child("split")``): every run shares its training,
validation and test images, and these three parts are disjoint. By the paper's design a teacher trains
on the clean versions of the students' training images (a weaker one on a stratified subset of them), so
its images lie inside the students' training set and never in a validation or test set.
"""

from __future__ import annotations

import pytest
import torch

from stlearn import streams
from stlearn.experiments import digits as dg
from stlearn.streams import Stream

N_TRAIN, N_VAL = 60, 40
SEEDS = [0, 2]


def rows(x: torch.Tensor) -> set[bytes]:
    """The rows of ``x`` (n, .) as hashable bytes (the datasets hold no duplicate inputs)."""
    x = x.detach().to("cpu", torch.float64).reshape(x.shape[0], -1)
    return {r.numpy().tobytes() for r in x}


@pytest.fixture
def teacher_inputs(monkeypatch):
    """The clean inputs every teacher trained by dg.fit_teacher saw, in order."""
    seen: list[torch.Tensor] = []
    train = dg.train

    def spy(model, data, *args, **kwargs):
        if kwargs.get("teacher") is None:  # a teacher's training (students train with a teacher)
            seen.append(data.clean)
        return train(model, data, *args, **kwargs)

    monkeypatch.setattr(dg, "train", spy)
    return seen


@pytest.mark.parametrize("dataset, students", [("digits", True), ("mnist1d", False)])
def test_disjoint_sets_of_a_chapter_run(dataset, students, teacher_inputs):
    """The sets drawn by the helpers the chapters call (students trained on digits only: the same code)."""
    streams.audit()
    rng = Stream(3)
    factory = dg.mlp_factory([8], dg.INPUTS[dataset])
    clean = dg.clean_split(N_TRAIN, N_VAL, rng, dataset=dataset)
    teachers = [dg.fit_teacher(factory, clean.train, dg.adam(2, 0.01), rng, 0)]
    teachers += [dg.fit_teacher(factory, clean.train, dg.adam(2, 0.01), rng, j, n_images=n)
                 for j, n in enumerate([20, 30], start=1)]
    data = dg.noisy_data(N_TRAIN, N_VAL, 0.3, rng, SEEDS, dataset=dataset)
    if students:
        config = dg.adam(2, 0.01, log_points=2)
        runs = dg.compare_methods({"MLP": factory}, {"MLP": teachers[0]}, [0.3], rng, SEEDS, 0.1,
                                  {"MLP": ["h1"]}, 0.5, 4.0, config, N_TRAIN, N_VAL, dataset=dataset)
        assert set(runs.seed) == set(SEEDS) and set(runs.method) == {"base", "ST", "KD"}
        dg.st_variants(factory, data, {"weak": (teachers[1], ["h1"])}, rng, SEEDS, 0.1, config)
    assert streams.assert_disjoint() == 3  # one split (train, validation, test), shared by every run

    assert [len(t) for t in teacher_inputs] == [N_TRAIN, 20, 30]
    assert not rows(teacher_inputs[1]) <= rows(teacher_inputs[2])  # each weaker teacher draws its own subset
    for member, _ in enumerate(SEEDS):
        train, val, test = (rows(getattr(data, part).clean[member]) for part in ("train", "val", "test"))
        assert (len(train), len(val)) == (N_TRAIN, N_VAL)
        assert not train & val and not train & test and not val & test
        assert train == rows(clean.train.clean)  # the clean split is the runs' split
        for seen in teacher_inputs:
            teacher = rows(seen)
            assert teacher <= train, "a teacher trains on the students' clean training images, by design"
            assert not teacher & val and not teacher & test


def test_stream_roles_are_independent():
    rng = Stream(0)
    a = dg.noisy_data(N_TRAIN, N_VAL, 0.3, rng, [0, 1])
    b = dg.noisy_data(N_TRAIN, N_VAL, 0.3, rng, [0, 5])  # run 1 replaced by run 5: run 0 and the split unchanged
    c = dg.noisy_data(N_TRAIN, N_VAL, 0.6, rng, [4, 0])  # another noise level, run 0 second
    for part in ("train", "val", "test"):
        pa, pb, pc = getattr(a, part), getattr(b, part), getattr(c, part)
        assert torch.equal(pa.clean[0], pb.clean[1]) and torch.equal(pa.y[0], pc.y[1])  # one split
        assert torch.equal(pa.noisy[0], pb.noisy[0])
        assert not torch.equal(pa.noisy[1], pb.noisy[1])
        assert torch.allclose(2 * (pa.noisy[0] - pa.clean[0]), pc.noisy[1] - pc.clean[1], atol=1e-6)  # same e
    # the parts draw their noise from their own streams
    assert not torch.allclose(a.train.noisy[0, :N_VAL] - a.train.clean[0, :N_VAL], a.val.noisy[0] - a.val.clean[0])
    # a different root changes the split
    other = dg.noisy_data(N_TRAIN, N_VAL, 0.3, Stream(1), [0])
    assert rows(other.train.clean[0]) != rows(a.train.clean[0])

    # student inits: run k's init depends only on k (paired across methods, lams and the other runs)
    factory = dg.mlp_factory([8])
    m1 = factory(members=2, rng=dg.student_inits(rng, [0, 1]))
    m2 = factory(members=2, rng=dg.student_inits(rng, [2, 0]))
    weights = [(p1, p2) for (name, p1), p2 in zip(m1.named_parameters(), m2.parameters()) if "weight" in name]
    assert weights
    for p1, p2 in weights:  # (biases start at zero)
        assert torch.equal(p1[0], p2[1]) and not torch.equal(p1[1], p2[0])

    # teachers: teacher j's init and subset depend only on j; the students' streams are other roles
    clean = dg.clean_split(N_TRAIN, N_VAL, rng)
    sub1 = dg.subset(clean.train, 20, rng.child("teacher_data", 1))
    assert torch.equal(sub1.clean, dg.subset(clean.train, 20, rng.child("teacher_data", 1)).clean)
    assert rows(sub1.clean) != rows(dg.subset(clean.train, 20, rng.child("teacher_data", 2)).clean)
    t1 = dg.fit_teacher(factory, clean.train, dg.adam(1, 1e-9), rng, 1, n_images=20)
    t1_again = dg.fit_teacher(factory, clean.train, dg.adam(1, 1e-9), rng, 1, n_images=20)
    t2 = dg.fit_teacher(factory, clean.train, dg.adam(1, 1e-9), rng, 2, n_images=20)
    w1, w1_again, w2 = (next(t.model.parameters()) for t in (t1, t1_again, t2))
    assert torch.equal(w1, w1_again) and not torch.equal(w1, w2)
    student = factory(rng=rng.child("student_init", 1))
    assert not torch.allclose(next(student.parameters()), w1, atol=1e-3)
