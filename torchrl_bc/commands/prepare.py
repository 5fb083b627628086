"""``torchrl-bc prepare``: build (or bring up to date) a BC dataset from replay files."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from torchrl_bc.commands import add_executor_options
from torchrl_bc.obs.config import ObservationConfig

HELP = "simulate replays into a memory-mapped TensorDict dataset with a manifest"
DESCRIPTION = """\
Parse every .replay under --replays (default: the config's data.replays), skip and report bad,
desynced and duplicate files, simulate the rest with the config's observation settings in
--workers processes (or Ray tasks with --executor ray, see docs/SCALE_OUT.md), and write
OUT/manifest.json plus one memory-mapped store. Simulated
episodes are cached by content (replay bytes, observation config, simulator/observation
versions), so a re-run only simulates what changed; a killed build resumes where it stopped.
Every run re-hashes the existing store against the checksums in the manifest and rewrites it
if damaged (--force rewrites it anyway); damaged cache entries are simulated again.
Prints a summary table and the skipped files with their reasons."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replays", nargs="+", type=Path, default=None, metavar="DIR",
                        help="replay directories or files (default: data.replays of --config)")
    parser.add_argument("--config", required=True, type=Path, help="YAML run config")
    parser.add_argument("--out", required=True, type=Path, help="dataset directory")
    add_executor_options(parser, workers_default=min(2, os.cpu_count() or 1))
    parser.add_argument("--cache", type=Path, default=None,
                        help="episode cache directory, shareable between datasets "
                             "(default: OUT/cache)")
    parser.add_argument("--val-replay-fraction", type=float, default=0.0,
                        help="also hold out this fraction of the training levels' replays")
    parser.add_argument("--prune", action="store_true", help="delete unused cache entries")
    parser.add_argument("--force", action="store_true",
                        help="rewrite the store from the cache even if it is up to date")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or table")


#: ``data`` keys prepare reads, with defaults (the training loader validates the section).
DATA_DEFAULTS: dict[str, Any] = {"replays": ["data/sample_corpus"], "val_fraction": 0.15,
                                 "split_seed": 0, "mirror": False}


def read_config(path: Path) -> tuple[ObservationConfig, dict[str, Any]]:
    """The ``observation`` section as an ``ObservationConfig`` and prepare's ``data`` keys.

    Deliberately torch-free (``torchrl_bc.train.config`` imports the models, ~3 s), so that an
    up-to-date ``prepare`` returns in well under two seconds. Unknown observation keys are an
    error that names them; everything else in the file belongs to the training config.
    """
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError("a config must be a mapping")
    obs = raw.get("observation") or {}
    known = {f.name for f in fields(ObservationConfig)}
    unknown = sorted(set(obs) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {[f'observation.{k}' for k in unknown]}; "
                         f"known in observation: {sorted(known)}")
    data = DATA_DEFAULTS | {k: v for k, v in (raw.get("data") or {}).items()
                            if k in DATA_DEFAULTS}
    if isinstance(data["replays"], str):
        data["replays"] = [data["replays"]]
    return ObservationConfig(**obs), data


def run(args: argparse.Namespace) -> int:
    from torchrl_bc.data.build import build_dataset

    try:
        obs_config, data = read_config(args.config)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        print(f"prepare: {args.config}: {exc}", file=sys.stderr)
        return 2
    replays = args.replays or [Path(p) for p in data["replays"]]
    try:
        build_dataset(replays, obs_config, args.out, workers=args.workers,
                      mirror=bool(data["mirror"]), val_fraction=float(data["val_fraction"]),
                      val_replay_fraction=args.val_replay_fraction,
                      split_seed=int(data["split_seed"]), cache_dir=args.cache,
                      progress=not args.quiet, prune=args.prune, verbose=not args.quiet,
                      force=args.force, executor=args.executor,
                      ray_address=args.ray_address)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 1
    print(f"dataset written to {args.out}")
    return 0
