"""The trainer: tidy log-spaced history, early stopping, patience, minibatches from the batch stream, divergence."""

import re

import pytest
import torch

import stlearn as st
from stlearn.fast import optim
from stlearn.train import PlainAdam, PlainSGD, make_optimizer, minibatch

F64 = torch.float64
RNG = st.Stream(0)


def _task(d=8, sigma=0.4, label_noise=0.1):
    inputs = st.gaussian_inputs(d, rank=4, rng=RNG.child("task"))
    return st.Task(inputs, st.linear_target(inputs, 3, rng=RNG.child("target")), sigma=sigma, label_noise=label_noise)


def _overfitting_problem(members):
    """A tiny noisy problem that overfits: the validation error goes down, then up."""
    inputs = st.gaussian_inputs(30, rank=3, rng=RNG.child("task"))
    task = st.Task(inputs, st.linear_target(inputs, 2, rng=RNG.child("target")), sigma=1.0, label_noise=0.5)
    if members is None:
        return st.draw(task, 20, RNG.child("student_data"), dtype=F64), st.draw(task, 200, RNG.child("validation"),
                                                                                 dtype=F64)
    return (st.draw_members(task, 20, RNG.children("student_data", members), dtype=F64),
            st.draw_members(task, 200, RNG.children("validation", members), dtype=F64))


def test_history_is_tidy_and_log_spaced():
    train = st.draw_members(_task(), 10, RNG.children("student_data", 2), dtype=F64)
    test = st.draw_members(_task(), 10, RNG.children("test", 2), label_noise=False, dtype=F64)
    ens = st.DeepLinear([8, 4, 3], members=2, rng=RNG.children("student_init", 2), dtype=F64)
    res = st.train(ens, train, config=st.TrainConfig(steps=1000, lr=0.01, log_points=10, progress=False),
                   eval_sets={"test": test}, member_info={"seed": [0, 1]})
    h = res.history
    assert {"step", "member", "lam", "seed", "train_task", "train_feature", "train_total",
            "test_noisy", "test_clean"} <= set(h.columns)
    steps = sorted(h.step.unique())
    assert steps[0] == 0 and steps[-1] == 1000 and len(steps) <= 10
    assert len(h) == 2 * len(steps)
    assert st.log_schedule(1000, 10) == steps
    assert (h.train_feature == 0).all() and (h.train_total == h.train_task).all()  # no teacher: the base loss


def test_without_train_metrics_the_eval_sets_are_logged_alike():
    """train_metrics=False: no train_* columns; "ends": the training terms at the first and last log points only;
    the same eval-set errors and the same trained weights either way."""
    train = st.draw_members(_task(), 10, RNG.children("student_data", 2), dtype=F64)
    test = st.draw_members(_task(), 10, RNG.children("test", 2), label_noise=False, dtype=F64)
    out = {}
    for flag in (True, False, "ends"):
        ens = st.DeepLinear([8, 4, 3], members=2, rng=RNG.children("student_init", 2), dtype=F64)
        config = st.TrainConfig(steps=50, lr=0.01, log_points=5, batch_size=4, progress=False, train_metrics=flag)
        out[flag] = (st.train(ens, train, config=config, eval_sets={"test": test}).history, ens)
    assert "train_task" in out[True][0] and not out[False][0].columns.str.startswith("train_").any()
    every, ends = out[True][0], out["ends"][0]
    at_ends = ends.step.isin([0, 50])
    assert ends[at_ends].train_total.equals(every[at_ends].train_total) and ends[~at_ends].train_total.isna().all()
    for flag in (False, "ends"):
        for column in ("step", "member", "test_noisy", "test_clean"):
            assert out[True][0][column].equals(out[flag][0][column])
        for a, b in zip(out[True][1].parameters(), out[flag][1].parameters()):
            assert torch.equal(a, b)
    for bad in (1, "first"):
        with pytest.raises(st.ParameterError, match="train_metrics"):
            st.TrainConfig(train_metrics=bad)


def test_early_stopping_restores_each_members_best_weights():
    train, val = _overfitting_problem(2)
    ens = st.DeepLinear([30, 30, 2], members=2, init_scale=0.1, rng=RNG.children("student_init", 2), dtype=F64)
    config = st.TrainConfig(steps=600, lr=0.05, momentum=0.9, early_stopping=True, progress=False, log_points=20)
    res = st.train(ens, train, config=config, eval_sets={"val": val})
    h = res.history
    for e in range(2):
        he = h[h.member == e]
        best = he.loc[he.val_noisy.idxmin()]
        assert res.best_step[e] == best.step < 600
        after = st.evaluate(st.member(ens, e), val.map(lambda t, e=e: t[e]))
        assert after["noisy"].item() == pytest.approx(best.val_noisy, rel=1e-9)


