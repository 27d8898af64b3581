"""Classification of noisy real inputs on the study runner: the chapters "Real images" and "MNIST-1D".

One module for both chapters (``CONTRIBUTING.md``, the experiments protocol). The methods, their grids,
the equal budgets, the shared runs, the selection on validation and the three families of comparisons
are :mod:`stlearn.study`'s; this module says only how to train or measure one group of runs
(:class:`Executor`) and reads the chapter-specific results (training length, knowledge, lambda); their words
are :mod:`stlearn.verdicts`' (``length_verdict``, ``classification_practice``).

**Runs.** Run ``k`` (the ``seed`` column) has its own stratified train/validation/test split of the
dataset (``rng.child("split", k)``), its own pixel noise (``rng.child("noise", k)``, one child stream
per part), its own student initialization (``rng.child("student_init", k)``, shared by every method,
so comparisons are paired) and its own teachers: teacher ``j`` (a knowledge level) of run ``k`` starts
from ``rng.child("teacher_init", k, j)`` and trains on the clean versions of run ``k``'s training
inputs (by the paper's design, never on a validation or test input). The minibatch order comes from
``rng.child("batch")``; run ``k``'s fresh noise of augmentation from ``rng.child("noise", k, 1)`` (its own,
whichever runs share its ensemble).

**Knowledge levels.** A teacher's knowledge is its training budget: level ``j`` trains
``teacher_steps[j]`` Adam steps (0: the untrained teacher), in stages, each level continuing from the
one before (a fresh optimizer per stage).

**Methods** (:func:`methods`; every tuned one has ``len(lams)`` configurations, the study's budget;
every trained run is read at its step of lowest noisy validation error). Family 1, the same
information (the fixed noisy/clean pairs and the teacher):

* ``base``: cross-entropy on the noisy training inputs (stopping only);
* ``weight decay``: the same with L2 weight decay (grid ``decays``);
* ``logit distillation``: cross-entropy mixed with the KL divergence to the clean teacher's softened
  outputs (weight ``alpha``, temperature ``T``; ``alpha = 0`` is the base loss);
* ``teacher as is``: the clean teacher on noisy inputs (measured, no configuration);
* ``denoise-then-teacher``: a PCA denoiser fitted on run ``k``'s clean training inputs (the
  projection on their top ``r`` principal components), then the clean teacher (measured, grid ``ranks``);
* ``fine-tuned teacher``: the full teacher's weights trained on with the base loss on the noisy
  inputs (stopping only);
* ``ST``: cross-entropy plus ``lam`` times the feature term on the matched hidden layer (``lam`` on the
  relative scale of :mod:`stlearn.losses`; ``lam = 0`` is the base loss).

Family 2, ST as a complement: ``ST + weight decay`` (the lam grid at the decay weight decay chose in the run)
and ``ST from the teacher's weights`` (the lam grid from the fine-tuned teacher's start). Family 3,
with a noise model: ``noise augmentation`` (the clean training inputs with fresh noise at every step,
grid ``aug_levels`` times sigma) and ``ST + noise augmentation`` (the lam grid at the fresh-noise
level augmentation chose in the run). Secondary: ``ST, <level> teacher``, ST with a teacher of less
knowledge.

**Several noisy views** (the MNIST-1D chapter; :func:`views_splits`, :func:`run_views`). Run ``k``'s students see
``n_student`` of its clean training inputs (a stratified draw from ``rng.child("split", k).child("student_data")``),
each with ``K`` fixed noisy copies, as in burst capture: view 0 is the run's one-view noise, view ``j >= 1`` has noise
of its own (``rng.child("noise", k).child("student_data").child("noise", j)``, :func:`stlearn.datasets.labelled`),
so the first views of a larger ``K`` are those of a smaller one. Validation and test sets are the run's, with one
noisy copy each, and the teachers are the run's (trained on all of its clean training inputs). Per ``K`` the study
runs :data:`VIEWS_METHODS`; students take the same number of steps whatever ``K``. Noise augmentation never sees
the fixed views (it trains on the clean inputs with fresh noise), so its runs are trained once, with the fewest
views, and are the same reference at every ``K`` (:class:`OnceWithoutViews`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import protocol, study
from ..conv import ConvNet
from ..data import Samples
from ..datasets import CLASSES, LabelledSplit, labelled, stratified_indices
from ..distill import train_distilled
from ..losses import FrozenTeacher
from ..models import MLP
from ..stats import collapse_intervals
from ..streams import Stream
from ..teachers import clean_view
from ..train import TrainConfig, evaluate, train
from ..validation import ParameterError, check_int

ModelFactory = Callable[..., nn.Module]
MEASURED = ("teacher as is", "denoise-then-teacher")  # applied, not trained


@dataclass(frozen=True)
class Member(protocol.Run):
    """One run of one method: the protocol's knobs and these (each inert at its default)."""

    INERT = {"lam": ("layer", "level"), "alpha": ("temperature",)}

    layer: str = ""  # ST: the matched hidden layer
    level: int = -1  # ST: the knowledge level of the teacher (-1: the full teacher, the last level)
    fresh_noise: float | None = None  # noise augmentation: the level of the fresh noise
    alpha: float = 0.0  # logit distillation: weight of the KL term
    temperature: float = 1.0  # logit distillation: temperature
    init: str = "own"  # the student's start: "own" (run k's student init) or "teacher" (the full teacher's weights)
    rank: int = 0  # denoise-then-teacher: the PCA rank


