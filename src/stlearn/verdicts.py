"""Every sentence a verdict is made of, built from intervals: the one home of the book's words for numbers.

A paired comparison is ``{"gain", "low", "high", ...}`` (the mean gain of the first method over the second and
its 95% interval, :func:`stlearn.protocol.compare`). The rules (``CONTRIBUTING.md`` 4b): a verdict follows the
interval's side of 0; an interval that includes 0 is "no resolvable difference ... (+g [low, high])", never
"as well as" or "matches"; every number printed with an interval in the form of :func:`interval_text`.
The general builders come first, then one section per chapter with the builders of its verdicts; they take
plain data (intervals, tables, names), never a chapter's objects. Each builder is unit-tested case by case
(``tests/library/test_verdicts.py``).
"""

from __future__ import annotations

import re
from collections.abc import Collection

import pandas as pd

from .stats import ci_high, ci_low, fixed

SAME_INFORMATION = "same information"  # the primary family (stlearn.study)

# What a chapter's headline(claim=...) may name, in the order the findings page shows them: the paper's three
# claims (in our words, Hong et al. 2021), the chapter that maps where ST helps, and the real-data chapters
CLAIMS = {"1": "1. Do not train the student to zero training loss.",
          "2": "2. A knowledgeable teacher helps, within limits.",
          "3": "3. Well-decomposed knowledge transfers better.",
          "where": "Where ST helps: a structured target and several noisy views",
          "data": "On real data: digits, MNIST-1D and photographs"}


# method names that read as nouns with an article in a sentence (the others, "ST", "weight decay", read as they are)
PHRASES = {"base": "the base student", "fine-tuned teacher": "the fine-tuned teacher",
           "teacher as is": "the teacher as it is"}


def phrase(name: str) -> str:
    """A method's name as a sentence uses it: ``the fine-tuned teacher``, ``ST``; a teacher of a knowledge level
    applied as it is (``teacher as is, untrained``): ``the untrained teacher as it is``."""
    if name.startswith("teacher as is, "):
        return f"{teacher_phrase(name.removeprefix('teacher as is, '))} as it is"
    return PHRASES.get(name, name)


# a configuration's label (a study's key, e.g. "lam=1") as a reader reads it: code names to symbols and words
CONFIG_WORDS = ((r"\blam=", "λ = "), (r"\bwd=", "weight decay "), (r"\balpha=", "α = "), (r" T=", ", T = "),
                (r"\brank=", "rank "), (r"\bs=([0-9.e+-]+)(?:sigma|σ)", r"noise \1σ"))


def config_words(label: str) -> str:
    """A configuration label in words: ``"lam=1"`` -> ``"λ = 1"``, ``"wd=0.01"`` -> ``"weight decay 0.01"``,
    ``"s=1sigma"`` -> ``"noise 1σ"``, ``"alpha=0.5 T=4"`` -> ``"α = 0.5, T = 4"``, ``"rank=16"`` -> ``"rank 16"``."""
    for pattern, words in CONFIG_WORDS:
        label = re.sub(pattern, words, label)
    return label


# the header of a column of paired gains beside a "comparison" column that names "first vs second"
GAIN_HEADER = "first vs second (above 0: first better) [95% interval]"


def interval_text(comparison: dict[str, float], digits: int = 3) -> str:
    """A paired comparison as the book prints it: ``"+0.032 [0.003, 0.061]"`` (mean gain, 95% interval; no
    ``-0.000``, :func:`stlearn.stats.fixed`)."""
    return (f"{fixed(comparison['gain'], digits, signed=True)} [{fixed(comparison['low'], digits)}, "
            f"{fixed(comparison['high'], digits)}]")


def no_difference(comparison: dict[str, float], first: str, second: str, digits: int = 3) -> str:
    """The words for an interval that includes 0: never "as well as", always the interval that allows more."""
    return f"no resolvable difference between {first} and {second} ({interval_text(comparison, digits)})"


def by_sign(comparison: dict[str, float], above, below, neither):
    """``above`` if the interval of ``comparison`` lies above 0, ``below`` if below, else ``neither``."""
    if comparison["low"] > 0:
        return above
    if comparison["high"] < 0:
        return below
    return neither


def verdict(comparison: dict[str, float], method: str, reference: str) -> str:
    """Words for a paired comparison: which is better, or that the interval includes zero."""
    method, reference = phrase(method), phrase(reference)
    return by_sign(comparison, f"{method} beats {reference}", f"{reference} beats {method}",
                   f"no resolvable difference between {method} and {reference}")


def sentence(comparison: dict, method: str, reference: str, digits: int = 3) -> str:
    """``method`` against ``reference`` in words and numbers: who wins, or no resolvable difference."""
    method, reference = phrase(method), phrase(reference)
    words = by_sign(comparison, f"{method} beats {reference}", f"{reference} beats {method}",
                             f"no resolvable difference between {method} and {reference}")
    return f"{words} ({interval_text(comparison, digits)})"


def family_verdict(table: pd.DataFrame, family: str, digits: int = 3) -> str:
    """A family's comparisons as one sentence (gain of the first method named, 95% interval)."""
    rows = table[table.family == family]
    if rows.empty:
        return f"not run here ({family})"
    text = "; ".join(sentence(row, row["method"], row["reference"], digits) for row in rows.to_dict("records"))
    return text[0].upper() + text[1:] + "."


