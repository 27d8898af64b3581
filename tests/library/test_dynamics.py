"""The exact mode dynamics of a two-layer linear student (stlearn.dynamics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import stlearn as st
from stlearn import dynamics as dy


def test_saxe_closed_form_solves_the_base_mode_equations():
    times = np.linspace(0, 6, 61)
    s, u0 = np.array([2.0, 0.7]), 1e-3
    a, b = dy.integrate_modes(times, math.sqrt(u0), math.sqrt(u0), s, 0.0, 0.0)
    assert np.abs(a * b - dy.saxe_strength(times[None], s[:, None], u0)).max() < 1e-8
    t_half = dy.saxe_half_time(2.0, u0)
    assert dy.saxe_strength(t_half, 2.0, u0) == pytest.approx(1.0, rel=1e-12)


def test_linearized_solution_is_exact_for_the_linear_system():
    times = np.linspace(0, 3, 31)
    a, b = dy.linearized(times, 0.1, 0.2, 1.5, 0.7, 2.0)
    h = 1e-6
    a2, b2 = dy.linearized(times + h, 0.1, 0.2, 1.5, 0.7, 2.0)
    da, db = (a2 - a) / h, (b2 - b) / h
    assert np.allclose(da, -2.0 * a + 1.5 * b + 2.0 * 0.7, atol=1e-4)
    assert np.allclose(db, 1.5 * a, atol=1e-4)
    assert (a[0], b[0]) == pytest.approx((0.1, 0.2))


def test_untaught_mode_stays_below_the_escape_bound():
    times = np.linspace(0, 30, 301)
    for lam in (0.0, 0.5, 5.0):
        a, b = dy.integrate_modes(times, 1e-2, 1e-2, 0.8, 0.0, lam)
        mu = dy.escape_rate(0.8, lam)
        q = 0.8 / mu
        bound = 1e-4 * (1 + q) ** 2 / (4 * q) * np.exp(2 * mu * times)
        assert (a * b <= bound * (1 + 1e-7)).all()
    assert dy.escape_rate(0.8, 0.0) == pytest.approx(0.8)
    assert dy.escape_rate(0.8, 100.0) == pytest.approx(0.64 / 100, rel=1e-3)


def test_large_lambda_approaches_the_reduced_flow():
    times = np.linspace(0, 5, 51)
    gaps = []
    for lam in (10.0, 100.0, 1000.0):
        a, b = dy.integrate_modes(times, 1e-3, 1e-3, 1.0, 1.0, lam)
        gaps.append(np.abs(a[0] * b[0] - dy.reduced_flow(times, 1e-3, 1.0, 1.0))[times >= 0.5].max())
    assert gaps[2] < gaps[1] < gaps[0] and gaps[2] < 5e-3


def test_trainer_follows_the_mode_equations_from_the_aligned_start():
    s, tau = np.array([2.0, 0.5]), np.array([1.0, 0.0])
    samples, w_t, bases = dy.aligned_problem(s, tau, 20, st.Stream(0))
    assert torch.allclose(samples.noisy.T @ samples.noisy / 20, torch.eye(2, dtype=torch.float64), atol=1e-12)
    teacher = st.DeepLinear([2, 2, 2], dtype=torch.float64)
    with torch.no_grad():
        teacher.layers[0].weight.copy_(w_t)
    model = st.DeepLinear([2, 2, 2], dtype=torch.float64)
    dy.set_aligned(model, bases, [0.05, 0.05], [0.05, 0.05])
    assert torch.allclose(dy.strengths(model, bases), torch.tensor([0.0025, 0.0025], dtype=torch.float64))
    lr, steps = 0.002, 2000
    st.train(model, samples, teacher=st.FrozenTeacher(teacher), lam=1.0, layers=["h1"],
             config=st.TrainConfig(steps=steps, lr=lr, log_points=2, progress=False))
    a, b = dy.integrate_modes([0.0, lr * steps], 0.05, 0.05, s, tau, 1.0)
    assert np.abs(dy.strengths(model, bases).numpy() - a[:, -1] * b[:, -1]).max() < 5e-3


def test_half_time_interpolates_and_reports_never():
    times = np.array([0.0, 1.0, 2.0])
    assert dy.half_time(times, np.array([[0.0, 0.5, 1.0]]), 1.0)[0] == pytest.approx(1.0)
    assert math.isinf(dy.half_time(times, np.array([[0.0, 0.1, 0.2]]), 1.0)[0])


def test_bad_parameters_raise():
    with pytest.raises(st.ParameterError, match="u0"):
        dy.saxe_half_time(1.0, 0.6)
    with pytest.raises(st.ParameterError, match="hidden"):
        dy.aligned_problem([1.0, 2.0], [1.0, 1.0], 10, st.Stream(0), hidden=1)
