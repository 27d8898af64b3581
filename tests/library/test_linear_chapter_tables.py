"""The tables the linear chapters show a reader: headers in words and symbols, paired effects signed (never
"-0.000"), "—" for a missing value, configuration labels that stay distinct (the equal-budget check counts them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stlearn.experiments import linear_dynamics as ld
from stlearn.experiments import linear_early_stopping as les
from stlearn.experiments import linear_proportional as lp
from stlearn.experiments import linear_teacher_knowledge as ltk


def test_early_stopping_configuration_labels_are_words_and_stay_distinct():
    assert les._short(0.0002258) == "2.258e-4"
    assert les._short(0.01481) == "0.01481"
    assert les._short(5.541) == "5.541"
    penalties = np.geomspace(1e-7, 10.0, 400)  # as dense as a logged path's 1 / time
    assert len({les._short(m) for m in penalties}) == len(penalties)
    history = pd.DataFrame({"sigma": 1.0, "seed": 0, "lam": [0.0, 10.0], "step": [89, 4304], "time": [1.0, 2.0],
                            "val_noisy": [1.0, 2.0], "test_noisy": [1.0, 2.0]})
    runs = les.two_layer_runs(history)
    assert set(runs.config) == {"λ = 0, step 89", "λ = 10, step 4304"}


def test_early_stopping_end_table_names_its_columns():
    ends = pd.DataFrame({"sigma": 1.0, "lam": [0.0, 0.0], "rate": 0.0229, "final_loss": [6e-8, 5e-18],
                         "end_error": [8.1, 8.2], "min_norm_error": [8.1, 8.2]})
    shown = les.end_table(ends)
    assert list(shown.columns) == list(les.END_HEADERS.values())
    assert "final training loss (largest, relative to the initial one)" in shown.columns
    assert shown.iloc[0].tolist() == ["0.0229", "6e-08", "8.15", "8.15"]


def test_dynamics_window_table_names_its_columns_and_prints_small_errors():
    table = pd.DataFrame({"enter": [4.6, np.inf], "leave": [13.7, np.nan], "best_error": [1e-3, 2.5e-6],
                          "best_time": [6.5, 24.5]}, index=pd.Index([0.0, 10.0], name="lam"))
    shown = ld.window_table(table)
    assert list(shown.columns) == ["enters the 1% window (t)", "last time in it (t)", "lowest error on the path",
                                   "time of the lowest error (t)"]
    assert shown.index.name == "λ"
    assert shown["lowest error on the path"].tolist() == ["1.00e-03", "2.50e-06"]
    assert np.isnan(shown.loc[10.0, "enters the 1% window (t)"])  # shown as "—", never "inf"
    versus = pd.DataFrame({"best error along the path": [1e-3, 2e-6], "gain": [0.995, 0.99999],
                           "gain_low": [0.977, 0.9999], "gain_high": [1.013, 1.0]}, index=pd.Index([0.0, 10.0]))
    yard = ld.yardstick_table(versus)
    assert yard["lowest error on the path"].tolist() == ["1.00e-03", "2.00e-06"]
    assert yard.iloc[0, 1] == "+99.5 [97.7, 101.3]"


def test_proportional_map_and_finite_tables_are_signed_and_in_words():
    table = pd.DataFrame({"formula": [0.5, -0.5, 0.01], "simulated": [0.4, -0.6, -0.02], "se": 0.01,
                          "allowance": 0.0}, index=[0, 1, 2])
    points = [(1.5, 0.5), (3.0, 0.5), (4.5, 1.5)]
    sides = lp.map_sides(table, points, z=2.0, missing=1)
    assert sides[lp.MAP_LIMIT].tolist() == ["+0.500", "-0.500", "+0.010"]
    assert sides[lp.MAP_SIMULATED].tolist() == ["+0.400", "-0.600", "-0.020"]
    assert sides["ST better, limit"].tolist() == ["yes", "no", "too close to call"]
    assert sides["ST better, simulated"].tolist() == ["yes", "no", "no"]
    assert sides[lp.MAP_AGREES].all()
    finite = pd.DataFrame({"rows the teacher misses": [1], "ratio N/d": [3.0], "label noise": [3.0],
                           "best weight (median)": [100.0], "gap at the best weight": [0.044],
                           "gap at the best weight_low": [-0.075], "gap at the best weight_high": [0.163],
                           "gap, two-stage limit": [0.119], "outside the region, resolvably won": [False]})
    shown = lp.finite_table(finite)
    assert shown[lp.FINITE_LIMIT].tolist() == ["+0.119"]
    assert shown[f"{lp.FINITE_GAP} [95% interval]"].tolist() == ["+0.044 [-0.075, 0.163]"]
    assert list(lp.formula_table(pd.DataFrame(columns=["simulated", "se", "formula", "within"])).columns) == [
        "simulated (mean over runs)", "standard error", "formula", "within tolerance"]


def test_teacher_knowledge_slopes_tuning_and_weights_for_the_reader():
    slopes = pd.DataFrame({"n_student": [16, 120], "slope": [1.846, -0.114], "low": [1.539, -0.122],
                           "high": [2.152, -0.106], "exact (MC scalars)": [2.383, -0.117],
                           "finite form": [2.969, -0.114], "leading order": [0.375, -0.0001], "ls": [19.4, 5.1],
                           "perfect": [19.4, 5.1], "weaker": [8.9, 5.7], "weaker (exact form)": [9.2, 5.7],
                           "weaker (finite form)": [5.9, 5.7]})
    shown = ltk.slope_table(slopes)
    assert shown["slope, exact form (Monte Carlo scalars)"].tolist() == ["+2.383", "-0.117"]
    assert shown["slope, leading order"].tolist() == ["+0.375", "+0.000"]
    assert shown[f"{ltk.SLOPE} [95% interval]"].tolist() == ["+1.846 [1.539, 2.152]", "-0.114 [-0.122, -0.106]"]
    tune = pd.DataFrame({"n_teacher": [20], "n_student": [30], "lam*": [7.2], "tuned vs base": [0.242],
                         "low": [0.147], "high": [0.337], "tuned vs best simple": [0.068], "simple low": [-0.005],
                         "simple high": [0.141], "ridge chosen (share of runs)": [0.75],
                         "lost (share of runs)": [0.188], "oracle vs base": [0.213],
                         "base vs least squares": [-0.0001]})
    view = ltk.tuning_view(tune)
    assert view["oracle vs base, % (above 0: oracle better)"].tolist() == ["+21.3"]
    assert view["base vs least squares, % (above 0: base better)"].tolist() == ["+0.0"]
    assert view["tuned ST worse than base (share of runs)"].tolist() == [0.188]
    assert [ltk.lam_text(v) for v in (0.0, 0.0193069, 7.197, 1000.0, np.inf)] == ["0", "0.01931", "7.197", "1000", "∞"]
