"""Spread over seeds: means with Student-t confidence intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of a Student-t interval for the mean of ``values``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    m = float(v.mean())
    if v.size == 1:
        return (m, np.nan, np.nan)
    half = float(stats.sem(v) * stats.t.ppf(0.5 + level / 2, v.size - 1))
    return (m, m - half, m + half)


def ci_columns(name: str, values, level: float = 0.95) -> dict[str, float]:
    """``{name: mean, name_low: low, name_high: high}``: a mean and its interval as three table columns."""
    m, lo, hi = mean_ci(values, level)
    return {name: m, f"{name}_low": lo, f"{name}_high": hi}


def summarize(df: pd.DataFrame, by, value: str, level: float = 0.95) -> pd.DataFrame:
    """Mean, CI bounds and count of ``value`` for each group of ``by`` (one row per group)."""
    def one(g):
        m, lo, hi = mean_ci(g[value], level)
        return pd.Series({"mean": m, "low": lo, "high": hi, "n": int(g[value].notna().sum())})
    return df.groupby(by, sort=True)[[value]].apply(one).reset_index()
