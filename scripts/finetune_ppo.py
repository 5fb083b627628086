"""Fine-tune a BC policy with SB3 PPO on the batched simulator, with held-out evaluation.

    python scripts/finetune_ppo.py CKPT_OR_EXPORT --levels DIR_OR_SUITE [--timesteps 500000]
        [--eval-levels DIR_OR_SUITE | --holdout 0.15] [--val-levels DIR_OR_SUITE]
        [--select best|last] [--eval-every 100000] [--n-envs 64] [--warmup-steps 20000]
        [--kl-coef 1.0] [--seed 0] [--threads N] [--device cpu|cuda|auto] [--out runs/finetune]

CKPT_OR_EXPORT is a BC checkpoint (``best.pt``, exported on the fly) or an SB3 export
(``torchrl-bc export``). PPO trains on ``--levels`` in the native ``NppSB3VecEnv`` (all envs in
one compiled call) with the project's fine-tune defaults (``torchrl_bc.sb3.ppo.FINETUNE_PPO``:
64 envs x 256 steps, minibatches of 2048, 3 epochs, lr 5e-4, gamma 0.99, ent_coef 0.005),
after fitting the critic on 20k steps of BC rollouts and with a KL pull toward the BC policy
(1.0, decaying over 1000 updates): ``train_and_compare.py``'s ``bc_warm_kl``, the variant that
forgot least in its 5-seed comparison (docs/SB3.md).

Held-out levels (``--eval-levels``, or ``--holdout`` of ``--levels`` set aside by name) and
validation levels are played greedily, one episode each, before training, every
``--eval-every`` steps and at the end, capped as crossval's headline figure is: 2x the level's
shortest demo and at most ``--eval-max-ticks`` (1200) ticks. The validation levels are the ones
BC held out (the checkpoint's ``val_levels``) found among ``--levels``; PPO never trains on
them. The policy returned is the one with the best validation success, the earliest on ties:
the BC policy unless PPO beats it there (early stopping against forgetting; ``--select last``
turns it off).
Writes OUT/finetuned_sb3.pt (an export: ``load_export`` / ``load_into`` read it), OUT/ppo.zip
(SB3's own save: that policy, with PPO's last optimiser state), OUT/eval.json and
OUT/ppo_log/progress.csv (PPO's losses); the last line is ``success_rate: X`` (held out, of
the policy returned).
"""

from __future__ import annotations

# OpenMP's threads spin between PPO's many small matrix products (OMP_WAIT_POLICY left at its
# default): PASSIVE, which training uses against stalls on busy shared cores, makes PPO 1.4x
# slower on idle ones. Set OMP_WAIT_POLICY=PASSIVE, or --threads 1, on a busy machine.
import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

