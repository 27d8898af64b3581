"""Chapter "Early stopping in wide ReLU networks".

One ensemble holds every (lam, seed) run of a wide one-hidden-layer ReLU
student; the teacher has the student's architecture and is trained on clean
samples. The summaries read the path: the best test error along training, the
test error where the noisy validation error is lowest, and the end, where the
student (nearly) fits its noisy training set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import ci_columns
from .nonlinear import path_summary


def at_training_loss(history: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per run: the test error at the first logged step where the training task loss is below ``threshold``.

    Runs that never get there are left out (``reached`` counts them per lam).
    """
    below = history[history.train_task <= threshold].sort_values("step")
    first = below.groupby(["lam", "seed"]).head(1)[["lam", "seed", "step", "test_noisy"]]
    return first.rename(columns={"step": "reached_at", "test_noisy": "at_threshold"})


def loss_binned(history: pd.DataFrame, zero_loss: float, bins: int = 12) -> pd.DataFrame:
    """Test error against the relative training loss, averaged per lam in log-spaced loss bins.

    Every run is first interpolated onto the bin centres (log-log, along its path),
    so each bin holds one value per seed and the interval is over seeds.
    """
    h = history[history.step > 0].assign(rel=lambda d: (d.train_task / zero_loss).clip(lower=1e-12))
    lo, hi = np.log10(h.rel.min()), np.log10(h.rel.max())
    centres = np.linspace(lo, hi, bins)
    rows = []
    for (lam, seed), g in h.groupby(["lam", "seed"]):
        g = g.sort_values("rel")
        x = np.log10(g.rel.to_numpy())
        inside = (centres >= x.min()) & (centres <= x.max())
        values = np.interp(centres[inside], x, g.test_noisy.to_numpy())
        rows += [{"lam": lam, "seed": seed, "rel_train_loss": 10**c, "test_noisy": v}
                 for c, v in zip(centres[inside], values)]
    return pd.DataFrame(rows)


def summarize_paths(history: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """:func:`path_summary` plus the test error at the training-loss threshold."""
    return path_summary(history).merge(at_training_loss(history, threshold), on=["lam", "seed"], how="left")


def gain_table(gains: pd.DataFrame, columns) -> pd.DataFrame:
    """Mean gain and its 95% interval per lam for each column of paired gains."""
    rows = []
    for lam, g in gains.groupby("lam"):
        row = {"lam": lam}
        for c in columns:
            row.update(ci_columns(c, g[c]))
        rows.append(row)
    return pd.DataFrame(rows)
