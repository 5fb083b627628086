"""Tile shapes and the static level geometry built from them.

Each tile id maps to half-tile grid edges (used by thwumps and drones to test for walls),
oriented orthogonal half-tile segments, and at most one diagonal or quarter-circle segment.
Ids 34 and above carry no geometry at all, as in the reference.
"""

from __future__ import annotations

import math

from .constants import GRID_H, GRID_W

N_TILE_IDS = 38
FIRST_EMPTY_ID = 34  # ids >= this are glitched/unknown and produce nothing

# 12 flags per tile id: 6 horizontal half edges (rows top/middle/bottom, left then right half),
# then 6 vertical half edges (columns left/middle/right, top then bottom half).
_EDGES = (
    "000000000000 110011110011 111100100010 010001001111 001111010001 100010111100 "
    "110110110110 111001100111 011011011011 100111111001 110011110011 110011110011 "
    "110011110011 110011110011 110110110110 111001100111 011011011011 100111111001 "
    "111100100010 111100100010 001111010001 001111010001 110011110011 110011110011 "
    "110011110011 110011110011 100010111100 010001001111 010001001111 100010111100 "
    "110011110011 110011110011 110011110011 110011110011 110000000000 000000000011 "
    "000011000000 000000110000"
).split()

# Orthogonal segment orientation per half edge, same order as _EDGES:
# '-' outward normal points left/up, '+' right/down, '.' no segment.
_ORTHO = (
    "............ --..++--..++ --++..-...+. .-...+..--++ ..--++.-...+ -...+.--++.. "
    "--....--.... --........++ ....++....++ ....++--.... --....--.... --........++ "
    "....++....++ ....++--.... --....--.... --........++ ....++....++ ....++--.... "
    "--....-..... --........+. ....++.....+ ....++.-.... --....--..+. --....-...++ "
    "....++.-..++ ....++--...+ -.....--.... .-........++ .....+....++ ....+.--.... "
    "--..+.--.... --...+....++ .-..++....++ -...++--.... --.......... ..........++ "
    "....++...... ......--...."
).split()

# Diagonal segment endpoints, in pixels relative to the tile's top-left corner.
DIAGONALS = {
    6: (0, 24, 24, 0), 7: (0, 0, 24, 24), 8: (24, 0, 0, 24), 9: (24, 24, 0, 0),
    18: (0, 12, 24, 0), 19: (0, 0, 24, 12), 20: (24, 12, 0, 24), 21: (24, 24, 0, 12),
    22: (0, 24, 24, 12), 23: (0, 12, 24, 24), 24: (24, 0, 0, 12), 25: (24, 12, 0, 0),
    26: (0, 24, 12, 0), 27: (12, 0, 24, 24), 28: (24, 0, 12, 24), 29: (12, 24, 0, 0),
    30: (12, 24, 24, 0), 31: (0, 0, 12, 24), 32: (12, 0, 0, 24), 33: (24, 24, 12, 0),
}

# Quarter circles: (centre x, centre y, quadrant x, quadrant y, convex).
ARCS = {
    10: (0, 0, 1, 1, True), 11: (24, 0, -1, 1, True),
    12: (24, 24, -1, -1, True), 13: (0, 24, 1, -1, True),
    14: (24, 24, -1, -1, False), 15: (0, 24, 1, -1, False),
    16: (0, 0, 1, 1, False), 17: (24, 0, -1, 1, False),
}

TILE_EDGES: tuple[tuple[int, ...], ...] = tuple(tuple(int(c) for c in s) for s in _EDGES)
TILE_ORTHO: tuple[tuple[int, ...], ...] = tuple(
    tuple({"-": -1, "+": 1, ".": 0}[c] for c in s) for s in _ORTHO
)
assert len(TILE_EDGES) == N_TILE_IDS and len(TILE_ORTHO) == N_TILE_IDS

LINEAR = 0
ARC = 1
SEG_COLS = 16
ARC_RADIUS = 24


def make_linear(x1: float, y1: float, x2: float, y2: float, oriented: bool = True) -> tuple:
    """A linear segment as a flat tuple.

    Layout: (LINEAR, x1, y1, x2, y2, px, py, lensq, oriented, minx, miny, maxx, maxy,
    seg_len, nx, ny). The unit direction is precomputed exactly as the sweep test computes it.
    """
    px = x2 - x1
    py = y2 - y1
    lensq = px**2 + py**2
    if lensq == 0:
        lensq = 1e-9
    seg_len = math.sqrt(px**2 + py**2)
    nx = px / seg_len if seg_len else 0.0
    ny = py / seg_len if seg_len else 0.0
    return (
        LINEAR, x1, y1, x2, y2, px, py, lensq, oriented,
        min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2), seg_len, nx, ny,
    )


def full_tile_grid(inner: list[int] | bytes) -> list[list[int]]:
    """Tile ids as grid[x][y] over 44x25 cells, with the solid border ring added.

    ``inner`` holds 42x23 ids with x varying fastest, as stored in map data.
    """
    grid = [[1] * GRID_H for _ in range(GRID_W)]
    for y in range(23):
        for x in range(42):
            grid[x + 1][y + 1] = inner[x + 42 * y]
    return grid
