"""Max-pooling before the ReLU against the order the architecture is written in, side by side.

    python benchmarks/bench_pool_order.py [--threads N] [--repeats R]

``relu(maxpool(conv(x)))`` equals ``maxpool(relu(conv(x)))`` bit for bit (``tests/library/test_conv.py``)
but runs the ReLU and its backward over a quarter of the map (half of a signal's). For the book's CNN students at their
chapter's ensemble size and minibatch (``bench_ensemble.CONV_SETTINGS``), this times one forward and
backward pass of the convolutional features both ways, taking turns, and prints the ratio;
``stlearn.conv.ConvNet`` pools first (measured faster for both, since 1-D maps are laid out as 2-D ones).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

import stlearn as st
from stlearn.conv import ConvNet, from_maps, to_maps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ensemble import CONV_SETTINGS, in_turns  # noqa: E402  (the book's CNN students, one description for both scripts)

CNN_KEYS = ("digits_cnn", "mnist1d_cnn")


def features(net: ConvNet, x: torch.Tensor, pool_first: bool) -> torch.Tensor:
    """The last convolution's features, with ReLU then max-pooling (as written) or the other way round."""
    maps = to_maps(x, net.config["shape"], net.members)
    for conv in net.convs:
        maps = conv.maps(maps)
        maps = torch.relu(net.pooled(maps)) if pool_first else net.pooled(torch.relu(maps))
    return from_maps(maps, net.members)


def seconds(forward) -> float:
    """One forward and backward pass of ``forward()`` (features), in seconds."""
    start = time.perf_counter()
    forward().square().sum().backward()
    return time.perf_counter() - start


def cnn_students():
    """Each CNN student at its chapter's ensemble size, with a minibatch of inputs: ``(key, E, net, x)``."""
    for s in (s for s in CONV_SETTINGS if s.key in CNN_KEYS):
        net = s.build(members=s.chapter, rng=st.Stream(0).children("student_init", s.chapter))
        yield s.key, s.chapter, net, torch.randn(s.chapter, s.n, *s.inputs, generator=torch.Generator().manual_seed(0))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=20, help="passes of each order; the best is kept")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats} forward+backward passes\n")
    print(f"{'setting':>12} {'E':>4} {'relu, pool':>11} {'pool, relu':>11} {'ratio':>6}")
    for key, members, net, x in cnn_students():
        best = in_turns({pool_first: partial(seconds, partial(features, net, x, pool_first))
                         for pool_first in (False, True)}, args.repeats)
        print(f"{key:>12} {members:>4} {best[False] * 1e3:>8.2f} ms {best[True] * 1e3:>8.2f} ms "
              f"{best[False] / best[True]:>5.2f}x")


if __name__ == "__main__":
    main()