def test_patience_stops_training_early():
    train, val = _overfitting_problem(None)
    model = st.DeepLinear([30, 30, 2], init_scale=0.1, rng=RNG.child("student_init"), dtype=F64)
    config = st.TrainConfig(steps=20000, lr=0.05, momentum=0.9, early_stopping=True, patience=3,
                            progress=False, log_points=60)
    res = st.train(model, train, config=config, eval_sets={"val": val})
    assert res.stopped_at < 20000 and res.history.step.max() == res.stopped_at


def test_minibatches_come_from_the_batch_stream():
    train = st.draw(_task(), 12, RNG.child("student_data"), dtype=F64)

    def run(batch_rng, batch_size=4):
        model = st.DeepLinear([8, 4, 3], rng=RNG.child("student_init"), dtype=F64)
        st.train(model, train, config=st.TrainConfig(steps=20, lr=0.05, batch_size=batch_size, seed=batch_rng,
                                                     progress=False))
        return model.end_to_end().detach()

    assert torch.equal(run(RNG), run(RNG))
    assert not torch.equal(run(RNG), run(st.Stream(1)))
    assert torch.equal(run(RNG, None), run(st.Stream(1), None))  # full batch: no draw at all


def test_minibatch_picks_rows_and_their_teacher_features():
    data = st.draw(_task(), 10, RNG.child("student_data"), dtype=F64)
    feats = {"h1": data.clean @ torch.ones(8, 2, dtype=F64)}
    batch, picked = minibatch(data, feats, 4, RNG.child("batch").generator())
    assert batch.n == 4 and torch.equal(picked["h1"], batch.clean @ torch.ones(8, 2, dtype=F64))
    rows = [int((data.clean == row).all(-1).nonzero()) for row in batch.clean]
    assert len(set(rows)) == 4 and torch.equal(batch.y, data.y[rows])
    assert minibatch(data, feats, None, None) == (data, feats) and minibatch(data, feats, 10, None)[0] is data


def test_make_optimizer_takes_the_fast_or_the_plain_one():
    params = [torch.nn.Parameter(torch.zeros(2, 3, 4))]
    for fast, sgd, adam in ((True, optim.SGD, optim.Adam), (False, PlainSGD, PlainAdam)):
        assert type(make_optimizer(params, st.TrainConfig(fast=fast))) is sgd
        assert type(make_optimizer(params, st.TrainConfig(fast=fast, optimizer="adam"))) is adam
    with pytest.raises(st.ParameterError, match=r"lr_scale \(one learning rate per member\) needs optimizer='sgd'"):
        make_optimizer(params, st.TrainConfig(optimizer="adam"), [1.0, 1.0], 2)
    with pytest.raises(st.ParameterError, match=r"lr_scale must hold numbers > 0; got \[1.0, 0.0\]"):
        make_optimizer(params, st.TrainConfig(), [1.0, 0.0], 2)


def test_divergence_stops_training_with_step_loss_and_learning_rate():
    train = st.draw(_task(), 16, RNG.child("student_data"))
    model = st.DeepLinear([8, 8, 3], init_scale=1.0, rng=RNG.child("student_init"))
    with pytest.raises(st.TrainingDiverged) as err:
        st.train(model, train, config=st.TrainConfig(steps=500, lr=50.0, progress=False))
    message = str(err.value)
    assert re.fullmatch(r"training diverged at step \d+: loss = (nan|inf) with lr = 50; "
                        r"lower the learning rate \(lr\) or the init scale", message), message
    step = int(re.search(r"step (\d+)", message).group(1))
    assert 0 < step < 500, message


def test_train_log_size_measures_the_training_terms_on_the_first_samples():
    x = torch.randn(2, 40, 5, generator=st.Stream(1).generator())
    data = st.Samples(x, x + 0.1, x[..., :1])
    cfg = st.TrainConfig(steps=3, lr=1e-3, log_points=2, progress=False, train_log_size=10)
    h = st.train(st.MLP([5, 7, 1], members=2, rng=0), data, config=cfg).history
    first = st.MLP([5, 7, 1], members=2, rng=0)(x[:, :10] + 0.1)
    want = 0.5 * (first - x[:, :10, :1]).pow(2).sum(-1).mean(-1)
    assert torch.allclose(torch.tensor(h[h.step == 0].train_task.to_numpy()), want.detach().double(), rtol=1e-5)
    with pytest.raises(st.ParameterError, match="train_log_size"):
        st.TrainConfig(train_log_size=0)
