"""Named, versioned evaluation suites, generated on demand from held-out seeds.

A suite is (version, difficulty band, seed range); its levels are regenerated
deterministically, never stored. Suite seeds start at 1_000_000, far above the corpus seeds
(``make-corpus`` refuses seeds there), so evaluation levels are never trained on. Bump
``SUITE_VERSION`` whenever the generator or the seed ranges change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from torchrl_bc.sim import Simulator
from torchrl_bc.sim.constants import MAX_TICKS

from .generator import FAMILIES, GENERATOR_VERSION, Level, generate_level

SUITE_VERSION = f"1.g{GENERATOR_VERSION}"
HELD_OUT_SEED_START = 1_000_000


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    band: str
    first_seed: int
    per_family: int
    families: tuple[str, ...] = FAMILIES

    @property
    def seeds(self) -> list[int]:
        n = self.per_family * len(self.families)
        return list(range(self.first_seed, self.first_seed + n))


SUITES: dict[str, SuiteSpec] = {
    "simple": SuiteSpec("simple", "simple", HELD_OUT_SEED_START, 3),
    "medium": SuiteSpec("medium", "medium", HELD_OUT_SEED_START + 10_000, 3),
    "hard": SuiteSpec("hard", "hard", HELD_OUT_SEED_START + 20_000, 3),
}


@cache
def _load(name: str, verify: bool) -> tuple[Level, ...]:
    spec = SUITES[name]
    out = []
    for i, seed in enumerate(spec.seeds):
        family = spec.families[i % len(spec.families)]
        out.append(generate_level(seed, family, band=spec.band, verify=verify))
    return tuple(out)


def load_suite(name: str, *, verify: bool = True) -> list[Level]:
    """Levels of a named suite. ``verify=True`` (the real suite) proves each level solvable
    with the planner, which takes a while once per process; ``verify=False`` returns the
    unverified first candidates, for quick checks only."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {sorted(SUITES)}")
    return list(_load(name, verify))


Policy = Callable[[Simulator], int]


def rollout(level: Level, policy: Policy, max_ticks: int = 5000) -> bool:
    """Run ``policy(sim) -> input byte`` (0..7) on a fresh simulator; True on a win."""
    sim = Simulator(level.map_data, source=level.level_id)
    for _ in range(min(max_ticks, MAX_TICKS)):
        sim.tick_input(int(policy(sim)))
        if sim.done:
            break
    return bool(sim.ninja.state == 8)


def evaluate_policy(levels: list[Level], policy: Policy | Callable[[Level], Policy],
                    max_ticks: int = 5000, per_level: bool = False) -> dict[str, float]:
    """Success rate per family plus ``"all"``. With ``per_level`` the callable is a factory
    called once per level (for stateful policies, e.g. recurrent ones or replay players)."""
    wins: dict[str, list[bool]] = defaultdict(list)
    for level in levels:
        pol = policy(level) if per_level else policy
        won = rollout(level, pol, max_ticks)  # type: ignore[arg-type]
        wins[level.family].append(won)
        wins["all"].append(won)
    return {k: float(np.mean(v)) for k, v in sorted(wins.items())}
