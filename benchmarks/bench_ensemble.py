"""How fast is the ensemble trainer? Four ways to train E networks, and the machine's matmul peak.

    python benchmarks/bench_ensemble.py [--threads N] [--quick] [--settings KEY ...]

For book settings (the zero-loss chapter's deep linear network, float64; the
nonlinear chapters' wide ReLU network; the digits chapter's MLP students with
their Adam, cross-entropy and minibatch; and an MLP larger than the book) and
E in {1, 8, 64} and the chapter's own ensemble size, it times one ST training step of:

* ``loop``: E single runs one after the other, written the way a researcher
  would (``nn.Linear`` layers, a ``torch.optim`` optimizer, the same loss);
* ``vmap``: ``torch.func.vmap`` of ``grad`` over ``functional_call`` with the
  members' stacked parameters, and a foreach optimizer step;
* ``plain``: ``stlearn.train`` on a model with ``members=E`` on the plain
  reference (``TrainConfig(fast=False)``: the formulas of ``stlearn.models`` and
  ``stlearn.losses`` under autograd, and the plain optimizer);
* ``ensemble``: the same on the library's default fast path (:mod:`stlearn.fast`:
  the hand-written backward of :mod:`stlearn.fast.fused`, foreach optimizers).

It prints seconds per step, the ratios of each to ``ensemble``, and the
ensemble's achieved rate of floating-point operations (matmul FLOPs of the
forward and backward pass, counted as the step runs) as a fraction of the rate of
one large matrix product in the same dtype and thread count, measured in the
same run (the machine's practical peak). ``GEMMs`` is the share of the
ensemble's step spent in its matrix products, timed alone at the same shapes.
The convolutional settings of the book (the digits CNN, the MNIST-1D 1-D CNN,
the denoising chapter's residual denoiser) are timed as ensembles only. Their
``convs`` is the share of the step spent in its convolutions (forward and
backward) run alone by torch's kernels, and ``ceiling`` the fraction of the
roofline the step would reach if everything but its convolutions were free
(with those kernels or as the GEMMs, whichever is faster): a target above
the ceiling is out of reach of the kernels.

Every row also gets its roofline (:mod:`roofline`): the FLOPs and bytes of one
step, counted while it runs, the memory bandwidth measured in the same run, and
the fraction of the bound ``max(FLOPs / peak, bytes / bandwidth)`` the step
achieves. A closing table shows each setting at its chapter's ensemble size and
picks the book's largest (most FLOPs per step), whose target is 50% of the
roofline; ``--profile`` shows where that step's time goes, operator by operator.
Every method is warmed up first and the best of ``--repeats`` timings is kept,
since other processes may share the cores.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import stlearn as st
from stlearn.device import retain_freed_memory
from stlearn.fast.optim import SGD, Adam
from stlearn.losses import student_teacher_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from roofline import bound_seconds, matmul_peak, per_step, profile, stream_bandwidth  # noqa: E402


def alternating_lams(lam: float, members: int) -> list[float]:
    """``lam`` for every other member, 0 (the base loss) for the rest, as in the chapters; one member gets ``lam``."""
    return [lam * (e % 2) for e in range(members)] if members > 1 else [lam]


@dataclass(frozen=True)
class Setting:
    key: str
    name: str
    kind: str  # "linear" or "mlp"
    widths: tuple
    n: int
    dtype: torch.dtype
    steps: int
    lam: float = 1.0  # every other member; the rest train with the base loss (lam = 0), as in the chapters
    lr: float = 0.01
    momentum: float = 0.9
    optimizer: str = "sgd"
    task: str = "mse"
    members: tuple = (1, 8, 64)
    chapter: int | None = None  # members of the chapter's largest ensemble in this setting (None: not pinned)

    def build(self, members=None, rng=0):
        if self.kind == "linear":
            return st.DeepLinear(list(self.widths), members=members, rng=rng, init_scale=0.5, dtype=self.dtype)
        return st.MLP(list(self.widths), members=members, rng=rng, dtype=self.dtype)

    def lams(self, members: int) -> list[float]:
        return alternating_lams(self.lam, members)

    def config(self, steps: int, fast: bool = True) -> st.TrainConfig:
        return st.TrainConfig(steps=steps, lr=self.lr, optimizer=self.optimizer, momentum=self.momentum,
                              task=self.task, log_points=2, progress=False, fast=fast)


SETTINGS = [
    Setting("linear", "deep linear, zero-loss chapter (d=100, h=50, L=3, n=40, float64), SGD with momentum",
            "linear", (100, 50, 50, 5), 40, torch.float64, steps=150, members=(1, 8, 15, 64), chapter=15),
    Setting("wide", "wide ReLU, nonlinear chapters (d=10, h=128, L=2, n=100, float32), SGD with momentum",
            "mlp", (10, 128, 1), 100, torch.float32, steps=150),
    Setting("digits_mlp", "ReLU MLP, digits chapter (d=64, h=64, L=3, minibatch 100, float32), Adam, cross-entropy",
            "mlp", (64, 64, 64, 10), 100, torch.float32, steps=60, lam=0.3, lr=0.01, momentum=0.0,
            optimizer="adam", task="ce", members=(1, 8, 30, 64), chapter=30),
    Setting("where_mlp", "ReLU MLP, where-ST-helps chapter, main cells (d=50, h=32, L=2, minibatch 100, float32), "
            "SGD with momentum", "mlp", (50, 32, 1), 100, torch.float32, steps=150, members=(1, 8, 64, 256)),
    Setting("where_wide", "ReLU MLP, where-ST-helps chapter, wide side cell (d=50, h=128, L=2, minibatch 100, "
            "float32), SGD with momentum", "mlp", (50, 128, 1), 100, torch.float32, steps=150,
            members=(1, 8, 64, 256)),
    Setting("mlp", "ReLU MLP, larger than the book (d=100, h=256, L=3, n=256, float32), SGD with momentum",
            "mlp", (100, 256, 256, 10), 256, torch.float32, steps=20),
]


def problem(s: Setting, members: int):
    """Per-member training data and the teacher's features on the clean inputs."""
    rng = st.Stream(0)
    inputs = st.gaussian_inputs(s.widths[0], rank=10, rng=rng.child("task"))
    task = st.Task(inputs, st.linear_target(inputs, s.widths[-1], rng=rng.child("target")), sigma=0.5)
    data = st.draw_members(task, s.n, rng.children("student_data", members), dtype=s.dtype)
    if s.task == "ce":  # class labels: the most activated output of the linear target
        data = st.Samples(data.clean, data.noisy, data.y.argmax(-1))
    teacher = st.FrozenTeacher(s.build(rng=rng.child("teacher_init")))
    layers = s.build().feature_names
    return data, teacher, layers


