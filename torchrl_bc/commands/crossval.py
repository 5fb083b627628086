"""``torchrl-bc crossval``: the held-out success rate over every winnable human level."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from torchrl_bc.sim.level import DEFAULT_MAX_TICKS

HELP = "train K policies on level-disjoint folds and score every level held out"
DESCRIPTION = """\
Groups the levels of the replays under --data by map (a map and its mirror image form one
group, so duplicate and mirrored copies stay together), deals the groups into --folds K folds
(seeded by --fold-seed), trains one policy per fold on the other folds' replays only, with the
config's whole recipe as scripts/train_bc.py runs it (its data.generated levels, BC, its DAgger
rounds; best.pt is selected on the training levels' own validation split, data.val_fraction;
--select last uses the last BC epoch, or the last DAgger round) and rolls every level out
greedily, once, with the policy that never saw it. The cap is --tick-factor x the shortest
winning demo, at most --max-ticks.

Files that cannot be read and maps without a winning replay are skipped and listed by name.
Writes OUT/per_level.json, OUT/per_level.csv, OUT/summary.json and one run per fold
(OUT/fold-K/run). Prints the training-level success of the same policies and a random
sticky-input baseline on the same levels and caps; the last line is
`heldout_success_rate: X`."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="YAML config (configs/*.yaml)")
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR",
                        help="replay directories (searched recursively for *.replay)")
    parser.add_argument("--folds", type=int, required=True, metavar="K", help="folds, >= 2")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--epochs", type=int, default=None, help="sets train.epochs")
    parser.add_argument("--override", nargs="+", action="extend", default=[],
                        metavar="KEY=VALUE", help="dotted config keys, YAML values")
    parser.add_argument("--fold-seed", type=int, default=0, help="seed of the fold assignment")
    parser.add_argument("--select", choices=("best", "last"), default="best",
                        help="checkpoint scored per fold (default best)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--tick-factor", type=float, default=2.0,
                        help="episode cap as a multiple of the shortest winning demo")
    parser.add_argument("--max-ticks", type=int, default=DEFAULT_MAX_TICKS,
                        help=f"upper bound on every cap (default {DEFAULT_MAX_TICKS})")
    parser.add_argument("--random-episodes", type=int, default=4,
                        help="random sticky-input episodes per level (baseline)")
    parser.add_argument("--train-levels", type=int, default=-1,
                        help="training levels each fold's policy is also scored on "
                             "(-1 all, 0 none)")
    parser.add_argument("--resume", action="store_true",
                        help="continue each fold's run from its last.pt and its last finished "
                             "DAgger round (dagger_state.pt)")
    parser.add_argument("--verbose", "-v", action="store_true", help="the trainer's own log")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from torchrl_bc.train.config import ConfigError, load_config, with_values
    from torchrl_bc.train.crossval import crossval, report_lines

    if args.random_episodes < 0 or args.max_ticks < 1 or args.tick_factor <= 0:
        print("error: --random-episodes >= 0, --max-ticks >= 1 and --tick-factor > 0 needed",
              file=sys.stderr)
        return 2
    missing = [d for d in args.data if not Path(d).is_dir()]
    if missing:
        print(f"error: --data {missing[0]} is not a directory", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, list(args.override))
        if args.epochs is not None:
            cfg = with_values(cfg, {"train.epochs": args.epochs})
    except (ConfigError, OSError) as exc:
        print(f"error: {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        result = crossval(cfg, args.data, args.folds, args.out, fold_seed=args.fold_seed,
                          select=args.select, device=args.device, tick_factor=args.tick_factor,
                          max_ticks=args.max_ticks, random_episodes=args.random_episodes,
                          train_levels=args.train_levels, resume=args.resume,
                          verbose=args.verbose)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"per-level results: {args.out / 'per_level.csv'} (and .json, summary.json)")
    for line in report_lines(result.summary):
        print(line)
    return 0
