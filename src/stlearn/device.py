"""One device argument, threaded through data, models and trainers.

``None`` means: CUDA when available, else the CPU.
"""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device=None) -> torch.device:
    return default_device() if device is None else torch.device(device)
