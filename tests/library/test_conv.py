"""The ensemble ConvNet: each member is exactly the single network built from its stream."""

import math

import pytest
import torch

from stlearn.conv import ConvNet, conv_member, select_conv_members
from stlearn.data import Samples, randn
from stlearn.streams import Stream
from stlearn.train import TrainConfig, train
from stlearn.validation import ParameterError

SHAPE = (1, 8, 8)
RNG = Stream(0)


def _inputs(n=5, k=0):
    return randn(RNG.child("inputs", k), n, 64).float()


def test_member_starts_as_single_network_of_its_stream():
    rngs = RNG.children("student_init", 3)
    ens = ConvNet(SHAPE, channels=3, hidden=7, d_out=4, members=3, rng=rngs)
    single = ConvNet(SHAPE, channels=3, hidden=7, d_out=4, rng=rngs[1])
    for a, b in zip(conv_member(ens, 1).parameters(), single.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("per_member_inputs", [False, True])
def test_ensemble_forward_matches_each_member(per_member_inputs):
    ens = ConvNet(SHAPE, channels=4, hidden=6, d_out=3, members=3, rng=RNG.child("student_init"))
    with torch.no_grad():  # non-zero biases, so that their layout is checked too
        for i, p in enumerate(ens.parameters()):
            p.add_(0.1 * randn(RNG.child("direction", i), *p.shape).float())
    x = torch.stack([_inputs(k=k) for k in range(3)]) if per_member_inputs else _inputs()
    out, feats = ens(x, return_features=True)
    assert out.shape == (3, 5, 3) and feats["h1"].shape == (3, 5, 4 * 16) and feats["h2"].shape == (3, 5, 6)
    for e in range(3):
        single_out, single_feats = conv_member(ens, e)(x[e] if per_member_inputs else x, return_features=True)
        torch.testing.assert_close(out[e], single_out, rtol=1e-5, atol=1e-6)
        for name in ("h1", "h2"):
            torch.testing.assert_close(feats[name][e], single_feats[name], rtol=1e-5, atol=1e-6)


def test_trained_ensemble_member_matches_single_training():
    """Members share no parameters: training the ensemble trains each member as if alone."""
    gen = RNG.child("student_data").generator()
    x = torch.rand(12, 64, generator=gen, dtype=torch.float64).float()
    y = torch.randint(0, 3, (12,), generator=gen)
    data = Samples(x, x + 0.1, y)
    config = TrainConfig(steps=20, lr=0.05, optimizer="adam", task="ce", progress=False)
    rngs = RNG.children("student_init", 2)
    ens = ConvNet(SHAPE, channels=2, hidden=5, d_out=3, members=2, rng=rngs)
    train(ens, data, config=config)
    single = ConvNet(SHAPE, channels=2, hidden=5, d_out=3, rng=rngs[1])
    train(single, data, config=config)
    torch.testing.assert_close(conv_member(ens, 1)(x), single(x), rtol=1e-4, atol=1e-5)


def test_bad_parameters_are_named():
    with pytest.raises(ParameterError, match="channels"):
        ConvNet(SHAPE, channels=0, hidden=5, d_out=3)
    with pytest.raises(ValueError, match="kernel"):
        ConvNet(SHAPE, channels=2, hidden=5, d_out=3, kernel=2)


def test_stacked_conv_is_a_convolution():
    """The im2col layer of a single network equals torch's conv2d (same padding)."""
    import torch.nn.functional as F

    net = ConvNet(SHAPE, channels=3, hidden=4, d_out=2, rng=RNG.child("student_init"))
    with torch.no_grad():
        net.conv.bias.add_(randn(RNG.child("direction"), 3).float())
    x = _inputs()
    expected = F.conv2d(x.reshape(-1, *SHAPE), net.conv.weight, net.conv.bias, padding=1).reshape(5, -1)
    torch.testing.assert_close(net.conv(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, channels, kernel", [((1, 40), (3, 5), 5), ((1, 8, 8), (4, 6), 3), ((2, 12), 3, 3)])
def test_deeper_and_1d_members_equal_single_networks(shape, channels, kernel):
    """Several convolutions, 1-D or 2-D: each member of an ensemble is the single network of its stream."""
    rngs = RNG.children("student_init", 3)
    ens = ConvNet(shape, channels=channels, hidden=5, d_out=3, kernel=kernel, members=3, rng=rngs)
    with torch.no_grad():
        for i, p in enumerate(ens.parameters()):
            p.add_(0.1 * randn(RNG.child("direction", i), *p.shape).float())
    d = 1
    for s in shape:
        d *= s
    x = torch.stack([randn(RNG.child("inputs", k), 4, d).float() for k in range(3)])
    out, feats = ens(x, return_features=True)
    n_conv = 1 if isinstance(channels, int) else len(channels)
    assert ens.feature_names == [f"h{l}" for l in range(1, n_conv + 2)] and out.shape == (3, 4, 3)
    shared_out = ens(x[1])  # one input set shared by every member
    for e in range(3):
        single = conv_member(ens, e)
        single_out, single_feats = single(x[e], return_features=True)
        torch.testing.assert_close(out[e], single_out, rtol=1e-5, atol=1e-6)
        for name in ens.feature_names:
            torch.testing.assert_close(feats[name][e], single_feats[name], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(shared_out[e], single(x[1]), rtol=1e-5, atol=1e-6)
    picked = select_conv_members(ens, [2, 0])
    torch.testing.assert_close(picked(x[[2, 0]]), out[[2, 0]], rtol=1e-5, atol=1e-6)


def test_stacked_conv_1d_is_a_convolution():
    import torch.nn.functional as F

    net = ConvNet((2, 10), channels=3, hidden=4, d_out=2, kernel=5, rng=RNG.child("student_init"))
    with torch.no_grad():
        net.conv.bias.add_(randn(RNG.child("direction"), 3).float())
    x = randn(RNG.child("inputs"), 5, 20).float()
    expected = F.conv1d(x.reshape(5, 2, 10), net.conv.weight, net.conv.bias, padding=2).reshape(5, -1)
    torch.testing.assert_close(net.conv(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_1d_features_are_torchs_1d_convolution_relu_and_pooling(pooling):
    """Signals run as images of height 1; the features are still conv1d, ReLU and 1-D pooling, as written."""
    import torch.nn.functional as F

    net = ConvNet((2, 12), channels=(3, 4), hidden=4, d_out=2, kernel=5, pooling=pooling,
                  rng=RNG.child("student_init"))
    x = randn(RNG.child("inputs"), 5, 24).float()
    pool = F.max_pool1d if pooling == "max" else F.avg_pool1d
    maps = x.reshape(5, 2, 12)
    expected = []
    for conv in net.convs:
        maps = pool(torch.relu(F.conv1d(maps, conv.weight, conv.bias, padding=2)), 2)
        expected.append(maps.reshape(5, -1))
    feats = net(x, return_features=True)[1]
    for name, want in zip(["h1", "h2"], expected):
        torch.testing.assert_close(feats[name], want, rtol=1e-5, atol=1e-6)


def test_pool_must_divide_every_map():
    with pytest.raises(ValueError, match="pool"):
        ConvNet((1, 8, 8), channels=(2, 2, 2, 2), hidden=3, d_out=2)


@pytest.mark.parametrize("shape, kernel", [((1, 8, 8), 3), ((1, 40), 5)])
def test_max_pooling_before_relu_is_relu_then_pooling_bit_for_bit(shape, kernel):
    """The forward max-pools before the ReLU (a quarter of the passes on images, half on signals); the
    architecture as written, ReLU then pooling, gives the same features and the same gradients, to the last bit."""
    import torch.nn.functional as F

    from stlearn.conv import from_maps, to_maps

    def grads(features):
        net.zero_grad()
        features.square().sum().backward()
        return [p.grad.clone() for p in net.parameters() if p.grad is not None]

    net = ConvNet(shape, channels=(4, 3), hidden=5, d_out=3, kernel=kernel, pooling="max", members=2,
                  rng=RNG.children("student_init", 2))
    x = torch.stack([randn(RNG.child("inputs", k), 6, math.prod(shape)).float() for k in range(2)])
    feats = net(x, return_features=True)[1]["h2"]
    maps = to_maps(x, shape, 2)  # a signal as an image of height 1
    pool = F.max_pool2d if len(shape) == 3 else (lambda m, size: F.max_pool2d(m, (1, size)))
    for conv in net.convs:
        maps = pool(torch.relu(conv.maps(maps)), 2)
    written = from_maps(maps, 2)
    assert torch.equal(feats, written)
    for a, b in zip(grads(feats), grads(written)):
        assert torch.equal(a, b)


def test_features_are_flattened_once_when_looked_up_and_equal_the_maps():
    from stlearn.conv import from_maps, to_maps

    net = ConvNet(SHAPE, channels=(3, 2), hidden=7, d_out=4, pooling="max", members=2,
                  rng=RNG.children("student_init", 2))
    x = _inputs(5)
    _, feats = net(x, return_features=True)
    assert list(feats) == net.feature_names and len(feats) == 3 and "h4" not in feats
    assert feats["h1"] is feats["h1"]  # one copy, however often the loss looks it up
    with torch.no_grad():
        first = torch.relu(torch.nn.functional.max_pool2d(net.convs[0].maps(to_maps(x, SHAPE, 2)), 2))
    assert torch.equal(feats["h1"], from_maps(first, 2)) and feats["h1"].shape == (2, 5, 3 * 16)
    with pytest.raises(KeyError):
        feats["h9"]
