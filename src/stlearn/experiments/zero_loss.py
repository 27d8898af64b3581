"""Chapter "Training to zero loss erases the teacher": the interpolation sweep.

For each depth and init scale, one ensemble holds every (lam, run) pair; run
``k`` draws its training set from ``rng.child("student_data", k)``, its test set
from ``rng.child("test", k)`` and its initialization from
``rng.child("student_init", k, depth)`` (the same for every ``lam`` and init
scale: paired runs). The teachers train on their own stream (:func:`clean_teachers`).

Every network here trains by :func:`fit_to_zero_loss`: full-batch heavy-ball
gradient descent whose step, per member and layer, is recomputed at every step
from a bound on the curvature of the ST loss at the current weights
(:func:`layer_curvatures`), and which stops each member once it fits its
training data (:class:`Descent`), with ``Descent.steps`` as a cap. Nothing is
tuned to one problem size: the step follows the data's Gram matrix, the
teacher-feature terms and the weights, and training lasts as long as the fit takes.

After training, each member's end-to-end map is compared with the min-norm
interpolator of its noisy training inputs, and the two exact identities of the
theorem are checked. The yardstick (:func:`ridge_yardstick`) is ridge regression on
the same training sets, its penalty tuned on a noisy validation set of run ``k``'s own,
``rng.child("validation", k)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import theory
from ..data import Samples, Task, draw, draw_members
from ..fast.functions import input_grad, weight_grad
from ..losses import FrozenTeacher
from ..models import DeepLinear
from ..protocol import by_sign, interval
from ..streams import Stream, as_stream
from ..teachers import clean_view
from ..train import TrainingDiverged, log_rows, log_schedule
from ..validation import ParameterError, check_float, check_int
from .linear_common import relative_gain_table, ridge_penalties, tuned_ridge

Tensor = torch.Tensor

FIT_TOL = 1e-8  # a student fits its data once its training loss is at most this share of the zero predictor's
RESIDUAL_SHARE = 0.02  # ... and the residual term of the decomposition at most this share of the init term
TEACHER_TOL = 1e-12  # a teacher is trained until its clean training loss is this share of the zero predictor's
# teachers step at this share of the stable step: near gradient flow, whose layers stay balanced, so that the
# directions the target does not use keep their initial size in the teacher's features (larger steps inflate
# them, and the ST students, which must fit those features, then fit their targets several times slower)
TEACHER_FRACTION = 0.05
POWER_START = 30  # power iterations that find the top singular vectors at the first step (then one per step)


@dataclass(frozen=True)
class Descent:
    """How every network of the chapter trains: heavy-ball gradient descent with curvature-set steps.

    ``rate_fraction`` is the step as a share of the largest stable one of the curvature bound
    (:func:`descent_rates`), ``momentum`` the heavy-ball coefficient, ``steps`` the cap on the
    number of steps (training stops earlier once every member fits), ``log_points`` the size of
    the log-spaced schedule on which metrics are logged and convergence is checked.
    """

    rate_fraction: float = 0.5
    momentum: float = 0.9
    steps: int = 30000
    log_points: int = 60
    progress: bool = True

    def __post_init__(self):
        check_float("rate_fraction", self.rate_fraction, low=0.01, high=0.99)
        check_float("momentum", self.momentum, low=0.0, high=0.99)
        check_int("steps", self.steps, low=1)
        check_int("log_points", self.log_points, low=2)


def _quiet(descent) -> dict:
    """tqdm's ``disable`` only when progress is off: left unset, TQDM_DISABLE (set in chapter kernels) decides."""
    return {} if descent.progress else {"disable": True}


def widths(d: int, hidden: int, depth: int, d_out: int) -> list[int]:
    return [d] + [hidden] * (depth - 1) + [d_out]


def check_sizes(d: int, rank: int, d_out: int, n_train: int, hidden: int) -> None:
    """The sizes for which a student can interpolate its data and a teacher can carry the target.

    Raises :class:`ParameterError` naming the parameter and a value that works.
    """
    if rank > d:
        raise ParameterError(f"rank must be <= d = {d}; got {rank}")
    if n_train > d:
        raise ParameterError(f"n_train must be <= d = {d} for the student to interpolate; got {n_train}")
    need = min(d_out, rank)
    if hidden < need:
        raise ParameterError(f"hidden must be >= min(d_out, rank) = {need}, the rank of the target, for the "
                             f"students to fit it and the teachers' features to carry it; got {hidden}")


MAX_DEPTH = 3  # from a small init a student of depth L crosses saddles lasting ~ alpha^-(L-2) steps: L <= 3 here
SMALL_INIT = 0.1  # the largest init scale of the small-init regime, where the init term is linear in the scale
SMALLEST_INIT = 0.03  # the smallest scale must be at most this: there the test errors are compared
TEST_ERROR_GAP = 0.02  # ... and must agree with the interpolator's to this relative gap (the init term is O(alpha))


