"""Simulation speed over the shared human replays (and entity traces).

Prints ticks per second for the tick loop alone and including map loading, one
``name: value`` line per figure at the end. With ``--reference DIR`` (a checkout of the
reference Python simulator, nclone) the same replays are also run through it, for a ratio
measured on this machine in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from torchrl_bc.replay.format import ReplayFormatError, read_replay
from torchrl_bc.sim import INPUT_DECODE, Simulator

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def load_corpus(dirs: list[Path]) -> list[tuple[bytes, np.ndarray]]:
    out = []
    for d in dirs:
        for path in sorted(d.glob("*.replay")):
            try:
                r = read_replay(path)
            except ReplayFormatError as exc:
                print(f"skip {exc}", file=sys.stderr)
                continue
            out.append((r.map_data, r.inputs))
    return out


def run_ours(corpus, repeats: int) -> tuple[float, float, int]:
    decoded = [[INPUT_DECODE[b] for b in inputs.tolist()] for _, inputs in corpus]
    ticks = sum(len(d) for d in decoded)
    best_tick = best_load = float("inf")
    for _ in range(repeats):
        t_load = t_tick = 0.0
        for (map_data, _), steps in zip(corpus, decoded, strict=True):
            t0 = time.perf_counter()
            sim = Simulator(map_data)
            t1 = time.perf_counter()
            tick = sim.tick
            for hor, jump in steps:
                tick(hor, jump)
            t2 = time.perf_counter()
            t_load += t1 - t0
            t_tick += t2 - t1
        best_tick = min(best_tick, t_tick)
        best_load = min(best_load, t_tick + t_load)
    return ticks / best_tick, ticks / best_load, ticks


def run_reference(corpus, ref_dir: Path) -> float:
    sys.path.insert(0, str(ref_dir))
    from nclone.nsim import Simulator as RefSim  # type: ignore[import-not-found]
    from nclone.sim_config import SimConfig  # type: ignore[import-not-found]

    total = 0
    elapsed = 0.0
    for map_data, inputs in corpus:
        sim = RefSim(SimConfig(enable_anim=False))
        sim.load(list(map_data))
        steps = [INPUT_DECODE[b] for b in inputs.tolist()]
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
                    help="reference data folder holding replays/ and entity_replays/")
    ap.add_argument("--entities", action="store_true", help="also run the 120 entity traces")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats; the best is kept")
    ap.add_argument("--reference", type=Path, default=None,
                    help="optional nclone checkout to time the reference on the same replays")
    args = ap.parse_args()

    dirs = [args.data / "replays"] + ([args.data / "entity_replays"] if args.entities else [])
    corpus = load_corpus(dirs)
    if not corpus:
        sys.exit(f"no replays found under {args.data}")
    tick_only, with_load, ticks = run_ours(corpus, args.repeats)
    print(f"replays: {len(corpus)}")
    print(f"ticks: {ticks}")
    print(f"ticks_per_s_tick_only: {tick_only:.0f}")
    print(f"ticks_per_s_with_load: {with_load:.0f}")
    if args.reference is not None:
        ref = run_reference(corpus, args.reference)
        print(f"reference_ticks_per_s_tick_only: {ref:.0f}")
        print(f"ratio_vs_reference: {tick_only / ref:.2f}")


if __name__ == "__main__":
    main()
