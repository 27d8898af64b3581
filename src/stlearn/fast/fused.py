"""The ST loss and its gradients, written out by hand for deep linear and ReLU networks.

On a CPU the training step of the book's ensembles is bound by passes over
``(E, n, width)`` tensors more than by its matrix products
(``benchmarks/bench_ensemble.py``). Autograd makes more of those passes than
the mathematics needs: bias and ReLU out of place, the feature-loss gradient
scaled, then added to the back-propagated one, then masked, each into a fresh
tensor. Here the forward keeps every hidden feature ``h_l`` and its difference
``h_l - t_l`` to the teacher's, and the backward is, from the top layer down::

    g_L = dloss/doutput                                   (task loss)
    dW_l = g_l^T h_{l-1},   db_l = sum_i g_l
    g_{l-1} = (g_l W_l + lam/n (h_{l-1} - t_{l-1})) * [h_{l-1} > 0]

with the bias and the ReLU applied in place, the feature term accumulated by
the matrix product itself (``baddbmm`` into the spent difference) and the
mask applied in place.

:func:`st_gradients` returns the same named terms as
:func:`stlearn.losses.student_teacher_loss` and leaves in each parameter's
``.grad`` the gradient of ``terms["total"].sum()``; ``tests/library/test_fast.py``
checks both against autograd. :func:`supports` says which models it covers
(:class:`~stlearn.models.DeepLinear`, and :class:`~stlearn.models.MLP` with
ReLU); :func:`stlearn.train.train` uses autograd for the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..data import Samples
from ..models import MLP, DeepLinear, FeatureNet
from ..validation import ParameterError
from .functions import half_mean_square, input_grad, log_softmax, weight_grad

Tensor = torch.Tensor


def supports(model: nn.Module) -> bool:
    """Whether :func:`st_gradients` covers ``model``: a deep linear network or a ReLU MLP."""
    return isinstance(model, DeepLinear) or (isinstance(model, MLP) and isinstance(model.activation, nn.ReLU))


def _forward(model: FeatureNet, x: Tensor) -> list[Tensor]:
    """``[x, h_1, ..., h_{L-1}, output]``, each hidden layer's bias and ReLU applied in place."""
    relu = isinstance(model, MLP)
    hs = [x]
    for l, layer in enumerate(model.layers, start=1):
        z = torch.matmul(hs[-1], layer.weight.transpose(-1, -2))
        if layer.bias is not None:
            z.add_(layer.bias)
        if relu and l < model.depth:
            z.clamp_min_(0)
        hs.append(z)
    return hs


def _task_terms(output: Tensor, y: Tensor, task: str) -> tuple[Tensor, Tensor]:
    """The per-member task loss and its gradient with respect to the output."""
    n = output.shape[-2]
    if task == "mse":
        residual = output - y
        loss = half_mean_square(residual)
        return loss, residual.mul_(1.0 / n)
    labels = y.long().expand(output.shape[:-1]).unsqueeze(-1)
    log_p = log_softmax(output)
    loss = -log_p.gather(-1, labels).squeeze(-1).mean(-1)
    grad = log_p.exp_().scatter_add_(-1, labels, torch.full_like(labels, -1, dtype=log_p.dtype))
    return loss, grad.mul_(1.0 / n)


def _input_grad_plus(g: Tensor, w: Tensor, diff: Tensor, scale: Tensor | float) -> Tensor:
    """``g W + scale * diff``, in ``diff``'s memory (spent) when it has the product's shape.

    Then the matrix product accumulates the sum itself. Shapes that broadcast
    (a teacher's features with a member dimension the student lacks) take the
    plain sum.
    """
    product_shape = torch.broadcast_shapes(g.shape[:-2], w.shape[:-2]) + (g.shape[-2], w.shape[-1])
    if diff.shape != product_shape or g.dim() != w.dim():  # also a single network fed a batch with a member dim
        return input_grad(g, w) + scale * diff
    if isinstance(scale, Tensor) or w.shape[-2] == 1:
        diff.mul_(scale)
        scale = 1.0
    if w.shape[-2] == 1:  # one unit: a broadcast product, as in models.input_grad
        return diff.addcmul_(g, w)
    return diff.baddbmm_(g, w, beta=scale) if diff.dim() == 3 else diff.addmm_(g, w, beta=scale)


def _set_grad(p: Tensor, grad: Tensor) -> None:
    """``p.grad = grad``, summed over the dimensions that broadcasting added (as autograd does)."""
    p.grad = grad if grad.shape == p.shape else grad.sum_to_size(p.shape)


@torch.no_grad()
def st_gradients(model: FeatureNet, batch: Samples, teacher_features: Mapping[str, Tensor] | None,
                 lam: Tensor | float, layers: Sequence[str], task: str = "mse") -> dict[str, Tensor]:
    """The terms ``{"task", "feature", "total"}`` of the ST loss on ``batch``; sets every parameter's ``.grad``.

    ``teacher_features`` are the teacher's features of ``batch.clean`` by layer name.
    """
    if not supports(model):
        raise ParameterError(f"st_gradients needs a DeepLinear or a ReLU MLP; got {type(model).__name__} "
                             "(train with TrainConfig(fast=False))")
    hs = _forward(model, batch.noisy)
    task_value, g = _task_terms(hs[-1], batch.y, task)
    n = batch.n
    matched = {int(name[1:]): name for name in layers} if teacher_features is not None else {}
    diffs = {l: hs[l] - teacher_features[name] for l, name in matched.items()}
    feature = torch.zeros_like(task_value)
    for diff in diffs.values():
        feature += half_mean_square(diff)
    scale = lam / n if not isinstance(lam, Tensor) else (lam / n).reshape(-1, 1, 1)
    relu = isinstance(model, MLP)

    for l in range(model.depth, 0, -1):  # layer l maps h_{l-1} to h_l; g is the gradient at its output
        layer = model.layers[l - 1]
        _set_grad(layer.weight, weight_grad(hs[l - 1], g, layer.weight))
        if layer.bias is not None:
            _set_grad(layer.bias, g.sum(-2, keepdim=True))
        if l == 1:
            break
        g = _input_grad_plus(g, layer.weight, diffs[l - 1], scale) if l - 1 in diffs else input_grad(g, layer.weight)
        if relu:
            torch.ops.aten.threshold_backward.grad_input(g, hs[l - 1], 0, grad_input=g)
    total = task_value + lam * feature if diffs else task_value
    return {"task": task_value, "feature": feature, "total": total}
