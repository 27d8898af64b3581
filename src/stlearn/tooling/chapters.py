"""The book's chapters: where they are, their parameters, and how to execute them.

A chapter is a MyST-markdown notebook ``book/<name>.md`` listed in ``_toc.yml``.
Its one code cell tagged ``parameters`` holds the full settings (the set "full"), each
line documented as ``name = value  # description [spec]`` where ``spec`` is the
valid range, e.g. ``[int >= 1]``, ``[float > 0]``, ``[float in [0, 1]]``,
``[float list >= 0]``, ``[bool]`` or ``[str: a|b]``. Other parameter sets
(the small "ci" set) live in ``book/parameters/<name>.yaml``.

Execution goes through papermill, always into a temporary file that replaces
the target only once the run has finished, so a crash never leaves a partial
notebook behind.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..validation import ParameterError, check_choice, check_float, check_int

FULL = "full"
CI = "ci"  # the small set of the regression tests


# --------------------------------------------------------------------------- locations
def repo_root() -> Path:
    """The checkout holding ``_toc.yml``: found from the working directory, else from this package."""
    env = os.environ.get("STLEARN_ROOT")
    if env:
        return Path(env).resolve()
    for base in [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[3]]:
        if (base / "_toc.yml").is_file() and (base / "book").is_dir():
            return base
    raise FileNotFoundError("cannot find the book (a folder with _toc.yml and book/); set STLEARN_ROOT")


def toc_files(root: Path | None = None) -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as paths without extension."""
    toc = yaml.safe_load((root or repo_root()).joinpath("_toc.yml").read_text())
    pages: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    pages.append(node[key])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []):
                    walk(child)

    walk(toc)
    return pages


def _is_notebook(path: Path) -> bool:
    head = path.read_text().split("\n---", 1)[0] if path.suffix == ".md" else ""
    return "kernelspec" in head


def chapters(root: Path | None = None) -> dict[str, Path]:
    """Executable chapters by name, in reading order."""
    root = root or repo_root()
    found = {}
    for page in toc_files(root):
        path = root / f"{page}.md"
        if path.is_file() and _is_notebook(path):
            found[path.stem] = path
    return found


def chapter_path(name: str, root: Path | None = None) -> Path:
    known = chapters(root)
    if name not in known:
        raise ParameterError(f"unknown chapter {name!r}; valid chapters: {', '.join(known)}")
    return known[name]


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    description: str
    spec: str

    def check(self, value: Any) -> Any:
        """Validate ``value`` against the spec; returns it normalised (ints for int specs)."""
        spec = self.spec.strip()
        if spec == "bool":
            if not isinstance(value, bool):
                raise ParameterError(f"{self.name} must be true or false; got {value!r}")
            return value
        if spec.startswith("str:"):
            return check_choice(self.name, value, [c.strip() for c in spec[4:].split("|")])
        m = re.fullmatch(r"(int|float)( list)?\s*(.*)", spec)
        if not m:
            raise ValueError(f"chapter parameter {self.name}: cannot read spec [{spec}]")
        kind, is_list, rng = m.groups()
        if is_list:
            if not isinstance(value, (list, tuple)) or len(value) == 0:
                raise ParameterError(f"{self.name} must be a non-empty list of {kind}s {rng}; got {value!r}")
            return [self._check_scalar(f"{self.name}[{i}]", kind, rng, v) for i, v in enumerate(value)]
        return self._check_scalar(self.name, kind, rng, value)

    @staticmethod
    def _check_scalar(name: str, kind: str, rng: str, value: Any):
        low = high = None
        low_open = False
        if m := re.fullmatch(r"(>=|>)\s*(\S+)", rng):
            low, low_open = float(m.group(2)), m.group(1) == ">"
        elif m := re.fullmatch(r"in\s*([\[(])\s*(\S+)\s*,\s*(\S+)\s*\]", rng):
            low, low_open, high = float(m.group(2)), m.group(1) == "(", float(m.group(3))
        elif rng:
            raise ValueError(f"chapter parameter {name}: cannot read range {rng!r}")
        if kind == "int":
            return check_int(name, value, low=int(low) + int(low_open) if low is not None else -(2**63),
                             high=None if high is None else int(high))
        return check_float(name, value, low=low, high=high, low_open=low_open)


_LINE = re.compile(r"^\s*#?\s*(?P<desc>.*?)\s*\[(?P<spec>[^\[\]]*(?:\[[^\]]*\][^\[\]]*)?)\]\s*$")


def _parameters_cell(path: Path) -> str:
    import jupytext

    nb = jupytext.read(path)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path.name}: expected one cell tagged 'parameters', found {len(cells)}")
    return cells[0].source


@cache
def _parameters_cached(path: Path, mtime: float) -> dict[str, Parameter]:
    source = _parameters_cell(path)
    lines = source.splitlines()
    params = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"{path.name}: the parameters cell may only hold 'name = literal' lines")
        name = node.targets[0].id
        comment = lines[node.lineno - 1].split("#", 1)[1] if "#" in lines[node.lineno - 1] else ""
        m = _LINE.match(comment)
        if not m:
            raise ValueError(f"{path.name}: parameter {name} needs a comment '# description [spec]'")
        params[name] = Parameter(name, ast.literal_eval(node.value), m["desc"], m["spec"])
    return params