def check_depths(depths) -> None:
    """Depths of at most ``MAX_DEPTH``.

    Gradient descent from a small init of scale ``alpha`` learns a deep linear network direction by direction,
    and before each direction it sits on a saddle whose length grows like ``alpha^-(L-2)``: at depth 5 and
    ``alpha = 0.03`` a plain student had not fitted after 20000 steps (and its loss had stalled), while depths
    2 and 3 fit in a few thousand steps at every scale the chapter allows.
    """
    if max(depths) > MAX_DEPTH:
        raise ParameterError(f"depths must all be <= {MAX_DEPTH} (e.g. [2, 3]): deeper students from a small "
                             f"init sit on saddles for about alpha^-(L-2) steps before they fit; got {list(depths)}")


def check_init_scales(init_scales) -> None:
    """Two distinct init scales or more (a slope is fitted), all small, the smallest small enough to compare."""
    scales = sorted(set(init_scales))
    example = "e.g. [0.1, 0.03, 0.01]"
    if len(scales) < 2:
        raise ParameterError(f"init_scales must hold at least two distinct scales for a slope ({example}); "
                             f"got {list(init_scales)}")
    if scales[-1] > SMALL_INIT:
        raise ParameterError(f"init_scales must all be <= {SMALL_INIT}, the small-init regime where the init term "
                             f"is linear in the scale ({example}); got {list(init_scales)}")
    if scales[0] > SMALLEST_INIT:
        raise ParameterError(f"init_scales must include a scale <= {SMALLEST_INIT}, where the students' test errors "
                             f"are compared with the interpolator's ({example}); got {list(init_scales)}")


# --------------------------------------------------------------------------- the loss, its gradient, its curvature
def st_forward(weights: Sequence[Tensor], x: Tensor, y: Tensor, targets: dict[int, Tensor]):
    """``(hs, residuals)``: the features ``[x, h_1, ..., h_L]`` and ``{m: h_m - target_m}``.

    ``targets`` maps a hidden layer ``m < L`` to the teacher's features it is matched to; the
    output ``L`` is always matched to ``y``.
    """
    hs = [x]
    for w in weights:
        hs.append(hs[-1] @ w.transpose(-1, -2))
    depth = len(weights)
    residuals = {m: hs[m] - t for m, t in targets.items()}
    residuals[depth] = hs[depth] - y
    return hs, residuals


def st_weight_gradients(weights: Sequence[Tensor], hs: Sequence[Tensor], residuals: dict[int, Tensor],
                        lam: Tensor) -> list[Tensor]:
    """The gradients of ``(1/2n) ||h_L - y||^2 + (lam/2n) sum_m ||h_m - t_m||^2`` by layer (back-propagation)."""
    depth, n = len(weights), hs[0].shape[-2]
    g = residuals[depth] / n
    grads = [None] * depth
    for l in range(depth, 0, -1):
        grads[l - 1] = weight_grad(hs[l - 1], g, weights[l - 1])
        if l > 1:
            g = input_grad(g, weights[l - 1])
            if l - 1 in residuals:
                g = g + _per_member(lam, g) / n * residuals[l - 1]
    return grads


def _per_member(value: Tensor, like: Tensor) -> Tensor:
    """A per-member value ``(E,)`` (or a number) shaped to broadcast over ``like``'s last two dimensions."""
    return value.reshape(value.shape + (1, 1)) if value.dim() else value


class TopSingular:
    """Largest singular values of products of matrices that change little from one step to the next.

    One warm-started power iteration per call and product (``POWER_START`` at the first): the
    estimate ``||A^T A v||^(1/2)`` for a unit ``v`` converges to ``||A||_2`` from below, and follows
    it as the weights move. Products are given as lists of factors ``[A_1, ..., A_k]`` for
    ``A_k ... A_1``, never formed.
    """

    def __init__(self):
        self.vectors: dict = {}

    def __call__(self, key, factors: Sequence[Tensor]) -> Tensor:
        v = self.vectors.get(key)
        rounds = 1
        if v is None:
            v = torch.ones(*factors[0].shape[:-2], factors[0].shape[-1], 1, dtype=factors[0].dtype,
                           device=factors[0].device)
            rounds = POWER_START
        for _ in range(rounds):
            u = v
            for a in factors:
                u = a @ u
            for a in reversed(factors):
                u = a.transpose(-1, -2) @ u
            size = u.norm(dim=(-2, -1), keepdim=True)
            v = u / size.clamp_min(torch.finfo(u.dtype).tiny)
        self.vectors[key] = v
        return size.squeeze(-1).squeeze(-1).sqrt()

    def keep(self, mask: Tensor) -> None:
        """Follow the members of ``mask`` only (the others stopped)."""
        self.vectors = {key: v[mask] for key, v in self.vectors.items()}


