"""RL throughput: the batched SB3 VecEnv, PPO end to end, and batched closed-loop evaluation.

Figures (one ``name: value`` line each at the end), all with ``configs/mlp.yaml``'s observations
(``game_state`` + ``action_mask``, frame_skip 1) and, where a policy is involved, its network
(untrained: speed does not depend on the weights, only episode lengths do):

* ``vecenv_steps_per_s``: ``make_sb3_env`` (the native ``NppSB3VecEnv``), ``--n-envs`` envs over
  the levels, random actions, env only. ``dummy_vecenv_steps_per_s``: the per-env path
  (``DummyVecEnv`` of ``PaddedNppEnv``), the same envs.
* ``observe_bulk_rows_per_s``: ``LevelSlots.observe`` building every slot's observation at once
  (``game_state``, ``objective``, ``last_input``: ``BULK_MODALITIES``), and
  ``observe_builders_rows_per_s``: one ``ObservationBuilder`` per slot, the path every
  modality took before (the same states, the same arrays); ``observe_bulk_speedup`` their ratio.
* ``ppo_env_steps_per_s``: SB3 ``PPO.learn`` end to end (collection and updates) on the native
  env, the median of ``--ppo-repeats`` runs (``_min``/``_max``: their range), with the
  fine-tune defaults (``torchrl_bc.sb3.ppo.FINETUNE_PPO``, used by
  ``scripts/finetune_ppo.py`` and ``scripts/train_and_compare.py``): n_steps 256 per env,
  minibatches of 2048, 3 epochs, lr 5e-4. ``ppo_time_{env,policy,update}_frac`` split its
  time between env stepping, policy forwards + rollout buffer, and gradient updates.
  ``old_shape_ppo_env_steps_per_s``: the former shape (minibatches of 256, 4 epochs), same env.
  ``dummy_ppo_env_steps_per_s``: the fine-tune defaults on the per-env path.
  ``matmul_gflops``: the policy's largest layer on one minibatch, the arithmetic rate its
  updates can reach here (PPO on 2 CPU cores is bound by it: docs/SB3.md).
* ``eval_policy_steps_per_s`` and ``eval_seconds``: ``rollout_levels`` (greedy: the
  ``ProbabilisticActor`` under ``ExplorationType.DETERMINISTIC`` in the TorchRL ``LevelsEnv``) on
  ``--eval-levels`` generated levels capped at ``--eval-ticks`` ticks.
* ``peak_rss_mb``: the process's peak resident memory.
* ``device`` (and ``gpu``): where PPO's networks ran (``--device``; the env and the evaluation
  always run on the CPU). On one H200 machine PPO ran no faster on CUDA than on its 16 CPU
  cores at 64 envs (about 30k env steps/s each; docs/SB3.md): collection, not arithmetic.
* ``cpu``: the processor and the cores this process may use. The PPO figures follow its
  floating-point rate (``matmul_gflops``): the same code measured 16.7k env steps/s on 2 cores
  of an AMD EPYC (matmul 156-178 GFLOP/s) and 25-31k, by the day, on 2 cores of an Intel
  Xeon (273-324).

    python scripts/bench_rl.py [--levels DIR] [--n-envs 64] [--ppo-steps 65536] [--ppo-repeats 5]
                               [--dummy-ppo-steps 16384] [--eval-levels 420] [--eval-ticks 1200]
                               [--threads N] [--device cpu|cuda] [--skip-dummy] [--skip-old-shape]
"""

from __future__ import annotations

# OpenMP's threads spin between PPO's many small matrix products (OMP_WAIT_POLICY left at its
# default): PASSIVE, which training uses against stalls on busy shared cores, makes PPO 1.4x
# slower on idle ones. Set OMP_WAIT_POLICY=PASSIVE, or --threads 1, on a busy machine.
import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The former fine-tune shape (minibatches of 256, 4 epochs), measured beside the current one.
OLD_SHAPE = {"batch_size": 256, "n_epochs": 4, "learning_rate": 3e-4}


def ppo_settings(**changes: float) -> dict[str, float]:
    """``FINETUNE_PPO`` (the fine-tune defaults) as ``PPO`` kwargs, with ``changes``."""
    from torchrl_bc.sb3.ppo import FINETUNE_PPO

    return FINETUNE_PPO | changes


def untrained_export(config: Path, out_dir: Path) -> Path:
    """A BC checkpoint of ``config``'s architecture at initialisation, exported for SB3."""
    from torchrl_bc.models import ObsSpec
    from torchrl_bc.sb3 import export_checkpoint
    from torchrl_bc.train import load_config
    from torchrl_bc.train.checkpoint import FORMAT, save_checkpoint, versions
    from torchrl_bc.train.factories import make_actor

    run = load_config(config)
    actor = make_actor(run)
    ckpt = save_checkpoint(out_dir / "untrained.pt", {
        "format": FORMAT, "model": actor.state_dict(), "epoch": 0, "config": run.to_dict(),
        "obs_signature": run.observation.signature(),
        "obs_spec": ObsSpec.from_observation_config(run.observation).to_dict(),
        "frame_skip": run.observation.frame_skip, "versions": versions()})
    export_checkpoint(ckpt, out_dir / "untrained_sb3.pt")
    return out_dir / "untrained_sb3.pt"


