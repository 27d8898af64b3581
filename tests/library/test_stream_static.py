"""Static check of the library and of every chapter's code cells: every random draw comes from a stream.

Flagged: arithmetic on a seed (``seed + 1``, ``1000 * s_seed``, ``config.seed * 2``, ``seed += k``: one
stream per role and index replaces every offset), ``manual_seed(...)`` anywhere but ``stlearn/streams.py``
(generators come from ``Stream.generator()``), and draws from a global generator (torch, NumPy, Python's
``random``) or without ``generator=``.
"""

from __future__ import annotations

import ast
import re

from stlearn.tooling import chapters as ch

ROOT = ch.repo_root()
STREAMS = "src/stlearn/streams.py"  # the one place a generator is seeded

_DRAWS_TORCH = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "poisson",
                "rand_like", "randn_like", "randint_like"}
_DRAWS_INPLACE = {"normal_", "uniform_", "random_", "bernoulli_", "exponential_", "cauchy_", "log_normal_",
                  "geometric_", "kaiming_normal_", "kaiming_uniform_", "xavier_normal_", "xavier_uniform_",
                  "trunc_normal_", "orthogonal_"}
_NUMPY_GLOBAL = {"rand", "randn", "randint", "random", "normal", "uniform", "choice", "permutation", "shuffle",
                 "seed", "standard_normal", "binomial", "poisson", "multivariate_normal"}
_STDLIB_GLOBAL = {"random", "randint", "choice", "choices", "shuffle", "gauss", "uniform", "sample", "seed"}
# names that hold a number of seeds, not a seed: arithmetic on them is counting (n_seeds - 1 degrees of freedom)
_COUNT = re.compile(r"(^|_)(n|num|number_of)_seeds?$")


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _seed_name(node) -> str | None:
    """The name of a seed that ``node`` reads (``seed``, ``s_seed``, ``config.seed``, ``seeds[k]``), or None."""
    if isinstance(node, ast.Subscript):
        node = node.value
    if not isinstance(node, (ast.Name, ast.Attribute)):
        return None
    name = _dotted(node)
    last = name.rsplit(".", 1)[-1]
    if "seed" in name.lower() and not _COUNT.search(last.lower()):
        return name
    return None


def _is_text(node) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def seed_problems(source: str, where: str = "") -> list[str]:
    """Random draws that do not come from a stream, and arithmetic offsets of seeds."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Mod) and _is_text(node.left):
                continue  # "%d" % seed formats a seed, it derives nothing
            for operand in (node.left, node.right):
                if name := _seed_name(operand):
                    found.append(f"arithmetic on the seed {name} (line {node.lineno}): "
                                 f"draw from rng.child(role, index) instead")
                    break
        elif isinstance(node, ast.AugAssign) and (name := _seed_name(node.target)):
            found.append(f"arithmetic on the seed {name} (line {node.lineno}): "
                         f"draw from rng.child(role, index) instead")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1] if name else getattr(node.func, "attr", "")
        keywords = {k.arg for k in node.keywords}
        if last in {"manual_seed", "manual_seed_all"}:
            if where != STREAMS:
                found.append(f"{name or last}() outside {STREAMS} (line {node.lineno}): use Stream(...).generator()")
        elif name.startswith("torch.") and last in _DRAWS_TORCH and "generator" not in keywords:
            found.append(f"{name}() without generator= (line {node.lineno})")
        elif last in _DRAWS_INPLACE and "generator" not in keywords and not name.startswith(("np.", "numpy.")):
            found.append(f"{name or last}() without generator= (line {node.lineno})")
        elif re.fullmatch(r"(np|numpy)\.random\.\w+", name) and last in _NUMPY_GLOBAL:
            found.append(f"{name}() uses numpy's global generator (line {node.lineno})")
        elif re.fullmatch(r"(np|numpy)\.random\.(default_rng|RandomState)", name) and not node.args and not keywords:
            found.append(f"{name}() without a seed (line {node.lineno})")
        elif name in {f"random.{f}" for f in _STDLIB_GLOBAL}:
            found.append(f"{name}() uses Python's global generator (line {node.lineno})")
        elif name in {"torch.seed", "torch.random.seed", "torch.cuda.seed", "torch.cuda.seed_all"}:
            found.append(f"{name}() seeds a global generator (line {node.lineno}); draw from a stream")
    return found


def code_sources():
    """``(where, source)`` for every module of the library and every chapter's code cells (jupytext)."""
    import jupytext

    for path in sorted((ROOT / "src" / "stlearn").rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path.read_text()
    for name in ch.chapters(ROOT):
        code = [c.source for c in jupytext.read(ch.chapter_path(name, ROOT)).cells if c.cell_type == "code"]
        text = "\n".join(re.sub(r"^\s*[%!].*$", "", c, flags=re.M) for c in code)
        yield f"book chapter {name}", text


def test_stream_every_random_draw_comes_from_a_stream():
    """The library and every chapter: draws flow from streams, no seed arithmetic, no global RNG."""
    problems = []
    for where, source in code_sources():
        lines = source.splitlines()
        for p in sorted(seed_problems(source, where), key=lambda p: int(re.search(r"line (\d+)", p).group(1))):
            line = int(re.search(r"line (\d+)", p).group(1))
            problems.append(f"{where}: {p}\n    {lines[line - 1].strip()}")
    assert not problems, "random draws that do not flow from a stream:\n" + "\n".join(problems)


BAD = {
    "seed + 1": "x = st.draw(task, n, seed + 1)",
    "1000 * s_seed": "g = make(1000 * s_seed + k)",
    "config.seed * 2": "y = config.seed * 2",
    "seeds[k] + 100_003": "z = seeds[k] + 100_003",
    "self.seed - k": "w = self.seed - k",
    "seed += 1": "seed += 1",
    "Generator().manual_seed": "g = torch.Generator().manual_seed(0)",
    "torch.manual_seed": "torch.manual_seed(0)",
    "cuda.manual_seed_all": "torch.cuda.manual_seed_all(3)",
    "torch.randn": "x = torch.randn(3)",
    "torch.randperm": "i = torch.randperm(10)",
    "np.random.rand": "y = np.random.rand(2)",
    "np.random.seed": "np.random.seed(0)",
    "default_rng()": "r = np.random.default_rng()",
    "normal_": "w.normal_()",
    "nn.init": "torch.nn.init.kaiming_uniform_(w)",
    "random.shuffle": "random.shuffle(xs)",
}

GOOD = """
import numpy as np
import torch
import stlearn as st

rng = st.Stream(seed)
g = rng.child("test", k).generator()
x = torch.randn(3, generator=g)
w.normal_(generator=g)
r = np.random.default_rng(rng.child("split").numpy_seed())
seeds = list(range(n_seeds))
dof = n_seeds - 1
total = 2 * len(seeds)
label = "seed %d" % seed
name = f"seed {seed}"
table["seed"] = k
"""


def test_stream_static_check_catches_seed_offsets_manual_seeds_and_global_draws():
    for case, line in BAD.items():
        assert len(seed_problems(line)) == 1, f"the check misses {case}: {seed_problems(line)}"
    assert seed_problems(GOOD) == []
    assert seed_problems("g = torch.Generator().manual_seed(word)", where=STREAMS) == []
    assert seed_problems("x = seed + 1", where=STREAMS) != [], "streams.py is exempt from manual_seed only"
