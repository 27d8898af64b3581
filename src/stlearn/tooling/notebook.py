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
import warnings

import torch
from IPython.display import display

from .. import streams
from ..plotting import use_book_style
from ..stats import MISSING  # a table's missing value, one symbol for the collapsed intervals and the rest

HEADLINE_MIME = "application/vnd.stlearn.headline+json"
_CHECKS: list[tuple[str, bool, bool]] = []  # the chapter's checks so far, (claim, asserted, holds); setup() resets
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
    _CHECKS.clear()
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


COLUMN_PX = 720  # the widest a figure is shown on the site: the theme's text column at 1280 px, rounded up
RESOLUTION = 2.5  # image pixels per displayed pixel, before cropping to the drawing: at least 2 after it

MIN_TEXT_PT = 9.0  # the smallest text a figure may show, in points at its displayed width (96 CSS px an inch)


def figure_png(fig) -> tuple[bytes, int]:
    """``fig`` as a PNG of about ``RESOLUTION * COLUMN_PX`` pixels across, and the width to show it at (pixels).

    Every figure is drawn at the same pixel width whatever its size in inches, and shown at most
    ``COLUMN_PX`` wide, so that each has at least twice the pixels of its displayed width.
    """
    import io

    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=_dpi(fig), bbox_inches="tight")
    png = out.getvalue()
    return png, min(COLUMN_PX, _png_width(png) // 2)  # at least two image pixels a displayed one


def smallest_text_pt(fig, png: bytes, shown_px: int) -> float:
    """The smallest visible text of ``fig``, drawn as ``png`` by :func:`figure_png` and shown ``shown_px``
    wide, in points at that size (96 CSS pixels an inch): a figure shown narrower than it was drawn shrinks
    its text."""
    from matplotlib.text import Text

    scale = shown_px / (_png_width(png) / _dpi(fig) * 96)  # CSS inches shown per figure inch
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and _shown(t)]
    return min(sizes, default=float("inf")) * scale


def _dpi(fig) -> float:
    return RESOLUTION * COLUMN_PX / fig.get_size_inches()[0]


def _png_width(png: bytes) -> int:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png)).width


