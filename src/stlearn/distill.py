"""Output and logit distillation (Hinton et al., 2015), the well-known references for the ST loss.

For regression, output distillation adds ``lam`` times the squared distance of
the student's output on the noisy input to the teacher's on the clean input:

    (1/2n) sum ||f(x~) - y||^2 + lam (1/2n) sum ||f(x~) - g(x)||^2
        = (1 + lam) (1/2n) sum ||f(x~) - (y + lam g(x)) / (1 + lam)||^2 + const,

the base loss on blended targets (:func:`blended_targets`) scaled by ``1 + lam``
(its curvature too: :func:`stlearn.train.curvature_rates` measures it).

For classification:

The student sees the noisy input and is trained on

    total = (1 - alpha) * CE(f(x~), y) + alpha * T^2 * KL(softmax(g(x) / T) || softmax(f(x~) / T))

where ``g(x)`` are the frozen teacher's logits on the *clean* input and ``T``
the temperature (``T^2`` keeps the gradient scale independent of ``T``).
Every term is ``(E,)`` per member, as in :mod:`stlearn.losses`.

:func:`train_distilled` is a small loop for it that reuses the library's
pieces (task loss, evaluation, log schedule, tidy history); the ST trainer
:func:`stlearn.train.train` is left unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from . import fast
from .data import Samples
from .losses import FrozenTeacher, log_softmax, task_loss
from .streams import as_stream
from .train import TrainConfig, log_rows, log_schedule, make_optimizer, minibatch
from .validation import ParameterError, check_float

Tensor = torch.Tensor


def blended_targets(y: Tensor, teacher_output: Tensor, lam) -> Tensor:
    """``(y + lam g(x)) / (1 + lam)``: output distillation for squared error as targets; ``lam`` per member ``(E,)``."""
    lam = torch.as_tensor(lam, dtype=y.dtype, device=y.device)
    lam = lam.reshape((-1,) + (1,) * (y.dim() - 1)) if lam.dim() else lam
    return (y + lam * teacher_output) / (1 + lam)


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, temperature) -> Tensor:
    """``T^2 * mean_i KL(softmax(t_i / T) || softmax(s_i / T))`` per member (``T`` one number or ``(E,)``)."""
    scale = temperature.reshape(-1, 1, 1) if isinstance(temperature, Tensor) else temperature
    log_p_student = log_softmax(student_logits / scale)
    log_p_teacher = log_softmax(teacher_logits / scale)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)
    return temperature**2 * kl.mean(-1)


def distilled_terms(student_logits: Tensor, y: Tensor, teacher_logits: Tensor, alpha: float,
                    temperature: float) -> dict[str, Tensor]:
    """The named terms ``{"task", "distill", "total"}``."""
    terms = {"task": task_loss(student_logits, y, "ce"),
             "distill": distillation_loss(student_logits, teacher_logits, temperature)}
    terms["total"] = (1 - alpha) * terms["task"] + alpha * terms["distill"]
    return terms


def train_distilled(model: nn.Module, data: Samples, teacher: FrozenTeacher, *, alpha: float = 0.5,
                    temperature: float = 4.0, config: TrainConfig | None = None,
                    eval_sets: Mapping[str, Samples] | None = None) -> pd.DataFrame:
    """Train ``model`` on the noisy inputs with the distillation loss; returns the tidy history.

    ``config`` defaults to ``TrainConfig(task="ce")``. ``alpha`` and ``temperature`` are one number
    or one per member of an ensemble, so that a grid of distillation settings trains as one ensemble.
    """
    config = config or TrainConfig(task="ce")
    like = next(model.parameters())
    members = getattr(model, "members", None)
    alpha = _per_member("alpha", alpha, members, like, high=1.0)
    temperature = _per_member("temperature", temperature, members, like, low_open=True)
    if config.task != "ce":
        raise ParameterError(f"distillation needs a classification task (task='ce'); got {config.task!r}")
    with fast.switched(config.fast):
        teacher_logits = teacher(data.clean)
        opt = make_optimizer(list(model.parameters()), config)
        schedule = set(log_schedule(config.steps, config.log_points))
        gen = as_stream(config.seed).child("batch").generator()
        rows: list[dict] = []
        # disable only when asked: an explicit disable=False would override TQDM_DISABLE in chapter kernels
        bar = tqdm(range(config.steps + 1), desc="distilling", leave=False,
                   **({} if config.progress else {"disable": True}))
        for step in bar:
            if step in schedule:
                rows.extend(_log(model, data, teacher_logits, alpha, temperature, eval_sets or {}, step))
            if step == config.steps:
                break
            batch, picked = minibatch(data, {"logits": teacher_logits}, config.batch_size, gen)
            terms = distilled_terms(model(batch.noisy), batch.y, picked["logits"], alpha, temperature)
            opt.zero_grad()
            terms["total"].sum().backward()
            opt.step()
    return pd.DataFrame(rows)


def _per_member(name: str, value, members: int | None, like: Tensor, **bounds):
    """One checked number, or ``(E,)`` values, one per member."""
    if not isinstance(value, (list, tuple)):
        return check_float(name, value, low=0.0, **bounds)
    values = [check_float(f"{name}[{i}]", v, low=0.0, **bounds) for i, v in enumerate(value)]
    if members is None or len(values) != members:
        raise ParameterError(f"{name} must be one number or one per member ({members}); got {len(values)}")
    return torch.tensor(values, device=like.device, dtype=like.dtype)


@torch.no_grad()
def _log(model, data, teacher_logits, alpha, temperature, eval_sets, step) -> list[dict]:
    terms = distilled_terms(model(data.noisy), data.y, teacher_logits, alpha, temperature)
    return log_rows(model, {f"train_{k}": v for k, v in terms.items()}, eval_sets, "ce", step)
