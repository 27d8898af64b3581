"""The classification chapters' readouts: the lambda curve and the chosen lambdas (their advice in words:
``test_verdicts.py``)."""

import pandas as pd
import pytest

from stlearn import protocol, study
from stlearn.experiments import classification as cl


def _result(table: pd.DataFrame) -> study.StudyResult:
    """``table`` as the run table of a study of base, ST and ST + noise augmentation, lam labelled as the chapters
    label it (the runs' lam is what the curve reads)."""
    methods = (study.Method("base", ({"config": "-"},)), study.grid("ST", "lam", [0.0, 0.01], label=cl.lam_label),
               study.grid("ST + noise augmentation", "lam", [0.0, 10.0], label=cl.lam_label, family=study.NOISE_MODEL))
    s = study.Study(methods, (0, 1))
    where = {r: ("fixed", e) for e, r in enumerate(s.runs())}
    return study.StudyResult(s, table, protocol.select(table), pd.DataFrame(), {}, where, s.budget())


def test_lam_curve_and_the_lambdas_chosen():
    table = pd.DataFrame({"method": ["ST"] * 4 + ["ST + noise augmentation"] * 2 + ["base"],
                          "config": ["lam=0", "lam=0", "lam=0.01", "lam=0.01", "lam=0", "lam=10", "-"],
                          "seed": [0, 1, 0, 1, 0, 0, 0], "val_error": [0.1, 0.1, 0.2, 0.05, 0.1, 0.2, 0.1],
                          "test_error": [0.2, 0.4, 0.1, 0.1, 0.3, 0.5, 0.9]})
    result = _result(table)
    curve = cl.lam_curve(result)
    assert list(curve.method) == ["ST", "ST", "ST + noise augmentation", "ST + noise augmentation"]
    assert list(curve.lam) == [0.0, 0.01, 0.0, 10.0]
    assert curve.test_error.tolist() == pytest.approx([0.3, 0.1, 0.3, 0.5])
    assert curve.low[1] == curve.high[1] == pytest.approx(0.1)  # equal errors: a zero-width interval
    lams = result.selected_lams("ST")  # what the chapters count (study.lam_counts): lambda per run, from the runs
    assert lams.to_dict() == {0: 0.0, 1: 0.01}
    assert study.lam_counts(lams) == "λ = 0 (1 run), λ = 0.01 (1 run)"


def test_last_stops_counts_the_selected_runs_stopped_at_the_last_step_per_trained_method():
    selected = pd.DataFrame({"method": ["base", "base", "ST", "ST", "teacher as is", "teacher as is"],
                             "seed": [0, 1, 0, 1, 0, 1], "val_step": [300, 147, 300, 300, None, None]})
    assert cl.last_stops(selected, 300) == {"ST": 2, "base": 1}  # a measured method has no stop
    assert list(cl.last_stops(selected, 300, ["base", "teacher as is"])) == ["base", "ST"]
    assert cl.last_stops(selected, 400) == {"ST": 0, "base": 0}
    table = pd.DataFrame({"method": ["ST", "ST", "base"], "config": ["lam=0", "lam=0.01", "-"], "seed": 0,
                          "val_error": [0.2, 0.1, 0.3], "test_error": 0.1, "val_step": [300, 147, 300]})
    assert cl.last_stops_text(_result(table), 300) == "base 1, ST 0 (of 1 runs each)"
