"""Chapter "Early stopping in wide ReLU networks", on the study runner (:mod:`stlearn.study`).

Run ``k`` (the ``seed`` column) has its own training, validation and test sets
and its own two teachers: teacher ``k`` trained on ``n_teacher`` clean samples
of its own (``"large"``), and a teacher trained on the clean inputs of run
``k``'s own training set (``"own"``, from ``rng.child("teacher_init", k, 1)``).
Every method is a grid of configurations (:func:`study`); the runner trains each
distinct run once, stops it on validation, keeps per method and run the
configuration of lowest validation error and compares the three families.
This module only trains a group of runs (:func:`executor`).

The methods (their knobs are the fields of :class:`Member`; lambda on the relative
scale of :mod:`stlearn.losses`, ``lam = 1``: feature and task terms of one size where training starts):

* family 1, the same information (the fixed pairs and the large teacher):
  ``base``, ``weight decay``, ``output distillation`` (the task loss plus ``lam``
  times the squared distance of the output to the teacher's output on the clean
  input, trained as the base loss on blended targets,
  :func:`stlearn.distill.blended_targets`), ``fine-tuned teacher`` (the base loss
  from the teacher's weights), ``teacher as is`` (measured), and ``ST`` (the
  feature term on ``h1``);
* family 2, ST as a complement: ``ST + weight decay`` (lambda tuned at the decay
  weight decay chose in the run) and ``ST from the teacher's weights`` (at the
  fine-tuned teacher's decay);
* family 3, with a noise model: ``noise augmentation`` (fresh noise on the clean
  training inputs at every step, run ``k``'s from ``rng.child("noise", k)``) and
  ``ST + noise augmentation`` (at the level augmentation chose);
* secondary: ``ST, own-samples teacher`` (the teacher of the run's own clean inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .. import protocol
from .. import study as studies
from ..data import Samples, Task, draw_members
from ..distill import blended_targets
from ..losses import FrozenTeacher
from ..models import MLP, overwrite_members, select_members, stack_members
from ..stats import interval_table
from ..streams import Stream
from ..teachers import fit_teacher
from ..validation import ParameterError
from .nonlinear import Students, run_sets, teacher_config


@dataclass(frozen=True)
class Member(protocol.Run):
    """A run of the chapter: the protocol's knobs (``lam`` on ``h1``, ``weight_decay``) and these."""

    INERT = {"lam": ("teacher",)}  # at lam = 0 the feature term, and so its teacher, does nothing

    blend: float = 0.0  # output distillation: weight of the teacher's output in the targets
    fresh_noise: float | None = None  # noise augmentation: the level of the fresh noise (None: fixed inputs)
    init: str = "student"  # "student": the run's own init; "teacher": the large teacher's weights
    teacher: str = "large"  # whose h1 the feature term matches (or, measured, whose output is read): a key of the nets


def study(lams, decays, blends, aug_levels, sigma: float, seeds) -> studies.Study:
    """Every method of the chapter with its grid; every tuned method has ``len(lams)`` configurations.

    The ST variants of family 2 and 3 tune lambda at what their partner chose on validation in the same run:
    ST + weight decay at weight decay's decay, ST from the teacher's weights at the fine-tuned teacher's decay,
    ST + noise augmentation at augmentation's noise level (:attr:`stlearn.study.Method.follows`).
    """
    lams = studies.check_lam_grid(lams)
    for name, values in (("decays", decays), ("blends", blends), ("aug_levels", aug_levels)):
        if len(values) != len(lams):
            raise ParameterError(f"{name} must have as many points as lams ({len(lams)}: equal tuning budgets); "
                                 f"got {len(values)}")
    lam = dict(knob="lam", values=lams)
    noise = studies.NOISE_MODEL
    methods = (studies.Method("base", ({"config": "-"},)),
               studies.grid("weight decay", "weight_decay", decays, lambda w: f"wd={w:g}"),
               studies.grid("output distillation", "blend", blends, lambda b: f"lam={b:g}"),
               studies.grid("fine-tuned teacher", "weight_decay", decays, lambda w: f"wd={w:g}", init="teacher"),
               studies.Method("teacher as is", ({"config": "-"},), measured=True),
               studies.grid("ST", **lam),
               *studies.complements(lams),
               studies.grid("ST, own-samples teacher", **lam, teacher="own"),
               studies.grid("noise augmentation", "fresh_noise", [a * sigma for a in aug_levels],
                            lambda s: f"s={s / sigma:g}sigma", family=noise),
               studies.grid("ST + noise augmentation", **lam, fresh_noise=sigma, family=noise,
                            follows="noise augmentation", inherits=["fresh_noise"]))
    return studies.Study(methods, tuple(int(k) for k in seeds), Member)


def group_of(m: Member) -> str:
    """The ensemble a run trains in: fixed noisy inputs or fresh noise; a teacher as it is is measured."""
    if m.method.startswith("teacher as is"):
        return "measured"
    return "fixed" if m.fresh_noise is None else "fresh"