# ----------------------------------------------------------------------------------------- models
def mlp_factory(inputs: int, hidden: Sequence[int], classes: int = 10) -> ModelFactory:
    """Builds ``MLP([inputs, *hidden, classes])`` for ``members`` and ``rng`` (a stream, or one per member)."""
    return lambda members=None, rng=0, device=None: MLP([inputs, *hidden, classes], members=members, rng=rng,
                                                       device=device)


def cnn_factory(shape: Sequence[int], channels: Sequence[int], hidden: int, kernel: int = 3,
                classes: int = 10, pooling: str = "max") -> ModelFactory:
    """Builds a :class:`stlearn.conv.ConvNet` (1-D for ``shape = (1, L)``, 2-D for ``(1, H, W)``)."""
    return lambda members=None, rng=0, device=None: ConvNet(shape, tuple(channels), hidden, classes, kernel=kernel,
                                                           pooling=pooling, members=members, rng=rng, device=device)


def gather(factory: ModelFactory, nets: Sequence[nn.Module], picks: Sequence[tuple[int, int]],
           device=None) -> nn.Module:
    """A new ensemble whose member ``e`` is a copy of member ``picks[e][1]`` of ``nets[picks[e][0]]``."""
    out = factory(members=len(picks), rng=Stream(0), device=device)  # its init is overwritten
    sources = [list(n.parameters()) for n in nets]
    with torch.no_grad():
        for p, dst in enumerate(out.parameters()):
            dst.copy_(torch.stack([sources[j][p][k] for j, k in picks]))
    return out


# ------------------------------------------------------------------------------------------- data
def run_splits(dataset: str, n_train: int, n_val: int, sigma: float, rng: Stream, seeds: Sequence[int],
               device=None, views: int = 1) -> LabelledSplit:
    """Run ``k``'s own split ``rng.child("split", k)`` and noise ``rng.child("noise", k)``, stacked ``(S, n, .)``.

    With ``views = K > 1``, each clean training input comes with ``K`` fixed noisy copies (``K * n_train`` training
    rows, view-major; :func:`stlearn.datasets.labelled`): view 0 is the one-view set, so ``views = 1`` is that set
    exactly, and each further view has noise of its own. Validation and test inputs keep one noisy copy each."""
    parts = [labelled(dataset, n_train, n_val, sigma, rng.child("split", k), rng.child("noise", k), device=device,
                      split_name=f"run {k}", views=views) for k in seeds]
    return LabelledSplit(*(Samples.stack([getattr(p, part) for p in parts]) for part in ("train", "val", "test")))


def student_part(data: LabelledSplit, n_train: int, views: int, rng: Stream, seeds: Sequence[int]) -> LabelledSplit:
    """Run ``k``'s training set cut to ``n_train`` of its clean inputs, every view of each kept: a stratified draw
    from ``rng.child("split", k).child("student_data")`` of the split's training inputs (the same for any number of
    views). Validation and test sets are kept. ``data`` has ``views`` views (:func:`run_splits`)."""
    full = data.train.n // views
    classes = len(torch.unique(data.train.y))  # a stratified set holds at least one input of each class
    n_train = check_int("views_n_train", n_train, low=classes, high=full)
    if n_train == full:
        return data
    rows = []
    for i, k in enumerate(seeds):
        labels = data.train.y[i, :full].cpu().numpy()
        idx = stratified_indices(labels, [n_train], rng.child("split", k).child("student_data"))[0]
        rows.append(torch.as_tensor(np.concatenate([j * full + idx for j in range(views)]),
                                    device=data.train.clean.device))
    train = Samples(*(torch.stack([t[i].index_select(0, r) for i, r in enumerate(rows)])
                      for t in (data.train.clean, data.train.noisy, data.train.y)))
    return LabelledSplit(train, data.val, data.test)