# --------------------------------------------------------------------------- the four methods
def time_ensemble(s: Setting, members: int, steps: int, fast: bool = True) -> float:
    data, teacher, layers = problem(s, members)
    model = s.build(members=members, rng=st.Stream(0).children("student_init", members))
    start = time.perf_counter()
    st.train(model, data, teacher=teacher, lam=s.lams(members), layers=layers, config=s.config(steps, fast))
    return time.perf_counter() - start


def time_plain(s: Setting, members: int, steps: int) -> float:
    return time_ensemble(s, members, steps, fast=False)


class PlainNet(nn.Module):
    """A single network as one would write it by hand: ``nn.Linear`` layers, features returned as a list."""

    def __init__(self, s: Setting):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=s.kind == "mlp", dtype=s.dtype)
                                     for a, b in zip(s.widths[:-1], s.widths[1:]))
        self.act = nn.Identity() if s.kind == "linear" else nn.ReLU()

    def forward(self, x):
        feats = []
        for layer in self.linears[:-1]:
            x = self.act(layer(x))
            feats.append(x)
        return self.linears[-1](x), feats


def time_loop(s: Setting, members: int, steps: int) -> float:
    data, teacher, layers = problem(s, members)
    start = time.perf_counter()
    for e, lam in enumerate(s.lams(members)):
        x, y = data.noisy[e], data.y[e]
        targets = list(teacher.features(data.clean[e], layers).values())
        torch.manual_seed(e)
        net = PlainNet(s)
        opt = (torch.optim.SGD(net.parameters(), lr=s.lr, momentum=s.momentum) if s.optimizer == "sgd"
               else torch.optim.Adam(net.parameters(), lr=s.lr))
        for _ in range(steps):
            out, feats = net(x)
            loss = 0.5 * ((out - y) ** 2).sum(1).mean() if s.task == "mse" else F.cross_entropy(out, y)
            loss = loss + lam * sum(0.5 * ((h - t) ** 2).sum(1).mean() for h, t in zip(feats, targets))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def time_vmap(s: Setting, members: int, steps: int) -> float:
    from torch.func import functional_call, grad, stack_module_state, vmap

    data, teacher, layers = problem(s, members)
    targets = teacher.features(data.clean, layers)
    lams = torch.tensor(s.lams(members), dtype=s.dtype)
    nets = [s.build(rng=r) for r in st.Stream(0).children("student_init", members)]
    params = {k: v.detach() for k, v in stack_module_state(nets)[0].items()}
    base = copy.deepcopy(nets[0]).to("meta")

    def loss(p, x, y, t, lam):
        out, feats = functional_call(base, p, (x,), {"return_features": True})
        return student_teacher_loss(out, feats, y, t, lam, layers, s.task)["total"]

    grads_of = vmap(grad(loss))
    keys = list(params)
    values = [params[k] for k in keys]
    opt = SGD(values, s.lr, s.momentum) if s.optimizer == "sgd" else Adam(values, s.lr)
    start = time.perf_counter()
    for _ in range(steps):
        g = grads_of(params, data.noisy, data.y, targets, lams)
        for v, k in zip(values, keys):
            v.grad = g[k]
        opt.step()
    return time.perf_counter() - start


