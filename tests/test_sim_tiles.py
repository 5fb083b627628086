"""Every tile shape: the collision geometry encloses exactly the solid region of the tile."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mapkit import build_map, floor_row

from torchrl_bc.sim import MapFormatError, Simulator, kernel, parse_map
from torchrl_bc.sim.build import build_level
from torchrl_bc.sim.tiles import FIRST_EMPTY_ID, N_TILE_IDS

# Solid region of each tile id in tile-local pixels (0..24, y grows downwards), written from
# the shapes' descriptions, independently of the segment tables.
SHAPES = {
    0: lambda x, y: False,
    1: lambda x, y: True,
    2: lambda x, y: y < 12,
    3: lambda x, y: x > 12,
    4: lambda x, y: y > 12,
    5: lambda x, y: x < 12,
    6: lambda x, y: x + y < 24,
    7: lambda x, y: y < x,
    8: lambda x, y: x + y > 24,
    9: lambda x, y: y > x,
    10: lambda x, y: x**2 + y**2 < 576,
    11: lambda x, y: (x - 24) ** 2 + y**2 < 576,
    12: lambda x, y: (x - 24) ** 2 + (y - 24) ** 2 < 576,
    13: lambda x, y: x**2 + (y - 24) ** 2 < 576,
    14: lambda x, y: (x - 24) ** 2 + (y - 24) ** 2 > 576,
    15: lambda x, y: x**2 + (y - 24) ** 2 > 576,
    16: lambda x, y: x**2 + y**2 > 576,
    17: lambda x, y: (x - 24) ** 2 + y**2 > 576,
    18: lambda x, y: y < 12 - x / 2,
    19: lambda x, y: y < x / 2,
    20: lambda x, y: y > 24 - x / 2,
    21: lambda x, y: y > 12 + x / 2,
    22: lambda x, y: y < 24 - x / 2,
    23: lambda x, y: y < 12 + x / 2,
    24: lambda x, y: y > 12 - x / 2,
    25: lambda x, y: y > x / 2,
    26: lambda x, y: x < 12 - y / 2,
    27: lambda x, y: x > 12 + y / 2,
    28: lambda x, y: x > 24 - y / 2,
    29: lambda x, y: x < y / 2,
    30: lambda x, y: x < 24 - y / 2,
    31: lambda x, y: x > y / 2,
    32: lambda x, y: x > 12 - y / 2,
    33: lambda x, y: x < 12 + y / 2,
}
for _tid in range(FIRST_EMPTY_ID, N_TILE_IDS):
    SHAPES[_tid] = SHAPES[0]


def _near_boundary(tid: int, x: float, y: float) -> bool:
    """Skip sample points within 1 px of where the expected answer changes."""
    f = SHAPES[tid]
    inside = f(x, y)
    return any(
        f(x + dx, y + dy) != inside
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (0.7, 0.7), (-0.7, -0.7),
                       (0.7, -0.7), (-0.7, 0.7))
    )


@pytest.mark.parametrize("tid", range(N_TILE_IDS))
def test_tile_shape_matches_description(tid: int) -> None:
    level = build_level(parse_map(build_map({(20, 11): tid})))  # grid cell (21, 12)
    ox, oy = 21 * 24, 12 * 24
    segs = level.segments
    # this tile's own segments: those whose box lies within the tile
    local = np.array([k for k in range(len(segs))
                      if (segs[k, 0] == 0 and ox - 0.5 <= min(segs[k, 1], segs[k, 3])
                      and max(segs[k, 1], segs[k, 3]) <= ox + 24.5
                      and oy - 0.5 <= min(segs[k, 2], segs[k, 4])
                      and max(segs[k, 2], segs[k, 4]) <= oy + 24.5)
                      or (segs[k, 0] == 1 and ox - 0.5 <= segs[k, 1] <= ox + 24.5
                      and oy - 0.5 <= segs[k, 2] <= oy + 24.5)], dtype=np.int64)
    if tid == 0 or tid >= FIRST_EMPTY_ID:
        assert local.size == 0
        return
    checked = 0
    for i in range(24):
        for j in range(24):
            x, y = i + 0.5, j + 0.5
            if _near_boundary(tid, x, y):
                continue
            side, _, _ = kernel.nearest_point(segs, local, local.size, ox + x, oy + y, 100.0, 2.0)
            assert (side == -1) == SHAPES[tid](x, y), (tid, x, y, side)
            checked += 1
    assert checked > 200


def _drop_on(tid: int) -> Simulator:
    """A ninja spawned above a row of `tid` tiles, then left alone for 120 ticks."""
    tiles = floor_row(14, tid=tid)
    sim = Simulator(build_map(tiles, spawn=(88, 50)))
    for _ in range(120):
        sim.tick(0, 0)
    return sim


@pytest.mark.parametrize("tid,top", [(1, 0), (2, 0), (4, 12), (3, 0), (5, 0)])
def test_ninja_rests_on_flat_tops(tid: int, top: int) -> None:
    sim = _drop_on(tid)
    floor_y = 15 * 24 + top  # inner row 14 is grid row 15
    assert sim.ninja.ypos == pytest.approx(floor_y - 10, abs=1e-6)
    assert not sim.ninja.airborn
    assert sim.ninja.state == 0


@pytest.mark.parametrize("tid", [0, 34, 35, 36, 37])
def test_empty_and_glitched_ids_do_not_collide(tid: int) -> None:
    sim = _drop_on(tid)
    assert sim.ninja.ypos > 16 * 24 or sim.ninja.state in (6, 7)


@pytest.mark.parametrize("tid", [N_TILE_IDS, 40, 255])
def test_ids_without_a_shape_are_refused(tid: int) -> None:
    """Ids >= 38 have no shape to simulate or draw: a MapFormatError naming the cell."""
    with pytest.raises(MapFormatError, match=rf"tile id {tid} at column \d+, row 14"):
        _drop_on(tid)


def test_slope_floor_normal_is_tilted() -> None:
    """Landing on a 45-degree slope (tile 8, solid below x + y = 24) tilts the floor normal."""
    tiles = {(20, 14): 8} | floor_row(15)
    sim = Simulator(build_map(tiles, spawn=(86, 50)))  # above the middle of grid cell (21, 15)
    for _ in range(60):
        sim.tick(0, 0)
        if not sim.ninja.airborn:
            break
    n = sim.ninja
    assert not n.airborn
    assert n.floor_normalized_x == pytest.approx(-math.sqrt(0.5))
    assert n.floor_normalized_y == pytest.approx(-math.sqrt(0.5))
