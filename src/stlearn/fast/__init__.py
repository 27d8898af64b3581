"""The fast path, behind one door.

The library's formulas are written plainly where they belong (a layer is
``x W^T + b`` in :mod:`stlearn.models`, the ST loss a sum of squares in
:mod:`stlearn.losses`, an SGD step ``p -= lr * g`` in :mod:`stlearn.train`),
and autograd differentiates them. This subpackage holds the same computations
written for speed on a CPU, where the book's ensembles are bound by passes over
memory (``benchmarks/``):

* :mod:`.functions`: custom autograd Functions (the stacked linear layer, the
  one-pass squared distance) and the transposed ``log_softmax``;
* :mod:`.optim`: SGD and Adam in foreach kernels, with per-member rates;
* :mod:`.fused`: the ST loss's gradients written out by hand for deep linear
  and ReLU networks.

The fast path is on by default. ``TrainConfig(fast=False)`` trains with the
plain reference instead, and ``with stlearn.fast.disabled():`` turns it off for
any code (models and losses then compute the plain formulas). The two agree to
rounding (``tests/library/test_fast.py``, float32 and float64, against plain
autograd on plain ``torch.nn`` modules).
"""

from __future__ import annotations

import contextlib

from .functions import half_mean_squared_distance, log_softmax, member_linear

__all__ = ["disabled", "enabled", "half_mean_squared_distance", "log_softmax", "member_linear", "switched"]

_ENABLED = True


def enabled() -> bool:
    """Whether models, losses and the trainer take the fast path."""
    return _ENABLED


@contextlib.contextmanager
def switched(on: bool):
    """Take the fast path (``on=True``) or the plain reference inside the block."""
    global _ENABLED  # noqa: PLW0603 -- one switch for the process, like torch.backends flags
    saved, _ENABLED = _ENABLED, bool(on)
    try:
        yield
    finally:
        _ENABLED = saved


def disabled():
    """The plain reference inside the block."""
    return switched(False)
