"""Custom autograd Functions and kernels of the fast path: same values, fewer passes over memory.

Each has a plain counterpart that reads as the formula: :meth:`stlearn.models.StackedLinear.forward`
(``x W^T + b``), :func:`stlearn.losses.half_mean_square` and :func:`stlearn.losses.log_softmax`.
``tests/library/test_fast.py`` checks each against plain autograd in float32 and float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def half_mean_square(diff: Tensor) -> Tensor:
    """``(1/2n) sum_i ||diff_i||^2`` over the last two dimensions, in one pass (``n = diff.shape[-2]``)."""
    return torch.linalg.vector_norm(diff, dim=(-2, -1)).square() * (0.5 / diff.shape[-2])


def member_linear(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    """``x W^T + b`` for stacked weights ``(E, out, in)`` (:class:`MemberLinear`)."""
    return MemberLinear.apply(x, w, b)


class MemberLinear(torch.autograd.Function):
    """``x W^T + b`` for stacked weights ``(E, out, in)``, with a backward chosen per shape.

    Measured on CPU (``benchmarks/bench_ensemble.py``): autograd's own backward
    of ``x @ W^T`` yields ``dW`` transposed, which the gradient accumulator then
    copies element by element (a fifth of a deep linear ensemble step); MKL's
    batched GEMM is several times slower for ``g^T x`` when ``in`` is small
    than for ``x^T g``; a contraction over one output unit is faster as a
    broadcast product than as a GEMM; and ``baddbmm`` is slower than a GEMM
    followed by an in-place bias add.
    """

    generate_vmap_rule = True  # usable under torch.func transforms

    @staticmethod
    def forward(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        y = torch.matmul(x, w.transpose(-1, -2))  # inputs shared by all members (n, in) broadcast over them
        return y if b is None else y.add_(b)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, w, b = inputs
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None

    @staticmethod
    def backward(ctx, g: Tensor):
        x, w = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = input_grad(g, w)
            if x.dim() == 2:  # shared inputs: their gradient sums over members
                gx = gx.sum(0)
        if ctx.needs_input_grad[1]:
            gw = weight_grad(x, g, w)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum(-2, keepdim=True)
        return gx, gw, gb


def input_grad(g: Tensor, w: Tensor) -> Tensor:
    """``g W``, the gradient at a layer's input from ``g`` at its output (a broadcast product for one unit)."""
    return g * w if w.shape[-2] == 1 else torch.matmul(g, w)


def weight_grad(x: Tensor, g: Tensor, w: Tensor) -> Tensor:
    """``g^T x``, the gradient of the weight ``w`` of a layer with input ``x`` and output gradient ``g``."""
    if w.shape[-1] < w.shape[-2]:  # few inputs: the transposed product, laid out afresh
        return torch.matmul(x.transpose(-1, -2), g).transpose(-1, -2).contiguous()
    return torch.matmul(g.transpose(-1, -2), x)


_FUSE_ABOVE = 1 << 16  # elements


class _HalfMeanSquaredDistance(torch.autograd.Function):
    """``(1/2n) sum_i ||a_i - b_i||^2`` over the last two dimensions, in one pass each way.

    Autograd's version of ``0.5 * (a - b).pow(2).sum(-1).mean(-1)`` makes five
    passes over the ``(E, n, width)`` difference; in the ensemble step of a
    wide network that was more than half of the time
    (``benchmarks/bench_ensemble.py``). The gradient is ``(a - b) / n``.
    """

    generate_vmap_rule = True  # usable under torch.func transforms

    @staticmethod
    def forward(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        diff = a - b  # also returned, for backward
        return half_mean_square(diff), diff

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1])
        ctx.b_shape = inputs[1].shape

    @staticmethod
    def backward(ctx, g: Tensor, _):
        (diff,) = ctx.saved_tensors
        ga = diff * (g / diff.shape[-2])[..., None, None]
        gb = -ga.sum_to_size(ctx.b_shape) if ctx.needs_input_grad[1] else None
        return (ga if ctx.needs_input_grad[0] else None), gb


def half_mean_squared_distance(a: Tensor, b: Tensor) -> Tensor:
    """``(1/2n) sum_i ||a_i - b_i||^2`` per member, one pass each way (:func:`stlearn.losses.half_mean_square`)."""
    if a.numel() < _FUSE_ABOVE:  # small tensors: a custom Function's Python overhead outweighs the passes saved
        return half_mean_square(a - b)
    return _HalfMeanSquaredDistance.apply(a, b)[0]


def log_softmax(logits: Tensor) -> Tensor:
    """``log_softmax`` over the last (class) dimension, computed along the transposed view (same values).

    PyTorch's CPU kernel over a short last dimension is far slower than over a
    strided one: 1.9 ms against 0.24 ms for ``(20, 1000, 10)`` logits.
    """
    return F.log_softmax(logits.transpose(-1, -2), dim=-2).transpose(-1, -2)
