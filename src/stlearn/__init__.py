"""stlearn: the library behind the companion book to Hong et al., "Student-Teacher
Learning from Clean Inputs to Noisy Inputs" (CVPR 2021).

Data and noise models (:mod:`.data`), networks that expose their features
(:mod:`.models`), the student-teacher loss and frozen teacher (:mod:`.losses`),
the trainer for single networks and ensembles (:mod:`.train`), closed-form
theory (:mod:`.theory`), statistics over seeds (:mod:`.stats`) and the book's
figure style (:mod:`.plotting`).
"""

from . import plotting, stats, teachers, theory
from .data import (GaussianInputs, LinearTarget, ReLUTarget, Samples, Split, Task, gaussian_inputs,
                   linear_target, make_split, make_splits, relu_target)
from .device import default_device, resolve_device
from .losses import FrozenTeacher, feature_loss, student_teacher_loss, task_loss
from .models import MLP, DeepLinear, FeatureNet, member, select_members, stack_members
from .train import TrainConfig, TrainingDiverged, TrainResult, evaluate, log_schedule, train
from .validation import ParameterError

__all__ = [
    "GaussianInputs", "LinearTarget", "ReLUTarget", "Samples", "Split", "Task", "gaussian_inputs",
    "linear_target", "make_split", "make_splits", "relu_target", "default_device", "resolve_device",
    "FrozenTeacher", "feature_loss", "student_teacher_loss", "task_loss", "MLP", "DeepLinear",
    "FeatureNet", "member", "select_members", "stack_members", "TrainConfig", "TrainingDiverged", "TrainResult",
    "evaluate", "log_schedule", "train", "ParameterError",
]
__version__ = "0.1.0"
