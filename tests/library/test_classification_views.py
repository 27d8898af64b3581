"""The several-noisy-views design of the MNIST-1D chapter (stlearn.experiments.classification): run k's training
set holds K fixed noisy copies of each clean training input, view 0 being the one-view set (so K = 1 is today's
data), each other view with noise of its own; validation and test sets keep one copy; the views study's students
see a stratified part of the run's training inputs, on which its teachers trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stlearn import study
from stlearn.data import randn
from stlearn.datasets import load_digits_arrays
from stlearn.experiments import classification as cl
from stlearn.streams import Stream
from stlearn.train import TrainConfig
from stlearn.validation import ParameterError

F64 = torch.float64
SEEDS = [0, 3]


def _views(split, k: int, views: int) -> torch.Tensor:
    """Run ``k``'s training noise per view, ``(views, n, d)``."""
    noise = split.train.noisy[k] - split.train.clean[k]
    return noise.reshape(views, -1, noise.shape[-1])


def test_one_view_is_the_noise_of_the_training_part_as_drawn_before():
    rng = Stream(2)
    one = cl.run_splits("digits", 50, 20, 0.4, rng, SEEDS)
    images, _ = load_digits_arrays()
    for i, k in enumerate(SEEDS):  # clean + sigma * e, e from run k's noise stream of the training part: unchanged
        e = randn(rng.child("noise", k).child("student_data"), 50, images.shape[1])
        expected = (one.train.clean[i].double() + 0.4 * e).to(one.train.noisy.dtype)
        assert torch.equal(one.train.noisy[i], expected)


def test_views_are_fixed_noisy_copies_with_noise_of_their_own():
    rng, sigma = Stream(2), 0.4
    one = cl.run_splits("digits", 50, 20, sigma, rng, SEEDS)
    four = cl.run_splits("digits", 50, 20, sigma, rng, SEEDS, views=4)
    sixteen = cl.run_splits("digits", 50, 20, sigma, rng, SEEDS, views=16)
    assert four.train.clean.shape == (2, 200, 64) and four.train.y.shape == (2, 200)
    for part in ("val", "test"):  # one noisy copy each, the same for any number of views
        for f in ("clean", "noisy", "y"):
            assert torch.equal(getattr(getattr(four, part), f), getattr(getattr(one, part), f))
    for f in ("clean", "noisy", "y"):  # view 0 is the one-view set
        assert torch.equal(getattr(four.train, f)[:, :50], getattr(one.train, f))
    assert torch.equal(four.train.clean, one.train.clean.repeat(1, 4, 1))  # the same clean inputs and labels
    assert torch.equal(four.train.y, one.train.y.repeat(1, 4))
    assert torch.equal(sixteen.train.noisy[:, :200], four.train.noisy)  # the first views of more are those of fewer
    for i in range(len(SEEDS)):
        e = _views(sixteen, i, 16).reshape(16, -1) / sigma
        corr = torch.corrcoef(e.double())
        off = corr[~torch.eye(16, dtype=torch.bool)]
        assert off.abs().max() < 0.1, "the views' noise draws are independent"  # 3200 values each: |r| ~ 0.02
        assert torch.allclose(e.std(1).double(), torch.ones(16, dtype=F64), atol=0.05)
    assert not torch.allclose(_views(four, 0, 4), _views(four, 1, 4))  # each run its own views
    with pytest.raises(ParameterError, match="views"):
        cl.run_splits("digits", 50, 20, sigma, rng, SEEDS, views=0)


