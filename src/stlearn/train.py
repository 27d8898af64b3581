"""Training: full-batch gradient descent, minibatch SGD or Adam, for one network or an ensemble.

One trainer serves both: a model built with ``members=E`` trains its ``E``
stacked members at once (one batched matmul per layer), ``lam`` may give each
member its own weight, and the loss summed over members gives each member
exactly the gradient it would get alone. The optimizers used (SGD with or
without momentum, Adam) act elementwise, so each member's update is its own too.

Metrics are logged on a log-spaced step schedule into a tidy table with one
row per (step, member).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import fast
from .data import Samples
from .device import retain_freed_memory
from .fast import fused, optim
from .losses import FEATURE_SCALES, TASK_LOSSES, FrozenTeacher, feature_weight, student_teacher_loss
from .models import FeatureNet
from .protocol import TIE
from .streams import Stream, as_stream, member_normals
from .validation import ParameterError, TrainingDiverged, check_choice, check_float, check_int

Tensor = torch.Tensor
OPTIMIZERS = ("sgd", "adam")


def curvature_rates(model: FeatureNet, data: Samples, *, teacher: FrozenTeacher | None = None,
                    lam: float | Sequence[float] = 0.0, layers: Sequence[str] = (), config: TrainConfig | None = None,
                    fraction: float = 0.5, max_rate: float = 1.0, fresh_noise: float | Sequence[float] | None = None,
                    iterations: int = 20, tol: float = 1e-3) -> list[float]:
    """Per-member learning rates from the curvature of each member's own loss where it starts.

    ``L_e`` is the largest eigenvalue (in magnitude) of the Hessian of member ``e``'s training loss
    ``task + lam_e * feature + (wd_e / 2) ||theta||^2`` at its present weights, on the full batch of
    ``data`` (with ``fresh_noise``: the first step's noisy inputs, as :func:`train` draws them from
    ``config.noise_seeds`` or ``config.seed``). Gradient descent on a quadratic of curvature ``L`` is stable
    iff ``rate * L < 2``; with heavy-ball momentum ``beta`` (``config.momentum``) iff ``rate * L < 2 (1 + beta)``. So
    ``rate_e = min(fraction * 2 (1 + beta) / L_e, max_rate)``; the cap keeps a nearly flat start from
    asking for an enormous step.

    ``L_e`` comes from at most ``iterations`` power iterations of Hessian-vector products (autograd's
    double backward of the plain formulas), started from the gradient, stopped early once no member's
    estimate moves by more than ``tol`` (relative) in an iteration. The members do not interact, so the
    Hessian of the loss summed over members is block-diagonal: one product gives every member's own,
    and normalising each member's block of the vector separately runs one power iteration per member
    at once. ``||H v||`` for a unit ``v`` never exceeds ``L_e`` and approaches it. Returns one rate per
    member (a list of one for a single network).
    """
    config = TrainConfig() if config is None else config
    fraction = check_float("fraction", fraction, low=0.0, high=1.0, low_open=True)
    max_rate = check_float("max_rate", max_rate, low=0.0, low_open=True)
    iterations = check_int("iterations", iterations, low=1)
    tol = check_float("tol", tol, low=0.0)
    params = list(model.parameters())
    members = model.members
    lam_t = _as_member_tensor("lam", lam, members, params[0])
    decay = config.weight_decay if np.ndim(config.weight_decay) == 0 else \
        _as_member_tensor("weight_decay", list(config.weight_decay), members, params[0])
    if fresh_noise is not None:
        data = _Augmenter(fresh_noise, members, params[0], config)(data)
    feats = teacher.features(data.clean, list(layers)) if layers else None

    def per_member(vectors):  # squared norm of each member's block, shaped (E,) or ()
        return sum(v.pow(2).reshape(v.shape[0], -1).sum(1) if members else v.pow(2).sum() for v in vectors)

    def scaled(vectors, factor):
        return [v * _member_rate(factor, v) for v in vectors]

    with fast.disabled():
        output, student_feats = model(data.noisy, return_features=True)
        weight = feature_weight(lam_t, config.feature_scale, output, data.y, student_feats, feats, list(layers),
                                config.task)
        total = student_teacher_loss(output, student_feats, data.y, feats, weight, list(layers), config.task)["total"]
        grads = torch.autograd.grad(total.sum(), params, create_graph=True)
        v = [g.detach() for g in grads]
        flat = per_member(v) == 0  # a member at a stationary point starts from ones instead
        v = [torch.where(_member_rate(flat, x), torch.ones_like(x), x) for x in v] if bool(flat.any()) else v
        v = scaled(v, per_member(v).rsqrt())
        curvature = None
        for _ in range(iterations):
            previous = curvature
            # H v as the gradient of the scalar g . v (a vector grad_outputs would cost a sympy import)
            hv = torch.autograd.grad(sum((g * x).sum() for g, x in zip(grads, v)), params, retain_graph=True,
                                     allow_unused=True)
            hv = [(torch.zeros_like(x) if h is None else h.detach()) + _member_rate(decay, x) * x
                  for h, x in zip(hv, v)]
            curvature = per_member(hv).sqrt()
            v = scaled(hv, 1.0 / curvature.clamp_min(torch.finfo(curvature.dtype).tiny))
            if previous is not None and bool(((curvature - previous).abs() <= tol * curvature).all()):
                break
    rates = (fraction * 2.0 * (1.0 + config.momentum) / curvature).clamp(max=max_rate)
    return [float(r) for r in rates.reshape(-1)]


class DivergedMembers(RuntimeWarning):
    """Some members of an ensemble diverged: failed configurations (``diverged_at`` in the history)."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``batch_size=None`` means full batch (plain gradient descent with ``sgd``).

    ``fast=True`` trains on the fast path (:mod:`stlearn.fast`): gradients by
    hand for deep linear and ReLU networks, custom autograd Functions and
    foreach optimizers; ``fast=False`` on the plain reference (the formulas of
    :mod:`stlearn.models` and :mod:`stlearn.losses` under autograd, and
    :class:`PlainSGD` or :class:`PlainAdam`). Both give the same numbers to rounding.

    ``seed`` is the stream (or integer seed) of the minibatch order and of
    the fresh input noise of noise augmentation; ``noise_seeds``, one stream per ensemble member, gives each
    member's fresh noise a stream of its own instead (the ``noise`` child of each), so that a run's noise
    does not depend on which runs share its ensemble. ``weight_decay`` is one number,
    or one per ensemble member (a tuple), so that a grid of decays trains as one ensemble.
    ``feature_scale`` says what ``lam`` means (:data:`stlearn.losses.FEATURE_SCALES`): ``"sum"``, the
    weight of the feature term as written; ``"relative"``, a ratio to the task term (``lam = 1``: the two
    terms of one size where training starts; :func:`stlearn.losses.feature_weight`). With
    ``clean_metrics=False`` the eval sets are scored on their noisy inputs only (no ``{name}_clean`` columns):
    a study that selects and reports on noisy inputs saves a forward pass per set and log point. Two options
    for training sets much larger than what a log point needs (several noisy views of each input):
    ``train_log_size`` measures the training terms of a log point, and the relative scale, on the first this many
    training samples (default all); ``train_metrics=False`` does not score the training set at the log points at
    all (no ``train_*`` columns; divergence is still checked on every minibatch), for a study that reads only its
    eval sets, and ``train_metrics="ends"`` scores it at the first and the last point of the log schedule only
    (the other rows' ``train_*`` are NaN), for a study that reads where training starts and ends.
    """

    steps: int = 1000
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float | tuple[float, ...] = 0.0
    batch_size: int | None = None
    task: str = "mse"
    log_points: int = 40
    early_stopping: bool = False
    patience: int | None = None
    monitor: str = "val_noisy"
    seed: Stream | int = 0
    noise_seeds: tuple[Stream, ...] | None = None
    progress: bool = True
    fast: bool = True
    feature_scale: str = "sum"
    clean_metrics: bool = True
    train_log_size: int | None = None
    train_metrics: bool | str = True  # True (every log point), "ends" or False

    def __post_init__(self):
        check_int("steps", self.steps, low=1)
        check_float("lr", self.lr, low=0.0, low_open=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_float("momentum", self.momentum, low=0.0, high=1.0)
        if np.ndim(self.weight_decay) == 0:
            check_float("weight_decay", self.weight_decay, low=0.0)
        else:
            decays = tuple(check_float(f"weight_decay[{i}]", w, low=0.0) for i, w in enumerate(self.weight_decay))
            object.__setattr__(self, "weight_decay", decays)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1)
        if self.train_log_size is not None:
            check_int("train_log_size", self.train_log_size, low=1)
        check_choice("task", self.task, TASK_LOSSES)
        check_choice("feature_scale", self.feature_scale, FEATURE_SCALES)
        check_int("log_points", self.log_points, low=2)
        if self.patience is not None:
            check_int("patience", self.patience, low=1)
        as_stream(self.seed, "seed")
        if self.noise_seeds is not None:
            object.__setattr__(self, "noise_seeds", tuple(as_stream(r, "noise_seeds") for r in self.noise_seeds))
        for name in ("fast", "clean_metrics"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if not (self.train_metrics is True or self.train_metrics is False or self.train_metrics == "ends"):
            raise ParameterError(f"train_metrics must be True, False or 'ends'; got {self.train_metrics!r}")


@dataclass
class TrainResult:
    history: pd.DataFrame
    best_step: np.ndarray = field(default_factory=lambda: np.array([]))
    stopped_at: int = 0


def log_schedule(steps: int, points: int) -> list[int]:
    """Roughly ``points`` log-spaced integer steps in ``[0, steps]``, always with 0 and ``steps``."""
    grid = np.unique(np.round(np.geomspace(1, steps, max(points - 1, 1))).astype(int))
    return [0, *grid.tolist()] if grid[0] != 0 else grid.tolist()


def _as_member_tensor(name: str, value, members: int | None, like: Tensor) -> Tensor | float:
    if np.ndim(value) == 0:
        return check_float(name, value, low=0.0)
    values = [check_float(f"{name}[{i}]", v, low=0.0) for i, v in enumerate(value)]
    if members is None or len(values) != members:
        raise ParameterError(f"{name} must be one number >= 0 or one per member ({members}); got {len(values)}")
    return torch.tensor(values, device=like.device, dtype=like.dtype)


@torch.no_grad()
def evaluate(model: FeatureNet, samples: Samples, task: str = "mse",
             kinds: Sequence[str] = ("noisy", "clean")) -> dict[str, Tensor]:
    """Test error on noisy and on clean inputs (``kinds``), per member.

    Regression: mean squared distance ``mean_i ||f(x) - y_i||^2``.
    Classification: the misclassification rate.
    """
    out = {}
    for kind in kinds:
        pred = model(getattr(samples, kind))
        if task == "mse":
            out[kind] = (pred - samples.y).pow(2).sum(-1).mean(-1)
        else:
            out[kind] = (pred.argmax(-1) != samples.y).float().mean(-1)
    return out


class _Divergence:
    """Which members' losses stopped being finite, and at which step.

    One network that diverges stops training (:class:`TrainingDiverged`, naming the step, the loss and
    the rate). In an ensemble a diverged member is one failed configuration: it is reported (a
    :class:`DivergedMembers` warning naming the member, its ``member_info`` and its rate), its losses are
    logged as NaN from then on, and the others train on; the members do not interact, so its non-finite
    weights reach no other member. Only when every member has diverged does training stop.
    """

    def __init__(self, members: int | None, lr, member_info: Mapping[str, Sequence] | None, like: Tensor):
        self.members, self.lr, self.info = members, lr, dict(member_info or {})
        self.failed = torch.zeros(() if members is None else (members,), dtype=torch.bool, device=like.device)
        self.at: dict[int, int] = {}  # member -> step of divergence

    def check(self, total: Tensor, step: int) -> None:
        finite = torch.isfinite(total.detach())
        if bool((finite | self.failed).all()):  # one synchronisation a step, as any loss check needs
            return
        new = (~finite & ~self.failed).reshape(-1).nonzero().reshape(-1).tolist()
        values = total.detach().reshape(-1)
        if self.members is None:
            raise TrainingDiverged(f"training diverged at step {step}: loss = {float(values[0])} with "
                                   f"lr = {self._rate(0):g}; lower the learning rate (lr) or the init scale")
        self.failed |= ~finite
        for e in new:
            self.at[e] = step
        described = "; ".join(f"member {e}{self._describe(e)}: loss = {float(values[e])} with lr = {self._rate(e):g}"
                              for e in new)
        if bool(self.failed.all()):
            raise TrainingDiverged(f"training diverged at step {step}, every member ({described}); "
                                   "lower the learning rate (lr) or the init scale")
        warnings.warn(f"diverged at step {step}, {described}: counted as failed configuration(s), "
                      "the other members train on", DivergedMembers, stacklevel=4)

    def _rate(self, e: int) -> float:
        return float(self.lr[e]) if isinstance(self.lr, Sequence) else float(self.lr)

    def _describe(self, e: int) -> str:
        knobs = ", ".join(f"{k}={v[e]}" for k, v in self.info.items())
        return f" ({knobs})" if knobs else ""

    def mark(self, history: pd.DataFrame) -> pd.DataFrame:
        """The history with the diverged members' logged values from their divergence on set to NaN, and a
        ``diverged_at`` column (the step; NaN for members that did not diverge) when any did."""
        if not self.at:
            return history
        history = history.copy()
        history["diverged_at"] = history.member.map(self.at).astype(float)
        after = history.diverged_at.notna() & (history.step >= history.diverged_at)
        values = [c for c in history.columns if c not in ("step", "member", "diverged_at")
                  and pd.api.types.is_float_dtype(history[c])]
        history.loc[after, values] = np.nan
        return history


class _BestWeights:
    """Per-member snapshot of the weights with the lowest monitored metric."""

    def __init__(self, model: FeatureNet):
        self.model = model
        self.params = [p.detach().clone() for p in model.parameters()]
        shape = () if model.members is None else (model.members,)
        self.score = torch.full(shape, float("inf"), device=self.params[0].device)
        self.step = torch.zeros(shape, dtype=torch.long)
        self.since = torch.zeros(shape, dtype=torch.long)

    def update(self, score: Tensor, step: int) -> None:
        # an improvement must beat the best by more than rounding (stlearn.protocol.TIE): on a converged path
        # the earliest of the equal steps is kept, whichever processor summed the losses
        margin = torch.where(torch.isfinite(self.score), TIE * self.score.abs(), 0.0)  # inf - inf is NaN
        better = score < self.score - margin
        self.score = torch.where(better, score, self.score)
        self.step = torch.where(better.cpu(), torch.tensor(step), self.step)
        self.since = torch.where(better.cpu(), torch.tensor(0), self.since + 1)
        for best, p in zip(self.params, self.model.parameters()):
            mask = better.reshape(better.shape + (1,) * (p.dim() - better.dim()))
            best.copy_(torch.where(mask, p.detach(), best))

    def restore(self) -> None:
        with torch.no_grad():
            for best, p in zip(self.params, self.model.parameters()):
                p.copy_(best)


def train(model: FeatureNet, data: Samples, *, teacher: FrozenTeacher | None = None,
          lam: float | Sequence[float] = 0.0, layers: Sequence[str] = (),
          config: TrainConfig = TrainConfig(), eval_sets: Mapping[str, Samples] | None = None,
          member_info: Mapping[str, Sequence] | None = None,
          lr_scale: Sequence[float] | None = None,
          fresh_noise: float | Sequence[float] | None = None) -> TrainResult:
    """Train ``model`` on the noisy inputs of ``data`` with the ST loss.

    ``eval_sets`` maps a name (``"test"``, ``"val"``, ...) to samples whose
    noisy- and clean-input errors are logged as ``{name}_noisy`` and
    ``{name}_clean``. With ``config.early_stopping`` the weights of each member
    with the lowest ``config.monitor`` are restored at the end; with
    ``config.patience`` training also stops once every member has gone that many
    log points without improving. ``member_info`` adds columns per member
    (e.g. ``{"seed": [...]}``) to the history. ``lr_scale`` gives each member
    of an ensemble its own learning rate ``config.lr * lr_scale[e]`` (SGD only).

    ``fresh_noise`` is noise augmentation: at every step the student sees
    ``clean + s * e`` with a fresh ``e ~ N(0, I)`` (from each member's stream of
    ``config.noise_seeds``, else ``config.seed``'s ``noise`` stream) instead of the fixed noisy inputs of
    ``data``; ``s`` is one level or one per member (``s = 0``: the clean inputs). Unlike ST, it needs
    the noise model.
    """
    retain_freed_memory()  # the step's large tensors reused, not faulted in afresh every step
    with fast.switched(config.fast):
        return _train(model, data, teacher, lam, layers, config, eval_sets, member_info, lr_scale, fresh_noise)


def _train(model, data, teacher, lam, layers, config, eval_sets, member_info, lr_scale,
           fresh_noise) -> TrainResult:
    eval_sets = dict(eval_sets or {})
    layers = list(layers)
    if layers and teacher is None:
        raise ParameterError("teacher must be given when layers are matched; got teacher=None")
    unknown = [l for l in layers if l not in model.feature_names]
    if unknown:
        raise ParameterError(f"layers must be among {model.feature_names}; got {unknown}")
    if data.n < 1:
        raise ParameterError("data must hold at least 1 sample (n_train >= 1)")
    if config.early_stopping and config.monitor.rsplit("_", 1)[0] not in eval_sets:
        raise ParameterError(f"early stopping monitors {config.monitor!r}: eval_sets needs the key "
                             f"{config.monitor.rsplit('_', 1)[0]!r}; got {sorted(eval_sets)}")
    param = next(model.parameters())
    lam_t = _as_member_tensor("lam", lam, model.members, param)
    teacher_feats = teacher.features(data.clean, layers) if layers else None  # contiguous rows (FrozenTeacher)
    if config.feature_scale != "sum" and layers:  # the feature term's weight, measured once (losses.feature_weight)
        first, first_feats = _log_part(data, teacher_feats, config)
        with torch.no_grad():
            output, student_feats = model(first.noisy, return_features=True)
            lam_t = feature_weight(lam_t, config.feature_scale, output, first.y, student_feats, first_feats, layers,
                                   config.task)
    params = list(model.parameters())
    opt = make_optimizer(params, config, lr_scale, model.members)
    member_lr = config.lr if lr_scale is None else [config.lr * float(r) for r in lr_scale]

    gradients = fused.st_gradients if config.fast and fused.supports(model) else autograd_gradients
    schedule = set(log_schedule(config.steps, config.log_points))
    scored = schedule if config.train_metrics is True else (
        {min(schedule), max(schedule)} if config.train_metrics == "ends" else set())  # the training set's log points
    gen = as_stream(config.seed).child("batch").generator()
    augment = None if fresh_noise is None else _Augmenter(fresh_noise, model.members, param, config)
    best = _BestWeights(model) if config.early_stopping else None
    diverged = _Divergence(model.members, member_lr, member_info, param)
    rows: list[dict] = []
    stopped_at = config.steps
    bar = tqdm(range(config.steps + 1), desc="training", leave=False,
               **({} if config.progress else {"disable": True}))
    for step in bar:
        if step in schedule:
            record = _log(model, data, teacher_feats, lam_t, layers, config, eval_sets, step, diverged,
                          train=step in scored)
            rows.extend(record)
            if best is not None:
                best.update(_metric_tensor(record, config.monitor, param.device), step)
                if config.patience is not None and bool((best.since >= config.patience).all()):
                    stopped_at = step
                    break
        if step == config.steps:
            break
        batch, feats = minibatch(data, teacher_feats, config.batch_size, gen)
        if augment is not None:
            batch = augment(batch)
        opt.zero_grad()
        terms = gradients(model, batch, feats, lam_t, layers, config.task)
        diverged.check(terms["total"], step)
        opt.step()
    bar.close()

    if best is not None:
        best.restore()
    history = diverged.mark(pd.DataFrame(rows))
    if config.feature_scale != "sum":  # the weight each member's feature term had: lam on the "sum" scale
        weights = torch.as_tensor(lam_t).reshape(-1).cpu().numpy()
        member_info = {**(member_info or {}), "feature_weight": np.broadcast_to(weights, (model.members or 1,))}
    history = _add_member_info(history, model.members, lam, member_info)
    best_step = best.step.numpy() if best is not None else np.array([])
    return TrainResult(history, best_step, stopped_at)


class _Augmenter:
    """Noise augmentation: the batch's clean inputs with fresh noise ``s_e * N(0, I)`` for member ``e``, from
    ``config.noise_seeds`` (a stream per member) or else from ``config.seed`` (one draw for the ensemble)."""

    def __init__(self, levels, members: int | None, like: Tensor, config: TrainConfig):
        self.levels = _as_member_tensor("fresh_noise", levels, members, like)
        if isinstance(self.levels, Tensor):
            self.levels = self.levels.reshape(-1, 1, 1)
        self.members = members
        self.gen = self.gens = None
        if config.noise_seeds is None:
            self.gen = as_stream(config.seed).child("noise").generator()
        else:
            if len(config.noise_seeds) != (members or 1):
                raise ParameterError(f"noise_seeds must hold one stream per member ({members or 1}); "
                                     f"got {len(config.noise_seeds)}")
            self.gens = [r.child("noise").generator() for r in config.noise_seeds]

    def __call__(self, batch: Samples) -> Samples:
        clean = batch.clean
        if self.gens is not None:
            noise = member_normals(self.gens, clean.shape[-2:])
            noise = noise if self.members is not None else noise[0]
        else:
            shape = clean.shape if self.members is None else (self.members, *clean.shape[-2:])
            noise = torch.randn(shape, generator=self.gen, dtype=torch.float64)
        return Samples(clean, clean + self.levels * noise.to(clean), batch.y)  # CPU draws: any device agrees


def autograd_gradients(model, batch: Samples, feats, lam_t, layers, task) -> dict[str, Tensor]:
    """The ST loss terms, with the gradient of their total (summed over members) left in ``.grad``."""
    output, student_feats = model(batch.noisy, return_features=True)
    terms = student_teacher_loss(output, student_feats, batch.y, feats, lam_t, layers, task)
    terms["total"].sum().backward()
    return terms


def make_optimizer(params, config: TrainConfig, lr_scale=None, members=None):
    """The optimizer of ``config``; ``lr_scale`` gives member ``e`` the rate ``lr * lr_scale[e]`` (SGD only)."""
    sgd, adam = (optim.SGD, optim.Adam) if config.fast else (PlainSGD, PlainAdam)
    decay = config.weight_decay
    if np.ndim(decay) != 0:
        decay = _as_member_tensor("weight_decay", list(decay), members, params[0])
    if config.optimizer == "adam":
        if lr_scale is not None:
            raise ParameterError(f"lr_scale (one learning rate per member) needs optimizer='sgd'; "
                                 f"got {config.optimizer!r}")
        return adam(params, config.lr, decay)
    if lr_scale is None:
        return sgd(params, config.lr, config.momentum, decay)
    scale = _as_member_tensor("lr_scale", list(lr_scale), members, params[0])
    if not bool((scale > 0).all()):
        raise ParameterError(f"lr_scale must hold numbers > 0; got {list(lr_scale)}")
    return sgd(params, config.lr * scale, config.momentum, decay)


def _member_rate(lr, p: Tensor):
    """A rate for parameter ``p``: a number, or per-member rates ``(E,)`` shaped to broadcast over ``p``."""
    return lr.reshape((-1,) + (1,) * (p.dim() - 1)) if isinstance(lr, Tensor) else lr


def _nonzero(value) -> bool:
    return bool((value != 0).any()) if isinstance(value, Tensor) else bool(value)


class PlainSGD:
    """Gradient descent with heavy-ball momentum and L2 weight decay, one parameter at a time.

    ``g <- grad + wd * p;  v <- momentum * v + g (v = g at the first step);  p <- p - lr * v``,
    the update of ``torch.optim.SGD``. ``lr`` may hold one rate per member.
    """

    def __init__(self, params, lr, momentum: float = 0.0, weight_decay: float = 0.0):
        self.params, self.lr, self.momentum, self.weight_decay = list(params), lr, momentum, weight_decay
        self.velocity: list[Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = p.grad + _member_rate(self.weight_decay, p) * p if _nonzero(self.weight_decay) else p.grad
            if self.momentum:
                v = self.velocity[i]
                g = self.velocity[i] = g.clone() if v is None else self.momentum * v + g
            p -= _member_rate(self.lr, p) * g


class PlainAdam(PlainSGD):
    """Adam (default betas) with L2 weight decay, one parameter at a time: the update of ``torch.optim.Adam``.

    ``m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  p <- p - lr m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)``.
    """

    def __init__(self, params, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr, 0.0, weight_decay)
        self.betas, self.eps, self.t = betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad + _member_rate(self.weight_decay, p) * p if _nonzero(self.weight_decay) else p.grad
            m.mul_(b1).add_((1 - b1) * g)
            v.mul_(b2).add_((1 - b2) * g * g)
            denom = (v / (1 - b2**self.t)).sqrt() + self.eps
            p -= self.lr / (1 - b1**self.t) * m / denom


def minibatch(data: Samples, teacher_feats, batch_size: int | None, gen: torch.Generator):
    """A random minibatch of ``batch_size`` samples (all of ``data`` when ``None``), with the matching features."""
    if batch_size is None or batch_size >= data.n:
        return data, teacher_feats
    idx = torch.randperm(data.n, generator=gen)[:batch_size].to(data.clean.device)
    feats = None if teacher_feats is None else {k: v.index_select(v.dim() - 2, idx) for k, v in teacher_feats.items()}
    return data.rows(idx), feats


def _log_part(data: Samples, teacher_feats, config: TrainConfig):
    """The training samples (and teacher features) a log point and the relative scale measure on: the first
    ``config.train_log_size`` (all by default)."""
    if config.train_log_size is None or config.train_log_size >= data.n:
        return data, teacher_feats
    idx = torch.arange(config.train_log_size, device=data.clean.device)
    feats = None if teacher_feats is None else {k: v.index_select(v.dim() - 2, idx) for k, v in teacher_feats.items()}
    return data.rows(idx), feats


@torch.no_grad()
def _log(model, data, teacher_feats, lam_t, layers, config, eval_sets, step, diverged, train: bool) -> list[dict]:
    terms = {}
    if train:
        data, teacher_feats = _log_part(data, teacher_feats, config)
        output, feats = model(data.noisy, return_features=True)
        terms = student_teacher_loss(output, feats, data.y, teacher_feats, lam_t, layers, config.task)
        diverged.check(terms["total"], step)
    return log_rows(model, {f"train_{k}": v for k, v in terms.items()}, eval_sets, config.task, step,
                    ("noisy", "clean") if config.clean_metrics else ("noisy",))


def log_rows(model, metrics: dict[str, Tensor], eval_sets: Mapping[str, Samples], task: str, step: int,
             kinds: Sequence[str] = ("noisy", "clean")) -> list[dict]:
    """One history row per member: ``metrics`` plus each eval set's ``{name}_noisy`` and ``{name}_clean`` errors
    (those of ``kinds``)."""
    metrics = dict(metrics)
    for name, samples in eval_sets.items():
        for kind, value in evaluate(model, samples, task, kinds).items():
            metrics[f"{name}_{kind}"] = value
    members = getattr(model, "members", None) or 1
    values = {k: v.detach().reshape(-1).expand(members).cpu().numpy() for k, v in metrics.items()}
    return [{"step": step, "member": e, **{k: float(v[e]) for k, v in values.items()}} for e in range(members)]


def _metric_tensor(record: list[dict], name: str, device) -> Tensor:
    values = torch.tensor([r[name] for r in record], device=device)
    return values if len(record) > 1 else values[0]


def _add_member_info(history: pd.DataFrame, members, lam, member_info) -> pd.DataFrame:
    n = 1 if members is None else members
    info = {"lam": np.broadcast_to(np.asarray(lam, dtype=float), (n,))}
    info.update({k: list(v) for k, v in (member_info or {}).items()})
    for k, v in info.items():
        if len(v) != n:
            raise ParameterError(f"member_info[{k!r}] must have one entry per member ({n}); got {len(v)}")
    meta = pd.DataFrame({"member": range(n), **info})
    return history.merge(meta, on="member", how="left")
