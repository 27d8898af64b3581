"""The chapters' helpers (stlearn.tooling.notebook): rounded printed numbers, and a headline that closes the audit."""

import math

import numpy as np
import pytest

import stlearn as st
from stlearn import streams
from stlearn.tooling import notebook


@pytest.fixture
def audit_off(monkeypatch):
    monkeypatch.setattr(streams, "_LOG", None)


@pytest.fixture
def chapter_setup(audit_off):
    """``notebook.setup()`` as a chapter calls it, with the process's torch and matplotlib settings restored after."""
    import matplotlib
    import torch

    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    with matplotlib.rc_context():
        notebook.setup()
        yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


def test_printed_numbers_are_rounded_and_counts_stay_integers():
    rounded = notebook.rounded
    assert rounded(0.0123456) == 0.0123 and rounded(123456.0) == 123000.0
    assert rounded(10) == 10 and isinstance(rounded(np.int64(10)), int) and str(rounded(3)) == "3"
    assert math.isnan(rounded(float("nan")))


def _task():
    inputs = st.gaussian_inputs(5, rank=2, rng=st.Stream(0).child("task"))
    return st.Task(inputs, st.linear_target(inputs, 1, rng=st.Stream(0).child("target")), sigma=0.5)


def test_headline_records_the_disjoint_sets_drawn_since_setup(chapter_setup):
    rng = st.Stream(0)
    st.draw(_task(), 10, rng.child("student_data", 0))
    st.draw(_task(), 10, rng.child("student_data", 0))  # the same set again (a paired run): counts once
    st.draw(_task(), 50, rng.child("test", 0), label_noise=False)
    out = notebook.headline(err=0.123456, runs=10, ok=True)
    assert out == {"err": 0.1235, "runs": 10, "ok": True, "disjoint_sets": 2}


def test_headline_fails_the_chapter_when_two_sets_share_an_input(chapter_setup):
    """A student's training set that is a prefix of the teacher's: the chapter stops at its headline."""
    rng = st.Stream(0)
    st.draw(_task(), 200, rng.child("teacher_data", 0))
    st.draw(_task(), 20, rng.child("teacher_data", 0))
    with pytest.raises(AssertionError, match=r"sample sets overlap: .*teacher_data\[0\].* share \d+ inputs"):
        notebook.headline(err=1.0)


def test_headline_needs_setup(audit_off):
    with pytest.raises(RuntimeError, match=r"no audit is on"):
        notebook.headline(err=1.0)


def test_the_ci_preamble_pins_every_kernel_library_to_avx2_code_before_it_loads():
    """The hidden first cell of ci runs, run in a fresh interpreter: torch's kernels at AVX2, MKL on its
    processor-independent branch, NumPy's loops without AVX-512, one thread (the regression references
    must not depend on the processor or the core count)."""
    import subprocess
    import sys

    probe = notebook.CI_PREAMBLE + """
import numpy as np
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

print(torch.backends.cpu.get_cpu_capability(), os.environ["MKL_CBWR"], torch.get_num_threads(),
      [f for f in __cpu_dispatch__ if __cpu_features__.get(f) and f in ("X86_V4", "AVX512_ICL", "AVX512_SPR")])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] in ("AVX2", "DEFAULT") and out[1] == "COMPATIBLE" and out[2] == "1", out
    assert out[3] == "[]", f"NumPy still dispatches to AVX-512 loops: {out[3:]}"
