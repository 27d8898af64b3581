"""Chapter "Early stopping in wide ReLU networks", under the book's protocol (:mod:`stlearn.protocol`).

Run ``k`` (the ``seed`` column) has its own training, validation and test sets
and its own two teachers: teacher ``k`` trained on ``n_teacher`` clean samples
of its own (``"large"``), and a teacher trained on the clean inputs of run
``k``'s own training set (``"own"``, from ``rng.child("teacher_init", k, 1)``).
Every method is a grid of configurations; each configuration of each method is
one member of an ensemble trained at once, stopped on validation, and each
method keeps per run the configuration with the lowest validation error.

The methods (their knobs are the fields of :class:`Member`):

* ``base``: the plain student, the base loss on the fixed noisy inputs;
* ``weight decay``: L2 weight decay;
* ``output distillation``: the task loss plus ``lam`` times the squared distance
  of the output to the large teacher's output on the clean input, trained as
  the base loss on blended targets (:func:`stlearn.distill.blended_targets`);
* ``fine-tuned teacher``: the base loss from the large teacher's weights (its
  validation-chosen step may be 0: the teacher as it is);
* ``ST``: the feature term on ``h1`` with the large teacher;
* ``ST, own-samples teacher``: the same with the teacher of the run's own samples;
* ``ST from the teacher's weights``: ST started from the large teacher's weights, i.e. ST combined
  with the strongest simple method of this chapter, the fine-tuned teacher;
* ``noise augmentation``: fresh noise on the clean training inputs at every
  step (needs the noise model, which the methods above do not);
* ``ST + noise augmentation``.

The clean teacher applied as it is (``teacher as is``) is measured, not trained.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .. import protocol
from ..data import Samples, Task, draw_members
from ..distill import blended_targets
from ..losses import FrozenTeacher
from ..models import MLP, overwrite_members, select_members, stack_members
from ..stats import ci_high, ci_low
from ..streams import Stream
from ..teachers import fit_teacher
from ..train import TrainConfig, evaluate
from ..validation import ParameterError
from .nonlinear import RATE_FRACTION, run_sets, teacher_config, train_at_curvature_rates, validation_samples

FIXED_PAIRS = ("base", "weight decay", "output distillation", "fine-tuned teacher", "teacher as is")
NOISE_MODEL = ("noise augmentation",)
TUNED = ("weight decay", "output distillation", "fine-tuned teacher", "ST", "ST, own-samples teacher",
         "ST from the teacher's weights", "noise augmentation", "ST + noise augmentation")


@dataclass(frozen=True)
class Member(protocol.Run):
    """A run of the chapter: the protocol's knobs (``lam`` on ``h1``, ``weight_decay``) and these."""

    blend: float = 0.0  # output distillation: weight of the teacher's output in the targets
    fresh_noise: float | None = None  # noise augmentation: the level of the fresh noise (None: fixed inputs)
    init: str = "student"  # "student": the run's own init; "teacher": the large teacher's weights
    teacher: str = "large"  # whose h1 the feature term matches: "large" or "own"


def check_grids(lams, decays, blends, aug_levels) -> None:
    """Equal budgets: every tuned method's grid has as many points as ``lams``, whose first point is 0 (base)."""
    if not lams or lams[0] != 0.0 or len(lams) < 2:
        raise ParameterError(f"lams must start with 0 (the base loss) and hold at least one ST weight; got {lams}")
    for name, grid in (("decays", decays), ("blends", blends), ("aug_levels", aug_levels)):
        if len(grid) != len(lams):
            raise ParameterError(f"{name} must have as many points as lams ({len(lams)}: equal tuning budgets); "
                                 f"got {len(grid)}")


def method_grid(lams, decays, blends, aug_levels, sigma: float) -> list[dict]:
    """Every (method, configuration) of the chapter, as the knobs of :class:`Member` (without ``seed``).

    ``lams`` must start with 0: its first point is the base student, so ST's grid holds the base.
    """
    grid = [dict(method="base", config="-")]
    grid += [dict(method="weight decay", config=f"wd={w:g}", weight_decay=w) for w in decays]
    grid += [dict(method="output distillation", config=f"lam={b:g}", blend=b) for b in blends]
    grid += [dict(method="fine-tuned teacher", config=f"wd={w:g}", weight_decay=w, init="teacher") for w in decays]
    grid += [dict(method="ST", config=f"lam={l:g}", lam=l) for l in lams]
    grid += [dict(method="ST, own-samples teacher", config=f"lam={l:g}", lam=l, teacher="own") for l in lams]
    grid += [dict(method="ST from the teacher's weights", config=f"lam={l:g}", lam=l, init="teacher") for l in lams]
    grid += [dict(method="noise augmentation", config=f"s={a:g}sigma", fresh_noise=a * sigma) for a in aug_levels]
    grid += [dict(method="ST + noise augmentation", config=f"lam={l:g}", lam=l, fresh_noise=sigma) for l in lams]
    return grid


