"""One figure style for the whole book, and the plots the chapters share."""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from .stats import mean_ci

# Base (no teacher) is always grey; student-teacher runs share one sequential palette.
BASE_COLOR = "#6c6c6c"
ST_CMAP = "viridis"
REFERENCE_STYLE = dict(color="black", linestyle="--", linewidth=1.2)


def use_book_style() -> None:
    """Seaborn's ticks theme and colour-blind-safe palette, with sizes that read well on the site."""
    sns.set_theme(context="notebook", style="ticks", palette="colorblind", rc={
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
    palette = sns.color_palette(ST_CMAP, max(len(positive), 1))  # evenly inside the colormap, its ends left out
    colors = {l: c for l, c in zip(positive, palette)}
    if 0.0 in lams:
        colors[0.0] = BASE_COLOR
    return colors


def band(ax, df: pd.DataFrame, x: str, y: str, color=None, label=None, level: float = 0.95, **kw) -> None:
    """Mean of ``y`` over seeds against ``x`` with its shaded ``level`` interval (seaborn's line plot, with the
    book's t-interval of the mean, :func:`stlearn.stats.mean_ci`, as its error bar)."""
    sns.lineplot(data=df, x=x, y=y, ax=ax, color=color, label=label, **_mean_band(level), **kw)


def _mean_band(level: float) -> dict:
    """Seaborn's line arguments for the mean over seeds with its shaded ``level`` t-interval (:func:`mean_ci`)."""
    return {"estimator": "mean", "errorbar": lambda v: mean_ci(v, level)[1:], "err_kws": {"alpha": 0.2, "linewidth": 0}}


def facets(df: pd.DataFrame, x: str, y: str, hue: str, col: str, width: float = 3.0, height: float = 3.0,
           cols: int = 3, level: float = 0.95, **kw) -> sns.FacetGrid:
    """Small multiples: a panel per value of ``col``, at most ``cols`` (three) a row, the figure at most
    :data:`MAX_WIDTH_IN` wide; in each, a line per value of ``hue``, as :func:`band` draws them (the mean over
    seeds and its ``level`` t-interval). Seaborn's ``relplot`` on a ``FacetGrid``, with one key for every panel;
    ``kw`` goes to it (``palette``, ``hue_order``, ``marker``, ``facet_kws``)."""
    n = df[col].nunique()
    cols, width = _row(n, width, cols)
    return sns.relplot(data=df, x=x, y=y, hue=hue, col=col, col_wrap=cols if n > cols else None, kind="line",
                       height=height, aspect=width / height, **_mean_band(level), **kw)


def lam_label(lam: float) -> str:
    return "base (λ = 0)" if lam == 0 else f"ST, λ = {lam:g}"


MAX_WIDTH_IN = 9.0  # the widest figure whose theme text (11 pt ticks) still shows at 9 pt in the site's column


def _row(n: int, width: float, cols: int) -> tuple[int, float]:
    """Panels a row for ``n`` panels (at most ``cols``) and each panel's width, narrowed so that the row is at most
    :data:`MAX_WIDTH_IN` wide."""
    cols = max(1, min(n, cols))
    return cols, min(width, MAX_WIDTH_IN / cols)


def panel_grid(n: int, width: float = 3.0, height: float = 3.0, cols: int = 3, **subplots):
    """A figure of ``n`` panels, at most ``cols`` (three) a row, each ``width`` x ``height`` inches but the
    figure at most :data:`MAX_WIDTH_IN` wide, laid out by matplotlib's constrained layout; returns the
    figure and its ``n`` axes (the grid's spare cells hidden)."""
    import matplotlib.pyplot as plt

    cols, width = _row(n, width, cols)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                             layout="constrained", **subplots)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])
