"""``torchrl-bc prepare``: build (or bring up to date) a BC dataset from replay files."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from torchrl_bc.commands import add_executor_options
from torchrl_bc.configfile import ConfigError, read_config_file
from torchrl_bc.data.config import DataConfig
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.resources import default_replay_dirs, replay_source

HELP = "simulate replays into a memory-mapped TensorDict dataset with a manifest"
DESCRIPTION = """\
Parse every .replay under --replays (default: the config's data.replays, else the shipped
sample corpus), skip and report bad, desynced and duplicate files, simulate the rest with the
config's observation settings in --workers processes (or Ray tasks with --executor ray, see
docs/SCALE_OUT.md), and write OUT/manifest.json plus one memory-mapped store.
`scripts/train_bc.py --data OUT` trains on it as is. Simulated episodes are cached by content
(replay bytes, observation config, simulator/observation versions), so a re-run only simulates
what changed; a killed build resumes where it stopped. Every run re-hashes the store files whose
size or time stamps changed since the manifest recorded them (--verify re-hashes them all) and
rewrites the store if damaged (--force rewrites it anyway); damaged cache entries are simulated
again. Prints a summary table and the skipped files with their reasons."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replays", nargs="+", type=Path, default=None, metavar="DIR",
                        help="replay directories or files (default: data.replays of --config)")
    parser.add_argument("--config", required=True, type=Path, help="YAML run config")
    parser.add_argument("--out", required=True, type=Path, help="dataset directory")
    add_executor_options(parser, workers_default=None,
                         workers_help="data.workers of --config; 0 there = min(4, CPUs)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="episode cache directory, shareable between datasets "
                             "(default: OUT/cache)")
    parser.add_argument("--val-replay-fraction", type=float, default=0.0,
                        help="also hold out this fraction of the training levels' replays")
    parser.add_argument("--prune", action="store_true", help="delete unused cache entries")
    parser.add_argument("--force", action="store_true",
                        help="rewrite the store from the cache even if it is up to date")
    parser.add_argument("--verify", action="store_true",
                        help="re-hash every store file, not only those whose stamps changed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or table")


def read_config(path: Path) -> tuple[ObservationConfig, DataConfig]:
    """The ``observation`` and ``data`` sections (merged over the config's ``base:`` chain);
    the same ``DataConfig`` (and defaults) training reads.

    Deliberately torch-free (``torchrl_bc.train.config`` imports the models, ~3 s), so that an
    up-to-date ``prepare`` returns in well under two seconds. Unknown observation or data keys
    are an error that names them; everything else in the file belongs to the training config.
    """
    raw = read_config_file(path)  # merged over its base: chain, as training reads it
    obs = ObservationConfig.from_dict(raw.get("observation") or {})
    return obs, DataConfig.from_mapping(raw.get("data") or {})


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
    if args.workers is not None:
        data = replace(data, workers=args.workers)
    try:
        if args.replays:
            replays = list(args.replays)
        elif data.replays:
            replays = [replay_source(p) for p in data.replays]
        else:  # no data given at all: the shipped corpus, as for training
            replays = default_replay_dirs()
        build_dataset(replays, obs_config, args.out, workers=data.n_workers(),
                      mirror=data.mirror, val_fraction=data.val_fraction,
                      val_replay_fraction=args.val_replay_fraction,
                      split_seed=data.split_seed, cache_dir=args.cache,
                      progress=not args.quiet, prune=args.prune, verbose=not args.quiet,
                      trim_idle=data.trim_idle_start, release_jumps=data.release_jumps,
                      force=args.force, verify=args.verify,
                      executor=args.executor, ray_address=args.ray_address)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 1
    print(f"dataset written to {args.out}")
    return 0
