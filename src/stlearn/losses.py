"""The student-teacher loss and the frozen teacher.

Reduction (per member, ``n`` samples in the batch)::

    task    = (1/2n) sum_i ||f(x~_i) - y_i||^2              (regression, "mse")
            = (1/n)  sum_i CE(f(x~_i), y_i)                 (classification, "ce")
    feature = (1/2n) sum_{l in layers} sum_i ||h_l(x~_i) - t_l(x_i)||^2
    total   = task + lam * feature

where ``t_l(x_i)`` is the frozen teacher's feature of layer ``l`` on the
*clean* input. With ``lam = 0`` the total is exactly the task loss (the feature
term is still reported, so every run logs the same named terms).

**The scale of lam** (:data:`FEATURE_SCALES`). On the ``"sum"`` scale (the
linear theory's, and the default) ``lam`` multiplies the feature term as
written: it sums over units, so with wide layers the feature term can be
hundreds of times the task term. On the ``"relative"`` scale (the experiment
chapters') the weight applied is

    weight = lam * task(start) / feature(start)

with ``task(start)`` and ``feature(start)`` the two terms of the student where
its training starts, on the whole training set (the noisy inputs, and the
teacher's features on the clean ones), measured once per member before the
first step (:func:`feature_weight`). So ``lam = 1`` means the feature term and
the task term are of one size where training starts; ``lam = 0.01`` and
``lam = 10`` put the feature term at a hundredth and at ten times the task
term there. The scale follows each student's own start: a residual denoiser
whose untrained output is already close to its target, or a student started
from the teacher's weights, has a small task term and gets a small weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import fast
from .validation import ParameterError, check_choice, check_int

Tensor = torch.Tensor
TASK_LOSSES = ("mse", "ce")
FEATURE_SCALES = ("sum", "relative")  # what lam = 1 means: see "The scale of lam" above


class FrozenTeacher:
    """The one place where a teacher is frozen.

    Holds the network in eval mode with ``requires_grad=False`` and computes its
    features under ``torch.no_grad()``. It is deliberately not an ``nn.Module``,
    so it can never be registered as a submodule or handed to an optimizer.
    ``transform`` optionally re-mixes the features (e.g. a rotation of the hidden
    units) without changing which network produced them: ``{layer: T}`` with
    ``T`` of shape ``(m', m)``, or ``(E, m', m)`` for one mix per ensemble member.
    ``source`` names, per student layer, the teacher layer it is matched to when
    they differ (``{"h1": "h2"}``: a shallow student learns a deeper teacher's
    last hidden layer). ``views = K``: the clean inputs are ``K`` copies of one set, one beside each noisy view of
    a burst; the features are computed on the first copy and repeated. ``chunk``: the features are computed
    that many inputs at a time (default all at once), so that a large training set never holds every hidden
    layer of the teacher for every input at once.
    """

    def __init__(self, model: nn.Module, transform: Mapping[str, Tensor] | None = None,
                 source: Mapping[str, str] | None = None, views: int = 1, chunk: int | None = None):
        self._model = model.eval()
        for p in self._model.parameters():
            p.requires_grad_(False)
        self.transform = dict(transform or {})
        self.source = dict(source or {})
        self.views = check_int("views", views, low=1)
        self.chunk = None if chunk is None else check_int("chunk", chunk, low=1)

    @property
    def model(self) -> nn.Module:
        return self._model

    @torch.no_grad()
    def features(self, x_clean: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        n = x_clean.shape[-2] // self.views
        if n * self.views != x_clean.shape[-2]:
            raise ParameterError(f"views must divide the number of inputs {x_clean.shape[-2]}; got {self.views}")
        wanted = [self.source.get(l, l) for l in layers]
        step = n if self.chunk is None else self.chunk
        parts = []
        for i in range(0, n, step):  # each chunk keeps only the layers matched
            feats = self._model(x_clean[..., i:min(i + step, n), :], return_features=True)[1]
            missing = [w for w in wanted if w not in feats]
            if missing:
                raise ParameterError(f"layers must be among the teacher's {sorted(feats)}; got {missing}")
            parts.append({w: feats[w] for w in wanted})
        result = {}
        for l in layers:
            source = self.source.get(l, l)
            t = parts[0][source] if len(parts) == 1 else torch.cat([p[source] for p in parts], dim=-2)
            if l in self.transform:
                t = torch.matmul(t, self.transform[l].transpose(-1, -2).to(t))
            # rows contiguous (each minibatch selects rows of them), the first copy's features for every view
            result[l] = t.repeat(*[1] * (t.dim() - 2), self.views, 1) if self.views > 1 else t.contiguous()
        return result

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        return self._model(x)


def half_mean_square(diff: Tensor) -> Tensor:
    """``(1/2n) sum_i ||diff_i||^2`` over the last two dimensions (``n = diff.shape[-2]``), per member."""
    return 0.5 * diff.pow(2).sum(-1).mean(-1)


def half_mean_squared_distance(a: Tensor, b: Tensor) -> Tensor:
    """``(1/2n) sum_i ||a_i - b_i||^2`` per member: shape ``(E,)``, or ``()`` for one network."""
    if fast.enabled():
        return fast.half_mean_squared_distance(a, b)
    return half_mean_square(a - b)


def log_softmax(logits: Tensor) -> Tensor:
    """``log_softmax`` over the last (class) dimension."""
    return fast.log_softmax(logits) if fast.enabled() else F.log_softmax(logits, dim=-1)


def task_loss(output: Tensor, y: Tensor, kind: str = "mse") -> Tensor:
    """Per-member task loss with the reduction documented above."""
    if kind == "mse":
        return half_mean_squared_distance(output, y)
    if kind == "ce":
        logits = output.movedim(-1, 1) if output.dim() == 3 else output
        labels = y.expand(output.shape[:-1]) if output.dim() == 3 else y
        return F.cross_entropy(logits, labels.long(), reduction="none").mean(-1)
    raise ParameterError(f"task must be one of {list(TASK_LOSSES)}; got {kind!r}")


def feature_loss(student_features: Mapping[str, Tensor], teacher_features: Mapping[str, Tensor],
                 layers: Sequence[str]) -> Tensor:
    """``(1/2n) sum_l sum_i ||h_l - t_l||^2`` per member; zero when ``layers`` is empty."""
    total = None
    for l in layers:
        if l not in student_features:
            raise ParameterError(f"layers must be among the student's {sorted(student_features)}; got {l!r}")
        term = half_mean_squared_distance(student_features[l], teacher_features[l])
        total = term if total is None else total + term
    return total


@torch.no_grad()
def feature_weight(lam: Tensor | float, scale: str, output: Tensor, y: Tensor,
                   student_features: Mapping[str, Tensor], teacher_features: Mapping[str, Tensor] | None,
                   layers: Sequence[str], task: str = "mse") -> Tensor | float:
    """The weight that multiplies the feature term for ``lam`` on ``scale`` (see "The scale of lam" above).

    ``output`` and ``student_features`` are the student's on the training inputs where training starts,
    ``teacher_features`` the teacher's on the clean training inputs; one weight per member.
    """
    check_choice("feature_scale", scale, FEATURE_SCALES)
    if scale == "sum" or teacher_features is None or not layers:
        return lam
    start = feature_loss(student_features, teacher_features, layers)
    if not bool((start > 0).all()):
        raise ParameterError("feature_scale='relative' needs a student whose matched features differ from the "
                             "teacher's where training starts; use feature_scale='sum'")
    return lam * task_loss(output, y, task) / start


def student_teacher_loss(output: Tensor, student_features: Mapping[str, Tensor], y: Tensor,
                         teacher_features: Mapping[str, Tensor] | None, lam: Tensor | float,
                         layers: Sequence[str], task: str = "mse") -> dict[str, Tensor]:
    """The named terms ``{"task", "feature", "total"}`` of the ST loss, each ``(E,)`` or ``()``."""
    check_choice("task", task, TASK_LOSSES)
    terms = {"task": task_loss(output, y, task)}
    if teacher_features is None or not layers:
        terms["feature"] = torch.zeros_like(terms["task"])
        terms["total"] = terms["task"]
        return terms
    terms["feature"] = feature_loss(student_features, teacher_features, layers)
    terms["total"] = terms["task"] + lam * terms["feature"]
    return terms
