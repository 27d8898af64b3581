"""Chapters that fail inside their kernel: a chapter's own check, or training that diverges, stops the run
before any figure, and `stlearn run` leaves no file behind."""

from __future__ import annotations

import re

import pytest

from stlearn.tooling import chapters as ch
from stlearn.tooling import cli

ROOT = ch.repo_root()
CHAPTERS = list(ch.chapters(ROOT))


def run_cli(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_a_chapter_check_failing_in_the_kernel_leaves_nothing(capsys, tmp_path, monkeypatch):
    """zero_loss refuses n_train > d inside the kernel: stlearn run says so and writes no notebook."""
    if "zero_loss" not in CHAPTERS:
        pytest.skip("the zero_loss chapter is not in the book")
    monkeypatch.chdir(tmp_path)
    d = ch.resolve_parameters("zero_loss", None, "ci", ROOT)["d"]
    code, err = run_cli(["run", "zero_loss", "--set", "ci", "-p", "n_train", str(d + 1), "-o", "run.ipynb"], capsys)
    assert code == 2 and "n_train must be <= d" in err, err
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.slow
def test_a_chapter_that_stops_in_its_kernel_writes_nothing(tmp_path):
    """zero_loss with depths its kernel refuses (deeper than its step rule fits): the kernel stops early with an
    error naming the parameter and a value that works, and no notebook is written."""
    if "zero_loss" not in CHAPTERS:
        pytest.skip("the zero_loss chapter is not in the book")
    from papermill.exceptions import PapermillExecutionError

    target = tmp_path / "stopped.ipynb"
    with pytest.raises(PapermillExecutionError) as err:
        ch.execute("zero_loss", target, {"depths": [2, 6]}, "ci", ROOT, progress=False)
    assert err.value.ename == "ParameterError", err.value.ename
    assert re.search(r"depths must all be <= \d+ \(e\.g\. \[2, 3\]\)", err.value.evalue), err.value.evalue
    assert not target.exists() and [p for p in tmp_path.rglob("*") if p.is_file()] == []
