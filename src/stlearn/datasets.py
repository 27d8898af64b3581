"""Real data shipped with installed packages (nothing is downloaded).

:func:`digits` gives the 8x8 handwritten digits of scikit-learn (1,797
images, 10 classes) as :class:`stlearn.data.Samples`: pixels scaled to
``[0, 1]`` and flattened to 64 values, labels as ``int64``, and a noisy copy
with Gaussian pixel noise ``sigma * e``. The train/validation/test split is
stratified and fixed by ``split_seed``; the noise is drawn from
``noise_seed``, so several noise draws (one per ensemble member) can share one
split, and the same seeds give the same tensors everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .data import Samples, generator
from .device import resolve_device
from .validation import ParameterError, check_float, check_int

DIGITS_SHAPE = (1, 8, 8)  # channels, height, width
DIGITS_CLASSES = 10
DIGITS_SIZE = 1797


@dataclass(frozen=True)
class LabelledSplit:
    """Training, validation and test samples (leading dims may include members)."""

    train: Samples
    val: Samples
    test: Samples


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All digits: images ``(1797, 64)`` in ``[0, 1]`` (float64) and labels ``(1797,)`` (int64)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64)


def stratified_indices(labels: np.ndarray, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Disjoint stratified index sets of the given sizes, then the rest (each sorted)."""
    from sklearn.model_selection import train_test_split

    rest, parts = np.arange(len(labels)), []
    for size in sizes:
        part, rest = train_test_split(rest, train_size=size, stratify=labels[rest], random_state=seed)
        parts.append(np.sort(part))
    return parts + [np.sort(rest)]


def digits(n_train: int, n_val: int, sigma: float, split_seed: int = 0, noise_seed: int = 0, device=None,
           dtype: torch.dtype = torch.float32) -> LabelledSplit:
    """Digits with pixel noise ``sigma``: ``n_train`` training, ``n_val`` validation, the rest test images."""
    n_train = check_int("n_train", n_train, low=DIGITS_CLASSES, high=DIGITS_SIZE - 2 * DIGITS_CLASSES)
    n_val = check_int("n_val", n_val, low=DIGITS_CLASSES, high=DIGITS_SIZE - DIGITS_CLASSES - n_train)
    sigma = check_float("sigma", sigma, low=0.0)
    images, labels = load_digits_arrays()
    parts = stratified_indices(labels, [n_train, n_val], check_int("split_seed", split_seed, low=0))
    gen = generator(noise_seed)
    samples = []
    for idx in parts:
        clean = torch.from_numpy(images[idx])
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
        samples.append(Samples(clean, noisy, torch.from_numpy(labels[idx])).to(resolve_device(device), dtype))
    return LabelledSplit(*samples)


def digits_members(n_train: int, n_val: int, sigma: float, split_seed: int, noise_seeds: Sequence[int],
                   device=None, dtype: torch.dtype = torch.float32) -> LabelledSplit:
    """One split, one noise draw per member: samples stacked along a leading member dimension."""
    if len(noise_seeds) == 0:
        raise ParameterError("noise_seeds must be a non-empty list of integers >= 0; got []")
    draws = [digits(n_train, n_val, sigma, split_seed, s, device, dtype) for s in noise_seeds]
    return LabelledSplit(*(Samples.stack([getattr(d, part) for d in draws]) for part in ("train", "val", "test")))
