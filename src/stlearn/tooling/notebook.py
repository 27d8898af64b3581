"""Helpers for the chapters: set-up, glued numbers and figures, headline metrics.

``headline(...)`` is how a chapter exposes its key numbers in machine-readable
form: one JSON output carrying the mime type :data:`HEADLINE_MIME`, which
``stlearn sweep`` reads back from the executed notebook. Numbers quoted in the
prose are glued separately with :func:`glue_numbers`.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers

import torch
from IPython.display import display

from .. import streams
from ..plotting import use_book_style

HEADLINE_MIME = "application/vnd.stlearn.headline+json"
_TABLE_IDS = itertools.count()  # one id per table of a run: its styles apply to it alone, and re-runs match


# The hidden first cell of every "ci" run (regression references, the ci site): ci runs compute in float64.
# Processors sum in their own order (vector widths, threads, MKL's and oneDNN's branches), so float32 training
# made on one processor printed other third digits on another: references made on an AVX-512 Xeon failed on
# an EPYC even with every kernel capped at AVX2. In float64 the same sums agree to about 1e-12 after training,
# and the regression suite compares printed numbers within a tolerance stated once
# (:data:`stlearn.tooling.regression.TOLERANCE`), so no kernel, thread count or instruction set is pinned.
# It lives here, in a module the chapters' cache key hashes, because it shapes their ci outputs.
CI_PREAMBLE = """import torch

# ci runs: float64, so that any processor, kernel and thread count prints the same numbers
torch.set_default_dtype(torch.float64)"""


def setup(threads: int | None = None) -> torch.device:
    """Book style, deterministic algorithms, the audit of drawn sets on; returns the device (CUDA when present).

    :func:`headline` closes the audit: it fails the chapter if two different sets of
    inputs drawn in it (a teacher's, a student's, a validation or a test set) share an input.
    """
    use_book_style()
    streams.audit()
    # the flag eager kernels read; torch.use_deterministic_algorithms also imports torch._inductor (1.5 s a
    # chapter) to set torch.compile's, which the book never uses
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    from ..device import default_device

    return default_device()


def rounded(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant digits (printed numbers must be stable); integers stay integers."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)  # counts such as "10 seeds", not "10.0 seeds"
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def glue_numbers(digits: int = 3, **values: float) -> None:
    """Glue each value, rounded, under its name for ``{glue:text}`name``` in the prose."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, rounded(value, digits), display=False)


def glue_interval(digits: int = 3, **comparisons: dict) -> None:
    """Glue each paired comparison as the book prints one, ``"+0.032 [0.003, 0.061]"`` (mean gain [95% interval],
    :func:`stlearn.protocol.interval_text`), under its name: the one way an interval reaches the prose."""
    from myst_nb import glue

    from ..protocol import interval_text

    for name, comparison in comparisons.items():
        glue(name, interval_text(comparison, digits), display=False)


def glue_figure(name: str, fig) -> None:
    """Glue a figure for a ``{glue:figure}`` directive (shown once, where the prose places it)."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


class Table:
    """A results table as a reader wants it: HTML on the site, plain aligned text for terminals and nbval.

    The HTML comes from pandas' Styler with an id counted in the run (the same on every run); floats show
    ``decimals`` decimals; rows where ``highlight`` is true (the primary comparison) are set in bold.
    """

    def __init__(self, df, highlight=None, index: bool = False, decimals: int = 3, caption: str | None = None):
        import pandas as pd

        self.df, self.index, self.decimals, self.caption = df, index, decimals, caption
        self.id = f"t{next(_TABLE_IDS)}"
        self.highlight = (pd.Series(False, index=df.index) if highlight is None
                          else pd.Series(list(highlight), index=df.index, dtype=bool))

    def _repr_html_(self) -> str:
        from pandas.io.formats.style import Styler

        styler = Styler(self.df, uuid=self.id, cell_ids=False, precision=self.decimals, caption=self.caption)
        styler = styler.set_table_attributes('class="stlearn-table"')
        if not self.index:
            styler = styler.hide(axis="index")
        marked = self.highlight
        styler = styler.apply(lambda row: ["font-weight: bold" if marked[row.name] else "" for _ in row], axis=1)
        return styler.to_html()

    def __repr__(self) -> str:
        shown = self.df.round(self.decimals) if self.decimals is not None else self.df
        text = shown.to_string(index=self.index)
        marks = [("* " if m else "  ") for m in self.highlight] if self.highlight.any() else None
        if marks:  # the highlighted rows marked in the text too; the header line keeps its alignment
            lines = text.split("\n")
            text = "\n".join(["  " + lines[0]] + [m + line for m, line in zip(marks, lines[1:])])
        return (f"{self.caption}\n" if self.caption else "") + text


def show_table(df, highlight=None, index: bool = False, decimals: int = 3, caption: str | None = None) -> None:
    """Display ``df`` as a :class:`Table` (``highlight``: a boolean per row, e.g. the primary comparison)."""
    display(Table(df, highlight, index, decimals, caption))


def headline(digits: int = 4, **values: float | str) -> dict:
    """Record the chapter's headline numbers (rounded) as one JSON display output.

    Two keys are text: ``claim``, the paper's claim the chapter tests, and ``finding``, what the chapter
    finds (computed from its numbers, never typed); with ``primary`` (the name of the primary
    comparison), ``primary_gain``, ``primary_low``, ``primary_high`` and ``figure`` (the glue name of
    its key figure) they make the chapter's row of the findings table (``stlearn.tooling.build.findings``).

    First checks that the sets of inputs drawn since :func:`setup` are disjoint
    (:func:`stlearn.streams.assert_disjoint`); their number is recorded as ``disjoint_sets``.
    """
    values = {**values, "disjoint_sets": streams.assert_disjoint()}
    out = {k: rounded(v, digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
           for k, v in values.items()}
    display({HEADLINE_MIME: out, "text/plain": json.dumps(out, sort_keys=True)}, raw=True)
    return out


def headline_of(notebook) -> dict:
    """The headline an executed chapter displayed (its last ``headline(...)`` call)."""
    import nbformat

    found = None
    for cell in nbformat.read(notebook, as_version=4).cells:
        for out in cell.get("outputs", []):
            if HEADLINE_MIME in out.get("data", {}):
                found = out["data"][HEADLINE_MIME]
    if found is None:
        raise ValueError(f"{getattr(notebook, 'name', notebook)}: the chapter displayed no headline(...) numbers")
    return dict(found)
