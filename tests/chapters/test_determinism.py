"""Determinism: the same parameters and seed give identical printed outputs, in a fresh kernel, offline."""

from __future__ import annotations

import json

import nbformat
import pytest
from conftest import sanitize

from stlearn.tooling import chapters as ch
from stlearn.tooling.build import executed_chapter

ROOT = ch.repo_root()


def printed_outputs(nb) -> list[tuple[int, str]]:
    """Every text a reader or a program sees, by code cell: streams, text and JSON results, glued values."""
    found = []
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        if "injected-parameters" in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                found.append((i, f"{out.name}: {out.text}"))
            elif out.output_type == "error":
                found.append((i, f"error: {out.ename}: {out.evalue}"))
            else:
                for mime, data in sorted(out.get("data", {}).items()):
                    if "image/" in mime:
                        continue
                    found.append((i, f"{mime}: {data if isinstance(data, str) else json.dumps(data, sort_keys=True)}"))
    return [(i, sanitize(t)) for i, t in found]


@pytest.mark.slow
def test_same_parameters_and_seed_give_identical_printed_outputs(seeded_chapter, network_guard, monkeypatch, tmp_path):
    """Execute a chapter again at ci settings and compare every printed output with the first execution.

    The first execution is the build's cached one (same source, library and
    parameters, by its cache key), or a fresh one; the second runs in a new
    kernel, under the network guard.
    """
    name = seeded_chapter
    first, _ = executed_chapter(name, "ci", ROOT, progress=False)
    for key in ("PYTHONPATH", "STLEARN_NET_LOG"):
        monkeypatch.setenv(key, network_guard.env[key])
    second = ch.execute(name, tmp_path / f"{name}.ipynb", None, "ci", ROOT, progress=False)
    a, b = printed_outputs(nbformat.read(first, 4)), printed_outputs(nbformat.read(second, 4))
    assert a, f"{name} printed nothing to compare"
    assert len(a) == len(b), f"{name}: {len(a)} outputs in the first run, {len(b)} in the second"
    for (cell, x), (_, y) in zip(a, b):
        assert x == y, \
            f"{name}: code cell {cell} printed different outputs with the same seed:\n{x[:500]}\n---\n{y[:500]}"
    assert network_guard.guarded_processes(), "the chapter's kernel did not run under the network guard"
    assert not network_guard.blocked(), f"executing {name} tried to reach the network: {network_guard.blocked()}"
