"""Packaging: requirements.txt and pyproject.toml list the same packages, and the science imports only its own.

``pyproject.toml`` says which package serves what (the library's dependencies, the ``book`` and ``dev``
extras); ``requirements.txt`` pins the set the README installs. The science (``stlearn`` outside
``stlearn.tooling``) must run with the library's dependencies alone and never import the tooling.
"""

import ast
import re
import sys

import tomllib

from stlearn.tooling import chapters as ch

ROOT = ch.repo_root()
PACKAGE = ROOT / "src" / "stlearn"
# import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "skimage": "scikit-image", "yaml": "pyyaml", "IPython": "ipython",
                "myst_nb": "myst-nb"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins(requirements) -> dict[str, str]:
    """``name: the requirement without spaces`` for the requirements that constrain a version."""
    return {_name(r): re.sub(r"\s", "", r) for r in requirements if re.search(r"[<>=!~]", r)}


def _pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return project["dependencies"], [r for rs in extras.values() for r in rs if not r.startswith("stlearn[")]


def _requirements() -> list[str]:
    lines = [l.split("#", 1)[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    return [l for l in lines if l]


def test_requirements_and_pyproject_list_the_same_packages_with_the_same_pins():
    science, extras = _pyproject()
    declared, pinned = {_name(r) for r in science + extras}, _requirements()
    assert declared == {_name(r) for r in pinned}, (
        f"only in pyproject.toml: {sorted(declared - {_name(r) for r in pinned})}; "
        f"only in requirements.txt: {sorted({_name(r) for r in pinned} - declared)}")
    ours = _pins(pinned)
    for name, pin in _pins(science + extras).items():
        assert ours.get(name) == pin, f"pyproject.toml pins {pin}, requirements.txt {ours.get(name, name)}"


def _imports(path) -> tuple[set[str], set[str]]:
    """Top-level names of a module's absolute imports, and the dotted names of its imports inside ``stlearn``."""
    outside, inside = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            outside |= {a.name.split(".")[0] for a in node.names}
            inside |= {a.name for a in node.names if a.name.startswith("stlearn")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                outside.add(node.module.split(".")[0])
            if node.level or node.module.startswith("stlearn"):
                inside |= {f"{node.module or ''}.{a.name}" for a in node.names}
    return outside - {"stlearn"}, inside


def _optional(path) -> set[str]:
    """Packages the module treats as optional: imported under ``try: ... except ImportError``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            for inner in node.body:
                if isinstance(inner, ast.Import):
                    names |= {a.name.split(".")[0] for a in inner.names}
                elif isinstance(inner, ast.ImportFrom) and inner.level == 0:
                    names.add(inner.module.split(".")[0])
    return names


def test_the_science_imports_only_its_dependencies_and_never_the_tooling():
    """Optional packages (imported under ``try: ... except ImportError`` somewhere in the module) are allowed."""
    science, _ = _pyproject()
    allowed = {_name(r) for r in science}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "tooling":
            continue
        outside, inside = _imports(path)
        assert not [n for n in inside if "tooling" in n.split(".")], f"{rel} imports the tooling"
        third_party = {n for n in outside if n not in sys.stdlib_module_names} - _optional(path)
        missing = {n for n in third_party if DISTRIBUTION.get(n, n).lower().replace("_", "-") not in allowed}
        assert not missing, f"{rel} imports {sorted(missing)}, which are not dependencies of the library"
