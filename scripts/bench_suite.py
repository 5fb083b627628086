"""Calibrate generated suites against the human levels with a random sticky-input player.

    python scripts/bench_suite.py [--suite generalist ...] [--human ../shared/data/replays]
        [--episodes 8] [--tick-factor 2] [--max-ticks 1200] [--seed 0]

Both sides use the same cap rule as evaluation (``tick-factor`` x the shortest winning demo,
at most ``max-ticks``; a suite level's demo is its planner solution) and the same player
(:mod:`torchrl_bc.levels.random_play`). A suite is calibrated when random play does about as
badly on it as on the human levels. Also times loading each suite (generation with the planner
on a cold cache; set TORCHRL_BC_SUITE_CACHE="" to force it). Ends with ``name: value`` lines.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from torchrl_bc.levels.random_play import random_wins  # noqa: E402
from torchrl_bc.levels.suites import SUITES, load_suite  # noqa: E402
from torchrl_bc.sim.level import DEFAULT_MAX_TICKS, Level  # noqa: E402
from torchrl_bc.train.crossval import scan_human_levels  # noqa: E402

HUMAN = REPO.parent / "shared" / "data" / "replays"


def rate(wins: list[bool]) -> float:
    return sum(wins) / max(len(wins), 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", nargs="+", default=["generalist"], choices=sorted(SUITES))
    p.add_argument("--human", type=Path, default=HUMAN, help="human replay directory")
    p.add_argument("--episodes", type=int, default=8, help="random episodes per level")
    p.add_argument("--tick-factor", type=float, default=2.0)
    p.add_argument("--max-ticks", type=int, default=DEFAULT_MAX_TICKS)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    figures: dict[str, float] = {}

    if a.human.is_dir():
        scan = scan_human_levels([a.human])
        for f, why in scan.skipped:
            print(f"human: skipped {Path(f).name}: {why}")
        by_cat: dict[str, list[bool]] = defaultdict(list)
        caps = []
        for lv in scan.levels:
            cap = Level(lv.name, lv.map_data, lv.demo_ticks).cap(a.tick_factor, a.max_ticks)
            caps.append(cap)
            m = re.search(r"_(?:train|test)_(.+)_\d+$", lv.name)
            wins = random_wins(lv.map_data, cap, a.episodes, a.seed, lv.name)
            by_cat[m.group(1) if m else "other"].extend(wins)
            by_cat["all"].extend(wins)
        for cat, wins in sorted(by_cat.items()):
            print(f"human {cat:<14} random {rate(wins):.3f} ({sum(wins)}/{len(wins)})")
        figures["human_levels"] = len(scan.levels)
        figures["human_median_cap_ticks"] = sorted(caps)[len(caps) // 2]
        figures["random_success_human"] = rate(by_cat["all"])
    else:
        print(f"human levels not found at {a.human}; skipping that side", file=sys.stderr)

    for name in a.suite:
        t0 = time.perf_counter()
        levels = load_suite(name)
        figures[f"suite_{name}_load_s"] = time.perf_counter() - t0
        by_fam: dict[str, list[bool]] = defaultdict(list)
        caps = []
        for lv in levels:
            ev = Level(lv.level_id, lv.map_data, int(lv.solution.size), lv.family)
            cap = ev.cap(a.tick_factor, a.max_ticks)
            caps.append(cap)
            wins = random_wins(lv.map_data, cap, a.episodes, a.seed, lv.level_id)
            band = lv.level_id.split("-")[1] if lv.level_id.count("-") == 2 else "-"
            by_fam[lv.family].extend(wins)
            by_fam[f"band:{band}"].extend(wins)
            by_fam["all"].extend(wins)
        for fam, wins in sorted(by_fam.items()):
            print(f"suite {name} {fam:<14} random {rate(wins):.3f} ({sum(wins)}/{len(wins)})")
        figures[f"suite_{name}_levels"] = len(levels)
        figures[f"suite_{name}_median_cap_ticks"] = sorted(caps)[len(caps) // 2]
        figures[f"random_success_{name}"] = rate(by_fam["all"])

    for k, v in figures.items():
        print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