def teachers(task: Task, width: int, n_teacher: int, n_train: int, rng: Stream, seeds, steps: int,
             device=None) -> dict[str, MLP]:
    """Per run ``k`` the large teacher (``n_teacher`` clean samples of its own) and the own-samples teacher.

    Each kind is one ensemble with a member per run; both are frozen afterwards.
    """
    config = teacher_config(steps)
    large = MLP([task.d, width, task.d_out], members=len(seeds), device=device,
                rng=[rng.child("teacher_init", k) for k in seeds])
    own = MLP([task.d, width, task.d_out], members=len(seeds), device=device,
              rng=[rng.child("teacher_init", k, 1) for k in seeds])
    fit_teacher(large, draw_members(task, n_teacher, [rng.child("teacher_data", k) for k in seeds], device=device),
                config)
    fit_teacher(own, draw_members(task, n_train, [rng.child("student_data", k) for k in seeds], device=device),
                config)
    return {"large": large, "own": own}


def _blended(data: Samples, teacher: MLP, index: list[int], blends: list[float]) -> Samples:
    """The training sets with output-distillation targets ``(y + b g(x)) / (1 + b)`` per member."""
    out = FrozenTeacher(select_members(teacher, index))(data.clean)
    return Samples(data.clean, data.noisy, blended_targets(data.y, out, blends))


@dataclass(frozen=True)
class Setting:
    """What every group of the chapter trains with: the runs' sets and training (:class:`~.nonlinear.Students`),
    the teachers of every run by name (:func:`teachers`: ``"large"``, ``"own"``; a run's ``teacher`` names one,
    and ``"large"`` is the one distilled, fine-tuned and applied as it is) and the run indices."""

    students: Students
    nets: dict
    seeds: tuple

    def index(self, runs) -> list[int]:
        """Each run's member in the teacher ensembles."""
        slot = {k: i for i, k in enumerate(self.seeds)}
        return [slot[m.seed] for m in runs]

    def teacher(self, runs) -> MLP:
        """The ensemble whose member ``e`` is the teacher that run ``runs[e]`` names."""
        names = list(self.nets)
        stacked = stack_members([self.nets[n] for n in names])
        return select_members(stacked, [names.index(m.teacher) * len(self.seeds) + i
                                        for m, i in zip(runs, self.index(runs))])


def executor(setting: Setting):
    """``execute(group, runs)`` for :func:`stlearn.study.run_study`: trains or measures one group."""
    def execute(group: str, runs: list[Member]):
        if group == "measured":  # each run's teacher, as it is
            return setting.students.measure(setting.teacher(runs), [m.seed for m in runs])
        return train_ensemble(setting, runs)
    return execute


def train_ensemble(s: Setting, runs: list[Member]) -> tuple[pd.DataFrame, MLP]:
    """Train the distinct ``runs`` as one ensemble, each at its own curvature rate
    (:meth:`~.nonlinear.Students.train`; the history's ``rate`` column).

    The members must all see the fixed noisy inputs (``fresh_noise`` None) or all fresh noise. Returns the
    history (a ``member`` column: the position in ``runs``) and the trained ensemble.
    """
    seeds, index = [m.seed for m in runs], s.index(runs)
    data = _blended(s.students.training_sets(seeds), s.nets["large"], index, [m.blend for m in runs])
    students = s.students.network(s.nets["large"].widths[1], seeds)
    from_teacher = [e for e, m in enumerate(runs) if m.init == "teacher"]
    overwrite_members(students, from_teacher, s.nets["large"], [index[e] for e in from_teacher])
    result = s.students.train(students, runs, teacher=FrozenTeacher(s.teacher(runs)), layers=["h1"], data=data)
    return result.history, students


def run(setting: Setting, plan: studies.Study) -> studies.StudyResult:
    """The chapter's study: every method trained (or measured), stopped and selected on validation, compared."""
    return studies.run_study(plan, executor(setting), group_of)


def continue_at_zero_lam(s: Setting, result: studies.StudyResult, method: str = "ST") -> pd.DataFrame:
    """Continue every run of ``method`` with the base loss (lam = 0), each at the curvature rate of the base loss
    where it ends its first phase.

    The ST students are thus trained on to (near) zero task loss; the history's steps continue after
    ``config.steps``, and its ``lam`` column is the run's lam before.
    """
    runs = [m for m in result.where if m.method == method]
    group = {result.where[m][0] for m in runs}
    if group != {"fixed"}:
        raise ParameterError(f"{method} must train on the fixed noisy inputs to be continued; got groups {group}")
    student = select_members(result.models["fixed"], [result.where[m][1] for m in runs])
    base_loss = [replace(m, lam=0.0) for m in runs]
    trained = s.students.train(student, base_loss, member_info={k: [getattr(m, k) for m in runs]
                                                                for k in ("method", "config", "seed", "lam")})
    history = trained.history[trained.history.step > 0].copy()
    history["step"] += s.students.config.steps
    return history


