"""Chapter "How the teacher decomposes its knowledge (ReLU networks)", under the book's protocol.

Teachers that compute the same function (or, for ``deep``, one of matched clean
error) but whose matched hidden features are laid out differently, the
*targets* of the feature term:

* ``units``: the hidden units ``h = relu(W1 x + b1)`` of a trained one-hidden-layer ReLU teacher;
* ``permuted units``: ``P h`` for a random permutation ``P`` (a relabelling: the null control);
* ``rot<theta>``: ``R h`` with ``R = exp(theta log Q)``, ``Q`` a random rotation of ``SO(m)``
  (reached at ``theta = 1``); the head ``W2 R^T`` keeps the function exact, and the features can be negative;
* ``mix<k>``: ``M h`` with ``M >= 0`` invertible, each row mixing ``k`` units (features stay >= 0);
* ``deep``: the last hidden layer ``h2`` of a two-hidden-layer teacher trained on the same clean data,
  stopped where its clean error first reaches the one-hidden-layer teacher's (:func:`fit_to_error`).

Three ways of matching a target ``t`` (the *matching* of a method):

* ``post``: the student's post-ReLU features, ``||h1(x~) - t(x)||^2`` (the ST of the other chapters);
* ``pre``: the student's pre-activations ``z1 = W1 x~ + b1`` against the teacher's pre-activations
  ``s z(x)`` (units) or ``s R z(x)`` (rotated), ``s`` one scalar per teacher; the targets are linear in
  the student's first layer, so every one of them is reachable;
* ``connector``: ``||C h1(x~) - t(x)||^2`` with a connector ``C`` (``m x m``) learned with the student,
  as in FitNets (Romero et al. 2015); :class:`MatchingStudent`.

Every target is scaled (one scalar per teacher, absorbed by the head) to the mean energy
``E ||h(x)||^2`` of the units, so ``lam`` means the same for all. Run ``k`` (the ``seed`` column) has its
own teachers, permutation, rotation and mix, so intervals over runs cover the teacher's randomness too.
Streams below the chapter's root ``rng``: teacher ``k`` trains on ``rng.child("teacher_data", k)`` (the
shallow and the deep teacher of ``k`` on the same set, apart from every student's data) from
``rng.child("teacher_init", k, depth)``; the deep teacher is stopped on the clean set
``rng.child("reference", 2)``; the rotation is ``rng.child("rotation", k)`` (one ``Q`` for every
``theta``), the permutation ``rng.child("rotation", k, 1)`` and the mix of ``j >= 2`` units
``rng.child("rotation", k, j)``. Student run ``k`` trains on ``rng.child("student_data", k)`` from
``rng.child("student_init", k)`` (its connector from ``rng.child("student_init", k, 1)``), and is
measured on ``rng.child("validation", k)`` and ``rng.child("test", k)``; the fresh noise of noise
augmentation comes from ``rng.child("noise", k)``. The methods (:func:`methods`) run on the study runner
(:func:`run_students`, :mod:`stlearn.study`), lam on the relative scale of :mod:`stlearn.losses`.

All post-ReLU and connector targets are stored as two-hidden-layer networks and read through
``FrozenTeacher(source={layer: "h2"}, transform={layer: T})`` with one ``T`` per student member: the
shallow teacher is embedded with an identity second layer (``relu(h1) = h1``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.stats
import torch
from torch import nn

from .. import protocol, study
from ..data import Samples, draw_members, random_orthonormal
from ..losses import FrozenTeacher
from ..models import MLP, FeatureNet, member, member_normal, select_members, stack_members
from ..stats import collapse_intervals, format_ci, holm, mean_ci, rounded_interval
from ..streams import Stream, as_stream, as_streams
from ..teachers import fit_clean_teacher
from ..train import TrainConfig, autograd_gradients, evaluate, make_optimizer
from ..validation import ParameterError
from . import nonlinear as nl

Tensor = torch.Tensor
MATCHINGS = ("post", "pre", "connector")
PRIMARY = "ST"  # post-ReLU ST with the teacher's own units: the method of the book's families
BASELINE_NAMES = {"base": "the base student", "weight decay": "weight decay",
                  "fine-tuned teacher": "the fine-tuned teacher", "teacher as is": "the teacher applied as it is"}


# --------------------------------------------------------------------------- feature transforms
def rotation(m: int, theta: float, rng: Stream | int) -> Tensor:
    """``exp(theta log Q)``, ``Q`` a random rotation of ``SO(m)`` from ``rng``: the identity at 0, ``Q`` at 1 (float64).

    The same stream gives the same ``Q`` for every ``theta``: the rotations of one teacher lie on one path.
    """
    q = random_orthonormal(m, m, rng)
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    log_q = np.real(scipy.linalg.logm(q.numpy()))
    return torch.linalg.matrix_exp(theta * torch.from_numpy((log_q - log_q.T) / 2))  # skew part: exactly orthogonal


def permutation(m: int, rng: Stream | int) -> Tensor:
    """A random ``m x m`` permutation matrix (float64), uniform over the permutations."""
    order = torch.randperm(m, generator=as_stream(rng).generator())
    return torch.eye(m, dtype=torch.float64)[order]


def nonnegative_mix(m: int, k: int, rng: Stream | int, max_condition: float = 100.0) -> Tensor:
    """A random invertible ``M >= 0`` of shape ``(m, m)``: row ``j`` mixes unit ``j`` and ``k - 1`` others.

    Weights are uniform in ``[0.5, 1.5]``, drawn again until the condition number
    is below ``max_condition`` (so the head ``W2 M^-1`` that keeps the function is tame).
    """
    gen = as_stream(rng).generator()
    for _ in range(100):
        mix = torch.zeros(m, m, dtype=torch.float64)
        for j in range(m):
            others = torch.randperm(m - 1, generator=gen)[: k - 1]
            cols = torch.cat([torch.tensor([j]), others + (others >= j).long()])
            mix[j, cols] = 0.5 + torch.rand(k, generator=gen, dtype=torch.float64)
        if torch.linalg.cond(mix) < max_condition:
            return mix
    raise ValueError(f"no non-negative mix of {k} units with condition < {max_condition} for width {m}")


# --------------------------------------------------------------------------- teachers
def teacher_ensemble(task, hidden: Sequence[int], n_teacher: int, rng: Stream | int, seeds: Sequence[int],
                     steps: int, device=None) -> MLP:
    """One teacher per run index ``k`` in ``seeds``, trained by Adam on its own ``n_teacher`` clean samples.

    Teacher ``k`` trains on ``rng.child("teacher_data", k)`` from ``rng.child("teacher_init", k, depth)``,
    ``depth = len(hidden)``: teachers of different depths for the same ``k`` share their data, not their init.
    """
    rng = as_stream(rng)
    model = MLP([task.d, *hidden, task.d_out], members=len(seeds),
                rng=[rng.child("teacher_init", k, len(hidden)) for k in seeds], device=device)
    data = [rng.child("teacher_data", k) for k in seeds]
    return fit_clean_teacher(model, task, n_teacher, data, nl.teacher_config(steps)).model


def fit_to_error(model: MLP, data: Samples, reference: Samples, target: Tensor, max_steps: int, every: int = 1,
                 lr: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Adam on the clean inputs of ``data``; member ``e`` keeps its weights of the first check (every ``every``
    steps) where its clean error on ``reference`` is at most ``target[e]``.

    A member that never gets there keeps its weights of lowest error. Returns, per member, the step kept
    and its error on ``reference`` there. The teachers' errors are thus matched on a set of their own.
    """
    params = list(model.parameters())
    opt = make_optimizer(params, TrainConfig(optimizer="adam", lr=lr, progress=False))
    clean = Samples(data.clean, data.clean, data.y)
    kept = [p.detach().clone() for p in params]
    target = target.to(params[0])
    best = torch.full_like(target, float("inf"))
    done = torch.zeros_like(target, dtype=torch.bool)
    step_kept = torch.zeros_like(target, dtype=torch.long)
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        autograd_gradients(model, clean, None, 0.0, [], "mse")
        opt.step()
        if step % every and step != max_steps:
            continue
        error = evaluate(model, reference)["clean"]
        take = ~done & ((error <= target) | (error < best))
        with torch.no_grad():
            for k, p in zip(kept, params):
                k.copy_(torch.where(take.reshape((-1,) + (1,) * (p.dim() - 1)), p, k))
        best = torch.where(take, error, best)
        step_kept = torch.where(take, torch.full_like(step_kept, step), step_kept)
        done |= error <= target
        if bool(done.all()):
            break
    with torch.no_grad():
        for k, p in zip(kept, params):
            p.copy_(k)
    return step_kept.cpu().numpy(), best.cpu().numpy()


