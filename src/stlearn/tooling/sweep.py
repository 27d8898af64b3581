"""Sweeps: execute a chapter over a grid of parameters on a Dask cluster and collect its headline numbers.

Each point of the Cartesian grid (times ``seeds`` values of the chapter's
``seed`` parameter) is one independent task: :func:`stlearn.tooling.chapters.execute`
runs the chapter with papermill into ``runs/<key>.ipynb``, then the chapter's
headline numbers (:func:`stlearn.tooling.notebook.headline`) are written with the
parameters to ``runs/<key>.json``. Both files appear atomically (written
elsewhere, then renamed), so a finished point is exactly one with a record, and
a re-launched sweep skips it: an interrupted sweep loses only the points that
were running. A point that fails writes ``failures/<key>.txt`` (parameters and
traceback) and does not stop the others; it is tried again on the next launch.

The key hashes the chapter's source, the library's source and the point's
parameter values (:func:`stlearn.tooling.chapters.execution_key`): editing either
starts the sweep afresh instead of mixing results of different code.

Execution uses Dask distributed: a ``LocalCluster`` of worker processes on this
machine by default, or the scheduler at ``scheduler`` (workers there need this
package installed and the book at the same path, or ``STLEARN_ROOT`` set).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from ..validation import ParameterError, check_int
from . import chapters as ch
from .notebook import headline_of

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --------------------------------------------------------------------------- the grid
def parse_grid_option(text: str) -> tuple[str, list]:
    """``"NAME=V1,V2,..."`` -> ``(NAME, [V1, V2, ...])``, values read as YAML (``[1, 2]`` stays one list)."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not values.strip():
        raise ParameterError(f"--grid must look like NAME=V1,V2,...; got {text!r}")
    try:
        return name, yaml.safe_load(f"[{values}]")  # the values as one YAML flow sequence
    except yaml.YAMLError as err:
        raise ParameterError(f"--grid {name}: the values must be YAML separated by commas; got {values!r}") from err


@dataclass(frozen=True)
class Point:
    """One run of the sweep: the overrides it sets and its key (its file name)."""

    overrides: dict
    key: str


def grid_points(chapter: str, grid: Mapping[str, Sequence], seeds: int | None = None,
                param_set: str = ch.FULL, root: Path | None = None) -> list[Point]:
    """Every point of the grid, each validated (bad names or values raise before anything runs)."""
    root = root or ch.repo_root()
    known = ch.parameters(chapter, root)
    axes = {name: list(values) for name, values in grid.items()}
    for name, values in axes.items():
        if not values:
            raise ParameterError(f"--grid {name} needs at least one value")
    if seeds is not None:
        seeds = check_int("seeds", seeds, low=1)
        if "seed" not in known:
            raise ParameterError(f"--seeds needs a 'seed' parameter, which chapter {chapter} does not have; "
                                 f"its parameters: {', '.join(known)}")
        if "seed" in axes:
            raise ParameterError("give either --seeds or --grid seed=..., not both")
        first = ch.resolve_parameters(chapter, None, param_set, root).get("seed", known["seed"].default)
        axes["seed"] = [first + k for k in range(seeds)]
    library = ch.library_hash()  # once for the grid: it reads every file of the package
    points = []
    for combo in itertools.product(*axes.values()):
        overrides = dict(zip(axes, combo))
        values = ch.resolve_parameters(chapter, overrides, param_set, root)
        points.append(Point(overrides, ch.execution_key(chapter, values, root, library)))
    return points


