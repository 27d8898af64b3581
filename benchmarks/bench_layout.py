"""Channels-last 2-D maps against channel-major ones, side by side, for the denoiser and the 1-D CNN.

    python benchmarks/bench_layout.py [--threads N] [--repeats R]

oneDNN's grouped convolutions with a few channels a member run faster on channels-last maps (members
and channels innermost in memory). ``stlearn.denoisers.Denoiser`` and ``stlearn.conv.ConvNet`` use
them; this times what they replaced, taking turns with what they do now, and prints the ratios:

* the denoiser ensemble of the denoising chapter: one training step (the marginal cost: a run of
  ``2 k`` steps minus one of ``k``), with ``stlearn.denoisers.MAPS_FORMAT`` channel-major or channels-last;
* the 1-D CNN ensemble of the MNIST-1D chapter: one forward and backward pass of its convolutional
  features, as 1-D channel-major maps (``conv1d``, ReLU, ``max_pool1d``: the former code) or as
  channels-last images of height 1 (the network's own forward).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

import stlearn as st
from stlearn import denoisers
from stlearn.conv import ConvNet, from_maps
from stlearn.device import retain_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ensemble import CONV_SETTINGS, in_turns, time_conv  # noqa: E402  (one description of the book's settings)

LAYOUTS = {"channel-major": torch.contiguous_format, "channels-last": torch.channels_last}


def denoiser_step(s, layout, steps: int) -> float:
    """Seconds of one training step of the denoiser ensemble of setting ``s`` with its maps in ``layout``."""
    kept, denoisers.MAPS_FORMAT = denoisers.MAPS_FORMAT, layout
    try:
        return (time_conv(s, s.chapter, 2 * steps) - time_conv(s, s.chapter, steps)) / steps
    finally:
        denoisers.MAPS_FORMAT = kept


def features_1d(net: ConvNet, x: torch.Tensor, layout) -> torch.Tensor:
    """The last convolution's features: the network's forward (channels-last) or the former 1-D code."""
    if layout is torch.channels_last:
        return net(x, return_features=True)[1][f"h{len(net.convs)}"]
    c, length = net.config["shape"]
    maps = x.transpose(0, 1).reshape(x.shape[1], net.members * c, length)
    for conv in net.convs:
        weight = conv.weight.reshape(-1, *conv.weight.shape[-2:])
        maps = F.conv1d(maps, weight, conv.bias.reshape(-1), padding=conv.kernel // 2, groups=net.members)
        maps = F.max_pool1d(torch.relu(maps), net.pool)
    return from_maps(maps, net.members)


def cnn_1d_pass(net: ConvNet, x: torch.Tensor, layout) -> float:
    start = time.perf_counter()
    features_1d(net, x, layout).square().sum().backward()
    return time.perf_counter() - start


def side_by_side(time_once, repeats: int) -> dict[str, float]:
    """The best of ``repeats`` timings ``time_once(layout)`` of each layout, taking turns."""
    return in_turns({name: partial(time_once, layout) for name, layout in LAYOUTS.items()}, repeats)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5, help="timings of each layout; the best is kept")
    parser.add_argument("--steps", type=int, default=30, help="denoiser steps of the shorter run")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # as stlearn.train does
    print(f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats}\n")
    print(f"{'what is timed':>44} {'E':>4} {'channel-major':>14} {'channels-last':>14} {'ratio':>6}")

    s = next(c for c in CONV_SETTINGS if c.key == "denoiser")
    best = side_by_side(lambda layout: denoiser_step(s, layout, args.steps), args.repeats)
    rows = [("denoiser, one training step", s.chapter, best)]

    s = next(c for c in CONV_SETTINGS if c.key == "mnist1d_cnn")
    net = s.build(members=s.chapter, rng=st.Stream(0).children("student_init", s.chapter))
    x = torch.randn(s.chapter, s.n, *s.inputs, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(features_1d(net, x, torch.channels_last), features_1d(net, x, torch.contiguous_format))
    best = side_by_side(lambda layout: cnn_1d_pass(net, x, layout), 4 * args.repeats)
    rows.append(("1-D CNN, features forward and backward", s.chapter, best))
    for name, members, best in rows:
        old, new = best["channel-major"], best["channels-last"]
        print(f"{name:>44} {members:>4} {old * 1e3:>11.2f} ms {new * 1e3:>11.2f} ms {old / new:>5.2f}x")


if __name__ == "__main__":
    main()
