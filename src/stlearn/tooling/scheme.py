"""The student-teacher scheme, drawn with matplotlib (the setting chapter's figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..plotting import BASE_COLOR
from ..validation import check_int

TEACHER_COLOR = "#0072B2"
STUDENT_COLOR = "#D55E00"
LOSS_COLOR = "#009E73"


def _box(ax, x, y, text, color, w=0.9, h=0.5):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04",
                                facecolor=color, alpha=0.15, edgecolor=color, linewidth=1.5))
    ax.text(x, y, text, ha="center", va="center", fontsize=11)


def _arrow(ax, a, b, color="black", style="-|>", ls="-"):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=12, color=color, linestyle=ls,
                                 linewidth=1.3, shrinkA=0, shrinkB=0))


def draw_scheme(hidden_layers: int = 2):
    """Teacher on clean inputs (top), student on noisy inputs (bottom), feature losses between them."""
    hidden_layers = check_int("hidden_layers", hidden_layers, low=1, high=6)
    n = hidden_layers + 2
    fig, ax = plt.subplots(figsize=(1.7 * n + 1.5, 3.8))
    xs = [1.6 * i for i in range(n)]
    rows = {"teacher": (1.6, TEACHER_COLOR, "x"), "student": (0.0, STUDENT_COLOR, r"\tilde x")}
    for who, (y, color, inp) in rows.items():
        labels = [f"${inp}$"] + [f"$h_{l}$" for l in range(1, hidden_layers + 1)] + [r"$\hat y$"]
        for i, (x, lab) in enumerate(zip(xs, labels)):
            _box(ax, x, y, lab, BASE_COLOR if i == 0 else color)
            if i:
                _arrow(ax, (xs[i - 1] + 0.5, y), (x - 0.5, y), color=color)
        ax.text(xs[0] - 0.85, y, who, ha="right", va="center", fontsize=11, color=color, weight="bold")
    for l in range(1, hidden_layers + 1):
        _arrow(ax, (xs[l], 1.3), (xs[l], 0.3), color=LOSS_COLOR, style="<|-|>", ls="--")
        ax.text(xs[l] + 0.08, 0.8, rf"$\lambda\,\|h_{l}^S - h_{l}^T\|^2$", fontsize=9, color=LOSS_COLOR,
                va="center")
    ax.text(xs[-1], -0.55, r"task loss $\|\hat y - y\|^2$", ha="center", fontsize=9)
    _arrow(ax, (xs[0], 1.3), (xs[0], 0.3), color=BASE_COLOR)
    ax.text(xs[0] + 0.08, 0.8, r"$+\,\sigma e$", fontsize=10, va="center", color=BASE_COLOR)
    ax.text(xs[-1] + 0.55, 1.6, "frozen", fontsize=9, color=TEACHER_COLOR, va="center", style="italic")
    ax.set_xlim(xs[0] - 1.8, xs[-1] + 1.2)
    ax.set_ylim(-0.8, 2.1)
    ax.axis("off")
    return fig
