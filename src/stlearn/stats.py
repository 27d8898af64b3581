"""Spread over seeds: means with Student-t confidence intervals, gains over the base run paired by seed, and
Holm's adjustment of several p-values.

The one home of these ideas: every chapter's gains, intervals and interval
tables come from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # the Student-t quantile (scipy.stats, ~1 s to import, computes it so)

from .validation import ParameterError


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of a Student-t interval for the mean of ``values``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    m = float(v.mean())
    if v.size == 1:
        return (m, np.nan, np.nan)
    sem = np.std(v, ddof=1) / np.sqrt(v.size)
    half = float(sem * stdtrit(v.size - 1, 0.5 + level / 2))
    return (m, m - half, m + half)


def crossed_ci(gains, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and ``level`` interval of a ``(runs, items)`` matrix of paired gains in which the runs *and* the items
    (for example test photographs) are random draws: crossed two-way random effects without replication.

    With row and column mean squares ``MS_r``, ``MS_c`` of the two-way analysis of variance, the variance of the
    grand mean, ``s_r^2 / R + s_c^2 / C + s_e^2 / (R C)``, is estimated by ``(MS_r + MS_c) / (R C)``: biased up by
    ``s_e^2 / (R C)``, where the unbiased ``(MS_r + MS_c - MS_e) / (R C)`` can be near zero and its Satterthwaite
    degrees of freedom near zero too (intervals of any width). Satterthwaite's degrees of freedom of the sum are at
    least ``min(R, C) - 1``. The interval is never narrower than the usual one over the runs' means
    (``MS_r / (R C)``, ``R - 1`` degrees of freedom).
    """
    d = np.asarray(gains, dtype=float)
    if d.ndim != 2 or min(d.shape) < 2:
        raise ParameterError(f"gains must be a (runs, items) matrix with at least 2 of each; got shape {d.shape}")
    R, C = d.shape
    m, rows, cols = d.mean(), d.mean(axis=1), d.mean(axis=0)
    ms_r = C * ((rows - m) ** 2).sum() / (R - 1)
    ms_c = R * ((cols - m) ** 2).sum() / (C - 1)
    q = 0.5 + level / 2
    half = float(stdtrit(R - 1, q)) * np.sqrt(ms_r / (R * C))  # the interval over the runs' means
    if ms_c > 0:
        df = (ms_r + ms_c) ** 2 / (ms_r**2 / (R - 1) + ms_c**2 / (C - 1))
        half = max(half, float(stdtrit(df, q)) * np.sqrt((ms_r + ms_c) / (R * C)))
    return float(m), float(m - half), float(m + half)


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


def ci_low(values, level: float = 0.95) -> float:
    """Lower end of the interval of the mean (``-inf`` for fewer than two values: no evidence either way)."""
    return float(np.nan_to_num(mean_ci(values, level)[1], nan=-np.inf))


def ci_high(values, level: float = 0.95) -> float:
    """Upper end of the interval of the mean (``+inf`` for fewer than two values)."""
    return float(np.nan_to_num(mean_ci(values, level)[2], nan=np.inf))


MISSING = "—"  # a table's missing value (a method that has no such number), never "nan"


