"""How knowledgeable must the teacher be? The experiment of ``book/nonlinear_teacher_knowledge.md``.

Knowledge levels. Run ``k`` (the ``seed`` column) has its own teacher at every knowledge level ``j``:

* ``j = 0``, ``untrained``: a random initialization, ``rng.child("teacher_init", k, 0)``, never trained
  (zero knowledge: whatever it gives is what any random ReLU features give);
* ``j = 1``, ``wrong target``: trained on ``n_wrong`` clean samples of *another* random ReLU target, drawn
  from ``rng.child("target", 1)`` (the true target is ``rng.child("target")``): wrong knowledge;
* ``j = 2, 3, ...``: trained on ``teacher_sizes[j - 2]`` clean samples of the true target.

Teacher ``(k, j)`` starts from ``rng.child("teacher_init", k, j)`` and trains on
``rng.child("teacher_data", k, j)``, apart from every student's data. Knowledge is measured per teacher
(:func:`knowledge`) by its clean test error, and in the matched layer ``h1`` itself, by linear probes
fitted on clean reference inputs: how much of the target (``probe_r2``) and of the target's hidden units
(``unit_r2``) is a linear function of the teacher's ``h1``.

Methods, for one (student sample size, noise level) configuration; each is a set of ensemble members
(:class:`Member`) and every tuned method has ``len(lams)`` configurations:

* ``base``: the plain student, stopped on validation;
* ``weight decay``: the grid ``decays`` (its first point, 0, is the base student);
* ``ST, <level>``: the feature term on ``h1`` with the run's teacher of that level, ``lam`` in ``lams``
  (the first 0: the base student, so a useless teacher can be switched off on validation);
* ``teacher as is``: the most knowledgeable teacher applied to noisy inputs (measured, not trained);
* ``noise augmentation``: fresh noise on the clean inputs at every step, levels ``aug_levels`` x sigma
  (it needs the noise model, which the others do not).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from .. import protocol
from ..data import Task, draw, draw_members, gaussian_inputs, relu_target
from ..losses import FrozenTeacher
from ..models import MLP, select_members, stack_members
from ..stats import ci_high, ci_low, mean_ci
from ..streams import Stream
from ..teachers import fit_teacher
from ..train import TrainConfig, evaluate
from ..validation import ParameterError
from .nonlinear import RATE_FRACTION, run_sets, teacher_config, train_at_curvature_rates, validation_samples

UNTRAINED, WRONG = "untrained", "wrong target"
SAME_INFORMATION = ("base", "weight decay", "teacher as is")  # what ST's information also allows
NOISE_MODEL = ("noise augmentation",)
Tensor = torch.Tensor


def level_names(teacher_sizes) -> list[str]:
    """The knowledge levels in order: untrained, wrong target, then one per teacher sample size."""
    return [UNTRAINED, WRONG, *[f"{n} samples" for n in teacher_sizes]]


def st_method(level: str) -> str:
    return f"ST, {level}"


def teacher_phrase(level: str) -> str:
    """``the untrained teacher``, ``the wrong-target teacher``, ``the 1000-sample teacher``."""
    if level in (UNTRAINED, WRONG):
        return f"the {level.replace(' ', '-') if level == WRONG else level} teacher"
    return f"the {level.removesuffix(' samples')}-sample teacher"


def check_grids(lams, decays, aug_levels, teacher_sizes) -> None:
    """Equal budgets (every tuned grid as long as ``lams``); ``lams`` and ``decays`` start at 0 (the base)."""
    if not lams or lams[0] != 0.0 or len(lams) < 2:
        raise ParameterError(f"lams must start with 0 (the base loss) and hold at least one ST weight; got {lams}")
    if not decays or decays[0] != 0.0:
        raise ParameterError(f"decays must start with 0 (the base student); got {decays}")
    for name, grid in (("decays", decays), ("aug_levels", aug_levels)):
        if len(grid) != len(lams):
            raise ParameterError(f"{name} must have as many points as lams ({len(lams)}: equal tuning budgets); "
                                 f"got {len(grid)}")
    if len(set(teacher_sizes)) != len(teacher_sizes) or list(teacher_sizes) != sorted(teacher_sizes):
        raise ParameterError(f"teacher_sizes must be increasing and distinct; got {teacher_sizes}")


# --------------------------------------------------------------------------- teachers
def wrong_task(task: Task, units: int, rng: Stream) -> Task:
    """The same inputs with another random ReLU target of ``units`` units, from ``rng.child("target", 1)``."""
    return Task(gaussian_inputs(task.d), relu_target(task.d, units, task.d_out, rng=rng.child("target", 1)),
                sigma=task.sigma)


@dataclass
class Teachers:
    """Every teacher of every run: one frozen ensemble, member ``index(j, k)`` is run ``k``'s teacher of level ``j``."""

    model: MLP
    levels: list[str]
    seeds: list[int]

    def index(self, level: int, seed: int) -> int:
        return level * len(self.seeds) + self.seeds.index(seed)

    def frozen(self, levels, seeds) -> FrozenTeacher:
        """A frozen ensemble whose member ``e`` is the teacher of level ``levels[e]`` of run ``seeds[e]``."""
        return FrozenTeacher(select_members(self.model, [self.index(j, k) for j, k in zip(levels, seeds)]))


