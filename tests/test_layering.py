"""The layer order of ``torchrl_bc`` is checked, not only drawn in the README.

Every import in the package (module-level and inside functions, absolute and relative, also
under ``TYPE_CHECKING``) is an edge from one module to another. An edge may only go from a
layer to itself or to a layer below it, and the graph of imports that run (all but those under
``TYPE_CHECKING``, which name types only) has no cycle between modules. ``LAYERS`` is the one
statement of the order; README.md "Layout" draws it.
"""

from __future__ import annotations

import ast
import graphlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "torchrl_bc"

# Each layer and the layers it builds on directly; it may import those and, transitively,
# everything below them. "base" is every top-level helper module (io.py, progress.py, the
# package's __init__.py and any new one): below everything, so any layer may use it.
LAYERS: dict[str, tuple[str, ...]] = {
    "base": (),
    "sim": ("base",),
    "obs": ("sim",),
    "replay": ("obs",),
    "env": ("replay",),  # gymnasium envs over sim, obs and replay
    "levels": ("env",),  # generator, planner, suites, corpus: may roll policies out in an env
    "data": ("replay",),  # beside env and levels: never imports them, nor anything above
    "models": ("data",),
    "train": ("models", "levels"),
    "sb3": ("train",),
    "commands": ("sb3",),
    "cli": ("commands",),
}
# Top-level modules with a layer of their own; every other top-level module is "base".
TOP_LEVEL: dict[str, str] = {"cli": "cli"}


def allowed(layers: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """Each layer with every layer it may import (itself included)."""
    out: dict[str, set[str]] = {}
    for name in graphlib.TopologicalSorter(layers).static_order():
        out[name] = {name}.union(*(out[d] for d in layers[name]))
    return out


@dataclass(frozen=True)
class Edge:
    path: Path  # the importing file
    line: int
    source: str  # importing module, dotted
    target: str  # imported module, dotted (the longest prefix that is a module of the tree)
    relative: bool = False  # `from . import x`, `from ..pkg import y`
    nested: bool = False  # inside a function (a lazy import)
    typing: bool = False  # under `if TYPE_CHECKING:` (never executed)

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}: {self.source} -> {self.target}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module ``name`` executes: itself when it is a module, else its longest known prefix
    (``pkg.mod.Class`` -> ``pkg.mod``)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def edges(root: Path) -> list[Edge]:
    """Every import inside the package ``root`` that names a module of that package."""
    known = modules(root)
    out = []
    for source, path in known.items():
        is_pkg = path.name == "__init__.py"
        package = source if is_pkg else source.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        nested = {id(n) for f in ast.walk(tree)
                  if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(f)}
        typing = {id(n) for f in ast.walk(tree) if isinstance(f, ast.If)
                  and ast.unparse(f.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                  for b in f.body for n in ast.walk(b)}
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1])
                    stem = f"{base}.{node.module}" if node.module else base
                else:
                    stem = node.module or ""
                # `from pkg import mod` imports pkg.mod when that is a module, else a name of pkg.
                names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem
                         for a in node.names]
            for name in names:
                target = _resolve(name, known)
                if target is not None and target != source:
                    out.append(Edge(path, node.lineno, source, target,
                                    relative=bool(getattr(node, "level", 0)),
                                    nested=id(node) in nested, typing=id(node) in typing))
    return out


def layer_of(module: str, root: Path) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # the package's __init__.py
    if (root / parts[1]).is_dir():
        return parts[1]
    return TOP_LEVEL.get(parts[1], "base")


def layer_violations(root: Path, layers: dict[str, tuple[str, ...]] = LAYERS) -> list[str]:
    may = allowed(layers)
    out = []
    for e in edges(root):
        src, dst = layer_of(e.source, root), layer_of(e.target, root)
        if src not in may:
            out.append(f"{e.where(root.parent)} (layer {src!r} is not in LAYERS)")
        elif dst not in may[src]:
            out.append(f"{e.where(root.parent)} ({src} may not import {dst})")
    return out


def cycles(root: Path) -> list[str]:
    """Each import cycle between modules, as the edges that close it (one report per cycle).

    Imports under ``TYPE_CHECKING`` are left out: they never run, so they cannot close a cycle.
    """
    graph: dict[str, dict[str, Edge]] = {}
    for e in edges(root):
        if e.typing:
            continue
        graph.setdefault(e.source, {}).setdefault(e.target, e)
    out, seen = [], set()
    while True:
        try:
            graphlib.TopologicalSorter({m: set(t) for m, t in graph.items()}).prepare()
            return out
        except graphlib.CycleError as exc:
            ring = exc.args[1]  # [a, b, ..., a] where each imports the one before it
            ring = ring[::-1]
            hops = [graph[a][b] for a, b in itertools.pairwise(ring)]
            key = frozenset(ring)
            if key in seen:  # cannot happen: each report removes an edge of its cycle
                raise AssertionError(f"cycle reported twice: {ring}") from exc
            seen.add(key)
            out.append("cycle: " + "; ".join(h.where(root.parent) for h in hops))
            del graph[hops[-1].source][hops[-1].target]


