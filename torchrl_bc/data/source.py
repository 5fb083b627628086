"""Where a run's data comes from: :func:`open_dataset`, the one door training goes through.

A data source (a path, or ``package:NAME`` for data shipped inside the package, resolved by
:func:`torchrl_bc.resources.replay_source`) is either replay folders (built, or brought up to
date, into a content-named dataset folder, then opened) or one folder that ``torchrl-bc
prepare`` wrote (it holds ``manifest.json``; opened as is once its observation signature and
split settings are checked against the run's config). Every given path must exist and be one of
the two: a typo is an error naming it, never a switch to other data. Choosing data when none is
given at all is the caller's business (``torchrl_bc.resources.default_replay_dirs``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchrl_bc.data.config import DataConfig
from torchrl_bc.data.manifest import MANIFEST, STORE_PREFIX, read_manifest
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.resources import replay_source

if TYPE_CHECKING:
    from torchrl_bc.data.dataset import BCDataset

__all__ = ["check_prepared", "data_dir_problem", "dataset_dir", "is_prepared", "open_dataset"]


def is_prepared(path: str | Path) -> bool:
    """Whether ``path`` is a dataset folder written by ``prepare``: it holds the manifest and a
    store (a solved-level corpus holds a ``manifest.json`` too, but no store)."""
    p = Path(path)
    return (p / MANIFEST).is_file() and any(q.name.startswith(STORE_PREFIX) and q.is_dir()
                                             for q in p.iterdir())


def data_dir_problem(path: str | Path) -> str | None:
    """Why ``path`` (a folder, a file or ``package:NAME``) cannot serve as data (missing,
    empty, neither replays nor a prepared dataset), else None."""
    try:
        p = replay_source(path)
    except ValueError as exc:
        return str(exc)
    if not p.exists():
        where = "" if p.is_absolute() else f" (relative to {Path.cwd()})"
        return f"data directory {str(path)!r} does not exist{where}"
    if p.is_file():
        return None if p.suffix == ".replay" else \
            f"{str(path)!r} is a file, not a directory of *.replay files or a prepared dataset"
    if not p.is_dir():
        return f"{str(path)!r} is not a directory"
    if not is_prepared(p) and next(p.rglob("*.replay"), None) is None:
        return (f"data directory {str(path)!r} holds no *.replay files and is no prepared "
                f"dataset (no {MANIFEST} with a store)")
    return None


def _mismatch(path: Path, field: str, built: Any, wanted: Any) -> ValueError:
    return ValueError(f"prepared dataset {path}: {field} is {built!r} there but {wanted!r} in "
                      f"the config; prepare it again with this config")


def check_prepared(path: str | Path, obs: ObservationConfig, data: DataConfig) -> None:
    """Raise ``ValueError`` naming the folder and the first field in which the prepared dataset
    differs from what the config would build (observation signature, frame skip included;
    mirroring, idle trimming and the split; simulator and store versions)."""
    from torchrl_bc.data.cache import STORE_VERSION
    from torchrl_bc.sim import SIM_VERSION

    path = Path(path)
    manifest = read_manifest(path)
    config = manifest.get("config") or {}
    built = config.get("observation") or {}
    wanted = json.loads(json.dumps(obs.signature()))
    for key in sorted(set(built) | set(wanted)):
        if built.get(key) != wanted.get(key):
            raise _mismatch(path, f"observation.{key}", built.get(key), wanted.get(key))
    # a manifest written before idle trimming existed describes untrimmed demos
    have = {"trim_idle": False, "release_jumps": False} | (config.get("data") or {})
    for field, stored, value in (("data.mirror", "mirror", data.mirror),
                                 ("data.trim_idle_start", "trim_idle", data.trim_idle_start),
                                 ("data.release_jumps", "release_jumps", data.release_jumps),
                                 ("data.val_fraction", "val_fraction", data.val_fraction),
                                 ("data.split_seed", "split_seed", data.split_seed)):
        if have.get(stored) != value:
            raise _mismatch(path, field, have.get(stored), value)
    versions = manifest.get("versions") or {}
    for field, now in (("sim", SIM_VERSION), ("store", STORE_VERSION)):
        if versions.get(field) != now:
            raise _mismatch(path, f"{field} version", versions.get(field), now)


def dataset_dir(root: Path, replay_dirs: Sequence[str | Path], obs: ObservationConfig,
                data: DataConfig) -> Path:
    """One dataset folder per (replay dirs, observation signature, split/mirror settings)."""
    kw: dict[str, Any] = {"val_fraction": data.val_fraction, "mirror": data.mirror,
                          "split_seed": data.split_seed}
    if data.trim_idle_start:  # absent when off: older folders keep their names
        kw["trim_idle"] = True
    if data.release_jumps:
        kw["release_jumps"] = True
    key = json.dumps([sorted(str(Path(d).resolve()) for d in replay_dirs), obs.signature(), kw],
                     sort_keys=True)
    return root / f"ds-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def open_dataset(sources: Sequence[str | Path], obs: ObservationConfig, data: DataConfig, *,
                 root: str | Path, build: bool = True, verbose: bool = True) -> BCDataset:
    """Open the run's dataset: a prepared folder directly (checked by :func:`check_prepared`),
    or replay folders built first into ``root/ds-<hash>`` (fast when nothing changed), with
    the episode cache ``root/episodes`` shared by every dataset of the same observations.
    ``build=False`` only opens (DDP ranks other than 0, after rank 0 built it)."""
    from torchrl_bc.data.dataset import BCDataset

    for source in sources:
        problem = data_dir_problem(source)
        if problem:
            raise FileNotFoundError(problem)
    sources = [replay_source(s) for s in sources]
    prepared = [Path(s) for s in sources if is_prepared(s)]
    if prepared:
        if len(sources) > 1:
            others = [str(s) for s in sources if Path(s) != prepared[0]]
            raise ValueError(f"prepared dataset {prepared[0]} must be the only data source "
                             f"(also given: {others})")
        check_prepared(prepared[0], obs, data)
        path = prepared[0]
        if verbose:
            print(f"data: opening the prepared dataset {path}", file=sys.stderr)
    else:
        path = dataset_dir(Path(root), sources, obs, data)
        if build:
            from torchrl_bc.data.build import build_dataset

            build_dataset(sources, obs, path, workers=data.n_workers(), mirror=data.mirror,
                          val_fraction=data.val_fraction, split_seed=data.split_seed,
                          cache_dir=Path(root) / "episodes", progress=verbose, verbose=verbose,
                          trim_idle=data.trim_idle_start, release_jumps=data.release_jumps)
    return BCDataset(path, min_agreement=data.min_agreement, change_weight=data.change_weight,
                     skip_idle_start=data.skip_idle_start)