# --------------------------------------------------------------------------- one task
@contextlib.contextmanager
def _atomic(path: Path):
    """Yields a temporary path beside ``path``, renamed to ``path`` once the block succeeds (removed if not)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_atomic(path: Path, text: str) -> None:
    with _atomic(path) as tmp:
        Path(tmp).write_text(text)


def run_point(chapter: str, point: Point, param_set: str, root: str, out_dir: str) -> dict:
    """Execute one point (on a worker); returns its record, ``status`` "ok" or "failed"."""
    runs, failures = Path(out_dir, "runs"), Path(out_dir, "failures")
    start = time.time()
    record = {"key": point.key, "chapter": chapter, "parameter_set": param_set, "parameters": point.overrides}
    try:
        notebook = ch.execute(chapter, runs / f"{point.key}.ipynb", point.overrides, param_set, Path(root),
                              progress=False)
        record.update(status="ok", seconds=round(time.time() - start, 2), headline=headline_of(notebook))
        _write_atomic(runs / f"{point.key}.json", json.dumps(record, indent=1, sort_keys=True))
        (failures / f"{point.key}.txt").unlink(missing_ok=True)
    except Exception as err:  # reported with its parameters; the other points go on
        record.update(status="failed", seconds=round(time.time() - start, 2),
                      error=ANSI.sub("", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
        failures.mkdir(parents=True, exist_ok=True)
        _write_atomic(failures / f"{point.key}.txt",
                      f"parameters: {json.dumps(point.overrides, sort_keys=True)}\n\n{record['error']}")
    return record


# --------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    table: pd.DataFrame
    executed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    table_path: Path | None = None
    figure_path: Path | None = None


def default_out_dir(chapter: str, root: Path) -> Path:
    return root / "_build" / "sweeps" / chapter


def finished(out_dir: Path, point: Point) -> dict | None:
    path = out_dir / "runs" / f"{point.key}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def sweep(chapter: str, grid: Mapping[str, Sequence], *, seeds: int | None = None, param_set: str = ch.FULL,
          workers: int = 2, scheduler: str | None = None, out_dir: Path | None = None,
          metric: str | None = None, table_name: str = "results.parquet", root: Path | None = None,
          progress: bool = True) -> SweepResult:
    """Run every unfinished point of the grid on Dask; write the table and the figure of ``metric``."""
    root = root or ch.repo_root()
    points = grid_points(chapter, grid, seeds, param_set, root)  # validates everything first
    if scheduler is None:
        workers = check_int("workers", workers, low=1)
    out_dir = Path(out_dir or default_out_dir(chapter, root))
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    done = {p.key: r for p in points if (r := finished(out_dir, p)) is not None}
    todo = [p for p in points if p.key not in done]
    if progress:
        print(f"sweep {chapter}: {len(points)} points, {len(done)} already finished, {len(todo)} to run")
    records = _execute_all(chapter, todo, param_set, root, out_dir, workers, scheduler, progress)
    failed = [r for r in records if r["status"] == "failed"]
    executed = {r["key"]: r for r in records if r["status"] == "ok"}
    table = collect(points, {**done, **executed})
    result = SweepResult(table, list(executed), list(done), failed)
    if len(table):
        result.table_path = write_table(table, out_dir / table_name)
        metrics = [metric] if metric else headline_columns(table)
        result.figure_path = plot_headline(table, list(grid) + (["seed"] if seeds else []), metrics,
                                           out_dir / f"{metric or 'headline'}.png", title=chapter)
    return result


def _execute_all(chapter, todo, param_set, root, out_dir, workers, scheduler, progress) -> list[dict]:
    if not todo:
        return []
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    records = []
    try:
        futures = [client.submit(run_point, chapter, p, param_set, str(root), str(out_dir), key=f"point-{p.key}",
                                 pure=False) for p in todo]
        bar = tqdm(total=len(futures), desc=f"sweep {chapter}", disable=not progress, unit="run")
        for future in as_completed(futures):
            record = future.result()
            records.append(record)
            bar.update()
            if record["status"] == "failed":
                bar.write(f"FAILED {_describe_point(record['parameters'])} (see failures/{record['key']}.txt)")
            bar.set_postfix(failed=sum(r["status"] == "failed" for r in records))
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return records


def _describe_point(overrides: Mapping) -> str:
    return " ".join(f"{k}={v!r}" for k, v in overrides.items())


# --------------------------------------------------------------------------- table and figure
def collect(points: Sequence[Point], records: Mapping[str, dict]) -> pd.DataFrame:
    """One row per finished point of this grid (its record in ``records`` by key): its parameters,
    its headline numbers and its run time."""
    rows = []
    for p in points:
        record = records.get(p.key)
        if record is not None:
            rows.append({**{k: _cell(v) for k, v in p.overrides.items()},
                         **{f"headline.{k}": v for k, v in record["headline"].items()},
                         "seconds": record["seconds"], "key": p.key})
    return pd.DataFrame(rows)


def _cell(value):
    """Table cells are scalars: a list-valued parameter is stored as its YAML text."""
    if isinstance(value, (int, float, str, bool)):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip()


def headline_columns(table: pd.DataFrame) -> list[str]:
    """The headline's numbers (its text entries, the claim and the finding, are not plotted)."""
    return [c.removeprefix("headline.") for c in table.columns
            if c.startswith("headline.") and pd.api.types.is_numeric_dtype(table[c])]


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """Parquet (``.parquet``) or CSV (``.csv``), written atomically."""
    writers = {".csv": table.to_csv, ".parquet": table.to_parquet}
    if path.suffix not in writers:
        raise ParameterError(f"the table must end in .parquet or .csv; got {path.name!r}")
    with _atomic(path) as tmp:
        writers[path.suffix](tmp, index=False)
    return path


def plot_headline(table: pd.DataFrame, axes: Sequence[str], metrics: Sequence[str], path: Path,
                  title: str | None = None) -> Path:
    """One panel per headline number against the first grid parameter: a line per value of the
    other grid parameters, mean and 95% band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import band, use_book_style

    missing = [m for m in metrics if f"headline.{m}" not in table]
    if missing:
        raise ParameterError(f"metric must be one of the chapter's headline numbers "
                             f"{headline_columns(table)}; got {missing[0]!r}")
    use_book_style()
    x = next((a for a in axes if a != "seed"), "seed")
    others = [a for a in axes if a not in (x, "seed")]
    cols = min(len(metrics), 3)
    rows = -(-len(metrics) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False, layout="constrained")
    groups = list(table.groupby(others)) if others else [((), table)]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(grid.flat, metrics):
        for (values, sub), color in zip(groups, itertools.cycle(colors)):
            values = values if isinstance(values, tuple) else (values,)
            label = ", ".join(f"{a} = {v}" for a, v in zip(others, values)) or None
            band(ax, sub, x, f"headline.{metric}", color=color, label=label, marker="o")
        ax.set(xlabel=x, ylabel=metric)
    for ax in list(grid.flat)[len(metrics):]:
        ax.set_visible(False)
    if others:
        grid.flat[0].legend(fontsize="small")
    fig.suptitle(title)
    fig.savefig(path)
    plt.close(fig)
    return path
