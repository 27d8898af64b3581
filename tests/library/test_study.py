"""The study runner: equal budgets before computation, one rule for shared runs, selection and families."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from stlearn import protocol, study
from stlearn.validation import ParameterError


@dataclass(frozen=True)
class Knobs(protocol.Run):
    INERT = {"lam": ("teacher",)}
    teacher: str = "large"
    fresh_noise: float | None = None


def toy_study(seeds=(0, 1, 2, 3, 4, 5)):
    lams = study.lam_grid(3)
    methods = (study.Method("base", ({"config": "-"},)),
               study.grid("weight decay", "weight_decay", [0.0, 0.01, 0.1, 1.0]),
               study.grid("ST", "lam", lams),
               study.grid("ST, own teacher", "lam", lams, teacher="own"),
               study.grid("ST + weight decay", "lam", lams, weight_decay=0.01),
               study.grid("noise augmentation", "fresh_noise", [0.5, 1.0, 1.5, 2.0], family=study.NOISE_MODEL),
               study.grid("ST + noise augmentation", "lam", lams, fresh_noise=1.0, family=study.NOISE_MODEL),
               study.Method("teacher as is", ({"config": "-"},), measured=True))
    return study.Study(methods, tuple(seeds), Knobs)


def error_of(run) -> float:
    """A made-up test error: ST helps in proportion to lam up to 1, augmentation helps more."""
    gain = 0.1 * min(run.lam, 1.0) + (0.3 if run.fresh_noise else 0.0) - 0.5 * run.weight_decay
    return 1.0 - gain + 0.01 * run.seed


def execute(calls, error_of=error_of):
    def run(group, runs):
        calls.append((group, len(runs)))
        if group == "measured":
            return pd.DataFrame({"member": range(len(runs)), "val_error": 0.95, "test_error": 0.95})
        rows = [{"member": e, "step": s, "val_noisy": error_of(r) + (0.2 if s == 0 else 0.0),
                 "test_noisy": error_of(r) + (0.2 if s == 0 else 0.0), "train_task": 1.0}
                for e, r in enumerate(runs) for s in (0, 10)]
        return pd.DataFrame(rows), f"model of {group}"
    return run


def group_of(run):
    if run.method == "teacher as is":
        return "measured"
    return "fresh" if run.fresh_noise is not None else "fixed"


def test_lam_grid_spans_the_relative_scale():
    lams = study.lam_grid()
    assert lams[0] == 0 and lams[1] == 0.01 and lams[-1] == 10 and len(lams) == 7
    assert study.check_lam_grid(lams) == lams
    with pytest.raises(ParameterError, match="lams must start with 0"):
        study.check_lam_grid([0.1, 1.0])


def test_unequal_budgets_stop_before_any_computation():
    s = toy_study()
    bad = study.Study((*s.methods, study.grid("output distillation", "lam", [0.0, 1.0])), s.seeds, Knobs)
    calls = []
    with pytest.raises(ParameterError, match="equal tuning budgets"):
        study.run_study(bad, execute(calls), group_of)
    assert calls == []


def test_shared_runs_train_once_and_every_run_gets_its_row():
    calls = []
    s = toy_study()
    result = study.run_study(s, execute(calls), group_of)
    # base = wd 0 = ST lam 0 = ST own lam 0; ST + wd at lam 0 is wd 0.01; ST + augmentation at lam 0 is
    # augmentation at 1.0; the teacher as it is shares with nothing
    per_seed = {"fixed": 1 + 3 + 3 + 3 + 3, "fresh": 4 + 3, "measured": 1}
    assert dict(calls) == {g: n * len(s.seeds) for g, n in per_seed.items()}
    assert len(result.table) == len(s.runs()) and result.budget == 4
    assert set(result.models) == {"fixed", "fresh", "measured"}
    base = result.table[result.table.method == "base"].test_error.to_numpy()
    st0 = result.table[(result.table.method == "ST, own teacher") & (result.table.config == "lam=0")]
    np.testing.assert_array_equal(base, st0.test_error.to_numpy())
    assert (result.table.val_error == result.table.test_error).all()  # read at the stop (step 10)


def test_families_name_the_strongest_and_the_winner():
    result = study.run_study(toy_study(), execute([]), group_of)
    c = result.comparisons.set_index("method")
    assert c.loc["ST", "family"] == study.SAME_INFORMATION
    assert c.loc["ST", "reference"] == "teacher as is"  # the strongest same-information method here
    assert c.loc["ST", "low"] > 0 and c.loc["ST", "verdict"].startswith("ST beats the teacher as it is (+")
    assert c.loc["ST + weight decay", "reference"] == "weight decay"
    assert c.loc["noise augmentation", "reference"] == "ST"  # the winner of family 1
    assert c.loc["noise augmentation", "low"] > 0
    # ST + augmentation gains 0.1 * min(lam, 1) over augmentation: its best lam is 1
    assert c.loc["ST + noise augmentation", "gain"] == pytest.approx(0.1)
    text = study.family_verdict(result.comparisons, study.NOISE_MODEL)
    assert text.startswith("Noise augmentation beats ST (+") and text.endswith(").")
    assert study.family_verdict(result.comparisons, study.COMPLEMENT).startswith("ST + weight decay beats")


def test_no_resolvable_difference_is_worded_with_its_interval():
    words = study.sentence({"gain": 0.01, "low": -0.02, "high": 0.04}, "ST", "base")
    assert words == "no resolvable difference between ST and the base student (+0.010 [-0.020, 0.040])"


def test_trains_as_resets_only_inert_knobs():
    a = Knobs(method="ST", config="lam=0", seed=1, lam=0.0, teacher="own")
    b = Knobs(method="base", config="-", seed=1)
    c = Knobs(method="ST", config="lam=1", seed=1, lam=1.0, teacher="own")
    assert a.trains_as() == b.trains_as() != c.trains_as()


def test_a_follower_tunes_lam_at_the_knob_its_leader_chose_and_shares_its_choice():
    s = toy_study()
    lams = study.lam_grid(3)
    follower = study.grid("ST + weight decay", "lam", lams, follows="weight decay", inherits=["weight_decay"])
    methods = tuple(m for m in s.methods if m.name != "ST + weight decay") + (follower,)
    plan = study.Study(methods, s.seeds, Knobs)
    # weight decay only hurts: it chooses 0, so the follower is ST itself, every run shared, nothing trained again
    calls = []
    result = study.run_study(plan, execute(calls), group_of)
    assert not any(isinstance(g, tuple) for g in result.models)
    rows = {m: result.table[result.table.method == m].test_error.to_numpy() for m in ("ST", "ST + weight decay")}
    np.testing.assert_array_equal(rows["ST"], rows["ST + weight decay"])
    # a decay of 0.01 helps: the follower trains at it, and its lam = 0 run is weight decay's choice
    helps = lambda r: error_of(r) - (0.05 if r.weight_decay == 0.01 else 0.0)  # noqa: E731
    calls = []
    result = study.run_study(plan, execute(calls, helps), group_of)
    assert (result.selected[result.selected.method == "weight decay"].config == "weight_decay=0.01").all()
    assert calls[-1] == (("fixed"), 3 * len(s.seeds)) and ("fixed", "follows") in result.models
    assert {r.weight_decay for r in result.where if r.method == "ST + weight decay"} == {0.01}
    lam0 = result.table[(result.table.method == "ST + weight decay") & (result.table.config == "lam=0")]
    chosen = result.selected[result.selected.method == "weight decay"]
    np.testing.assert_array_equal(lam0.test_error.to_numpy(), chosen.test_error.to_numpy())
    with pytest.raises(ParameterError, match="follows 'nothing'"):
        study.Study((*methods, study.grid("x", "lam", lams, follows="nothing", inherits=["lam"])), s.seeds, Knobs)


def test_a_run_shared_across_groups_trains_once():
    """ST at lam = 0 trains as base even where its method's other runs would go to another group."""
    s = toy_study()
    calls = []
    odd_group = lambda r: "own" if r.method == "ST, own teacher" else group_of(r)  # noqa: E731
    result = study.run_study(s, execute(calls), odd_group)
    assert dict(calls)["own"] == 3 * len(s.seeds)  # its lam = 0 run is base's, trained in "fixed"
    assert len(result.table) == len(s.runs())


