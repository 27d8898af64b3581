"""The denoising chapter on the study runner (stlearn.experiments.denoising: primary_study, Execute, fit_members)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import stlearn as st
from stlearn import photos as ph
from stlearn import study, verdicts
from stlearn.denoisers import Architecture
from stlearn.experiments import denoising as dn

ARCH = Architecture(4, 2)


@pytest.fixture(scope="module")
def tiny():
    rng = st.Stream(0)
    data = dn.photo_data(3, 3, 16, 32, 32, rng, max_side=64)
    cfg = dn.adam(6, 1e-3, 8, 3, rng=rng)
    teachers = dn.make_teachers(data, [0, 1], rng, ARCH, cfg, teacher_photos=2)
    return data, rng, cfg, teachers


def test_lam_zero_trains_as_base_whatever_its_teacher_and_layer():
    a = dn.DenoisingRun(method="ST", config="λ = 0", seed=1, lam=0.0, teacher="weak", layer="h1")
    b = dn.DenoisingRun(method="base", config="-", seed=1)
    c = dn.DenoisingRun(method="ST", config="λ = 0.1", seed=1, lam=0.1, teacher="weak", layer="h1")
    assert a.trains_as() == b.trains_as() != c.trains_as()
    assert dn.group_of(a) == dn.group_of(b) != dn.group_of(c)
    assert dn.group_of(dn.DenoisingRun(method="teacher as is", config="-", seed=0))[0] == "measured"


def test_grids_are_checked_before_any_computation():
    with pytest.raises(st.ParameterError, match="weight_decays"):
        dn.primary_study(25.0, [0, 1], [0.0, 0.1, 1.0], [0.0, 0.01])
    with pytest.raises(st.ParameterError, match="lams must start with 0"):
        dn.primary_study(25.0, [0, 1], [0.1, 1.0], [0.0, 0.01])
    s = dn.primary_study(25.0, [0, 1], [0.0, 1.0], [0.0, 0.01], factor_lam=1.0, from_teacher=True)
    assert s.budget() == 2
    fams = {(c.family, c.method) for c in s.comparisons}
    assert (study.COMPLEMENT, "ST from the teacher's weights") in fams
    assert (study.NOISE_MODEL, "noise augmentation") in fams


def test_member_noise_is_the_chapter_noise_of_each_run():
    x = torch.rand(2, 8, 8, dtype=torch.float64)
    rng = st.Stream(3)
    both = dn.member_noise(x, [25.0, 50.0, 25.0], [1, 0, 0], rng, "test")
    assert torch.allclose(both[0], dn.noise(x, [25.0], [1], rng, "test")[0])
    assert torch.allclose(both[1], dn.noise(x, [50.0], [0], rng, "test")[0])
    assert torch.allclose(both[2], dn.noise(x, [25.0], [0], rng, "test")[0])


def test_the_study_runs_every_family_with_psnr_errors(tiny):
    data, rng, cfg, teachers = tiny
    s = dn.primary_study(25.0, [0, 1], [0.0, 1.0], [0.0, 0.01], factor_lam=1.0, from_teacher=True)
    execute = dn.Execute(data, rng, teachers, ARCH, cfg)
    result = study.run_study(s, execute, dn.group_of)
    assert len(result.table) == len(s.runs()) and np.isfinite(result.table.val_error).all()
    assert set(result.comparisons.family) == set(study.FAMILIES)
    # val_error is minus the mean validation PSNR of the run's whole crops
    base = result.table[result.table.method == "base"].set_index("seed")
    model, e = dn.locate(result)[("base", "-", 1)]
    noisy = dn.noise(data.val, [25.0], [0, 1], rng, "val")[1]
    psnr = ph.psnr(dn.select_members(model, [e]).denoise(noisy[None])[0].double(), data.val).mean()
    assert base.val_error[1] == pytest.approx(-psnr, abs=1e-6)
    # ST at lam = 0 is the base run; the fine-tuned teacher is ST from the teacher's weights at lam = 0
    st0 = result.table[(result.table.method == "ST") & (result.table.config == "λ = 0")].set_index("seed")
    assert np.array_equal(st0.test_error, base.test_error)
    ft = result.table[result.table.method == "fine-tuned teacher"].set_index("seed").test_error
    stft = result.table[(result.table.method == "ST from the teacher's weights") & (result.table.config == "λ = 0")]
    assert np.array_equal(ft, stft.set_index("seed").test_error)
    assert not np.array_equal(ft, base.test_error)
    # the teacher as it is: teacher k on run k's noisy crops
    t = result.table[result.table.method == "teacher as is"].set_index("seed").test_error
    noisy = dn.noise(data.test, [25.0], [0, 1], rng, "test")
    own = ph.psnr(teachers["full"].denoise(noisy).double(), data.test).mean(-1)  # member k on run k's crops
    assert np.allclose(-t.to_numpy(), own)
    # the relative scale: the history gives the weight applied and the start ratio of the chosen lam
    ratio = study.start_ratio(dn.history_of(result), result.selected)
    assert len(ratio) == 2 and (ratio >= 0).all()
    assert verdicts.denoising_advice(result.comparisons).endswith(".")
    assert {"family", "method", "against", dn.GAIN_DB} <= set(dn.family_table(result).columns)


def test_fit_members_from_the_teachers_weights_starts_at_the_teacher(tiny):
    data, rng, cfg, teachers = tiny
    members = pd.DataFrame({"sigma": [25.0, 25.0], "seed": [1, 0], "lam": 0.0, "weight_decay": 0.0})
    model, table = dn.fit_members(data, members, rng, ARCH, dn.adam(1, 1e-12, 8, 2, rng=rng), init=teachers["full"])
    for mine, theirs in zip(model.parameters(), teachers["full"].parameters()):
        assert torch.allclose(mine[0], theirs[1], atol=1e-6) and torch.allclose(mine[1], theirs[0], atol=1e-6)
    assert table.member.tolist() == [0, 1] and (table.val > 0).all()


def test_teachers_stop_on_training_photograph_cells_no_student_trains_on(tiny):
    data = tiny[0]
    assert len(data.teacher_val) == len(data.val) * (32 // 16) ** 2
    student = {tuple(r) for r in data.train.numpy().round(12)}
    assert not student & {tuple(r) for r in data.teacher_val.numpy().round(12)}
    with pytest.raises(st.ParameterError, match="n_patches"):
        dn.photo_data(3, 3, 16, 10_000, 32, st.Stream(0), max_side=64)


def test_views_add_fixed_noisy_copies_and_one_view_is_the_one_copy_design(tiny):
    data, rng, cfg, teachers = tiny
    x = data.train[:4].reshape(-1, 16, 16)
    first, second = (dn.noise(x, [25.0], [1], rng, "train", view=v)[0] for v in (0, 1))
    assert torch.equal(first, dn.noise(x, [25.0], [1], rng, "train")[0]) and not torch.allclose(first, second)
    members = pd.DataFrame({"sigma": [25.0], "seed": [1], "lam": 0.0, "weight_decay": 0.0})
    one, _ = dn.fit_members(data, members, rng, ARCH, cfg)
    again, _ = dn.fit_members(data, members, rng, ARCH, cfg, views=1)
    three, _ = dn.fit_members(data, members, rng, ARCH, cfg, views=3)
    assert all(torch.equal(a, b) for a, b in zip(one.parameters(), again.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(one.parameters(), three.parameters()))
    with pytest.raises(st.ParameterError, match="views = 1"):
        dn.fit_members(data, members, rng, ARCH, cfg, fresh=True, views=2)


def test_the_burst_study_reuses_the_runs_an_earlier_study_trained(tiny):
    data, rng, cfg, teachers = tiny
    execute = dn.Execute(data, rng, teachers, ARCH, cfg)
    primary = study.run_study(dn.primary_study(25.0, [0, 1], [0.0, 1.0], [0.0, 0.01]), execute, dn.group_of)
    trained = len(execute.done)
    bursts = dn.run_views(25.0, [1, 2], [0, 1], [0.0, 1.0], [0.0, 0.01], execute)
    base = lambda r: r.table[r.table.method == "base"].set_index("seed").test_error  # noqa: E731
    assert base(bursts[1]).equals(base(primary))  # one view: the primary study's runs, not trained again
    assert not np.allclose(base(bursts[2]), base(primary))
    assert len(execute.done) == trained + 4 * 2  # only the two-view runs trained (base, weight decay, fine-tuned, ST)
    table = dn.views_table(bursts, primary)
    assert set(table.views) == {1, 2} and table.against.nunique() == 3
    assert "K = 2 views rather than 1" in dn.burst_words(bursts, primary)


def test_photo_gain_counts_the_photographs_as_a_draw(tiny):
    sel = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2,
                        "test_by_photo": [(1.0, 3.0), (1.2, 3.1), (0.9, 2.9), (0.0, 0.0), (0.1, 0.0), (0.0, 0.1)]})
    g = dn.photo_gain(sel, "a", "b")
    assert g["runs"] == 3 and g["gain"] == pytest.approx(np.mean([1, 3, 1.1, 3.1, 0.9, 2.8]))
    assert g["low"] < 0 < g["gain"]  # two photographs: the gain depends on which were drawn


def test_depth_adds_full_resolution_layers_and_keeps_the_shallow_networks_streams():
    shallow, deep = Architecture(4, 2).build(2, 0), Architecture(4, 2, depth=2).build(2, 0)
    assert len(list(deep.parameters())) == len(list(shallow.parameters())) + 2 * 4
    assert all(torch.equal(a, b) for a, b in zip(shallow.weights, deep.weights[:4]))  # layers 0-3 unchanged
    x = torch.rand(3, 256)
    out, feats = deep(x, return_features=True)
    assert out.shape == (2, 3, 256) and feats["h1"].shape == (2, 3, 4 * 256) and feats["h2"].shape == (2, 3, 2 * 64)
