"""Training-step throughput of the shipped configs, timing the code that trains.

For every ``configs/<name>.yaml``: open (or build, once, into ``--cache``) the dataset the
config trains on, build the run the way ``torchrl_bc.train.loop.train`` does (``make_actor``,
``make_loss``, ``make_optimizer``, ``make_update``) and time ``update(td)`` (the
``MaskedBCLoss`` forward, backward, gradient clipping, AdamW and schedule step) on real training
batches drawn by the config's own sampler (its ``train.batch_size``, ``data.balance_actions`` and
``data.levels_per_batch``). Reports samples/s and peak memory and, for configs with both, times
the graph encoder against the CNN path (``player_frame`` + ``global_view`` encoders, forward +
backward on the same batch): with ``data.levels_per_batch`` the ratio is the one training sees
(requirement: at most 3x).

``data.generated`` (generalist) is set to 0: planner-solved levels change which levels fill a
batch, not its shapes, and generating them takes long. Each config runs in its own subprocess
so the peak RSS belongs to that config alone. The first run on a fresh cache simulates the
corpus for each observation set (minutes); later runs reuse it.

    python scripts/bench_train.py [--configs mlp cnn gat hgt tiny] [--batch N]
                                  [--levels N] [--steps 5] [--warmup 2]
                                  [--device auto|cpu|cuda|both] [--threads N] [--cache DIR]

Ends with one ``name: value`` line per figure, e.g. ``samples_per_s_hgt_cpu: 850``, and for
graph configs ``levels_per_batch_hgt_cpu: 4`` beside ``graph_to_cnn_ratio_hgt_cpu: ...``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
#: runnable configs (base.yaml only holds the keys the others share)
SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "base")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn, device: torch.device, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_one(name: str, device_name: str, batch: int | None, levels: int | None, steps: int,
              warmup: int, cache: Path) -> dict:
    from torchrl_bc.models import actor_extractor
    from torchrl_bc.train.config import load_config, with_values
    from torchrl_bc.train.factories import (
        make_actor,
        make_dataset,
        make_loss,
        make_optimizer,
        train_level_graphs,
    )
    from torchrl_bc.train.loop import make_update

    device = torch.device(device_name)
    # data.generated adds planner-solved levels (an hour's work the first time); the step time
    # depends on the batch's shapes, not on which levels fill it, so the bench leaves them out.
    values: dict = {"data.cache_dir": str(cache), "data.generated": 0}
    if batch:
        values["train.batch_size"] = batch
    if levels is not None:
        values["data.levels_per_batch"] = levels
    cfg = with_values(load_config(CONFIGS / f"{name}.yaml"), values)
    tc = cfg.train
    data = make_dataset(cfg, cache / "bench", verbose=False)
    torch.manual_seed(tc.seed)
    actor = make_actor(cfg, train_level_graphs(cfg, data), device)
    loss = make_loss(cfg, actor, data)
    optim, sched = make_optimizer(cfg, actor, 10 ** 6)
    update = make_update(loss, optim, sched, grad_clip=tc.grad_clip,
                         amp=tc.amp and device.type == "cuda")
    batches = [td.to(device) for td in
               data.train_batches(0, tc.batch_size, tc.seed, balanced=cfg.data.balance_actions,
                                  levels_per_batch=cfg.data.levels_per_batch,
                                  cap=steps + warmup)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    it = iter(range(10 ** 9))

    def step() -> None:
        update(batches[next(it) % len(batches)])

    step_s = _median_time(step, device, steps, warmup)
    td = batches[0]
    out = {
        "name": name, "device": device.type, "batch": tc.batch_size,
        "levels": cfg.data.levels_per_batch,
        "distinct_levels": int(td["graph_level"].unique().numel()) if "graph_level" in td.keys()
        else 0,
        "params": sum(p.numel() for p in actor.parameters()),
        "step_ms": 1e3 * step_s, "samples_per_s": tc.batch_size / step_s,
    }
    if device.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        out["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    extractor = actor_extractor(actor)
    obs = {k: td[k] for k in extractor.in_keys}
    encoders = extractor.encoders
    n = tc.batch_size
    if "graph" in encoders:
        def graph_path() -> None:
            extractor.zero_grad(set_to_none=True)
            extractor._encode_graph(encoders["graph"], obs, n).sum().backward()
        out["graph_ms"] = 1e3 * _median_time(graph_path, device, steps, warmup)
    cnn_keys = [k for k in ("player_frame", "global_view") if k in encoders]
    if cnn_keys:
        def cnn_path() -> None:
            extractor.zero_grad(set_to_none=True)
            sum(encoders[k](obs[k]).sum() for k in cnn_keys).backward()
        out["cnn_ms"] = 1e3 * _median_time(cnn_path, device, steps, warmup)
    if "graph_ms" in out and "cnn_ms" in out:
        out["graph_to_cnn_ratio"] = out["graph_ms"] / out["cnn_ms"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=SHIPPED, choices=SHIPPED,
                    help="names of configs/*.yaml")
    ap.add_argument("--batch", type=int, default=None,
                    help="batch size (default: each config's train.batch_size)")
    ap.add_argument("--levels", type=int, default=None,
                    help="data.levels_per_batch for every config (default: each config's)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "both"])
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / ".bc_data",
                    help="dataset cache (default: the one training runs under runs/ share)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: NAME:DEVICE in this process
    args = ap.parse_args(argv)

    if args.one:
        name, dev = args.one.split(":")
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(bench_one(name, dev, args.batch, args.levels, args.steps,
                                   args.warmup, args.cache)))
        return 0

    has_cuda = torch.cuda.is_available()
    if args.device == "cuda" and not has_cuda:
        ap.error("--device cuda but CUDA is not available")
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "both": ["cpu", "cuda"] if has_cuda else ["cpu"],
               "auto": ["cpu", "cuda"] if has_cuda else ["cpu"]}[args.device]
    # Spinning OpenMP workers collapse throughput (100x seen) when another process holds a
    # core; passive waiting costs little on an idle machine.
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, threads {threads}, OMP_WAIT_POLICY "
          f"{env['OMP_WAIT_POLICY']}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, "
          f"cuda {has_cuda}; configs {' '.join(args.configs)}", flush=True)
    results = []
    for dev in devices:
        for name in args.configs:
            cmd = [sys.executable, __file__, "--one", f"{name}:{dev}", "--steps",
                   str(args.steps), "--warmup", str(args.warmup), "--cache", str(args.cache)]
            for flag, value in (("--batch", args.batch), ("--levels", args.levels),
                                ("--threads", args.threads)):
                if value is not None:
                    cmd += [flag, str(value)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if proc.returncode:
                print(f"{name} on {dev} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                return proc.returncode
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            extra = ""
            if "graph_ms" in r:
                extra += f"  graph {r['graph_ms']:.0f} ms ({r['distinct_levels']} levels)"
            if "cnn_ms" in r:
                extra += f"  cnn {r['cnn_ms']:.0f} ms"
            if "graph_to_cnn_ratio" in r:
                extra += f"  graph/cnn {r['graph_to_cnn_ratio']:.2f}x"
            print(f"{name:>10} {dev:<4} params {r['params']:>9,}  batch {r['batch']:>4}  "
                  f"step {r['step_ms']:8.1f} ms  {r['samples_per_s']:8.0f} samples/s  "
                  f"peak {r['peak_mem_mb']:7.0f} MB{extra}", flush=True)
    for r in results:
        tag = f"{r['name']}_{r['device']}"
        print(f"samples_per_s_{tag}: {r['samples_per_s']:.0f}")
        print(f"peak_mem_mb_{tag}: {r['peak_mem_mb']:.0f}")
        if "graph_to_cnn_ratio" in r:
            print(f"levels_per_batch_{tag}: {r['levels']}")
            print(f"graph_to_cnn_ratio_{tag}: {r['graph_to_cnn_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
