"""Adam's step two ways, side by side: seven foreach passes (the book's until 2026-12-07) and torch's fused
kernel (the book's now, :class:`stlearn.fast.optim.Adam`).

    python benchmarks/bench_optimizer.py [--threads N] [--repeats R]

For every network the book trains with Adam, at its chapter's ensemble size (``bench_ensemble``'s settings with
a ``chapter`` size and ``optimizer="adam"``, and its convolutional settings), this times one optimizer step over
the stacked parameters, taking turns, and prints each form's time and the ratio. The two agree to rounding
(checked before timing). The step is small beside the gradients: the fused kernel took the digits chapter's
training from 292.6 s to 289.9 s on an AMD EPYC Zen 3 (2026-12-07).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

import stlearn as st
from stlearn.fast.optim import Adam, _Optimizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ensemble import CONV_SETTINGS, SETTINGS, in_turns  # noqa: E402


class ForeachAdam(_Optimizer):
    """The same update in seven foreach passes (``torch.optim.Adam(foreach=True)``'s order)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps, self.weight_decay = list(params), lr, betas, eps, 0.0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.t += 1
        grads = [p.grad for p in self.params]
        torch._foreach_lerp_(self.exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1 - beta2)
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, (1 - beta2 ** self.t) ** 0.5)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom, -self.lr / (1 - beta1 ** self.t))


def adam_networks():
    """``(key, E, parameters)`` of each network the book trains with Adam, at its chapter's ensemble size."""
    adam = [s for s in SETTINGS if s.optimizer == "adam"] + list(CONV_SETTINGS)  # the CNNs all train with Adam
    for s in (s for s in adam if s.chapter):
        net = s.build(members=s.chapter, rng=st.Stream(0).children("student_init", s.chapter))
        yield s.key, s.chapter, list(net.parameters())


def with_gradients(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Fresh copies of ``params`` holding the same fixed gradients."""
    gen = torch.Generator().manual_seed(0)
    out = [p.detach().clone() for p in params]
    for p in out:
        p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=200, help="steps of each form; the best is kept")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats} Adam steps\n")
    print(f"{'setting':>12} {'E':>4} {'parameters':>11} {'foreach':>11} {'fused':>11} {'ratio':>6}")
    for key, members, params in adam_networks():
        forms = {"foreach": ForeachAdam(with_gradients(params), 0.01), "fused": Adam(with_gradients(params), 0.01)}
        for opt in forms.values():
            opt.step()
        for a, b in zip(*(opt.params for opt in forms.values())):
            torch.testing.assert_close(a, b)
        best = in_turns({name: partial(one_step, opt) for name, opt in forms.items()}, args.repeats)
        size = sum(p.numel() for p in params)
        print(f"{key:>12} {members:>4} {size:>11,} {best['foreach'] * 1e3:>8.3f} ms {best['fused'] * 1e3:>8.3f} ms "
              f"{best['foreach'] / best['fused']:>5.2f}x")


def one_step(opt) -> float:
    """One step of ``opt``, in seconds."""
    start = time.perf_counter()
    opt.step()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
