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

Methods, for one (student sample size, noise level) condition (:func:`methods`), run by the study runner
(:mod:`stlearn.study`); every tuned method has ``len(lams)`` configurations and lam is on the relative scale
(``lam = 1``: feature and task terms of one size where training starts):

* ``base``: the plain student, stopped on validation;
* ``weight decay``: the grid ``decays`` (its first point, 0, is the base student);
* ``fine-tuned teacher``: the base loss from the weights of the run's most knowledgeable teacher, over ``decays``;
* ``ST`` (the most knowledgeable teacher) and ``ST, <level>``: the feature term on ``h1`` with the run's
  teacher of that level, ``lam`` in ``lams`` (the first 0: the base student, so a useless teacher can be
  switched off on validation);
* ``teacher as is``: the most knowledgeable teacher applied to noisy inputs (measured, not trained);
* ST as a complement: ``ST + weight decay`` (the most knowledgeable teacher, lam tuned at the decay weight
  decay chose in the run) and ``ST from the teacher's weights`` (at the fine-tuned teacher's decay);
* ``noise augmentation``: fresh noise on the clean inputs at every step, levels ``aug_levels`` x sigma, and
  ``ST + noise augmentation``: ST with the most knowledgeable teacher, at augmentation's chosen level (both need
  the noise model, which the others do not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .. import protocol, study
from ..data import Task, draw, draw_members, gaussian_inputs, relu_target
from ..losses import FrozenTeacher
from ..models import MLP, overwrite_members, select_members, stack_members
from ..stats import ci_high, ci_low, format_ci, mean_ci
from ..streams import Stream
from ..teachers import fit_teacher
from ..train import TrainConfig, evaluate
from ..validation import ParameterError
from ..verdicts import teacher_phrase
from .nonlinear import RATE_FRACTION, Students, teacher_config

UNTRAINED, WRONG = "untrained", "wrong target"
Tensor = torch.Tensor


def level_names(teacher_sizes) -> list[str]:
    """The knowledge levels in order: untrained, wrong target, then one per teacher sample size."""
    return [UNTRAINED, WRONG, *[f"{n} samples" for n in teacher_sizes]]


def check_grids(lams, decays, aug_levels, teacher_sizes, n_trains, sigmas, main_n_train, main_sigma) -> None:
    """``lams`` the ST grid (0 first, increasing), ``decays`` starting at 0 (the base), the teacher sizes
    increasing, and the main condition one of the conditions. Equal budgets: :meth:`stlearn.study.Study.budget`."""
    study.check_lam_grid(lams)
    if not decays or decays[0] != 0.0:
        raise ParameterError(f"decays must start with 0 (the base student); got {decays}")
    if not aug_levels:
        raise ParameterError("aug_levels must hold at least one level (noise augmentation); got []")
    if len(set(teacher_sizes)) != len(teacher_sizes) or list(teacher_sizes) != sorted(teacher_sizes):
        raise ParameterError(f"teacher_sizes must be increasing and distinct; got {teacher_sizes}")
    if main_n_train not in n_trains or main_sigma not in sigmas:
        raise ParameterError(f"main_n_train and main_sigma must be among n_trains {n_trains} and sigmas {sigmas}; "
                             f"got {main_n_train}, {main_sigma}")


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
    """A run of the chapter: the protocol's knobs, whose teacher is matched (or applied) and noise augmentation.

    While ``lam = 0`` the teacher does nothing: ST at ``lam = 0`` with any teacher is the base run
    (:meth:`stlearn.protocol.Run.trains_as`), trained once by the study runner.
    """

    INERT = {"lam": ("level",)}
    level: int = 0  # whose h1 the feature term matches (the teacher as is: whose output is read)
    fresh_noise: float | None = None
    init: str = "student"  # "student": the run's own init; "teacher": the weights of its most knowledgeable teacher


def st_names(levels) -> dict[str, str]:
    """Level -> method name: ``ST`` with the most knowledgeable teacher (the study's primary ST), ``ST, <level>``
    with the others."""
    return {name: "ST" if name == levels[-1] else f"ST, {name}" for name in levels}


