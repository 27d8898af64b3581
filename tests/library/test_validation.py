"""Bad input to the library: a ParameterError that names the parameter, its valid range and the value received.

One table for every public entry point (data, draws, models, the trainer); each message is checked in full.
"""

import pytest

import stlearn as st
from stlearn.validation import ParameterError

NAN, INF = float("nan"), float("inf")


def _task(sigma=0.5):
    inputs = st.gaussian_inputs(6, rank=3, rng=0)
    return st.Task(inputs, st.linear_target(inputs, 2, rng=1), sigma=sigma)


def _data():
    return st.draw(_task(), 8, 0)


def _net(**kw):
    return st.DeepLinear([6, 4, 2], **kw)


def T(**kw):
    return st.TrainConfig(**kw)


def one(**kw):
    """A one-step configuration."""
    return st.TrainConfig(steps=1, progress=False, **kw)


# case: (call, the error's message)
CASES = {
    "gaussian_inputs d=0": (lambda: st.gaussian_inputs(0), "d must be an integer >= 1; got 0"),
    "gaussian_inputs d='10'": (lambda: st.gaussian_inputs("10"), "d must be an integer >= 1; got '10' (str)"),
    "gaussian_inputs d=2.5": (lambda: st.gaussian_inputs(2.5), "d must be an integer >= 1; got 2.5 (float)"),
    "gaussian_inputs rank>d": (lambda: st.gaussian_inputs(5, rank=9), "rank must be an integer in [1, 5]; got 9"),
    "gaussian_inputs rank=0": (lambda: st.gaussian_inputs(5, rank=0), "rank must be an integer in [1, 5]; got 0"),
    "gaussian_inputs rng=-1": (
        lambda: st.gaussian_inputs(5, rank=2, rng=-1),
        "rng must be a Stream or an integer seed >= 0; got -1"),
    "linear_target d_out=0": (
        lambda: st.linear_target(st.gaussian_inputs(4), 0),
        "d_out must be an integer >= 1; got 0"),
    "linear_target rank>d_out": (
        lambda: st.linear_target(st.gaussian_inputs(4), 2, rank=3),
        "rank must be an integer in [1, 2]; got 3"),
    "relu_target hidden=-3": (lambda: st.relu_target(4, -3), "hidden must be an integer >= 1; got -3"),
    "relu_target hidden=0": (lambda: st.relu_target(3, hidden=0), "hidden must be an integer >= 1; got 0"),
    "Task sigma=nan": (lambda: _task(sigma=NAN), "sigma must be a finite number >= 0.0; got nan"),
    "Task sigma=-0.1": (lambda: _task(sigma=-0.1), "sigma must be a finite number >= 0.0; got -0.1"),
    "Task sigma=inf": (lambda: _task(sigma=INF), "sigma must be a finite number >= 0.0; got inf"),
    "Task sigma='0.5'": (lambda: _task(sigma="0.5"), "sigma must be a finite number >= 0.0; got '0.5' (str)"),
    "Task label_noise=-1": (
        lambda: st.Task(st.gaussian_inputs(3), st.linear_target(st.gaussian_inputs(3), 1), label_noise=-1.0),
        "label_noise must be a finite number >= 0.0; got -1.0"),
    "draw n=0": (lambda: st.draw(_task(), 0, 0), "n must be an integer >= 1; got 0"),
    "draw n=-5": (lambda: st.draw(_task(), -5, 0), "n must be an integer >= 1; got -5"),
    "draw n=None": (lambda: st.draw(_task(), None, 0), "n must be an integer >= 1; got None (NoneType)"),
    "draw rng=-1": (lambda: st.draw(_task(), 4, -1), "rng must be a Stream or an integer seed >= 0; got -1"),
    "draw rng='0'": (lambda: st.draw(_task(), 4, "0"), "rng must be a Stream or an integer seed >= 0; got '0'"),
    "draw_members rngs=[]": (
        lambda: st.draw_members(_task(), 4, []),
        "rngs must be a non-empty list of streams (one per member); got []"),
    "DeepLinear widths=[6]": (lambda: st.DeepLinear([6]), "widths must be a list of at least 2 integers >= 1; got [6]"),
    "DeepLinear widths=[6,0,2]": (lambda: st.DeepLinear([6, 0, 2]), "widths[1] must be an integer >= 1; got 0"),
    "DeepLinear widths='abc'": (
        lambda: st.DeepLinear("abc"),
        "widths must be a list of at least 2 integers >= 1; got 'abc' (str)"),
    "DeepLinear members=0": (lambda: _net(members=0), "members must be an integer >= 1; got 0"),
    "DeepLinear init_scale=nan": (lambda: _net(init_scale=NAN), "init_scale must be a finite number >= 0.0; got nan"),
    "DeepLinear init_scale=-1": (lambda: _net(init_scale=-1.0), "init_scale must be a finite number >= 0.0; got -1.0"),
    "DeepLinear rng=-2": (lambda: _net(rng=-2), "rng must be a Stream or an integer seed >= 0; got -2"),
    "DeepLinear rng list, wrong count": (
        lambda: _net(members=2, rng=[0]),
        "rng must be one stream or a list of 2 (one per member); got a list of 1"),
    "MLP activation='sigmoidal'": (
        lambda: st.MLP([6, 4, 2], activation="sigmoidal"),
        "activation must be one of ['relu', 'tanh', 'gelu']; got 'sigmoidal'"),
    "TrainConfig steps=0": (lambda: T(steps=0), "steps must be an integer >= 1; got 0"),
    "TrainConfig steps=1.5": (lambda: T(steps=1.5), "steps must be an integer >= 1; got 1.5 (float)"),
    "TrainConfig steps='10'": (lambda: T(steps="10"), "steps must be an integer >= 1; got '10' (str)"),
    "TrainConfig lr=0": (lambda: T(lr=0.0), "lr must be a finite number > 0.0; got 0.0"),
    "TrainConfig lr=nan": (lambda: T(lr=NAN), "lr must be a finite number > 0.0; got nan"),
    "TrainConfig lr='fast'": (lambda: T(lr="fast"), "lr must be a finite number > 0.0; got 'fast' (str)"),
    "TrainConfig momentum=1.5": (
        lambda: T(momentum=1.5),
        "momentum must be a finite number >= 0.0 and <= 1.0; got 1.5"),
    "TrainConfig optimizer='rmsprop'": (
        lambda: T(optimizer="rmsprop"),
        "optimizer must be one of ['sgd', 'adam']; got 'rmsprop'"),
    "TrainConfig batch_size=0": (lambda: T(batch_size=0), "batch_size must be an integer >= 1; got 0"),
    "TrainConfig patience=0": (lambda: T(patience=0), "patience must be an integer >= 1; got 0"),
    "TrainConfig task='hinge'": (lambda: T(task="hinge"), "task must be one of ['mse', 'ce']; got 'hinge'"),
    "TrainConfig seed=-1": (lambda: T(seed=-1), "seed must be a Stream or an integer seed >= 0; got -1"),
    "TrainConfig fast='yes'": (lambda: T(fast="yes"), "fast must be True or False; got 'yes'"),
    "train lam=-1": (
        lambda: st.train(_net(), _data(), lam=-1.0, config=one()),
        "lam must be a finite number >= 0.0; got -1.0"),
    "train lam=nan": (
        lambda: st.train(_net(), _data(), lam=NAN, config=one()),
        "lam must be a finite number >= 0.0; got nan"),
    "train lam per member, wrong count": (
        lambda: st.train(_net(members=2), _data(), lam=[0.0, 1.0, 2.0], config=one()),
        "lam must be one number >= 0 or one per member (2); got 3"),
    "train lam per member, negative": (
        lambda: st.train(_net(members=2), _data(), lam=[-1.0, 0.2], config=one()),
        "lam[0] must be a finite number >= 0.0; got -1.0"),
    "train unknown layer": (
        lambda: st.train(_net(), _data(), teacher=st.FrozenTeacher(_net()), lam=1.0, layers=["h7"], config=one()),
        "layers must be among ['h1']; got ['h7']"),
    "train layers without teacher": (
        lambda: st.train(_net(), _data(), lam=1.0, layers=["h1"], config=one()),
        "teacher must be given when layers are matched; got teacher=None"),
    "train early stopping without val set": (
        lambda: st.train(_net(), _data(), config=one(early_stopping=True)),
        "early stopping monitors 'val_noisy': eval_sets needs the key 'val'; got []"),
    "train member_info wrong count": (
        lambda: st.train(_net(members=2), _data(), config=one(), member_info={"seed": [0]}),
        "member_info['seed'] must have one entry per member (2); got 1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_library_rejects_bad_input_naming_the_parameter_its_range_and_the_value(case):
    call, message = CASES[case]
    with pytest.raises(ParameterError) as err:
        call()
    assert str(err.value) == message
