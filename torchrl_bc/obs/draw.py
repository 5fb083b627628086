"""Compiled stamps and entity drawing over the simulator's entity arrays.

The per-frame part of the pictures: tile layers are rasterised once per level (``raster``),
then every frame only copies a crop and stamps entities and the ninja. Runs under numba
(``NUMBA_DISABLE_JIT=1`` runs the same code in Python).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from torchrl_bc.sim import entities as E
from torchrl_bc.sim import jitcache  # noqa: F401  (before any njit: cache keyed on all sources)
from torchrl_bc.sim import layout as L

_jit = njit(cache=True, nogil=True)

# Indices into the value table passed to :func:`draw_entities` (see ``raster.VALUES``).
(
    V_MINE_SAFE, V_BOUNCE, V_ONE_WAY, V_EXIT_CLOSED, V_BOOST, V_DOOR, V_DOOR_SWITCH, V_LAUNCH,
    V_GOLD, V_THWUMP, V_MINE_TOGGLING, V_SHOVE, V_EXIT_SWITCH, V_EXIT_OPEN, V_MINI, V_ZAP,
    V_BALL, V_MINE_DEADLY, V_NINJA,
) = range(19)
VALUE_NAMES = (
    "mine_safe", "bounce_block", "one_way", "exit_closed", "boost_pad", "door", "door_switch",
    "launch_pad", "gold", "thwump", "mine_toggling", "shove_thwump", "exit_switch", "exit_open",
    "mini_drone", "zap_drone", "death_ball", "mine_deadly", "ninja",
)


@_jit
def stamp_disc(img, fx, fy, rad, value):
    """Fill pixels whose centre lies within ``rad`` of (fx, fy); the centre pixel always."""
    h, w = img.shape
    x0 = max(math.floor(fx - rad), 0)
    x1 = min(math.floor(fx + rad) + 1, w)
    y0 = max(math.floor(fy - rad), 0)
    y1 = min(math.floor(fy + rad) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    r2 = rad * rad
    for i in range(y0, y1):
        dy = i + 0.5 - fy
        for j in range(x0, x1):
            dx = j + 0.5 - fx
            if dy * dy + dx * dx <= r2:
                img[i, j] = value
    cx = math.floor(fx)
    cy = math.floor(fy)
    if 0 <= cx < w and 0 <= cy < h:
        img[cy, cx] = value


@_jit
def stamp_square(img, fx, fy, semi, value):
    """Fill the axis-aligned square of half side ``semi`` (at least one pixel)."""
    h, w = img.shape
    x0 = max(math.floor(fx - semi + 0.5), 0)
    x1 = min(max(math.floor(fx + semi + 0.5), math.floor(fx) + 1), w)
    y0 = max(math.floor(fy - semi + 0.5), 0)
    y1 = min(max(math.floor(fy + semi + 0.5), math.floor(fy) + 1), h)
    for i in range(y0, y1):
        for j in range(x0, x1):
            img[i, j] = value


@_jit
def stamp_line(img, ax, ay, bx, by, value, thick):
    """Draw a segment by dense sampling, ``thick`` pixels wide (square brush)."""
    h, w = img.shape
    n = math.ceil(max(abs(bx - ax), abs(by - ay)) * 2) + 1
    step = 1.0 / (n - 1) if n > 1 else 0.0
    lo = -(thick // 2)
    for k in range(n):
        t = k * step if k < n - 1 else 1.0
        if n == 1:
            t = 0.0
        x = math.floor(ax + t * (bx - ax))
        y = math.floor(ay + t * (by - ay))
        for oy in range(lo, lo + thick):
            for ox in range(lo, lo + thick):
                xx = x + ox
                yy = y + oy
                if 0 <= xx < w and 0 <= yy < h:
                    img[yy, xx] = value


@_jit
def draw_entities(img, ei, ef, dseg, rows, vals, scale, ox, oy, cull):
    """Stamp entity ``rows`` into ``img``; world (x, y) lands at (x/scale - ox, y/scale - oy).

    With ``cull`` > 0, entities whose centre is more than ``cull`` pixels outside the image
    are skipped (the moving-entity pass of the player crop).
    """
    h, w = img.shape
    thick = 2 if scale < 2 else 1
    for r in range(rows.shape[0]):
        e = rows[r]
        k = ei[e, L.EI_KIND]
        fx = ef[e, L.F_X] / scale - ox
        fy = ef[e, L.F_Y] / scale - oy
        if cull > 0 and not (-cull < fx < w + cull and -cull < fy < h + cull):
            continue
        active = ei[e, L.EI_ACTIVE] != 0
        if k == E.MINE or k == E.MINE_SAFE:
            st = ef[e, L.F_STATE]
            v = vals[V_MINE_DEADLY] if st == 0 else vals[V_MINE_SAFE] if st == 1 \
                else vals[V_MINE_TOGGLING]
            stamp_disc(img, fx, fy, ef[e, L.F_RADIUS] / scale, v)
        elif k == E.GOLD:
            if active:
                stamp_disc(img, fx, fy, 6 / scale, vals[V_GOLD])
        elif k == E.EXIT:
            v = vals[V_EXIT_OPEN] if ef[e, L.F_FLAG] != 0 else vals[V_EXIT_CLOSED]
            stamp_square(img, fx, fy, 12 / scale, v)
        elif k == E.EXIT_SWITCH:
            if active:
                stamp_disc(img, fx, fy, 6 / scale, vals[V_EXIT_SWITCH])
        elif k == E.DOOR or k == E.LOCKED_DOOR or k == E.TRAP_DOOR:
            if ef[e, L.F_FLAG] != 0:
                stamp_line(img, dseg[e, 1] / scale - ox, dseg[e, 2] / scale - oy,
                           dseg[e, 3] / scale - ox, dseg[e, 4] / scale - oy, vals[V_DOOR],
                           thick)
            if k != E.DOOR and active:
                stamp_disc(img, fx, fy, 5 / scale, vals[V_DOOR_SWITCH])
        elif k == E.LAUNCH_PAD:
            stamp_disc(img, fx, fy, 6 / scale, vals[V_LAUNCH])
        elif k == E.BOOST_PAD:
            stamp_disc(img, fx, fy, 6 / scale, vals[V_BOOST])
        elif k == E.ONE_WAY:
            tx = -ef[e, L.F_NY] * 12 / scale
            ty = ef[e, L.F_NX] * 12 / scale
            stamp_line(img, fx - tx, fy - ty, fx + tx, fy + ty, vals[V_ONE_WAY], thick)
        elif k == E.ZAP_DRONE:
            stamp_disc(img, fx, fy, ef[e, L.F_RADIUS] / scale, vals[V_ZAP])
        elif k == E.MINI_DRONE:
            stamp_disc(img, fx, fy, ef[e, L.F_RADIUS] / scale, vals[V_MINI])
        elif k == E.DEATH_BALL:
            stamp_disc(img, fx, fy, ef[e, L.F_RADIUS] / scale, vals[V_BALL])
        elif k == E.BOUNCE_BLOCK:
            stamp_square(img, fx, fy, ef[e, L.F_SEMI] / scale, vals[V_BOUNCE])
        elif k == E.THWUMP:
            stamp_square(img, fx, fy, ef[e, L.F_SEMI] / scale, vals[V_THWUMP])
        elif k == E.SHOVE_THWUMP:
            stamp_square(img, fx, fy, ef[e, L.F_SEMI] / scale, vals[V_SHOVE])


def value_table(values: dict[str, int]) -> np.ndarray:
    return np.array([values[name] for name in VALUE_NAMES], dtype=np.uint8)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every drawing kernel."""
    img = np.zeros((4, 4), np.uint8)
    stamp_disc(img, 1.0, 1.0, 1.0, 1)
    stamp_square(img, 1.0, 1.0, 1.0, 1)
    stamp_line(img, 0.0, 0.0, 3.0, 3.0, 1, 1)
    draw_entities(img, np.zeros((0, L.EI_COLS), np.int64), np.zeros((0, L.EF_COLS)),
                  np.zeros((0, 16)), np.zeros(0, np.int64), np.zeros(19, np.uint8), 1, 0.0,
                  0.0, 0.0)
