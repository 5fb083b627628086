"""Array layout of the compiled simulation state.

All mutable state lives in a few flat numpy arrays so a tick is one compiled call, a snapshot
is a handful of array copies, and the same code runs interpreted (``NUMBA_DISABLE_JIT=1``).
Column indices are module constants so numba folds them.
"""

from __future__ import annotations

# -- level segments: float64 [S, 16] -------------------------------------------------------
# Linear: kind, x1, y1, x2, y2, px, py, lensq, oriented, minx, miny, maxx, maxy, len, nx, ny
# Arc:    kind, cx, cy, hor, ver, convex, phx, phy, pvx, pvy, minx, miny, maxx, maxy, -, -
SEG_COLS = 16

# -- ninja: float64 [N_COLS] -----------------------------------------------------------------
(
    N_X, N_Y, N_VX, N_VY, N_XOLD, N_YOLD, N_VXOLD, N_VYOLD,
    N_GRAVITY, N_DRAG, N_STATE, N_AIRBORN, N_AIRBORN_OLD, N_WALLED, N_WALL_NORMAL,
    N_HOR, N_JUMP, N_JUMP_OLD, N_JUMP_DURATION,
    N_JUMP_BUF, N_FLOOR_BUF, N_WALL_BUF, N_LP_BUF,
    N_FLOOR_NX, N_FLOOR_NY, N_CEIL_NX, N_CEIL_NY,
    N_FLOOR_COUNT, N_CEIL_COUNT, N_FLOOR_SX, N_FLOOR_SY, N_CEIL_SX, N_CEIL_SY,
    N_CRUSHABLE, N_XCRUSH, N_YCRUSH, N_CRUSH_LEN, N_LP_NX, N_LP_NY,
    N_GOLD, N_DOORS, N_DEATH_CAUSE, N_TWO,
) = range(43)
N_COLS = 43

DEATH_CAUSES = ("", "mine", "impact", "crush", "thwump", "shove_thwump", "drone", "death_ball")
CAUSE_MINE, CAUSE_IMPACT, CAUSE_CRUSH, CAUSE_THWUMP, CAUSE_SHOVE, CAUSE_DRONE, CAUSE_BALL = (
    range(1, 8)
)

# -- entities: int64 [E, EI_COLS] and float64 [E, EF_COLS] --------------------------------
EI_KIND, EI_GROUP, EI_INDEX, EI_ACTIVE, EI_CX, EI_CY, EI_SEQ, EI_LINK = range(8)
EI_COLS = 8
# EI_SEQ: order of insertion into the grid cell (-1: not in the grid). Cell lists are ordered
# by it, which reproduces append/remove list semantics.
# EI_LINK: an exit switch's door row; a door's segment cell id.

(
    F_X, F_Y, F_STATE, F_RADIUS, F_VX, F_VY, F_OX, F_OY, F_NX, F_NY,
    F_DIR, F_MODE, F_TX, F_TY, F_FLAG, F_TIMER, F_SPEED, F_STEP, F_SEMI,
    F_E1X, F_E1Y, F_E2X, F_E2Y, F_VERTICAL, F_XDIR, F_YDIR, F_ORIENT,
) = range(27)
EF_COLS = 27
# F_FLAG: door closed / boost pad touching / exit switch hit / shove thwump activated.
# F_DIR: drone direction 0..3 / thwump direction +-1.  F_MODE: drone mode.
# F_NX/F_NY: launch pad and one-way normal.  F_E*: a door's two half-tile grid edges.

# -- misc: int64 [M_COLS] ------------------------------------------------------------------
M_FRAME, M_SEQ, M_DEATH_BALLS, M_SOLID_DOORS = range(4)
M_COLS = 4

# Entity kinds.
K_MINE, K_GOLD, K_EXIT, K_SWITCH, K_DOOR, K_LOCKED, K_TRAP = 1, 2, 3, 4, 5, 6, 8
K_LAUNCH, K_ONEWAY, K_ZAP, K_BOUNCE, K_THWUMP, K_MINE_SAFE = 10, 11, 14, 17, 20, 21
K_BOOST, K_BALL, K_MINI, K_SHOVE = 24, 25, 26, 28
