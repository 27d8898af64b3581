"""The roofline of one training step: what the machine allows, and what a step asks of it.

A step cannot take less than ``max(FLOPs / peak FLOP rate, bytes / peak memory bandwidth)``
(Williams, Waterman and Patterson, 2009). This module measures both peaks on this machine and
counts both demands of a step by running it under two observers:

* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products and convolutions,
  forward and backward, as dispatched), with the backward of a grouped convolution counted right
  (:func:`conv_backward_flops`);
* bytes: :class:`ByteCounter`, which adds up, for every dispatched operator, the bytes of the
  tensors it reads and writes (its tensor arguments and its outputs). Views move nothing and are
  skipped. This is the traffic of the operators *as executed one after the other*, each reading its
  inputs from memory and writing its outputs back: no reuse across operators through the caches.
  It is the right count for a memory-bound chain of small kernels, and an overcount where a
  tensor is still in cache for the next operator (then the achieved fraction can pass 100%).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of ``repeats`` products of two ``size x size`` matrices."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2.0 * size**3 / _best_seconds(lambda: a @ b, repeats)


def stream_bandwidth(mib: int = 256, repeats: int = 5) -> dict[str, float]:
    """Bytes/s of STREAM's copy (``a = b``) and triad (``a = b + 3 c``) over float32 arrays of ``mib`` MiB.

    Each array is eight times the last-level cache of common machines, so every byte comes from
    main memory. Bytes are counted as STREAM counts them: 2 arrays for copy, 3 for triad.
    """
    n = mib * 2**20 // 4
    a, b, c = torch.empty(n), torch.randn(n), torch.randn(n)
    copy = _best_seconds(lambda: a.copy_(b), repeats)
    triad = _best_seconds(lambda: torch.add(b, c, alpha=3.0, out=a), repeats)
    return {"copy": 2 * 4 * n / copy, "triad": 3 * 4 * n / triad}


def _nbytes(t: torch.Tensor) -> int:
    """Bytes an operator touches reading or writing ``t``: its elements, or its storage if smaller (a broadcast)."""
    return min(t.numel() * t.element_size(), t.untyped_storage().nbytes())


class ByteCounter(TorchDispatchMode):
    """Adds up the bytes of the tensor inputs and outputs of every dispatched operator that is not a view."""

    def __init__(self):
        super().__init__()
        self.bytes = 0
        self.by_op: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
            moved = sum(_nbytes(t) for t in tensors)
            self.bytes += moved
            name = func.overloadpacket.__name__
            self.by_op[name] = self.by_op.get(name, 0) + moved
        return out


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """FLOPs of a convolution's backward: each gradient asked for (input, weight) costs what the forward costs.

    torch's own formula counts the weight gradient of a grouped convolution as if every input channel met
    every output channel: ``groups`` times too many (15x for the denoiser ensemble's backward, measured).
    """
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count(run: Callable[[], object]) -> tuple[float, float]:
    """(FLOPs, bytes) of one call of ``run``."""
    flops = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flops})
    moved = ByteCounter()
    with flops, moved:
        run()
    return float(flops.get_total_flops()), float(moved.bytes)


def per_step(run: Callable[[int], object], steps: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one step: the counts of ``2 * steps`` steps minus those of ``steps``, over ``steps``.

    The difference removes what a run does once (building the model, the teacher's features, logging).
    """
    f1, b1 = count(lambda: run(steps))
    f2, b2 = count(lambda: run(2 * steps))
    return (f2 - f1) / steps, (b2 - b1) / steps


def bound_seconds(flops: float, moved: float, peak_flops: float, bandwidth: float) -> float:
    """The roofline's lower bound on the time of a step."""
    return max(flops / peak_flops, moved / bandwidth)


def profile(run: Callable[[], object], rows: int = 12) -> str:
    """The operators where a run spends its time (self CPU time), as a table."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    run()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=28)
