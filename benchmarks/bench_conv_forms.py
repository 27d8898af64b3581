"""The CNN students' convolutions three ways, side by side: oneDNN's grouped convolution (the book's),
the same on channel-major maps, and im2col batched matrix products.

    python benchmarks/bench_conv_forms.py [--threads N] [--repeats R] [--compile]

For the book's CNN students at their chapter's ensemble size and minibatch (``bench_ensemble.CONV_SETTINGS``)
this times one forward and backward pass of the convolutional features (convolution, max-pooling, ReLU, for
every convolution of the network), taking turns, and prints each form's time and its ratio to the book's:

* ``grouped, channels-last``: ``stlearn.conv.StackedConv.maps``, one grouped convolution (``groups=E``) on
  channels-last maps, as the chapters run it;
* ``grouped, channel-major``: the same call on maps in torch's default layout;
* ``im2col + bmm``: per member, the windows of each map (``F.unfold``) times the filters, one batched matrix
  product over the members; the backward pass is autograd's (a batched product and ``F.fold``);
* with ``--compile``, ``grouped, torch.compile``: the book's form compiled by ``torch.compile`` (inductor,
  C++ kernels for the pooling, ReLU and copies around oneDNN's convolutions), and the seconds its first call
  took (the compilation a chapter would pay for each shape it trains).

The three agree to rounding (checked before timing). Which one wins depends on the processor: oneDNN's direct
kernels use AVX-512 where it exists; a batched matrix product is a GEMM at any width.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from stlearn.conv import ConvNet, StackedConv, from_maps, to_maps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ensemble import in_turns  # noqa: E402
from bench_pool_order import cnn_students, seconds  # noqa: E402  (the book's CNN students, one description)

FORMS = ("grouped, channels-last", "grouped, channel-major", "im2col + bmm")
COMPILED = "grouped, torch.compile"


def im2col_maps(conv: StackedConv, maps: torch.Tensor) -> torch.Tensor:
    """``conv.maps`` as im2col batched matrix products: ``(n, E*C_in, H, W)`` to ``(n, E*C_out, H, W)``."""
    members = conv.members or 1
    n, _, height, width = maps.shape
    kernel = (conv.kernel, conv.kernel) if len(conv.shape) == 3 else (1, conv.kernel)
    cols = F.unfold(maps, kernel, padding=(kernel[0] // 2, kernel[1] // 2))  # (n, E*C_in*k, H*W), member-major
    cols = cols.reshape(n, members, -1, height * width).permute(1, 0, 3, 2).reshape(members, n * height * width, -1)
    weight = conv.weight.reshape(members, -1, cols.shape[-1])  # (E, C_out, C_in*k)
    out = torch.baddbmm(conv.bias.reshape(members, 1, -1), cols, weight.transpose(1, 2))  # (E, n*H*W, C_out)
    return out.reshape(members, n, height, width, -1).permute(1, 0, 4, 2, 3).reshape(n, -1, height, width)


def features(net: ConvNet, x: torch.Tensor, form: str) -> torch.Tensor:
    """The last convolution's features in the network's order (max-pooling, then ReLU), convolved in ``form``."""
    maps = to_maps(x, net.config["shape"], net.members)
    if form != FORMS[0]:
        maps = maps.contiguous()  # channel-major
    for conv in net.convs:
        maps = im2col_maps(conv, maps) if form == FORMS[2] else conv.maps(maps)
        maps = torch.relu(net.pooled(maps))
    return from_maps(maps, net.members)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=20, help="passes of each form; the best is kept")
    parser.add_argument("--compile", action="store_true", help="also time the book's form under torch.compile")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    forms = FORMS + ((COMPILED,) if args.compile else ())
    print(f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats} forward+backward passes")
    print(f"{'setting':>12} {'E':>4} " + " ".join(f"{f:>24}" for f in forms) + (" compile" if args.compile else ""))
    for key, members, net, x in cnn_students():
        passes = {form: partial(features, net, x, form) for form in FORMS}
        with torch.no_grad():
            for form in FORMS[1:]:
                torch.testing.assert_close(passes[form](), passes[FORMS[0]](), rtol=1e-4, atol=1e-5)
        compile_s = ""
        if args.compile:
            passes[COMPILED] = torch.compile(partial(features, net, x, FORMS[0]))
            compile_s = f" {seconds(passes[COMPILED]):>6.1f} s"  # the first call compiles
            torch.testing.assert_close(passes[COMPILED](), passes[FORMS[0]](), rtol=1e-4, atol=1e-5)
        best = in_turns({form: partial(seconds, f) for form, f in passes.items()}, args.repeats)
        print(f"{key:>12} {members:>4} " + " ".join(
            f"{best[f] * 1e3:>9.2f} ms ({best[FORMS[0]] / best[f]:4.2f}x)".rjust(24) for f in forms) + compile_s)
    print("(ratio: the book's time over the form's; above 1x the form is faster)")


if __name__ == "__main__":
    main()
