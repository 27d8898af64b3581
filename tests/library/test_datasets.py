"""Shipped datasets: shapes, stratified splits from a split stream, noise streams, errors that name the parameter."""

import numpy as np
import pytest
import torch

from stlearn import datasets
from stlearn.streams import Stream
from stlearn.validation import ParameterError


@pytest.mark.parametrize("name, inputs", [("digits", 64), ("mnist1d", 40)])
def test_split_shapes_classes_and_noise(name, inputs):
    rng = Stream(0)
    split = datasets.labelled(name, 100, 50, sigma=0.5, split_rng=rng.child("split"), noise_rng=rng.child("noise"))
    total = len(datasets.LOADERS[name]()[1])
    assert split.train.clean.shape == (100, inputs) and split.val.n == 50 and split.test.n == total - 150
    assert sorted(torch.unique(split.train.y).tolist()) == list(range(10))  # stratified: every class
    noise = split.train.noisy - split.train.clean
    assert 0.4 < noise.std().item() < 0.6


def test_stratified_indices_are_disjoint_cover_everything_and_follow_the_stream():
    labels = np.repeat(np.arange(5), 20)
    parts = datasets.stratified_indices(labels, [10, 25], Stream(3).child("split"))
    assert [len(p) for p in parts] == [10, 25, 65]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(100))
    assert all(np.bincount(labels[p], minlength=5).tolist() == [len(p) // 5] * 5 for p in parts[:1])
    again = datasets.stratified_indices(labels, [10, 25], Stream(3).child("split"))
    other = datasets.stratified_indices(labels, [10, 25], Stream(4).child("split"))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not np.array_equal(parts[0], other[0])


def test_the_split_and_the_noise_come_from_their_own_streams():
    rng = Stream(0)
    base = datasets.labelled("digits", 100, 50, 0.3, rng.child("split", 0), rng.child("noise", 0))
    other_noise = datasets.labelled("digits", 100, 50, 0.3, rng.child("split", 0), rng.child("noise", 1))
    other_split = datasets.labelled("digits", 100, 50, 0.3, rng.child("split", 1), rng.child("noise", 0))
    assert torch.equal(base.train.clean, other_noise.train.clean)
    assert not torch.equal(base.train.noisy, other_noise.train.noisy)
    assert not torch.equal(base.train.clean, other_split.train.clean)


def test_mnist1d_is_standardized_reproducible_and_leaves_numpy_alone():
    np.random.seed(123)  # the test sets numpy's global state to see that the loader restores it
    expected = np.random.rand()
    np.random.seed(123)
    x, y = datasets.load_mnist1d_arrays()
    assert np.random.rand() == expected  # the generator's global seeding is undone
    assert x.shape == (datasets.MNIST1D_SIZE, datasets.MNIST1D_LENGTH) and abs(x.mean()) < 1e-6
    assert abs(x.std() - 1) < 1e-6 and np.bincount(y).tolist() == [datasets.MNIST1D_SIZE // 10] * 10
    datasets.load_mnist1d_arrays.cache_clear()
    assert np.array_equal(datasets.load_mnist1d_arrays()[0], x)


def test_members_share_the_split_and_differ_in_noise():
    rng = Stream(0)
    s = datasets.members("mnist1d", 100, 50, 0.3, rng.child("split"), rng.children("noise", 2))
    assert s.train.clean.shape == (2, 100, 40)
    assert torch.equal(s.train.clean[0], s.train.clean[1])
    assert not torch.equal(s.train.noisy[0], s.train.noisy[1])
    one = datasets.labelled("mnist1d", 100, 50, 0.3, rng.child("split"), rng.child("noise", 1))
    assert torch.equal(s.train.noisy[1], one.train.noisy) and torch.equal(s.test.noisy[1], one.test.noisy)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset="mnist2d"), "dataset must be one of"),
    (dict(sigma=-0.1), "sigma must be a finite number >= 0.0; got -0.1"),
    (dict(n_train=5), "n_train must be an integer in"),
    (dict(split_rng=-1), "split_rng must be a Stream or an integer seed >= 0; got -1"),
])
def test_bad_input_names_the_parameter(kwargs, message):
    args = dict(dataset="mnist1d", n_train=100, n_val=50, sigma=0.1) | kwargs
    with pytest.raises(ParameterError, match=message):
        datasets.labelled(**args)


def test_members_need_a_noise_stream_per_member():
    with pytest.raises(ParameterError, match=r"noise_rngs must be a non-empty list"):
        datasets.members("digits", 100, 50, 0.1, Stream(0), [])