def test_layer_table_is_a_partial_order() -> None:
    may = allowed(LAYERS)
    assert set(may) == set(LAYERS)
    for name, deps in LAYERS.items():
        assert all(d in LAYERS for d in deps), name
    # The package's layers are all named, so a new package cannot slip in unchecked.
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(LAYERS), f"packages missing from LAYERS: {packages - set(LAYERS)}"
    # The decisions the table encodes.
    assert may["base"] == {"base"}
    assert "replay" not in may["obs"] and "obs" in may["replay"]
    assert may["data"].isdisjoint({"env", "levels", "models", "train"})
    assert "levels" not in may["env"] and "env" in may["levels"]
    assert {"data", "models", "env", "levels"} <= may["train"]
    assert "train" not in may["models"] and "sb3" not in may["train"]


def test_no_import_against_the_layer_order() -> None:
    bad = layer_violations(PACKAGE)
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_module_import_cycle() -> None:
    found = cycles(PACKAGE)
    assert not found, "module import cycles:\n" + "\n".join(found)


def test_the_checker_sees_every_kind_of_import() -> None:
    """Real imports of each kind are found, so an empty violation list means something."""
    found = edges(PACKAGE)
    assert len(found) > 100
    assert any(e.nested for e in found) and any(not e.nested for e in found)
    assert any(e.relative for e in found) and any(not e.relative for e in found)
    assert any(e.typing for e in found) and any(not e.typing for e in found)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return root


SMALL_LAYERS: dict[str, tuple[str, ...]] = {"base": (), "low": ("base",), "high": ("low",),
                                            "side": ("low",)}


def test_checker_catches_violations(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "",
        "util.py": "X = 1\n",
        "helper.py": "def g():\n    import pkg.low\n",
        "low/__init__.py": "",
        "low/a.py": "from pkg import util\n\n\ndef f():\n    from ..high import b\n",
        "low/c.py": "import pkg.side.d\n",
        "high/__init__.py": "",
        "high/b.py": "from pkg.low.a import f\nfrom . import e\n",
        "high/e.py": "from .b import f\n",
        "side/__init__.py": "from pkg.high.b import f  # sibling\n",
        "side/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.high.e\n",
        # A ring closed only by a type-only import is no cycle (it never runs).
        "low/t1.py": ("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from pkg.low import t2\n"),
        "low/t2.py": "from pkg.low import t1\n",
    })
    bad = layer_violations(root, SMALL_LAYERS)
    assert bad == [
        "pkg/helper.py:2: pkg.helper -> pkg.low (base may not import low)",
        "pkg/low/a.py:5: pkg.low.a -> pkg.high.b (low may not import high)",
        "pkg/low/c.py:1: pkg.low.c -> pkg.side.d (low may not import side)",
        "pkg/side/__init__.py:1: pkg.side -> pkg.high.b (side may not import high)",
        "pkg/side/d.py:3: pkg.side.d -> pkg.high.e (side may not import high)",
    ]
    found = cycles(root)
    assert len(found) == 2, found
    assert not any("t1" in c for c in found)
    assert any("pkg/high/b.py:2: pkg.high.b -> pkg.high.e" in c
               and "pkg/high/e.py:1: pkg.high.e -> pkg.high.b" in c for c in found)
    assert any("pkg/low/a.py:5: pkg.low.a -> pkg.high.b" in c
               and "pkg/high/b.py:1: pkg.high.b -> pkg.low.a" in c for c in found)


def test_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "",
        "util.py": "",
        "low/__init__.py": "from .a import f\n",
        "low/a.py": "from pkg.util import *\n\n\ndef f():\n    import pkg.util\n",
        "high/__init__.py": "",
        "high/b.py": "from pkg.low import f\nfrom pkg import util\n",
    })
    assert layer_violations(root, SMALL_LAYERS) == []
    assert cycles(root) == []
    kinds = {(e.source, e.target): (e.relative, e.nested) for e in edges(root)}
    assert kinds == {("pkg.low", "pkg.low.a"): (True, False),
                     ("pkg.low.a", "pkg.util"): (False, True),
                     ("pkg.high.b", "pkg.low"): (False, False),
                     ("pkg.high.b", "pkg.util"): (False, False)}


def test_unknown_layer_is_a_failure(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"__init__.py": "", "extra/__init__.py": "from pkg import util\n",
                            "util.py": ""})
    assert layer_violations(root, SMALL_LAYERS) == [
        "pkg/extra/__init__.py:1: pkg.extra -> pkg.util (layer 'extra' is not in LAYERS)"]


@pytest.mark.parametrize("module", ["torchrl_bc.io", "torchrl_bc.progress", "torchrl_bc"])
def test_top_level_helpers_are_base(module: str) -> None:
    assert layer_of(module, PACKAGE) == "base"


def test_readme_draws_every_layer() -> None:
    """The README's layout diagram names each layer of ``LAYERS`` (the table is the truth)."""
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    diagram = layout[layout.index("```"):layout.index("```", layout.index("```") + 3)]
    drawn = set(re.findall(r"[a-z0-9_]+", diagram))
    assert set(LAYERS) - {"base"} <= drawn, set(LAYERS) - {"base"} - drawn
