"""Atomic file writes and UTF-8-safe text, shared by every stage that writes something a later
run (or another tool) reads."""

from __future__ import annotations

import os
import stat
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


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import (reading it means setting it, which would race with other threads).
_UMASK = _process_umask()


def _new_file_mode(path: Path) -> int:
    """The mode ``open(path, "w")`` would leave: the old file's if there is one, else 0o666
    less the umask (``mkstemp`` alone gives 0o600, which other users of a run folder cannot
    read)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync it, then rename it into place,
    so readers (or a run killed midway) see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def make_temp_dir(prefix: str, parent: str | os.PathLike[str]) -> Path:
    """A new empty directory in ``parent``, to be filled and renamed into place, with the mode
    ``mkdir`` would give (0o777 less the umask; ``mkdtemp`` alone gives 0o700, which other
    users of a shared data folder cannot enter)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o777 & ~_UMASK)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to ``path`` so readers see either the old file or the whole new one."""
    atomic_write(path, lambda fh: fh.write(payload))


class FileRejectedError(ValueError):
    """A file that is not read at all: not a regular file, too big, or unreadable."""

    def __init__(self, path: str | os.PathLike[str], defect: str) -> None:
        self.path, self.defect = os.fspath(path), defect
        super().__init__(f"{self.path}: {defect}")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, else :class:`FileRejectedError`.

    Opened non-blocking (a FIFO would otherwise block ``open`` forever) and checked with
    ``fstat`` on the open descriptor (no race with a rename), so FIFOs, devices, directories and
    oversized files are refused before a byte is read, and at most ``limit + 1`` bytes are ever
    read. Symlinks to regular files are followed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise FileRejectedError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRejectedError(path, f"not a regular file ({_kind(st.st_mode)}); "
                                          "refusing to read it")
        if st.st_size > limit:
            raise FileRejectedError(path, f"file is {st.st_size} bytes, more than the {limit} "
                                          "it can need")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)  # the file may have grown since fstat
    except OSError as exc:
        raise FileRejectedError(path, f"cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileRejectedError(path, f"file grew past {limit} bytes while being read")
    return data
