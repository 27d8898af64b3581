"""Classification of noisy real inputs under the protocol: the chapters "Real images" and "MNIST-1D".

One module for both chapters (``CONTRIBUTING.md``, the experiments protocol; :mod:`stlearn.protocol`).

**Runs.** Run ``k`` (the ``seed`` column) has its own stratified train/validation/test split of the
dataset (``rng.child("split", k)``), its own pixel noise (``rng.child("noise", k)``, one child stream
per part), its own student initialization (``rng.child("student_init", k)``, shared by every method,
so comparisons are paired) and its own teachers: teacher ``j`` (a knowledge level) of run ``k`` starts
from ``rng.child("teacher_init", k, j)`` and trains on the clean versions of run ``k``'s training
inputs (by the paper's design, never on a validation or test input). The minibatch order and the fresh
noise of augmentation come from ``rng.child("batch")``.

**Knowledge levels.** A teacher's knowledge is its training budget: level ``j`` trains
``teacher_steps[j]`` Adam steps (0: the untrained teacher), in stages, each level continuing from the
one before (a fresh optimizer per stage).

**Methods.** One grid per tuned method, each with the same number of configurations
(:func:`method_grid`); every trained run is read at its step of lowest noisy validation error
(:func:`stlearn.protocol.stop_on_validation`):

* ``base``: cross-entropy on the noisy training inputs (stopping only);
* ``weight decay``: the same with L2 weight decay;
* ``noise augmentation``: the clean training inputs with fresh noise at every step (needs the noise model);
* ``logit distillation``: cross-entropy mixed with the KL divergence to the clean teacher's softened
  outputs (weight ``alpha``, temperature ``T``; ``alpha = 0`` is the base loss);
* ``denoise-then-teacher``: a PCA denoiser fitted on run ``k``'s clean training inputs (the
  projection on their top ``r`` principal components), then the clean teacher; nothing is trained;
* ``teacher as is``: the clean teacher on noisy inputs (no configuration);
* ``ST``: cross-entropy plus ``lam`` times the feature term on one hidden layer, ``(lam, layer)``
  chosen on validation (``lam = 0`` is the base loss); ``ST, <level> teacher`` the same with a
  teacher of another knowledge level.

Members of one input regime and matched layer train as one ensemble (:func:`train_methods`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import protocol
from ..conv import ConvNet
from ..data import Samples
from ..datasets import CLASSES, LabelledSplit, labelled
from ..distill import train_distilled
from ..losses import FrozenTeacher
from ..models import MLP
from ..streams import Stream
from ..teachers import clean_view
from ..train import TrainConfig, evaluate, train
from ..validation import ParameterError

ModelFactory = Callable[..., nn.Module]
SIMPLE = ("base", "weight decay", "noise augmentation", "teacher as is", "logit distillation",
          "denoise-then-teacher")  # the baselines: no feature term


@dataclass(frozen=True)
class Member(protocol.Run):
    """One run of one method: the protocol's knobs and these."""

    layer: str = ""  # ST: the matched hidden layer ("" without a feature term)
    level: int = -1  # ST: the knowledge level of the teacher (-1: the full teacher, the last level)
    fresh_noise: float | None = None  # noise augmentation: the level of the fresh noise
    alpha: float = 0.0  # logit distillation: weight of the KL term
    temperature: float = 1.0  # logit distillation: temperature


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
               device=None) -> LabelledSplit:
    """Run ``k``'s own split ``rng.child("split", k)`` and noise ``rng.child("noise", k)``, stacked ``(S, n, .)``."""
    parts = [labelled(dataset, n_train, n_val, sigma, rng.child("split", k), rng.child("noise", k), device=device,
                      split_name=f"run {k}") for k in seeds]
    return LabelledSplit(*(Samples.stack([getattr(p, part) for p in parts]) for part in ("train", "val", "test")))


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


