"""The experimental protocol of the book's experiment chapters, as code.

Written down in ``CONTRIBUTING.md`` ("The experimental protocol"); in short:

1. **Stopping on validation.** A trained run is read at the logged step where
   its (noisy, labelled) validation error is lowest: :func:`stop_on_validation`.
   Its test error there is the run's result; the best test error along the
   path is kept only as a labelled oracle (``oracle_test``), never selected on.
2. **Selection on validation.** Each method has a grid of configurations
   (``config``) with the same number of points for every tuned method
   (:func:`budgets`, :func:`check_equal_budgets`). Per method and run index
   (``seed``), the configuration with the lowest validation error is kept:
   :func:`select`. The test columns are carried along, never read.
3. **The strongest baseline** among a set of simple methods is the one with the
   lowest mean *validation* error of its selected runs (:func:`strongest`).
4. **Paired comparisons.** Two methods are compared by the difference of their
   test errors run by run (same data, validation and test sets), with a
   Student-t 95% interval over runs (:func:`compare`); :func:`verdict` turns the
   interval into words.

A run table has one row per (method, config, seed) with at least the columns
``method, config, seed, val_error, test_error``; :class:`Run` is one such row's
configuration, which chapters extend with their own knobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import pandas as pd

from .stats import ci_columns, mean_ci
from .validation import ParameterError, TrainingDiverged
from .verdicts import by_sign, config_words, interval_text, no_difference, verdict  # noqa: F401  (the words: stlearn.verdicts)

RUN_COLUMNS = ("method", "config", "seed", "val_error", "test_error")
# Validation errors within this relative distance of the lowest tie, and the first of them is kept (the earliest
# step, the first configuration). A path that has converged logs the same error at every later step up to
# rounding, and which of those rounding picks varies with the processor's kernels; the tie rule does not.
TIE = 1e-9


def first_lowest(values) -> int:
    """Position of the first value within :data:`TIE` (relative) of the lowest finite one; NaN never counts."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    if not finite.any():
        return int(np.argmin(np.where(np.isnan(v), np.inf, v)))
    low = v[finite].min()
    return int(np.flatnonzero(finite & (v <= low + TIE * abs(low)))[0])


def lowest_label(values: pd.Series):
    """The index label of :func:`first_lowest` (``idxmin`` with ties within rounding broken toward the first)."""
    return values.index[first_lowest(values)]


@dataclass(frozen=True)
class Run:
    """One configuration (``config``) of one method for run index ``seed``: an ensemble member's knobs.

    Chapters subclass it with their own knobs, each with a default, and name in ``INERT`` the knobs that
    do nothing while another is 0 (the matched layer and the teacher while ``lam = 0``).
    """

    INERT: ClassVar[dict[str, tuple[str, ...]]] = {}  # knob -> the knobs it switches off when it is 0

    method: str
    config: str
    seed: int
    lam: float = 0.0  # weight of the feature term
    weight_decay: float = 0.0

    def trains_as(self) -> tuple:
        """What this run trains with: its knobs but its labels, each inert knob at its default.

        The one rule by which runs are shared: ST at ``lam = 0`` is the base run, whichever teacher or
        layer its configuration names, and trains once (:func:`stlearn.study.run_study`).
        """
        inert = {k for switch, knobs in self.INERT.items() if getattr(self, switch) == 0 for k in knobs}
        return tuple((f.name, f.default if f.name in inert else getattr(self, f.name)) for f in fields(self)
                     if f.name not in ("method", "config"))


def stop_on_validation(history: pd.DataFrame, by: Sequence[str], test: str = "test_noisy",
                       monitor: str = "val_noisy") -> pd.DataFrame:
    """Per run (group of ``by``): the step of lowest validation error and the errors there (ties within
    :data:`TIE`: the earliest step).

    Columns: ``val_step``, ``val_error`` (the monitored error at that step), ``test_error`` (the test
    error at that step), ``end_test`` and ``end_train_task`` (at the last logged step; NaN for a history
    without training metrics, ``TrainConfig(train_metrics=False)``) and
    ``oracle_test`` at ``oracle_step`` (the lowest test error along the path: an upper bound on what
    stopping can give, never a selection). A run that diverged (``diverged_at`` in the history, see
    :func:`stlearn.train.train`) failed: its validation error is infinite, so :func:`select` never keeps it.
    """
    def one(g: pd.DataFrame) -> pd.Series:
        g = g.sort_values("step")
        if "diverged_at" in g and g.diverged_at.notna().any():  # a failed configuration: never selected
            return pd.Series({"val_step": np.nan, "val_error": np.inf, "test_error": np.nan, "end_test": np.nan,
                              "end_train_task": np.nan, "oracle_test": np.nan, "oracle_step": np.nan})
        stop, end = lowest_label(g[monitor]), g.index[-1]
        return pd.Series({"val_step": g.at[stop, "step"], "val_error": g.at[stop, monitor],
                          "test_error": g.at[stop, test], "end_test": g.at[end, test],
                          "end_train_task": g.at[end, "train_task"] if "train_task" in g else np.nan,
                          "oracle_test": g[test].min(),
                          "oracle_step": g.at[lowest_label(g[test]), "step"]})
    return history.groupby(list(by)).apply(one, include_groups=False).reset_index()


