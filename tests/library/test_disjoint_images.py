"""Disjoint sets and independent role streams in the real-data experiments (stlearn.experiments.classification).

Run ``k`` draws its own split of the fixed dataset (``rng.child("split", k)``): within a run the
training, validation and test inputs are disjoint, while two runs' splits overlap by design (each is
audited as its own split). By the paper's design a run's teachers train on the clean versions of that
run's training inputs, so their inputs lie inside the run's training set and never in its validation
or test set.
"""

from __future__ import annotations

import pytest
import torch

from stlearn import streams, study
from stlearn.experiments import classification as cl
from stlearn.streams import Stream
from stlearn.train import TrainConfig

N_TRAIN, N_VAL = 60, 40
SEEDS = [0, 2]


def rows(x: torch.Tensor) -> set[bytes]:
    """The rows of ``x`` (n, .) as hashable bytes (the datasets hold no duplicate inputs)."""
    x = x.detach().to("cpu", torch.float64).reshape(x.shape[0], -1)
    return {r.numpy().tobytes() for r in x}


@pytest.fixture
def teacher_inputs(monkeypatch):
    """The clean inputs (per member) every teacher trained by cl.fit_teachers saw, in order."""
    seen: list[torch.Tensor] = []
    train = cl.train

    def spy(model, data, *args, **kwargs):
        if kwargs.get("teacher") is None and torch.equal(data.clean, data.noisy):  # a teacher's training
            seen.append(data.clean)
        return train(model, data, *args, **kwargs)

    monkeypatch.setattr(cl, "train", spy)
    return seen


def _config(steps=2):
    return TrainConfig(steps=steps, lr=0.01, optimizer="adam", task="ce", batch_size=20, log_points=2,
                       progress=False)


@pytest.mark.parametrize("dataset, inputs", [("digits", 64), ("mnist1d", 40)])
def test_disjoint_sets_of_a_study_run(dataset, inputs, teacher_inputs):
    """The sets of a whole (tiny) run of every method of the real-data chapters on the study runner."""
    streams.audit()
    rng = Stream(3)
    factory = cl.mlp_factory(inputs, [8])
    data = cl.run_splits(dataset, N_TRAIN, N_VAL, 0.3, rng, SEEDS)
    grids = cl.Grids([0.0, 1.0], "h1", [0.0, 0.01], [1.0, 2.0], [0.5], [4.0], [4, 8],
                     ["untrained", "brief"])
    out = cl.run_architecture(factory, data, rng, SEEDS, 0.3, grids, [0, 1, 2], _config(), _config(1))
    names = {m.name for m in cl.methods(grids, 0.3)}
    assert set(out.selected.seed) == set(SEEDS) and set(out.selected.method) == names
    assert set(study.SIMPLE_SAME_INFORMATION) - names == {"output distillation"}  # every family-1 candidate runs
    assert len(out.result.comparisons) == 5 and out.result.budget == 2
    assert "feature_weight" in out.result.history  # lam on the relative scale
    assert streams.assert_disjoint() == 3 * len(SEEDS)  # a split (train, validation, test) per run

    assert len(teacher_inputs) == 2  # the staged training of the teachers (levels 1 and 2)
    for i, _ in enumerate(SEEDS):
        train, val, test = (rows(getattr(data, part).clean[i]) for part in ("train", "val", "test"))
        assert not train & val and not train & test and not val & test
        for seen in teacher_inputs:
            assert rows(seen[i]) == train, "run k's teacher trains on run k's clean training inputs, by design"


def test_stream_roles_are_independent():
    rng = Stream(0)
    a = cl.run_splits("digits", N_TRAIN, N_VAL, 0.3, rng, [0, 1])
    b = cl.run_splits("digits", N_TRAIN, N_VAL, 0.3, rng, [0, 5])  # run 1 replaced by run 5
    c = cl.run_splits("digits", N_TRAIN, N_VAL, 0.6, rng, [4, 0])  # another noise level, run 0 second
    for part in ("train", "val", "test"):
        pa, pb, pc = getattr(a, part), getattr(b, part), getattr(c, part)
        assert torch.equal(pa.clean[0], pb.clean[0]) and torch.equal(pa.clean[0], pc.clean[1])  # run 0's split
        assert torch.equal(pa.noisy[0], pb.noisy[0])
        assert not torch.equal(pa.clean[1], pb.clean[1])  # another run, another split
        assert torch.allclose(2 * (pa.noisy[0] - pa.clean[0]), pc.noisy[1] - pc.clean[1], atol=1e-6)  # same e
    # the parts draw their noise from their own streams
    assert not torch.allclose(a.train.noisy[0, :N_VAL] - a.train.clean[0, :N_VAL], a.val.noisy[0] - a.val.clean[0])

    # teachers: run k's teacher init depends only on k, and differs from the students' inits
    factory = cl.mlp_factory(64, [8])
    t1 = cl.fit_teachers(factory, a, rng, [0, 1], [0], _config(1))[0]
    t2 = cl.fit_teachers(factory, b, rng, [0, 5], [0], _config(1))[0]
    w1, w2 = next(t1.parameters()), next(t2.parameters())
    assert torch.equal(w1[0], w2[0]) and not torch.equal(w1[1], w2[1])
    student = factory(members=2, rng=[rng.child("student_init", k) for k in (0, 1)])
    assert not torch.allclose(next(student.parameters()), w1, atol=1e-3)


def test_knowledge_levels_continue_one_training():
    """Level j has trained teacher_steps[j] steps: level 0 is the init, and the levels differ."""
    rng = Stream(1)
    data = cl.run_splits("digits", N_TRAIN, N_VAL, 0.3, rng, [0, 1])
    factory = cl.cnn_factory((1, 8, 8), [4, 4], 8)
    levels = cl.fit_teachers(factory, data, rng, [0, 1], [0, 0, 3], _config(1))
    init = factory(members=2, rng=[rng.child("teacher_init", k, 0) for k in (0, 1)])
    for a, b in zip(levels[0].parameters(), init.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(levels[1].parameters(), levels[0].parameters()):
        assert torch.equal(a, b)  # zero more steps: the same teacher
    assert not torch.equal(next(levels[2].parameters()), next(levels[0].parameters()))
    with pytest.raises(cl.ParameterError, match="teacher_steps"):
        cl.fit_teachers(factory, data, rng, [0, 1], [5, 2], _config(1))