def embed_shallow(shallow: MLP) -> MLP:
    """A one-hidden-layer ensemble as a two-hidden-layer one with an identity second layer: ``h2 = h1``."""
    d, m, out = shallow.widths
    like = shallow.layers[0].weight
    deep = MLP([d, m, m, out], members=shallow.members, device=like.device, dtype=like.dtype)
    with torch.no_grad():
        for dst, src in ((deep.layers[0], shallow.layers[0]), (deep.layers[2], shallow.layers[1])):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
        deep.layers[1].weight.copy_(torch.eye(m).expand_as(deep.layers[1].weight))
        deep.layers[1].bias.zero_()
    return deep


def last_hidden(model: MLP, x: Tensor) -> Tensor:
    """The last hidden layer on clean ``x``, in float64."""
    with torch.no_grad():
        feats = model(x, return_features=True)[1]
    return feats[model.feature_names[-1]].double()


def pre_activation(model: MLP, x: Tensor) -> Tensor:
    """The first layer's pre-activation ``W1 x + b1`` on clean ``x``, in float64."""
    with torch.no_grad():
        return model.layers[0](x).double()


def scale_last_hidden(model: MLP, factor: Tensor) -> None:
    """Multiply member ``e``'s last hidden layer by ``factor[e] > 0`` and divide its head by it (same function)."""
    f = factor.to(model.layers[-1].weight).reshape(-1, 1, 1)
    with torch.no_grad():
        model.layers[-2].weight.mul_(f)
        model.layers[-2].bias.mul_(f)
        model.layers[-1].weight.div_(f)