def bench_env(env, steps: int) -> float:
    env.reset()
    rng = np.random.default_rng(0)
    acts = rng.integers(6, size=(steps + 50, env.num_envs))
    for t in range(50):
        env.step(acts[t])
    t0 = time.perf_counter()
    for t in range(steps):
        env.step(acts[50 + t])
    return steps * env.num_envs / (time.perf_counter() - t0)


def bench_observe(obs_config, levels, n: int, reps: int = 200) -> tuple[float, float]:
    """Observation rows/s of ``n`` slots mid-episode: bulk (``LevelSlots.observe``) and one
    ``ObservationBuilder`` per slot (the previous way), on the same states."""
    from torchrl_bc.env.slots import LevelSlots
    from torchrl_bc.obs import ObservationBuilder

    slots = LevelSlots([lv.map_data for lv in levels], n, obs_config)
    if not slots.bulk:
        raise SystemExit(f"observe bench: {obs_config.modalities} are not all bulk modalities")
    for i in range(n):
        slots.load(i, i % len(levels))
    rng = np.random.default_rng(0)
    for _ in range(30):
        slots.step(rng.integers(6, size=n), 1)
    builders = [ObservationBuilder(obs_config) for _ in range(n)]
    for b, sim in zip(builders, slots.sims, strict=True):
        b.observe(sim)  # bind and build the level fields outside the timing
    slots.observe()
    t0 = time.perf_counter()
    for _ in range(reps):
        slots.observe()
    bulk = n * reps / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(reps):
        for b, sim in zip(builders, slots.sims, strict=True):
            b.observe(sim)
    return bulk, n * reps / (time.perf_counter() - t0)


