"""Data and noise models.

Samples are rows: clean inputs ``x`` of shape ``(n, d)``, targets ``y`` of shape
``(n, d_y)``. The noisy input is ``x + sigma * e`` with ``e ~ N(0, I_d)``.
Training labels may carry label noise ``s * xi``; test targets never do, so a
test error measures the distance to the noiseless target function.

All randomness comes from :class:`stlearn.streams.Stream` objects (an integer
is the root stream of that seed), drawn on the CPU in float64, so that the same
stream gives the same data on any device and in any dtype. One call of
:func:`draw` draws one set of ``n`` samples; its inputs, input noise and label
noise come from three child streams, so changing the noise level changes no
input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import torch

from . import streams
from .device import resolve_device
from .streams import Stream, as_stream
from .validation import ParameterError, check_float, check_int

Tensor = torch.Tensor


def randn(rng: Stream | int, *shape: int) -> Tensor:
    """``N(0, 1)`` draws of ``shape`` (float64, CPU) from the start of the stream ``rng``."""
    return torch.randn(*shape, generator=as_stream(rng).generator(), dtype=torch.float64)


def random_orthonormal(rows: int, cols: int, rng: Stream | int) -> Tensor:
    """A ``(rows, cols)`` matrix with orthonormal columns (rows >= cols), Haar distributed."""
    q, r = torch.linalg.qr(randn(rng, rows, cols))
    return q * torch.sign(torch.diagonal(r))


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class GaussianInputs:
    """``x ~ N(0, Sigma_x)``: isotropic (``basis=None``) or ``x = U z`` on a subspace.

    ``basis`` is a ``(d, r)`` matrix with orthonormal columns; then
    ``Sigma_x = U U^T`` and each of the ``r`` latent coordinates has variance 1.
    """

    d: int
    basis: Tensor | None = None

    @property
    def rank(self) -> int:
        return self.d if self.basis is None else self.basis.shape[1]

    def covariance(self) -> Tensor:
        if self.basis is None:
            return torch.eye(self.d, dtype=torch.float64)
        return self.basis @ self.basis.T

    def sample(self, n: int, rng: Stream | int) -> Tensor:
        if self.basis is None:
            return randn(rng, n, self.d)
        return randn(rng, n, self.rank) @ self.basis.T


def gaussian_inputs(d: int, rank: int | None = None, rng: Stream | int = 0) -> GaussianInputs:
    """Isotropic inputs in ``R^d``, or inputs on a random ``rank``-dimensional subspace drawn from ``rng``."""
    d = check_int("d", d, low=1)
    if rank is None or rank == d:
        return GaussianInputs(d)
    rank = check_int("rank", rank, low=1, high=d)
    return GaussianInputs(d, random_orthonormal(d, rank, rng))


# --------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class LinearTarget:
    """``y = W_star x`` with ``W_star`` of shape ``(d_y, d)``."""

    weight: Tensor

    @property
    def d_out(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x: Tensor) -> Tensor:
        return x @ self.weight.T


def linear_target(inputs: GaussianInputs, d_out: int, rank: int | None = None,
                  rng: Stream | int = 0) -> LinearTarget:
    """A random ``W_star = A B`` of the given rank that reads the inputs' subspace.

    ``B`` (rank x d) has orthonormal rows inside the span of the inputs, and
    ``A`` (d_out x rank) has i.i.d. ``N(0, 1)`` entries, so that
    ``E ||W_star x||^2 = ||W_star||_F^2 ~ d_out * rank``.
    """
    d_out = check_int("d_out", d_out, low=1)
    high = min(inputs.rank, d_out)
    rank = high if rank is None else check_int("rank", rank, low=1, high=high)
    rng = as_stream(rng)
    b = random_orthonormal(inputs.rank, rank, rng.child("direction")).T
    if inputs.basis is not None:
        b = b @ inputs.basis.T
    a = randn(rng.child("layer"), d_out, rank)
    return LinearTarget(a @ b)


@dataclass(frozen=True)
class ReLUTarget:
    """``y = W2 relu(W1 x)``: a random two-layer ReLU teacher function."""

    w1: Tensor  # (m, d)
    w2: Tensor  # (d_y, m)

    @property
    def d_out(self) -> int:
        return self.w2.shape[0]

    def __call__(self, x: Tensor) -> Tensor:
        return torch.relu(x @ self.w1.T) @ self.w2.T

    def variance(self) -> Tensor:
        """Per output, the variance of ``y`` over clean inputs ``x ~ N(0, I)``, in closed form.

        With unit-norm rows, ``u_i = w1_i . x`` are standard normal with correlations ``rho_ij = w1_i . w1_j``,
        and ``E relu(u_i) relu(u_j) = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / (2 pi)`` (the arc-cosine kernel of
        degree 1; Cho and Saul, 2009), ``E relu(u_i) = 1 / sqrt(2 pi)``.
        """
        w1 = self.w1 / self.w1.norm(dim=1, keepdim=True)
        rho = (w1 @ w1.T).clamp(-1.0, 1.0)
        second = ((1 - rho**2).clamp(min=0).sqrt() + (math.pi - torch.arccos(rho)) * rho) / (2 * math.pi)
        mean = self.w2.sum(-1) / math.sqrt(2 * math.pi)
        return torch.einsum("oi,ij,oj->o", self.w2, second, self.w2) - mean**2


def relu_target(d: int, hidden: int, d_out: int = 1, rng: Stream | int = 0, unit_variance: bool = False) -> ReLUTarget:
    """A two-layer ReLU function with unit-norm hidden weights and ``N(0, 1/hidden)`` output weights; with
    ``unit_variance`` the output weights are rescaled so that every output has variance 1 over ``x ~ N(0, I)``
    (:meth:`ReLUTarget.variance`), whatever the draw: with few hidden units, the variance of the unscaled function
    varies many-fold from one draw to the next, and with it the scale of every error."""
    d = check_int("d", d, low=1)
    hidden = check_int("hidden", hidden, low=1)
    d_out = check_int("d_out", d_out, low=1)
    rng = as_stream(rng)
    w1 = randn(rng.child("layer", 0), hidden, d)
    w1 = w1 / w1.norm(dim=1, keepdim=True)
    w2 = randn(rng.child("layer", 1), d_out, hidden) / hidden**0.5
    target = ReLUTarget(w1, w2)
    return ReLUTarget(w1, w2 / target.variance().sqrt()[:, None]) if unit_variance else target


# --------------------------------------------------------------------------- samples
def take_rows(t: Tensor, dim: int, idx: Tensor) -> Tensor:
    """``t.index_select(dim, idx)``; a set shared by every member (``t`` expanded along its member dimension 0,
    stride 0) stays shared: index_select would first copy the whole expanded tensor, once per member."""
    if dim > 0 and t.dim() > 1 and t.stride(0) == 0:
        return t[:1].index_select(dim, idx).expand(t.shape[0], *t.shape[1:dim], len(idx), *t.shape[dim + 1:])
    return t.index_select(dim, idx)


@dataclass(frozen=True)
class Samples:
    """Clean inputs, their noisy versions and targets (leading dims may include members)."""

    clean: Tensor
    noisy: Tensor
    y: Tensor

    @property
    def n(self) -> int:
        return self.clean.shape[-2]

    def map(self, fn: Callable[[Tensor], Tensor]) -> Samples:
        return Samples(*(fn(getattr(self, f.name)) for f in fields(self)))

    def to(self, device=None, dtype=None) -> Samples:
        device = resolve_device(device)
        # integer class labels keep their dtype
        return self.map(lambda t: t.to(device=device, dtype=(dtype or t.dtype) if t.is_floating_point() else t.dtype))

    def rows(self, idx: Tensor) -> Samples:
        """The samples with indices ``idx`` along the sample dimension (labels may be ``(n,)``)."""
        return self.map(lambda t: take_rows(t, t.dim() - (2 if t.dim() == self.clean.dim() else 1), idx))

    @staticmethod
    def stack(samples: Sequence[Samples]) -> Samples:
        """Stack per-member samples into ``(E, n, .)`` tensors."""
        return Samples(*(torch.stack([getattr(s, f.name) for s in samples]) for f in fields(Samples)))


@dataclass(frozen=True)
class Task:
    """The data model: inputs, a target function, label noise ``s`` and input noise ``sigma``."""

    inputs: GaussianInputs
    target: Callable[[Tensor], Tensor]
    sigma: float = 0.0
    label_noise: float = 0.0

    def __post_init__(self):
        check_float("sigma", self.sigma, low=0.0)
        check_float("label_noise", self.label_noise, low=0.0)

    @property
    def d(self) -> int:
        return self.inputs.d

    @property
    def d_out(self) -> int:
        return self.target.d_out

    def with_noise(self, sigma: float) -> Task:
        return replace(self, sigma=sigma)

    def sample(self, n: int, rng: Stream | int, label_noise: bool, views: int = 1) -> Samples:
        """``n`` samples (float64, CPU): inputs, noise and label noise from three children of ``rng``.

        With ``views = K > 1`` each clean input comes with ``K`` fixed noisy copies (as in a burst of frames):
        ``K n`` rows, view ``j`` of input ``i`` at row ``j n + i``, sharing its clean input and label. View 0 is
        the one-view sample itself; view ``j >= 1`` draws its noise from ``rng.child("noise", j)``.
        """
        rng = as_stream(rng)
        views = check_int("views", views, low=1)
        x = self.inputs.sample(n, rng.child("inputs"))
        noise = [randn(rng.child("noise", *((j,) if j else ())), n, self.d) for j in range(views)]
        noisy = torch.cat([x + self.sigma * e for e in noise])
        y = self.target(x)
        if label_noise and self.label_noise > 0:
            y = y + self.label_noise * randn(rng.child("label_noise"), *y.shape)
        return Samples(x.repeat(views, 1), noisy, y.repeat(views, 1))


def draw(task: Task, n: int, rng: Stream | int, *, label_noise: bool = True, device=None,
         dtype: torch.dtype | None = None, views: int = 1) -> Samples:
    """One set of ``n`` samples of ``task`` from the stream ``rng`` (``views`` noisy copies of each:
    :meth:`Task.sample`).

    ``label_noise=False`` for sets that measure the distance to the noiseless
    target (test sets); training and validation sets carry it. The set is
    recorded by :func:`stlearn.streams.record` (the audit of disjoint sets).
    """
    n = check_int("n", n, low=1)
    rng = as_stream(rng)
    samples = task.sample(n, rng, label_noise, views)
    streams.record(rng.name, samples.clean)
    return samples.to(device, dtype or torch.get_default_dtype())


def draw_members(task: Task, n: int, rngs: Sequence[Stream], *, label_noise: bool = True, device=None,
                 dtype: torch.dtype | None = None) -> Samples:
    """One set per stream in ``rngs``, stacked along a leading member dimension ``(E, n, .)``."""
    if len(rngs) == 0:
        raise ParameterError("rngs must be a non-empty list of streams (one per member); got []")
    return Samples.stack([draw(task, n, r, label_noise=label_noise, device=device, dtype=dtype) for r in rngs])