class PreActivations(nn.Module):
    """A view of a network whose one feature is its first layer's pre-activation, ``{"z1": W1 x + b1}``."""

    def __init__(self, model: FeatureNet):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, return_features: bool = False):
        out = self.model(x)
        return (out, {"z1": self.model.layers[0](x)}) if return_features else out


@dataclass
class Teachers:
    """Per (variant, run index ``k``): which stored network and which transform of its ``h2`` is matched.

    ``pre_scale[k]``: the scalar that brings teacher ``k``'s pre-activations to the units' energy.
    ``errors``: per run index, the clean test errors of the shallow and the deep teacher, the deep
    teacher's kept step and the errors on the matching set.
    """

    names: list[str]
    models: MLP                          # every teacher, stacked, as a two-hidden-layer network
    index: dict[tuple[str, int], int]    # (variant, k) -> member of ``models``
    transform: dict[tuple[str, int], Tensor]
    pre_scale: dict[int, float]
    clean_error: dict[str, float]        # mean over the run indices
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)

    def features(self, name: str, k: int, x: Tensor) -> Tensor:
        return last_hidden(member(self.models, self.index[name, k]), x) @ self.transform[name, k].T

    def frozen(self, runs: Sequence[tuple[str, int]], layer: str = "h1") -> FrozenTeacher:
        """A frozen ensemble teacher whose member ``e`` gives student layer ``layer`` the target of variant
        ``runs[e][0]`` of run index ``runs[e][1]``."""
        picked = select_members(self.models, [self.index[r] for r in runs])
        transform = torch.stack([self.transform[r] for r in runs]).to(picked.layers[0].weight)
        return FrozenTeacher(picked, transform={layer: transform}, source={layer: "h2"})

    def start_from_units(self, students: MLP, positions: Sequence[int], seeds: Sequence[int]) -> None:
        """Set student member ``positions[j]`` (one hidden layer) to the weights of run ``seeds[j]``'s units
        teacher, in place: its first and last layer, the stored network's middle identity dropped."""
        index = [self.index["units", k] for k in seeds]
        with torch.no_grad():
            for dst, src in ((students.layers[0], self.models.layers[0]), (students.layers[1], self.models.layers[2])):
                dst.weight[list(positions)] = src.weight[index].to(dst.weight)
                dst.bias[list(positions)] = src.bias[index].to(dst.bias)

    def frozen_pre(self, runs: Sequence[tuple[str, int]]) -> FrozenTeacher:
        """Like :meth:`frozen` for the pre-activations ``z1``: target ``s_k T z(x)`` of the shallow teacher ``k``."""
        deep = [r for r in runs if r[0] == "deep"]
        if deep:
            raise ParameterError(f"pre-activation targets exist for the one-hidden-layer teacher only; got {deep[0]}")
        picked = select_members(self.models, [self.index[r] for r in runs])
        transform = torch.stack([self.pre_scale[k] * self.transform[name, k] for name, k in runs])
        return FrozenTeacher(PreActivations(picked), transform={"z1": transform.to(picked.layers[0].weight)})


def variant_name(theta: float) -> str:
    return "units" if theta == 0 else f"rot{theta:g}"


def label(name: str) -> str:
    """A variant's or a method's name in words, for the reader: ``rot0.5`` -> "rotation θ = 0.5", ``mix3`` ->
    "mixes of 3 units", ``connector: rot1`` -> "connector: rotation θ = 1"; other names are words already."""
    prefix, sep, rest = name.rpartition(": ")
    if rest.startswith("rot"):
        rest = f"rotation θ = {rest[3:]}"
    elif rest.startswith("mix") and rest[3:].isdigit():
        rest = f"mixes of {rest[3:]} units"
    return prefix + sep + rest


