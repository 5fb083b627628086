"""BC-initialised PPO vs PPO from scratch, judged on levels neither ever trained on.

    python scripts/train_and_compare.py --replay-data-dir ../shared/data/replays \
        [--architecture mlp] [--bc-checkpoint CKPT | --bc-epochs 40] [--suite generalist]
        [--seeds 0 1 2 3 4] [--bc-steps 100000] [--scratch-factor 20] [--out runs/compare]

The recipe, top to bottom:

1. ``make_split``: the human levels are split by level (content hash, ``assign_splits``) into
   training levels and held-out levels; a generated suite (``--suite``) is a second held-out set.
2. ``make_bc_checkpoint``: BC trains on the training levels only (or ``--bc-checkpoint``, which
   is refused if its data holds a held-out level). BC holds some of them out for validation
   (``data.val_fraction``; the checkpoint's ``val_levels``).
3. ``make_level_sets``: PPO trains on the training levels BC fitted (``train``) and validates on
   BC's validation levels (``val``), which neither fits; the held-out sets are for reporting.
4. ``make_exports``: the BC checkpoint as an SB3 export, and a copy with a warmed-up critic.
5. ``run_variant`` for each variant and seed: PPO fine-tunes on ``train`` only and is
   evaluated greedily (one episode per level) on every level set at step 0, on a schedule, and
   at the end. BC variants run ``--bc-steps``; scratch runs at least ``--scratch-factor`` times
   that and stops once its training and held-out curves are flat (``is_flat``: no gain over
   ``--plateau-tol`` in the last ``--plateau-window`` evaluations). Each run also keeps the
   policy that did best on ``val`` (the earliest on ties: the BC policy unless one beats it),
   which is what ``finetune_ppo.py`` returns: its held-out success is the run's ``selected``.
6. ``summarise``: per variant and level set, the interquartile mean over seeds with a 95%
   stratified bootstrap interval; "steps scratch needs to reach X" vs "steps BC-init needs to
   reach X" for X = BC-init's early success and scratch's final success; forgetting of every BC
   variant (held-out minimum, final and selected vs the BC policy) and the variant that forgets
   least.
7. ``write_outputs``: OUT/results.json, OUT/results.md, OUT/curves.png, one offline W&B run per
   (variant, seed), and ``name: value`` lines at the end of stdout.

Variants: ``scratch``; ``bc`` (BC weights, fresh critic); ``bc_kl`` (plus KL(pi_BC || pi) for
the first ``--kl-updates`` updates); ``bc_warm`` (critic warmed up on BC rollouts first);
``bc_warm_kl`` (both). ``--finetune`` names the BC variant the multiplier is measured for; its
default is the one that forgot least in our measurement (docs/SB3.md).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

#: The project's config presets, found from this script's place in the checkout (not the cwd).
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: variant -> (starts from BC, KL pull toward BC, warmed-up critic)
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "scratch": (False, False, False),
    "bc": (True, False, False),
    "bc_kl": (True, True, False),
    "bc_warm": (True, False, True),
    "bc_warm_kl": (True, True, True),
}
#: The BC-init variant the multiplier is measured for: the one that forgot least in the 5-seed
#: comparison (docs/SB3.md: its validation-selected policy kept the BC policy's held-out
#: success in every seed, with the smallest dip on the way), and what ``finetune_ppo.py`` does
#: by default.
DEFAULT_FINETUNE = "bc_warm_kl"
#: Level sets the policies are evaluated on; the first held-out set decides forgetting.
TRAIN, VAL, HELDOUT, SUITE = "train", "val", "heldout", "suite"


def build_parser() -> argparse.ArgumentParser:
    from torchrl_bc.commands import (
        discount,
        existing_dir,
        existing_file,
        positive_float,
        positive_int,
    )
    from torchrl_bc.sb3.ppo import (
        FINETUNE_DEVICE,
        FINETUNE_KL,
        FINETUNE_N_ENVS,
        FINETUNE_PPO,
        FINETUNE_WARMUP_STEPS,
    )
    from torchrl_bc.sim.level import DEFAULT_MAX_TICKS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replay-data-dir", required=True, type=existing_dir,
                   help="human demo replays: split by level into training and held-out levels")
    p.add_argument("--heldout-fraction", type=float, default=0.2,
                   help="fraction of the human levels held out from BC and PPO (default 0.2)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--suite", default="generalist",
                   help="generated suite as a second held-out set ('none': skip)")
    p.add_argument("--architecture", default="mlp")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bc-checkpoint", type=existing_file, default=None,
                   help="reuse a BC checkpoint (refused if it trained on a held-out level)")
    g.add_argument("--bc-epochs", type=positive_int, default=None,
                   help="BC epochs on the training levels (default: the config's)")
    p.add_argument("--bc-config", type=existing_file, default=None,
                   help=f"BC training config (default: {CONFIGS}/ARCH.yaml)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--finetune", default=DEFAULT_FINETUNE,
                   choices=[v for v in VARIANTS if v != "scratch"],
                   help=f"BC variant the multiplier is measured for (default {DEFAULT_FINETUNE})")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--bc-steps", type=positive_int, default=100_000,
                   help="env steps of every BC-init variant")
    p.add_argument("--scratch-factor", type=positive_float, default=20.0,
                   help="scratch runs at least this many times --bc-steps before it may stop")
    p.add_argument("--scratch-max-steps", type=positive_int, default=None,
                   help="scratch's hard cap (default 5x its minimum); reaching it is no plateau")
    p.add_argument("--plateau-window", type=positive_int, default=5,
                   help="evaluations without a gain over --plateau-tol that count as flat")
    p.add_argument("--plateau-tol", type=float, default=0.05)
    p.add_argument("--eval-every", type=positive_int, default=16_384,
                   help="env steps between evaluations up to --bc-steps")
    p.add_argument("--late-eval-every", type=positive_int, default=None,
                   help="least env steps between evaluations after --bc-steps (default "
                        "--bc-steps/2)")
    p.add_argument("--eval-growth", type=float, default=0.125,
                   help="after --bc-steps, evaluations are also at least this fraction of the "
                        "steps so far apart (geometric: a long scratch run is evaluated about "
                        "40 times, and --plateau-window evaluations span a fixed share of it; "
                        "0: every --late-eval-every)")
    p.add_argument("--kl-coef", type=float, default=FINETUNE_KL["kl_coef"],
                   help="KL(pi_BC || pi) weight of the *_kl variants, decaying to 0")
    p.add_argument("--kl-updates", type=positive_int, default=FINETUNE_KL["kl_updates"])
    p.add_argument("--warmup-steps", type=positive_int, default=FINETUNE_WARMUP_STEPS,
                   help="BC rollout steps the *_warm variants' critic is fitted on")
    d = FINETUNE_PPO
    p.add_argument("--n-envs", type=positive_int, default=FINETUNE_N_ENVS)
    p.add_argument("--n-steps", type=positive_int, default=d["n_steps"])
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"])
    p.add_argument("--n-epochs", type=positive_int, default=d["n_epochs"])
    p.add_argument("--lr", type=positive_float, default=d["learning_rate"])
    p.add_argument("--gamma", type=discount, default=d["gamma"])
    p.add_argument("--ent-coef", type=float, default=d["ent_coef"])
    p.add_argument("--tick-factor", type=positive_float, default=3.0,
                   help="training episode cap, x the level's demo")
    p.add_argument("--eval-tick-factor", type=positive_float, default=2.0,
                   help="evaluation cap, as torchrl-bc evaluate")
    p.add_argument("--max-ticks", type=positive_int, default=5000,
                   help="training episode cap in ticks (besides --tick-factor)")
    p.add_argument("--eval-max-ticks", type=positive_int, default=DEFAULT_MAX_TICKS,
                   help="evaluation cap in ticks (besides --eval-tick-factor; the suite's "
                        "levels have no demo, so this is their cap; default crossval's, "
                        "%(default)s)")
    p.add_argument("--bootstrap-reps", type=positive_int, default=2000)
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch CPU threads of each PPO run")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default=FINETUNE_DEVICE,
                   help="where each PPO run's networks run (default %(default)s: as fast as a "
                        "GPU for the mlp export; cuda for large exports such as hgt or cnn)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="PPO runs in parallel processes (each (variant, seed) run is "
                        "independent and its result does not depend on this)")
    p.add_argument("--out", type=Path, default=Path("runs/compare"))
    p.add_argument("--overwrite", action="store_true", help="replace an earlier comparison")
    p.add_argument("--wandb", default="offline", choices=["offline", "online", "disabled"])
    p.add_argument("--project", default="torchrl-bc")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


# -- 1. the level split ------------------------------------------------------------------------
def level_hashes(folder: Path) -> set[str]:
    """Content hashes of every level under ``folder`` (readable replays and ``*.map`` files)."""
    from torchrl_bc.replay.format import ReplayFormatError, read_replay
    from torchrl_bc.sim.level import map_hash
    from torchrl_bc.sim.mapdata import read_map_file

    out = set()
    for f in sorted(folder.rglob("*")):
        try:
            if f.suffix == ".replay" and f.is_file():
                out.add(map_hash(read_replay(f).map_data))
            elif f.suffix == ".map" and f.is_file():
                out.add(map_hash(read_map_file(f)))
        except (ReplayFormatError, OSError, ValueError):
            continue  # the data build lists it as bad; it holds no level BC could learn
    return out


def make_split(replays: Path, fraction: float, seed: int, out: Path) -> dict[str, Any]:
    """Copy the replays into ``out/train`` and ``out/heldout`` by level; returns the record.

    ``assign_splits`` orders levels by ``sha256(seed:level_hash)``; its ``val`` levels are our
    held-out levels. Every replay of a level lands on the same side; unreadable files on
    neither (listed with why).
    """
    from torchrl_bc.data import assign_splits
    from torchrl_bc.replay.format import ReplayFormatError, read_replay
    from torchrl_bc.sim.level import map_hash

    files, hashes, unreadable = [], [], []
    for f in sorted(replays.rglob("*.replay")):
        try:
            hashes.append(map_hash(read_replay(f).map_data))
            files.append(f)
        except ReplayFormatError as exc:
            unreadable.append(f"{f}: {exc.defect}")
    if len(set(hashes)) < 2:
        raise ValueError(f"{replays}: {len(set(hashes))} readable level(s); a split needs 2")
    sides = assign_splits(hashes, [str(f) for f in files], val_fraction=fraction, seed=seed)
    for side in (TRAIN, HELDOUT):
        shutil.rmtree(out / side, ignore_errors=True)
        (out / side).mkdir(parents=True)
    record: dict[str, Any] = {"source": str(replays), "fraction": fraction, "seed": seed,
                              "unreadable": unreadable, TRAIN: [], HELDOUT: []}
    for f, h, side in zip(files, hashes, sides, strict=True):
        side = HELDOUT if side == "val" else TRAIN
        dest = out / side / f"{h[:12]}_{f.name}"
        shutil.copyfile(f, dest)
        record[side].append({"file": str(f), "level": h})
    record["levels"] = {side: len({r["level"] for r in record[side]}) for side in (TRAIN, HELDOUT)}
    (out / "split.json").write_text(json.dumps(record, indent=1))
    return record


# -- 2. BC on the training levels --------------------------------------------------------------
def make_bc_checkpoint(args: argparse.Namespace, split: dict[str, Any], split_dir: Path) -> Path:
    from torchrl_bc.train import load_config, pretrain
    from torchrl_bc.train.checkpoint import load_checkpoint
    from torchrl_bc.train.config import with_values

    heldout = {r["level"] for r in split[HELDOUT]}
    if args.bc_checkpoint is not None:
        data = load_checkpoint(args.bc_checkpoint)["config"]["data"]
        from torchrl_bc.levels.corpus import SAMPLE_CORPUS

        folders = [Path(d) for d in data["replays"]] or [Path(SAMPLE_CORPUS)]  # the default
        missing = [str(d) for d in folders if not d.is_dir()]
        if missing:
            raise FileNotFoundError(f"{args.bc_checkpoint}: cannot check its training data, "
                                    f"folder(s) {missing} not found")
        seen = set().union(*(level_hashes(d) for d in folders))
        if seen & heldout:
            raise ValueError(f"{args.bc_checkpoint} trained on {len(seen & heldout)} held-out "
                             f"level(s) (data.replays {data['replays']}): not a held-out test")
        return args.bc_checkpoint
    path = args.bc_config or CONFIGS / f"{args.architecture}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"BC config for architecture {args.architecture!r} not found: "
                                f"{path} (give --bc-config)")
    values: dict[str, Any] = {"data.replays": (str(split_dir / TRAIN),),
                              "logging.wandb": args.wandb, "logging.project": args.project}
    if args.bc_epochs:
        values["train.epochs"] = args.bc_epochs
    print(f"BC: {path} on the {split['levels'][TRAIN]} training levels", flush=True)
    return pretrain(with_values(load_config(path), values), args.out / "bc",
                    overwrite=args.overwrite)


# -- 3. exports ----------------------------------------------------------------------------------
def make_exports(args: argparse.Namespace, ckpt: Path, train_levels: list) -> dict[str, dict]:
    """``fresh``: the BC export as is; ``warm``: its critic fitted on BC rollouts of the
    training levels (only when a *_warm variant runs)."""
    from torchrl_bc.sb3 import export_checkpoint, load_export, warmup_critic, write_export

    write_export(export_checkpoint(ckpt), args.out / "export.pt")
    exports = {"fresh": load_export(args.out / "export.pt")}
    if any(VARIANTS[v][2] for v in args.variants):
        t0 = time.perf_counter()
        warm = warmup_critic(exports["fresh"], train_levels, steps=args.warmup_steps,
                             gamma=args.gamma, tick_factor=args.tick_factor,
                             max_ticks=args.max_ticks)
        write_export(warm, args.out / "export_warm.pt")
        exports["warm"] = load_export(args.out / "export_warm.pt")
        print(f"critic warm-up {time.perf_counter() - t0:.0f}s: {warm['critic_info']}",
              flush=True)
    return exports


def make_level_sets(args: argparse.Namespace, split_dir: Path, ckpt: Path) -> dict[str, list]:
    """``train`` (PPO's levels), ``val`` (BC's validation levels: PPO's early stopping),
    ``heldout`` and, with ``--suite``, ``suite``."""
    from torchrl_bc.sb3 import resolve_levels, split_validation
    from torchrl_bc.train.checkpoint import load_checkpoint

    val_hashes = load_checkpoint(ckpt).get("val_levels")
    if val_hashes is None:
        raise ValueError(f"{ckpt} records no validation levels (written before checkpoints "
                         "held val_levels): retrain it, or run without --bc-checkpoint")
    train, val = split_validation(resolve_levels(str(split_dir / TRAIN)), val_hashes)
    if not val or not train:
        raise ValueError(f"{ckpt}: {len(val)} of its validation level(s) are among the "
                         f"{len(train) + len(val)} training levels; PPO needs both (BC's "
                         "data.val_fraction > 0, trained on this split)")
    sets = {TRAIN: train, VAL: val, HELDOUT: resolve_levels(str(split_dir / HELDOUT))}
    if args.suite != "none":
        sets[SUITE] = resolve_levels(f"suite:{args.suite.removeprefix('suite:')}")
    return sets


# -- 4. one PPO run ------------------------------------------------------------------------------
def make_schedule(args: argparse.Namespace):
    late = args.late_eval_every or max(args.eval_every, args.bc_steps // 2)

    def next_eval(step: int) -> int:
        if step < args.bc_steps:
            return step + args.eval_every
        return step + max(late, int(step * args.eval_growth))

    return next_eval


def make_ppo(args: argparse.Namespace, export: dict, variant: str, seed: int, env):
    from torchrl_bc.sb3.ppo import BCRegularisedPPO

    from_bc, kl, _ = VARIANTS[variant]
    return BCRegularisedPPO.from_export(
        export, env, from_bc=from_bc, kl_coef=args.kl_coef if kl else 0.0,
        kl_updates=args.kl_updates if kl else 0, seed=seed, n_steps=args.n_steps,
        batch_size=args.batch_size, n_epochs=args.n_epochs, learning_rate=args.lr,
        gamma=args.gamma, ent_coef=args.ent_coef, device=args.device)


def make_logger(args: argparse.Namespace, variant: str, seed: int):
    from torchrl_bc.train.logging import RunLogger

    return RunLogger(args.out / "wandb", args.wandb, args.project, f"{variant}-s{seed}",
                     {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                     plots=False)


def run_variant(args: argparse.Namespace, exports: dict[str, dict], level_sets: dict[str, list],
                variant: str, seed: int) -> dict[str, Any]:
    from torchrl_bc.sb3 import make_sb3_env
    from torchrl_bc.sb3.env import obs_config_of
    from torchrl_bc.sb3.ppo import HeldOutEvaluation
    from torchrl_bc.sb3.stats import is_flat

    export = exports["warm" if VARIANTS[variant][2] else "fresh"]
    config, padding = obs_config_of(export)
    scratch = variant == "scratch"
    min_steps = int(args.scratch_factor * args.bc_steps) if scratch else args.bc_steps
    budget = (args.scratch_max_steps or 5 * min_steps) if scratch else args.bc_steps

    def flat(history: list[dict[str, float]]) -> bool:
        if history[-1]["step"] < min_steps:
            return False
        return all(is_flat([r[s] for r in history], args.plateau_window, args.plateau_tol)
                   for s in (TRAIN, HELDOUT))

    logger = make_logger(args, variant, seed)

    def log(row: dict[str, float]) -> None:
        logger.scalars({f"success/{k}": v for k, v in row.items() if k != "step"},
                       int(row["step"]))
        print(f"  {variant} s{seed} step {int(row['step'])}: "
              + " ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "step"), flush=True)

    env = make_sb3_env(export, level_sets[TRAIN], n_envs=args.n_envs, seed=seed,
                       tick_factor=args.tick_factor, max_ticks=args.max_ticks)
    model = make_ppo(args, export, variant, seed, env)
    evaluation = HeldOutEvaluation(level_sets, config, padding, make_schedule(args),
                                   tick_factor=args.eval_tick_factor,
                                   max_ticks=args.eval_max_ticks,
                                   stop=flat if scratch else None, on_eval=log, select=VAL)
    t0 = time.perf_counter()
    try:
        model.learn(budget, callback=evaluation)
    finally:
        env.close()
        logger.close()
    history = evaluation.history
    return {"variant": variant, "seed": seed, "seconds": time.perf_counter() - t0,
            "steps": int(history[-1]["step"]), "plateau": evaluation.stopped,
            "selected": evaluation.selected,
            "min_steps": min_steps, "budget": budget, "history": history}


def _run_job(job: tuple[argparse.Namespace, dict, dict, str, int]) -> dict[str, Any]:
    """One (variant, seed) run in a worker process, with the run's own thread count."""
    import torch

    args, exports, level_sets, variant, seed = job
    torch.set_num_threads(args.threads)
    print(f"{variant} seed {seed}", flush=True)
    return run_variant(args, exports, level_sets, variant, seed)


def run_all(args: argparse.Namespace, exports: dict[str, dict], level_sets: dict[str, list]
            ) -> tuple[list[dict[str, Any]], list[str]]:
    """Every (variant, seed) run, ``--workers`` at a time (scratch, the longest, first), each
    result kept in OUT/results.partial.json as it ends; a run that fails is named in one line
    and the others go on."""
    from torchrl_bc.commands import one_line
    from torchrl_bc.executors import LocalExecutor
    from torchrl_bc.io import atomic_write_bytes

    jobs = [(args, exports, level_sets, v, s) for s in args.seeds for v in args.variants]
    jobs.sort(key=lambda j: j[3] != "scratch")
    runs, failed = [], []
    for i, result, error in LocalExecutor(workers=args.workers).map(
            _run_job, jobs, desc="PPO runs", unit="run"):
        if error is not None:
            failed.append(f"{jobs[i][3]} seed {jobs[i][4]}")
            print(f"error: {failed[-1]}: {one_line(error)}", file=sys.stderr, flush=True)
            continue
        runs.append(result)
        part = {"args": vars(args), "runs": runs, "failed": failed}
        atomic_write_bytes(args.out / "results.partial.json",
                           json.dumps(part, indent=1, default=str).encode())
    order = [(v, s) for s in args.seeds for v in args.variants]
    runs.sort(key=lambda r: order.index((r["variant"], r["seed"])))
    return runs, failed


# -- 5. the summary ------------------------------------------------------------------------------
def curve(runs: list[dict], level_set: str) -> tuple[list[int], list[list[float]]]:
    """Steps and, per seed, success at each step; a seed that stopped early (plateau) keeps its
    last value to the longest seed's end."""
    longest = max(runs, key=lambda r: len(r["history"]))
    steps = [int(row["step"]) for row in longest["history"]]
    per_seed = []
    for r in runs:
        vals = [row[level_set] for row in r["history"]]
        per_seed.append(vals + [vals[-1]] * (len(steps) - len(vals)))
    return steps, per_seed


def summarise(args: argparse.Namespace, runs: list[dict], level_sets: list[str]
              ) -> dict[str, Any]:
    import numpy as np

    from torchrl_bc.sb3.stats import bootstrap_ci, iqm, steps_to_reach

    def stat(values: list[float]) -> dict[str, float]:
        lo, hi = bootstrap_ci(values, reps=args.bootstrap_reps, seed=0)
        return {"iqm": iqm(values), "ci_low": lo, "ci_high": hi}

    variants = [v for v in args.variants if any(r["variant"] == v for r in runs)]
    out: dict[str, Any] = {"variants": {}}
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        s: dict[str, Any] = {"seeds": [r["seed"] for r in rs], "steps": max(r["steps"] for r in rs),
                             "plateau": all(r["plateau"] for r in rs)}
        for ls in level_sets:
            steps, per_seed = curve(rs, ls)
            cols = np.array(per_seed).T  # steps x seeds
            s[ls] = {"steps": steps, "curve": [stat(list(c)) for c in cols],
                     "initial": stat(list(cols[0])), "final": stat([p[-1] for p in per_seed]),
                     "minimum": stat([min(p[1:]) for p in per_seed]) if len(steps) > 1 else None,
                     "selected": stat([r["selected"][ls] for r in rs])}
        out["variants"][v] = s
    vs = out["variants"]
    # forgetting: every BC variant against the BC policy (its own step-0 evaluation)
    bc_variants = [v for v in variants if VARIANTS[v][0]]
    for v in bc_variants:
        vs[v]["forgetting"] = {}
        for ls in level_sets:
            if ls == TRAIN:
                continue
            st = vs[v][ls]
            start, end = st["initial"]["iqm"], st["final"]["iqm"]
            low = st["minimum"]["iqm"] if st["minimum"] else start
            sel = st["selected"]["iqm"]
            vs[v]["forgetting"][ls] = {"bc_policy": start, "minimum": low, "final": end,
                                       "selected": sel, "drop_to_minimum": start - low,
                                       "final_minus_bc": end - start,
                                       "selected_minus_bc": sel - start}
    if bc_variants:  # what fine-tuning returns (selected) first, then how far training fell
        out["least_forgetting"] = max(bc_variants, key=lambda v: (
            vs[v]["forgetting"][HELDOUT]["selected_minus_bc"],
            -vs[v]["forgetting"][HELDOUT]["drop_to_minimum"],
            vs[v]["forgetting"][HELDOUT]["final_minus_bc"], -bc_variants.index(v)))
    # the multiplier: steps each needs to reach X, on the IQM curves of the held-out levels
    ft = args.finetune if args.finetune in vs else (bc_variants[0] if bc_variants else None)
    out["finetune"] = ft
    if ft and "scratch" in vs:
        mult = {}
        for ls in level_sets:
            b, sc = vs[ft][ls], vs["scratch"][ls]
            b_iqm = [c["iqm"] for c in b["curve"]]
            s_iqm = [c["iqm"] for c in sc["curve"]]
            targets = {"bc_early": b_iqm[1] if len(b_iqm) > 1 else b_iqm[0],
                       "scratch_final": s_iqm[-1]}
            mult[ls] = {}
            for name, x in targets.items():
                mult[ls][name] = {
                    "target": x, "bc_steps": steps_to_reach(b["steps"], b_iqm, x),
                    "bc_budget": b["steps"][-1], "first_eval": b["steps"][1] if
                    len(b["steps"]) > 1 else b["steps"][0],
                    "scratch_steps": steps_to_reach(sc["steps"], s_iqm, x),
                    "scratch_budget": sc["steps"][-1], "scratch_plateau": vs["scratch"]["plateau"]}
                mult[ls][name]["ratio"] = ratio(mult[ls][name])
        out["multiplier"] = mult
    return out


def ratio(m: dict[str, Any]) -> dict[str, Any]:
    """``scratch_steps / bc_steps`` and what kind of number it is.

    BC-init reaching X at step 0 (the BC policy itself) is counted as reaching it by its first
    evaluation: the ratio is then a lower bound. Scratch not reaching X is a lower bound too,
    and a measurement of "never" only when scratch stopped at its plateau.
    """
    if m["bc_steps"] is None:
        return {"value": None, "kind": f"BC-init not reached within {m['bc_budget']}"}
    if m["scratch_steps"] == 0:
        return {"value": None, "kind": "scratch at step 0: X needs no training"}
    bc = m["bc_steps"] or m["first_eval"]
    bound = m["bc_steps"] == 0
    if m["scratch_steps"] is None:
        kind = (f"scratch not reached within {m['scratch_budget']} (plateau)"
                if m["scratch_plateau"] else
                f"scratch not reached within {m['scratch_budget']} (budget cap, no plateau)")
        return {"value": m["scratch_budget"] / bc, "kind": "lower bound; " + kind}
    return {"value": m["scratch_steps"] / bc, "kind": "lower bound; BC-init at step 0"
            if bound else "measured"}


# -- 6. outputs ----------------------------------------------------------------------------------
COLOURS = {"scratch": "tab:gray", "bc": "tab:blue", "bc_kl": "tab:orange",
           "bc_warm": "tab:green", "bc_warm_kl": "tab:red"}


def plot_curves(summary: dict[str, Any], level_sets: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(level_sets), figsize=(6 * len(level_sets), 4.2),
                             squeeze=False)
    for ax, ls in zip(axes[0], level_sets, strict=True):
        for v, s in summary["variants"].items():
            xs = s[ls]["steps"]
            ax.plot(xs, [c["iqm"] for c in s[ls]["curve"]], color=COLOURS[v], lw=2,
                    label=f"{v} (IQM of {len(s['seeds'])})")
            ax.fill_between(xs, [c["ci_low"] for c in s[ls]["curve"]],
                            [c["ci_high"] for c in s[ls]["curve"]], color=COLOURS[v], alpha=0.15)
        first = [s[ls]["steps"][1] for s in summary["variants"].values() if len(s[ls]["steps"]) > 1]
        ax.set_xscale("symlog", linthresh=min(first, default=1))  # linear up to the 1st eval
        ax.set_title(f"{ls} levels: greedy success (IQM, 95% CI)")
        ax.set_xlabel("environment steps (symlog)")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(args: argparse.Namespace, split: dict[str, Any], sizes: dict[str, int],
             summary: dict[str, Any]) -> str:
    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.3f}"

    def ci(s: dict[str, float] | None) -> str:
        return "-" if s is None else f"{s['iqm']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"

    def reach(steps: int | None) -> str:
        return "not reached" if steps is None else str(steps)

    sets = list(sizes)
    lines = [f"Levels: {', '.join(f'{k} {n}' for k, n in sizes.items())} (human levels split "
             f"by level, held-out fraction {split['fraction']}, seed {split['seed']}"
             + (f"; suite `{args.suite}`" if SUITE in sizes else "") + "). Greedy success, "
             "one episode per level, IQM over seeds [95% stratified bootstrap interval].", "",
             "| variant | seeds | steps | plateau | "
             + " | ".join(f"{s} start | {s} final | {s} selected" for s in sets) + " |",
             "|---|---|---|---|" + "---|---|---|" * len(sets)]
    for v, s in summary["variants"].items():
        lines.append(f"| {v} | {len(s['seeds'])} | {s['steps']} | "
                     f"{'yes' if s['plateau'] else 'no'} | "
                     + " | ".join(f"{ci(s[ls]['initial'])} | {ci(s[ls]['final'])} | "
                                  f"{ci(s[ls]['selected'])}" for ls in sets) + " |")
    lines += ["", f"`selected`: each run's policy with the best `{VAL}` success (the earliest "
              "on ties), what `finetune_ppo.py` returns."]
    held = [ls for ls in sets if ls != TRAIN]
    if "least_forgetting" in summary:
        lines += ["", "Forgetting (success: BC policy -> minimum during fine-tuning -> final -> "
                  "selected, IQM over seeds):", "",
                  "| variant | " + " | ".join(held) + " |", "|---|" + "---|" * len(held)]
        for v, s in summary["variants"].items():
            if "forgetting" in s:
                lines.append(f"| {v} | " + " | ".join(
                    f"{f(s['forgetting'][ls]['bc_policy'])} -> {f(s['forgetting'][ls]['minimum'])}"
                    f" -> {f(s['forgetting'][ls]['final'])} -> {f(s['forgetting'][ls]['selected'])}"
                    for ls in held) + " |")
        lines += ["", f"Least forgetting: `{summary['least_forgetting']}` (script default "
                  f"`{DEFAULT_FINETUNE}`)."]
    if "multiplier" in summary:
        lines += ["", f"Steps to reach X (`scratch` vs `{summary['finetune']}`, IQM curves):", "",
                  "| levels | X | value | BC-init steps | scratch steps | ratio |",
                  "|---|---|---|---|---|---|"]
        for ls, ms in summary["multiplier"].items():
            for name, m in ms.items():
                r = m["ratio"]
                value = "-" if r["value"] is None else f"{r['value']:.1f}x"
                lines.append(f"| {ls} | {name} | {f(m['target'])} | {reach(m['bc_steps'])} | "
                             f"{reach(m['scratch_steps'])} | {value} ({r['kind']}) |")
    return "\n".join(lines) + "\n"