#: Level-set names in the evaluation rows (as ``train_and_compare.py``'s).
HELDOUT, VAL = "heldout", "val"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from torchrl_bc.commands import positive_int
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
    p.add_argument("source", type=Path, metavar="CKPT_OR_EXPORT")
    p.add_argument("--levels", required=True, help="training levels: directory or suite")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--eval-levels", help="held-out levels (directory or suite)")
    g.add_argument("--holdout", type=float, default=0.15,
                   help="fraction of --levels held out for evaluation (default 0.15)")
    v = p.add_mutually_exclusive_group()
    v.add_argument("--val-levels", help="validation levels (directory or suite); default: the "
                   "BC checkpoint's own validation levels among --levels, held out from PPO")
    v.add_argument("--val-fraction", type=float, default=0.15,
                   help="when the checkpoint records no validation levels among --levels: this "
                        "fraction of them is set aside for validation (default 0.15)")
    p.add_argument("--select", choices=["best", "last"], default="best",
                   help="return the policy with the best validation success, the earliest on "
                        "ties, so the BC policy unless one beats it (best, the default), or "
                        "the last one (last: no validation levels)")
    p.add_argument("--timesteps", type=int, default=500_000)
    p.add_argument("--eval-every", type=int, default=100_000, help="env steps between evals")
    d, kl = FINETUNE_PPO, FINETUNE_KL
    p.add_argument("--n-envs", type=int, default=FINETUNE_N_ENVS)
    p.add_argument("--n-steps", type=int, default=d["n_steps"], help="steps per env per update")
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--n-epochs", type=int, default=d["n_epochs"])
    p.add_argument("--lr", type=float, default=d["learning_rate"])
    p.add_argument("--gamma", type=float, default=d["gamma"])
    p.add_argument("--ent-coef", type=float, default=d["ent_coef"])
    p.add_argument("--warmup-steps", type=int, default=FINETUNE_WARMUP_STEPS,
                   help="env steps of BC rollouts the critic is fitted on first (default "
                        f"{FINETUNE_WARMUP_STEPS}; 0: off; skipped for an export whose critic "
                        "is already warmed)")
    p.add_argument("--kl-coef", type=float, default=kl["kl_coef"],
                   help="KL(pi_BC || pi) weight, decaying to 0 over --kl-updates updates "
                        f"(default {kl['kl_coef']}, train_and_compare's *_kl; 0: off)")
    p.add_argument("--kl-updates", type=int, default=kl["kl_updates"])
    p.add_argument("--tick-factor", type=float, default=3.0, help="training episode cap")
    p.add_argument("--eval-tick-factor", type=float, default=2.0,
                   help="evaluation cap, as torchrl-bc evaluate (default 2)")
    p.add_argument("--max-ticks", type=positive_int, default=5000,
                   help="training episode cap in ticks (besides --tick-factor)")
    p.add_argument("--eval-max-ticks", type=positive_int, default=DEFAULT_MAX_TICKS,
                   help="evaluation cap in ticks (besides --eval-tick-factor), as crossval "
                        "and train_and_compare.py cap it (default %(default)s)")
    p.add_argument("--progress-reward", type=float, default=0.0, metavar="PER_PX",
                   help="shaped reward per px of shortest-path length gained toward the "
                        "current objective (torchrl_bc.sb3.shaping; needs the `objective` "
                        "observation; default 0: the win-only reward)")
    p.add_argument("--switch-bonus", type=float, default=0.0,
                   help="shaped reward on the step the exit opens (default 0)")
    p.add_argument("--death-penalty", type=float, default=0.0,
                   help="subtracted from the reward on the step the ninja dies (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default=FINETUNE_DEVICE,
                   help="where PPO's networks run (default %(default)s: as fast as a GPU for the "
                        "mlp export; cuda for large exports such as hgt or cnn)")
    p.add_argument("--out", type=Path, default=Path("runs/finetune"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def _load_source(path: Path) -> dict:
    """An SB3 export from ``path``: read it, or export a BC checkpoint in memory."""
    import torch

    from torchrl_bc.sb3 import check_export, export_checkpoint, load_export
    from torchrl_bc.train.checkpoint import CheckpointMismatch

    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, truncation, zip errors: all mean "not ours"
        raise ValueError(f"{path} is not a readable checkpoint or export: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    if isinstance(raw, dict) and str(raw.get("format", "")).startswith("torchrl_bc.sb3_export"):
        return load_export(path)
    try:
        export = export_checkpoint(path)
    except CheckpointMismatch as exc:
        raise ValueError(str(exc)) from None
    check_export(export, source=str(path))
    return export


def _split(levels: list, fraction: float, flag: str = "--holdout",
           side: str = "held-out") -> tuple[list, list]:
    """Set ``fraction`` of the levels aside, chosen by a hash of their names (stable);
    ``flag`` and ``side`` name the option and the set in errors."""
    if not 0 < fraction < 1:
        raise ValueError(f"{flag} must be in (0, 1), got {fraction}")
    ranked = sorted(levels, key=lambda lv: hashlib.sha256(lv.name.encode()).hexdigest())
    n = max(1, round(fraction * len(levels)))
    if n >= len(levels):
        raise ValueError(f"{len(levels)} level(s) cannot be split into training and {side}")
    return ranked[n:], ranked[:n]


def _validation(args: argparse.Namespace, export: dict, train_levels: list
                ) -> tuple[list, list, str]:
    """(PPO's training levels, validation levels, where they come from).

    Validation levels are never trained on by PPO. By default they are the levels BC held out
    (the checkpoint's ``val_levels``), so selecting on them favours what generalises.
    """
    from torchrl_bc.sb3 import resolve_levels, split_validation

    if args.select == "last":
        return train_levels, [], "none"
    if args.val_levels:
        return train_levels, resolve_levels(args.val_levels), f"--val-levels {args.val_levels}"
    recorded = (export.get("source") or {}).get("val_levels")
    why = "the checkpoint records no validation levels"
    if recorded:
        rest, val = split_validation(train_levels, recorded)
        if val and rest:
            return rest, val, "BC's validation levels, held out from PPO"
        why = ("every level of --levels is one of BC's validation levels" if val else
               "none of BC's validation levels is among --levels")
    rest, val = _split(train_levels, args.val_fraction, "--val-fraction", "validation")
    return rest, val, (f"{args.val_fraction} of --levels set aside by name, since {why}: BC "
                       "may have trained on them")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList
    from tqdm import tqdm

    from torchrl_bc.io import atomic_write_bytes
    from torchrl_bc.sb3 import (
        ExportMismatch,
        make_sb3_env,
        resolve_levels,
        warmup_critic,
        write_export,
    )
    from torchrl_bc.sb3.env import obs_config_of
    from torchrl_bc.sb3.ppo import BCRegularisedPPO, HeldOutEvaluation
    from torchrl_bc.sb3.shaping import Shaping, require_objective
    from torchrl_bc.sb3.vec_env import evaluate_sb3
    from torchrl_bc.train.evaluate import summarise

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        export = _load_source(args.source)
        levels = resolve_levels(args.levels)
        if args.eval_levels:
            train_levels, held_out = levels, resolve_levels(args.eval_levels)
        else:
            train_levels, held_out = _split(levels, args.holdout)
        train_levels, val, val_from = _validation(args, export, train_levels)
        shaping = Shaping(args.progress_reward, args.switch_bonus, args.death_penalty)
    except (FileNotFoundError, ValueError, ExportMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config, padding = obs_config_of(export)
    if shaping.active:
        try:
            require_objective(config.modalities)
        except ValueError as exc:
            print(f"error: {args.source}: {exc} (--progress-reward, --switch-bonus, "
                  "--death-penalty)", file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{args.source}: {export['architecture']['name']}, frame_skip {config.frame_skip}; "
          f"{len(train_levels)} training level(s), {len(held_out)} held out"
          + (f", {len(val)} for validation ({val_from})" if val else ""))
    if args.warmup_steps > 0 and export.get("critic") != "warmed":
        t0 = time.perf_counter()
        try:
            export = warmup_critic(export, train_levels, steps=args.warmup_steps,
                                   gamma=args.gamma, tick_factor=args.tick_factor,
                                   max_ticks=args.max_ticks, shaping=shaping)
        except RuntimeError as exc:  # too few steps for one finished episode
            print(f"error: critic warm-up: {exc}", file=sys.stderr)
            return 1
        print(f"critic warmed on {args.warmup_steps} BC steps in "
              f"{time.perf_counter() - t0:.0f}s (explained variance "
              f"{export['critic_info']['explained_variance']:.2f})")

    env = make_sb3_env(export, train_levels, n_envs=args.n_envs, seed=args.seed,
                       tick_factor=args.tick_factor, max_ticks=args.max_ticks, shaping=shaping)
    model = BCRegularisedPPO.from_export(
        export, env, kl_coef=args.kl_coef, kl_updates=args.kl_updates,
        log_dir=args.out / "ppo_log", seed=args.seed, n_steps=args.n_steps,
        batch_size=args.batch_size, n_epochs=args.n_epochs, learning_rate=args.lr,
        gamma=args.gamma, ent_coef=args.ent_coef, device=args.device)
    # PPO.learn runs whole rollouts, so it ends at --timesteps rounded up to one.
    rollout = model.n_steps * env.num_envs
    bar = tqdm(total=-(-args.timesteps // rollout) * rollout, unit="step",
               disable=args.no_progress, dynamic_ncols=True)

    def report(row: dict[str, float]) -> None:
        bar.write(f"step {int(row['step'])}: held-out success {row[HELDOUT]:.3f}"
                  + (f", validation {row[VAL]:.3f}" if VAL in row else ""))

    sets = {HELDOUT: held_out, **({VAL: val} if val else {})}
    evaluation = HeldOutEvaluation(
        sets, config, padding, lambda step: step + (args.eval_every or args.timesteps + 1),
        tick_factor=args.eval_tick_factor, max_ticks=args.eval_max_ticks, on_eval=report,
        select=VAL if val else None)

    class Progress(BaseCallback):
        """tqdm over env steps, with training success and the last held-out evaluation."""

        def __init__(self) -> None:
            super().__init__()
            self.wins: list[bool] = []

        def _on_step(self) -> bool:
            bar.update(self.training_env.num_envs)
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.wins.append(bool(info["is_success"]))
            return True

        def _on_rollout_end(self) -> None:
            recent = self.wins[-500:]
            post = {"train_success": f"{sum(recent) / len(recent):.3f}"} if recent else {}
            post["held_out"] = f"{evaluation.history[-1][HELDOUT]:.3f}"
            bar.set_postfix(post)

    t0 = time.perf_counter()
    try:
        model.learn(args.timesteps, callback=CallbackList([evaluation, Progress()]))
    finally:
        bar.close()
        env.close()
    secs = time.perf_counter() - t0
    selected = evaluation.restore_selected() if val else evaluation.history[-1]
    if val:
        print(f"selected the policy of step {int(selected['step'])}: validation "
              f"{selected[VAL]:.3f} (best; the earliest on ties), held-out {selected[HELDOUT]:.3f}"
              f" (last policy: held-out {evaluation.history[-1][HELDOUT]:.3f})")
    model.policy.set_training_mode(False)
    final = summarise(evaluate_sb3(model.policy, held_out, config, padding,
                                   tick_factor=args.eval_tick_factor,
                                   max_ticks=args.eval_max_ticks),
                      "")
    tuned = dict(export)
    tuned["policy_state_dict"] = {k: v.detach().cpu() for k, v in
                                  model.policy.state_dict().items()}
    write_export(tuned, args.out / "finetuned_sb3.pt")
    model.save(args.out / "ppo.zip")
    atomic_write_bytes(args.out / "eval.json", json.dumps({
        "source": str(args.source), "timesteps": model.num_timesteps, "seconds": secs,
        "train_levels": [lv.name for lv in train_levels],
        "held_out_levels": [lv.name for lv in held_out],
        "val_levels": [lv.name for lv in val], "validation": val_from,
        "history": evaluation.history, "selected": selected, "final": final},
        indent=1).encode())
    print(f"trained {model.num_timesteps} env steps in {secs:.0f}s "
          f"({model.num_timesteps / max(secs, 1e-9):.0f} steps/s); wrote {args.out}")
    print(f"death_rate: {final['death']:.4f}")
    print(f"success_rate: {final['success']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
