"""Training-step throughput of each named architecture on synthetic batches.

For every config: build the actor, time forward + NLL backward + AdamW step on a batch of
realistic shapes (frames 84x84, global view 100x176, distinct level graphs of ~1-3k nodes),
report samples/s and peak memory, and time the graph encoder against the CNN path
(player_frame + global_view encoders, forward + backward on the same batch).

The graph encoder encodes each distinct level of a batch once, so its cost scales with the
distinct levels per batch. ``configs/hgt.yaml`` and ``configs/gat.yaml`` train with
``data.levels_per_batch`` (4) levels per batch (``LevelGroupedSampler``), and by default each
config is timed with its own ``configs/<name>.yaml`` value, so the printed graph/CNN ratio is the
one training sees (requirement: at most 3x). Configs with the option off are timed with
``UNGROUPED_LEVELS`` (16) levels, a lower bound for uniform sampling over ~100 levels (~18x for
hgt). ``--levels N`` times every config with N instead.

Each config runs in its own subprocess so the peak RSS belongs to that config alone.

    python scripts/bench_train.py [--configs hgt gat cnn mlp tiny] [--batch 256] [--levels N]
                                  [--steps 5] [--device auto|cpu|cuda|both] [--threads N]

Ends with one ``name: value`` line per figure, e.g. ``samples_per_s_hgt_cpu: 850``, and for
graph configs ``levels_per_batch_hgt_cpu: 4`` beside ``graph_to_cnn_ratio_hgt_cpu: ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from torchrl_bc.models import PRESETS, ObsSpec, actor_extractor, build_actor, nll_loss, preset
from torchrl_bc.models.synthetic import synthetic_batch, synthetic_level_graph

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
#: Distinct levels timed for configs that sample ungrouped: a lower bound (256 uniform draws
#: over ~100 levels hit ~90 distinct ones), and already ~18x the CNN path for hgt.
UNGROUPED_LEVELS = 16


def configured_levels(name: str) -> int:
    """``data.levels_per_batch`` of ``configs/<name>.yaml`` (0: off, or no such file)."""
    from torchrl_bc.train.config import load_config

    path = CONFIGS / f"{name}.yaml"
    return load_config(path).data.levels_per_batch if path.is_file() else 0


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


def bench_one(name: str, device_name: str, batch: int, n_levels: int, steps: int,
              warmup: int) -> dict:
    device = torch.device(device_name)
    torch.manual_seed(0)
    spec = ObsSpec()
    # Level-like graphs: 12 px sub-cells of a 1056x600 level, varying openness and entities.
    graphs = [synthetic_level_graph(100 + i, free_fraction=0.45 + 0.25 * i / max(n_levels - 1, 1),
                                    n_entities=10 + 30 * i) for i in range(n_levels)]
    cfg = preset(name)
    actor = build_actor(cfg, spec).to(device)
    extractor = actor_extractor(actor)
    extractor.set_level_graphs(graphs)
    td = synthetic_batch(spec, graphs, batch, seed=1).to(device)
    opt = torch.optim.AdamW(actor.parameters(), lr=3e-4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nll_loss(actor, td).backward()
        opt.step()

    step_s = _median_time(step, device, steps, warmup)
    out = {
        "name": name, "device": device.type, "batch": batch, "levels": n_levels,
        "params": sum(p.numel() for p in actor.parameters()),
        "step_ms": 1e3 * step_s, "samples_per_s": batch / step_s,
        "graph_nodes_mean": statistics.mean(g.num_nodes for g in graphs),
        "graph_edges_mean": statistics.mean(int(g.edge_index.shape[1]) for g in graphs),
    }
    if device.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        out["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    obs = {k: td[k] for k in extractor.in_keys}
    encoders = extractor.encoders
    n = batch
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
    ap.add_argument("--configs", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--levels", type=int, default=None,
                    help="distinct level graphs per batch (default: each config's "
                         f"data.levels_per_batch, {UNGROUPED_LEVELS} where it is off)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "both"])
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: NAME:DEVICE in this process
    args = ap.parse_args(argv)

    if args.one:
        name, dev = args.one.split(":")
        print(json.dumps(bench_one(name, dev, args.batch, args.levels, args.steps,
                                   args.warmup)))
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
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, threads {threads}, OMP_WAIT_POLICY "
          f"{env['OMP_WAIT_POLICY']}, "
          f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, cuda {has_cuda}; "
          f"batch {args.batch}", flush=True)
    configured = {name: configured_levels(name) for name in args.configs}
    levels = {name: args.levels or configured[name] or UNGROUPED_LEVELS for name in args.configs}
    src = {name: "--levels" if args.levels else
           f"data.levels_per_batch={configured[name]}" if configured[name] else
           "ungrouped: data.levels_per_batch=0" for name in args.configs}
    graph = [n for n in args.configs if "graph" in preset(n).modalities]
    if graph:
        print("distinct levels per batch (graph configs): "
              + ", ".join(f"{n} {levels[n]} ({src[n]})" for n in graph), flush=True)
    results = []
    for dev in devices:
        for name in args.configs:
            cmd = [sys.executable, __file__, "--one", f"{name}:{dev}", "--batch", str(args.batch),
                   "--levels", str(levels[name]), "--steps", str(args.steps),
                   "--warmup", str(args.warmup)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if proc.returncode:
                print(f"{name} on {dev} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                return proc.returncode
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            extra = ""
            if "graph_ms" in r:
                extra += f"  graph {r['graph_ms']:.0f} ms"
            if "cnn_ms" in r:
                extra += f"  cnn {r['cnn_ms']:.0f} ms"
            if "graph_to_cnn_ratio" in r:
                extra += f"  graph/cnn {r['graph_to_cnn_ratio']:.2f}x"
            print(f"{name:>5} {dev:<4} params {r['params']:>9,}  step {r['step_ms']:8.1f} ms  "
                  f"{r['samples_per_s']:8.0f} samples/s  peak {r['peak_mem_mb']:7.0f} MB{extra}"
                  + (f"  ({r['levels']} graphs ~{r['graph_nodes_mean']:.0f} nodes / "
                     f"{r['graph_edges_mean']:.0f} edges)" if "graph_ms" in r else ""),
                  flush=True)
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
