"""The decomposition chapter's pieces: the matching student (pre-activations, connector) and its gradients,
the symmetries its controls rest on (a permutation of the units, a rotation under a connector), the teachers
of matched clean error, and the run table under the protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import stlearn as st
from stlearn import protocol, verdicts
from stlearn.experiments import nonlinear as nl
from stlearn.experiments import nonlinear_decomposition as nd
from stlearn.fast import fused
from stlearn.losses import FrozenTeacher, student_teacher_loss
from stlearn.train import autograd_gradients

D, WIDTH, N = 5, 6, 12
CONFIG = st.TrainConfig(steps=12, lr=0.05, momentum=0.9, log_points=5, progress=False)


def _batch(rng, members=None, n=N):
    task = nl.relu_task(D, 3, 0.5, rng)
    data = st.draw(task, n, rng.child("student_data", 0))
    return task, (data if members is None else st.Samples.stack([data] * members))


def test_matching_student_starts_as_the_mlp_and_is_not_on_the_fused_path():
    rng = st.Stream(0)
    inits = [rng.child("student_init", k) for k in range(3)]
    mlp = st.MLP([D, WIDTH, 1], members=3, rng=inits)
    for connector in (False, True):
        student = nd.MatchingStudent([D, WIDTH, 1], connector=connector, members=3, rng=inits,
                                     connector_rng=[rng.child("student_init", k, 1) for k in range(3)])
        assert not fused.supports(student), "the hand-written backward does not know z1 or c1"
        for p, q in zip(mlp.parameters(), student.layers.parameters()):
            assert torch.equal(p, q)
        x = torch.randn(4, D, generator=rng.child("reference").generator())
        torch.testing.assert_close(student(x), mlp(x))
        out, feats = student(x, return_features=True)
        assert sorted(feats) == sorted(student.feature_names) == sorted(["h1", "z1"] + ["c1"] * connector)
        torch.testing.assert_close(feats["h1"], feats["z1"].clamp_min(0))
    assert fused.supports(mlp)
    with pytest.raises(st.ParameterError, match="one hidden layer"):
        nd.MatchingStudent([D, WIDTH, WIDTH, 1])


def _by_hand(student, batch, target, lam, layer):
    """The ST loss's gradient written with plain tensor operations in float64, member by member."""
    grads = []
    w1, b1, w2, b2 = (p.detach().double() for p in student.layers.parameters())
    c = student.connector.detach().double() if student.connector is not None else None
    x, y, n = batch.noisy.double(), batch.y.double(), batch.n
    for e in range(student.members):
        z = x[e] @ w1[e].T + b1[e]
        h = z.clamp_min(0)
        out = h @ w2[e].T + b2[e]
        g_out = (out - y[e]) / n
        g_h = g_out @ w2[e]
        g_c = None
        if layer == "z1":
            g_z = g_h * (z > 0) + lam[e] * (z - target[e].double()) / n
        elif layer == "h1":
            g_z = (g_h + lam[e] * (h - target[e].double()) / n) * (z > 0)
        else:
            r = lam[e] * (h @ c[e].T - target[e].double()) / n
            g_c = r.T @ h
            g_z = (g_h + r @ c[e]) * (z > 0)
        grads.append([g_z.T @ x[e], g_z.sum(0, keepdim=True), g_out.T @ h, g_out.sum(0, keepdim=True)]
                     + ([g_c] if g_c is not None else []))
    return [torch.stack([g[i] for g in grads]) for i in range(len(grads[0]))]