def layer_curvatures(weights: Sequence[Tensor], hs: Sequence[Tensor], residuals: dict[int, Tensor], lam: Tensor,
                     top: TopSingular, input_norm: Tensor) -> list[Tensor]:
    """Per layer ``j``, a number ``c_j`` (per member) with ``H <= L diag(c_j)`` for the loss Hessian ``H``.

    Each term ``m`` of the loss (the output, weight 1; a matched hidden layer, weight ``lam``) is
    ``w_m/2n ||W_m ... W_1 X - T_m||^2``. Its Gauss-Newton block for layer ``j`` is at most
    ``w_m ||W_m...W_{j+1}||^2 ||h_{j-1}||^2 / n``, and by Cauchy-Schwarz the whole Gauss-Newton part is
    at most ``L`` times its diagonal blocks. Its second-order part couples layers ``j < k`` with
    norm at most ``rho_jk = w_m ||R_m||_F ||W_m...W_{k+1}|| ||W_{k-1}...W_{j+1}|| ||h_{j-1}|| / n``,
    and ``[[0, rho], [rho, 0]] <= diag(rho, rho)``. So ``c_j = GN_j + sum_k rho_jk / L``.
    ``input_norm`` is ``||X||_2`` per member (fixed); the other norms come from ``top``, once per step.
    """
    depth, n = len(weights), hs[0].shape[-2]
    feature = [input_norm] + [top(("h", j), [hs[j]]) for j in range(1, depth)]  # ||h_j||_2
    norms = {(m, k): top(("w", m, k), weights[k:m]) for m in range(2, depth + 1) for k in range(1, m)}
    norms.update({(m, m): 1.0 for m in range(depth + 1)})  # ||W_m ... W_{k+1}||_2, the empty product is 1
    weight = {m: 1.0 if m == depth else lam for m in residuals}
    size = {m: weight[m] * r.norm(dim=(-2, -1)) / n for m, r in residuals.items()}
    curvatures = []
    for j in range(1, depth + 1):
        gauss_newton = sum(weight[m] * norms[m, j] ** 2 for m in residuals if m >= j) * feature[j - 1] ** 2 / n
        coupling = 0.0
        for k in range(1, depth + 1):
            lo, hi = min(j, k), max(j, k)
            if k != j:
                outer = sum(size[m] * norms[m, hi] for m in residuals if m >= hi)
                coupling = coupling + outer * norms[hi - 1, lo] * feature[lo - 1]
        curvatures.append(gauss_newton + coupling / depth)
    return curvatures


def descent_rates(curvatures: Sequence[Tensor], fraction: float, momentum: float) -> list[Tensor]:
    """Per layer, ``fraction * 2 (1 + momentum) / (L c_j)`` (``fraction``: the chapter's ``rate_fraction``).

    With steps ``eta / c_j`` the preconditioned Hessian has eigenvalues at most ``L eta``
    (:func:`layer_curvatures`), and heavy ball is stable on a quadratic for ``eta * curvature <
    2 (1 + momentum)``: ``fraction = 1`` is the stability limit of the bound.
    """
    depth = len(curvatures)
    return [fraction * 2.0 * (1.0 + momentum) / (depth * c) for c in curvatures]


# --------------------------------------------------------------------------- training to zero loss
@dataclass
class Fit:
    """What :func:`fit_to_zero_loss` leaves: the log, and per member whether and when it fitted."""

    history: pd.DataFrame
    converged: np.ndarray  # bool per member
    fitted_at: np.ndarray  # the logged step at which it fitted (-1: not within the cap)
    steps: int  # steps taken by the ensemble


def fit_to_zero_loss(model: DeepLinear, data: Samples, targets: dict[int, Tensor], lam: Sequence[float] | float,
                     descent: Descent, fitted: Callable[[int], Tensor], eval_sets=None,
                     member_info=None) -> Fit:
    """Train ``model`` in place on ``data.noisy`` with the ST loss until every member fits.

    ``targets`` maps hidden layers to teacher features (empty: the base loss), ``lam`` is one weight or
    one per member. At every step the rates of :func:`descent_rates` are recomputed from the current
    weights; on the log schedule of ``descent.steps`` the metrics are logged and ``fitted(step)`` (a bool
    per member, reading ``model``) says which members are done: they stop, and the steps after that
    compute only the members still moving. Training ends when all are done or at the cap.
    """
    params = [layer.weight for layer in model.layers]
    single = model.members is None
    members = 1 if single else model.members
    lam_t = torch.as_tensor(lam, dtype=params[0].dtype, device=params[0].device).expand(members)
    moving = _Moving(params, data, targets, lam_t, single)
    fitted_at = np.full(members, -1)
    schedule = set(log_schedule(descent.steps, descent.log_points))
    rows, step = [], 0
    bar = tqdm(total=descent.steps, desc="training", leave=False, **_quiet(descent))
    with torch.no_grad():
        for step in range(descent.steps + 1):
            if step in schedule:
                moving.write_back(params)
                rows.extend(_log_step(model, data, targets, lam_t if not single else lam_t[0], eval_sets or {}, step))
                done = fitted(step).reshape(-1).cpu().numpy() & (fitted_at < 0)
                fitted_at[done] = step
                if not (fitted_at < 0).any() or step == descent.steps:
                    break
                if done.any():
                    moving.keep(torch.from_numpy(fitted_at[moving.index.cpu().numpy()] < 0))
            moving.step(descent)
            bar.update()
    bar.close()
    history = pd.DataFrame(rows)
    info = {"lam": lam_t.cpu().numpy(), **{k: list(v) for k, v in (member_info or {}).items()}}
    history = history.merge(pd.DataFrame({"member": range(members), **info}), on="member")
    return Fit(history, fitted_at >= 0, fitted_at, step)