COMPLEMENTS = ("ST + weight decay", "ST from the teacher's weights")  # family 2, each against its partner


def complement_advice(families: pd.DataFrame) -> str:
    """The advice of family 2 (one row per comparison, or one per comparison and condition): where adding the
    feature term to tuned weight decay or to the fine-tuned teacher resolvably helps or hurts; '' if not run."""
    rows = families[families.method.isin(COMPLEMENTS)]
    if rows.empty:
        return ""
    several = rows.method.duplicated().any()  # one row per condition: count them
    parts = []
    for method, g in rows.groupby("method", sort=False):
        wins, losses, reference = int((g.low > 0).sum()), int((g.high < 0).sum()), phrase(g.reference.iloc[0])
        where = f" in {wins} of the {len(g)} conditions" if several else ""
        if wins:
            parts.append(f"{method} beats {reference}{where}" + (f" (worse in {losses})" if several else ""))
        elif losses:
            parts.append(f"{reference} beats {method}" + (f" in {losses} of the {len(g)} conditions" if several
                                                          else ""))
        else:
            parts.append(f"{method} and {reference} are not resolvably different" + (" in any condition"
                                                                                    if several else ""))
    helps = (rows.low > 0).any()
    return (" As a complement, ST helps: " if helps else " As a complement, ST does not help here: ") + \
        "; ".join(parts) + "."


# ---------------------------------------------------------------- chapter "Training to zero loss erases the teacher"
def yardstick_verdict(table: pd.DataFrame) -> str:
    """One sentence for the trained rows of :func:`stlearn.experiments.zero_loss.against_yardstick` (every depth
    and lam; ``verdict`` is who the interval favours: ``student``, ``ridge`` or ``neither``)."""
    counts = table[table.trained].verdict.value_counts()
    n = int(counts.sum())
    if counts.get("ridge", 0) == n:
        return "tuned ridge beats every interpolating student, base and ST, at every depth and weight"
    if counts.get("student", 0) == n:
        return "every interpolating student, base and ST, beats tuned ridge"
    if counts.get("neither", 0) == n:
        return "no resolvable difference between any interpolating student and tuned ridge"
    return (f"of the {n} interpolating students, tuned ridge beats {counts.get('ridge', 0)}, "
            f"{counts.get('student', 0)} beat it, and {counts.get('neither', 0)} show no resolvable difference")


# ---------------------------------------------------------------- chapter "Early stopping in wide ReLU networks"
def shrink_verdict(shrink: dict) -> str:
    """Words for the validation-stopped gain minus the gain at matched training loss, one interval per config."""
    groups = {"resolvably above 0": [c for c, v in shrink.items() if v["low"] > 0],
              "resolvably below 0": [c for c, v in shrink.items() if v["high"] < 0],
              "not resolvably different from 0": [c for c, v in shrink.items() if v["low"] <= 0 <= v["high"]]}
    parts = [f"{words} for {'every lambda' if len(configs) == len(shrink) else ', '.join(configs)}"
             for words, configs in groups.items() if configs]
    text = "; ".join(parts)
    if len(groups["resolvably above 0"]) == len(shrink):
        text += ": at equal training loss the teacher's gain is smaller than where validation stops it"
    return text


def early_stopping_claim(st_over_base: dict, zero_gains: pd.DataFrame, families: pd.DataFrame) -> str:
    """The answer to "does the paper's first claim hold here?", from the intervals.

    ``st_over_base``: the paired comparison of validation-selected ST with the base student;
    ``zero_gains``: per (config, seed) the gain at zero loss (``gain_zero_loss_test``); ``families``: the
    study's comparisons (:attr:`stlearn.study.StudyResult.comparisons`), whose first row is the primary.
    """
    early = "Early stopped on validation, ST " + by_sign(
        st_over_base, "beats the base student", "is worse than the base student",
        "does not resolvably beat the base student")
    highs = zero_gains.groupby("config").gain_zero_loss_test.agg(ci_high)
    lows = zero_gains.groupby("config").gain_zero_loss_test.agg(ci_low)
    if (lows > 0).any():
        zero = "some ST students keep a resolvable gain at zero training loss, unlike the linear theorem"
    elif (highs < 0).all():
        zero = ("trained on to zero loss, every ST student ends resolvably worse than the base student, so the "
                "advice not to train to zero loss holds with force")
    elif (highs < 0).any():
        zero = ("trained on to zero loss, no ST student keeps a gain and some end resolvably worse than the base "
                "student, so the advice not to train to zero loss holds with force")
    else:
        zero = "trained on to zero loss, no ST student keeps a resolvable gain, as the linear theorem predicts"
    primary = families[families.family == SAME_INFORMATION].iloc[0]
    return (f"{early}; {zero}. Against the strongest method of the same information: "
            f"{sentence(primary, primary.method, primary.reference)}.")