def make_teachers(task: Task, units: int, width: int, teacher_sizes, n_wrong: int, rng: Stream, seeds,
                  steps: int, device=None) -> Teachers:
    """Run ``k``'s teacher of every level (module docstring): one ensemble per level, members the runs."""
    seeds = [int(k) for k in seeds]
    levels = level_names(teacher_sizes)
    config = teacher_config(steps)
    other = wrong_task(task, units, rng)
    nets = []
    for j, level in enumerate(levels):
        net = MLP([task.d, width, task.d_out], members=len(seeds), device=device,
                  rng=[rng.child("teacher_init", k, j) for k in seeds])
        if level != UNTRAINED:
            source, n = (other, n_wrong) if level == WRONG else (task, teacher_sizes[j - 2])
            fit_teacher(net, draw_members(source, n, [rng.child("teacher_data", k, j) for k in seeds],
                                          device=device), config)
        nets.append(net)
    model = stack_members(nets)
    FrozenTeacher(model)  # frozen from here on
    return Teachers(model, levels, seeds)


def _probe_r2(features: Tensor, targets: Tensor, fit: slice, score: slice, ridge: float) -> Tensor:
    """Per member and target column: R^2 on the ``score`` rows of a ridge probe fitted on the ``fit`` rows.

    ``features`` ``(E, n, m)``, ``targets`` ``(n, c)``; the probe has an intercept (features centred on the
    fitted rows) and a ridge of ``ridge`` times the mean feature variance, so dead units do no harm.
    """
    f = features.double()
    mu = f[:, fit].mean(1, keepdim=True)
    a, b = f[:, fit] - mu, f[:, score] - mu
    y_mu = targets[fit].mean(0)
    y_fit, y_score = targets[fit] - y_mu, targets[score] - y_mu
    scale = a.pow(2).mean((1, 2)).clamp_min(1e-12).reshape(-1, 1, 1)
    gram = a.transpose(1, 2) @ a + ridge * a.shape[1] * scale * torch.eye(a.shape[2], dtype=f.dtype)
    coef = torch.linalg.solve(gram, a.transpose(1, 2) @ y_fit)
    resid = (b @ coef - y_score).pow(2).mean(1)
    return 1 - resid / (targets[score] - targets[score].mean(0)).pow(2).mean(0)


def knowledge(task: Task, teachers: Teachers, n_probe: int, n_ref: int, rng: Stream, ridge: float = 1e-3,
              device=None) -> pd.DataFrame:
    """Per teacher (``level``, ``seed``): its clean test error and what its ``h1`` knows of the target.

    ``clean_error``: on ``n_ref`` clean samples of ``rng.child("reference", 0)``. ``probe_r2``: R^2 there of
    the best linear read-out of ``h1`` (clean input) for the target, fitted on ``n_probe`` samples of
    ``rng.child("reference", 1)``; ``unit_r2``: the same for each of the target's hidden units
    ``relu(b_i . x)``, averaged over units (alignment with the true hidden units).
    """
    test = draw(task, n_ref, rng.child("reference", 0), label_noise=False, device=device)
    probe = draw(task, n_probe, rng.child("reference", 1), label_noise=False, device=device)
    x = torch.cat([probe.clean, test.clean])
    fit, score = slice(0, n_probe), slice(n_probe, n_probe + n_ref)
    with torch.no_grad():
        _, feats = teachers.model(x, return_features=True)
        error = evaluate(teachers.model, test)["clean"].cpu()
    x64 = x.detach().cpu().double()
    y = task.target(x64)
    units = torch.relu(x64 @ task.target.w1.T)
    h1 = feats["h1"].cpu()
    probe_r2 = _probe_r2(h1, y, fit, score, ridge).mean(1)
    unit_r2 = _probe_r2(h1, units, fit, score, ridge).mean(1)
    rows = [{"level": name, "level_index": j, "seed": k, "clean_error": float(error[teachers.index(j, k)]),
             "probe_r2": float(probe_r2[teachers.index(j, k)]), "unit_r2": float(unit_r2[teachers.index(j, k)])}
            for j, name in enumerate(teachers.levels) for k in teachers.seeds]
    return pd.DataFrame(rows)