METHODS = {"loop": time_loop, "vmap": time_vmap, "plain": time_plain, "ensemble": time_ensemble}


# --------------------------------------------------------------------------- peak and report
def gemm_seconds(s: Setting, members: int, repeats: int = 5) -> float:
    """Seconds of the matrix products alone of one ensemble step, in the layouts the trainer uses.

    Forward ``x W^T`` per layer, weight gradients, and input gradients of all
    layers but the first: the step's ceiling if everything else cost nothing.
    """
    n, widths = s.n, s.widths
    acts = [torch.randn(members, n, a, dtype=s.dtype) for a in widths]
    weights = [torch.randn(members, b, a, dtype=s.dtype) for a, b in zip(widths[:-1], widths[1:])]

    def step():
        for i, w in enumerate(weights):
            x, g = acts[i], acts[i + 1]
            torch.bmm(x, w.transpose(-1, -2))
            if w.shape[-1] < w.shape[-2]:
                torch.bmm(x.transpose(-1, -2), g)
            else:
                torch.bmm(g.transpose(-1, -2), x)
            if i > 0:
                torch.bmm(g, w)

    step()
    return min(_timed(step) for _ in range(repeats))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def in_turns(timers: dict, repeats: int) -> dict:
    """The best of ``repeats`` results of each ``timers[name]()`` (seconds), after one warm-up call of each.

    The timers take turns within each round, so that a change of load on the machine hits them alike.
    """
    for timer in timers.values():
        timer()
    best = dict.fromkeys(timers, float("inf"))
    for _ in range(repeats):
        for name, timer in timers.items():
            best[name] = min(best[name], timer())
    return best


def best_per_step(s: Setting, members: int, steps: int, repeats: int) -> dict[str, float]:
    """Seconds per step of each method, the best of ``repeats`` rounds that take the methods in turn.

    Interleaved, so that a change of load on the machine hits every method alike.
    """
    for fn in METHODS.values():  # warm-up: imports, allocator, first optimizer
        fn(s, members, 2)
    best = {name: float("inf") for name in METHODS}
    for _ in range(repeats):
        for name, fn in METHODS.items():
            best[name] = min(best[name], fn(s, members, steps) / steps)
    return best


@dataclass(frozen=True)
class ConvSetting:
    """A convolutional setting of the book: only the ensemble is timed (a loop or vmap baseline would need
    the same network written twice more); its step is counted and set against the roofline like the others."""

    key: str
    name: str
    build: object  # (members, rng) -> network
    inputs: tuple  # one sample's shape as the network takes it
    classes: int  # 0: regression onto an input-shaped target (the denoiser)
    n: int  # samples per step (the chapter's minibatch)
    steps: int
    members: tuple
    layers: tuple = ("h2",)
    lam: float = 1.0
    chapter: int | None = None  # members of the chapter's largest ensemble in this setting

    def config(self, steps: int) -> st.TrainConfig:
        return st.TrainConfig(steps=steps, lr=0.003, optimizer="adam", task="ce" if self.classes else "mse",
                              log_points=2, progress=False)


def _cnn(shape, channels, hidden, kernel):
    from stlearn.experiments.classification import cnn_factory

    factory = cnn_factory(shape, channels, hidden, kernel=kernel)
    return lambda members=None, rng=0: factory(members=members, rng=rng)


