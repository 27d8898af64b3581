"""The ``stlearn`` command: list, inspect, run and build the book's chapters.

    stlearn list                                 chapters and their parameter sets
    stlearn params CHAPTER                       parameters: meaning, range, defaults
    stlearn run CHAPTER [-p NAME VALUE]... [--set ci] [-o OUT.ipynb]
    stlearn build [--set full|ci|gpu] [--jobs N]    execute (cached) and build the site
    stlearn refs [CHAPTER]...                    regenerate the regression references
    stlearn lint                                 ruff over the code and every chapter's code cells
    stlearn sweep CHAPTER --grid NAME=V1,V2,... [--grid ...] [--seeds K] [--set ci]
                  [--workers N | --scheduler ADDRESS] [--out DIR] [--metric NAME]
                                                 run the chapter over a grid (Dask), collect
                                                 its headline numbers in a table and a figure
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ..validation import ParameterError
from . import chapters as ch


def _parse_value(text: str):
    """Values are read as YAML, as papermill does: ``3`` is an int, ``0.5`` a float, ``[1, 2]`` a list."""
    return yaml.safe_load(text)


def cmd_list(args) -> int:
    for name in ch.chapters():
        print(f"{name:28s} sets: {', '.join(ch.parameter_sets(name))}")
    return 0


def cmd_params(args) -> int:
    ch.chapter_path(args.chapter)
    sets = ch.parameter_sets(args.chapter)
    for p in ch.parameters(args.chapter).values():
        others = "  ".join(f"{s}={v[p.name]!r}" for s, v in sets.items() if p.name in v)
        print(f"{p.name:16s} [{p.spec}]  full={p.default!r}  {others}\n{'':16s} {p.description}")
    return 0


def cmd_run(args) -> int:
    overrides = {name: _parse_value(value) for name, value in args.parameter}
    ch.resolve_parameters(args.chapter, overrides, args.set)  # fail before starting a kernel
    out = Path(args.output or Path("_build") / "runs" / f"{args.chapter}.ipynb")
    ch.execute(args.chapter, out, overrides, args.set)
    print(f"executed {args.chapter} -> {out}")
    return 0


def cmd_build(args) -> int:
    from .build import build_book

    build_book(args.set, jobs=args.jobs)
    return 0


def cmd_refs(args) -> int:
    from .regression import regenerate

    for path in regenerate(args.chapter or None):
        print(f"wrote {path}")
    return 0


def cmd_lint(args) -> int:
    from .lint import lint

    return lint(fix=args.fix)


def cmd_sweep(args) -> int:
    from .sweep import parse_grid_option, sweep

    grid = dict(parse_grid_option(text) for text in args.grid)
    result = sweep(args.chapter, grid, seeds=args.seeds, param_set=args.set, workers=args.workers,
                   scheduler=args.scheduler, out_dir=args.out, metric=args.metric, table_name=args.table)
    print(f"executed {len(result.executed)}, skipped {len(result.skipped)} already finished, "
          f"failed {len(result.failed)}")
    for record in result.failed:
        print(f"\nFAILED {record['parameters']}\n{record['error']}", file=sys.stderr)
    if result.table_path:
        print(f"table  -> {result.table_path}\nfigure -> {result.figure_path}")
    return 1 if result.failed else 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stlearn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the chapters").set_defaults(func=cmd_list)
    p = sub.add_parser("params", help="show a chapter's parameters")
    p.add_argument("chapter")
    p.set_defaults(func=cmd_params)
    p = sub.add_parser("run", help="re-execute one chapter with papermill")
    p.add_argument("chapter")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("--set", default=ch.FULL, help="parameter set to start from (full or ci)")
    p.add_argument("-o", "--output", help="executed notebook (default _build/runs/CHAPTER.ipynb)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("build", help="build the book (chapters executed with caching)")
    p.add_argument("--set", default=ch.FULL, help="parameter set: full (default), ci or another the chapter defines")
    p.add_argument("--jobs", type=int, default=1, help="chapters executed at once (default 1)")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("refs", help="regenerate regression references at the ci parameters")
    p.add_argument("chapter", nargs="*")
    p.set_defaults(func=cmd_refs)
    p = sub.add_parser("lint", help="ruff over src, tests, benchmarks and the chapters' code cells")
    p.add_argument("--fix", action="store_true", help="apply ruff's safe fixes (chapters are reported, not edited)")
    p.set_defaults(func=cmd_lint)
    p = sub.add_parser("sweep", help="execute a chapter over a parameter grid on a Dask cluster")
    p.add_argument("chapter")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="one grid axis (repeat for more; values read as YAML)")
    p.add_argument("--seeds", type=int, help="also run K values of the chapter's seed parameter")
    p.add_argument("--set", default=ch.FULL, help="parameter set the grid starts from (full or ci)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster (default 2)")
    where.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--out", type=Path, help="sweep folder (default _build/sweeps/CHAPTER)")
    p.add_argument("--metric", help="headline number to plot (default: the chapter's first)")
    p.add_argument("--table", default="results.parquet", help="table file name: .parquet or .csv")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except ParameterError as err:
        print(f"stlearn: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stlearn: interrupted; finished results are kept (a re-run resumes)", file=sys.stderr)
        return 130
    except Exception as err:  # a chapter's own check failing inside the kernel
        from papermill.exceptions import PapermillExecutionError

        if isinstance(err, PapermillExecutionError) and err.ename == "ParameterError":
            print(f"stlearn: error: {err.evalue}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
