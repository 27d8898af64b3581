"""Regression references: each chapter executed at its "ci" parameters, stored in ``tests/references``.

nbval re-executes a reference and compares every output with the stored one.
A reference records the hash of the chapter source it was made from, so a test
can tell when it is stale; ``stlearn refs`` regenerates them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from . import chapters as ch
from .build import executed_chapter

CI = ch.CI


def reference_path(name: str, root: Path | None = None) -> Path:
    return (root or ch.repo_root()) / "tests" / "references" / f"{name}.ipynb"


def regenerate(names=None, root: Path | None = None) -> list[Path]:
    root = root or ch.repo_root()
    written = []
    for name in names or ch.chapters(root):
        ch.chapter_path(name, root)
        executed, _ = executed_chapter(name, CI, root)
        target = reference_path(name, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(executed, target)
        written.append(target)
    return written


def staleness(name: str, root: Path | None = None) -> str | None:
    """Why the reference of ``name`` is out of date, or None when it is current."""
    root = root or ch.repo_root()
    ref = reference_path(name, root)
    if not ref.is_file():
        return f"no reference for {name}: run `stlearn refs {name}`"
    meta = nbformat.read(ref, as_version=4).metadata.get("stlearn", {})
    if meta.get("source_sha256") != ch.source_hash(ch.chapter_path(name, root)):
        return f"reference for {name} was made from another version of its source: run `stlearn refs {name}`"
    if meta.get("parameters") != ch.resolve_parameters(name, None, CI, root):
        return f"reference for {name} was made with other ci parameters: run `stlearn refs {name}`"
    return None
