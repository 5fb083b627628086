"""PPO from scratch vs PPO from the BC export, same settings, budget and levels.

Success is measured on the training episodes themselves (``info["is_success"]`` at each episode
end, the sampled policy PPO is optimising), binned by the step at which each episode ended, so
both variants are compared at equal environment steps with no extra evaluation cost.
:class:`BCRegularisedPPO` optionally adds a KL pull toward the frozen BC policy for the first
updates (Kickstarting / VPT-style protection against forgetting while the critic settles).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from torchrl_bc.io import atomic_write
from torchrl_bc.sb3.critic import warmup_critic
from torchrl_bc.sb3.env import make_sb3_env, resolve_levels
from torchrl_bc.sb3.export import export_checkpoint, write_export
from torchrl_bc.sb3.load import build_sb3_policy, load_export, load_into, make_sb3_policy_kwargs

__all__ = ["BCRegularisedPPO", "CompareConfig", "SuccessRecorder", "bc_config_path",
           "check_compare_inputs", "markdown_table", "run_compare", "steps_to_reach",
           "success_curve", "summarise", "write_results"]

VARIANTS: tuple[str, ...] = ("scratch", "bc", "bc_warm")


class BCRegularisedPPO(PPO):
    """PPO; for the first ``reg_updates`` updates, also minimise ``coef * KL(pi_BC || pi)``.

    The KL is taken on the rollout's own observations after PPO's update, in one extra pass of
    minibatches with PPO's optimiser; ``coef`` decays linearly from ``reg_coef`` to 0.
    """

    def __init__(self, *args: Any, bc_policy: Any = None, reg_coef: float = 0.0,
                 reg_updates: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bc_policy = bc_policy
        self.reg_coef, self.reg_updates = reg_coef, reg_updates
        self._reg_done = 0
        if bc_policy is not None:
            bc_policy.set_training_mode(False)
            for p in bc_policy.parameters():
                p.requires_grad_(False)

    def train(self) -> None:
        super().train()
        if self.bc_policy is None or self.reg_coef <= 0 or self._reg_done >= self.reg_updates:
            return
        coef = self.reg_coef * (1.0 - self._reg_done / self.reg_updates)
        self._reg_done += 1
        self.policy.set_training_mode(True)
        kls = []
        for batch in self.rollout_buffer.get(self.batch_size):
            with torch.no_grad():
                target = self.bc_policy.get_distribution(batch.observations).distribution.logits
            logits = self.policy.get_distribution(batch.observations).distribution.logits
            p = torch.softmax(target, -1)
            kl = (p * (torch.log_softmax(target, -1) - torch.log_softmax(logits, -1))).sum(-1)
            loss = coef * kl.mean()
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            kls.append(float(kl.mean().detach()))
        self.logger.record("train/bc_kl", float(np.mean(kls)))
        self.logger.record("train/bc_kl_coef", coef)


class SuccessRecorder(BaseCallback):
    """Records ``(step, won)`` for every finished episode."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[tuple[int, bool]] = []

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done:
                self.episodes.append((int(self.num_timesteps), bool(info.get("is_success"))))
        return True


def success_curve(episodes: Sequence[tuple[int, bool]], total: int, bins: int
                  ) -> tuple[list[int], list[float | None]]:
    """Bin ends and success rate of the episodes ending in each bin (None: no episode)."""
    edges = np.linspace(0, total, bins + 1)
    steps = np.array([s for s, _ in episodes], dtype=np.float64)
    won = np.array([w for _, w in episodes], dtype=np.float64)
    rates: list[float | None] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (steps > lo) & (steps <= hi)
        rates.append(float(won[sel].mean()) if sel.any() else None)
    return [int(e) for e in edges[1:]], rates


def steps_to_reach(ends: Sequence[int], rates: Sequence[float | None], target: float
                   ) -> int | None:
    """First bin end whose success rate reaches ``target`` (None: never within the budget)."""
    for end, rate in zip(ends, rates, strict=True):
        if rate is not None and rate >= target:
            return int(end)
    return None


