"""Chapter parameters: specs parsed and enforced, and bad values refused by `stlearn run` and `stlearn sweep`
before anything is written (every parameter of every chapter of the book; no kernel starts)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from stlearn.tooling import chapters as ch
from stlearn.tooling import cli
from stlearn.validation import ParameterError

ROOT = ch.repo_root()
CHAPTERS = list(ch.chapters(ROOT))
NAN = float("nan")


def test_parameter_specs_are_parsed():
    p = ch.Parameter("x", 1.0, "a level", "float in (0, 1]")
    assert p.check(1) == 1.0
    with pytest.raises(ch.ParameterError, match=r"x must be a finite number > 0.0 and <= 1.0; got 0.0"):
        p.check(0.0)
    lst = ch.Parameter("xs", [1], "sizes", "int list >= 1")
    assert lst.check([1, 2]) == [1, 2]
    with pytest.raises(ch.ParameterError, match=r"xs\[1\] must be an integer >= 1; got 0"):
        lst.check([1, 0])
    with pytest.raises(ch.ParameterError, match="xs must be a non-empty list"):
        lst.check(3)
    assert ch.Parameter("m", "a", "mode", "str: a|b").check("a") == "a"


def bad_values(spec: str) -> list:
    """Values outside a parameter spec: wrong type, out of range, NaN, empty list."""
    spec = spec.strip()
    if spec == "bool":
        return ["yes", 1]
    if spec.startswith("str:"):
        return ["no-such-choice", 3]
    kind, is_list, rng = re.fullmatch(r"(int|float)( list)?\s*(.*)", spec).groups()
    scalar = ["abc", None, NAN] if kind == "float" else ["abc", 2.5, NAN]
    if m := re.fullmatch(r"(>=|>)\s*(\S+)", rng):
        low = float(m.group(2))
        scalar.append(low - 1 if m.group(1) == ">=" else low)
    elif m := re.fullmatch(r"in\s*[\[(]\s*(\S+)\s*,\s*(\S+)\s*\]", rng):
        scalar += [float(m.group(1)) - 1, float(m.group(2)) + 1]
    if kind == "int":
        scalar = [int(v) if isinstance(v, float) and math.isfinite(v) and v.is_integer() else v for v in scalar]
    if is_list:
        return [[], "abc"] + [[v] for v in scalar]
    return scalar


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_parameters_reject_values_outside_their_spec(name):
    for p in ch.parameters(name, ROOT).values():
        for value in bad_values(p.spec):
            with pytest.raises(ParameterError) as err:
                ch.resolve_parameters(name, {p.name: value}, "ci", ROOT)
            assert p.name in str(err.value), f"{name}.{p.name}={value!r}: {err.value}"
        p.check(p.default)  # and the default itself is valid


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_rejects_unknown_parameter_and_set(name):
    with pytest.raises(ParameterError, match=r"unknown parameter.*valid: .*\(default"):
        ch.resolve_parameters(name, {"no_such_parameter": 1}, "ci", ROOT)
    with pytest.raises(ParameterError, match=r"unknown parameter set 'huge'.*valid sets: full"):
        ch.resolve_parameters(name, None, "huge", ROOT)


def run_cli(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


CLI_RUN_CASES = {
    "unknown chapter": (["run", "no_such_chapter"], r"unknown chapter 'no_such_chapter'; valid chapters: "),
    "unknown parameter": (["run", "{c}", "-p", "no_such_parameter", "1"], r"unknown parameter\(s\) no_such_parameter"),
    "unknown set": (["run", "{c}", "--set", "huge"], r"unknown parameter set 'huge'"),
    "wrong type": (["run", "{c}", "-p", "seed", "abc"], r"seed must be an integer >= 0; got 'abc'"),
    "negative": (["run", "{c}", "-p", "seed", "-1"], r"seed must be an integer >= 0; got -1"),
    "NaN": (["run", "{c}", "-p", "seed", ".nan"], r"seed must be an integer >= 0; got nan"),
}


@pytest.mark.parametrize("case", list(CLI_RUN_CASES))
def test_stlearn_run_rejects_bad_input_before_writing_anything(case, seeded_chapter, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = CLI_RUN_CASES[case]
    out = tmp_path / "out" / "run.ipynb"
    code, err = run_cli([a.format(c=seeded_chapter) for a in argv] + ["-o", str(out)], capsys)
    assert code == 2 and re.search(message, err), f"exit {code}, stderr: {err}"
    assert list(tmp_path.rglob("*")) == [], "a rejected run left files behind"


def test_every_chapter_parameter_is_checked_by_stlearn_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in CHAPTERS:
        for p in ch.parameters(name, ROOT).values():
            value = bad_values(p.spec)[-1]
            code, err = run_cli(["run", name, "-p", p.name, json.dumps(value), "--set", "ci"], capsys)
            assert code == 2 and p.name in err, f"{name}.{p.name}={value!r}: exit {code}, {err}"
    assert list(tmp_path.rglob("*")) == []


SWEEP_CASES = {
    "unknown chapter": (["no_such_chapter", "--grid", "seed=0,1"], r"no_such_chapter"),
    "unknown parameter": (["{c}", "--grid", "no_such_parameter=1,2"], r"no_such_parameter"),
    "negative value": (["{c}", "--grid", "seed=0,-1"], r"seed"),
    "NaN value": (["{c}", "--grid", "seed=0,.nan"], r"seed"),
    "wrong type": (["{c}", "--grid", "seed=abc,1"], r"seed"),
    "malformed grid": (["{c}", "--grid", "seed"], r"grid|NAME=|seed"),
}


@pytest.mark.parametrize("case", list(SWEEP_CASES))
def test_stlearn_sweep_rejects_bad_input_before_writing_anything(case, seeded_chapter, capsys,
                                                                  tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = SWEEP_CASES[case]
    before = _listing(ROOT / "_build")
    try:
        code, err = run_cli(["sweep"] + [a.format(c=seeded_chapter) for a in argv] + ["--set", "ci"], capsys)
    except SystemExit as exit_:  # argparse's own usage errors
        code, err = exit_.code, capsys.readouterr().err
    assert code == 2 and re.search(message, err), f"exit {code}, stderr: {err}"
    assert list(tmp_path.rglob("*")) == [], "a rejected sweep left files in the working folder"
    assert _listing(ROOT / "_build") - before == set(), "a rejected sweep left files in _build"


def _listing(folder: Path) -> set[str]:
    skip = ("cache", "stage", "html", "screenshots", "runs", "lint")  # runs and lint: other tools write there
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and not p.relative_to(folder).parts[0].startswith(skip)} if folder.is_dir() else set()
