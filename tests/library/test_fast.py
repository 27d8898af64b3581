"""The fast path (stlearn.fast) against a plain reference, in float32 and in float64.

The reference is built here from ``torch.nn.Linear`` layers, plain tensors and plain torch operations (a
matrix product, ``torch.relu``, a sum of squares, ``F.cross_entropy``, ``torch.optim``), never from the
library's models, losses or custom Functions; a member ``e`` of an ensemble is compared with the plain
network holding member ``e``'s weights. Compared: the hand-written ST gradients (``fast.fused``), the
custom Functions (``fast.functions``), the foreach optimizers (``fast.optim``) and the plain ones of
``stlearn.train``, and whole training runs ``TrainConfig(fast=True)`` against ``fast=False``.
"""

import dataclasses
import sys

import pytest
import torch
import torch.nn.functional as F

import stlearn as st
from stlearn import fast
from stlearn.data import randn
from stlearn.fast import functions, fused, optim
from stlearn.train import PlainAdam, PlainSGD, autograd_gradients
from stlearn.validation import ParameterError

F32, F64 = torch.float32, torch.float64
# float32 results differ from the reference in the order of their sums (a few units in the last place of
# values of order one); float64 ones to 1e-12
TOL = {F32: dict(rtol=1e-5, atol=1e-6), F64: dict(rtol=1e-12, atol=1e-14)}
DTYPES = pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
WIDTHS = [6, 5, 4, 3]
RNG = st.Stream(0)


def _randn(dtype, k, *shape):
    return randn(RNG.child("reference", k), *shape).to(dtype)


def _model(kind, members, dtype, widths=WIDTHS):
    rng = RNG.children("student_init", members) if members else RNG.child("student_init")
    if kind == "linear":
        return st.DeepLinear(widths, members=members, rng=rng, dtype=dtype, init_scale=0.8)
    model = st.MLP(widths, members=members, rng=rng, dtype=dtype, activation=kind)
    with torch.no_grad():  # non-zero biases, so that their gradients are not trivially those of zeros
        for l, layer in enumerate(model.layers):
            layer.bias.copy_(0.3 * _randn(dtype, 100 + l, *layer.bias.shape))
    return model


def _problem(members, shared, task, dtype, widths=WIDTHS, n=7):
    """A batch and teacher features: shared by all members (``(n, .)``) or one set per member (``(E, n, .)``)."""
    lead = () if members is None or shared else (members,)
    clean = _randn(dtype, 0, *lead, n, widths[0])
    noisy = clean + 0.3 * _randn(dtype, 1, *clean.shape)
    if task == "mse":
        y = _randn(dtype, 2, *lead, n, widths[-1])
    else:
        y = torch.randint(0, widths[-1], (*lead, n), generator=RNG.child("reference", 2).generator())
    teacher = {f"h{l}": _randn(dtype, 10 + l, *lead, n, w) for l, w in enumerate(widths[1:-1], start=1)}
    return st.Samples(clean, noisy, y), teacher


# --------------------------------------------------------------------------- the plain reference
def plain_networks(model) -> list[list[torch.nn.Linear]]:
    """One plain network per member: ``torch.nn.Linear`` layers holding a copy of member ``e``'s weights."""
    nets = []
    for e in range(model.members or 1):
        layers = []
        for layer in model.layers:
            w = layer.weight.detach() if model.members is None else layer.weight.detach()[e]
            linear = torch.nn.Linear(w.shape[1], w.shape[0], bias=layer.bias is not None, dtype=w.dtype)
            with torch.no_grad():
                linear.weight.copy_(w)
                if layer.bias is not None:
                    b = layer.bias.detach() if model.members is None else layer.bias.detach()[e]
                    linear.bias.copy_(b.reshape(-1))
            layers.append(linear)
        nets.append(layers)
    return nets


def plain_st_loss(layers, activation, noisy, y, teacher, lam, matched, task):
    """The ST loss of one plain network, written out; its gradient is left in the layers' ``.grad``."""
    h, feats = noisy, {}
    for l, linear in enumerate(layers[:-1], start=1):
        h = activation(linear(h))
        feats[f"h{l}"] = h
    out = layers[-1](h)
    n = out.shape[-2]
    task_term = 0.5 * ((out - y) ** 2).sum() / n if task == "mse" else F.cross_entropy(out, y)
    feature = sum((0.5 * ((feats[k] - teacher[k]) ** 2).sum() / n for k in matched), torch.zeros((), dtype=out.dtype))
    total = task_term + lam * feature if matched else task_term
    total.backward()
    return {"task": task_term.detach(), "feature": feature.detach(), "total": total.detach()}


