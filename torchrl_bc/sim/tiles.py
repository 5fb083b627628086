"""Tile shapes and the static level geometry built from them.

Each tile id maps to half-tile grid edges (used by thwumps and drones to test for walls),
oriented orthogonal half-tile segments, and at most one diagonal or quarter-circle segment.
Ids 34 and above carry no geometry at all, as in the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .constants import GRID_H, GRID_W, TILE

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


def make_arc(cx: float, cy: float, hor: int, ver: int, convex: bool) -> tuple:
    """A quarter-circle segment as a flat tuple.

    Layout: (ARC, cx, cy, hor, ver, convex, phx, phy, pvx, pvy, minx, miny, maxx, maxy),
    where (phx, phy) and (pvx, pvy) are the arc's horizontal and vertical end points.
    """
    phx, phy = cx + ARC_RADIUS * hor, cy
    pvx, pvy = cx, cy + ARC_RADIUS * ver
    return (
        ARC, cx, cy, hor, ver, convex, phx, phy, pvx, pvy,
        min(cx, phx), min(cy, pvy), max(cx, phx), max(cy, pvy),
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


@dataclass
class LevelGeometry:
    """Static collision data for one level.

    ``cell_segments[x][y]`` is the tuple of tile segments in a 24px cell, in the order the
    reference resolves ties (the cell's own diagonal or arc first, then horizontal, then
    vertical half edges); ``cell_bounds`` is their union box, used to skip whole cells.
    ``hor_edges``/``ver_edges`` count solid half-tile grid edges; doors add to them at run time.
    """

    tiles: list[list[int]]
    cell_segments: list[list[tuple | None]]
    cell_bounds: list[list[tuple | None]]
    hor_edges: list[list[int]]
    ver_edges: list[list[int]]


def _cell_order() -> list[tuple[int, int]]:
    """Order in which the reference visits tiles: the inner tiles column by column, then the
    border ring (top and bottom rows, then left and right columns)."""
    order = [(x + 1, y + 1) for x in range(42) for y in range(23)]
    seen = set(order)
    for x in range(GRID_W):
        for c in ((x, 0), (x, GRID_H - 1)):
            if c not in seen:
                seen.add(c)
                order.append(c)
    for y in range(GRID_H):
        for c in ((0, y), (GRID_W - 1, y)):
            if c not in seen:
                seen.add(c)
                order.append(c)
    return order


CELL_ORDER = _cell_order()


def build_geometry(tiles: list[list[int]]) -> LevelGeometry:
    """Turn a 44x25 tile grid into segments and grid edges."""
    nhx, nhy = 2 * GRID_W + 1, 2 * GRID_H + 1  # 89 x 51 half-edge lattice
    hor_edges = [[1 if y in (0, nhy - 1) else 0 for y in range(nhy)] for _ in range(nhx)]
    ver_edges = [[1 if x in (0, nhx - 1) else 0 for _ in range(nhy)] for x in range(nhx)]
    hor_ortho = [[0] * nhy for _ in range(nhx)]
    ver_ortho = [[0] * nhy for _ in range(nhx)]
    segs: list[list[list[tuple]]] = [[[] for _ in range(GRID_H)] for _ in range(GRID_W)]

    for cx, cy in CELL_ORDER:
        tid = tiles[cx][cy]
        if tid == 0 or tid >= FIRST_EMPTY_ID:
            continue
        edges, ortho = TILE_EDGES[tid], TILE_ORTHO[tid]
        for row in range(3):
            for half in range(2):
                k = 2 * row + half
                hx, hy = 2 * cx + half, 2 * cy + row
                hor_edges[hx][hy] = (hor_edges[hx][hy] + edges[k]) % 2
                hor_ortho[hx][hy] += ortho[k]
        for col in range(3):
            for half in range(2):
                k = 6 + 2 * col + half
                vx, vy = 2 * cx + col, 2 * cy + half
                ver_edges[vx][vy] = (ver_edges[vx][vy] + edges[k]) % 2
                ver_ortho[vx][vy] += ortho[k]
        ox, oy = cx * TILE, cy * TILE
        if tid in DIAGONALS:
            x1, y1, x2, y2 = DIAGONALS[tid]
            segs[cx][cy].append(make_linear(ox + x1, oy + y1, ox + x2, oy + y2))
        if tid in ARCS:
            ax, ay, qh, qv, convex = ARCS[tid]
            segs[cx][cy].append(make_arc(ox + ax, oy + ay, qh, qv, convex))

    for hx in range(nhx):
        for hy in range(nhy):
            s = hor_ortho[hx][hy]
            if s:
                cell = (math.floor(hx / 2), math.floor((hy - 0.1 * s) / 2))
                a, b = (12 * hx, 12 * hy), (12 * hx + 12, 12 * hy)
                if s == -1:
                    a, b = b, a
                segs[cell[0]][cell[1]].append(make_linear(a[0], a[1], b[0], b[1]))
    for vx in range(nhx):
        for vy in range(nhy):
            s = ver_ortho[vx][vy]
            if s:
                cell = (math.floor((vx - 0.1 * s) / 2), math.floor(vy / 2))
                a, b = (12 * vx, 12 * vy + 12), (12 * vx, 12 * vy)
                if s == -1:
                    a, b = b, a
                segs[cell[0]][cell[1]].append(make_linear(a[0], a[1], b[0], b[1]))

    cell_segments: list[list[tuple | None]] = [[None] * GRID_H for _ in range(GRID_W)]
    cell_bounds: list[list[tuple | None]] = [[None] * GRID_H for _ in range(GRID_W)]
    for x in range(GRID_W):
        for y in range(GRID_H):
            lst = segs[x][y]
            if lst:
                cell_segments[x][y] = tuple(lst)
                cell_bounds[x][y] = _union_bounds(lst)
    return LevelGeometry(tiles, cell_segments, cell_bounds, hor_edges, ver_edges)


def segment_bounds(seg: tuple) -> tuple:
    if seg[0] == LINEAR:
        return seg[9], seg[10], seg[11], seg[12]
    return seg[10], seg[11], seg[12], seg[13]


def _union_bounds(segs: list[tuple]) -> tuple:
    minx = miny = math.inf
    maxx = maxy = -math.inf
    for s in segs:
        a, b, c, d = segment_bounds(s)
        minx, miny = min(minx, a), min(miny, b)
        maxx, maxy = max(maxx, c), max(maxy, d)
    return minx, miny, maxx, maxy
