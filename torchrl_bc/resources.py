"""Data shipped inside the package, found through ``importlib.resources``.

Found this way, the sample corpus is there in any install (editable or not) and whatever the
working directory. Configs name it ``package:sample_corpus``; :func:`replay_source` is the one
place that turns such a name, or a user's own folder, into a path. It sits below every layer,
so the data stage resolves configured replays without importing ``levels``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["PACKAGED", "PACKAGE_PREFIX", "SAMPLE_CORPUS", "SAMPLE_CORPUS_SOURCE",
           "default_replay_dirs", "packaged", "replay_source"]

#: How a config names shipped data instead of a path: ``package:NAME``.
PACKAGE_PREFIX = "package:"
#: The folders of shipped data, by name (declared as package data in pyproject.toml).
PACKAGED: tuple[str, ...] = ("sample_corpus",)
#: The configs' name for the shipped corpus (64 planner-solved generated levels).
SAMPLE_CORPUS_SOURCE = PACKAGE_PREFIX + "sample_corpus"


def packaged(name: str) -> Path:
    """The folder of the shipped data ``name``; a name not in :data:`PACKAGED` is an error."""
    if name not in PACKAGED:
        raise ValueError(f"{PACKAGE_PREFIX}{name}: no such packaged data; "
                         f"shipped: {[PACKAGE_PREFIX + n for n in PACKAGED]}")
    # A plain (non-zip) install, the only kind setuptools makes here, gives a real folder.
    return Path(os.fspath(resources.files("torchrl_bc") / name))


def replay_source(entry: str | os.PathLike[str]) -> Path:
    """A configured replay folder or file as a path: ``package:NAME`` is shipped data (the same
    folder from any working directory); anything else is the user's path, as given."""
    text = os.fspath(entry)
    if text.startswith(PACKAGE_PREFIX):
        return packaged(text[len(PACKAGE_PREFIX):])
    return Path(text)


#: The shipped sample corpus folder.
SAMPLE_CORPUS = packaged("sample_corpus")


def default_replay_dirs() -> list[Path]:
    """The shipped sample corpus: what training and ``prepare`` use when no data is given at
    all (never a stand-in for a path that was given but is wrong)."""
    if SAMPLE_CORPUS.is_dir() and any(SAMPLE_CORPUS.glob("*.replay")):
        return [SAMPLE_CORPUS]
    raise FileNotFoundError(f"no replay data given and the shipped sample corpus "
                            f"({SAMPLE_CORPUS}) is missing; pass --data DIR")
