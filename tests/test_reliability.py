"""Can the book's numbers be trusted? Determinism, bad input, numerical faults,
regression tests that bite, and a build that never touches the network.

Chapter-level checks iterate over ``stlearn.tooling.chapters.chapters()``; the costly
ones (a real chapter execution) use the quickest chapter with a ``seed``
parameter, and the regression-bite test uses the ``zero_loss`` reference.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

import stlearn as st
from stlearn.tooling import chapters as ch
from stlearn import cli, regression
from stlearn.tooling.build import executed_chapter
from stlearn.validation import ParameterError

ROOT = ch.repo_root()
CHAPTERS = list(ch.chapters(ROOT))
SANITIZE = ROOT / "tests" / "sanitize.cfg"
NAN, INF = float("nan"), float("inf")


def seeded_chapters() -> list[str]:
    return [n for n in CHAPTERS if "seed" in ch.parameters(n, ROOT)]


@pytest.fixture(scope="module")
def seeded_chapter() -> str:
    from conftest import reference_seconds

    names = seeded_chapters()
    if not names:
        pytest.skip("no chapter has a seed parameter")
    return min(names, key=reference_seconds)


# --------------------------------------------------------------------------- outputs
def sanitizers() -> list[tuple[re.Pattern, str]]:
    """The patterns of tests/sanitize.cfg, read exactly as nbval reads them."""
    from nbval.plugin import get_sanitize_patterns

    return [(re.compile(rx), rep) for rx, rep in get_sanitize_patterns(SANITIZE.read_text())]


def sanitize(text: str) -> str:
    for rx, rep in sanitizers():
        text = rx.sub(rep, text)
    return text


def printed_outputs(nb) -> list[tuple[int, str]]:
    """Every text a reader or a program sees, by code cell: streams, text and JSON results, glued values."""
    found = []
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        if "injected-parameters" in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                found.append((i, f"{out.name}: {out.text}"))
            elif out.output_type == "error":
                found.append((i, f"error: {out.ename}: {out.evalue}"))
            else:
                for mime, data in sorted(out.get("data", {}).items()):
                    if "image/" in mime:
                        continue
                    found.append((i, f"{mime}: {data if isinstance(data, str) else json.dumps(data, sort_keys=True)}"))
    return [(i, sanitize(t)) for i, t in found]


# --------------------------------------------------------------------------- determinism
@pytest.mark.slow
def test_same_parameters_and_seed_give_identical_printed_outputs(seeded_chapter, network_guard, monkeypatch, tmp_path):
    """Execute a chapter again at ci settings and compare every printed output with the first execution.

    The first execution is the build's cached one (same source, library and
    parameters, by its cache key), or a fresh one; the second runs in a new
    kernel, under the network guard.
    """
    name = seeded_chapter
    first, _ = executed_chapter(name, "ci", ROOT, progress=False)
    for key in ("PYTHONPATH", "STLEARN_NET_LOG"):
        monkeypatch.setenv(key, network_guard.env[key])
    second = ch.execute(name, tmp_path / f"{name}.ipynb", None, "ci", ROOT, progress=False)
    a, b = printed_outputs(nbformat.read(first, 4)), printed_outputs(nbformat.read(second, 4))
    assert a, f"{name} printed nothing to compare"
    assert len(a) == len(b), f"{name}: {len(a)} outputs in the first run, {len(b)} in the second"
    for (cell, x), (_, y) in zip(a, b):
        assert x == y, f"{name}: code cell {cell} printed different outputs with the same seed:\n{x[:500]}\n---\n{y[:500]}"
    assert network_guard.guarded_processes(), "the chapter's kernel did not run under the network guard"
    assert not network_guard.blocked(), f"executing {name} tried to reach the network: {network_guard.blocked()}"


_DRAWS_TORCH = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "poisson",
                "rand_like", "randn_like", "randint_like"}
_DRAWS_INPLACE = {"normal_", "uniform_", "random_", "bernoulli_", "exponential_", "cauchy_", "log_normal_",
                  "geometric_", "kaiming_normal_", "kaiming_uniform_", "xavier_normal_", "xavier_uniform_",
                  "trunc_normal_", "orthogonal_"}
_NUMPY_GLOBAL = {"rand", "randn", "randint", "random", "normal", "uniform", "choice", "permutation", "shuffle",
                 "seed", "standard_normal", "binomial", "poisson", "multivariate_normal"}
_STDLIB_GLOBAL = {"random", "randint", "choice", "choices", "shuffle", "gauss", "uniform", "sample", "seed"}


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def unseeded_draws(source: str) -> list[str]:
    """Random draws that do not come from an explicit seed: global RNGs and draws without ``generator=``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        keywords = {k.arg for k in node.keywords}
        if name.startswith("torch.") and last in _DRAWS_TORCH and "generator" not in keywords:
            found.append(f"{name}() without generator= (line {node.lineno})")
        elif last in _DRAWS_INPLACE and "generator" not in keywords and not name.startswith(("np.", "numpy.")):
            found.append(f"{name}() without generator= (line {node.lineno})")
        elif re.fullmatch(r"(np|numpy)\.random\.\w+", name) and last in _NUMPY_GLOBAL:
            found.append(f"{name}() uses numpy's global generator (line {node.lineno})")
        elif re.fullmatch(r"(np|numpy)\.random\.(default_rng|RandomState)", name) and not node.args and not keywords:
            found.append(f"{name}() without a seed (line {node.lineno})")
        elif name in {f"random.{f}" for f in _STDLIB_GLOBAL}:
            found.append(f"{name}() uses Python's global generator (line {node.lineno})")
        elif name in {"torch.manual_seed", "torch.seed", "torch.cuda.manual_seed_all"}:
            found.append(f"{name}() seeds the global generator (line {node.lineno}); draw from a torch.Generator")
    return found