class _Moving:
    """The members still training, gathered from the ensemble: weights, velocities, data, targets, lam.

    A single network is held as an ensemble of one.
    """

    def __init__(self, params: list[Tensor], data: Samples, targets: dict[int, Tensor], lam: Tensor,
                 single: bool):
        members = lam.shape[0]

        def stacked(t: Tensor) -> Tensor:
            return t.unsqueeze(0) if single else t.expand(members, *t.shape[-2:])

        self.single = single
        self.index = torch.arange(members, device=lam.device)
        self.weights = [stacked(p.detach()).clone() for p in params]
        self.velocity = [torch.zeros_like(w) for w in self.weights]
        self.x, self.y, self.lam = stacked(data.noisy), stacked(data.y), lam
        self.targets = {m: stacked(t) for m, t in targets.items()}
        self.input_norm = torch.linalg.matrix_norm(self.x, ord=2)
        self.top = TopSingular()

    def step(self, descent: Descent) -> None:
        """One heavy-ball step ``v <- momentum v - rate grad; w <- w + v`` at the curvature-set rates."""
        hs, residuals = st_forward(self.weights, self.x, self.y, self.targets)
        grads = st_weight_gradients(self.weights, hs, residuals, self.lam)
        curvatures = layer_curvatures(self.weights, hs, residuals, self.lam, self.top, self.input_norm)
        for w, v, g, rate in zip(self.weights, self.velocity, grads,
                                 descent_rates(curvatures, descent.rate_fraction, descent.momentum)):
            v.mul_(descent.momentum).sub_(_per_member(rate, g) * g)
            w.add_(v)

    def keep(self, mask: Tensor) -> None:
        """Keep the members of ``mask`` (over the members now moving)."""
        mask = mask.to(self.index.device)
        pick = lambda t: t[mask]  # noqa: E731
        self.index, self.lam, self.x, self.y, self.input_norm = map(pick, (self.index, self.lam, self.x, self.y,
                                                                           self.input_norm))
        self.weights, self.velocity = [pick(w) for w in self.weights], [pick(v) for v in self.velocity]
        self.targets = {m: pick(t) for m, t in self.targets.items()}
        self.top.keep(mask)

    def write_back(self, params: list[Tensor]) -> None:
        for p, w in zip(params, self.weights):
            if self.single:
                p.copy_(w[0])
            else:
                p[self.index] = w


def _log_step(model, data: Samples, targets: dict[int, Tensor], lam, eval_sets, step: int) -> list[dict]:
    """The history rows of one logged step; raises :class:`TrainingDiverged` on a non-finite loss."""
    hs, residuals = st_forward([layer.weight for layer in model.layers], data.noisy, data.y, targets)
    n, depth = data.n, model.depth
    task = residuals[depth].pow(2).sum((-2, -1)) / (2 * n)
    feature = sum((r.pow(2).sum((-2, -1)) / (2 * n) for m, r in residuals.items() if m != depth),
                  torch.zeros_like(task))
    if not bool(torch.isfinite(task + feature).all()):
        raise TrainingDiverged(f"training diverged at step {step}: lower rate_fraction (e.g. to 0.25)")
    metrics = {"train_task": task, "train_feature": feature, "train_total": task + lam * feature}
    return log_rows(model, metrics, eval_sets, "mse", step)


def required_steps(history: pd.DataFrame, shortfall: np.ndarray, steps: int) -> int | None:
    """The cap at which every member would fit: ``steps`` plus the steps its loss needs to fall by ``shortfall``.

    The rate is the slope of ``log train_task`` against the step over the logged steps of the last half of
    training (a least-squares line per member); ``shortfall[e] <= 1`` means member ``e`` has fitted. The
    answer has 20% of margin and two significant digits; ``None`` when some unfitted member's loss did
    not fall over that half (or fewer than two steps were logged there).
    """
    late = history[history.step >= steps / 2]
    needed = steps
    for e in np.flatnonzero(np.asarray(shortfall) > 1):
        rows = late[late.member == e]
        if len(rows) < 2:
            return None
        slope = np.polyfit(rows.step.to_numpy(float), np.log(rows.train_task.to_numpy(float)), 1)[0]
        if not slope < 0:
            return None
        needed = max(needed, steps + math.log(shortfall[e]) / -slope)
    return _round_up(1.2 * needed)


def _round_up(value: float) -> int:
    """``value`` rounded up to two significant digits (a number a reader can type)."""
    scale = 10 ** max(0, math.floor(math.log10(max(value, 1.0))) - 1)
    return int(math.ceil(value / scale) * scale)


def require_fitted(fit: Fit, shortfall: np.ndarray, descent: Descent, what: str) -> None:
    """Raise :class:`ParameterError` naming ``steps`` and a cap that works when some member did not fit."""
    if fit.converged.all():
        return
    late = f"{int((~fit.converged).sum())} of {fit.converged.size} {what} did not fit their training data"
    needed = required_steps(fit.history, shortfall, descent.steps)
    if needed is None:
        raise ParameterError(f"{late} within steps = {descent.steps}, and their loss did not fall over the last "
                             f"half: raise steps (try {10 * descent.steps}) or lower rate_fraction (try "
                             f"{max(0.01, descent.rate_fraction / 2):g})")
    raise ParameterError(f"{late} within steps = {descent.steps}; at the rate their training loss falls, raise "
                         f"steps to at least {needed}")


