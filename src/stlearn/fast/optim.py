"""The optimizers of the fast path: the updates of ``torch.optim.SGD`` (foreach kernels) and ``Adam`` (fused).

Their plain counterparts, one parameter at a time, are :class:`stlearn.train.PlainSGD`
and :class:`stlearn.train.PlainAdam`; ``tests/library/test_fast.py`` checks both
against ``torch.optim``.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def per_member(value, params: list[Tensor]):
    """A number as it is; a tensor ``(E,)`` of per-member values as one view per parameter that broadcasts over it."""
    if isinstance(value, Tensor):
        return [value.reshape((-1,) + (1,) * (p.dim() - 1)) for p in params]
    return value


class _Optimizer:
    """What our two optimizers share: the parameters they update, dropping their gradients, and weight decay."""

    params: list[Tensor]
    weight_decay: float | list[Tensor]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def decayed(self, grads: list[Tensor]) -> list[Tensor]:
        """``grad + weight_decay * p`` (L2 decay; one decay per member when given as a tensor)."""
        if isinstance(self.weight_decay, list):
            return torch._foreach_add(grads, torch._foreach_mul(self.params, self.weight_decay))
        if self.weight_decay:
            return torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        return grads


class SGD(_Optimizer):
    """Gradient descent with heavy-ball momentum, the update of ``torch.optim.SGD`` (foreach kernels).

    Written here rather than taken from ``torch.optim`` for two reasons: the
    first ``torch.optim`` optimizer built in a process imports ``torch._dynamo``
    (seconds, paid by every chapter kernel), and ``lr`` and ``weight_decay`` may be
    tensors of per-member values ``(E,)``, broadcast over each parameter's member dimension.
    """

    def __init__(self, params, lr, momentum: float = 0.0, weight_decay=0.0):
        self.params = list(params)
        self.momentum = momentum
        self.lr, self.weight_decay = per_member(lr, self.params), per_member(weight_decay, self.params)
        self.buffers: list[Tensor] | None = None

    @torch.no_grad()
    def step(self) -> None:
        params = self.params  # every parameter gets a gradient: our networks use all of their weights
        grads = self.decayed([p.grad for p in params])
        if self.momentum:
            if self.buffers is None:
                self.buffers = [g.detach().clone() for g in grads]
            else:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads)
            grads = self.buffers
        if isinstance(self.lr, list):
            torch._foreach_sub_(params, torch._foreach_mul(grads, self.lr))
        else:
            torch._foreach_add_(params, grads, alpha=-self.lr)


class Adam(_Optimizer):
    """Adam with L2 weight decay, the update of ``torch.optim.Adam(fused=True)`` (default betas).

    ``weight_decay`` may hold one decay per member, as for :class:`SGD`. The update is torch's fused kernel,
    one pass over each parameter and its two moments, 3 to 4 times faster on a CPU than the seven passes of
    ``foreach=True`` (``benchmarks/bench_optimizer.py``); the step is about 1% of a CNN chapter's time.
    """

    def __init__(self, params, lr: float, weight_decay=0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay = per_member(weight_decay, self.params)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.t = torch.zeros((), dtype=torch.float32, device=self.params[0].device)  # steps taken (the kernel reads it)

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.t += 1
        grads = self.decayed([p.grad for p in self.params])  # the decay here: the kernel's takes one number
        torch._fused_adam_(self.params, grads, self.exp_avg, self.exp_avg_sq, [], [self.t] * len(self.params),
                           lr=self.lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps, amsgrad=False,
                           maximize=False)