def input_probe_r2(task: Task, n_probe: int, n_ref: int, rng: Stream, ridge: float = 1e-3) -> float:
    """R^2 of the same probe on the clean *input* itself (the best linear function of ``x``): what any
    features must beat to know more than a linear model."""
    test = draw(task, n_ref, rng.child("reference", 0), label_noise=False)
    probe = draw(task, n_probe, rng.child("reference", 1), label_noise=False)
    x = torch.cat([probe.clean, test.clean]).double()
    y = task.target(x)
    return float(_probe_r2(x.unsqueeze(0), y, slice(0, n_probe), slice(n_probe, None), ridge).mean())


# --------------------------------------------------------------------------- students
@dataclass(frozen=True)
class Member(protocol.Run):
    """A run of the chapter: the protocol's knobs, whose teacher is matched and noise augmentation."""

    level: int = 0  # whose h1 the feature term matches (ignored at lam = 0)
    fresh_noise: float | None = None


def method_grid(levels, lams, decays, aug_levels, sigma: float) -> list[dict]:
    """Every trained (method, configuration), as :class:`Member` knobs without ``seed``.

    The base student is trained once per run: it is the ``lam = 0`` point of every ST grid and the
    ``wd = 0`` point of weight decay (:func:`run_table` copies it there), so those grids skip it.
    """
    grid = [dict(method="base", config="-")]
    grid += [dict(method="weight decay", config=f"wd={w:g}", weight_decay=w) for w in decays[1:]]
    grid += [dict(method=st_method(name), config=f"lam={l:g}", lam=l, level=j)
             for j, name in enumerate(levels) for l in lams[1:]]
    grid += [dict(method="noise augmentation", config=f"s={a:g}sigma", fresh_noise=a * sigma) for a in aug_levels]
    return grid


def members(grid: list[dict], seeds) -> list[Member]:
    return [Member(seed=int(k), **g) for g in grid for k in seeds]


def train_configuration(task: Task, runs: list[Member], teachers: Teachers, n_train: int, n_val: int, n_test: int,
                        config: TrainConfig, rng: Stream, device=None, rate_fraction: float = RATE_FRACTION
                        ) -> pd.DataFrame:
    """Train ``runs`` at one (sample size, noise level): one ensemble with fixed noisy inputs, one with fresh noise.

    Run ``k`` trains on ``rng.child("student_data", k, n_train)`` (the noise levels share it) from
    ``rng.child("student_init", k)`` and is measured on ``rng.child("validation", k)`` and
    ``rng.child("test", k)``. The fresh noise of noise augmentation is drawn from
    ``rng.child("noise", n_train)`` (the noise levels share it, scaled). Every member trains at its own
    curvature rate (:func:`~stlearn.experiments.nonlinear.train_at_curvature_rates`). Returns the tidy
    history with ``method``, ``config``, ``seed`` and ``rate`` columns.
    """
    histories = []
    for fresh in (False, True):
        part = [m for m in runs if (m.fresh_noise is not None) == fresh]
        if not part:
            continue
        width = teachers.model.widths[1]
        data = run_sets(task, n_train, [rng.child("student_data", m.seed, n_train) for m in part], device=device)
        test = run_sets(task, n_test, [rng.child("test", m.seed) for m in part], label_noise=False, device=device)
        val = validation_samples(task, n_val, rng, [m.seed for m in part], device)
        students = MLP([task.d, width, task.d_out], members=len(part), device=device,
                       rng=[rng.child("student_init", m.seed) for m in part])
        result = train_at_curvature_rates(
            students, data, replace(config, seed=rng.child("noise", n_train),
                                    weight_decay=tuple(m.weight_decay for m in part)), rate_fraction,
            teacher=teachers.frozen([m.level for m in part], [m.seed for m in part]), lam=[m.lam for m in part],
            layers=["h1"], eval_sets={"test": test, "val": val},
            member_info={k: [getattr(m, k) for m in part] for k in ("method", "config", "seed")},
            fresh_noise=[m.fresh_noise for m in part] if fresh else None)
        histories.append(result.history)
    return pd.concat(histories, ignore_index=True)


