import numpy as np
import pytest
import torch

import stlearn as st
from stlearn.validation import ParameterError


def _task(sigma=0.4):
    inputs = st.gaussian_inputs(8, rank=4, seed=0)
    return st.Task(inputs, st.linear_target(inputs, 3, seed=1), sigma=sigma, label_noise=0.1)


@pytest.mark.parametrize("optimizer, batch_size, momentum", [("sgd", None, 0.0), ("sgd", 6, 0.9), ("adam", None, 0.0)])
def test_ensemble_matches_a_loop_of_single_runs(optimizer, batch_size, momentum):
    task = _task()
    seeds, lams = [0, 1, 2], [0.0, 0.5, 2.0]
    split = st.make_splits(task, 12, 20, seeds, dtype=torch.float64)
    teacher = st.FrozenTeacher(st.DeepLinear([8, 5, 3], seed=11, dtype=torch.float64))
    config = st.TrainConfig(steps=60, lr=0.02, optimizer=optimizer, momentum=momentum,
                            batch_size=batch_size, progress=False, log_points=5)
    ens = st.DeepLinear([8, 5, 3], members=3, seed=seeds, dtype=torch.float64)
    hist = st.train(ens, split.train, teacher=teacher, lam=lams, layers=["h1"], config=config,
                    eval_sets={"test": split.test}).history
    for e, (s, lam) in enumerate(zip(seeds, lams)):
        single = st.DeepLinear([8, 5, 3], seed=s, dtype=torch.float64)
        one = st.make_split(task, 12, 20, seed=s, dtype=torch.float64)
        h = st.train(single, one.train, teacher=teacher, lam=lam, layers=["h1"], config=config,
                     eval_sets={"test": one.test}).history
        mine = hist[hist.member == e].reset_index(drop=True)
        for col in ["train_task", "train_feature", "test_noisy", "test_clean"]:
            np.testing.assert_allclose(mine[col], h[col], rtol=1e-9, atol=1e-12)
        for a, b in zip(ens.layers, single.layers):
            torch.testing.assert_close(a.weight[e], b.weight, rtol=1e-9, atol=1e-12)


def test_lr_scale_equals_separate_learning_rates():
    task = _task()
    split = st.make_split(task, 10, 10, seed=0, dtype=torch.float64)
    cfg = dict(steps=30, momentum=0.9, progress=False, weight_decay=0.01)
    ens = st.DeepLinear([8, 4, 3], members=2, seed=[3, 3], dtype=torch.float64)
    st.train(ens, split.train, config=st.TrainConfig(lr=0.05, **cfg), lr_scale=[1.0, 0.2])
    for e, lr in enumerate([0.05, 0.01]):
        single = st.DeepLinear([8, 4, 3], seed=3, dtype=torch.float64)
        st.train(single, split.train, config=st.TrainConfig(lr=lr, **cfg))
        torch.testing.assert_close(ens.layers[0].weight[e], single.layers[0].weight, rtol=1e-9, atol=1e-12)


def test_history_is_tidy_and_log_spaced():
    task = _task()
    split = st.make_splits(task, 10, 10, [0, 1], dtype=torch.float64)
    ens = st.DeepLinear([8, 4, 3], members=2, seed=[0, 1], dtype=torch.float64)
    res = st.train(ens, split.train, config=st.TrainConfig(steps=1000, lr=0.01, log_points=10, progress=False),
                   eval_sets={"test": split.test}, member_info={"seed": [0, 1]})
    h = res.history
    assert set(["step", "member", "lam", "seed", "train_task", "train_feature", "train_total",
                "test_noisy", "test_clean"]) <= set(h.columns)
    steps = sorted(h.step.unique())
    assert steps[0] == 0 and steps[-1] == 1000 and len(steps) <= 10
    assert len(h) == 2 * len(steps)
    assert st.log_schedule(1000, 10) == steps


