"""Per-level distance fields to the current objective, for the ``objective`` and ``local_view``
observations.

The objective is the exit switch until it is hit, then its exit door. Each gets one flood-fill
field (:class:`~torchrl_bc.obs.distance.DistanceMap`, the planner's heuristic) computed once
per level, plus "next hop" tables that follow the field downhill, so an observation reads the
path length and the direction of the path a few cells ahead with a handful of lookups. The
direction of the path (not of the straight line) is what transfers across levels: it says which
way to go around the wall in front of the ninja.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from torchrl_bc.obs.distance import NX, NY, STEP, DistanceMap
from torchrl_bc.sim import entities as E

__all__ = [
    "AHEAD_HOPS",
    "FAR_HOPS",
    "NEAR_HOPS",
    "N_AHEAD",
    "PATH_LENGTH_SCALE",
    "ObjectiveFields",
    "build_objective_fields",
]

#: Lattice hops (STEP px each) ahead along the path for the two waypoint directions.
NEAR_HOPS, FAR_HOPS = 4, 16
#: The stretches of path ``path_ahead`` profiles (48 and 96 px), and its length: per stretch
#: the highest rise of the path above the ninja, and the deepest drop under it.
AHEAD_HOPS = (8, 16)
N_AHEAD = 2 * len(AHEAD_HOPS)
#: px the `objective` input's path length is divided by (then clipped to 2, 2 unreachable).
PATH_LENGTH_SCALE = 1000.0
#: px a rise or drop is divided by (then clipped to 1): a floor jump's height.
_AHEAD_SCALE = 96.0
#: Goal reach in px, as the planner uses: entity radius (switch 6, door 12) plus 9.
_SWITCH_REACH, _DOOR_REACH = 15.0, 21.0
_HAZARD_KINDS = E.MINES  # toggle mines: the field routes around them, as the planner's does


@dataclass(frozen=True)
class ObjectiveFields:
    """Fields (px of weighted path, ``inf`` unreachable) and hop tables for both stages."""

    fields: tuple[np.ndarray, np.ndarray]  # [NX, NY] float64: to switch, to door
    near: tuple[np.ndarray, np.ndarray]  # int32 flat node -> node NEAR_HOPS downhill
    far: tuple[np.ndarray, np.ndarray]  # flat node -> node FAR_HOPS downhill
    goals: tuple[tuple[float, float], tuple[float, float]]
    # flat node -> float32 [N_AHEAD], only when asked for (path_ahead): 0.56 MB a level
    ahead: tuple[np.ndarray, np.ndarray] | None = None


def _next_hop(dist: np.ndarray, free: np.ndarray, straight_first: bool = False) -> np.ndarray:
    """Flat index of each node's lowest free 8-neighbour, or the node itself when none is
    lower (a goal node, or an unreachable pocket). Ties go to the first in scan order, which
    puts up-right before right; ``straight_first`` tries the four straight moves first, so a
    path along a floor stays on its row (``path_ahead`` reads rows; the waypoint tables keep
    the order they were built with)."""
    cand = np.where(free, dist, np.inf)
    pad = np.pad(cand, 1, constant_values=np.inf)
    offsets = [(0, 0)] + [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
    if straight_first:
        offsets.sort(key=lambda o: abs(o[0]) + abs(o[1]))  # stable: (0, 0), straight, diagonal
    stack = [dist] + [pad[1 + dx:1 + dx + NX, 1 + dy:1 + dy + NY] for dx, dy in offsets[1:]]
    choice = np.argmin(np.stack(stack), axis=0)  # ties keep the node itself (index 0)
    ox = np.array([o[0] for o in offsets])[choice]
    oy = np.array([o[1] for o in offsets])[choice]
    ix, iy = np.meshgrid(np.arange(NX), np.arange(NY), indexing="ij")
    return ((ix + ox) * NY + (iy + oy)).ravel()


def _profile(hop: np.ndarray, floor_gap: np.ndarray) -> np.ndarray:
    """float32 [NX * NY, N_AHEAD]: along the next ``AHEAD_HOPS`` hops from each node, how far
    the path rises above it and how far the ground under the path falls below the ground
    under it, in px / ``_AHEAD_SCALE``.

    The waypoint directions miss both: a path that hops over a mine or runs across a pit is
    level again 96 px on, so ``objective`` reads the same as on a plain floor."""
    node_y = (np.arange(NX * NY) % NY).astype(np.float64) * STEP
    ground = node_y + floor_gap.ravel()  # y of the lowest free node straight below
    cur = np.arange(NX * NY)
    rise = np.zeros(NX * NY)
    drop = np.zeros(NX * NY)
    out = []
    for i in range(1, max(AHEAD_HOPS) + 1):
        cur = hop[cur]
        rise = np.maximum(rise, node_y - node_y[cur])
        drop = np.maximum(drop, ground[cur] - ground)
        if i in AHEAD_HOPS:
            out += [rise.copy(), drop.copy()]
    return np.clip(np.stack(out, axis=1) / _AHEAD_SCALE, 0.0, 1.0).astype(np.float32)


def _compose(hop: np.ndarray, n: int) -> np.ndarray:
    """``hop`` applied ``n`` times (n a power of two)."""
    out = hop
    while n > 1:
        out = out[out]
        n //= 2
    return out


def build_objective_fields(tiles, ei_kind: np.ndarray, ef_xy: np.ndarray, switch: int,
                           exit_: int, spawn: tuple[float, float],
                           ahead: bool = False,
                           hazard_radius: float = 16.0) -> ObjectiveFields | None:
    """Fields for the switch row ``switch`` (-1: none) and the door row ``exit_`` (-1: none).

    Like the planner, narrow passages can defeat the default clearance; the fields are rebuilt
    with less clearance until spawn -> switch -> door is finite. Only the level's static data
    is read (tiles, entity kinds and positions of mines, which never move), so the result does
    not depend on when in an episode it is first computed. ``ahead`` adds the ``path_ahead``
    tables; ``hazard_radius`` is how far around each mine the path costs more.
    """
    if exit_ < 0:
        return None
    hazards = [(float(x), float(y)) for k, (x, y) in zip(ei_kind.tolist(), ef_xy.tolist(),
                                                         strict=True) if k in _HAZARD_KINDS]
    door_xy = (float(ef_xy[exit_, 0]), float(ef_xy[exit_, 1]))
    switch_xy = (float(ef_xy[switch, 0]), float(ef_xy[switch, 1])) if switch >= 0 else door_xy
    best = None
    for clearance in (9.0, 7.0, 5.0):
        dmap = DistanceMap(tiles, hazards, clearance=clearance, hazard_radius=hazard_radius)
        to_switch = dmap.field_to(*switch_xy, _SWITCH_REACH if switch >= 0 else _DOOR_REACH)
        to_door = dmap.field_to(*door_xy, _DOOR_REACH)
        total = (to_switch[dmap.node_of(*spawn)]
                 + to_door[dmap.node_of(*switch_xy)])
        if best is None or total < best[0]:
            best = (total, dmap, to_switch, to_door)
        if math.isfinite(total):
            break
    _, dmap, to_switch, to_door = best
    fields = (to_switch, to_door)
    hops = [_next_hop(f, dmap.free) for f in fields]
    # int32 node indices (NX * NY = 17,600 fit): half the memory of each level's tables
    near = tuple(_compose(h, NEAR_HOPS).astype(np.int32) for h in hops)
    far = tuple(_compose(h, FAR_HOPS).astype(np.int32) for h in hops)
    profiles = tuple(_profile(_next_hop(f, dmap.free, straight_first=True), dmap.floor_gap)
                     for f in fields) if ahead else None
    for arr in (*fields, *near, *far, *(profiles or ())):
        arr.setflags(write=False)
    return ObjectiveFields(fields, near, far, (switch_xy, door_xy), profiles)


def node_centre(flat: int) -> tuple[float, float]:
    """World px of a flat lattice node index."""
    ix, iy = divmod(int(flat), NY)
    return ix * STEP + STEP / 2, iy * STEP + STEP / 2
