"""The experiment chapters' full settings follow CONTRIBUTING 4b: lambda on the relative scale with a log
grid of at least 6 values from 0.01 to 10 plus 0, at least 10 runs, every tuned grid the same size (>= 4)."""

import numpy as np
import pytest

from stlearn.tooling import chapters as ch

EXPERIMENTS = ("nonlinear_early_stopping", "nonlinear_teacher_knowledge", "nonlinear_decomposition", "where_st_helps",
               "digits", "mnist1d", "denoising")
RUNS = ("n_seeds", "n_runs")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_paper_settings_follow_the_protocol(name):
    params = {k: p.default for k, p in ch.parameters(name).items()}
    runs = next(params[k] for k in RUNS if k in params)
    assert runs >= 10, f"{name}: {runs} runs at full settings (at least 10)"
    lams = np.asarray(params["lams"], float)
    positive = lams[lams > 0]
    assert lams[0] == 0 and len(positive) >= 6, f"{name}: lams must be 0 then at least 6 weights; got {lams}"
    assert positive.min() <= 0.01 * 1.01 and positive.max() >= 10 / 1.01, f"{name}: lams must span 0.01 to 10"
    ratios = positive[1:] / positive[:-1]
    assert ratios.max() / ratios.min() < 1.6, f"{name}: lams must be log-spaced; got {positive}"