ACTIVATIONS = {"linear": lambda h: h, "relu": torch.relu, "tanh": torch.tanh}


def reference(model, kind, batch, teacher, lam, layers, task):
    """Per member: (terms, gradients in the order of ``model.parameters()``) of its plain network.

    Member ``e`` reads its own slice of every tensor that has a member dimension, and the shared tensor otherwise.
    """
    def of_member(t, e, shared_dims):
        return t if model.members is None or t.dim() == shared_dims else t[e]

    out = []
    for e, net in enumerate(plain_networks(model)):
        lam_e = float(lam[e]) if isinstance(lam, torch.Tensor) else lam
        teacher_e = {k: of_member(v, e, 2) for k, v in teacher.items()}
        y = of_member(batch.y, e, 1 if task == "ce" else 2)
        terms = plain_st_loss(net, ACTIVATIONS[kind], of_member(batch.noisy, e, 2), y, teacher_e, lam_e, layers, task)
        grads = [p.grad for linear in net for p in linear.parameters()]  # weight, then bias, as in the models
        out.append((terms, grads))
    return out


def library_gradients(compute, model, batch, teacher, lam, layers, task):
    for p in model.parameters():
        p.grad = None
    terms = compute(model, batch, teacher if layers else None, lam, layers, task)
    return {k: v.detach() for k, v in terms.items()}, [p.grad.clone() for p in model.parameters()]


def assert_matches_reference(terms, grads, ref, members, dtype):
    for e, (ref_terms, ref_grads) in enumerate(ref):
        def member(t, e=e):
            return t if members is None else t[e]

        for k in ("task", "feature", "total"):
            torch.testing.assert_close(member(terms[k]), ref_terms[k], **TOL[dtype])
        assert len(grads) == len(ref_grads)
        for g, r in zip(grads, ref_grads):
            g = member(g)
            assert g.dtype == dtype
            torch.testing.assert_close(g.reshape(r.shape), r, **TOL[dtype])


# the library's three ways to the ST gradients: by hand, autograd through the fast Functions, autograd plainly
def _fused(model, *args):
    return fused.st_gradients(model, *args)


def _autograd_fast(model, *args):
    with fast.switched(True):
        return autograd_gradients(model, *args)


def _autograd_plain(model, *args):
    with fast.disabled():
        return autograd_gradients(model, *args)


COMPUTE = {"fused": _fused, "autograd-fast": _autograd_fast, "autograd-plain": _autograd_plain}


# --------------------------------------------------------------------------- ST gradients
@DTYPES
@pytest.mark.parametrize("compute", list(COMPUTE))
@pytest.mark.parametrize("kind", ["linear", "relu"])
@pytest.mark.parametrize("members, shared", [(None, False), (3, False), (3, True)], ids=["single", "ensemble",
                                                                                         "ensemble-shared-inputs"])
@pytest.mark.parametrize("task", ["mse", "ce"])
@pytest.mark.parametrize("layers", [[], ["h2"], ["h1", "h2"]], ids=["base", "h2", "h1+h2"])
def test_st_terms_and_gradients_equal_plain_autograd(dtype, compute, kind, members, shared, task, layers):
    model = _model(kind, members, dtype)
    batch, teacher = _problem(members, shared, task, dtype)
    lam = torch.tensor([0.0, 0.5, 2.0], dtype=dtype) if members else 0.7
    terms, grads = library_gradients(COMPUTE[compute], model, batch, teacher, lam, layers, task)
    assert_matches_reference(terms, grads, reference(model, kind, batch, teacher, lam, layers, task), members, dtype)


@DTYPES
@pytest.mark.parametrize("compute", list(COMPUTE))
@pytest.mark.parametrize("widths", [[6, 5, 1], [2, 7, 3], [6, 5]], ids=["one-output", "few-inputs", "no-hidden"])
def test_st_gradients_equal_plain_autograd_at_edge_shapes(dtype, compute, widths):
    """One output unit and few inputs take their own backward paths; no hidden layer matches nothing."""
    model = _model("relu", 2, dtype, widths)
    batch, teacher = _problem(2, False, "mse", dtype, widths)
    layers = model.feature_names
    terms, grads = library_gradients(COMPUTE[compute], model, batch, teacher, 1.5, layers, "mse")
    assert_matches_reference(terms, grads, reference(model, "relu", batch, teacher, 1.5, layers, "mse"), 2, dtype)


