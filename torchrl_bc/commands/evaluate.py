"""``torchrl-bc evaluate``: closed-loop success of a BC checkpoint on a suite or a level folder."""

from __future__ import annotations

import argparse

from torchrl_bc.commands import (
    existing_file,
    fail,
    levels_spec,
    output_dir,
    positive_float,
    positive_int,
)

PROG = "torchrl-bc evaluate"
HELP = "roll a checkpoint's policy out on levels and report the success rate"
DESCRIPTION = """\
Load CKPT (best.pt / last.pt of scripts/train_bc.py; weights-only, observation spec checked) and
play each level of --levels once per episode, all levels stepped together in one batched
TorchRL env (one policy forward per step): a suite (suite:NAME, or NAME alone:
simple, medium, hard, generalist; success is also printed per level family) or a
directory searched recursively for raw map-data files (*.map) and .replay files (their map data;
each distinct level counts once, capped at --tick-factor x its shortest winning demo, or
--max-ticks without one). Greedy actions unless --sampled. Files that cannot be read, and
levels whose only demos do not win (e.g. a replay that lost a header byte), are skipped and
listed with their reason; the success rate's denominator is the levels evaluated. Losses
are split into died, stuck (timed out without moving 6 px in the last 300 ticks, or in the
last half of the cap when that is shorter: a greedy policy at a fixed point) and other
timeouts, and deaths by what killed the ninja (mine, impact, drone, ...). --save-replays DIR
writes each episode's inputs as DIR/<level>.replay (its header says whether it won), to watch
with `torchrl-bc render`. Ends with `success_rate: X`."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=existing_file, metavar="CKPT", help="checkpoint file")
    parser.add_argument("--levels", required=True, metavar="DIR_OR_SUITE", type=levels_spec,
                        help="suite name or directory of *.map / *.replay files")
    parser.add_argument("--episodes", type=positive_int, default=1,
                        help="episodes per level (more only differ with --sampled)")
    parser.add_argument("--sampled", action="store_true", help="sample actions, not argmax")
    parser.add_argument("--tick-factor", type=positive_float, default=2.0,
                        help="episode cap as a multiple of the demo length (default 2)")
    parser.add_argument("--max-ticks", type=positive_int, default=5000,
                        help="cap for levels without a demo (default 5000)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0, help="seed for --sampled")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per level")
    parser.add_argument("--save-replays", metavar="DIR", type=output_dir, default=None,
                        help="write each episode as DIR/<level>.replay (render to watch it)")


def run(args: argparse.Namespace) -> int:
    from collections import Counter

    import torch

    from torchrl_bc.train.checkpoint import CheckpointMismatch, load_policy
    from torchrl_bc.train.distributed import resolve_device
    from torchrl_bc.train.evaluate import (
        MOVE_PX,
        STUCK_TICKS,
        death_kind_of,
        family_success,
        rollout_levels,
        save_episode_replays,
        scan_levels,
        summarise,
    )

    try:
        actor, cfg, ckpt = load_policy(args.checkpoint, resolve_device(args.device))
    except (FileNotFoundError, ValueError, CheckpointMismatch) as exc:
        return fail(PROG, exc)
    try:
        scan = scan_levels(args.levels)
    except (FileNotFoundError, ValueError) as exc:
        return fail(PROG, exc)
    levels = scan.levels
    gen = torch.Generator().manual_seed(args.seed)
    results = []
    for _ in range(args.episodes):
        res, _ = rollout_levels(actor, levels, cfg.observation, greedy=not args.sampled,
                                generator=gen, tick_factor=args.tick_factor,
                                max_ticks=args.max_ticks, keep_inputs=True)
        results.extend(res)
    if args.save_replays is not None:
        try:
            written = save_episode_replays(args.save_replays,
                                           list(zip(levels * args.episodes, results,
                                                    strict=True)))
        except OSError as exc:
            return fail(PROG, f"--save-replays {args.save_replays}: {exc}")
    # what the ninja was doing at each death, from the inputs it played, re-simulated
    kinds = [death_kind_of(lv.map_data, r)
             for lv, r in zip(levels * args.episodes, results, strict=True)]
    if args.verbose:
        for r, kind in zip(results, kinds, strict=True):
            cause = f" ({r.death_cause}, {kind})" if r.died else ""
            print(f"{r.name:<48} {'WIN' if r.won else r.outcome:<7} "
                  f"{r.ticks:>5}/{r.cap} ticks (demo {r.demo_ticks}){cause}")
    stats = summarise(results, "")
    print(f"checkpoint: {args.checkpoint} ({cfg.architecture.name}, epoch {ckpt['epoch']})")
    print("\n".join(scan.report()))
    print(f"episodes: {len(results)}  mode: {'sampled' if args.sampled else 'greedy'}")
    print(f"death_rate: {stats['death']:.4f}")
    lost = Counter(r.outcome for r in results if not r.won)
    print(f"losses: {lost['died']} died, {lost['stuck']} stuck (timed out without moving "
          f"{MOVE_PX:g} px in the last {STUCK_TICKS} ticks or half the cap), "
          f"{lost['timeout']} other timeouts")
    causes = Counter(r.death_cause for r in results if r.died)
    if causes:
        print("deaths by cause: " + ", ".join(f"{c} {k}" for c, k in causes.most_common()))
        print("deaths by what the ninja was doing: " + ", ".join(
            f"{k} {n}" for k, n in Counter(k for k in kinds if k).most_common()))
    for fam, (wins, n) in family_success(levels, results).items():
        print(f"family {fam}: {wins}/{n} = {wins / n:.3f}")
    if "length_ratio" in stats:
        print(f"length_ratio: {stats['length_ratio']:.3f}")
    print(f"wins: {sum(r.won for r in results)} of {len(results)} episodes on "
          f"{len(levels)} levels")
    if args.save_replays is not None:
        print(f"replays: {len(written)} episodes written to {args.save_replays}")
    print(f"success_rate: {stats['success']:.4f}")
    return 0