def test_the_students_part_keeps_every_view_of_a_stratified_part_of_the_teachers_inputs():
    rng = Stream(5)
    full = cl.run_splits("digits", 100, 20, 0.3, rng, SEEDS)
    splits = cl.views_splits("digits", 100, 20, 0.3, rng, SEEDS, [1, 4], 30)
    one, four = splits[1], splits[4]
    assert one.train.n == 30 and four.train.n == 120
    for f in ("clean", "noisy", "y"):  # the same part of the training inputs with any number of views
        assert torch.equal(getattr(four.train, f)[:, :30], getattr(one.train, f))
    assert torch.equal(four.train.clean, one.train.clean.repeat(1, 4, 1))
    for i in range(len(SEEDS)):
        inside = {r.numpy().tobytes() for r in full.train.clean[i].double()}
        assert {r.numpy().tobytes() for r in one.train.clean[i].double()} <= inside  # where the teachers trained
        counts = np.bincount(one.train.y[i].numpy(), minlength=10)
        assert counts.max() - counts.min() <= 1  # stratified
        assert torch.equal(four.val.noisy[i], full.val.noisy[i]) and torch.equal(four.test.noisy[i], full.test.noisy[i])
    assert not torch.equal(one.train.clean[0], one.train.clean[1])  # each run its own part
    assert cl.views_splits("digits", 100, 20, 0.3, rng, SEEDS, [1], 100)[1].train.n == 100  # all of them: the split
    with pytest.raises(ParameterError, match="views_n_train"):
        cl.views_splits("digits", 100, 20, 0.3, rng, SEEDS, [1], 101)


def test_the_views_study_runs_its_methods_with_equal_budgets_on_every_number_of_views():
    rng, sigma = Stream(1), 0.3
    grids = cl.Grids([0.0, 1.0], "h1", [0.0, 0.01], [1.0, 2.0], (), (), ())
    plan = study.Study(cl.methods(grids, sigma, cl.VIEWS_METHODS), (0, 1), cl.Member)
    assert tuple(m.name for m in plan.methods) == cl.VIEWS_METHODS and plan.budget() == 2
    with pytest.raises(ParameterError, match="views_decays"):
        cl.Grids([0.0, 1.0], "h1", [0.0], [1.0, 2.0], (), (), ()).check(cl.VIEWS_METHODS, "views_")
    config = TrainConfig(steps=2, lr=0.01, optimizer="adam", task="ce", batch_size=20, log_points=2, progress=False)
    factory = cl.mlp_factory(64, [8])
    splits = cl.views_splits("digits", 60, 20, sigma, rng, SEEDS, [1, 4], 20)
    teachers = cl.fit_teachers(factory, cl.run_splits("digits", 60, 20, sigma, rng, SEEDS), rng, SEEDS, [3], config)
    results = cl.run_views(factory, splits, teachers, rng, SEEDS, sigma, grids, config)
    assert set(results) == {1, 4}
    for r in results.values():
        assert set(r.selected.method) == set(cl.VIEWS_METHODS) and set(r.selected.seed) == set(SEEDS)
    never = results[1].selected.method.isin(["noise augmentation", "teacher as is"])  # they never see the views
    assert results[1].selected[never].reset_index(drop=True).equals(
        results[4].selected[results[4].selected.method.isin(["noise augmentation", "teacher as is"])]
        .reset_index(drop=True))
    assert not results[1].selected[~never].test_error.reset_index(drop=True).equals(
        results[4].selected[~never].test_error.reset_index(drop=True))
    gains = cl.views_gains(results)
    assert list(zip(gains.method, gains.views)) == [("ST", 1), ("ST", 4), ("ST + weight decay", 1),
                                                    ("ST + weight decay", 4)]
    trend = study.views_trend(results, "ST", "base")
    st = {k: results[k].selected.set_index(["method", "seed"]).test_error for k in (1, 4)}
    per_run = [(st[4]["base", k] - st[4]["ST", k]) - (st[1]["base", k] - st[1]["ST", k]) for k in SEEDS]
    assert trend["gain"] == pytest.approx(np.mean(per_run))
    last = cl.views_last_stops(results, 2)
    assert set(last) == {1, 4} and all(0 <= n <= 2 * len(SEEDS) for n in last.values())
    table = cl.views_table(results)
    assert list(table.method) == list(cl.VIEWS_METHODS) and list(table.columns[1:]) == [
        "accuracy with K = 1 [95% interval]", "accuracy with K = 4 [95% interval]"]
    words = cl.views_gain_table(gains)
    assert list(words.comparison) == ["ST over base", "ST + weight decay over weight decay"]
    assert words.iloc[0, 1] == st_gain_text(gains)
    assert "train_task" not in results[1].history  # the training sets are not scored along the way



def st_gain_text(gains) -> str:
    row = gains[(gains.method == "ST") & (gains.views == 1)].iloc[0]
    return f"{row.gain:+.3f} [{row.low:.3f}, {row.high:.3f}]"
