"""Regression tests that bite: nbval fails on a 1% change of the noise scale, and sees every printed digit."""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import sanitize

from stlearn.tooling import chapters as ch
from stlearn.tooling import portability, regression

ROOT = ch.repo_root()
CHAPTERS = list(ch.chapters(ROOT))


@pytest.mark.slow
def test_nbval_regression_fails_when_the_noise_scale_changes_by_one_percent(tmp_path):
    """Re-run the zero_loss reference with the library's noise scaled by 1.01: nbval must report differing outputs."""
    if "zero_loss" not in CHAPTERS:
        pytest.skip("the zero_loss chapter is not in the book")
    result = portability.nbval_with_noise_factor("zero_loss", 1.01, ROOT, tmp_path)
    log = tmp_path / "perturb.log"
    output = result.stdout + result.stderr
    assert log.is_file() and "factor=1.01" in log.read_text(), \
        f"the perturbation never reached the kernel:\n{output[-3000:]}"
    assert result.returncode != 0, "nbval passed although the noise scale changed by 1%"
    assert "Cell outputs differ" in output, f"nbval failed, but not on differing outputs:\n{output[-3000:]}"
    assert "Cell execution caused an exception" not in output


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_printed_number_in_the_references_stays_visible_to_nbval(name):
    """Change any digit a chapter printed: after sanitizing, nbval still sees the change."""
    path = regression.reference_path(name, ROOT)
    if not path.is_file():
        pytest.fail(f"no regression reference for {name}: run `stlearn refs {name}`")
    hidden = []
    raw = [t for c in nbformat.read(path, 4).cells if c.cell_type == "code"
           and "nbval-ignore-output" not in c.metadata.get("tags", []) for o in c.get("outputs", [])
           for t in ([o.text] if o.output_type == "stream" else [v for k, v in o.get("data", {}).items()
                                                                 if isinstance(v, str) and "image/" not in k])]
    for text in raw:
        clean = sanitize(text)
        for m in re.finditer(r"\d", text):
            changed = text[:m.start()] + str((int(m.group()) + 1) % 10) + text[m.end():]
            if sanitize(changed) == clean:
                hidden.append(text[max(0, m.start() - 30):m.end() + 30])
    assert not hidden, f"{name}: printed digits hidden by the sanitizers: {hidden[:5]}"