@dataclass
class CompareConfig:
    replay_data_dir: str
    architectures: tuple[str, ...] = ("tiny",)
    seeds: tuple[int, ...] = (0, 1, 2)
    total_timesteps: int = 20000
    bc_checkpoint: dict[str, str] = field(default_factory=dict)  # architecture -> best.pt
    # BC training config per architecture (YAML); else configs_dir/<arch>.yaml. Neither: error.
    bc_configs: dict[str, str] = field(default_factory=dict)
    configs_dir: str = ""
    bc_epochs: int = 3
    overwrite: bool = False  # replace BC runs already under out_dir/bc (else refuse)
    variants: tuple[str, ...] = ("scratch", "bc")
    out_dir: str = "runs/compare"
    # PPO settings, identical for every variant
    n_envs: int = 4
    n_steps: int = 256  # per env and update
    batch_size: int = 256
    n_epochs: int = 4  # passes per update
    learning_rate: float = 3e-4
    gamma: float = 0.99
    ent_coef: float = 0.005
    # optional pull toward the frozen BC policy in the first updates (0 = off)
    kl_coef: float = 0.0
    kl_updates: int = 0
    warmup_steps: int = 10000  # critic warm-up steps for the bc_warm variant
    tick_factor: float = 3.0
    max_ticks: int = 5000
    bins: int = 10
    subproc: bool = False
    wandb: str = "offline"
    project: str = "torchrl-bc"


