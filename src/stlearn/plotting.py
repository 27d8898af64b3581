"""One figure style for the whole book, and the plots the chapters share."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd

from .stats import summarize

# Base (no teacher) is always grey; student-teacher runs share one sequential palette.
BASE_COLOR = "#6c6c6c"
ST_CMAP = "viridis"
REFERENCE_STYLE = dict(color="black", linestyle="--", linewidth=1.2)

# Seaborn's "colorblind" palette and its "ticks" style at the "notebook" context, written out so that
# the book does not import seaborn (and scipy.stats below it) for a theme: about a second per chapter.
COLORBLIND = ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
              "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9"]
TICKS_STYLE = {
    "axes.prop_cycle": mpl.cycler(color=COLORBLIND),
    "figure.facecolor": "white", "axes.facecolor": "white", "axes.edgecolor": ".15", "axes.labelcolor": ".15",
    "text.color": ".15", "xtick.color": ".15", "ytick.color": ".15", "xtick.direction": "out",
    "ytick.direction": "out", "axes.axisbelow": True, "axes.grid": False, "grid.color": ".8", "grid.linestyle": "-",
    "lines.solid_capstyle": "round", "patch.edgecolor": "w", "patch.force_edgecolor": True,
    "font.family": ["sans-serif"],
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "axes.linewidth": 1.25, "grid.linewidth": 1, "lines.markersize": 6, "patch.linewidth": 1,
    "xtick.major.width": 1.25, "ytick.major.width": 1.25, "xtick.minor.width": 1, "ytick.minor.width": 1,
    "xtick.major.size": 6, "ytick.major.size": 6, "xtick.minor.size": 4, "ytick.minor.size": 4,
    "font.size": 12, "axes.labelsize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11,
    "legend.title_fontsize": 12,
}


def use_book_style() -> None:
    """Seaborn's ticks theme, a colour-blind-safe palette and sizes that read well on the site."""
    mpl.rcParams.update(TICKS_STYLE)
    mpl.rcParams.update({
        "figure.figsize": (6.4, 4.0),
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "savefig.bbox": "tight",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": "medium",
        "legend.frameon": False,
        "lines.linewidth": 1.8,
        "image.cmap": ST_CMAP,
    })


def lam_colors(lams) -> dict:
    """A colour per ``lam``: grey for 0 (the base loss), the ST palette for the others."""
    lams = sorted(set(float(l) for l in lams))
    positive = [l for l in lams if l > 0]
    n = max(len(positive), 1)  # evenly inside the colormap, its two ends left out (as seaborn samples it)
    palette = [tuple(c) for c in mpl.colormaps[ST_CMAP](np.linspace(0, 1, n + 2)[1:-1], bytes=False)[:, :3]]
    colors = {l: c for l, c in zip(positive, palette)}
    if 0.0 in lams:
        colors[0.0] = BASE_COLOR
    return colors


def band(ax, df: pd.DataFrame, x: str, y: str, color=None, label=None, level: float = 0.95, **kw):
    """Mean of ``y`` over seeds against ``x`` with a shaded confidence band."""
    s = summarize(df, x, y, level)
    ax.plot(s[x], s["mean"], color=color, label=label, **kw)
    ax.fill_between(s[x], s["low"], s["high"], color=color, alpha=0.2, linewidth=0)
    return s


def lam_label(lam: float) -> str:
    return "base (λ = 0)" if lam == 0 else f"ST, λ = {lam:g}"
