"""One rule per entity type, on small hand-made levels.

Level: a solid floor whose top is at y = 360 px; the ninja stands with its centre at y = 350.
Map coordinates are in 6-pixel units.
"""

from __future__ import annotations

import pytest
from mapkit import build_map, floor_row

from torchrl_bc.sim import MapFormatError, Simulator

FLOOR = floor_row(14)  # grid row 15, top edge at y = 360
GROUND_Y = 58  # 348 px, ninja height


def sim_with(records, spawn=(20, 58), tiles=None, **kw) -> Simulator:
    return Simulator(build_map(FLOOR | (tiles or {}), spawn=spawn, records=records), **kw)


def run(sim: Simulator, hor: int, jump: int, ticks: int) -> None:
    for _ in range(ticks):
        sim.tick(hor, jump)
        if sim.done:
            return


def of_kind(sim: Simulator, kind: int):
    return [e for e in sim.entities if e.kind == kind]


def test_gold_is_collected_once() -> None:
    sim = sim_with([(2, 30, GROUND_Y, 0, 0)])
    run(sim, 1, 0, 60)
    (gold,) = of_kind(sim, 2)
    assert sim.ninja.gold_collected == 1 and not gold.active


def test_exit_opens_only_after_switch() -> None:
    # exit at x=180 px, switch at x=300 px; the ninja passes the exit first.
    sim = sim_with([(3, 30, GROUND_Y, 0, 0), (4, 50, GROUND_Y, 0, 0)])
    door, switch = sim.by_group[3]
    assert door.kind == 3 and switch.kind == 4 and switch.door is door
    assert all(door not in cell for col in sim.grid for cell in col)
    run(sim, 1, 0, 60)
    assert sim.ninja.xpos > 200 and sim.ninja.state != 8 and not door.switch_hit
    run(sim, 1, 0, 40)
    assert door.switch_hit and not switch.active
    assert any(door in cell for col in sim.grid for cell in col)
    run(sim, -1, 0, 300)
    assert sim.ninja.state == 8


def test_deadly_mine_kills() -> None:
    sim = sim_with([(1, 30, GROUND_Y, 0, 0)])
    run(sim, 1, 0, 100)
    assert sim.ninja.state == 6 and sim.ninja.death_cause == "mine"
    (mine,) = of_kind(sim, 1)
    assert mine.state == 1  # a mine that killed goes back to safe


def test_safe_mine_arms_after_the_ninja_leaves() -> None:
    sim = sim_with([(21, 30, GROUND_Y, 0, 0)])
    (mine,) = of_kind(sim, 21)
    assert mine.state == 1
    seen = set()
    for _ in range(60):
        sim.tick(1, 0)
        seen.add(mine.state)
    assert seen >= {2, 0} and mine.state == 0 and sim.ninja.state != 6
    run(sim, -1, 0, 120)
    assert sim.ninja.state == 6


def _locked_door(solid: bool) -> Simulator:
    # vertical locked door at x = 300 px (orientation 0), its switch far away at x = 600 px.
    return sim_with([(6, 50, GROUND_Y, 0, 0), (7, 100, GROUND_Y, 0, 0)], solid_doors=solid)


def test_closed_door_does_not_block_by_default() -> None:
    sim = _locked_door(solid=False)
    run(sim, 1, 0, 120)
    assert sim.ninja.xpos > 320


def test_solid_doors_block_until_opened() -> None:
    sim = _locked_door(solid=True)
    (door,) = of_kind(sim, 6)
    run(sim, 1, 0, 120)
    assert door.closed and sim.ninja.xpos < 300
    # a door whose switch is on the ninja's side opens and lets it through
    sim = sim_with([(6, 50, GROUND_Y, 0, 0), (7, 30, GROUND_Y, 0, 0)], solid_doors=True)
    (door,) = of_kind(sim, 6)
    run(sim, 1, 0, 120)
    assert not door.closed and not door.active and sim.ninja.xpos > 320


def test_door_edges_follow_door_state() -> None:
    sim = sim_with([(6, 50, GROUND_Y, 0, 0), (7, 30, GROUND_Y, 0, 0),
                    (8, 70, GROUND_Y, 0, 0), (9, 35, GROUND_Y, 0, 0)])
    locked, trap = of_kind(sim, 6)[0], of_kind(sim, 8)[0]
    assert locked.closed and not trap.closed
    edges = [sim.ver_edges[x][y] for x, y in locked.edges]
    run(sim, 1, 0, 65)
    assert not locked.closed and trap.closed
    assert [sim.ver_edges[x][y] for x, y in locked.edges] == [e - 1 for e in edges]


def test_regular_door_closes_after_contact_ends() -> None:
    sim = sim_with([(5, 30, GROUND_Y, 0, 0)])
    (door,) = of_kind(sim, 5)
    opened_at = None
    for t in range(80):
        sim.tick(1, 0)
        if opened_at is None and not door.closed:
            opened_at = t
    assert opened_at is not None and door.closed