def members(grid: list[dict], seeds) -> list[Member]:
    return [Member(seed=int(k), **g) for g in grid for k in seeds]


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


def knobs(m: Member) -> tuple:
    """What a member trains with: members of equal knobs are the same run (e.g. ST at lam = 0 and base)."""
    return (m.seed, m.lam, m.weight_decay, m.blend, m.fresh_noise, m.init, m.teacher if m.lam > 0 else "large")


@dataclass
class Trained:
    """An ensemble with one member per distinct run of ``runs``; ``history`` has a row set per run."""

    model: MLP
    history: pd.DataFrame
    member_of: dict  # Member -> its member in ``model``


def train_ensemble(task: Task, runs: list[Member], nets: dict[str, MLP], n_train: int, n_val: int, n_test: int,
                   config: TrainConfig, rng: Stream, seeds, device=None,
                   rate_fraction: float = RATE_FRACTION) -> Trained:
    """Train ``runs`` as one ensemble, each distinct run (:func:`knobs`) once, each at its own curvature rate
    (:func:`~stlearn.experiments.nonlinear.train_at_curvature_rates`; the history's ``rate`` column).

    The members must all see the fixed noisy inputs (``fresh_noise`` None) or all fresh noise.
    """
    distinct = list(dict.fromkeys(knobs(m) for m in runs))
    member_of = {m: distinct.index(knobs(m)) for m in runs}
    reps = [next(m for m in runs if knobs(m) == key) for key in distinct]
    width = nets["large"].widths[1]
    slot = {k: i for i, k in enumerate(seeds)}
    index = [slot[m.seed] for m in reps]
    data = run_sets(task, n_train, [rng.child("student_data", m.seed) for m in reps], device=device)
    data = _blended(data, nets["large"], index, [m.blend for m in reps])
    test = run_sets(task, n_test, [rng.child("test", m.seed) for m in reps], label_noise=False, device=device)
    students = MLP([task.d, width, task.d_out], members=len(reps), device=device,
                   rng=[rng.child("student_init", m.seed) for m in reps])
    from_teacher = [e for e, m in enumerate(reps) if m.init == "teacher"]
    overwrite_members(students, from_teacher, nets["large"], [index[e] for e in from_teacher])
    both = stack_members([nets["large"], nets["own"]])
    teacher = FrozenTeacher(select_members(both, [index[e] + (len(seeds) if m.teacher == "own" else 0)
                                                  for e, m in enumerate(reps)]))
    lams = [m.lam for m in reps]
    noise = [m.fresh_noise for m in reps]
    config = replace(config, weight_decay=tuple(m.weight_decay for m in reps))
    val = validation_samples(task, n_val, rng, [m.seed for m in reps], device)
    result = train_at_curvature_rates(students, data, config, rate_fraction, teacher=teacher, lam=lams,
                                      layers=["h1"], eval_sets={"test": test, "val": val},
                                      fresh_noise=None if noise[0] is None else noise)
    labels = pd.DataFrame({"member": [member_of[m] for m in runs], "method": [m.method for m in runs],
                           "config": [m.config for m in runs], "seed": [m.seed for m in runs]})
    history = result.history.drop(columns=["lam"]).merge(labels, on="member")  # a row set per run
    return Trained(students, history, member_of)


def teacher_as_is(task: Task, nets: dict[str, MLP], n_val: int, n_test: int, rng: Stream, seeds,
                  device=None) -> pd.DataFrame:
    """The large teacher applied to the noisy validation and test inputs of each run, as it is."""
    val = validation_samples(task, n_val, rng, seeds, device)
    test = run_sets(task, n_test, [rng.child("test", k) for k in seeds], label_noise=False, device=device)
    v, t = evaluate(nets["large"], val)["noisy"], evaluate(nets["large"], test)
    return pd.DataFrame({"method": "teacher as is", "config": "-", "seed": list(seeds),
                         "val_error": v.cpu().numpy(), "test_error": t["noisy"].cpu().numpy(),
                         "clean_test_error": t["clean"].cpu().numpy()})