def early_stopping_practice(families: pd.DataFrame) -> str:
    """The chapter's advice, from the three families: ST as a replacement, as a complement, with a noise model."""
    rows = {(r.family, r.method): r for r in families.itertuples(index=False)}
    primary = next(r for (f, _), r in rows.items() if f == SAME_INFORMATION)
    ref = phrase(primary.reference)
    if primary.low > 0:
        head = f"With only the pairs and the teacher, ST is worth its teacher here: it beats {ref}."
    else:
        found = (f"{ref} is better than ST" if primary.high < 0
                 else f"there is no resolvable difference between ST and {ref}")
        head = f"With only the pairs and the teacher, start from {ref}: {found}."
    helps = [r for (f, _), r in rows.items() if f != SAME_INFORMATION and r.method.startswith("ST")
             and r.low > 0]
    hurts = [r for (f, _), r in rows.items() if f != SAME_INFORMATION and r.method.startswith("ST")
             and r.high < 0]
    if helps:
        head += (" On top of another method the feature term does help: "
                 + "; ".join(f"{r.method} beats {phrase(r.reference)} ({interval_text(r._asdict())})"
                             for r in helps) + ".")
    if hurts:
        head += (" It hurts on top of " + ", ".join(phrase(r.reference) for r in hurts) + ".")
    return head + " Whatever is used, stop on a labelled noisy validation set."


# ---------------------------------------------------------------- chapter "How knowledgeable must the teacher be?"
# A knowledge level is named as in stlearn.experiments.nonlinear_teacher_knowledge.level_names: "untrained",
# "wrong target", "<n> samples".
def teacher_phrase(level: str) -> str:
    """``the untrained teacher``, ``the wrong-target teacher``, ``the 1000-sample teacher``."""
    size = level.removesuffix(" samples")
    return f"the {size}-sample teacher" if size != level else f"the {level.replace(' ', '-')} teacher"


def _listed(levels) -> str:
    """``the untrained teacher``, ``the untrained teacher and the wrong-target teacher``, ``a, b and c``."""
    names = [teacher_phrase(l) for l in levels]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _hurting(gains: pd.DataFrame, column: str, by_lam: bool = False) -> list[str]:
    """``teacher at condition (and lam)`` for every gain whose interval lies below zero."""
    keys = ["n_train", "sigma", "level", *(["lam"] if by_lam else [])]
    highs = gains.groupby(keys)[column].agg(ci_high)
    found = []
    for key, high in highs.items():
        if high < 0:
            n, s, level, *lam = key
            found.append(f"{teacher_phrase(level)} at n = {n}, σ = {s:g}" + (f", λ = {lam[0]:g}" if lam else ""))
    return found


def teacher_knowledge_claim(primary: dict, untrained: dict, level_per: pd.DataFrame, lam_per: pd.DataFrame,
                            best: str) -> str:
    """The answer to "does a knowledgeable teacher help, within limits?", from the intervals.

    ``primary``: ST with ``best`` against ST with the untrained teacher, pooled; ``untrained``: the untrained
    teacher's pooled gain over base; ``level_per`` / ``lam_per``: the per-condition gains at validation-selected
    and at fixed lam (``all_level_gains``, ``all_lambda_gains`` of the chapter's module).
    """
    who = f"ST with {teacher_phrase(best)}"
    knows = by_sign(
        primary, f"Knowledge helps beyond what a random teacher gives: {who} beats ST with the untrained teacher",
        f"Knowledge hurts: {who} is worse than ST with the untrained teacher",
        "Beyond what a random teacher gives, the teacher's knowledge adds no resolvable gain")
    zero = by_sign(
        untrained, "but part of ST's gain over the base student needs no knowledge: the untrained teacher "
        "resolvably helps as well", "and the untrained teacher resolvably hurts the student",
        "and the untrained teacher gives no resolvable gain over the base student")
    hurt_selected = _hurting(level_per, "over_base")
    hurt_fixed = _hurting(lam_per.rename(columns={"gain": "over_base"}), "over_base", by_lam=True)
    if hurt_selected:
        limit = ("With λ chosen on validation, a teacher still resolvably hurts the student "
                 f"({'; '.join(hurt_selected)}), the limit the paper describes")
    elif hurt_fixed:
        limit = ("With λ chosen on validation no teacher resolvably hurts; at a fixed λ some do "
                 f"({'; '.join(hurt_fixed)}), so the paper's limit is real but a validation set avoids it")
    else:
        limit = ("No teacher, however weak, resolvably hurts the student, with λ chosen on validation or at any "
                 "fixed λ tried: the limit the paper describes did not appear here")
    return f"{knows}, {zero}. {limit}."


def helps_base_verdict(over_base: dict, levels) -> str:
    """Words for the pooled gain of ST over the base student with each teacher (``over_base[level]``: an
    interval): which teachers resolvably help it, hurt it, or neither."""
    helps = [l for l in levels if over_base[l]["low"] > 0]
    hurts = [l for l in levels if over_base[l]["high"] < 0]
    unresolved = [l for l in levels if l not in helps and l not in hurts]
    if len(helps) == len(levels):
        return "every teacher helps the base student resolvably, the untrained and the wrong-target ones included"
    if len(unresolved) == len(levels):
        return "no teacher, trained or not, resolvably helps or hurts the base student"
    parts = [f"{_listed(helps)} resolvably help{'s' if len(helps) == 1 else ''} the base student"] if helps else []
    if hurts:
        parts.append(f"{_listed(hurts)} resolvably hurt{'s' if len(hurts) == 1 else ''} it")
    if unresolved:
        parts.append(f"with {_listed(unresolved)} the difference is not resolvable")
    return "; ".join(parts)


