"""The experimental protocol: stopping and selection read validation only; budgets; paired comparisons; verdicts."""

import numpy as np
import pandas as pd
import pytest
import torch

import stlearn as st
from stlearn import protocol
from stlearn.models import overwrite_members


def _runs():
    """Two methods, two configurations, three runs; test errors chosen to disagree with validation."""
    rows = []
    for k in range(3):
        rows += [dict(method="a", config="x", seed=k, val_error=1.0, test_error=0.1),
                 dict(method="a", config="y", seed=k, val_error=0.5, test_error=0.9 - 0.1 * k),
                 dict(method="b", config="x", seed=k, val_error=0.7, test_error=0.5),
                 dict(method="b", config="y", seed=k, val_error=0.8, test_error=0.0)]
    return pd.DataFrame(rows)


def test_select_reads_validation_never_test():
    chosen = protocol.select(_runs())
    assert (chosen[chosen.method == "a"].config == "y").all()  # its test error is the worse one
    assert (chosen[chosen.method == "b"].config == "x").all()
    shuffled = _runs().assign(test_error=np.random.default_rng(0).permutation(_runs().test_error))
    assert protocol.select(shuffled)[["method", "config", "seed"]].equals(chosen[["method", "config", "seed"]])


def test_strongest_is_chosen_by_validation_error():
    chosen = protocol.select(_runs())
    assert protocol.strongest(chosen, ["a", "b"]) == "a"  # a has the lower validation error, b the lower test error
    with pytest.raises(st.ParameterError, match=r"candidates must be methods of the run table; got unknown \['c'\]"):
        protocol.strongest(chosen, ["a", "c"])


def test_budgets_are_counted_and_checked():
    runs = _runs()
    assert protocol.budgets(runs).to_dict() == {"a": 2, "b": 2}
    assert protocol.check_equal_budgets(runs, ["a", "b"]) == 2
    uneven = runs[~((runs.method == "b") & (runs.config == "y"))]
    with pytest.raises(st.ParameterError, match=r"equal tuning budgets; got \{'a': 2, 'b': 1\}"):
        protocol.check_equal_budgets(uneven, ["a", "b"])
    with pytest.raises(st.ParameterError, match=r"missing \['val_error'\]"):
        protocol.select(runs.drop(columns="val_error"))


