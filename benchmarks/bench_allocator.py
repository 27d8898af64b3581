"""glibc's default allocator against ``stlearn.device.retain_freed_memory``, side by side.

    python benchmarks/bench_allocator.py [--threads N] [--repeats R] [--steps K] [--settings KEY ...]

By default glibc maps every block above its mmap threshold afresh from the kernel and unmaps it when
it is freed, so a training step that reallocates megabyte tensors faults their pages in again every
step. :func:`stlearn.train` raises the thresholds once per process; this script times the book's CNN
students at their chapter's ensemble size (``bench_ensemble.CONV_SETTINGS``) both ways, each in a
fresh process (the setting is process-wide), taking turns, and prints the ratio and the minor page
faults per step (means over the process's trainings; the best process of each mode).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ensemble import CONV_SETTINGS, time_conv  # noqa: E402  (one description of the settings)

MODES = ("default", "retained")
TRAININGS = 5  # per process


def child(mode: str, key: str, steps: int, threads: int) -> dict:
    """One timing in this process: seconds and minor page faults per step of the library's ensemble."""
    import importlib

    torch.set_num_threads(threads)
    if mode == "default":  # train() leaves glibc as it starts (the module: the package's `train` is the function)
        importlib.import_module("stlearn.train").retain_freed_memory = lambda: False
    s = next(s for s in CONV_SETTINGS if s.key == key)
    time_conv(s, s.chapter, 3)  # warm-up
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    # several trainings one after the other, each with its own networks and data, as in a chapter: what
    # glibc hands back between them is what the next one faults in
    seconds = [time_conv(s, s.chapter, steps) for _ in range(TRAININGS)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"seconds": sum(seconds) / (TRAININGS * steps), "faults": faults / (TRAININGS * steps)}


def timed(mode: str, key: str, steps: int, threads: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, key, "--steps", str(steps),
                          "--threads", str(threads)], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3, help="processes of each mode; the best is kept")
    parser.add_argument("--steps", type=int, default=30, help="training steps timed in each process")
    keys = [s.key for s in CONV_SETTINGS]
    parser.add_argument("--settings", nargs="+", choices=keys, default=keys, help="which settings (default: all)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SETTING"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.steps, args.threads)))
        return
    print(f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats} processes of "
          f"{args.steps} steps each\n")
    print(f"{'setting':>12} {'E':>4} {'default':>11} {'retained':>11} {'ratio':>6} {'faults/step':>12} "
          f"{'retained':>9}")
    for s in (s for s in CONV_SETTINGS if s.key in args.settings):
        best = {mode: {"seconds": float("inf")} for mode in MODES}
        for _ in range(args.repeats):
            for mode in MODES:  # in turns, so that a change of load hits both
                run = timed(mode, s.key, args.steps, args.threads)
                if run["seconds"] < best[mode]["seconds"]:
                    best[mode] = run
        default, retained = best["default"], best["retained"]
        ratio = default["seconds"] / retained["seconds"]
        print(f"{s.key:>12} {s.chapter:>4} {default['seconds'] * 1e3:>8.2f} ms {retained['seconds'] * 1e3:>8.2f} ms "
              f"{ratio:>5.2f}x {default['faults']:>12.0f} {retained['faults']:>9.0f}")


if __name__ == "__main__":
    main()