def describe_crossover(c: dict, what: str) -> str:
    """Words for where a gain changes sign along the knowledge ladder (the chapter module's ``crossover``)."""
    if c["bracket"] is not None:
        a, b = c["bracket"]
        return (f"{what} crosses zero between {teacher_phrase(a)} (resolvably below zero) and "
                f"{teacher_phrase(b)} (resolvably above)")
    if c["hurts"]:
        return (f"{what} is resolvably below zero for {', '.join(map(teacher_phrase, c['hurts']))}, and no more "
                f"knowledgeable teacher is resolvably above")
    if c["helps"]:
        return (f"{what} is never resolvably below zero, and resolvably above zero for "
                f"{', '.join(map(teacher_phrase, c['helps']))}")
    return f"{what} is not resolvably different from zero for any teacher"


def counted(families: pd.DataFrame, method: str) -> dict[str, int]:
    """Over the conditions, how often ``method``'s comparison in ``families`` (one row per condition) is won,
    lost or unresolved: ``{"wins", "losses", "ties", "of"}``."""
    rows = families[families.method == method]
    return {"wins": int((rows.low > 0).sum()), "losses": int((rows.high < 0).sum()),
            "ties": int(((rows.low <= 0) & (rows.high >= 0)).sum()), "of": len(rows)}


def count_words(families: pd.DataFrame, method: str, reference: str) -> str:
    """Words for :func:`counted`: in how many conditions ``method`` beats ``reference``, loses, or neither."""
    c = counted(families, method)
    return (f"{method} beats {reference} in {c['wins']} of the {c['of']} conditions, {reference} beats it in "
            f"{c['losses']}, and in {c['ties']} there is no resolvable difference")


def teacher_knowledge_practice(families: pd.DataFrame, primary: dict, best: str) -> str:
    """The chapter's advice, from the three families in every condition (one row per comparison and condition)
    and the primary comparison of teachers."""
    who = f"ST with {teacher_phrase(best)}"
    one, aug, both = (counted(families, m) for m in ("ST", "noise augmentation", "ST + noise augmentation"))
    if one["wins"] == 0:
        head = (f"Without a noise model, try the simple methods first: the strongest of them on validation beats "
                f"{who} in {one['losses']} of the {one['of']} conditions"
                + (f", and in the other {one['ties']} there is no resolvable difference." if one["ties"] else "."))
    else:
        head = (f"Without a noise model, {who} beats the strongest simple method of the same information in "
                f"{one['wins']} of the {one['of']} conditions (and loses to it in {one['losses']}).")
    text = head + complement_advice(families)
    if aug["of"]:
        text += (f" With a noise model, noise augmentation beats the strongest method without one in "
                 f"{aug['wins']} of the {aug['of']} conditions")
        if both["wins"]:
            text += (f", and ST complements it: ST + noise augmentation beats noise augmentation in {both['wins']} "
                     f"of the {both['of']} conditions (worse in {both['losses']}).")
        else:
            text += (f"; adding ST to it beats it in no condition (worse in {both['losses']} of the {both['of']}, "
                     "no resolvable difference in the others).")
    if primary["low"] > 0:
        text += (" If ST is used, a teacher that knows the target is worth having (it beats a random one), and "
                 "λ should be chosen on a labelled validation set, 0 included.")
    else:
        text += (" If ST is used: " + no_difference(primary, "a knowledgeable teacher", "a random one")
                 + " here; choose λ on a labelled validation set, 0 included.")
    return text


# ---------------------------------------------------------------- chapter "How the teacher decomposes its knowledge"
def equivalent(comparison: dict, margin: float) -> bool:
    """Whether the 95% interval lies inside ``(-margin, margin)``."""
    return comparison["low"] > -margin and comparison["high"] < margin


def equivalence_verdict(comparison: dict, margin: float, what: str) -> str:
    """Words for a null control: ``what`` changed nothing (within the margin), or did, or we cannot tell."""
    if equivalent(comparison, margin):
        return f"{what} changes the test error by less than {margin:g} either way (its 95% interval lies inside)"
    if comparison["low"] > 0 or comparison["high"] < 0:
        return f"{what} changes the test error: the 95% interval excludes 0"
    return f"{what} changes nothing resolvable, but the 95% interval reaches beyond ±{margin:g}"


def rotation_order(gains: pd.Series, at_base: Collection[str] = ()) -> str:
    """Words for the mean gains over base along the rotations (``gains``, in the order of theta); a rotation of
    ``at_base``, whose ST validation chose lambda = 0 in every run (the base student itself, a gain of exactly 0
    by construction), says so instead of "+0.000"."""
    listed = ", ".join(f"{name} " + ("0 (λ = 0 chosen in every run)" if name in at_base else fixed(gain, signed=True))
                       for name, gain in gains.items())  # signed, as every effect
    if bool((gains.diff().dropna() < 0).all()):
        return f"Smaller rotations cost less: the mean gain over base falls at every step of θ ({listed})"
    return f"The mean gain over base does not fall at every step of θ ({listed})"


