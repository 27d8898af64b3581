"""Means with Student-t intervals over seeds, interval tables, gains paired by seed and Holm's adjustment
(stlearn.stats)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from stlearn import stats
from stlearn.validation import ParameterError


def test_mean_ci_is_the_student_t_interval_and_drops_non_finite_values():
    values = [1.0, 2.0, 3.0, 4.0]
    half = sps.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert stats.mean_ci(values) == pytest.approx((2.5, 2.5 - half, 2.5 + half))
    assert stats.mean_ci([*values, math.nan, math.inf]) == pytest.approx(stats.mean_ci(values))
    assert stats.mean_ci(values, level=0.5)[1] > stats.mean_ci(values)[1]
    one = stats.mean_ci([3.0])
    assert one[0] == 3.0 and math.isnan(one[1]) and math.isnan(one[2])
    assert all(math.isnan(v) for v in stats.mean_ci([]))


def test_interval_ends_columns_and_text():
    values = [1.0, 2.0, 3.0, 4.0]
    m, lo, hi = stats.mean_ci(values)
    assert stats.ci_low(values) == lo and stats.ci_high(values) == hi
    assert stats.ci_low([1.0]) == -math.inf and stats.ci_high([1.0]) == math.inf  # no evidence either way
    assert stats.ci_columns("err", values) == {"err": m, "err_low": lo, "err_high": hi}
    assert stats.format_ci(values, digits=2) == f"{m:.2f} [{lo:.2f}, {hi:.2f}]"


def test_every_printed_number_has_fixed_decimals_and_no_negative_zero():
    from stlearn.verdicts import interval_text

    assert stats.fixed(0.0411) == "0.041" and stats.fixed(-0.0004) == "0.000" and stats.fixed(1.25, 1) == "1.2"
    assert stats.fixed(-0.0004, signed=True) == "+0.000" and stats.fixed(-0.5, signed=True) == "-0.500"
    assert stats.fixed(0.119, signed=True) == "+0.119" and stats.fixed(math.nan) == stats.MISSING
    assert math.copysign(1, stats.rounded(-0.0004)) == 1.0 and stats.rounded(0.12345, 2) == 0.12
    iv = stats.rounded_interval({"gain": 0.01234, "low": -0.000004, "high": 0.0249, "runs": 3}, 1, scale=100)
    assert iv == {"gain": 1.2, "low": 0.0, "high": 2.5, "runs": 3} and math.copysign(1, iv["low"]) == 1.0
    assert interval_text({"gain": -0.0002, "low": -0.0004, "high": 0.0001}) == "+0.000 [0.000, 0.000]"
    assert stats.format_ci([-0.0001, -0.0003]).startswith("0.000 [")
    assert stats.format_ci([0.5]) == "0.500"  # one run: the mean alone, never "[nan, nan]"
    df = pd.DataFrame({"e": [-0.0001], "e_low": [-0.0004], "e_high": [0.0002]})
    assert stats.collapse_intervals(df, signed=True).iloc[0, 0] == "+0.000 [0.000, 0.000]"


def test_collapse_intervals_prints_means_unsigned_and_paired_effects_signed_as_interval_text():
    from stlearn.verdicts import interval_text

    df = pd.DataFrame({"method": ["a", "b", "c"], "error": [0.0411, 0.5, np.nan], "error_low": [0.012, np.nan, 0.1],
                       "error_high": [0.07, np.nan, 0.2], "a vs b": [0.0321, -0.25, 0.0],
                       "a vs b_low": [0.003, -0.5, -0.01], "a vs b_high": [0.061, -0.01, 0.01]})
    old = stats.collapse_intervals(df)  # the default: every column unsigned, 3 decimals
    assert old.columns.tolist() == ["method", "error [95% interval]", "a vs b [95% interval]"]
    assert old["error [95% interval]"].tolist() == ["0.041 [0.012, 0.070]", "0.500", "—"]  # one run; missing
    assert old["a vs b [95% interval]"].tolist()[0] == "0.032 [0.003, 0.061]"
    for signed in (True, ["a vs b"], "a vs b"):
        cells = stats.collapse_intervals(df, signed=signed)["a vs b [95% interval]"].tolist()
        assert cells == [interval_text({"gain": g, "low": lo, "high": hi})
                         for g, lo, hi in df[["a vs b", "a vs b_low", "a vs b_high"]].to_numpy()]
        assert cells[:2] == ["+0.032 [0.003, 0.061]", "-0.250 [-0.500, -0.010]"]
    assert stats.collapse_intervals(df, signed="a vs b")["error [95% interval]"].tolist()[0] == "0.041 [0.012, 0.070]"
    per_column = stats.collapse_intervals(df, digits={"a vs b": 1}, signed=True)
    assert per_column["a vs b [95% interval]"].tolist()[0] == "+0.0 [0.0, 0.1]"
    assert per_column["error [95% interval]"].tolist()[0] == "+0.041 [0.012, 0.070]"  # 3 decimals, the default
    with pytest.raises(ParameterError, match="signed names columns without an interval"):
        stats.collapse_intervals(df, signed=["method"])


def test_as_percent_scales_a_relative_gain_and_its_interval_and_renames_them():
    df = pd.DataFrame({"k": [1], "rel": [0.0321], "rel_low": [0.003], "rel_high": [0.061], "other": [0.5]})
    out = stats.as_percent(df, {"rel": "a vs b, %"})
    assert out.columns.tolist() == ["k", "a vs b, %", "a vs b, %_low", "a vs b, %_high", "other"]
    assert out.iloc[0].tolist() == pytest.approx([1, 3.21, 0.3, 6.1, 0.5])
    assert stats.collapse_intervals(out, digits=1, signed=True)["a vs b, % [95% interval]"][0] == "+3.2 [0.3, 6.1]"


def test_summarize_and_interval_table_give_one_row_per_group():
    df = pd.DataFrame({"lam": [0, 0, 0, 1, 1, 1], "seed": [0, 1, 2] * 2, "err": [1.0, 2.0, 3.0, 0.5, 0.7, 0.9]})
    summary = stats.summarize(df, "lam", "err")
    assert summary.lam.tolist() == [0, 1] and summary.n.tolist() == [3, 3]
    assert summary["mean"].tolist() == pytest.approx([2.0, 0.7])
    assert summary.low[0] == pytest.approx(stats.mean_ci([1.0, 2.0, 3.0])[1])
    table = stats.interval_table(df, "lam", ["err"], digits=2)
    assert table.to_dict("list") == {"lam": [0, 1], "err": [stats.format_ci([1.0, 2.0, 3.0], 2),
                                                            stats.format_ci([0.5, 0.7, 0.9], 2)]}


def test_paired_gains_are_base_minus_run_paired_by_seed():
    runs = pd.DataFrame({"lam": [0, 0, 1, 1, 2], "seed": [0, 1, 1, 0, 0], "err": [1.0, 2.0, 1.5, 0.25, 0.5]})
    gains = stats.paired_gains(runs, ["err"]).sort_values(["lam", "seed"])
    assert gains.lam.tolist() == [1, 1, 2] and gains.seed.tolist() == [0, 1, 0]
    assert gains.gain_err.tolist() == [0.75, 0.5, 0.5]
    base = pd.DataFrame({"seed": [0, 1], "err": [2.0, 2.0]})
    assert stats.paired_gains(runs, ["err"], base=base).gain_err.tolist() == [1.0, 0.0, 0.5, 1.75, 1.5]
    with pytest.raises(ParameterError, match="lams must include 0"):
        stats.paired_gains(runs[runs.lam > 0], ["err"])
    with pytest.raises(ParameterError, match="runs need a lam column"):
        stats.paired_gains(runs.drop(columns="lam"), ["err"])


def test_holm_adjusts_step_down_and_keeps_the_order():
    p = [0.01, 0.04, 0.03, 0.5]
    # sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 -> 0.04, 0.09, 0.08 -> running max 0.09, then 0.5
    assert stats.holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.holm([0.9, 0.8]).max() <= 1.0
    assert (stats.holm(p) >= np.asarray(p)).all()


def test_crossed_ci_covers_the_mean_when_runs_and_items_are_both_random():
    """Simulated crossed data (10 runs x 5 items, item effects larger than run effects): the crossed interval
    covers the true mean about 95% of the time, where the interval over runs alone misses it far more often."""
    rng = np.random.default_rng(7)
    hit_crossed = hit_runs = 0
    trials = 2000
    for _ in range(trials):
        d = 0.3 + rng.normal(0, 0.2, (10, 1)) + rng.normal(0, 0.5, (1, 5)) + rng.normal(0, 0.3, (10, 5))
        _, lo, hi = stats.crossed_ci(d)
        hit_crossed += lo <= 0.3 <= hi
        _, lo, hi = stats.mean_ci(d.mean(axis=1))
        hit_runs += lo <= 0.3 <= hi
        assert hi - lo <= stats.crossed_ci(d)[2] - stats.crossed_ci(d)[1] + 1e-12  # never narrower
    assert 0.92 <= hit_crossed / trials <= 0.99
    assert hit_runs / trials < 0.6


def test_crossed_ci_names_a_matrix_that_is_too_small():
    with pytest.raises(ParameterError, match="gains"):
        stats.crossed_ci(np.ones((1, 5)))