def test_lam_rows_read_lambda_from_the_runs_not_from_their_labels():
    lams = study.lam_grid(3)
    words = dict(zip(lams, ("off", "weak", "medium", "strong")))  # labels no parser could read lambda from
    methods = (study.Method("base", ({"config": "-"},)), study.grid("ST", "lam", lams, label=words.get),
               study.grid("noise augmentation", "fresh_noise", [0.5, 1.0, 1.5, 2.0], family=study.NOISE_MODEL),
               study.grid("ST + noise augmentation", "lam", lams, label=words.get, family=study.NOISE_MODEL,
                          follows="noise augmentation", inherits=["fresh_noise"]))
    result = study.run_study(study.Study(methods, (0, 1, 2), Knobs), execute([]), group_of)
    rows = result.lam_rows(["ST", "ST + noise augmentation"])
    assert set(rows.method) == {"ST", "ST + noise augmentation"} and len(rows) == 2 * len(lams) * 3
    assert (rows.config.map({w: lam for lam, w in words.items()}) == rows.lam).all()
    every = result.lam_rows()  # the whole run table, in its order, with lam beside it (0 without a feature term)
    pd.testing.assert_frame_equal(every.drop(columns="lam"), result.table)
    assert (every[every.method.isin(["base", "noise augmentation"])].lam == 0).all()


def test_lam_counts_words_most_often_first_and_equals_by_smaller_lambda():
    lams = pd.Series([0.63, 1.0, 0.0, 1.0, 0.0, 0.1], index=range(6))
    assert study.lam_counts(lams) == "λ = 0 (2 runs), λ = 1 (2 runs), λ = 0.1 (1 run), λ = 0.63 (1 run)"
    assert study.lam_counts(lams.iloc[::-1]) == study.lam_counts(lams)  # the order of the runs does not matter
    tally = study.lam_tally(pd.Series([0.63, 0.0, 0.0]))
    assert tally.to_dict() == {0.0: 2, 0.63: 1} and tally.index[0] == 0.0  # the most often chosen, glued
    assert study.lam_counts(pd.Series([10])) == "λ = 10 (1 run)"