def penalty_verdict(post: dict, control: dict, reduction: dict, control_name: str) -> str:
    """Words for what a control does to the rotation penalty (``post``: the penalty under post-ReLU matching,
    ``control``: under the control, ``reduction``: their paired difference)."""
    if control["high"] < post["low"] and reduction["low"] > 0 and control["low"] <= 0 <= control["high"]:
        return f"{control_name} removes the rotation penalty: it is no longer resolvable, and resolvably smaller"
    if reduction["low"] > 0:
        return (f"{control_name} reduces the rotation penalty resolvably, but does not remove it"
                if control["low"] > 0 else f"{control_name} removes the rotation penalty")
    if reduction["high"] < 0:
        return f"{control_name} increases the rotation penalty"
    return f"{control_name} leaves the rotation penalty where it was (no resolvable change)"


def mechanism_verdict(pre: dict, reduction_pre: dict, connector_null: dict, reduction_connector: dict,
                      units_vs_connector: dict) -> str:
    """The answer to "is the rotation's cost mechanical?", from the controls' intervals.

    ``pre``: the rotation's cost with pre-activations; ``reduction_pre``: the cost with post-ReLU features
    minus that; ``connector_null``: the cost under a connector; ``reduction_connector``: the post-ReLU cost
    minus it; ``units_vs_connector``: the gain of the units matched directly over the units through a connector.
    """
    if reduction_pre["low"] > 0:
        first = ("The sign constraint of ReLU features accounts for the rotation's cost: with pre-activations, "
                 "which the student's first layer can reach in any rotation, it is resolvably smaller"
                 + ("" if pre["low"] > 0 else ", and no longer resolvable"))
    elif pre["low"] > 0:
        first = ("The rotation's cost is not the sign constraint of ReLU features: matching pre-activations, "
                 "which the student's first layer can reach in any rotation, pays it too"
                 + (" (no resolvable reduction)" if reduction_pre["high"] >= 0 else ", and more"))
    else:
        first = "With pre-activations the rotation's cost is not resolvable, nor resolvably smaller"
    if connector_null["low"] <= 0 <= connector_null["high"] and reduction_connector["low"] > 0:
        second = "a learned connector makes the layout irrelevant, as the symmetry says it must"
        if units_vs_connector["low"] > 0:
            second += (", but transfers resolvably less than the units matched directly: what the aligned "
                       "teacher gives is its decomposition, a target for each student unit, not only "
                       "information that a rotation would hide")
        elif units_vs_connector["high"] < 0:
            second += ", and transfers more than the units matched directly"
        else:
            second += (", and " + no_difference(units_vs_connector, "it", "the units matched directly")
                       + ", consistent with rotated features that hold the same usable knowledge and a mechanical "
                       "cost of rotation")
    else:
        second = "the connector control does not make the layout irrelevant here, which calls the set-up into doubt"
    return f"{first}; {second}."


def decomposition_short_answer(primary: dict) -> str:
    """The primary comparison (the units over their rotation) in a few words, for the book's table of findings."""
    return by_sign(primary, "Holds: the teacher's units transfer better than a rotation of them",
                   "Reversed: a rotation of the teacher's units transfers better than the units",
                   "Not resolved: " + no_difference(primary, "the units", "their rotation"))


def decomposition_claim(primary: dict, deep_vs_matched: dict, mechanism: str) -> str:
    """The answer to "does the paper's claim hold here?", from the primary comparison and the controls
    (``mechanism``: :func:`mechanism_verdict`)."""
    head = by_sign(primary, "Yes, for this family of teachers: with the teacher's function fixed, its own "
                   "units transfer better than a rotation of them",
                   "No: a rotation of the teacher's units transfers better than the units themselves",
                   "Not resolvably: " + no_difference(primary, "the units", "their rotation"))
    deep = by_sign(
        deep_vs_matched,
        "a deep teacher's last hidden layer transfers less than a shallow teacher's units of matched clean error",
        "a deep teacher's last hidden layer transfers more than a shallow teacher's units of matched clean error",
        no_difference(deep_vs_matched, "a deep teacher's last hidden layer",
                      "a shallow teacher's units of matched clean error"))
    return f"{head}, and {deep}. {mechanism}"


def decomposition_practice(families: pd.DataFrame, strongest: str, pre_vs_units: dict) -> str:
    """The chapter's advice, from the book's families (:attr:`stlearn.study.StudyResult.comparisons`; family 1:
    ST with the teacher's units against ``strongest``, in words) and the comparison of pre-activations with
    post-ReLU units."""
    rows = families.set_index("method")
    text = ("Match a layer whose units the student can adopt one by one (same architecture, same layer, no "
            "mixing between teacher and student), and expect less from features that are mixtures of units, "
            "whatever the teacher's accuracy.")
    if pre_vs_units["low"] > 0:
        text += " Matching the pre-activations of those units did better still than matching them after the ReLU."
    one = families[families.family == SAME_INFORMATION].iloc[0]
    if one.low <= 0:
        found = (f"{strongest} does better than ST with the teacher's units" if one.high < 0 else
                 no_difference(one, "ST with the teacher's units", strongest))
        text += f" But without a noise model try the simple methods first: here {found}."
    text += complement_advice(families)
    if "ST + noise augmentation" in rows.index:
        both = rows.loc["ST + noise augmentation"]
        text += by_sign(
            both, " With a noise model, add ST to noise augmentation: ST + noise augmentation beats noise "
            "augmentation alone here.", " With a noise model, use noise augmentation alone: adding ST made it worse "
            "here.", " With a noise model, use noise augmentation; " + no_difference(
                both, "ST + noise augmentation", "noise augmentation alone") + " here.")
    return text


