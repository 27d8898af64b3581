"""One device argument, threaded through data, models and trainers.

``None`` means: CUDA when available, else the CPU.
"""

from __future__ import annotations

import ctypes
import functools
import sys

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc's malloc.h)
_MMAP_THRESHOLD_MAX = 32 << 20  # the largest value glibc accepts on 64-bit systems


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device=None) -> torch.device:
    return default_device() if device is None else torch.device(device)


@functools.cache
def retain_cpu_memory() -> bool:
    """Keep freed blocks of up to 32 MiB in the process's heap instead of returning them to the OS.

    PyTorch allocates every CPU tensor with ``malloc``. glibc serves blocks
    above its mmap threshold with fresh pages, which the first write then
    faults in one by one: in an ensemble step of the book's wide networks that
    was 670 page faults and a fifth of the time, for tensors freed a moment
    earlier (``benchmarks/bench_ensemble.py``). Raising the thresholds makes
    malloc reuse them. Process-wide, idempotent; returns whether it applied
    (glibc on Linux only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX))
    except (OSError, AttributeError):  # another C library (musl): leave its allocator alone
        return False
