"""Seeded procedural levels in eight families of rising difficulty.

Each family carves rooms out of a solid 42x23 grid and places the spawn, the exit switch and
the exit door (plus mines, gold or locked doors). A candidate is only *designed* to be
solvable; :func:`generate_level` accepts it once the planner has found a winning input
sequence, retrying with the next attempt number otherwise. The planner runs under an
expansion budget, not a time budget, so the same (seed, family, difficulty) always yields the
same bytes on any machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from torchrl_bc.sim.level import Level, map_hash

from .mapwriter import GOLD, HEIGHT, LOCKED_DOOR, MINE, WIDTH, Door, LevelMap, tile_center

ZAP_DRONE, THWUMP = 14, 20

GENERATOR_VERSION = "1"
FAMILIES: tuple[str, ...] = (
    "corridor", "gaps", "shaft", "slopes", "mines", "switch_first", "locked_doors", "multi_chamber",
)
#: Families built for evaluation suites only (never in the corpus seed cycle of ``FAMILIES``,
#: so adding them changed no corpus level).
SUITE_FAMILIES: tuple[str, ...] = (
    "drones", "thwumps", "switches", "maze", "long_chambers", "precise_jumps", "tiny_room",
)
#: Families a training corpus may cycle over instead of ``FAMILIES`` (``make_corpus(families=)``,
#: ``data.generated_families``): ``FAMILIES`` and those added later for training, never a suite's.
CORPUS_FAMILIES: tuple[str, ...] = (*FAMILIES, "platforms", "room_blocks", "hill", "pit_mines")

# Ramp tile ids (surface rising/falling to the right); found by rasterising the tile shapes.
UP45, DOWN45 = 8, 9
UP_LO, UP_HI, DOWN_HI, DOWN_LO = 20, 24, 25, 21
PIPE_LEFT, PIPE_RIGHT = 17, 16  # concave quarter pipes in a floor's left / right corner
BUMP = (12, 13)  # convex pair: a one-tile hill two tiles wide


@dataclass
class GeneratedLevel:
    """One accepted level: its map data plus the planner's winning inputs (if solved)."""

    level_id: str
    family: str
    seed: int
    difficulty: float
    attempt: int
    map_data: bytes
    solution: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))

    @property
    def content_hash(self) -> str:
        return map_hash(self.map_data)

    def as_level(self) -> Level:
        """The level record evaluation and RL take (the planner's solution is its demo)."""
        return Level(self.level_id, self.map_data, int(self.solution.size), self.family)


class Canvas:
    """Tile grid under construction, in playable coordinates (0..41, 0..22)."""

    def __init__(self) -> None:
        self.lm = LevelMap()

    @property
    def t(self) -> np.ndarray:
        return self.lm.tiles

    def carve(self, x0: int, y0: int, x1: int, y1: int, tile: int = 0) -> None:
        """Set the inclusive rectangle to ``tile`` (0 = empty), clipped to the grid."""
        xa, xb = sorted((x0, x1))
        ya, yb = sorted((y0, y1))
        self.t[max(xa, 0):min(xb, WIDTH - 1) + 1, max(ya, 0):min(yb, HEIGHT - 1) + 1] = tile

    def on_floor(self, tx: int, ty: int) -> tuple[int, int]:
        """Units of a point resting in tile (tx, ty): centred, so floor items touch the ninja."""
        return tile_center(tx, ty)

    def spawn(self, tx: int, ty: int) -> None:
        self.lm.spawn = tile_center(tx, ty)

    def exit(self, door: tuple[int, int], switch: tuple[int, int]) -> None:
        self.lm.exits.append((*tile_center(*door), *tile_center(*switch)))

    def mine(self, tx: int, ty: int, dx: int = 0, dy: int = 0) -> None:
        x, y = tile_center(tx, ty)
        self.lm.entities.append((MINE, x + dx, y + dy, 0, 0))

    def drone(self, tx: int, ty: int, direction: int, mode: int) -> None:
        """A zap drone at a cell centre; direction 0 right, 1 down, 2 left, 3 up; mode 0/1
        follows walls (clockwise / anticlockwise), 2/3 wanders."""
        self.lm.entities.append((ZAP_DRONE, *tile_center(tx, ty), 2 * direction, mode))

    def thwump(self, tx: int, ty: int, direction: int) -> None:
        """A thwump filling tile (tx, ty) that charges in ``direction`` (0 right, 1 down, 2 left,
        3 up) when the ninja comes into line with it, then slowly returns."""
        self.lm.entities.append((THWUMP, *tile_center(tx, ty), 2 * direction, 0))

    def gold(self, tx: int, ty: int) -> None:
        self.lm.entities.append((GOLD, *tile_center(tx, ty), 0, 0))

    def locked_door(self, tx: int, ty: int, switch: tuple[int, int]) -> None:
        """A vertical locked door on the left edge of tile (tx, ty), its switch elsewhere."""
        x = (tx + 1) * 4  # left edge of the tile, in units
        _, y = tile_center(tx, ty)
        self.lm.doors.append(Door(LOCKED_DOOR, x, y, 0, *tile_center(*switch)))

    def mirrored(self) -> None:
        """Flip left-right (ramps and pipes swap), so every family appears in both directions."""
        lm = self.lm
        swap = {UP45: DOWN45, DOWN45: UP45, UP_LO: DOWN_LO, DOWN_LO: UP_LO, UP_HI: DOWN_HI,
                DOWN_HI: UP_HI, PIPE_LEFT: PIPE_RIGHT, PIPE_RIGHT: PIPE_LEFT, 12: 13, 13: 12}
        flipped = lm.tiles[::-1].copy()
        lm.tiles = np.vectorize(lambda v: swap.get(int(v), int(v)), otypes=[np.uint8])(flipped)
        w = (WIDTH + 2) * 4  # full width in units

        def fx(x: int) -> int:
            return w - x

        lm.spawn = (fx(lm.spawn[0]), lm.spawn[1])
        lm.exits = [(fx(a), b, fx(c), d) for a, b, c, d in lm.exits]
        lm.entities = [_mirror_entity(t, fx(x), y, o, m) for t, x, y, o, m in lm.entities]
        lm.doors = [Door(d.kind, fx(d.x), d.y, d.orientation, fx(d.switch_x), d.switch_y)
                    for d in lm.doors]


