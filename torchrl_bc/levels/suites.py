"""Named, versioned evaluation suites, generated from held-out seeds.

A suite is (version, families, difficulty bands, seed range); its levels are regenerated
deterministically, and every one is proven solvable by the planner before it is used. Suite
seeds start at 1_000_000, far above the corpus seeds (``make-corpus`` refuses seeds there), so
evaluation levels are never trained on. Bump ``SUITE_VERSION`` whenever the generator or the
seed ranges change.

``generalist`` is the suite that looks like what people build: mines, drones, thwumps, locked
doors with several switches, exploration mazes, long multi-storey levels and precise jumps over
mines, each at three difficulties, plus the closets, corridors and gaps that make up the easy
end of any human collection. Generating it takes a minute or two, so suites are cached on disk
under a key that covers the generator and planner sources, and every cached solution is
re-simulated to a win when loaded (a stale or corrupt cache is regenerated, never trusted).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

from torchrl_bc.sim import SIM_VERSION, Simulator
from torchrl_bc.sim.constants import MAX_TICKS

from .generator import FAMILIES, GENERATOR_VERSION, SUITE_FAMILIES, GeneratedLevel, generate_level

SUITE_VERSION = f"2.g{GENERATOR_VERSION}"
HELD_OUT_SEED_START = 1_000_000


@dataclass(frozen=True)
class SuiteSpec:
    """``per_family`` levels of each family, in ``band`` or, when ``bands`` is given, in each
    of those bands (seeds consecutive from ``first_seed``)."""

    name: str
    band: str
    first_seed: int
    per_family: int
    families: tuple[str, ...] = FAMILIES
    bands: tuple[str, ...] = ()

    def plan(self) -> list[tuple[int, str, str]]:
        """(seed, family, band) of every level, in suite order."""
        out = []
        seed = self.first_seed
        for band in self.bands or (self.band,):
            for _ in range(self.per_family):
                for family in self.families:
                    out.append((seed, family, band))
                    seed += 1
        return out

    @property
    def seeds(self) -> list[int]:
        return [s for s, _, _ in self.plan()]


SUITES: dict[str, SuiteSpec] = {
    "simple": SuiteSpec("simple", "simple", HELD_OUT_SEED_START, 3),
    "medium": SuiteSpec("medium", "medium", HELD_OUT_SEED_START + 10_000, 3),
    "hard": SuiteSpec("hard", "hard", HELD_OUT_SEED_START + 20_000, 3),
    "generalist": SuiteSpec("generalist", "", HELD_OUT_SEED_START + 30_000, 2,
                            (*("tiny_room",) * 5, "corridor", "gaps", "slopes", "mines",
                             *(f for f in SUITE_FAMILIES if f != "tiny_room")),
                            ("simple", "medium", "hard")),
}
#: Why ``tiny_room`` appears five times in ``generalist``: a quarter of the shared human levels
#: are "very simple" closets that random play wins half the time; weighting the closets the
#: same way makes random sticky play about as (un)successful on the suite as on the human
#: levels (scripts/bench_suite.py), so suite and human success rates mean similar things.
#: Cache root; ``TORCHRL_BC_SUITE_CACHE=""`` disables caching.
CACHE_ENV = "TORCHRL_BC_SUITE_CACHE"


def _source_key(spec: SuiteSpec) -> str:
    """Hash of everything a suite's bytes depend on: its spec, the versions, and the sources
    of the generator, the map writer and the planner."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256(repr((SUITE_VERSION, SIM_VERSION, spec)).encode())
    for name in ("generator.py", "mapwriter.py", "planner.py", "distance.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _cache_dir() -> Path | None:
    env = os.environ.get(CACHE_ENV)
    if env == "":
        return None
    return Path(env) if env else Path.home() / ".cache" / "torchrl_bc" / "suites"


def _wins(level: GeneratedLevel) -> bool:
    trace = Simulator(level.map_data, source=level.level_id).run_inputs(level.solution)
    return level.solution.size > 0 and trace.win_frame == level.solution.size


def _read_cache(path: Path, plan: list[tuple[int, str, str]]) -> list[GeneratedLevel] | None:
    """The cached levels, or None when the file is missing, malformed or any solution no
    longer wins (then the suite is regenerated)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            maps, offs = z["maps"], z["map_offsets"]
            sols, soffs = z["solutions"], z["solution_offsets"]
            attempts, difficulty = z["attempts"], z["difficulty"]
    except (OSError, KeyError, ValueError):
        return None
    if not len(attempts) == len(difficulty) == len(plan) == len(offs) - 1 == len(soffs) - 1:
        return None
    out = []
    for i, (seed, family, band) in enumerate(plan):
        level = GeneratedLevel(f"{family}-{band}-{seed}", family, seed, float(difficulty[i]),
                      int(attempts[i]),
                      maps[offs[i]:offs[i + 1]].tobytes(), sols[soffs[i]:soffs[i + 1]].copy())
        if not _wins(level):
            return None
        out.append(level)
    return out


def _write_cache(path: Path, levels: list[GeneratedLevel]) -> None:
    from torchrl_bc.io import atomic_write_bytes

    maps = [np.frombuffer(lv.map_data, np.uint8) for lv in levels]
    sols = [lv.solution.astype(np.uint8) for lv in levels]
    buf = io.BytesIO()
    np.savez(buf, maps=np.concatenate(maps),
             map_offsets=np.cumsum([0, *map(len, maps)]),
             solutions=np.concatenate(sols), solution_offsets=np.cumsum([0, *map(len, sols)]),
             attempts=np.array([lv.attempt for lv in levels], np.int64),
             difficulty=np.array([lv.difficulty for lv in levels], np.float64))
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:  # a read-only home only costs the regeneration next time
        pass


@cache
def _load(name: str, verify: bool) -> tuple[GeneratedLevel, ...]:
    spec = SUITES[name]
    plan = spec.plan()
    root = _cache_dir() if verify and spec.bands else None
    path = root / f"{name}-{_source_key(spec)}.npz" if root else None
    if path is not None and path.is_file():
        cached = _read_cache(path, plan)
        if cached is not None:
            return tuple(cached)
    out = []
    for seed, family, band in plan:
        level = generate_level(seed, family, band=band, verify=verify)
        if spec.bands:  # several bands: name the band in the level id
            level = replace(level, level_id=f"{family}-{band}-{seed}")
        out.append(level)
    if path is not None:
        _write_cache(path, out)
    return tuple(out)


def load_suite(name: str, *, verify: bool = True) -> list[GeneratedLevel]:
    """Levels of a named suite. ``verify=True`` (the real suite) proves each level solvable
    with the planner, which takes a while once per process (the multi-band suites are cached
    on disk); ``verify=False`` returns the unverified first candidates, for quick checks."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {sorted(SUITES)}")
    return list(_load(name, verify))


Policy = Callable[[Simulator], int]


def rollout(level: GeneratedLevel, policy: Policy, max_ticks: int = 5000) -> bool:
    """Run ``policy(sim) -> input byte`` (0..7) on a fresh simulator; True on a win."""
    sim = Simulator(level.map_data, source=level.level_id)
    for _ in range(min(max_ticks, MAX_TICKS)):
        sim.tick_input(int(policy(sim)))
        if sim.done:
            break
    return bool(sim.ninja.state == 8)


def evaluate_policy(levels: list[GeneratedLevel],
                    policy: Policy | Callable[[GeneratedLevel], Policy],
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
