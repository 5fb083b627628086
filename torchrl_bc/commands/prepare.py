"""``torchrl-bc prepare``: build (or bring up to date) a BC dataset from replay files."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from torchrl_bc.configfile import ConfigError, read_config_file
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.resources import SAMPLE_CORPUS_SOURCE, replay_source

HELP = "simulate replays into a memory-mapped TensorDict dataset with a manifest"
DESCRIPTION = """\
Parse every .replay under --replays (default: the config's data.replays), skip and report bad,
desynced and duplicate files, simulate the rest with the config's observation settings in
--workers processes, and write OUT/manifest.json plus one memory-mapped store. Simulated
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
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="simulation processes (default: min(2, CPUs))")
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
DATA_DEFAULTS: dict[str, Any] = {"replays": [SAMPLE_CORPUS_SOURCE], "val_fraction": 0.15,
                                 "split_seed": 0, "mirror": False}


def read_config(path: Path) -> tuple[ObservationConfig, dict[str, Any]]:
    """The ``observation`` section as an ``ObservationConfig`` and prepare's ``data`` keys.

    Deliberately torch-free (``torchrl_bc.train.config`` imports the models, ~3 s), so that an
    up-to-date ``prepare`` returns in well under two seconds. Unknown observation keys are an
    error that names them; everything else in the file belongs to the training config.
    """
    raw = read_config_file(path)  # merged over its base: chain, as training reads it
    obs = ObservationConfig.from_dict(raw.get("observation") or {})
    data = DATA_DEFAULTS | {k: v for k, v in (raw.get("data") or {}).items()
                            if k in DATA_DEFAULTS}
    if isinstance(data["replays"], str):
        data["replays"] = [data["replays"]]
    return obs, data


def run(args: argparse.Namespace) -> int:
    from torchrl_bc.data.build import build_dataset

    try:
        obs_config, data = read_config(args.config)
    except ConfigError as exc:  # names the file already
        print(f"prepare: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        print(f"prepare: {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        replays = args.replays or [replay_source(p) for p in data["replays"]]
        build_dataset(replays, obs_config, args.out, workers=args.workers,
                      mirror=bool(data["mirror"]), val_fraction=float(data["val_fraction"]),
                      val_replay_fraction=args.val_replay_fraction,
                      split_seed=int(data["split_seed"]), cache_dir=args.cache,
                      progress=not args.quiet, prune=args.prune, verbose=not args.quiet,
                      force=args.force)
    except (FileNotFoundError, ValueError) as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 1
    print(f"dataset written to {args.out}")
    return 0