def _denoiser(channels, bottleneck, depth=0):
    from stlearn.denoisers import Denoiser

    return lambda members=None, rng=0: Denoiser(channels, bottleneck, members=members, rng=rng, depth=depth)


CONV_SETTINGS = [
    ConvSetting("digits_cnn", "CNN, digits chapter (8x8 images, 16-16 channels 3x3, max-pool, dense 32), "
                "minibatch 100, Adam, cross-entropy", _cnn((1, 8, 8), (16, 16), 32, 3), (64,), 10, 100, 30,
                (1, 8, 30), chapter=30),
    ConvSetting("mnist1d_cnn", "1-D CNN, MNIST-1D chapter (40 samples, 16-16 channels width 5, max-pool, dense 32), "
                "minibatch 100, Adam, cross-entropy", _cnn((1, 40), (16, 16), 32, 5), (40,), 10, 100, 30,
                (1, 8, 15), chapter=15),
    ConvSetting("denoiser", "residual denoiser, denoising chapter (16x16 patches, 8-4-8 maps 3x3), minibatch 16, "
                "Adam, squared error", _denoiser(8, 4), (256,), 0, 16, 30, (1, 15, 30), chapter=30),
    # the burst (several noisy views) trains this same network on the same minibatch: its step is the row above
    ConvSetting("denoiser_gpu", "residual denoiser, the denoising chapter's gpu set (16x16 patches, 64-32-64 maps "
                "3x3, depth 6: 16 layers), minibatch 64, Adam, squared error", _denoiser(64, 32, depth=6), (256,), 0,
                64, 6, (1, 4)),
]


def time_conv(s: ConvSetting, members: int, steps: int) -> float:
    gen = torch.Generator().manual_seed(0)
    clean = torch.randn(members, s.n, *s.inputs, generator=gen)
    noisy = clean + 0.5 * torch.randn(clean.shape, generator=gen)
    y = torch.randint(0, s.classes, (members, s.n), generator=gen) if s.classes else clean
    data = st.Samples(clean, noisy, y)
    teacher = st.FrozenTeacher(s.build(members=members, rng=st.Stream(0).children("teacher_init", members)))
    model = s.build(members=members, rng=st.Stream(0).children("student_init", members))
    lams = alternating_lams(s.lam, members)
    start = time.perf_counter()
    st.train(model, data, teacher=teacher, lam=lams, layers=list(s.layers), config=s.config(steps))
    return time.perf_counter() - start