def methods(levels, lams, decays, aug_levels, sigma: float) -> tuple[study.Method, ...]:
    """The chapter's methods at noise level ``sigma`` (module docstring): the simple methods of the same
    information, ST with every teacher, ST as a complement (the best teacher's feature term added to tuned
    weight decay and to the fine-tuned teacher, at what each chose in the run), and, with the noise model,
    noise augmentation at ``aug_levels`` x sigma and ST + noise augmentation (the best teacher, at the level
    augmentation chose in the run) over ``lams``."""
    best = len(levels) - 1
    lam = dict(label=lambda v: f"lam={v:g}")
    wd = dict(label=lambda v: f"wd={v:g}")
    decays = [float(w) for w in decays]
    out = [study.Method("base", ({"config": "-"},)),
           study.grid("weight decay", "weight_decay", decays, **wd),
           study.grid("fine-tuned teacher", "weight_decay", decays, init="teacher", **wd),
           study.Method("teacher as is", ({"config": "-", "level": best},), measured=True)]
    out += [study.grid(name, "lam", lams, level=j, **lam) for j, name in enumerate(st_names(levels).values())]
    out += study.complements(lams, level=best, **lam)
    out += [study.grid("noise augmentation", "fresh_noise", [a * sigma for a in aug_levels],
                       label=lambda v: f"s={v / sigma:g}σ", family=study.NOISE_MODEL),
            study.grid("ST + noise augmentation", "lam", lams, level=best, fresh_noise=sigma,
                       family=study.NOISE_MODEL, follows="noise augmentation", inherits=["fresh_noise"], **lam)]
    return tuple(out)


@dataclass
class Condition:
    """One (student sample size, noise level): how to train or measure one group of its runs.

    Run ``k``'s sets, init, fresh noise and training are ``students``' (:class:`~.nonlinear.Students`, with
    ``index = (n_train,)``: the noise levels share a size's training sets and fresh noise, scaled; the sizes
    differ). Every method of run ``k`` that augments sees the same noise, whichever runs share its ensemble.
    """

    students: Students  # with the condition's noise level
    teachers: Teachers

    @staticmethod
    def group_of(run: Member) -> str:
        if run.method == "teacher as is":
            return "measured"
        return "fresh noise" if run.fresh_noise is not None else "fixed noise"

    def execute(self, group: str, runs: list[Member]) -> pd.DataFrame:
        """Train (or, the teacher as is, measure) ``runs`` as one ensemble; rows with a ``member`` column."""
        seeds = [m.seed for m in runs]
        teacher = self.teachers.frozen([m.level for m in runs], seeds)
        if group == "measured":
            return self.students.measure(teacher.model, seeds)
        students = self.students.network(self.teachers.model.widths[1], seeds)
        best = len(self.teachers.levels) - 1
        from_teacher = [e for e, m in enumerate(runs) if m.init == "teacher"]
        overwrite_members(students, from_teacher, self.teachers.model,
                          [self.teachers.index(best, seeds[e]) for e in from_teacher])
        return self.students.train(students, runs, teacher=teacher, layers=["h1"]).history


def the_study(levels, lams, decays, aug_levels, sigma: float, seeds) -> study.Study:
    """The study of one condition: :func:`methods` on the runs ``seeds``, the three standard families."""
    return study.Study(methods(levels, lams, decays, aug_levels, sigma), tuple(int(k) for k in seeds), Member)


def run_condition(task: Task, teachers: Teachers, n_train: int, sigma: float, lams, decays, aug_levels, n_val: int,
                  n_test: int, config: TrainConfig, rng: Stream, device=None,
                  rate_fraction: float = RATE_FRACTION) -> study.StudyResult:
    """Every method at one (student sample size, noise level), by the study runner
    (:func:`stlearn.study.run_study`): equal budgets checked first, each distinct run trained once, stopped
    and selected on validation, the three families compared."""
    s = the_study(teachers.levels, lams, decays, aug_levels, sigma, teachers.seeds)
    students = Students(task.with_noise(sigma), n_train, n_val, n_test, config, rng, device, rate_fraction, (n_train,))
    cond = Condition(students, teachers)
    return study.run_study(s, cond.execute, cond.group_of)


def run_all(task: Task, teachers: Teachers, n_trains, sigmas, lams, decays, aug_levels, n_val: int, n_test: int,
            config: TrainConfig, rng: Stream, device=None, rate_fraction: float = RATE_FRACTION) -> dict:
    """:func:`run_condition` for every (sample size, noise level), keyed by it."""
    return {(n, s): run_condition(task, teachers, n, s, lams, decays, aug_levels, n_val, n_test, config, rng, device,
                                  rate_fraction) for n in n_trains for s in sigmas}