def make_teachers(task, width: int, n_teacher: int, steps: int, rng: Stream | int, seeds: Sequence[int],
                  thetas: Sequence[float], mix_units: Sequence[int], deep_steps: int, x_ref: Tensor, clean_test,
                  match_set: Samples | None = None, device=None) -> Teachers:
    """Every variant's teacher for every run index in ``seeds``, targets scaled to the units' energy on ``x_ref``.

    ``deep_steps = 0`` leaves out the ``deep`` variant; otherwise the deep teacher of run ``k`` trains for at
    most ``deep_steps`` Adam steps and is stopped where its clean error on ``match_set`` first reaches the
    shallow teacher's (:func:`fit_to_error`). Streams as in the module docstring.
    """
    rng = as_stream(rng)
    seeds = [int(k) for k in seeds]
    shallow = teacher_ensemble(task, [width], n_teacher, rng, seeds, steps, device)
    shallow_error = evaluate(shallow, clean_test)["clean"].cpu().numpy()
    embedded = embed_shallow(shallow)
    units = last_hidden(embedded, x_ref)
    energy = units.pow(2).sum(-1).mean(-1)                                            # per teacher
    pre_energy = pre_activation(embedded, x_ref).pow(2).sum(-1).mean(-1)
    eye = torch.eye(width, dtype=torch.float64)
    names, index, transform, errors = [], {}, {}, {}

    def add(name: str, make) -> None:
        names.append(name)
        errors[name] = float(shallow_error.mean())  # the head W2 T^-1 keeps the function
        for e, k in enumerate(seeds):
            index[name, k], transform[name, k] = e, make(e, k)

    for theta in thetas:
        add(variant_name(theta), lambda e, k, theta=theta: rotation(width, theta, rng.child("rotation", k))
            if theta else eye)
        if theta == 0:
            add("permuted units", lambda e, k: permutation(width, rng.child("rotation", k, 1)))
    for j in mix_units:
        def mixed(e, k, j=j):
            mix = nonnegative_mix(width, j, rng.child("rotation", k, j))
            return (energy[e] / (units[e] @ mix.T).pow(2).sum(-1).mean()).sqrt() * mix
        add(f"mix{j}", mixed)
    table = pd.DataFrame({"seed": seeds, "shallow_clean": shallow_error})
    parts = [embedded]
    if deep_steps:
        if match_set is None:
            raise ParameterError("match_set (clean samples to match the teachers' errors on) is needed with deep_steps")
        data = draw_members(task, n_teacher, [rng.child("teacher_data", k) for k in seeds], device=device)
        deep = MLP([task.d, width, width, task.d_out], members=len(seeds),
                   rng=[rng.child("teacher_init", k, 2) for k in seeds], device=device)
        shallow_match = evaluate(shallow, match_set)["clean"]
        deep_step, deep_match = fit_to_error(deep, data, match_set, shallow_match, deep_steps)
        # the level both reach: the shallow teacher's, or the deep one's best where that is higher; the same
        # shallow teacher (same init, data and Adam path) is stopped where it first reaches that level
        level = torch.maximum(shallow_match, torch.as_tensor(deep_match).to(shallow_match))
        matched = MLP([task.d, width, task.d_out], members=len(seeds),
                      rng=[rng.child("teacher_init", k, 1) for k in seeds], device=device)
        matched_step, matched_match = fit_to_error(matched, data, match_set, level, steps)
        for net in (deep, matched):
            net_energy = last_hidden(net, x_ref).pow(2).sum(-1).mean(-1)
            scale_last_hidden(net, (energy / net_energy).sqrt())
        deep_error = evaluate(deep, clean_test)["clean"].cpu().numpy()
        matched_error = evaluate(matched, clean_test)["clean"].cpu().numpy()
        for name, err, offset in (("deep", deep_error, len(seeds)), ("matched units", matched_error, 2 * len(seeds))):
            names.append(name)
            errors[name] = float(err.mean())
            for e, k in enumerate(seeds):
                index[name, k], transform[name, k] = offset + e, eye
        parts += [deep, embed_shallow(matched)]
        table = table.assign(deep_clean=deep_error, matched_clean=matched_error, deep_step=deep_step,
                             matched_step=matched_step, shallow_match=shallow_match.cpu().numpy(),
                             deep_match=deep_match, matched_match=matched_match)
    pre_scale = {k: float((energy[e] / pre_energy[e]).sqrt()) for e, k in enumerate(seeds)}
    return Teachers(names, stack_members(parts), index, transform, pre_scale, errors, table)


def check_matched(ratio: float, tolerance: float, where: str) -> None:
    """Raise unless the deep and the matched teachers' mean clean errors (``ratio``, deep over matched, on
    ``where``) agree within ``tolerance`` (relative), naming a ``match_tolerance`` that the teachers meet."""
    gap = abs(ratio - 1)
    if gap > tolerance:
        met = math.ceil(gap * 1.2 * 100) / 100
        raise ParameterError(f"the deep and the matched teachers' mean clean errors on {where} differ by {gap:.3f} "
                             f"(relative), more than match_tolerance = {tolerance:g}; raise match_tolerance (these "
                             f"teachers meet {met:g}) or deep_steps, so that the deep teacher gets closer")


def teacher_checks(teachers: Teachers, clean_test: Samples, x: Tensor) -> dict:
    """What the reader is told about the teachers: the zero predictor's clean error, the largest change of a
    teacher's output under its re-decomposition on ``x`` (``gap``), the deep and the matched teachers' mean
    clean errors (ratio on the test set, ``match_ratio``; on the matching set, ``matched_on``), in how many runs
    the deep teacher reached the shallow one's error (``reached``), and all of it in words (``text``)."""
    errors = teachers.errors
    out = {"zero_error": clean_test.y.pow(2).sum(-1).mean().item(), "gap": function_gap(teachers, x)}
    text = ("clean test error of each target's teachers (mean over runs): "
            + ", ".join(f"{label(name)} {err:.4f}" for name, err in teachers.clean_error.items())
            + f"; zero predictor {out['zero_error']:.4f}")
    if "deep_clean" in errors:
        out.update(match_ratio=float(errors.deep_clean.mean() / errors.matched_clean.mean()),
                   matched_on=float(errors.deep_match.mean() / errors.matched_match.mean()),
                   run_gap=float((errors.deep_clean / errors.matched_clean - 1).abs().max()),
                   reached=int((errors.deep_match <= errors.shallow_match).sum()))
        text += (f"\ndeep teacher / matched shallow teacher, mean clean errors: {out['matched_on']:.3f} on the "
                 f"matching set, {out['match_ratio']:.3f} on the test set (largest gap in one run "
                 f"{out['run_gap']:.2f}); the deep teacher reached the shallow one's error in {out['reached']} of "
                 f"{len(errors)} runs")
    out["text"] = text + f"\nlargest change of a teacher's output under its re-decomposition: {out['gap']:.1e}"
    return out