def _unlabel_minor_log_ticks(fig) -> None:
    """Log axes labelled without collisions: matplotlib labels minor ticks (3x10^1, 4x10^1, ...) on axes
    spanning a decade or two, where they run into each other. With two major ticks in view the minor ones
    go unlabelled; with fewer, the ticks at 1, 2 and 5 times a power of ten (every tick where that leaves
    fewer than two) are labelled as plain numbers."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def mantissa(value):
        return round(value / 10 ** math.floor(math.log10(value)), 6) if value > 0 else 0

    def plain(keep):
        return FuncFormatter(lambda value, _pos: f"{value:g}" if mantissa(value) in keep else "")

    for ax in fig.axes:
        for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if axis.get_scale() != "log":
                continue
            low, high = sorted((low, high))
            if sum(low <= t <= high for t in axis.get_majorticklocs()) >= 2:
                axis.set_minor_formatter(NullFormatter())
                continue
            ticks = [t for t in (*axis.get_majorticklocs(), *axis.get_minorticklocs()) if low <= t <= high]
            keep = {1, 2, 5} if sum(mantissa(t) in (1, 2, 5) for t in ticks) >= 2 else set(range(1, 10))
            axis.set_major_formatter(plain(keep))
            axis.set_minor_formatter(plain(keep))


def _shown(artist) -> bool:  # visible itself and inside visible axes (a hidden panel's ticks are not drawn)
    ax = artist.axes
    return ax is None or ax.get_visible()


def glue_figure(name: str, fig) -> None:
    """Glue a figure for a ``{glue:figure}`` directive (shown once, where the prose places it), at twice its
    displayed resolution or more (:func:`figure_png`) with its text readable (:func:`readable_png`); the site
    links it to the full-size image."""
    import matplotlib.pyplot as plt
    from IPython.display import Image
    from myst_nb import glue

    png, width, text_pt = readable_png(fig)
    # the smallest text's size travels with the image, for the book's test of every figure
    glue(name, Image(data=png, format="png", width=width, metadata={"text_pt": round(text_pt, 2)}), display=False)
    plt.close(fig)


def readable_png(fig, tries: int = 4) -> tuple[bytes, int, float]:
    """:func:`figure_png` of ``fig`` with its smallest text at least :data:`MIN_TEXT_PT` where shown, and that
    size: a figure too wide for its text is drawn smaller (its text keeps its size in points, so it grows
    against the drawing, and less tall than wide), re-laid out by matplotlib's constrained layout when it had no
    layout of its own."""
    _unlabel_minor_log_ticks(fig)
    png, width = figure_png(fig)
    text_pt = smallest_text_pt(fig, png, width)
    for _ in range(tries):
        if text_pt >= MIN_TEXT_PT:
            break
        if fig.get_layout_engine() is None:
            fig.set_layout_engine("constrained")  # shrunk, the fixed margins of the default layout would clip
        shrink = text_pt / MIN_TEXT_PT * 0.97  # a margin: the drawing's crop changes with the size
        width_in, height_in = fig.get_size_inches()
        fig.set_size_inches(width_in * shrink, height_in * shrink ** 0.5)  # a row of panels keeps some height
        png, width = figure_png(fig)
        text_pt = smallest_text_pt(fig, png, width)
    if text_pt < MIN_TEXT_PT:
        warnings.warn(f"a figure's smallest text shows at {text_pt:.1f} pt, under {MIN_TEXT_PT:g} pt: give it "
                      "fewer panels a row or larger text", stacklevel=3)
    return png, width, text_pt


_SLIDER_SCRIPT = """<script>(function () {
  const box = document.getElementById("%s");
  const data = JSON.parse(box.querySelector("script[type='application/json']").textContent);
  const img = box.querySelector("img"), out = box.querySelector("output");
  box.querySelector("input").addEventListener("input", function (e) {
    img.src = "data:image/png;base64," + data.frames[e.target.value];
    out.textContent = data.labels[e.target.value];
  });
})();</script>"""


class Slider:
    """An interactive figure that needs no server: one precomputed frame per value of a parameter, a slider that
    swaps them (a few lines of inline JavaScript), and the ``start`` frame as the static image a printout or a
    reader without JavaScript gets. Works offline in the static site."""

    def __init__(self, frames: dict, label: str, start: str, alt: str):
        import base64

        rendered = {k: figure_png(f) for k, f in frames.items()}
        self.labels = list(rendered)
        self.frames = [base64.b64encode(png).decode() for png, _ in rendered.values()]
        self.width = min(width for _, width in rendered.values())
        self.label, self.start, self.alt = label, self.labels.index(start), alt
        self.id = f"slider{next(_TABLE_IDS)}"
        import matplotlib.pyplot as plt

        for fig in frames.values():
            plt.close(fig)

    def _repr_html_(self) -> str:
        import html

        data = json.dumps({"frames": self.frames, "labels": self.labels})
        return (f'<figure class="stlearn-slider" id="{self.id}">'
                f'<img src="data:image/png;base64,{self.frames[self.start]}" width="{self.width}" '
                f'alt="{html.escape(self.alt)}"><figcaption><label>{html.escape(self.label)} '
                f'<input type="range" min="0" max="{len(self.frames) - 1}" step="1" value="{self.start}"> '
                f'<output>{html.escape(self.labels[self.start])}</output></label></figcaption>'
                f'<script type="application/json">{data}</script></figure>' + _SLIDER_SCRIPT % self.id)

    def __repr__(self) -> str:
        return f"{self.alt} ({self.label} {', '.join(self.labels)}; interactive on the site)"


# column names as a table shows them: symbols where the book writes one, words for the rest ("_" -> " ")
HEADERS = {"lam": "λ", "sigma": "σ", "gamma": "γ", "kappa": "κ", "n_train": "n", "seed": "run",
           "test_error": "test error", "val_error": "validation error", "n_teacher": "teacher's n"}


def readable(name) -> str:
    """A column's name for a reader: ``lam`` -> ``λ``, ``test_error_low`` -> ``test error low``."""
    if not isinstance(name, str):
        return name
    for code, shown in sorted(HEADERS.items(), key=lambda kv: -len(kv[0])):
        if name == code or name.startswith(code + "_"):
            name = shown + name[len(code):]
            break
    return name.replace("_", " ")