def test_compare_is_paired_by_run_and_verdict_follows_the_interval():
    chosen = protocol.select(_runs())
    c = protocol.compare(chosen, "b", "a")  # a's selected test errors 0.9, 0.8, 0.7 against b's 0.5
    assert c["runs"] == 3 and c["gain"] == pytest.approx(0.3)
    m, lo, hi = st.stats.mean_ci([0.4, 0.3, 0.2])
    assert (c["low"], c["high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert protocol.verdict(c, "b", "a") == "b beats a"
    assert protocol.verdict(protocol.compare(chosen, "a", "b"), "a", "b") == "b beats a"
    assert protocol.verdict({"low": -0.1, "high": 0.2}, "a", "b") == "no resolvable difference between a and b"


def test_stop_on_validation_reads_the_step_of_lowest_validation_error():
    h = pd.DataFrame({"run": 0, "step": [0, 10, 20, 30], "val_noisy": [3.0, 1.0, 2.0, 2.5],
                      "test_noisy": [3.0, 1.5, 0.5, 2.0], "train_task": [1.0, 0.5, 0.2, 0.1]})
    row = protocol.stop_on_validation(h, ["run"]).iloc[0]
    assert (row.val_step, row.val_error, row.test_error) == (10, 1.0, 1.5)
    assert (row.oracle_test, row.oracle_step, row.end_test, row.end_train_task) == (0.5, 20, 2.0, 0.1)


def test_a_diverged_run_fails_and_is_never_selected():
    """A run with ``diverged_at`` has an infinite validation error; select keeps another configuration, and stops
    the study only when every configuration of a method failed in a run."""
    h = pd.DataFrame({"run": [0] * 3 + [1] * 3, "step": [0, 10, 20] * 2, "val_noisy": [3.0, 0.1, np.nan, 3.0, 1.0, 2.0],
                      "test_noisy": [3.0, 0.1, np.nan, 3.0, 1.5, 0.5], "train_task": 1.0,
                      "diverged_at": [20.0] * 3 + [np.nan] * 3})
    stopped = protocol.stop_on_validation(h, ["run"]).set_index("run")
    assert stopped.val_error[0] == np.inf and np.isnan(stopped.test_error[0]) and stopped.val_error[1] == 1.0
    runs = _runs()
    failed = runs.assign(val_error=np.where((runs.method == "a") & (runs.config == "y"), np.inf, runs.val_error))
    assert (protocol.select(failed).query("method == 'a'").config == "x").all()
    every = runs.assign(val_error=np.where((runs.method == "b") & (runs.seed == 1), np.inf, runs.val_error))
    with pytest.raises(st.TrainingDiverged, match=r"every configuration of b failed \(diverged\) in run 1: x, y"):
        protocol.select(every)


def test_overwrite_members_copies_exactly_and_checks_indices():
    rng = st.Stream(0)
    students = st.MLP([4, 6, 1], members=3, rng=rng.child("student_init"))
    teachers = st.MLP([4, 6, 1], members=2, rng=rng.child("teacher_init"))
    before = [p.detach().clone() for p in students.parameters()]
    overwrite_members(students, [2], teachers, [1])
    for p, q, old in zip(students.parameters(), teachers.parameters(), before):
        assert torch.equal(p[2], q[1]) and torch.equal(p[:2], old[:2])
    with pytest.raises(st.ParameterError, match="one entry each"):
        overwrite_members(students, [0, 1], teachers, [0])
    with pytest.raises(st.ParameterError, match=r"e must be an integer in \[0, 1\]"):
        overwrite_members(students, [0], teachers, [2])


def test_by_sign_and_runs():
    assert [protocol.by_sign({"low": lo, "high": hi}, "+", "-", "0") for lo, hi in [(0.1, 0.2), (-0.2, -0.1),
                                                                                 (-0.1, 0.1)]] == ["+", "-", "0"]
    run = protocol.Run("ST", "lam=1", 3, lam=1.0)
    assert (run.weight_decay, run.seed) == (0.0, 3) and hash(run) == hash(protocol.Run("ST", "lam=1", 3, lam=1.0))


def test_ties_within_rounding_keep_the_earliest_step_and_the_first_configuration():
    """A converged path logs the same error up to rounding: the earliest such step is kept, on any processor."""
    assert protocol.first_lowest([3.0, 1.0 + 1e-14, 1.0, 1.0 - 1e-14, 2.0]) == 1
    assert protocol.first_lowest([3.0, 1.0 + 1e-6, 1.0]) == 2  # a real difference still counts
    assert protocol.first_lowest([np.nan, 2.0, np.inf, 2.0]) == 1
    h = pd.DataFrame({"run": 0, "step": [0, 10, 20, 30], "val_noisy": [3.0, 1.0 + 1e-13, 1.0, 1.0 - 1e-13],
                      "test_noisy": [3.0, 1.5, 1.4, 1.3], "train_task": 0.1})
    assert protocol.stop_on_validation(h, ["run"]).val_step.iloc[0] == 10
    runs = _runs().assign(val_error=lambda t: np.where(t.config == "y", t.val_error.where(t.method != "b", 0.7 - 1e-12),
                                                       t.val_error))
    assert (protocol.select(runs).query("method == 'b'").config == "x").all()


def test_interval_words_never_claim_equality():
    tie = {"gain": 0.01, "low": -0.087, "high": 0.030}
    assert protocol.interval_text(tie) == "+0.010 [-0.087, 0.030]"
    words = protocol.no_difference(tie, "ST", "noise augmentation")
    assert words == "no resolvable difference between ST and noise augmentation (+0.010 [-0.087, 0.030])"
    assert protocol.verdict(tie, "ST", "base") == "no resolvable difference between ST and the base student"
    assert protocol.verdict({"gain": 0.1, "low": 0.02, "high": 0.18}, "ST", "base") == "ST beats the base student"
    assert protocol.verdict({"gain": -0.1, "low": -0.2, "high": -0.01}, "ST", "base") == "the base student beats ST"


def test_chosen_configurations_read_as_counts_of_runs():
    configs = pd.Series(["lam=1", "lam=0", "lam=1", "lam=10", "lam=0.1", "lam=1", "lam=0"])
    assert protocol.chosen_text(configs) == "λ = 1 (3 runs), λ = 0 (2 runs), λ = 0.1 (1 run), 1 more"
    assert protocol.chosen_text(pd.Series(["none"] * 3)) == "— (nothing tuned)"
    assert protocol.chosen_text(pd.Series(["-"])) == "— (nothing tuned)"
    summary = protocol.summary(protocol.select(_runs()), ["a", "b"])
    assert summary.chosen.tolist() == ["y (3 runs)", "x (3 runs)"]