def step_convolutions(s: ConvSetting, members: int) -> list[dict]:
    """The convolutions of one ensemble forward, as dispatched: their arguments, inputs and outputs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    convs = []

    class Convolutions(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is torch.ops.aten.convolution.default:
                convs.append({"args": args, "out": out, "input_grad": len(convs) > 0})
            return out

    model = s.build(members=members, rng=st.Stream(0).children("student_init", members))
    with torch.no_grad(), Convolutions():
        model(torch.randn(members, s.n, *s.inputs))
    return convs


def conv_gemm_seconds(s: ConvSetting, members: int, repeats: int = 5) -> float:
    """Seconds of the matrix products that one ensemble step's convolutions amount to, timed alone.

    A convolution is a matrix product over its im2col windows: per member, ``(n P, C_in k) x (C_in k, C_out)``
    forward, the weight gradient ``(C_in k, n P) x (n P, C_out)`` and, but for the first layer, the input
    gradient ``(n P, C_out) x (C_out, C_in k)`` (``P`` output positions, ``k`` taps). Their time is the
    convolutions' ceiling if the windows cost nothing to lay out, as ``GEMMs`` is for the dense settings.
    """
    products = []
    for conv in step_convolutions(s, members):
        x, w, groups, out = conv["args"][0], conv["args"][1].shape, conv["args"][-1], conv["out"]
        k, c_out, positions = w[1] * math.prod(w[2:]), w[0] // groups, x.shape[0] * math.prod(out.shape[2:])
        windows, weights = torch.randn(groups, positions, k), torch.randn(groups, k, c_out)
        grads = torch.randn(groups, positions, c_out)
        products += [(windows, weights), (windows.transpose(1, 2), grads)] + ([(grads, weights.transpose(1, 2))]
                                                                             if conv["input_grad"] else [])

    def step():
        for a, b in products:
            torch.bmm(a, b)

    step()
    return min(_timed(step) for _ in range(repeats))


def conv_kernel_seconds(s: ConvSetting, members: int, repeats: int = 5) -> float:
    """Seconds of one ensemble step's convolutions alone, forward and backward, as the step runs them.

    The same calls with the same shapes, memory layouts and gradients asked for (weights and biases, and
    the input of every layer but the first), to torch's convolution kernels (oneDNN on a CPU): what the step
    would take if everything else in it were free.
    """
    calls = []
    for conv in step_convolutions(s, members):
        x, w, bias, stride, padding, dilation, transposed, output_padding, groups = conv["args"]
        grad = torch.randn_like(conv["out"])
        mask = [conv["input_grad"], True, bias is not None]
        calls.append((lambda a=conv["args"]: torch.ops.aten.convolution(*a),
                      lambda g=grad, x=x, w=w, a=(bias.shape if bias is not None else None, stride, padding,
                                                  dilation, transposed, output_padding, groups), m=mask:
                      torch.ops.aten.convolution_backward(g, x, w, *a, m)))

    def step():
        for forward, backward in calls:
            forward()
            backward()

    step()
    return min(_timed(step) for _ in range(repeats))


def conv_rows(settings, args, bandwidth: float) -> list[dict]:
    """The convolutional settings: seconds per ensemble step, its rate, and its fraction of the roofline."""
    rows = []
    for s in settings:
        steps = max(2, s.steps // 10) if args.quick else s.steps
        print(f"\n{s.name}, ST loss on {', '.join(s.layers)}, {steps} steps (ensemble only)")
        print(f"{'E':>4} {'ensemble':>10} {'GFLOP/s':>8} {'peak':>6} {'of peak':>8} {'GEMMs':>6} {'convs':>6} "
              f"{'MB/step':>8} {'FLOP/B':>7} {'limit':>5} {'of roof':>8} {'ceiling':>8}")
        for members in args.members or s.members:
            time_conv(s, members, 2)  # warm-up
            ens = min(time_conv(s, members, steps) / steps for _ in range(args.repeats))
            peak = matmul_peak(torch.float32)
            roof = roofline_of(lambda k, s=s, members=members: time_conv(s, members, k), ens, peak, bandwidth)
            gemms, kernels = conv_gemm_seconds(s, members), conv_kernel_seconds(s, members)
            # the best fraction of the roofline the step could reach if all but its convolutions were free, with
            # torch's convolution kernels or as im2col matrix products, whichever is faster
            ceiling = roof["bound"] / min(gemms, kernels)
            rows.append({"setting": s, "members": members, "seconds": ens, **roof, "ceiling": ceiling})
            print(f"{members:>4} {ens:>10.2e} {roof['flops'] / ens / 1e9:>8.1f} {peak / 1e9:>6.1f} "
                  f"{roof['flops'] / ens / peak:>8.0%} {gemms / ens:>6.0%} {kernels / ens:>6.0%} "
                  f"{roof['bytes'] / 1e6:>8.1f} {roof['intensity']:>7.1f} {roof['limit']:>5} {roof['fraction']:>8.0%} "
                  f"{ceiling:>8.0%}")
    return rows


def run_of(s) -> Callable[[int, int], float]:
    """``(members, steps) -> seconds`` of the library's ensemble in setting ``s``."""
    timer = time_conv if isinstance(s, ConvSetting) else time_ensemble
    return lambda members, steps: timer(s, members, steps)


def chapter_summary(rows: list[dict]) -> dict:
    """Each setting at its chapter's ensemble size, and the largest of them by FLOPs per step (the target's)."""
    at_chapter = [r for r in rows if r["members"] == r["setting"].chapter]
    if not at_chapter:
        return {}
    print("\neach setting at its chapter's ensemble size (the target: 50% of the roofline for the largest)")
    print(f"{'setting':>12} {'E':>4} {'GFLOP/step':>11} {'MB/step':>8} {'limit':>5} {'of roof':>8}")
    for r in at_chapter:
        print(f"{r['setting'].key:>12} {r['members']:>4} {r['flops'] / 1e9:>11.3f} {r['bytes'] / 1e6:>8.1f} "
              f"{r['limit']:>5} {r['fraction']:>8.0%}")
    largest = max(at_chapter, key=lambda r: r["flops"])
    verdict = "met" if largest["fraction"] >= 0.5 else "not met"
    print(f"the book's largest setting: {largest['setting'].key} at E = {largest['members']}, "
          f"{largest['fraction']:.1%} of the roofline: target {verdict}")
    if "ceiling" in largest:
        reach = "within" if largest["ceiling"] >= 0.5 else "out of"
        print(f"its convolutions alone, all else free, reach {largest['ceiling']:.0%} of the roofline: "
              f"the target is {reach} reach of these kernels")
    return largest


