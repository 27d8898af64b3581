"""The shared classification code of the real-data chapters: grids, denoiser, per-member distillation."""

from __future__ import annotations

import pytest
import torch

from stlearn import study
from stlearn.data import Samples, randn
from stlearn.datasets import LabelledSplit
from stlearn.distill import train_distilled
from stlearn.experiments import classification as cl
from stlearn.losses import FrozenTeacher
from stlearn.streams import Stream
from stlearn.train import TrainConfig
from stlearn.validation import ParameterError

RNG = Stream(0)


def grids(**kw):
    settings = dict(lams=[0.0, 0.1, 1.0], layer="h1", decays=[0.0, 0.001, 0.01], aug_levels=[1.0, 1.5, 2.0],
                    alphas=[0.5], temperatures=[2.0, 6.0], ranks=[1, 2, 3], levels=["untrained"])
    return cl.Grids(**{**settings, **kw})


def test_grids_have_equal_budgets_named_by_parameter():
    assert grids().check() == 3
    plan = study.Study(cl.methods(grids(), 0.3), (0, 1), cl.Member)
    assert plan.budget() == 3
    tuned = {m.name for m in plan.methods if m.tuned}
    assert tuned == {"weight decay", "logit distillation", "denoise-then-teacher", "ST", "ST + weight decay",
                     "ST from the teacher's weights", "noise augmentation", "ST + noise augmentation",
                     "ST, untrained teacher"}
    with pytest.raises(ParameterError, match="decays"):
        grids(decays=[0.0, 0.1]).check()
    with pytest.raises(ParameterError, match="alphas"):
        grids(alphas=[0.5, 0.9]).check()
    with pytest.raises(ParameterError, match="lams"):
        grids(lams=[0.3, 1.0, 2.0]).check()
    follows = {m.name: (m.follows, m.inherits) for m in plan.methods if m.follows}
    assert follows == {"ST + weight decay": ("weight decay", ("weight_decay",)),
                       "ST + noise augmentation": ("noise augmentation", ("fresh_noise",))}


def test_families_are_complete():
    plan = study.Study(cl.methods(grids(), 0.3), (0, 1), cl.Member)
    pairs = {(c.family, c.method) for c in plan.comparisons}
    assert pairs == {(study.SAME_INFORMATION, "ST"), (study.COMPLEMENT, "ST + weight decay"),
                     (study.COMPLEMENT, "ST from the teacher's weights"), (study.NOISE_MODEL, "noise augmentation"),
                     (study.NOISE_MODEL, "ST + noise augmentation")}
    first = next(c for c in plan.comparisons if c.family == study.SAME_INFORMATION)
    assert "noise augmentation" not in first.reference  # the noise model is family 3's, never a simple baseline
    assert {"fine-tuned teacher", "denoise-then-teacher", "logit distillation"} <= set(first.reference)


def test_runs_that_train_alike_train_once_in_one_group():
    sigma = 0.3
    runs = study.Study(cl.methods(grids(), sigma), (0, 1), cl.Member).runs()

    def one(method, config, seed=0):
        return next(r for r in runs if (r.method, r.config, r.seed) == (method, config, seed))

    same = [("base", "-"), ("ST", "lam=0"), ("logit distillation", "alpha=0"), ("weight decay", "wd=0"),
            ("ST, untrained teacher", "lam=0")]
    assert len({one(*m).trains_as() for m in same}) == 1
    # ST + weight decay and ST + noise augmentation take their partner's choice in each run (Method.follows),
    # so their lam = 0 run is that choice: tests/library/test_study.py
    assert one("ST from the teacher's weights", "lam=0").trains_as() == one("fine-tuned teacher", "-").trains_as()
    assert one("ST", "lam=0.1").trains_as() != one("ST, untrained teacher", "lam=0.1").trains_as()
    by_key = {}
    for r in runs:
        by_key.setdefault(r.trains_as() if r.method not in cl.MEASURED else r, set()).add(cl.group_of(r))
    assert all(len(g) == 1 for g in by_key.values())  # shared runs agree on their ensemble
    assert cl.group_of(one("ST + noise augmentation", "lam=1")) == ("augmentation", "h1")
    assert cl.group_of(one("denoise-then-teacher", "rank=2")) == ("measured", "")


def test_students_start_from_their_own_init_or_the_teachers_weights():
    factory = cl.mlp_factory(6, [4])
    seeds = [0, 1]
    teachers = [factory(members=2, rng=RNG.children("teacher_init", 2))]
    data = toy_split(seeds)
    ex = cl.Executor(factory, data, teachers, RNG, seeds, TrainConfig(task="ce", progress=False))
    runs = [cl.Member(method="ST", config="lam=0", seed=1),
            cl.Member(method="fine-tuned teacher", config="-", seed=1, init="teacher")]
    student = ex.student(runs, [1, 1])
    own = factory(members=1, rng=[RNG.child("student_init", 1)])
    for p, t, o in zip(student.parameters(), teachers[0].parameters(), own.parameters()):
        torch.testing.assert_close(p[1], t[1])
        torch.testing.assert_close(p[0], o[0])


def test_measured_methods_read_the_teacher():
    factory = cl.mlp_factory(6, [4])
    seeds = [0, 1]
    data = toy_split(seeds)
    teacher = factory(members=2, rng=RNG.children("teacher_init", 2))
    runs = [cl.Member(method="teacher as is", config="-", seed=1),
            cl.Member(method="denoise-then-teacher", config="rank=6", seed=0, rank=6)]
    rows = cl.measure(teacher, data, runs, [1, 0])
    assert list(rows.member) == [0, 1]
    as_is = cl.evaluate_ce(teacher, data.test.noisy, data.test.y)
    assert rows.test_error[0] == pytest.approx(float(as_is[1]))
    assert rows.test_error[1] == pytest.approx(float(as_is[0]), abs=1e-6)  # full rank: the identity


def toy_split(seeds):
    gen = RNG.child("student_data", 1).generator()

    def part(n):
        x = torch.rand(len(seeds), n, 6, generator=gen, dtype=torch.float64).to(torch.get_default_dtype())
        return Samples(x, x + 0.1 * torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x),
                       torch.randint(0, 10, (len(seeds), n), generator=gen))
    return LabelledSplit(part(20), part(10), part(10))


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