# ------------------------------------------------------------------------------------------ grids
def check_grids(lams: Sequence[float], layers: Sequence[str], decays, aug_levels, alphas, temperatures,
                ranks) -> int:
    """Equal budgets: every tuned method has ``1 + (len(lams) - 1) * len(layers)`` configurations.

    ``lams`` starts with 0 (the base loss, matched nowhere); the distillation grid is ``alpha = 0``
    plus ``alphas x temperatures``, so ``len(alphas) * len(temperatures)`` must equal
    ``(len(lams) - 1) * len(layers)``. Returns the budget.
    """
    if len(lams) < 2 or lams[0] != 0.0 or any(l <= 0 for l in lams[1:]):
        raise ParameterError(f"lams must start with 0 (the base loss) and then hold ST weights > 0; got {lams}")
    if not layers:
        raise ParameterError("layers must name at least one hidden layer to match; got []")
    budget = 1 + (len(lams) - 1) * len(layers)
    for name, grid in (("decays", decays), ("aug_levels", aug_levels), ("ranks", ranks)):
        if len(grid) != budget:
            raise ParameterError(f"{name} must have {budget} points (the ST grid's, equal tuning budgets); "
                                 f"got {len(grid)}")
    if 1 + len(alphas) * len(temperatures) != budget:
        raise ParameterError(f"1 + len(alphas) * len(temperatures) must be {budget} (equal tuning budgets); "
                             f"got {1 + len(alphas) * len(temperatures)}")
    return budget


def st_grid(method: str, lams, layers, level: int = -1) -> list[dict]:
    grid = [dict(method=method, config="lam=0", level=level)]
    return grid + [dict(method=method, config=f"lam={l:g} {h}", lam=l, layer=h, level=level)
                   for h in layers for l in lams[1:]]


def method_grid(lams, layers, decays, aug_levels, alphas, temperatures, sigma: float,
                levels: Sequence[str] = ()) -> list[dict]:
    """Every trained (method, configuration) as :class:`Member` knobs (without ``seed``).

    ``levels`` names the teachers of lower knowledge (all but the last, full teacher), for the
    methods ``ST, <name> teacher``.
    """
    grid = [dict(method="base", config="-")]
    grid += [dict(method="weight decay", config=f"wd={w:g}", weight_decay=w) for w in decays]
    grid += [dict(method="noise augmentation", config=f"s={a:g}sigma", fresh_noise=a * sigma) for a in aug_levels]
    grid += [dict(method="logit distillation", config="alpha=0")]
    grid += [dict(method="logit distillation", config=f"alpha={a:g} T={t:g}", alpha=a, temperature=t)
             for a in alphas for t in temperatures]
    grid += st_grid("ST", lams, layers)
    for j, name in enumerate(levels):
        grid += st_grid(f"ST, {name} teacher", lams, layers, level=j)
    return grid


def members(grid: list[dict], seeds) -> list[Member]:
    return [Member(seed=int(k), **g) for g in grid for k in seeds]


def knobs(m: Member) -> tuple:
    """What a member trains with: members of equal knobs are one run (ST at lam = 0 is the base student)."""
    kd = (m.alpha, m.temperature) if m.alpha > 0 else (0.0, 1.0)
    return (m.seed, m.lam, m.layer if m.lam > 0 else "", m.level if m.lam > 0 else -1, m.weight_decay,
            m.fresh_noise, *kd)


def regime(m: Member) -> tuple:
    """The ensemble a member trains in: its input regime, loss and matched layer."""
    if m.alpha > 0:
        return ("distillation", "")
    if m.fresh_noise is not None:
        return ("augmentation", "")
    return ("fixed", m.layer if m.lam > 0 else "")


# ---------------------------------------------------------------------------------------- training
@dataclass
class Trained:
    """The ensembles of one architecture and every run's history (a row set per :class:`Member`)."""

    models: dict  # regime -> trained ensemble
    member_of: dict  # Member -> (regime, member index)
    history: pd.DataFrame


