"""The `stlearn` command on a tiny book: listing, validation before any kernel, atomic runs."""

from pathlib import Path

import nbformat
import pytest
from tinybook import make_tiny_book

from stlearn.tooling import chapters as ch
from stlearn.tooling.cli import main


@pytest.fixture
def book(tmp_path, monkeypatch):
    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_ROOT", str(root))
    return root


def test_list_and_params(book, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "failing" in out and "ci" in out
    assert main(["params", "tiny"]) == 0
    assert "sigma" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["run", "nosuch"], "unknown chapter 'nosuch'; valid chapters: tiny, failing"),
    (["run", "tiny", "-p", "width", "3"], "unknown parameter(s) width for chapter tiny; valid: n (default 3)"),
    (["run", "tiny", "-p", "sigma", "-1"], "sigma must be a finite number >= 0.0; got -1.0"),
    (["run", "tiny", "-p", "sigma", ".nan"], "sigma must be a finite number >= 0.0; got nan"),
    (["run", "tiny", "-p", "n", "0"], "n must be an integer >= 1; got 0"),
    (["run", "tiny", "-p", "n", "abc"], "n must be an integer >= 1; got 'abc' (str)"),
    (["run", "tiny", "--set", "huge"], "unknown parameter set 'huge' for tiny; valid sets: full, ci"),
    (["params", "nosuch"], "unknown chapter 'nosuch'"),
])
def test_bad_input_is_a_clear_error_before_any_kernel(book, capsys, argv, message):
    out = book / "out.ipynb"
    assert main(argv + ["-o", str(out)] if argv[0] == "run" else argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_run_injects_parameters_and_records_them(book):
    out = book / "runs" / "tiny.ipynb"
    assert main(["run", "tiny", "-p", "n", "4", "-p", "sigma", "1.0", "-o", str(out)]) == 0
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["stlearn"]["parameters"] == {"n": 4, "sigma": 1.0}
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "[0.0, 0.1, 0.2, 0.3]" in text
    headline = [o["data"] for c in nb.cells for o in c.get("outputs", [])
                if "application/vnd.stlearn.headline+json" in o.get("data", {})]
    assert headline[0]["application/vnd.stlearn.headline+json"] == {"total": 4.0, "seed": 0, "disjoint_sets": 0}


def test_a_failing_chapter_leaves_nothing_behind(book):
    from papermill.exceptions import PapermillExecutionError

    out = book / "runs" / "failing.ipynb"
    with pytest.raises(PapermillExecutionError, match="deliberate failure"):
        main(["run", "failing", "-o", str(out)])
    assert not out.exists()
    assert not [p for p in out.parent.iterdir()] if out.parent.exists() else True


def test_a_run_that_crashes_half_way_leaves_nothing(book, monkeypatch):
    """papermill fails after writing part of the notebook: no file is left at all (the write is atomic)."""
    import papermill

    def crash(nb, out, **kwargs):
        Path(out).write_text("{ partial")
        raise RuntimeError("kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", crash)
    target = book / "runs" / "tiny.ipynb"
    with pytest.raises(RuntimeError, match="kernel died"):
        ch.execute("tiny", target, None, "ci", book, progress=False)
    assert not [p for p in (book / "runs").rglob("*") if p.is_file()]