def _mirror_entity(t: int, x: int, y: int, o: int, m: int) -> tuple[int, int, int, int, int]:
    """Directed entities reflect their direction (right <-> left); drones also swap the hand
    of their wall following. Mines and gold carry no direction."""
    if t in (ZAP_DRONE, THWUMP):
        o = (4 - o) % 8
    if t == ZAP_DRONE:
        m ^= 1
    return t, x, y, o, m


def _ri(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Inclusive random integer."""
    return int(rng.integers(lo, hi + 1))


def _span(d: float, lo: float, hi: float) -> int:
    return round(lo + (hi - lo) * d)


# -- families ----------------------------------------------------------------------------------
def corridor(c: Canvas, rng: np.random.Generator, d: float) -> None:
    length = min(_span(d, 10, 38) + _ri(rng, -2, 2), WIDTH - 2)
    h = _ri(rng, 2, 4)
    floor = _ri(rng, h + 1, HEIGHT - 2)
    x0 = _ri(rng, 0, WIDTH - length)
    c.carve(x0, floor - h + 1, x0 + length - 1, floor)
    c.spawn(x0, floor)
    sw = _ri(rng, x0 + 2, x0 + length - 2)
    c.exit((x0 + length - 1, floor), (sw, floor))


def gaps(c: Canvas, rng: np.random.Generator, d: float) -> None:
    floor = _ri(rng, 8, 14)
    c.carve(0, floor - 5, WIDTH - 1, floor)
    x = _ri(rng, 3, 5)
    c.spawn(1, floor)
    n = _span(d, 1, 4) + _ri(rng, 0, 1)
    for _ in range(n):
        w = _ri(rng, 1, _span(d, 2, 5))
        if x + w > WIDTH - 5:
            break
        depth = _ri(rng, 2, HEIGHT - floor - 1)
        c.carve(x, floor + 1, x + w - 1, floor + depth)
        if rng.random() < 0.4 * d:  # a step up after the gap
            c.carve(x + w, floor, x + w + _ri(rng, 1, 2), floor, tile=1)
        x += w + _ri(rng, 2, 5)
    end = WIDTH - 1
    c.exit((end, floor), (_ri(rng, end - 3, end - 1), floor))


def shaft(c: Canvas, rng: np.random.Generator, d: float) -> None:
    w = _ri(rng, 2, 3 if d < 0.5 else 4)
    height = min(_span(d, 6, 18) + _ri(rng, 0, 2), HEIGHT - 3)
    x0 = _ri(rng, 2, WIDTH - w - 12)
    bottom = _ri(rng, height + 2, HEIGHT - 1)
    top = bottom - height
    c.carve(x0, top, x0 + w - 1, bottom)
    c.carve(x0 - 2, bottom - 1, x0 - 1, bottom)  # a small start room
    c.spawn(x0 - 2, bottom)
    ledge_len = _ri(rng, 4, 9)
    c.carve(x0 + w, top, x0 + w + ledge_len, top + 2)
    sw_y = _ri(rng, top + 1, bottom - 2)
    c.exit((x0 + w + ledge_len, top + 2), (x0 + _ri(rng, 0, w - 1), sw_y))


def slopes(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """Rolling ground of 45-degree and gentle ramps and round bumps, quarter pipe at the end."""
    base = _ri(rng, 14, 20)  # lowest empty row
    top = base - 8
    c.carve(0, top, WIDTH - 1, base)
    ground = base + 1  # first solid row of the current column

    def fill(col: int, g: int) -> None:
        if g <= base:
            c.carve(col, g, col, base, tile=1)

    c.spawn(0, base)
    x = 1
    while x < WIDTH - 3:
        r = rng.random()
        up = ground > base - 3 and (ground == base + 1 or rng.random() < 0.5)
        if r < 0.2 + 0.3 * d:  # steep ramp
            if up:
                fill(x, ground)
                c.t[x, ground - 1] = UP45
                ground -= 1
            else:
                fill(x, ground + 1)
                c.t[x, ground] = DOWN45
                ground += 1
            x += 1
            continue
        if r < 0.45 + 0.2 * d:  # gentle ramp over two tiles
            if up:
                fill(x, ground)
                fill(x + 1, ground)
                c.t[x, ground - 1], c.t[x + 1, ground - 1] = UP_LO, UP_HI
                ground -= 1
            else:
                fill(x, ground + 1)
                fill(x + 1, ground + 1)
                c.t[x, ground], c.t[x + 1, ground] = DOWN_HI, DOWN_LO
                ground += 1
            x += 2
            continue
        if r < 0.55 + 0.15 * d:  # a round bump
            fill(x, ground)
            fill(x + 1, ground)
            c.t[x, ground - 1], c.t[x + 1, ground - 1] = BUMP
            x += 2
            continue
        fill(x, ground)
        x += 1
    while x < WIDTH:
        fill(x, ground)
        x += 1
    c.t[WIDTH - 1, ground - 1] = PIPE_RIGHT
    sw = _ri(rng, WIDTH // 3, WIDTH - 3)
    c.exit((WIDTH - 2, ground - 1), (sw, _first_solid(c, sw, top) - 1))


def _first_solid(c: Canvas, x: int, top: int) -> int:
    """First non-empty row of column x at or below ``top``."""
    col = c.t[x]
    return next(y for y in range(top, HEIGHT) if col[y] != 0)


def mines(c: Canvas, rng: np.random.Generator, d: float) -> None:
    h = _ri(rng, 4, 6)
    floor = _ri(rng, h + 2, HEIGHT - 2)
    c.carve(0, floor - h + 1, WIDTH - 1, floor)
    c.spawn(0, floor)
    x = _ri(rng, 4, 6)
    while x < WIDTH - 5:
        k = _ri(rng, 1, _span(d, 1, 3))
        for i in range(k):
            c.mine(x + i, floor, 0, 1)  # resting on the floor
        if rng.random() < 0.5 * d:  # a ceiling mine above the jump arc
            c.mine(x + k // 2, floor - h + 1, 0, -1)
        x += k + _ri(rng, 3, 6)
    c.exit((WIDTH - 1, floor), (WIDTH - 3, floor))


def switch_first(c: Canvas, rng: np.random.Generator, d: float) -> None:
    floor = _ri(rng, 14, 21)
    c.carve(0, floor - 9, WIDTH - 1, floor)
    c.spawn(_ri(rng, 8, 14), floor)
    exit_x = _ri(rng, 2, 6)
    # the switch sits on a platform at the far side, reached by stairs of small platforms
    plat_h = _span(d, 1, 6)
    px = _ri(rng, WIDTH - 8, WIDTH - 5)
    c.carve(px, floor - plat_h + 1, WIDTH - 1, floor, tile=1)
    for s in range(1, plat_h, 2):
        sx = px - 3 * ((plat_h - s + 1) // 2)
        c.carve(sx, floor - s + 1, sx + 1, floor - s + 1, tile=1)
    c.exit((exit_x, floor), (WIDTH - 2, floor - plat_h))


def locked_doors(c: Canvas, rng: np.random.Generator, d: float) -> None:
    h = _ri(rng, 3, 5)
    floor = _ri(rng, h + 3, HEIGHT - 2)
    c.carve(0, floor - h + 1, WIDTH - 1, floor)
    c.spawn(0, floor)
    n = _span(d, 1, 3)
    span = (WIDTH - 14) // n
    walls = [8 + i * span + _ri(rng, 0, span - 4) for i in range(n)]
    prev = 0
    for wx in walls:
        c.carve(wx, floor - h + 1, wx, floor - 1, tile=1)  # wall with a one-tile doorway
        sw = (_ri(rng, prev + 1, wx - 2), floor - _ri(rng, 0, min(1, h - 2)))
        c.locked_door(wx, floor, sw)
        prev = wx
    c.exit((WIDTH - 1, floor), (_ri(rng, prev + 2, WIDTH - 2), floor))


def multi_chamber(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """Rooms on two storeys joined by doorways and a vertical shaft; features in each room."""
    cols = _span(d, 2, 4)
    room_w = (WIDTH - 1) // cols
    lower, upper = _ri(rng, 19, 21), _ri(rng, 9, 11)
    for storey_floor in (lower, upper):
        c.carve(0, storey_floor - 4, WIDTH - 1, storey_floor)
        for i in range(1, cols):
            wx = i * room_w
            c.carve(wx, storey_floor - 4, wx, storey_floor - 2, tile=1)  # low doorway
    # a shaft between storeys in a random room, plus a pit or mines in the others
    shaft_room = _ri(rng, 0, cols - 1)
    sx = shaft_room * room_w + _ri(rng, 2, room_w - 4)
    c.carve(sx, upper + 1, sx + 1, lower - 5)
    # walls on both sides of the shaft down to one tile above the lower floor: wall jumps
    c.carve(sx - 1, lower - 4, sx - 1, lower - 1, tile=1)
    c.carve(sx + 2, lower - 4, sx + 2, lower - 1, tile=1)
    for i in range(cols):
        if i == shaft_room:
            continue
        mx = i * room_w + room_w // 2
        if rng.random() < 0.5:
            c.mine(mx, lower, 0, 1)
        else:
            c.carve(mx, lower + 1, mx + _ri(rng, 0, 1), min(lower + 2, HEIGHT - 1))
    c.spawn(1, lower)
    sw_room = _ri(rng, 0, cols - 1)
    c.exit((WIDTH - 2, upper), (sw_room * room_w + 2, upper))
    c.gold(_ri(rng, 1, WIDTH - 2), upper - 1)


# -- suite families: what people build (hazards, switches, mazes, long levels, precise jumps) --
def drones(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """A hall patrolled by zap drones that follow its walls; pillars to hop over."""
    h = _ri(rng, 4, 6)
    floor = _ri(rng, h + 2, HEIGHT - 2)
    top = floor - h + 1
    c.carve(0, top, WIDTH - 1, floor)
    c.spawn(0, floor)
    for _ in range(_span(d, 0, 3)):  # pillars: drones turn at them, the ninja jumps them
        px = _ri(rng, 6, WIDTH - 6)
        c.carve(px, floor - _ri(rng, 0, 1), px, floor, tile=1)
    n = _span(d, 1, 4) + _ri(rng, 0, 1)
    xs = sorted(rng.choice(np.arange(9, WIDTH - 3), size=n, replace=False).tolist())
    for x in xs:
        y = top if rng.random() < 0.5 else _ri(rng, top, floor - 2)
        if c.t[x, y] == 0:
            c.drone(x, y, _ri(rng, 0, 3), _ri(rng, 0, 1))
    sw = _ri(rng, WIDTH // 2, WIDTH - 3)
    c.exit((WIDTH - 1, floor), (sw, floor))


def thwumps(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """A corridor under ceiling thwumps that slam down when the ninja is below: run through
    before they land, or wait for them to rise again. Harder: lower ceilings, more of them,
    side thwumps guarding a step."""
    h = _ri(rng, 3, 5) if d < 0.5 else _ri(rng, 3, 4)
    floor = _ri(rng, h + 3, HEIGHT - 2)
    top = floor - h + 1
    c.carve(0, top - 1, WIDTH - 1, floor)
    c.carve(0, top - 1, WIDTH - 1, top - 1, tile=1)  # a solid ceiling row to hang from
    c.spawn(0, floor)
    x = _ri(rng, 6, 9)
    n = _span(d, 1, 5)
    for _ in range(n):
        if x > WIDTH - 5:
            break
        c.thwump(x, top, 1)
        if rng.random() < 0.4 * d and x + 3 < WIDTH - 4:  # a step with a side thwump
            c.carve(x + 3, floor, x + 3, floor, tile=1)
        x += _ri(rng, 4, 8 - int(3 * d))
    c.exit((WIDTH - 1, floor), (_ri(rng, WIDTH - 6, WIDTH - 2), floor))


def switches(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """Chambers behind locked doors, each door's switch on a ledge of the chamber before it,
    and the exit switch on a platform in the last chamber while the exit door waits back near
    the start (at higher difficulty behind the spawn)."""
    h = _ri(rng, 5, 7)
    floor = _ri(rng, h + 2, HEIGHT - 2)
    top = floor - h + 1
    c.carve(0, top, WIDTH - 1, floor)
    start = _ri(rng, 3, 6)
    c.spawn(start, floor)
    n = _span(d, 1, 4)
    span = (WIDTH - 12 - (start + 4)) // n
    prev = start + 1
    for i in range(n):
        wx = start + 4 + (i + 1) * span - _ri(rng, 0, 2)
        c.carve(wx, top, wx, floor - 1, tile=1)  # wall with a one-tile doorway at the floor
        lx = _ri(rng, prev + 2, max(prev + 2, wx - 4))
        ly = floor - 3  # the switch rests on a small ledge the ninja can walk under
        c.carve(lx, ly + 1, lx + 1, ly + 1, tile=1)
        c.locked_door(wx, floor, (lx, ly))
        prev = wx
    # the exit switch on a floating platform in the last chamber (>= 10 tiles wide)
    high = d > 0.5
    px = _ri(rng, prev + 4, WIDTH - 5)
    py = floor - 2 - int(high)
    c.carve(px, py, px + 2, py, tile=1)
    if high:  # a one-tile step to climb from
        c.carve(px - 2, floor, px - 2, floor, tile=1)
    door_x = _ri(rng, 0, start - 2) if high else _ri(rng, start + 2, prev - 1)
    c.exit((door_x, floor), (px + 1, py - 1))


def maze(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """A maze of 3-wide, 2-tall cells, carved by a seeded depth-first search: the exit switch
    sits in the cell farthest from the spawn (exploration), the door in another deep cell.
    Passages between storeys are 2-wide holes, a 3-tile jump up."""
    cols = min(_span(d, 3, 8), (WIDTH - 1) // 4)
    rows = min(_span(d, 2, 5), (HEIGHT - 1) // 3)
    x0 = _ri(rng, 0, WIDTH - 1 - 4 * cols)
    y0 = _ri(rng, 0, HEIGHT - 1 - 3 * rows)

    def cell(i: int, j: int) -> tuple[int, int, int, int]:
        ax, ay = x0 + 4 * i + 1, y0 + 3 * j + 1
        return ax, ay, ax + 2, ay + 1

    for i in range(cols):
        for j in range(rows):
            c.carve(*cell(i, j))
    start = (0, rows - 1)
    seen = {start}
    stack = [start]
    parent = {start: start}
    while stack:
        i, j = stack[-1]
        nxt = [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
               if 0 <= i + di < cols and 0 <= j + dj < rows and (i + di, j + dj) not in seen]
        if not nxt:
            stack.pop()
            continue
        ni, nj = nxt[_ri(rng, 0, len(nxt) - 1)]
        ax, ay, bx, by = cell(i, j)
        if nj == j:  # knock out the wall column between horizontal neighbours
            wx = bx + 1 if ni > i else ax - 1
            c.carve(wx, ay, wx, by)
        else:  # a 2-wide hole in the floor/ceiling row, at the cell's left or right side
            wy = by + 1 if nj > j else ay - 1
            hx = ax if rng.random() < 0.5 else ax + 1
            c.carve(hx, wy, hx + 1, wy)
        seen.add((ni, nj))
        parent[(ni, nj)] = (i, j)
        stack.append((ni, nj))
    # extra loops at higher difficulty make the maze less of a tree (more wrong turns)
    for _ in range(_span(d, 0, cols)):
        i, j = _ri(rng, 0, cols - 2), _ri(rng, 0, rows - 1)
        ax, ay, bx, by = cell(i, j)
        c.carve(bx + 1, by - 1, bx + 1, by)

    def depth(p: tuple[int, int]) -> int:
        k = 0
        while parent[p] != p:
            p = parent[p]
            k += 1
        return k

    cells = sorted(seen, key=lambda p: (-depth(p), p))
    far = cells[0]
    door = cells[_ri(rng, 1, max(1, len(cells) // 3))]
    sx, _, _, sy = cell(*start)
    c.spawn(sx, sy)
    fx, _, _, fy = cell(*far)
    dx, _, _, dy = cell(*door)
    c.exit((dx + 1, dy), (fx + 1, fy))


def long_chambers(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """Storeys stacked and joined at alternating ends by wall-jump shafts, so the route snakes
    right, up, left, up, ...; each storey has its own obstacle (pit, floor mines, a thwump).
    The exit switch waits at the end of the top storey and the door back along it."""
    n = _span(d, 2, 4)
    sh = 4  # storey height (empty rows)
    bottom = HEIGHT - 1
    floors = [bottom - i * (sh + 1) for i in range(n)]
    for f in floors:
        c.carve(1, f - sh + 1, WIDTH - 2, f)
    for i in range(n - 1):  # a chimney from storey i up into storey i+1
        right = i % 2 == 0
        sx = WIDTH - 3 if right else 1  # two tiles wide, against the outer wall
        px = sx - 1 if right else sx + 2  # a hanging pillar forms its other wall
        c.carve(sx, floors[i + 1] + 1, sx + 1, floors[i] - sh + 1)
        c.carve(px, floors[i] - sh + 1, px, floors[i] - 2, tile=1)
    for i, f in enumerate(floors):
        right = i % 2 == 0
        lo, hi = (6, WIDTH - 8) if right else (7, WIDTH - 7)
        kind = rng.random()
        x = _ri(rng, lo, hi)
        if kind < 0.4:
            c.carve(x, f + 1, x + _ri(rng, 0, 1), f + 1)  # a one-deep pit
            if i > 0 and rng.random() < d:
                c.mine(x, f + 1, 0, 1)
        elif kind < 0.75:
            for k in range(_ri(rng, 1, _span(d, 1, 3))):
                c.mine(x + k, f, 0, 1)
        else:
            c.thwump(x, f - sh + 1, 1)
    c.spawn(2, floors[0])
    top_right = (n - 1) % 2 == 0
    end = WIDTH - 3 if top_right else 2
    door = _ri(rng, 8, WIDTH - 9)
    c.exit((door, floors[-1]), (end, floors[-1]))


def precise_jumps(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """Narrow platforms over a mine-lined pit, some reached off a launch ramp: a jump taken too
    early, too late or too long lands in the mines."""
    pit_floor = HEIGHT - 1
    top = _ri(rng, 2, 6)
    c.carve(0, top, WIDTH - 1, pit_floor)
    base = _ri(rng, pit_floor - 9, pit_floor - 5)  # the row the platforms' tops sit on
    ledge = _ri(rng, 3, 5)
    c.carve(0, base + 1, ledge - 1, pit_floor, tile=1)  # start ledge
    c.spawn(0, base)
    for x in range(ledge, WIDTH - 4):  # mines along the pit floor
        if (x - ledge) % 2 == 0:
            c.mine(x, pit_floor, 0, 1)
    x = ledge
    y = base
    while True:
        gap = _ri(rng, 2, _span(d, 3, 6))
        width = _ri(rng, _span(d, 3, 1), _span(d, 4, 2))
        if x + gap + width >= WIDTH - 5:
            break
        x += gap
        y = int(np.clip(y + _ri(rng, -2, 2), top + 4, pit_floor - 3))
        c.carve(x, y + 1, x + width - 1, pit_floor, tile=1)
        if width >= 2 and rng.random() < 0.3 + 0.4 * d:  # a ramp launching the next jump
            c.t[x + width - 1, y] = UP45
        x += width
    end = WIDTH - 4
    y = int(np.clip(y + _ri(rng, -1, 1), top + 4, pit_floor - 3))
    c.carve(end, y + 1, WIDTH - 1, pit_floor, tile=1)
    c.exit((WIDTH - 1, y), (end + 1, y))



def platforms(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """One big room over a floor lined with mines, crossed by jumping between one-tile floating
    platforms (the spawn, the switch and the door each on its own, harder: stepping stones
    between, and the door back past the switch), as in the human "medium" sets. Standing on
    one tile there is no run-up, and walking off the edge drops into the mines."""
    top, floor = _ri(rng, 1, 4), HEIGHT - 1 - _ri(rng, 0, 2)  # floor: the row of mines
    c.carve(0, top, WIDTH - 1, floor)
    for x in range(WIDTH):
        c.mine(x, floor, 0, 1)
    stops = 3 + _ri(rng, 0, _span(d, 0, 2))
    x, y = _ri(rng, 1, 10), _ri(rng, top + 5, floor - 5)
    spots = []
    for _ in range(stops):  # three stops always fit: x <= 10 + 2 * 12 before the third
        if x > WIDTH - 2:
            break
        c.carve(x, y, x, y, tile=1)
        spots.append((x, y - 1))  # the ninja and the objects stand on the platform
        x += _ri(rng, 5, _span(d, 8, 12))
        y = int(np.clip(y + _ri(rng, -2, 2), top + 4, floor - 4))
    c.spawn(*spots[0])
    switch, door = spots[-1], spots[-2]
    if rng.random() >= 0.5 * d:  # easier: the switch on the way, the door at the far end
        switch, door = door, switch
    c.exit(door, switch)


def tiny_room(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """A closet of a level, as in the "very simple" human sets: spawn, switch and door within a
    few tiles of each other in a small room (wider and taller with difficulty)."""
    w = _ri(rng, 2, _span(d, 3, 6))
    h = _ri(rng, 1, _span(d, 1, 2))
    x0 = _ri(rng, 0, WIDTH - w)
    floor = _ri(rng, h, HEIGHT - 1)
    c.carve(x0, floor - h + 1, x0 + w - 1, floor)
    # spawn, switch, door in order along the room (harder: the door back past the spawn)
    xs = sorted(int(v) for v in rng.integers(x0, x0 + w, size=3))
    if rng.random() < 0.5 * d:
        xs = [xs[1], xs[2], xs[0]]
    c.spawn(xs[0], floor)
    c.exit((xs[2], floor), (xs[1], floor))


def _standing_spots(c: Canvas, x0: int, x1: int, top: int, floor: int) -> list[tuple[int, int]]:
    """Empty cells of columns x0..x1, rows top..floor, over a full tile (or the level's edge):
    where the ninja, a switch or a door can stand."""
    t = c.t
    return [(x, y) for x in range(x0, x1 + 1) for y in range(top, floor + 1)
            if t[x, y] == 0 and (y + 1 >= HEIGHT or t[x, y + 1] == 1)]


def _three_apart(rng: np.random.Generator, spots: list[tuple[int, int]], d: float
                 ) -> tuple[tuple[int, int], ...]:
    """Spawn, switch and door among ``spots``: of a few random draws, the one whose
    spawn -> switch -> door walk is longest (harder) or shortest (easier), by ``d``."""
    draws = [tuple(spots[i] for i in rng.choice(len(spots), size=3, replace=False))
             for _ in range(6)]

    def walk(p: tuple[tuple[int, int], ...]) -> int:
        return sum(abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in pairwise(p))

    draws.sort(key=walk)
    return draws[min(len(draws) - 1, int(d * len(draws)))]


def room_blocks(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """A room strewn with small blocks and ramps, spawn, switch and door on the floor or on
    blocks, as in the human "simple" and "complex" sets: the way runs between and over
    obstacles the objective's straight line does not show."""
    w = _ri(rng, _span(d, 12, 24), _span(d, 22, WIDTH))
    h = _ri(rng, _span(d, 4, 7), _span(d, 7, 15))
    x0, top = _ri(rng, 0, WIDTH - w), _ri(rng, 0, HEIGHT - h)
    floor = top + h - 1
    c.carve(x0, top, x0 + w - 1, floor)
    for _ in range(_span(d, 3, 14) + _ri(rng, 0, 3)):
        bw, bh = _ri(rng, 1, 2), _ri(rng, 1, 2)
        bx, by = _ri(rng, x0 + 1, x0 + w - 1 - bw), _ri(rng, top + 2, floor - bh + 1)
        tile = 1 if rng.random() < 0.75 else int(rng.choice([UP45, DOWN45]))
        c.carve(bx, by, bx + bw - 1, by + bh - 1, tile=tile)
    spots = _standing_spots(c, x0, x0 + w - 1, top, floor)
    spawn, switch, door = _three_apart(rng, spots, d)
    c.spawn(*spawn)
    c.exit(door, switch)


def hill(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """A room with a mound of 45-degree ramps in its middle (mines on top, harder), spawn and
    door on either side, as in the human "very simple" and "medium" sets."""
    h = _ri(rng, 6, 11)
    w = _ri(rng, 16, WIDTH)
    x0, top = _ri(rng, 0, WIDTH - w), _ri(rng, 0, HEIGHT - h)
    floor = top + h - 1
    c.carve(x0, top, x0 + w - 1, floor)
    k = min(_span(d, 1, 4) + _ri(rng, 0, 1), h - 3, (w - 6) // 2)
    cx = _ri(rng, x0 + k + 2, x0 + w - k - 2)
    for i in range(k):  # row i above the floor: ramps at both ends, full tiles between
        row, left, right = floor - i, cx - k + i, cx + k - 1 - i
        c.carve(left, row, right, row, tile=1)
        c.t[left, row], c.t[right, row] = UP45, DOWN45
    if k and rng.random() < d:  # a mine on the summit
        c.mine(cx - 1 + _ri(rng, 0, 1), floor - k, 0, 1)
    c.spawn(x0 + _ri(rng, 0, 2), floor)
    door = (x0 + w - 1 - _ri(rng, 0, 2), floor)
    switch = (cx, floor - k) if rng.random() < 0.5 else (_ri(rng, door[0] - 3, door[0]), floor)
    if switch == door:
        switch = (door[0] - 1, floor)
    c.exit(door, switch)


def pit_mines(c: Canvas, rng: np.random.Generator, d: float) -> None:
    """A corridor over one or two pits lined with mines (and mines on the floor, harder), as
    in the human "medium" and "mine heavy" sets: the ninja must jump the pit, not walk in."""
    h = _ri(rng, 4, 7)
    floor = _ri(rng, h + 1, HEIGHT - 4)
    c.carve(0, floor - h + 1, WIDTH - 1, floor)
    c.spawn(0, floor)
    x, pits = _ri(rng, 5, 12), []
    for _ in range(1 + (rng.random() < d)):
        pw = _ri(rng, 2, _span(d, 3, 4))
        if x + pw > WIDTH - 6:
            break
        depth = _ri(rng, 2, min(7, HEIGHT - 1 - floor))
        c.carve(x, floor + 1, x + pw - 1, floor + depth)
        for i in range(pw):
            c.mine(x + i, floor + depth, 0, 1)
        pits.append((x, x + pw - 1))
        x += pw + _ri(rng, 5, 10)
    free = [x for x in range(3, WIDTH - 3) if all(x < a - 1 or x > b + 1 for a, b in pits)]
    mined = rng.choice(free, size=min(len(free), _span(d, 0, 3)), replace=False).tolist()
    for mx in mined:
        c.mine(int(mx), floor, 0, 1)
    safe = [x for x in free if all(abs(x - m) > 1 for m in mined)]
    c.exit((WIDTH - 1, floor), (int(rng.choice(safe[len(safe) // 3:])), floor))


FAMILY_BUILDERS: dict[str, Callable[[Canvas, np.random.Generator, float], None]] = {
    "corridor": corridor, "gaps": gaps, "shaft": shaft, "slopes": slopes, "mines": mines,
    "switch_first": switch_first, "locked_doors": locked_doors, "multi_chamber": multi_chamber,
    "drones": drones, "thwumps": thwumps, "switches": switches, "maze": maze,
    "long_chambers": long_chambers, "precise_jumps": precise_jumps, "tiny_room": tiny_room,
    "platforms": platforms, "room_blocks": room_blocks, "hill": hill, "pit_mines": pit_mines,
}


#: Difficulty bands used by suites and the corpus.
DIFFICULTY = {"simple": (0.0, 0.3), "medium": (0.3, 0.7), "hard": (0.7, 1.0)}
#: Planner expansions allowed to prove a candidate solvable (machine independent).
ACCEPT_EXPANSIONS = 15000
MAX_ATTEMPTS = 12


def _rng(seed: int, family: str, attempt: int) -> np.random.Generator:
    """Independent stream per (seed, family, attempt); stable across numpy versions."""
    tag = int.from_bytes(hashlib.sha256(family.encode()).digest()[:4], "little")
    return np.random.default_rng([GENERATOR_VERSION_INT, seed, tag, attempt])


GENERATOR_VERSION_INT = int(GENERATOR_VERSION)


def build_candidate(seed: int, family: str, difficulty: float, attempt: int = 0) -> bytes:
    """Map data of one unverified candidate; pure function of its arguments."""
    if family not in FAMILY_BUILDERS:
        raise ValueError(f"unknown family {family!r}; choose from {sorted(FAMILY_BUILDERS)}")
    rng = _rng(seed, family, attempt)
    c = Canvas()
    FAMILY_BUILDERS[family](c, rng, float(np.clip(difficulty, 0.0, 1.0)))
    if rng.random() < 0.5:
        c.mirrored()
    return c.lm.to_bytes()


def pick_family(seed: int, families: tuple[str, ...] = FAMILIES) -> str:
    """Deterministic family for a seed, cycling so consecutive seeds cover every family."""
    return families[seed % len(families)]


def generate_level(seed: int, family: str | None = None, difficulty: float | None = None,
                   band: str = "medium", verify: bool = True,
                   style: str = "shortest") -> GeneratedLevel:
    """The first candidate of (seed, family) that the planner solves within
    ``ACCEPT_EXPANSIONS`` expansions. ``verify=False`` skips planning and returns attempt 0."""
    from .planner import solve_map  # late: the planner imports the simulator stack

    family = family or pick_family(seed)
    if difficulty is None:
        lo, hi = DIFFICULTY[band]
        difficulty = lo + (hi - lo) * _rng(seed, "difficulty", 0).random()
    for attempt in range(MAX_ATTEMPTS if verify else 1):
        data = build_candidate(seed, family, difficulty, attempt)
        level = GeneratedLevel(f"{family}-{seed}", family, seed, float(difficulty), attempt, data)
        if not verify:
            return level
        result = solve_map(data, style=style, budget_s=float("inf"),
                           max_expansions=ACCEPT_EXPANSIONS, source=level.level_id)
        if result.solved:
            level.solution = result.inputs
            return level
    raise RuntimeError(f"no solvable {family} level for seed {seed} in {MAX_ATTEMPTS} attempts")
