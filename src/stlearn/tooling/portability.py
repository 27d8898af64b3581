"""Portability of the regression references: every kernel variant this machine can produce passes against them.

A variant is one setting of what changes how a processor sums: torch's vectorized kernels
(``ATEN_CPU_CAPABILITY``: default, avx2, avx512, as far as the processor has them), the thread count (1, 2),
MKL's code branch (``MKL_CBWR``: AUTO, COMPATIBLE) and oneDNN (on, off). Starting from the machine's own
setting, each variant changes one of them, so every level of every factor runs once. Each variant runs
nbval over every reference (``tests/references``) in kernels started with its environment; what the
kernels really ran with is read back from a probe in the same environment, since torch silently ignores
a capability the processor lacks.

``make portability`` (``python -m stlearn.tooling.portability``) prints one row per variant and exits
non-zero when any fails. CI runs the ``default``-capability variant (the Makefile's ``test`` target).

The other side of a tolerance is what it lets through. ``--sensitivity CHAPTER`` re-runs the chapter's
reference with the input noise of :mod:`stlearn.data` scaled by ``1 + 10^-k`` for k = 2, 3, ... and prints
the smallest change the suite still catches (:func:`nbval_with_noise_factor`).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import chapters as ch
from .regression import nbval_command, reference_path

CAPABILITIES = ("default", "avx2", "avx512")
VARIANT_TIMEOUT = 3600  # seconds for one variant's nbval over every reference (about 6 minutes on 2 cores)
# torch reads no environment variable for oneDNN: a sitecustomize on PYTHONPATH turns it off in every kernel
_ONEDNN_OFF = "import torch\ntorch.backends.mkldnn.enabled = False\n"
_PROBE = ("import os, torch; print(torch.backends.cpu.get_cpu_capability().lower(), torch.get_num_threads(), "
          "os.environ.get('MKL_CBWR', 'AUTO'), torch.backends.mkldnn.enabled)")


@dataclass(frozen=True)
class Variant:
    capability: str
    threads: int = 1
    mkl: str = "AUTO"
    onednn: bool = True

    @property
    def name(self) -> str:
        return f"{self.capability}, {self.threads} thread(s), MKL {self.mkl}, oneDNN {'on' if self.onednn else 'off'}"

    def env(self, folder: Path) -> dict[str, str]:
        env = {**os.environ, "ATEN_CPU_CAPABILITY": self.capability, "OMP_NUM_THREADS": str(self.threads),
               "MKL_CBWR": self.mkl}
        if not self.onednn:
            (folder / "sitecustomize.py").write_text(_ONEDNN_OFF)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
        return env


# injected into the kernel as a sitecustomize: the input noise drawn by stlearn.data scaled by a factor
_PERTURB = """import dataclasses, os

factor = float(os.environ["STLEARN_NOISE_FACTOR"])
import stlearn.data as _data

_sample = _data.Task.sample


def sample(self, n, rng, label_noise, views=1):
    with open(os.environ["STLEARN_PERTURB_LOG"], "a") as f:
        f.write(f"sample sigma={self.sigma} factor={factor}\\n")
    return _sample(dataclasses.replace(self, sigma=self.sigma * factor), n, rng, label_noise, views)


_data.Task.sample = sample
"""


def nbval_with_noise_factor(name: str, factor: float, root: Path, folder: Path) -> subprocess.CompletedProcess:
    """nbval over the chapter's reference, its kernel drawing input noise ``factor`` times as large.

    The kernel logs every draw to ``folder/perturb.log`` (proof that the change reached it).
    """
    (folder / "sitecustomize.py").write_text(_PERTURB)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(root / "src")]),
           "STLEARN_NOISE_FACTOR": repr(factor), "STLEARN_PERTURB_LOG": str(folder / "perturb.log"),
           "STLEARN_ROOT": str(root)}
    cmd = nbval_command([reference_path(name, root)], root, "-x", "--rootdir", str(root), "-c",
                        str(root / "pyproject.toml"))
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False)


def sensitivity(name: str, root: Path, exponents=range(2, 10)) -> list[tuple[float, bool]]:
    """``(relative change, caught)`` for noise scaled by ``1 + 10^-k``, k in ``exponents``, until one passes."""
    found = []
    for k in exponents:
        with tempfile.TemporaryDirectory() as tmp:
            result = nbval_with_noise_factor(name, 1 + 10.0**-k, root, Path(tmp))
        caught = result.returncode != 0 and "Cell outputs differ" in result.stdout
        found.append((10.0**-k, caught))
        print(f"noise x (1 + 1e-{k}): {'caught' if caught else 'passed unnoticed'}", flush=True)
        if not caught:
            break
    return found


# torch 2.13 accepts ATEN_CPU_CAPABILITY=avx512 on an AMD Zen 3, which has no AVX-512, reports AVX512, and its
# first vectorized sigmoid dies of an illegal instruction: a chapter kernel dies the same way and nbval waits on
# it for ever. So a level needs the processor's own flag as well as torch's word and a kernel that runs.
_CPU_FLAG = {"avx2": "avx2", "avx512": "avx512f"}
_CAPABILITY_PROBE = ("import torch; x = torch.randn(4096); float((torch.sigmoid(x) + torch.tanh(x)).sum()); "
                     "print(torch.backends.cpu.get_cpu_capability())")


def cpu_flags() -> set[str] | None:
    """The processor's instruction-set flags (Linux's ``/proc/cpuinfo``), or None where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def supported_capabilities() -> list[str]:
    """The levels of ``ATEN_CPU_CAPABILITY`` this processor runs: it has the level's flag (:func:`cpu_flags`),
    torch reports the level, and a vectorized kernel runs under it (torch falls back silently on some levels
    the processor lacks, and crashes on others)."""
    flags, found = cpu_flags(), []
    for level in CAPABILITIES:
        if flags is not None and level in _CPU_FLAG and _CPU_FLAG[level] not in flags:
            continue
        env = {**os.environ, "ATEN_CPU_CAPABILITY": level}
        run = subprocess.run([sys.executable, "-c", _CAPABILITY_PROBE], env=env, capture_output=True, text=True,
                             check=False)
        if run.returncode == 0 and run.stdout.strip().lower() == level:
            found.append(level)
    return found


