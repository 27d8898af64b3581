"""Networks that expose their features; ensembles whose member e is the single network of member e's stream."""

import pytest
import torch

import stlearn as st
from stlearn.data import randn
from stlearn.validation import ParameterError

F64 = torch.float64
RNG = st.Stream(0)


def _x(*shape, k=0):
    return randn(RNG.child("inputs", k), *shape)


def test_deep_linear_features_and_end_to_end():
    net = st.DeepLinear([6, 5, 4, 3], rng=RNG.child("student_init"), dtype=F64)
    x = _x(10, 6)
    out, feats = net(x, return_features=True)
    w1, w2, w3 = (l.weight for l in net.layers)
    assert list(feats) == ["h1", "h2"] == net.feature_names
    assert torch.allclose(feats["h1"], x @ w1.T)
    assert torch.allclose(feats["h2"], x @ (w2 @ w1).T)
    assert torch.allclose(out, x @ net.end_to_end().T)


def test_mlp_features_are_post_activation():
    net = st.MLP([4, 7, 2], rng=RNG.child("student_init"))
    out, feats = net(_x(5, 4).float(), return_features=True)
    assert (feats["h1"] >= 0).all() and out.shape == (5, 2)


def test_init_scale_scales_weights_linearly():
    a = st.DeepLinear([8, 8, 2], init_scale=1.0, rng=RNG.child("student_init", 3))
    b = st.DeepLinear([8, 8, 2], init_scale=0.01, rng=RNG.child("student_init", 3))
    for la, lb in zip(a.layers, b.layers):
        assert torch.allclose(lb.weight, 0.01 * la.weight, atol=1e-7)


def test_init_is_gaussian_with_variance_scale_squared_over_fan_in():
    net = st.DeepLinear([400, 300, 2], init_scale=0.5, rng=RNG.child("student_init"), dtype=F64)
    w, std = net.layers[0].weight.detach(), 0.5 / 400**0.5
    se = std / w.numel() ** 0.5  # of the mean; that of the standard deviation is se / sqrt(2)
    assert abs(float(w.mean())) < 4 * se and abs(float(w.std()) - std) < 4 * se / 2**0.5


@pytest.mark.parametrize("cls", [st.DeepLinear, st.MLP])
def test_ensemble_members_equal_single_networks_of_their_streams(cls):
    rngs = RNG.children("student_init", 3)
    ens = cls([5, 6, 3], members=3, rng=rngs)
    x = _x(7, 5).float()
    out, feats = ens(x, return_features=True)
    assert out.shape == (3, 7, 3) and feats["h1"].shape == (3, 7, 6)
    for e, r in enumerate(rngs):
        single = cls([5, 6, 3], rng=r)
        for a, b in zip(st.member(ens, e).parameters(), single.parameters()):
            assert torch.equal(a, b)
        assert torch.allclose(single(x), out[e], atol=1e-6)
        assert torch.allclose(st.member(ens, e)(x), out[e], atol=1e-6)


def test_one_stream_for_an_ensemble_gives_member_children():
    ens = st.DeepLinear([4, 3, 2], members=2, rng=RNG.child("student_init"))
    for e in range(2):
        single = st.DeepLinear([4, 3, 2], rng=RNG.child("student_init").child("member", e))
        assert torch.equal(ens.layers[0].weight[e], single.layers[0].weight)
    assert not torch.equal(ens.layers[0].weight[0], ens.layers[0].weight[1])


def test_ensemble_accepts_per_member_inputs():
    ens = st.DeepLinear([4, 3, 2], members=2, rng=RNG.child("student_init"))
    x = _x(2, 5, 4).float()
    out = ens(x)
    assert torch.allclose(out[1], st.member(ens, 1)(x[1]), atol=1e-6)


def test_stack_and_select_members_copy_exactly():
    singles = [st.MLP([4, 5, 2], rng=RNG.child("teacher_init", k)) for k in (3, 8)]
    ens = st.MLP([4, 5, 2], members=2, rng=RNG.children("student_init", 2))
    stacked = st.stack_members([singles[0], ens, singles[1]])
    assert stacked.members == 4
    x = _x(6, 4).float()
    out = stacked(x)
    for e, net in enumerate([singles[0], st.member(ens, 0), st.member(ens, 1), singles[1]]):
        assert torch.allclose(out[e], net(x), atol=1e-6)
    picked = st.select_members(stacked, [3, 3, 0])
    assert torch.equal(picked.layers[0].weight, stacked.layers[0].weight[[3, 3, 0]])
    assert torch.allclose(picked(x), out[[3, 3, 0]], atol=1e-6)
    with pytest.raises(ParameterError, match=r"index must be an integer in \[0, 3\]; got 4"):
        st.select_members(stacked, [4])


@pytest.mark.parametrize("call, message", [
    (lambda: st.DeepLinear([5, 3, 2], members=2, rng=[RNG]),
     r"rng must be one stream or a list of 2 \(one per member\); got a list of 1"),
    (lambda: st.DeepLinear([5, 3, 2], rng="a"), r"rng must be a Stream or an integer seed >= 0; got 'a'"),
    (lambda: st.member(st.DeepLinear([5, 3, 2]), 0), r"member\(\) needs an ensemble"),
    (lambda: st.member(st.DeepLinear([5, 3, 2], members=2), 2), r"e must be an integer in \[0, 1\]; got 2"),
])
def test_bad_member_arguments(call, message):
    with pytest.raises((ParameterError, ValueError), match=message):
        call()