def bc_config_path(cfg: CompareConfig, arch: str) -> Path:
    """The YAML that trains ``arch``'s BC policy: ``bc_configs[arch]``, else
    ``configs_dir/<arch>.yaml``; never a guess relative to the working directory."""
    if arch in cfg.bc_configs:
        path = Path(cfg.bc_configs[arch])
    elif cfg.configs_dir:
        path = Path(cfg.configs_dir) / f"{arch}.yaml"
    else:
        raise ValueError(f"no BC config for architecture {arch!r}: set bc_configs[{arch!r}] or "
                         f"configs_dir (the project's configs/ folder), or give a BC checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"BC config for architecture {arch!r} not found: {path}")
    return path


def _bc_checkpoint(cfg: CompareConfig, arch: str, out: Path, log: Any) -> Path:
    if arch in cfg.bc_checkpoint:
        return Path(cfg.bc_checkpoint[arch])
    from torchrl_bc.train import load_config, pretrain

    path = bc_config_path(cfg, arch)
    overrides = [f"data.replays=[{cfg.replay_data_dir!r}]", f"train.epochs={cfg.bc_epochs}",
                 f"logging.wandb={cfg.wandb}", f"logging.project={cfg.project!r}"]
    run = load_config(path, overrides)
    log(f"[{arch}] BC ({path}): {cfg.bc_epochs} epochs on {cfg.replay_data_dir}")
    return pretrain(run, out / "bc" / arch, overwrite=cfg.overwrite)


def check_compare_inputs(cfg: CompareConfig) -> None:
    """Everything a comparison needs, checked before any compute: a missing config or
    checkpoint, or an earlier BC run in the way, fails now rather than hours in."""
    from torchrl_bc.train.loop import RunExists, check_out_dir

    if not Path(cfg.replay_data_dir).exists():
        raise FileNotFoundError(f"replay_data_dir {cfg.replay_data_dir} does not exist")
    for arch in cfg.architectures:
        if arch in cfg.bc_checkpoint:
            if not Path(cfg.bc_checkpoint[arch]).is_file():
                raise FileNotFoundError(f"BC checkpoint for {arch!r} not found: "
                                        f"{cfg.bc_checkpoint[arch]}")
            continue
        bc_config_path(cfg, arch)
        bc_dir = Path(cfg.out_dir) / "bc" / arch
        try:
            check_out_dir(bc_dir, overwrite=cfg.overwrite)
        except RunExists:
            raise RunExists(f"{bc_dir} already holds a BC run: reuse it with --bc-checkpoint "
                            f"{arch}={bc_dir / 'best.pt'}, or pass --overwrite to retrain "
                            f"it") from None


def _exports(cfg: CompareConfig, arch: str, out: Path, log: Any) -> dict[str, dict]:
    ckpt = _bc_checkpoint(cfg, arch, out, log)
    path = out / f"export_{arch}.pt"
    write_export(export_checkpoint(ckpt), path)
    exports = {"bc": load_export(path)}
    if "bc_warm" in cfg.variants:
        t0 = time.time()
        warm = warmup_critic(exports["bc"], cfg.replay_data_dir, steps=cfg.warmup_steps,
                             gamma=cfg.gamma, tick_factor=cfg.tick_factor,
                             max_ticks=cfg.max_ticks)
        write_export(warm, out / f"export_{arch}_warm.pt")
        exports["bc_warm"] = load_export(out / f"export_{arch}_warm.pt")
        log(f"[{arch}] critic warm-up {time.time() - t0:.0f}s: {warm['critic_info']}")
    return exports


def _run_one(cfg: CompareConfig, export: dict, variant: str, seed: int, levels: list
             ) -> tuple[list[tuple[int, bool]], float, float]:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    env = make_sb3_env(export, levels, n_envs=cfg.n_envs, seed=seed,
                       tick_factor=cfg.tick_factor, max_ticks=cfg.max_ticks,
                       vec_env_cls=SubprocVecEnv if cfg.subproc else None)  # None: native
    bc_policy = None
    if variant != "scratch" and cfg.kl_coef > 0:
        bc_policy = build_sb3_policy(export)
        bc_policy.load_state_dict(export["policy_state_dict"], strict=True)
    model = BCRegularisedPPO(
        "MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export), seed=seed,
        n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
        learning_rate=cfg.learning_rate, gamma=cfg.gamma, ent_coef=cfg.ent_coef, verbose=0,
        device="cpu", bc_policy=bc_policy, reg_coef=cfg.kl_coef, reg_updates=cfg.kl_updates)
    if variant != "scratch":
        load_into(model, export)
    start = {k: v.detach().clone() for k, v in model.policy.state_dict().items()}
    rec = SuccessRecorder()
    t0 = time.time()
    try:
        model.learn(cfg.total_timesteps, callback=rec)
    finally:
        env.close()
    moved = sum(float((v - start[k]).abs().sum())
                for k, v in model.policy.state_dict().items())
    return rec.episodes, time.time() - t0, moved


def _wandb_log(cfg: CompareConfig, name: str, ends: list[int], rates: list,
               summary: dict[str, Any]) -> None:
    if cfg.wandb == "disabled":
        return
    import os

    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb

        run = wandb.init(project=cfg.project, name=name, mode=cfg.wandb,
                         dir=str(Path(cfg.out_dir).resolve()), config=asdict(cfg),
                         reinit="finish_previous")
        for end, rate in zip(ends, rates, strict=True):
            if rate is not None:
                run.log({"rollout/success_rate": rate}, step=end)
        run.summary.update(summary)
        run.finish()
    except Exception as exc:  # W&B is a convenience; the JSON/PNG/Markdown are the record
        print(f"warning: W&B logging failed for {name}: {exc}")


def run_compare(cfg: CompareConfig, log: Any = print) -> dict[str, Any]:
    """Run every (architecture, seed, variant); write results.json, curves.png, results.md."""
    check_compare_inputs(cfg)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    levels = resolve_levels(cfg.replay_data_dir)
    results: dict[str, Any] = {"config": asdict(cfg), "levels": len(levels), "runs": []}
    for arch in cfg.architectures:
        exports = _exports(cfg, arch, out, log)
        for seed in cfg.seeds:
            for variant in cfg.variants:
                export = exports["bc_warm" if variant == "bc_warm" else "bc"]
                episodes, secs, moved = _run_one(cfg, export, variant, seed, levels)
                ends, rates = success_curve(episodes, cfg.total_timesteps, cfg.bins)
                run = {"architecture": arch, "seed": seed, "variant": variant,
                       "episodes": len(episodes), "wins": int(sum(w for _, w in episodes)),
                       "seconds": secs, "param_change_l1": moved, "bin_ends": ends,
                       "success": rates, "critic": export["critic"] if variant != "scratch"
                       else "scratch"}
                results["runs"].append(run)
                log(f"[{arch}] seed {seed} {variant:8s} {len(episodes)} episodes, "
                    f"success by bin {[None if r is None else round(r, 2) for r in rates]} "
                    f"({secs:.0f}s)")
                (out / "results.partial.json").write_text(json.dumps(results, indent=1))
                _wandb_log(cfg, f"{arch}-{variant}-s{seed}", ends, rates,
                           {"episodes": len(episodes), "wins": run["wins"]})
    write_results(results, cfg, out)
    return results


def write_results(results: dict[str, Any], cfg: CompareConfig, out: Path) -> None:
    """Summarise the runs and write results.json, curves.png and results.md."""
    results["summary"] = summarise(results["runs"], cfg)
    atomic_write(out / "results.json", lambda fh: fh.write(json.dumps(results, indent=1)
                                                           .encode()))
    plot_curves(results, out / "curves.png")
    atomic_write(out / "results.md", lambda fh: fh.write(markdown_table(results).encode()))


def _mean_curve(runs: list[dict]) -> list[float | None]:
    cols = list(zip(*[r["success"] for r in runs], strict=True))
    return [float(np.mean([v for v in c if v is not None])) if any(v is not None for v in c)
            else None for c in cols]


def summarise(runs: list[dict], cfg: CompareConfig) -> dict[str, Any]:
    """Per architecture and variant: mean curve over seeds; BC's early success; the step ratio.

    ``early`` is a variant's success in the first bin; ``scratch_steps_to_bc_early`` is the first
    bin where scratch's seed-mean success reaches the BC variant's seed-mean early success.
    """
    out: dict[str, Any] = {}
    for arch in cfg.architectures:
        by_var = {v: [r for r in runs if r["architecture"] == arch and r["variant"] == v]
                  for v in cfg.variants}
        arch_out: dict[str, Any] = {}
        for v, rs in by_var.items():
            if not rs:
                continue
            curve = _mean_curve(rs)
            arch_out[v] = {"mean_curve": curve, "bin_ends": rs[0]["bin_ends"],
                           "early": curve[0], "final": curve[-1],
                           "overall": float(sum(r["wins"] for r in rs)
                                            / max(1, sum(r["episodes"] for r in rs)))}
        scratch = arch_out.get("scratch")
        for v in ("bc", "bc_warm"):
            if v not in arch_out:
                continue
            # Always present (None when unknown): no scratch run, or no BC episode ended in
            # the first bin (a short budget), leaves the ratio undefined, not the key absent.
            s = arch_out[v]
            s.update(scratch_steps_to_bc_early=None, step_ratio=None,
                     step_ratio_lower_bound=None)
            if scratch is None or s["early"] is None:
                continue
            first = s["bin_ends"][0]
            reach = steps_to_reach(scratch["bin_ends"], scratch["mean_curve"], s["early"])
            s["scratch_steps_to_bc_early"] = reach
            s["step_ratio"] = (reach / first) if reach else None
            s["step_ratio_lower_bound"] = cfg.total_timesteps / first
        out[arch] = arch_out
    return out


def plot_curves(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = list(results["summary"])
    fig, axes = plt.subplots(1, len(archs), figsize=(6 * len(archs), 4), squeeze=False)
    for ax, arch in zip(axes[0], archs, strict=True):
        for variant, s in results["summary"][arch].items():
            runs = [r for r in results["runs"] if r["architecture"] == arch
                    and r["variant"] == variant]
            for r in runs:
                xs = [e for e, v in zip(r["bin_ends"], r["success"], strict=True) if v is not None]
                ys = [v for v in r["success"] if v is not None]
                ax.plot(xs, ys, alpha=0.25, lw=1, color=_COLOURS.get(variant))
            xs = [e for e, v in zip(s["bin_ends"], s["mean_curve"], strict=True) if v is not None]
            ys = [v for v in s["mean_curve"] if v is not None]
            ax.plot(xs, ys, lw=2, label=f"{variant} (mean of {len(runs)})",
                    color=_COLOURS.get(variant))
        ax.set_title(f"{arch}: training-episode success vs env steps")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


_COLOURS = {"scratch": "tab:gray", "bc": "tab:blue", "bc_warm": "tab:green"}


def markdown_table(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [f"PPO on {results['levels']} levels of `{cfg['replay_data_dir']}`, "
             f"{cfg['total_timesteps']} steps x seeds {list(cfg['seeds'])}; success of training "
             f"episodes (seed mean) per bin of {cfg['total_timesteps'] // cfg['bins']} steps.",
             "",
             "| arch | variant | early (bin 1) | final bin | all episodes | per-seed early | "
             "scratch steps to BC early | ratio |",
             "|---|---|---|---|---|---|---|---|"]

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.3f}"

    for arch, variants in results["summary"].items():
        for v, s in variants.items():
            seeds = [r["success"][0] for r in results["runs"]
                     if r["architecture"] == arch and r["variant"] == v]
            reach = s.get("scratch_steps_to_bc_early")
            if v == "scratch":
                reach_s, ratio = "", ""
            elif s.get("early") is None:
                reach_s, ratio = "no BC episode ended in bin 1", "-"
            elif "scratch" not in variants:
                reach_s, ratio = "no scratch run", "-"
            elif reach is None:
                reach_s = f"not within {cfg['total_timesteps']}"
                bound = s.get("step_ratio_lower_bound")
                ratio = f"> {bound:.0f}x" if bound is not None else "-"
            else:
                reach_s, ratio = str(reach), f"{s['step_ratio']:.1f}x"
            lines.append(f"| {arch} | {v} | {f(s['early'])} | {f(s['final'])} | "
                         f"{f(s['overall'])} | {', '.join(f(x) for x in seeds)} | {reach_s} | "
                         f"{ratio} |")
    return "\n".join(lines) + "\n"
