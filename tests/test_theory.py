import torch

import stlearn as st
from stlearn import theory


def test_min_norm_interpolator_interpolates_with_least_norm():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 9, generator=g, dtype=torch.float64)
    y = torch.randn(5, 2, generator=g, dtype=torch.float64)
    w = theory.min_norm_interpolator(x, y)
    assert torch.allclose(x @ w.T, y, atol=1e-10)
    # adding any direction orthogonal to the data keeps interpolation but grows the norm
    p = theory.row_space_projector(x)
    extra = torch.randn(2, 9, generator=g, dtype=torch.float64) @ (torch.eye(9, dtype=torch.float64) - p)
    assert torch.allclose(x @ (w + extra).T, y, atol=1e-10)
    assert (w + extra).norm() > w.norm()


def test_batched_min_norm_matches_per_member():
    x = torch.randn(3, 4, 7, dtype=torch.float64)
    y = torch.randn(3, 4, 2, dtype=torch.float64)
    w = theory.min_norm_interpolator(x, y)
    for e in range(3):
        assert torch.allclose(w[e], theory.min_norm_interpolator(x[e], y[e]))


def test_wiener_map_isotropic_is_shrinkage_and_optimal():
    inputs = st.gaussian_inputs(6)
    target = st.linear_target(inputs, 2, seed=3)
    w_opt = theory.wiener_map(target.weight, inputs.covariance(), 0.5)
    assert torch.allclose(w_opt, target.weight / 1.25)
    e_opt = theory.linear_test_error(w_opt, target.weight, inputs.covariance(), 0.5)
    for scale in (0.7, 0.9, 1.1):
        assert theory.linear_test_error(w_opt * scale, target.weight, inputs.covariance(), 0.5) > e_opt


def test_linear_test_error_matches_monte_carlo():
    inputs = st.gaussian_inputs(5, rank=3, seed=0)
    task = st.Task(inputs, st.linear_target(inputs, 2, seed=1), sigma=0.6)
    test = st.make_split(task, 1, 200000, seed=0, dtype=torch.float64).test
    w = task.target.weight * 0.5 + 0.1
    mc = (test.y - test.noisy @ w.T).pow(2).sum(-1).mean()
    closed = theory.linear_test_error(w, task.target.weight, inputs.covariance(), 0.6)
    assert abs(mc - closed) / closed < 0.01
