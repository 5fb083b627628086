"""Turn parsed map data into the flat arrays the compiled tick works on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import layout as L
from .constants import GRID_H, GRID_W, MAP_UNITS
from .mapdata import MapData, MapFormatError
from .tiles import (
    ARCS,
    DIAGONALS,
    FIRST_EMPTY_ID,
    SEG_COLS,
    TILE_EDGES,
    TILE_ORTHO,
    full_tile_grid,
    make_linear,
)

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
class LevelGeometry:
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


_EDGE_TABLE = np.array(TILE_EDGES, np.int64)  # [38, 12]
_ORTHO_TABLE = np.array(TILE_ORTHO, np.int64)
_DIAG_TABLE = np.zeros((256, 4))
_HAS_DIAG = np.zeros(256, bool)
for _t, _v in DIAGONALS.items():
    _DIAG_TABLE[_t], _HAS_DIAG[_t] = _v, True
_ARC_TABLE = np.zeros((256, 5))
_HAS_ARC = np.zeros(256, bool)
for _t, _v in ARCS.items():
    _ARC_TABLE[_t], _HAS_ARC[_t] = _v, True


def _linear_rows(x1, y1, x2, y2) -> np.ndarray:
    """Oriented linear segment rows (see ``tiles.make_linear``) for integer-valued ends."""
    rows = np.zeros((x1.shape[0], SEG_COLS))
    px = x2 - x1
    py = y2 - y1
    lensq = px * px + py * py  # integer-valued: exact, as in the scalar version
    seg_len = np.sqrt(lensq)
    rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4] = x1, y1, x2, y2
    rows[:, 5], rows[:, 6] = px, py
    rows[:, 7] = np.where(lensq == 0, 1e-9, lensq)
    rows[:, 8] = 1.0
    rows[:, 9], rows[:, 10] = np.minimum(x1, x2), np.minimum(y1, y2)
    rows[:, 11], rows[:, 12] = np.maximum(x1, x2), np.maximum(y1, y2)
    rows[:, 13] = seg_len
    safe = np.where(seg_len > 0, seg_len, 1.0)
    rows[:, 14] = np.where(seg_len > 0, px / safe, 0.0)
    rows[:, 15] = np.where(seg_len > 0, py / safe, 0.0)
    return rows


def build_level(md: MapData) -> LevelGeometry:
    """Segments, per-cell index and grid edges of a level, vectorised over tiles.

    Within a cell, segments keep the order in which the reference resolves ties: the tile's
    own diagonal or arc, then horizontal half edges, then vertical ones, each in lattice
    order (x, then y). Opposite half-edge orientations of neighbouring tiles cancel.
    """
    tiles = full_tile_grid(md.tiles)
    t = np.array(tiles, np.int64)  # [44, 25]
    valid = (t > 0) & (t < FIRST_EMPTY_ID)
    tid = np.where(valid, t, 0)
    edges = _EDGE_TABLE[tid]
    ortho = _ORTHO_TABLE[tid]
    cx, cy = np.meshgrid(np.arange(GRID_W), np.arange(GRID_H), indexing="ij")
    shape = (2 * GRID_W + 1, 2 * GRID_H + 1)
    hor_cnt, ver_cnt = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    hor_o, ver_o = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    for a in range(3):
        for half in range(2):
            k = 2 * a + half
            np.add.at(hor_cnt, (2 * cx + half, 2 * cy + a), edges[:, :, k])
            np.add.at(hor_o, (2 * cx + half, 2 * cy + a), ortho[:, :, k])
            k = 6 + 2 * a + half
            np.add.at(ver_cnt, (2 * cx + a, 2 * cy + half), edges[:, :, k])
            np.add.at(ver_o, (2 * cx + a, 2 * cy + half), ortho[:, :, k])
    hor_edges = np.zeros(shape, np.int64)
    hor_edges[:, [0, -1]] = 1
    ver_edges = np.zeros(shape, np.int64)
    ver_edges[[0, -1], :] = 1
    hor_edges = (hor_edges + hor_cnt) % 2  # each solid tile edge toggles the lattice edge
    ver_edges = (ver_edges + ver_cnt) % 2

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    dx, dy = np.nonzero(_HAS_DIAG[t] & valid)
    if dx.size:
        d = _DIAG_TABLE[t[dx, dy]]
        ox, oy = dx * 24.0, dy * 24.0
        rows = _linear_rows(ox + d[:, 0], oy + d[:, 1], ox + d[:, 2], oy + d[:, 3])
        parts.append((dx * GRID_H + dy, np.zeros(dx.size), np.zeros(dx.size), rows))
    ax, ay = np.nonzero(_HAS_ARC[t] & valid)
    if ax.size:
        a = _ARC_TABLE[t[ax, ay]]
        ccx, ccy = ax * 24.0 + a[:, 0], ay * 24.0 + a[:, 1]
        phx, pvy = ccx + 24 * a[:, 2], ccy + 24 * a[:, 3]
        rows = np.zeros((ax.size, SEG_COLS))
        rows[:, 0] = 1
        rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5] = ccx, ccy, a[:, 2], a[:, 3], \
            a[:, 4]
        rows[:, 6], rows[:, 7], rows[:, 8], rows[:, 9] = phx, ccy, ccx, pvy
        rows[:, 10], rows[:, 11] = np.minimum(ccx, phx), np.minimum(ccy, pvy)
        rows[:, 12], rows[:, 13] = np.maximum(ccx, phx), np.maximum(ccy, pvy)
        parts.append((ax * GRID_H + ay, np.zeros(ax.size), np.zeros(ax.size), rows))
    hx, hy = np.nonzero(hor_o)  # x-major lattice order
    if hx.size:
        s = hor_o[hx, hy]
        cell = np.floor(hx / 2).astype(np.int64) * GRID_H + \
            np.floor((hy - 0.1 * s) / 2).astype(np.int64)
        x1, x2, y = 12.0 * hx, 12.0 * hx + 12, 12.0 * hy
        rows = _linear_rows(np.where(s == -1, x2, x1), y, np.where(s == -1, x1, x2), y)
        parts.append((cell, np.ones(hx.size), np.arange(hx.size), rows))
    vx, vy = np.nonzero(ver_o)
    if vx.size:
        s = ver_o[vx, vy]
        cell = np.floor((vx - 0.1 * s) / 2).astype(np.int64) * GRID_H + \
            np.floor(vy / 2).astype(np.int64)
        x, ya, yb = 12.0 * vx, 12.0 * vy + 12, 12.0 * vy
        rows = _linear_rows(x, np.where(s == -1, yb, ya), x, np.where(s == -1, ya, yb))
        parts.append((cell, np.full(vx.size, 2.0), np.arange(vx.size), rows))
    if parts:
        cells = np.concatenate([p[0] for p in parts])
        idx = np.lexsort((np.concatenate([p[2] for p in parts]),
                          np.concatenate([p[1] for p in parts]), cells))
        cells = cells[idx]
        seg = np.concatenate([p[3] for p in parts])[idx]
    else:
        cells = np.zeros(0, np.int64)
        seg = np.zeros((0, SEG_COLS))
    counts = np.bincount(cells, minlength=GRID_W * GRID_H)
    start = np.zeros(GRID_W * GRID_H + 1, np.int64)
    start[1:] = np.cumsum(counts)
    bounds = np.zeros((GRID_W * GRID_H, 4))
    if cells.size:
        lin = seg[:, 0] == 0
        lo_x = np.where(lin, seg[:, 9], seg[:, 10])
        lo_y = np.where(lin, seg[:, 10], seg[:, 11])
        hi_x = np.where(lin, seg[:, 11], seg[:, 12])
        hi_y = np.where(lin, seg[:, 12], seg[:, 13])
        nz = np.flatnonzero(counts)
        first = start[nz]
        bounds[nz, 0] = np.minimum.reduceat(lo_x, first)
        bounds[nz, 1] = np.minimum.reduceat(lo_y, first)
        bounds[nz, 2] = np.maximum.reduceat(hi_x, first)
        bounds[nz, 3] = np.maximum.reduceat(hi_y, first)
    return LevelGeometry(tiles=tiles, segments=seg, cell_start=start, cell_bounds=bounds,
                 hor_edges=hor_edges, ver_edges=ver_edges)


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


def build_entities(md: MapData, level: LevelGeometry, source: str) -> EntityRows:
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