def rounded(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` decimals, as the book prints it: never ``-0.0`` (a verdict read off a
    printed interval agrees with the interval the reader sees)."""
    return round(float(value), digits) + 0.0


def rounded_interval(comparison: Mapping[str, float], digits: int = 3, scale: float = 1.0) -> dict:
    """A paired comparison's ``gain``, ``low`` and ``high`` times ``scale`` (100: in %), :func:`rounded` as printed,
    its other entries (``runs``) kept: the verdict read off it is the one the printed interval shows."""
    return {**comparison, **{k: rounded(scale * comparison[k], digits) for k in ("gain", "low", "high")}}


def fixed(value: float, digits: int = 3, signed: bool = False) -> str:
    """``value`` with ``digits`` decimals, the one way the book prints a number: ``"0.041"``, or with ``signed``
    (a paired effect) ``"+0.032"``; never ``"-0.000"`` (a value that rounds to zero has no sign to show), and
    :data:`MISSING` for a value that is not finite."""
    if not np.isfinite(value):
        return MISSING
    return f"{rounded(value, digits):{'+' if signed else ''}.{digits}f}"


def format_ci(values, digits: int = 3, level: float = 0.95) -> str:
    """``"mean [low, high]"`` of ``values`` (the mean alone for one value)."""
    m, lo, hi = mean_ci(values, level)
    return fixed(m, digits) + (f" [{fixed(lo, digits)}, {fixed(hi, digits)}]" if np.isfinite(lo) else "")


def collapse_intervals(df: pd.DataFrame, digits: int | Mapping[str, int] = 3,
                       signed: bool | Sequence[str] = False) -> pd.DataFrame:
    """``df`` with each column ``c`` that has ``c_low`` and ``c_high`` beside it as one text column ``"c [low, high]"``.

    Cells read ``"0.041 [0.012, 0.070]"``, a mean of one method; a mean without an interval (one run) keeps just
    the mean, and a missing mean reads ``"—"``. ``digits``: decimals for every column, or per column name (3 for
    the others). ``signed``: the columns that are paired effects (``True``: all of them), printed as
    :func:`stlearn.verdicts.interval_text` prints one, ``"+0.032 [0.003, 0.061]"`` (positive when the first-named
    method is better); name such a column by its comparison and direction, e.g. ``"ST vs base (above 0: ST
    better)"``.
    """
    out = df.copy()
    columns = [c for c in df.columns if f"{c}_low" in df.columns and f"{c}_high" in df.columns]
    if isinstance(signed, str):
        signed = [signed]
    wanted = set(columns) if signed is True else set(signed or ())
    if wanted - set(columns):
        raise ParameterError(f"signed names columns without an interval beside them: {sorted(wanted - set(columns))}")
    for c in columns:
        d = digits.get(c, 3) if isinstance(digits, Mapping) else digits
        m, lo, hi = df[c], df[f"{c}_low"], df[f"{c}_high"]
        out[c] = [MISSING if not np.isfinite(a) else
                  fixed(a, d, c in wanted) + (f" [{fixed(b, d)}, {fixed(h, d)}]" if np.isfinite(b) else "")
                  for a, b, h in zip(m, lo, hi)]
        out = out.drop(columns=[f"{c}_low", f"{c}_high"]).rename(columns={c: f"{c} [95% interval]"})
    return out


def as_percent(df: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with each column ``c`` of ``names``, and ``c_low``, ``c_high`` beside it, times 100 (a relative gain
    in %) and renamed ``names[c]`` (``_low``, ``_high``): ready for :func:`collapse_intervals`."""
    out = df.copy()
    for c, name in names.items():
        for end in ("", "_low", "_high"):
            if f"{c}{end}" in out:
                out[f"{c}{end}"] = 100 * out[f"{c}{end}"]
        out = out.rename(columns={f"{c}{end}": f"{name}{end}" for end in ("", "_low", "_high")})
    return out


def interval_table(df: pd.DataFrame, by, columns: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """``mean [low, high]`` strings (95% interval over seeds) of each column, one row per group of ``by``."""
    rows = []
    by_list = [by] if isinstance(by, str) else list(by)
    for key, g in df.groupby(by_list, sort=True):
        row = dict(zip(by_list, key if isinstance(key, tuple) else (key,)))
        row.update({c: format_ci(g[c], digits) for c in columns})
        rows.append(row)
    return pd.DataFrame(rows)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of ``pvalues`` (family-wise error), in their order."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]).clip(max=1.0)
    out = np.empty_like(p)
    out[order] = adjusted
    return out


def paired_gains(runs: pd.DataFrame, columns: Sequence[str], keys: Sequence[str] = ("seed",),
                 base: pd.DataFrame | None = None) -> pd.DataFrame:
    """Runs with ``gain_<column> = base - run`` (> 0: the run beats base), paired with the base run of the same keys.

    ``base``: the base runs; by default the rows of ``runs`` with ``lam == 0``, and the gains are then
    those of the rows with ``lam > 0``. Errors are lower-is-better; pass accuracies as errors to compare them.
    """
    keys, columns = list(keys), list(columns)
    if base is None:
        if "lam" not in runs:
            raise ParameterError("runs need a lam column (0 marks the base runs), or pass base=")
        base, runs = runs[runs.lam == 0], runs[runs.lam > 0]
    if base.empty:
        raise ParameterError("the base runs are missing: lams must include 0 (the base loss) to compute gains")
    paired = runs.merge(base[keys + columns], on=keys, how="left", suffixes=("", "_base"))
    for c in columns:
        paired[f"gain_{c}"] = paired[f"{c}_base"] - paired[c]
    return paired
