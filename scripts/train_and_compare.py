"""PPO from scratch vs PPO from a BC export, per architecture and seed, same budget and levels.

    python scripts/train_and_compare.py --replay-data-dir ../shared/data/replays \
        --architectures tiny mlp --seeds 0 1 2 --total-timesteps 20000 \
        (--bc-checkpoint [ARCH=]best.pt ... | --bc-epochs 3) [--variants scratch bc bc_warm]
        [--kl-coef 0.1 --kl-updates 5] [--out runs/compare] [--wandb offline|disabled|online]

Writes OUT/results.json, OUT/curves.png (success vs steps), OUT/results.md and one W&B run per
(architecture, variant, seed), offline by default.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

#: The project's config presets, found from this script's place in the checkout (not the cwd).
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def build_parser() -> argparse.ArgumentParser:
    from torchrl_bc.commands import discount, existing_dir, positive_float, positive_int

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replay-data-dir", required=True, type=existing_dir,
                   help="demo replays: their levels are the RL levels (and BC data)")
    p.add_argument("--architectures", nargs="+", default=["tiny"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--total-timesteps", type=positive_int, default=20000)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bc-checkpoint", nargs="+", default=None, metavar="[ARCH=]CKPT",
                   help="reuse BC checkpoints (a bare path applies to every architecture)")
    g.add_argument("--bc-epochs", type=positive_int, default=3,
                   help="train BC for this many epochs")
    p.add_argument("--bc-config", nargs="+", default=[], metavar="ARCH=YAML",
                   help="BC training config per architecture (default: CONFIGS_DIR/ARCH.yaml)")
    p.add_argument("--configs-dir", type=existing_dir, default=CONFIGS,
                   help=f"folder of ARCH.yaml BC configs (default: {CONFIGS})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace BC runs an earlier comparison left in OUT/bc")
    p.add_argument("--variants", nargs="+", default=["scratch", "bc"],
                   choices=["scratch", "bc", "bc_warm"],
                   help="bc_warm = BC export with the critic warmed up first")
    p.add_argument("--kl-coef", type=float, default=0.0,
                   help="KL(pi_BC || pi) weight for the BC variants' first --kl-updates updates")
    p.add_argument("--kl-updates", type=int, default=0)
    p.add_argument("--warmup-steps", type=positive_int, default=10000)
    p.add_argument("--n-envs", type=positive_int, default=4)
    p.add_argument("--n-steps", type=positive_int, default=256)
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--n-epochs", type=positive_int, default=4)
    p.add_argument("--lr", type=positive_float, default=3e-4)
    p.add_argument("--gamma", type=discount, default=0.99)
    p.add_argument("--ent-coef", type=float, default=0.005)
    p.add_argument("--tick-factor", type=positive_float, default=3.0)
    p.add_argument("--bins", type=positive_int, default=10)
    p.add_argument("--subproc", action="store_true",
                   help="per-env SubprocVecEnv instead of the batched NppSB3VecEnv")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--wandb", default="offline", choices=["offline", "online", "disabled"])
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import torch

    from torchrl_bc.commands import one_line
    from torchrl_bc.sb3.compare import CompareConfig, check_compare_inputs, run_compare
    from torchrl_bc.train.checkpoint import CheckpointMismatch

    torch.set_num_threads(args.threads)
    ckpts: dict[str, str] = {}
    for item in args.bc_checkpoint or []:
        arch, sep, path = item.partition("=")
        if sep:
            ckpts[arch] = path
        else:
            ckpts.update({a: item for a in args.architectures})
    configs: dict[str, str] = {}
    for item in args.bc_config:
        arch, sep, path = item.partition("=")
        if not sep or not arch:
            parser.error(f"--bc-config {item!r} is not ARCH=YAML")
        configs[arch] = path
    cfg = CompareConfig(
        replay_data_dir=str(args.replay_data_dir), architectures=tuple(args.architectures),
        seeds=tuple(args.seeds), total_timesteps=args.total_timesteps, bc_checkpoint=ckpts,
        bc_epochs=args.bc_epochs, variants=tuple(args.variants), out_dir=args.out,
        n_envs=args.n_envs, n_steps=args.n_steps, batch_size=args.batch_size,
        n_epochs=args.n_epochs, learning_rate=args.lr, gamma=args.gamma,
        ent_coef=args.ent_coef, kl_coef=args.kl_coef, kl_updates=args.kl_updates,
        warmup_steps=args.warmup_steps, tick_factor=args.tick_factor, bins=args.bins,
        subproc=args.subproc, wandb=args.wandb, bc_configs=configs,
        configs_dir=str(args.configs_dir), overwrite=args.overwrite)
    try:
        check_compare_inputs(cfg)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        parser.error(one_line(exc))
    try:
        results = run_compare(cfg)
    except (CheckpointMismatch, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"{parser.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    print((Path(args.out) / "results.md").read_text())
    return 0 if results["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
