"""Chapter "Well-decomposed knowledge in linear networks".

Three experiments:

* re-mixing: the same teacher with its hidden features re-mixed by an
  orthogonal matrix (exact invariance of the training path, checked with the
  library's ``FrozenTeacher(transform=...)``) or by invertible matrices of
  growing condition number (which change finite-``lam`` students);
* content: teachers with the same end-to-end map whose hidden layers carry
  ``k >= r`` directions of the input, compared through the two-stage estimator
  (closed form, many seeds) and through trained networks (a teacher of ``k``
  units and students of width ``k``: no silent units, which would leave the ST
  loss without a minimizer).

Every trained network runs heavy-ball gradient descent at a rate set from the
problem's curvature (:func:`stlearn.experiments.linear_early_stopping.curvature`,
one rate per member, the same policy for every ``lam`` and re-mixing) and reports
its final gradient norm relative to its initial one (``grad_ratio``), the
convergence criterion the chapter checks.

Streams (children of the chapter's root ``rng``): trained-network run ``k``
draws its training set from ``rng.child("student_data", k)`` and its
initialization from ``rng.child("student_init", k)``, the same in the three
network experiments (rotation, re-mixing, content); the closed-form run ``k`` with
``N`` samples draws from ``rng.child("student_data", k, N)``. The rotation of
:func:`rotation_check` is ``rng.child("rotation")``, the re-mixing of run ``k``
``rng.child("rotation", k)`` (the same for every condition number); the content
teachers' tilt and extra directions are ``rng.child("direction", 0, TILT)`` and
``rng.child("direction", 0, WIDEN)`` (one set of teachers for every run). The yardstick
(:func:`simple_estimators`) is fitted on the same training sets and tuned on validation sets of the runs' own,
``rng.child("validation", k, N)`` (closed form) and ``rng.child("validation", k)`` (trained networks).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import theory
from ..data import draw_members, random_orthonormal
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..protocol import interval
from ..stats import fixed, rounded
from ..streams import Stream, as_stream
from ..train import TrainConfig, train
from .linear_common import (
    TILT,
    WIDEN,
    linear_teacher,
    relative_gain_table,
    ridge_penalties,
    stronger_simple,
    target_factors,
    tilted,
    tuned_ridge,
    widened,
)
from .linear_early_stopping import curvature


def mixing(width: int, condition: float, rng: Stream | int) -> torch.Tensor:
    """A random invertible ``width x width`` matrix with singular values spread log-evenly in ``[1, condition]``.

    Its two rotations come from ``rng.child("rotation", 0)`` and ``rng.child("rotation", 1)``.
    """
    rng = as_stream(rng)
    u, v = (random_orthonormal(width, width, rng.child("rotation", i)) for i in (0, 1))
    s = torch.logspace(0, float(np.log10(condition)), width, dtype=torch.float64)
    return u @ torch.diag(s / s.prod() ** (1 / width)) @ v.T  # determinant +-1: same overall scale


def network_data(task, n_train: int, rng: Stream, seeds, device=None, dtype=torch.float64):
    """The training sets of the trained-network runs ``k`` in ``seeds``: ``rng.child("student_data", k)``."""
    return draw_members(task, n_train, [rng.child("student_data", k) for k in seeds], device=device, dtype=dtype)


def curvature_rates(data, feats, heads, lams, rate_fraction: float) -> list[float]:
    """Per member ``rate_fraction * 2 / L`` with ``L`` the curvature bound of its own loss (``curvature``)."""
    x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
    t = feats.to("cpu", torch.float64)
    return [rate_fraction * 2.0 / float(curvature(x[e], y[e], t[e], heads[e], float(l))) for e, l in enumerate(lams)]


@torch.no_grad()
def gradient_norms(model: DeepLinear, data, feats, lams) -> torch.Tensor:
    """Per member, the norm of the gradient of ``(1/2N)||W_2 W_1 X - Y||^2 + (lam/2N)||W_1 X - T||^2``."""
    w1, w2 = (layer.weight.detach().to("cpu", torch.float64) for layer in model.layers)
    x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
    t = feats.to("cpu", torch.float64)
    lam = torch.tensor([float(l) for l in lams], dtype=torch.float64).reshape(-1, 1, 1)
    n = x.shape[-2]
    h = x @ w1.transpose(-1, -2)
    r = h @ w2.transpose(-1, -2) - y
    g2 = r.transpose(-1, -2) @ h / n
    g1 = (w2.transpose(-1, -2) @ r.transpose(-1, -2) @ x + lam * (h - t).transpose(-1, -2) @ x) / n
    return (g1.pow(2).sum((-1, -2)) + g2.pow(2).sum((-1, -2))).sqrt()


def train_to_convergence(model, data, teacher, lams, heads, steps: int, rate_fraction: float, momentum: float,
                         grad_tol: float | None = None, chunk: int = 2000):
    """Heavy-ball gradient descent at curvature rates, in chunks of ``chunk`` steps, up to ``steps``.

    With ``grad_tol`` training stops after the first chunk at whose end every member's gradient norm
    is below ``grad_tol`` times its initial one (each chunk restarts the momentum); without it, it
    runs ``steps`` steps. Returns ``(rates, grad_ratio, steps_run)``.
    """
    feats = teacher.features(data.clean, ["h1"])["h1"]
    rates = curvature_rates(data, feats, heads, lams, rate_fraction)
    g0 = gradient_norms(model, data, feats, lams)
    done, ratio = 0, torch.ones_like(g0)
    while done < steps:
        n = min(chunk if grad_tol is not None else steps, steps - done)
        config = TrainConfig(steps=n, lr=1.0, momentum=momentum, log_points=2, progress=False)
        train(model, data, teacher=teacher, lam=list(lams), layers=["h1"], config=config, lr_scale=rates)
        done += n
        ratio = gradient_norms(model, data, feats, lams) / g0
        if grad_tol is not None and bool((ratio < grad_tol).all()):
            break
    return rates, ratio.numpy(), done


def rotation_check(task, n_train: int, rng: Stream | int, seeds, lam: float, steps: int, rate_fraction: float,
                   momentum: float, device=None, dtype=torch.float64, **_):
    """Train with the teacher and with its features rotated (and the student's init rotated alike).

    ``seeds`` are the run indices ``k``. Returns the largest relative gap between the two students' end-to-end maps.
    """
    rng = as_stream(rng)
    a, b = target_factors(task.target.weight)
    width = b.shape[0]
    teacher = linear_teacher([b] * len(seeds), [a] * len(seeds), device, dtype)
    rot = random_orthonormal(width, width, rng.child("rotation"))
    rotated = FrozenTeacher(teacher.model, transform={"h1": rot.to(device=device, dtype=dtype)})
    data = network_data(task, n_train, rng, seeds, device, dtype)
    maps = []
    for t, turn in ((teacher, None), (rotated, rot)):
        model = DeepLinear([task.d, width, task.d_out], members=len(seeds), init_scale=0.5,
                           rng=[rng.child("student_init", k) for k in seeds], device=device, dtype=dtype)
        if turn is not None:
            with torch.no_grad():
                turn = turn.to(model.layers[0].weight)
                model.layers[0].weight.copy_(turn @ model.layers[0].weight)
                model.layers[1].weight.copy_(model.layers[1].weight @ turn.T)
        train_to_convergence(model, data, t, [lam] * len(seeds), [a] * len(seeds), steps, rate_fraction, momentum)
        # a fixed number of steps for both (no convergence test that could stop them at different chunks)
        maps.append(model.end_to_end().detach().to("cpu", torch.float64))
    return float(((maps[0] - maps[1]).norm(dim=(-2, -1)) / maps[0].norm(dim=(-2, -1))).max())


def mixing_sweep(task, n_train: int, conditions, lams, rng: Stream | int, seeds, steps: int, rate_fraction: float,
                 momentum: float, grad_tol: float | None = None, device=None, dtype=torch.float64) -> pd.DataFrame:
    """Trained students for teachers whose features are re-mixed by ``M`` of each condition number.

    Every teacher computes the same function: features ``M B x``, head ``A M^{-1}``.
    Condition number 1 is a rotation. Run ``k``'s re-mixings share their rotations
    (``rng.child("rotation", k)``) and differ in their singular values. Every member trains at its
    own curvature rate (no scaling by the condition number) and reports ``grad_ratio``.
    """
    rng = as_stream(rng)
    a, b = target_factors(task.target.weight)
    members = list(itertools.product(conditions, lams, seeds))
    feats, heads = [], []
    for cond, _, k in members:
        m = mixing(b.shape[0], cond, rng.child("rotation", k))
        feats.append(m @ b)
        heads.append(a @ torch.linalg.inv(m))
    teacher = linear_teacher(feats, heads, device, dtype)
    data = network_data(task, n_train, rng, [k for _, _, k in members], device, dtype)
    model = DeepLinear([task.d, b.shape[0], task.d_out], members=len(members), init_scale=0.1,
                       rng=[rng.child("student_init", k) for _, _, k in members], device=device, dtype=dtype)
    lam_list = [l for _, l, _ in members]
    rates, grad_ratio, done = train_to_convergence(model, data, teacher, lam_list, heads, steps, rate_fraction,
                                                   momentum, grad_tol)
    w = model.end_to_end().detach().to("cpu", torch.float64)
    x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
    t = teacher.features(data.clean, ["h1"])["h1"].to("cpu", torch.float64)
    cov, w_star = task.inputs.covariance(), task.target.weight
    err = theory.linear_test_error(w, w_star, cov, task.sigma).numpy()
    two = theory.linear_test_error(theory.two_stage_estimator(x, t, y), w_star, cov, task.sigma).numpy()
    return pd.DataFrame({"condition": [c for c, _, _ in members], "lam": lam_list,
                         "seed": [s for _, _, s in members], "error": err, "two_stage": two, "rate": rates,
                         "grad_ratio": grad_ratio, "steps": done})


def mixing_table(mixed: pd.DataFrame) -> pd.DataFrame:
    """Per (condition, lam), the mean test error of the trained students and of the two-stage limit, the mean
    rate and the largest final gradient ratio: the re-mixing sweep at a glance (every run, converged or not)."""
    return mixed.groupby(["condition", "lam"]).agg(error=("error", "mean"), two_stage=("two_stage", "mean"),
                                                    rate=("rate", "mean"), grad_ratio=("grad_ratio", "max"))


def mixing_shown(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`mixing_table` for the reader: headers in words, the test errors with ``digits`` fixed decimals, the
    step size and the gradient ratio to 3 significant digits (they span orders of magnitude)."""
    return pd.DataFrame({"trained student's test error": table.error.map(f"{{:.{digits}f}}".format),
                         "two-stage limit's test error": table.two_stage.map(f"{{:.{digits}f}}".format),
                         "step size": table.rate.map("{:.3g}".format),
                         "final / initial gradient norm (largest)": table.grad_ratio.map("{:.3g}".format)},
                        index=table.index).rename_axis(["condition number", "λ"])


def drop_unconverged(runs: pd.DataFrame, grad_tol: float) -> tuple[pd.DataFrame, int, float]:
    """``runs`` with the test error of every run whose final gradient ratio is not below ``grad_tol`` set to NaN
    (a run that did not converge says nothing about the minimizer it heads for), how many such runs there were,
    and the largest final gradient ratio of the others."""
    late = runs.grad_ratio >= grad_tol
    out = runs.copy()
    out.loc[late, "error"] = np.nan
    return out, int(late.sum()), runs.grad_ratio[~late].max()


def remixing_effect(mixed: pd.DataFrame) -> tuple[float, pd.Series, pd.DataFrame]:
    """How much an invertible re-mixing of the teacher's features moves the students, against the rotation
    (condition number 1) of the same run and lambda.

    Returns the largest spread of the two-stage limit over the re-mixings of one run (zero: the limit depends on
    the features' span only), the largest relative change of a finite-lambda trained error by condition number,
    and per (condition > 1, lambda > 0) the re-mixed student's relative gain over the rotated one (``gain``,
    ``gain_low``, ``gain_high``: the rotation's error minus the re-mixed one's, over the rotation's, paired by
    run; above 0 the re-mixed student is better) and the smallest relative change of one run, ``|change|``.
    """
    two_stage_spread = mixed.groupby(["lam", "seed"]).two_stage.agg(lambda v: v.max() - v.min()).max()
    rel_change = (mixed.set_index(["condition", "lam", "seed"]).error.unstack("condition")
                  .pipe(lambda t: t.sub(t[1.0], axis=0).div(t[1.0], axis=0)))
    finite = rel_change[rel_change.index.get_level_values("lam") > 0].abs().max().drop(1.0)
    rows = []
    for (c, lam), g in rel_change.stack().rename("change").reset_index().groupby(["condition", "lam"]):
        if c != 1.0 and lam > 0:
            gain = interval(-g.change)  # the error's relative change, negated: above 0 the re-mixing is better
            rows.append({"condition": c, "lam": lam, "gain": gain["gain"], "gain_low": gain["low"],
                         "gain_high": gain["high"], "runs": gain["runs"], "smallest |change|": g.change.abs().min()})
    return two_stage_spread, finite, pd.DataFrame(rows)


def content_teachers(w_star: torch.Tensor, extras, angles, rng: Stream | int):
    """``{(k_extra, angle): features}``: the target's row space (tilted by ``angle``) plus ``k_extra`` directions.

    The tilt comes from ``rng.child("direction", 0, TILT)``, the extra directions from
    ``rng.child("direction", 0, WIDEN)``: one set of teachers (teacher index 0) for every run.
    """
    rng = as_stream(rng)
    _, b = target_factors(w_star)
    tilt, widen = rng.child("direction", 0, TILT), rng.child("direction", 0, WIDEN)
    out = {}
    for extra, angle in itertools.product(extras, angles):
        out[(extra, angle)] = widened(tilted(b, angle, tilt) if angle > 0 else b, extra, widen)
    return out


def content_sweep(task, n_students, extras, angles, rng: Stream | int, seeds) -> pd.DataFrame:
    """Two-stage estimator vs least squares for each teacher content, with the predicted gain.

    Run ``k`` with ``n`` samples draws them from ``rng.child("student_data", k, n)``.
    """
    rng = as_stream(rng)
    w_star = task.target.weight
    cov = task.inputs.covariance()
    teachers = content_teachers(w_star, extras, angles, rng)
    rows = []
    for n in tqdm(n_students, desc="student samples"):
        data = draw_members(task, n, [rng.child("student_data", k, n) for k in seeds], dtype=torch.float64)
        w_base = theory.min_norm_interpolator(data.noisy, data.y)
        base = theory.linear_test_error(w_base, w_star, cov, task.sigma).numpy()
        for (extra, angle), q in teachers.items():
            w = theory.two_stage_estimator(data.noisy, data.clean @ q.T, data.y)
            err = theory.linear_test_error(w, w_star, cov, task.sigma).numpy()
            pred_gain = theory.two_stage_gain(w_star, q, task.sigma, task.label_noise, n)
            pred_leading = theory.two_stage_gain(w_star, q, task.sigma, task.label_noise, n, finite_sample=False)
            for i, s in enumerate(seeds):
                rows.append({"n_student": n, "extra": extra, "angle": angle, "k": q.shape[0],
                             "kappa": theory.knowledge_deficit(w_star, q), "seed": s, "base": base[i], "st": err[i],
                             "pred_gain": pred_gain, "pred_gain_leading": pred_leading})
    return pd.DataFrame(rows)


def content_summary(content: pd.DataFrame, d: int, rank: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`content_sweep`'s rows with the gain of ST over least squares (``gain``) and the teacher's
    compactness ``(d - k) / (d - r)`` (1: carries the target's directions only, 0: all of x), and per
    (n_student, angle, extra) their means beside the predicted gain."""
    content = content.assign(gain=content.base - content.st, compactness=(d - content.k) / (d - rank))
    summary = content.groupby(["n_student", "angle", "extra"]).agg(
        k=("k", "first"), compactness=("compactness", "first"), kappa=("kappa", "mean"),
        gain=("gain", "mean"), pred_gain=("pred_gain", "first")).reset_index()
    return content, summary


def content_table(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`content_summary`'s means for the reader: headers in words and symbols, the measured and the
    predicted gain of the two-stage estimator over least squares signed with ``digits`` decimals (above 0: the
    two-stage estimator is better; no negative zero)."""
    gain = "two-stage vs least squares (above 0: two-stage better)"

    def signed(values: pd.Series) -> list[str]:
        return [fixed(v, digits, signed=True) for v in values]

    return pd.DataFrame({"N (student)": summary.n_student.to_numpy(), "tilt angle": summary.angle.to_numpy(),
                         "extra directions": summary.extra.to_numpy(), "k": summary.k.to_numpy(),
                         "compactness": summary.compactness.map("{:.3f}".format).to_numpy(),
                         "κ": summary.kappa.map("{:.3f}".format).to_numpy(), gain: signed(summary.gain),
                         f"{gain}, predicted": signed(summary.pred_gain)})


def change_words(gain: float, digits: int = 1) -> str:
    """A mean relative gain over least squares (a fraction; above 0: the student's error is lower) in words, its
    direction from its sign as printed in % with ``digits`` decimals: "lowers the error of least squares by 55.5 %
    (relative gain +55.5 %)", "raises ... by 3.2 % (relative gain -3.2 %)", or "leaves the error of least squares
    unchanged (relative gain +0.0 %)"."""
    pct = rounded(100 * gain, digits)
    text = f"{fixed(pct, digits, signed=True)} %"
    if pct > 0:
        return f"lowers the error of least squares by {text.lstrip('+')} (relative gain {text})"
    if pct < 0:
        return f"raises the error of least squares by {text.lstrip('-')} (relative gain {text})"
    return f"leaves the error of least squares unchanged (relative gain {text})"


def check_content(content: pd.DataFrame, summary: pd.DataFrame, d: int) -> None:
    """Raise AssertionError unless features that carry all of x give exactly least squares and, for teachers that
    carry the target exactly (no tilt), each extra direction lowers the mean gain at every sample size."""
    exact = content[(content.k == d)]
    assert exact.gain.abs().max() < 1e-8, "features that carry all of x did not give exactly least squares"
    for _, g in summary[summary.angle == 0].groupby("n_student"):
        assert g.sort_values("k").gain.is_monotonic_decreasing, "more extra directions did not mean less gain"


def compactness_slopes(summary: pd.DataFrame) -> tuple[float, float]:
    """The measured and the predicted gain per unit compactness (least-squares slopes), for the untilted teachers
    at the largest sample size."""
    big = summary[(summary.angle == 0) & (summary.n_student == summary.n_student.max())]
    return np.polyfit(big.compactness, big.gain, 1)[0], np.polyfit(big.compactness, big.pred_gain, 1)[0]


def gain_gaps(summary: pd.DataFrame, d: int) -> pd.Series:
    """Relative gap between the measured and the predicted gain, for every teacher that does not carry all of x
    (whose gain is zero)."""
    return ((summary.gain - summary.pred_gain).abs() / summary.pred_gain.abs().clip(lower=1e-12))[summary.k < d]


def content_networks(task, n_train: int, extras, lams, rng: Stream | int, seeds, steps: int, rate_fraction: float,
                     momentum: float, grad_tol: float | None = None, device=None,
                     dtype=torch.float64) -> pd.DataFrame:
    """Trained students for teachers with the same end-to-end map and ``k = r + extra`` feature units.

    The teacher with ``extra`` extra directions (those of :func:`content_teachers`, no tilt) has
    exactly ``k`` units, all of them carrying a direction of the input (no silent unit), and its
    students have width ``k``: one ensemble per ``extra``. ``base_min`` is least squares on the
    same data; ``grad_ratio`` the final gradient norm relative to the initial one.
    """
    rng = as_stream(rng)
    a, b = target_factors(task.target.weight)
    cov, w_star = task.inputs.covariance(), task.target.weight
    frames = []
    for extra in extras:
        v = widened(b, extra, rng.child("direction", 0, WIDEN))
        head = torch.cat([a, a.new_zeros(a.shape[0], extra)], dim=1)  # the extra units are read with weight 0
        members = list(itertools.product(lams, seeds))
        teacher = linear_teacher([v] * len(members), [head] * len(members), device, dtype)
        data = network_data(task, n_train, rng, [k for _, k in members], device, dtype)
        model = DeepLinear([task.d, v.shape[0], task.d_out], members=len(members), init_scale=0.1,
                           rng=[rng.child("student_init", k) for _, k in members], device=device, dtype=dtype)
        lam_list = [l for l, _ in members]
        rates, grad_ratio, done = train_to_convergence(model, data, teacher, lam_list, [head] * len(members), steps,
                                                       rate_fraction, momentum, grad_tol)
        w = model.end_to_end().detach().to("cpu", torch.float64)
        x, y = data.noisy.to("cpu", torch.float64), data.y.to("cpu", torch.float64)
        frames.append(pd.DataFrame({
            "extra": extra, "k": v.shape[0], "lam": lam_list, "seed": [k for _, k in members],
            "error": theory.linear_test_error(w, w_star, cov, task.sigma).numpy(),
            "base_min": theory.linear_test_error(theory.min_norm_interpolator(x, y), w_star, cov, task.sigma).numpy(),
            "rate": rates, "grad_ratio": grad_ratio, "steps": done}))
    return pd.concat(frames, ignore_index=True)


def compact_vs_wide(nets: pd.DataFrame) -> pd.DataFrame:
    """Per lambda > 0, the trained students' gain with the most compact teacher minus that with the least compact
    one, paired by seed, with its 95% interval."""
    rows = []
    for lam in [l for l in nets.lam.unique() if l > 0]:
        g = nets[nets.lam == lam].pivot(index="seed", columns="extra", values="gain")
        rows.append({"lam": lam, **interval(g[nets.extra.min()] - g[nets.extra.max()])})
    return pd.DataFrame(rows)


def simple_estimators(task, sizes, ks, rng: Stream | int, seeds, n_val: int, budget: int,
                      networks: bool = False) -> pd.DataFrame:
    """The yardstick for students of each width ``k`` in ``ks``: one row per (n_student, k, seed).

    Run ``k`` at ``N`` samples uses the training set of :func:`content_sweep` (``rng.child("student_data", k, N)``)
    and ``n_val`` noisy validation samples with labels from ``rng.child("validation", k, N)``; with ``networks``,
    ``sizes`` is ``[n_train]`` and the sets are those of the trained networks, ``rng.child("student_data", k)``
    and ``rng.child("validation", k)``. ``ridge``/``ridge_val``: ridge tuned over ``budget`` penalties, 0
    (least squares) among them (:func:`~stlearn.experiments.linear_common.tuned_ridge`);
    ``rrr``/``rrr_val``: reduced-rank regression of rank ``k`` where ``k < min(d, d_y)`` (a bottleneck; NaN
    otherwise); ``simple``: the test error of whichever validates better (ties: reduced-rank regression);
    ``ols``: least squares' test error (the base, as in :func:`content_sweep`).
    """
    rng = as_stream(rng)
    w_star, cov = task.target.weight, task.inputs.covariance()
    frames = []
    for n in sizes:
        idx = [(k,) if networks else (k, n) for k in seeds]
        data = draw_members(task, n, [rng.child("student_data", *i) for i in idx], dtype=torch.float64)
        val = draw_members(task, n_val, [rng.child("validation", *i) for i in idx], dtype=torch.float64)
        ridge_val, ridge = tuned_ridge(data, val, ridge_penalties(budget), w_star, cov, task.sigma)
        ols = theory.linear_test_error(theory.min_norm_interpolator(data.noisy, data.y), w_star, cov, task.sigma)
        for width in ks:
            frames.append(pd.DataFrame({
                "n_student": n, "k": width, "seed": list(seeds), "ols": ols.numpy(), "ridge": ridge,
                "ridge_val": ridge_val,
                **stronger_simple(data, val, width, ridge, ridge_val, w_star, cov, task.sigma)}))
    return pd.concat(frames, ignore_index=True)


def against_simple(students: pd.DataFrame, simple: pd.DataFrame, by, error: str) -> pd.DataFrame:
    """Per group of ``by``, the students' ``error`` against the stronger simple estimator of the same run and width.

    ``students`` has columns ``n_student`` (or a single size), ``k`` and ``seed``; ``gain`` is
    ``(simple - student) / mean(simple)`` (> 0: the student is better) with its 95% interval over runs.
    """
    keyed = simple.set_index(["n_student", "k", "seed"])
    rows = []
    for key, g in students.groupby(list(by)):
        g = g.dropna(subset=[error])
        ref = keyed.loc[list(zip(g.n_student, g.k, g.seed))]
        iv = interval((ref.simple.to_numpy() - g[error].to_numpy()) / ref.simple.mean())
        rows.append({**dict(zip(by, key)), "student": g[error].mean(), "simple": ref.simple.mean(),
                     "ridge share": float((ref.simple_method == "ridge").mean()), "relative gain": iv["gain"],
                     "relative gain_low": iv["low"], "relative gain_high": iv["high"]})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- the tables a reader sees
def remixing_table(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`remixing_effect`'s rows for the reader: the re-mixed student's relative gain over the rotated one in
    %, signed, with its 95% interval, and the smallest relative change of one run (in %)."""
    shown = rows.rename(columns={"condition": "condition number", "lam": "λ"})
    shown["smallest change of one run, %"] = (100 * rows["smallest |change|"]).map("{:.2g}".format)
    return relative_gain_table(shown.drop(columns="smallest |change|"),
                               {"gain": "re-mixed vs rotated, % (above 0: re-mixed better)"})


def compact_table(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`compact_vs_wide` for the reader: the most compact teacher's gain minus the widest one's, in
    percentage points, signed, with its 95% interval."""
    name = "most vs least compact teacher, percentage points (above 0: most compact better)"
    return relative_gain_table(rows.rename(columns={"low": "gain_low", "high": "gain_high"}), {"gain": name})


def simple_table(versus: pd.DataFrame) -> pd.DataFrame:
    """:func:`against_simple` for the reader: mean test errors, and the relative gain over the stronger simple
    estimator in %, signed, with its 95% interval (:func:`~.linear_common.relative_gain_table`)."""
    shown = versus.rename(columns={"student": "student's test error", "simple": "simple estimator's test error",
                                   "ridge share": "ridge chosen (share of runs)"})
    return relative_gain_table(shown, {"relative gain": "student vs simple, % (above 0: student better)"})
