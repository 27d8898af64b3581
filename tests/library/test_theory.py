"""Closed forms of :mod:`stlearn.theory` against brute force and Monte Carlo on tiny problems."""

import math

import numpy as np
import pytest
import torch

import stlearn as st
from stlearn import theory
from stlearn import theory as lt  # the chapters' name for it
from stlearn.data import randn
from stlearn.experiments.linear_common import complement, target_factors, tilted

F64 = torch.float64
RNG = st.Stream(0)


def _randn(k, *shape):
    return randn(RNG.child("reference", k), *shape)


def test_min_norm_interpolator_interpolates_with_least_norm():
    x, y = _randn(0, 5, 9), _randn(1, 5, 2)
    w = theory.min_norm_interpolator(x, y)
    assert torch.allclose(x @ w.T, y, atol=1e-10)
    # adding any direction orthogonal to the data keeps interpolation but grows the norm
    p = theory.row_space_projector(x)
    extra = _randn(2, 2, 9) @ (torch.eye(9, dtype=F64) - p)
    assert torch.allclose(x @ (w + extra).T, y, atol=1e-10)
    assert (w + extra).norm() > w.norm()


def test_batched_min_norm_matches_per_member():
    x, y = _randn(3, 3, 4, 7), _randn(4, 3, 4, 2)
    w = theory.min_norm_interpolator(x, y)
    for e in range(3):
        assert torch.allclose(w[e], theory.min_norm_interpolator(x[e], y[e]))


def test_wiener_map_isotropic_is_shrinkage_and_optimal():
    inputs = st.gaussian_inputs(6)
    target = st.linear_target(inputs, 2, rng=RNG.child("target"))
    w_opt = theory.wiener_map(target.weight, inputs.covariance(), 0.5)
    assert torch.allclose(w_opt, target.weight / 1.25)
    e_opt = theory.linear_test_error(w_opt, target.weight, inputs.covariance(), 0.5)
    for scale in (0.7, 0.9, 1.1):
        assert theory.linear_test_error(w_opt * scale, target.weight, inputs.covariance(), 0.5) > e_opt


def test_linear_test_error_matches_monte_carlo():
    inputs = st.gaussian_inputs(5, rank=3, rng=RNG.child("task"))
    task = st.Task(inputs, st.linear_target(inputs, 2, rng=RNG.child("target")), sigma=0.6)
    test = st.draw(task, 200000, RNG.child("test"), label_noise=False, dtype=F64)
    w = task.target.weight * 0.5 + 0.1
    mc = (test.y - test.noisy @ w.T).pow(2).sum(-1).mean()
    closed = theory.linear_test_error(w, task.target.weight, inputs.covariance(), 0.6)
    assert abs(mc - closed) / closed < 0.01


def test_gd_path_matches_explicit_gradient_descent():
    x, y = _randn(0, 15, 6), _randn(1, 15, 2)
    lr, steps = 0.2, [0, 1, 7, 40]
    closed = lt.gd_regression_path(x, y, lr, steps)
    w, seen = torch.zeros(2, 6, dtype=F64), []
    for t in range(max(steps) + 1):
        if t in steps:
            seen.append(w.clone())
        w = w - lr / 15 * (x @ w.T - y).T @ x
    assert torch.allclose(closed, torch.stack(seen), atol=1e-12)


def test_gd_path_tends_to_min_norm_interpolator_and_batches():
    x, y = _randn(2, 3, 5, 8), _randn(3, 3, 5, 2)  # over-parameterized, 3 members
    far = lt.gd_regression_path(x, y, 0.3, [20000])[0]
    assert torch.allclose(far, theory.min_norm_interpolator(x, y), atol=1e-8)


def test_gd_path_rejects_unstable_rate():
    x, y = _randn(4, 10, 3), _randn(5, 10, 1)
    with pytest.raises(st.ParameterError, match="lr"):
        lt.gd_regression_path(x, y, 100.0, [1])


def test_reduced_rank_regression_is_the_best_low_rank_fit():
    x, y = _randn(6, 40, 5), _randn(7, 40, 4)
    w = lt.reduced_rank_regression(x, y, 2)
    assert torch.linalg.matrix_rank(w) == 2

    def loss(m):
        return float((x @ m.T - y).pow(2).sum())

    for k in range(200):  # random rank-2 maps never fit better
        m = randn(RNG.child("direction", k, 0), 4, 2) @ randn(RNG.child("direction", k, 1), 2, 5)
        assert loss(m) >= loss(w) - 1e-9
    assert torch.allclose(lt.reduced_rank_regression(x, y, 4), theory.min_norm_interpolator(x, y), atol=1e-10)


