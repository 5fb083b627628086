"""``torchrl-bc warmup-critic``: fit an export's value head on BC rollouts."""

from __future__ import annotations

import argparse

from torchrl_bc.commands import (
    discount,
    existing_file,
    fail,
    levels_spec,
    output_file,
    positive_float,
    positive_int,
)

PROG = "torchrl-bc warmup-critic"
HELP = "fit the exported value head on returns of the frozen BC policy (critic: warmed)"
DESCRIPTION = """\
Roll out the frozen BC policy (sampled) in the SB3 env (make_sb3_env) on --levels, compute
discounted returns with --gamma (use PPO's), and fit mlp_extractor.value_net + value_net on
them; the actor and the features extractor are untouched. SOURCE is an export (from
`torchrl-bc export`) or a BC checkpoint (exported first). Writes --out (default: overwrite
SOURCE if it is an export)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=existing_file, metavar="SOURCE",
                        help="export .pt or BC checkpoint")
    parser.add_argument("--out", type=output_file, default=None, help="warmed export (.pt)")
    parser.add_argument("--levels", default=None, type=levels_spec,
                        help="directory of *.replay/*.map or a suite name (default: sample corpus)")
    parser.add_argument("--steps", type=positive_int, default=20000,
                        help="environment steps to roll out")
    parser.add_argument("--gamma", type=discount, default=0.99)
    parser.add_argument("--epochs", type=positive_int, default=20)
    parser.add_argument("--lr", type=positive_float, default=1e-3)
    parser.add_argument("--n-envs", type=positive_int, default=8)
    parser.add_argument("--tick-factor", type=positive_float, default=3.0,
                        help="episode cap = factor x demo ticks (as in PPO)")
    parser.add_argument("--max-ticks", type=positive_int, default=5000,
                        help="episode cap in ticks (levels without a demo; an upper bound)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from torchrl_bc.sb3 import (
        EXPORT_FORMAT,
        ExportMismatch,
        export_checkpoint,
        load_export,
        warmup_critic,
        write_export,
    )
    from torchrl_bc.train.checkpoint import CheckpointMismatch, read_torch_file

    try:
        raw = read_torch_file(args.source, "SOURCE")
        is_export = isinstance(raw, dict) and raw.get("format") == EXPORT_FORMAT
        if args.out is None and not is_export:
            return fail(PROG, "--out is required when SOURCE is a BC checkpoint", 2)
        export = load_export(args.source) if is_export else export_checkpoint(args.source)
        warm = warmup_critic(export, args.levels, steps=args.steps, gamma=args.gamma,
                             epochs=args.epochs, lr=args.lr, n_envs=args.n_envs,
                             seed=args.seed, tick_factor=args.tick_factor,
                             max_ticks=args.max_ticks, progress=True)
        out = write_export(warm, args.out or args.source)
    except (CheckpointMismatch, ExportMismatch, FileNotFoundError, RuntimeError,
            ValueError) as exc:
        return fail(PROG, exc)
    info = warm["critic_info"]
    print(f"wrote {out}: critic warmed on {int(info['episodes'])} episodes "
          f"({int(info['samples'])} steps, BC success {info['success']:.2f}); value MSE "
          f"{info['mse_before']:.4f} -> {info['mse_after']:.4f}, explained variance "
          f"{info['explained_variance']:.2f}")
    return 0