@DTYPES
@pytest.mark.parametrize("kind", ["linear", "relu"])
@pytest.mark.parametrize("batch_dims, target_dims", [(2, 3), (3, 2), (3, 3)])
def test_broadcast_member_dimension_sums_as_plain_autograd_does(dtype, kind, batch_dims, target_dims):
    """A single network fed, or matched against, tensors with a leading member dimension of 1."""
    model = _model(kind, None, dtype)
    batch, teacher = _problem(None, False, "mse", dtype)
    ref = reference(model, kind, batch, teacher, 0.7, ["h1", "h2"], "mse")

    def lift(t, dims):
        return t.unsqueeze(0) if dims == 3 else t

    lifted = st.Samples(lift(batch.clean, batch_dims), lift(batch.noisy, batch_dims), lift(batch.y, target_dims))
    lifted_teacher = {k: lift(v, target_dims) for k, v in teacher.items()}
    for compute in COMPUTE.values():
        terms, grads = library_gradients(compute, model, lifted, lifted_teacher, 0.7, ["h1", "h2"], "mse")
        for g, p in zip(grads, model.parameters()):
            assert g.shape == p.shape
        assert_matches_reference({k: v.reshape(()) for k, v in terms.items()}, grads, ref, None, dtype)


def test_matched_relu_feature_is_zero_where_the_unit_is_off():
    """Where h = 0 the ReLU blocks the feature gradient too: a teacher asking for a negative value moves nothing."""
    model = _model("relu", None, F64, [3, 4, 1])
    with torch.no_grad():
        model.layers[0].weight.copy_(-torch.eye(4, 3, dtype=F64))
        model.layers[0].bias.zero_()
    x = torch.ones(5, 3, dtype=F64)
    batch = st.Samples(x, x, torch.zeros(5, 1, dtype=F64))
    fused.st_gradients(model, batch, {"h1": -torch.ones(5, 4, dtype=F64)}, 1.0, ["h1"])
    assert torch.count_nonzero(model.layers[0].weight.grad[:3]) == 0


def test_fused_supports_deep_linear_and_relu_only():
    assert fused.supports(_model("linear", 2, F32)) and fused.supports(_model("relu", None, F32))
    assert not fused.supports(_model("tanh", 2, F32))
    with pytest.raises(ParameterError, match=r"st_gradients needs a DeepLinear or a ReLU MLP; got MLP "
                                             r"\(train with TrainConfig\(fast=False\)\)"):
        fused.st_gradients(_model("tanh", None, F64), *_problem(None, False, "mse", F64), 1.0, ["h1"])


# --------------------------------------------------------------------------- the custom Functions
def _plain_linear(x, w, b):
    """Member by member with ``F.linear``: ``(E, n, out)``."""
    members = range(w.shape[0])
    return torch.stack([F.linear(x if x.dim() == 2 else x[e], w[e], None if b is None else b[e].reshape(-1))
                        for e in members])


def _values_and_grads(fn, inputs, upstream):
    inputs = [t.detach().clone().requires_grad_(True) if t is not None else None for t in inputs]
    out = fn(*inputs)
    out.backward(upstream)
    return out.detach(), [t.grad for t in inputs if t is not None]