def test_two_stage_estimator_is_the_large_lambda_minimizer():
    # brute force: alternating exact minimization of the ST loss at a huge lambda
    x_noisy, t, y = _randn(9, 30, 5), _randn(10, 30, 2), _randn(11, 30, 3)
    lam, w2 = 1e6, _randn(12, 3, 2)
    for _ in range(200):
        rhs = x_noisy.T @ (y @ w2 + lam * t)
        inner = torch.linalg.inv(w2.T @ w2 + lam * torch.eye(2, dtype=F64))
        w1 = torch.linalg.solve(x_noisy.T @ x_noisy, rhs @ inner).T
        z = x_noisy @ w1.T
        w2 = theory.min_norm_interpolator(z, y)
    assert torch.allclose(w2 @ w1, lt.two_stage_estimator(x_noisy, t, y), atol=1e-5)


def test_coincidence_gap_zero_for_perfect_teacher_positive_otherwise():
    d, n = 6, 30
    w_star = _randn(13, 3, 2) @ _randn(14, 2, d)
    a, b = target_factors(w_star)
    x = _randn(15, n, d)
    x_noisy = x + 0.5 * _randn(16, n, d)

    def fitted(yy):
        return x_noisy @ theory.min_norm_interpolator(x_noisy, yy).T

    y = x @ w_star.T
    assert float(lt.coincidence_gap(x_noisy, x @ b.T, fitted(y))) < 1e-10
    noisy_y = y + 0.5 * _randn(17, n, 3)
    assert float(lt.coincidence_gap(x_noisy, x @ b.T, fitted(noisy_y))) > 1e-3
    wide = torch.cat([b, complement(b, d - 2, RNG.child("direction"))])
    assert float(lt.coincidence_gap(x_noisy, x @ wide.T, fitted(noisy_y))) < 1e-10


def test_tilted_rows_have_the_requested_principal_angles():
    b = torch.linalg.qr(_randn(18, 8, 3))[0].T
    c = tilted(b, 0.4, RNG.child("direction"))
    cosines = torch.linalg.svdvals(b @ c.T)
    assert torch.allclose(cosines, torch.full((3,), math.cos(0.4), dtype=F64), atol=1e-12)


def test_base_error_formula_matches_monte_carlo():
    d, d_y, sigma, s, n = 4, 2, 0.7, 0.5, 20
    inputs = st.gaussian_inputs(d)
    task = st.Task(inputs, st.linear_target(inputs, d_y, rng=RNG.child("target")), sigma=sigma, label_noise=s)
    split = st.draw_members(task, n, RNG.children("student_data", 4000), dtype=F64)
    w = theory.min_norm_interpolator(split.noisy, split.y)
    errs = theory.linear_test_error(w, task.target.weight, inputs.covariance(), sigma).numpy()
    predicted = lt.base_error(task.target.weight, sigma, s, n)
    assert abs(errs.mean() - predicted) < 4 * errs.std() / np.sqrt(errs.size)


def two_stage_errors(d, d_y, r, sigma, s, n, tilt, members):
    """A rank-``r`` task, its target directions ``b``, a teacher ``q`` tilted away from them, and the two-stage
    estimator's test error on ``members`` independent training sets of ``n`` samples."""
    inputs = st.gaussian_inputs(d)
    task = st.Task(inputs, st.linear_target(inputs, d_y, rank=r, rng=RNG.child("target")), sigma=sigma,
                   label_noise=s)
    _, b = target_factors(task.target.weight)
    q = tilted(b, tilt, RNG.child("direction"))
    split = st.draw_members(task, n, RNG.children("student_data", members), dtype=F64)
    w = lt.two_stage_estimator(split.noisy, split.clean @ q.T, split.y)
    return task, b, q, theory.linear_test_error(w, task.target.weight, inputs.covariance(), sigma).numpy()


def test_two_stage_error_formula_at_large_n():
    d, d_y, r, sigma, s, n = 6, 3, 2, 0.5, 1.0, 400
    task, b, q, errs = two_stage_errors(d, d_y, r, sigma, s, n, tilt=0.2, members=400)
    predicted = lt.two_stage_error(task.target.weight, q, sigma, s, n)
    assert abs(errs.mean() / predicted - 1) < 0.02
    perfect = lt.two_stage_error(task.target.weight, b, sigma, s, math.inf)
    assert perfect == pytest.approx(lt.mmse(task.target.weight, sigma))