@pytest.mark.parametrize("layer", ["z1", "c1", "h1"])
def test_matching_student_gradients_are_right(layer):
    """Autograd through the student (fast and plain) gives the gradient written out by hand."""
    rng = st.Stream(1)
    _, batch = _batch(rng, members=3)
    student = nd.MatchingStudent([D, WIDTH, 1], connector=layer == "c1", members=3, dtype=torch.float64,
                                 rng=[rng.child("student_init", k) for k in range(3)],
                                 connector_rng=[rng.child("student_init", k, 1) for k in range(3)])
    with torch.no_grad():
        student.layers[0].bias.normal_(generator=rng.child("layer", 9).generator())  # some units off
    target = torch.randn(3, N, WIDTH, generator=rng.child("reference").generator(), dtype=torch.float64)
    lam = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    expected = _by_hand(student, batch.to(dtype=torch.float64), target, lam, layer)
    for fast in (True, False):
        with st.fast.switched(fast):
            student.zero_grad()
            terms = autograd_gradients(student, batch.to(dtype=torch.float64), {layer: target}, lam, [layer], "mse")
            params = [*student.layers.parameters()] + ([student.connector] if layer == "c1" else [])
            got = [p.grad.reshape(g.shape) for p, g in zip(params, expected)]
        for g, want in zip(got, expected):
            torch.testing.assert_close(g, want, rtol=1e-10, atol=1e-12)
        out, feats = student(batch.noisy.double(), return_features=True)
        plain = student_teacher_loss(out, feats, batch.y.double(), {layer: target}, lam, [layer])
        torch.testing.assert_close(terms["total"].detach(), plain["total"].detach())


def test_training_a_matching_student_takes_autograd_and_lam_zero_is_the_base_student():
    rng = st.Stream(2)
    task, data = _batch(rng, members=2)
    teacher = FrozenTeacher(nd.PreActivations(st.MLP([D, WIDTH, 1], members=2, rng=rng.child("teacher_init"))))
    inits = [rng.child("student_init", k) for k in range(2)]
    base = st.train(st.MLP([D, WIDTH, 1], members=2, rng=inits), data, config=CONFIG).history
    for connector, layer in ((False, "z1"), (True, "c1")):
        student = nd.MatchingStudent([D, WIDTH, 1], connector=connector, members=2, rng=inits,
                                     connector_rng=[rng.child("student_init", k, 1) for k in range(2)])
        if connector:
            teacher = FrozenTeacher(st.MLP([D, WIDTH, 1], members=2, rng=rng.child("teacher_init")),
                                    source={"c1": "h1"})
        hist = st.train(student, data, teacher=teacher, lam=[0.0, 0.0], layers=[layer], config=CONFIG).history
        np.testing.assert_allclose(hist.train_task, base.train_task, rtol=1e-5)
        moved = st.train(nd.MatchingStudent([D, WIDTH, 1], connector=connector, members=2, rng=inits,
                                            connector_rng=[rng.child("student_init", k, 1) for k in range(2)]),
                         data, teacher=teacher, lam=[0.0, 1.0], layers=[layer], config=CONFIG).history
        assert not np.allclose(moved[moved.member == 1].train_task, base[base.member == 1].train_task)
        np.testing.assert_allclose(moved[moved.member == 0].train_task, base[base.member == 0].train_task, rtol=1e-5)


def _teachers(rng, seeds, deep_steps=40):
    task = nl.relu_task(D, 3, 0.5, rng)
    clean_test = st.draw(task, 50, rng.child("reference", 0), label_noise=False)
    x_fit = st.draw(task, 60, rng.child("reference", 1), label_noise=False).clean
    match = st.draw(task, 50, rng.child("reference", 2), label_noise=False)
    teachers = nd.make_teachers(task, WIDTH, 80, 30, rng, seeds, [0.0, 1.0], [2], deep_steps, x_fit, clean_test,
                                match)
    return task, teachers, x_fit


