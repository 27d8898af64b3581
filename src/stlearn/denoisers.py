"""A small residual convolutional denoiser that exposes its hidden features.

:class:`Denoiser` is a four-layer convolutional network in the spirit of DnCNN
(Zhang et al., 2017): plain ``conv -> ReLU`` layers, no batch normalisation,
and a residual output. Two changes make a teacher of the same architecture
meaningful when it is trained on clean inputs to reproduce them:

- a *bottleneck*: the second layer is a stride-2 convolution with few
  channels (``bottleneck``), so the network cannot copy its input through its
  hidden layers and must code the image in them;
- the residual path is a fixed ``[1, 2, 1] x [1, 2, 1] / 16`` blur of the input
  instead of the input itself, so the layers predict the detail that the blur
  removes. With an identity skip, a network trained clean -> clean would learn
  the zero residual and its features would carry nothing.

Two choices make it learn fast enough for a chapter that runs in minutes:

- the layers see the *high-pass* ``x - blur(x)``, the part of the input the blur
  path drops: zero-mean and on the scale of the detail and the noise, whereas
  the raw pixels (mean about 0.5) would make every first-layer map mostly the
  image's brightness;
- the output layer starts at ``output_scale`` (0.1) times its usual scale, so an
  untrained network is close to the blur path alone (its error at step 0 is the
  blur's, not ten to a hundred times larger) and training starts from there.

Layers (``C = channels``, ``b = bottleneck``; a ``k x k`` kernel is 3 x 3)::

    h1 = relu(conv(1 -> C)(x - blur(x)))             full resolution, on the high-pass
    h2 = conv(C -> b, stride 2)(h1)                  half resolution, linear: the bottleneck
    h3 = relu(conv(b -> C)(upsample_2x(h2)))          full resolution
    out = blur(x) + conv(C -> 1)(h3)

With ``depth = D > 0``, ``D`` more ``relu(conv(C -> C))`` layers at full resolution follow the first layer (``h1``
is the last of them) and ``D`` more follow the upsampling (``h3`` the last): ``2 D + 4`` layers, as deep as
DnCNN's 17 at ``D = 6`` or 7.

Conventions of :mod:`stlearn.models`: inputs are flat rows ``(n, s*s)`` of
square ``s x s`` images (shared by every member) or ``(E, n, s*s)`` (one set
per member); ``model(x, return_features=True)`` returns
``(output, {"h1": ..., "h2": ..., "h3": ...})`` with features flattened per
sample. An ensemble of ``E`` members runs each layer as *one* grouped
convolution (member ``e``'s maps meet only member ``e``'s filters), so the
trainer of :mod:`stlearn.train` trains all members at once. Images of any
size ``(n, H, W)`` (``H``, ``W`` even) go through :meth:`Denoiser.denoise`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .device import resolve_device
from .models import member_normal
from .streams import Stream, as_streams
from .validation import ParameterError, check_float, check_int

Tensor = torch.Tensor
BLUR = torch.tensor([1.0, 2.0, 1.0]) / 4.0
MAPS_FORMAT = torch.channels_last  # the layout of the maps (benchmarks/bench_layout.py times the alternative)


class Denoiser(nn.Module):
    """The residual bottleneck denoiser described in the module docstring; ``members=E`` stacks ``E`` networks."""

    feature_names = ["h1", "h2", "h3"]

    def __init__(self, channels: int = 8, bottleneck: int = 2, *, depth: int = 0, members: int | None = None,
                 init_scale: float = 1.0, output_scale: float = 0.1, rng: Stream | int | Sequence[Stream] = 0,
                 device=None, dtype: torch.dtype | None = None):
        super().__init__()
        channels = check_int("channels", channels, low=1)
        bottleneck = check_int("bottleneck", bottleneck, low=1)
        depth = check_int("depth", depth, low=0)
        if members is not None:
            members = check_int("members", members, low=1)
        init_scale = check_float("init_scale", init_scale, low=0.0)
        output_scale = check_float("output_scale", output_scale, low=0.0)
        rngs = as_streams(rng, members, "rng")
        self.config = dict(channels=channels, bottleneck=bottleneck, depth=depth, init_scale=init_scale,
                           output_scale=output_scale)
        self.members = members
        # the four layers of depth 0 first (their indices and streams whatever the depth), then the depth extra
        # full-resolution layers before the bottleneck and the depth after it
        shapes = [(channels, 1), (bottleneck, channels), (channels, bottleneck), (1, channels),
                  *[(channels, channels)] * (2 * depth)]
        gains = [math.sqrt(2.0), 1.0, math.sqrt(2.0), output_scale, *[math.sqrt(2.0)] * (2 * depth)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for layer, ((c_out, c_in), gain) in enumerate(zip(shapes, gains)):
            std = init_scale * gain / math.sqrt(c_in * 9)
            self.weights.append(nn.Parameter(member_normal((c_out, c_in, 3, 3), rngs, layer, std, members)))
            self.biases.append(nn.Parameter(torch.zeros((c_out,) if members is None else (members, c_out))))
        self.to(device=resolve_device(device), dtype=dtype)

    @property
    def n_members(self) -> int:
        return self.members or 1

    def _conv(self, x: Tensor, layer: int, stride: int = 1) -> Tensor:
        w, b = self.weights[layer], self.biases[layer]
        return F.conv2d(x, w.reshape(-1, *w.shape[-3:]), b.reshape(-1), stride=stride, padding=1,
                        groups=self.n_members)

    def _maps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``x``: ``(n, E, H, W)`` (member ``e`` in channel ``e``) -> output ``(n, E, H, W)`` and feature maps.

        The maps are channels-last (members and channels innermost): oneDNN's grouped convolutions with
        1 to 8 channels a member ran the ensemble's training step about 2.4x faster than on
        channel-major maps (``benchmarks/bench_layout.py``).
        """
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ParameterError(f"image height and width must be even (stride-2 bottleneck); "
                                 f"got {tuple(x.shape[-2:])}")
        x = x.contiguous(memory_format=MAPS_FORMAT)
        depth = self.config["depth"]
        h1 = torch.relu(self._conv(x - blur(x), 0))  # the high-pass: what the blur path drops
        for layer in range(4, 4 + depth):
            h1 = torch.relu(self._conv(h1, layer))
        h2 = self._conv(h1, 1, stride=2)  # linear code: a ReLU here can die and cut the network off
        h3 = torch.relu(self._conv(F.interpolate(h2, scale_factor=2, mode="nearest"), 2))
        for layer in range(4 + depth, 4 + 2 * depth):
            h3 = torch.relu(self._conv(h3, layer))
        return blur(x) + self._conv(h3, 3), {"h1": h1, "h2": h2, "h3": h3}

    def forward(self, x: Tensor, return_features: bool = False):
        E, single = self.n_members, self.members is None
        side = math.isqrt(x.shape[-1])
        if side * side != x.shape[-1]:
            raise ParameterError(f"inputs must be flat square images (n, s*s); got {x.shape[-1]} pixels per row")
        if x.dim() == 2:  # (n, d): shared by every member
            n = x.shape[0]
            maps = x.reshape(n, 1, side, side).expand(n, E, side, side)
        elif x.dim() == 3:  # (E, n, d): one set per member
            if x.shape[0] != E:
                raise ParameterError(f"inputs of shape (E, n, d) need E = members ({E}); got {x.shape[0]}")
            n = x.shape[1]
            maps = x.reshape(E, n, side, side).transpose(0, 1)
        else:
            raise ParameterError(f"inputs must be (n, d) or (E, n, d); got shape {tuple(x.shape)}")
        out, feats = self._maps(maps)

        def rows(t: Tensor) -> Tensor:  # (n, E*C, h, w) -> (E, n, C*h*w), or (n, C*h*w) for one network
            t = t.reshape(n, E, -1).transpose(0, 1)
            return t[0] if single else t

        out = rows(out)
        return (out, {k: rows(v) for k, v in feats.items()}) if return_features else out

    @torch.no_grad()
    def denoise(self, images: Tensor) -> Tensor:
        """Denoise images ``(n, H, W)`` (shared) or ``(E, n, H, W)`` (one set per member).

        Returns ``(E, n, H, W)``, or ``(n, H, W)`` for one network.
        """
        ref, E = self.weights[0], self.n_members
        if images.dim() == 3:
            n, h, w = images.shape
            x = images.to(ref).reshape(n, 1, h, w).expand(n, E, h, w)
        elif images.dim() == 4 and images.shape[0] == E:
            x = images.to(ref).transpose(0, 1)
        else:
            raise ParameterError(f"images must be (n, H, W) or ({E}, n, H, W); got shape {tuple(images.shape)}")
        out = self._maps(x)[0].transpose(0, 1)
        return out[0] if self.members is None else out