@DTYPES
@pytest.mark.parametrize("d_in, d_out", [(3, 7), (7, 3), (7, 1)], ids=["few-inputs", "wide", "one-output"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared-inputs", "member-inputs"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_member_linear_equals_a_plain_linear_per_member(dtype, d_in, d_out, shared, bias):
    x = _randn(dtype, 0, *(() if shared else (2,)), 5, d_in)
    w, b = _randn(dtype, 1, 2, d_out, d_in), (_randn(dtype, 2, 2, 1, d_out) if bias else None)
    upstream = _randn(dtype, 3, 2, 5, d_out)
    got, got_grads = _values_and_grads(functions.member_linear, [x, w, b], upstream)
    want, want_grads = _values_and_grads(_plain_linear, [x, w, b], upstream)
    torch.testing.assert_close(got, want, **TOL[dtype])
    for g, r in zip(got_grads, want_grads):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, **TOL[dtype])


@pytest.mark.parametrize("d_in, d_out", [(3, 7), (7, 3), (7, 1)])
@pytest.mark.parametrize("shared", [True, False])
def test_member_linear_gradients_pass_gradcheck(d_in, d_out, shared):
    x = _randn(F64, 0, *(() if shared else (2,)), 5, d_in).requires_grad_(True)
    w = _randn(F64, 1, 2, d_out, d_in).requires_grad_(True)
    b = _randn(F64, 2, 2, 1, d_out).requires_grad_(True)
    assert torch.autograd.gradcheck(functions.MemberLinear.apply, (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w: functions.MemberLinear.apply(x, w, None), (x, w))


def _plain_half_mean_squared_distance(a, b):
    return 0.5 * ((a - b) ** 2).sum(-1).mean(-1)


@DTYPES
@pytest.mark.parametrize("one_pass", [True, False], ids=["function", "small-tensors"])
@pytest.mark.parametrize("shape_a, shape_b", [((3, 5, 4), (3, 5, 4)), ((3, 5, 4), (5, 4)), ((5, 4), (5, 4))])
def test_half_mean_squared_distance_equals_the_plain_formula(dtype, one_pass, shape_a, shape_b, monkeypatch):
    if one_pass:
        monkeypatch.setattr(functions, "_FUSE_ABOVE", 0)  # the custom Function, whatever the size
    a, b = _randn(dtype, 0, *shape_a), _randn(dtype, 1, *shape_b)
    upstream = _randn(dtype, 2, 1).reshape(()) if len(shape_a) == 2 else _randn(dtype, 2, *shape_a[:-2])
    got, got_grads = _values_and_grads(functions.half_mean_squared_distance, [a, b], upstream)
    want, want_grads = _values_and_grads(_plain_half_mean_squared_distance, [a, b], upstream)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, **TOL[dtype])
    for g, r in zip(got_grads, want_grads):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, **TOL[dtype])
    if one_pass and dtype == F64:
        assert torch.autograd.gradcheck(functions.half_mean_squared_distance,
                                        (a.requires_grad_(True), b.requires_grad_(True)))


def test_half_mean_squared_distance_takes_the_one_pass_function_above_its_threshold():
    a = torch.zeros(functions._FUSE_ABOVE // 4 + 1, 4, requires_grad=True)
    assert type(functions.half_mean_squared_distance(a, a.detach()).grad_fn).__name__.startswith("_HalfMeanSquared")


@DTYPES
@pytest.mark.parametrize("shape", [(20, 50, 10), (7, 4), (3, 1)])
def test_log_softmax_equals_the_plain_one(dtype, shape):
    logits, upstream = 3 * _randn(dtype, 0, *shape), _randn(dtype, 1, *shape)
    got, got_grads = _values_and_grads(functions.log_softmax, [logits], upstream)
    want, want_grads = _values_and_grads(lambda t: F.log_softmax(t, dim=-1), [logits], upstream)
    torch.testing.assert_close(got, want, **TOL[dtype])
    torch.testing.assert_close(got_grads[0], want_grads[0], **TOL[dtype])


# --------------------------------------------------------------------------- optimizers
def _params(dtype, shapes=((3, 4), (2, 3, 4))):
    return [_randn(dtype, 50 + i, *s) for i, s in enumerate(shapes)]


def _run(opt, params, dtype, steps=5):
    """``steps`` updates, each from the same fresh gradients (a stream per step)."""
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = randn(RNG.child("direction", step, i), *p.shape).to(dtype)
        opt.step()
    return [p.detach() for p in params]


def _torch_run(make, dtype, steps=5, **kw):
    params = [torch.nn.Parameter(p) for p in _params(dtype)]
    return _run(make(params, **kw), params, dtype, steps)


OURS = {
    "fast": (optim.SGD, optim.Adam),
    "plain": (PlainSGD, PlainAdam),
}


@DTYPES
@pytest.mark.parametrize("ours", list(OURS))
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01), (0.0, 0.01)])
def test_sgd_equals_torch_optim_sgd(dtype, ours, momentum, weight_decay):
    params = [torch.nn.Parameter(p) for p in _params(dtype)]
    got = _run(OURS[ours][0](params, 0.1, momentum, weight_decay), params, dtype)
    want = _torch_run(torch.optim.SGD, dtype, lr=0.1, momentum=momentum, weight_decay=weight_decay, foreach=True)
    for a, b in zip(got, want):
        if ours == "fast":  # the same foreach kernels: the same bits
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, **TOL[dtype])


