"""The hand-written ST gradients (stlearn.fast.fused) against autograd's, and training with each."""

import dataclasses

import pytest
import torch

import stlearn as st
from stlearn import fused
from stlearn.train import _autograd_gradients
from stlearn.validation import ParameterError

F64 = torch.float64
WIDTHS = [6, 5, 4, 3]


def _model(kind, members, widths=WIDTHS, **kw):
    seed = list(range(1, members + 1)) if members else 1
    if kind == "linear":
        return st.DeepLinear(widths, members=members, seed=seed, dtype=F64, init_scale=0.8, **kw)
    return st.MLP(widths, members=members, seed=seed, dtype=F64, activation=kind, **kw)


def _problem(members, shared, task, widths=WIDTHS, n=7):
    gen = torch.Generator().manual_seed(0)
    lead = () if members is None or shared else (members,)
    rand = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    clean = rand(*lead, n, widths[0])
    y = rand(*lead, n, widths[-1]) if task == "mse" else torch.randint(0, widths[-1], (*lead, n), generator=gen)
    teacher = {f"h{l}": rand(*lead, n, w) for l, w in enumerate(widths[1:-1], start=1)}
    return st.Samples(clean, clean + 0.3 * rand(*clean.shape), y), teacher


def _both(model, batch, teacher, lam, layers, task):
    """(terms, grads) from autograd and from stlearn.fast.fused."""
    out = []
    for compute in (_autograd_gradients, fused.st_gradients):
        for p in model.parameters():
            p.grad = None
        terms = compute(model, batch, teacher if layers else None, lam, layers, task)
        out.append(({k: v.detach() for k, v in terms.items()}, [p.grad.clone() for p in model.parameters()]))
    return out


@pytest.mark.parametrize("kind", ["linear", "relu"])
@pytest.mark.parametrize("members, shared", [(None, False), (3, False), (3, True)])
@pytest.mark.parametrize("task", ["mse", "ce"])
@pytest.mark.parametrize("layers", [[], ["h2"], ["h1", "h2"]])
def test_terms_and_gradients_equal_autograd(kind, members, shared, task, layers):
    model = _model(kind, members)
    batch, teacher = _problem(members, shared, task)
    lam = torch.tensor([0.0, 0.5, 2.0], dtype=F64) if members else 0.7
    (terms_a, grads_a), (terms_f, grads_f) = _both(model, batch, teacher, lam, layers, task)
    assert terms_a.keys() == terms_f.keys()
    for k in terms_a:
        torch.testing.assert_close(terms_f[k], terms_a[k], rtol=1e-12, atol=1e-14)
    for a, f in zip(grads_a, grads_f):
        assert f.shape == a.shape
        torch.testing.assert_close(f, a, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("widths", [[6, 5, 1], [2, 7, 3], [6, 5]])  # one output unit; few inputs; no hidden layer
def test_gradients_equal_autograd_at_edge_shapes(widths):
    model = _model("relu", 2, widths)
    batch, teacher = _problem(2, False, "mse", widths)
    layers = model.feature_names
    (terms_a, grads_a), (terms_f, grads_f) = _both(model, batch, teacher, 1.5, layers, "mse")
    torch.testing.assert_close(terms_f["total"], terms_a["total"], rtol=1e-12, atol=1e-14)
    for a, f in zip(grads_a, grads_f):
        torch.testing.assert_close(f, a, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["linear", "relu"])
@pytest.mark.parametrize("batch_dims, target_dims", [(2, 3), (3, 2), (3, 3)])
def test_broadcast_member_dimension_sums_as_autograd_does(kind, batch_dims, target_dims):
    """A single network fed, or matched against, tensors with a leading member dimension of 1."""
    model = _model(kind, None)
    batch, teacher = _problem(None, False, "mse")
    lift = lambda t, dims: t.unsqueeze(0) if dims == 3 else t
    batch = st.Samples(lift(batch.clean, batch_dims), lift(batch.noisy, batch_dims), lift(batch.y, target_dims))
    teacher = {k: lift(v, target_dims) for k, v in teacher.items()}
    (terms_a, grads_a), (terms_f, grads_f) = _both(model, batch, teacher, 0.7, ["h1", "h2"], "mse")
    torch.testing.assert_close(terms_f["total"], terms_a["total"], rtol=1e-12, atol=1e-14)
    for a, f in zip(grads_a, grads_f):
        assert f.shape == a.shape
        torch.testing.assert_close(f, a, rtol=1e-12, atol=1e-14)


def test_matched_relu_feature_is_zero_where_the_unit_is_off():
    """Where h = 0 the ReLU blocks the feature gradient too: a teacher asking for a negative value moves nothing."""
    model = _model("relu", None, [3, 4, 1])
    with torch.no_grad():
        model.layers[0].weight.copy_(-torch.eye(4, 3, dtype=F64))
    x = torch.ones(5, 3, dtype=F64)
    batch = st.Samples(x, x, torch.zeros(5, 1, dtype=F64))
    fused.st_gradients(model, batch, {"h1": -torch.ones(5, 4, dtype=F64)}, 1.0, ["h1"])
    assert torch.count_nonzero(model.layers[0].weight.grad[:3]) == 0


def test_supports_deep_linear_and_relu_only():
    assert fused.supports(_model("linear", 2)) and fused.supports(_model("relu", None))
    assert not fused.supports(_model("tanh", 2))
    with pytest.raises(ParameterError, match="st_gradients needs a DeepLinear or a ReLU MLP; got MLP"):
        fused.st_gradients(_model("tanh", None), *_problem(None, False, "mse"), 1.0, ["h1"])


@pytest.mark.parametrize("kind, optimizer, batch_size", [("linear", "sgd", None), ("relu", "sgd", 4),
                                                         ("relu", "adam", None), ("tanh", "sgd", None)])
def test_training_follows_the_same_path_with_either_backward(kind, optimizer, batch_size):
    """Fused where supported (tanh falls back to autograd): the same history and weights to rounding."""
    inputs = st.gaussian_inputs(6, rank=3, seed=0)
    task = st.Task(inputs, st.linear_target(inputs, 3, seed=1), sigma=0.5)
    split = st.make_splits(task, 12, 20, [0, 1, 2], dtype=F64)
    teacher = st.FrozenTeacher(_model(kind, None))
    config = st.TrainConfig(steps=80, lr=0.05, optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0,
                            batch_size=batch_size, log_points=8, progress=False)
    runs = []
    for backward in ("autograd", "fused"):
        model = _model(kind, 3)
        result = st.train(model, split.train, teacher=teacher, lam=[0.0, 1.0, 3.0], layers=["h1", "h2"],
                          config=dataclasses.replace(config, backward=backward), eval_sets={"test": split.test})
        runs.append((result.history, [p.detach() for p in model.parameters()]))
    (h_a, p_a), (h_f, p_f) = runs
    for column in ("train_task", "train_feature", "train_total", "test_noisy"):
        torch.testing.assert_close(torch.tensor(h_f[column].values), torch.tensor(h_a[column].values),
                                   rtol=1e-10, atol=1e-12)
    for a, f in zip(p_a, p_f):
        torch.testing.assert_close(f, a, rtol=1e-10, atol=1e-12)


def test_unknown_backward_is_refused():
    with pytest.raises(ParameterError, match="backward must be one of"):
        st.TrainConfig(backward="jit")
