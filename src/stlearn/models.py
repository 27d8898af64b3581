"""Deep linear networks and MLPs that expose their hidden features.

Every model can hold one network (``members=None``: weights ``(out, in)``,
inputs ``(n, d)``) or an ensemble of ``E`` independent networks
(``members=E``: weights ``(E, out, in)``, inputs ``(n, d)`` shared by all
members or ``(E, n, d)`` one set per member). Both cases run the same code:
``torch.matmul`` broadcasts over the leading member dimension, so an ensemble
is one batched matrix product per layer and no Python loop over members.

``model(x, return_features=True)`` returns ``(output, {"h1": ..., "h2": ...})``:
the hidden features by layer name, computed in the same forward pass (no hooks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from . import fast
from .data import randn
from .device import resolve_device
from .streams import Stream, as_streams
from .validation import ParameterError, check_choice, check_float, check_int, check_widths

Tensor = torch.Tensor


def member_normal(shape: Sequence[int], rngs: Sequence[Stream], layer: int, std: float, members: int | None) -> Tensor:
    """``N(0, std^2)`` draws of ``shape`` for each member from its own stream: ``(E, *shape)``, or ``shape`` for one.

    Layer ``layer`` of a member draws from that member's child stream ``layer[layer]``.
    """
    weight = torch.stack([randn(r.child("layer", layer), *shape) for r in rngs]) * std
    return (weight[0] if members is None else weight).to(torch.get_default_dtype())


class StackedLinear(nn.Module):
    """``y = x W^T + b`` for one weight ``(out, in)`` or a stack ``(E, out, in)``.

    Member ``e`` is initialised from its own stream with ``N(0, init_scale^2 / in)``
    entries, so a member of an ensemble starts exactly where a single network
    built with that stream starts.
    """

    def __init__(self, d_in: int, d_out: int, members: int | None, rngs: Sequence[Stream],
                 init_scale: float, bias: bool, layer: int):
        super().__init__()
        self.weight = nn.Parameter(member_normal((d_out, d_in), rngs, layer, init_scale / math.sqrt(d_in), members))
        shape = (d_out,) if members is None else (members, 1, d_out)
        self.bias = nn.Parameter(torch.zeros(shape)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if self.weight.dim() == 3 and fast.enabled():
            return fast.member_linear(x, self.weight, self.bias)
        y = torch.matmul(x, self.weight.transpose(-1, -2))  # (n, in) inputs broadcast over the members
        return y if self.bias is None else y + self.bias


class FeatureNet(nn.Module):
    """A stack of :class:`StackedLinear` layers with an activation between them.

    Hidden layer ``l`` (1-based) is named ``"h{l}"``; its feature is the
    activation's output (for a deep linear network, the pre-activation itself).
    """

    activation: nn.Module

    def __init__(self, widths: Sequence[int], *, members: int | None = None, init_scale: float = 1.0,
                 bias: bool = False, rng: Stream | int | Sequence[Stream] = 0, device=None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        widths = check_widths("widths", widths)
        if members is not None:
            members = check_int("members", members, low=1)
        init_scale = check_float("init_scale", init_scale, low=0.0)
        rngs = as_streams(rng, members, "rng")
        self.widths, self.members, self.init_scale = widths, members, init_scale
        self.layers = nn.ModuleList(
            StackedLinear(a, b, members, rngs, init_scale, bias, layer=i)
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))
        )
        self.to(device=resolve_device(device), dtype=dtype)

    @property
    def feature_names(self) -> list[str]:
        return [f"h{l}" for l in range(1, len(self.layers))]

    @property
    def depth(self) -> int:
        return len(self.layers)

    def forward(self, x: Tensor, return_features: bool = False):
        features = {}
        for l, layer in enumerate(self.layers[:-1], start=1):
            x = self.activation(layer(x))
            features[f"h{l}"] = x
        out = self.layers[-1](x)
        return (out, features) if return_features else out


class DeepLinear(FeatureNet):
    """``f(x) = W_L ... W_1 x`` with hidden features ``h_l = W_l ... W_1 x``.

    ``widths = [d, h_1, ..., h_{L-1}, d_out]``.
    """

    activation = nn.Identity()

    def __init__(self, widths: Sequence[int], **kwargs):
        super().__init__(widths, **{"bias": False, **kwargs})

    def end_to_end(self) -> Tensor:
        """The product ``W_L ... W_1``: shape ``(d_out, d)`` or ``(E, d_out, d)``."""
        w = self.layers[0].weight
        for layer in self.layers[1:]:
            w = torch.matmul(layer.weight, w)
        return w


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(FeatureNet):
    """A fully connected network with biases and a pointwise activation."""

    def __init__(self, widths: Sequence[int], activation: str = "relu", **kwargs):
        check_choice("activation", activation, ACTIVATIONS)
        super().__init__(widths, **{"bias": True, **kwargs})
        self.activation = ACTIVATIONS[activation]()


def member(model: FeatureNet, e: int) -> FeatureNet:
    """A single-network copy of member ``e`` of an ensemble (for inspection and tests)."""
    check_member(model, e, "member")
    return copy_member(model, _like(model, members=None), e)  # built in the ensemble's dtype: the copy is exact


def check_member(model: nn.Module, e: int, caller: str) -> None:
    if model.members is None:
        raise ValueError(f"{caller}() needs an ensemble (members=E)")
    check_int("e", e, low=0, high=model.members - 1)


def copy_member(ensemble: nn.Module, single: nn.Module, e: int) -> nn.Module:
    """Copy member ``e`` of ``ensemble`` into ``single``, a network of the same class and sizes; returns it."""
    with torch.no_grad():
        for src, dst in zip(ensemble.parameters(), single.parameters()):
            dst.copy_(src[e].reshape(dst.shape))  # linear biases are stored as (E, 1, out)
    return single


def stack_members(models: Sequence[FeatureNet]) -> FeatureNet:
    """One ensemble holding, in order, the members of ``models`` (single networks count as one member).

    All must share a class and widths; the copy is exact.
    """
    members = sum(m.members or 1 for m in models)
    stacked = _like(models[0], members=members)
    with torch.no_grad():
        for i, layer in enumerate(stacked.layers):
            layer.weight.copy_(torch.cat([m.layers[i].weight.reshape(-1, *layer.weight.shape[1:]) for m in models]))
            if layer.bias is not None:
                layer.bias.copy_(torch.cat([m.layers[i].bias.reshape(-1, *layer.bias.shape[1:]) for m in models]))
    return stacked


def select_members(model: FeatureNet, index: Sequence[int]) -> FeatureNet:
    """A new ensemble whose member ``e`` is a copy of member ``index[e]`` of ``model`` (repeats allowed)."""
    if model.members is None:
        raise ValueError("select_members() needs an ensemble (members=E)")
    index = [check_int("index", i, low=0, high=model.members - 1) for i in index]
    picked = _like(model, members=len(index))
    with torch.no_grad():
        for dst, src in zip(picked.layers, model.layers):
            dst.weight.copy_(src.weight[index])
            if dst.bias is not None:
                dst.bias.copy_(src.bias[index])
    return picked


def overwrite_members(model: FeatureNet, positions: Sequence[int], source: FeatureNet, index: Sequence[int]) -> None:
    """Copy member ``index[j]`` of the ensemble ``source`` into member ``positions[j]`` of ``model``, in place.

    Both are ensembles of one class and widths (e.g. students that start from their teachers' weights).
    """
    if len(positions) != len(index):
        raise ParameterError(f"positions and index must have one entry each; got {len(positions)} and {len(index)}")
    for e, i in zip(positions, index):
        check_member(model, e, "overwrite_members")
        check_member(source, i, "overwrite_members")
    with torch.no_grad():
        for dst, src in zip(model.layers, source.layers):
            dst.weight[list(positions)] = src.weight[list(index)].to(dst.weight)
            if dst.bias is not None:
                dst.bias[list(positions)] = src.bias[list(index)].to(dst.bias)


def _like(model: FeatureNet, members: int | None) -> FeatureNet:
    """A fresh network of ``model``'s class, widths, activation, device and dtype."""
    kwargs = {"activation": _activation_name(model)} if isinstance(model, MLP) else {}
    like = model.layers[0].weight
    return type(model)(model.widths, members=members, init_scale=model.init_scale, device=like.device,
                       dtype=like.dtype, **kwargs)


def _activation_name(model: MLP) -> str:
    return next(k for k, cls in ACTIVATIONS.items() if isinstance(model.activation, cls))
