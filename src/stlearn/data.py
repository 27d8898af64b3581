"""Data and noise models.

Samples are rows: clean inputs ``x`` of shape ``(n, d)``, targets ``y`` of shape
``(n, d_y)``. The noisy input is ``x + sigma * e`` with ``e ~ N(0, I_d)``.
Training labels may carry label noise ``s * xi``; test targets never do, so a
test error measures the distance to the noiseless target function.

All randomness flows from integer seeds through :class:`torch.Generator`
objects on the CPU, in float64, so that the same seed gives the same data on
any device and in any dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable, Sequence

import torch

from .device import resolve_device
from .validation import ParameterError, check_float, check_int

Tensor = torch.Tensor


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (the only source of randomness here)."""
    seed = check_int("seed", seed, low=0)
    return torch.Generator().manual_seed(seed)


def _randn(gen: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def random_orthonormal(rows: int, cols: int, gen: torch.Generator) -> Tensor:
    """A ``(rows, cols)`` matrix with orthonormal columns (rows >= cols), Haar distributed."""
    q, r = torch.linalg.qr(_randn(gen, rows, cols))
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

    def sample(self, n: int, gen: torch.Generator) -> Tensor:
        if self.basis is None:
            return _randn(gen, n, self.d)
        return _randn(gen, n, self.rank) @ self.basis.T


def gaussian_inputs(d: int, rank: int | None = None, seed: int = 0) -> GaussianInputs:
    """Isotropic inputs in ``R^d``, or inputs on a random ``rank``-dimensional subspace."""
    d = check_int("d", d, low=1)
    if rank is None or rank == d:
        return GaussianInputs(d)
    rank = check_int("rank", rank, low=1, high=d)
    return GaussianInputs(d, random_orthonormal(d, rank, generator(seed)))


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


def linear_target(inputs: GaussianInputs, d_out: int, rank: int | None = None, seed: int = 0) -> LinearTarget:
    """A random ``W_star = A B`` of the given rank that reads the inputs' subspace.

    ``B`` (rank x d) has orthonormal rows inside the span of the inputs, and
    ``A`` (d_out x rank) has i.i.d. ``N(0, 1)`` entries, so that
    ``E ||W_star x||^2 = ||W_star||_F^2 ~ d_out * rank``.
    """
    d_out = check_int("d_out", d_out, low=1)
    high = min(inputs.rank, d_out)
    rank = high if rank is None else check_int("rank", rank, low=1, high=high)
    gen = generator(seed)
    b = random_orthonormal(inputs.rank, rank, gen).T
    if inputs.basis is not None:
        b = b @ inputs.basis.T
    a = _randn(gen, d_out, rank)
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


def relu_target(d: int, hidden: int, d_out: int = 1, seed: int = 0) -> ReLUTarget:
    """A two-layer ReLU function with unit-norm hidden weights and ``N(0, 1/hidden)`` output weights."""
    d = check_int("d", d, low=1)
    hidden = check_int("hidden", hidden, low=1)
    d_out = check_int("d_out", d_out, low=1)
    gen = generator(seed)
    w1 = _randn(gen, hidden, d)
    w1 = w1 / w1.norm(dim=1, keepdim=True)
    w2 = _randn(gen, d_out, hidden) / hidden**0.5
    return ReLUTarget(w1, w2)


# --------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class Samples:
    """Clean inputs, their noisy versions and targets (leading dims may include members)."""

    clean: Tensor
    noisy: Tensor
    y: Tensor

    @property
    def n(self) -> int:
        return self.clean.shape[-2]

    def map(self, fn: Callable[[Tensor], Tensor]) -> "Samples":
        return Samples(*(fn(getattr(self, f.name)) for f in fields(self)))

    def to(self, device=None, dtype=None) -> "Samples":
        device = resolve_device(device)
        # integer class labels keep their dtype
        return self.map(lambda t: t.to(device=device, dtype=(dtype or t.dtype) if t.is_floating_point() else t.dtype))

    def rows(self, idx: Tensor) -> "Samples":
        """The samples with indices ``idx`` along the sample dimension (labels may be ``(n,)``)."""
        return self.map(lambda t: t.index_select(t.dim() - (2 if t.dim() == self.clean.dim() else 1), idx))

    @staticmethod
    def stack(samples: Sequence["Samples"]) -> "Samples":
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

    def with_noise(self, sigma: float) -> "Task":
        return replace(self, sigma=sigma)

    def sample(self, n: int, gen: torch.Generator, label_noise: bool) -> Samples:
        x = self.inputs.sample(n, gen)
        noisy = x + self.sigma * _randn(gen, n, self.d)
        y = self.target(x)
        if label_noise and self.label_noise > 0:
            y = y + self.label_noise * _randn(gen, *y.shape)
        return Samples(x, noisy, y)


@dataclass(frozen=True)
class Split:
    train: Samples
    test: Samples

    def to(self, device=None, dtype=None) -> "Split":
        return Split(self.train.to(device, dtype), self.test.to(device, dtype))


def make_split(
    task: Task,
    n_train: int,
    n_test: int,
    seed: int = 0,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> Split:
    """A fixed train/test split drawn from ``seed``: noisy labels on train only."""
    n_train = check_int("n_train", n_train, low=1)
    n_test = check_int("n_test", n_test, low=1)
    gen = generator(seed)
    train = task.sample(n_train, gen, label_noise=True)
    test = task.sample(n_test, gen, label_noise=False)
    return Split(train, test).to(device, dtype)


def make_splits(task: Task, n_train: int, n_test: int, seeds: Sequence[int], device=None,
                dtype: torch.dtype = torch.float32) -> Split:
    """One split per seed, stacked along a leading member dimension ``(E, n, .)``."""
    if len(seeds) == 0:
        raise ParameterError("seeds must be a non-empty list of integers >= 0; got []")
    splits = [make_split(task, n_train, n_test, s, device, dtype) for s in seeds]
    return Split(Samples.stack([s.train for s in splits]), Samples.stack([s.test for s in splits]))