def _code_sources():
    for path in sorted((ROOT / "src" / "stlearn").rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path.read_text()
    for name in CHAPTERS:
        import jupytext

        code = [c.source for c in jupytext.read(ch.chapter_path(name, ROOT)).cells if c.cell_type == "code"]
        text = "\n".join(re.sub(r"^\s*[%!].*$", "", c, flags=re.M) for c in code)
        yield f"book chapter {name}", text


def test_every_random_draw_comes_from_a_seeded_generator():
    """Static check of the library and every chapter: seeds flow from parameters, no global RNG."""
    problems = [f"{where}: {p}" for where, source in _code_sources() for p in unseeded_draws(source)]
    assert not problems, "random draws that do not flow from a seed:\n" + "\n".join(problems)


def test_the_seed_check_catches_unseeded_draws():
    bad = "import torch, numpy as np\nx = torch.randn(3)\ny = np.random.rand(2)\nw.normal_()\ntorch.manual_seed(0)\n"
    good = "g = torch.Generator().manual_seed(seed)\nx = torch.randn(3, generator=g)\nr = np.random.default_rng(seed)\n"
    assert len(unseeded_draws(bad)) == 4
    assert unseeded_draws(good) == []


def test_library_draws_depend_on_the_seed_and_only_on_it():
    inputs = st.gaussian_inputs(8, rank=3, seed=1)
    task = st.Task(inputs, st.linear_target(inputs, 2, seed=2), sigma=0.5)
    same = [st.make_split(task, 5, 5, seed=3, dtype=torch.float64).train.noisy for _ in range(2)]
    other = st.make_split(task, 5, 5, seed=4, dtype=torch.float64).train.noisy
    assert torch.equal(same[0], same[1]) and not torch.equal(same[0], other)
    nets = [st.DeepLinear([8, 4, 2], seed=s).end_to_end() for s in (5, 5, 6)]
    assert torch.equal(nets[0], nets[1]) and not torch.equal(nets[0], nets[2])


# --------------------------------------------------------------------------- bad input: the library
def _task(sigma=0.5):
    inputs = st.gaussian_inputs(6, rank=3, seed=0)
    return st.Task(inputs, st.linear_target(inputs, 2, seed=1), sigma=sigma)


def _data():
    return st.make_split(_task(), 8, 4, seed=0).train


def _net(**kw):
    return st.DeepLinear([6, 4, 2], **kw)


# (call, parameter named in the error, text describing the valid range)
LIBRARY_CASES = {
    "gaussian_inputs d=0": (lambda: st.gaussian_inputs(0), "d", ">= 1"),
    "gaussian_inputs d='10'": (lambda: st.gaussian_inputs("10"), "d", "integer"),
    "gaussian_inputs d=2.5": (lambda: st.gaussian_inputs(2.5), "d", "integer"),
    "gaussian_inputs rank>d": (lambda: st.gaussian_inputs(5, rank=9), "rank", "[1, 5]"),
    "gaussian_inputs rank=0": (lambda: st.gaussian_inputs(5, rank=0), "rank", "[1, 5]"),
    "gaussian_inputs seed=-1": (lambda: st.gaussian_inputs(5, rank=2, seed=-1), "seed", ">= 0"),
    "linear_target d_out=0": (lambda: st.linear_target(st.gaussian_inputs(4), 0), "d_out", ">= 1"),
    "relu_target hidden=-3": (lambda: st.relu_target(4, -3), "hidden", ">= 1"),
    "Task sigma=nan": (lambda: _task(sigma=NAN), "sigma", "finite"),
    "Task sigma=-0.1": (lambda: _task(sigma=-0.1), "sigma", ">= 0"),
    "Task sigma=inf": (lambda: _task(sigma=INF), "sigma", "finite"),
    "Task sigma='0.5'": (lambda: _task(sigma="0.5"), "sigma", "number"),
    "make_split n_train=0": (lambda: st.make_split(_task(), 0, 4), "n_train", ">= 1"),
    "make_split n_test=-5": (lambda: st.make_split(_task(), 4, -5), "n_test", ">= 1"),
    "make_split n_train=None": (lambda: st.make_split(_task(), None, 4), "n_train", "integer"),
    "make_splits seeds=[]": (lambda: st.make_splits(_task(), 4, 4, []), "seeds", "non-empty"),
    "DeepLinear widths=[6]": (lambda: st.DeepLinear([6]), "widths", "at least 2"),
    "DeepLinear widths=[6,0,2]": (lambda: st.DeepLinear([6, 0, 2]), "widths[1]", ">= 1"),
    "DeepLinear widths='abc'": (lambda: st.DeepLinear("abc"), "widths", "list"),
    "DeepLinear members=0": (lambda: _net(members=0), "members", ">= 1"),
    "DeepLinear init_scale=nan": (lambda: _net(init_scale=NAN), "init_scale", "finite"),
    "DeepLinear init_scale=-1": (lambda: _net(init_scale=-1.0), "init_scale", ">= 0"),
    "DeepLinear seed=-2": (lambda: _net(seed=-2), "seed", ">= 0"),
    "MLP activation='sigmoidal'": (lambda: st.MLP([6, 4, 2], activation="sigmoidal"), "activation", "relu"),
    "TrainConfig steps=0": (lambda: st.TrainConfig(steps=0), "steps", ">= 1"),
    "TrainConfig steps=1.5": (lambda: st.TrainConfig(steps=1.5), "steps", "integer"),
    "TrainConfig lr=0": (lambda: st.TrainConfig(lr=0.0), "lr", "> 0"),
    "TrainConfig lr=nan": (lambda: st.TrainConfig(lr=NAN), "lr", "finite"),
    "TrainConfig lr='fast'": (lambda: st.TrainConfig(lr="fast"), "lr", "number"),
    "TrainConfig momentum=1.5": (lambda: st.TrainConfig(momentum=1.5), "momentum", "<= 1"),
    "TrainConfig optimizer='rmsprop'": (lambda: st.TrainConfig(optimizer="rmsprop"), "optimizer", "sgd"),
    "TrainConfig batch_size=0": (lambda: st.TrainConfig(batch_size=0), "batch_size", ">= 1"),
    "TrainConfig patience=0": (lambda: st.TrainConfig(patience=0), "patience", ">= 1"),
    "train lam=-1": (lambda: st.train(_net(), _data(), lam=-1.0, config=st.TrainConfig(steps=1)), "lam", ">= 0"),
    "train lam=nan": (lambda: st.train(_net(), _data(), lam=NAN, config=st.TrainConfig(steps=1)), "lam", "finite"),
    "train lam per member, wrong count": (
        lambda: st.train(_net(members=2), _data(), lam=[0.0, 1.0, 2.0], config=st.TrainConfig(steps=1)), "lam", "per member"),
    "train unknown layer": (
        lambda: st.train(_net(), _data(), teacher=st.FrozenTeacher(_net()), lam=1.0, layers=["h7"],
                         config=st.TrainConfig(steps=1)), "layers", "h1"),
    "train layers without teacher": (
        lambda: st.train(_net(), _data(), lam=1.0, layers=["h1"], config=st.TrainConfig(steps=1)), "teacher", "given"),
    "train early stopping without val set": (
        lambda: st.train(_net(), _data(), config=st.TrainConfig(steps=1, early_stopping=True)), "eval_sets", "val"),
}


@pytest.mark.parametrize("case", list(LIBRARY_CASES))
def test_library_rejects_bad_input_naming_the_parameter_and_its_range(case):
    call, parameter, valid = LIBRARY_CASES[case]
    with pytest.raises(ParameterError) as err:
        call()
    message = str(err.value)
    assert parameter in message, f"{case}: the error does not name {parameter}: {message}"
    assert valid in message, f"{case}: the error does not give the valid range ({valid!r}): {message}"


# --------------------------------------------------------------------------- bad input: chapters and the CLI
def bad_values(spec: str) -> list:
    """Values outside a parameter spec: wrong type, out of range, NaN, empty list."""
    spec = spec.strip()
    if spec == "bool":
        return ["yes", 1]
    if spec.startswith("str:"):
        return ["no-such-choice", 3]
    kind, is_list, rng = re.fullmatch(r"(int|float)( list)?\s*(.*)", spec).groups()
    scalar = ["abc", None, NAN] if kind == "float" else ["abc", 2.5, NAN]
    if m := re.fullmatch(r"(>=|>)\s*(\S+)", rng):
        low = float(m.group(2))
        scalar.append(low - 1 if m.group(1) == ">=" else low)
    elif m := re.fullmatch(r"in\s*[\[(]\s*(\S+)\s*,\s*(\S+)\s*\]", rng):
        scalar += [float(m.group(1)) - 1, float(m.group(2)) + 1]
    if kind == "int":
        scalar = [int(v) if isinstance(v, float) and math.isfinite(v) and v.is_integer() else v for v in scalar]
    if is_list:
        return [[], "abc"] + [[v] for v in scalar]
    return scalar


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_parameters_reject_values_outside_their_spec(name):
    for p in ch.parameters(name, ROOT).values():
        for value in bad_values(p.spec):
            with pytest.raises(ParameterError) as err:
                ch.resolve_parameters(name, {p.name: value}, "ci", ROOT)
            assert p.name in str(err.value), f"{name}.{p.name}={value!r}: {err.value}"
        p.check(p.default)  # and the default itself is valid


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_rejects_unknown_parameter_and_set(name):
    with pytest.raises(ParameterError, match=r"unknown parameter.*valid: .*\(default"):
        ch.resolve_parameters(name, {"no_such_parameter": 1}, "ci", ROOT)
    with pytest.raises(ParameterError, match=r"unknown parameter set 'huge'.*valid sets: paper"):
        ch.resolve_parameters(name, None, "huge", ROOT)


def run_cli(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


CLI_RUN_CASES = {
    "unknown chapter": (["run", "no_such_chapter"], r"unknown chapter 'no_such_chapter'; valid chapters: "),
    "unknown parameter": (["run", "{c}", "-p", "no_such_parameter", "1"], r"unknown parameter\(s\) no_such_parameter"),
    "unknown set": (["run", "{c}", "--set", "huge"], r"unknown parameter set 'huge'"),
    "wrong type": (["run", "{c}", "-p", "seed", "abc"], r"seed must be an integer >= 0; got 'abc'"),
    "negative": (["run", "{c}", "-p", "seed", "-1"], r"seed must be an integer >= 0; got -1"),
    "NaN": (["run", "{c}", "-p", "seed", ".nan"], r"seed must be an integer >= 0; got nan"),
}


@pytest.mark.parametrize("case", list(CLI_RUN_CASES))
def test_stlearn_run_rejects_bad_input_before_writing_anything(case, seeded_chapter, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = CLI_RUN_CASES[case]
    out = tmp_path / "out" / "run.ipynb"
    code, err = run_cli([a.format(c=seeded_chapter) for a in argv] + ["-o", str(out)], capsys)
    assert code == 2 and re.search(message, err), f"exit {code}, stderr: {err}"
    assert list(tmp_path.rglob("*")) == [], "a rejected run left files behind"


def test_every_chapter_parameter_is_checked_by_stlearn_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in CHAPTERS:
        for p in ch.parameters(name, ROOT).values():
            value = bad_values(p.spec)[-1]
            code, err = run_cli(["run", name, "-p", p.name, json.dumps(value), "--set", "ci"], capsys)
            assert code == 2 and p.name in err, f"{name}.{p.name}={value!r}: exit {code}, {err}"
    assert list(tmp_path.rglob("*")) == []


@pytest.fixture
def sweep_cli():
    pytest.importorskip("stlearn.tooling.sweep", reason="stlearn sweep is not in this checkout yet")
    commands = cli.make_parser()._subparsers._group_actions[0].choices
    if "sweep" not in commands:
        pytest.skip("the stlearn CLI has no sweep subcommand yet")
    return commands["sweep"]


SWEEP_CASES = {
    "unknown chapter": (["no_such_chapter", "--grid", "seed=0,1"], r"no_such_chapter"),
    "unknown parameter": (["{c}", "--grid", "no_such_parameter=1,2"], r"no_such_parameter"),
    "negative value": (["{c}", "--grid", "seed=0,-1"], r"seed"),
    "NaN value": (["{c}", "--grid", "seed=0,.nan"], r"seed"),
    "wrong type": (["{c}", "--grid", "seed=abc,1"], r"seed"),
    "malformed grid": (["{c}", "--grid", "seed"], r"grid|NAME=|seed"),
}


@pytest.mark.parametrize("case", list(SWEEP_CASES))
def test_stlearn_sweep_rejects_bad_input_before_writing_anything(case, sweep_cli, seeded_chapter, capsys,
                                                                  tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = SWEEP_CASES[case]
    before = _listing(ROOT / "_build")
    try:
        code, err = run_cli(["sweep"] + [a.format(c=seeded_chapter) for a in argv] + ["--set", "ci"], capsys)
    except SystemExit as exit_:  # argparse's own usage errors
        code, err = exit_.code, capsys.readouterr().err
    assert code == 2 and re.search(message, err), f"exit {code}, stderr: {err}"
    assert list(tmp_path.rglob("*")) == [], "a rejected sweep left files in the working folder"
    assert _listing(ROOT / "_build") - before == set(), "a rejected sweep left files in _build"


def _listing(folder: Path) -> set[str]:
    skip = ("cache", "stage", "html", "screenshots")
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and not p.relative_to(folder).parts[0].startswith(skip)} if folder.is_dir() else set()


def test_atomic_write_leaves_nothing_when_execution_fails(tmp_path, monkeypatch):
    """A run that crashes half-way (here: papermill fails after writing) leaves no file at all."""
    import papermill

    def crash(nb, out, **kwargs):
        Path(out).write_text("{ partial")
        raise RuntimeError("kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", crash)
    target = tmp_path / "runs" / "chapter.ipynb"
    with pytest.raises(RuntimeError, match="kernel died"):
        ch.execute(CHAPTERS[0], target, None, "ci", ROOT, progress=False)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.slow
def test_a_chapter_check_failing_in_the_kernel_leaves_nothing(capsys, tmp_path, monkeypatch):
    """zero_loss refuses n_train > d inside the kernel: stlearn run says so and writes no notebook."""
    if "zero_loss" not in CHAPTERS:
        pytest.skip("the zero_loss chapter is not in the book")
    monkeypatch.chdir(tmp_path)
    d = ch.resolve_parameters("zero_loss", None, "ci", ROOT)["d"]
    code, err = run_cli(["run", "zero_loss", "--set", "ci", "-p", "n_train", str(d + 1), "-o", "run.ipynb"], capsys)
    assert code == 2 and "n_train must be <= d" in err, err
    assert list(tmp_path.rglob("*")) == []


# --------------------------------------------------------------------------- numerical faults
def test_divergence_stops_training_with_step_loss_and_learning_rate():
    inputs = st.gaussian_inputs(6, rank=3, seed=0)
    task = st.Task(inputs, st.linear_target(inputs, 2, seed=1), sigma=0.5)
    data = st.make_split(task, 16, 4, seed=0).train
    model = st.DeepLinear([6, 8, 2], init_scale=1.0)
    with pytest.raises(st.TrainingDiverged) as err:
        st.train(model, data, config=st.TrainConfig(steps=500, lr=50.0, progress=False))
    message = str(err.value)
    step = int(re.search(r"step (\d+)", message).group(1))
    assert 0 < step < 500, message
    assert re.search(r"loss = (nan|inf|-inf)", message) and "lr = 50;" in message, message


def test_divergence_is_reported_for_the_member_of_an_ensemble():
    data = st.make_split(_task(), 16, 4, seed=0).train
    model = _net(members=3, init_scale=1.0)
    with pytest.raises(st.TrainingDiverged, match=r"step \d+ \(member \d\): loss = .* with lr = 20;"):
        st.train(model, data, config=st.TrainConfig(steps=500, lr=20.0, progress=False))


@pytest.mark.slow
def test_a_diverging_chapter_stops_before_any_figure(tmp_path):
    """zero_loss with a far too large learning rate: the kernel stops at the training cell, nothing is written."""
    if "zero_loss" not in CHAPTERS:
        pytest.skip("the zero_loss chapter is not in the book")
    from papermill.exceptions import PapermillExecutionError

    target = tmp_path / "diverged.ipynb"
    with pytest.raises(PapermillExecutionError) as err:
        # one depth: a single teacher to train before the student diverges
        depth = ch.resolve_parameters("zero_loss", None, "ci", ROOT)["depths"][:1]
        ch.execute("zero_loss", target, {"lr": 1.0e4, "depths": depth}, "ci", ROOT, progress=False)
    assert err.value.ename == "TrainingDiverged", err.value.ename
    assert re.search(r"diverged at step \d+.*loss = .* with lr = ", err.value.evalue), err.value.evalue
    assert not target.exists() and [p for p in tmp_path.rglob("*") if p.is_file()] == []


# --------------------------------------------------------------------------- regression tests that bite
_PERTURB = '''
"""Injected by tests/test_reliability.py: the input noise drawn by stlearn.data is scaled by a factor."""
import dataclasses, os

factor = float(os.environ["STLEARN_NOISE_FACTOR"])
import stlearn.data as _data

_sample = _data.Task.sample


def sample(self, n, gen, label_noise):
    with open(os.environ["STLEARN_PERTURB_LOG"], "a") as f:
        f.write(f"sample sigma={self.sigma} factor={factor}\\n")
    return _sample(dataclasses.replace(self, sigma=self.sigma * factor), n, gen, label_noise)


_data.Task.sample = sample
'''


@pytest.mark.slow
def test_nbval_regression_fails_when_the_noise_scale_changes_by_one_percent(tmp_path):
    """Re-run the zero_loss reference with the library's noise scaled by 1.01: nbval must report differing outputs."""
    if "zero_loss" not in CHAPTERS:
        pytest.skip("the zero_loss chapter is not in the book")
    patch = tmp_path / "perturb"
    patch.mkdir()
    (patch / "sitecustomize.py").write_text(textwrap.dedent(_PERTURB))
    log = tmp_path / "perturb.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(patch), str(ROOT / "src")]),
           "STLEARN_NOISE_FACTOR": "1.01", "STLEARN_PERTURB_LOG": str(log), "STLEARN_ROOT": str(ROOT)}
    cmd = [sys.executable, "-m", "pytest", "--nbval", str(regression.reference_path("zero_loss", ROOT)),
           "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE), "-x", "-q", "-p", "no:cacheprovider",
           "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert log.is_file() and "factor=1.01" in log.read_text(), f"the perturbation never reached the kernel:\n{output[-3000:]}"
    assert result.returncode != 0, "nbval passed although the noise scale changed by 1%"
    assert "Cell outputs differ" in output, f"nbval failed, but not on differing outputs:\n{output[-3000:]}"
    assert "Cell execution caused an exception" not in output


SHOULD_VARY = ["<stlearn.models.DeepLinear object at 0x7f3a2c1b5e50>",
               "training: 100%|##########| 300/300 [00:01<00:00, 250.12it/s]",
               "fit took 12.5 ms", "one step: 3 µs"]
MUST_STAY = ["largest invariance gap (Lemma)          3e-15", "slope 1.00", "test error 0.123 ± 0.004",
             "12 members, 3000 steps", "best along path 0.4567", "lr = 0.05", "1.2e-03", "depth L = 3",
             "   lam  seed  test\n0  0.0     1  0.25"]


def _shift_digits(text: str) -> str:
    return re.sub(r"\d(?!x)", lambda m: str((int(m.group()) + 1) % 10), text)  # keep the 0x of addresses


def test_sanitizers_hide_what_varies_and_nothing_else():
    for text in SHOULD_VARY:
        assert sanitize(_shift_digits(text)) == sanitize(text), f"sanitize.cfg lets {text!r} vary"
    for text in MUST_STAY:
        assert sanitize(text) == text, f"sanitize.cfg hides a result: {text!r} -> {sanitize(text)!r}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_printed_number_in_the_references_stays_visible_to_nbval(name):
    """Change any digit a chapter printed: after sanitizing, nbval still sees the change."""
    path = regression.reference_path(name, ROOT)
    if not path.is_file():
        pytest.fail(f"no regression reference for {name}: run `stlearn refs {name}`")
    hidden = []
    raw = [t for c in nbformat.read(path, 4).cells if c.cell_type == "code" for o in c.get("outputs", [])
           for t in ([o.text] if o.output_type == "stream" else [v for k, v in o.get("data", {}).items()
                                                                 if isinstance(v, str) and "image/" not in k])]
    for text in raw:
        clean = sanitize(text)
        for m in re.finditer(r"\d", text):
            changed = text[:m.start()] + str((int(m.group()) + 1) % 10) + text[m.end():]
            if sanitize(changed) == clean:
                hidden.append(text[max(0, m.start() - 30):m.end() + 30])
    assert not hidden, f"{name}: printed digits hidden by the sanitizers: {hidden[:5]}"


# --------------------------------------------------------------------------- offline
@pytest.mark.slow
def test_building_the_book_does_not_touch_the_network(ci_site):
    """The ci build ran with an audit hook in every Python process that refuses non-loopback access."""
    assert ci_site.guard.guarded_processes(), "the network guard was not active during the build"
    assert len(ci_site.guard.guarded_processes()) >= 2, "the guard must reach the build's subprocesses (jupyter-book)"
    assert not ci_site.guard.blocked(), f"the build tried to reach the network: {ci_site.guard.blocked()}"
    html = "\n".join(p.read_text() for p in ci_site.path.rglob("*.html"))
    remote = set(re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', html))
    assert not remote, f"the site loads resources from the network: {sorted(remote)}"


def test_the_network_guard_refuses_and_records(network_guard):
    """The guard itself: a non-loopback connection is refused and logged (the audit event is raised by hand,
    so no packet could leave even if the guard were broken)."""
    probe = textwrap.dedent("""
        import sys
        try:
            sys.audit("socket.connect", None, ("203.0.113.5", 80))
        except OSError as err:
            print("refused:", err)
        sys.audit("socket.connect", None, ("127.0.0.1", 8000))
        print("loopback allowed")
    """)
    result = subprocess.run([sys.executable, "-c", probe], env=network_guard.env, capture_output=True, text=True)
    assert "refused: network access is not allowed" in result.stdout and "loopback allowed" in result.stdout, result
    assert len(network_guard.blocked()) == 1 and "203.0.113.5" in network_guard.blocked()[0]


def test_printed_numbers_are_rounded_and_counts_stay_integers():
    import numpy as np

    from stlearn.tooling.notebook import rounded

    assert rounded(0.0123456) == 0.0123 and rounded(123456.0) == 123000.0
    assert rounded(10) == 10 and isinstance(rounded(np.int64(10)), int) and str(rounded(3)) == "3"
    assert math.isnan(rounded(float("nan")))