# ---------------------------------------------------------------- chapters "Real images" and "MNIST-1D"
# ``r`` is the readouts of one architecture (stlearn.experiments.classification.readouts): its ``families``
# and the intervals ``length stopped``, ``length matched``, ``length zero_loss``.
def length_verdict(r: dict, end: str = "trained on to (near) zero loss") -> str:
    """What training length does to ST's gain over base (factor 1), from the three intervals.

    ``end`` describes the end of the continuation (say so where the training loss is not near zero).
    """
    words = {p: by_sign(r[f"length {p}"], "positive", "negative", "not resolvably different from zero")
             for p in ("stopped", "matched", "zero_loss")}
    return (f"validation-stopped, the gain of ST over base is {words['stopped']}; at matched training loss it is "
            f"{words['matched']}; {end} it is {words['zero_loss']}")


def classification_practice(r: dict) -> str:
    """The chapter's advice from the three families: with the noise model, without it, and ST as a complement
    wherever it wins."""
    c = r["families"].set_index("method")
    rows = {m: c.loc[m].to_dict() for m in c.index}
    words = []
    if "noise augmentation" in rows:
        aug, st_aug = rows["noise augmentation"], rows.get("ST + noise augmentation")
        ref = phrase(aug["reference"])
        if st_aug is not None and st_aug["low"] > 0:
            words.append("With the noise model at hand, train on fresh noise and add the ST term: ST + noise "
                         "augmentation beats noise augmentation here.")
        elif aug["low"] > 0:
            words.append(f"With the noise model at hand, train on fresh noise: noise augmentation beats "
                         f"{ref} here" + ("" if st_aug is None else ", and adding the ST term to it "
                                                         "gives no resolvable gain" if st_aug["high"] >= 0 else
                                                         ", and adding the ST term to it hurts") + ".")
        else:
            words.append(by_sign(aug, "", f"Even with the noise model at hand, {ref} beats "
                                          f"noise augmentation here.",
                                 f"Even with the noise model at hand, noise augmentation and "
                                 f"{ref} are not resolvably different here; choose between "
                                 f"them on validation."))
    first = rows["ST"]
    ref = phrase(first["reference"])
    words.append(by_sign(first, f"Without the noise model, use ST: it beats {ref}, the "
                                f"strongest method with the same information.",
                         f"Without the noise model, use {ref}: it beats ST.",
                         f"Without the noise model, ST and {ref} are not resolvably "
                         f"different; choose on validation."))
    return " ".join(words) + complement_advice(r["families"])


def per_views(items: dict, clause) -> str:
    """``clause(item)`` for each number of views ``K`` (``{K: item}``, fewest first), as ``with K = 1, ...; with
    K = 4, ...``."""
    return "; ".join(f"with K = {k}, {_lower(clause(v))}" for k, v in sorted(items.items()))


def views_gain_verdict(per_k: dict[int, dict], trend: dict, method: str, reference: str) -> str:
    """``method`` against ``reference`` per number of fixed noisy views ``K`` (``{K: comparison}``), and how much
    more ``method`` gains with the most views than with the fewest (``trend``, an interval paired by run)."""
    clauses = per_views(per_k, lambda c: sentence(c, method, reference))
    grows = by_sign(trend, "larger", "smaller", "not resolvably different")
    return (f"{clauses[0].upper() + clauses[1:]}. With K = {max(per_k)} views rather than {min(per_k)}, the gain of "
            f"{phrase(method)} over {phrase(reference)} is {grows} ({interval_text(trend)}).")


def views_family_verdict(tables: dict[int, pd.DataFrame], family: str) -> str:
    """One family's comparisons (:func:`family_verdict`) per number of views ``K`` (``{K: comparisons table}``)."""
    clauses = per_views(tables, lambda t: family_verdict(t, family)[:-1])
    return clauses[0].upper() + clauses[1:] + "."


# -------------------------------------------------------- chapter "Student-teacher denoising of real photographs"
def denoising_levels(by_level: pd.DataFrame, skip: float | None = None) -> str:
    """The comparisons at every noise level but ``skip`` (:func:`stlearn.experiments.denoising.level_verdicts`),
    in words."""
    parts = []
    for s, g in by_level.groupby("σ", sort=False):
        if skip is not None and float(s) == float(skip):
            continue
        words = "; ".join(sentence(r, r["method"], r["against"], 2) for r in g.to_dict("records"))
        parts.append(f"at σ = {s}, {words}")
    return ("; ".join(parts) + ".") if parts else "none were run."


# what each comparison's interval means above, below or around 0 ({ref}: its reference), in the advice's order
DENOISING_WORDS = {
    "ST": ("with only the clean/noisy pairs and the teacher, use ST: it beats {ref}",
           "with only the clean/noisy pairs and the teacher, {ref} beats ST",
           "with only the clean/noisy pairs and the teacher, ST and {ref} are not told apart"),
    **{m: ("as a complement, the feature term adds to {ref}", "as a complement, the feature term hurts {ref}",
           "as a complement to {ref}, the feature term gains nothing resolvable") for m in COMPLEMENTS},
    "noise augmentation": ("with a noise model, train with fresh noise: noise augmentation beats {ref}",
                           "even with a noise model, {ref} beats noise augmentation",
                           "with a noise model, noise augmentation and {ref} are not told apart"),
    "ST + noise augmentation": ("and ST adds to noise augmentation", "and ST hurts noise augmentation",
                                "and ST adds nothing resolvable to noise augmentation"),
}


