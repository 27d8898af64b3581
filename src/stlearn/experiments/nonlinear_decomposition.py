"""Chapter "How the teacher decomposes its knowledge (ReLU networks)".

Teachers that compute the same function (or, for ``deep``, one of about the
same clean error) but whose matched hidden features are decomposed
differently:

* ``units``: the hidden units ``h1`` of a trained one-hidden-layer ReLU teacher;
* ``rot<theta>``: the rotated features ``R h1`` with ``R = exp(theta log Q)``,
  ``Q`` a random rotation of ``SO(m)`` (reached at ``theta = 1``); the head
  ``W2 R^T`` keeps the function exact, and the features can be negative;
* ``mix<k>``: ``M h1`` with ``M >= 0`` invertible, each row mixing ``k`` units
  (features stay >= 0, each a sum of ReLUs; head ``W2 M^-1``);
* ``deep``: the last hidden layer ``h2`` of a two-hidden-layer teacher trained
  on the same clean data.

Every matched feature vector is scaled (one scalar per teacher, absorbed by
the head) to the mean energy ``E ||t(x)||^2`` of ``units``, so ``lam`` means
the same for all variants. Each seed (run index ``k``) has its own teachers,
rotation and mix, so intervals over seeds cover the teacher's randomness too.
Streams below the chapter's root ``rng``: teacher ``k`` trains on
``rng.child("teacher_data", k)`` (the shallow and the deep teacher of ``k``
on the same set, apart from every student's data) from
``rng.child("teacher_init", k, depth)``; its rotation is
``rng.child("rotation", k)`` (one ``Q`` for every ``theta``) and its mix of
``j`` units ``rng.child("rotation", k, j)``; the students' draws are those of
:func:`stlearn.experiments.nonlinear.train_members`.

All teachers are stored as two-hidden-layer networks and matched through
``FrozenTeacher(source={"h1": "h2"}, transform={"h1": T})`` with one ``T``
per student member: the shallow teacher is embedded with an identity second
layer (``relu(h1) = h1``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import torch

from .. import stats
from ..data import random_orthonormal
from ..losses import FrozenTeacher
from ..models import MLP, member, select_members, stack_members
from ..stats import ci_columns
from ..streams import Stream, as_stream
from ..teachers import fit_clean_teacher
from ..train import TrainConfig, evaluate, make_optimizer
from . import nonlinear as nl

Tensor = torch.Tensor


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


def scale_last_hidden(model: MLP, factor: Tensor) -> None:
    """Multiply member ``e``'s last hidden layer by ``factor[e] > 0`` and divide its head by it (same function)."""
    f = factor.to(model.layers[-1].weight).reshape(-1, 1, 1)
    with torch.no_grad():
        model.layers[-2].weight.mul_(f)
        model.layers[-2].bias.mul_(f)
        model.layers[-1].weight.div_(f)


@dataclass
class Teachers:
    """Per (variant, teacher seed ``k``): which stored network and which transform of its ``h2`` is matched."""

    names: list[str]
    models: MLP                          # every teacher, stacked, as a two-hidden-layer network
    index: dict[tuple[str, int], int]    # (variant, k) -> member of ``models``
    transform: dict[tuple[str, int], Tensor]
    clean_error: dict[str, float]        # mean over the teacher seeds

    def features(self, name: str, k: int, x: Tensor) -> Tensor:
        return last_hidden(member(self.models, self.index[name, k]), x) @ self.transform[name, k].T

    def frozen(self, runs: Sequence[tuple[str, int]]) -> FrozenTeacher:
        """A frozen ensemble teacher whose member ``e`` is variant ``runs[e][0]`` of teacher seed ``runs[e][1]``."""
        picked = select_members(self.models, [self.index[r] for r in runs])
        transform = torch.stack([self.transform[r] for r in runs]).to(picked.layers[0].weight)
        return FrozenTeacher(picked, transform={"h1": transform}, source={"h1": "h2"})


def variant_name(theta: float) -> str:
    return "units" if theta == 0 else f"rot{theta:g}"