def roofline_of(run, seconds: float, peak: float, bandwidth: float) -> dict[str, float]:
    """FLOPs and bytes of one step of ``run(steps)`` (counted, see ``roofline``), and its fraction of the bound."""
    flops, moved = per_step(run, steps=2)
    bound = bound_seconds(flops, moved, peak, bandwidth)
    return {"flops": flops, "bytes": moved, "intensity": flops / moved, "bound": bound,
            "limit": "mem" if moved / bandwidth >= flops / peak else "cpu", "fraction": bound / seconds}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (default: every core, %(default)s here)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per cell; the best is kept")
    parser.add_argument("--members", type=int, nargs="+", default=None,
                        help="ensemble sizes E (default: 1 8 64, and the chapter's own)")
    keys = [s.key for s in SETTINGS + CONV_SETTINGS]
    parser.add_argument("--settings", nargs="+", choices=keys, default=keys,
                        help="which settings to time (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test)")
    parser.add_argument("--profile", action="store_true",
                        help="also print where the largest setting's step spends its time, per operator")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    # as stlearn.train sets it, before anything is timed: the loop and vmap versions run under it too
    retained = retain_freed_memory()
    print(f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats}; freed memory "
          f"{'retained' if retained else 'returned to the kernel'} (benchmarks/bench_allocator.py)\n")
    stream = stream_bandwidth(mib=16 if args.quick else 256)
    bandwidth = max(stream.values())
    print(f"memory bandwidth (STREAM over arrays far larger than the caches): copy {stream['copy'] / 1e9:.1f} GB/s, "
          f"triad {stream['triad'] / 1e9:.1f} GB/s; the roofline uses the larger")
    print("peak: one 2048 x 2048 matmul in the setting's dtype, timed with each row (the load may change)")
    print("roofline: bound = max(FLOPs / peak, bytes / bandwidth); 'of roof' = bound / measured ensemble step; "
          "bytes = tensors read and written by each operator (benchmarks/roofline.py)")

    rows = []
    for s in (s for s in SETTINGS if s.key in args.settings):
        steps = max(2, s.steps // 10) if args.quick else s.steps
        print(f"\n{s.name}, ST loss, {steps} steps")
        print(f"{'E':>4} {'loop s/step':>12} {'vmap s/step':>12} {'plain':>10} {'ensemble':>10} {'loop/ens':>9} "
              f"{'vmap/ens':>9} {'plain/ens':>9} {'GFLOP/s':>8} {'peak':>6} {'of peak':>8} {'GEMMs':>6} "
              f"{'MB/step':>8} {'FLOP/B':>7} {'limit':>5} {'of roof':>8}")
        for members in args.members or s.members:
            per = best_per_step(s, members, steps, args.repeats)
            ens = per["ensemble"]
            peak = matmul_peak(s.dtype)
            roof = roofline_of(lambda k, s=s, members=members: time_ensemble(s, members, k), ens, peak, bandwidth)
            rows.append({"setting": s, "members": members, "seconds": ens, **roof})
            rate = roof["flops"] / ens
            gemm_share = gemm_seconds(s, members) / ens
            print(f"{members:>4} {per['loop']:>12.2e} {per['vmap']:>12.2e} {per['plain']:>10.2e} "
                  f"{ens:>10.2e} {per['loop'] / ens:>8.1f}x {per['vmap'] / ens:>8.2f}x "
                  f"{per['plain'] / ens:>8.2f}x {rate / 1e9:>8.1f} {peak / 1e9:>6.1f} {rate / peak:>8.0%} "
                  f"{gemm_share:>6.0%} {roof['bytes'] / 1e6:>8.1f} {roof['intensity']:>7.1f} {roof['limit']:>5} "
                  f"{roof['fraction']:>8.0%}")
    rows += conv_rows([s for s in CONV_SETTINGS if s.key in args.settings], args, bandwidth)
    largest = chapter_summary(rows)
    if args.profile and largest:
        s, members = largest["setting"], largest["members"]
        print(f"\nwhere one step of {s.key} at E = {members} goes (self CPU time per operator, {s.steps} steps):")
        print(profile(lambda: run_of(s)(members, s.steps)))


if __name__ == "__main__":
    main()
