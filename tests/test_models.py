import pytest
import torch

import stlearn as st
from stlearn.validation import ParameterError


def test_deep_linear_features_and_end_to_end():
    net = st.DeepLinear([6, 5, 4, 3], seed=1, dtype=torch.float64)
    x = torch.randn(10, 6, dtype=torch.float64)
    out, feats = net(x, return_features=True)
    w1, w2, w3 = (l.weight for l in net.layers)
    assert list(feats) == ["h1", "h2"] == net.feature_names
    assert torch.allclose(feats["h1"], x @ w1.T)
    assert torch.allclose(feats["h2"], x @ (w2 @ w1).T)
    assert torch.allclose(out, x @ net.end_to_end().T)


def test_mlp_features_are_post_activation():
    net = st.MLP([4, 7, 2], seed=0)
    out, feats = net(torch.randn(5, 4), return_features=True)
    assert (feats["h1"] >= 0).all() and out.shape == (5, 2)


def test_init_scale_scales_weights_linearly():
    a = st.DeepLinear([8, 8, 2], init_scale=1.0, seed=3)
    b = st.DeepLinear([8, 8, 2], init_scale=0.01, seed=3)
    for la, lb in zip(a.layers, b.layers):
        assert torch.allclose(lb.weight, 0.01 * la.weight, atol=1e-7)


@pytest.mark.parametrize("cls", [st.DeepLinear, st.MLP])
def test_ensemble_members_equal_single_networks(cls):
    ens = cls([5, 6, 3], members=3, seed=[4, 9, 2])
    x = torch.randn(7, 5)
    out, feats = ens(x, return_features=True)
    assert out.shape == (3, 7, 3) and feats["h1"].shape == (3, 7, 6)
    for e, s in enumerate([4, 9, 2]):
        single = cls([5, 6, 3], seed=s)
        assert torch.allclose(single(x), out[e], atol=1e-6)
        assert torch.allclose(st.member(ens, e)(x), out[e], atol=1e-6)


def test_ensemble_accepts_per_member_inputs():
    ens = st.DeepLinear([4, 3, 2], members=2, seed=0)
    x = torch.randn(2, 5, 4)
    out = ens(x)
    assert torch.allclose(out[1], st.member(ens, 1)(x[1]), atol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda: st.DeepLinear([5, 0, 2]), r"widths\[1\] must be an integer >= 1; got 0"),
    (lambda: st.DeepLinear([5]), "widths must be a list of at least 2 integers"),
    (lambda: st.MLP([5, 3, 2], activation="sigmoid"), "activation must be one of"),
    (lambda: st.DeepLinear([5, 3, 2], init_scale=-1), "init_scale must be a finite number >= 0.0"),
    (lambda: st.DeepLinear([5, 3, 2], members=0), "members must be an integer >= 1; got 0"),
    (lambda: st.DeepLinear([5, 3, 2], members=2, seed=[1]), "seed must be an int or a list of 2 ints"),
])
def test_bad_model_arguments(call, message):
    with pytest.raises((ParameterError, ValueError), match=message):
        call()


def test_stack_and_select_members_copy_exactly():
    singles = [st.MLP([4, 5, 2], seed=s) for s in (3, 8)]
    ens = st.MLP([4, 5, 2], members=2, seed=[1, 2])
    stacked = st.stack_members([singles[0], ens, singles[1]])
    assert stacked.members == 4
    x = torch.randn(6, 4)
    out = stacked(x)
    for e, net in enumerate([singles[0], st.member(ens, 0), st.member(ens, 1), singles[1]]):
        assert torch.allclose(out[e], net(x), atol=1e-6)
    picked = st.select_members(stacked, [3, 3, 0])
    assert torch.equal(picked.layers[0].weight, stacked.layers[0].weight[[3, 3, 0]])
    assert torch.allclose(picked(x), out[[3, 3, 0]], atol=1e-6)
    with pytest.raises(ValueError, match="index"):
        st.select_members(stacked, [4])


@pytest.mark.parametrize("widths", [[3, 7, 1], [7, 3, 2]])  # few inputs / one output: the special backward paths
@pytest.mark.parametrize("shared", [True, False])
def test_ensemble_layer_gradients_are_exact(widths, shared):
    from stlearn.models import _MemberLinear

    d, m, _ = widths
    x = torch.randn(5, d, dtype=torch.float64) if shared else torch.randn(2, 5, d, dtype=torch.float64)
    x.requires_grad_(True)
    w = torch.randn(2, m, d, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 1, m, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_MemberLinear.apply, (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w: _MemberLinear.apply(x, w, None), (x, w))