def test_early_stopping_restores_each_members_best_weights():
    # a tiny noisy problem that overfits: validation error goes down then up
    inputs = st.gaussian_inputs(30, rank=3, seed=0)
    task = st.Task(inputs, st.linear_target(inputs, 2, seed=1), sigma=1.0, label_noise=0.5)
    split = st.make_splits(task, 20, 200, [0, 1], dtype=torch.float64)
    ens = st.DeepLinear([30, 30, 2], members=2, init_scale=0.1, seed=[0, 1], dtype=torch.float64)
    config = st.TrainConfig(steps=600, lr=0.05, momentum=0.9, early_stopping=True, progress=False, log_points=20)
    res = st.train(ens, split.train, config=config, eval_sets={"val": split.test})
    h = res.history
    for e in range(2):
        he = h[h.member == e]
        best = he.loc[he.val_noisy.idxmin()]
        assert res.best_step[e] == best.step < 600
        after = st.evaluate(st.member(ens, e), st.Samples(split.test.clean[e], split.test.noisy[e], split.test.y[e]))
        assert after["noisy"].item() == pytest.approx(best.val_noisy, rel=1e-9)


def test_patience_stops_training_early():
    inputs = st.gaussian_inputs(30, rank=3, seed=0)
    task = st.Task(inputs, st.linear_target(inputs, 2, seed=1), sigma=1.0, label_noise=0.5)
    split = st.make_split(task, 20, 200, seed=0, dtype=torch.float64)
    model = st.DeepLinear([30, 30, 2], init_scale=0.1, dtype=torch.float64)
    config = st.TrainConfig(steps=20000, lr=0.05, momentum=0.9, early_stopping=True, patience=3,
                            progress=False, log_points=60)
    res = st.train(model, split.train, config=config, eval_sets={"val": split.test})
    assert res.stopped_at < 20000


def test_divergence_names_step_loss_and_learning_rate():
    task = _task()
    split = st.make_split(task, 10, 10, seed=0)
    model = st.DeepLinear([8, 8, 3], seed=0)
    with pytest.raises(st.TrainingDiverged, match=r"training diverged at step \d+: loss = (nan|inf) with lr = 50;"):
        st.train(model, split.train, config=st.TrainConfig(steps=500, lr=50.0, progress=False))


def test_divergence_names_the_member_and_its_own_rate():
    split = st.make_split(_task(), 10, 10, seed=0)
    model = st.DeepLinear([8, 8, 3], members=2, seed=0)
    with pytest.raises(st.TrainingDiverged, match=r"\(member 1\): loss = (nan|inf) with lr = 50;"):
        st.train(model, split.train, config=st.TrainConfig(steps=500, lr=0.5, progress=False), lr_scale=[0.01, 100])


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps must be an integer >= 1; got 0"),
    (dict(lr=0.0), "lr must be a finite number > 0.0; got 0.0"),
    (dict(lr=float("nan")), "lr must be a finite number > 0.0; got nan"),
    (dict(optimizer="lbfgs"), "optimizer must be one of"),
    (dict(batch_size=0), "batch_size must be an integer >= 1; got 0"),
    (dict(momentum=1.5), r"momentum must be a finite number >= 0.0 and <= 1.0; got 1.5"),
    (dict(steps="10"), "steps must be an integer >= 1; got '10' \\(str\\)"),
])
def test_bad_train_config(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        st.TrainConfig(**kwargs)


def test_bad_train_arguments():
    task = _task()
    split = st.make_splits(task, 5, 5, [0, 1])
    ens = st.DeepLinear([8, 4, 3], members=2)
    with pytest.raises(ParameterError, match="lam must be one number >= 0 or one per member"):
        st.train(ens, split.train, lam=[0.1, 0.2, 0.3], config=st.TrainConfig(steps=1, progress=False))
    with pytest.raises(ParameterError, match=r"lam\[0\] must be a finite number >= 0.0; got -1.0"):
        st.train(ens, split.train, lam=[-1.0, 0.2], config=st.TrainConfig(steps=1, progress=False))
    with pytest.raises(ParameterError, match="teacher must be given"):
        st.train(ens, split.train, layers=["h1"], config=st.TrainConfig(steps=1, progress=False))
    with pytest.raises(ParameterError, match="layers must be among"):
        st.train(ens, split.train, teacher=st.FrozenTeacher(st.DeepLinear([8, 4, 3])), layers=["h3"],
                 config=st.TrainConfig(steps=1, progress=False))
    with pytest.raises(ParameterError, match="eval_sets needs the key 'val'"):
        st.train(ens, split.train, config=st.TrainConfig(steps=1, early_stopping=True, progress=False))
