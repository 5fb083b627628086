"""Generator and map writer: valid, parseable, round-tripping, deterministic map data."""

from __future__ import annotations

import numpy as np
import pytest

from torchrl_bc.levels.generator import (
    CORPUS_FAMILIES,
    FAMILIES,
    SUITE_FAMILIES,
    build_candidate,
    generate_level,
)
from torchrl_bc.levels.mapwriter import LevelMap, tile_center
from torchrl_bc.levels.suites import SUITES, load_suite
from torchrl_bc.sim import Simulator, parse_map


@pytest.mark.parametrize("family", CORPUS_FAMILIES)
def test_candidate_parses_and_round_trips(family: str) -> None:
    data = build_candidate(3, family, 0.5)
    m = parse_map(data, family)
    assert m.raw[1156] == 1  # one exit door
    assert len(m.tiles) == 42 * 23
    types = [e.type for e in m.entities]
    assert types.count(3) == 1 and types[0] == 0
    assert LevelMap.from_map(data).to_bytes() == data
    sim = Simulator(data, source=family)
    assert sum(e.kind == 4 for e in sim.entities) == 1
    assert not sim.done


@pytest.mark.parametrize("family", CORPUS_FAMILIES)
def test_generator_is_deterministic_by_seed(family: str) -> None:
    a = [build_candidate(s, family, 0.6) for s in range(4)]
    b = [build_candidate(s, family, 0.6) for s in range(4)]
    assert a == b
    assert len(set(a)) > 1  # seeds actually vary the level


def test_locked_door_records_parse_with_their_switch() -> None:
    lm = LevelMap()
    lm.tiles[:, 10] = 0
    lm.spawn = tile_center(0, 10)
    lm.exits.append((*tile_center(40, 10), *tile_center(20, 10)))
    data = build_candidate(5, "locked_doors", 0.9)
    doors = [e for e in parse_map(data).entities if e.type == 6]
    assert doors and all(e.switch_x and e.switch_y for e in doors)
    assert LevelMap.from_map(lm.to_bytes()).to_bytes() == lm.to_bytes()


def test_corpus_families_keep_the_default_cycle_and_no_suite_family() -> None:
    assert CORPUS_FAMILIES[:len(FAMILIES)] == FAMILIES
    assert not set(CORPUS_FAMILIES) & set(SUITE_FAMILIES)


def test_platforms_are_one_tile_islands_over_mines_and_solvable() -> None:
    """The spawn, switch and door each stand on a lone solid tile above a floor of mines, and
    the planner wins the level by jumping between them."""
    from torchrl_bc.sim import entities as E

    for seed, band in ((1, "simple"), (2, "hard")):
        lv = generate_level(seed, "platforms", band=band)
        lm = LevelMap.from_map(lv.map_data)
        m = parse_map(lv.map_data)
        mines = [e for e in m.entities if e.type in E.MINES]
        assert len(mines) >= 40
        floor_y = max(e.y for e in mines)
        for x, y in [lm.spawn, *[(a, b) for a, b, *_ in lm.exits],
                     *[(c, d) for *_, c, d in lm.exits]]:
            tx, ty = x // 4 - 1, y // 4 - 1  # units (6 px) -> playable tile
            assert lm.tiles[tx, ty + 1] != 0 and lm.tiles[tx - 1, ty + 1] == 0 \
                and lm.tiles[tx + 1, ty + 1] == 0, "not on a one-tile platform"
            assert y < floor_y - 12, "not above the mines"
        trace = Simulator(lv.map_data).run_inputs(lv.solution)
        assert trace.win_frame == lv.solution.size


def test_generate_level_is_solved_and_reproducible() -> None:
    a = generate_level(11, "corridor", band="simple")
    b = generate_level(11, "corridor", band="simple")
    assert a.map_data == b.map_data and np.array_equal(a.solution, b.solution)
    trace = Simulator(a.map_data).run_inputs(a.solution)
    assert trace.win_frame == a.solution.size


def test_suites_are_held_out_and_cover_families() -> None:
    seeds = {n: set(s.seeds) for n, s in SUITES.items()}
    assert min(min(s) for s in seeds.values()) >= 1_000_000
    assert not (seeds["simple"] & seeds["medium"]) and not (seeds["medium"] & seeds["hard"])
    levels = load_suite("simple", verify=False)
    assert {lv.family for lv in levels} == set(FAMILIES)
    assert [lv.map_data for lv in levels] == [lv.map_data for lv in
                                              load_suite("simple", verify=False)]


@pytest.mark.parametrize("family", CORPUS_FAMILIES)
def test_every_difficulty_builds(family: str) -> None:
    for d in (0.0, 0.5, 1.0):
        for seed in range(15):
            Simulator(build_candidate(seed, family, d), source=f"{family}-{seed}")


def test_evaluate_policy_reports_per_family() -> None:
    from torchrl_bc.levels.suites import evaluate_policy

    level = generate_level(2, "corridor", band="simple")

    def player(lv):  # replays the planner's solution: wins every time
        it = iter(lv.solution.tolist())
        return lambda sim: next(it, 0)

    assert evaluate_policy([level], player, per_level=True) == {"all": 1.0, "corridor": 1.0}
    assert evaluate_policy([level], lambda sim: 0, max_ticks=50) == {"all": 0.0, "corridor": 0.0}


@pytest.mark.parametrize("family", ["room_blocks", "hill", "pit_mines"])
def test_human_like_families_are_solvable_with_their_features(family: str) -> None:
    """Blocks in a room, a ramped mound, and pits lined with mines: each level has what its
    family is for, and the planner's solution wins it."""
    from torchrl_bc.levels.generator import DOWN45, UP45
    from torchrl_bc.sim import entities as E

    for seed, band in ((1, "simple"), (2, "hard")):
        lv = generate_level(seed, family, band=band)
        lm = LevelMap.from_map(lv.map_data)
        t = lm.tiles
        if family == "room_blocks":  # solid cells with open space above and below
            inner = (t[:, 1:-1] != 0) & (t[:, :-2] == 0) & (t[:, 2:] == 0)
            assert inner.any()
        elif family == "hill":
            assert (t == UP45).any() and (t == DOWN45).any()
        else:
            mines = [e for e in parse_map(lv.map_data).entities if e.type in E.MINES]
            floor_row = lm.spawn[1] // 4 - 1
            assert any(e.y // 4 - 1 > floor_row for e in mines), "no mine below the floor"
        trace = Simulator(lv.map_data).run_inputs(lv.solution)
        assert trace.win_frame == lv.solution.size