# --------------------------------------------------------------------------- preconditions
def check_conditioning(x_noisy: Tensor, task: Task, descent: Descent) -> None:
    """Before any training: the noisy inputs have full column rank, and are conditioned well enough to fit.

    The slowest direction of the data, of curvature ``mu_min`` against the top ``s`` of ``X^T X / n``,
    sets the rate of the last phase of training: at most ``a / (1 - momentum)`` per step on the
    residual with ``a = fraction * 2 (1 + momentum) mu_min / s`` (and never more than ``1 - sqrt(momentum)``,
    heavy ball's limit), so a fit to ``FIT_TOL`` needs at least ``log(1 / FIT_TOL) / (2 rate)`` steps.
    """
    sv = torch.linalg.svdvals(x_noisy.detach().to("cpu", torch.float64))
    ratio = float((sv[..., -1] / sv[..., 0]).min())
    n = x_noisy.shape[-2]
    if ratio < 1e-7:
        raise ParameterError(f"the noisy training inputs have rank < n_train = {n} (sigma = {task.sigma:g}): "
                             f"sigma must be > 0 (e.g. 0.5), or n_train <= rank = {task.inputs.rank}")
    a = descent.rate_fraction * 2.0 * (1.0 + descent.momentum) * ratio**2
    rate = min(a / (1.0 - descent.momentum), 1.0 - math.sqrt(descent.momentum))
    needed = math.log(1.0 / FIT_TOL) / (2.0 * rate)
    if needed > descent.steps:
        raise ParameterError(f"the noisy training inputs are ill-conditioned (condition number {1 / ratio:.3g}): "
                             f"a fit takes at least {needed:.3g} steps; raise steps to at least "
                             f"{_round_up(needed)}, or lower n_train below d")


def check_teachers_carry_targets(teachers: dict[int, FrozenTeacher], train_set: Samples, rank: int) -> None:
    """Each teacher's last hidden features on the students' clean inputs span their targets.

    Otherwise no ST student (``lam > 0``) can reach zero task loss and zero feature loss at once, and the
    theorem's hypothesis fails. Tolerance: a tenth of the square root of ``FIT_TOL``.
    """
    y = train_set.y.detach().to("cpu", torch.float64)
    for depth, teacher in teachers.items():
        name = f"h{depth - 1}"
        feats = teacher.features(train_set.clean, [name])[name].detach().to("cpu", torch.float64)
        fitted = feats @ (torch.linalg.pinv(feats) @ y)
        missed = float(((y - fitted).norm(dim=(-2, -1)) / y.norm(dim=(-2, -1))).max())
        if missed > 0.1 * math.sqrt(FIT_TOL):
            raise ParameterError(f"the depth-{depth} teacher's features miss {missed:.2e} of the students' "
                                 f"targets: train it on more samples, n_teacher >= rank = {rank}")


def check_learning_helps(task: Task, n_train: int, rng: Stream | int, seeds, dtype=torch.float64) -> None:
    """The runs' min-norm interpolators beat the zero predictor on average: a setting where learning helps.

    Otherwise the chapter's comparison with the zero predictor is moot. Reads the runs' training sets
    (``rng.child("student_data", k)`` for ``k`` in ``seeds``, as the sweep draws them); the fix names the
    largest noise level ``sigma / 2^j`` at which the same draws (clean inputs and noise directions) would do.
    """
    rng = as_stream(rng)
    train_set = draw_members(task, n_train, [rng.child("student_data", k) for k in seeds], dtype=dtype)
    x, x_noisy, y = (t.detach().to("cpu", torch.float64) for t in (train_set.clean, train_set.noisy, train_set.y))
    cov, w_star = task.inputs.covariance(), task.target.weight

    def interpolator_error(sigma: float) -> float:
        noisy = x + (sigma / task.sigma) * (x_noisy - x) if task.sigma > 0 else x
        w = theory.min_norm_interpolator(noisy, y)
        return float(theory.linear_test_error(w, w_star, cov, sigma).mean())

    zero = float(theory.linear_test_error(torch.zeros_like(w_star), w_star, cov, task.sigma))
    error = interpolator_error(task.sigma)
    if error < zero:
        return
    sigma = task.sigma
    while sigma > 1e-6 * task.sigma and interpolator_error(sigma) >= zero:
        sigma /= 2
    raise ParameterError(f"at sigma = {task.sigma:g} the min-norm interpolator (test error {error:.3g}) does no "
                         f"better than the zero predictor ({zero:.3g}), so learning does not help: lower sigma "
                         f"to at most {sigma:g}")


