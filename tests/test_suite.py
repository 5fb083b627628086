"""The generated evaluation suite: deterministic by seed, every level proven solvable, cached
without trusting the cache, and labelled by family for per-family success."""

from __future__ import annotations

import numpy as np
import pytest

import torchrl_bc.levels.suites as S
from torchrl_bc.levels.generator import (
    SUITE_FAMILIES,
    THWUMP,
    ZAP_DRONE,
    _mirror_entity,
    build_candidate,
    generate_level,
)
from torchrl_bc.levels.mapwriter import LevelMap
from torchrl_bc.sim import Simulator
from torchrl_bc.sim.level import Level
from torchrl_bc.train.evaluate import Rollout, discover_levels, family_success


def _wins(map_data: bytes, inputs: np.ndarray) -> bool:
    return Simulator(map_data).run_inputs(inputs).win_frame == inputs.size > 0


@pytest.mark.parametrize("family", SUITE_FAMILIES)
def test_candidates_are_a_pure_function_of_seed(family: str) -> None:
    for d in (0.1, 0.9):
        a = build_candidate(1_234_567, family, d)
        assert a == build_candidate(1_234_567, family, d)
        assert a != build_candidate(1_234_568, family, d)
        lm = LevelMap.from_map(a)
        assert len(lm.exits) == 1 and lm.to_bytes() == a


@pytest.mark.parametrize("family", SUITE_FAMILIES)
def test_each_suite_family_yields_a_level_the_planner_solves(family: str) -> None:
    a = generate_level(2_000_001, family, difficulty=0.1)
    assert a.map_data == build_candidate(a.seed, family, a.difficulty, a.attempt)
    assert _wins(a.map_data, a.solution)


def test_families_hold_the_entities_they_are_named_for() -> None:
    kinds = {f: {e[0] for s in range(4) for e in LevelMap.from_map(
        build_candidate(2_000_000 + s, f, 0.8)).entities} for f in ("drones", "thwumps")}
    assert ZAP_DRONE in kinds["drones"] and THWUMP in kinds["thwumps"]
    doors = LevelMap.from_map(build_candidate(2_000_000, "switches", 0.9)).doors
    assert len(doors) >= 3  # several locked doors, each with its own switch
    assert len({(d.switch_x, d.switch_y) for d in doors}) == len(doors)


def test_mirroring_reflects_directed_entities() -> None:
    assert _mirror_entity(ZAP_DRONE, 10, 5, 0, 0) == (ZAP_DRONE, 10, 5, 4, 1)  # right -> left
    assert _mirror_entity(ZAP_DRONE, 10, 5, 2, 3) == (ZAP_DRONE, 10, 5, 2, 2)  # down stays
    assert _mirror_entity(THWUMP, 10, 5, 4, 0) == (THWUMP, 10, 5, 0, 0)
    assert _mirror_entity(1, 10, 5, 0, 0) == (1, 10, 5, 0, 0)  # mines have no direction


def test_generalist_plan_covers_every_family_and_band_on_held_out_seeds() -> None:
    spec = S.SUITES["generalist"]
    plan = spec.plan()
    assert {(f, b) for _, f, b in plan} == {(f, b) for f in spec.families for b in spec.bands}
    assert set(SUITE_FAMILIES) <= set(spec.families)
    seeds = [s for s, _, _ in plan]
    assert len(set(seeds)) == len(seeds) and min(seeds) >= S.HELD_OUT_SEED_START
    others = {s for name, sp in S.SUITES.items() if name != "generalist" for s in sp.seeds}
    assert not others & set(seeds)


@pytest.fixture
def small_suite(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A two-level multi-band suite with its cache in tmp_path."""
    spec = S.SuiteSpec("tiny_test", "", S.HELD_OUT_SEED_START + 90_000, 1, ("corridor",),
                       ("simple", "hard"))
    monkeypatch.setitem(S.SUITES, "tiny_test", spec)
    monkeypatch.setenv(S.CACHE_ENV, str(tmp_path))
    S._load.cache_clear()
    yield spec
    S._load.cache_clear()


def test_suite_cache_is_used_and_never_trusted(small_suite, monkeypatch, tmp_path) -> None:
    first = S.load_suite("tiny_test")
    assert [lv.level_id for lv in first] == [f"corridor-{b}-{s}" for s, _, b in
                                             small_suite.plan()]
    assert all(_wins(lv.map_data, lv.solution) for lv in first)
    (path,) = tmp_path.glob("tiny_test-*.npz")
    S._load.cache_clear()
    calls: list[int] = []
    real = S.generate_level
    monkeypatch.setattr(S, "generate_level", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = S.load_suite("tiny_test")
    assert calls == []  # served from the cache
    assert [(lv.map_data, lv.solution.tobytes(), lv.difficulty) for lv in again] == \
        [(lv.map_data, lv.solution.tobytes(), lv.difficulty) for lv in first]
    # a cache whose solutions no longer win is regenerated, not believed
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["solutions"] = np.zeros_like(arrays["solutions"])
    np.savez(path, **arrays)
    S._load.cache_clear()
    fresh = S.load_suite("tiny_test")
    assert len(calls) == 2 and [lv.map_data for lv in fresh] == [lv.map_data for lv in first]


def test_discover_levels_reads_suite_prefix_with_families(small_suite) -> None:
    levels = discover_levels("suite:tiny_test")
    assert [lv.family for lv in levels] == ["corridor", "corridor"]
    assert all(lv.demo_ticks > 0 for lv in levels)
    with pytest.raises(FileNotFoundError, match="no such suite"):
        discover_levels("suite:nope")


def test_family_success_counts_per_family() -> None:
    levels = [Level("a", b"", 0, "maze"), Level("b", b"", 0, "maze"),
              Level("c", b"", 0, "drones"), Level("d", b"", 0)]
    res = [Rollout(n, won, False, 10, 0, 100) for n, won in
           (("a", True), ("b", False), ("c", False), ("d", True))]
    assert family_success(levels, res) == {"drones": (0, 1), "maze": (1, 2)}


@pytest.mark.slow
def test_whole_generalist_suite_is_solvable(monkeypatch) -> None:
    """Every level of the real suite carries a planner solution that wins on re-simulation."""
    S._load.cache_clear()
    levels = S.load_suite("generalist")
    assert len(levels) == len(S.SUITES["generalist"].plan())
    assert len({lv.content_hash for lv in levels}) == len(levels)
    for lv in levels:
        assert _wins(lv.map_data, lv.solution), lv.level_id
