"""stlearn: the library behind the companion book to Hong et al., "Student-Teacher
Learning from Clean Inputs to Noisy Inputs" (CVPR 2021).

Random streams, one per role (:mod:`.streams`); data and noise models
(:mod:`.data`, real datasets in :mod:`.datasets`); networks that expose their
features (:mod:`.models`, :mod:`.conv`); the student-teacher loss and frozen
teacher (:mod:`.losses`) and logit distillation (:mod:`.distill`); the
trainer for single networks and ensembles (:mod:`.train`), its fast path
behind one door (:mod:`.fast`); clean teachers (:mod:`.teachers`);
closed-form theory (:mod:`.theory`); statistics over seeds (:mod:`.stats`);
the experimental protocol: stopping and selection on validation, equal
budgets, paired comparisons (:mod:`.protocol`); and the book's figure style
(:mod:`.plotting`). The chapters' experiments are
in :mod:`.experiments`; the book's tooling (chapters, build, sweeps, CLI) is in
:mod:`.tooling`, which the science never imports.
"""

from . import plotting, protocol, stats, streams, teachers, theory
from .data import (
                   GaussianInputs,
                   LinearTarget,
                   ReLUTarget,
                   Samples,
                   Task,
                   draw,
                   draw_members,
                   gaussian_inputs,
                   linear_target,
                   relu_target,
)
from .device import default_device, resolve_device
from .losses import FrozenTeacher, feature_loss, student_teacher_loss, task_loss
from .models import MLP, DeepLinear, FeatureNet, member, select_members, stack_members
from .streams import Stream
from .train import DivergedMembers, TrainConfig, TrainingDiverged, TrainResult, evaluate, log_schedule, train
from .validation import ParameterError

__all__ = [
    "GaussianInputs", "LinearTarget", "ReLUTarget", "Samples", "Task", "draw", "draw_members", "gaussian_inputs",
    "linear_target", "relu_target", "default_device", "resolve_device", "FrozenTeacher", "feature_loss",
    "student_teacher_loss", "task_loss", "MLP", "DeepLinear", "FeatureNet", "member", "select_members",
    "stack_members", "Stream", "TrainConfig", "TrainingDiverged", "DivergedMembers", "TrainResult", "evaluate",
    "log_schedule", "train",
    "ParameterError", "plotting", "protocol", "stats", "streams", "teachers", "theory",
]
__version__ = "0.2.0"
