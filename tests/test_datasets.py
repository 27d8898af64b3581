"""Shipped datasets: shapes, splits, noise seeds, and errors that name the parameter."""

import numpy as np
import pytest
import torch

from stlearn import datasets
from stlearn.validation import ParameterError


@pytest.mark.parametrize("name, inputs", [("digits", 64), ("mnist1d", 40)])
def test_split_shapes_classes_and_noise(name, inputs):
    split = datasets.labelled(name, 100, 50, sigma=0.5, split_seed=1, noise_seed=2)
    total = len(datasets.LOADERS[name]()[1])
    assert split.train.clean.shape == (100, inputs) and split.val.n == 50 and split.test.n == total - 150
    assert sorted(torch.unique(split.train.y).tolist()) == list(range(10))  # stratified: every class
    noise = split.train.noisy - split.train.clean
    assert 0.4 < noise.std().item() < 0.6


def test_mnist1d_is_standardized_reproducible_and_leaves_numpy_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    x, y = datasets.load_mnist1d_arrays()
    assert np.random.rand() == expected  # the generator's global seeding is undone
    assert x.shape == (datasets.MNIST1D_SIZE, datasets.MNIST1D_LENGTH) and abs(x.mean()) < 1e-6
    assert abs(x.std() - 1) < 1e-6 and np.bincount(y).tolist() == [datasets.MNIST1D_SIZE // 10] * 10
    datasets.load_mnist1d_arrays.cache_clear()
    assert np.array_equal(datasets.load_mnist1d_arrays()[0], x)


def test_members_share_the_split_and_differ_in_noise():
    s = datasets.members("mnist1d", 100, 50, 0.3, 0, [5, 6])
    assert torch.equal(s.train.clean[0], s.train.clean[1])
    assert not torch.equal(s.train.noisy[0], s.train.noisy[1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset="mnist2d"), "dataset must be one of"),
    (dict(sigma=-0.1), "sigma"),
    (dict(n_train=5), "n_train"),
])
def test_bad_input_names_the_parameter(kwargs, message):
    args = dict(dataset="mnist1d", n_train=100, n_val=50, sigma=0.1) | kwargs
    with pytest.raises(ParameterError, match=message):
        datasets.labelled(**args)