def denoising_advice(comparisons: pd.DataFrame) -> str:
    """The practical reading of the three families (computed from their verdicts, never typed)."""
    rows = comparisons.set_index("method")
    out = [by_sign(rows.loc[m], *(w.format(ref=phrase(rows.loc[m].reference)) for w in words))
           + f" ({interval_text(rows.loc[m], 2)} dB)" for m, words in DENOISING_WORDS.items() if m in rows.index]
    text = "; ".join(out)
    return text[0].upper() + text[1:] + "."


# ---------------------------------------------------------------- chapter "Where ST helps"
# A cell's gains are rows of stlearn.experiments.where_st_helps.gains: its axes (views, n_train, width, sigma, units),
# its level, the comparison ("ST over base", ...), gain, low, high, resolved (+1, -1, 0), method and reference.
CELL_AXES = {"views": "K", "n_train": "n", "width": "width", "sigma": "σ", "units": "units"}  # as the text names them


def cell_words(row, axes=("views", "n_train")) -> str:
    """A cell in words: ``K = 16, n = 50``."""
    return ", ".join(f"{CELL_AXES[a]} = {row[a]:g}" for a in axes)


def _cells(rows: pd.DataFrame, axes) -> str:
    """The cells of ``rows`` with their gains: ``K = 16, n = 50 (+0.168 [0.096, 0.240])``, joined by commas."""
    return ", ".join(f"{cell_words(r, axes)} ({interval_text(r)})" for r in rows.to_dict("records"))


def gain_words(gains: pd.DataFrame, keys) -> pd.DataFrame:
    """Gains for readers: the ``keys`` columns, the paired gain (:data:`GAIN_HEADER`) and the verdict."""
    return pd.DataFrame({**{k: gains[k].to_numpy() for k in keys},
                         GAIN_HEADER: [interval_text(r) for r in gains.to_dict("records")],
                         "verdict": [verdict(r, r["method"], r["reference"]) for r in gains.to_dict("records")]})


def region_verdict(gains: pd.DataFrame, comparison: str, first: str, second: str,
                   axes=("views", "n_train")) -> str:
    """Where in the map ``first`` resolvably beats ``second``, where it resolvably loses, and how many cells are
    neither."""
    rows = gains[gains.comparison == comparison].sort_values(list(axes))
    better, worse = rows[rows.resolved > 0], rows[rows.resolved < 0]
    first, second = phrase(first), phrase(second)
    text = (f"{first} beats {second} in {len(better)} of {len(rows)} cells"
            + (f": {_cells(better, axes)}" if len(better) else ""))
    text += (f"; {second} beats {first} in {_cells(worse, axes)}" if len(worse) else
             f"; {first} is resolvably worse in none")
    rest = len(rows) - len(better) - len(worse)
    return text[0].upper() + text[1:] + f"; no resolvable difference in the other {rest}."


def teacher_alone_verdict(gains: pd.DataFrame, main: str) -> str:
    """Where the teacher alone (as it is or fine-tuned) beats every student, with the main teacher (naming the cells
    where it does not) and with weaker ones."""
    rows = gains[gains.comparison.str.startswith("teacher alone")]
    strong, weak = rows[rows.level == main], rows[rows.level != main]
    short = strong[strong.resolved <= 0].sort_values(["sigma", "width", "views", "n_train"])
    text = (f"with {teacher_phrase(main)}, the teacher alone beats the best student in {(strong.resolved > 0).sum()} "
            f"of {len(strong)} cells" + (f"; not in {_cells(short, tuple(CELL_AXES))}"
                                         if len(short) else ""))
    if len(weak):
        lost = weak[weak.resolved < 0]
        text += (f"; a weaker teacher as it is loses to the best student in {len(lost)} of {len(weak)} cells"
                 + (f" ({_level_cells(lost)})" if len(lost) else "")
                 + f" and beats it in {_count((weak.resolved > 0).sum())}")
    return text[0].upper() + text[1:] + "."


def where_finding(gains: pd.DataFrame, map_gains: pd.DataFrame, main: str) -> str:
    """The chapter's finding in one sentence: how often the main teacher alone beats every student, and where in the
    map over views and sample size ST beats the base student."""
    alone = gains[gains.comparison.str.startswith("teacher alone") & (gains.level == main)]
    st = map_gains[map_gains.comparison == "ST over base"]
    better, worse = (st.resolved > 0).sum(), (st.resolved < 0).sum()
    return (f"{teacher_phrase(main)[0].upper()}{teacher_phrase(main)[1:]} alone beats the best student in "
            f"{(alone.resolved > 0).sum()} of {len(alone)} cells; ST beats the base student in {better} of "
            f"{len(st)} cells of the map over views and sample size and is resolvably worse in "
            f"{_count(worse)}.")


def _count(k: int) -> str:
    """A count as a sentence ends with it: ``none``, ``1``, ``3``."""
    return "none" if k == 0 else f"{k}"


