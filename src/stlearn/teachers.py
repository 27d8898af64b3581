"""Teachers: networks trained on the clean-input problem, then frozen."""

from __future__ import annotations

from .data import Samples, Task, make_split
from .losses import FrozenTeacher
from .models import FeatureNet
from .train import TrainConfig, train


def clean_view(samples: Samples) -> Samples:
    """The same samples with the noisy inputs replaced by the clean ones."""
    return Samples(samples.clean, samples.clean, samples.y)


def fit_clean_teacher(model: FeatureNet, task: Task, n_train: int, seed: int,
                      config: TrainConfig) -> FrozenTeacher:
    """Train ``model`` on ``n_train`` clean samples of ``task`` (base loss) and freeze it."""
    split = make_split(task, n_train, 1, seed=seed, device=next(model.parameters()).device,
                       dtype=next(model.parameters()).dtype)
    train(model, clean_view(split.train), config=config)
    return FrozenTeacher(model)
