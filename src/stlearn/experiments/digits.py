"""Chapters "Real images: noisy handwritten digits" and "MNIST-1D".

One stratified split of scikit-learn's digits (fixed by the chapter's seed) is
shared by every run; each seed draws its own pixel noise and student
initialization. Teachers are trained on the clean training images (or on a
stratified subset of them, for weaker teachers). Students see the noisy
training images and are trained with the base loss, the ST loss (several
``lam`` in one ensemble) or logit distillation, all by full-batch Adam; the
histories log misclassification rates on noisy validation and test images.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..conv import ConvNet
from ..data import Samples
from ..datasets import DIGITS_CLASSES, DIGITS_SHAPE, INPUTS, LabelledSplit, members
from ..distill import train_distilled
from ..losses import FrozenTeacher
from ..models import MLP
from ..plotting import BASE_COLOR, band
from ..teachers import clean_view
from ..train import TrainConfig, train
from .nonlinear import lam_seed_pairs, path_summary

ModelFactory = Callable[..., torch.nn.Module]


def mlp_factory(hidden: Sequence[int], inputs: int = INPUTS["digits"]) -> ModelFactory:
    """Builds ``MLP([inputs, *hidden, 10])`` for ``members`` and ``seed``."""
    return lambda members=None, seed=0, device=None: MLP([inputs, *hidden, DIGITS_CLASSES], members=members,
                                                        seed=seed, device=device)


def cnn_factory(channels: int, hidden: int) -> ModelFactory:
    """Builds the small :class:`stlearn.conv.ConvNet` for ``members`` and ``seed``."""
    return lambda members=None, seed=0, device=None: ConvNet(DIGITS_SHAPE, channels, hidden, DIGITS_CLASSES,
                                                            members=members, seed=seed, device=device)


def adam(steps: int, lr: float, log_points: int = 25) -> TrainConfig:
    return TrainConfig(steps=steps, lr=lr, optimizer="adam", task="ce", log_points=log_points)


def subset(samples: Samples, n: int, seed: int) -> Samples:
    """A stratified subset of ``n`` single-network samples (the training images of a weaker teacher)."""
    from ..datasets import stratified_indices

    if n >= samples.n:
        return samples
    idx = stratified_indices(samples.y.cpu().numpy(), [n], seed)[0]
    return samples.rows(torch.as_tensor(idx, device=samples.clean.device))


def fit_teacher(factory: ModelFactory, clean_train: Samples, config: TrainConfig, seed: int,
                device=None) -> FrozenTeacher:
    """A single network trained on clean images with cross-entropy, then frozen."""
    model = factory(seed=seed, device=device)
    train(model, clean_view(clean_train), config=config)
    return FrozenTeacher(model)


def tile(samples: Samples, k: int) -> Samples:
    """Repeat per-seed samples ``(S, n, .)`` ``k`` times along the member dim, lam-major like lam_seed_pairs."""
    return samples.map(lambda t: t.repeat(k, *([1] * (t.dim() - 1))))


def noisy_data(n_train: int, n_val: int, sigma: float, split_seed: int, seeds: Sequence[int],
               device=None, dataset: str = "digits") -> LabelledSplit:
    return members(dataset, n_train, n_val, sigma, split_seed, [1000 + s for s in seeds], device=device)


def run_st(factory: ModelFactory, data: LabelledSplit, teacher: FrozenTeacher, lams, seeds,
           layers: Sequence[str], config: TrainConfig, device=None) -> pd.DataFrame:
    """One ensemble with a member per (lam, seed); ``lam = 0`` is the base loss."""
    member_lams, member_seeds = lam_seed_pairs(lams, seeds)
    k = len(lams)
    model = factory(members=len(member_lams), seed=[s + 7 for s in member_seeds], device=device)
    result = train(model, tile(data.train, k), teacher=teacher, lam=member_lams, layers=list(layers),
                   config=config, eval_sets={"test": tile(data.test, k), "val": tile(data.val, k)},
                   member_info={"seed": member_seeds})
    return result.history


KD_LAM = -1.0  # the lam of a distilled run (it has no ST weight), so that one path summary serves every method


def run_distilled(factory: ModelFactory, data: LabelledSplit, teacher: FrozenTeacher, seeds, alpha: float,
                  temperature: float, config: TrainConfig, device=None) -> pd.DataFrame:
    """One ensemble of distilled students, a member per seed."""
    model = factory(members=len(seeds), seed=[s + 7 for s in seeds], device=device)
    history = train_distilled(model, data.train, teacher, alpha=alpha, temperature=temperature, config=config,
                              eval_sets={"test": data.test, "val": data.val})
    history["seed"] = np.asarray(seeds)[history.member.to_numpy()]
    history["lam"] = KD_LAM
    return history


def summarize(history: pd.DataFrame, **labels) -> pd.DataFrame:
    """Path summaries per (lam, seed) with ``method`` (base/ST/KD) and the given label columns."""
    s = path_summary(history)
    s["method"] = np.where(s.lam < 0, "KD", np.where(s.lam == 0, "base", "ST"))
    return s.assign(**labels)


def clean_samples(data: LabelledSplit, part: str) -> Samples:
    """The clean images of one part of the split, as single-network samples (member 0's copy)."""
    s = getattr(data, part)
    return Samples(s.clean[0], s.clean[0], s.y[0])


def compare_methods(factories: dict[str, ModelFactory], teachers: dict[str, FrozenTeacher], sigmas, seeds,
                    lam: float, layers: dict[str, Sequence[str]], alpha: float, temperature: float,
                    config: TrainConfig, n_train: int, n_val: int, split_seed: int, device=None,
                    dataset: str = "digits") -> pd.DataFrame:
    """Base, ST and distilled students of every model at every noise level: one summary row per run."""
    rows = []
    for sigma in tqdm(sigmas, desc="noise levels"):
        data = noisy_data(n_train, n_val, sigma, split_seed, seeds, device, dataset)
        for name, factory in factories.items():
            h = run_st(factory, data, teachers[name], [0.0, lam], seeds, layers[name], config, device)
            rows.append(summarize(h, model=name, sigma=sigma))
            h = run_distilled(factory, data, teachers[name], seeds, alpha, temperature, config, device)
            rows.append(summarize(h, model=name, sigma=sigma))
    return pd.concat(rows, ignore_index=True)


def st_variants(factory: ModelFactory, data: LabelledSplit, variants: dict[str, tuple[FrozenTeacher, Sequence[str]]],
                seeds, lam: float, config: TrainConfig, device=None) -> pd.DataFrame:
    """ST students (weight ``lam``) for each named (teacher, matched layers) variant: one row per run."""
    rows = [summarize(run_st(factory, data, teacher, [lam], seeds, layers, config, device), variant=name)
            for name, (teacher, layers) in tqdm(variants.items(), desc="variants")]
    return pd.concat(rows, ignore_index=True)


def gains_over_base(runs: pd.DataFrame, base: pd.DataFrame, column: str = "val_stopped") -> pd.DataFrame:
    """``runs`` with ``gain = base - run`` of ``column`` for the base run of the same seed (accuracy points)."""
    b = base.set_index("seed")[column]
    return runs.assign(gain=b.reindex(runs.seed).to_numpy() - runs[column].to_numpy())


METHOD_COLORS = {"base": BASE_COLOR, "ST": "#0072B2", "KD": "#D55E00"}


def method_bands(ax, runs: pd.DataFrame, lam: float, y: str = "accuracy") -> None:
    """``y`` against the noise level for the base, ST and distilled students (mean and 95% band over seeds)."""
    labels = {"base": "base", "ST": f"ST (λ = {lam:g})", "KD": "logit distillation"}
    for method, label in labels.items():
        if (runs.method == method).any():  # gains have no base rows
            band(ax, runs[runs.method == method], "sigma", y, color=METHOD_COLORS[method], label=label,
                 marker="o")