def test_crossover_is_where_the_errors_meet():
    w_star = _randn(20, 3, 2) @ torch.linalg.qr(_randn(21, 10, 2))[0].T
    _, b = target_factors(w_star)
    q = tilted(b, 0.15, RNG.child("direction"))
    n_star = lt.crossover_samples(w_star, q, 0.5, 1.0, finite_sample=False)
    m = lt.mmse(w_star, 0.5)

    def base_leading(n):
        return m + (m + 3 * 1.0) * 10 / n

    assert lt.two_stage_error(w_star, q, 0.5, 1.0, n_star, finite_sample=False) == pytest.approx(base_leading(n_star))
    n_exact = lt.crossover_samples(w_star, q, 0.5, 1.0)
    assert lt.two_stage_gain(w_star, q, 0.5, 1.0, int(n_exact * 0.9)) > 0 > lt.two_stage_gain(w_star, q, 0.5, 1.0,
                                                                                              int(n_exact * 1.1) + 1)
    assert math.isinf(lt.crossover_samples(w_star, b, 0.5, 1.0))
    assert lt.knowledge_deficit(w_star, b) == pytest.approx(0.0, abs=1e-10)


def test_gain_of_a_teacher_that_carries_the_target():
    w_star = _randn(22, 3, 2) @ torch.linalg.qr(_randn(23, 10, 2))[0].T
    _, b = target_factors(w_star)
    wider = torch.cat([b, complement(b, 3, RNG.child("direction"))])
    gain = lt.two_stage_gain(w_star, wider, 0.5, 2.0, 100, finite_sample=False)
    assert gain == pytest.approx(3 * 4.0 * (10 - 5) / 100)
    assert lt.two_stage_gain(w_star, wider, 0.5, 2.0, 100) == pytest.approx(3 * 4.0 * (10 / 89 - 5 / 94))
    full = torch.cat([b, complement(b, 8, RNG.child("direction"))])
    assert lt.two_stage_gain(w_star, full, 0.5, 2.0, 100) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- theory_finite
from stlearn import theory_finite as tf  # noqa: E402


def _st_problem(seed, n=40, d=8, h=2, d_y=3, members=None):
    lead = () if members is None else (members,)
    x = _randn(100 + seed, *lead, n, d)
    t = x @ _randn(101 + seed, d, h) + 0.1 * _randn(102 + seed, *lead, n, h)
    y = x @ _randn(103 + seed, d, d_y) + 0.3 * _randn(104 + seed, *lead, n, d_y)
    return x + 0.5 * _randn(105 + seed, *lead, n, d), t, y


@pytest.mark.parametrize("lam", [0.3, 3.0, 30.0])
def test_closed_form_st_minimizer_has_zero_gradient_and_its_value(lam):
    x, t, y = _st_problem(0)
    m = tf.st_minimizer(x, t, y, lam)
    g1, g2 = tf.st_gradients(x, t, y, m.w1, m.w2, lam)
    assert float(g1.abs().max()) < 1e-10 and float(g2.abs().max()) < 1e-10
    assert float(tf.st_loss(x, t, y, m.w1, m.w2, lam)) == pytest.approx(float(m.value), rel=1e-10)
    assert torch.allclose(m.w2 @ m.w1, m.end_to_end, atol=1e-10)
    # no random pair does better, and the fixed-head optimum of the closed-form head is the closed-form first layer
    for k in range(20):
        w1, w2 = _randn(200 + k, 2, 8), _randn(300 + k, 3, 2)
        assert float(tf.st_loss(x, t, y, w1, w2, lam)) > float(m.value)
    inner = torch.linalg.solve(m.w2.T @ m.w2 + lam * torch.eye(2, dtype=F64), m.w2.T @ y.T + lam * t.T)
    w1_head = inner @ x @ torch.linalg.inv(x.T @ x)
    assert torch.allclose(w1_head, m.w1, atol=1e-8)


def test_closed_form_st_minimizer_limits_and_members():
    x, t, y = _st_problem(1, members=3)
    m0 = tf.st_minimizer(x, t, y, 0.0)
    assert torch.allclose(m0.end_to_end, lt.reduced_rank_regression(x, y, 2), atol=1e-10)
    big = tf.st_minimizer(x, t, y, 1e9)
    assert torch.allclose(big.end_to_end, lt.two_stage_estimator(x, t, y), atol=1e-6)
    lams = torch.tensor([0.5, 5.0, 50.0], dtype=F64)
    batch = tf.st_minimizer(x, t, y, lams)
    for e in range(3):
        assert torch.allclose(batch.end_to_end[e], tf.st_minimizer(x[e], t[e], y[e], float(lams[e])).end_to_end)
    with pytest.raises(st.ParameterError, match="lam"):
        tf.st_minimizer(x, t, y, -1.0)


def test_gradient_descent_reaches_the_closed_form_minimizer():
    x, t, y = _st_problem(2, members=3)
    lams = torch.tensor([0.0, 1.0, 10.0], dtype=F64)
    run = tf.gradient_descent(x, t, y, lams, 2, [RNG.child("student_init", k) for k in range(3)], tol=1e-10)
    assert bool(run.converged.all())
    closed = tf.st_minimizer(x, t, y, lams).end_to_end
    assert torch.allclose(run.w2 @ run.w1, closed, atol=1e-6)


