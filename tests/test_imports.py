"""Every module imports, and every import anywhere in the project (also inside functions) resolves.

A dependency that ``pyproject.toml`` does not declare is missing on a new machine; a lazy import
inside a command would hide that until a user runs the command. CI builds its environment from
nothing, so these tests fail there when a declared dependency is missing.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

import pytest

import torchrl_bc

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(torchrl_bc.__path__, "torchrl_bc."))
SOURCES = sorted([*(ROOT / "torchrl_bc").rglob("*.py"), *(ROOT / "scripts").glob("*.py")])
# Imported only from a path the user names: `bench_sim.py --reference DIR` loads the reference
# simulator (nclone) from a checkout of it, never from the environment.
OPTIONAL = {"nclone"}


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_import_statement_resolves() -> None:
    missing = {}
    for path in SOURCES:
        for name in _top_level_imports(path) - OPTIONAL:
            if name in sys.stdlib_module_names or name == "torchrl_bc":
                continue
            if importlib.util.find_spec(name) is None:
                missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imports that do not resolve in this environment: {missing}"


def test_third_party_imports_are_declared() -> None:
    """Each third-party package the code imports is named in pyproject.toml's dependencies."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [dep for deps in meta["optional-dependencies"].values() for dep in deps]
    declared = " ".join(meta["dependencies"] + extras)
    # import name -> distribution name where they differ
    dist = {"yaml": "pyyaml", "PIL": "pillow", "sb3_contrib": "sb3-contrib",
            "stable_baselines3": "stable-baselines3", "_pytest": "pytest"}
    used: set[str] = set()
    for path in SOURCES + sorted((ROOT / "tests").glob("*.py")):
        used |= _top_level_imports(path) - OPTIONAL
    local = {p.stem for p in (ROOT / "tests").glob("*.py")} | {"torchrl_bc", "conftest"}
    third = {n for n in used if n not in sys.stdlib_module_names and n not in local}
    undeclared = sorted(n for n in third if dist.get(n, n) not in declared)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
