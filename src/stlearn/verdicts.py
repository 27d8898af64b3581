"""Every sentence a verdict is made of, built from intervals: the one home of the book's words for numbers.

A paired comparison is ``{"gain", "low", "high", ...}`` (the mean gain of the first method over the second and
its 95% interval, :func:`stlearn.protocol.compare`). The rules (``CONTRIBUTING.md`` 4b): a verdict follows the
interval's side of 0; an interval that includes 0 is "no resolvable difference ... (+g [low, high])", never
"as well as" or "matches"; every number printed with an interval in the form of :func:`interval_text`.
Each builder is unit-tested case by case (``tests/library/test_verdicts.py``).
"""

from __future__ import annotations

import pandas as pd

from .stats import ci_high, ci_low

SAME_INFORMATION = "same information"  # the primary family (stlearn.study)


def interval_text(comparison: dict[str, float], digits: int = 3) -> str:
    """A paired comparison as the book prints it: ``"+0.032 [0.003, 0.061]"`` (mean gain, 95% interval)."""
    return (f"{comparison['gain']:+.{digits}f} [{comparison['low']:.{digits}f}, "
            f"{comparison['high']:.{digits}f}]")


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
    return by_sign(comparison, f"{method} beats {reference}", f"{reference} beats {method}",
                   f"no resolvable difference between {method} and {reference}")


def sentence(comparison: dict, method: str, reference: str, digits: int = 3) -> str:
    """``method`` against ``reference`` in words and numbers: who wins, or no resolvable difference."""
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
    if primary.low > 0:
        head = f"With only the pairs and the teacher, ST is worth its teacher here: it beats {primary.reference}."
    else:
        found = (f"{primary.reference} is better than ST" if primary.high < 0
                 else f"there is no resolvable difference between ST and {primary.reference}")
        head = f"With only the pairs and the teacher, start from {primary.reference}: {found}."
    helps = [r for (f, _), r in rows.items() if f != SAME_INFORMATION and r.method.startswith("ST")
             and r.low > 0]
    hurts = [r for (f, _), r in rows.items() if f != SAME_INFORMATION and r.method.startswith("ST")
             and r.high < 0]
    if helps:
        head += (" On top of another method the feature term does help: "
                 + "; ".join(f"{r.method} beats {r.reference} ({interval_text(r._asdict())})"
                             for r in helps) + ".")
    if hurts:
        head += (" It hurts on top of " + ", ".join(r.reference for r in hurts) + ".")
    return head + " Whatever is used, stop on a labelled noisy validation set."