def write_outputs(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from torchrl_bc.io import atomic_write_bytes

    def text(name: str, s: str) -> None:
        atomic_write_bytes(args.out / name, s.encode())

    text("results.json", json.dumps(results, indent=1))
    text("results.md", markdown(args, results["split"], results["levels"], results["summary"]))
    plot_curves(results["summary"], list(results["levels"]), args.out / "curves.png")


def name_value_lines(summary: dict[str, Any]) -> list[str]:
    vs = summary["variants"]
    lines = []
    for v, s in vs.items():
        for ls in (HELDOUT, SUITE, VAL, TRAIN):
            if ls in s:
                lines.append(f"{v}_{ls}_final_iqm: {s[ls]['final']['iqm']:.4f}")
                lines.append(f"{v}_{ls}_selected_iqm: {s[ls]['selected']['iqm']:.4f}")
    if "least_forgetting" in summary:
        lf = summary["least_forgetting"]
        lines.append(f"bc_policy_heldout_success: {vs[lf]['forgetting'][HELDOUT]['bc_policy']:.4f}")
        for v, s in vs.items():
            if "forgetting" in s:
                lines.append(f"{v}_heldout_drop_to_minimum: "
                             f"{s['forgetting'][HELDOUT]['drop_to_minimum']:.4f}")
                lines.append(f"{v}_heldout_selected_minus_bc: "
                             f"{s['forgetting'][HELDOUT]['selected_minus_bc']:.4f}")
        lines.append(f"least_forgetting_variant: {lf}")
    if "scratch" in vs:
        lines.append(f"scratch_steps: {vs['scratch']['steps']}")
        lines.append(f"scratch_plateau: {str(vs['scratch']['plateau']).lower()}")
    for name, m in summary.get("multiplier", {}).get(HELDOUT, {}).items():
        r = m["ratio"]
        lines.append(f"heldout_{name}_target: {m['target']:.4f}")
        lines.append(f"heldout_{name}_scratch_steps: {m['scratch_steps']}")
        lines.append(f"heldout_{name}_bc_init_steps: {m['bc_steps']}")
        lines.append(f"heldout_{name}_ratio: "
                     + ("none" if r["value"] is None else f"{r['value']:.2f}") + f" ({r['kind']})")
    return lines


# -- main ----------------------------------------------------------------------------------------
def check_args(args: argparse.Namespace) -> None:
    if not 0 < args.heldout_fraction < 1:
        raise ValueError(f"--heldout-fraction must be in (0, 1), got {args.heldout_fraction}")
    if args.plateau_window < 2 or args.plateau_tol < 0:
        raise ValueError("--plateau-window must be >= 2 and --plateau-tol >= 0")
    if args.scratch_factor < 1:
        raise ValueError(f"--scratch-factor must be >= 1, got {args.scratch_factor}")
    if args.scratch_max_steps and args.scratch_max_steps < args.scratch_factor * args.bc_steps:
        raise ValueError(f"--scratch-max-steps {args.scratch_max_steps} is below scratch's "
                         f"minimum, --scratch-factor x --bc-steps")
    if (args.out / "results.json").exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} already holds a comparison (--overwrite replaces it)")
    if args.bc_checkpoint is None and args.bc_config is None \
            and not (CONFIGS / f"{args.architecture}.yaml").is_file():
        raise FileNotFoundError(f"no BC config {CONFIGS / (args.architecture + '.yaml')}: "
                                "give --bc-config or --bc-checkpoint")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from torchrl_bc.commands import one_line

    try:
        check_args(args)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        parser.error(one_line(exc))
    import torch

    from torchrl_bc.sb3 import ExportMismatch
    from torchrl_bc.train.checkpoint import CheckpointMismatch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        split = make_split(args.replay_data_dir, args.heldout_fraction, args.split_seed,
                           args.out / "split")
        print(f"split: {split['levels'][TRAIN]} training levels, {split['levels'][HELDOUT]} "
              f"held out ({len(split['unreadable'])} unreadable replay(s) left out)", flush=True)
        ckpt = make_bc_checkpoint(args, split, args.out / "split")
        level_sets = make_level_sets(args, args.out / "split", ckpt)
        print(f"PPO: {len(level_sets[TRAIN])} training levels, validation on BC's "
              f"{len(level_sets[VAL])} validation levels", flush=True)
        exports = make_exports(args, ckpt, level_sets[TRAIN])
    except (CheckpointMismatch, ExportMismatch, FileNotFoundError, FileExistsError,
            RuntimeError, ValueError) as exc:  # RuntimeError: a critic warm-up too short
        print(f"{parser.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    runs, failed = run_all(args, exports, level_sets)
    if not runs:
        print(f"{parser.prog}: error: every PPO run failed", file=sys.stderr)
        return 1
    sizes = {k: len(v) for k, v in level_sets.items()}
    summary = summarise(args, runs, list(level_sets))
    results = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "bc_checkpoint": str(ckpt), "split": split, "levels": sizes, "runs": runs,
               "failed": failed,
               "summary": summary}
    write_outputs(args, results)
    (args.out / "results.partial.json").unlink(missing_ok=True)
    print((args.out / "results.md").read_text())
    if summary.get("least_forgetting") and summary["least_forgetting"] != DEFAULT_FINETUNE:
        print(f"note: {summary['least_forgetting']} forgot least here; the script's default "
              f"--finetune is {DEFAULT_FINETUNE}")
    print("\n".join(name_value_lines(summary)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
