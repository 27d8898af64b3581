"""Disjoint sets in a whole (tiny) run of every method of the real-data chapters on the study runner.

The study-runner form of ``test_disjoint_images.test_disjoint_sets_of_a_chapter_run``: within run ``k``
the training, validation and test inputs are disjoint, and run ``k``'s teachers train on the clean versions
of run ``k``'s training inputs only (by the paper's design), whichever group of methods trains with them.
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