def views_splits(dataset: str, n_train: int, n_val: int, sigma: float, rng: Stream, seeds: Sequence[int],
                 views: Sequence[int], n_student: int, device=None) -> dict[int, LabelledSplit]:
    """Per number of views ``K``: run ``k``'s split of :func:`run_splits` (its validation and test sets, the inputs its
    teachers train on) with ``K`` views of each of ``n_student`` of its clean training inputs (:func:`student_part`)."""
    return {int(v): student_part(run_splits(dataset, n_train, n_val, sigma, rng, seeds, device, views=v), n_student,
                                 v, rng, seeds) for v in dict.fromkeys(views)}


def pick(samples: Samples, index: Sequence[int]) -> Samples:
    """Per-run samples ``(S, n, .)`` rearranged to one set per member: member ``e`` gets run ``index[e]``'s."""
    idx = torch.as_tensor(list(index), device=samples.clean.device)
    return samples.map(lambda t: t.index_select(0, idx))


# --------------------------------------------------------------------------------------- teachers
def fit_teachers(factory: ModelFactory, data: LabelledSplit, rng: Stream, seeds: Sequence[int],
                 steps: Sequence[int], config: TrainConfig, device=None) -> list[nn.Module]:
    """Teachers of every knowledge level: one ensemble per level, member ``k`` run ``k``'s teacher.

    Level ``j`` has trained ``steps[j]`` Adam steps (non-decreasing; 0: untrained) on the clean training
    inputs of its run, continuing from level ``j - 1``. All start from ``rng.child("teacher_init", k, 0)``.
    """
    if list(steps) != sorted(steps) or steps[0] < 0:
        raise ParameterError(f"teacher_steps must be non-decreasing numbers >= 0; got {list(steps)}")
    model = factory(members=len(seeds), rng=[rng.child("teacher_init", k, 0) for k in seeds], device=device)
    clean = clean_view(data.train)
    levels, done = [], 0
    for s in steps:
        if s > done:
            train(model, clean, config=replace(config, steps=s - done, seed=rng.child("batch", 1, done)))
            done = s
        levels.append(gather(factory, [model], [(0, k) for k in range(len(seeds))], device))
    return levels


def clean_accuracy(teachers: Sequence[nn.Module], data: LabelledSplit) -> list[np.ndarray]:
    """Per level, each run's teacher's accuracy on its clean test inputs."""
    return [1 - evaluate(t, data.test, "ce")["clean"].cpu().numpy() for t in teachers]


# ------------------------------------------------------------------------------------------ methods
def check_grids(lams: Sequence[float], decays, aug_levels, alphas, temperatures, ranks,
                names: Sequence[str] | None = None, prefix: str = "") -> int:
    """Equal budgets, named by parameter before any computation: every tuned method has ``len(lams)``
    configurations (``lams`` starts with 0, the base loss; distillation has ``alpha = 0`` and
    ``alphas x temperatures``). Only the grids of the methods ``names`` (default: all) are checked; the
    parameters are named with ``prefix`` (``views_decays``). Returns the budget."""
    lams = study.check_lam_grid(lams, f"{prefix}lams")
    budget = len(lams)
    used = set(ALL_METHODS if names is None else names)
    for name, values, method in (("decays", decays, "weight decay"), ("aug_levels", aug_levels, "noise augmentation"),
                                 ("ranks", ranks, "denoise-then-teacher")):
        if method in used and len(values) != budget:
            raise ParameterError(f"{prefix}{name} must have {budget} points (the lam grid's, equal tuning budgets); "
                                 f"got {len(values)}")
    if "logit distillation" in used and 1 + len(alphas) * len(temperatures) != budget:
        raise ParameterError(f"1 + len({prefix}alphas) * len({prefix}temperatures) must be {budget} (equal tuning "
                             f"budgets); got {1 + len(alphas) * len(temperatures)}")
    return budget


@dataclass(frozen=True)
class Grids:
    """The methods' settings: the grids (equal budgets, :func:`check_grids`), the matched ``layer`` and the names
    of the lower knowledge levels (``ST, <name> teacher``; may be empty). ST + weight decay and ST + noise
    augmentation tune lam at the decay and the noise level their partner chose in the run
    (:attr:`stlearn.study.Method.follows`)."""

    lams: Sequence[float]
    layer: str
    decays: Sequence[float]
    aug_levels: Sequence[float]
    alphas: Sequence[float]
    temperatures: Sequence[float]
    ranks: Sequence[int]
    levels: Sequence[str] = ()

    def check(self, names: Sequence[str] | None = None, prefix: str = "") -> int:
        return check_grids(self.lams, self.decays, self.aug_levels, self.alphas, self.temperatures, self.ranks,
                           names, prefix)