def bench_ppo(export: dict, env, steps: int, settings: dict, repeats: int = 1,
              device: str = "cpu") -> tuple[dict[str, float], Any]:
    """``PPO.learn(steps)`` ``repeats`` times (after one warm-up update): the median rate and
    its range, with the time split by part over all repeats (shared cores make one short
    measurement swing by a quarter); and the trained policy."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    from torchrl_bc.sb3 import load_into, make_sb3_policy_kwargs

    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export), seed=0,
                device=device, verbose=0, **settings)
    load_into(model, export)
    model.set_logger(Logger(folder=None, output_formats=[]))  # no SB3 folder in the temp dir
    spent = {"env": 0.0, "update": 0.0}

    def timed(fn, key):
        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t0
        return run

    env.step_wait = timed(env.step_wait, "env")
    model.train = timed(model.train, "update")
    model.learn(settings["n_steps"] * env.num_envs)  # warm-up: first update, caches
    spent.update(env=0.0, update=0.0)
    rates, total = [], 0.0
    for _ in range(repeats):
        start = model.num_timesteps
        t0 = time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        secs = time.perf_counter() - t0
        rates.append((model.num_timesteps - start) / secs)
        total += secs
    return {"steps_per_s": float(np.median(rates)), "min": min(rates), "max": max(rates),
            "env": spent["env"] / total, "update": spent["update"] / total,
            "policy": 1 - (spent["env"] + spent["update"]) / total}, model.policy


def matmul_gflops(policy, rows: int, reps: int = 50) -> float:
    """GFLOP/s of the policy's largest layer on a minibatch, on the policy's device: the rate
    the updates' matrix products can reach there, against which PPO's own speed is judged."""
    import torch

    layer = max((m for m in policy.modules() if isinstance(m, torch.nn.Linear)),
                key=lambda m: m.weight.numel())
    x = torch.rand(rows, layer.in_features, device=layer.weight.device)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.no_grad():
        for _ in range(5):
            layer(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            layer(x)
        sync()
        secs = time.perf_counter() - t0
    return 2 * rows * layer.in_features * layer.out_features * reps / secs / 1e9


def bench_eval(config: Path, n_levels: int, ticks: int) -> tuple[float, float, int]:
    import torch

    from torchrl_bc.levels.generator import generate_level
    from torchrl_bc.sim.level import Level
    from torchrl_bc.train import load_config
    from torchrl_bc.train.evaluate import rollout_levels
    from torchrl_bc.train.factories import make_actor

    run = load_config(config)
    torch.manual_seed(0)
    actor = make_actor(run)
    levels = [Level(f"gen-{s}", generate_level(s, verify=False).map_data)
              for s in range(n_levels)]
    t0 = time.perf_counter()
    res, _ = rollout_levels(actor, levels, run.observation, max_ticks=ticks)
    secs = time.perf_counter() - t0
    steps = sum(-(-r.ticks // run.observation.frame_skip) for r in res)
    return steps / secs, secs, steps


def cpu_name() -> str:
    """The processor's model name (Linux ``/proc/cpuinfo``; ``platform`` elsewhere)."""
    import os
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")]
    except OSError:
        names = []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{names[0] if names else platform.processor() or 'unknown'}, {cores} cores"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from torchrl_bc.resources import SAMPLE_CORPUS
    from torchrl_bc.sb3.ppo import FINETUNE_N_ENVS
    from torchrl_bc.sim.level import DEFAULT_MAX_TICKS

    p.add_argument("--levels", default=str(SAMPLE_CORPUS))
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "mlp.yaml")
    p.add_argument("--n-envs", type=int, default=FINETUNE_N_ENVS,
                   help="envs stepped together (default: the fine-tune's, %(default)s)")
    p.add_argument("--env-steps", type=int, default=3000, help="vec steps for the env figure")
    p.add_argument("--ppo-steps", type=int, default=65536)
    p.add_argument("--ppo-repeats", type=int, default=5,
                   help="timed PPO runs of --ppo-steps each; the figure is their median")
    p.add_argument("--dummy-ppo-steps", type=int, default=16384)
    p.add_argument("--eval-levels", type=int, default=420)
    p.add_argument("--eval-ticks", type=int, default=DEFAULT_MAX_TICKS)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where PPO's networks run (the env and the evaluation stay on the CPU)")
    p.add_argument("--skip-dummy", action="store_true", help="skip the per-env path figures")
    p.add_argument("--skip-old-shape", action="store_true",
                   help="skip PPO with the former shape (minibatches of 256, 4 epochs)")
    args = p.parse_args()

    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv

    from torchrl_bc.obs import ObservationConfig
    from torchrl_bc.sb3 import load_export, make_sb3_env, resolve_levels

    if args.threads:
        torch.set_num_threads(args.threads)
    figures: dict[str, str] = {"cpu": cpu_name(), "torch_threads": str(torch.get_num_threads()),
                               "n_envs": str(args.n_envs), "device": args.device}
    if args.device == "cuda":
        if not torch.cuda.is_available():
            p.error("--device cuda: no CUDA device is visible to torch")
        figures["gpu"] = torch.cuda.get_device_name(0)
    levels = resolve_levels(args.levels)
    with tempfile.TemporaryDirectory() as tmp:
        export = load_export(untrained_export(args.config, Path(tmp)))
    kw = dict(n_envs=args.n_envs, seed=0)
    rate = bench_env(make_sb3_env(export, levels, **kw), args.env_steps)
    figures["vecenv_steps_per_s"] = f"{rate:.0f}"
    bulk, builders = bench_observe(ObservationConfig.from_dict(export["observation"]), levels,
                                   args.n_envs)
    figures["observe_bulk_rows_per_s"] = f"{bulk:.0f}"
    figures["observe_builders_rows_per_s"] = f"{builders:.0f}"
    figures["observe_bulk_speedup"] = f"{bulk / builders:.1f}"
    if not args.skip_dummy:
        dummy = make_sb3_env(export, levels, vec_env_cls=DummyVecEnv, **kw)
        rate = bench_env(dummy, max(args.env_steps // 20, 20))
        figures["dummy_vecenv_steps_per_s"] = f"{rate:.0f}"
    settings = ppo_settings()
    ppo, policy = bench_ppo(export, make_sb3_env(export, levels, **kw), args.ppo_steps,
                            settings, args.ppo_repeats, args.device)
    figures["ppo_env_steps_per_s"] = f"{ppo['steps_per_s']:.0f}"
    figures["ppo_env_steps_per_s_min"] = f"{ppo['min']:.0f}"
    figures["ppo_env_steps_per_s_max"] = f"{ppo['max']:.0f}"
    for part in ("env", "policy", "update"):
        figures[f"ppo_time_{part}_frac"] = f"{ppo[part]:.3f}"
    figures["matmul_gflops"] = f"{matmul_gflops(policy, int(settings['batch_size'])):.0f}"
    figures["ppo_hyperparameters"] = " ".join(f"{k}={v}" for k, v in settings.items())
    if not args.skip_old_shape:
        old, _ = bench_ppo(export, make_sb3_env(export, levels, **kw), args.dummy_ppo_steps,
                           ppo_settings(**OLD_SHAPE), device=args.device)
        figures["old_shape_ppo_env_steps_per_s"] = f"{old['steps_per_s']:.0f}"
    if not args.skip_dummy:
        dummy = make_sb3_env(export, levels, vec_env_cls=DummyVecEnv, **kw)
        d, _ = bench_ppo(export, dummy, args.dummy_ppo_steps, settings, device=args.device)
        figures["dummy_ppo_env_steps_per_s"] = f"{d['steps_per_s']:.0f}"
        figures["dummy_ppo_time_env_frac"] = f"{d['env']:.3f}"
        figures["ppo_speedup"] = f"{ppo['steps_per_s'] / d['steps_per_s']:.1f}"
    if args.eval_levels:
        rate, secs, steps = bench_eval(args.config, args.eval_levels, args.eval_ticks)
        figures["eval_policy_steps_per_s"] = f"{rate:.0f}"
        figures["eval_seconds"] = f"{secs:.1f}"
        figures["eval_policy_steps"] = str(steps)
    figures["peak_rss_mb"] = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
    for k, v in figures.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
