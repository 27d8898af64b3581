"""Teachers: networks trained on the clean-input problem, then frozen."""

from __future__ import annotations

from .data import Samples, Task, draw, draw_members
from .losses import FrozenTeacher
from .models import FeatureNet
from .streams import Stream
from .train import TrainConfig, train


def clean_view(samples: Samples) -> Samples:
    """The same samples with the noisy inputs replaced by the clean ones."""
    return Samples(samples.clean, samples.clean, samples.y)


def fit_clean_teacher(model: FeatureNet, task: Task, n_train: int, rng: Stream | list[Stream],
                      config: TrainConfig) -> FrozenTeacher:
    """Train ``model`` on ``n_train`` clean samples of ``task`` drawn from ``rng`` (base loss) and freeze it.

    ``rng`` is the teacher's data stream (e.g. ``Stream(seed).child("teacher_data", k)``), or, for an
    ensemble of teachers, one stream per member.
    """
    like = next(model.parameters())
    kwargs = {"device": like.device, "dtype": like.dtype}
    data = draw_members(task, n_train, rng, **kwargs) if isinstance(rng, list) else draw(task, n_train, rng, **kwargs)
    return fit_teacher(model, data, config)


def fit_teacher(model: FeatureNet, data: Samples, config: TrainConfig) -> FrozenTeacher:
    """Train ``model`` on the clean inputs of ``data`` (base loss) and freeze it.

    ``data`` may be a student's own training set: a teacher that knows the clean inputs the student
    has, and nothing more.
    """
    train(model, clean_view(data), config=config)
    return FrozenTeacher(model)
