"""Numba's on-disk cache, keyed on every source file the compiled code depends on.

Numba stamps a cached function with a hash of its own file only. Our kernels fold constants
from other modules into the machine code (``layout``'s column indices, ``constants``' physics),
so an edit there would be served stale code from the cache. Importing this module (the
compiled modules do it before their first ``njit``) puts two locators in front of numba's own:
they keep numba's cache folders (``NUMBA_CACHE_DIR`` when set, else ``__pycache__``) but stamp
every function of a compiled module with one hash over :data:`JIT_SOURCES`. Functions outside
this package are left to numba's default locators.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from numba.core.caching import CacheImpl, InTreeCacheLocator, UserProvidedCacheLocator

PACKAGE_ROOT = Path(__file__).resolve().parents[1]

#: Source files whose content decides the compiled code: the modules that hold ``njit``
#: functions, every project module they read globals from, and this file. A test parses the
#: compiled modules' imports and fails if one is missing here.
JIT_SOURCES: tuple[str, ...] = (
    "sim/kernel.py",
    "sim/constants.py",
    "sim/layout.py",
    "sim/entities.py",
    "obs/draw.py",
    "env/slots_jit.py",
    "sim/jitcache.py",
)

#: The modules that hold compiled functions.
JIT_MODULES: tuple[str, ...] = ("sim/kernel.py", "obs/draw.py", "env/slots_jit.py")


@cache
def source_stamp(root: Path = PACKAGE_ROOT) -> str:
    """SHA-256 over the compiled code's source files, in a fixed order."""
    h = hashlib.sha256()
    for rel in JIT_SOURCES:
        h.update(rel.encode())
        h.update(b"\0")
        h.update((root / rel).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _is_ours(py_file: str) -> bool:
    try:
        rel = Path(py_file).resolve().relative_to(PACKAGE_ROOT).as_posix()
    except ValueError:
        return False
    return rel in JIT_MODULES


class _ProjectStamp:
    """Replaces the per-file stamp with the hash over all of :data:`JIT_SOURCES`."""

    def get_source_stamp(self) -> str:
        return source_stamp()


class ProjectUserDirLocator(_ProjectStamp, UserProvidedCacheLocator):
    @classmethod
    def from_function(cls, py_func, py_file):
        return super().from_function(py_func, py_file) if _is_ours(py_file) else None


class ProjectInTreeLocator(_ProjectStamp, InTreeCacheLocator):
    @classmethod
    def from_function(cls, py_func, py_file):
        return super().from_function(py_func, py_file) if _is_ours(py_file) else None


def install() -> None:
    """Put the project locators first (idempotent)."""
    classes = CacheImpl._locator_classes
    for locator in (ProjectInTreeLocator, ProjectUserDirLocator):
        if locator not in classes:
            classes.insert(0, locator)


install()
