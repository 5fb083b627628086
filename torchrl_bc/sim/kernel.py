"""The compiled per-tick path: collision math, the ninja and every entity behaviour.

Everything here is a numba ``njit`` function over the flat arrays described in ``layout``;
with ``NUMBA_DISABLE_JIT=1`` the very same code runs as plain Python. No ``fastmath``: IEEE
semantics and the reference's operation order are part of the contract.

Squares the reference writes as ``x**2`` go through :func:`_sq`, which calls ``math.pow`` with
an exponent read from the state array at run time. CPython's ``x**2`` is the C library's
``pow(x, 2.0)``, which differs from ``x*x`` in the last bit for a small share of inputs; a
compile-time constant exponent would let LLVM rewrite the call as a multiply.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config as numba_config
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import constants as C
from . import jitcache  # noqa: F401  (before any njit: cache keyed on all kernel sources)
from .layout import (
    CAUSE_BALL,
    CAUSE_CRUSH,
    CAUSE_DRONE,
    CAUSE_IMPACT,
    CAUSE_MINE,
    CAUSE_SHOVE,
    CAUSE_THWUMP,
    EI_ACTIVE,
    EI_CX,
    EI_CY,
    EI_GROUP,
    EI_INDEX,
    EI_KIND,
    EI_LINK,
    EI_SEQ,
    F_DIR,
    F_E1X,
    F_E1Y,
    F_E2X,
    F_E2Y,
    F_FLAG,
    F_MODE,
    F_NX,
    F_NY,
    F_OX,
    F_OY,
    F_RADIUS,
    F_SEMI,
    F_SPEED,
    F_STATE,
    F_STEP,
    F_TIMER,
    F_TX,
    F_TY,
    F_VERTICAL,
    F_VX,
    F_VY,
    F_X,
    F_XDIR,
    F_Y,
    F_YDIR,
    K_BALL,
    K_BOOST,
    K_BOUNCE,
    K_DOOR,
    K_EXIT,
    K_GOLD,
    K_LAUNCH,
    K_LOCKED,
    K_MINE,
    K_MINE_SAFE,
    K_MINI,
    K_ONEWAY,
    K_SHOVE,
    K_SWITCH,
    K_THWUMP,
    K_TRAP,
    K_ZAP,
    M_DEATH_BALLS,
    M_FRAME,
    M_SEQ,
    M_SOLID_DOORS,
    N_AIRBORN,
    N_AIRBORN_OLD,
    N_CEIL_COUNT,
    N_CEIL_NX,
    N_CEIL_SX,
    N_CEIL_SY,
    N_CRUSH_LEN,
    N_CRUSHABLE,
    N_DEATH_CAUSE,
    N_DOORS,
    N_DRAG,
    N_FLOOR_BUF,
    N_FLOOR_COUNT,
    N_FLOOR_NX,
    N_FLOOR_NY,
    N_FLOOR_SX,
    N_FLOOR_SY,
    N_GOLD,
    N_GRAVITY,
    N_HOR,
    N_JUMP,
    N_JUMP_BUF,
    N_JUMP_DURATION,
    N_JUMP_OLD,
    N_LP_BUF,
    N_LP_NX,
    N_LP_NY,
    N_STATE,
    N_TWO,
    N_VX,
    N_VXOLD,
    N_VY,
    N_VYOLD,
    N_WALL_BUF,
    N_WALL_NORMAL,
    N_WALLED,
    N_X,
    N_XCRUSH,
    N_XOLD,
    N_Y,
    N_YCRUSH,
    N_YOLD,
)

_jit = njit(cache=True, nogil=True, error_model="numpy")
_inline = njit(cache=True, nogil=True, inline="always", error_model="numpy")


if numba_config.DISABLE_JIT:

    def _borrow(a):
        return a

else:

    @intrinsic
    def _borrow(typingctx, a):
        """The same array without its reference count (a NULL meminfo).

        Every call into a compiled function that is not inlined increments and decrements the
        count of each array argument with a locked instruction; on entity-heavy levels that
        was about a third of the tick. The entry points borrow their arguments once: the
        caller's references keep the memory alive for the whole call, and nothing here keeps
        an array past it.
        """
        if not isinstance(a, types.Array):
            return None

        def codegen(context, builder, signature, args):
            ary = context.make_array(a)(context, builder, value=args[0])
            ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
            ary.parent = cgutils.get_null_value(ary.parent.type)
            return ary._getvalue()

        return a(a), codegen

NINJA_RADIUS = float(C.NINJA_RADIUS)
ARC_RADIUS = C.ARC_RADIUS
GRAVITY_FALL, GRAVITY_JUMP = C.GRAVITY_FALL, C.GRAVITY_JUMP
GROUND_ACCEL, AIR_ACCEL, MAX_HOR_SPEED = C.GROUND_ACCEL, C.AIR_ACCEL, C.MAX_HOR_SPEED
DRAG_REGULAR, DRAG_SLOW = C.DRAG_REGULAR, C.DRAG_SLOW
FRICTION_GROUND, FRICTION_GROUND_SLOW = C.FRICTION_GROUND, C.FRICTION_GROUND_SLOW
FRICTION_WALL = C.FRICTION_WALL
MAX_JUMP_DURATION = C.MAX_JUMP_DURATION
MAX_SURVIVABLE_IMPACT = C.MAX_SURVIVABLE_IMPACT
MIN_SURVIVABLE_CRUSHING = C.MIN_SURVIVABLE_CRUSHING
LAUNCH_PAD_BOOST = C.LAUNCH_PAD_BOOST
THWUMP_FORWARD, THWUMP_BACKWARD = C.THWUMP_SPEED_FORWARD, C.THWUMP_SPEED_BACK
BOUNCE_STIFFNESS, BOUNCE_DAMPENING, BOUNCE_STRENGTH = C.BOUNCE_BLOCK_SPRING
JUMP_FLAT_Y = float(C.JUMP_FLAT[1])
JUMP_WALL_X, JUMP_WALL_Y = float(C.JUMP_WALL[0]), float(C.JUMP_WALL[1])
JUMP_SLIDE_X, JUMP_SLIDE_Y = float(C.JUMP_WALL_SLIDING[0]), float(C.JUMP_WALL_SLIDING[1])
JUMP_DOWNHILL_X, JUMP_DOWNHILL_Y = C.JUMP_SLOPE_DOWNHILL
JUMP_UPHILL_Y = C.JUMP_SLOPE_UPHILL_Y
JUMP_PERP_X, JUMP_PERP_Y = C.JUMP_SLOPE_PERPENDICULAR
LP_JUMP_SCALAR, LP_JUMP_FACTOR = C.LAUNCH_PAD_JUMP
# Exact x positions at which the reference nudges a vanishing depenetration offset by 2**-47.
NUDGE_LEFT_A = 50.51197510492316
NUDGE_LEFT_B = 49.23232124849253
NUDGE_RIGHT = 49.153536108584795
_SEQ_SPAN = 1 << 40


# ----------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------
@_jit
def _sq(x, two):
    """``x**2`` exactly as CPython computes it (the C library's ``pow(x, 2.0)``).

    pow is accurate to ~0.52 ulp, so it can only differ from the correctly rounded ``x*x``
    when the exact square lies near the midpoint between two doubles. The exact rounding
    error of ``x*x`` (Dekker's product) tells when that is possible; only then is pow called.
    """
    if x == 0.0:  # pow(+-0, 2) is +0: skip the libm call for the common zero velocity
        return 0.0
    p = x * x
    e = (np.float64(p).view(np.int64) >> 52) & 0x7FF  # biased exponent of p
    if e <= 120 or e >= 2046:  # tiny, huge, inf or nan: Dekker's split is not exact there
        return math.pow(x, two)
    c = 134217729.0 * x  # 2**27 + 1
    hi = c - (c - x)
    lo = x - hi
    err = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo  # exactly x*x - p
    ulp = np.int64((e - 52) << 52).view(np.float64)
    # glibc's pow is within 0.52 ulp, so it can return the other neighbour of x*x only when
    # the exact square is >= 0.48 ulp from p (40M random inputs: no disagreement below 0.4925).
    if abs(err) < 0.48 * ulp:
        return p
    return math.pow(x, two)


@_inline
def _clampi(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


@_inline
def overlap_circles(x1, y1, r1, x2, y2, r2, two):
    dx = x1 - x2
    dy = y1 - y2
    r = r1 + r2
    # Far apart on one axis: the rounded distance is >= that axis gap, so the exact test
    # below would also say no (most mines, most ticks).
    if abs(dx) > r * 1.000001 or abs(dy) > r * 1.000001:
        return False
    return math.sqrt(_sq(dx, two) + _sq(dy, two)) < r


@_jit
def overlap_circle_segment(x, y, r, x1, y1, x2, y2, two):
    px = x2 - x1
    py = y2 - y1
    dx = x - x1
    dy = y - y1
    u = (dx * px + dy * py) / (_sq(px, two) + _sq(py, two))
    u = max(u, 0.0)
    u = min(u, 1.0)
    a = x1 + u * px
    b = y1 + u * py
    return _sq(x - a, two) + _sq(y - b, two) < _sq(r, two)


@_inline
def square_penetration(sx, sy, px, py, semi):
    """(hit, normal x, normal y, depth along the normal, depth on the other axis)."""
    dx = px - sx
    dy = py - sy
    penx = semi - abs(dx)
    peny = semi - abs(dy)
    if penx > 0 and peny > 0:
        if peny <= penx:
            return True, 0.0, -1.0 if dy < 0 else 1.0, peny, penx
        return True, -1.0 if dx < 0 else 1.0, 0.0, penx, peny
    return False, 0.0, 0.0, 0.0, 0.0


@_inline
def closest_point(segs, k, x, y, two):
    """Closest point of a segment row to (x, y), and whether (x, y) is behind it."""
    if segs[k, 0] == 0.0:
        dx = x - segs[k, 1]
        dy = y - segs[k, 2]
        px = segs[k, 5]
        py = segs[k, 6]
        u = (dx * px + dy * py) / segs[k, 7]
        u = max(u, 0.0)
        u = min(u, 1.0)
        back = dy * px - dx * py < 0 and segs[k, 8] != 0.0
        return back, segs[k, 1] + u * px, segs[k, 2] + u * py
    hor = segs[k, 3]
    ver = segs[k, 4]
    dx = x - segs[k, 1]
    dy = y - segs[k, 2]
    if dx * hor > 0 and dy * ver > 0:
        dist = math.sqrt(_sq(dx, two) + _sq(dy, two))
        if dist == 0:
            if dx * hor > dy * ver:
                return False, segs[k, 6], segs[k, 7]
            return False, segs[k, 8], segs[k, 9]
        a = segs[k, 1] + ARC_RADIUS * dx / dist
        b = segs[k, 2] + ARC_RADIUS * dy / dist
        if segs[k, 5] != 0.0:
            return dist < ARC_RADIUS, a, b
        return dist > ARC_RADIUS, a, b
    if dx * hor > dy * ver:
        return False, segs[k, 6], segs[k, 7]
    return False, segs[k, 8], segs[k, 9]


@_jit
def time_circle_vs_point(x, y, vx, vy, a, b, r_sq, vel_sq, two):
    """``r_sq`` and ``vel_sq`` are ``r**2`` and ``vx**2 + vy**2``, hoisted by the caller (the
    reference recomputes them per call; the values are identical)."""
    dx = x - a
    dy = y - b
    dist_sq = _sq(dx, two) + _sq(dy, two)
    dot = dx * vx + dy * vy
    if dist_sq - r_sq > 0:
        radicand = _sq(dot, two) - vel_sq * (dist_sq - r_sq)
        if vel_sq > 0.0001 and dot < 0 and radicand >= 0:
            return (-dot - math.sqrt(radicand)) / vel_sq
        return 1.0
    return 0.0


@_jit
def _time_circle_vs_line(x, y, vx, vy, a1, b1, seg_len, nx, ny, r):
    """Sweep against the segment's line: 0 if already within r of it, else the time the
    circle's edge reaches the line, if the contact point then lies on the segment."""
    rx = x - a1
    ry = y - b1
    across = rx * ny - ry * nx  # signed distance from the line
    along = rx * nx + ry * ny  # position along the segment
    if abs(across) < r:
        return 0.0 if 0 <= along <= seg_len else 1.0
    closing = vx * ny - vy * nx
    if not closing * across < 0:
        return 1.0
    t = min((abs(across) - r) / abs(closing), 1.0)
    hit = along + t * (vx * nx + vy * ny)
    return t if 0 <= hit <= seg_len else 1.0


@_jit
def _time_circle_vs_arc(x, y, vx, vy, cx, cy, hor, ver, r, vel_sq, two):
    dx = x - cx
    dy = y - cy
    dist_sq = _sq(dx, two) + _sq(dy, two)
    dot = dx * vx + dy * vy
    outer = ARC_RADIUS + r
    inner = ARC_RADIUS - r
    t = 1.0
    if dist_sq > _sq(outer, two):
        radicand = _sq(dot, two) - vel_sq * (dist_sq - _sq(outer, two))
        if vel_sq > 0.0001 and dot < 0 and radicand >= 0:
            t = (-dot - math.sqrt(radicand)) / vel_sq
    elif dist_sq < _sq(inner, two):
        radicand = _sq(dot, two) - vel_sq * (dist_sq - _sq(inner, two))
        if vel_sq > 0.0001:
            t = min((-dot + math.sqrt(radicand)) / vel_sq, 1.0)
    else:
        t = 0.0
    if (dx + t * vx) * hor > 0 and (dy + t * vy) * ver > 0:
        return t
    return 1.0


@_inline
def time_of_impact(segs, k, x, y, vx, vy, r, r_sq, vel_sq, two):
    """Fraction of the move after which a circle of radius r touches the segment."""
    if segs[k, 0] == 0.0:
        t1 = time_circle_vs_point(x, y, vx, vy, segs[k, 1], segs[k, 2], r_sq, vel_sq, two)
        t2 = time_circle_vs_point(x, y, vx, vy, segs[k, 3], segs[k, 4], r_sq, vel_sq, two)
        t3 = _time_circle_vs_line(
            x, y, vx, vy, segs[k, 1], segs[k, 2], segs[k, 13], segs[k, 14], segs[k, 15], r
        )
    else:
        t1 = time_circle_vs_point(x, y, vx, vy, segs[k, 6], segs[k, 7], r_sq, vel_sq, two)
        t2 = time_circle_vs_point(x, y, vx, vy, segs[k, 8], segs[k, 9], r_sq, vel_sq, two)
        t3 = _time_circle_vs_arc(
            x, y, vx, vy, segs[k, 1], segs[k, 2], segs[k, 3], segs[k, 4], r, vel_sq, two
        )
    return min(t1, t2, t3)


@_inline
def query_region(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch, x1, y1, x2, y2, out):
    """Indices of segments near a box, in the reference's order (door segments sit after the
    tile segments, one row per entity row).

    Cells are scanned column by column and skipped when their box misses the query. Closed
    doors join only with ``solid_doors`` (the reference's index predates its doors).
    """
    minx = x1 if x1 < x2 else x2
    maxx = x2 if x1 < x2 else x1
    miny = y1 if y1 < y2 else y2
    maxy = y2 if y1 < y2 else y1
    cx0 = _clampi(math.floor(minx / 24), 0, 43)
    cx1 = _clampi(math.floor(maxx / 24), 0, 43)
    cy0 = _clampi(math.floor(miny / 24), 0, 24)
    cy1 = _clampi(math.floor(maxy / 24), 0, 24)
    solid = misc[M_SOLID_DOORS] != 0
    door_base = cs[cs.shape[0] - 1]  # door segments follow the tile rows
    n = 0
    for cx in range(cx0, cx1 + 1):
        for cy in range(cy0, cy1 + 1):
            c = cx * 25 + cy
            s0 = cs[c]
            s1 = cs[c + 1]
            if s1 > s0:
                if not (maxx < cb[c, 0] or minx > cb[c, 2] or maxy < cb[c, 1] or miny > cb[c, 3]):
                    for k in range(s0, s1):
                        out[n] = k
                        n += 1
            if solid:
                for e in range(ei.shape[0]):
                    if _is_door(ei[e, EI_KIND]) and ei[e, EI_LINK] == c and ef[e, F_FLAG] != 0:
                        out[n] = door_base + e
                        n += 1
    return n


@_inline
def _is_door(kind):
    return kind == K_DOOR or kind == K_LOCKED or kind == K_TRAP


@_inline
def sweep(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch, buf, x, y, dx, dy, r, two):
    """Earliest time of impact of a circle moving by (dx, dy) against nearby segments.

    Segments whose box stays more than r + 0.5 px away from the swept box on some axis cannot
    be touched during the move (every time they would report is >= 1), so they are skipped.
    """
    xn = x + dx
    yn = y + dy
    w = r + 1
    bx0 = x if x < xn else xn
    by0 = y if y < yn else yn
    bx1 = x if x > xn else xn
    by1 = y if y > yn else yn
    n = query_region(
        segs,
        cs,
        cb,
        nin,
        ei,
        ef,
        misc,
        hor_e,
        ver_e,
        scratch,
        bx0 - w,
        by0 - w,
        bx1 + w,
        by1 + w,
        buf,
    )
    reach = r + 0.5
    bx0 -= reach
    by0 -= reach
    bx1 += reach
    by1 += reach
    r_sq = _sq(r, two)
    vel_sq = _sq(dx, two) + _sq(dy, two)
    best = 1.0
    for i in range(n):
        k = buf[i]
        if segs[k, 0] == 0.0:
            if segs[k, 11] < bx0 or segs[k, 9] > bx1 or segs[k, 12] < by0 or segs[k, 10] > by1:
                continue
        elif segs[k, 12] < bx0 or segs[k, 10] > bx1 or segs[k, 13] < by0 or segs[k, 11] > by1:
            continue
        t = time_of_impact(segs, k, x, y, dx, dy, r, r_sq, vel_sq, two)
        if t == 0:
            return 0.0
        if t < best:
            best = t
    return best


@_inline
def nearest_point(segs, buf, n, x, y, r, two):
    """(side, a, b) of the closest segment point among buf[:n]; side 0 if none, -1 behind.

    Segments whose box misses the query square are skipped; front-facing candidates get a 0.1
    head start, as in the reference.
    """
    best = 0.0
    side = 0
    ra = 0.0
    rb = 0.0
    qx0 = x - r
    qy0 = y - r
    qx1 = x + r
    qy1 = y + r
    for i in range(n):
        k = buf[i]
        if segs[k, 0] == 0.0:
            if segs[k, 11] < qx0 or segs[k, 9] > qx1 or segs[k, 12] < qy0 or segs[k, 10] > qy1:
                continue
        elif segs[k, 12] < qx0 or segs[k, 10] > qx1 or segs[k, 13] < qy0 or segs[k, 11] > qy1:
            continue
        back, a, b = closest_point(segs, k, x, y, two)
        # Only the order of the distances matters. Compare with plain products first; they
        # differ from the reference's pow-based squares by a few ulps at most, so only a
        # near tie needs the exact values of both candidates.
        dx = x - a
        dy = y - b
        fast = dx * dx + dy * dy
        if not back:
            fast -= 0.1
        if side != 0:
            gap = fast - best
            tol = 1e-12 * (abs(fast) + abs(best) + 1.0)
            if gap > tol:
                continue
            if gap >= -tol:  # near tie: decide exactly, as the reference does
                d = _sq(dx, two) + _sq(dy, two)
                if not back:
                    d -= 0.1
                db = _sq(x - ra, two) + _sq(y - rb, two)
                if side == 1:
                    db -= 0.1
                if not d < db:
                    continue
        best = fast
        ra = a
        rb = b
        side = -1 if back else 1
    return side, ra, rb


@_inline
def is_empty_row(hor_edges, x1, x2, y, direction):
    if direction == 1:
        row = y + 1
    elif direction == -1:
        row = y
    else:
        return False
    row = _clampi(row, 0, 49)
    for x in range(x1, x2 + 1):
        if hor_edges[_clampi(x, 0, 87), row] != 0:
            return False
    return True


@_inline
def is_empty_column(ver_edges, x, y1, y2, direction):
    if direction == 1:
        col = x + 1
    elif direction == -1:
        col = x
    else:
        return False
    col = _clampi(col, 0, 87)
    for y in range(y1, y2 + 1):
        if ver_edges[col, _clampi(y, 0, 49)] != 0:
            return False
    return True


# ----------------------------------------------------------------------------------------
# grid bookkeeping
# ----------------------------------------------------------------------------------------
@_inline
def _grid_append(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    misc = misc
    ei[e, EI_SEQ] = misc[M_SEQ]
    misc[M_SEQ] += 1


@_inline
def grid_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    """Keep an entity listed in the cell holding its centre (moving to a new cell appends
    it at the end of that cell's list)."""
    cx = _clampi(math.floor(ef[e, F_X] / 24), 0, 43)
    cy = _clampi(math.floor(ef[e, F_Y] / 24), 0, 24)
    if cx != ei[e, EI_CX] or cy != ei[e, EI_CY]:
        ei[e, EI_CX] = cx
        ei[e, EI_CY] = cy
        _grid_append(e, nin, ei, ef, misc, hor_e, ver_e, scratch)


@_inline
def entities_near(nin, ei, ef, misc, hor_e, ver_e, scratch, x, y, out):
    """Active entities in the 3x3 cells around a point: cell by cell (x-major), each cell in
    insertion order. Returns the count written to ``out``."""
    cx = _clampi(math.floor(x / 24), 0, 43)
    cy = _clampi(math.floor(y / 24), 0, 24)
    x0 = max(cx - 1, 0)
    x1 = min(cx + 1, 43)
    y0 = max(cy - 1, 0)
    y1 = min(cy + 1, 24)
    rows = y1 - y0 + 1
    n = 0
    for e in range(ei.shape[0]):
        if ei[e, EI_ACTIVE] == 0 or ei[e, EI_SEQ] < 0:
            continue
        ex = ei[e, EI_CX]
        ey = ei[e, EI_CY]
        if ex < x0 or ex > x1 or ey < y0 or ey > y1:
            continue
        key = ((ex - x0) * rows + (ey - y0)) * _SEQ_SPAN + ei[e, EI_SEQ]
        j = n
        while j > 0 and _near_key(ei, out[j - 1], x0, y0, rows) > key:
            out[j] = out[j - 1]
            j -= 1
        out[j] = e
        n += 1
    return n


@_inline
def _near_key(ei, e, x0, y0, rows):
    return ((ei[e, EI_CX] - x0) * rows + (ei[e, EI_CY] - y0)) * _SEQ_SPAN + ei[e, EI_SEQ]


# ----------------------------------------------------------------------------------------
# ninja events
# ----------------------------------------------------------------------------------------
@_inline
def ninja_valid_target(nin):
    s = nin[N_STATE]
    return s != 6 and s != 8 and s != 9


@_jit
def ninja_win(nin):
    if nin[N_STATE] < 6:
        if nin[N_STATE] == 3:
            nin[N_GRAVITY] = GRAVITY_FALL
        nin[N_STATE] = 8


@_inline
def ninja_kill(nin, cause):
    if nin[N_STATE] < 6:
        nin[N_DEATH_CAUSE] = cause
        if nin[N_STATE] == 3:
            nin[N_GRAVITY] = GRAVITY_FALL
        nin[N_STATE] = 7


# ----------------------------------------------------------------------------------------
# entities: movement and thinking
# ----------------------------------------------------------------------------------------
@_inline
def _mine_set(ef, e, state):
    ef[e, F_STATE] = state
    ef[e, F_RADIUS] = 4.0 if state == 0 else 3.5 if state == 1 else 4.5


@_inline
def _door_set_closed(e, nin, ei, ef, misc, hor_e, ver_e, scratch, closed):
    ef[e, F_FLAG] = 1.0 if closed else 0.0
    step = 1 if closed else -1
    grid = ver_e if ef[e, F_VERTICAL] != 0 else hor_e
    grid[int(ef[e, F_E1X]), int(ef[e, F_E1Y])] += step
    grid[int(ef[e, F_E2X]), int(ef[e, F_E2Y])] += step


@_inline
def _bounce_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    ef[e, F_VX] *= BOUNCE_DAMPENING
    ef[e, F_VY] *= BOUNCE_DAMPENING
    ef[e, F_X] += ef[e, F_VX]
    ef[e, F_Y] += ef[e, F_VY]
    fx = BOUNCE_STIFFNESS * (ef[e, F_OX] - ef[e, F_X])
    fy = BOUNCE_STIFFNESS * (ef[e, F_OY] - ef[e, F_Y])
    ef[e, F_X] += fx
    ef[e, F_Y] += fy
    ef[e, F_VX] += fx
    ef[e, F_VY] += fy
    grid_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)


@_jit
def _thwump_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    state = ef[e, F_STATE]
    if state == 0:
        return
    speed = THWUMP_FORWARD if state == 1 else THWUMP_BACKWARD
    sdir = int(ef[e, F_DIR] * state)
    vertical = ef[e, F_FLAG] == 0
    # columns of the position along the axis of motion, its origin, and the other axis
    pos, origin, other = (F_Y, F_OY, F_X) if vertical else (F_X, F_OX, F_Y)
    p = ef[e, pos]
    p_new = p + speed * sdir
    if state == -1 and (p_new - ef[e, origin]) * (p - ef[e, origin]) < 0:
        ef[e, pos] = ef[e, origin]  # back home
        ef[e, F_STATE] = 0
        return
    cell = math.floor((p + sdir * 11) / 12)
    if cell != math.floor((p_new + sdir * 11) / 12):
        c1 = math.floor((ef[e, other] - 11) / 12)
        c2 = math.floor((ef[e, other] + 11) / 12)
        if not _edge_clear(hor_e, ver_e, vertical, c1, c2, cell, sdir):
            ef[e, F_STATE] = -1  # hit a wall: retreat
            return
    ef[e, pos] = p_new
    grid_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)


@_inline
def _edge_clear(hor_e, ver_e, vertical, lo, hi, cell, d):
    """No solid half-tile edge across half cells lo..hi on side ``d`` of half cell ``cell``,
    moving vertically (a row of horizontal edges) or horizontally (a column)."""
    if vertical:
        return is_empty_row(hor_e, lo, hi, cell, d)
    return is_empty_column(ver_e, cell, lo, hi, d)


@_jit
def _thwump_think(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    if ef[e, F_STATE] != 0 or not ninja_valid_target(nin):
        return
    reach = 2 * (ef[e, F_SEMI] + NINJA_RADIUS)
    d = int(ef[e, F_DIR])
    vertical = ef[e, F_FLAG] == 0
    # (along, across): the thwump's axis of motion and the one it must be lined up on
    if vertical:
        along, across, n_along, n_across = ef[e, F_Y], ef[e, F_X], nin[N_Y], nin[N_X]
    else:
        along, across, n_along, n_across = ef[e, F_X], ef[e, F_Y], nin[N_X], nin[N_Y]
    if not abs(across - n_across) < reach:
        return
    target = math.floor(n_along / 12)
    cell = math.floor((along - d * 11) / 12)
    c1 = math.floor((across - 11) / 12)
    c2 = math.floor((across + 11) / 12)
    gap = target - cell
    if gap * d < 0:
        return
    i = 0  # half cells scanned towards the ninja before the first wall (at most 100)
    while i < 100:
        if not _edge_clear(hor_e, ver_e, vertical, c1, c2, cell, d):
            gap = target - cell
            break
        cell += d
        i += 1
    if i > 0 and gap * d <= 0:
        ef[e, F_STATE] = 1


@_jit
def _shove_step(e, nin, ei, ef, misc, hor_e, ver_e, scratch, xdir, ydir, speed):
    x = ef[e, F_X]
    y = ef[e, F_Y]
    if ef[e, F_YDIR] == 0:
        x_new = x + xdir * speed
        cx = math.floor(x / 12)
        if cx != math.floor(x_new / 12):
            c1 = math.floor((y - 8) / 12)
            c2 = math.floor((y + 8) / 12)
            if not is_empty_column(ver_e, cx, c1, c2, int(xdir)):
                ef[e, F_STATE] = 3
                return
        ef[e, F_X] = x_new
    else:
        y_new = y + ydir * speed
        cy = math.floor(y / 12)
        if cy != math.floor(y_new / 12):
            c1 = math.floor((x - 8) / 12)
            c2 = math.floor((x + 8) / 12)
            if not is_empty_row(hor_e, c1, c2, cy, int(ydir)):
                ef[e, F_STATE] = 3
                return
        ef[e, F_Y] = y_new
    grid_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)


@_jit
def _shove_think(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    if ef[e, F_STATE] == 1:
        if ef[e, F_FLAG] != 0:
            ef[e, F_FLAG] = 0.0
            return
        ef[e, F_STATE] = 2
    if ef[e, F_STATE] == 3:
        if abs(ef[e, F_X] - ef[e, F_OX]) + abs(ef[e, F_Y] - ef[e, F_OY]) >= 1:
            _shove_step(
                e, nin, ei, ef, misc, hor_e, ver_e, scratch, ef[e, F_XDIR], ef[e, F_YDIR], 1.0
            )
        else:
            ef[e, F_X] = ef[e, F_OX]
            ef[e, F_Y] = ef[e, F_OY]
            ef[e, F_STATE] = 0
    elif ef[e, F_STATE] == 2:
        _shove_step(
            e, nin, ei, ef, misc, hor_e, ver_e, scratch, -ef[e, F_XDIR], -ef[e, F_YDIR], 4.0
        )


# Drone directions (right, down, left, up) and turn preferences per mode.
_DIR_X = np.array([1.0, 0.0, -1.0, 0.0])
_DIR_Y = np.array([0.0, 1.0, 0.0, -1.0])
_TURNS = np.array([[1, 0, 3, 2], [3, 0, 1, 2], [0, 1, 3, 2], [0, 3, 1, 2]], dtype=np.int64)


@_inline
def _drone_try(e, nin, ei, ef, misc, hor_e, ver_e, scratch, d):
    xdir = _DIR_X[d]
    ydir = _DIR_Y[d]
    x = ef[e, F_X]
    y = ef[e, F_Y]
    r = ef[e, F_RADIUS]
    xt = x + ef[e, F_STEP] * xdir
    yt = y + ef[e, F_STEP] * ydir
    if ydir == 0:
        cx = math.floor((x + xdir * r) / 12)
        cx_target = math.floor((xt + xdir * r) / 12)
        c1 = math.floor((y - r) / 12)
        c2 = math.floor((y + r) / 12)
        while cx != cx_target:
            if not is_empty_column(ver_e, cx, c1, c2, int(xdir)):
                return False
            cx += int(xdir)
    else:
        cy = math.floor((y + ydir * r) / 12)
        cy_target = math.floor((yt + ydir * r) / 12)
        c1 = math.floor((x - r) / 12)
        c2 = math.floor((x + r) / 12)
        while cy != cy_target:
            if not is_empty_row(hor_e, c1, c2, cy, int(ydir)):
                return False
            cy += int(ydir)
    ef[e, F_TX] = xt
    ef[e, F_TY] = yt
    return True


@_inline
def _drone_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    two = nin[N_TWO]
    d = int(ef[e, F_DIR])
    speed = ef[e, F_SPEED]
    xs = speed * _DIR_X[d]
    ys = speed * _DIR_Y[d]
    dx = ef[e, F_TX] - ef[e, F_X]
    dy = ef[e, F_TY] - ef[e, F_Y]
    dist = math.sqrt(_sq(dx, two) + _sq(dy, two))
    if (
        dist < 1e-06
        or dx * (ef[e, F_TX] - (ef[e, F_X] + xs)) + dy * (ef[e, F_TY] - (ef[e, F_Y] + ys)) < 0
    ):
        ef[e, F_X] = ef[e, F_TX]
        ef[e, F_Y] = ef[e, F_TY]
        mode = int(ef[e, F_MODE])
        for i in range(4):
            nd = (d + _TURNS[mode, i]) % 4
            if _drone_try(e, nin, ei, ef, misc, hor_e, ver_e, scratch, nd):
                ef[e, F_DIR] = nd
                rest = speed - dist
                ef[e, F_X] += rest * _DIR_X[nd]
                ef[e, F_Y] += rest * _DIR_Y[nd]
                return
    else:
        ef[e, F_X] += xs
        ef[e, F_Y] += ys
        grid_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)


@_inline
def _boost_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    two = nin[N_TWO]
    if not ninja_valid_target(nin):
        ef[e, F_FLAG] = 0.0
        return
    if overlap_circles(
        ef[e, F_X], ef[e, F_Y], ef[e, F_RADIUS], nin[N_X], nin[N_Y], NINJA_RADIUS, two
    ):
        if ef[e, F_FLAG] == 0:
            speed = math.sqrt(_sq(nin[N_VX], two) + _sq(nin[N_VY], two))
            if speed > 0:
                bx = 2 * nin[N_VX] / speed
                by = 2 * nin[N_VY] / speed
                nin[N_VX] += bx
                nin[N_VY] += by
            ef[e, F_FLAG] = 1.0
    else:
        ef[e, F_FLAG] = 0.0


@_inline
def _mine_think(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    state = ef[e, F_STATE]
    if ninja_valid_target(nin):
        if state == 1:
            if overlap_circles(
                ef[e, F_X],
                ef[e, F_Y],
                ef[e, F_RADIUS],
                nin[N_X],
                nin[N_Y],
                NINJA_RADIUS,
                nin[N_TWO],
            ):
                _mine_set(ef, e, 2)
        elif state == 2:
            if not overlap_circles(
                ef[e, F_X],
                ef[e, F_Y],
                ef[e, F_RADIUS],
                nin[N_X],
                nin[N_Y],
                NINJA_RADIUS,
                nin[N_TWO],
            ):
                _mine_set(ef, e, 0)
    elif state == 2 and nin[N_STATE] == 6:
        _mine_set(ef, e, 1)


@_inline
def _door_think(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    if ef[e, F_FLAG] == 0:
        ef[e, F_TIMER] += 1
        if ef[e, F_TIMER] > 5:
            _door_set_closed(e, nin, ei, ef, misc, hor_e, ver_e, scratch, True)


@_jit
def _ball_think(e, segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch):
    two = nin[N_TWO]
    buf = scratch[0]
    if not ninja_valid_target(nin):
        ef[e, F_VX] *= 0.95
        ef[e, F_VY] *= 0.95
    else:
        dx = nin[N_X] - ef[e, F_X]
        dy = nin[N_Y] - ef[e, F_Y]
        dist = math.sqrt(_sq(dx, two) + _sq(dy, two))
        if dist > 0:
            dx /= dist
            dy /= dist
        ef[e, F_VX] += dx * 0.04
        ef[e, F_VY] += dy * 0.04
        speed = math.sqrt(_sq(ef[e, F_VX], two) + _sq(ef[e, F_VY], two))
        if speed > 0.85:
            new_speed = (speed - 0.85) * 0.9
            if new_speed <= 0.01:
                new_speed = 0.0
            new_speed += 0.85
            ef[e, F_VX] = ef[e, F_VX] / speed * new_speed
            ef[e, F_VY] = ef[e, F_VY] / speed * new_speed
    x_old = ef[e, F_X]
    y_old = ef[e, F_Y]
    vx = ef[e, F_VX]
    vy = ef[e, F_VY]
    t = sweep(
        segs,
        cs,
        cb,
        nin,
        ei,
        ef,
        misc,
        hor_e,
        ver_e,
        scratch,
        buf,
        x_old,
        y_old,
        vx,
        vy,
        8 * 0.5,
        two,
    )
    ef[e, F_X] = x_old + t * vx
    ef[e, F_Y] = y_old + t * vy
    sum_x = 0.0
    sum_y = 0.0
    for _ in range(16):
        x = ef[e, F_X]
        y = ef[e, F_Y]
        n = query_region(
            segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch, x - 8, y - 8, x + 8, y + 8, buf
        )
        side, a, b = nearest_point(segs, buf, n, x, y, 8.0, two)
        if side == 0:
            break
        dx = x - a
        dy = y - b
        dist = math.sqrt(_sq(dx, two) + _sq(dy, two))
        depth = 8 - dist * side
        if depth < 1e-07:
            break
        if dist == 0:
            return
        ux = dx / dist
        uy = dy / dist
        ef[e, F_X] += ux * depth
        ef[e, F_Y] += uy * depth
        sum_x += ux
        sum_y += uy
    norm = math.sqrt(_sq(sum_x, two) + _sq(sum_y, two))
    if norm > 0:
        nx = sum_x / norm
        ny = sum_y / norm
        dot = ef[e, F_VX] * nx + ef[e, F_VY] * ny
        if dot < 0:
            speed = math.sqrt(_sq(ef[e, F_VX], two) + _sq(ef[e, F_VY], two))
            bounce = 1 if speed <= 1.35 else 2
            ef[e, F_VX] -= nx * dot * bounce
            ef[e, F_VY] -= ny * dot * bounce
    if ei[e, EI_INDEX] + 1 < misc[M_DEATH_BALLS]:
        for o in range(e + 1, ei.shape[0]):
            if ei[o, EI_GROUP] != K_BALL:
                break
            dx = ef[e, F_X] - ef[o, F_X]
            dy = ef[e, F_Y] - ef[o, F_Y]
            dist = math.sqrt(_sq(dx, two) + _sq(dy, two))
            if dist < 16:
                dx = dx / dist * 4
                dy = dy / dist * 4
                ef[e, F_VX] += dx
                ef[e, F_VY] += dy
                ef[o, F_VX] -= dx
                ef[o, F_VY] -= dy
    grid_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)


# ----------------------------------------------------------------------------------------
# entities: collisions with the ninja
# ----------------------------------------------------------------------------------------
@_inline
def _oneway_depen(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    nx = ef[e, F_NX]
    ny = ef[e, F_NY]
    dx = nin[N_X] - ef[e, F_X]
    dy = nin[N_Y] - ef[e, F_Y]
    lateral = dy * nx - dx * ny
    direction = (nin[N_VY] * nx - nin[N_VX] * ny) * lateral
    scale = 0.91 if direction < 0 else 0.51
    if abs(lateral) < scale * NINJA_RADIUS + ef[e, F_SEMI]:
        normal_dist = dx * nx + dy * ny
        if 0 < normal_dist <= NINJA_RADIUS:
            if nin[N_VX] * nx + nin[N_VY] * ny <= 0:
                old = (nin[N_XOLD] - ef[e, F_X]) * nx + (nin[N_YOLD] - ef[e, F_Y]) * ny
                if NINJA_RADIUS - old <= 1.1:
                    return True, nx, ny, NINJA_RADIUS - normal_dist, 0.0
    return False, 0.0, 0.0, 0.0, 0.0


@_inline
def physical_collision(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    """Push-out of the ninja from a solid entity: (hit, nx, ny, depth, other depth)."""
    kind = ei[e, EI_KIND]
    if kind == K_ONEWAY:
        return _oneway_depen(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
    if kind == K_BOUNCE:
        hit, nx, ny, depth, other = square_penetration(
            ef[e, F_X], ef[e, F_Y], nin[N_X], nin[N_Y], ef[e, F_SEMI] + NINJA_RADIUS
        )
        if not hit:
            return False, 0.0, 0.0, 0.0, 0.0
        ef[e, F_X] -= nx * depth * (1 - BOUNCE_STRENGTH)
        ef[e, F_Y] -= ny * depth * (1 - BOUNCE_STRENGTH)
        ef[e, F_VX] -= nx * depth * (1 - BOUNCE_STRENGTH)
        ef[e, F_VY] -= ny * depth * (1 - BOUNCE_STRENGTH)
        return True, nx, ny, depth * BOUNCE_STRENGTH, other
    if kind == K_THWUMP:
        return square_penetration(
            ef[e, F_X], ef[e, F_Y], nin[N_X], nin[N_Y], ef[e, F_SEMI] + NINJA_RADIUS
        )
    if kind == K_SHOVE:
        if ef[e, F_STATE] > 1:
            return False, 0.0, 0.0, 0.0, 0.0
        hit, nx, ny, depth, other = square_penetration(
            ef[e, F_X], ef[e, F_Y], nin[N_X], nin[N_Y], ef[e, F_SEMI] + NINJA_RADIUS
        )
        if hit and (ef[e, F_STATE] == 0 or ef[e, F_XDIR] * nx + ef[e, F_YDIR] * ny >= 0.01):
            return True, nx, ny, depth, other
    return False, 0.0, 0.0, 0.0, 0.0


@_inline
def _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    return overlap_circles(
        ef[e, F_X], ef[e, F_Y], ef[e, F_RADIUS], nin[N_X], nin[N_Y], NINJA_RADIUS, nin[N_TWO]
    )


@_inline
def logical_collision(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
    """Contact effects. Returns (kind of result, a, b): 0 nothing, 1 a launch-pad boost
    (a, b), 2 a wall normal a for wall jumps."""
    kind = ei[e, EI_KIND]
    if kind == K_MINE or kind == K_MINE_SAFE:
        if (
            ninja_valid_target(nin)
            and ef[e, F_STATE] == 0
            and _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        ):
            _mine_set(ef, e, 1)
            ninja_kill(nin, CAUSE_MINE)
    elif kind == K_GOLD:
        if nin[N_STATE] != 8 and _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            nin[N_GOLD] += 1
            ei[e, EI_ACTIVE] = 0
    elif kind == K_EXIT:
        if _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            ninja_win(nin)
    elif kind == K_SWITCH:
        if _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            ei[e, EI_ACTIVE] = 0
            door = ei[e, EI_LINK]
            _grid_append(door, nin, ei, ef, misc, hor_e, ver_e, scratch)
            ef[door, F_FLAG] = 1.0
    elif kind == K_DOOR:
        if _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            _door_set_closed(e, nin, ei, ef, misc, hor_e, ver_e, scratch, False)
            ef[e, F_TIMER] = 0.0
    elif kind == K_LOCKED:
        if _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            nin[N_DOORS] += 1
            _door_set_closed(e, nin, ei, ef, misc, hor_e, ver_e, scratch, False)
            ei[e, EI_ACTIVE] = 0
    elif kind == K_TRAP:
        if _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            _door_set_closed(e, nin, ei, ef, misc, hor_e, ver_e, scratch, True)
            ei[e, EI_ACTIVE] = 0
    elif kind == K_LAUNCH:
        if ninja_valid_target(nin) and _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            nx = ef[e, F_NX]
            ny = ef[e, F_NY]
            if (ef[e, F_X] - (nin[N_X] - NINJA_RADIUS * nx)) * nx + (
                ef[e, F_Y] - (nin[N_Y] - NINJA_RADIUS * ny)
            ) * ny >= -0.1:
                yscale = 1.0
                if ny < 0:
                    yscale = 1 - ny
                return 1, nx * LAUNCH_PAD_BOOST, ny * LAUNCH_PAD_BOOST * yscale
    elif kind == K_ONEWAY:
        hit, _, _, _, _ = _oneway_depen(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        if hit and abs(ef[e, F_NX]) == 1:
            return 2, ef[e, F_NX], 0.0
    elif kind == K_ZAP or kind == K_MINI:
        if ninja_valid_target(nin) and _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            ninja_kill(nin, CAUSE_DRONE)
    elif kind == K_BOUNCE:
        hit, nx, _, _, _ = square_penetration(
            ef[e, F_X], ef[e, F_Y], nin[N_X], nin[N_Y], ef[e, F_SEMI] + NINJA_RADIUS + 0.1
        )
        if hit:
            return 2, nx, 0.0
    elif kind == K_THWUMP:
        if ninja_valid_target(nin):
            hit, nx, _, _, _ = square_penetration(
                ef[e, F_X], ef[e, F_Y], nin[N_X], nin[N_Y], ef[e, F_SEMI] + NINJA_RADIUS + 0.1
            )
            if hit:
                s = ef[e, F_SEMI]
                x = ef[e, F_X]
                y = ef[e, F_Y]
                if ef[e, F_FLAG] != 0:  # horizontal
                    ddx = (s + 2) * ef[e, F_DIR]
                    ddy = s - 2
                    x1, y1, x2, y2 = x + ddx, y - ddy, x + ddx, y + ddy
                else:
                    ddx = s - 2
                    ddy = (s + 2) * ef[e, F_DIR]
                    x1, y1, x2, y2 = x - ddx, y + ddy, x + ddx, y + ddy
                if overlap_circle_segment(
                    nin[N_X], nin[N_Y], NINJA_RADIUS + 2, x1, y1, x2, y2, nin[N_TWO]
                ):
                    ninja_kill(nin, CAUSE_THWUMP)
                return 2, nx, 0.0
    elif kind == K_BALL:
        if ninja_valid_target(nin) and _touches(e, nin, ei, ef, misc, hor_e, ver_e, scratch):
            two = nin[N_TWO]
            dx = ef[e, F_X] - nin[N_X]
            dy = ef[e, F_Y] - nin[N_Y]
            dist = math.sqrt(_sq(dx, two) + _sq(dy, two))
            ef[e, F_VX] += dx / dist * 10
            ef[e, F_VY] += dy / dist * 10
            ninja_kill(nin, CAUSE_BALL)
    elif kind == K_SHOVE:
        hit, nx, ny, _, other = square_penetration(
            ef[e, F_X], ef[e, F_Y], nin[N_X], nin[N_Y], ef[e, F_SEMI] + NINJA_RADIUS + 0.1
        )
        if hit and ef[e, F_STATE] <= 1:
            if ef[e, F_STATE] == 0:
                ef[e, F_FLAG] = 1.0
                if other > 0.2:
                    ef[e, F_XDIR] = nx
                    ef[e, F_YDIR] = ny
                    ef[e, F_STATE] = 1
            elif ef[e, F_XDIR] * nx + ef[e, F_YDIR] * ny >= 0.01:
                ef[e, F_FLAG] = 1.0
            else:
                return 0, 0.0, 0.0
            return 2, nx, 0.0
        if overlap_circles(
            nin[N_X], nin[N_Y], NINJA_RADIUS, ef[e, F_X], ef[e, F_Y], ef[e, F_RADIUS], nin[N_TWO]
        ):
            ninja_kill(nin, CAUSE_SHOVE)
    return 0, 0.0, 0.0


@_inline
def _is_movable(kind):
    return (
        kind == K_ZAP or kind == K_MINI or kind == K_BOUNCE or kind == K_THWUMP or kind == K_BOOST
    )


@_inline
def _is_thinkable(kind):
    return (
        kind == K_MINE
        or kind == K_MINE_SAFE
        or kind == K_DOOR
        or kind == K_THWUMP
        or kind == K_BALL
        or kind == K_SHOVE
    )


@_inline
def _is_logical(kind):
    return kind != K_BOOST


@_inline
def _is_physical(kind):
    return kind == K_ONEWAY or kind == K_BOUNCE or kind == K_THWUMP or kind == K_SHOVE


# ----------------------------------------------------------------------------------------
# ninja physics
# ----------------------------------------------------------------------------------------
@_inline
def _add_contact(nin, nx, ny, upward):
    """Sum a contact normal into the floor (``upward`` below -0.0001, i.e. pointing up) or
    the ceiling accumulators."""
    floor = not upward >= -0.0001
    base = N_FLOOR_COUNT if floor else N_CEIL_COUNT
    sx = N_FLOOR_SX if floor else N_CEIL_SX
    nin[base] += 1
    nin[sx] += nx
    nin[sx + 1] += ny


@_inline
def _collide_vs_objects(nin, ei, ef, misc, hor_e, ver_e, scratch, near, n_near):
    for i in range(n_near):
        e = near[i]
        kind = ei[e, EI_KIND]
        if not _is_physical(kind):
            continue
        hit, nx, ny, length, _ = physical_collision(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        if not hit:
            continue
        pop_x = nx * length
        pop_y = ny * length
        nin[N_X] += pop_x
        nin[N_Y] += pop_y
        if kind != K_BOUNCE:
            nin[N_XCRUSH] += pop_x
            nin[N_YCRUSH] += pop_y
            nin[N_CRUSH_LEN] += length
        if kind == K_THWUMP:
            nin[N_CRUSHABLE] = 1.0
        if kind == K_BOUNCE or kind == K_THWUMP or kind == K_SHOVE:
            nin[N_VX] += pop_x
            nin[N_VY] += pop_y
        if kind == K_ONEWAY:
            along = nin[N_VX] * ny - nin[N_VY] * nx
            nin[N_VX] = along * ny
            nin[N_VY] = along * (-nx if nx != 0 else 0.0)  # axis normals are ints there
        _add_contact(nin, nx, ny, ny)


@_inline
def _offset_x(x, a):
    """x offset from a contact point; a vanishing one is zero, except at three exact x
    positions where the reference nudges it by 2**-47."""
    ox = x - a
    if abs(ox) > 0.0000001:
        return ox
    if x == NUDGE_LEFT_A or x == NUDGE_LEFT_B:
        return -(2.0**-47)
    if x == NUDGE_RIGHT:
        return 2.0**-47
    return 0.0


@_inline
def _tangential(xs, ys, ox, oy, inv):
    """Velocity with its component along the offset (ox, oy) removed."""
    cross = xs * oy - ys * ox
    inv_sq = inv * inv
    # a zeroed offset is an int in the reference, and -0 is +0 for ints
    return cross * inv_sq * oy, cross * inv_sq * (-ox if ox != 0 else 0.0)


@_inline
def _collide_vs_tiles(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch):
    buf = scratch[0]
    two = nin[N_TWO]
    r = NINJA_RADIUS
    dx = nin[N_X] - nin[N_XOLD]
    dy = nin[N_Y] - nin[N_YOLD]
    t = sweep(
        segs,
        cs,
        cb,
        nin,
        ei,
        ef,
        misc,
        hor_e,
        ver_e,
        scratch,
        buf,
        nin[N_XOLD],
        nin[N_YOLD],
        dx,
        dy,
        r * 0.5,
        two,
    )
    x = nin[N_XOLD] + t * dx
    y = nin[N_YOLD] + t * dy
    n = query_region(
        segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch, x - r, y - r, x + r, y + r, buf
    )
    xs = nin[N_VX]
    ys = nin[N_VY]
    for _ in range(32):
        side, a, b = nearest_point(segs, buf, n, x, y, r, two)
        if side == 0:
            break
        ox = _offset_x(x, a)
        oy = y - b
        dist_sq = ox * ox + oy * oy
        if dist_sq < 1e-16:
            break
        dist = math.sqrt(dist_sq)
        depth = r - dist * side  # behind the segment (side -1): push out past it
        if depth < 0.0000001:
            break
        inv = 1.0 / dist
        ux, uy = ox * inv, oy * inv
        px, py = ux * depth, uy * depth
        x, y = x + px, y + py
        for col, v in ((N_XCRUSH, px), (N_YCRUSH, py), (N_CRUSH_LEN, depth)):
            nin[col] += v
        if xs * ox + ys * oy < 0:  # moving into the surface: keep only the tangential part
            xs, ys = _tangential(xs, ys, ox, oy, inv)
        _add_contact(nin, ux, uy, oy)
    nin[N_X] = x
    nin[N_Y] = y
    nin[N_VX] = xs
    nin[N_VY] = ys


@_inline
def _settle_surface(nin, sum_col, unit_col, rest_ny, may_impact, two):
    """Turn a summed floor or ceiling normal into a unit one and kill on a hard impact.

    ``sum_col``/``unit_col`` index the (x, y) pair of the sum and of the unit normal; a sum
    that cancels out leaves the surface facing ``(0, rest_ny)``.
    """
    sx = nin[sum_col]
    sy = nin[sum_col + 1]
    length = math.sqrt(_sq(sx, two) + _sq(sy, two))
    if length == 0:
        ux = 0.0
        uy = rest_ny
    else:
        ux = sx / length
        uy = sy / length
    nin[unit_col] = ux
    nin[unit_col + 1] = uy
    if may_impact and nin[N_STATE] != 8:
        impact = -(ux * nin[N_VXOLD] + uy * nin[N_VYOLD])
        if impact > MAX_SURVIVABLE_IMPACT - 4 / 3 * abs(uy):
            nin[N_VX] = nin[N_VXOLD]
            nin[N_VY] = nin[N_VYOLD]
            ninja_kill(nin, CAUSE_IMPACT)


@_jit
def _post_collision(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch):
    near = scratch[1]
    buf = scratch[0]
    two = nin[N_TWO]
    wall_normal = 0.0
    n_near = entities_near(nin, ei, ef, misc, hor_e, ver_e, scratch, nin[N_X], nin[N_Y], near)
    for i in range(n_near):
        e = near[i]
        if not _is_logical(ei[e, EI_KIND]):
            continue
        code, a, b = logical_collision(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        if code == 1:
            xboost = a * 2 / 3
            yboost = b * 2 / 3
            nin[N_X] += xboost
            nin[N_Y] += yboost
            nin[N_VX] = xboost
            nin[N_VY] = yboost
            nin[N_FLOOR_COUNT] = 0
            nin[N_FLOOR_BUF] = -1
            scalar = math.sqrt(_sq(xboost, two) + _sq(yboost, two))
            nin[N_LP_NX] = xboost / scalar
            nin[N_LP_NY] = yboost / scalar
            nin[N_LP_BUF] = 0
            if nin[N_STATE] == 3:
                nin[N_GRAVITY] = GRAVITY_FALL
            nin[N_STATE] = 4
        elif code == 2 and a != 0:
            wall_normal += a
    rad = NINJA_RADIUS + 0.1
    x = nin[N_X]
    y = nin[N_Y]
    n = query_region(
        segs,
        cs,
        cb,
        nin,
        ei,
        ef,
        misc,
        hor_e,
        ver_e,
        scratch,
        x - rad,
        y - rad,
        x + rad,
        y + rad,
        buf,
    )
    for i in range(n):
        _, a, b = closest_point(segs, buf[i], x, y, two)
        dy = y - b
        if abs(dy) < 0.00001:
            dx = x - a
            dist = math.sqrt(_sq(dx, two) + _sq(dy, two))
            if 0 < dist <= rad:
                wall_normal += dx / dist

    nin[N_AIRBORN_OLD] = nin[N_AIRBORN]
    nin[N_AIRBORN] = 1.0
    nin[N_WALLED] = 0.0
    if wall_normal != 0:
        nin[N_WALLED] = 1.0
        nin[N_WALL_NORMAL] = wall_normal / abs(wall_normal)

    if nin[N_FLOOR_COUNT] > 0:
        nin[N_AIRBORN] = 0.0
        _settle_surface(nin, N_FLOOR_SX, N_FLOOR_NX, -1.0, nin[N_AIRBORN_OLD] != 0, two)
    if nin[N_CEIL_COUNT] > 0:
        _settle_surface(nin, N_CEIL_SX, N_CEIL_NX, 1.0, True, two)
    if nin[N_CRUSHABLE] != 0 and nin[N_CRUSH_LEN] > 0:
        squeeze = math.sqrt(_sq(nin[N_XCRUSH], two) + _sq(nin[N_YCRUSH], two)) / nin[N_CRUSH_LEN]
        if squeeze < MIN_SURVIVABLE_CRUSHING:
            ninja_kill(nin, CAUSE_CRUSH)


@_jit
def _start_jump(nin, jx, jy):
    """Common to every jump: cancel a fall, add the impulse to speed and position."""
    nin[N_STATE] = 3
    nin[N_GRAVITY] = GRAVITY_JUMP
    if nin[N_VY] > 0:
        nin[N_VY] = 0.0
    nin[N_VX] += jx
    nin[N_VY] += jy
    nin[N_X] += jx
    nin[N_Y] += jy
    nin[N_JUMP_DURATION] = 0


@_jit
def _floor_jump(nin):
    """Jump off the floor; on a slope the impulse follows the normal unless running uphill."""
    for col in (N_JUMP_BUF, N_FLOOR_BUF, N_LP_BUF):
        nin[col] = -1
    fnx = nin[N_FLOOR_NX]
    fny = nin[N_FLOOR_NY]
    vx = nin[N_VX]
    downhill = vx * fnx >= 0
    if fnx == 0:
        impulse = (0.0, JUMP_FLAT_Y)
    elif downhill and vx * nin[N_HOR] >= 0:
        impulse = (JUMP_DOWNHILL_X * fnx, JUMP_DOWNHILL_Y * fny)
    elif downhill or vx * nin[N_HOR] > 0:
        impulse = (0.0, JUMP_UPHILL_Y)
    else:  # uphill without pressing forward: jump perpendicular to the slope
        nin[N_VX] = 0.0
        impulse = (JUMP_PERP_X * fnx, JUMP_PERP_Y * fny)
    _start_jump(nin, impulse[0], impulse[1])


@_jit
def _wall_jump(nin):
    """Jump off a wall: a weaker, flatter jump when pushing away while sliding down it."""
    wn = nin[N_WALL_NORMAL]
    sliding_off = nin[N_HOR] * wn < 0 and nin[N_STATE] == 5
    kx, jy = (JUMP_SLIDE_X, JUMP_SLIDE_Y) if sliding_off else (JUMP_WALL_X, JUMP_WALL_Y)
    if nin[N_VX] * wn < 0:
        nin[N_VX] = 0.0
    _start_jump(nin, kx * wn, jy)
    for col in (N_JUMP_BUF, N_WALL_BUF, N_LP_BUF):
        nin[col] = -1


@_jit
def _launch_pad_jump(nin):
    """A jump shortly after a launch pad adds to the pad's boost along its direction."""
    for col in (N_FLOOR_BUF, N_WALL_BUF, N_JUMP_BUF, N_LP_BUF):
        nin[col] = -1
    scalar = 2 * abs(nin[N_LP_NX]) + 2
    if scalar == 2:
        scalar = LP_JUMP_SCALAR
    nin[N_VX] += nin[N_LP_NX] * scalar * LP_JUMP_FACTOR
    nin[N_VY] += nin[N_LP_NY] * scalar * LP_JUMP_FACTOR


@_inline
def _advance_buffer(v, limit):
    return v + 1 if -1 < v < limit else -1.0


@_jit
def ninja_think(nin):
    """Apply this tick's inputs: buffers, jumps, running, friction and wall sliding."""
    new_jump = nin[N_JUMP] != 0 and nin[N_JUMP_OLD] == 0
    nin[N_JUMP_OLD] = nin[N_JUMP]
    nin[N_LP_BUF] = _advance_buffer(nin[N_LP_BUF], 3)
    in_lp = -1 < nin[N_LP_BUF] < 4
    nin[N_JUMP_BUF] = _advance_buffer(nin[N_JUMP_BUF], 5)
    in_jump = -1 < nin[N_JUMP_BUF] < 5
    nin[N_WALL_BUF] = _advance_buffer(nin[N_WALL_BUF], 5)
    in_wall = -1 < nin[N_WALL_BUF] < 5
    nin[N_FLOOR_BUF] = _advance_buffer(nin[N_FLOOR_BUF], 5)
    in_floor = -1 < nin[N_FLOOR_BUF] < 5
    airborn = nin[N_AIRBORN] != 0
    if new_jump and airborn:
        nin[N_JUMP_BUF] = 0
    if nin[N_WALLED] != 0:
        nin[N_WALL_BUF] = 0
    if not airborn:
        nin[N_FLOOR_BUF] = 0

    state = nin[N_STATE]
    if state == 6 or state == 9:
        return
    if state == 7:
        nin[N_STATE] = 6
        return
    if state == 8:
        nin[N_DRAG] = DRAG_REGULAR if airborn else DRAG_SLOW
        return
    hor = nin[N_HOR]
    if not airborn:
        xspeed_new = nin[N_VX] + GROUND_ACCEL * hor
        if abs(xspeed_new) < MAX_HOR_SPEED:
            nin[N_VX] = xspeed_new
        if nin[N_STATE] > 2:
            if nin[N_STATE] == 3:
                nin[N_GRAVITY] = GRAVITY_FALL
            nin[N_STATE] = 2 if nin[N_VX] * hor <= 0 else 1
        if in_jump or new_jump:
            _floor_jump(nin)
            return
        fnx = nin[N_FLOOR_NX]
        fny = nin[N_FLOOR_NY]
        if nin[N_STATE] == 2:
            projection = abs(nin[N_VY] * fnx - nin[N_VX] * fny)
            if hor * projection * nin[N_VX] > 0:
                nin[N_STATE] = 1
                return
            if projection < 0.1 and fnx == 0:
                nin[N_STATE] = 0
                return
            if nin[N_VY] < 0 and fnx != 0:
                two = nin[N_TWO]
                speed = math.sqrt(_sq(nin[N_VX], two) + _sq(nin[N_VY], two))
                fric = abs(nin[N_VX] * (1 - FRICTION_GROUND) * fny)
                fric2 = speed - fric * _sq(fny, two)
                nin[N_VX] = nin[N_VX] / speed * fric2
                nin[N_VY] = nin[N_VY] / speed * fric2
                return
            nin[N_VX] *= FRICTION_GROUND
            return
        if nin[N_STATE] == 1:
            projection = abs(nin[N_VY] * fnx - nin[N_VX] * fny)
            if hor * projection * nin[N_VX] > 0:
                if hor * fnx >= 0:
                    return
                if abs(xspeed_new) < MAX_HOR_SPEED:
                    boost = GROUND_ACCEL / 2 * hor
                    nin[N_VX] += boost * fny * fny
                    nin[N_VY] += boost * fny * -fnx
                return
            nin[N_STATE] = 2
            return
        if hor != 0:
            nin[N_STATE] = 1
            return
        projection = abs(nin[N_VY] * fnx - nin[N_VX] * fny)
        if projection < 0.1:
            nin[N_VX] *= FRICTION_GROUND_SLOW
            return
        nin[N_STATE] = 2
        return
    xspeed_new = nin[N_VX] + AIR_ACCEL * hor
    if abs(xspeed_new) < MAX_HOR_SPEED:
        nin[N_VX] = xspeed_new
    if nin[N_STATE] < 3:
        nin[N_STATE] = 4
        return
    if nin[N_STATE] == 3:
        nin[N_JUMP_DURATION] += 1
        if nin[N_JUMP] == 0 or nin[N_JUMP_DURATION] > MAX_JUMP_DURATION:
            nin[N_GRAVITY] = GRAVITY_FALL
            nin[N_STATE] = 4
            return
    walled = nin[N_WALLED] != 0
    if in_jump or new_jump:
        if walled or in_wall:
            _wall_jump(nin)
            return
        if in_floor:
            _floor_jump(nin)
            return
        if in_lp and new_jump:
            _launch_pad_jump(nin)
            return
    wn = nin[N_WALL_NORMAL]
    if not walled:
        if nin[N_STATE] == 5:
            nin[N_STATE] = 4
    elif nin[N_STATE] == 5:
        if hor * wn <= 0:
            nin[N_VY] *= FRICTION_WALL
        else:
            nin[N_STATE] = 4
    elif nin[N_VY] > 0 and hor * wn < 0:
        if nin[N_STATE] == 3:
            nin[N_GRAVITY] = GRAVITY_FALL
        nin[N_STATE] = 5


# ----------------------------------------------------------------------------------------
# the tick
# ----------------------------------------------------------------------------------------
@_jit
def tick(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch, hor, jump):
    """One 60 Hz tick: entities move, then think; the ninja integrates, collides with
    entities and tiles in 4 substeps, resolves logical contacts, then reacts to input."""
    segs, cs, cb = _borrow(segs), _borrow(cs), _borrow(cb)
    nin, ei, ef, misc = _borrow(nin), _borrow(ei), _borrow(ef), _borrow(misc)
    hor_e, ver_e, scratch = _borrow(hor_e), _borrow(ver_e), _borrow(scratch)
    movers = scratch[2]
    thinkers = scratch[3]
    misc[M_FRAME] += 1
    nin[N_HOR] = hor
    nin[N_JUMP] = jump
    nm = 0
    nt = 0
    for e in range(ei.shape[0]):
        if ei[e, EI_ACTIVE] == 0:
            continue
        kind = ei[e, EI_KIND]
        if _is_movable(kind):
            movers[nm] = e
            nm += 1
        if _is_thinkable(kind):
            thinkers[nt] = e
            nt += 1
    for i in range(nm):
        e = movers[i]
        kind = ei[e, EI_KIND]
        if kind == K_BOUNCE:
            _bounce_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        elif kind == K_THWUMP:
            _thwump_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        elif kind == K_BOOST:
            _boost_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        else:
            _drone_move(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
    for i in range(nt):
        e = thinkers[i]
        kind = ei[e, EI_KIND]
        if kind == K_MINE or kind == K_MINE_SAFE:
            _mine_think(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        elif kind == K_DOOR:
            _door_think(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        elif kind == K_THWUMP:
            _thwump_think(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
        elif kind == K_BALL:
            _ball_think(e, segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch)
        else:
            _shove_think(e, nin, ei, ef, misc, hor_e, ver_e, scratch)
    state = nin[N_STATE]
    if state == 9:
        return
    if state != 6:
        # integrate
        nin[N_VX] *= nin[N_DRAG]
        nin[N_VY] *= nin[N_DRAG]
        nin[N_VY] += nin[N_GRAVITY]
        nin[N_XOLD] = nin[N_X]
        nin[N_YOLD] = nin[N_Y]
        nin[N_X] += nin[N_VX]
        nin[N_Y] += nin[N_VY]
        # pre-collision
        nin[N_VXOLD] = nin[N_VX]
        nin[N_VYOLD] = nin[N_VY]
        nin[N_FLOOR_COUNT] = 0
        nin[N_CEIL_COUNT] = 0
        nin[N_FLOOR_SX] = 0.0
        nin[N_FLOOR_SY] = 0.0
        nin[N_CEIL_SX] = 0.0
        nin[N_CEIL_SY] = 0.0
        nin[N_CRUSHABLE] = 0.0
        nin[N_XCRUSH] = 0.0
        nin[N_YCRUSH] = 0.0
        nin[N_CRUSH_LEN] = 0.0
        near = scratch[1]
        n_near = entities_near(nin, ei, ef, misc, hor_e, ver_e, scratch, nin[N_X], nin[N_Y], near)
        for _ in range(4):
            _collide_vs_objects(nin, ei, ef, misc, hor_e, ver_e, scratch, near, n_near)
            _collide_vs_tiles(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch)
        _post_collision(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch)
    ninja_think(nin)


@_jit
def run_ticks(
    segs,
    cs,
    cb,
    nin,
    ei,
    ef,
    misc,
    hor_e,
    ver_e,
    scratch,
    hors,
    jumps,
    stop_when_done,
    pos,
    vel,
    states,
):
    """Tick through per-tick inputs, recording the ninja after each tick; stops after the
    tick that wins or kills when asked. Returns the number of ticks run."""
    segs, cs, cb = _borrow(segs), _borrow(cs), _borrow(cb)
    nin, ei, ef, misc = _borrow(nin), _borrow(ei), _borrow(ef), _borrow(misc)
    hor_e, ver_e, scratch = _borrow(hor_e), _borrow(ver_e), _borrow(scratch)
    n = hors.shape[0]
    record = pos.shape[0] > 0
    for t in range(n):
        tick(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch, hors[t], jumps[t])
        if record:
            pos[t, 0] = nin[N_X]
            pos[t, 1] = nin[N_Y]
            vel[t, 0] = nin[N_VX]
            vel[t, 1] = nin[N_VY]
            states[t] = nin[N_STATE]
        s = nin[N_STATE]
        if stop_when_done and (s == 6 or s == 7 or s == 8):
            return t + 1
    return n


@_jit
def _restart(nin, ei, ef, misc, hor_e, ver_e, nin0, ei0, ef0, misc0, hor0, ver0):
    nin[:] = nin0
    ei[:] = ei0
    ef[:] = ef0
    misc[:] = misc0
    # Doors are the only writers of the edge grids, and only at their own two cells: putting
    # those back equals copying both 89x51 grids, at a fraction of the cost.
    for e in range(ei0.shape[0]):
        if _is_door(ei0[e, EI_KIND]):
            for cx, cy in ((int(ef0[e, F_E1X]), int(ef0[e, F_E1Y])),
                           (int(ef0[e, F_E2X]), int(ef0[e, F_E2Y]))):
                if ef0[e, F_VERTICAL] != 0:
                    ver_e[cx, cy] = ver0[cx, cy]
                else:
                    hor_e[cx, cy] = hor0[cx, cy]


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def step_batch(
    segs,
    cs,
    cb,
    nin,
    ei,
    ef,
    misc,
    hor_e,
    ver_e,
    scratch,
    hors,
    jumps,
    ticks,
    out,
    ended,
    init_nin,
    init_ei,
    init_ef,
    init_misc,
    init_hor,
    init_ver,
    autoreset,
):
    """Advance N stacked simulators by up to ``ticks`` ticks each with per-env inputs, in
    parallel over envs; an env stops after a winning or killing tick. ``out[i]`` receives the
    ticks env i ran and ``ended[i]`` the state it ended in (0 if it goes on). With
    ``autoreset`` an ended env is copied back to its ``init_*`` row in the same call, so
    random-policy rollouts and planners never return to Python to restart a level. Padding
    rows (inactive, kind 0) are ignored by the tick."""
    segs, cs, cb = _borrow(segs), _borrow(cs), _borrow(cb)
    nin, ei, ef, misc = _borrow(nin), _borrow(ei), _borrow(ef), _borrow(misc)
    hor_e, ver_e, scratch = _borrow(hor_e), _borrow(ver_e), _borrow(scratch)
    for i in prange(nin.shape[0]):
        k = 0
        s = nin[i, N_STATE]
        if not (s == 6 or s == 7 or s == 8):
            while k < ticks:
                tick(
                    segs[i],
                    cs[i],
                    cb[i],
                    nin[i],
                    ei[i],
                    ef[i],
                    misc[i],
                    hor_e[i],
                    ver_e[i],
                    scratch[i],
                    hors[i],
                    jumps[i],
                )
                k += 1
                s = nin[i, N_STATE]
                if s == 6 or s == 7 or s == 8:
                    break
        out[i] = k
        ended[i] = int(s) if (s == 6 or s == 7 or s == 8) else 0
        if autoreset and ended[i] != 0:
            _restart(nin[i], ei[i], ef[i], misc[i], hor_e[i], ver_e[i], init_nin[i], init_ei[i],
                     init_ef[i], init_misc[i], init_hor[i], init_ver[i])