def test_silent_unit_leaves_no_minimizer():
    x, t, y = _st_problem(3)
    padded = torch.cat([t, torch.zeros_like(t[:, :1])], dim=1)  # a third, silent unit
    m = tf.st_minimizer(x, padded, y, 1.0)
    assert float(m.head_conditioning) < 1e-12  # R^T T is singular: the infimum is not attained
    # the eps construction approaches the infimum
    values = []
    r_full = tf.st_minimizer(x, padded, y, 1.0)
    for eps in (1e-1, 1e-2, 1e-3):
        w1 = r_full.w1.clone()
        w1[2] = eps * _randn(400, 8)
        phi = x @ w1.T
        w2 = theory.min_norm_interpolator(phi, y)
        values.append(float(tf.st_loss(x, padded, y, w1, w2, 1.0)))
    assert values[0] > values[1] > values[2] > float(m.value) - 1e-9


def test_two_stage_pieces_add_up_and_scalars_at_zero_noise():
    d, d_y, r, sigma, n = 7, 3, 2, 0.6, 30
    inputs = st.gaussian_inputs(d)
    task = st.Task(inputs, st.linear_target(inputs, d_y, rank=r, rng=RNG.child("target")), sigma=sigma,
                   label_noise=0.4)
    _, b = target_factors(task.target.weight)
    q = tilted(b, 0.3, RNG.child("direction"))
    data = st.draw(task, n, RNG.child("student_data"), dtype=F64)
    p = tf.two_stage_pieces(data.clean, data.noisy, data.y, q, task.target.weight, sigma)
    assert torch.allclose(p["stage_one"] + p["bias"] + p["noise"], p["w_st"] - p["c_w_star"], atol=1e-10)
    tau, alpha = tf.two_stage_scalars(n, d, r, 0.0, 3000, RNG)
    assert float(tau.mean()) == pytest.approx(r / (n - r - 1), rel=0.05)
    assert float(alpha.mean()) - 1 == pytest.approx(r / (n - r - 1), rel=0.1)


def test_exact_two_stage_risk_matches_monte_carlo():
    d, d_y, r, sigma, s, n = 6, 3, 2, 1.5, 0.5, 20
    task, _, q, errs = two_stage_errors(d, d_y, r, sigma, s, n, tilt=0.4, members=4000)
    tau, alpha = tf.two_stage_scalars(n, d, r, sigma, 4000, RNG.child("reference", 7))
    exact = tf.two_stage_error_exact(task.target.weight, q, sigma, s, n, float(tau.mean()), float(alpha.mean()))
    spread = 4 * errs.std() / np.sqrt(errs.size) + 0.01 * exact
    assert abs(errs.mean() - exact) < spread


def test_knowledge_slope_and_window():
    d, k, sigma = 30, 3, 2.0
    lo, hi = tf.knowledge_window(d, k, sigma)
    assert lo == 31.0 and hi == pytest.approx(148.56, abs=0.01)  # near (1 + sigma^2) d + 1 = 151
    assert tf.knowledge_slope(d, k, sigma, hi) == pytest.approx(0.0, abs=1e-12)
    assert tf.knowledge_slope(d, k, sigma, 140) > 0 > tf.knowledge_slope(d, k, sigma, 160)
    # the leading order in 1/n puts the sign change at sigma^2 d - k = 117: not the finite form's when n ~ d
    assert tf.knowledge_slope(d, k, sigma, 117, finite_sample=False) == pytest.approx(0.0, abs=1e-12)
    # proportional scaling: N_w / d tends to 1 + sigma^2
    assert tf.knowledge_window(10**6, k, sigma)[1] / 10**6 == pytest.approx(1 + sigma**2, rel=1e-5)
    # with the values of the claim, the exact form is the finite form
    n = 50
    tau = k / (n - k - 1)
    assert tf.knowledge_slope(d, k, sigma, n, tau=tau, alpha=1 + (1 - sigma**2) * tau) == pytest.approx(
        tf.knowledge_slope(d, k, sigma, n))


@pytest.mark.parametrize("n, h", [(60, 2), (8, 30)])  # a bottleneck, and none (h >= rank X)
def test_st_minimizer_with_a_vector_of_lams_is_one_minimizer_per_lam_on_the_same_data(n, h):
    g = torch.Generator().manual_seed(3)
    x, t, y = (torch.randn(n, k, generator=g, dtype=torch.float64) for k in (20, h, 3))
    lams = [0.01, 1.0, 100.0]
    many = tf.st_minimizer(x, t, y, torch.tensor(lams, dtype=torch.float64))
    for i, lam in enumerate(lams):
        one = tf.st_minimizer(x, t, y, lam)
        for field in ("w1", "w2", "end_to_end", "value", "gap", "head_conditioning"):
            assert torch.allclose(getattr(many, field)[i], getattr(one, field), rtol=1e-10, atol=1e-12), field