def run_table(history: pd.DataFrame, levels, lams, decays) -> pd.DataFrame:
    """Every trained run stopped on validation (:func:`stlearn.protocol.stop_on_validation`), with its learning
    rate, and the base student's rows copied in as the ``lam = 0`` point of each ST grid and the ``wd = 0``
    point of weight decay."""
    keys = ["method", "config", "seed"]
    table = protocol.stop_on_validation(history, keys).merge(history.groupby(keys).rate.first().reset_index(),
                                                             on=keys)
    base = table[table.method == "base"]
    copies = [base.assign(method="weight decay", config=f"wd={decays[0]:g}")]
    copies += [base.assign(method=st_method(name), config=f"lam={lams[0]:g}") for name in levels]
    table = pd.concat([table, *copies], ignore_index=True)
    table["lam"] = np.where(table.method.str.startswith("ST, "),
                            table.config.str.removeprefix("lam=").where(table.method.str.startswith("ST, "), "0")
                            .astype(float), np.nan)
    return table


def teacher_as_is(task: Task, teachers: Teachers, level: int, n_val: int, n_test: int, rng: Stream,
                  device=None) -> pd.DataFrame:
    """Run ``k``'s teacher of ``level`` applied as it is to the run's noisy validation and test inputs."""
    seeds = teachers.seeds
    net = teachers.frozen([level] * len(seeds), seeds).model
    val = validation_samples(task, n_val, rng, seeds, device)
    test = run_sets(task, n_test, [rng.child("test", k) for k in seeds], label_noise=False, device=device)
    v, t = evaluate(net, val)["noisy"], evaluate(net, test)["noisy"]
    return pd.DataFrame({"method": "teacher as is", "config": "-", "seed": seeds,
                         "val_error": v.cpu().numpy(), "test_error": t.cpu().numpy()})


# --------------------------------------------------------------------------- analysis
def lambda_gains(table: pd.DataFrame, levels) -> pd.DataFrame:
    """Per (level, lam, seed): the gain of ST at that fixed lam (validation-stopped; lam not selected) over
    the base student of the same run (``gain``) and over ST with the run's untrained teacher at the same lam
    (``over_untrained``). Positive: the teacher helps."""
    base = table[table.method == "base"].set_index("seed").test_error
    rows = table[table.method.isin([st_method(n) for n in levels])].copy()
    rows["level"] = rows.method.str.removeprefix("ST, ")
    rows["gain"] = base.reindex(rows.seed).to_numpy() - rows.test_error.to_numpy()
    untrained = rows[rows.level == UNTRAINED].set_index(["lam", "seed"]).test_error
    rows["over_untrained"] = untrained.reindex(pd.MultiIndex.from_frame(rows[["lam", "seed"]])).to_numpy() \
        - rows.test_error.to_numpy()
    return rows[["level", "lam", "seed", "gain", "over_untrained", "val_step"]]


def level_gains(selected: pd.DataFrame, levels) -> pd.DataFrame:
    """Per level and seed: validation-selected ST's gain over base and over ST with the untrained teacher."""
    rows = []
    for name in levels:
        over_base = protocol.paired(selected, st_method(name), "base")
        over_untrained = protocol.paired(selected, st_method(name), st_method(UNTRAINED))
        rows += [{"level": name, "seed": k, "over_base": over_base[k], "over_untrained": over_untrained[k]}
                 for k in over_base.index]
    return pd.DataFrame(rows)


interval = protocol.interval  # the chapter's name for it


def ladder(levels) -> list[str]:
    """The levels that know the true target, from none to most: untrained, then the trained sizes."""
    return [UNTRAINED, *[l for l in levels if l not in (UNTRAINED, WRONG)]]


