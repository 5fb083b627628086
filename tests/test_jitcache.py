"""The numba disk cache is keyed on every source the compiled code depends on."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numba
import pytest
from numba import config as numba_config

from torchrl_bc.obs import draw
from torchrl_bc.sim import jitcache, kernel

ROOT = jitcache.PACKAGE_ROOT


def _project_imports(rel: str) -> set[str]:
    """Project module files (relative to the package) that a compiled module imports from."""
    pkg = Path(rel).parent
    out: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / rel).read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = pkg.joinpath(*(node.module or "").split(".")) if node.module else pkg
        elif node.module and node.module.split(".")[0] == "torchrl_bc":
            base = Path(*node.module.split(".")[1:])
        else:
            continue
        for cand in [base, *(base / a.name for a in node.names)]:
            if (ROOT / cand).with_suffix(".py").is_file():
                out.add(cand.with_suffix(".py").as_posix())
    return out


@pytest.mark.parametrize("rel", jitcache.JIT_MODULES)
def test_stamp_covers_every_project_module_the_compiled_code_reads(rel: str) -> None:
    deps = _project_imports(rel) | {rel}
    assert deps, rel
    missing = deps - set(jitcache.JIT_SOURCES)
    assert not missing, f"{rel} reads {sorted(missing)}, which the cache stamp does not hash"


def test_every_module_with_njit_is_listed() -> None:
    compiled = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py")
                if "njit(" in p.read_text() and p.name != "jitcache.py"}
    assert compiled == set(jitcache.JIT_MODULES)


def test_stamp_changes_when_a_dependency_changes(tmp_path: Path) -> None:
    for rel in jitcache.JIT_SOURCES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    before = jitcache.source_stamp.__wrapped__(tmp_path)
    assert before == jitcache.source_stamp()
    with open(tmp_path / "sim/layout.py", "a") as f:
        f.write("\nEXTRA = 1\n")
    assert jitcache.source_stamp.__wrapped__(tmp_path) != before


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="no compiled functions with the JIT off")
def test_compiled_functions_use_the_project_stamp() -> None:
    seen = 0
    for module in (kernel, draw):
        for obj in vars(module).values():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and obj._cache is not None:
                impl = getattr(obj._cache, "_impl", None)
                if impl is None:  # a NullCache: function not cached
                    continue
                loc = impl.locator
                ours = (jitcache.ProjectInTreeLocator, jitcache.ProjectUserDirLocator)
                assert isinstance(loc, ours)
                assert loc.get_source_stamp() == jitcache.source_stamp()
                seen += 1
    assert seen > 20
