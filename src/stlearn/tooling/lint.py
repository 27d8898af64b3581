"""Lint: ruff over the code and over every chapter's code cells.

Ruff reads Python files, so each chapter (a MyST notebook) is exported by
jupytext to a percent-format script under ``_build/lint/`` first; the
per-file rules for those scripts are in ``pyproject.toml`` (imports follow the
parameters cell). A finding in a chapter names the exported script and line;
the cell is the ``# %%`` block above it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from . import chapters as ch

CODE = ["src", "tests", "benchmarks", "book/_ext"]
EXPORT = Path("_build") / "lint"
MAX_VISIBLE_LINES = 15  # a visible code cell is a call plus a table or a figure; analysis lives in the library
HIDDEN = {"remove-cell", "remove-input", "hide-input", "hide-cell", "parameters"}


def long_cells(root: Path) -> list[str]:
    """Every visible code cell of more than :data:`MAX_VISIBLE_LINES` non-blank lines, as ``chapter: cell N``."""
    import jupytext

    found = []
    for name, path in ch.chapters(root).items():
        code = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
        for i, c in enumerate(code, 1):
            lines = [l for l in c.source.splitlines() if l.strip()]
            if not HIDDEN & set(c.metadata.get("tags", [])) and len(lines) > MAX_VISIBLE_LINES:
                found.append(f"{name}: code cell {i} shows {len(lines)} lines (at most {MAX_VISIBLE_LINES}: "
                             f"move the analysis into the library, or hide it), starting {lines[0][:60]!r}")
    return found


def export_chapters(root: Path) -> Path:
    """Every chapter's code cells as ``_build/lint/<chapter>.py`` (a fresh folder); returns it."""
    import jupytext

    out = root / EXPORT
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name, path in ch.chapters(root).items():
        nb = jupytext.read(path)
        nb.cells = [c for c in nb.cells if c.cell_type == "code" and not c.source.lstrip().startswith(("%", "!"))]
        jupytext.write(nb, out / f"{name}.py", fmt="py:percent")
    return out


def lint(fix: bool = False, root: Path | None = None) -> int:
    """Run ruff; returns its exit status (0: clean)."""
    root = root or ch.repo_root()
    scripts = export_chapters(root)
    cmd = [sys.executable, "-m", "ruff", "check", *CODE]
    status = subprocess.run([*cmd, *(["--fix"] if fix else [])], cwd=root, check=False).returncode
    status |= subprocess.run([sys.executable, "-m", "ruff", "check", str(scripts.relative_to(root))], cwd=root,
                             check=False).returncode
    for finding in long_cells(root):
        print(finding)
        status |= 1
    return status