def variants() -> list[Variant]:
    """The machine's own setting, then one change of one factor at a time (every level of every factor once)."""
    levels = supported_capabilities()
    native = Variant(levels[-1])
    changed = [replace(native, capability=c) for c in levels[:-1]]
    changed += [replace(native, threads=2), replace(native, mkl="COMPATIBLE"), replace(native, onednn=False)]
    return [native, *changed]


def probe(variant: Variant, folder: Path) -> str:
    """What a process started with the variant's environment really runs with."""
    out = subprocess.run([sys.executable, "-c", _PROBE], env=variant.env(folder), capture_output=True, text=True,
                         check=True).stdout.split()
    capability, threads, mkl, onednn = out
    return f"{capability}, {threads} thread(s), MKL {mkl}, oneDNN {'on' if onednn == 'True' else 'off'}"


def run_variant(variant: Variant, names: list[str], root: Path, workers: int) -> dict:
    """nbval over the references of ``names`` in kernels started with the variant's environment."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = variant.env(folder)
        seen = probe(variant, folder)
        cmd = nbval_command([reference_path(n, root) for n in names], root, "-n", str(workers), "--dist",
                            "loadfile")
        start = time.perf_counter()
        try:
            result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False,
                                    timeout=VARIANT_TIMEOUT)
        except subprocess.TimeoutExpired as err:  # a kernel that died can leave nbval waiting: a failure, not a hang
            out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            result = subprocess.CompletedProcess(cmd, -1, out + f"\ntimed out after {VARIANT_TIMEOUT} s", "")
        seconds = time.perf_counter() - start
    counts = dict.fromkeys(("passed", "failed", "error"), 0)
    last = result.stdout.splitlines()[-1] if result.stdout.strip() else ""  # pytest's summary line
    for count, word in re.findall(r"(\d+) (passed|failed|error)", last):
        counts[word] = int(count)
    failures = re.findall(r"^FAILED (\S+)", result.stdout, flags=re.MULTILINE)
    return {"variant": variant.name, "ran as": seen, "cells passed": counts["passed"],
            "cells failed": counts["failed"] + counts["error"], "seconds": round(seconds), "ok": result.returncode == 0,
            "failures": failures, "output": result.stdout[-4000:]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stlearn.tooling.portability", description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapters to check (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="chapters checked at once (one thread each)")
    parser.add_argument("--sensitivity", metavar="CHAPTER", help="measure the smallest noise change caught instead")
    args = parser.parse_args(argv)
    root = ch.repo_root()
    if args.sensitivity:
        caught = [change for change, hit in sensitivity(args.sensitivity, root) if hit]
        print(f"{args.sensitivity}: the smallest relative change of the noise caught is "
              f"{min(caught):.0e}" if caught else f"{args.sensitivity}: not even a 1% change is caught")
        return 0 if caught else 1
    names = args.chapters or list(ch.chapters(root))
    rows = []
    for variant in variants():
        workers = 1 if variant.threads > 1 else args.workers  # two threads a kernel: one kernel at a time
        row = run_variant(variant, names, root, workers)
        rows.append(row)
        print(f"{'passed' if row['ok'] else 'FAILED'}  {row['ran as']:<45} {row['cells passed']:>4} cells passed, "
              f"{row['cells failed']} failed, {row['seconds']} s", flush=True)
        if not row["ok"]:
            print("\n".join(row["failures"][:20]) or row["output"], flush=True)
    bad = [r for r in rows if not r["ok"]]
    print(f"{len(rows) - len(bad)} of {len(rows)} variants passed against the references of {len(names)} chapters")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
