"""Flood-fill distance fields over a level's free space: the planner's heuristic and the
``objective`` / ``local_view`` observations (so it lives under obs; levels re-exports it).

The tile grid is rasterised to a pixel solid mask (one 24x24 mask per tile id), free space for
the ninja's centre is every point at least ``clearance`` pixels from solid, and distances to a
goal are shortest paths over a 6-pixel lattice of free points. Climbing costs more than falling
because gravity makes it harder; cells near toggle mines cost more so the search routes around
them. Pure geometry: it knows nothing of momentum, which the search itself handles.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from torchrl_bc.sim.tiles import ARCS, DIAGONALS, TILE_ORTHO

TILE = 24
STEP = 6  # lattice spacing in pixels
GRID_W, GRID_H = 44, 25  # tiles including the solid border ring
NX, NY = GRID_W * TILE // STEP, GRID_H * TILE // STEP
JUMP_HEIGHT = 90.0  # px a held floor jump rises, roughly

# Half-edge sample points just inside the tile, in TILE_ORTHO's order: 6 horizontal half edges
# (rows top/middle/bottom, left then right half), then 6 vertical (columns left/middle/right,
# top then bottom half). Only outer edges say which side of a slope is solid.
_EDGE_POINTS = (
    (6, 1), (18, 1), None, None, (6, 23), (18, 23),
    (1, 6), (1, 18), None, None, (23, 6), (23, 18),
)


@cache
def tile_mask(tile_id: int) -> np.ndarray:
    """24x24 bool mask [y, x] of the solid pixels of one tile id."""
    yy, xx = np.mgrid[0:TILE, 0:TILE] + 0.5
    if tile_id == 1:
        return np.ones((TILE, TILE), bool)
    half = {2: yy < 12, 3: xx >= 12, 4: yy >= 12, 5: xx < 12}
    if tile_id in half:
        return half[tile_id]
    if tile_id in ARCS:
        cx, cy, _, _, convex = ARCS[tile_id]
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < TILE**2
        return inside if convex else ~inside
    if tile_id in DIAGONALS:
        x1, y1, x2, y2 = DIAGONALS[tile_id]

        def side(px: float, py: float) -> float:
            return (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)

        votes = [side(*p) for p, o in zip(_EDGE_POINTS, TILE_ORTHO[tile_id], strict=True)
                 if p is not None and o != 0]
        sign = 1.0 if sum(np.sign(votes)) >= 0 else -1.0
        return side(xx, yy) * sign > 0
    return np.zeros((TILE, TILE), bool)  # empty and glitched ids


def solid_pixels(tiles: list[list[int]]) -> np.ndarray:
    """[600, 1056] bool solid mask of the full grid (``tiles[x][y]`` incl. the border)."""
    out = np.zeros((GRID_H * TILE, GRID_W * TILE), bool)
    for x in range(GRID_W):
        for y in range(GRID_H):
            t = tiles[x][y]
            if t:
                out[y * TILE:(y + 1) * TILE, x * TILE:(x + 1) * TILE] = tile_mask(t)
    return out


class DistanceMap:
    """Free lattice of one level and shortest-path distances (pixels) to goal points."""

    def __init__(self, tiles: list[list[int]], hazards: list[tuple[float, float]] = (),
                 clearance: float = 9.0, up_cost: float = 1.5, hazard_cost: float = 6.0,
                 hazard_radius: float = 16.0, air_cost: float = 8.0) -> None:
        clear = ndimage.distance_transform_edt(~solid_pixels(tiles))
        cx = np.arange(NX) * STEP + STEP // 2
        cy = np.arange(NY) * STEP + STEP // 2
        node_clear = clear[np.ix_(cy, cx)].T  # [NX, NY]
        self.free = node_clear >= clearance
        #: px of free lattice straight below each node (0 on a node standing on solid).
        self.floor_gap = self._floor_gap()
        self.climb = self._climbable(node_clear, clearance)
        weight = np.ones((NX, NY))
        gx, gy = np.meshgrid(cx, cy, indexing="ij")
        for hx, hy in hazards:
            weight[(gx - hx) ** 2 + (gy - hy) ** 2 < hazard_radius**2] = hazard_cost
        self._graph = self._build_graph(weight, up_cost, air_cost)

    def _climbable(self, node_clear: np.ndarray, clearance: float) -> np.ndarray:
        """Nodes the ninja can rise into: within a jump of a floor below, or touching a wall
        (wall jumps climb any height). Rising through open air beyond that is near
        impossible, so it costs ``air_cost`` times more; without this, pits look as good as
        the ledge above them."""
        wall = self.free & (node_clear < clearance + 4)
        return self.free & ((self.floor_gap <= JUMP_HEIGHT) | ndimage.binary_dilation(
            wall, np.ones((3, 1), bool)))

    def _floor_gap(self) -> np.ndarray:
        """Free space below each node, summed from the bottom row up: where a jump can
        start from (``_climbable``) and where the ground under a path lies (``path_ahead``)."""
        gap = np.zeros((NX, NY))
        for y in range(NY - 2, -1, -1):
            gap[:, y] = np.where(self.free[:, y + 1], gap[:, y + 1] + STEP, 0.0)
        return gap

    def _build_graph(self, weight: np.ndarray, up_cost: float, air_cost: float) -> csr_matrix:
        """Reversed 8-neighbour graph (edge v->u holds the cost of moving u->v)."""
        idx = np.arange(NX * NY).reshape(NX, NY)
        rows, cols, data = [], [], []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                if dx == dy == 0:
                    continue
                xs = slice(max(0, -dx), NX - max(0, dx))
                ys = slice(max(0, -dy), NY - max(0, dy))
                xd = slice(max(0, dx), NX - max(0, -dx))
                yd = slice(max(0, dy), NY - max(0, -dy))
                ok = self.free[xs, ys] & self.free[xd, yd]
                if dx and dy:  # no corner cutting through solid
                    ok &= self.free[xd, ys] & self.free[xs, yd]
                cost = STEP * math.hypot(dx, dy) * weight[xd, yd]
                if dy < 0:
                    cost = cost * np.where(self.climb[xd, yd], up_cost, up_cost * air_cost)
                rows.append(idx[xd, yd][ok])
                cols.append(idx[xs, ys][ok])
                data.append(cost[ok])
        r, c, d = (np.concatenate(a) for a in (rows, cols, data))
        return csr_matrix((d, (r, c)), shape=(NX * NY, NX * NY))

    def goal_nodes(self, x: float, y: float, reach: float) -> np.ndarray:
        """Free lattice nodes within ``reach`` px of (x, y), or the nearest free node."""
        cx = np.arange(NX) * STEP + STEP // 2
        cy = np.arange(NY) * STEP + STEP // 2
        gx, gy = np.meshgrid(cx, cy, indexing="ij")
        d2 = (gx - x) ** 2 + (gy - y) ** 2
        near = self.free & (d2 <= reach**2)
        if not near.any():
            d2 = np.where(self.free, d2, np.inf)
            near = d2 == d2.min()
        return np.flatnonzero(near.ravel())

    def field_to(self, x: float, y: float, reach: float) -> np.ndarray:
        """[NX, NY] path length (px) to the goal; blocked nodes copy their nearest free node
        so a ninja grazing a slope still gets a finite value; unreachable stays inf."""
        dist = dijkstra(self._graph, indices=self.goal_nodes(x, y, reach), min_only=True)
        dist = dist.reshape(NX, NY)
        if self.free.any():
            _, (ix, iy) = ndimage.distance_transform_edt(~self.free, return_indices=True)
            dist = np.where(self.free, dist, dist[ix, iy])
        return dist

    @staticmethod
    def node_of(x: float, y: float) -> tuple[int, int]:
        return (min(max(int(x // STEP), 0), NX - 1), min(max(int(y // STEP), 0), NY - 1))
