"""`stlearn sweep` on a tiny fake chapter: grid parsing and validation, Dask execution, resume, failures."""

import os
from pathlib import Path

import pandas as pd
import pytest

from stlearn.tooling import sweep as sw
from stlearn.tooling.cli import main
from stlearn.validation import ParameterError

CHAPTER = """\
---
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A tiny chapter

```{code-cell} ipython3
:tags: [parameters]
x = 1.0  # the grid axis; x >= 3 fails on purpose [float >= 0]
seed = 0  # seed [int >= 0]
```

```{code-cell} ipython3
if x >= 3:
    raise ValueError(f"x = {x} is too large for this chapter")
```

```{code-cell} ipython3
# what stlearn.tooling.notebook.headline displays, without importing torch (fast kernels)
from IPython.display import display

display({"application/vnd.stlearn.headline+json": {"y": 2 * x + seed, "half": x / 2}}, raw=True)
```
"""

NO_SEED = CHAPTER.replace("seed = 0  # seed [int >= 0]\n", "").replace(" + seed", "")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    root = tmp_path_factory.mktemp("book")
    (root / "book" / "parameters").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/tiny\nchapters:\n  - file: book/noseed\n")
    (root / "book" / "tiny.md").write_text(CHAPTER)
    (root / "book" / "noseed.md").write_text(NO_SEED)
    (root / "book" / "parameters" / "tiny.yaml").write_text("ci:\n  x: 0.5\n")
    saved = os.environ.get("STLEARN_ROOT")
    os.environ["STLEARN_ROOT"] = str(root)
    yield root
    if saved is None:
        os.environ.pop("STLEARN_ROOT")
    else:
        os.environ["STLEARN_ROOT"] = saved


def test_grid_option_reads_yaml_values():
    assert sw.parse_grid_option("x=1,2.5,abc") == ("x", [1, 2.5, "abc"])
    assert sw.parse_grid_option("lams=[0, 1],[2]") == ("lams", [[0, 1], [2]])
    for bad in ("x", "x=", "=1,2", "1x=3", "x=[1,2"):
        with pytest.raises(ParameterError, match="--grid"):
            sw.parse_grid_option(bad)


def test_the_whole_grid_is_validated_before_anything_runs(book):
    with pytest.raises(ParameterError, match=r"x\[?.*must be"):
        sw.grid_points("tiny", {"x": [1.0, -1.0]})
    with pytest.raises(ParameterError, match="unknown parameter"):
        sw.grid_points("tiny", {"width": [1]})
    with pytest.raises(ParameterError, match="seed"):
        sw.grid_points("noseed", {"x": [1.0]}, seeds=2)
    with pytest.raises(ParameterError, match="unknown chapter"):
        sw.grid_points("missing", {"x": [1.0]})
    assert main(["sweep", "tiny", "--grid", "x=1,-2"]) == 2
    assert not (book / "_build" / "sweeps").exists(), "nothing may run when the grid is invalid"


def test_seeds_start_from_the_parameter_set(book):
    points = sw.grid_points("tiny", {"x": [1.0, 2.0]}, seeds=3, param_set="ci")
    assert [p.overrides for p in points][:3] == [{"x": 1.0, "seed": s} for s in range(3)]
    assert len({p.key for p in points}) == 6


def _mtimes(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}


@pytest.mark.slow
def test_sweep_runs_resumes_and_reports_failures(book, tmp_path):
    out = tmp_path / "sweep"
    grid = {"x": [1.0, 3.0, 2.0]}
    first = sw.sweep("tiny", grid, workers=2, out_dir=out, progress=False)
    assert len(first.executed) == 2 and not first.skipped
    assert [r["parameters"] for r in first.failed] == [{"x": 3.0}]
    report = (out / "failures" / f"{first.failed[0]['key']}.txt").read_text()
    assert '"x": 3.0' in report and "ValueError" in report and "too large" in report

    table = pd.read_parquet(first.table_path)
    assert sorted(table.x) == [1.0, 2.0]
    assert (table["headline.y"] == 2 * table.x).all() and (table["headline.half"] == table.x / 2).all()
    assert first.figure_path.name == "headline.png" and first.figure_path.stat().st_size > 0

    # an interrupted sweep: one finished point lost, the others must not run again
    lost = out / "runs" / f"{first.executed[0]}.json"
    lost.unlink()
    before = _mtimes(out / "runs")
    again = sw.sweep("tiny", grid, workers=2, out_dir=out, metric="half", progress=False)
    assert again.executed == [first.executed[0]]
    assert again.skipped == first.executed[1:]
    assert len(again.failed) == 1, "failed points are tried again"
    assert all(_mtimes(out / "runs")[name] == t for name, t in before.items())
    assert again.figure_path.name == "half.png"

    # everything finished: the CLI only collects (no cluster), into CSV
    code = main(["sweep", "tiny", "--grid", "x=1.0,2.0", "--out", str(out), "--table", "results.csv"])
    assert code == 0
    assert len(pd.read_csv(out / "results.csv")) == 2