def make_teachers(task, width: int, n_teacher: int, steps: int, rng: Stream | int, seeds: Sequence[int],
                  thetas: Sequence[float], mix_units: Sequence[int], deep_steps: int, x_ref: Tensor, clean_test,
                  device=None) -> Teachers:
    """Every variant's teacher for every run index in ``seeds``, features scaled to the units' energy on ``x_ref``.

    ``deep_steps = 0`` leaves out the ``deep`` variant. Streams as in the module docstring.
    """
    rng = as_stream(rng)
    shallow = teacher_ensemble(task, [width], n_teacher, rng, seeds, steps, device)
    error = evaluate(shallow, clean_test)["clean"].mean().item()
    embedded = embed_shallow(shallow)
    units = last_hidden(embedded, x_ref)
    energy = units.pow(2).sum(-1).mean(-1)                                            # per teacher seed
    eye = torch.eye(width, dtype=torch.float64)
    names, index, transform, errors = [], {}, {}, {}
    for theta in thetas:
        name = variant_name(theta)
        names.append(name)
        errors[name] = error  # the head W2 R^T keeps the function
        for k, s in enumerate(seeds):
            index[name, k], transform[name, k] = k, rotation(width, theta, rng.child("rotation", s)) if theta else eye
    for j in mix_units:
        name = f"mix{j}"
        names.append(name)
        errors[name] = error  # the head W2 M^-1 keeps the function
        for k, s in enumerate(seeds):
            mix = nonnegative_mix(width, j, rng.child("rotation", s, j))
            scale = (energy[k] / (units[k] @ mix.T).pow(2).sum(-1).mean()).sqrt()
            index[name, k], transform[name, k] = k, scale * mix
    parts = [embedded]
    if deep_steps:
        deep = teacher_ensemble(task, [width, width], n_teacher, rng, seeds, deep_steps, device)
        scale_last_hidden(deep, (energy / last_hidden(deep, x_ref).pow(2).sum(-1).mean(-1)).sqrt())
        names.append("deep")
        errors["deep"] = evaluate(deep, clean_test)["clean"].mean().item()
        for k in range(len(seeds)):
            index["deep", k], transform["deep", k] = len(seeds) + k, eye
        parts.append(deep)
    return Teachers(names, stack_members(parts), index, transform, errors)


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
    x1, target = x1.float(), t.T.float().repeat(2, 1)
    w = torch.cat([ls_all, ls_active]).float().requires_grad_(True)
    opt = make_optimizer([w], TrainConfig(optimizer="adam", lr=lr, progress=False))
    for _ in range(steps):
        loss = (torch.relu(w @ x1.T) - target).pow(2).mean(1)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        err = (torch.relu(w @ x1.T) - target).pow(2).mean(1).reshape(2, k).amin(0).double()
    return err / t.pow(2).mean(0).clamp_min(1e-12)


def complexity(teachers: Teachers, x: Tensor, n_teachers: int, steps: int = 300) -> pd.DataFrame:
    """Per (variant, teacher seed, feature), for the first ``n_teachers`` seeds: energy and single-unit misfit.

    Dead features (zero on every ``x``) are left out.
    """
    keys = [(name, k) for name in teachers.names for k in range(n_teachers)]
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
def train_variant_ensemble(task, teachers: Teachers, width: int, n_train: int, n_test: int, n_val: int, lams,
                           seeds: Sequence[int], config: TrainConfig, rng: Stream | int, device=None) -> pd.DataFrame:
    """One ensemble: a base member per run and an ST member per (variant, lam > 0, run) with run ``k``'s teacher.

    ``seeds`` are the run indices, in the order of the teachers' seeds. The history gets ``variant``
    ("base" for the base members) and ``seed`` (the run index) columns.
    """
    st_lams = [float(l) for l in lams if l > 0]
    runs = [("base", 0.0, k) for k in range(len(seeds))]
    runs += [(name, lam, k) for name, lam, k in itertools.product(teachers.names, st_lams, range(len(seeds)))]
    teacher = teachers.frozen([(teachers.names[0] if name == "base" else name, k) for name, _, k in runs])
    return nl.train_members(task, width, n_train, n_test, n_val, [lam for _, lam, _ in runs],
                            [seeds[k] for _, _, k in runs], teacher, config, rng, device,
                            member_info={"variant": [name for name, _, _ in runs]})


def variant_gains(history: pd.DataFrame, columns=("best", "val_stopped")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Path summaries per (variant, lam, seed), and the ST runs with ``gain_<c>`` = base - ST (same seed)."""
    summary = nl.path_summary(history, by=("variant", "lam", "seed"))
    return summary, stats.paired_gains(summary, columns)  # base members are the lam = 0 ones


def best_lam_table(gains: pd.DataFrame, complexity: pd.DataFrame, names: Sequence[str],
                   column: str = "gain_best") -> pd.DataFrame:
    """Per variant: its complexity, the lam with the largest mean ``column``, and the gains there (95% intervals).

    ``loss_vs_units``: the first variant's gain (at its own best lam) minus this one's, paired by seed.
    """
    mean = gains.groupby(["variant", "lam"])[column].mean()
    at_best = {name: gains[(gains.variant == name) & (gains.lam == mean.loc[name].idxmax())].set_index("seed")
               for name in names}
    ref = at_best[names[0]][column]
    rows = []
    for name in names:
        g = at_best[name]
        row = {"variant": name, "misfit": complexity.misfit[name], "energy_missed": complexity.energy_missed[name],
               "lam": g.lam.iloc[0]}
        for c in ("gain_best", "gain_val_stopped"):
            row.update(ci_columns(c, g[c]))
        row.update(ci_columns("loss_vs_units", ref - g[column].reindex(ref.index)))
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant")