def train_methods(factory: ModelFactory, runs: Sequence[Member], teachers: Sequence[nn.Module],
                  data: LabelledSplit, rng: Stream, seeds: Sequence[int], config: TrainConfig,
                  device=None) -> Trained:
    """Train every distinct run (:func:`knobs`) once, one ensemble per :func:`regime`.

    ``teachers`` are the knowledge levels of :func:`fit_teachers` (the last is the full teacher).
    """
    slot = {k: i for i, k in enumerate(seeds)}
    groups: dict[tuple, list[tuple]] = {}
    reps: dict[tuple, Member] = {}
    for m in runs:
        key = knobs(m)
        if key not in reps:
            reps[key] = m
            groups.setdefault(regime(m), []).append(key)
    models, where, histories = {}, {}, []
    for reg, keys in groups.items():
        rep = [reps[key] for key in keys]
        index = [slot[m.seed] for m in rep]
        student = factory(members=len(rep), rng=[rng.child("student_init", m.seed) for m in rep], device=device)
        sets = {"test": pick(data.test, index), "val": pick(data.val, index)}
        train_data = pick(data.train, index)
        levels = [len(teachers) - 1 if m.level < 0 else m.level for m in rep]
        teacher = FrozenTeacher(gather(factory, teachers, list(zip(levels, index)), device))
        cfg = replace(config, weight_decay=tuple(m.weight_decay for m in rep))
        if reg[0] == "distillation":
            history = train_distilled(student, train_data, teacher, alpha=[m.alpha for m in rep],
                                      temperature=[m.temperature for m in rep], config=replace(config),
                                      eval_sets=sets)
        else:
            layer = [reg[1]] if reg[1] else []
            fresh = [m.fresh_noise for m in rep] if reg[0] == "augmentation" else None
            history = train(student, train_data, teacher=teacher if layer else None,
                            lam=[m.lam for m in rep], layers=layer, config=cfg, eval_sets=sets,
                            fresh_noise=fresh).history.drop(columns=["lam"])
        models[reg] = student
        for e, key in enumerate(keys):
            where[key] = (reg, e)
        histories.append(history.assign(regime=[reg] * len(history)))
    member_of = {m: where[knobs(m)] for m in runs}
    rows = []
    for h in histories:
        reg = h.regime.iloc[0]
        for m, (r, e) in member_of.items():
            if r == reg:
                rows.append(h[h.member == e].assign(method=m.method, config=m.config, seed=m.seed))
    history = pd.concat(rows, ignore_index=True).drop(columns=["regime"])
    return Trained(models, member_of, history)


def measured(teachers: Sequence[nn.Module], data: LabelledSplit, seeds: Sequence[int], ranks) -> pd.DataFrame:
    """The untrained methods: the full teacher as it is and denoise-then-teacher (PCA of rank ``r``).

    The denoiser of run ``k`` is fitted on run ``k``'s clean training inputs only.
    """
    teacher = teachers[-1]
    rows = []
    val = evaluate_ce(teacher, data.val.noisy, data.val.y)
    test = evaluate_ce(teacher, data.test.noisy, data.test.y)
    rows += [dict(method="teacher as is", config="-", seed=int(k), val_error=val[i], test_error=test[i])
             for i, k in enumerate(seeds)]
    mean, basis = pca(data.train.clean)
    for r in ranks:
        val = evaluate_ce(teacher, denoise(data.val.noisy, mean, basis, r), data.val.y)
        test = evaluate_ce(teacher, denoise(data.test.noisy, mean, basis, r), data.test.y)
        rows += [dict(method="denoise-then-teacher", config=f"rank={r}", seed=int(k), val_error=val[i],
                      test_error=test[i]) for i, k in enumerate(seeds)]
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


def run_table(trained: Trained, extra: pd.DataFrame) -> pd.DataFrame:
    """The protocol's run table: trained runs read at their validation stop, and the measured methods."""
    stops = protocol.stop_on_validation(trained.history, ["method", "config", "seed"])
    return pd.concat([stops, extra], ignore_index=True)


