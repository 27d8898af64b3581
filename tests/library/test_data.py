"""The data model: inputs on a subspace, targets, and one drawn set per call (st.draw, st.draw_members)."""

import pytest
import torch

import stlearn as st
from stlearn.data import randn, random_orthonormal, relu_target

F64 = torch.float64


def _task(sigma=0.3, label_noise=0.1):
    rng = st.Stream(0)
    inputs = st.gaussian_inputs(10, rank=3, rng=rng.child("task"))
    return st.Task(inputs, st.linear_target(inputs, 2, rng=rng.child("target")), sigma=sigma, label_noise=label_noise)


def test_a_set_is_fixed_by_its_stream_and_differs_across_streams():
    task, rng = _task(), st.Stream(5)
    a = st.draw(task, 20, rng.child("student_data", 0))
    b = st.draw(task, 20, rng.child("student_data", 0))
    c = st.draw(task, 20, rng.child("student_data", 1))
    assert torch.equal(a.noisy, b.noisy) and torch.equal(a.y, b.y)
    assert not torch.equal(a.clean, c.clean)


def test_noise_and_label_noise_statistics():
    rng = st.Stream(0)
    inputs = st.gaussian_inputs(8)
    task = st.Task(inputs, st.linear_target(inputs, 3, rng=rng.child("target")), sigma=0.7, label_noise=0.5)
    train = st.draw(task, 40000, rng.child("student_data"), dtype=F64)
    noise = train.noisy - train.clean
    assert abs(noise.std().item() - 0.7) < 0.01
    residual = train.y - task.target(train.clean)
    assert abs(residual.std().item() - 0.5) < 0.01
    test = st.draw(task, 1000, rng.child("test"), label_noise=False, dtype=F64)
    assert torch.equal(test.y, task.target(test.clean))  # test targets are noiseless
    assert abs((test.noisy - test.clean).std().item() - 0.7) < 0.05  # but test inputs are noisy


def test_draw_returns_the_float64_draws_in_the_requested_dtype():
    task, rng = _task(), st.Stream(1).child("test")
    wide, narrow = st.draw(task, 7, rng, dtype=F64), st.draw(task, 7, rng)
    assert wide.clean.dtype == F64 and narrow.clean.dtype == torch.float32
    assert torch.equal(narrow.noisy, wide.noisy.float())


def test_subspace_inputs_and_target_live_on_the_subspace():
    rng = st.Stream(3)
    inputs = st.gaussian_inputs(12, rank=4, rng=rng.child("task"))
    basis = inputs.basis
    assert torch.allclose(basis.T @ basis, torch.eye(4, dtype=F64), atol=1e-12)
    target = st.linear_target(inputs, 5, rng=rng.child("target"))
    assert torch.linalg.matrix_rank(target.weight).item() == 4
    # the target ignores directions orthogonal to the input subspace
    proj = basis @ basis.T
    assert torch.allclose(target.weight @ proj, target.weight, atol=1e-12)
    x = inputs.sample(1000, rng.child("inputs"))
    assert torch.allclose(x @ proj, x, atol=1e-10)


def test_random_orthonormal_has_orthonormal_columns():
    q = random_orthonormal(9, 4, st.Stream(2).child("rotation"))
    assert q.shape == (9, 4) and torch.allclose(q.T @ q, torch.eye(4, dtype=F64), atol=1e-12)
    assert torch.equal(q, random_orthonormal(9, 4, st.Stream(2).child("rotation")))


def test_relu_target_shapes():
    f = st.relu_target(6, hidden=9, d_out=2, rng=st.Stream(1).child("target"))
    assert f(randn(st.Stream(1).child("inputs"), 4, 6)).shape == (4, 2)
    assert torch.allclose(f.w1.norm(dim=1), torch.ones(9, dtype=F64))


def test_draw_members_stacks_one_set_per_stream():
    task, rng = _task(), st.Stream(0)
    streams = rng.children("student_data", 3)
    s = st.draw_members(task, 7, streams)
    assert s.clean.shape == (3, 7, 10) and s.y.shape == (3, 7, 2)
    for k, r in enumerate(streams):
        single = st.draw(task, 7, r)
        assert torch.equal(s.clean[k], single.clean) and torch.equal(s.noisy[k], single.noisy)
    test = st.draw_members(task, 5, rng.children("test", 2), label_noise=False, dtype=F64)
    assert torch.equal(test.y, task.target(test.clean))


def test_views_are_fixed_noisy_copies_of_one_clean_set():
    """K views: the clean inputs and labels repeated, view 0 the one-view set, each other view its own noise."""
    task = _task(sigma=0.5)
    one = st.draw(task, 6, st.Stream(3), dtype=F64)
    three = st.draw(task, 6, st.Stream(3), dtype=F64, views=3)
    assert three.n == 18
    torch.testing.assert_close(three.clean, one.clean.repeat(3, 1))
    torch.testing.assert_close(three.y, one.y.repeat(3, 1))
    torch.testing.assert_close(three.noisy[:6], one.noisy)
    views = (three.noisy - three.clean).reshape(3, 6, -1)
    assert not torch.allclose(views[1], views[0]) and not torch.allclose(views[2], views[1])
    with pytest.raises(st.ParameterError, match="views must be"):
        st.draw(task, 6, st.Stream(3), views=0)


def test_relu_target_variance_is_the_closed_form_and_unit_variance_rescales_to_one():
    """ReLUTarget.variance (the arc-cosine kernel) against 400k samples; unit_variance gives variance 1."""
    gen = torch.Generator().manual_seed(0)
    for seed in (0, 41527):
        target = relu_target(50, 3, 2, rng=st.Stream(seed).child("target"))
        x = torch.randn(400_000, 50, generator=gen, dtype=target.w1.dtype)
        torch.testing.assert_close(target.variance(), target(x).var(0), rtol=0.02, atol=0)
        unit = relu_target(50, 3, 2, rng=st.Stream(seed).child("target"), unit_variance=True)
        torch.testing.assert_close(unit(x).var(0), torch.ones(2, dtype=x.dtype), rtol=0.02, atol=0)


def test_rows_of_a_set_shared_by_every_member_stay_shared_and_equal_index_select():
    from stlearn.data import Samples, take_rows

    x = torch.randn(1, 50, 6).expand(4, 50, 6)
    idx = torch.tensor([3, 0, 7])
    picked = take_rows(x, 1, idx)
    assert picked.stride(0) == 0 and torch.equal(picked, x.contiguous().index_select(1, idx))
    own = torch.randn(4, 50, 6)
    assert torch.equal(Samples(own, x, own).rows(idx).noisy, picked)
    assert torch.equal(Samples(own, x, own).rows(idx).clean, own.index_select(1, idx))
