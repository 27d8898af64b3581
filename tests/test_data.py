import math

import pytest
import torch

import stlearn as st
from stlearn.validation import ParameterError


def test_split_is_fixed_by_seed_and_differs_across_seeds():
    inputs = st.gaussian_inputs(10, rank=3, seed=1)
    task = st.Task(inputs, st.linear_target(inputs, 2, seed=2), sigma=0.3, label_noise=0.1)
    a = st.make_split(task, 20, 30, seed=5)
    b = st.make_split(task, 20, 30, seed=5)
    c = st.make_split(task, 20, 30, seed=6)
    assert torch.equal(a.train.noisy, b.train.noisy) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.clean, c.train.clean)


def test_noise_and_label_noise_statistics():
    inputs = st.gaussian_inputs(8)
    task = st.Task(inputs, st.linear_target(inputs, 3, seed=0), sigma=0.7, label_noise=0.5)
    split = st.make_split(task, 40000, 40000, seed=0, dtype=torch.float64)
    noise = split.train.noisy - split.train.clean
    assert abs(noise.std().item() - 0.7) < 0.01
    residual = split.train.y - task.target(split.train.clean)
    assert abs(residual.std().item() - 0.5) < 0.01
    # test targets are noiseless
    assert torch.allclose(split.test.y, task.target(split.test.clean))


def test_subspace_inputs_and_target_live_on_the_subspace():
    inputs = st.gaussian_inputs(12, rank=4, seed=3)
    basis = inputs.basis
    assert torch.allclose(basis.T @ basis, torch.eye(4, dtype=torch.float64), atol=1e-12)
    target = st.linear_target(inputs, 5, seed=4)
    assert torch.linalg.matrix_rank(target.weight).item() == 4
    # the target ignores directions orthogonal to the input subspace
    proj = basis @ basis.T
    assert torch.allclose(target.weight @ proj, target.weight, atol=1e-12)
    x = inputs.sample(1000, torch.Generator().manual_seed(0))
    assert torch.allclose(x @ proj, x, atol=1e-10)


def test_relu_target_shapes():
    f = st.relu_target(6, hidden=9, d_out=2, seed=1)
    assert f(torch.randn(4, 6, dtype=torch.float64)).shape == (4, 2)
    assert torch.allclose(f.w1.norm(dim=1), torch.ones(9, dtype=torch.float64))


def test_make_splits_stacks_members():
    inputs = st.gaussian_inputs(5)
    task = st.Task(inputs, st.linear_target(inputs, 2), sigma=0.1)
    s = st.make_splits(task, 7, 9, seeds=[0, 1, 2])
    assert s.train.clean.shape == (3, 7, 5) and s.test.y.shape == (3, 9, 2)
    assert torch.equal(s.train.clean[1], st.make_split(task, 7, 9, seed=1).train.clean)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sigma=-0.1), "sigma must be a finite number >= 0.0; got -0.1"),
    (dict(sigma=math.nan), "sigma must be a finite number >= 0.0; got nan"),
    (dict(sigma="0.5"), "sigma must be a finite number >= 0.0; got '0.5' (str)"),
    (dict(label_noise=-1.0), "label_noise must be"),
])
def test_task_rejects_bad_noise(kwargs, message):
    inputs = st.gaussian_inputs(3)
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        st.Task(inputs, st.linear_target(inputs, 1), **kwargs)


@pytest.mark.parametrize("call, name", [
    (lambda: st.gaussian_inputs(0), "d must be an integer >= 1; got 0"),
    (lambda: st.gaussian_inputs(5, rank=7), r"rank must be an integer in \[1, 5\]; got 7"),
    (lambda: st.gaussian_inputs(2.5), "d must be an integer >= 1; got 2.5"),
    (lambda: st.linear_target(st.gaussian_inputs(3), 0), "d_out must be an integer >= 1; got 0"),
    (lambda: st.relu_target(3, hidden=0), "hidden must be an integer >= 1; got 0"),
    (lambda: st.make_split(st.Task(st.gaussian_inputs(3), st.linear_target(st.gaussian_inputs(3), 1)), 0, 5),
     "n_train must be an integer >= 1; got 0"),
    (lambda: st.make_split(st.Task(st.gaussian_inputs(3), st.linear_target(st.gaussian_inputs(3), 1)), 5, 5, seed=-1),
     "seed must be an integer >= 0; got -1"),
])
def test_bad_sizes_name_the_parameter_and_range(call, name):
    with pytest.raises(ParameterError, match=name):
        call()