# --------------------------------------------------------------------------- teachers and students
def clean_teachers(task: Task, hidden: int, depths, n_teacher: int, rng: Stream | int, descent: Descent,
                   device=None, dtype=torch.float64) -> dict[int, FrozenTeacher]:
    """One deep linear teacher per depth, trained to zero loss on ``n_teacher`` clean samples and frozen.

    All depths share teacher 0's training set ``rng.child("teacher_data", 0)``; the teacher of depth ``L``
    starts from ``rng.child("teacher_init", 0, L)`` at init scale 0.5 and trains by
    :func:`fit_to_zero_loss`, at ``TEACHER_FRACTION`` of the stable step, until its loss is ``TEACHER_TOL``
    of the zero predictor's. It serves every student run of that depth.
    """
    rng = as_stream(rng)
    data = clean_view(draw(task, n_teacher, rng.child("teacher_data", 0), device=device, dtype=dtype))
    teachers = {}
    for depth in depths:
        model = DeepLinear(widths(task.d, hidden, depth, task.d_out), init_scale=0.5,
                           rng=rng.child("teacher_init", 0, depth), device=device, dtype=dtype)
        check = TeacherFit(model, data)
        fit = fit_to_zero_loss(model, data, {}, 0.0, replace(descent, rate_fraction=TEACHER_FRACTION), check)
        require_fitted(fit, check.shortfall, descent, f"depth-{depth} teachers")
        teachers[depth] = FrozenTeacher(model)
    return teachers


class TeacherFit:
    """The stopping rule of a teacher: its training loss is at most ``TEACHER_TOL`` of the zero predictor's."""

    def __init__(self, model: DeepLinear, data: Samples):
        self.model, self.data = model, data
        self.zero = data.y.pow(2).sum()
        self.shortfall = np.full(1, np.inf)

    def __call__(self, step: int) -> Tensor:
        loss = (self.model(self.data.noisy) - self.data.y).pow(2).sum() / self.zero
        self.shortfall = np.full(1, float(loss) / TEACHER_TOL)
        return loss <= TEACHER_TOL


class StudentFit:
    """The stopping rule of the students, read on the log schedule (a bool per member).

    A member has fitted once its training loss is at most ``FIT_TOL`` of the zero predictor's and the
    residual term ``R X^+`` of the decomposition is at most ``RESIDUAL_SHARE`` of the init term
    ``W_{L:2} W_1(0) (I - P)``. ``shortfall`` (per member) is the factor by which its training loss must
    still fall (the residual term falls as its square root).
    """

    def __init__(self, model: DeepLinear, data: Samples):
        self.model, self.x, self.y = model, data.noisy, data.y
        pinv = torch.linalg.pinv(self.x)  # (E, d, n)
        self.pinv_t = pinv.transpose(-1, -2)
        eye = torch.eye(self.x.shape[-1], dtype=self.x.dtype, device=self.x.device)
        self.w1_outside = model.layers[0].weight.detach() @ (eye - pinv @ self.x)  # W_1(0) (I - P)
        self.zero = self.y.pow(2).sum((-2, -1))
        self.shortfall = np.full(model.members or 1, np.inf)

    def __call__(self, step: int) -> Tensor:
        residual = self.model.end_to_end() @ self.x.transpose(-1, -2) - self.y.transpose(-1, -2)
        loss = residual.pow(2).sum((-2, -1)) / self.zero
        residual_term = (residual @ self.pinv_t).norm(dim=(-2, -1))
        init_term = (upper_product(self.model) @ self.w1_outside).norm(dim=(-2, -1))
        share = residual_term / (RESIDUAL_SHARE * init_term)
        self.shortfall = torch.maximum(loss / FIT_TOL, share.pow(2)).cpu().numpy().reshape(-1)
        return (loss <= FIT_TOL) & (share <= 1)


def upper_product(model: DeepLinear) -> Tensor:
    """``W_L ... W_2`` (the identity for a one-layer model), in the model's dtype and device."""
    layers = [l.weight.detach() for l in model.layers[1:]]
    if not layers:
        return torch.eye(model.widths[1], dtype=model.layers[0].weight.dtype, device=model.layers[0].weight.device)
    w = layers[0]
    for nxt in layers[1:]:
        w = nxt @ w
    return w


def _relative(a: Tensor, b: Tensor) -> Tensor:
    """``||a - b||_F / ||b||_F`` over the last two dimensions."""
    return (a - b).norm(dim=(-2, -1)) / b.norm(dim=(-2, -1))


def hardest_first(depths, init_scales) -> list[tuple[int, float]]:
    """The (depth, init scale) pairs, deepest and smallest init first: the slowest fit fails first, and fast."""
    return sorted(itertools.product(depths, init_scales), key=lambda p: (-p[0], p[1]))