def function_gap(teachers: Teachers, x: Tensor) -> float:
    """Largest ``|f_T(x) - f(x)|`` over the transformed teachers, ``f_T = (W2 T^-1)(T h) + b2``: zero up to rounding."""
    gap = 0.0
    for (name, k), trans in teachers.transform.items():
        model = member(teachers.models, teachers.index[name, k])
        head, bias = model.layers[-1].weight.double(), model.layers[-1].bias.double()
        f_t = (last_hidden(model, x) @ trans.T) @ torch.linalg.inv(trans).T @ head.T + bias
        gap = max(gap, (f_t - model(x).double()).abs().max().item())
    return gap


# --------------------------------------------------------------------------- complexity of a feature
def single_unit_misfit(x: Tensor, t: Tensor, steps: int = 300, lr: float = 0.05) -> Tensor:
    """Per column of ``t`` ``(n, K)``: ``min_{w,b} mean (relu(w.x + b) - t)^2 / mean t^2``, all ``K`` at once.

    Two starts per column, the better kept: the least-squares affine fit of
    ``t`` on all samples, and on the samples where ``t > 0`` (exact when ``t``
    is one ReLU unit). Adam on the batch of weights ``(2K, d + 1)``.
    """
    x, t = x.double(), t.double()
    n, k = t.shape
    x1 = torch.cat([x, torch.ones(n, 1, dtype=x.dtype, device=x.device)], 1)
    ls_all = torch.linalg.lstsq(x1, t).solution.T
    active = (t > 1e-6 * t.abs().amax(0)).double()
    gram = torch.einsum("nk,ni,nj->kij", active, x1, x1) + 1e-6 * torch.eye(x1.shape[1], dtype=x.dtype,
                                                                            device=x.device)
    ls_active = torch.linalg.solve(gram, torch.einsum("nk,ni,nk->ki", active, x1, t))
    dtype = torch.get_default_dtype()  # the networks' (float64 in the regression runs)
    x1, target = x1.to(dtype), t.T.to(dtype).repeat(2, 1)
    w = torch.cat([ls_all, ls_active]).to(dtype).requires_grad_(True)
    opt = make_optimizer([w], TrainConfig(optimizer="adam", lr=lr, progress=False))
    for _ in range(steps):
        loss = (torch.relu(w @ x1.T) - target).pow(2).mean(1)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        err = (torch.relu(w @ x1.T) - target).pow(2).mean(1).reshape(2, k).amin(0).double()
    return err / t.pow(2).mean(0).clamp_min(1e-12)


