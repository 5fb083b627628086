"""Benchmark the data stage on a replay corpus (default ../shared/data/replays).

Measures, each phase in its own process so peak RSS is per phase (workers included):

* cold build time, all modalities, on 1 and on 2 workers (fresh dataset and cache each);
* warm rebuild time (nothing changed): in-process and as a whole ``torchrl-bc prepare`` process;
* bytes on disk: the store (per step and total) and the episode cache;
* sampling throughput at batch 256 (uniform, balanced);
* ``make-corpus`` levels/s with the local executor and with Ray, same levels, 2 workers each,
  run back to back twice (local, ray, local, ray: the machine may be shared). The Ray figure
  counts from a connected Ray instance (on a cluster it is already up) and includes its worker
  processes' start; starting the private instance is reported apart (``ray_start_s``).

    python scripts/bench_data.py [REPLAY_DIR] [--mirror] [--work DIR]
    python scripts/bench_data.py --corpus-only [--corpus-levels N]

Goals (shared corpus, 2 cores): cold < 60 s, warm < 2 s, <= 1 GB on disk, peak RSS < 2 GB,
>= 20k samples/s. Ends with one ``name: value`` line per figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "replays"


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def phase_build(replays: str, out: str, workers: int, mirror: bool) -> dict:
    from torchrl_bc.data.build import build_dataset
    from torchrl_bc.obs import ObservationConfig

    t = time.perf_counter()
    res = build_dataset([replays], ObservationConfig(), out, workers=workers, mirror=mirror,
                        progress=False, verbose=False)
    return {"seconds": time.perf_counter() - t, "simulated": len(res.simulated),
            "steps": res.manifest["totals"]["steps"], "rss_mb": _peak_rss_mb()}


def phase_sample(out: str) -> dict:
    import torch

    from torchrl_bc.data import BCDataset

    t = time.perf_counter()
    ds = BCDataset(out)
    result = {"open_s": time.perf_counter() - t}
    for name, balanced in (("uniform", False), ("balanced", True)):
        for _ in ds.train_batches(0, 256, 0, balanced=balanced, cap=5):  # touch the pages once
            pass
        n, epoch, t = 0, 1, time.perf_counter()
        while time.perf_counter() - t < 2.0:
            for batch in ds.train_batches(epoch, 256, 0, balanced=balanced, cap=10):
                n += batch.batch_size[0]
            epoch += 1
        result[name] = n / (time.perf_counter() - t)
    result["threads"] = torch.get_num_threads()
    result["rss_mb"] = _peak_rss_mb()
    return result


def phase_corpus(executor: str, n: int, workers: int, out: str) -> dict:
    from torchrl_bc.levels.corpus import make_corpus

    start = 0.0
    if executor == "ray":
        from torchrl_bc.executors import RayExecutor

        t = time.perf_counter()
        RayExecutor(workers=workers).connect()
        start = time.perf_counter() - t
    t = time.perf_counter()
    make_corpus(out, n, seed=0, progress=False, workers=workers, executor=executor)
    seconds = time.perf_counter() - t
    manifest = (Path(out) / "manifest.json").read_bytes()
    return {"seconds": seconds, "levels_per_s": n / seconds, "start_s": start,
            "manifest_sha": hashlib.sha256(manifest).hexdigest()}


def bench_corpus(work: Path, n: int) -> dict[str, float]:
    """levels/s of make-corpus, local then Ray, twice; figures are the means."""
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    for _ in range(2):
        for executor in ("local", "ray"):
            out = work / f"corpus-{executor}"
            shutil.rmtree(out, ignore_errors=True)
            r = _child("corpus", executor, str(n), "2", str(out))
            runs[executor].append(r)
            print(f"make-corpus {n} levels, {executor}, 2 workers: {r['seconds']:.1f} s "
                  f"({r['levels_per_s']:.2f} levels/s)"
                  + (f", Ray instance start {r['start_s']:.1f} s" if executor == "ray" else ""))
    shas = {r["manifest_sha"] for rs in runs.values() for r in rs}
    print(f"make-corpus outputs identical across executors and runs: {len(shas) == 1}")
    if len(shas) != 1:
        raise SystemExit("make-corpus: the executors wrote different corpora")
    local = sum(r["levels_per_s"] for r in runs["local"]) / 2
    ray = sum(r["levels_per_s"] for r in runs["ray"]) / 2
    return {"make_corpus_levels": n, "make_corpus_levels_per_s_local": local,
            "make_corpus_levels_per_s_ray": ray, "make_corpus_ray_over_local": ray / local,
            "ray_start_s": sum(r["start_s"] for r in runs["ray"]) / 2,
            # what one command on one machine sees: the private instance's start included
            "make_corpus_levels_per_s_ray_with_start": sum(
                n / (r["seconds"] + r["start_s"]) for r in runs["ray"]) / 2}


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("replays", nargs="?", default=str(DEFAULT_DIR))
    parser.add_argument("--mirror", action="store_true", help="also build mirrored episodes")
    parser.add_argument("--work", type=Path, default=None, help="scratch dir (default: temp)")
    parser.add_argument("--corpus-levels", type=int, default=40,
                        help="levels per make-corpus run (default 40)")
    parser.add_argument("--corpus-only", action="store_true",
                        help="only the make-corpus local vs Ray figures")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        kind, *rest = args.phase
        if kind == "build":
            res = phase_build(rest[0], rest[1], int(rest[2]), rest[3] == "1")
        elif kind == "corpus":
            res = phase_corpus(rest[0], int(rest[1]), int(rest[2]), rest[3])
        else:
            res = phase_sample(rest[0])
        print(json.dumps(res))
        return 0

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_data_"))
    if args.corpus_only:
        fig = bench_corpus(work, args.corpus_levels)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
        for name, value in fig.items():
            print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
        return 0
    mirror = "1" if args.mirror else "0"
    fig: dict[str, float] = {}
    for w in (1, 2):
        out = work / f"w{w}"
        shutil.rmtree(out, ignore_errors=True)
        r = _child("build", args.replays, str(out), str(w), mirror)
        print(f"cold build, {w} worker(s): {r['seconds']:.1f} s, {r['simulated']} replays, "
              f"{r['steps']} steps, peak RSS {r['rss_mb']:.0f} MB")
        fig[f"cold_build_s_{w}w"] = r["seconds"]
        fig[f"build_peak_rss_mb_{w}w"] = r["rss_mb"]
        steps = r["steps"]
    out = work / "w2"
    r = _child("build", args.replays, str(out), "2", mirror)
    fig["warm_build_s"] = r["seconds"]
    cfg = work / "bench.yaml"  # default ObservationConfig: all modalities, frame_skip 4
    cfg.write_text(f"observation: {{}}\ndata: {{mirror: {str(args.mirror).lower()}}}\n")
    t = time.perf_counter()
    cli = Path(sys.executable).with_name("torchrl-bc")  # the venv's console script, as users run it
    subprocess.run([str(cli), "prepare", "--replays", args.replays, "--config", str(cfg),
                    "--out", str(out), "--quiet"], check=True, capture_output=True)
    fig["warm_prepare_cli_s"] = time.perf_counter() - t
    print(f"warm rebuild: {fig['warm_build_s']:.3f} s in-process ({r['simulated']} simulated), "
          f"{fig['warm_prepare_cli_s']:.2f} s as a torchrl-bc prepare process")
    store = next(p for p in out.iterdir() if p.name.startswith("store-"))
    fig["store_bytes"] = _dir_bytes(store)
    fig["cache_bytes"] = _dir_bytes(out / "cache")
    fig["disk_bytes_total"] = _dir_bytes(out)
    fig["store_bytes_per_step"] = fig["store_bytes"] / steps
    print(f"disk: store {fig['store_bytes'] / 2**20:.0f} MB ({fig['store_bytes_per_step']:.0f} "
          f"B/step), cache {fig['cache_bytes'] / 2**20:.1f} MB")
    s = _child("sample", str(out))
    print(f"sampling (batch 256, torch threads {s['threads']}): uniform {s['uniform']:.0f}/s, "
          f"balanced {s['balanced']:.0f}/s; open {s['open_s'] * 1000:.0f} ms incl. imports; "
          f"peak RSS {s['rss_mb']:.0f} MB")
    fig |= {"samples_per_s_uniform": s["uniform"], "samples_per_s_balanced": s["balanced"],
            "sample_peak_rss_mb": s["rss_mb"], "steps": steps}
    fig |= bench_corpus(work, args.corpus_levels)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    for name, value in fig.items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