def lam_label(lam: float) -> str:
    return f"lam={lam:g}"


def noise_label(level: float) -> str:
    return f"s={level:g}sigma"


ALL_METHODS = ("base", "weight decay", "logit distillation", "teacher as is", "denoise-then-teacher",
               "fine-tuned teacher", "ST", "ST + weight decay", "ST from the teacher's weights", "noise augmentation",
               "ST + noise augmentation")  # a chapter's methods, in order (and ST with each lower level's teacher)


def methods(grids: Grids, sigma: float, names: Sequence[str] | None = None) -> tuple[study.Method, ...]:
    """The methods ``names`` of a chapter (default: every one, :data:`ALL_METHODS` and the lower knowledge levels';
    see the module's docstring), the families' names, in the order of :data:`ALL_METHODS`."""
    grids.check(names)
    lams, layer = list(grids.lams), grids.layer
    st = dict(label=lam_label, layer=layer)
    make = {"base": lambda: study.Method("base", ({"config": "-"},)),
            "weight decay": lambda: study.grid("weight decay", "weight_decay", grids.decays,
                                               label=lambda w: f"wd={w:g}"),
            "logit distillation": lambda: study.Method("logit distillation", ({"config": "alpha=0"}, *(
                {"config": f"alpha={a:g} T={t:g}", "alpha": a, "temperature": t}
                for a in grids.alphas for t in grids.temperatures))),
            "teacher as is": lambda: study.Method("teacher as is", ({"config": "-"},), measured=True),
            "denoise-then-teacher": lambda: study.Method("denoise-then-teacher", tuple(
                {"config": f"rank={r}", "rank": int(r)} for r in grids.ranks), measured=True),
            "fine-tuned teacher": lambda: study.Method("fine-tuned teacher", ({"config": "-", "init": "teacher"},)),
            "ST": lambda: study.grid("ST", "lam", lams, **st),
            "ST + weight decay": lambda: study.grid("ST + weight decay", "lam", lams, follows="weight decay",
                                                    inherits=["weight_decay"], **st),
            "ST from the teacher's weights": lambda: study.grid("ST from the teacher's weights", "lam", lams,
                                                                init="teacher", **st),
            "noise augmentation": lambda: study.Method("noise augmentation", tuple(
                {"config": noise_label(a), "fresh_noise": a * sigma} for a in grids.aug_levels),
                family=study.NOISE_MODEL),
            "ST + noise augmentation": lambda: study.grid("ST + noise augmentation", "lam", lams, fresh_noise=sigma,
                                                          family=study.NOISE_MODEL, follows="noise augmentation",
                                                          inherits=["fresh_noise"], **st)}
    for j, name in enumerate(grids.levels):
        make[f"ST, {name} teacher"] = lambda j=j, name=name: study.grid(f"ST, {name} teacher", "lam", lams, level=j,
                                                                        **st)
    unknown = set(names or ()) - set(make)
    if unknown:
        raise ParameterError(f"methods must be among {list(make)}; got {sorted(unknown)}")
    return tuple(build() for name, build in make.items() if names is None or name in names)


def group_of(run: Member) -> tuple[str, str]:
    """The ensemble a run trains in: measured, distillation, or fixed/fresh-noise inputs with its matched layer.

    Depends only on what the run trains with (:meth:`stlearn.protocol.Run.trains_as`), so shared runs agree."""
    if run.method in MEASURED:
        return ("measured", "")
    if run.alpha > 0:
        return ("distillation", "")
    return ("augmentation" if run.fresh_noise is not None else "fixed", run.layer if run.lam > 0 else "")


# ---------------------------------------------------------------------------------------- training
AUGMENT = 1  # run k's fresh noise is rng.child("noise", k, AUGMENT); rng.child("noise", k) holds its fixed noise