def test_permuting_the_teachers_units_is_permuting_the_students_init():
    """The null control: matching P h from an init equals matching h from the init relabelled by P^T."""
    rng = st.Stream(3)
    task, teachers, _ = _teachers(rng, [0], deep_steps=0)
    p = teachers.transform["permuted units", 0].float()
    assert torch.equal(p.sum(0), torch.ones(WIDTH)) and torch.equal(p.sum(1), torch.ones(WIDTH))
    data = st.draw(task, 20, rng.child("student_data", 0))
    a = st.MLP([D, WIDTH, 1], rng=rng.child("student_init", 0))
    b = st.MLP([D, WIDTH, 1], rng=rng.child("student_init", 0))
    with torch.no_grad():  # b's unit j is a's unit pi(j): W1 -> P^T W1, W2 -> W2 P
        b.layers[0].weight.copy_(p.T @ a.layers[0].weight)
        b.layers[0].bias.copy_(p.T @ a.layers[0].bias)
        b.layers[1].weight.copy_(a.layers[1].weight @ p)
    net = st.member(teachers.models, teachers.index["units", 0])
    runs = [st.train(a, data, teacher=FrozenTeacher(net, transform={"h1": p}, source={"h1": "h2"}), lam=1.0,
                     layers=["h1"], config=CONFIG).history,
            st.train(b, data, teacher=FrozenTeacher(net, source={"h1": "h2"}), lam=1.0, layers=["h1"],
                     config=CONFIG).history]
    np.testing.assert_allclose(runs[0].train_total, runs[1].train_total, rtol=1e-5, atol=1e-7)


