"""The experiment module of ``nonlinear_teacher_knowledge``: teachers per run and knowledge level, probes,
the methods on the study runner (equal budgets, one base run, the families) and the paired analyses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import stlearn as st
from stlearn import protocol, study, verdicts
from stlearn.experiments import nonlinear as nl
from stlearn.experiments import nonlinear_teacher_knowledge as tk

D, UNITS, WIDTH = 4, 3, 6
N_TRAIN, N_TEST, N_VAL = 20, 30, 10
CONFIG = st.TrainConfig(steps=8, lr=0.05, momentum=0.9, log_points=4, progress=False)
LAMS, DECAYS, AUG = [0.0, 1.0], [0.0, 0.1], [1.0, 1.5]
CONFIG = st.TrainConfig(steps=8, lr=0.05, momentum=0.9, log_points=4, progress=False, feature_scale="relative")


def _teachers(rng, seeds, sizes=(5, 20)):
    task = nl.relu_task(D, UNITS, 0.0, rng)
    return task, tk.make_teachers(task, UNITS, WIDTH, list(sizes), 20, rng, seeds, steps=5)


def test_levels_and_grids():
    assert tk.level_names([15, 1000]) == ["untrained", "wrong target", "15 samples", "1000 samples"]
    where = ([10, 20], [0.5], 10, 0.5)
    tk.check_grids(LAMS, DECAYS, AUG, [5, 20], *where)
    for bad in ([[1.0, 2.0], DECAYS, AUG, [5]], [[0.0, 1.0, 0.5], DECAYS, AUG, [5]], [LAMS, [0.1, 0.2], AUG, [5]],
                [LAMS, DECAYS, [], [5]], [LAMS, DECAYS, AUG, [20, 5]]):
        with pytest.raises(st.ParameterError):
            tk.check_grids(*bad, *where)
    with pytest.raises(st.ParameterError, match="main_n_train"):
        tk.check_grids(LAMS, DECAYS, AUG, [5], [10, 20], [0.5], 30, 0.5)
    levels = tk.level_names([5, 20])
    assert tk.st_names(levels) == {"untrained": "ST, untrained", "wrong target": "ST, wrong target",
                                   "5 samples": "ST, 5 samples", "20 samples": "ST"}
    with pytest.raises(st.ParameterError, match="equal tuning budgets"):  # before any computation
        tk.the_study(levels, LAMS, [0.0, 0.1, 0.2], AUG, 0.5, [0, 1]).budget()


def test_untrained_teacher_is_its_init_and_wrong_teacher_learns_another_target():
    rng = st.Stream(0)
    task, teachers = _teachers(rng, [0, 1])
    init = st.MLP([D, WIDTH, 1], rng=rng.child("teacher_init", 1, 0))
    untrained = st.member(teachers.model, teachers.index(0, 1))
    for a, b in zip(init.parameters(), untrained.parameters()):
        torch.testing.assert_close(a, b)
    other = tk.wrong_task(task, UNITS, rng)
    assert not torch.equal(other.target.w1, task.target.w1)
    assert torch.equal(other.target.w1, st.relu_target(D, UNITS, 1, rng=rng.child("target", 1)).w1)
    trained = st.member(teachers.model, teachers.index(1, 1))
    assert not torch.equal(trained.layers[0].weight, st.MLP([D, WIDTH, 1], rng=rng.child("teacher_init", 1, 1))
                           .layers[0].weight)


def test_teacher_of_run_k_does_not_depend_on_the_other_runs():
    rng = st.Stream(2)
    _, both = _teachers(rng, [0, 1])
    _, alone = _teachers(rng, [1])
    for j in range(len(both.levels)):
        a, b = st.member(both.model, both.index(j, 1)), st.member(alone.model, alone.index(j, 1))
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q)
    first = [st.member(both.model, both.index(j, 0)).layers[0].weight for j in range(len(both.levels))]
    assert all(not torch.equal(first[i], first[j]) for i in range(len(first)) for j in range(i))  # own init per level


def test_probe_r2_reads_linear_content():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, generator=gen, dtype=torch.float64)
    y = (x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)) + 3.0
    features = torch.stack([torch.cat([x, torch.zeros(400, 2, dtype=torch.float64)], 1),  # holds y (a dead unit)
                            torch.randn(400, 5, generator=gen, dtype=torch.float64)])  # noise
    r2 = tk._probe_r2(features, y, slice(0, 300), slice(300, 400), ridge=1e-6)
    assert r2.shape == (2, 1)
    assert r2[0, 0] > 0.999 and r2[1, 0] < 0.1


def test_knowledge_ranks_a_trained_teacher_above_an_untrained_one():
    rng = st.Stream(1)
    task = nl.relu_task(D, UNITS, 0.0, rng)
    teachers = tk.make_teachers(task, UNITS, 32, [400], 50, rng, [0, 1], steps=300)
    know = tk.knowledge(task, teachers, 500, 300, rng).groupby("level")[["clean_error", "probe_r2"]].mean()
    assert know.clean_error["400 samples"] < know.clean_error[tk.UNTRAINED]
    assert know.probe_r2["400 samples"] > know.probe_r2[tk.UNTRAINED]
    assert 0 < tk.input_probe_r2(task, 500, 300, rng) < 1


def _condition(rng, seeds=(0, 1)):
    task, teachers = _teachers(rng, list(seeds))
    result = tk.run_condition(task, teachers, N_TRAIN, 0.5, LAMS, DECAYS, AUG, N_VAL, N_TEST, CONFIG, rng)
    return teachers, result


def test_run_condition_budgets_and_the_base_point_of_every_grid():
    teachers, result = _condition(st.Stream(3))
    table, selected, families = tk.combined({(N_TRAIN, 0.5): result}, teachers.levels)
    assert result.budget == len(LAMS)
    base = table[table.method == "base"].set_index("seed").test_error
    names = list(tk.st_names(teachers.levels).values())
    for method in ["weight decay", *names]:
        zero = table[(table.method == method) & table.config.isin(["lam=0", "wd=0"])].set_index("seed").test_error
        pd.testing.assert_series_equal(zero.sort_index(), base.sort_index(), check_names=False)
    followers = {"ST + noise augmentation": "noise augmentation", "ST + weight decay": "weight decay",
                 "ST from the teacher's weights": "fine-tuned teacher"}
    for follower, partner in followers.items():  # lam = 0 is the partner's choice in each run
        chosen = selected[selected.method == partner].set_index("seed").test_error
        at_zero = table[(table.method == follower) & (table.lam == 0)].set_index("seed").test_error
        pd.testing.assert_series_equal(at_zero.sort_index(), chosen.sort_index(), check_names=False)
    tuned_teacher = table[(table.method == "fine-tuned teacher") & (table.config == "wd=0")].set_index("seed")
    assert not np.allclose(tuned_teacher.test_error.sort_index(), base.sort_index()), "starts from the teacher"
    assert set(table.method) == {"base", "weight decay", "fine-tuned teacher", "teacher as is", "noise augmentation",
                                 *followers, *names}
    # trained once per run: base, one decay, two fine-tuned decays, one lam > 0 per teacher; two augmentation
    # levels; the followers (their lam > 0 run) in a second stage, after their partner's choice in each run
    # (where weight decay chose 0, ST + weight decay at lam > 0 *is* ST at that lam: trained once, not again)
    trained = pd.Series([g for g, _ in set(result.where.values())]).value_counts().to_dict()
    assert 2 <= trained.pop(("fixed noise", "follows")) <= 2 * 2
    assert trained == {"fixed noise": 2 * (4 + len(names)), "fresh noise": 2 * 2, ("fresh noise", "follows"): 2,
                       "measured": 2}
    assert len(selected) == 2 * table.method.nunique()
    assert set(families.method) == {"ST", "noise augmentation", *followers}
    assert families.set_index("method").reference["ST + noise augmentation"] == "noise augmentation"
    ratio = study.start_ratio(result.history, result.selected)  # lam on the relative scale: the weight is logged
    assert len(ratio) == 2 and (ratio >= 0).all()
    gains = tk.lambda_gains(table, teachers.levels)
    assert (gains[gains.lam == 0].gain == 0).all()
    assert (gains[gains.level == tk.UNTRAINED].over_untrained == 0).all()
    curve = tk.lam_curve(table)
    assert list(curve.columns) == ["λ", "ST", "ST + noise augmentation"] and len(curve) == len(LAMS)


def test_level_gains_are_paired_differences_and_pool_averages_conditions():
    rows = []
    for n, s, shift in ((10, 0.5, 0.0), (20, 1.0, 0.2)):
        for k in range(3):
            for method, err in (("base", 1.0), ("ST, untrained", 0.9), ("ST, wrong target", 0.95),
                                ("ST", 0.7 + 0.01 * k)):
                rows.append(dict(method=method, config="-", seed=k, val_error=err, test_error=err + shift,
                                 n_train=n, sigma=s))
    selected = pd.DataFrame(rows)
    per, pooled = tk.all_level_gains(selected, ["untrained", "wrong target", "5 samples"])
    got = per[(per.level == "5 samples") & (per.seed == 2) & (per.n_train == 10)]
    assert got.over_base.item() == pytest.approx(0.28) and got.over_untrained.item() == pytest.approx(0.18)
    assert len(pooled) == 3 * 3 and pooled[pooled.level == "untrained"].over_base.to_numpy() == pytest.approx(0.1)
    with pytest.raises(st.ParameterError):
        tk.pool(per.iloc[1:], ["level"], ["over_base"])


def test_crossover_and_sign_pattern():
    levels = ["untrained", "wrong target", "5 samples", "50 samples"]
    truth = {"untrained": -0.5, "wrong target": -1.0, "5 samples": 0.0, "50 samples": 0.5}
    gains = pd.DataFrame([{"level": l, "seed": k, "g": truth[l] + 0.01 * (-1) ** k * (1 + k // 2)}
                          for l in levels for k in range(6)])  # the mean of each level is exactly its truth
    error = pd.Series({"untrained": 1.0, "5 samples": 0.1, "50 samples": 0.01})
    c = tk.crossover(gains, "g", levels, error)
    assert c["hurts"] == ["untrained"] and c["helps"] == ["50 samples"] and c["unresolved"] == ["5 samples"]
    assert c["bracket"] == ("untrained", "50 samples")
    assert 0.01 < c["at_error"] < 1.0
    assert tk.sign_pattern(gains, "g", tk.ladder(levels)) == "- 0 +"
    assert "crosses zero between the untrained teacher" in verdicts.describe_crossover(c, "the gain")
    flat = gains.assign(g=gains.g - gains.level.map(truth))
    assert tk.crossover(flat, "g", levels, error)["bracket"] is None


def test_selection_never_reads_test_errors():
    _, result = _condition(st.Stream(4))
    table = result.table
    shuffled = table.assign(test_error=np.random.default_rng(0).permutation(table.test_error.to_numpy()))
    keys = ["method", "seed", "config"]
    a = protocol.select(table).sort_values(keys)[keys].reset_index(drop=True)
    b = protocol.select(shuffled).sort_values(keys)[keys].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, result.selected.sort_values(keys)[keys].reset_index(drop=True))


def _gains(truth, keys=(("n_train", 10), ("sigma", 0.5))):
    """Per (level, seed) gains whose mean per level is exactly ``truth[level]`` (six runs)."""
    rows = [{"level": l, "seed": k, "over_base": v + 0.01 * (-1) ** k * (1 + k // 2),
             "over_untrained": v + 0.01 * (-1) ** k * (1 + k // 2), **dict(keys)}
            for l, v in truth.items() for k in range(6)]
    return pd.DataFrame(rows)


def test_resolved_crossings_name_both_sides():
    levels = ["untrained", "wrong target", "5 samples", "50 samples"]
    per = _gains({"untrained": 0.0, "wrong target": 0.0, "5 samples": -0.5, "50 samples": 0.5})
    pooled = tk.pool(per, ["level"], ["over_base", "over_untrained"])
    lam_per = per.rename(columns={"over_base": "gain"}).assign(lam=1.0)
    lam_pooled = tk.pool(lam_per, ["level", "lam"], ["gain", "over_untrained"])
    found = tk.resolved_crossings(per, pooled, lam_per, lam_pooled, levels, [0.0, 1.0])
    assert any("between the 5-sample teacher (below zero) and the 50-sample teacher" in f for f in found)
    assert any("λ = 1" in f for f in found) and any("chosen on validation" in f for f in found)


def test_pool_by_noise_level_and_family_rows():
    per = pd.concat([_gains({"untrained": 0.0, "50 samples": g}, (("n_train", n), ("sigma", s)))
                     for n, s, g in ((10, 0.5, 0.2), (20, 0.5, 0.4), (10, 1.0, 0.0), (20, 1.0, 0.0))])
    by = tk.pool_by(per, "sigma", ["over_untrained"])
    means = by.groupby(["sigma", "level"]).over_untrained.mean()
    assert means[(0.5, "50 samples")] == pytest.approx(0.3) and means[(1.0, "50 samples")] == pytest.approx(0.0)
    families = pd.DataFrame([dict(family="same information", method="ST", reference="weight decay", gain=-0.2,
                                  low=-0.3, high=-0.1, n_train=10, sigma=0.5)])
    shown = tk.family_rows(families)
    assert shown.to_dict("records") == [{"family": "same information", "comparison": "ST vs weight decay",
                                         "condition": "n = 10, σ = 0.5",
                                         "gain [95% interval]": "-0.200 [-0.300, -0.100]"}]