@DTYPES
@pytest.mark.parametrize("ours", list(OURS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_equals_torch_optim_adam(dtype, ours, weight_decay):
    params = [torch.nn.Parameter(p) for p in _params(dtype)]
    got = _run(OURS[ours][1](params, 0.01, weight_decay), params, dtype)
    want = _torch_run(torch.optim.Adam, dtype, lr=0.01, weight_decay=weight_decay, fused=True)
    for a, b in zip(got, want):
        if ours == "fast":  # the same fused kernel: the same bits
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, **TOL[dtype])


@DTYPES
@pytest.mark.parametrize("ours", list(OURS))
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.5, 0.0), (0.9, 0.01)])
def test_sgd_with_a_rate_per_member_is_torch_sgd_at_that_rate(dtype, ours, momentum, weight_decay):
    rates = [0.1, 0.3, 0.02]
    stacked = [torch.nn.Parameter(p) for p in _params(dtype, ((3, 4, 2), (3, 1, 4)))]
    got = _run(OURS[ours][0](stacked, torch.tensor(rates, dtype=dtype), momentum, weight_decay), stacked, dtype)
    for e, lr in enumerate(rates):
        alone = [torch.nn.Parameter(p[e].clone()) for p in _params(dtype, ((3, 4, 2), (3, 1, 4)))]
        opt = torch.optim.SGD(alone, lr=lr, momentum=momentum, weight_decay=weight_decay)
        for step in range(5):
            for i, p in enumerate(alone):
                p.grad = randn(RNG.child("direction", step, i), *stacked[i].shape).to(dtype)[e]
            opt.step()
        for a, b in zip(got, alone):
            torch.testing.assert_close(a[e], b.detach(), **TOL[dtype])


def test_per_member_rate_by_hand():
    """Buffers 1, 1.5, 1.75 with momentum 0.5: after three unit gradients the member has moved by lr * 4.25."""
    for sgd in (optim.SGD, PlainSGD):
        p = torch.nn.Parameter(torch.ones(2, 3, 4, dtype=F64))
        opt = sgd([p], torch.tensor([0.1, 0.3], dtype=F64), momentum=0.5)
        for _ in range(3):
            p.grad = torch.ones_like(p)
            opt.step()
        assert torch.allclose(p[0], torch.full((3, 4), 1 - 0.1 * 4.25, dtype=F64))
        assert torch.allclose(p[1], torch.full((3, 4), 1 - 0.3 * 4.25, dtype=F64))


# --------------------------------------------------------------------------- whole training runs
# 80 steps with momentum amplify the rounding of each step (up to about 1e-5 of a weight of order 0.1 in float32,
# 2e-13 in float64): the same path, to tolerances a hundred times those of one step
TRAIN_TOL = {F32: dict(rtol=2e-4, atol=2e-5), F64: dict(rtol=1e-10, atol=1e-12)}
# Adam's fused kernel takes sqrt(v) / sqrt(1 - beta2^t) where the formula (PlainAdam) takes sqrt(v / (1 - beta2^t)):
# one rounding apart, which Adam's near-sign steps (m / sqrt(v) where the gradient is small) carry into about 6e-4
# of a weight after 80 float32 steps; a wrong formula moves weights by the step size itself (5e-2)
ADAM_TRAIN_TOL = {**TRAIN_TOL, F32: dict(rtol=2e-3, atol=5e-4)}


@DTYPES
@pytest.mark.parametrize("kind, optimizer, batch_size, task", [
    ("linear", "sgd", None, "mse"), ("relu", "sgd", 4, "mse"), ("relu", "adam", None, "mse"),
    ("relu", "sgd", None, "ce"), ("tanh", "sgd", None, "mse")])
