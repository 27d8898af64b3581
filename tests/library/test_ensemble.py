"""The ensemble trainer: each member (own data, init, lam and rate) trains exactly as it would alone."""

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

import stlearn as st

F64 = torch.float64
RNG = st.Stream(0)


def _task(d=12, d_out=3, sigma=0.5, label_noise=0.1):
    inputs = st.gaussian_inputs(d, rank=6, rng=RNG.child("task"))
    return st.Task(inputs, st.linear_target(inputs, d_out, rng=RNG.child("target")), sigma=sigma,
                   label_noise=label_noise)


def _one(samples: st.Samples, e: int) -> st.Samples:
    return samples.map(lambda t: t[e])


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("kind, optimizer, batch_size, lr", [("linear", "sgd", None, 0.05), ("linear", "sgd", 6, 0.02),
                                                             ("mlp", "sgd", None, 0.05), ("mlp", "adam", None, 0.05)])
def test_ensemble_member_matches_single_run(kind, optimizer, batch_size, lr, fast):
    """Member e ends where the single run with member e's data, init, lam and rate ends: weights, history, best step."""
    task, ks, lams = _task(), [0, 1, 2], [0.0, 0.5, 2.0]
    widths = [task.d, 16, 8, task.d_out]
    build = (lambda **kw: st.DeepLinear(widths, init_scale=0.5, dtype=F64, **kw)) if kind == "linear" else \
        (lambda **kw: st.MLP(widths, activation="tanh", dtype=F64, **kw))
    teacher = st.FrozenTeacher(build(rng=RNG.child("teacher_init")))
    train = st.draw_members(task, 10, [RNG.child("student_data", k) for k in ks], dtype=F64)
    val = st.draw_members(task, 50, [RNG.child("validation", k) for k in ks], dtype=F64)
    scales = [1.0, 0.6, 0.3] if optimizer == "sgd" else None  # one rate per member
    config = st.TrainConfig(steps=60, lr=lr, optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0,
                            weight_decay=1e-3, batch_size=batch_size, early_stopping=True, monitor="val_noisy",
                            log_points=10, seed=RNG.child("batch"), progress=False, fast=fast)
    layers = ["h1", "h2"]
    ensemble = build(members=len(ks), rng=[RNG.child("student_init", k) for k in ks])
    result = st.train(ensemble, train, teacher=teacher, lam=lams, layers=layers, config=config,
                      eval_sets={"val": val}, lr_scale=scales, member_info={"seed": ks})
    for e, k in enumerate(ks):
        single = build(rng=RNG.child("student_init", k))
        rate = config.lr * (1.0 if scales is None else scales[e])
        alone = st.train(single, _one(train, e), teacher=teacher, lam=lams[e], layers=layers,
                         config=replace(config, lr=rate), eval_sets={"val": _one(val, e)})
        for a, b in zip(st.member(ensemble, e).parameters(), single.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        mine = result.history[result.history.member == e].reset_index(drop=True)
        theirs = alone.history.reset_index(drop=True)
        assert (mine.seed == k).all() and (mine.lam == lams[e]).all()
        for column in ("step", "train_task", "train_feature", "train_total", "val_noisy", "val_clean"):
            torch.testing.assert_close(torch.tensor(mine[column].values), torch.tensor(theirs[column].values),
                                       rtol=1e-9, atol=1e-12)
        assert result.best_step[e] == alone.best_step


def test_lr_scale_equals_separate_learning_rates():
    train = st.draw(_task(), 10, RNG.child("student_data"), dtype=F64)
    cfg = dict(steps=30, momentum=0.9, progress=False, weight_decay=0.01)
    init = RNG.child("student_init")
    ens = st.DeepLinear([12, 4, 3], members=2, rng=[init, init], dtype=F64)
    st.train(ens, train, config=st.TrainConfig(lr=0.05, **cfg), lr_scale=[1.0, 0.2])
    for e, lr in enumerate([0.05, 0.01]):
        single = st.DeepLinear([12, 4, 3], rng=init, dtype=F64)
        st.train(single, train, config=st.TrainConfig(lr=lr, **cfg))
        for a, b in zip(st.member(ens, e).parameters(), single.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_a_diverging_member_fails_alone_and_the_others_train_as_if_alone():
    """Member 1 at its own rate 50 diverges while member 0 (rate 0.005) trains: member 1 is reported (step, rate,
    its configuration) and its logged values are NaN from then on; member 0 ends exactly where it ends alone."""
    train = st.draw(_task(d=8), 10, RNG.child("student_data"), dtype=F64)
    init = RNG.child("student_init")
    config = st.TrainConfig(steps=300, lr=0.5, progress=False)
    model = st.DeepLinear([8, 8, 3], members=2, rng=[init, init], dtype=F64)
    with pytest.warns(st.DivergedMembers, match=r"^diverged at step [1-9]\d*, member 1 \(seed=7\): loss = (nan|inf) "
                                                r"with lr = 50: counted as failed"):
        result = st.train(model, train, config=config, lr_scale=[0.01, 100], member_info={"seed": [3, 7]})
    h = result.history
    at = h.groupby("member").diverged_at.first()
    assert np.isnan(at[0]) and 0 < at[1] < 300
    assert h[(h.member == 1) & (h.step >= at[1])].train_total.isna().all()
    assert h[h.member == 0].train_total.notna().all()
    alone = st.DeepLinear([8, 8, 3], rng=init, dtype=F64)
    st.train(alone, train, config=replace(config, lr=0.005))
    for a, b in zip(st.member(model, 0).parameters(), alone.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_training_stops_when_every_member_diverges():
    train = st.draw(_task(d=8), 10, RNG.child("student_data"))
    model = st.DeepLinear([8, 8, 3], members=2, rng=RNG.child("student_init"))
    with pytest.raises(st.TrainingDiverged, match=r"^training diverged at step \d+, every member \(.*member 1"
                                                  r".*lower the learning rate"):
        with warnings.catch_warnings():  # the first to go (if one goes first) is reported while the other trains on
            warnings.simplefilter("ignore", st.DivergedMembers)
            st.train(model, train, config=st.TrainConfig(steps=500, lr=0.5, progress=False), lr_scale=[60, 100])


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_per_member_weight_decay_equals_separate_runs(optimizer, fast):
    """A grid of weight decays trains as one ensemble: member e ends where a run with decay e alone ends."""
    train = st.draw(_task(), 10, RNG.child("student_data"), dtype=F64)
    init, decays = RNG.child("student_init"), (0.0, 0.01, 0.3)
    cfg = dict(steps=30, lr=0.05, optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0,
               progress=False, fast=fast)
    ens = st.MLP([12, 8, 3], members=3, rng=[init] * 3, dtype=F64)
    st.train(ens, train, config=st.TrainConfig(weight_decay=decays, **cfg))
    for e, wd in enumerate(decays):
        single = st.MLP([12, 8, 3], rng=init, dtype=F64)
        st.train(single, train, config=st.TrainConfig(weight_decay=wd, **cfg))
        for a, b in zip(st.member(ens, e).parameters(), single.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_per_member_weight_decay_is_checked():
    with pytest.raises(st.ParameterError, match=r"weight_decay\[1\] must be a finite number >= 0.0; got -1"):
        st.TrainConfig(weight_decay=(0.0, -1.0))
    ens = st.DeepLinear([12, 4, 3], members=2, rng=RNG.child("student_init"), dtype=F64)
    train = st.draw(_task(), 10, RNG.child("student_data"), dtype=F64)
    with pytest.raises(st.ParameterError, match=r"weight_decay must be one number >= 0 or one per member \(2\)"):
        st.train(ens, train, config=st.TrainConfig(steps=2, weight_decay=(0.0, 0.1, 0.2), progress=False))


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_fresh_noise_redraws_the_inputs_every_step(fast):
    """Noise augmentation: level 0 is training on the clean inputs; a level > 0 differs from the fixed noisy set
    and from a rerun with another noise stream, and repeats exactly with the same one."""
    task = _task()
    train = st.draw(task, 10, RNG.child("student_data"), dtype=F64)
    init = RNG.child("student_init")
    cfg = st.TrainConfig(steps=25, lr=0.05, progress=False, fast=fast, seed=RNG.child("batch"))

    def run(levels, data=train, config=cfg):
        ens = st.MLP([12, 8, 3], members=len(levels), rng=[init] * len(levels), dtype=F64)
        st.train(ens, data, config=config, fresh_noise=levels)
        return [torch.cat([p.reshape(-1) for p in st.member(ens, e).parameters()]) for e in range(len(levels))]

    clean_member, noisy_member = run([0.0, task.sigma])
    on_clean = st.MLP([12, 8, 3], members=1, rng=[init], dtype=F64)
    st.train(on_clean, st.Samples(train.clean, train.clean, train.y), config=cfg)
    torch.testing.assert_close(clean_member, torch.cat([p.reshape(-1) for p in st.member(on_clean, 0).parameters()]))
    on_fixed = st.MLP([12, 8, 3], members=1, rng=[init], dtype=F64)
    st.train(on_fixed, train, config=cfg)  # the fixed noisy inputs of the set
    fixed = torch.cat([p.reshape(-1) for p in st.member(on_fixed, 0).parameters()])
    again = run([0.0, task.sigma])[1]
    other = run([0.0, task.sigma], config=replace(cfg, seed=RNG.child("batch", 1)))[1]
    assert torch.equal(noisy_member, again)
    assert not torch.allclose(noisy_member, other) and not torch.allclose(noisy_member, fixed)
    with pytest.raises(st.ParameterError, match=r"fresh_noise\[0\] must be a finite number >= 0.0"):
        run([-0.1, 0.1])


def test_fresh_noise_per_member_streams_do_not_depend_on_the_ensemble():
    """With ``noise_seeds`` a member's fresh noise is its own stream's: trained alone or beside another run, and
    at either position, it ends at the same weights."""
    task = _task()
    train = st.draw(task, 10, RNG.child("student_data"), dtype=F64)
    init, mine, other = RNG.child("student_init"), RNG.child("noise", 3), RNG.child("noise", 4)
    cfg = st.TrainConfig(steps=25, lr=0.05, progress=False, seed=RNG.child("batch"))

    def run(streams, levels):
        ens = st.MLP([12, 8, 3], members=len(levels), rng=[init] * len(levels), dtype=F64)
        st.train(ens, train, config=replace(cfg, noise_seeds=tuple(streams)), fresh_noise=levels)
        return [torch.cat([p.reshape(-1) for p in st.member(ens, e).parameters()]) for e in range(len(levels))]

    alone = run([mine], [task.sigma])[0]
    torch.testing.assert_close(run([other, mine], [0.5, task.sigma])[1], alone, rtol=0, atol=1e-12)
    torch.testing.assert_close(run([mine, other], [task.sigma, 2.0])[0], alone, rtol=0, atol=1e-12)
    assert not torch.allclose(run([other], [task.sigma])[0], alone)
    with pytest.raises(st.ParameterError, match=r"noise_seeds must hold one stream per member \(2\); got 1"):
        run([mine], [task.sigma, 0.5])