# ------------------------------------------------------------------------ training length (factor 1)
def continue_base(factory: ModelFactory, trained: Trained, continued: Sequence[Member], data: LabelledSplit,
                  seeds: Sequence[int], config: TrainConfig, device=None) -> pd.DataFrame:
    """Train the members ``continued`` on with the base loss alone (``lam = 0``) for ``config.steps`` steps.

    Their histories' steps continue after the first phase's ``config.steps``.
    """
    slot = {k: i for i, k in enumerate(seeds)}
    nets = list(trained.models.values())
    position = {reg: j for j, reg in enumerate(trained.models)}
    picks = [(position[trained.member_of[m][0]], trained.member_of[m][1]) for m in continued]
    student = gather(factory, nets, picks, device)
    index = [slot[m.seed] for m in continued]
    sets = {"test": pick(data.test, index), "val": pick(data.val, index)}
    result = train(student, pick(data.train, index), config=config, eval_sets=sets,
                   member_info={"method": [m.method for m in continued], "config": [m.config for m in continued],
                                "seed": [m.seed for m in continued]})
    history = result.history[result.history.step > 0].drop(columns=["lam"]).copy()
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
def layer_selected(table: pd.DataFrame, method: str, layer: str) -> pd.DataFrame:
    """``method``'s runs restricted to one matched layer (and lam = 0), selected on validation per run."""
    rows = table[(table.method == method) & (table.config.str.endswith(f" {layer}") | (table.config == "lam=0"))]
    return protocol.select(rows.assign(method=f"{method} at {layer}"))


def strongest_simple(selected: pd.DataFrame) -> str:
    return protocol.strongest(selected, SIMPLE)


