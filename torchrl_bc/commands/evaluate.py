"""``torchrl-bc evaluate``: closed-loop success of a BC checkpoint on a suite or a level folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "roll a checkpoint's policy out on levels and report the success rate"
DESCRIPTION = """\
Load CKPT (best.pt / last.pt of scripts/train_bc.py; weights-only, observation spec checked) and
play each level of --levels once per episode in NppEnv: a suite (suite:NAME, or NAME alone:
simple, medium, hard, generalist; success is also printed per level family) or a
directory searched recursively for raw map-data files (*.map) and .replay files (their map data;
each distinct level counts once, capped at --tick-factor x its shortest winning demo, or
--max-ticks without one). Greedy actions unless --sampled. Ends with `success_rate: X`."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, metavar="CKPT", help="checkpoint file")
    parser.add_argument("--levels", required=True, metavar="DIR_OR_SUITE",
                        help="suite name or directory of *.map / *.replay files")
    parser.add_argument("--episodes", type=int, default=1,
                        help="episodes per level (more only differ with --sampled)")
    parser.add_argument("--sampled", action="store_true", help="sample actions, not argmax")
    parser.add_argument("--tick-factor", type=float, default=2.0,
                        help="episode cap as a multiple of the demo length (default 2)")
    parser.add_argument("--max-ticks", type=int, default=5000,
                        help="cap for levels without a demo (default 5000)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0, help="seed for --sampled")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per level")


def run(args: argparse.Namespace) -> int:
    import torch

    from torchrl_bc.train.checkpoint import CheckpointMismatch, load_policy
    from torchrl_bc.train.distributed import resolve_device
    from torchrl_bc.train.evaluate import (
        discover_levels,
        family_success,
        rollout_levels,
        summarise,
    )

    if args.episodes < 1:
        print("error: --episodes must be >= 1", file=sys.stderr)
        return 2
    try:
        _, net, cfg, ckpt = load_policy(args.checkpoint, resolve_device(args.device))
        levels = discover_levels(args.levels)
    except (FileNotFoundError, ValueError, CheckpointMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    gen = torch.Generator().manual_seed(args.seed)
    results = []
    for _ in range(args.episodes):
        res, _ = rollout_levels(net, levels, cfg.observation, greedy=not args.sampled,
                                generator=gen, tick_factor=args.tick_factor,
                                max_ticks=args.max_ticks)
        results.extend(res)
    if args.verbose:
        for r in results:
            print(f"{r.name:<48} {'WIN ' if r.won else 'died' if r.died else 'timeout'} "
                  f"{r.ticks:>5}/{r.cap} ticks (demo {r.demo_ticks})")
    stats = summarise(results, "")
    print(f"checkpoint: {args.checkpoint} ({cfg.architecture.name}, epoch {ckpt['epoch']})")
    print(f"levels: {len(levels)}  episodes: {len(results)}  "
          f"mode: {'sampled' if args.sampled else 'greedy'}")
    print(f"death_rate: {stats['death']:.4f}")
    for fam, (wins, n) in family_success(levels, results).items():
        print(f"family {fam}: {wins}/{n} = {wins / n:.3f}")
    if "length_ratio" in stats:
        print(f"length_ratio: {stats['length_ratio']:.3f}")
    print(f"success_rate: {stats['success']:.4f}")
    return 0