class Executor:
    """Trains (or measures) one group of runs for :func:`stlearn.study.run_study`.

    Every member of a group is one member of a vectorized ensemble: its run's training set, validation
    and test sets, student initialization (or the full teacher's weights, ``init="teacher"``), teacher
    (its knowledge level) and knobs. Returns the group's history (or the measured rows) and the
    trained ensemble.
    """

    def __init__(self, factory: ModelFactory, data: LabelledSplit, teachers: Sequence[nn.Module], rng: Stream,
                 seeds: Sequence[int], config: TrainConfig, device=None):
        self.factory, self.data, self.teachers, self.rng, self.config, self.device = (factory, data, list(teachers),
                                                                                      rng, config, device)
        self.slot = {int(k): i for i, k in enumerate(seeds)}

    def __call__(self, group: tuple[str, str], runs: Sequence[Member]):
        kind, layer = group
        index = [self.slot[r.seed] for r in runs]
        if kind == "measured":
            return measure(self.teachers[-1], self.data, runs, index)
        student = self.student(runs, index)
        sets = {"test": pick(self.data.test, index), "val": pick(self.data.val, index)}
        levels = [len(self.teachers) - 1 if r.level < 0 else r.level for r in runs]
        teacher = FrozenTeacher(gather(self.factory, self.teachers, list(zip(levels, index)), self.device))
        if kind == "distillation":
            history = train_distilled(student, pick(self.data.train, index), teacher, alpha=[r.alpha for r in runs],
                                      temperature=[r.temperature for r in runs], config=self.config,
                                      eval_sets=sets)
        else:
            fresh = [r.fresh_noise for r in runs] if kind == "augmentation" else None
            cfg = replace(self.config, weight_decay=tuple(r.weight_decay for r in runs),
                          noise_seeds=tuple(self.rng.child("noise", r.seed, AUGMENT) for r in runs))
            history = train(student, pick(self.data.train, index), teacher=teacher if layer else None,
                            lam=[r.lam for r in runs], layers=[layer] if layer else [], config=cfg, eval_sets=sets,
                            fresh_noise=fresh).history
        return history, student

    def student(self, runs: Sequence[Member], index: Sequence[int]) -> nn.Module:
        """The group's students: run ``k``'s own initialization, or the full teacher's weights."""
        model = self.factory(members=len(runs), rng=[self.rng.child("student_init", r.seed) for r in runs],
                             device=self.device)
        start = [e for e, r in enumerate(runs) if r.init == "teacher"]
        if start:
            full = gather(self.factory, self.teachers, [(len(self.teachers) - 1, k) for k in index], self.device)
            with torch.no_grad():
                for dst, src in zip(model.parameters(), full.parameters()):
                    dst[start] = src[start]
        return model


def measure(teacher: nn.Module, data: LabelledSplit, runs: Sequence[Member], index: Sequence[int]) -> pd.DataFrame:
    """The measured methods, one row per run: the full teacher as it is, or after the PCA denoiser of rank
    ``run.rank`` fitted on the run's clean training inputs only."""
    if any(r.rank > 0 for r in runs):  # the denoiser only where a run uses it
        mean, basis = pca(data.train.clean)
    errors = {}
    for rank in sorted({r.rank for r in runs}):
        val, test = data.val.noisy, data.test.noisy
        if rank > 0:
            val, test = denoise(val, mean, basis, rank), denoise(test, mean, basis, rank)
        errors[rank] = (evaluate_ce(teacher, val, data.val.y), evaluate_ce(teacher, test, data.test.y))
    rows = []
    for e, (r, k) in enumerate(zip(runs, index)):
        if r.method not in MEASURED:
            raise ParameterError(f"measured methods must be among {list(MEASURED)}; got {r.method!r}")
        val, test = errors[r.rank if r.method == "denoise-then-teacher" else 0]
        rows.append({"member": e, "val_error": float(val[k]), "test_error": float(test[k])})
    return pd.DataFrame(rows)


@torch.no_grad()
def evaluate_ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Per member, the misclassification rate of ``model`` on inputs ``x`` (``(E, n, d)``)."""
    return (model(x).argmax(-1) != y).float().mean(-1).cpu().numpy()


def pca(clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per run (leading dim), the mean ``(S, 1, d)`` and principal directions ``(S, d, d)`` (columns, by variance)."""
    mean = clean.mean(-2, keepdim=True)
    centred = (clean - mean).double()
    _, _, vh = torch.linalg.svd(centred, full_matrices=True)
    return mean, vh.transpose(-1, -2).to(clean)


def denoise(noisy: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor, rank: int) -> torch.Tensor:
    """The projection of ``noisy`` on the top ``rank`` principal directions (around the clean mean)."""
    u = basis[..., :rank]
    return mean + torch.matmul(torch.matmul(noisy - mean, u), u.transpose(-1, -2))


