"""Behavioural cloning: ``python scripts/train_bc.py --config configs/hgt.yaml``.

    python scripts/train_bc.py --config CFG [--data DIR...] [--epochs N] [--out DIR]
        [--device auto|cpu|cuda] [--wandb offline|disabled|online] [--resume | --overwrite]
        [--seed S] [--executor local|ray] [--ray-address ADDR] [--override key=value ...]

Writes ``DIR/best.pt`` and ``DIR/last.pt`` (plus ``plots/``, ``history.json``). Multi-process:
``torchrun --nproc_per_node N scripts/train_bc.py ...`` (gloo on CPU, nccl on CUDA).

The recipe, in order (``torchrl_bc.train.pretrain``, one training path for this script and for
library users): generated levels if the config asks for them, then
``torchrl_bc.train.loop.train``, which builds the run from ``torchrl_bc.train.factories``
(``make_dataset``, ``make_actor``, ``make_loss``, ``make_optimizer``, ``make_logger``,
``make_eval_levels``) and loops epochs of ``update(td)`` steps under a progress bar, then
validation, closed-loop evaluation in the TorchRL ``LevelsEnv``, a checkpoint and a log line;
then DAgger rounds if configured, and a strict reload of ``best.pt``. Flags set fields of the
validated config directly; ``--override key=value`` reaches any other key.
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: idle workers sleep instead of spinning on shared CPUs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from torchrl_bc.commands import existing_file, positive_int

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=existing_file,
                   help="YAML config (configs/*.yaml)")
    p.add_argument("--data", nargs="+", default=None, metavar="DIR",
                   help="replay directories, each must exist and hold *.replay files, or "
                        "one dataset folder written by `torchrl-bc prepare` (opened as is) "
                        "(default: the config's data.replays, else the shipped "
                        "package:sample_corpus)")
    p.add_argument("--epochs", type=positive_int, default=None)
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/<name>)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--wandb", default=None, choices=("offline", "disabled", "online"))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true",
                   help="continue from DIR/last.pt, then from the last finished DAgger round "
                        "(DIR/dagger_state.pt)")
    g.add_argument("--overwrite", action="store_true",
                   help="start afresh in a DIR that already holds a run, replacing its "
                        "best.pt/last.pt (without it, or --resume, such a DIR is refused)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--executor", default=None, choices=("local", "ray"),
                   help="where the planner runs: the data.generated levels and DAgger's "
                        "labels (dagger.executor; docs/SCALE_OUT.md)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster for --executor ray (dagger.ray_address; default "
                        "$RAY_ADDRESS, else a private instance)")
    p.add_argument("--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="dotted config keys, YAML values: train.lr=1e-3 data.mirror=false")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from torchrl_bc.commands import one_line
    from torchrl_bc.data import data_dir_problem
    from torchrl_bc.train.checkpoint import CheckpointMismatch
    from torchrl_bc.train.config import ConfigError, load_config, with_values
    from torchrl_bc.train.loop import RunExists, check_out_dir
    from torchrl_bc.train.pipeline import pretrain

    for d in args.data or []:
        problem = data_dir_problem(d)
        if problem:
            parser.error(f"--data: {problem}")
    flags = {"data.replays": tuple(str(d) for d in args.data) if args.data else None,
             "train.epochs": args.epochs, "train.seed": args.seed,
             "logging.wandb": args.wandb, "dagger.executor": args.executor,
             "dagger.ray_address": args.ray_address}
    try:
        cfg = load_config(args.config, args.override)
        cfg = with_values(cfg, {k: v for k, v in flags.items() if v is not None})
    except ConfigError as exc:
        parser.error(one_line(exc))
    if not args.data:  # the config's own data.replays: as strict as --data
        for d in cfg.data.replays:
            problem = data_dir_problem(d)
            if problem:
                parser.error(f"data.replays in {args.config}: {problem}")
    out = args.out or Path("runs") / (cfg.logging.run_name or args.config.stem)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    try:
        check_out_dir(out, resume=args.resume, overwrite=args.overwrite)
    except RunExists as exc:
        parser.error(one_line(exc))
    except CheckpointMismatch as exc:
        print(f"{parser.prog}: error: --resume: {one_line(exc)}", file=sys.stderr)
        return 1
    try:
        best = pretrain(cfg, out, device=args.device, resume=args.resume,
                        overwrite=args.overwrite)
    except (CheckpointMismatch, ConfigError, FileNotFoundError, RunExists, ValueError) as exc:
        print(f"{parser.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    if rank0:
        print(f"best: {best}")
        print(f"last: {out / 'last.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
