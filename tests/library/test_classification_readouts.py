"""The classification chapters' readouts: the lambda curve, the chosen lambdas and the advice by family."""

import pandas as pd
import pytest

from stlearn import study
from stlearn.experiments import classification as cl


def families(**gains):
    rows = []
    for method, reference, family in (("ST", "denoise-then-teacher", study.SAME_INFORMATION),
                                      ("ST + weight decay", "weight decay", study.COMPLEMENT),
                                      ("ST from the teacher's weights", "fine-tuned teacher", study.COMPLEMENT),
                                      ("noise augmentation", "ST", study.NOISE_MODEL),
                                      ("ST + noise augmentation", "noise augmentation", study.NOISE_MODEL)):
        g = gains.get(method, 0.0)
        rows.append({"family": family, "method": method, "reference": reference, "gain": g, "low": g - 0.01,
                     "high": g + 0.01, "runs": 10})
    return {"families": pd.DataFrame(rows)}


def test_practice_follows_the_families():
    text = cl.practice(families(**{"noise augmentation": 0.05, "ST + noise augmentation": 0.02}))
    assert text.startswith("With the noise model at hand, train on fresh noise and add the ST term")
    assert "Without the noise model, ST and denoise-then-teacher are not resolvably different" in text
    text = cl.practice(families(**{"noise augmentation": 0.05, "ST": 0.03, "ST + weight decay": 0.02}))
    assert "noise augmentation beats ST here, and adding the ST term to it gives no resolvable gain" in text
    assert "Without the noise model, use ST: it beats denoise-then-teacher" in text
    assert text.endswith("As a complement, ST helps: ST + weight decay beats weight decay.")
    text = cl.practice(families(**{"ST": -0.03}))
    assert text.startswith("Even with the noise model at hand, noise augmentation and ST are not resolvably different")
    assert "use denoise-then-teacher: it beats ST" in text
    text = cl.practice(families(**{"noise augmentation": -0.03}))
    assert text.startswith("Even with the noise model at hand, ST beats noise augmentation here.")


def test_lam_curve_and_chosen_lams():
    table = pd.DataFrame({"method": ["ST"] * 4 + ["ST + noise augmentation"] * 2 + ["base"],
                          "config": ["lam=0", "lam=0", "lam=0.01", "lam=0.01", "lam=0", "lam=10", "-"],
                          "seed": [0, 1, 0, 1, 0, 0, 0], "val_error": 0.1,
                          "test_error": [0.2, 0.4, 0.1, 0.1, 0.3, 0.5, 0.9]})
    curve = cl.lam_curve(table)
    assert list(curve.method) == ["ST", "ST", "ST + noise augmentation", "ST + noise augmentation"]
    assert list(curve.lam) == [0.0, 0.01, 0.0, 10.0]
    assert curve.test_error.tolist() == pytest.approx([0.3, 0.1, 0.3, 0.5])
    assert curve.low[1] == curve.high[1] == pytest.approx(0.1)  # equal errors: a zero-width interval
    assert cl.chosen_lams(table[table.seed == 0].iloc[[0, 4]]).to_dict() == {"lam=0": 1}