def _check_runs(runs: pd.DataFrame) -> None:
    missing = [c for c in RUN_COLUMNS if c not in runs]
    if missing:
        raise ParameterError(f"a run table needs the columns {list(RUN_COLUMNS)}; missing {missing}")


def budgets(runs: pd.DataFrame) -> pd.Series:
    """The number of validation-evaluated configurations of each method."""
    _check_runs(runs)
    return runs.groupby("method").config.nunique()


def check_equal_budgets(runs: pd.DataFrame, tuned: Sequence[str]) -> int:
    """Raise unless every method in ``tuned`` has the same number of configurations; returns that number."""
    counts = budgets(runs).reindex(list(tuned))
    if counts.isna().any() or counts.nunique() != 1:
        raise ParameterError(f"the tuned methods must have equal tuning budgets; got {counts.to_dict()}")
    return int(counts.iloc[0])


def select(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method and seed, the configuration with the lowest validation error (one row each; ties within
    :data:`TIE`: the first in the table's order).

    Failed configurations (an infinite validation error: they diverged) are never kept; a method all of
    whose configurations failed in a run stops the study, naming them.
    """
    _check_runs(runs)
    failed = ~np.isfinite(runs.val_error.to_numpy(float))
    if failed.any():
        every = pd.Series(failed, index=runs.index).groupby([runs.method, runs.seed]).all()
        if every.any():
            method, seed = every[every].index[0]
            configs = ", ".join(runs[(runs.method == method) & (runs.seed == seed)].config.astype(str))
            raise TrainingDiverged(f"every configuration of {method} failed (diverged) in run {seed}: {configs}; "
                                   "lower the learning rate (lr)")
    best = runs.groupby(["method", "seed"]).val_error.agg(lowest_label)
    return runs.loc[best.to_numpy()].reset_index(drop=True)


def strongest(selected: pd.DataFrame, candidates: Sequence[str]) -> str:
    """Of ``candidates``, the method whose selected runs have the lowest mean validation error."""
    pool = selected[selected.method.isin(list(candidates))]
    absent = sorted(set(candidates) - set(pool.method))
    if absent:
        raise ParameterError(f"candidates must be methods of the run table; got unknown {absent}")
    return str(pool.groupby("method").val_error.mean().idxmin())


def paired(selected: pd.DataFrame, method: str, reference: str, column: str = "test_error") -> pd.Series:
    """``reference - method`` of ``column``, run by run (> 0: ``method`` is better); indexed by seed."""
    table = selected.pivot(index="seed", columns="method", values=column)
    for m in (method, reference):
        if m not in table:
            raise ParameterError(f"method must be one of {sorted(table.columns)}; got {m!r}")
    return table[reference] - table[method]


def interval(gains) -> dict[str, float]:
    """Paired gains (one per run) as ``{"gain", "low", "high", "runs"}``: their mean and 95% interval."""
    gain, low, high = mean_ci(gains)
    return {"gain": gain, "low": low, "high": high, "runs": int(np.isfinite(np.asarray(gains, float)).sum())}


def compare(selected: pd.DataFrame, method: str, reference: str, column: str = "test_error") -> dict[str, float]:
    """The paired gain of ``method`` over ``reference``: ``{"gain", "low", "high", "runs"}`` (95% interval)."""
    return interval(paired(selected, method, reference, column))


def summary(selected: pd.DataFrame, methods: Sequence[str], base: str | None = None) -> pd.DataFrame:
    """Per method: the mean and 95% interval of the selected test error, with ``base`` also the paired gain
    over it, the mean validation error and the configurations chosen (:func:`chosen_text`)."""
    rows = []
    for m in methods:
        g = selected[selected.method == m]
        row = {"method": m, **ci_columns("test_error", g.test_error)}
        if base is not None:
            gain = paired(selected, m, base) if m != base else pd.Series(0.0, index=g.seed)
            row.update(ci_columns("gain", gain))
        rows.append({**row, "val_error": g.val_error.mean(), "chosen": chosen_text(g.config)})
    return pd.DataFrame(rows)


UNTUNED = ("-", "none")  # the configuration label of a method with nothing to tune (stopping aside)


def chosen_text(configs: pd.Series, most: int = 3) -> str:
    """The configurations validation chose, one per run, with their counts, most often first (ties in the order
    of the labels), in words (:func:`~stlearn.verdicts.config_words`): "λ = 1 (6 runs), λ = 0 (4 runs)", the first
    ``most`` and how many more; "— (nothing tuned)" for a method with one configuration labelled as in
    :data:`UNTUNED`."""
    counts = configs.value_counts().sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    if set(counts.index) <= set(UNTUNED):
        return "— (nothing tuned)"
    text = ", ".join(f"{config_words(c)} ({n} run{'' if n == 1 else 's'})" for c, n in counts.iloc[:most].items())
    return text + (f", {len(counts) - most} more" if len(counts) > most else "")