def accuracy_rows(selected: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """The per-method summary of :func:`stlearn.protocol.summary` in accuracy (1 - error) terms."""
    s = protocol.summary(selected, methods, base="base")
    return s.assign(accuracy=1 - s.test_error, accuracy_low=1 - s.test_error_high, accuracy_high=1 - s.test_error_low)


def verdict_text(comparison: dict, method: str, reference: str) -> str:
    """Words for a gain in error (> 0: ``method`` better), with its interval in accuracy points."""
    return (f"{protocol.verdict(comparison, method, reference)} (accuracy gain {comparison['gain']:+.3f}, "
            f"95% interval {comparison['low']:+.3f} to {comparison['high']:+.3f})")


def classes(dataset: str) -> int:
    return CLASSES[dataset]


# ------------------------------------------------------------------------------- one architecture
@dataclass(frozen=True)
class Grids:
    """The tuning grids of every method (equal budgets: :func:`check_grids`)."""

    lams: Sequence[float]
    layers: Sequence[str]
    decays: Sequence[float]
    aug_levels: Sequence[float]
    alphas: Sequence[float]
    temperatures: Sequence[float]
    ranks: Sequence[int]

    def check(self) -> int:
        return check_grids(self.lams, self.layers, self.decays, self.aug_levels, self.alphas, self.temperatures,
                           self.ranks)


@dataclass
class Outcome:
    """Everything a chapter reads about one architecture."""

    teacher_accuracy: list  # per knowledge level, each run's clean test accuracy
    table: pd.DataFrame  # the run table (validation stop of every configuration)
    selected: pd.DataFrame  # per method and run, the configuration of lowest validation error
    history: pd.DataFrame  # every trained run's path
    length: pd.DataFrame  # per run, the ST gain validation-stopped, at matched loss and at zero loss
    budget: int
    level_methods: list  # the ST methods of the knowledge levels, untrained first, the full teacher ("ST") last


def run_architecture(factory: ModelFactory, data: LabelledSplit, rng: Stream, seeds: Sequence[int], sigma: float,
                     grids: Grids, teacher_steps: Sequence[int], level_names: Sequence[str],
                     config: TrainConfig, teacher_config: TrainConfig, device=None) -> Outcome:
    """Teachers, every method's runs, the protocol's selection and the training-length readout."""
    budget = grids.check()
    if len(level_names) != len(teacher_steps) - 1:
        raise ParameterError(f"level_names must name every teacher but the full one ({len(teacher_steps) - 1}); "
                             f"got {len(level_names)}")
    teachers = fit_teachers(factory, data, rng, seeds, teacher_steps, teacher_config, device)
    grid = method_grid(grids.lams, grids.layers, grids.decays, grids.aug_levels, grids.alphas, grids.temperatures,
                       sigma, levels=level_names)
    runs = members(grid, seeds)
    trained = train_methods(factory, runs, teachers, data, rng, seeds, config, device)
    table = run_table(trained, measured(teachers, data, seeds, grids.ranks))
    tuned = ["weight decay", "noise augmentation", "logit distillation", "denoise-then-teacher", "ST",
             *[f"ST, {n} teacher" for n in level_names]]
    if protocol.check_equal_budgets(table, tuned) != budget:
        raise RuntimeError("the run table's budgets differ from the grids'")
    selected = protocol.select(table)
    chosen = set(zip(selected.method, selected.config, selected.seed))
    continued = [m for m in runs if m.method in ("ST", "base") and (m.method, m.config, m.seed) in chosen]
    later = continue_base(factory, trained, continued, data, seeds, config, device)
    first = trained.history[trained.history.method.isin(["ST", "base"])]
    length = length_gains(first, later, selected)
    return Outcome(clean_accuracy(teachers, data), table, selected, pd.concat([first, later], ignore_index=True),
                   length, budget, [*[f"ST, {n} teacher" for n in level_names], "ST"])


def readouts(out: Outcome, layers: Sequence[str]) -> dict:
    """The comparisons a chapter reports for one architecture (each ``{"gain", "low", "high", "runs"}``).

    Gains are in error (``reference - method``), that is in accuracy points for ``method``.
    """
    sel = out.selected
    strongest = strongest_simple(sel)
    r = {"strongest": strongest, "primary": protocol.compare(sel, "ST", strongest),
         "st_base": protocol.compare(sel, "ST", "base"),
         "best_simple_base": protocol.compare(sel, strongest, "base")}
    for name in SIMPLE:
        r[f"st_vs {name}"] = protocol.compare(sel, "ST", name)
    full, untrained = out.level_methods[-1], out.level_methods[0]
    r["knowledge"] = protocol.compare(sel, full, untrained)
    r["levels_base"] = {m: protocol.compare(sel, m, "base") for m in out.level_methods}
    by_layer = pd.concat([layer_selected(out.table, "ST", h) for h in layers] + [sel[sel.method == "base"]],
                         ignore_index=True)
    r["layers_base"] = {h: protocol.compare(by_layer, f"ST at {h}", "base") for h in layers}
    if len(layers) > 1:
        r["layer_pair"] = protocol.compare(by_layer, f"ST at {layers[-1]}", f"ST at {layers[0]}")
    for point in ("stopped", "matched", "zero_loss"):
        r[f"length {point}"] = protocol.interval(out.length[point])
    r["lam0_runs"] = int((sel[sel.method == "ST"].config == "lam=0").sum())  # runs where validation chose no ST term
    return r


def length_verdict(r: dict, end: str = "trained on to (near) zero loss") -> str:
    """What training length does to ST's gain over base (factor 1), from the three intervals.

    ``end`` describes the end of the continuation (say so where the training loss is not near zero).
    """
    words = {p: protocol.by_sign(r[f"length {p}"], "positive", "negative", "not resolvably different from zero")
             for p in ("stopped", "matched", "zero_loss")}
    return (f"validation-stopped, the gain of ST over base is {words['stopped']}; at matched training loss it is "
            f"{words['matched']}; {end} it is {words['zero_loss']}")


def knowledge_verdict(r: dict, full: str = "the full teacher", untrained: str = "an untrained teacher") -> str:
    return protocol.by_sign(r["knowledge"], f"ST with {full} beats ST with {untrained}",
                            f"ST with {untrained} beats ST with {full}",
                            f"ST with {full} and with {untrained} are not resolvably different")


def simple_verdict(r: dict) -> str:
    """The primary comparison in words: ST wins, the strongest simple method wins, or neither is resolved."""
    s = r["strongest"]
    return protocol.by_sign(r["primary"], f"ST beats the strongest simple method ({s})",
                            f"the strongest simple method ({s}) beats ST",
                            f"no resolvable difference between ST and the strongest simple method ({s})")
