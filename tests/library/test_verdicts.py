"""The sentence builders behind the experiment chapters' verdicts: each case of each, from intervals."""

from __future__ import annotations

import pandas as pd
import pytest

from stlearn import study, verdicts
from stlearn.experiments import nonlinear_teacher_knowledge as tk

ABOVE = {"gain": 0.1, "low": 0.02, "high": 0.18}
BELOW = {"gain": -0.1, "low": -0.18, "high": -0.02}
AROUND = {"gain": 0.01, "low": -0.05, "high": 0.07}


# ---------------------------------------------------------------- chapter "Training to zero loss erases the teacher"
@pytest.mark.parametrize("found, words", [
    (["ridge", "ridge"], "tuned ridge beats every interpolating student, base and ST, at every depth and weight"),
    (["student", "student"], "every interpolating student, base and ST, beats tuned ridge"),
    (["neither", "neither"], "no resolvable difference between any interpolating student and tuned ridge"),
    (["ridge", "student", "neither", "neither"], "of the 4 interpolating students, tuned ridge beats 1, 1 beat it, "
                                                 "and 2 show no resolvable difference"),
])
def test_yardstick_verdict_counts_the_trained_rows(found, words):
    # the first row is the min-norm interpolator itself (not trained): never counted
    table = pd.DataFrame({"trained": [False, *[True] * len(found)], "verdict": ["student", *found]})
    assert verdicts.yardstick_verdict(table) == words


# ---------------------------------------------------------------- chapter "Early stopping in wide ReLU networks"
def _early_stopping_families(primary, complement=AROUND, st_aug=AROUND):
    rows = [(study.SAME_INFORMATION, "ST", "fine-tuned teacher", primary),
            (study.COMPLEMENT, "ST + weight decay", "weight decay", complement),
            (study.NOISE_MODEL, "noise augmentation", "fine-tuned teacher", BELOW),
            (study.NOISE_MODEL, "ST + noise augmentation", "noise augmentation", st_aug)]
    return pd.DataFrame([{"family": f, "method": m, "reference": r, **c, "runs": 10,
                          "verdict": study.sentence(c, m, r)} for f, m, r, c in rows])


@pytest.mark.parametrize("primary, complement, st_aug, pieces", [
    (ABOVE, AROUND, AROUND, ["ST is worth its teacher here: it beats the fine-tuned teacher."]),
    (BELOW, AROUND, AROUND, ["start from the fine-tuned teacher: the fine-tuned teacher is better than ST."]),
    (AROUND, ABOVE, AROUND, ["no resolvable difference between ST and the fine-tuned teacher",
                             "On top of another method the feature term does help: "
                             "ST + weight decay beats weight decay (+0.100 [0.020, 0.180])."]),
    (BELOW, BELOW, ABOVE, ["It hurts on top of weight decay.", "ST + noise augmentation beats noise augmentation"]),
])
def test_early_stopping_practice_follows_the_families(primary, complement, st_aug, pieces):
    text = verdicts.early_stopping_practice(_early_stopping_families(primary, complement, st_aug))
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
    text = verdicts.early_stopping_claim(ABOVE, gains, _early_stopping_families(BELOW))
    assert text.startswith("Early stopped on validation, ST beats the base student; ")
    assert phrase in text
    assert text.endswith("fine-tuned teacher beats ST (-0.100 [-0.180, -0.020]).")


def test_early_stopping_shrink_verdict_groups_the_configurations():
    text = verdicts.shrink_verdict({"lam=1": ABOVE, "lam=3": BELOW, "lam=10": AROUND})
    assert text == ("resolvably above 0 for lam=1; resolvably below 0 for lam=3; "
                    "not resolvably different from 0 for lam=10")
    assert verdicts.shrink_verdict({"lam=1": ABOVE}).endswith("smaller than where validation stops it")


# ---------------------------------------------------------------- chapter "How knowledgeable must the teacher be?"
def test_teacher_phrase_names_every_level_the_chapter_has():
    phrases = [verdicts.teacher_phrase(l) for l in tk.level_names([15, 1000])]
    assert phrases == ["the untrained teacher", "the wrong-target teacher", "the 15-sample teacher",
                       "the 1000-sample teacher"]


