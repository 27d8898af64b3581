"""The zero-loss chapter's trainer (stlearn.experiments.zero_loss): gradients, curvature bound, stopping, checks."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import stlearn as st
from stlearn.experiments import zero_loss as zl
from stlearn.losses import student_teacher_loss

F64 = torch.float64
RNG = st.Stream(0)


def _task(d=8, rank=3, d_out=2, sigma=0.5):
    inputs = st.gaussian_inputs(d, rank=rank, rng=RNG.child("task"))
    return st.Task(inputs, st.linear_target(inputs, d_out, rng=RNG.child("target")), sigma=sigma)


def _students(task, widths, members=3, n=5, init=0.3):
    data = st.draw_members(task, n, RNG.children("student_data", members), dtype=F64)
    model = st.DeepLinear(widths, members=members, init_scale=init, rng=RNG.children("student_init", members),
                          dtype=F64)
    return data, model


def _features(n, widths, members):
    """Random teacher features for the hidden layers, one set per member."""
    return {m: torch.randn(members, n, widths[m], generator=torch.Generator().manual_seed(m), dtype=F64)
            for m in range(1, len(widths) - 1)}


def test_gradients_match_autograd_of_the_st_loss():
    task, widths = _task(), [8, 4, 3, 2]
    data, model = _students(task, widths)
    targets, lam = _features(5, widths, 3), torch.tensor([0.0, 1.0, 10.0], dtype=F64)
    weights = [layer.weight for layer in model.layers]
    hs, residuals = zl.st_forward([w.detach() for w in weights], data.noisy, data.y, targets)
    ours = zl.st_weight_gradients([w.detach() for w in weights], hs, residuals, lam)
    out, feats = model(data.noisy, return_features=True)
    teacher = {f"h{m}": t for m, t in targets.items()}
    student_teacher_loss(out, feats, data.y, teacher, lam, list(teacher), "mse")["total"].sum().backward()
    for g, w in zip(ours, weights):
        torch.testing.assert_close(g, w.grad, rtol=1e-10, atol=1e-12)


def _flat_loss(shapes, x, y, targets, lam):
    def loss(flat):
        ws, at = [], 0
        for shape in shapes:
            size = math.prod(shape)
            ws.append(flat[at:at + size].reshape(shape))
            at += size
        _, residuals = zl.st_forward(ws, x, y, targets)
        depth = len(ws)
        return sum((1.0 if m == depth else lam) * r.pow(2).sum() for m, r in residuals.items()) / (2 * x.shape[0])
    return loss


@pytest.mark.parametrize("depth", [2, 3])
def test_the_curvature_bound_holds_for_the_exact_hessian(depth):
    """``H <= L diag(c_j)``: the Hessian, scaled by the layer curvatures, has eigenvalues at most ``L``."""
    task = _task()
    widths = [8] + [4] * (depth - 1) + [2]
    data, model = _students(task, widths, members=1, init=1.0)
    lam = 3.0
    targets = {m: t[0] for m, t in _features(5, widths, 1).items()}
    weights = [layer.weight.detach()[0] for layer in model.layers]
    x, y = data.noisy[0], data.y[0]
    hs, residuals = zl.st_forward(weights, x, y, targets)
    top = zl.TopSingular()
    for _ in range(50):  # converge the power iterations
        curv = zl.layer_curvatures(weights, hs, residuals, torch.tensor(lam, dtype=F64), top,
                                   torch.linalg.matrix_norm(x, ord=2))
    flat = torch.cat([w.reshape(-1) for w in weights])
    hessian = torch.autograd.functional.hessian(_flat_loss([w.shape for w in weights], x, y, targets, lam), flat)
    scale = torch.cat([torch.full((w.numel(),), float(c), dtype=F64) for w, c in zip(weights, curv)]).rsqrt()
    top_eig = torch.linalg.eigvalsh(scale[:, None] * hessian * scale[None, :])[-1]
    assert top_eig <= depth * (1 + 1e-9)
    assert top_eig > 0.1  # and the bound is not vacuous


def test_power_iterations_find_the_largest_singular_value_of_a_product():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 6, 5, generator=gen, dtype=F64), torch.randn(3, 4, 6, generator=gen, dtype=F64)
    top = zl.TopSingular()
    for _ in range(20):
        estimate = top("ba", [a, b])
    torch.testing.assert_close(estimate, torch.linalg.matrix_norm(b @ a, ord=2), rtol=1e-8, atol=0)


def test_rates_scale_with_the_fraction_and_the_momentum():
    rates = zl.descent_rates([torch.tensor(2.0), torch.tensor(4.0)], 0.5, 0.9)
    assert [float(r) for r in rates] == pytest.approx([0.5 * 3.8 / 4, 0.5 * 3.8 / 8])


def test_students_fit_to_zero_loss_and_stopped_members_match_their_solo_runs():
    task, widths = _task(), [8, 6, 2]
    data, model = _students(task, widths, members=3)
    targets = _features(5, widths, 3)
    lam = [0.0, 1.0, 4.0]
    w1_outside = model.layers[0].weight.detach() @ (torch.eye(8, dtype=F64) - st.theory.row_space_projector(data.noisy))
    check = zl.StudentFit(model, data)
    fit = zl.fit_to_zero_loss(model, data, targets, lam, zl.Descent(progress=False), check)
    assert fit.converged.all() and (fit.fitted_at > 0).all() and len(set(fit.fitted_at)) > 1
    outside = model.layers[0].weight.detach() @ (torch.eye(8, dtype=F64) - st.theory.row_space_projector(data.noisy))
    torch.testing.assert_close(outside, w1_outside, rtol=0, atol=1e-12)  # the lemma: any step sizes
    for e in range(3):  # each member trains as it would alone, though the others stop earlier or later
        solo_data = st.data.Samples(data.clean[e:e + 1], data.noisy[e:e + 1], data.y[e:e + 1])
        solo = st.DeepLinear(widths, members=1, init_scale=0.3, rng=[RNG.child("student_init", e)], dtype=F64)
        solo_fit = zl.fit_to_zero_loss(solo, solo_data, {m: t[e:e + 1] for m, t in targets.items()}, [lam[e]],
                                       zl.Descent(progress=False), zl.StudentFit(solo, solo_data))
        assert solo_fit.fitted_at[0] == fit.fitted_at[e]
        torch.testing.assert_close(solo.end_to_end()[0], model.end_to_end()[e], rtol=1e-9, atol=1e-12)
    final = fit.history[fit.history.step == fit.steps]
    assert set(final.lam) == set(lam) and len(final) == 3


def test_a_run_that_hits_the_cap_names_a_cap_that_works():
    task, widths = _task(), [8, 6, 2]
    data, model = _students(task, widths, members=2)
    check = zl.StudentFit(model, data)
    short = zl.Descent(steps=40, progress=False)
    fit = zl.fit_to_zero_loss(model, data, {}, 0.0, short, check)
    assert not fit.converged.all()
    with pytest.raises(st.ParameterError, match=r"raise steps to at least (\d+)") as err:
        zl.require_fitted(fit, check.shortfall, short, "runs")
    needed = int(err.value.args[0].rsplit(" ", 1)[-1])
    _, again = _students(task, widths, members=2)
    refit = zl.fit_to_zero_loss(again, data, {}, 0.0, zl.Descent(steps=needed, progress=False),
                                zl.StudentFit(again, data))
    assert refit.converged.all()


def test_required_steps_extrapolate_the_measured_rate():
    steps = np.arange(0, 1001, 50)
    history = pd.DataFrame({"step": steps, "member": 0, "train_task": np.exp(-0.01 * steps)})
    # the loss must fall by e^5 more: 500 steps at rate 0.01, plus 20% margin on the total 1500
    assert zl.required_steps(history, np.array([math.exp(5.0)]), 1000) == 1800
    assert zl.required_steps(history, np.array([0.5]), 1000) == 1200  # fitted: nothing to add
    flat = history.assign(train_task=1.0)
    assert zl.required_steps(flat, np.array([10.0]), 1000) is None


def test_a_teacher_fits_its_clean_data_and_carries_the_targets():
    task = _task(d=8, rank=3, d_out=2)
    descent = zl.Descent(progress=False)
    teachers = zl.clean_teachers(task, 4, [2, 3], 30, RNG, descent)
    data = st.draw_members(task, 5, RNG.children("student_data", 2), dtype=F64)
    for teacher in teachers.values():
        clean = st.draw(task, 30, RNG.child("teacher_data", 0), dtype=F64)
        loss = (teacher.model(clean.clean) - clean.y).pow(2).sum() / clean.y.pow(2).sum()
        assert loss <= zl.TEACHER_TOL
    zl.check_teachers_carry_targets(teachers, data, task.inputs.rank)


def test_a_teacher_that_misses_the_targets_is_caught_before_training():
    task = _task(d=8, rank=4, d_out=3)
    teachers = zl.clean_teachers(task, 2, [2], 2, RNG, zl.Descent(progress=False))  # 2 samples, 2 hidden units
    data = st.draw_members(task, 5, RNG.children("student_data", 2), dtype=F64)
    with pytest.raises(st.ParameterError, match="n_teacher >= rank = 4"):
        zl.check_teachers_carry_targets(teachers, data, task.inputs.rank)


def test_inputs_without_noise_that_cannot_have_full_rank_are_refused():
    task = _task(sigma=0.0)
    data = st.draw_members(task, 5, RNG.children("student_data", 2), dtype=F64)
    with pytest.raises(st.ParameterError, match=r"sigma must be > 0 \(e.g. 0.5\), or n_train <= rank = 3"):
        zl.check_conditioning(data.noisy, task, zl.Descent())


def test_ill_conditioned_inputs_ask_for_more_steps_before_training():
    task = _task(d=8, rank=3, sigma=1e-3)
    data = st.draw_members(task, 5, RNG.children("student_data", 2), dtype=F64)
    with pytest.raises(st.ParameterError, match=r"raise steps to at least \d+"):
        zl.check_conditioning(data.noisy, task, zl.Descent(steps=1000))
    noisier = _task()
    zl.check_conditioning(st.draw_members(noisier, 5, RNG.children("student_data", 2), dtype=F64).noisy, noisier,
                          zl.Descent(steps=1000))


def test_too_much_noise_names_a_noise_level_where_learning_helps():
    task = _task(d=8, rank=3, sigma=20.0)
    with pytest.raises(st.ParameterError, match=r"lower sigma to at most ([\d.e-]+)") as err:
        zl.check_learning_helps(task, 7, RNG, [0, 1])
    zl.check_learning_helps(task.with_noise(float(err.value.args[0].rsplit(" ", 1)[-1])), 7, RNG, [0, 1])


@pytest.mark.parametrize(("sizes", "message"), [
    ((10, 11, 2, 5, 4), "rank must be <= d = 10"),
    ((10, 3, 2, 11, 4), "n_train must be <= d = 10"),
    ((10, 3, 2, 5, 1), r"hidden must be >= min\(d_out, rank\) = 2"),
])
def test_sizes_that_cannot_interpolate_are_refused(sizes, message):
    with pytest.raises(st.ParameterError, match=message):
        zl.check_sizes(*sizes)


def test_students_deeper_than_three_are_refused():
    with pytest.raises(st.ParameterError, match=r"depths must all be <= 3 \(e.g. \[2, 3\]\)"):
        zl.check_depths([3, 5])
    zl.check_depths([2, 3])


@pytest.mark.parametrize(("scales", "message"), [
    ([0.1, 0.1], "at least two distinct"), ([0.3, 0.01], "must all be <= 0.1"), ([0.1, 0.05], "a scale <= 0.03"),
])
def test_init_scales_outside_the_small_init_regime_are_refused(scales, message):
    with pytest.raises(st.ParameterError, match=message):
        zl.check_init_scales(scales)
    zl.check_init_scales([0.1, 0.03])


def test_the_sweep_trains_hardest_first_and_reports_every_member():
    assert zl.hardest_first([2, 3], [0.1, 0.03]) == [(3, 0.03), (3, 0.1), (2, 0.03), (2, 0.1)]
    task = _task()
    descent = zl.Descent(progress=False)
    teachers = zl.clean_teachers(task, 4, [2], 30, RNG, descent)
    summary, history = zl.interpolation_sweep(task, 5, 9, 4, [2], [0.0, 1.0], [0.1, 0.03], RNG, [0, 1], teachers,
                                              descent)
    assert len(summary) == 2 * 2 * 2 and list(summary.init_scale.unique()) == [0.1, 0.03]
    assert (summary.identity_gap < 1e-10).all() and (summary.invariance_gap < 1e-10).all()
    assert (summary.residual_term <= 1.001 * zl.RESIDUAL_SHARE * summary.init_term).all()
    assert {"test_noisy", "lam", "seed", "depth", "init_scale"} <= set(history.columns)


def test_against_yardstick_gives_the_relative_gain_over_tuned_ridge_and_its_table_prints_it_signed_in_percent():
    ridge = pd.DataFrame({"seed": [0, 1, 2], "ridge": [2.0, 2.2, 1.8], "min_norm": [2.1, 2.4, 1.7]})
    students = pd.DataFrame({"seed": [0, 1, 2], "depth": 2, "lam": 0.0, "test_error": [1.9, 2.0, 1.6]})
    versus = zl.against_yardstick(students, ridge)
    assert versus.student.tolist() == ["min-norm interpolator", "depth 2, base (λ = 0)"]
    assert versus["relative gain"].tolist() == pytest.approx(versus.gain / 2.0)  # over ridge's mean error
    assert versus.verdict.tolist()[1] == "student"  # ridge minus student: 0.1, 0.2, 0.2
    shown = zl.yardstick_table(versus)
    column = "student vs tuned ridge, % (above 0: student better) [95% interval]"
    assert shown.columns.tolist() == ["student", "student's test error", "tuned ridge's test error", column,
                                      "verdict"]
    m, lo, hi = st.stats.mean_ci(np.array([0.1, 0.2, 0.2]) / 2.0 * 100)
    assert shown[column][1] == f"+{m:.1f} [{lo:.1f}, {hi:.1f}]"  # the linear chapters' one form: 1 decimal, signed
    assert shown.verdict.tolist()[1] == "the student is better"