# ------------------------------------------------------------------------ training length (factor 1)
def continue_base(factory: ModelFactory, result: study.StudyResult, continued: Sequence[Member], data: LabelledSplit,
                  seeds: Sequence[int], config: TrainConfig, device=None) -> pd.DataFrame:
    """Train the runs ``continued`` on from the end of their training with the base loss alone
    (``lam = 0``) for ``config.steps`` steps. Their histories' steps continue after ``config.steps``."""
    slot = {int(k): i for i, k in enumerate(seeds)}
    groups = [g for g, model in result.models.items() if model is not None]  # the trained groups
    picks = [(groups.index(result.where[m][0]), result.where[m][1]) for m in continued]
    student = gather(factory, [result.models[g] for g in groups], picks, device)
    index = [slot[m.seed] for m in continued]
    sets = {"test": pick(data.test, index), "val": pick(data.val, index)}
    out = train(student, pick(data.train, index), config=config, eval_sets=sets,
                member_info={"method": [m.method for m in continued], "config": [m.config for m in continued],
                             "seed": [m.seed for m in continued]})
    history = out.history[out.history.step > 0].drop(columns=["lam"]).copy()
    history["step"] += config.steps
    return history


def length_gains(first: pd.DataFrame, continued: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """Per run, the gain of validation-selected ST over base at three points of their paths.

    ``stopped``: both at their validation stop; ``matched``: ST at the first logged step where its
    training cross-entropy is at most the base student's at the end of the first phase, against that
    base student; ``zero loss``: both at the end of the continuation. Also the training losses there.
    """
    paths = pd.concat([first, continued], ignore_index=True)
    chosen = selected[selected.method.isin(["ST", "base"])][["method", "config", "seed"]]
    paths = paths.merge(chosen, on=["method", "config", "seed"])
    rows = []
    end1 = first.step.max()
    for k, g in paths.groupby("seed"):
        base, st = g[g.method == "base"].sort_values("step"), g[g.method == "ST"].sort_values("step")
        base_end1 = base[base.step == end1].iloc[0]
        below = st[st.train_task <= base_end1.train_task]
        matched = below.iloc[0] if len(below) else st.iloc[-1]
        stop = selected.set_index(["method", "seed"]).test_error
        rows.append({"seed": k, "stopped": stop["base", k] - stop["ST", k],
                     "matched": base_end1.test_noisy - matched.test_noisy,
                     "matched_reached": bool(len(below)), "matched_step": matched.step,
                     "zero_loss": base.iloc[-1].test_noisy - st.iloc[-1].test_noisy,
                     "base_end_loss": base.iloc[-1].train_task, "st_end_loss": st.iloc[-1].train_task,
                     "base_first_loss": base_end1.train_task, "st_first_loss": st[st.step == end1].iloc[0].train_task})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- readouts
def accuracy_rows(selected: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """The per-method summary of :func:`stlearn.protocol.summary` in accuracy (1 - error) terms."""
    s = protocol.summary(selected, methods, base="base")
    return s.assign(accuracy=1 - s.test_error, accuracy_low=1 - s.test_error_high, accuracy_high=1 - s.test_error_low)


def methods_table(selected: pd.DataFrame) -> pd.DataFrame:
    """Every method's validation-selected runs in words, best test accuracy first: accuracy with its
    interval, the paired gain over base, the mean validation error and the configurations chosen."""
    rows = accuracy_rows(selected, list(dict.fromkeys(selected.method))).sort_values("accuracy", ascending=False)
    gain = "accuracy, method vs base (above 0: method better)"
    shown = rows.rename(columns={"gain": gain, "gain_low": f"{gain}_low", "gain_high": f"{gain}_high"})
    shown.loc[rows.method == "base", [gain, f"{gain}_low", f"{gain}_high"]] = np.nan  # base against itself
    shown = collapse_intervals(shown[["method", "accuracy", "accuracy_low", "accuracy_high", gain, f"{gain}_low",
                                      f"{gain}_high"]], signed=[gain])
    return shown.assign(**{"validation error": rows.val_error.round(3).to_numpy(),
                           "configurations chosen (runs)": rows.chosen.to_numpy()}).reset_index(drop=True)


def lam_curve(result: study.StudyResult, methods: Sequence[str] = ("ST", "ST + noise augmentation")) -> pd.DataFrame:
    """Per ST method and lam (every run at its validation stop, no selection): the mean test error and its
    95% interval over runs."""
    table = result.lam_rows(methods)
    rows = []
    for m in methods:
        for lam, runs in table[table.method == m].groupby("lam", sort=False):
            err = protocol.interval(runs.test_error.to_numpy())
            rows.append({"method": m, "lam": lam, "test_error": err["gain"], "low": err["low"], "high": err["high"]})
    return pd.DataFrame(rows).sort_values(["method", "lam"], kind="stable").reset_index(drop=True)


def classes(dataset: str) -> int:
    return CLASSES[dataset]


# ------------------------------------------------------------------------------- one architecture
@dataclass
class Outcome:
    """Everything a chapter reads about one architecture."""

    teacher_accuracy: list  # per knowledge level, each run's clean test accuracy
    result: study.StudyResult  # the study: run table, selection, histories, families
    length: pd.DataFrame  # per run, the ST gain validation-stopped, at matched loss and at zero loss
    paths: pd.DataFrame  # the selected ST and base runs' paths, the continuation included
    level_methods: list  # the ST methods of the knowledge levels, lower first, the full teacher ("ST") last
    teachers: list = field(default_factory=list)  # per knowledge level, the ensemble of the runs' teachers

    @property
    def selected(self) -> pd.DataFrame:
        return self.result.selected

    @property
    def table(self) -> pd.DataFrame:
        return self.result.table


def run_architecture(factory: ModelFactory, data: LabelledSplit, rng: Stream, seeds: Sequence[int], sigma: float,
                     grids: Grids, teacher_steps: Sequence[int], config: TrainConfig, teacher_config: TrainConfig,
                     device=None) -> Outcome:
    """Teachers, every method's runs on the study runner, and the training-length readout."""
    grids.check()
    if len(grids.levels) != len(teacher_steps) - 1:
        raise ParameterError(f"teacher_steps must hold one budget per lower level {list(grids.levels)} and the full "
                             f"teacher's ({len(grids.levels) + 1}); got {list(teacher_steps)}")
    plan = study.Study(methods(grids, sigma), tuple(int(k) for k in seeds), Member)
    plan.budget()  # equal budgets, before the teachers train
    config = replace(config, feature_scale="relative")
    teachers = fit_teachers(factory, data, rng, seeds, teacher_steps, teacher_config, device)
    result = study.run_study(plan, Executor(factory, data, teachers, rng, seeds, config, device), group_of)
    chosen = set(zip(result.selected.method, result.selected.config, result.selected.seed))
    continued = [m for m in plan.runs() if m.method in ("ST", "base") and (m.method, m.config, m.seed) in chosen]
    later = continue_base(factory, result, continued, data, seeds, config, device)
    first = result.history[result.history.method.isin(["ST", "base"])]
    first = first.merge(pd.DataFrame([(m.method, m.config, m.seed) for m in continued],
                                     columns=["method", "config", "seed"]))
    return Outcome(clean_accuracy(teachers, data), result, length_gains(first, later, result.selected),
                   pd.concat([first, later], ignore_index=True),
                   [*[f"ST, {n} teacher" for n in grids.levels], "ST"], teachers)


def readouts(out: Outcome) -> dict:
    """The comparisons a chapter reports for one architecture, beside the families
    (each ``{"gain", "low", "high", "runs"}``; gains in error, ``reference - method``: accuracy points), and
    ``lams``: per run, the lambda validation chose for ST (:meth:`stlearn.study.StudyResult.selected_lams`; in words
    :func:`stlearn.study.lam_counts`)."""
    sel, result = out.selected, out.result
    lams = result.selected_lams("ST")
    r = {"primary": result.primary(), "st_base": protocol.compare(sel, "ST", "base"),
         "families": result.comparisons, "lams": lams, "lam0_runs": int((lams == 0).sum()),
         "start_ratio": study.start_ratio(result.history, sel)}
    r["strongest"] = r["primary"]["reference"]
    r["levels_base"] = {m: protocol.compare(sel, m, "base") for m in out.level_methods}
    if len(out.level_methods) > 1:
        r["knowledge"] = protocol.compare(sel, out.level_methods[-1], out.level_methods[0])
    for point in ("stopped", "matched", "zero_loss"):
        r[f"length {point}"] = protocol.interval(out.length[point])
    return r


def family(r: dict, name: str) -> str:
    """One family's verdict sentence (:func:`stlearn.study.family_verdict`)."""
    return study.family_verdict(r["families"], name)


def comparison(r: dict, method: str) -> dict:
    """The family comparison whose method is ``method``, as a dict."""
    return r["families"].set_index("method").loc[method].to_dict()


# ------------------------------------------------------------------------------ several noisy views
# the views study's methods: the same information, ST's complement, the noise model's reference
VIEWS_METHODS = ("base", "weight decay", "teacher as is", "fine-tuned teacher", "ST", "ST + weight decay",
                 "noise augmentation")
VIEWS_GAINS = (("ST", "base"), ("ST + weight decay", "weight decay"))  # the comparisons read per number of views


def run_views(factory: ModelFactory, splits: dict[int, LabelledSplit], teachers: Sequence[nn.Module], rng: Stream,
              seeds: Sequence[int], sigma: float, grids: Grids, config: TrainConfig,
              device=None) -> dict[int, study.StudyResult]:
    """Per number of views ``K`` (``splits``, :func:`views_splits`), the study of :data:`VIEWS_METHODS` on the study
    runner, every run with its own teachers (``teachers``, trained on the run's clean training inputs: those of
    its split, of which the students see ``n_student``). Checks the grids (named ``views_...``) first. The training
    sets are not scored along the way (``train_metrics=False``): with ``K`` views they are ``K`` times larger, and
    only the validation and test errors are read."""
    grids.check(VIEWS_METHODS, "views_")
    plan = study.Study(methods(grids, sigma, VIEWS_METHODS), tuple(int(k) for k in seeds), Member)
    plan.budget()
    config = replace(config, feature_scale="relative", train_metrics=False)  # only validation and test are read
    trained_once: dict = {}
    return {k: study.run_study(plan, OnceWithoutViews(Executor(factory, data, teachers, rng, seeds, config, device),
                                                      trained_once), group_of)
            for k, data in sorted(splits.items())}


class OnceWithoutViews:
    """An executor that trains (or measures) the groups that never see the fixed noisy views once, for the first
    number of views, and gives the same runs to every other: noise augmentation (the clean inputs with fresh noise
    at every step) and the teacher as it is. ``done`` is shared by the studies of one views study."""

    KINDS = ("augmentation", "measured")

    def __init__(self, execute: Executor, done: dict):
        self.execute, self.done = execute, done

    def __call__(self, group: tuple[str, str], runs: Sequence[Member]):
        if group[0] not in self.KINDS:
            return self.execute(group, runs)
        key = (group, tuple(runs))
        if key not in self.done:
            self.done[key] = self.execute(group, runs)
        return self.done[key]


def views_gains(results: dict[int, study.StudyResult], pairs: Sequence[tuple[str, str]] = VIEWS_GAINS) -> pd.DataFrame:
    """Per comparison and number of views: the paired gain (accuracy points) of the first method over the second,
    its 95% interval and the number of runs."""
    return pd.DataFrame([{"views": k, "method": a, "reference": b, **protocol.compare(r.selected, a, b)}
                         for a, b in pairs for k, r in sorted(results.items())])


def last_stops(selected: pd.DataFrame, steps: int, order: Sequence[str] = ()) -> dict[str, int]:
    """Per trained method (those of ``order`` first, in its order), how many of its validation-selected runs stop
    at the last step (``steps``), where longer training might still have helped."""
    trained = selected[selected.val_step.notna()]
    counts = {m: int((g.val_step == steps).sum()) for m, g in trained.groupby("method")}
    return {m: counts[m] for m in dict.fromkeys([*order, *counts]) if m in counts}


def last_stops_text(result: study.StudyResult, steps: int) -> str:
    """:func:`last_stops` of a study's selected runs in words, its methods in the study's order:
    ``"base 7, weight decay 9, ... (of 10 runs each)"``."""
    counts = last_stops(result.selected, steps, [m.name for m in result.study.methods])
    return ", ".join(f"{m} {n}" for m, n in counts.items()) + f" (of {result.selected.seed.nunique()} runs each)"


def views_last_stops(results: dict[int, study.StudyResult], steps: int,
                     methods: Sequence[str] = ("base", "ST")) -> dict[int, int]:
    """Per number of views: how many validation-selected runs of ``methods`` stop at the last step (``steps``),
    where longer training might still have helped."""
    return {k: sum(n for m, n in last_stops(r.selected, steps).items() if m in methods)
            for k, r in sorted(results.items())}


def views_table(results: dict[int, study.StudyResult]) -> pd.DataFrame:
    """Per method (rows, in :data:`VIEWS_METHODS`' order) and number of views (columns): the test accuracy of its
    validation-selected runs with its 95% interval over runs."""
    table = {"method": list(VIEWS_METHODS)}
    for k, r in sorted(results.items()):
        acc = accuracy_rows(r.selected, list(VIEWS_METHODS)).set_index("method")
        table[f"accuracy with K = {k} [95% interval]"] = [
            protocol.interval_text({"gain": a.accuracy, "low": a.accuracy_low, "high": a.accuracy_high}).lstrip("+")
            for a in (acc.loc[m] for m in VIEWS_METHODS)]
    return pd.DataFrame(table)


def views_gain_table(gains: pd.DataFrame) -> pd.DataFrame:
    """The gains of :func:`views_gains` for readers: per comparison (rows) and number of views (columns), the
    accuracy gain of the first method over the second with its 95% interval."""
    rows = []
    for (a, b), g in gains.groupby(["method", "reference"], sort=False):
        rows.append({"comparison": f"{a} over {b}", **{f"gain with K = {c['views']} [95% interval]":
                                                         protocol.interval_text(c) for c in g.to_dict("records")}})
    return pd.DataFrame(rows)
