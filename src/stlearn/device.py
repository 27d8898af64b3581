"""One device argument, threaded through data, models and trainers; and the CPU allocator's setting.

``None`` means: CUDA when available, else the CPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt() parameters (malloc.h)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device=None) -> torch.device:
    return default_device() if device is None else torch.device(device)


@functools.cache
def retain_freed_memory() -> bool:
    """Have glibc's ``malloc`` keep freed blocks for reuse rather than hand them back to the kernel.

    A training step frees and reallocates the same large tensors every step (a CNN ensemble's maps are
    megabytes). By default glibc maps each such block afresh and unmaps it when it is freed, so every
    step faults its pages in again (glibc's threshold adapts, yet 1,100 to 4,700 page faults a step were
    measured for the book's CNN ensembles). Raising the two thresholds below made the digits CNN's and
    the denoiser's steps 1.10x to 1.20x faster, the 1-D CNN's 1.00x to 1.33x (``benchmarks/README.md``,
    ``bench_allocator.py``). Every chapter printed the same numbers: tensors stay 64-byte aligned.
    Process-wide and applied once (:func:`stlearn.train` calls it); returns False where the C library
    is not glibc, and changes nothing there.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    # 1 GiB: blocks up to that size come from the heap (glibc caps the threshold on some versions;
    # 32 MiB, its own ceiling for the dynamic threshold, always holds); and the heap is never trimmed
    mapped = mallopt(_M_MMAP_THRESHOLD, 2**30) or mallopt(_M_MMAP_THRESHOLD, 2**25)
    return bool(mapped and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