def crossover(gains: pd.DataFrame, column: str, levels, error: pd.Series) -> dict:
    """Where, along the knowledge ladder, a gain changes sign, read from 95% intervals over runs.

    ``gains``: per (level, seed) the gain in ``column``; ``error``: each level's mean clean test error.
    Returns ``hurts`` (levels whose interval lies below 0), ``helps`` (above 0), ``unresolved``, and
    ``bracket``: ``(a, b)`` when a level ``a`` that resolvably hurts is followed, further up the ladder,
    by a level ``b`` that resolvably helps (the crossover lies between them), else None. ``at_error``:
    the teacher clean error where the mean gain first turns from negative to positive up the ladder
    (log-linear interpolation), NaN if it does not.
    """
    order = [l for l in ladder(levels) if l in set(gains.level)]
    by = gains.groupby("level")[column]
    lows, highs = by.agg(ci_low), by.agg(ci_high)
    means = by.mean()
    hurts = [l for l in order if highs[l] < 0]
    helps = [l for l in order if lows[l] > 0]
    unresolved = [l for l in order if l not in hurts and l not in helps]
    bracket = None
    for i, a in enumerate(order):
        later = [b for b in order[i + 1:] if b in helps]
        if a in hurts and later:
            bracket = (a, later[0])
    at_error = float("nan")
    for a, b in zip(order[:-1], order[1:]):
        if means[a] < 0 <= means[b]:
            xa, xb = np.log10(error[a]), np.log10(error[b])
            at_error = float(10 ** (xa + (xb - xa) * means[a] / (means[a] - means[b])))
    return {"hurts": hurts, "helps": helps, "unresolved": unresolved, "bracket": bracket, "at_error": at_error}


def describe_crossover(c: dict, what: str) -> str:
    """Words for :func:`crossover`'s result."""
    if c["bracket"] is not None:
        a, b = c["bracket"]
        return (f"{what} crosses zero between {teacher_phrase(a)} (resolvably below zero) and "
                f"{teacher_phrase(b)} (resolvably above)")
    if c["hurts"]:
        return (f"{what} is resolvably below zero for {', '.join(map(teacher_phrase, c['hurts']))}, and no more "
                f"knowledgeable teacher is resolvably above")
    if c["helps"]:
        return (f"{what} is never resolvably below zero, and resolvably above zero for "
                f"{', '.join(map(teacher_phrase, c['helps']))}")
    return f"{what} is not resolvably different from zero for any teacher"


# --------------------------------------------------------------------------- one condition, and all of them
def run_condition(task: Task, teachers: Teachers, n_train: int, sigma: float, lams, decays, aug_levels, n_val: int,
                  n_test: int, config: TrainConfig, rng: Stream, device=None,
                  rate_fraction: float = RATE_FRACTION) -> pd.DataFrame:
    """Every method at one (student sample size, noise level): the run table (one row per method, config, run),
    stopped on validation, with the most knowledgeable teacher applied as it is, and the condition's columns."""
    noisy = task.with_noise(sigma)
    runs = members(method_grid(teachers.levels, lams, decays, aug_levels, sigma), teachers.seeds)
    history = train_configuration(noisy, runs, teachers, n_train, n_val, n_test, config, rng, device, rate_fraction)
    table = run_table(history, teachers.levels, lams, decays)
    as_is = teacher_as_is(noisy, teachers, len(teachers.levels) - 1, n_val, n_test, rng, device)
    return pd.concat([table, as_is], ignore_index=True).assign(n_train=n_train, sigma=sigma)


def tuned_methods(levels) -> list[str]:
    return ["weight decay", "noise augmentation", *[st_method(n) for n in levels]]


def check_budgets(table: pd.DataFrame, levels) -> int:
    """Every tuned method has the same number of configurations in every condition; returns it."""
    counts = {protocol.check_equal_budgets(g, tuned_methods(levels)) for _, g in table.groupby(["n_train", "sigma"])}
    if len(counts) != 1:
        raise ParameterError(f"the conditions must have equal tuning budgets; got {sorted(counts)}")
    return counts.pop()


