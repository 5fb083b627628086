"""Benchmark the planner: success on unverified `medium` candidates and on the shared test maps.

Medium candidates are the generator's raw output for the held-out `medium` suite seeds (no
planner filtering), so the success rate measures generator + planner honestly. Prints a
line per level, then `name: value` summary lines.

    python scripts/bench_planner.py [--levels 48] [--budget-s 30] [--shared ../shared/data/maps]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from torchrl_bc.levels.generator import DIFFICULTY, FAMILIES, _rng, build_candidate
from torchrl_bc.levels.planner import DEFAULT_BUDGET_S, solve_map
from torchrl_bc.levels.suites import SUITES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, default=48, help="medium candidates to solve")
    ap.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S)
    ap.add_argument("--style", default="shortest")
    ap.add_argument("--shared", type=Path, default=None, help="also solve these map files")
    ap.add_argument("--shared-budget-s", type=float, default=60.0)
    args = ap.parse_args()

    spec = SUITES["medium"]
    lo, hi = DIFFICULTY["medium"]
    ticks = seconds = 0.0
    solved: list[bool] = []
    times: list[float] = []
    for i in range(args.levels):
        seed = spec.first_seed + i
        family = FAMILIES[i % len(FAMILIES)]
        d = lo + (hi - lo) * _rng(seed, "difficulty", 0).random()
        res = solve_map(build_candidate(seed, family, d), budget_s=args.budget_s,
                        style=args.style, source=f"{family}-{seed}")
        ticks += res.ticks_searched
        seconds += res.seconds
        solved.append(res.solved)
        times.append(res.seconds)
        print(f"medium {family}-{seed} d={d:.2f} solved={res.solved} ticks={res.inputs.size} "
              f"t={res.seconds:.2f}s {res.reason}", flush=True)

    shared_ok: list[str] = []
    shared_fail: list[str] = []
    shared_times: list[float] = []
    if args.shared is not None:
        for path in sorted(args.shared.iterdir()):
            t0 = time.perf_counter()
            res = solve_map(path.read_bytes(), budget_s=args.shared_budget_s, source=path.name)
            if "no exit" in res.reason:
                print(f"shared {path.name}: no exit, skipped")
                continue
            ticks += res.ticks_searched
            seconds += res.seconds
            (shared_ok if res.solved else shared_fail).append(path.name)
            if res.solved:
                shared_times.append(time.perf_counter() - t0)
            print(f"shared {path.name} solved={res.solved} ticks={res.inputs.size} "
                  f"t={res.seconds:.2f}s {res.reason}", flush=True)

    print(f"medium_levels: {len(solved)}")
    print(f"medium_success_rate: {np.mean(solved):.3f}")
    print(f"medium_mean_seconds: {np.mean(times):.2f}")
    print(f"medium_max_seconds: {np.max(times):.2f}")
    if args.shared is not None:
        print(f"shared_maps_with_exit: {len(shared_ok) + len(shared_fail)}")
        print(f"shared_solved: {len(shared_ok)}")
        print(f"shared_max_seconds_solved: {max(shared_times, default=0.0):.2f}")
        print(f"shared_unsolved: {','.join(shared_fail) or 'none'}")
    print(f"ticks_searched_per_s: {ticks / max(seconds, 1e-9):.0f}")


if __name__ == "__main__":
    main()
