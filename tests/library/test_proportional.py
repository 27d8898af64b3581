"""Proportional-regime risks (stlearn.proportional) against the Marchenko-Pastur law and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import stlearn as st
from stlearn import proportional as pr
from stlearn.experiments import linear_proportional as lp


@pytest.mark.parametrize("q", [0.3, 1.0, 2.5])
def test_stieltjes_transform_solves_its_equation_and_matches_the_density(q):
    assert pr.mp_integral(lambda x: 1.0, q) == pytest.approx(1.0, abs=1e-9)
    assert pr.mp_integral(lambda x: x, q) == pytest.approx(1.0, abs=1e-9)  # mean eigenvalue of G G^T / N
    for lam in (0.05, 1.0):
        if q == 1.0 and lam < 0.1:
            continue
        m = pr.mp_stieltjes(-lam, q)
        assert m == pytest.approx(pr.mp_integral(lambda x, lam=lam: 1 / (x + lam), q), rel=1e-8)
        second = pr.mp_integral(lambda x, lam=lam: 1 / (x + lam) ** 2, q)
        assert pr.mp_stieltjes_derivative(-lam, q) == pytest.approx(second, rel=1e-7)
    z = 0.7 + 0.3j
    m = pr.mp_stieltjes(z, q)
    assert abs(q * z * m * m - (1 - q - z) * m + 1) < 1e-12 and m.imag > 0


def test_min_norm_is_the_ridgeless_limit_of_ridge_and_the_long_time_limit_of_the_flow():
    for gamma in (0.5, 2.0):
        mn = pr.min_norm_risk(gamma, 1.0, 0.5)
        assert pr.ridge_risk(gamma, 1e-6, 1.0, 0.5) == pytest.approx(mn, rel=1e-4)
        assert pr.flow_risk(gamma, 1e5, 1.0, 0.5) == pytest.approx(mn, rel=1e-3)
    assert pr.spiked_ridge(2.0, 0.0, 1.0, 0.0, 1.0, 0.5) == pytest.approx(pr.min_norm_risk(2.0, 1.0, 0.5))
    assert pr.spiked_ridge(0.5, 0.0, 1.0, 0.0, 1.0, 0.5) == pytest.approx(pr.min_norm_risk(0.5, 1.0, 0.5))
    assert pr.spiked_ridge(0.5, 0.3, 1.0, 0.0, 1.0, 0.5) == pytest.approx(pr.ridge_risk(0.5, 0.3, 1.0, 0.5), rel=1e-8)


def test_optimal_ridge_is_a_minimum():
    lam, risk = pr.optimal_ridge(1.5, 1.0, 0.8)
    for other in (lam / 2, lam * 2):
        assert pr.ridge_risk(1.5, other, 1.0, 0.8) > risk


def test_formulas_match_a_moderate_simulation():
    d, d_out, sigma, s = 120, 2, 1.0, 0.5
    p = pr.noisy_inputs(d_out, sigma, s, d_out)
    df = lp.isotropic_runs(d, d_out, sigma, s, [0.5, 3.0], 4, st.Stream(0), lambda g: 0.3, lambda g: 2.0)
    means = df.groupby(["gamma", "estimator"]).test_error.mean()
    for gamma in (0.5, 3.0):
        assert means[(gamma, "min-norm")] == pytest.approx(p["mmse"] + pr.min_norm_risk(gamma, p["r2"], p["noise"]),
                                                           rel=0.12)
        assert means[(gamma, "ridge")] == pytest.approx(p["mmse"] + pr.ridge_risk(gamma, 0.3 * p["c"], p["r2"],
                                                                                  p["noise"]), rel=0.05)
        assert means[(gamma, "flow")] == pytest.approx(p["mmse"] + pr.flow_risk(gamma, 2.0 / p["c"], p["r2"],
                                                                                p["noise"]), rel=0.05)


def test_two_stage_limit_and_crossover():
    gamma_star = pr.crossover_gamma(1.0, 0.5, 2, 1.0)
    assert gamma_star == pytest.approx(3.0)
    assert pr.two_stage_limit(gamma_star, 1.0, 0.5, 2, 1.0, 1.0) == pytest.approx(pr.base_limit(gamma_star, 1.0, 0.5,
                                                                                                 2, 2.0))
    # the finite-d formula of stlearn.theory tends to the limit as d grows at fixed gamma
    w_star, q = lp.target_and_teacher(2000, 2, 1, st.Stream(0))
    finite = st.theory.two_stage_error(w_star, q, 1.0, 0.5, 4000)
    assert finite == pytest.approx(pr.two_stage_limit(2.0, 1.0, 0.5, 2, 1.0, 1.0), rel=2e-3)
    base = st.theory.base_error(w_star, 1.0, 0.5, 4000)
    assert base == pytest.approx(pr.base_limit(2.0, 1.0, 0.5, 2, 2.0), rel=2e-3)


def test_flow_maps_reach_least_squares():
    x = st.data.randn(st.Stream(1), 50, 10).to(torch.float64)
    y = st.data.randn(st.Stream(2), 50, 2).to(torch.float64)
    w = lp.flow_maps(x, y, [1e4])[0]
    assert torch.allclose(w, st.theory.min_norm_interpolator(x, y), atol=1e-8)
    assert torch.allclose(lp.flow_maps(x, y, [0.0])[0], torch.zeros(2, 10, dtype=torch.float64))


def test_bad_parameters_raise():
    with pytest.raises(st.ParameterError, match="gamma"):
        pr.two_stage_limit(0.5, 1.0, 0.5, 2, 1.0, 1.0)
    with pytest.raises(st.ParameterError, match="gamma"):
        pr.min_norm_risk(-1.0, 1.0, 1.0)
    assert math.isinf(pr.min_norm_risk(1.0, 1.0, 1.0))
    assert np.isfinite(pr.flow_risk(1.0, 3.0, 1.0, 1.0))


def test_optimal_ridge_closed_form_matches_the_stieltjes_form():
    for gamma in (1.2, 2.0, 7.0):
        assert float(pr.optimal_ridge_risk(gamma, 1.3, 0.7)) == pytest.approx(pr.optimal_ridge(gamma, 1.3, 0.7)[1],
                                                                              rel=1e-10)
    with pytest.raises(st.ParameterError, match="gamma"):
        pr.optimal_ridge_risk(0.0, 1.0, 1.0)


def test_st_beats_tuned_ridge_only_inside_the_window():
    # the numbers: never at the proportional chapter's parameters; about [1.5, 6.6] at s = 1, d_y = 6
    assert pr.ridge_window(1.0, 0.5, 2, 1.0, 1.0) is None
    low, high = pr.ridge_window(0.5, 1.0, 6, 5.0, 1.0)
    assert low == pytest.approx(1.503, abs=2e-3) and high == pytest.approx(6.671, abs=2e-3)
    assert 1 + 0.5**2 < low < high < pr.crossover_gamma(0.5, 1.0, 6, 1.0)
    assert pr.ridge_gap(low, 0.5, 1.0, 6, 5.0, 1.0) == pytest.approx(0.0, abs=1e-10)
    # a perfect teacher wins at every large ratio when there is label noise, never without it
    low, high = pr.ridge_window(1.0, 0.5, 2, 2.0, 0.0)
    assert low == pytest.approx(4.5616, abs=1e-3) and math.isinf(high)
    assert pr.ridge_window(1.0, 0.0, 2, 2.0, 0.0) is None
    assert pr.necessary_window(1.0, 0.0, 2, 1.0) == (2.0, 2.0)  # no label noise: the window is empty
    # a teacher that carries nothing makes ST predict zero, which tuned ridge always beats
    assert pr.ridge_window(1.0, 3.0, 2, 0.0, 2.0) is None


def test_ridge_gap_matches_simulation():
    d, gamma, s = 120, 4.0, 3.0
    runs = lp.ridge_map_runs(d, 2, 0, 1.0, [(gamma, s)], 12, st.Stream(3))
    limit = float(pr.ridge_gap(gamma, 1.0, s, 2, 2.0, 0.0))
    extra = lp.gap_allowances(d, 2, 1.0, s, 0)["extra"](gamma)  # stage two's finite-n variance
    assert limit > 0.3 and abs(runs.gap.mean() - limit) < 4 * runs.gap.sem() + extra + 0.05 * limit
