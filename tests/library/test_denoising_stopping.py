"""The denoising chapter's stopping criterion met by training on (stlearn.experiments.denoising.train_until_met)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import stlearn as st
from stlearn.data import Samples
from stlearn.denoisers import Denoiser
from stlearn.experiments import denoising as dn
from stlearn.train import evaluate


def _problem(clean, val):
    def problem(members, round_):
        return {"data": Samples(clean, clean, clean), "eval_sets": {"val": Samples(val, val, val)}}, 0.0
    return problem


def test_only_the_members_short_of_the_criterion_train_on_up_to_the_cap():
    clean = st.data.randn(st.Stream(1), 32, 64).to(torch.get_default_dtype()).sigmoid()  # 8 x 8 patches
    val = st.data.randn(st.Stream(2), 16, 64).to(clean).sigmoid()
    model = Denoiser(4, 2, members=3, rng=[st.Stream(3).child("member", k) for k in range(3)])
    config = dn.adam(20, 3e-3, 8, 5, rng=st.Stream(4))
    history = st.train(model, Samples(clean, clean, clean), config=config,
                       eval_sets={"val": Samples(val, val, val)}).history
    before = dn.stopping_columns(history, 64)
    tolerance = float(dn.last_third_share(before).median())  # some members meet it, some do not
    short = ~dn.stopping_met(before, tolerance)
    assert short.any() and not short.all()
    kept = [p.detach().clone() for p in model.parameters()]
    out = dn.train_until_met(model, history, _problem(clean, val), config, tolerance, 50, 64)
    after = dn.stopping_columns(out, 64)
    assert (after.steps[~short] == 20).all()  # those that met it did not train
    assert ((after.steps[short] > 20) & (after.steps[short] <= 50)).all()
    assert (dn.stopping_met(after, tolerance) | (after.steps == 50)).all()  # met, or at the cap
    for p, q in zip(model.parameters(), kept):
        assert torch.equal(p[list(before.index[~short])], q[list(before.index[~short])])
    assert isinstance(out, pd.DataFrame) and out.groupby("member").step.is_monotonic_increasing.all()
    # every member holds the weights of its best logged validation error (the kept weights, extended or not)
    held = evaluate(model, Samples(val, val, val))["noisy"].detach().cpu().numpy() / 64
    assert held == pytest.approx(after.val.to_numpy(), rel=1e-5)