def parameters(name: str, root: Path | None = None) -> dict[str, Parameter]:
    """The chapter's parameters with their full defaults, descriptions and valid ranges."""
    path = chapter_path(name, root)
    return _parameters_cached(path, path.stat().st_mtime)


def parameter_sets(name: str, root: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{"full": {}, "ci": {...}, ...}``: overrides of the defaults by set name."""
    root = root or repo_root()
    sets: dict[str, dict[str, Any]] = {FULL: {}}
    file = root / "book" / "parameters" / f"{name}.yaml"
    if file.is_file():
        sets.update({k: dict(v or {}) for k, v in yaml.safe_load(file.read_text()).items()})
    return sets


def resolve_parameters(name: str, overrides: Mapping[str, Any] | None = None,
                       param_set: str = FULL, root: Path | None = None) -> dict[str, Any]:
    """Validated values for one run: the set's values, then ``overrides``; raises on any bad name or value."""
    known = parameters(name, root)
    sets = parameter_sets(name, root)
    if param_set not in sets:
        raise ParameterError(f"unknown parameter set {param_set!r} for {name}; valid sets: {', '.join(sets)}")
    values = {**sets[param_set], **dict(overrides or {})}
    unknown = [k for k in values if k not in known]
    if unknown:
        listing = ", ".join(f"{p.name} (default {p.default!r})" for p in known.values())
        raise ParameterError(f"unknown parameter(s) {', '.join(unknown)} for chapter {name}; valid: {listing}")
    return {k: known[k].check(v) for k, v in values.items()}


# --------------------------------------------------------------------------- execution
def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# the tooling modules a chapter kernel imports: they shape its outputs (rounding, glue, the scheme figure)
KERNEL_TOOLING = ("notebook.py", "scheme.py")


def library_hash() -> str:
    """Hash of the code a chapter runs: the science in ``stlearn`` and the tooling its kernel imports.

    Editing the CLI, the build, the sweep or the regression tooling re-runs no chapter.
    """
    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        rel = f.relative_to(pkg)
        if rel.parts[0] == "tooling" and rel.name not in KERNEL_TOOLING:
            continue
        h.update(rel.as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def execution_key(name: str, values: Mapping[str, Any], root: Path | None = None, library: str | None = None) -> str:
    """The key of one execution: chapter source, library source (``library``: its hash, if known) and values."""
    h = hashlib.sha256()
    for part in (source_hash(chapter_path(name, root)), library or library_hash(), json.dumps(values, sort_keys=True)):
        h.update(part.encode())
    return h.hexdigest()[:20]


def kernel_env(threads: int | None = None) -> dict[str, str]:
    """Environment for chapter kernels: no progress bars in outputs, fixed hashing, headless plots.

    ``threads`` caps the kernel's OpenMP threads (when several chapters run at once).
    """
    env = {"TQDM_DISABLE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    return env if threads is None else {**env, "OMP_NUM_THREADS": str(threads)}


def _kernel_manager(env: Mapping[str, str]):
    """A kernel manager class whose kernels start with ``env`` on top of this process's environment.

    Papermill passes no environment to the kernel it starts; jupyter_client's public ``start_kernel`` takes
    the launch's ``env`` (a Popen argument), so it goes in there rather than into ``os.environ``: the
    caller's process is left as it was.
    """
    from jupyter_client.manager import AsyncKernelManager

    class ChapterKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw["env"] = {**os.environ, **kw.get("env", {}), **env}
            return await super().start_kernel(**kw)

    return ChapterKernelManager


def execute(name: str, output: Path, overrides: Mapping[str, Any] | None = None, param_set: str = FULL,
            root: Path | None = None, progress: bool = True, threads: int | None = None) -> Path:
    """Execute a chapter with papermill into ``output`` (written atomically); returns ``output``.

    ``threads``: the kernel's OpenMP thread count (default: the library's own choice).
    """
    import jupytext
    import papermill as pm

    root = root or repo_root()
    path = chapter_path(name, root)
    values = resolve_parameters(name, overrides, param_set, root)
    nb = jupytext.read(path)
    if param_set == CI:
        nb.cells.insert(0, _ci_preamble_cell())
    nb.metadata["stlearn"] = {
        "chapter": name,
        "parameter_set": param_set,
        "parameters": values,
        "source_sha256": source_hash(path),
    }
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=output.parent, prefix=f".{output.stem}-")
    os.close(fd)
    # papermill cannot read our "# meaning [spec]" comments: it would warn on every line, and call every
    # parameter unknown (ours are checked against their specs above)
    logging.getLogger("papermill.translators").setLevel(logging.ERROR)
    logging.getLogger("papermill").addFilter(_drop_unknown_parameter_warnings)
    try:
        pm.execute_notebook(nb, tmp, parameters=values, cwd=str(path.parent), kernel_name="python3",
                            progress_bar=progress, report_mode=False, language="python",
                            kernel_manager_class=_kernel_manager(kernel_env(threads)),
                            shutdown_kernel="immediate")  # every output is in: a graceful exit cost 1-3 s
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output


def _ci_preamble_cell():
    """The hidden first cell of "ci" runs (:data:`stlearn.tooling.notebook.CI_PREAMBLE`)."""
    import nbformat

    from .notebook import CI_PREAMBLE

    return nbformat.v4.new_code_cell(CI_PREAMBLE, metadata={"tags": ["remove-cell"]})


def _drop_unknown_parameter_warnings(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Passed unknown parameter")