class Table:
    """A results table as a reader wants it: HTML on the site, plain aligned text for terminals and nbval.

    The HTML comes from pandas' Styler with an id counted in the run (the same on every run); floats show
    ``decimals`` decimals; rows where ``highlight`` is true (the primary comparison) are set in bold.
    """

    def __init__(self, df, highlight=None, index: bool = False, decimals: int = 3, caption: str | None = None):
        import pandas as pd

        df = df.rename(columns=readable)
        df.index = df.index.set_names([readable(n) for n in df.index.names])
        floats = df.select_dtypes("float").columns
        if decimals is not None and len(floats):  # rounded as shown, and never "-0.000" (stlearn.stats.rounded)
            df[floats] = df[floats].round(decimals) + 0.0
        self.df, self.index, self.decimals, self.caption = df, index, decimals, caption
        self.id = f"t{next(_TABLE_IDS)}"
        self.highlight = (pd.Series(False, index=df.index) if highlight is None
                          else pd.Series(list(highlight), index=df.index, dtype=bool))

    def _repr_html_(self) -> str:
        from pandas.io.formats.style import Styler

        styler = Styler(self.df, uuid=self.id, cell_ids=False, precision=self.decimals, caption=self.caption,
                        na_rep=MISSING)
        styler = styler.set_table_attributes('class="stlearn-table"')
        if not self.index:
            styler = styler.hide(axis="index")
        marked = self.highlight
        styler = styler.apply(lambda row: ["font-weight: bold" if marked[row.name] else "" for _ in row], axis=1)
        return styler.to_html()

    def __repr__(self) -> str:
        text = self.df.to_string(index=self.index, na_rep=MISSING)
        marks = [("* " if m else "  ") for m in self.highlight] if self.highlight.any() else None
        if marks:  # the highlighted rows marked in the text too; the header lines keep their alignment
            lines = text.split("\n")
            head = len(lines) - len(marks)  # two with a named index (its name has a line of its own)
            rows = [m + line for m, line in zip(marks, lines[head:])]
            text = "\n".join(["  " + line for line in lines[:head]] + rows)
        return (f"{self.caption}\n" if self.caption else "") + text


def show_table(df, highlight=None, index: bool = False, decimals: int = 3, caption: str | None = None) -> None:
    """Display ``df`` as a :class:`Table` (``highlight``: a boolean per row, e.g. the primary comparison)."""
    display(Table(df, highlight, index, decimals, caption))


def check(claim: str, holds, asserted: bool = True) -> None:
    """One of the chapter's checks: ``claim``, in words, is what holds; ``holds``, whether it does here.

    A check that does not hold stops the chapter (an ``AssertionError`` naming the claim), so a chapter's
    claims cannot drift from its numbers unseen; :func:`show_checks` lists them all in one box. With
    ``asserted=False`` the check is shown but never stops the chapter (a claim asserted only at the full
    settings' number of runs).
    """
    _CHECKS.append((claim, bool(asserted), bool(holds)))
    if asserted and not holds:
        raise AssertionError(f"a check of the chapter failed: {claim}")


class Checks:
    """The chapter's checks (:func:`check`) in one box: one line that says how many held, the claims under it."""

    def __init__(self, checks):
        self.checks = list(checks)
        self.asserted = [(c, h) for c, a, h in self.checks if a]
        self.shown = [(c, h) for c, a, h in self.checks if not a]

    def summary(self) -> str:
        n, m, held = len(self.asserted), len(self.shown), sum(h for _, h in self.shown)
        verb = "holds" if held == 1 else "hold"
        if not n:  # every check is asserted only at the full settings' runs
            return (f"{held} of the chapter's {m} checks {verb} at these settings; they are asserted at the full "
                    "settings")
        line = f"All {n} checks of this chapter hold" if n > 1 else "The chapter's one check holds"
        return line + " at these settings" + (f"; {held} of {m} more, asserted at the full settings only, {verb} here"
                                              if m else "")

    def _repr_html_(self) -> str:
        import html

        items = "".join(f"<li>{'✓' if h else '✗'} {html.escape(c)}{'' if a else ' (not asserted here)'}</li>"
                        for c, a, h in self.checks)
        mark = "✓" if all(h for _, _, h in self.checks) else "•"
        return (f'<details class="stlearn-checks"><summary>{mark} {html.escape(self.summary())}</summary>'
                f"<ul>{items}</ul></details>")

    def __repr__(self) -> str:
        return self.summary() + "\n" + "\n".join(f"{'ok' if h else 'NO'} {c}" for c, _, h in self.checks)


def show_checks() -> None:
    """Display the checks the chapter made so far (:func:`check`) as one box (:class:`Checks`)."""
    if not _CHECKS:
        raise ValueError("show_checks: the chapter made no check(...) yet")
    display(Checks(_CHECKS))


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
