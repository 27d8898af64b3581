"""Test set-up and shared fixtures.

- Chapter kernels started by nbval inherit :func:`stlearn.tooling.chapters.kernel_env`.
- ``network_guard``: an environment whose Python processes (and every
  subprocess: Jupyter Book, chapter kernels) record and refuse any connection
  or name lookup outside the loopback interface.
- ``ci_site``: the book built at the "ci" parameters under that guard (cached
  chapters are reused, so after ``stlearn build --set ci`` it only re-runs
  Sphinx incrementally).
- ``chromium``: Debian's headless Chromium and chromedriver. No test installs
  system packages: when they are missing the fixture fails, saying to run
  ``make browser``; outside CI (``CI`` unset) it skips with that message.
- nbval compares numbers within :data:`stlearn.tooling.regression.TOLERANCE`
  (:func:`_compare_numbers_within_tolerance`).
- ``seeded_chapter``: the quickest chapter with a ``seed`` parameter;
  :func:`sanitize`: text as nbval compares it (``tests/sanitize.cfg``).

Layout: ``library/`` (the science), ``tooling/`` (CLI, parameters, build,
sweep, regression tooling), ``chapters/`` (checks that execute or inspect the
chapters), ``site/`` (the built site, a browser, the offline build);
``references/`` holds the nbval regression references.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from stlearn.tooling import chapters as ch
from stlearn.tooling.chapters import kernel_env

for key, value in kernel_env().items():
    os.environ.setdefault(key, value)
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # one core per worker for the kernels each starts: oversubscribed threads make small tensor ops crawl
    n = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(n))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests' own tensors are tiny: one torch thread, so that a loaded machine does not make them crawl.

    (Chapter kernels are separate processes with their own thread count.)
    """
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


ROOT = ch.repo_root()
CHAPTERS = list(ch.chapters(ROOT))
SANITIZE = ROOT / "tests" / "sanitize.cfg"


def _compare_numbers_within_tolerance() -> None:
    """nbval compares the outputs its sanitizers return with ``!=``: returned as
    :class:`stlearn.tooling.regression.Printed`, their numbers compare within the stated tolerance.

    ``tests/tooling/test_regression_tolerance.py`` runs nbval on a small notebook to prove that the hook
    is in force, so an nbval upgrade that bypasses it fails there rather than silently.
    """
    from nbval.plugin import IPyNbCell

    from stlearn.tooling.regression import printed

    regex_sanitize = getattr(IPyNbCell, "sanitize", None)
    if regex_sanitize is None or getattr(regex_sanitize, "tolerant", False):
        if regex_sanitize is None:
            raise RuntimeError("nbval's IPyNbCell.sanitize is gone: the numeric tolerance cannot be installed")
        return

    def sanitize(self, s):
        return printed(regex_sanitize(self, s))

    sanitize.tolerant = True
    IPyNbCell.sanitize = sanitize


_compare_numbers_within_tolerance()


def pytest_collectstart(collector):
    """Images are not compared by nbval; glued images carry papermill's record prefix, skip those too."""
    if getattr(collector, "fspath", None) and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("application/papermill.record/image/png",)


# --------------------------------------------------------------------------- chapters
def reference_seconds(name: str) -> float:
    """How long the chapter's regression reference took to execute (papermill's record)."""
    path = ROOT / "tests" / "references" / f"{name}.ipynb"
    if not path.is_file():
        return float("inf")
    return float(nbformat.read(path, as_version=4).metadata.get("papermill", {}).get("duration") or "inf")


@pytest.fixture(scope="session")
def seeded_chapter() -> str:
    """The quickest chapter with a ``seed`` parameter: the one the costly execution tests use."""
    names = [n for n in CHAPTERS if "seed" in ch.parameters(n, ROOT)]
    if not names:
        pytest.skip("no chapter has a seed parameter")
    return min(names, key=reference_seconds)


# --------------------------------------------------------------------------- outputs as nbval sees them
def sanitizers() -> list[tuple[re.Pattern, str]]:
    """The patterns of tests/sanitize.cfg, read exactly as nbval reads them."""
    from nbval.plugin import get_sanitize_patterns

    return [(re.compile(rx), rep) for rx, rep in get_sanitize_patterns(SANITIZE.read_text())]


def sanitize(text: str) -> str:
    for rx, rep in sanitizers():
        text = rx.sub(rep, text)
    return text


