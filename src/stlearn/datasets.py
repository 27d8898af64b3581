"""Real data shipped with installed packages (nothing is downloaded).

Two datasets, both as :class:`stlearn.data.Samples` with labels as ``int64``
and a noisy copy of the inputs with Gaussian noise ``sigma * e``:

* ``"digits"``: the 8x8 handwritten digits of scikit-learn (1,797 images,
  10 classes), pixels scaled to ``[0, 1]`` and flattened to 64 values;
* ``"mnist1d"``: MNIST-1D (Greydanus and Kobak), 10 classes of one-dimensional
  signals of length 40 built from ten digit-like templates by random
  padding, shear, translation and correlated noise, generated offline by the
  ``mnist1d`` package (its own download path is never used) and standardized
  to mean 0 and variance 1.

The train/validation/test split is stratified and fixed by the stream
``split_rng``; the noise is drawn from ``noise_rng`` (one child stream per
part), so several noise draws (one per ensemble member) can share one split,
and the same streams give the same tensors everywhere. The three parts are
recorded for the audit of disjoint sets (:mod:`stlearn.streams`) by their
indices into the dataset.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import streams
from .data import Samples, randn
from .device import resolve_device
from .streams import Stream, as_stream
from .validation import ParameterError, check_choice, check_float, check_int

DIGITS_SHAPE = (1, 8, 8)  # channels, height, width
DIGITS_CLASSES = 10
MNIST1D_LENGTH = 40
MNIST1D_SIZE = 4000  # signals generated (400 per class)
MNIST1D_SEED = 42  # the generator's seed of the published dataset


@dataclass(frozen=True)
class LabelledSplit:
    """Training, validation and test samples (leading dims may include members)."""

    train: Samples
    val: Samples
    test: Samples


@functools.cache  # every noise draw of a sweep shares the arrays (callers index, never write)
def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All digits: images ``(1797, 64)`` in ``[0, 1]`` (float64) and labels ``(1797,)`` (int64)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64)


def stratified_indices(labels: np.ndarray, sizes: Sequence[int], rng: Stream | int) -> list[np.ndarray]:
    """Disjoint stratified index sets of the given sizes, then the rest (each sorted), drawn from ``rng``."""
    from sklearn.model_selection import train_test_split

    rng = as_stream(rng)
    rest, parts = np.arange(len(labels)), []
    for k, size in enumerate(sizes):
        part, rest = train_test_split(rest, train_size=size, stratify=labels[rest],
                                      random_state=rng.child("split", k).numpy_seed())
        parts.append(np.sort(part))
    return parts + [np.sort(rest)]


@functools.cache
def load_mnist1d_arrays(n: int = MNIST1D_SIZE, seed: int = MNIST1D_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST-1D signals ``(n, 40)`` (float64, standardized) and labels ``(n,)`` (int64), generated offline."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = n, seed
    state = np.random.get_state()  # the generator seeds numpy's global state: leave it as it was
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    return x, np.concatenate([data["y"], data["y_test"]]).astype(np.int64)


LOADERS = {"digits": load_digits_arrays, "mnist1d": load_mnist1d_arrays}
CLASSES = {"digits": DIGITS_CLASSES, "mnist1d": 10}
INPUTS = {"digits": 64, "mnist1d": MNIST1D_LENGTH}


def labelled(dataset: str, n_train: int, n_val: int, sigma: float, split_rng: Stream | int = 0,
             noise_rng: Stream | int = 0, device=None, dtype: torch.dtype | None = None,
             split_name: str | None = None, views: int = 1) -> LabelledSplit:
    """``n_train`` training, ``n_val`` validation and the rest test inputs of ``dataset``, with noise ``sigma``.

    ``split_name`` names the split in the audit of disjoint sets when a chapter draws several splits
    of one dataset (one per run): the three parts of each split must be disjoint, while the parts of
    two splits overlap by design.

    With ``views = K > 1`` the training part holds ``K`` fixed noisy copies of each clean training input (as in
    a burst of frames), view-major: rows ``j * n_train + i`` are view ``j`` of input ``i``. View 0 is the one-view
    set (``noise_rng.child("student_data")``); view ``j >= 1`` draws its noise from that stream's
    ``child("noise", j)`` (as :meth:`stlearn.data.Task.sample`), so the first views of a set with more views are
    those of one with fewer. Validation and test inputs keep one noisy copy each.
    """
    views = check_int("views", views, low=1)
    return _noisy_split(*_split(dataset, n_train, n_val, sigma, split_rng, split_name), as_stream(noise_rng),
                        resolve_device(device), dtype or torch.get_default_dtype(), views)


def members(dataset: str, n_train: int, n_val: int, sigma: float, split_rng: Stream | int,
            noise_rngs: Sequence[Stream], device=None, dtype: torch.dtype | None = None) -> LabelledSplit:
    """One split, one noise draw per member (stream in ``noise_rngs``): samples stacked along a member dimension."""
    split = _split(dataset, n_train, n_val, sigma, split_rng)  # once: every draw shares it
    if len(noise_rngs) == 0:
        raise ParameterError("noise_rngs must be a non-empty list of streams (one per member); got []")
    dtype = dtype or torch.get_default_dtype()
    draws = [_noisy_split(*split, as_stream(r), resolve_device(device), dtype) for r in noise_rngs]
    return LabelledSplit(*(Samples.stack([getattr(d, part) for d in draws]) for part in ("train", "val", "test")))


PARTS = ("student_data", "validation", "test")  # the roles of the three parts (their noise streams)


def _split(dataset: str, n_train: int, n_val: int, sigma: float, split_rng: Stream | int,
           split_name: str | None = None):
    """The checked arguments' arrays, stratified index sets (train, val, test) and noise level."""
    dataset = check_choice("dataset", dataset, LOADERS)
    images, labels = LOADERS[dataset]()
    classes = CLASSES[dataset]
    n_train = check_int("n_train", n_train, low=classes, high=len(labels) - 2 * classes)
    n_val = check_int("n_val", n_val, low=classes, high=len(labels) - classes - n_train)
    sigma = check_float("sigma", sigma, low=0.0)
    parts = stratified_indices(labels, [n_train, n_val], as_stream(split_rng, "split_rng"))
    space = dataset if split_name is None else f"{dataset} {split_name}"
    for role, idx in zip(PARTS, parts):
        streams.record(f"{space} {role}", idx, space=space)
    return images, labels, parts, sigma


def _noisy_split(images, labels, parts, sigma: float, noise_rng: Stream, device, dtype,
                 views: int = 1) -> LabelledSplit:
    samples = []
    for role, idx in zip(PARTS, parts):
        copies = views if role == "student_data" else 1  # the training part's views (labelled's docstring)
        clean = torch.from_numpy(images[idx]).repeat(copies, *([1] * (images.ndim - 1)))
        noise = [randn(noise_rng.child(role).child("noise", j) if j else noise_rng.child(role), len(idx),
                       *images.shape[1:]) for j in range(copies)]
        noisy = clean + sigma * torch.cat(noise)
        samples.append(Samples(clean, noisy, torch.from_numpy(labels[idx]).repeat(copies)).to(device, dtype))
    return LabelledSplit(*samples)
