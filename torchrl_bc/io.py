"""Atomic file writes and UTF-8-safe text, shared by every stage that writes something a later
run (or another tool) reads."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def text(value: str | os.PathLike[str]) -> str:
    """``value`` as valid UTF-8 text, for JSON that strict readers load.

    POSIX file names are bytes; Python carries bytes that are not UTF-8 as lone surrogates,
    which no strict UTF-8 encoder accepts. They become the ``backslashreplace`` form: byte 0xE9
    is written as the four characters ``\\xe9``. Valid text is returned unchanged.
    """
    return os.fspath(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def json_safe(obj: Any) -> Any:
    """``obj`` with every string (keys included) passed through :func:`text`."""
    if isinstance(obj, str):
        return text(obj)
    if isinstance(obj, dict):
        return {text(k) if isinstance(k, str) else k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync it, then rename it into place,
    so readers (or a run killed midway) see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