def interpolation_sweep(task: Task, n_train: int, n_test: int, hidden: int, depths, lams, init_scales,
                        rng: Stream | int, seeds, teachers: dict[int, FrozenTeacher], descent: Descent,
                        device=None, dtype=torch.float64):
    """Returns ``(summary, histories)``: one summary row per member and run, and the training logs.

    ``seeds`` are the run indices ``k`` (column ``seed``); every stream is a child of ``rng``. Before any
    training the noisy inputs' conditioning and the teachers' features are checked; the (depth, init)
    ensembles then train hardest first, and one that does not fit within ``descent.steps`` stops the sweep
    with the cap that would do.
    """
    rng = as_stream(rng)
    pairs = list(itertools.product(lams, seeds))
    member_lams = [l for l, _ in pairs]
    member_seeds = [k for _, k in pairs]
    train_set = draw_members(task, n_train, [rng.child("student_data", k) for k in member_seeds],
                             device=device, dtype=dtype)
    test_set = draw_members(task, n_test, [rng.child("test", k) for k in member_seeds], label_noise=False,
                            device=device, dtype=dtype)
    check_conditioning(train_set.noisy, task, descent)
    check_teachers_carry_targets(teachers, train_set, task.inputs.rank)
    results = {}
    for depth, init in tqdm(hardest_first(depths, init_scales), desc="depth x init", **_quiet(descent)):
        model = DeepLinear(widths(task.d, hidden, depth, task.d_out), members=len(pairs), init_scale=init,
                           rng=[rng.child("student_init", k, depth) for k in member_seeds], device=device,
                           dtype=dtype)
        w1_init = model.layers[0].weight.detach().to("cpu", torch.float64).clone()
        feats = teachers[depth].features(train_set.clean, model.feature_names)
        targets = {int(name[1:]): f for name, f in feats.items()}
        check = StudentFit(model, train_set)
        fit = fit_to_zero_loss(model, train_set, targets, member_lams, descent, check, eval_sets={"test": test_set},
                               member_info={"seed": member_seeds})
        require_fitted(fit, check.shortfall, descent, f"runs of depth {depth} at init scale {init:g}")
        rows = member_rows(model, w1_init, train_set, task, pairs, fit.history)
        results[depth, init] = (rows.assign(depth=depth, init_scale=init, fitted_at=fit.fitted_at),
                                fit.history.assign(depth=depth, init_scale=init))
    order = list(itertools.product(depths, init_scales))
    summary = pd.concat([results[p][0] for p in order], ignore_index=True)
    history = pd.concat([results[p][1] for p in order], ignore_index=True)
    return summary, history


def member_rows(model: DeepLinear, w1_init: Tensor, train_set: Samples, task: Task, pairs, history) -> pd.DataFrame:
    """Per member: final training loss, distance to the min-norm interpolator, identity gaps, ``||W_{L:2}||_2``."""
    x_noisy = train_set.noisy.to("cpu", torch.float64)
    y = train_set.y.to("cpu", torch.float64)
    w_mn = theory.min_norm_interpolator(x_noisy, y)
    outside = torch.eye(task.d, dtype=torch.float64) - theory.row_space_projector(x_noisy)
    cov, w_star = task.inputs.covariance(), task.target.weight
    w_end = model.end_to_end().detach().to("cpu", torch.float64)
    w1 = model.layers[0].weight.detach().to("cpu", torch.float64)
    upper = upper_product(model).to("cpu", torch.float64)
    init_term = upper @ w1_init @ outside
    residual = w_end @ x_noisy.transpose(-1, -2) - y.transpose(-1, -2)
    residual_term = residual @ torch.linalg.pinv(x_noisy).transpose(-1, -2)
    invariance = _relative(w1 @ outside, w1_init @ outside)  # init_scales > 0 (checked by the spec)
    final = history[history.step == history.step.max()].set_index("member")
    scale = w_mn.norm(dim=(-2, -1))
    return pd.DataFrame({
        "lam": [l for l, _ in pairs], "seed": [k for _, k in pairs],
        "train_task": final.train_task.sort_index().to_numpy(),
        "distance": _relative(w_end, w_mn).numpy(),
        "identity_gap": ((w_end - w_mn - residual_term - init_term).norm(dim=(-2, -1)) / scale).numpy(),
        "residual_term": (residual_term.norm(dim=(-2, -1)) / scale).numpy(),
        "init_term": (init_term.norm(dim=(-2, -1)) / scale).numpy(),
        "invariance_gap": invariance.numpy(),
        "upper_norm": torch.linalg.matrix_norm(upper, ord=2).numpy(),  # ||W_{L:2}||_2, assumption (ii)
        "test_error": theory.linear_test_error(w_end, w_star, cov, task.sigma).numpy(),
        "test_error_min_norm": theory.linear_test_error(w_mn, w_star, cov, task.sigma).numpy(),
    })


