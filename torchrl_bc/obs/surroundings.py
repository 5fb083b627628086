"""The ``surroundings`` observation: what is around the ninja, in a form that transfers.

A picture of the level lets a network memorise the level; a few distances do not. This vector
holds the free distance along ``N_RAYS`` evenly spaced rays from the ninja's centre to the first
solid tile (walls, floors, ceilings and slopes at 2 px, outside the level solid), and the
offsets of the ``N_HAZARDS`` nearest deadly entities (mines that are not in their safe state,
drones, death balls, thwumps) within ``HAZARD_REACH``. With ``game_state`` (contacts, speeds)
and ``objective`` (which way the path goes) it says, for example, that the wall the ninja is
pressing into is 40 px high with open space above: something the path direction alone does not.
Closed locked doors and closed trap doors stop a ray as walls do; regular doors never do (they
open as the ninja reaches them).
"""

from __future__ import annotations

import math

import numpy as np

from torchrl_bc.obs.raster import level_coverage
from torchrl_bc.sim import entities as E
from torchrl_bc.sim import layout as SL

__all__ = ["HAZARD_REACH", "N_HAZARDS", "N_HAZARD_VALUES", "N_RAYS", "N_SURROUNDINGS", "RAY_REACH",
           "SOLID_SCALE", "blocking_doors", "hazard_offsets", "ray_distances", "solid_mask"]

#: Rays, evenly spaced from +x (right) turning towards +y (down), and how far they look (px).
N_RAYS, RAY_REACH = 16, 96.0
#: Samples along each ray (every RAY_REACH / _RAY_SAMPLES px).
_RAY_SAMPLES = 32
#: Nearest hazards reported, and the radius (px) beyond which a hazard is not reported.
N_HAZARDS, HAZARD_REACH = 3, 192.0
#: Length of the ``hazards`` vector, (dx, dy, present) per hazard, and of ``surroundings``:
#: the ray fractions, then those.
N_HAZARD_VALUES = 3 * N_HAZARDS
N_SURROUNDINGS = N_RAYS + N_HAZARD_VALUES
#: World px per cell of the solid mask the rays read.
SOLID_SCALE = 2

_HAZARD_KINDS = np.array([E.ZAP_DRONE, E.MINI_DRONE, E.DEATH_BALL, E.THWUMP, E.SHOVE_THWUMP])
_MINE_SAFE_STATE = 1  # a toggle mine's state: 0 deadly, 1 safe, 2 toggling (deadly soon)

_angles = 2.0 * math.pi * np.arange(N_RAYS) / N_RAYS
#: [N_RAYS, 1] unit direction of each ray.
_COS, _SIN = np.cos(_angles)[:, None], np.sin(_angles)[:, None]
_steps = RAY_REACH * np.arange(1, _RAY_SAMPLES + 1) / _RAY_SAMPLES
#: [N_RAYS, _RAY_SAMPLES] world offsets of every sample from the ninja's centre.
_DX = _COS * _steps[None, :]
_DY = _SIN * _steps[None, :]
_BLOCKING_DOORS = np.array([E.LOCKED_DOOR, E.TRAP_DOOR])


def solid_mask(tiles: np.ndarray) -> np.ndarray:
    """bool [H / SOLID_SCALE, W / SOLID_SCALE]: cells at least half covered by a tile."""
    return level_coverage(tiles, SOLID_SCALE) >= 0.5


def blocking_doors(ei: np.ndarray, ef: np.ndarray, door_seg: np.ndarray) -> np.ndarray:
    """float64 [k, 4]: segments (x1, y1, x2, y2) of the closed locked and trap doors."""
    rows = np.flatnonzero(np.isin(ei[:, SL.EI_KIND], _BLOCKING_DOORS) & (ef[:, SL.F_FLAG] != 0))
    return door_seg[rows, 1:5].astype(np.float64)


def _door_samples(doors: np.ndarray, x: float, y: float) -> np.ndarray:
    """int [N_RAYS]: index of each ray's first sample at or past a door segment it crosses
    (``_RAY_SAMPLES`` where it crosses none within reach)."""
    if doors.size == 0:
        return np.full(N_RAYS, _RAY_SAMPLES, np.intp)
    dx, dy = _COS, _SIN  # [R, 1] against [1, k] doors
    px, py = doors[None, :, 0] - x, doors[None, :, 1] - y
    ex, ey = doors[None, :, 2] - doors[None, :, 0], doors[None, :, 3] - doors[None, :, 1]
    denom = dx * ey - dy * ex  # 0: the ray runs along the door, which it then never crosses
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (px * ey - py * ex) / denom  # distance along the ray
        u = (px * dy - py * dx) / denom  # where on the door, 0..1
    crosses = (denom != 0) & (t >= 0) & (t <= RAY_REACH) & (u >= 0) & (u <= 1)
    step = RAY_REACH / _RAY_SAMPLES
    k = np.where(crosses, np.maximum(np.ceil(t / step) - 1, 0), _RAY_SAMPLES).min(axis=1)
    return k.astype(np.intp)


def ray_distances(solid: np.ndarray, x: float, y: float,
                  doors: np.ndarray | None = None) -> np.ndarray:
    """float32 [N_RAYS]: free distance / RAY_REACH along each ray (1 when nothing is hit).

    A sample outside the level counts as solid, as the level's border is a wall; so does the
    first sample at or past one of ``doors`` (segments, :func:`blocking_doors`).
    """
    h, w = solid.shape
    cx = np.floor((x + _DX) / SOLID_SCALE).astype(np.intp)
    cy = np.floor((y + _DY) / SOLID_SCALE).astype(np.intp)
    inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
    hit = ~inside
    hit[inside] = solid[cy[inside], cx[inside]]
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), _RAY_SAMPLES)
    if doors is not None:
        first = np.minimum(first, _door_samples(doors, x, y))
    return (first / _RAY_SAMPLES).astype(np.float32)


def hazard_offsets(ei: np.ndarray, ef: np.ndarray, x: float, y: float) -> np.ndarray:
    """float32 [N_HAZARD_VALUES]: (dx, dy) / HAZARD_REACH and 1 for each of the nearest deadly
    entities within HAZARD_REACH, nearest first; zeros where there are fewer."""
    out = np.zeros(N_HAZARD_VALUES, np.float32)
    kind = ei[:, SL.EI_KIND]
    deadly = np.isin(kind, _HAZARD_KINDS) & (ei[:, SL.EI_ACTIVE] != 0)
    mines = np.isin(kind, E.MINES) & (ef[:, SL.F_STATE] != _MINE_SAFE_STATE)
    rows = np.flatnonzero(deadly | mines)
    if rows.size == 0:
        return out
    dx = ef[rows, SL.F_X] - x
    dy = ef[rows, SL.F_Y] - y
    d = np.hypot(dx, dy)
    near = np.flatnonzero(d <= HAZARD_REACH)
    order = near[np.lexsort((rows[near], d[near]))][:N_HAZARDS]  # ties: entity order
    for i, j in enumerate(order.tolist()):
        out[3 * i:3 * i + 3] = (dx[j] / HAZARD_REACH, dy[j] / HAZARD_REACH, 1.0)
    return out
