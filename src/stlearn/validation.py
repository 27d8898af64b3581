"""Parameter checks shared by every public entry point.

Each check runs before any computation and raises :class:`ParameterError`
naming the parameter, its valid range and the value received.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any


class ParameterError(ValueError):
    """A parameter is outside its valid range (or of the wrong type)."""


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite: of the one network trained, or of every member of an ensemble
    (:func:`stlearn.train.train`), or every configuration of a method failed (:func:`stlearn.protocol.select`)."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]`` or raise ParameterError."""
    valid = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ParameterError(f"{name} must be {valid}; got {_describe(value)}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ParameterError(f"{name} must be {valid}; got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    low: float | None = 0.0,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a finite float in the given range or raise ParameterError."""
    lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
    hi = "" if high is None else f"<= {high}"
    valid = "a finite number" + (f" {lo}" if lo else "") + (f" and {hi}" if lo and hi else f" {hi}" if hi else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be {valid}; got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be {valid}; got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ParameterError(f"{name} must be {valid}; got {value}")
    if high is not None and value > high:
        raise ParameterError(f"{name} must be {valid}; got {value}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        raise ParameterError(f"{name} must be one of {choices}; got {value!r}")
    return value


def check_widths(name: str, widths: Sequence[int], min_len: int = 2) -> list[int]:
    """Layer widths ``[d_in, h_1, ..., d_out]``: at least ``min_len`` positive integers."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise ParameterError(
            f"{name} must be a list of at least {min_len} integers >= 1; got {_describe(widths)}"
        )
    if len(widths) < min_len:
        raise ParameterError(
            f"{name} must be a list of at least {min_len} integers >= 1; got {list(widths)}"
        )
    return [check_int(f"{name}[{i}]", w, low=1) for i, w in enumerate(widths)]
