"""Collision math over flat segment tuples (see ``tiles.make_linear``/``make_arc``).

Every expression keeps the reference's float64 operation order. Where the reference squares
with ``x**2`` (CPython calls the C library's ``pow``) we do the same, and ``x * x`` where it
multiplies; the two differ in the last bit for about 0.09% of inputs.
"""

from __future__ import annotations

import math

from .constants import GRID_H, GRID_W
from .tiles import ARC_RADIUS, LINEAR

_sqrt = math.sqrt
_floor = math.floor


def clamp_cell(x: int, y: int) -> tuple[int, int]:
    return (0 if x < 0 else GRID_W - 1 if x > GRID_W - 1 else x,
            0 if y < 0 else GRID_H - 1 if y > GRID_H - 1 else y)


def overlap_circles(x1: float, y1: float, r1: float, x2: float, y2: float, r2: float) -> bool:
    return _sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2) < r1 + r2


def overlap_circle_segment(
    x: float, y: float, r: float, x1: float, y1: float, x2: float, y2: float
) -> bool:
    px = x2 - x1
    py = y2 - y1
    dx = x - x1
    dy = y - y1
    u = (dx * px + dy * py) / (px**2 + py**2)
    u = max(u, 0)
    u = min(u, 1)
    a = x1 + u * px
    b = y1 + u * py
    return (x - a) ** 2 + (y - b) ** 2 < r**2


def square_penetration(
    sx: float, sy: float, px: float, py: float, semi: float
) -> tuple[float, float, float, float] | None:
    """Shortest way out of an axis-aligned square for a point inside it.

    Returns (normal_x, normal_y, depth along the normal, depth on the other axis) or None.
    """
    dx = px - sx
    dy = py - sy
    penx = semi - abs(dx)
    peny = semi - abs(dy)
    if penx > 0 and peny > 0:
        if peny <= penx:
            return (0, -1 if dy < 0 else 1, peny, penx)
        return (-1 if dx < 0 else 1, 0, penx, peny)
    return None


def closest_point(seg: tuple, x: float, y: float) -> tuple[bool, float, float]:
    """Closest point of a segment to (x, y), and whether (x, y) lies behind its solid side."""
    if seg[0] == LINEAR:
        dx = x - seg[1]
        dy = y - seg[2]
        px = seg[5]
        py = seg[6]
        u = (dx * px + dy * py) / seg[7]
        u = max(u, 0)
        u = min(u, 1)
        return (dy * px - dx * py < 0 and seg[8]), seg[1] + u * px, seg[2] + u * py
    cx = seg[1]
    cy = seg[2]
    hor = seg[3]
    ver = seg[4]
    dx = x - cx
    dy = y - cy
    if dx * hor > 0 and dy * ver > 0:
        dist = _sqrt(dx**2 + dy**2)
        if dist == 0:
            if dx * hor > dy * ver:
                return False, seg[6], seg[7]
            return False, seg[8], seg[9]
        a = cx + ARC_RADIUS * dx / dist
        b = cy + ARC_RADIUS * dy / dist
        back = dist < ARC_RADIUS if seg[5] else dist > ARC_RADIUS
        return back, a, b
    if dx * hor > dy * ver:
        return False, seg[6], seg[7]
    return False, seg[8], seg[9]


def time_circle_vs_point(
    x: float, y: float, vx: float, vy: float, a: float, b: float, r: float
) -> float:
    dx = x - a
    dy = y - b
    dist_sq = dx**2 + dy**2
    vel_sq = vx**2 + vy**2
    dot = dx * vx + dy * vy
    if dist_sq - r**2 > 0:
        radicand = dot**2 - vel_sq * (dist_sq - r**2)
        if vel_sq > 0.0001 and dot < 0 and radicand >= 0:
            return (-dot - _sqrt(radicand)) / vel_sq
        return 1
    return 0


def _time_circle_vs_line(
    x: float, y: float, vx: float, vy: float, seg: tuple, r: float
) -> float:
    a1 = seg[1]
    b1 = seg[2]
    seg_len = seg[13]
    nx = seg[14]
    ny = seg[15]
    normal_proj = (x - a1) * ny - (y - b1) * nx
    hor_proj = (x - a1) * nx + (y - b1) * ny
    if abs(normal_proj) >= r:
        direction = vx * ny - vy * nx
        if direction * normal_proj < 0:
            t = min((abs(normal_proj) - r) / abs(direction), 1)
            along = hor_proj + t * (vx * nx + vy * ny)
            if 0 <= along <= seg_len:
                return t
    elif 0 <= hor_proj <= seg_len:
        return 0
    return 1


def _time_circle_vs_arc(
    x: float, y: float, vx: float, vy: float, seg: tuple, r: float
) -> float:
    dx = x - seg[1]
    dy = y - seg[2]
    dist_sq = dx**2 + dy**2
    vel_sq = vx**2 + vy**2
    dot = dx * vx + dy * vy
    outer = ARC_RADIUS + r
    inner = ARC_RADIUS - r
    t = 1
    if dist_sq > outer**2:
        radicand = dot**2 - vel_sq * (dist_sq - outer**2)
        if vel_sq > 0.0001 and dot < 0 and radicand >= 0:
            t = (-dot - _sqrt(radicand)) / vel_sq
    elif dist_sq < inner**2:
        radicand = dot**2 - vel_sq * (dist_sq - inner**2)
        if vel_sq > 0.0001:
            t = min((-dot + _sqrt(radicand)) / vel_sq, 1)
    else:
        t = 0
    if (dx + t * vx) * seg[3] > 0 and (dy + t * vy) * seg[4] > 0:
        return t
    return 1


