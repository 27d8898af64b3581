"""The shared classification code of the real-data chapters: grids, denoiser, per-member distillation."""

from __future__ import annotations

import pytest
import torch

from stlearn import protocol
from stlearn.data import Samples, randn
from stlearn.distill import train_distilled
from stlearn.experiments import classification as cl
from stlearn.losses import FrozenTeacher
from stlearn.streams import Stream
from stlearn.train import TrainConfig
from stlearn.validation import ParameterError

RNG = Stream(0)


def test_grids_have_equal_budgets():
    grids = cl.Grids([0.0, 0.3, 3.0], ["h1", "h2"], [0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [0.5, 0.9], [2.0, 6.0],
                     [1, 2, 3, 4, 5])
    assert grids.check() == 5
    grid = cl.method_grid(grids.lams, grids.layers, grids.decays, grids.aug_levels, grids.alphas,
                          grids.temperatures, 0.3, levels=["untrained"])
    import pandas as pd

    table = pd.DataFrame([{**g, "seed": 0, "val_error": 0.0, "test_error": 0.0} for g in grid])
    tuned = ["weight decay", "noise augmentation", "logit distillation", "ST", "ST, untrained teacher"]
    assert protocol.check_equal_budgets(table, tuned) == 5
    with pytest.raises(ParameterError, match="decays"):
        cl.check_grids([0.0, 1.0], ["h1"], [0.0], [1.0, 2.0], [0.5], [4.0], [1, 2])
    with pytest.raises(ParameterError, match="alphas"):
        cl.check_grids([0.0, 1.0], ["h1"], [0.0, 1.0], [1.0, 2.0], [0.5, 0.9], [4.0], [1, 2])
    with pytest.raises(ParameterError, match="lams"):
        cl.check_grids([0.3, 1.0], ["h1"], [0.0, 1.0], [1.0, 2.0], [0.5], [4.0], [1, 2])


def test_members_of_equal_knobs_train_once():
    runs = cl.members(cl.method_grid([0.0, 1.0], ["h1"], [0.0, 0.1], [1.0, 2.0], [0.5], [4.0], 0.3), [0, 1])
    base = [m for m in runs if m.method == "base"]
    lam0 = [m for m in runs if m.method == "ST" and m.lam == 0]
    kd0 = [m for m in runs if m.method == "logit distillation" and m.alpha == 0]
    wd0 = [m for m in runs if m.method == "weight decay" and m.weight_decay == 0]
    for group in (lam0, kd0, wd0):
        assert [cl.knobs(m) for m in group] == [cl.knobs(m) for m in base]
    assert len({cl.regime(m) for m in runs}) == 4  # fixed inputs, fixed + h1, augmentation, distillation


def test_pca_denoiser_projects_on_the_clean_training_inputs():
    clean = randn(RNG.child("inputs"), 2, 30, 6).float() @ torch.diag(torch.tensor([3.0, 2, 1, 0.1, 0.1, 0.1]))
    mean, basis = cl.pca(clean)
    noisy = clean + 0.1 * randn(RNG.child("noise"), 2, 30, 6).float()
    torch.testing.assert_close(cl.denoise(noisy, mean, basis, 6), noisy, rtol=1e-4, atol=1e-4)  # full rank: identity
    one = cl.denoise(noisy, mean, basis, 1) - mean
    assert torch.linalg.matrix_rank(one[0]).item() == 1
    assert (cl.denoise(noisy, mean, basis, 3) - clean).pow(2).mean() < (noisy - clean).pow(2).mean()


def test_per_member_distillation_equals_single_runs():
    gen = RNG.child("student_data").generator()
    x = torch.rand(16, 64, generator=gen, dtype=torch.float64).float()
    y = torch.randint(0, 10, (16,), generator=gen)
    data = Samples(x, x + 0.1, y)
    factory = cl.mlp_factory(64, [8])
    teacher = FrozenTeacher(factory(rng=RNG.child("teacher_init")))
    config = TrainConfig(steps=5, lr=0.01, optimizer="adam", task="ce", log_points=2, progress=False)
    rngs = RNG.children("student_init", 2)
    ens = factory(members=2, rng=rngs)
    train_distilled(ens, data, teacher, alpha=[0.5, 0.9], temperature=[2.0, 6.0], config=config)
    for e, (a, t) in enumerate([(0.5, 2.0), (0.9, 6.0)]):
        single = factory(rng=rngs[e])
        train_distilled(single, data, teacher, alpha=a, temperature=t, config=config)
        torch.testing.assert_close(ens(x)[e], single(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ParameterError, match="alpha"):
        train_distilled(factory(members=2, rng=rngs), data, teacher, alpha=[0.5], config=config)