def _level_gains(truth, n_train=10, sigma=0.5):
    """Per (level, run) gains over base whose mean per level is exactly ``truth[level]`` (six runs)."""
    return pd.DataFrame([{"n_train": n_train, "sigma": sigma, "level": l, "seed": k,
                          "over_base": v + 0.01 * (-1) ** k * (1 + k // 2)}
                         for l, v in truth.items() for k in range(6)])


def _at_lam(gains, lam=1.0):
    return gains.rename(columns={"over_base": "gain"}).assign(lam=lam)


def test_teacher_knowledge_claim_reads_each_interval():
    hurt = _level_gains({"untrained": 0.0, "wrong target": 0.0, "5 samples": -0.5, "50 samples": 0.5})
    words = verdicts.teacher_knowledge_claim(ABOVE, AROUND, hurt, _at_lam(hurt), "50 samples")
    assert words.startswith("Knowledge helps beyond what a random teacher gives: ST with the 50-sample teacher beats "
                            "ST with the untrained teacher")
    assert "the untrained teacher gives no resolvable gain" in words
    assert "still resolvably hurts the student (the 5-sample teacher at n = 10, σ = 0.5)" in words
    calm = _level_gains({"untrained": 0.2, "wrong target": 0.2, "5 samples": 0.2, "50 samples": 0.2})
    words = verdicts.teacher_knowledge_claim(AROUND, ABOVE, calm, _at_lam(calm), "50 samples")
    assert words.startswith("Beyond what a random teacher gives, the teacher's knowledge adds no resolvable gain")
    assert "resolvably helps as well" in words and "did not appear here" in words
    words = verdicts.teacher_knowledge_claim(BELOW, BELOW, calm, _at_lam(hurt, 3.0), "50 samples")
    assert words.startswith("Knowledge hurts: ST with the 50-sample teacher is worse than ST with the untrained")
    assert "and the untrained teacher resolvably hurts the student" in words
    assert ("at a fixed λ some do (the 5-sample teacher at n = 10, σ = 0.5, λ = 3), so the paper's limit is real but "
            "a validation set avoids it.") in words


@pytest.mark.parametrize("over_base, words", [
    ({"untrained": ABOVE, "50 samples": ABOVE},
     "every teacher helps the base student resolvably, the untrained and the wrong-target ones included"),
    ({"untrained": AROUND, "50 samples": AROUND},
     "no teacher, trained or not, resolvably helps or hurts the base student"),
    ({"untrained": ABOVE, "wrong target": BELOW, "5 samples": AROUND, "50 samples": ABOVE},
     "the untrained teacher and the 50-sample teacher resolvably help the base student; the wrong-target teacher "
     "resolvably hurts it; with the 5-sample teacher the difference is not resolvable"),
    ({"untrained": AROUND, "5 samples": AROUND, "50 samples": ABOVE},
     "the 50-sample teacher resolvably helps the base student; with the untrained teacher and the 5-sample teacher "
     "the difference is not resolvable"),
])
def test_helps_base_verdict_sorts_the_teachers_by_their_intervals(over_base, words):
    assert verdicts.helps_base_verdict(over_base, list(over_base)) == words


@pytest.mark.parametrize("crossover, words", [
    ({"bracket": ("untrained", "50 samples"), "hurts": ["untrained"], "helps": ["50 samples"]},
     "the gain crosses zero between the untrained teacher (resolvably below zero) and the 50-sample teacher "
     "(resolvably above)"),
    ({"bracket": None, "hurts": ["untrained", "wrong target"], "helps": []},
     "the gain is resolvably below zero for the untrained teacher, the wrong-target teacher, and no more "
     "knowledgeable teacher is resolvably above"),
    ({"bracket": None, "hurts": [], "helps": ["5 samples"]},
     "the gain is never resolvably below zero, and resolvably above zero for the 5-sample teacher"),
    ({"bracket": None, "hurts": [], "helps": []}, "the gain is not resolvably different from zero for any teacher"),
])
def test_describe_crossover_words_each_case(crossover, words):
    assert verdicts.describe_crossover(crossover, "the gain") == words


def _conditions():
    """Two conditions' family comparisons (one row per comparison and condition)."""
    return pd.DataFrame([
        dict(family="same information", method="ST", reference="weight decay", gain=-0.2, low=-0.3, high=-0.1,
             n_train=10, sigma=0.5),
        dict(family="same information", method="ST", reference="teacher as is", gain=0.0, low=-0.1, high=0.1,
             n_train=20, sigma=0.5),
        dict(family="with a noise model", method="noise augmentation", reference="weight decay", gain=0.2, low=0.1,
             high=0.3, n_train=10, sigma=0.5),
        dict(family="with a noise model", method="noise augmentation", reference="ST", gain=0.2, low=0.1,
             high=0.3, n_train=20, sigma=0.5),
        dict(family="with a noise model", method="ST + noise augmentation", reference="noise augmentation",
             gain=0.05, low=0.01, high=0.09, n_train=10, sigma=0.5),
        dict(family="with a noise model", method="ST + noise augmentation", reference="noise augmentation",
             gain=0.0, low=-0.1, high=0.1, n_train=20, sigma=0.5)])


def test_counts_over_the_conditions_and_their_words():
    families = _conditions()
    assert verdicts.counted(families, "ST") == {"wins": 0, "losses": 1, "ties": 1, "of": 2}
    words = verdicts.count_words(families, "ST", "the strongest simple method")
    assert words == ("ST beats the strongest simple method in 0 of the 2 conditions, the strongest simple method "
                     "beats it in 1, and in 1 there is no resolvable difference")


def test_teacher_knowledge_practice_follows_the_counts():
    families = _conditions()
    advice = verdicts.teacher_knowledge_practice(families, AROUND, "50 samples")
    assert advice.startswith("Without a noise model, try the simple methods first: the strongest of them on "
                             "validation beats ST with the 50-sample teacher in 1 of the 2 conditions, and in the "
                             "other 1 there is no resolvable difference.")
    assert "ST complements it: ST + noise augmentation beats noise augmentation in 1 of the 2 conditions" in advice
    assert "no resolvable difference between a knowledgeable teacher and a random one (+0.010 [-0.050, 0.070])" \
        in advice and "as well" not in advice and "matches" not in advice
    wins = families.assign(low=families.low + 0.5, high=families.high + 0.5)
    advice = verdicts.teacher_knowledge_practice(wins[wins.method == "ST"], ABOVE, "50 samples")
    assert advice == ("Without a noise model, ST with the 50-sample teacher beats the strongest simple method of the "
                      "same information in 2 of the 2 conditions (and loses to it in 0). If ST is used, a teacher "
                      "that knows the target is worth having (it beats a random one), and λ should be chosen on a "
                      "labelled validation set, 0 included.")


# ---------------------------------------------------------------- chapter "How the teacher decomposes its knowledge"
def test_equivalence_and_penalty_verdicts_follow_the_intervals():
    assert verdicts.equivalent({"low": -0.004, "high": 0.003}, 0.005)
    for low in (-0.004, 0.001):  # inside the margin: equivalent, whether or not the interval holds 0
        assert "by less than 0.005 either way" in verdicts.equivalence_verdict({"low": low, "high": 0.003}, 0.005, "it")
    assert "excludes 0" in verdicts.equivalence_verdict({"low": 0.001, "high": 0.03}, 0.005, "relabelling")
    assert "reaches beyond" in verdicts.equivalence_verdict({"low": -0.01, "high": 0.003}, 0.005, "relabelling")
    post = {"low": 0.05, "high": 0.07}
    assert "removes" in verdicts.penalty_verdict(post, {"low": -0.01, "high": 0.01}, {"low": 0.04, "high": 0.07}, "x")
    assert "reduces" in verdicts.penalty_verdict(post, {"low": 0.01, "high": 0.03}, {"low": 0.02, "high": 0.05}, "x")
    assert "leaves" in verdicts.penalty_verdict(post, {"low": 0.05, "high": 0.07}, {"low": -0.01, "high": 0.01}, "x")
    assert verdicts.penalty_verdict(post, post, {"low": -0.03, "high": -0.01}, "x") == \
        "x increases the rotation penalty"


def test_rotation_order_says_whether_the_gain_falls_at_every_step():
    falls = verdicts.rotation_order(pd.Series({"units": 0.3, "rot0.5": 0.2, "rot1": 0.1}))
    assert falls == ("Smaller rotations cost less: the mean gain over base falls at every step of θ (units +0.300, "
                     "rot0.5 +0.200, rot1 +0.100)")
    assert verdicts.rotation_order(pd.Series({"units": 0.3, "rot0.5": 0.35, "rot1": 0.1})).startswith(
        "The mean gain over base does not fall at every step of θ (units +0.300, rot0.5 +0.350")
    at_base = verdicts.rotation_order(pd.Series({"units": 0.3, "rot1": 0.0}), at_base={"rot1"})
    assert at_base.endswith("(units +0.300, rot1 0 (λ = 0 chosen in every run))") and "+0.000" not in at_base


@pytest.mark.parametrize("reduction_pre, pre, start", [
    (ABOVE, AROUND, "The sign constraint of ReLU features accounts for the rotation's cost"),
    (AROUND, ABOVE, "The rotation's cost is not the sign constraint"),
    (AROUND, AROUND, "With pre-activations the rotation's cost is not resolvable"),
])
def test_mechanism_verdict_first_half(reduction_pre, pre, start):
    text = verdicts.mechanism_verdict(pre, reduction_pre, AROUND, ABOVE, ABOVE)
    assert text.startswith(start)


@pytest.mark.parametrize("units_vs_connector, phrase", [
    (ABOVE, "transfers resolvably less than the units matched directly"),
    (BELOW, "transfers more than the units matched directly"),
    (AROUND, "no resolvable difference between it and the units matched directly (+0.010 [-0.050, 0.070])"),
])
def test_mechanism_verdict_connector_half(units_vs_connector, phrase):
    text = verdicts.mechanism_verdict(ABOVE, ABOVE, AROUND, ABOVE, units_vs_connector)
    assert "a learned connector makes the layout irrelevant" in text and phrase in text
    assert "as well as" not in text and "as much as" not in text
    doubt = verdicts.mechanism_verdict(ABOVE, ABOVE, ABOVE, ABOVE, units_vs_connector)
    assert "calls the set-up into doubt" in doubt


@pytest.mark.parametrize("primary, answer, claim", [
    (ABOVE, "Holds: the teacher's units transfer better", "Yes, for this family of teachers"),
    (BELOW, "Reversed: a rotation of the teacher's units", "No: a rotation of the teacher's units"),
    (AROUND, "Not resolved: no resolvable difference between the units and their rotation (+0.010 [-0.050, 0.070])",
     "Not resolvably: no resolvable difference between the units and their rotation (+0.010"),
])
def test_decomposition_claim_and_short_answer_follow_the_primary(primary, answer, claim):
    assert verdicts.decomposition_short_answer(primary).startswith(answer)
    text = verdicts.decomposition_claim(primary, ABOVE, "Mechanism.")
    assert text.startswith(claim) and text.endswith(
        ", and a deep teacher's last hidden layer transfers less than a shallow teacher's units of matched clean "
        "error. Mechanism.")
    assert "a deep teacher's last hidden layer transfers more" in verdicts.decomposition_claim(primary, BELOW, "")
    assert "no resolvable difference between a deep teacher's last hidden layer and a shallow teacher's units" in \
        verdicts.decomposition_claim(primary, AROUND, "")


def _decomposition_families(primary, st_aug=None):
    rows = [(study.SAME_INFORMATION, "ST", "weight decay", primary)]
    if st_aug is not None:
        rows += [(study.NOISE_MODEL, "noise augmentation", "ST", ABOVE),
                 (study.NOISE_MODEL, "ST + noise augmentation", "noise augmentation", st_aug)]
    return pd.DataFrame([{"family": f, "method": m, "reference": r, **c, "runs": 10} for f, m, r, c in rows])


@pytest.mark.parametrize("primary, st_aug, pre_vs_units, pieces, absent", [
    (ABOVE, None, ABOVE, ["Matching the pre-activations of those units did better still"], ["But without", "noise"]),
    (BELOW, None, AROUND, ["here weight decay does better than ST with the teacher's units."], ["pre-activations"]),
    (AROUND, ABOVE, AROUND, ["here no resolvable difference between ST with the teacher's units and weight decay "
                             "(+0.010 [-0.050, 0.070]).",
                             "With a noise model, add ST to noise augmentation: ST + noise augmentation beats"], []),
    (ABOVE, BELOW, AROUND, ["With a noise model, use noise augmentation alone: adding ST made it worse here."],
     ["But without"]),
    (ABOVE, AROUND, AROUND, ["With a noise model, use noise augmentation; no resolvable difference between ST + "
                             "noise augmentation and noise augmentation alone (+0.010 [-0.050, 0.070]) here."], []),
])
def test_decomposition_practice_follows_the_families(primary, st_aug, pre_vs_units, pieces, absent):
    text = verdicts.decomposition_practice(_decomposition_families(primary, st_aug), "weight decay", pre_vs_units)
    assert text.startswith("Match a layer whose units the student can adopt one by one")
    for piece in pieces:
        assert piece in text
    for piece in absent:
        assert piece not in text
    assert "as well as" not in text and "matches" not in text


# ---------------------------------------------------------------- chapters "Real images" and "MNIST-1D"
def test_length_verdict_reads_each_interval():
    r = {"length stopped": ABOVE, "length matched": AROUND, "length zero_loss": BELOW}
    text = verdicts.length_verdict(r)
    assert text == ("validation-stopped, the gain of ST over base is positive; at matched training loss it is not "
                    "resolvably different from zero; trained on to (near) zero loss it is negative")
    assert verdicts.length_verdict(r, end="after the continuation").endswith("after the continuation it is negative")


def _classification_families(**gains):
    rows = []
    for method, reference, family in (("ST", "denoise-then-teacher", study.SAME_INFORMATION),
                                      ("ST + weight decay", "weight decay", study.COMPLEMENT),
                                      ("ST from the teacher's weights", "fine-tuned teacher", study.COMPLEMENT),
                                      ("noise augmentation", "ST", study.NOISE_MODEL),
                                      ("ST + noise augmentation", "noise augmentation", study.NOISE_MODEL)):
        g = gains.get(method, 0.0)
        rows.append({"family": family, "method": method, "reference": reference, "gain": g, "low": g - 0.01,
                     "high": g + 0.01, "runs": 10})
    return {"families": pd.DataFrame(rows)}


def test_complement_advice_words_family_2_once_or_per_condition():
    one = pd.DataFrame({"family": [study.COMPLEMENT] * 2, "method": list(verdicts.COMPLEMENTS),
                        "reference": ["weight decay", "fine-tuned teacher"], "low": [-0.02, -0.03],
                        "high": [-0.01, 0.01]})
    assert verdicts.complement_advice(one) == (" As a complement, ST does not help here: weight decay beats ST + "
                                               "weight decay; ST from the teacher's weights and the fine-tuned teacher "
                                               "are not resolvably different.")
    per = pd.concat([one, one.assign(low=[0.01, -0.01], high=[0.03, -0.001])], ignore_index=True)
    assert verdicts.complement_advice(per) == (" As a complement, ST helps: ST + weight decay beats weight decay in "
                                               "1 of the 2 conditions (worse in 1); the fine-tuned teacher beats ST "
                                               "from the teacher's weights in 1 of the 2 conditions.")
    assert verdicts.complement_advice(one.iloc[:0]) == ""


def test_classification_practice_follows_the_families():
    text = verdicts.classification_practice(
        _classification_families(**{"noise augmentation": 0.05, "ST + noise augmentation": 0.02}))
    assert text.startswith("With the noise model at hand, train on fresh noise and add the ST term")
    assert "Without the noise model, ST and denoise-then-teacher are not resolvably different" in text
    text = verdicts.classification_practice(
        _classification_families(**{"noise augmentation": 0.05, "ST": 0.03, "ST + weight decay": 0.02}))
    assert "noise augmentation beats ST here, and adding the ST term to it gives no resolvable gain" in text
    assert "Without the noise model, use ST: it beats denoise-then-teacher" in text
    assert text.endswith("As a complement, ST helps: ST + weight decay beats weight decay; ST from the teacher's "
                         "weights and the fine-tuned teacher are not resolvably different.")
    text = verdicts.classification_practice(_classification_families(**{"ST": -0.03}))
    assert text.startswith("Even with the noise model at hand, noise augmentation and ST are not resolvably different")
    assert "use denoise-then-teacher: it beats ST" in text
    text = verdicts.classification_practice(_classification_families(**{"noise augmentation": -0.03}))
    assert text.startswith("Even with the noise model at hand, ST beats noise augmentation here.")
    text = verdicts.classification_practice(
        _classification_families(**{"noise augmentation": 0.05, "ST + noise augmentation": -0.03}))
    assert "noise augmentation beats ST here, and adding the ST term to it hurts." in text


# ---------------------------------------------------------------- chapter "Where ST helps"
def _gain_rows(comparison, cells):
    """Map rows (stlearn.experiments.where_st_helps.gains) of one comparison: (views, n, level, interval) each."""
    rows = []
    for views, n, level, c in cells:
        resolved = 1 if c["low"] > 0 else (-1 if c["high"] < 0 else 0)
        rows.append({"views": views, "n_train": n, "width": 32, "sigma": 0.5, "units": 3, "level": level,
                     "comparison": comparison, **c, "resolved": resolved, "method": "ST", "reference": "base"})
    return pd.DataFrame(rows)


def test_region_verdict_lists_the_resolved_cells_and_counts_the_rest():
    rows = _gain_rows("ST over base", [(1, 50, "1000 samples", AROUND), (16, 50, "1000 samples", ABOVE),
                                       (16, 800, "1000 samples", BELOW)])
    assert verdicts.region_verdict(rows, "ST over base", "ST", "base") == (
        "ST beats the base student in 1 of 3 cells: K = 16, n = 50 (+0.100 [0.020, 0.180]); the base student beats "
        "ST in K = 16, n = 800 (-0.100 [-0.180, -0.020]); no resolvable difference in the other 1.")
    calm = verdicts.region_verdict(rows.iloc[:1], "ST over base", "ST", "base")
    assert calm == ("ST beats the base student in 0 of 1 cells; ST is resolvably worse in none; no resolvable "
                    "difference in the other 1.")


def test_teacher_alone_verdict_separates_the_main_teacher_from_weaker_ones():
    rows = _gain_rows("teacher alone over best student", [(1, 50, "1000 samples", ABOVE), (1, 800, "1000 samples",
                                                                                           ABOVE),
                                                          (1, 50, "wrong target", BELOW), (1, 800, "15 samples", BELOW),
                                                          (1, 50, "15 samples", AROUND)])
    assert verdicts.teacher_alone_verdict(rows, "1000 samples") == (
        "With the 1000-sample teacher, the teacher alone beats the best student in 2 of 2 cells; a weaker teacher as "
        "it is loses to the best student in 2 of 3 cells (the wrong-target teacher at n = 50; the 15-sample teacher at "
        "n = 800) and beats it in none.")
    rows.loc[1, ["gain", "low", "high", "resolved"]] = [0.01, -0.05, 0.07, 0]
    assert verdicts.teacher_alone_verdict(rows.iloc[:2], "1000 samples") == (
        "With the 1000-sample teacher, the teacher alone beats the best student in 1 of 2 cells; not in K = 1, "
        "n = 800, width = 32, σ = 0.5, units = 3 (+0.010 [-0.050, 0.070]).")


def test_knowledge_map_verdict_reads_each_size():
    rows = _gain_rows("ST over base", [(1, 50, "15 samples", ABOVE), (1, 200, "15 samples", AROUND),
                                       (1, 800, "15 samples", BELOW)])
    assert verdicts.knowledge_map_verdict(rows, ["15 samples"]) == (
        "With the 15-sample teacher, ST helps at n = 50, hurts at n = 800 and makes no resolvable difference at "
        "n = 200. (One view each; against the base student.)")


def test_views_verdict_names_every_view_count_and_the_trend():
    families = pd.DataFrame([{"family": verdicts.SAME_INFORMATION, "method": "ST", "reference": "fine-tuned teacher",
                              **BELOW}])
    text = verdicts.views_verdict({1: AROUND, 16: ABOVE}, {50: ABOVE, 800: AROUND}, {1: families, 16: families})
    assert text.startswith("At the main sample size, no resolvable difference between ST and the base student "
                           "(+0.010 [-0.050, 0.070]) with K = 1; ST beats the base student (+0.100 [0.020, 0.180]) "
                           "with K = 16.")
    assert "is larger at n = 50 (+0.100 [0.020, 0.180]); not resolvably different at n = 800" in text
    assert text.endswith("with K = 16, the fine-tuned teacher beats ST (-0.100 [-0.180, -0.020]).")


def test_views_gain_verdict_names_every_view_count_and_the_trend():
    text = verdicts.views_gain_verdict({16: ABOVE, 1: AROUND, 4: BELOW}, AROUND, "ST + weight decay", "weight decay")
    assert text == ("With K = 1, no resolvable difference between ST + weight decay and weight decay "
                    "(+0.010 [-0.050, 0.070]); with K = 4, weight decay beats ST + weight decay "
                    "(-0.100 [-0.180, -0.020]); with K = 16, ST + weight decay beats weight decay "
                    "(+0.100 [0.020, 0.180]). With K = 16 views rather than 1, the gain of ST + weight decay over "
                    "weight decay is not resolvably different (+0.010 [-0.050, 0.070]).")
    assert verdicts.views_gain_verdict({1: BELOW, 4: ABOVE}, ABOVE, "ST", "base").endswith(
        "the gain of ST over the base student is larger (+0.100 [0.020, 0.180]).")


def test_views_family_verdict_gives_a_family_per_view_count():
    t = pd.DataFrame([{"family": verdicts.SAME_INFORMATION, "method": "ST", "reference": "fine-tuned teacher",
                       **BELOW}, {"family": "with a noise model", "method": "noise augmentation",
                                  "reference": "ST", **AROUND}])
    assert verdicts.views_family_verdict({4: t, 1: t}, verdicts.SAME_INFORMATION) == (
        "With K = 1, the fine-tuned teacher beats ST (-0.100 [-0.180, -0.020]); with K = 4, the fine-tuned teacher "
        "beats ST (-0.100 [-0.180, -0.020]).")
    assert verdicts.views_family_verdict({16: t}, "with a noise model") == (
        "With K = 16, no resolvable difference between noise augmentation and ST (+0.010 [-0.050, 0.070]).")


def test_where_finding_counts_the_teacher_alone_and_names_where_st_helps_most():
    alone = _gain_rows("teacher alone over best student", [(1, 50, "1000 samples", ABOVE), (1, 800, "1000 samples",
                                                                                           AROUND)])
    st = _gain_rows("ST over base", [(16, 50, "1000 samples", ABOVE), (16, 100, "1000 samples", ABOVE),
                                     (1, 800, "1000 samples", ABOVE), (4, 50, "1000 samples", BELOW)])
    assert verdicts.where_finding(pd.concat([alone, st]), st, "1000 samples") == (
        "The 1000-sample teacher alone beats the best student in 1 of 2 cells; ST beats the base student in 3 of 4 "
        "cells of the map over views and sample size and is resolvably worse in 1.")


def test_phrase_reads_a_teacher_of_a_level_as_it_is():
    assert verdicts.phrase("teacher as is, 100 samples") == "the 100-sample teacher as it is"
    assert verdicts.phrase("teacher as is") == "the teacher as it is"


def test_where_practice_counts_the_cells_behind_each_advice():
    alone = pd.concat([_gain_rows("teacher alone over best student", [(1, 50, "1000 samples", ABOVE)]),
                       _gain_rows("teacher alone over best student", [(1, 50, "100 samples", AROUND),
                                                                      (1, 800, "100 samples", BELOW)])])
    added = _gain_rows("ST + weight decay over weight decay", [(1, 50, "1000 samples", AROUND),
                                                               (16, 50, "1000 samples", ABOVE)])
    assert verdicts.where_practice(pd.concat([alone, added]), added, "1000 samples", "100 samples") == (
        "If a teacher trained on more clean samples than the student has is at hand, use it (fine-tuned, or as it "
        "is): the 1000-sample teacher alone beats every student in 1 of 1 cells. With a weaker one, train a student: "
        "the 100-sample teacher as it is loses to the best student at n = 800. In a student, the feature term "
        "added to tuned weight decay helped resolvably in 1 of 1 cells with several noisy views of each clean input "
        "and in 0 of 1 with one, and hurt resolvably in none: worth trying, chosen on validation, where the pairs "
        "come with several views. Whatever is used, stop on a labelled noisy validation set.")


def test_configuration_labels_read_as_words():
    words = {"lam=1": "λ = 1", "wd=0.001": "weight decay 0.001", "s=1sigma": "noise 1σ", "s=0.5σ": "noise 0.5σ",
             "alpha=0.5 T=4": "α = 0.5, T = 4", "rank=16": "rank 16", "λ = 0, step 89": "λ = 0, step 89",
             "ridge μ = 2.258e-4": "ridge μ = 2.258e-4"}
    assert {label: verdicts.config_words(label) for label in words} == words