def select_all(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`stlearn.protocol.select` in each condition (validation only)."""
    return pd.concat([protocol.select(g.drop(columns=["n_train", "sigma"])).assign(n_train=n, sigma=s)
                      for (n, s), g in table.groupby(["n_train", "sigma"])], ignore_index=True)


def all_level_gains(selected: pd.DataFrame, levels) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`level_gains` per condition, plus the ``pooled`` rows: per run, the mean over the conditions."""
    per = pd.concat([level_gains(g, levels).assign(n_train=n, sigma=s)
                     for (n, s), g in selected.groupby(["n_train", "sigma"])], ignore_index=True)
    return per, pool(per, ["level"], ["over_base", "over_untrained"])


def pool(per: pd.DataFrame, keys, columns) -> pd.DataFrame:
    """Per run (and ``keys``), the mean of ``columns`` over the conditions: one paired number per run."""
    counts = per.groupby([*keys, "seed"]).size()
    if counts.nunique() != 1:
        raise ParameterError("every run must have a value in every condition to be pooled")
    return per.groupby([*keys, "seed"], sort=False)[list(columns)].mean().reset_index()


def all_lambda_gains(table: pd.DataFrame, levels) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`lambda_gains` per condition, and pooled over the conditions per run."""
    per = pd.concat([lambda_gains(g, levels).assign(n_train=n, sigma=s)
                     for (n, s), g in table.groupby(["n_train", "sigma"])], ignore_index=True)
    return per, pool(per, ["level", "lam"], ["gain", "over_untrained"])


def comparisons(selected: pd.DataFrame, method: str, reference: str) -> pd.DataFrame:
    """``protocol.compare(method, reference)`` in each condition, and pooled (per run, mean over conditions)."""
    rows = []
    for (n, s), g in selected.groupby(["n_train", "sigma"]):
        rows.append({"n_train": n, "sigma": s, **protocol.compare(g, method, reference)})
    diffs = pd.concat([protocol.paired(g, method, reference).rename("d").reset_index()
                       for _, g in selected.groupby(["n_train", "sigma"])])
    rows.append({"n_train": "pooled", "sigma": "pooled", **interval(diffs.groupby("seed").d.mean())})
    return pd.DataFrame(rows)


def against_strongest(selected: pd.DataFrame, method: str, candidates) -> pd.DataFrame:
    """Per condition: the strongest of ``candidates`` on validation, and the paired gain of ``method`` over it;
    the last row (``pooled``) is the gain over each condition's strongest, per run the mean over the conditions."""
    rows, diffs = [], []
    for (n, s), g in selected.groupby(["n_train", "sigma"]):
        best = protocol.strongest(g, candidates)
        rows.append({"n_train": n, "sigma": s, "strongest": best, **protocol.compare(g, method, best)})
        diffs.append(protocol.paired(g, method, best).rename("d").reset_index())
    pooled = interval(pd.concat(diffs).groupby("seed").d.mean())
    return pd.DataFrame([*rows, {"n_train": "pooled", "sigma": "pooled", "strongest": "per condition", **pooled}])


def where_beaten(rows: pd.DataFrame, method: str) -> str:
    """Words: in which conditions the reference of each row matches or beats ``method`` (from the intervals)."""
    rows = rows[rows.n_train != "pooled"]
    beats = [f"n = {r.n_train}, σ = {r.sigma:g} ({r.strongest})" for r in rows.itertuples() if r.high < 0]
    ties = [f"n = {r.n_train}, σ = {r.sigma:g} ({r.strongest})" for r in rows.itertuples() if r.low <= 0 <= r.high]
    wins = [f"n = {r.n_train}, σ = {r.sigma:g}" for r in rows.itertuples() if r.low > 0]
    parts = []
    if beats:
        parts.append(f"a simple method beats {method} at {'; '.join(beats)}")
    if ties:
        parts.append(f"no resolvable difference between {method} and a simple method at {'; '.join(ties)}")
    if wins:
        parts.append(f"{method} beats the strongest simple method at {'; '.join(wins)}")
    return "; ".join(parts)


def knowledge_summary(know: pd.DataFrame) -> pd.DataFrame:
    """Per level: mean and 95% interval over the runs' teachers of each knowledge measure."""
    know = know.assign(unexplained=1 - know.probe_r2)
    rows = []
    for name, g in know.groupby("level", sort=False):
        row = {"level": name}
        for c in ("clean_error", "unexplained", "probe_r2", "unit_r2"):
            m, lo, hi = mean_ci(g[c])
            row.update({c: m, f"{c}_low": lo, f"{c}_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def sign_pattern(gains: pd.DataFrame, column: str, order) -> str:
    """One symbol per level of ``order``: ``+`` (interval above 0), ``-`` (below 0), ``0`` (includes 0)."""
    by = gains.groupby("level")[column]
    lows, highs = by.agg(ci_low), by.agg(ci_high)
    return " ".join("+" if lows[l] > 0 else "-" if highs[l] < 0 else "0" for l in order)


def crossover_table(levels_per: pd.DataFrame, levels_pooled: pd.DataFrame, lams_per: pd.DataFrame,
                    lams_pooled: pd.DataFrame, levels, lams) -> pd.DataFrame:
    """The sign of each ladder level's gain, over base and over the untrained teacher, at validation-selected
    lam and at each fixed lam > 0, per condition and pooled: where a ``-`` turns into a ``+`` up the ladder,
    the gain crosses zero with both sides resolved."""
    up = ladder(levels)
    rows = []
    for reference, column, order in (("base", "over_base", up), ("untrained teacher", "over_untrained", up[1:])):
        for lam in ["selected", *lams[1:]]:
            row = {"gain over": reference, "lam": lam if lam == "selected" else f"{lam:g}"}
            for key, g in [*levels_per.groupby(["n_train", "sigma"]), ("pooled", levels_pooled)] if lam == "selected" \
                    else [*lams_per[lams_per.lam == lam].groupby(["n_train", "sigma"]),
                          ("pooled", lams_pooled[lams_pooled.lam == lam])]:
                name = key if key == "pooled" else f"n={key[0]}, σ={key[1]:g}"
                col = column if lam == "selected" else ("gain" if column == "over_base" else column)
                row[name] = sign_pattern(g, col, order)
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- verdicts in words
def claim_verdict(primary: dict, untrained: dict, level_per: pd.DataFrame, lam_per: pd.DataFrame, best: str) -> str:
    """The answer to "does a knowledgeable teacher help, within limits?", from the intervals.

    ``primary``: ST with ``best`` against ST with the untrained teacher, pooled; ``untrained``: the untrained
    teacher's pooled gain over base; ``level_per`` / ``lam_per``: the per-condition gains at validation-selected
    and at fixed lam (:func:`all_level_gains`, :func:`all_lambda_gains`).
    """
    who = f"ST with {teacher_phrase(best)}"
    knows = protocol.by_sign(
        primary, f"Knowledge helps beyond what a random teacher gives: {who} beats ST with the untrained teacher",
        f"Knowledge hurts: {who} is worse than ST with the untrained teacher",
        "Beyond what a random teacher gives, the teacher's knowledge adds no resolvable gain")
    zero = protocol.by_sign(
        untrained, "but part of ST's gain over the base student needs no knowledge: the untrained teacher "
        "resolvably helps as well", "and the untrained teacher resolvably hurts the student",
        "and the untrained teacher gives no resolvable gain over the base student")
    hurt_selected = _hurting(level_per, "over_base")
    hurt_fixed = _hurting(lam_per.rename(columns={"gain": "over_base"}), "over_base", by_lam=True)
    if hurt_selected:
        limit = ("With λ chosen on validation, a teacher still resolvably hurts the student "
                 f"({'; '.join(hurt_selected)}), the limit the paper describes")
    elif hurt_fixed:
        limit = ("With λ chosen on validation no teacher resolvably hurts; at a fixed λ some do "
                 f"({'; '.join(hurt_fixed)}), so the paper's limit is real but a validation set avoids it")
    else:
        limit = ("No teacher, however weak, resolvably hurts the student, with λ chosen on validation or at any "
                 "fixed λ tried: the limit the paper describes did not appear here")
    return f"{knows}, {zero}. {limit}."


def _listed(levels) -> str:
    """``the untrained teacher``, ``the untrained and the wrong-target teachers``, ``a, b and c``."""
    names = [teacher_phrase(l) for l in levels]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def helps_base_verdict(over_base: dict, levels) -> str:
    """Words for the pooled gain of ST over the base student with each teacher (``over_base[level]``: an
    interval, :func:`interval`): which teachers resolvably help it, hurt it, or neither."""
    helps = [l for l in levels if over_base[l]["low"] > 0]
    hurts = [l for l in levels if over_base[l]["high"] < 0]
    unresolved = [l for l in levels if l not in helps and l not in hurts]
    if len(helps) == len(levels):
        return "every teacher helps the base student resolvably, the untrained and the wrong-target ones included"
    if len(unresolved) == len(levels):
        return "no teacher, trained or not, resolvably helps or hurts the base student"
    parts = [f"{_listed(helps)} resolvably help{'s' if len(helps) == 1 else ''} the base student"] if helps else []
    if hurts:
        parts.append(f"{_listed(hurts)} resolvably hurt{'s' if len(hurts) == 1 else ''} it")
    if unresolved:
        parts.append(f"with {_listed(unresolved)} the difference is not resolvable")
    return "; ".join(parts)


def _hurting(gains: pd.DataFrame, column: str, by_lam: bool = False) -> list[str]:
    """``teacher at condition (and lam)`` for every gain whose interval lies below zero."""
    keys = ["n_train", "sigma", "level", *(["lam"] if by_lam else [])]
    highs = gains.groupby(keys)[column].agg(ci_high)
    found = []
    for key, high in highs.items():
        if high < 0:
            n, s, level, *lam = key
            found.append(f"{teacher_phrase(level)} at n = {n}, σ = {s:g}" + (f", λ = {lam[0]:g}" if lam else ""))
    return found


def practice(simple: pd.DataFrame, augmented: pd.DataFrame, primary: dict, best: str) -> str:
    """The chapter's advice, from the comparisons with the simple methods and the primary comparison."""
    simple = simple[simple.n_train != "pooled"]
    beaten, matched = int((simple.high < 0).sum()), int(((simple.low <= 0) & (simple.high >= 0)).sum())
    conditions = len(simple)
    who = f"ST with {teacher_phrase(best)}"
    if beaten + matched == conditions:
        head = (f"Try the simple methods first: in {beaten} of the {conditions} conditions one of them beats {who}"
                + (f", and in the other {matched} there is no resolvable difference from one of them." if matched
                   else "."))
    else:
        head = (f"{who} beats the strongest simple method of the same information in "
                f"{conditions - beaten - matched} of the {conditions} conditions.")
    pooled = augmented[augmented.n_train == "pooled"].iloc[0]
    aug = (f" Where a noise model exists, noise augmentation beats {who} too." if pooled.high < 0 else "")
    if primary["low"] > 0:
        teacher = (" If ST is used, a teacher that knows the target is worth having (it beats a random one), and "
                   "λ should be chosen on a labelled validation set, 0 included.")
    else:
        teacher = (" If ST is used: " + protocol.no_difference(primary, "a knowledgeable teacher", "a random one")
                   + " here; choose λ on a labelled validation set, 0 included.")
    return head + aug + teacher


def pool_by(per: pd.DataFrame, by: str, columns) -> pd.DataFrame:
    """Per value of ``by`` (e.g. the noise level), level and run: the mean of ``columns`` over the other
    condition axis (one paired number per run)."""
    return per.groupby([by, "level", "seed"], sort=False)[list(columns)].mean().reset_index()


def resolved_crossings(level_per: pd.DataFrame, level_pooled: pd.DataFrame, lam_per: pd.DataFrame,
                       lam_pooled: pd.DataFrame, levels, lams) -> list[str]:
    """Every entry of :func:`crossover_table` where a gain crosses zero with both sides resolved, in words."""
    error = pd.Series(1.0, index=levels)  # the location in clean error is not needed here
    found = []
    for reference, column in (("base", "over_base"), ("the untrained teacher", "over_untrained")):
        for lam in ["selected", *lams[1:]]:
            if lam == "selected":
                groups = [*level_per.groupby(["n_train", "sigma"]), ("pooled", level_pooled)]
                col = column
            else:
                groups = [*lam_per[lam_per.lam == lam].groupby(["n_train", "sigma"]),
                          ("pooled", lam_pooled[lam_pooled.lam == lam])]
                col = "gain" if column == "over_base" else column
            for key, g in groups:
                if column == "over_untrained":
                    g = g[g.level != UNTRAINED]
                c = crossover(g, col, levels, error)
                if c["bracket"] is None:
                    continue
                where = "pooled" if key == "pooled" else f"n = {key[0]}, σ = {key[1]:g}"
                how = "λ chosen on validation" if lam == "selected" else f"λ = {lam:g}"
                a, b = c["bracket"]
                found.append(f"over {reference} at {where}, {how}: between {teacher_phrase(a)} (below zero) and "
                             f"{teacher_phrase(b)} (above)")
    return found
