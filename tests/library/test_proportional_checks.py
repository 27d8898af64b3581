"""The tolerances of the proportional chapter's formula checks (stlearn.experiments.linear_proportional)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import stlearn as st
from stlearn.experiments import linear_proportional as lp


def test_z_limit_is_the_bonferroni_t_quantile():
    assert lp.z_limit(10, 1, alpha=0.05) == pytest.approx(2.262, abs=1e-3)  # t_9 at 0.975
    assert lp.z_limit(10, 100) > lp.z_limit(20, 100) > lp.z_limit(20, 1)
    with pytest.raises(st.ParameterError):
        lp.z_limit(1, 10)


def test_ratios_near_the_threshold_are_refused_with_a_value_that_works():
    lp.check_ratios(200, gammas=[0.25, 1.5], flow_gamma=2.0)
    with pytest.raises(st.ParameterError, match=r"gammas .*0\.97.*e\.g\. gammas = \[0\.25, 0\.9475\]"):
        lp.check_ratios(200, gammas=[0.25, 0.97])
    with pytest.raises(st.ParameterError, match="flow_gamma"):
        lp.check_ratios(200, flow_gamma=1.01)
    assert lp.realized([0.7, 1.503], 200) == [0.7, 1.505]


def test_against_formula_allows_z_standard_errors_and_the_finite_d_term():
    sim = pd.DataFrame({"gamma": [2.0] * 4, "n": [400] * 4, "test_error": [1.0, 1.2, 1.1, 1.3]})
    se = sim.test_error.sem()
    allowance = lp.finite_d_allowance(200, 400)
    assert allowance == pytest.approx(1 / 199 + 2 / 200)
    inside = lp.against_formula(sim, lambda g: 1.15 - 2.0 * se, "gamma", 200, z=2.0)  # z se away: within
    assert bool(inside.within.iloc[0]) and inside.used.iloc[0] == 0.0
    edge = lp.against_formula(sim, lambda g: (1.15 - 2.0 * se) / (1 + 0.9 * allowance), "gamma", 200, z=2.0)
    assert bool(edge.within.iloc[0]) and 0.8 < edge.used.iloc[0] < 1.0  # needs most of its allowance
    far = lp.against_formula(sim, lambda g: 0.5, "gamma", 200, z=2.0)
    assert not bool(far.within.iloc[0])


def test_crossing_and_its_range():
    gammas = [1.5, 2.0, 4.5, 9.0]
    x = 1 / (np.array(gammas) - 1)
    gains = pd.Series(x - 0.5, index=gammas)  # zero at x = 0.5: gamma = 3
    cross, low, high = lp.crossing(gains, pd.Series(0.0, index=gammas))
    assert cross == pytest.approx(3.0) and low == pytest.approx(3.0) and high == pytest.approx(3.0)
    cross, low, high = lp.crossing(gains, pd.Series(0.05, index=gammas))
    assert low < 3.0 < high < math.inf
    _, low, high = lp.crossing(gains, pd.Series(1.0, index=gammas))  # tolerances reach zero: unbounded ends
    assert low == 1.0 and high == math.inf
    assert all(math.isnan(v) for v in lp.crossing(gains.abs() + 1, pd.Series(0.0, index=gammas)))
