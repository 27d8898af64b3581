"""The regression suite's comparison: text exactly, numbers within the tolerance stated once, in force in nbval."""

from __future__ import annotations

import os
import subprocess

import nbformat
import pytest
from conftest import ROOT

from stlearn.tooling.regression import TOLERANCE, Printed, nbval_command, numbers_agree, same_printed

# pairs printed by the same float64 value rounded on either side of a boundary, or round-off sizes
AGREE = [("0.1255 [0.1015, 0.1494]", "0.1254 [0.1015, 0.1494]"), ("PSNR 36.06 dB", "PSNR 36.07 dB"),
         ("ratio 1.003", "ratio 1.002"), ("gap 3.1e-15", "gap 7.2e-14"), ("lr 2.50e-05", "lr 2.51e-05"),
         ("-0.000", "0.000"), ("0.1", "0.0999"),
         ("  0.0491   4.88e-15\n  0.0294   1.71e-29",  # columns aligned to the widest number
          "  0.0491   3.99e-15\n  0.0294    1.7e-29"), ("0.30000000000000004", "0.3000000000000001")]
# a second unit of the last digit, another integer, other text, another count of numbers
DIFFER = [("0.1255", "0.1253"), ("step=110", "step=111"), ("lam=1, step=110", "lam=3, step=110"),
          ("ST beats base", "base beats ST"), ("0.1 0.2", "0.1"), ("lr 2.50e-05", "lr 2.52e-05"),
          ("mean 0.5000000000", "mean 0.5000100000"), ("nan", "0.0"), ("0.1", "0.0998"), ("a b\nc", "a b c")]


@pytest.mark.parametrize("reference, test", AGREE)
def test_numbers_rounded_on_either_side_of_a_boundary_agree(reference, test):
    assert same_printed(reference, test) and Printed(reference) == test and not Printed(reference) != test


@pytest.mark.parametrize("reference, test", DIFFER)
def test_anything_beyond_the_tolerance_differs(reference, test):
    assert not same_printed(reference, test) and Printed(reference) != test


def test_the_tolerance_is_stated_once_and_tight():
    assert TOLERANCE == {"rel": 1e-6, "abs": 1e-9}
    assert numbers_agree("1234567.0", "1234567.5") and not numbers_agree("1234567", "1234569")
    assert not numbers_agree("0.5000", "0.5002", rel=0.0)


_PRINT = "print(f'error {0.12545 + SHIFT:.4f} [0.1015, 0.1494] after 110 steps')"


def _notebook(path, shift_reference: float, shift_run: float) -> None:
    """A one-cell notebook whose stored output printed ``shift_reference`` and whose code prints ``shift_run``."""
    source = _PRINT.replace("SHIFT", repr(shift_run))
    shown = f"error {0.12545 + shift_reference:.4f} [0.1015, 0.1494] after 110 steps\n"
    cell = nbformat.v4.new_code_cell(source, execution_count=1,
                                     outputs=[nbformat.v4.new_output("stream", name="stdout", text=shown)])
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)


def _nbval(path) -> subprocess.CompletedProcess:
    """nbval on ``path`` with this suite's conftest.py loaded as a plugin, as for the references."""
    cmd = nbval_command([path], ROOT, "-p", "conftest", "--rootdir", str(path.parent))
    env = {**os.environ, "STLEARN_ROOT": str(ROOT),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")])}
    return subprocess.run(cmd, cwd=path.parent, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_nbval_compares_with_the_tolerance(tmp_path):
    """nbval itself, with tests/conftest.py: one unit of the last digit passes, two fail."""
    boundary, moved = tmp_path / "boundary.ipynb", tmp_path / "moved.ipynb"
    _notebook(boundary, 1e-9, -1e-9)  # 0.1255 stored, 0.1254 printed now
    _notebook(moved, 0.0, -0.0002)  # 0.1255 stored, 0.1253 printed now
    passed, failed = _nbval(boundary), _nbval(moved)
    assert passed.returncode == 0, f"nbval failed on a rounding boundary:\n{passed.stdout[-3000:]}"
    assert failed.returncode != 0 and "Cell outputs differ" in failed.stdout, \
        f"nbval passed a change of two units:\n{failed.stdout[-3000:]}"
