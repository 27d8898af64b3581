"""Chapters at parameters nobody tuned: sizes moved away from the ci set, and root seeds drawn at random.

A chapter re-run inside its stated ranges must pass its assertions, or stop fast with an error that names
the parameter to change and a value that works (CONTRIBUTING, "Parameters"). Two checks hold it to that:

* :func:`nearby_sets`: the chapter's ci set with every size parameter (an integer that sets a dimension, a
  width or a sample size; not a seed, a run count or a training length: :data:`EFFORT`) multiplied by
  :data:`FACTOR`, and divided by it. ``tests/chapters/test_parameter_ranges_*.py`` runs both for every
  chapter; ``make ranges`` prints the table (``python -m stlearn.tooling.robustness ranges``).
* :func:`random_seeds`: root seeds drawn when the check starts. ``make seeds``
  (``python -m stlearn.tooling.robustness seeds``) runs every chapter at its full settings at five of them
  and reports each failure with its seed. It is slow (five books) and never part of CI. ``make seeds-ci``
  (``... seeds --set ci --seeds 2``) does the same at the ci sets, in about 15 minutes: a check tuned to the
  references' root seed at ci's few runs fails there first.

Runs are executed as a reader executes them: plain papermill at the given values, float32 (no ci preamble).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import chapters as ch

FACTOR = 1.5
# integer parameters that set how much work is done, or pick a layer, not the problem's size: never moved
EFFORT = re.compile(r"^(seed|n_seeds|n_runs|net_seeds|probe_seeds|n_mc|n_maps|chunk|classical_grid|log_points|"
                    r"n_lams|batch|batch_size|fit_teachers|hidden_layers|probe_missing|missing|crop|patch)$|steps|layers$")
FAST_STOP_SECONDS = 90  # "within about a minute", with room for a loaded machine


def _moved(value: int, low: int, up: bool) -> int:
    return max(low, math.ceil(value * FACTOR) if up else math.floor(value / FACTOR))


def _low(spec: str) -> int:
    m = re.search(r"(>=|>)\s*(-?\d+)", spec)
    return 1 if m is None else int(m.group(2)) + (m.group(1) == ">")


def size_parameters(name: str, root: Path | None = None) -> list[str]:
    """The chapter's integer parameters (or integer lists) that set a size of the problem."""
    return [p.name for p in ch.parameters(name, root).values()
            if p.spec.strip().startswith("int") and not EFFORT.search(p.name)]


def nearby_sets(name: str, root: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{"sizes x1.5": {...}, "sizes /1.5": {...}}``: the ci set with every size parameter moved (lists
    element by element, repeats dropped), each value kept inside its stated range."""
    known = ch.parameters(name, root)
    ci = {**{k: p.default for k, p in known.items()}, **ch.parameter_sets(name, root).get(ch.CI, {})}
    sets = {}
    for label, up in ((f"sizes x{FACTOR:g}", True), (f"sizes /{FACTOR:g}", False)):
        values = dict(ci)
        for p in size_parameters(name, root):
            low = _low(known[p].spec)
            value = ci[p]
            if isinstance(value, list):
                new = [_moved(v, low, up) if v else 0 for v in value]  # 0 (none) stays 0
                grid = all(a < b for a, b in zip(value, value[1:]))
                values[p] = list(dict.fromkeys(new)) if grid else new  # a grid stays a grid; widths per layer stay
            else:
                values[p] = _moved(value, low, up)
        sets[label] = values
    return sets


def random_seeds(k: int = 5) -> list[int]:
    """``k`` distinct root seeds drawn from the operating system's randomness (nobody chose them)."""
    seeds: list[int] = []
    while len(seeds) < k:
        s = secrets.randbelow(10**6)
        if s not in seeds:
            seeds.append(s)
    return seeds


def at_set(name: str, set_name: str, root: Path | None = None) -> dict[str, Any]:
    """The values of the chapter's parameter set ``set_name`` that differ from its defaults (none for full)."""
    return dict(ch.parameter_sets(name, root).get(set_name, {})) if set_name != ch.FULL else {}


def try_run(name: str, values: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
    """Execute the chapter at ``values`` (full set overridden, float32 as a reader runs it).

    Returns ``{"outcome": "passed" | "stopped" | "failed", "seconds", "error"}``: "stopped" is a fast stop whose
    message names a parameter of the chapter and a number (the value to use), "failed" anything else.
    """
    from papermill.exceptions import PapermillExecutionError

    from ..validation import ParameterError

    start = time.perf_counter()
    error = ""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ch.execute(name, Path(tmp) / "run.ipynb", values, ch.FULL, root, progress=False, threads=1)
        outcome = "passed"
    except (PapermillExecutionError, ParameterError) as err:
        error = f"{err.ename}: {err.evalue}" if isinstance(err, PapermillExecutionError) else f"ParameterError: {err}"
        outcome = "stopped" if names_a_fix(error, name, root) else "failed"
    seconds = time.perf_counter() - start
    if outcome == "stopped" and seconds > FAST_STOP_SECONDS:
        outcome = "failed"  # a stop must come early, before the expensive part
    return {"outcome": outcome, "seconds": round(seconds, 1), "error": error.splitlines()[0][:300] if error else ""}


def names_a_fix(message: str, name: str, root: Path | None = None) -> bool:
    """Whether an error message names one of the chapter's parameters and a number (a value that works)."""
    params = ch.parameters(name, root)
    return any(re.search(rf"\b{re.escape(p)}\b", message) for p in params) and bool(re.search(r"\d", message))


def _table(rows: list[dict]) -> str:
    lines = ["| chapter | parameters | outcome | seconds | message |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['chapter']} | {r['label']} | {r['outcome']} | {r['seconds']} | {r['error']} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stlearn.tooling.robustness", description=__doc__.split("\n")[0])
    parser.add_argument("check", choices=["ranges", "seeds"])
    parser.add_argument("chapters", nargs="*", help="chapters to check (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="root seeds drawn at random (seeds check)")
    parser.add_argument("--set", choices=[ch.FULL, ch.CI], default=ch.FULL, help="parameter set (seeds check)")
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once (one thread each)")
    parser.add_argument("--out", type=Path, help="report file (default _build/robustness/<check>.md)")
    args = parser.parse_args(argv)
    root = ch.repo_root()
    names = args.chapters or list(ch.chapters(root))
    if args.check == "ranges":
        plan = [(n, label, values) for n in names for label, values in nearby_sets(n, root).items()]
    else:
        seeds = random_seeds(args.seeds)
        print(f"root seeds drawn: {seeds}", flush=True)
        plan = [(n, f"seed {s}", {**at_set(n, args.set, root), "seed": s}) for s in seeds for n in names
                if "seed" in ch.parameters(n, root)]
    def one(item):
        name, label, values = item
        row = {"chapter": name, "label": label, **try_run(name, values, root)}
        print(f"{row['outcome']:<8} {name:<28} {label:<14} {row['seconds']:>7} s  {row['error']}", flush=True)
        return row

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # each run is a kernel process of its own
        rows = list(pool.map(one, plan))
    out = args.out or root / "_build" / "robustness" / f"{args.check}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_table(rows) + "\n")
    (out.with_suffix(".json")).write_text(json.dumps(rows, indent=1))
    bad = [r for r in rows if r["outcome"] == "failed" or (args.check == "seeds" and r["outcome"] != "passed")]
    print(f"{len(rows) - len(bad)} of {len(rows)} runs passed or stopped fast; report in {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
