"""Regression references: each chapter executed at its "ci" parameters, stored in ``tests/references``.

nbval re-executes a reference and compares every output with the stored one:
the text exactly, the numbers in it within :data:`TOLERANCE` (:func:`same_printed`,
installed into nbval by ``tests/conftest.py``). A reference records the hash of the
chapter source it was made from, so a test can tell when it is stale; ``stlearn refs``
regenerates them.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import nbformat

from . import chapters as ch
from .build import executed_chapter

CI = ch.CI


def nbval_command(notebooks, root: Path | None = None, *extra: str) -> list[str]:
    """The one nbval invocation every check uses: pytest over ``notebooks`` with this suite's sanitizers, in
    the current environment, without pytest's cache; ``extra`` arguments go last."""
    import sys

    root = root or ch.repo_root()
    return [sys.executable, "-m", "pytest", "--nbval", *map(str, notebooks), "--nbval-current-env",
            "--nbval-sanitize-with", str(root / "tests" / "sanitize.cfg"), "-q", "-p", "no:cacheprovider", *extra]


def reference_path(name: str, root: Path | None = None) -> Path:
    return (root or ch.repo_root()) / "tests" / "references" / f"{name}.ipynb"


def regenerate(names=None, root: Path | None = None) -> list[Path]:
    root = root or ch.repo_root()
    written = []
    for name in names or ch.chapters(root):
        ch.chapter_path(name, root)
        executed, _ = executed_chapter(name, CI, root)
        target = reference_path(name, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(executed, target)
        written.append(target)
    return written


def staleness(name: str, root: Path | None = None) -> str | None:
    """Why the reference of ``name`` is out of date, or None when it is current."""
    root = root or ch.repo_root()
    ref = reference_path(name, root)
    if not ref.is_file():
        return f"no reference for {name}: run `stlearn refs {name}`"
    meta = nbformat.read(ref, as_version=4).metadata.get("stlearn", {})
    if meta.get("source_sha256") != ch.source_hash(ch.chapter_path(name, root)):
        return f"reference for {name} was made from another version of its source: run `stlearn refs {name}`"
    if meta.get("parameters") != ch.resolve_parameters(name, None, CI, root):
        return f"reference for {name} was made with other ci parameters: run `stlearn refs {name}`"
    return None


# --------------------------------------------------------------------------- comparing printed outputs
# ci runs compute in float64 (``CI_PREAMBLE``), where any processor, kernel variant and thread count gives
# the same numbers to about 1e-12 after training. What is left to forgive is rounding: a value that lies
# next to a rounding boundary prints on either side of it. So two printed numbers agree when they differ by
# at most one unit in their last printed digit (the finer of the two; decimals only: integers are counts and
# compare exactly),
# or by ``rel`` of the larger (numbers printed with all their digits) or ``abs`` (round-off, e.g. "3e-15").
TOLERANCE = {"rel": 1e-6, "abs": 1e-9}

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _last_digit_unit(token: str) -> float:
    """One unit in the last printed digit of a decimal number; 0 for an integer."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2]) if "." in mantissa else 0
    if "." not in mantissa and not exponent:
        return 0.0
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(reference: str, test: str, rel: float = TOLERANCE["rel"], abs_: float = TOLERANCE["abs"]) -> bool:
    """Whether two printed numbers agree within the tolerance (see :data:`TOLERANCE`)."""
    a, b = float(reference), float(test)
    if a == b:
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    # the finer of the two units: a value near 0.1 prints as "0.1" on one side and "0.0999" on the other
    allowed = max(abs_, rel * max(abs(a), abs(b)), min(_last_digit_unit(reference), _last_digit_unit(test)))
    return abs(a - b) <= allowed * (1 + 1e-9)  # the slack absorbs the binary representation of the decimals


_ALIGNMENT = re.compile(r"[ \t]+")


def _words(text: str) -> list[str]:
    """The text between the numbers, runs of spaces as one: a table aligns its columns to the widest number."""
    return [_ALIGNMENT.sub(" ", part) for part in _NUMBER.split(text)]


def same_printed(reference: str, test: str) -> bool:
    """Whether two outputs print the same text (up to the spaces that align columns), with numbers equal
    within :data:`TOLERANCE`."""
    if str.__eq__(reference, test):
        return True
    ref_numbers, test_numbers = _NUMBER.findall(reference), _NUMBER.findall(test)
    return (len(ref_numbers) == len(test_numbers) and _words(reference) == _words(test)
            and all(numbers_agree(r, t) for r, t in zip(ref_numbers, test_numbers)))


class Printed(str):
    """An output as nbval compares it: ``==`` is :func:`same_printed`."""

    def __eq__(self, other) -> bool:
        return isinstance(other, str) and same_printed(self, other)

    def __ne__(self, other) -> bool:
        return not self == other

    __hash__ = str.__hash__


def printed(value):
    """``value`` (a sanitized output: text, or JSON data such as a headline) as a :class:`Printed`."""
    if isinstance(value, str):
        return Printed(value)
    if isinstance(value, (dict, list)):
        return Printed(json.dumps(value, sort_keys=True))
    return value
