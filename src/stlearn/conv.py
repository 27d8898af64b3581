"""A small convolutional network with the conventions of :mod:`stlearn.models`.

Inputs are flat rows ``(n, C*H*W)`` (shared by all members) or ``(E, n, C*H*W)``
(one set per member), as for the MLPs, so the same :class:`stlearn.data.Samples`
and the same trainer serve both. An ensemble of ``E`` members runs its
convolution as *one* batched matrix product: the input patches (im2col,
``torch.nn.functional.unfold``) of member ``e`` meet only member ``e``'s
filters, exactly as the stacked linear layers do. On a CPU this is much
cheaper than a grouped convolution for the tiny images used here.

``model(x, return_features=True)`` returns ``(logits, {"h1": ..., "h2": ...})``:
``h1`` the rectified convolution maps (flattened per sample), ``h2`` the
rectified dense hidden layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .device import resolve_device
from .models import StackedLinear, check_member, copy_member, member_normal
from .streams import Stream, as_streams
from .validation import check_float, check_int

Tensor = torch.Tensor


class StackedConv2d(nn.Module):
    """``same``-padded 2-D convolution for one network or a stack of ``E`` members.

    Weights are ``(C_out, C_in, k, k)`` or ``(E, C_out, C_in, k, k)``, initialised
    per member from its stream with ``N(0, init_scale^2 / (C_in k^2))`` entries.
    """

    def __init__(self, shape: Sequence[int], c_out: int, kernel: int, members: int | None,
                 rngs: Sequence[Stream], init_scale: float, layer: int):
        super().__init__()
        self.shape = tuple(shape)  # (C_in, H, W)
        self.members, self.kernel = members, kernel
        c_in = self.shape[0]
        self.weight = nn.Parameter(member_normal((c_out, c_in, kernel, kernel), rngs, layer,
                                                 init_scale / math.sqrt(c_in * kernel * kernel), members))
        self.bias = nn.Parameter(torch.zeros((c_out,) if members is None else (members, c_out)))

    @property
    def out_features(self) -> int:
        return self.weight.shape[-4] * self.shape[1] * self.shape[2]

    def forward(self, x: Tensor) -> Tensor:
        c_in, h, w = self.shape
        # im2col: (..., n, C_in*H*W) -> patches (..., n, H*W, C_in*k*k), then one (batched) matmul
        patches = F.unfold(x.reshape(-1, c_in, h, w), self.kernel, padding=self.kernel // 2)
        patches = patches.transpose(1, 2).reshape(*x.shape[:-1], h * w, -1)
        weight = self.weight.flatten(-3)  # (..., C_out, C_in*k*k)
        if self.members is not None:
            weight = weight.unsqueeze(1)  # (E, 1, C_out, C_in*k*k): broadcast over samples
        bias = self.bias if self.members is None else self.bias.unsqueeze(1)
        y = torch.matmul(patches, weight.transpose(-1, -2)) + bias.unsqueeze(-2)  # (..., n, H*W, C_out)
        return y.transpose(-1, -2).flatten(-2)  # channel-major (..., n, C_out*H*W), as a conv layer


def avg_pool(x: Tensor, shape: Sequence[int], size: int) -> Tensor:
    """Average pooling of flat maps ``(..., C*H*W)`` over ``size x size`` blocks (any leading dims)."""
    if size == 1:
        return x
    c, h, w = shape
    pooled = F.avg_pool2d(x.reshape(-1, c, h, w), size)
    return pooled.reshape(*x.shape[:-1], -1)


class ConvNet(nn.Module):
    """``conv(k x k, channels) -> relu -> avg-pool -> dense(hidden) -> relu -> dense(d_out)``.

    Hidden features: ``"h1"`` (rectified, pooled convolution maps) and ``"h2"``
    (dense hidden layer).
    """

    def __init__(self, shape: Sequence[int], channels: int, hidden: int, d_out: int, *, kernel: int = 3,
                 pool: int = 2, members: int | None = None, init_scale: float = 1.0,
                 rng: Stream | int | Sequence[Stream] = 0,
                 device=None, dtype: torch.dtype = torch.float32):
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"shape must be (channels, height, width); got {tuple(shape)}")
        shape = tuple(check_int(f"shape[{i}]", s, low=1) for i, s in enumerate(shape))
        channels = check_int("channels", channels, low=1)
        hidden = check_int("hidden", hidden, low=1)
        d_out = check_int("d_out", d_out, low=1)
        kernel = check_int("kernel", kernel, low=1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd integer >= 1 (same padding); got {kernel}")
        pool = check_int("pool", pool, low=1)
        if shape[1] % pool or shape[2] % pool:
            raise ValueError(f"pool must divide the image size {shape[1:]}; got {pool}")
        if members is not None:
            members = check_int("members", members, low=1)
        init_scale = check_float("init_scale", init_scale, low=0.0)
        rngs = as_streams(rng, members, "rng")
        self.config = dict(shape=shape, channels=channels, hidden=hidden, d_out=d_out, kernel=kernel,
                           pool=pool, init_scale=init_scale)
        self.members = members
        self.conv = StackedConv2d(shape, channels, kernel, members, rngs, init_scale, layer=0)
        self.maps = (channels, shape[1], shape[2])
        self.pool = pool
        self.dense = StackedLinear(self.conv.out_features // pool**2, hidden, members, rngs, init_scale, True, layer=1)
        self.out = StackedLinear(hidden, d_out, members, rngs, init_scale, True, layer=2)
        self.to(device=resolve_device(device), dtype=dtype)

    feature_names = ["h1", "h2"]

    def forward(self, x: Tensor, return_features: bool = False):
        h1 = avg_pool(torch.relu(self.conv(x)), self.maps, self.pool)
        h2 = torch.relu(self.dense(h1))
        out = self.out(h2)
        return (out, {"h1": h1, "h2": h2}) if return_features else out


def conv_member(model: ConvNet, e: int) -> ConvNet:
    """A single-network copy of member ``e`` of a :class:`ConvNet` ensemble."""
    check_member(model, e, "conv_member")
    ref = next(model.parameters())
    return copy_member(model, ConvNet(**model.config, device=ref.device, dtype=ref.dtype), e)
