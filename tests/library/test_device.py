"""The CPU allocator's setting (stlearn.device.retain_freed_memory)."""

import resource

import pytest
import torch

from stlearn.device import retain_freed_memory


def test_freed_large_tensors_are_reused_without_faulting_their_pages_in_again():
    if not retain_freed_memory():
        pytest.skip("the C library is not glibc")
    # 48 MB, above the 32 MiB that glibc's own threshold can rise to: left as it starts, glibc maps such a
    # block afresh at every allocation (11,719 page faults each time, measured)
    numel, pages = 12_000_000, 12_000_000 * 4 // resource.getpagesize()
    for _ in range(10):
        # the heap grows to hold it: a few times, as the 64-byte-aligned block does not fit in the first
        # free one left by a block of the same size (glibc's memalign), until free blocks coalesce
        torch.empty(numel).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.empty(numel).fill_(1.0)  # freed at once, as a step's temporaries are
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < pages, f"{faults} page faults in 10 allocations: freed blocks went back to the kernel"
    assert retain_freed_memory() is True  # applied once, the answer kept