def test_launch_pad_throws_upwards() -> None:
    sim = sim_with([(10, 30, 59, 6, 0)])  # orientation 6: normal points up
    best = 0.0
    for _ in range(60):
        sim.tick(1, 0)
        best = min(best, sim.ninja.yspeed)
    assert best < -3.0


def test_boost_pad_adds_speed() -> None:
    sim = sim_with([(24, 40, GROUND_Y, 0, 0)])
    top = 0.0
    for _ in range(90):
        sim.tick(1, 0)
        top = max(top, sim.ninja.xspeed)
    assert top > 4.0  # faster than running allows (3.333)


def test_one_way_platform_holds_from_above_only() -> None:
    # platform facing up (orientation 6) at y = 252 px, ninja spawned above it
    sim = sim_with([(11, 20, 42, 6, 0)], spawn=(20, 30))
    run(sim, 0, 0, 120)
    assert not sim.ninja.airborn and sim.ninja.ypos == pytest.approx(242)
    # from below, a jump passes through
    sim = sim_with([(11, 20, 52, 6, 0)], spawn=(20, GROUND_Y))
    run(sim, 0, 0, 20)  # settle on the floor first
    low = 400.0
    for _ in range(60):
        sim.tick(0, 1)
        low = min(low, sim.ninja.ypos)
    assert low < 312 - 10


def test_zap_drone_patrols_and_kills() -> None:
    sim = sim_with([(14, 60, GROUND_Y, 4, 2)])  # heading left, towards the ninja
    (drone,) = of_kind(sim, 14)
    x0 = drone.xpos
    sim.tick(0, 0)
    assert drone.xpos != x0
    run(sim, 0, 0, 400)
    assert sim.ninja.state == 6


def test_mini_drone_moves_on_half_grid() -> None:
    sim = sim_with([(26, 60, 30, 0, 2)])  # mode 2 keeps going straight
    (drone,) = of_kind(sim, 26)
    x0 = drone.xpos
    for _ in range(5):
        sim.tick(0, 0)
    assert drone.xpos == pytest.approx(x0 + 5 * 1.3)


def test_bounce_block_gives_way_and_springs_back() -> None:
    sim = sim_with([(17, 20, 50, 0, 0)], spawn=(20, 30))  # block at y = 300 px
    (block,) = of_kind(sim, 17)
    deepest = block.ypos
    for _ in range(60):
        sim.tick(0, 0)
        deepest = max(deepest, block.ypos)
    assert deepest > 300.5
    sim2 = sim_with([(17, 20, 50, 0, 0)], spawn=(60, 30))  # no contact: block stays put
    run(sim2, 0, 0, 60)
    assert of_kind(sim2, 17)[0].ypos == 300


def test_thwump_charges_when_ninja_is_in_line() -> None:
    # thwump above the floor, falling direction (orientation 2); ninja walks under it
    sim = sim_with([(20, 40, 30, 2, 0)])
    (thw,) = of_kind(sim, 20)
    y0 = thw.ypos
    states = set()
    for _ in range(150):
        sim.tick(1, 0)
        states.add(thw.state)
        if sim.done:
            break
    assert 1 in states and (thw.ypos != y0 or sim.ninja.state == 6)


def test_shove_thwump_is_pushed_then_returns() -> None:
    sim = sim_with([(28, 40, 56, 0, 0)])
    (shove,) = of_kind(sim, 28)
    states = []
    for _ in range(120):
        sim.tick(1, 0)
        states.append(shove.state)
        if sim.done:
            break
    assert 1 in states


def test_death_ball_homes_in() -> None:
    sim = sim_with([(25, 60, 40, 0, 0)])
    (ball,) = of_kind(sim, 25)
    d0 = abs(ball.xpos - sim.ninja.xpos) + abs(ball.ypos - sim.ninja.ypos)
    run(sim, 0, 0, 60)
    d1 = abs(ball.xpos - sim.ninja.xpos) + abs(ball.ypos - sim.ninja.ypos)
    assert d1 < d0


@pytest.mark.parametrize("etype", [0, 7, 9, 12, 15, 16, 23, 27, 29, 40])
def test_unwired_types_are_skipped(etype: int) -> None:
    sim = sim_with([(etype, 30, GROUND_Y, 0, 0), (2, 40, GROUND_Y, 0, 0)])
    assert [e.kind for e in sim.entities] == [2]


def test_bad_entity_data_is_a_map_error() -> None:
    with pytest.raises(MapFormatError, match="orientation"):
        sim_with([(10, 30, GROUND_Y, 9, 0)])
    with pytest.raises(MapFormatError, match="switch"):
        Simulator(build_map(FLOOR, records=[(3, 30, GROUND_Y, 0, 0)]))
    with pytest.raises(MapFormatError, match="shorter"):
        Simulator(b"\x00" * 1000)