def continue_at_zero_lam(task: Task, trained: Trained, runs: list[Member], n_train: int, n_val: int, n_test: int,
                         config: TrainConfig, rng: Stream, device=None,
                         rate_fraction: float = RATE_FRACTION) -> pd.DataFrame:
    """Continue the members of ``runs`` in ``trained`` with the base loss (lam = 0), each at the curvature rate
    of the base loss where it ends its first phase.

    The ST students are thus trained on to (near) zero task loss; the history's steps continue after
    ``config.steps``, and its ``lam`` column is the run's lam before.
    """
    student = select_members(trained.model, [trained.member_of[m] for m in runs])
    data = run_sets(task, n_train, [rng.child("student_data", m.seed) for m in runs], device=device)
    test = run_sets(task, n_test, [rng.child("test", m.seed) for m in runs], label_noise=False, device=device)
    val = validation_samples(task, n_val, rng, [m.seed for m in runs], device)
    result = train_at_curvature_rates(student, data, config, rate_fraction, eval_sets={"test": test, "val": val},
                                      member_info={k: [getattr(m, k) for m in runs]
                                                   for k in ("method", "config", "seed", "lam")})
    history = result.history[result.history.step > 0].copy()
    history["step"] += config.steps
    return history


def first_below(history: pd.DataFrame, threshold: float, by=("method", "config", "seed")) -> pd.DataFrame:
    """Per run: the test error at the first logged step where the training task loss is below ``threshold``."""
    below = history[history.train_task <= threshold].sort_values("step")
    first = below.groupby(list(by)).head(1)[[*by, "step", "test_noisy"]]
    return first.rename(columns={"step": "reached_at", "test_noisy": "at_threshold"})


def selected_summary(selected: pd.DataFrame, methods) -> pd.DataFrame:
    """Per method: mean and 95% interval of the validation-selected test error, and the configurations chosen."""
    return protocol.summary(selected, methods)


def protocol_check(runs: pd.DataFrame) -> int:
    """The tuned methods' equal budget (configurations per method)."""
    return protocol.check_equal_budgets(runs, TUNED)



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


def shrink_verdict(shrink: dict) -> str:
    """Words for the validation-stopped gain minus the gain at matched training loss, one interval per config."""
    groups = {"resolvably above 0": [c for c, v in shrink.items() if v["low"] > 0],
              "resolvably below 0": [c for c, v in shrink.items() if v["high"] < 0],
              "not resolvably different from 0": [c for c, v in shrink.items() if v["low"] <= 0 <= v["high"]]}
    parts = [f"{words} for {'every lambda' if len(configs) == len(shrink) else ', '.join(configs)}"
             for words, configs in groups.items() if configs]
    text = "; ".join(parts)
    if len(groups["resolvably above 0"]) == len(shrink):
        text += ": at equal training loss the teacher's gain is smaller than where validation stops it"
    return text


def claim_verdict(st_over_base: dict, zero_gains: pd.DataFrame, primary: dict, strongest: str) -> str:
    """The answer to "does the paper's first claim hold here?", from the intervals.

    ``st_over_base``: the paired comparison of validation-selected ST with the base student;
    ``zero_gains``: per (config, seed) the gain at zero loss (``gain_zero_loss_test``); ``primary``: ST
    against the strongest fixed-pairs method ``strongest``.
    """
    early = "Early stopped on validation, ST " + protocol.by_sign(
        st_over_base, "beats the base student", "is worse than the base student",
        "does not resolvably beat the base student")
    highs = zero_gains.groupby("config").gain_zero_loss_test.agg(ci_high)
    lows = zero_gains.groupby("config").gain_zero_loss_test.agg(ci_low)
    if (lows > 0).any():
        zero = "some ST students keep a resolvable gain at zero training loss, unlike the linear theorem"
    elif (highs < 0).all():
        zero = ("trained on to zero loss, every ST student ends resolvably worse than the base student, so the "
                "advice not to train to zero loss holds with force")
    elif (highs < 0).any():
        zero = ("trained on to zero loss, no ST student keeps a gain and some end resolvably worse than the base "
                "student, so the advice not to train to zero loss holds with force")
    else:
        zero = "trained on to zero loss, no ST student keeps a resolvable gain, as the linear theorem predicts"
    simple = protocol.by_sign(primary, f"ST beats it ({strongest})", f"{strongest} beats ST",
                              protocol.no_difference(primary, "ST", strongest))
    return f"{early}; {zero}. Against the strongest simple method of the same information, {simple}."


def practice(primary: dict, strongest: str) -> str:
    """The chapter's advice, from the primary comparison."""
    if primary["low"] > 0:
        head = "ST is worth its teacher here: it beats every simple method of the fixed-pairs setting."
    else:
        found = (f"{strongest} is better than ST" if primary["high"] < 0
                 else protocol.no_difference(primary, "ST", strongest) + ", which leaves room for either to be better")
        head = f"Before adopting ST for a task like this one, try the simple methods of the table: here {found}."
    return head + " Whatever is used, stop on a labelled noisy validation set."