def time_of_impact(seg: tuple, x: float, y: float, vx: float, vy: float, r: float) -> float:
    """Fraction of the move (vx, vy) after which a circle of radius r touches the segment:
    0 if it already overlaps, 1 if it never does within the move."""
    if seg[0] == LINEAR:
        return min(
            time_circle_vs_point(x, y, vx, vy, seg[1], seg[2], r),
            time_circle_vs_point(x, y, vx, vy, seg[3], seg[4], r),
            _time_circle_vs_line(x, y, vx, vy, seg, r),
        )
    return min(
        time_circle_vs_point(x, y, vx, vy, seg[6], seg[7], r),
        time_circle_vs_point(x, y, vx, vy, seg[8], seg[9], r),
        _time_circle_vs_arc(x, y, vx, vy, seg, r),
    )


class SegmentQuery:
    """Segments near a region, as the ninja and death balls see them.

    Cells are scanned column by column and skipped when their bounding box misses the query
    box. Door segments join the query only when ``solid_doors`` is on (the reference built its
    index before doors existed, so by default closed doors do not block).
    """

    __slots__ = ("cell_segments", "cell_bounds", "door_cells")

    def __init__(self, cell_segments, cell_bounds, door_cells=None) -> None:
        self.cell_segments = cell_segments
        self.cell_bounds = cell_bounds
        self.door_cells = door_cells

    def region(self, x1: float, y1: float, x2: float, y2: float) -> list[tuple]:
        minx = x1 if x1 < x2 else x2
        maxx = x2 if x1 < x2 else x1
        miny = y1 if y1 < y2 else y2
        maxy = y2 if y1 < y2 else y1
        cx0 = max(0, min(GRID_W - 1, _floor(minx / 24)))
        cx1 = max(0, min(GRID_W - 1, _floor(maxx / 24)))
        cy0 = max(0, min(GRID_H - 1, _floor(miny / 24)))
        cy1 = max(0, min(GRID_H - 1, _floor(maxy / 24)))
        out: list[tuple] = []
        segs = self.cell_segments
        bounds = self.cell_bounds
        doors = self.door_cells
        for cx in range(cx0, cx1 + 1):
            col = segs[cx]
            bcol = bounds[cx]
            for cy in range(cy0, cy1 + 1):
                s = col[cy]
                if s is not None:
                    b = bcol[cy]
                    if not (maxx < b[0] or minx > b[2] or maxy < b[1] or miny > b[3]):
                        out.extend(s)
                if doors is not None:
                    for door in doors[cx][cy]:
                        if door.closed:
                            out.append(door.segment)
        return out

    def sweep(self, x: float, y: float, dx: float, dy: float, radius: float) -> float:
        """Earliest time of impact of a circle moving by (dx, dy) against nearby segments."""
        xn = x + dx
        yn = y + dy
        w = radius + 1
        segs = self.region(
            (x if x < xn else xn) - w, (y if y < yn else yn) - w,
            (x if x > xn else xn) + w, (y if y > yn else yn) + w,
        )
        best = 1
        for seg in segs:
            t = time_of_impact(seg, x, y, dx, dy, radius)
            if t == 0:
                return 0
            if t < best:
                best = t
        return best


def nearest_point(
    segs: list[tuple], x: float, y: float, radius: float
) -> tuple[int, float, float]:
    """The closest segment point to (x, y) among ``segs`` whose box meets the query square.

    Returns (side, a, b): side is 0 if none, -1 if (x, y) is behind the segment, else 1.
    Front-facing candidates win ties by a 0.1 bias, as in the reference.
    """
    best = math.inf
    side = 0
    ra = rb = 0.0
    qx0 = x - radius
    qy0 = y - radius
    qx1 = x + radius
    qy1 = y + radius
    for seg in segs:
        if seg[0] == LINEAR:
            if seg[11] < qx0 or seg[9] > qx1 or seg[12] < qy0 or seg[10] > qy1:
                continue
        elif seg[12] < qx0 or seg[10] > qx1 or seg[13] < qy0 or seg[11] > qy1:
            continue
        back, a, b = closest_point(seg, x, y)
        d = (x - a) ** 2 + (y - b) ** 2
        if not back:
            d -= 0.1
        if d < best:
            best = d
            ra = a
            rb = b
            side = -1 if back else 1
    return side, ra, rb


def is_empty_row(hor_edges, x1: int, x2: int, y: int, direction: int) -> bool:
    """True if no solid horizontal half edge lies on the given side of half-cell row y."""
    if direction == 1:
        row = y + 1
    elif direction == -1:
        row = y
    else:
        return False
    row = 0 if row < 0 else 49 if row > 49 else row
    for x in range(x1, x2 + 1):
        if hor_edges[0 if x < 0 else 87 if x > 87 else x][row]:
            return False
    return True


def is_empty_column(ver_edges, x: int, y1: int, y2: int, direction: int) -> bool:
    """True if no solid vertical half edge lies on the given side of half-cell column x."""
    if direction == 1:
        col = x + 1
    elif direction == -1:
        col = x
    else:
        return False
    col = 0 if col < 0 else 87 if col > 87 else col
    column = ver_edges[col]
    for y in range(y1, y2 + 1):
        if column[0 if y < 0 else 49 if y > 49 else y]:
            return False
    return True
