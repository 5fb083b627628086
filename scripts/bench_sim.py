"""Simulation speed over the shared human replays, compiled and interpreted, plus batch stepping.

Figures (one ``name: value`` line each at the end):

* ``ticks_per_s_tick_only``: every replay's inputs run through ``Simulator.run_inputs`` (one
  compiled call per replay), map loading excluded; ``ticks_per_s_with_load`` includes it.
* ``ticks_per_s_jit_off`` and ``jit_speedup``: the same code with ``NUMBA_DISABLE_JIT=1`` on a
  subset of the replays, measured in this run (a subprocess).
* ``step_many_ticks_per_s_{1,2}_threads``: ``SimBatch.step`` over 128 envs on the shared levels
  with sticky random actions, frame_skip 4, finished envs restarted inside the kernel
  (``autoreset=True``).
* ``import_cold_s`` / ``import_warm_s``: first import and first tick in a fresh process with an
  empty compilation cache, then again with the cache filled.
* with ``--reference DIR`` (a checkout of the reference Python simulator, nclone): its tick rate
  on the same replays and our ratio to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

_CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from torchrl_bc.replay.format import ReplayFormatError, read_replay
from torchrl_bc.sim import Simulator
files = sorted(Path(sys.argv[1]).glob("*.replay"))[: int(sys.argv[2])]
corpus = []
for p in files:
    try:
        corpus.append(read_replay(p))
    except ReplayFormatError:
        pass
sims = [Simulator(r.map_data) for r in corpus]
t0 = time.perf_counter()
ticks = sum(s.run_inputs(r.inputs).ticks for s, r in zip(sims, corpus))
print(json.dumps({"ticks": ticks, "seconds": time.perf_counter() - t0}))
"""

_IMPORT = r"""
import time
t0 = time.perf_counter()
import numpy as np
from torchrl_bc.sim import Simulator
from torchrl_bc.env.warmup import warm_up
warm_up()
print(time.perf_counter() - t0)
"""


def load_corpus(replays: Path):
    from torchrl_bc.replay.format import ReplayFormatError, read_replay

    out = []
    for path in sorted(replays.glob("*.replay")):
        try:
            out.append(read_replay(path))
        except ReplayFormatError as exc:
            print(f"skip {exc}", file=sys.stderr)
    return out


def run_ours(corpus, repeats: int) -> tuple[float, float, int]:
    from torchrl_bc.sim import Simulator

    sims = [Simulator(r.map_data) for r in corpus]
    ticks = sum(s.run_inputs(r.inputs).ticks for s, r in zip(sims, corpus, strict=True))
    best_tick = best_load = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        sims = [Simulator(r.map_data) for r in corpus]
        t1 = time.perf_counter()
        for s, r in zip(sims, corpus, strict=True):
            s.run_inputs(r.inputs)
        t2 = time.perf_counter()
        best_tick = min(best_tick, t2 - t1)
        best_load = min(best_load, t2 - t0)
    return ticks / best_tick, ticks / best_load, ticks


def run_jit_off(replays: Path, limit: int) -> float:
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", _CHILD, str(replays), str(limit)], env=env,
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["ticks"] / res["seconds"]


def run_step_many(corpus, threads: int, steps: int = 300, n_envs: int = 128) -> float:
    import numba

    from torchrl_bc.sim import Simulator
    from torchrl_bc.sim.batch import SimBatch

    sims = [Simulator(corpus[i % len(corpus)].map_data) for i in range(n_envs)]
    batch = SimBatch(sims)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 6, n_envs)
    batch.step(actions, 4)  # compile / warm
    numba.set_num_threads(threads)
    total = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        change = rng.random(n_envs) < 0.2
        actions = np.where(change, rng.integers(0, 6, n_envs), actions)
        total += int(batch.step(actions, 4, autoreset=True).sum())
    return total / (time.perf_counter() - t0)


def import_times() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", _IMPORT], env=env, capture_output=True,
                                 text=True, check=True)
            runs.append(float(out.stdout.strip().splitlines()[-1]))
    return runs[0], runs[1]


def run_reference(corpus, ref_dir: Path) -> float:
    from torchrl_bc.sim import INPUT_DECODE

    sys.path.insert(0, str(ref_dir))
    from nclone.nsim import Simulator as RefSim  # type: ignore[import-not-found]
    from nclone.sim_config import SimConfig  # type: ignore[import-not-found]

    total = 0
    elapsed = 0.0
    for r in corpus:
        sim = RefSim(SimConfig(enable_anim=False))
        sim.load(list(r.map_data))
        steps = [INPUT_DECODE[b] for b in r.inputs.tolist()]
        t0 = time.perf_counter()
        for hor, jump in steps:
            sim.tick(hor, jump)
        elapsed += time.perf_counter() - t0
        total += len(steps)
    return total / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="reference data folder holding replays/")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats; the best is kept")
    ap.add_argument("--jit-off-replays", type=int, default=12,
                    help="replays timed with the JIT off (it is ~100x slower)")
    ap.add_argument("--skip-import", action="store_true", help="skip the cold/warm import test")
    ap.add_argument("--reference", type=Path, default=None,
                    help="optional nclone checkout to time the reference on the same replays")
    args = ap.parse_args()

    replays = args.data / "replays"
    corpus = load_corpus(replays)
    if not corpus:
        sys.exit(f"no replays found under {replays}")
    figures: dict[str, str] = {}
    tick_only, with_load, ticks = run_ours(corpus, args.repeats)
    figures["replays"] = str(len(corpus))
    figures["ticks"] = str(ticks)
    figures["ticks_per_s_tick_only"] = f"{tick_only:.0f}"
    figures["ticks_per_s_with_load"] = f"{with_load:.0f}"
    jit_off = run_jit_off(replays, args.jit_off_replays)
    figures["ticks_per_s_jit_off"] = f"{jit_off:.0f}"
    figures["jit_speedup"] = f"{tick_only / jit_off:.1f}"
    for threads in (1, 2):
        figures[f"step_many_ticks_per_s_{threads}_threads"] = \
            f"{run_step_many(corpus, threads):.0f}"
    if not args.skip_import:
        cold, warm = import_times()
        figures["import_cold_s"] = f"{cold:.1f}"
        figures["import_warm_s"] = f"{warm:.2f}"
    if args.reference is not None:
        ref = run_reference(corpus, args.reference)
        figures["reference_ticks_per_s_tick_only"] = f"{ref:.0f}"
        figures["ratio_vs_reference"] = f"{tick_only / ref:.1f}"
    for name, value in figures.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