def complexity(teachers: Teachers, x: Tensor, runs: Sequence[int], steps: int = 300,
               names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per (variant, run index, feature), for the teachers of ``runs``: energy and single-unit misfit.

    Dead features (zero on every ``x``) are left out.
    """
    keys = [(name, k) for name in (names or teachers.names) for k in runs]
    feats = torch.stack([teachers.features(name, k, x) for name, k in keys])
    n_keys, n, m = feats.shape
    misfit = single_unit_misfit(x, feats.permute(1, 0, 2).reshape(n, n_keys * m), steps).reshape(n_keys, m)
    energy = feats.pow(2).mean(1)
    return pd.DataFrame([{"variant": name, "teacher": k, "feature": j, "energy": energy[i, j].item(),
                          "misfit": misfit[i, j].item()}
                         for i, (name, k) in enumerate(keys) for j in range(m) if energy[i, j] > 1e-10])


def complexity_table(features: pd.DataFrame) -> pd.DataFrame:
    """Per variant: the mean misfit over features, and the share of feature energy one unit cannot reproduce."""
    g = features.assign(missed=features.misfit * features.energy).groupby("variant", sort=False)
    return pd.DataFrame({"misfit": g.misfit.mean(), "energy_missed": g.missed.sum() / g.energy.sum()})


# --------------------------------------------------------------------------- students
class MatchingStudent(FeatureNet):
    """The one-hidden-layer ReLU student ``W2 relu(W1 x + b1) + b2`` with more features to match.

    Its features are ``h1`` (post-ReLU), ``z1 = W1 x + b1`` (the pre-activation) and, with
    ``connector=True``, ``c1 = C h1`` for a learned ``m x m`` connector ``C`` (FitNets' regressor),
    initialized with ``N(0, 1/m)`` entries from ``connector_rng``. ``W1, b1, W2, b2`` are drawn exactly as
    :class:`~stlearn.models.MLP` draws them from ``rng``, so a member starts where the base student of its
    run starts. It is not an ``MLP``: :func:`stlearn.fast.fused.supports` is false for it and the trainer
    differentiates it by autograd.
    """

    def __init__(self, widths: Sequence[int], *, connector: bool = False, connector_rng: Stream | int | list = 0,
                 members: int | None = None, rng: Stream | int | Sequence[Stream] = 0, device=None,
                 dtype: torch.dtype | None = None, init_scale: float = 1.0):
        if len(widths) != 3:
            raise ParameterError(f"widths must be [d, m, d_out] (one hidden layer); got {list(widths)}")
        super().__init__(widths, members=members, init_scale=init_scale, bias=True, rng=rng, device=device,
                         dtype=dtype)
        self.activation = nn.ReLU()
        self.connector = None
        if connector:
            m = self.widths[1]
            weight = member_normal((m, m), as_streams(connector_rng, members, "connector_rng"), 0,
                                   1.0 / math.sqrt(m), members)
            self.connector = nn.Parameter(weight.to(self.layers[0].weight))

    @property
    def feature_names(self) -> list[str]:
        return ["h1", "z1"] + (["c1"] if self.connector is not None else [])

    def forward(self, x: Tensor, return_features: bool = False):
        z = self.layers[0](x)
        h = self.activation(z)
        out = self.layers[1](h)
        if not return_features:
            return out
        features = {"h1": h, "z1": z}
        if self.connector is not None:
            features["c1"] = torch.matmul(h, self.connector.transpose(-1, -2))
        return out, features


@dataclass(frozen=True)
class Member(protocol.Run):
    """A run of the chapter: the protocol's knobs, which target is matched and how, and noise augmentation.

    While ``lam = 0`` the target and the matching do nothing: every ST method's ``lam = 0`` run is the base
    run (:meth:`stlearn.protocol.Run.trains_as`), trained once by the study runner.
    """

    INERT = {"lam": ("target", "matching")}
    target: str = "units"    # the teacher variant whose features are matched
    matching: str = "post"   # "post", "pre" or "connector"
    fresh_noise: float | None = None
    init: str = "student"    # "student": the run's own init; "teacher": its units teacher's weights


def method_of(variant: str) -> str:
    """The post-ReLU ST method that matches ``variant``'s features (the units': :data:`PRIMARY`)."""
    return PRIMARY if variant == "units" else variant


def st_methods(teachers: Teachers, full: str, connector_targets: Sequence[str] = ("units",)) -> list[tuple]:
    """The ST methods, ``(name, target, matching)``: every post-ReLU variant (the units' is ``ST``, the
    method the book's families compare), and the pre-activation and connector controls for the units and the
    rotation ``full`` (plus ``connector_targets``)."""
    methods = [(method_of(name), name, "post") for name in teachers.names]
    methods += [(f"pre-activation: {t}", t, "pre") for t in ("units", full)]
    methods += [(f"connector: {t}", t, "connector") for t in dict.fromkeys([*connector_targets, full])]
    return methods


def methods(lams: Sequence[float], decays: Sequence[float], st: Sequence[tuple], sigma: float,
            aug_levels: Sequence[float] = ()) -> tuple[study.Method, ...]:
    """The chapter's methods for the study runner: base, weight decay and the fine-tuned (units) teacher over
    ``decays``, the teacher as is (measured), every ST method of ``st`` over ``lams``, ST as a complement (the
    units' feature term added to tuned weight decay and to the fine-tuned teacher, at what each chose in the
    run) and, with ``aug_levels``, noise augmentation at ``aug_levels`` x ``sigma`` and ST + noise augmentation
    (the units, at the level augmentation chose in the run) over ``lams``."""
    check_grids(lams, decays, aug_levels)
    lam = dict(label=lambda v: f"λ = {v:g}")
    wd = dict(label=lambda v: f"weight decay {v:g}")
    decays = [float(w) for w in decays]
    out = [study.Method("base", ({"config": "none"},)),
           study.grid("weight decay", "weight_decay", decays, **wd),
           study.grid("fine-tuned teacher", "weight_decay", decays, init="teacher", **wd),
           study.Method("teacher as is", ({"config": "none"},), measured=True)]
    out += [study.grid(name, "lam", lams, target=target, matching=matching, **lam) for name, target, matching in st]
    out += study.complements(lams, **lam)
    if aug_levels:
        out += [study.grid("noise augmentation", "fresh_noise", [a * sigma for a in aug_levels],
                           label=lambda v: f"s = {v / sigma:g}σ", family=study.NOISE_MODEL),
                study.grid("ST + noise augmentation", "lam", lams, fresh_noise=sigma, family=study.NOISE_MODEL,
                           follows="noise augmentation", inherits=["fresh_noise"], **lam)]
    return tuple(out)


def check_grids(lams: Sequence[float], decays: Sequence[float], aug_levels: Sequence[float] = ()) -> None:
    """``lams`` the ST grid (0 first, increasing); ``decays`` distinct; ``aug_levels`` empty or holding 1
    (ST + noise augmentation's level). Equal budgets: :meth:`stlearn.study.Study.budget`."""
    study.check_lam_grid(lams)
    if len(set(decays)) != len(decays):
        raise ParameterError(f"decays must be distinct; got {list(decays)}")
    if len(aug_levels) and 1.0 not in aug_levels:
        raise ParameterError(f"aug_levels must be empty or hold 1 (fresh noise at sigma); got {list(aug_levels)}")


def the_study(lams, decays, st, sigma: float, aug_levels, seeds) -> study.Study:
    """:func:`methods` on the runs ``seeds``, compared in the book's three families."""
    return study.Study(methods(lams, decays, st, sigma, aug_levels), tuple(int(k) for k in seeds), Member)


@dataclass
class Executor:
    """How to train (or measure) one group of the chapter's runs, for :func:`stlearn.study.run_study`.

    Post-ReLU students train on the fast path; pre-activation and connector students
    (:class:`MatchingStudent`) by autograd. Run ``k``'s sets, init, fresh noise and training are
    ``students``' (:class:`~.nonlinear.Students`).
    """

    students: nl.Students
    teachers: Teachers
    width: int

    @staticmethod
    def group_of(run: Member) -> str:
        """The ensemble a run trains in, from what it trains with (:meth:`Member.trains_as`): every run at
        ``lam = 0`` is a post-ReLU student, whatever matching its method names."""
        if run.method == "teacher as is":
            return "measured"
        knobs = dict(run.trains_as())
        return knobs["matching"] + (", fresh noise" if knobs["fresh_noise"] is not None else "")

    def execute(self, group: str, runs: Sequence[Member]) -> pd.DataFrame:
        s, teachers = self.students, self.teachers
        seeds = [m.seed for m in runs]
        if group == "measured":  # the shallow teacher applied as it is
            return s.measure(select_members(teachers.models, [teachers.index["units", k] for k in seeds]), seeds)
        widths, inits = [s.task.d, self.width, s.task.d_out], [s.rng.child("student_init", k) for k in seeds]
        targets, matching = [(m.target, m.seed) for m in runs], group.split(",", 1)[0]
        if matching == "post":
            model = s.network(self.width, seeds)
            teacher, layer = teachers.frozen(targets), "h1"
            from_teacher = [e for e, m in enumerate(runs) if m.init == "teacher"]
            teachers.start_from_units(model, from_teacher, [seeds[e] for e in from_teacher])
        elif matching == "pre":
            model = MatchingStudent(widths, members=len(runs), rng=inits, device=s.device)
            teacher, layer = teachers.frozen_pre(targets), "z1"
        else:
            model = MatchingStudent(widths, connector=True, members=len(runs), rng=inits, device=s.device,
                                    connector_rng=[s.rng.child("student_init", k, 1) for k in seeds])
            teacher, layer = teachers.frozen(targets, "c1"), "c1"
        return s.train(model, runs, teacher=teacher, layers=[layer]).history


def run_students(task, teachers: Teachers, s: study.Study, width: int, n_train: int, n_val: int, n_test: int,
                 config: TrainConfig, rng: Stream | int, device=None,
                 rate_fraction: float = nl.RATE_FRACTION) -> study.StudyResult:
    """The study ``s`` (:func:`the_study`) by the study runner: budgets checked first, each distinct run
    trained once (one ensemble per matching and noise), stopped and selected on validation, compared."""
    students = nl.Students(task, n_train, n_val, n_test, config, as_stream(rng), device, rate_fraction)
    executor = Executor(students, teachers, width)
    return study.run_study(s, executor.execute, executor.group_of)


# --------------------------------------------------------------------------- comparisons
def selected_summary(selected: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Per method: the mean and 95% interval of the validation-selected test error, the gain over base
    (paired by run), the mean validation error and the configurations chosen (most often first)."""
    return protocol.summary(selected, methods, base="base")


DIGITS = 3  # decimals of every test error and paired gain the chapter prints (differences of about 0.005 and up)
AT_BASE = "— (λ = 0 chosen in every run: the base student)"  # an ST method that validation never gave a feature term


def at_base(result: study.StudyResult, st: Sequence[tuple]) -> set[str]:
    """The ST methods of ``st`` (:func:`st_methods`) whose validation chose lambda = 0 in every run: each is then
    the base student itself, and its gain over base is no measurement."""
    return {name for name, _, _ in st if bool((result.selected_lams(name) == 0).all())}


def gain_words(results: pd.DataFrame, method: str, base_like: set[str] = frozenset(), digits: int = DIGITS) -> str:
    """``method``'s paired gain over the base student for the prose, its interval and what it resolves:
    "+0.005 [-0.016, 0.025], no resolvable difference"; :data:`AT_BASE` for a method of ``base_like``."""
    if method in base_like:
        return AT_BASE
    row = results.set_index("method").loc[method]
    g = rounded_interval({"gain": row.gain, "low": row.gain_low, "high": row.gain_high}, digits)
    return protocol.interval_text(g, digits) + ", " + protocol.by_sign(
        g, "resolvably better than the base student", "resolvably worse than the base student",
        "no resolvable difference")


def results_table(selected: pd.DataFrame, results: pd.DataFrame, base_like: set[str] = frozenset()) -> pd.DataFrame:
    """:func:`selected_summary` for the reader: test error as ``mean [95% interval]`` and the gain over base signed,
    ``+g [low, high]`` (above 0: better than base; the base student's own row "—", a method of ``base_like``
    :data:`AT_BASE`), :data:`DIGITS` decimals, every name in words (:func:`label`)."""
    gain = "method vs base (above 0: method better)"
    cols = [gain, f"{gain}_low", f"{gain}_high"]
    shown = results.rename(columns={"gain": gain, "gain_low": cols[1], "gain_high": cols[2]})
    shown.loc[results.method == "base", cols] = np.nan
    gains = collapse_intervals(shown[cols], DIGITS, signed=True).iloc[:, 0]
    gains[results.method.isin(base_like).to_numpy()] = AT_BASE
    return pd.DataFrame({"method": results.method.map(label),
                         "test error [95% interval]": [format_ci(selected[selected.method == m].test_error, DIGITS)
                                                       for m in results.method],
                         f"{gain} [95% interval]": gains,
                         "validation error": results.val_error.round(DIGITS),
                         "configurations chosen (runs)": results.chosen})


def lam_curve(result: study.StudyResult, methods=(PRIMARY, "ST + noise augmentation")) -> pd.DataFrame:
    """Test error (mean [95% interval] over runs) of ``methods`` at each fixed lam, validation-stopped."""
    rows = result.lam_rows(methods)
    out = rows.groupby(["lam", "method"]).test_error.apply(lambda v: format_ci(v, DIGITS)).unstack("method")
    return out.reindex(columns=[m for m in methods if m in out]).rename_axis("λ").reset_index()


def control_methods(full: str) -> tuple[str, str, str, str]:
    """The control methods' names: pre-activation and connector ST with the units and with ``full``."""
    return "pre-activation: units", f"pre-activation: {full}", "connector: units", f"connector: {full}"


def control_rows(full: str) -> tuple[dict[str, str], list[tuple]]:
    """The controls' comparisons for :func:`comparison_table`, and their names by key."""
    pre_units, pre_full, conn_units, conn_full = control_methods(full)
    # each row is the gain of the first named over the second (above 0: the first better); the two "reduction"
    # rows are the rotation's cost after the ReLU minus its cost under the other matching, run by run (the cost is
    # the units' gain over the rotation), so above 0 the other matching makes the rotation cheaper: it is better
    names = {"perm": "null: units vs permuted units",
             "conn": f"null, through a connector: units vs {label(full)}",
             "pre": f"pre-activations: units vs {label(full)}",
             "less_pre": "pre-activation vs post-ReLU: reduction of the rotation's cost",
             "less_conn": "connector vs post-ReLU: reduction of the rotation's cost",
             "direct": "units: post-ReLU vs through a connector",
             "pre_units": "units: pre-activation vs post-ReLU",
             "deep": "matched shallow units vs the deep teacher"}
    rows = [(names["perm"], (PRIMARY, "permuted units")), (names["conn"], (conn_units, conn_full)),
            (names["pre"], (pre_units, pre_full)), (names["less_pre"], (PRIMARY, full), (pre_units, pre_full)),
            (names["less_conn"], (PRIMARY, full), (conn_units, conn_full)), (names["direct"], (PRIMARY, conn_units)),
            (names["pre_units"], (pre_units, PRIMARY)), (names["deep"], ("matched units", "deep"))]
    return names, rows


def comparison_table(selected: pd.DataFrame, rows: Sequence[tuple]) -> pd.DataFrame:
    """One row per comparison, with its mean, 95% interval, two-sided p-value (one-sample t over runs) and
    Holm-adjusted p over the rows.

    Each row is ``(name, (method, reference))`` for the paired gain of ``method`` over ``reference``, or
    ``(name, (method, reference), (method2, reference2))`` for the first gain minus the second, run by run.
    """
    records = []
    for name, first, *second in rows:
        diff = protocol.paired(selected, *first)
        if second:
            diff = diff - protocol.paired(selected, *second[0])
        gain, low, high = mean_ci(diff)
        pvalue = float(scipy.stats.ttest_1samp(diff.dropna(), 0.0).pvalue) if diff.notna().sum() > 1 else np.nan
        records.append({"comparison": name, "gain": gain, "low": low, "high": high, "p": pvalue,
                        "runs": int(diff.notna().sum())})
    table = pd.DataFrame(records).set_index("comparison")
    table["holm_p"] = holm(table.p.fillna(1.0))
    return table


def controls_table(controls: pd.DataFrame) -> pd.DataFrame:
    """:func:`comparison_table` for the reader: each paired difference signed, ``+g [low, high]`` (above 0: the
    first named is better), :data:`DIGITS` decimals, with its p-value and Holm's adjusted p."""
    gain = "first vs second (above 0: first better)"
    shown = controls.drop(columns="runs").rename(columns={"gain": gain, "low": f"{gain}_low", "high": f"{gain}_high",
                                                          "holm_p": "Holm p"})
    return collapse_intervals(shown, DIGITS, signed=True)


