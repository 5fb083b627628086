"""Reading a YAML run config: one file, or a chain of files joined by ``base:``.

A config may name the file it builds on (``base: base.yaml``, relative to the config's own
folder, never to the working directory); the two are deep-merged, the child's values winning,
and the chain may go on (a base with a base of its own). Torch-free, so ``torchrl-bc prepare``
reads configs the same way training does without importing the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["BASE_KEY", "ConfigError", "deep_merge", "read_config_file", "yaml_problem"]

#: The top-level key naming a config's base file.
BASE_KEY = "base"


class ConfigError(ValueError):
    """A bad config file, key or value; the message names the file or the dotted key."""


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what went wrong and where."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def deep_merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` over ``base``: mappings merge key by key, anything else (lists included) is
    replaced by the child's value. Neither input is modified."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_one(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config {path} does not exist" if not path.exists()
                          else f"config {path} is not a file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"config {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {yaml_problem(exc)}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: a config must be a mapping, got "
                          f"{type(raw).__name__}")
    return raw


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The config at ``path`` merged over its ``base:`` chain, without the ``base`` key.

    A missing, unreadable or non-mapping base, a ``base`` that is not one file name, and a chain
    that comes back to a file already in it are errors naming the config that refers to it.
    """
    path = Path(path)
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []
    while True:
        raw = _read_one(path)
        chain.append(path.resolve())
        layers.append(raw)
        if BASE_KEY not in raw:
            break
        name = raw.pop(BASE_KEY)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"config {path}: {BASE_KEY} must name one config file "
                              f"(relative to {path.parent}), got {name!r}")
        base = path.parent / name
        if base.resolve() in chain:
            loop = " -> ".join(str(p) for p in [*chain, base.resolve()])
            raise ConfigError(f"config {path}: {BASE_KEY} {name!r} makes a cycle: {loop}")
        if not base.is_file():
            raise ConfigError(f"config {path}: {BASE_KEY} {name!r} ({base}) "
                              f"{'does not exist' if not base.exists() else 'is not a file'}")
        path = base
    merged: dict[str, Any] = {}
    for raw in reversed(layers):
        merged = deep_merge(merged, raw)
    return merged