# --------------------------------------------------------------------------- offline guard
_GUARD = r'''
"""Installed by tests/conftest.py: record and refuse any non-loopback network access."""
import os, sys

_LOG = os.environ["STLEARN_NET_LOG"]
_LOCAL = ("127.", "::1", "localhost", "0.0.0.0")


def _local(host):
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return not host or str(host).startswith(_LOCAL)


def _note(line):
    with open(_LOG, "a") as f:
        f.write(line + "\n")


def _hook(event, args):
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _local(address[0]):
            _note(f"BLOCKED connect {address!r} pid={os.getpid()} argv={sys.argv[:3]!r}")
            raise OSError(f"network access is not allowed here (connect to {address!r})")
    elif event == "socket.getaddrinfo" and not _local(args[0]):
        _note(f"BLOCKED getaddrinfo {args[0]!r} pid={os.getpid()} argv={sys.argv[:3]!r}")
        raise OSError(f"network access is not allowed here (name lookup of {args[0]!r})")


sys.addaudithook(_hook)
_note(f"GUARDED pid={os.getpid()} argv={sys.argv[:3]!r}")
'''


@dataclass
class NetworkGuard:
    env: dict[str, str]
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.is_file() else []

    def blocked(self) -> list[str]:
        return [l for l in self.lines() if l.startswith("BLOCKED")]

    def guarded_processes(self) -> list[str]:
        return [l for l in self.lines() if l.startswith("GUARDED")]


def _guard_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["STLEARN_NET_LOG"] = str(folder / "network.log")
    env["STLEARN_ROOT"] = str(ROOT)
    return env


def make_network_guard(folder: Path) -> NetworkGuard:
    """Environment for subprocesses: a ``sitecustomize`` on PYTHONPATH installs the audit hook."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(textwrap.dedent(_GUARD))
    log = folder / "network.log"
    log.write_text("")
    return NetworkGuard(_guard_env(folder), log)


make_network_guard.env_for = _guard_env


@pytest.fixture
def network_guard(tmp_path) -> NetworkGuard:
    return make_network_guard(tmp_path / "netguard")


# --------------------------------------------------------------------------- the ci site
@dataclass
class BuiltSite:
    path: Path
    guard: NetworkGuard | None
    output: str
    param_set: str = "ci"


# The site the site tests read: the ci site they build (the default), or with STLEARN_SITE_SET=full the
# full-settings site that `make book` built (`make site-check`): the same checks at the book's real size.
SITE_SET = os.environ.get("STLEARN_SITE_SET", "ci")


@pytest.fixture(scope="session")
def ci_site() -> BuiltSite:
    """``stlearn build --set ci`` under the network guard; the site in ``_build/html-ci``.

    Built once per test run: pytest-xdist workers share it through a lock and
    a record of the build tagged with the run's id.
    """
    import fcntl
    import json
    import uuid

    from stlearn.tooling.build import site_dir

    if SITE_SET != "ci":
        built = site_dir(SITE_SET, ROOT)
        if not (built / "index.html").is_file():
            pytest.fail(f"no {SITE_SET} site in {built}: build it first (make book)")
        return BuiltSite(built, None, "", SITE_SET)
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    folder = ROOT / "_build" / "netguard-ci"
    record = folder / "build.json"
    (ROOT / "_build").mkdir(exist_ok=True)
    with open(ROOT / "_build" / ".ci-site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = json.loads(record.read_text()) if record.is_file() else {}
            if done.get("run") == run_id:
                guard = NetworkGuard(make_network_guard.env_for(folder), folder / "network.log")
            else:
                shutil.rmtree(folder, ignore_errors=True)
                guard = make_network_guard(folder)
                cmd = [sys.executable, "-c", "import sys; from stlearn.tooling.cli import main; sys.exit(main())",
                       "build", "--set", "ci"]
                result = subprocess.run(cmd, cwd=ROOT, env=guard.env, capture_output=True, text=True, timeout=1800,
                                        check=False)
                done = {"run": run_id, "returncode": result.returncode, "output": result.stdout + result.stderr}
                record.write_text(json.dumps(done))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    assert done["returncode"] == 0, f"the ci build failed:\n{done['output'][-6000:]}"
    return BuiltSite(site_dir("ci", ROOT), guard, done["output"])


# --------------------------------------------------------------------------- headless Chromium
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_HINT = "run `make browser` (installs Debian's chromium and chromium-driver)"


@pytest.fixture(scope="session")
def chromium() -> tuple[Path, Path]:
    """Paths of the Chromium binary and its driver. Never installs anything.

    Missing binaries fail the test in CI (``CI`` set) and skip it elsewhere, with the command that installs them.
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        message = f"headless Chromium is missing ({', '.join(missing)}): {BROWSER_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("selenium", reason="selenium is needed to drive Chromium (pip install selenium)")
    return CHROMIUM, CHROMEDRIVER
