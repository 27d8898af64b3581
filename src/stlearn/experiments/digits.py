"""Chapters "Real images: noisy handwritten digits" and "MNIST-1D".

Every random draw comes from a named stream below the chapter's root stream
``rng`` (:mod:`stlearn.streams`): one stratified split of the dataset
(``rng.child("split")``) is shared by every run; run ``k`` draws its own pixel
noise (``rng.child("noise", k)``, one child stream per part of the split) and
student initialization (``rng.child("student_init", k)``). Teacher ``j`` is
initialized from ``rng.child("teacher_init", j)`` and trained on the clean
training images, by the paper's design the clean versions of the images the
students see with noise; a weaker teacher trains on a stratified subset of them
drawn from ``rng.child("teacher_data", j)``. Students see the noisy training
images and are trained with the base loss, the ST loss (several ``lam`` in one
ensemble) or logit distillation, all by full-batch Adam; the histories log
misclassification rates on noisy validation and test images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..conv import ConvNet
from ..data import Samples
from ..datasets import DIGITS_CLASSES, DIGITS_SHAPE, INPUTS, LabelledSplit, labelled, members, stratified_indices
from ..distill import train_distilled
from ..losses import FrozenTeacher
from ..models import MLP
from ..plotting import BASE_COLOR, band
from ..streams import Stream, as_stream
from ..teachers import clean_view
from ..train import TrainConfig, train
from .nonlinear import lam_seed_pairs, path_summary

ModelFactory = Callable[..., torch.nn.Module]


def mlp_factory(hidden: Sequence[int], inputs: int = INPUTS["digits"]) -> ModelFactory:
    """Builds ``MLP([inputs, *hidden, 10])`` for ``members`` and ``rng`` (a stream, or one per member)."""
    return lambda members=None, rng=0, device=None: MLP([inputs, *hidden, DIGITS_CLASSES], members=members,
                                                       rng=rng, device=device)


def cnn_factory(channels: int, hidden: int) -> ModelFactory:
    """Builds the small :class:`stlearn.conv.ConvNet` for ``members`` and ``rng`` (a stream, or one per member)."""
    return lambda members=None, rng=0, device=None: ConvNet(DIGITS_SHAPE, channels, hidden, DIGITS_CLASSES,
                                                           members=members, rng=rng, device=device)


def adam(steps: int, lr: float, log_points: int = 25) -> TrainConfig:
    """Full-batch Adam on the cross-entropy (no minibatches, so no batch stream is drawn)."""
    return TrainConfig(steps=steps, lr=lr, optimizer="adam", task="ce", log_points=log_points)


def subset(samples: Samples, n: int, rng: Stream | int) -> Samples:
    """A stratified subset of ``n`` single-network samples drawn from ``rng`` (the images of a weaker teacher)."""
    if n >= samples.n:
        return samples
    idx = stratified_indices(samples.y.cpu().numpy(), [n], as_stream(rng))[0]
    return samples.rows(torch.as_tensor(idx, device=samples.clean.device))


def fit_teacher(factory: ModelFactory, clean_train: Samples, config: TrainConfig, rng: Stream | int, j: int = 0,
                n_images: int | None = None, device=None) -> FrozenTeacher:
    """Teacher ``j``: a single network trained on clean images with cross-entropy, then frozen.

    Its initialization is ``rng.child("teacher_init", j)``. It trains on the clean training images
    ``clean_train`` (the students' training images without their noise: the teacher knows the clean
    version of the students' data, by the paper's design), or on a stratified subset of ``n_images`` of
    them drawn from ``rng.child("teacher_data", j)``.
    """
    rng = as_stream(rng)
    if n_images is not None:
        clean_train = subset(clean_train, n_images, rng.child("teacher_data", j))
    model = factory(rng=rng.child("teacher_init", j), device=device)
    train(model, clean_view(clean_train), config=config)
    return FrozenTeacher(model)


def tile(samples: Samples, k: int) -> Samples:
    """Repeat per-seed samples ``(S, n, .)`` ``k`` times along the member dim, lam-major like lam_seed_pairs."""
    return samples.map(lambda t: t.repeat(k, *([1] * (t.dim() - 1))))


def noisy_data(n_train: int, n_val: int, sigma: float, rng: Stream | int, seeds: Sequence[int],
               device=None, dataset: str = "digits") -> LabelledSplit:
    """The split ``rng.child("split")`` with one noise draw ``rng.child("noise", k)`` per run index ``k``."""
    rng = as_stream(rng)
    return members(dataset, n_train, n_val, sigma, rng.child("split"), [rng.child("noise", k) for k in seeds],
                   device=device)


def clean_split(n_train: int, n_val: int, rng: Stream | int, device=None, dataset: str = "digits") -> LabelledSplit:
    """The clean images of the split ``rng.child("split")`` (single-network samples, noisy = clean).

    The noise stream is run 0's, at ``sigma = 0``: it changes nothing, and no other set is drawn.
    """
    rng = as_stream(rng)
    split = labelled(dataset, n_train, n_val, 0.0, rng.child("split"), rng.child("noise", 0), device=device)
    return LabelledSplit(*(clean_view(getattr(split, part)) for part in ("train", "val", "test")))


def student_inits(rng: Stream | int, seeds: Sequence[int]) -> list[Stream]:
    """The initialization stream ``rng.child("student_init", k)`` of each run index ``k`` (one per member)."""
    rng = as_stream(rng)
    return [rng.child("student_init", k) for k in seeds]


def run_st(factory: ModelFactory, data: LabelledSplit, teacher: FrozenTeacher, lams, rng: Stream | int, seeds,
           layers: Sequence[str], config: TrainConfig, device=None) -> pd.DataFrame:
    """One ensemble with a member per (lam, run index); ``lam = 0`` is the base loss.

    Run ``k`` of every ``lam`` starts from the same initialization (paired runs).
    """
    member_lams, member_seeds = lam_seed_pairs(lams, seeds)
    k = len(lams)
    model = factory(members=len(member_lams), rng=student_inits(rng, member_seeds), device=device)
    result = train(model, tile(data.train, k), teacher=teacher, lam=member_lams, layers=list(layers),
                   config=config, eval_sets={"test": tile(data.test, k), "val": tile(data.val, k)},
                   member_info={"seed": member_seeds})
    return result.history


KD_LAM = -1.0  # the lam of a distilled run (it has no ST weight), so that one path summary serves every method


def run_distilled(factory: ModelFactory, data: LabelledSplit, teacher: FrozenTeacher, rng: Stream | int, seeds,
                  alpha: float, temperature: float, config: TrainConfig, device=None) -> pd.DataFrame:
    """One ensemble of distilled students, a member per run index (the same inits as :func:`run_st`)."""
    model = factory(members=len(seeds), rng=student_inits(rng, seeds), device=device)
    history = train_distilled(model, data.train, teacher, alpha=alpha, temperature=temperature, config=config,
                              eval_sets={"test": data.test, "val": data.val})
    history["seed"] = np.asarray(seeds)[history.member.to_numpy()]
    history["lam"] = KD_LAM
    return history


def run_summary(history: pd.DataFrame, **labels) -> pd.DataFrame:
    """Path summaries per (lam, seed) with ``method`` (base/ST/KD) and the given label columns."""
    s = path_summary(history)
    s["method"] = np.where(s.lam < 0, "KD", np.where(s.lam == 0, "base", "ST"))
    return s.assign(**labels)


def compare_methods(factories: dict[str, ModelFactory], teachers: dict[str, FrozenTeacher], sigmas,
                    rng: Stream | int, seeds, lam: float, layers: dict[str, Sequence[str]], alpha: float,
                    temperature: float, config: TrainConfig, n_train: int, n_val: int, device=None,
                    dataset: str = "digits") -> pd.DataFrame:
    """Base, ST and distilled students of every model at every noise level: one summary row per run.

    Run ``k`` uses the noise stream ``rng.child("noise", k)`` at every noise level (scaled by ``sigma``)
    and the init ``rng.child("student_init", k)`` for every method.
    """
    rows = []
    for sigma in tqdm(sigmas, desc="noise levels"):
        data = noisy_data(n_train, n_val, sigma, rng, seeds, device, dataset)
        for name, factory in factories.items():
            h = run_st(factory, data, teachers[name], [0.0, lam], rng, seeds, layers[name], config, device)
            rows.append(run_summary(h, model=name, sigma=sigma))
            h = run_distilled(factory, data, teachers[name], rng, seeds, alpha, temperature, config, device)
            rows.append(run_summary(h, model=name, sigma=sigma))
    return pd.concat(rows, ignore_index=True)


def st_variants(factory: ModelFactory, data: LabelledSplit, variants: dict[str, tuple[FrozenTeacher, Sequence[str]]],
                rng: Stream | int, seeds, lam: float, config: TrainConfig, device=None) -> pd.DataFrame:
    """ST students (weight ``lam``) for each named (teacher, matched layers) variant: one row per run."""
    rows = [run_summary(run_st(factory, data, teacher, [lam], rng, seeds, layers, config, device), variant=name)
            for name, (teacher, layers) in tqdm(variants.items(), desc="variants")]
    return pd.concat(rows, ignore_index=True)


METHOD_COLORS = {"base": BASE_COLOR, "ST": "#0072B2", "KD": "#D55E00"}


def method_bands(ax, runs: pd.DataFrame, lam: float, y: str = "accuracy") -> None:
    """``y`` against the noise level for the base, ST and distilled students (mean and 95% band over seeds)."""
    labels = {"base": "base", "ST": f"ST (λ = {lam:g})", "KD": "logit distillation"}
    for method, label in labels.items():
        if (runs.method == method).any():  # gains have no base rows
            band(ax, runs[runs.method == method], "sigma", y, color=METHOD_COLORS[method], label=label,
                 marker="o")