def combined(results: dict, levels) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The conditions' run tables, selections and family comparisons, each with ``n_train`` and ``sigma``
    columns; the tables also with each run's ``lam`` (:meth:`stlearn.study.StudyResult.lam_rows`) and, for ST with
    one teacher, its ``level`` name."""
    level_of = {m: name for name, m in st_names(levels).items()}
    tables, selections, families = [], [], []
    for (n, s), r in results.items():
        keys = dict(n_train=n, sigma=s)
        tables.append(r.lam_rows().assign(**keys))
        selections.append(r.selected.assign(**keys))
        families.append(r.comparisons.assign(**keys))
    table = pd.concat(tables, ignore_index=True)
    table["level"] = table.method.map(level_of)
    return table, pd.concat(selections, ignore_index=True), pd.concat(families, ignore_index=True)


# --------------------------------------------------------------------------- analysis
def lambda_gains(table: pd.DataFrame, levels) -> pd.DataFrame:
    """Per (level, lam, seed): the gain of ST at that fixed lam (validation-stopped; lam not selected) over
    the base student of the same run (``gain``) and over ST with the run's untrained teacher at the same lam
    (``over_untrained``). Positive: the teacher helps. ``table`` has the ``lam`` and ``level`` columns of
    :func:`combined` (one condition)."""
    base = table[table.method == "base"].set_index("seed").test_error
    rows = table[table.level.isin(list(levels))].copy()
    rows["gain"] = base.reindex(rows.seed).to_numpy() - rows.test_error.to_numpy()
    untrained = rows[rows.level == UNTRAINED].set_index(["lam", "seed"]).test_error
    rows["over_untrained"] = untrained.reindex(pd.MultiIndex.from_frame(rows[["lam", "seed"]])).to_numpy() \
        - rows.test_error.to_numpy()
    return rows[["level", "lam", "seed", "gain", "over_untrained", "val_step"]]


def level_gains(selected: pd.DataFrame, levels) -> pd.DataFrame:
    """Per level and seed: validation-selected ST's gain over base and over ST with the untrained teacher."""
    rows, name_of = [], st_names(levels)
    for name in levels:
        over_base = protocol.paired(selected, name_of[name], "base")
        over_untrained = protocol.paired(selected, name_of[name], name_of[UNTRAINED])
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


# --------------------------------------------------------------------------- pooled over the conditions
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


def knowledge_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`knowledge_summary` for the reader: per level, each measure as ``mean [95% interval]``."""
    return pd.DataFrame({"level": summary.level} | {
        name: [f"{m:.4f} [{lo:.4f}, {hi:.4f}]" for m, lo, hi in
               zip(summary[c], summary[f"{c}_low"], summary[f"{c}_high"])]
        for name, c in [("clean test error", "clean_error"), ("h1 probe: unexplained", "unexplained"),
                        ("hidden-unit probe R2", "unit_r2")]})


def error_table(selected: pd.DataFrame, methods) -> pd.DataFrame:
    """Test error (mean [95% interval] over runs) of each method's selected runs, one column per condition."""
    errors = (selected.groupby(["method", "n_train", "sigma"]).test_error.apply(lambda v: format_ci(v, 4))
              .unstack(["n_train", "sigma"]).reindex(list(methods)))
    errors.columns = [f"n={n}, σ={s:g}" for n, s in errors.columns]
    return errors.rename_axis("method")


def level_tables(level_per: pd.DataFrame, level_pooled: pd.DataFrame, levels) -> dict[str, pd.DataFrame]:
    """The gains of validation-selected ST with each teacher, over the base student and over ST with the
    untrained teacher: per condition and pooled, ``mean [95% interval]``, keyed by a caption."""
    groups = [(f"n={n}, σ={s:g}", g) for (n, s), g in level_per.groupby(["n_train", "sigma"])]
    groups.append(("pooled", level_pooled))
    out = {}
    for column, what in (("over_base", "over the base student"), ("over_untrained", "over ST with the untrained "
                                                                                     "teacher")):
        shown = pd.DataFrame({name: [format_ci(g[g.level == l][column], 4) for l in levels] for name, g in groups},
                             index=pd.Index(list(levels), name="teacher"))
        out[f"gain of validation-selected ST {what}"] = shown
    return out


def half_widths(level_per: pd.DataFrame, level_pooled: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Half-widths of the 95% intervals of the trained teachers' gains over the untrained one: per condition
    and level, and pooled per level (how small a difference the search resolves)."""
    def half(v):
        return (ci_high(v) - ci_low(v)) / 2
    per = level_per[level_per.level != UNTRAINED].groupby(["n_train", "sigma", "level"]).over_untrained.agg(half)
    pooled = level_pooled[level_pooled.level != UNTRAINED].groupby("level").over_untrained.agg(half)
    return per, pooled


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


# --------------------------------------------------------------------------- for the reader
def family_rows(families: pd.DataFrame) -> pd.DataFrame:
    """The families per condition, for the reader: family, comparison, condition, gain [95% interval]."""
    return pd.DataFrame({"family": families.family, "comparison": families.method + " vs " + families.reference,
                         "condition": [f"n = {n}, σ = {s:g}" for n, s in zip(families.n_train, families.sigma)],
                         "gain [95% interval]": [protocol.interval_text(r) for r in families.to_dict("records")]})


def lam_curve(table: pd.DataFrame, methods=("ST", "ST + noise augmentation")) -> pd.DataFrame:
    """Test error (mean [95% interval] over runs) of ``methods`` at each fixed lam, validation-stopped."""
    rows = table[table.method.isin(list(methods))]
    out = rows.groupby(["lam", "method"]).test_error.apply(lambda v: format_ci(v, 4)).unstack("method")
    return out.reindex(columns=list(methods)).rename_axis("λ").reset_index()


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