def test_training_fast_and_plain_follow_the_same_path(dtype, kind, optimizer, batch_size, task):
    """``TrainConfig(fast=True)`` against ``fast=False``: the same history and weights, to rounding.

    (tanh: the fast path's autograd through its Functions and its optimizers; no hand-written gradients.)
    """
    inputs = st.gaussian_inputs(6, rank=3, rng=RNG.child("task"))
    data_task = st.Task(inputs, st.linear_target(inputs, 3, rng=RNG.child("target")), sigma=0.5)
    train = st.draw_members(data_task, 12, RNG.children("student_data", 3), dtype=dtype)
    test = st.draw_members(data_task, 20, RNG.children("test", 3), label_noise=False, dtype=dtype)
    if task == "ce":
        train, test = (st.Samples(s.clean, s.noisy, s.y.argmax(-1)) for s in (train, test))
    teacher = st.FrozenTeacher(_model(kind, None, dtype))
    config = st.TrainConfig(steps=80, lr=0.05, optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0,
                            weight_decay=1e-3, batch_size=batch_size, task=task, log_points=8,
                            seed=RNG.child("batch"), progress=False)
    lams = [0.0, 1.0, 3.0]
    scale = [1.0, 0.6, 0.3] if optimizer == "sgd" else None  # one rate per member, as in the chapters
    runs = []
    for on in (False, True):
        model = _model(kind, 3, dtype)
        result = st.train(model, train, teacher=teacher, lam=lams, layers=["h1", "h2"],
                          config=dataclasses.replace(config, fast=on), eval_sets={"test": test}, lr_scale=scale)
        runs.append((result.history, [p.detach() for p in model.parameters()]))
    (h_plain, p_plain), (h_fast, p_fast) = runs
    assert fast.enabled(), "train() must leave the fast path as it found it"
    for column in ("train_task", "train_feature", "train_total", "test_noisy", "test_clean"):
        torch.testing.assert_close(torch.tensor(h_fast[column].values), torch.tensor(h_plain[column].values),
                                   **TRAIN_TOL[dtype])
    for a, b in zip(p_fast, p_plain):
        torch.testing.assert_close(a, b, **(ADAM_TRAIN_TOL if optimizer == "adam" else TRAIN_TOL)[dtype])


def _refuse(name):
    def refused(*args, **kwargs):
        raise AssertionError(f"{name} was called")
    return refused


def test_the_plain_reference_takes_no_fast_path(monkeypatch):
    """``fast=False``: no hand-written gradient, custom Function, one-pass kernel or foreach optimizer runs."""
    for module, name in ((fused, "st_gradients"), (fast, "member_linear"), (fast, "half_mean_squared_distance"),
                         (fast, "log_softmax"), (optim, "SGD"), (optim, "Adam")):
        monkeypatch.setattr(module, name, _refuse(f"{module.__name__}.{name}"))
    inputs = st.gaussian_inputs(6)
    task = st.Task(inputs, st.linear_target(inputs, 3, rng=RNG.child("target")), sigma=0.5)
    train = st.draw_members(task, 12, RNG.children("student_data", 2))
    for kind, optimizer, loss in (("relu", "sgd", "mse"), ("linear", "adam", "mse"), ("relu", "sgd", "ce")):
        data = train if loss == "mse" else st.Samples(train.clean, train.noisy, train.y.argmax(-1))
        model = _model(kind, 2, F32)
        st.train(model, data, teacher=st.FrozenTeacher(_model(kind, 2, F32)), lam=1.0, layers=["h1"],
                 config=st.TrainConfig(steps=3, optimizer=optimizer, task=loss, progress=False, fast=False),
                 eval_sets={"train": data})


def test_the_fast_path_takes_the_hand_written_gradients(monkeypatch):
    train_module = sys.modules["stlearn.train"]
    monkeypatch.setattr(train_module, "autograd_gradients", _refuse("autograd_gradients"))
    inputs = st.gaussian_inputs(6)
    task = st.Task(inputs, st.linear_target(inputs, 3, rng=RNG.child("target")), sigma=0.5)
    model = _model("relu", 2, F32)
    st.train(model, st.draw_members(task, 12, RNG.children("student_data", 2)), teacher=st.FrozenTeacher(model),
             lam=1.0, layers=["h1"], config=st.TrainConfig(steps=3, progress=False))
    with pytest.raises(AssertionError, match="autograd_gradients was called"):
        st.train(_model("tanh", 2, F32), st.draw(task, 12, RNG.child("student_data")),
                 config=st.TrainConfig(steps=3, progress=False))


def test_switched_restores_the_state_and_fast_must_be_a_bool():
    assert fast.enabled()
    with fast.disabled():
        assert not fast.enabled()
        with fast.switched(True):
            assert fast.enabled()
        assert not fast.enabled()
    with pytest.raises(RuntimeError), fast.disabled():
        raise RuntimeError("inside")
    assert fast.enabled()
    with pytest.raises(ParameterError, match=r"fast must be True or False; got 'yes'"):
        st.TrainConfig(fast="yes")