def blur(x: Tensor) -> Tensor:
    """The fixed separable ``[1, 2, 1] / 4`` blur of every channel of ``(n, C, H, W)`` (reflected borders)."""
    c = x.shape[1]
    k = BLUR.to(x)
    kernel = (k[:, None] * k[None, :]).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=c)


def select_members(model: Denoiser, index: Sequence[int]) -> Denoiser:
    """A new ensemble whose member ``e`` is a copy of member ``index[e]`` of ``model`` (repeats allowed).

    A single network counts as one member (index 0).
    """
    index = [check_int("index", i, low=0, high=model.n_members - 1) for i in index]
    ref = model.weights[0]
    picked = Denoiser(**model.config, members=len(index), device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        for dst, src in zip(picked.parameters(), model.parameters()):
            src = src.unsqueeze(0) if model.members is None else src
            dst.copy_(src[index])
    return picked


def stack(models: Sequence[Denoiser]) -> Denoiser:
    """One ensemble holding, in order, the members of ``models`` (all of one configuration)."""
    if not models:
        raise ParameterError("models must hold at least one Denoiser; got none")
    ref = models[0].weights[0]
    stacked = Denoiser(**models[0].config, members=sum(m.n_members for m in models), device=ref.device,
                       dtype=ref.dtype)
    with torch.no_grad():
        for i, dst in enumerate(stacked.parameters()):
            parts = [list(m.parameters())[i] for m in models]
            dst.copy_(torch.cat([p.unsqueeze(0) if m.members is None else p for p, m in zip(parts, models)]))
    return stacked


def parameter_count(model: Denoiser) -> int:
    """Trainable parameters of one member."""
    return sum(p.numel() for p in model.parameters()) // model.n_members


@dataclass(frozen=True)
class Architecture:
    """A denoiser's shape: ``channels`` maps at full resolution, ``bottleneck`` maps at half, ``depth`` extra
    full-resolution layers on each side of the bottleneck."""

    channels: int = 8
    bottleneck: int = 4
    depth: int = 0

    def build(self, members: int | None = None, rng: Stream | int | Sequence[Stream] = 0, device=None) -> Denoiser:
        return Denoiser(self.channels, self.bottleneck, depth=self.depth, members=members, rng=rng, device=device)
