"""Small convolutional networks (1-D and 2-D) with the conventions of :mod:`stlearn.models`.

Inputs are flat rows ``(n, C*L)`` or ``(n, C*H*W)`` (shared by all members) or
``(E, n, .)`` (one set per member), as for the MLPs, so the same
:class:`stlearn.data.Samples` and the same trainer serve both. An ensemble of
``E`` members runs each convolution as *one* grouped convolution
(``groups=E``): the members lie side by side in the channels, and member
``e``'s channels meet only its filters. On a CPU this was faster, at the
book's sizes, than each im2col formulation (patches times filters in batched
matrix products) that we tried (``benchmarks/README.md``). Maps are 2-D and
channels-last; a signal of length ``L`` is an image of height 1 and width ``L``.

``model(x, return_features=True)`` returns ``(logits, features)``, ``features`` a
mapping ``{"h1": ..., }`` (:class:`Features`): ``h1`` to ``hC`` the rectified,
pooled maps of the ``C`` convolutions (flattened per sample, when first looked
up), ``h{C+1}`` the rectified dense hidden layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .device import resolve_device
from .models import StackedLinear, check_member, copy_member, member_normal
from .streams import Stream, as_streams
from .validation import ParameterError, check_choice, check_float, check_int

Tensor = torch.Tensor


class StackedConv(nn.Module):
    """``same``-padded 1-D or 2-D convolution for one network or a stack of ``E`` members.

    ``shape`` is ``(C_in, L)`` (1-D) or ``(C_in, H, W)`` (2-D). Weights are ``(C_out, C_in, k)`` or
    ``(C_out, C_in, k, k)``, with a leading ``E`` for an ensemble, initialised per member from its
    stream with ``N(0, init_scale^2 / fan_in)`` entries (``fan_in = C_in k`` or ``C_in k^2``).
    """

    def __init__(self, shape: Sequence[int], c_out: int, kernel: int, members: int | None,
                 rngs: Sequence[Stream], init_scale: float, layer: int):
        super().__init__()
        self.shape = tuple(shape)
        if len(self.shape) not in (2, 3):
            raise ParameterError(f"shape must be (channels, length) or (channels, height, width); got {self.shape}")
        self.members, self.kernel = members, kernel
        c_in, taps = self.shape[0], kernel ** (len(self.shape) - 1)
        wshape = (c_out, c_in) + (kernel,) * (len(self.shape) - 1)
        self.weight = nn.Parameter(member_normal(wshape, rngs, layer, init_scale / math.sqrt(c_in * taps), members))
        self.bias = nn.Parameter(torch.zeros((c_out,) if members is None else (members, c_out)))

    @property
    def out_features(self) -> int:
        return self.weight.shape[1 if self.members is not None else 0] * math.prod(self.shape[1:])

    def forward(self, x: Tensor) -> Tensor:
        """Flat inputs ``(n, C_in*P)`` or ``(E, n, C_in*P)`` to flat maps ``(..., n, C_out*P)``."""
        return from_maps(self.maps(to_maps(x, self.shape, self.members)), self.members)

    def maps(self, images: Tensor) -> Tensor:
        """Maps ``(n, E*C_in, H, W)`` (members side by side in the channels; ``H = 1`` for signals) to
        ``(n, E*C_out, H, W)``.

        An ensemble is one grouped convolution (``groups=E``): member ``e``'s channels meet only its filters.
        A signal is an image of height 1, convolved by a ``1 x k`` kernel.
        """
        groups = self.members or 1
        weight = self.weight.reshape(-1, *self.weight.shape[-(len(self.shape)):])  # (E*C_out, C_in, k[, k])
        padding = self.kernel // 2
        if len(self.shape) == 2:
            weight, padding = weight.unsqueeze(-2), (0, padding)
        return F.conv2d(images, weight, self.bias.reshape(-1), padding=padding, groups=groups)


def to_maps(x: Tensor, shape: Sequence[int], members: int | None) -> Tensor:
    """Flat rows ``(..., n, C*P)`` (or ``(E, n, C*P)``, or shared ``(n, C*P)`` for ``E`` members) as maps
    ``(n, E*C, H, W)``, a signal of length ``L`` as ``H = 1, W = L``: the layout of a grouped convolution.

    The maps are channels-last (members and channels innermost in memory), where oneDNN's grouped
    convolutions are fastest on a CPU: the MNIST-1D CNN ensemble's features run forward and backward
    about 2x faster than as 1-D channel-major maps (``benchmarks/bench_layout.py``).
    """
    spatial = tuple(shape[1:]) if len(shape) == 3 else (1, shape[1])
    if members is None:
        maps = x.reshape(-1, shape[0], *spatial)
    else:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(members, *x.shape)
        maps = x.transpose(0, 1).reshape(x.shape[1], members * shape[0], *spatial)
    return maps.contiguous(memory_format=torch.channels_last)


def from_maps(maps: Tensor, members: int | None, lead: Sequence[int] | None = None) -> Tensor:
    """Maps ``(n, E*C, *spatial)`` back to flat rows ``(E, n, C*P)`` (channel-major, as a conv layer's output)."""
    n = maps.shape[0]
    if members is None:
        return maps.reshape(*(lead or (n,)), -1)
    return maps.reshape(n, members, -1).transpose(0, 1)


StackedConv2d = StackedConv  # the 2-D layer's former name


class ConvNet(nn.Module):
    """``[conv(k, c) -> relu -> pool] x C -> dense(hidden) -> relu -> dense(d_out)``, 1-D or 2-D.

    ``pooling`` is ``"avg"`` or ``"max"`` over blocks of ``pool``.

    ``shape`` is ``(channels, length)`` for signals or ``(channels, height, width)`` for images;
    ``channels`` one number (one convolution) or one per convolution. Hidden features: ``"h1"`` to
    ``"hC"`` (rectified, pooled maps of each convolution) and ``"h{C+1}"`` (dense hidden layer).
    """

    def __init__(self, shape: Sequence[int], channels: int | Sequence[int], hidden: int, d_out: int, *,
                 kernel: int = 3, pool: int = 2, pooling: str = "avg", members: int | None = None,
                 init_scale: float = 1.0,
                 rng: Stream | int | Sequence[Stream] = 0,
                 device=None, dtype: torch.dtype | None = None):
        super().__init__()
        if len(shape) not in (2, 3):
            raise ValueError(f"shape must be (channels, length) or (channels, height, width); got {tuple(shape)}")
        shape = tuple(check_int(f"shape[{i}]", s, low=1) for i, s in enumerate(shape))
        single = isinstance(channels, int)
        chans = [channels] if single else list(channels)
        if not chans:
            raise ParameterError("channels must hold at least one convolution's channels; got []")
        chans = [check_int("channels", c, low=1) for c in chans]
        hidden = check_int("hidden", hidden, low=1)
        d_out = check_int("d_out", d_out, low=1)
        kernel = check_int("kernel", kernel, low=1)
        if kernel % 2 == 0:
            raise ParameterError(f"kernel must be an odd integer >= 1 (same padding), such as {kernel - 1} or "
                                 f"{kernel + 1}; got {kernel}")
        pool = check_int("pool", pool, low=1)
        pooling = check_choice("pooling", pooling, ("avg", "max"))
        spatial = shape[1:]
        for _ in chans:
            if any(s % pool for s in spatial):
                raise ValueError(f"pool must divide the map size {spatial} after every convolution; got {pool}")
            spatial = tuple(s // pool for s in spatial)
        if members is not None:
            members = check_int("members", members, low=1)
        init_scale = check_float("init_scale", init_scale, low=0.0)
        rngs = as_streams(rng, members, "rng")
        self.config = dict(shape=shape, channels=chans[0] if single else tuple(chans), hidden=hidden, d_out=d_out,
                           kernel=kernel, pool=pool, pooling=pooling, init_scale=init_scale)
        self.members = members
        self.pool = pool
        convs, self.maps, current = [], [], shape
        for l, c in enumerate(chans):
            convs.append(StackedConv(current, c, kernel, members, rngs, init_scale, layer=l))
            self.maps.append((c, *current[1:]))
            current = (c, *(s // pool for s in current[1:]))
        self.convs = nn.ModuleList(convs)
        flat = math.prod(current)
        self.dense = StackedLinear(flat, hidden, members, rngs, init_scale, True, layer=len(chans))
        self.out = StackedLinear(hidden, d_out, members, rngs, init_scale, True, layer=len(chans) + 1)
        self.to(device=resolve_device(device), dtype=dtype)

    @property
    def conv(self) -> StackedConv:
        """The first convolution."""
        return self.convs[0]

    def pooled(self, maps: Tensor) -> Tensor:
        """Maps ``(n, E*C, H, W)`` pooled over blocks of ``pool x pool`` (``1 x pool`` for signals)."""
        size = self.pool if len(self.config["shape"]) == 3 else (1, self.pool)
        pool = F.max_pool2d if self.config["pooling"] == "max" else F.avg_pool2d
        return pool(maps, size)

    @property
    def feature_names(self) -> list[str]:
        return [f"h{l}" for l in range(1, len(self.convs) + 2)]

    def forward(self, x: Tensor, return_features: bool = False):
        lead = x.shape[:-1] if self.members is None else None
        maps = to_maps(x, self.config["shape"], self.members)
        unflattened = {}
        for l, conv in enumerate(self.convs, start=1):
            maps = conv.maps(maps)
            if self.pool > 1 and self.config["pooling"] == "max":
                # relu is monotone, so max-pooling first gives pool(relu(.)) exactly, value and gradient, while
                # the relu and its backward pass over a fraction 1/pool^2 (1/pool for signals) of the map
                # (benchmarks/bench_pool_order.py)
                maps = torch.relu(self.pooled(maps))
            elif self.pool > 1:
                maps = self.pooled(torch.relu(maps))
            else:
                maps = torch.relu(maps)
            if return_features and l < len(self.convs):
                unflattened[f"h{l}"] = maps
        last = from_maps(maps, self.members, lead)
        h = torch.relu(self.dense(last))
        out = self.out(h)
        if not return_features:
            return out
        flat = {f"h{len(self.convs)}": last, f"h{len(self.convs) + 1}": h}
        return out, Features(unflattened, flat, lambda m: from_maps(m, self.members, lead))


class Features(Mapping):
    """A network's hidden features by name; those held as maps are flattened when first looked up.

    Flattening a channels-last map into channel-major rows is a copy, a pass over the map: the ST loss
    looks up only the matched layers, so the others are never copied (for the digits CNN the first
    layer's features were 3% of a training step).
    """

    def __init__(self, maps: dict[str, Tensor], flat: dict[str, Tensor], flatten):
        self._maps, self._flat, self._flatten = maps, dict(flat), flatten
        self._names = [*maps, *flat]  # layer order: the maps come before the flat layers

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._flat:
            self._flat[name] = self._flatten(self._maps[name])  # KeyError for an unknown name, as a dict
        return self._flat[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def conv_member(model: ConvNet, e: int) -> ConvNet:
    """A single-network copy of member ``e`` of a :class:`ConvNet` ensemble."""
    check_member(model, e, "conv_member")
    ref = next(model.parameters())
    return copy_member(model, ConvNet(**model.config, device=ref.device, dtype=ref.dtype), e)


def select_conv_members(model: ConvNet, index: Sequence[int]) -> ConvNet:
    """A new ensemble whose member ``e`` is a copy of member ``index[e]`` of ``model`` (repeats allowed)."""
    if model.members is None:
        raise ValueError("select_conv_members() needs an ensemble (members=E)")
    index = [check_int("index", i, low=0, high=model.members - 1) for i in index]
    ref = next(model.parameters())
    picked = ConvNet(**model.config, members=len(index), device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        for dst, src in zip(picked.parameters(), model.parameters()):
            dst.copy_(src[index])
    return picked
