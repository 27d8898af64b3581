"""The chapters' helpers (stlearn.tooling.notebook): rounded printed numbers, and a headline that closes the audit."""

import math
import os

import numpy as np
import pandas as pd
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


def test_the_ci_preamble_makes_float64_the_dtype_of_every_model_and_data_set():
    """The hidden first cell of ci runs, run in a fresh interpreter: networks and drawn data are float64, and no
    kernel, thread count or instruction set is pinned (the regression suite compares within a tolerance)."""
    import subprocess
    import sys

    probe = notebook.CI_PREAMBLE + """
import os
import stlearn as st

net = st.MLP([4, 3, 2])
task = st.Task(st.gaussian_inputs(4), st.linear_target(st.gaussian_inputs(4), 2))
print(net.layers[0].weight.dtype, st.draw(task, 3, 0).noisy.dtype,
      [k for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS") if k in os.environ])
"""
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["torch.float64", "torch.float64", "[]"], out


def test_glue_interval_glues_the_books_interval_text(monkeypatch):
    import myst_nb

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: glued.update({name: value}))
    notebook.glue_interval(gain={"gain": 0.0321, "low": 0.0031, "high": 0.0612},
                           loss={"gain": -0.5, "low": -1, "high": 0})
    assert glued == {"gain": "+0.032 [0.003, 0.061]", "loss": "-0.500 [-1.000, 0.000]"}


def test_figures_carry_twice_the_pixels_they_are_shown_at():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from stlearn.tooling.notebook import COLUMN_PX, figure_png

    for size in ((3.0, 2.0), (6.4, 4.0), (13.0, 3.8)):
        fig, ax = plt.subplots(figsize=size)
        ax.plot([0, 1], [1, 0])
        png, shown = figure_png(fig)
        plt.close(fig)
        assert shown <= COLUMN_PX and Image.open(io.BytesIO(png)).width >= 2 * shown


def test_a_slider_swaps_precomputed_frames_and_starts_on_the_chosen_one():
    import json
    import re

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stlearn.tooling.notebook import Slider

    frames = {}
    for k in (1, 2, 3):
        fig, ax = plt.subplots()
        ax.plot([0, k], [0, 1])
        frames[f"k = {k}"] = fig
    html = Slider(frames, "slope", "k = 2", alt="lines")._repr_html_()
    data = json.loads(re.search(r"<script type=\"application/json\">(.*?)</script>", html).group(1))
    assert data["labels"] == ["k = 1", "k = 2", "k = 3"] and len(set(data["frames"])) == 3
    assert f'src="data:image/png;base64,{data["frames"][1]}"' in html and 'value="1"' in html
    assert "addEventListener" in html and "http" not in html  # self-contained: works offline


def test_a_wide_figure_is_drawn_smaller_until_its_smallest_text_reads_at_9_pt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stlearn.tooling.notebook import MIN_TEXT_PT, figure_png, readable_png, smallest_text_pt

    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8))
    axes[0].plot([1, 2], [1, 0], label="a")
    axes[0].legend(fontsize=8)
    png, shown = figure_png(fig)
    assert smallest_text_pt(fig, png, shown) < 6  # 8 pt in a 13-inch figure shown 720 px wide
    png, shown, text_pt = readable_png(fig)
    plt.close(fig)
    assert MIN_TEXT_PT <= text_pt < MIN_TEXT_PT * 1.1 and fig.get_size_inches()[0] < 8


def test_log_axes_spanning_a_decade_label_plain_numbers_that_do_not_collide():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stlearn.tooling.notebook import readable_png

    fig, ax = plt.subplots(figsize=(6.0, 3.0))
    ax.plot([30, 400], [3, 2])
    ax.set(xscale="log", yscale="log")
    readable_png(fig)
    low, high = ax.get_xlim()
    shown = [t.get_text() for t in (*ax.xaxis.get_ticklabels(), *ax.xaxis.get_ticklabels(minor=True))
             if t.get_text() and low <= t.get_position()[0] <= high]
    plt.close(fig)
    assert sorted(shown, key=float) == ["50", "100", "200"]


def test_checks_are_listed_in_one_box_and_a_failed_one_stops_the_chapter(chapter_setup):
    notebook.check("the slope is near 1", True)
    notebook.check("ST beats base at 10 runs", False, asserted=False)  # shown, not asserted at these settings
    box = notebook.Checks(notebook._CHECKS)
    assert box.summary() == ("The chapter's one check holds at these settings; 0 of 1 more, asserted at the full "
                             "settings only, hold here")
    assert notebook.Checks([("a", False, True)]).summary() == (
        "1 of the chapter's 1 checks holds at these settings; they are asserted at the full settings")
    assert "✓ the slope is near 1" in box._repr_html_() and "✗ ST beats base at 10 runs (not asserted here)" in (
        box._repr_html_())
    with pytest.raises(AssertionError, match="a check of the chapter failed: the teacher is frozen"):
        notebook.check("the teacher is frozen", False)
    notebook.setup()  # a new chapter starts with no checks
    with pytest.raises(ValueError, match="no check"):
        notebook.show_checks()


def test_a_tables_text_marks_its_highlighted_rows_with_or_without_a_named_index():
    df = pd.DataFrame({"error": [0.1, 0.2, 0.3]}, index=pd.Index([0.0, 1.0, 10.0], name="λ"))
    for index, shown in ((True, df), (False, df.reset_index())):
        lines = repr(notebook.Table(shown, [False, False, True], index, 3, None)).split("\n")
        assert len(lines) == len(df) + (2 if index else 1)  # every row kept
        assert [line[:2] for line in lines[-3:]] == ["  ", "  ", "* "] and "10.0" in lines[-1]


def test_a_table_prints_no_negative_zero_in_its_text_or_html():
    table = notebook.Table(pd.DataFrame({"gain": [-0.0001, -0.25], "method": ["a", "b"]}), decimals=3)
    assert "-0.0" not in repr(table) and "-0.25" in repr(table)
    assert "-0.000" not in table._repr_html_() and "0.000" in table._repr_html_()
