"""Shared by test_parameter_ranges_up.py and _down.py (two files, so that two xdist workers share the runs)."""

from __future__ import annotations

from stlearn.tooling import chapters as ch
from stlearn.tooling import robustness

ROOT = ch.repo_root()
CHAPTERS = list(ch.chapters(ROOT))


def check(name: str, up: bool) -> None:
    """The chapter at its ci set with every size moved by FACTOR: it passes, or stops fast naming a fix."""
    label, values = list(robustness.nearby_sets(name, ROOT).items())[0 if up else 1]
    result = robustness.try_run(name, values, ROOT)
    moved = {p: values[p] for p in robustness.size_parameters(name, ROOT)}
    assert result["outcome"] in ("passed", "stopped"), (
        f"{name} at {label} {moved} neither passed nor stopped fast with a message naming a parameter and a "
        f"value ({result['seconds']} s): {result['error']}")