@dataclass
class ZeroLoss:
    """The training-length readout: ST's paths on to zero loss and its gains over base along them."""

    path: pd.DataFrame  # every ST run's path, first phase then continuation (a ``lam`` column)
    gains: pd.DataFrame  # per lam > 0 and run: the gain over base validation-stopped, at matched and at zero loss
    shrink: dict  # per config: validation-stopped gain minus the gain at matched loss (an interval)
    zero_loss: float  # the zero predictor's task loss
    threshold: float  # the matched-loss level
    worst_fit: float  # the largest final training loss, relative to the zero predictor's
    phase_one: pd.Series  # the ST students' (lam > 0) training loss at the end of the first phase, relative

    def table(self) -> pd.DataFrame:
        names = {"gain_test_error": "validation-stopped", "gain_at_threshold": "at matched loss (1%)",
                 "gain_zero_loss_test": "at zero loss"}
        table = interval_table(self.gains, "config", list(names), digits=4).rename(columns=names)
        order = table.config.str.removeprefix("lam=").astype(float).argsort()
        return table.iloc[order].rename(columns={"config": "ST's lambda"}).reset_index(drop=True)


def zero_loss_readout(s: Setting, result: studies.StudyResult, level: float = 1e-2) -> ZeroLoss:
    """Continue ST's runs to zero loss (:func:`continue_at_zero_lam`) and read each lam's gain over base (the lam = 0
    run) at its validation stop, where its training loss first falls below ``level`` of the zero predictor's, and at
    the end."""
    continued = continue_at_zero_lam(s, result)
    path = pd.concat([result.history[result.history.method == "ST"], continued], ignore_index=True)
    path["lam"] = path.config.str.removeprefix("lam=").astype(float)
    st_ = s.students
    zero_loss = 0.5 * zero_predictor_error(st_.task, st_.n_test, st_.rng, st_.device)
    threshold = level * zero_loss
    end = continued[continued.step == continued.step.max()][["config", "seed", "test_noisy", "train_task"]]
    at_loss = first_below(path, threshold).merge(
        end.rename(columns={"test_noisy": "zero_loss_test", "train_task": "zero_loss_train"}), on=["config", "seed"])
    table = result.table
    at_loss = at_loss.merge(table[table.method == "ST"][["config", "seed", "test_error"]], on=["config", "seed"])
    base_rows = at_loss[at_loss.config == "lam=0"].set_index("seed")
    for column in ("test_error", "at_threshold", "zero_loss_test"):
        at_loss[f"gain_{column}"] = base_rows[column].reindex(at_loss.seed).to_numpy() - at_loss[column]
    gains = at_loss[at_loss.config != "lam=0"]
    shrink = {c: protocol.interval(g.gain_test_error - g.gain_at_threshold) for c, g in gains.groupby("config")}
    phase_one = table[(table.method == "ST") & (table.config != "lam=0")].end_train_task / zero_loss
    return ZeroLoss(path, gains, shrink, zero_loss, threshold, at_loss.zero_loss_train.max() / zero_loss, phase_one)


def first_below(history: pd.DataFrame, threshold: float, by=("method", "config", "seed")) -> pd.DataFrame:
    """Per run: the test error at the first logged step where the training task loss is below ``threshold``."""
    below = history[history.train_task <= threshold].sort_values("step")
    first = below.groupby(list(by)).head(1)[[*by, "step", "test_noisy"]]
    return first.rename(columns={"step": "reached_at", "test_noisy": "at_threshold"})


def lam_curve(result: studies.StudyResult, methods=("ST", "ST + noise augmentation")) -> pd.DataFrame:
    """Test error against lambda (every configuration, each read at its validation stop) for ``methods``."""
    return result.lam_rows(methods)


def zero_predictor_error(task: Task, n: int, rng: Stream, device=None) -> float:
    """``E ||y||^2``, the zero predictor's test error, on ``n`` samples of ``rng.child("reference", 0)``."""
    reference = run_sets(task, n, [rng.child("reference", 0)], label_noise=False, device=device)
    return reference.y.pow(2).sum(-1).mean().item()


def loss_binned(history: pd.DataFrame, zero_loss: float, bins: int = 12) -> pd.DataFrame:
    """Test error against the relative training loss, averaged per lam in log-spaced loss bins.

    Every run is first interpolated onto the bin centres (log-log, along its path),
    so each bin holds one value per seed and the interval is over seeds.
    """
    h = history[history.step > 0].assign(rel=lambda d: (d.train_task / zero_loss).clip(lower=1e-12))
    centres = np.linspace(np.log10(h.rel.min()), np.log10(h.rel.max()), bins)
    rows = []
    for (lam, seed), g in h.groupby(["lam", "seed"]):
        g = g.sort_values("rel")
        x = np.log10(g.rel.to_numpy())
        inside = (centres >= x.min()) & (centres <= x.max())
        values = np.interp(centres[inside], x, g.test_noisy.to_numpy())
        rows += [{"lam": lam, "seed": seed, "rel_train_loss": 10**c, "test_noisy": v}
                 for c, v in zip(centres[inside], values)]
    return pd.DataFrame(rows)
