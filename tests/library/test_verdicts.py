"""The sentence builders behind the experiment chapters' verdicts: each case of each, from intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stlearn import verdicts
from stlearn.experiments import classification as cl
from stlearn.experiments import nonlinear_decomposition as nd

ABOVE = {"gain": 0.1, "low": 0.02, "high": 0.18}
BELOW = {"gain": -0.1, "low": -0.18, "high": -0.02}
AROUND = {"gain": 0.01, "low": -0.05, "high": 0.07}


def test_holm_adjusts_step_down_and_keeps_the_order():
    p = [0.01, 0.04, 0.03, 0.5]
    # sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 -> 0.04, 0.09, 0.08 -> running max 0.09, then 0.5
    assert nd.holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert nd.holm([0.9, 0.8]).max() <= 1.0
    assert (nd.holm(p) >= np.asarray(p)).all()


def test_comparison_table_pairs_runs_and_differences_of_gains():
    rows = []
    for seed, (a, b, c) in enumerate([(1.0, 1.5, 2.0), (1.1, 1.4, 2.2), (0.9, 1.6, 1.9)]):
        rows += [{"method": "ST", "seed": seed, "test_error": a}, {"method": "base", "seed": seed, "test_error": b},
                 {"method": "rotated", "seed": seed, "test_error": c}]
    selected = pd.DataFrame(rows)
    table = nd.comparison_table(selected, [("ST over base", ("ST", "base")),
                                           ("ST over rotated minus over base", ("ST", "rotated"), ("ST", "base"))])
    assert table.loc["ST over base", "gain"] == pytest.approx(np.mean([0.5, 0.3, 0.7]))
    assert table.loc["ST over rotated minus over base", "gain"] == pytest.approx(np.mean([0.5, 0.8, 0.3]))
    assert table.runs.tolist() == [3, 3]
    assert (table.holm_p >= table.p).all()


@pytest.mark.parametrize("reduction_pre, pre, start", [
    (ABOVE, AROUND, "The sign constraint of ReLU features accounts for the rotation's cost"),
    (AROUND, ABOVE, "The rotation's cost is not the sign constraint"),
    (AROUND, AROUND, "With pre-activations the rotation's cost is not resolvable"),
])
def test_mechanism_verdict_first_half(reduction_pre, pre, start):
    text = nd.mechanism_verdict(pre, reduction_pre, AROUND, ABOVE, ABOVE)
    assert text.startswith(start)


@pytest.mark.parametrize("units_vs_connector, phrase", [
    (ABOVE, "transfers resolvably less than the units matched directly"),
    (BELOW, "transfers more than the units matched directly"),
    (AROUND, "no resolvable difference between it and the units matched directly (+0.010 [-0.050, 0.070])"),
])
def test_mechanism_verdict_connector_half(units_vs_connector, phrase):
    text = nd.mechanism_verdict(ABOVE, ABOVE, AROUND, ABOVE, units_vs_connector)
    assert "a learned connector makes the layout irrelevant" in text and phrase in text
    assert "as well as" not in text and "as much as" not in text
    doubt = nd.mechanism_verdict(ABOVE, ABOVE, ABOVE, ABOVE, units_vs_connector)
    assert "calls the set-up into doubt" in doubt


def test_length_verdict_reads_each_interval():
    r = {"length stopped": ABOVE, "length matched": AROUND, "length zero_loss": BELOW}
    text = cl.length_verdict(r)
    assert text == ("validation-stopped, the gain of ST over base is positive; at matched training loss it is not "
                    "resolvably different from zero; trained on to (near) zero loss it is negative")
    assert cl.length_verdict(r, end="after the continuation").endswith("after the continuation it is negative")


def _families(primary, complement=AROUND, st_aug=AROUND):
    from stlearn import study
    rows = [(study.SAME_INFORMATION, "ST", "fine-tuned teacher", primary),
            (study.COMPLEMENT, "ST + weight decay", "weight decay", complement),
            (study.NOISE_MODEL, "noise augmentation", "fine-tuned teacher", BELOW),
            (study.NOISE_MODEL, "ST + noise augmentation", "noise augmentation", st_aug)]
    return pd.DataFrame([{"family": f, "method": m, "reference": r, **c, "runs": 10,
                          "verdict": study.sentence(c, m, r)} for f, m, r, c in rows])


@pytest.mark.parametrize("primary, complement, st_aug, pieces", [
    (ABOVE, AROUND, AROUND, ["ST is worth its teacher here: it beats fine-tuned teacher."]),
    (BELOW, AROUND, AROUND, ["start from fine-tuned teacher: fine-tuned teacher is better than ST."]),
    (AROUND, ABOVE, AROUND, ["no resolvable difference between ST and fine-tuned teacher",
                             "On top of another method the feature term does help: "
                             "ST + weight decay beats weight decay (+0.100 [0.020, 0.180])."]),
    (BELOW, BELOW, ABOVE, ["It hurts on top of weight decay.", "ST + noise augmentation beats noise augmentation"]),
])
def test_early_stopping_practice_follows_the_families(primary, complement, st_aug, pieces):
    text = verdicts.early_stopping_practice(_families(primary, complement, st_aug))
    for piece in pieces:
        assert piece in text
    assert text.endswith("stop on a labelled noisy validation set.")
    assert "as well as" not in text and "matches" not in text


@pytest.mark.parametrize("zero_gains, phrase", [
    ([[0.1, 0.2, 0.15], [0.1, 0.12, 0.2]], "keep a resolvable gain at zero training loss"),
    ([[-0.1, -0.2, -0.15], [-0.1, -0.12, -0.2]], "every ST student ends resolvably worse"),
    ([[-0.1, -0.2, -0.15], [-0.1, 0.3, -0.2]], "no ST student keeps a gain and some end resolvably worse"),
    ([[-0.1, 0.2, 0.0], [-0.1, 0.3, -0.2]], "no ST student keeps a resolvable gain, as the linear theorem"),
])
def test_early_stopping_claim_reads_each_interval(zero_gains, phrase):
    gains = pd.DataFrame([{"config": f"lam={i}", "seed": k, "gain_zero_loss_test": g}
                          for i, row in enumerate(zero_gains) for k, g in enumerate(row)])
    text = verdicts.early_stopping_claim(ABOVE, gains, _families(BELOW))
    assert text.startswith("Early stopped on validation, ST beats the base student; ")
    assert phrase in text
    assert text.endswith("fine-tuned teacher beats ST (-0.100 [-0.180, -0.020]).")


def test_early_stopping_shrink_verdict_groups_the_configurations():
    text = verdicts.shrink_verdict({"lam=1": ABOVE, "lam=3": BELOW, "lam=10": AROUND})
    assert text == ("resolvably above 0 for lam=1; resolvably below 0 for lam=3; "
                    "not resolvably different from 0 for lam=10")
    assert verdicts.shrink_verdict({"lam=1": ABOVE}).endswith("smaller than where validation stops it")
