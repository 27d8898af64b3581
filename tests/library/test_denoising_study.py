"""The denoising chapter on the study runner (stlearn.experiments.denoising: primary_study, Execute, fit_members)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import stlearn as st
from stlearn import photos as ph
from stlearn import study, verdicts
from stlearn.experiments import denoising as dn


@pytest.fixture(scope="module")
def tiny():
    rng = st.Stream(0)
    data = dn.photo_data(3, 3, 16, 32, 32, rng, max_side=64)
    cfg = dn.adam(6, 1e-3, 8, 3, rng=rng)
    teachers = dn.make_teachers(data, [0, 1], rng, 4, 2, cfg, teacher_photos=2)
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
    execute = dn.Execute(data, rng, teachers, 4, 2, cfg)
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
    assert {"family", "method", "against", "gain (dB)"} <= set(dn.family_table(result).columns)


def test_fit_members_from_the_teachers_weights_starts_at_the_teacher(tiny):
    data, rng, cfg, teachers = tiny
    members = pd.DataFrame({"sigma": [25.0, 25.0], "seed": [1, 0], "lam": 0.0, "weight_decay": 0.0})
    model, table = dn.fit_members(data, members, rng, 4, 2, dn.adam(1, 1e-12, 8, 2, rng=rng), init=teachers["full"])
    for mine, theirs in zip(model.parameters(), teachers["full"].parameters()):
        assert torch.allclose(mine[0], theirs[1], atol=1e-6) and torch.allclose(mine[1], theirs[0], atol=1e-6)
    assert table.member.tolist() == [0, 1] and (table.val > 0).all()