def test_rotating_the_target_under_a_connector_is_rotating_the_connector():
    """Matching R t through C from C0 equals matching t through C from R^T C0: the layout is invisible."""
    rng = st.Stream(4)
    task, teachers, _ = _teachers(rng, [0], deep_steps=0)
    r = teachers.transform["rot1", 0].float()
    data = st.draw(task, 20, rng.child("student_data", 0))
    students = [nd.MatchingStudent([D, WIDTH, 1], connector=True, rng=rng.child("student_init", 0),
                                   connector_rng=rng.child("student_init", 0, 1)) for _ in range(2)]
    with torch.no_grad():
        students[1].connector.copy_(r.T @ students[0].connector)
    net = st.member(teachers.models, teachers.index["units", 0])
    hist = [st.train(s, data, teacher=FrozenTeacher(net, transform=t, source={"c1": "h2"}), lam=1.0,
                     layers=["c1"], config=CONFIG).history for s, t in ((students[0], {"c1": r}), (students[1], {}))]
    np.testing.assert_allclose(hist[0].train_total, hist[1].train_total, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(students[0].layers[0].weight, students[1].layers[0].weight, rtol=1e-4, atol=1e-6)


def test_teachers_keep_their_function_and_targets_have_the_units_energy():
    rng = st.Stream(5)
    task, teachers, x_fit = _teachers(rng, [0, 1])
    assert nd.function_gap(teachers, x_fit[:20]) < 1e-4
    energy = {name: teachers.features(name, 1, x_fit).pow(2).sum(-1).mean().item() for name in teachers.names}
    for name, value in energy.items():
        assert value == pytest.approx(energy["units"], rel=1e-4), name
    frozen = teachers.frozen_pre([("units", 1), ("rot1", 1)])
    z = nd.pre_activation(st.member(teachers.models, teachers.index["units", 1]), x_fit)
    feats = frozen.features(x_fit.float(), ["z1"])["z1"].double()
    s = teachers.pre_scale[1]
    torch.testing.assert_close(feats[0], s * z, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feats[1], s * z @ teachers.transform["rot1", 1].T, rtol=1e-4, atol=1e-5)
    assert feats[0].pow(2).sum(-1).mean().item() == pytest.approx(energy["units"], rel=1e-4)
    with pytest.raises(st.ParameterError, match="one-hidden-layer teacher only"):
        teachers.frozen_pre([("deep", 0)])


def test_fit_to_error_stops_each_member_where_it_reaches_its_target():
    rng = st.Stream(6)
    task = nl.relu_task(D, 3, 0.0, rng)
    data = st.draw_members(task, 80, [rng.child("teacher_data", k) for k in range(2)])
    ref = st.draw(task, 50, rng.child("reference", 2), label_noise=False)
    inits = [rng.child("teacher_init", k, 1) for k in range(2)]
    full = nd.teacher_ensemble(task, [WIDTH], 80, rng, [0, 1], 60)  # the same init, data and Adam path
    end = st.evaluate(full, ref)["clean"]
    for target, at_most in ((end, 60), (torch.tensor([10.0, 0.0]), None)):
        model = st.MLP([D, WIDTH, 1], members=2, rng=inits)
        steps, errors = nd.fit_to_error(model, data, ref, target, 60)
        torch.testing.assert_close(torch.as_tensor(errors, dtype=torch.float32), st.evaluate(model, ref)["clean"])
        if at_most:  # the same path as the teacher trained for 60 steps: it gets there by step 60
            assert (steps <= at_most).all() and (errors <= end.numpy() + 1e-7).all()
        else:  # member 0 is done at the first check; member 1 never is, and keeps its lowest error
            assert steps[0] == 1 and errors[1] > 0


def test_the_study_shares_the_base_run_and_checks_budgets_first():
    rng = st.Stream(7)
    task, teachers, _ = _teachers(rng, [0, 1], deep_steps=0)
    methods = nd.st_methods(teachers, "rot1")
    names = [m[0] for m in methods]
    assert names == ["ST", "permuted units", "rot1", "mix2", "pre-activation: units", "pre-activation: rot1",
                     "connector: units", "connector: rot1"]
    assert nd.method_of("units") == "ST" and nd.method_of("rot1") == "rot1"
    config = st.TrainConfig(steps=10, lr=0.05, momentum=0.9, log_points=4, progress=False, feature_scale="relative")
    s = nd.the_study([0.0, 1.0], [0.0, 0.1], methods, 0.5, [1.0, 1.5], [0, 1])
    result = nd.run_students(task, teachers, s, WIDTH, 20, 10, 30, config, rng)
    table = result.table
    assert result.budget == 2
    # each run trains once: base, one decay, two fine-tuned decays, one lam > 0 per ST method; two augmentation
    # levels and one ST + augmentation with fresh noise; the teacher as is, measured. The followers train in a
    # second stage at their partner's choice in each run (ST + weight decay at a chosen decay of 0 *is* ST: once)
    trained = pd.Series([g for g, _ in set(result.where.values())]).value_counts().to_dict()
    assert 2 <= trained.pop(("post", "follows")) <= 2 * 2
    assert trained == {"post": 2 * (2 + 2 + 4), "pre": 2 * 2, "connector": 2 * 2, "post, fresh noise": 2 * 2,
                       ("post, fresh noise", "follows"): 2, "measured": 2}
    base = table[table.method == "base"].set_index("seed")
    for name in ["weight decay", *names]:
        zero = table[(table.method == name) & table.config.isin(["λ = 0", "weight decay 0"])].set_index("seed")
        pd.testing.assert_series_equal(zero.test_error, base.test_error)
    for follower, partner in (("ST + weight decay", "weight decay"), ("ST from the teacher's weights",
                                                                     "fine-tuned teacher"),
                              ("ST + noise augmentation", "noise augmentation")):
        chosen = result.selected[result.selected.method == partner].set_index("seed").test_error
        at_zero = table[(table.method == follower) & (table.config == "λ = 0")].set_index("seed").test_error
        pd.testing.assert_series_equal(at_zero, chosen, check_names=False)
    tuned = table[(table.method == "fine-tuned teacher") & (table.config == "weight decay 0")].set_index("seed")
    assert not np.allclose(tuned.test_error, base.test_error), "the fine-tuned teacher starts from the teacher"
    families = result.comparisons.set_index("method")
    assert families.reference["ST + noise augmentation"] == "noise augmentation"
    assert families.reference["ST + weight decay"] == "weight decay"
    assert families.reference["ST from the teacher's weights"] == "fine-tuned teacher"
    assert families.reference["ST"] in ("base", "weight decay", "fine-tuned teacher", "teacher as is")
    assert list(nd.lam_curve(result).columns) == ["λ", "ST", "ST + noise augmentation"]
    lams = result.selected_lams("ST")  # from the runs, never parsed from a label
    assert lams.index.tolist() == [0, 1] and set(lams) <= {0.0, 1.0}
    base_like = nd.at_base(result, methods)
    assert all((result.selected_lams(m) == 0).all() for m in base_like)
    summary = nd.selected_summary(result.selected, [m.name for m in s.methods])
    shown = nd.results_table(result.selected, summary, base_like | {"rot1"})
    gain = "method vs base (above 0: method better) [95% interval]"
    assert shown.set_index("method")[gain]["rotation θ = 1"] == nd.AT_BASE
    assert shown.set_index("method")[gain]["base"] == "—"
    assert not shown["configurations chosen (runs)"].str.contains("lam=|wd=|- \\(").any()
    words = verdicts.decomposition_practice(result.comparisons, "weight decay", {"low": -1.0, "high": 1.0, "gain": 0.0})
    assert words.startswith("Match a layer") and "With a noise model" in words and "as well as" not in words
    for lams, decays, aug in (([1.0, 3.0], [0.0, 0.1], []), ([0.0, 1.0], [0.0, 0.0], []),
                              ([0.0, 1.0], [0.0, 0.1], [0.5, 1.5])):
        with pytest.raises(st.ParameterError):
            nd.the_study(lams, decays, methods, 0.5, aug, [0, 1])
    with pytest.raises(st.ParameterError, match="equal tuning budgets"):  # before any computation
        nd.run_students(task, teachers, nd.the_study([0.0, 1.0], [0.0, 0.1, 0.2], methods, 0.5, [], [0, 1]), WIDTH,
                        20, 10, 30, config, rng)


def test_comparison_table_pairs_runs_and_differences_of_gains():
    rows = []
    for seed, (a, b, c) in enumerate([(1.0, 1.5, 2.0), (1.1, 1.4, 2.2), (0.9, 1.6, 1.9)]):
        rows += [{"method": "ST", "seed": seed, "test_error": a}, {"method": "base", "seed": seed, "test_error": b},
                 {"method": "rotated", "seed": seed, "test_error": c}]
    selected = pd.DataFrame(rows)
    table = nd.comparison_table(selected, [("ST over base", ("ST", "base")),
                                           ("ST over rotated minus over base", ("ST", "rotated"), ("ST", "base"))])
    assert table.loc["ST over base", "gain"] == pytest.approx(np.mean([0.5, 0.3, 0.7]))
    assert table.loc["ST over rotated minus over base", "gain"] == pytest.approx(np.mean([0.5, 0.8, 0.3]))
    assert table.runs.tolist() == [3, 3]
    assert (table.holm_p >= table.p).all()
    shown = nd.controls_table(table)  # for the reader: one signed interval column, as protocol.interval_text prints
    gain = "first vs second (above 0: first better) [95% interval]"
    assert shown.columns.tolist() == [gain, "p", "Holm p"]
    assert shown[gain]["ST over base"] == protocol.interval_text(table.loc["ST over base"].to_dict(), nd.DIGITS)
    assert shown[gain]["ST over base"].startswith("+0.500 [")


def test_labels_are_words_and_the_reduction_rows_are_positive_when_the_first_named_is_better():
    assert [nd.label(n) for n in ("units", "rot0.5", "rot1", "mix3", "connector: rot1", "pre-activation: units")] == [
        "units", "rotation θ = 0.5", "rotation θ = 1", "mixes of 3 units", "connector: rotation θ = 1",
        "pre-activation: units"]
    # units 1.0 / rotation 2.0 after the ReLU (cost 1.0); 1.0 / 1.2 with pre-activations (cost 0.2): matching
    # pre-activations reduces the rotation's cost by about 0.8, and its row, named pre-activation first, reads +
    rows = [{"method": m, "seed": k, "test_error": e + 0.01 * k * (m == "rot1")}
            for k in range(3) for m, e in (("ST", 1.0), ("rot1", 2.0), ("pre-activation: units", 1.0),
                                           ("pre-activation: rot1", 1.2))]
    names, controls = nd.control_rows("rot1")
    wanted = [r for r in controls if r[0] == names["less_pre"]]
    assert names["less_pre"].startswith("pre-activation vs post-ReLU")
    shown = nd.controls_table(nd.comparison_table(pd.DataFrame(rows), wanted))
    assert shown.iloc[0, 0].startswith("+0.810")  # 0.8 + 0.01 k, k = 0, 1, 2
    assert nd.gain_words(pd.DataFrame([{"method": "m", "gain": -1e-5, "gain_low": -0.01, "gain_high": 0.01}]),
                         "m") == "+0.000 [-0.010, 0.010], no resolvable difference"