def where_practice(gains: pd.DataFrame, map_gains: pd.DataFrame, main: str, weaker: str) -> str:
    """The chapter's advice from its counts: when to use the teacher alone, and when to add the feature term to a
    student (by the number of views)."""
    alone = gains[gains.comparison.str.startswith("teacher alone")]
    strong = alone[alone.level == main]
    weak = alone[(alone.level == weaker) & (alone.resolved < 0)].n_train.sort_values()
    text = (f"If a teacher trained on more clean samples than the student has is at hand, use it (fine-tuned, or as "
            f"it is): {teacher_phrase(main)} alone beats every student in {(strong.resolved > 0).sum()} of "
            f"{len(strong)} cells. ")
    if len(weak):
        text += (f"With a weaker one, train a student: {teacher_phrase(weaker)} as it is loses to the best student "
                 f"at n = {', '.join(f'{n:g}' for n in weak)}. ")
    added = map_gains[map_gains.comparison == "ST + weight decay over weight decay"]
    many, one = added[added.views > added.views.min()], added[added.views == added.views.min()]
    text += (f"In a student, the feature term added to tuned weight decay helped resolvably in "
             f"{(many.resolved > 0).sum()} of {len(many)} cells with several noisy views of each clean input and in "
             f"{(one.resolved > 0).sum()} of {len(one)} with one, and hurt resolvably in "
             f"{_count((added.resolved < 0).sum())}: worth trying, chosen on validation, where the pairs come with "
             "several views. Whatever is used, stop on a labelled noisy validation set.")
    return text


def _level_cells(rows: pd.DataFrame) -> str:
    """``the wrong-target teacher at n = 50, 200, 800; the 15-sample teacher at n = 800``."""
    return "; ".join(f"{teacher_phrase(level)} at n = {', '.join(f'{n:g}' for n in sorted(g.n_train))}"
                     for level, g in rows.groupby("level", sort=False))


def views_verdict(st_over_base: dict, trend: dict, families: dict) -> str:
    """ST against the base student per number of views (``{K: comparison}``), and how much more it gains with the
    most views than with the fewest (``{n: interval}``, paired by run)."""
    per_k = "; ".join(f"{sentence(c, 'ST', 'base')} with K = {k}" for k, c in sorted(st_over_base.items()))
    per_k = "At the main sample size, " + _lower(per_k)
    most, fewest = max(st_over_base), min(st_over_base)
    grows = "; ".join(f"{by_sign(c, 'larger', 'smaller', 'not resolvably different')} at n = {n:g} "
                      f"({interval_text(c)})" for n, c in sorted(trend.items()))
    same = [f"with K = {k}, {_lower(family_verdict(t, SAME_INFORMATION)[:-1])}" for k, t in sorted(families.items())]
    return (f"{per_k[0].upper() + per_k[1:]}. With K = {most} views rather than {fewest}, ST's gain over the base "
            f"student is {grows}. Against the strongest method of the same information, {'; '.join(same)}.")


def burst_verdict(st_over_base: dict, trend: dict, families: dict, st_over_aug: dict, digits: int = 2) -> str:
    """The burst design (``K`` fixed noisy views of each training input, per ``{K: comparison}``): ST against the
    base student and against the strongest method of the same information per ``K``, how much more ST gains
    over base with the most views than with the fewest (``trend``, paired by run) and ST against noise
    augmentation, which needs the noise model."""
    most, fewest = max(st_over_base), min(st_over_base)
    base = per_views(st_over_base, lambda c: sentence(c, "ST", "base", digits))
    same = per_views(families, lambda t: family_verdict(t, SAME_INFORMATION, digits)[:-1])
    aug = per_views(st_over_aug, lambda c: sentence(c, "ST", "noise augmentation", digits))
    grows = by_sign(trend, "larger", "smaller", "not resolvably different")
    return (f"{base[0].upper() + base[1:]}. With K = {most} views rather than {fewest}, ST's gain over the base "
            f"student is {grows} ({interval_text(trend, digits)}). Against the strongest method of the same "
            f"information, {same}. Against noise augmentation (the noise model), {aug}.")


def _lower(text: str) -> str:
    """A sentence to go after a comma: its first letter lower-case unless it starts a name (ST)."""
    return text if text[:2].isupper() else text[0].lower() + text[1:]


def knowledge_map_verdict(gains: pd.DataFrame, levels) -> str:
    """Per weaker teacher: at which sample sizes ST resolvably helps or hurts the base student."""
    parts = []
    for level in levels:
        rows = gains[(gains.level == level) & (gains.comparison == "ST over base")].sort_values("n_train")
        at = {s: [f"{n:g}" for n in rows[rows.resolved == s].n_train] for s in (1, -1, 0)}
        words = [w for w in (f"helps at n = {', '.join(at[1])}" if at[1] else "",
                             f"hurts at n = {', '.join(at[-1])}" if at[-1] else "",
                             f"makes no resolvable difference at n = {', '.join(at[0])}" if at[0] else "") if w]
        joined = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
        parts.append(f"With {teacher_phrase(level)}, ST {joined}.")
    return " ".join(parts) + " (One view each; against the base student.)"


def side_verdict(gains: pd.DataFrame) -> str:
    """ST against the base student in the width, noise-level and target cells, one clause a cell."""
    rows = gains[gains.comparison == "ST over base"].sort_values(["units", "sigma", "width"])
    text = "; ".join(f"{r['cell']}: {sentence(r, 'ST', 'base')}" for r in rows.to_dict("records"))
    return text[0].upper() + text[1:] + "."
