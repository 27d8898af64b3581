"""The ensemble trainer: each member trains exactly as it would alone, and the optimizers match torch's."""

from dataclasses import replace

import pytest
import torch

import stlearn as st
from stlearn.train import SGD, Adam


def _task(d=12, d_out=3, sigma=0.5):
    inputs = st.gaussian_inputs(d, rank=6, seed=0)
    return st.Task(inputs, st.linear_target(inputs, d_out, seed=1), sigma=sigma)


def _grads_from(params, step):
    gen = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)


def _assert_same_steps(ours, opt, ref, torch_opt, steps: int = 5):
    """Feed both optimizers the same gradients; the parameters must stay bitwise equal."""
    for step in range(steps):
        _grads_from(ours, step)
        _grads_from(ref, step)
        opt.step()
        torch_opt.step()
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01)])
def test_sgd_matches_torch_bitwise(momentum, weight_decay):
    ours = [torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    ref = [torch.nn.Parameter(p.clone()) for p in ours]
    ours = [torch.nn.Parameter(p) for p in ours]
    opt, torch_opt = SGD(ours, 0.1, momentum, weight_decay), torch.optim.SGD(
        ref, lr=0.1, momentum=momentum, weight_decay=weight_decay, foreach=True)
    _assert_same_steps(ours, opt, ref, torch_opt)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_torch_bitwise(weight_decay):
    ours = [torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(i)))
            for i in range(2)]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt = Adam(ours, 0.01, weight_decay)
    torch_opt = torch.optim.Adam(ref, lr=0.01, weight_decay=weight_decay, foreach=True)
    _assert_same_steps(ours, opt, ref, torch_opt)


def test_per_member_learning_rate_is_sgd_at_that_rate():
    p = torch.nn.Parameter(torch.ones(2, 3, 4, dtype=torch.float64))
    opt = SGD([p], torch.tensor([0.1, 0.3], dtype=torch.float64), momentum=0.5)
    for _ in range(3):
        p.grad = torch.ones_like(p)
        opt.step()
    # buffers 1, 1.5, 1.75: the member moves by lr * 4.25
    assert torch.allclose(p[0], torch.full((3, 4), 1 - 0.1 * 4.25, dtype=torch.float64))
    assert torch.allclose(p[1], torch.full((3, 4), 1 - 0.3 * 4.25, dtype=torch.float64))


def _fit(model, data, teacher, lam, lr_scale, config, eval_sets):
    layers = model.feature_names if teacher is not None else ()
    return st.train(model, data, teacher=teacher, lam=lam, layers=layers, config=config, eval_sets=eval_sets,
                    lr_scale=lr_scale)


@pytest.mark.parametrize("kind, optimizer", [("linear", "sgd"), ("mlp", "sgd"), ("mlp", "adam")])
def test_ensemble_member_matches_single_run(kind, optimizer):
    """Member e of an ensemble (own data, init, lam and rate) ends where the single run with its settings ends."""
    task, seeds, lams = _task(), [3, 4, 5], [0.0, 0.5, 2.0]
    widths, dtype = [task.d, 16, 8, task.d_out], torch.float64
    build = (lambda **kw: st.DeepLinear(widths, init_scale=0.5, dtype=dtype, **kw)) if kind == "linear" else \
        (lambda **kw: st.MLP(widths, activation="tanh", dtype=dtype, **kw))
    teacher = st.FrozenTeacher(build(seed=99))
    split = st.make_splits(task, 10, 50, seeds, dtype=dtype)
    scales = [1.0 / (1 + l) for l in lams] if optimizer == "sgd" else None
    config = st.TrainConfig(steps=60, lr=0.05, optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0,
                            weight_decay=1e-3, early_stopping=True, monitor="val_noisy", log_points=10,
                            progress=False)
    ensemble = build(members=len(seeds), seed=seeds)
    result = _fit(ensemble, split.train, teacher, lams, scales, config, {"val": split.test})
    for e, seed in enumerate(seeds):
        single = build(seed=seed)
        one = lambda s: s.map(lambda t: t[e])
        rate = config.lr * (1.0 if scales is None else scales[e])
        alone = _fit(single, one(split.train), teacher, lams[e], None, replace(config, lr=rate),
                     {"val": one(split.test)})
        for a, b in zip(st.member(ensemble, e).parameters(), single.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        mine = result.history[result.history.member == e].reset_index(drop=True)
        theirs = alone.history.reset_index(drop=True)
        for column in ("train_task", "train_feature", "train_total", "val_noisy", "val_clean"):
            torch.testing.assert_close(torch.tensor(mine[column].values), torch.tensor(theirs[column].values),
                                       rtol=1e-9, atol=1e-12)
        assert result.best_step[e] == alone.best_step


def test_divergence_names_the_member():
    task = _task()
    split = st.make_splits(task, 10, 10, [0, 1], dtype=torch.float64)
    model = st.DeepLinear([task.d, 8, task.d_out], members=2, init_scale=1.0, dtype=torch.float64)
    config = st.TrainConfig(steps=200, lr=0.01, progress=False)
    with pytest.raises(st.TrainingDiverged, match=r"member 1"):
        st.train(model, split.train, config=config, lr_scale=[1.0, 1e4])