# --------------------------------------------------------------------------- the yardstick
def ridge_yardstick(task: Task, n_train: int, n_val: int, hidden: int, rng: Stream | int, seeds,
                    budget: int) -> pd.DataFrame:
    """Ridge tuned on validation, on the runs' own training sets: one row per run ``k`` in ``seeds``.

    Run ``k``'s training set is the sweep's (``rng.child("student_data", k)``, drawn again: the same samples);
    its ``n_val`` noisy validation samples with their labels come from ``rng.child("validation", k)``. The
    penalty is the one of ``budget`` (:func:`~stlearn.experiments.linear_common.ridge_penalties`, 0
    among them: the min-norm interpolator) with the lowest validation error. Columns: ``ridge`` and
    ``ridge_val`` (its exact test error and its validation error), ``min_norm`` (the min-norm interpolator's
    test error) and ``rrr_gap``: the relative distance of reduced-rank regression of rank
    ``min(hidden, d_out)`` to the min-norm interpolator (zero when the labels have rank at most ``hidden``,
    as here: the student's width is no bottleneck on its training labels).
    """
    rng = as_stream(rng)
    train_set = draw_members(task, n_train, [rng.child("student_data", k) for k in seeds], dtype=torch.float64)
    val = draw_members(task, n_val, [rng.child("validation", k) for k in seeds], dtype=torch.float64)
    cov, w_star = task.inputs.covariance(), task.target.weight
    ridge_val, ridge_test = tuned_ridge(train_set, val, ridge_penalties(budget), w_star, cov, task.sigma)
    w_mn = theory.min_norm_interpolator(train_set.noisy, train_set.y)
    w_rrr = theory.reduced_rank_regression(train_set.noisy, train_set.y, min(hidden, task.d_out))
    return pd.DataFrame({"seed": list(seeds), "ridge": ridge_test, "ridge_val": ridge_val,
                         "min_norm": theory.linear_test_error(w_mn, w_star, cov, task.sigma).numpy(),
                         "rrr_gap": _relative(w_rrr, w_mn).numpy()})


def against_yardstick(students: pd.DataFrame, ridge: pd.DataFrame) -> pd.DataFrame:
    """Per (depth, lam), the students' test error against tuned ridge on the same data, paired by run.

    ``students``: the sweep's rows at one init scale; ``ridge``: :func:`ridge_yardstick`. ``gain`` is
    ridge's error minus the student's (> 0: the student is better), with its 95% interval over runs, and
    ``relative gain`` the same over ridge's mean error (the linear chapters' one form against the yardstick);
    the first row is the shared end point itself, the min-norm interpolator (``trained`` False);
    ``verdict`` is the sign of the interval (``student``, ``ridge`` or ``neither``).
    """
    r = ridge.set_index("seed")
    rows = [("min-norm interpolator", False, r.min_norm)]
    for (depth, lam), g in students.groupby(["depth", "lam"]):
        name = f"depth {depth}, " + ("base (λ = 0)" if lam == 0 else f"ST, λ = {lam:g}")
        rows.append((name, True, g.set_index("seed").test_error))
    out = []
    for name, trained, err in rows:
        iv = interval((r.ridge - err.reindex(r.index)).to_numpy())
        out.append({"student": name, "trained": trained, "test error": float(err.mean()),
                    "tuned ridge": float(r.ridge.mean()), "gain": iv["gain"], "gain_low": iv["low"],
                    "gain_high": iv["high"], **{f"relative gain{end}": iv[k] / r.ridge.mean()
                                                for end, k in (("", "gain"), ("_low", "low"), ("_high", "high"))},
                    "verdict": by_sign(iv, "student", "ridge", "neither")})
    return pd.DataFrame(out)


VERDICT_WORDS = {"student": "the student is better", "ridge": "tuned ridge is better",
                 "neither": "no resolvable difference"}


def yardstick_table(versus: pd.DataFrame) -> pd.DataFrame:
    """:func:`against_yardstick` for the reader: mean test errors, each student's relative gain over tuned ridge
    in %, signed, with its 95% interval (:func:`~.linear_common.relative_gain_table`), and the verdict in words."""
    shown = versus.drop(columns=["trained", "gain", "gain_low", "gain_high"]).rename(
        columns={"test error": "student's test error", "tuned ridge": "tuned ridge's test error"})
    shown["verdict"] = shown.verdict.map(VERDICT_WORDS)
    return relative_gain_table(shown, {"relative gain": "student vs tuned ridge, % (above 0: student better)"})


def theorem_gaps(summary: pd.DataFrame, task: Task) -> dict[str, float]:
    """The largest, over every run of the sweep, of each quantity the Lemma and the Theorem say is (near) zero:
    ``invariance`` (the first layer's move outside the span of the data), ``identity`` (end-to-end map minus
    min-norm + residual + init term), ``fit`` (training loss over the zero predictor's, ``E ||y||^2 / 2`` on
    clean inputs) and ``residual_share`` (residual term over the distance to the min-norm interpolator)."""
    zero_train_loss = 0.5 * task.target.weight.pow(2).sum().item()
    return {"invariance": summary.invariance_gap.max(), "identity": summary.identity_gap.max(),
            "fit": (summary.train_task / zero_train_loss).max(),
            "residual_share": (summary.residual_term / summary.distance).max()}


def check_theorem_gaps(gaps: dict[str, float]) -> None:
    """Raise AssertionError unless :func:`theorem_gaps` are as small as the exact identities and the stopping
    rule promise (rounding for the identities, the stopping rule's tolerances for the fit)."""
    assert gaps["invariance"] < 1e-8, "the first layer moved outside the span of the data"
    assert gaps["identity"] < 1e-8, "the end-to-end map is not min-norm + residual + init term"
    assert gaps["fit"] < 1e-5, "some runs did not reach zero training loss although the stopping rule let them stop"
    assert gaps["residual_share"] < 0.25, \
        "the residual term is not small against the init term at the stopping rule"
