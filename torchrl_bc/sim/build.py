"""Turn parsed map data into the flat arrays the compiled tick works on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import layout as L
from .constants import GRID_H, GRID_W, MAP_UNITS
from .mapdata import MapData, MapFormatError
from .tiles import SEG_COLS, build_geometry, full_tile_grid, make_linear

# Record types the reference wires into its simulation, in tick order. Anything else (the
# ninja record, switch records read through their door, lasers, chasers, ...) is skipped.
WIRED_TYPES = (1, 2, 3, 5, 6, 8, 10, 11, 14, 17, 20, 21, 24, 25, 26, 28)

_DIAG = math.sqrt(2) / 2
ORIENTATION_VECTORS = (
    (1, 0), (_DIAG, _DIAG), (0, 1), (-_DIAG, _DIAG),
    (-1, 0), (-_DIAG, -_DIAG), (0, -1), (_DIAG, -_DIAG),
)
DOOR_HALF_LENGTH = 12


@dataclass(frozen=True)
class Level:
    """Static, shareable arrays of one level (never written during a run)."""

    tiles: list[list[int]]
    segments: np.ndarray  # float64 [S, SEG_COLS]
    cell_start: np.ndarray  # int64 [GRID_W*GRID_H + 1], CSR over cell id x*25 + y
    cell_bounds: np.ndarray  # float64 [GRID_W*GRID_H, 4]
    hor_edges: np.ndarray  # int64 [89, 51] before doors
    ver_edges: np.ndarray  # int64 [89, 51]


def segment_row(seg: tuple) -> np.ndarray:
    row = np.zeros(SEG_COLS, np.float64)
    row[: len(seg)] = [float(v) for v in seg]
    return row


def build_level(md: MapData) -> Level:
    tiles = full_tile_grid(md.tiles)
    geo = build_geometry(tiles)
    rows: list[np.ndarray] = []
    start = np.zeros(GRID_W * GRID_H + 1, np.int64)
    bounds = np.zeros((GRID_W * GRID_H, 4), np.float64)
    for cx in range(GRID_W):
        for cy in range(GRID_H):
            c = cx * GRID_H + cy
            start[c] = len(rows)
            segs = geo.cell_segments[cx][cy]
            if segs:
                rows.extend(segment_row(s) for s in segs)
                bounds[c] = geo.cell_bounds[cx][cy]
    start[-1] = len(rows)
    seg_arr = np.array(rows, np.float64).reshape(len(rows), SEG_COLS)
    return Level(
        tiles=tiles,
        segments=seg_arr,
        cell_start=start,
        cell_bounds=bounds,
        hor_edges=np.array(geo.hor_edges, np.int64),
        ver_edges=np.array(geo.ver_edges, np.int64),
    )


def _orientation(o: int, what: str) -> tuple[float, float]:
    if not 0 <= o < 8:
        raise ValueError(f"{what} orientation {o} is not in 0..7")
    return ORIENTATION_VECTORS[o]


@dataclass
class EntityRows:
    ei: np.ndarray  # int64 [E, EI_COLS]
    ef: np.ndarray  # float64 [E, EF_COLS]
    door_seg: np.ndarray  # float64 [E, SEG_COLS]; rows of doors hold their segment
    hor_edges: np.ndarray
    ver_edges: np.ndarray
    next_seq: int


def build_entities(md: MapData, level: Level, source: str) -> EntityRows:
    """Entity rows ordered by record type then load order, plus door-adjusted grid edges."""
    groups: dict[int, list[tuple[list[int], list[float], tuple | None]]] = {
        t: [] for t in WIRED_TYPES
    }
    counts: dict[int, int] = {}
    hor = level.hor_edges.copy()
    ver = level.ver_edges.copy()
    seq = 0
    links: list[tuple[int, int]] = []  # (group 3 position of switch, position of its door)

    def index_of(kind: int) -> int:
        i = counts.get(kind, 0)
        counts[kind] = i + 1
        return i

    def new(kind: int, group: int, x: float, y: float) -> tuple[list[int], list[float]]:
        ei = [0] * L.EI_COLS
        ef = [0.0] * L.EF_COLS
        ei[L.EI_KIND] = kind
        ei[L.EI_GROUP] = group
        ei[L.EI_INDEX] = index_of(kind)
        ei[L.EI_ACTIVE] = 1
        ei[L.EI_SEQ] = -1
        ef[L.F_X] = x
        ef[L.F_Y] = y
        return ei, ef

    def place(ei: list[int], ef: list[float]) -> None:
        ei[L.EI_CX] = min(max(math.floor(ef[L.F_X] / 24), 0), GRID_W - 1)
        ei[L.EI_CY] = min(max(math.floor(ef[L.F_Y] / 24), 0), GRID_H - 1)

    for rec in md.entities:
        t = rec.type
        if t not in groups:
            continue
        x, y = rec.x * MAP_UNITS, rec.y * MAP_UNITS
        door_seg = None
        try:
            if t in (1, 21):
                ei, ef = new(t, t, x, y)
                ef[L.F_STATE] = 0.0 if t == 1 else 1.0
                ef[L.F_RADIUS] = 4.0 if t == 1 else 3.5
            elif t == 2:
                ei, ef = new(2, 2, x, y)
                ef[L.F_RADIUS] = 6.0
            elif t == 3:
                dei, def_ = new(3, 3, x, y)
                def_[L.F_RADIUS] = 12.0
                place(dei, def_)
                groups[3].append((dei, def_, None))
                ei, ef = new(4, 3, rec.switch_x * MAP_UNITS, rec.switch_y * MAP_UNITS)
                ef[L.F_RADIUS] = 6.0
                links.append((len(groups[3]), len(groups[3]) - 1))
            elif t in (5, 6, 8):
                vx, vy = _orientation(rec.orientation, "door")
                ei, ef = new(t, t, x, y)
                cx = min(max(math.floor((x - DOOR_HALF_LENGTH * vx) / 24), 0), GRID_W - 1)
                cy = min(max(math.floor((y - DOOR_HALF_LENGTH * vy) / 24), 0), GRID_H - 1)
                hx, hy = 2 * (cx + 1), 2 * (cy + 1)
                vertical = rec.orientation in (0, 4)
                if vertical:
                    door_seg = make_linear(x, y - DOOR_HALF_LENGTH, x, y + DOOR_HALF_LENGTH,
                                           oriented=False)
                    edges = ((hx, hy - 2), (hx, hy - 1))
                    for ex, ey in edges:
                        ver[ex, ey] += 1
                else:
                    door_seg = make_linear(x - DOOR_HALF_LENGTH, y, x + DOOR_HALF_LENGTH, y,
                                           oriented=False)
                    edges = ((hx - 2, hy), (hx - 1, hy))
                    for ex, ey in edges:
                        hor[ex, ey] += 1
                (ef[L.F_E1X], ef[L.F_E1Y]), (ef[L.F_E2X], ef[L.F_E2Y]) = edges
                ef[L.F_VERTICAL] = 1.0 if vertical else 0.0
                ef[L.F_FLAG] = 1.0  # closed
                ef[L.F_ORIENT] = float(rec.orientation)
                ei[L.EI_LINK] = cx * GRID_H + cy
                if t == 5:
                    sx, sy = rec.x, rec.y
                    ef[L.F_RADIUS] = 10.0
                else:
                    sx, sy = rec.switch_x, rec.switch_y
                    ef[L.F_RADIUS] = 5.0
                ef[L.F_X], ef[L.F_Y] = sx * MAP_UNITS, sy * MAP_UNITS
                if t == 8:  # trap doors start open
                    ef[L.F_FLAG] = 0.0
                    grid = ver if vertical else hor
                    for ex, ey in edges:
                        grid[ex, ey] -= 1
            elif t in (10, 11):
                ei, ef = new(t, t, x, y)
                ef[L.F_NX], ef[L.F_NY] = _orientation(rec.orientation,
                                                      "launch pad" if t == 10 else "one-way")
                ef[L.F_ORIENT] = float(rec.orientation)
                ef[L.F_RADIUS] = 6.0
                ef[L.F_SEMI] = 12.0
            elif t in (14, 26):
                if not 0 <= rec.orientation < 8:
                    raise ValueError(f"drone orientation {rec.orientation} is not in 0..7")
                if not 0 <= rec.mode < 4:
                    raise ValueError(f"drone mode {rec.mode} is not in 0..3")
                ei, ef = new(t, t, x, y)
                ef[L.F_DIR] = float(rec.orientation // 2)
                ef[L.F_MODE] = float(rec.mode)
                ef[L.F_TX], ef[L.F_TY] = x, y
                mini = t == 26
                ef[L.F_RADIUS] = 4.0 if mini else 7.5
                ef[L.F_STEP] = 12.0 if mini else 24.0
                ef[L.F_SPEED] = 1.3 if mini else 8 / 7
                ef[L.F_ORIENT] = float(rec.orientation)
            elif t == 17:
                ei, ef = new(17, 17, x, y)
                ef[L.F_OX], ef[L.F_OY] = x, y
                ef[L.F_SEMI] = 9.0
            elif t == 20:
                ei, ef = new(20, 20, x, y)
                ef[L.F_OX], ef[L.F_OY] = x, y
                ef[L.F_SEMI] = 9.0
                ef[L.F_FLAG] = 1.0 if rec.orientation in (0, 4) else 0.0
                ef[L.F_DIR] = 1.0 if rec.orientation in (0, 2) else -1.0
                ef[L.F_ORIENT] = float(rec.orientation)
            elif t == 24:
                ei, ef = new(24, 24, x, y)
                ef[L.F_RADIUS] = 6.0
            elif t == 25:
                ei, ef = new(25, 25, x, y)
                ef[L.F_RADIUS] = 5.0
            else:  # 28
                ei, ef = new(28, 28, x, y)
                ef[L.F_OX], ef[L.F_OY] = x, y
                ef[L.F_SEMI] = 12.0
                ef[L.F_RADIUS] = 8.0
        except ValueError as exc:
            raise MapFormatError(f"{source}: entity of type {t} at byte {rec.offset}: {exc}") \
                from exc
        place(ei, ef)
        ei[L.EI_SEQ] = seq
        seq += 1
        groups[t].append((ei, ef, door_seg))

    flat = [item for t in WIRED_TYPES for item in groups[t]]
    n = len(flat)
    ei_arr = np.zeros((n, L.EI_COLS), np.int64)
    ef_arr = np.zeros((n, L.EF_COLS), np.float64)
    door_arr = np.full((n, SEG_COLS), -1.0, np.float64)
    for i, (ei, ef, dseg) in enumerate(flat):
        ei_arr[i] = ei
        ef_arr[i] = ef
        if dseg is not None:
            door_arr[i] = segment_row(dseg)
    # exit switches point at their door's row (group 3 is contiguous and starts at base)
    base = sum(len(groups[t]) for t in WIRED_TYPES[: WIRED_TYPES.index(3)])
    for switch_pos, door_pos in links:
        ei_arr[base + switch_pos, L.EI_LINK] = base + door_pos
    return EntityRows(ei_arr, ef_arr, door_arr, hor, ver, seq)
